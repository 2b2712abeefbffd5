#!/usr/bin/env node
// Micro-benchmarks of the data path (helper D): range lock (G1, G2, scenario A of
// range-lock-and-cache.md §9), page-cache hit path, witness cost.
//
// Usage: npx tsc -p tsconfig.json && node test/helpers/dp-bench.mjs [--dist DIR] [--quick]
// (DIR defaults to ./dist; it must contain fs/range-lock.js, fs/page-cache.js, fs/file-data.js, fs/witness.js)

import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const args = process.argv.slice(2);
const distArg = args.indexOf('--dist');
const dist = path.resolve(distArg >= 0 ? args[distArg + 1] : 'dist');
const quick = args.includes('--quick');
const imp = (p) => import(pathToFileURL(path.join(dist, p)).href);
const { RangeLock } = await imp('fs/range-lock.js');
const { PageCache } = await imp('fs/page-cache.js');
const { createFileData } = await imp('fs/file-data.js');
const { Witness } = await imp('fs/witness.js');

const P = 4096;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** ns per iteration: median over `batches` batches of `n` iterations (one warm-up batch). */
async function nsPerOp(name, n, fn, batches = 5) {
  await fn(Math.min(n, 100_000));
  const r = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    await fn(n);
    r.push(((performance.now() - t0) * 1e6) / n);
  }
  console.log(`${name.padEnd(62)} ${fmt(median(r)).padStart(7)} ns/op  (batches: ${r.map(fmt).join(' ')})`);
  return median(r);
}

const N = quick ? 200_000 : 2_000_000;
const NA = quick ? 100_000 : 1_000_000;
const results = {};

// ---------------------------------------------------------------- G1: sync try + release
{
  const l = new RangeLock();
  results.syncEmpty = await nsPerOp('G1 tryAcquire+release, empty lock', N, (n) => {
    const r = { start: 0, end: P };
    for (let i = 0; i < n; i++) l.release(l.tryAcquire(r, 'shared'));
  });
  const l8 = new RangeLock();
  for (let i = 0; i < 8; i++) l8.tryAcquire({ start: (i + 10) * P, end: (i + 11) * P }, 'exclusive');
  results.sync8 = await nsPerOp('G1 tryAcquire+release, 8 unrelated holders', N, (n) => {
    const r = { start: 0, end: P };
    for (let i = 0; i < n; i++) l8.release(l8.tryAcquire(r, 'exclusive'));
  });
  const l64 = new RangeLock();
  for (let i = 0; i < 64; i++) l64.tryAcquire({ start: (i + 10) * P, end: (i + 11) * P }, 'exclusive');
  results.sync64 = await nsPerOp('G1 tryAcquire+release, 64 unrelated holders', N / 4, (n) => {
    const r = { start: 0, end: P };
    for (let i = 0; i < n; i++) l64.release(l64.tryAcquire(r, 'exclusive'));
  });
}

// ---------------------------------------------------------------- G2: awaited acquire + release
{
  results.bareAwait = await nsPerOp('bare await (baseline)', NA, async (n) => {
    for (let i = 0; i < n; i++) await null;
  });
  const l = new RangeLock();
  results.awaitShared = await nsPerOp('G2 await acquire(shared)+release, empty', NA, async (n) => {
    const r = { start: 0, end: P };
    for (let i = 0; i < n; i++) l.release(await l.acquire(r, 'shared'));
  });
  const l8 = new RangeLock();
  for (let i = 0; i < 8; i++) l8.tryAcquire({ start: (i + 10) * P, end: (i + 11) * P }, 'shared');
  results.awaitExcl8 = await nsPerOp('G2 await acquire(excl)+release, 8 unrelated holders', NA, async (n) => {
    const r = { start: 0, end: P };
    for (let i = 0; i < n; i++) l8.release(await l8.acquire(r, 'exclusive'));
  });
  // ping-pong: every acquisition waits for the other task's release (contended hand-off)
  const lp = new RangeLock();
  results.handoff = await nsPerOp('contended hand-off (2 tasks, exclusive, every grant waits)', NA / 2, async (n) => {
    const r = { start: 0, end: P };
    const task = async () => {
      for (let i = 0; i < n / 2; i++) {
        const h = await lp.acquire(r, 'exclusive');
        await null;
        lp.release(h);
      }
    };
    await Promise.all([task(), task()]);
  });
}

// ---------------------------------------------------------------- scenario A (G4)
{
  const l = new RangeLock();
  const dur = quick ? 500 : 1500;
  const end = performance.now() + dur;
  const waits = [];
  let readerGrants = 0;
  const reader = async () => {
    while (performance.now() < end) {
      const h = await l.acquire({ start: 0, end: 65536 }, 'shared');
      readerGrants++;
      await new Promise((r) => setImmediate(r));
      l.release(h);
    }
  };
  const writer = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const h = await l.acquire({ start: 16384, end: 20480 }, 'exclusive');
      waits.push(performance.now() - t0);
      l.release(h);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all([...Array.from({ length: 8 }, reader), writer()]);
  waits.sort((a, b) => a - b);
  const pct = (q) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))];
  results.scenarioA = { writerGrants: waits.length, readerGrants, p50: pct(0.5), p99: pct(0.99), max: waits[waits.length - 1] };
  console.log(
    `scenario A (8 readers re-lock [0,64K) across setImmediate; writer [16K,20K) every 5 ms; ${dur} ms): ` +
      `writer grants ${waits.length}, reader grants ${readerGrants}, writer wait p50 ${pct(0.5).toFixed(3)} ms, ` +
      `p99 ${pct(0.99).toFixed(3)} ms, max ${waits[waits.length - 1].toFixed(3)} ms`,
  );
  const st = l.stats.snapshot();
  console.log(`  lock stats: waits ${st.waits}, p99 (histogram) ${st.p99WaitMs.toFixed(3)} ms, max ${st.maxWaitMs.toFixed(3)} ms`);
}

