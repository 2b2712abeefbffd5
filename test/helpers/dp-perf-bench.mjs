#!/usr/bin/env node
// Data-path micro-benchmark (helper I, issue 6): CachedFileData over MemoryFileStore in-process, no
// FUSE. Measures what the daemon's data path costs per request, independent of the transport.
//
//   node test/helpers/dp-perf-bench.mjs [--dist DIR[,DIR2...]] [--rounds N] [--ms MS] [--size MiB]
//
// DIR is a compiled src/fs directory (default: dist/fs of this repo). With several DIRs the rounds
// interleave them (A B A B ...) so machine noise hits both alike; each cell is the median of rounds.
// Workloads (file of --size MiB, default 64, page cache large enough to hold it unless noted):
//   write1m       1 MiB writes, sequential over the file (overwrites after the first pass), write-through
//   read1m-hit    1 MiB reads, every page cached (R6 hit path)
//   read128k-miss 128 KiB reads after the cache was emptied (R2 fill path: store -> cache -> reply)
//   read4k-miss   4 KiB reads of uncached pages (a page fault's READ)
//   punch-cycle   punch 4 KiB -> read it (miss) -> write 4 KiB -> read it (hit): the bench's punch loop
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const here = path.dirname(new URL(import.meta.url).pathname);
const dirs = opt('--dist', path.resolve(here, '../../dist/fs')).split(',');
const rounds = Number(opt('--rounds', 5));
const ms = Number(opt('--ms', 400));
const sizeMiB = Number(opt('--size', 64));
const only = opt('--workloads', 'write1m,read1m-hit,read128k-hit,read128k-miss,read4k-miss,punch-cycle').split(',');
const PAGE = 4096;
const MiB = 1 << 20;
const size = sizeMiB * MiB;

async function load(dir) {
  const u = (f) => pathToFileURL(path.join(path.resolve(dir), f)).href;
  const fd = await import(u('file-data.js'));
  const pc = await import(u('page-cache.js'));
  const ms = await import(u('memory-store.js'));
  return { dir, ...fd, ...pc, ...ms };
}

function setup(m, cachePages = (size / PAGE) * 2) {
  const backend = new m.MemoryStoreBackend({ capacityBytes: Infinity });
  const store = backend.open(1);
  const cache = new m.PageCache({ capacityPages: cachePages });
  const f = m.createFileData(1, store, { cache, initialSize: 0 });
  return { store, cache, f };
}

async function fill(f) {
  const b = Buffer.alloc(MiB, 0x5a);
  for (let o = 0; o < size; o += MiB) await f.write(o, b);
}

/** Run `op(i)` for ~ms milliseconds; returns ops/s. */
async function timed(op) {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const lim = BigInt(ms) * 1_000_000n;
  let t = t0;
  while (t - t0 < lim) {
    for (let k = 0; k < 16; k++) {
      const r = op(n++);
      if (r instanceof Promise) await r;
    }
    t = process.hrtime.bigint();
  }
  return n / (Number(t - t0) / 1e9);
}

const workloads = {
  async write1m(m) {
    const { f } = setup(m);
    await fill(f);
    const b = Buffer.alloc(MiB, 0x33);
    const n = size / MiB;
    const r = await timed((i) => f.write((i % n) * MiB, b));
    return { v: (r * MiB) / 1e9, unit: 'GB/s' };
  },
  async 'read1m-hit'(m) {
    const { f } = setup(m);
    await fill(f);
    const n = size / MiB;
    const r = await timed((i) => f.read((i % n) * MiB, MiB));
    return { v: (r * MiB) / 1e9, unit: 'GB/s' };
  },
  async 'read128k-hit'(m) {
    const { f } = setup(m);
    await fill(f);
    const B = 128 * 1024;
    const n = size / B;
    const r = await timed((i) => f.read((i % n) * B, B));
    return { v: (r * B) / 1e9, unit: 'GB/s' };
  },
  async 'read128k-miss'(m) {
    const { f, cache } = setup(m);
    await fill(f);
    const B = 128 * 1024;
    const n = size / B;
    const ip = cache.forInode(1);
    const r = await timed((i) => {
      if (i % n === 0) ip.dropAll(); // (outside the lock: no concurrent request here)
      return f.read((i % n) * B, B);
    });
    return { v: (r * B) / 1e9, unit: 'GB/s' };
  },
  async 'read4k-miss'(m) {
    const { f, cache } = setup(m);
    await fill(f);
    const n = size / PAGE;
    const ip = cache.forInode(1);
    const r = await timed((i) => {
      if (i % n === 0) ip.dropAll();
      return f.read((i % n) * PAGE, PAGE);
    });
    return { v: r / 1e3, unit: 'k ops/s' };
  },
  async 'punch-cycle'(m) {
    const { f } = setup(m);
    await fill(f);
    const stamp = Buffer.alloc(PAGE, 7);
    const n = size / PAGE;
    const r = await timed(async (i) => {
      const o = (i % n) * PAGE;
      await f.fallocate(0x01 | 0x02, o, PAGE);
      await f.read(o, PAGE);
      await f.write(o, stamp);
      await f.read(o, PAGE);
    });
    return { v: r / 1e3, unit: 'k cycles/s' };
  },
};

const mods = [];
for (const d of dirs) mods.push(await load(d));
const res = {};
for (let r = 0; r < rounds; r++) {
  for (const w of only) {
    for (const m of mods) {
      const x = await workloads[w](m);
      ((res[w] ??= {})[m.dir] ??= { unit: x.unit, v: [] }).v.push(x.v);
      globalThis.gc?.();
    }
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`dp-perf-bench: ${rounds} rounds x ${ms} ms, file ${sizeMiB} MiB, load ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const w of only) {
  const base = med(res[w][dirs[0]].v);
  for (const d of dirs) {
    const c = res[w][d];
    const m = med(c.v);
    console.log(
      `${w.padEnd(14)} ${d.padEnd(40)} ${m.toFixed(3).padStart(9)} ${c.unit.padEnd(10)} [${Math.min(...c.v).toFixed(3)} .. ${Math.max(...c.v).toFixed(3)}]` +
        (d !== dirs[0] ? `  x${(m / base).toFixed(2)}` : ''),
    );
  }
}