// ---------------------------------------------------------------- page cache hit path
class MemStore {
  pages = new Map();
  async readPage(i) {
    const b = this.pages.get(i);
    return b ? Buffer.from(b) : null;
  }
  async write(off, data) {
    for (let o = 0; o < data.length; ) {
      const i = Math.floor((off + o) / P);
      let p = this.pages.get(i);
      if (!p) this.pages.set(i, (p = Buffer.alloc(P)));
      const s = (off + o) % P;
      const n = Math.min(P - s, data.length - o);
      p.set(data.subarray(o, o + n), s);
      o += n;
    }
  }
  async punch() {}
  async allocate() {}
  async truncate() {}
  allocatedPages() {
    return this.pages.size;
  }
  nextDataPage() {
    return -1;
  }
  nextHolePage(f) {
    return f;
  }
  async sync() {}
  async destroy() {}
}
{
  const cache = new PageCache({ capacityPages: 1024 });
  const fd = createFileData(1, new MemStore(), { cache });
  await fd.write(0, Buffer.alloc(64 * P, 7));
  let sink = 0;
  results.hit4k = await nsPerOp('page-cache hit: read(0, 4096) of a cached page (sync)', N, (n) => {
    for (let i = 0; i < n; i++) sink += fd.read((i & 63) * P, P).length;
  });
  results.hitSub = await nsPerOp('page-cache hit: read(100, 1000) inside a page (zero-copy view)', N, (n) => {
    for (let i = 0; i < n; i++) sink += fd.read(((i & 63) * P) + 100, 1000).length;
  });
  results.hit128k = await nsPerOp('page-cache hit: read(0, 128 KiB) = 32 cached pages (copy)', N / 20, (n) => {
    for (let i = 0; i < n; i++) sink += fd.read(0, 32 * P).length;
  });
  const nc = createFileData(2, new MemStore(), { cache: new PageCache({ capacityPages: 0 }) });
  await nc.write(0, Buffer.alloc(64 * P, 7));
  results.noCache4k = await nsPerOp('capacity 0: await read(0, 4096) (shared lock + store read)', NA / 2, async (n) => {
    for (let i = 0; i < n; i++) sink += (await nc.read((i & 63) * P, P)).length;
  });
  const cache2 = new PageCache({ capacityPages: 16 });
  const mc = createFileData(3, new MemStore(), { cache: cache2 });
  await mc.write(0, Buffer.alloc(64 * P, 7));
  results.miss4k = await nsPerOp('miss + fill + evict: await read of a page not cached (16-page cache)', NA / 2, async (n) => {
    for (let i = 0; i < n; i++) sink += (await mc.read((i & 63) * P, P)).length;
  });
  const wt = createFileData(4, new MemStore(), { cache: new PageCache({ capacityPages: 1024 }) });
  results.write4k = await nsPerOp('write-through write(4 KiB) (exclusive lock + store + COW page)', NA / 2, async (n) => {
    const b = Buffer.alloc(P, 1);
    for (let i = 0; i < n; i++) await wt.write((i & 63) * P, b);
  });
  if (sink === 42) console.log('');
}

// ---------------------------------------------------------------- witness
{
  const w = new Witness();
  const iw = w.forInode(1);
  const data = Buffer.alloc(P, 9);
  results.witnessNoOverlap = await nsPerOp('witness check, no remembered range', N, (n) => {
    for (let i = 0; i < n; i++) iw.check(i * P, data);
  });
  const pg = Buffer.alloc(P, 3);
  await iw.record('punch', 2 ** 30, 64 * 1024, 2 ** 40, () => pg);
  results.witnessFar = await nsPerOp('witness check, 1 remembered range elsewhere', N, (n) => {
    for (let i = 0; i < n; i++) iw.check((i & 1023) * P, data);
  });
  results.witnessOverlap = await nsPerOp('witness check, write over a punched page (4 digests)', NA, (n) => {
    for (let i = 0; i < n; i++) iw.check(2 ** 30 + (i & 15) * P, data);
  });
  const rw = new Witness({ maxRanges: 4 });
  const riw = rw.forInode(1);
  results.witnessRecord64k = await nsPerOp('witness record of a 64 KiB punch (cached pages)', NA / 20, async (n) => {
    for (let i = 0; i < n; i++) await riw.record('punch', 0, 64 * 1024, 2 ** 40, () => pg);
  });
}

if (args.includes('--json')) console.log(JSON.stringify(results));
