// The two FUSE loop modes (MountOptions.loop): 'uv' (the JS thread reads /dev/fuse from a libuv
// poll handle and calls handlers directly) and 'thread' (a native loop thread and a threadsafe
// function), plus FuseRequest.cheapSignal. The server runs in a CHILD process (a small script
// written to a temp dir, importing dist/); clients are child processes with a cwd outside the
// mount. Every test unmounts in its teardown and kills only the children it started.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FuseChildren, ensureFuseBuilt, pollUnmounted, runClient, type FuseChild } from './helpers/fuse-child.js';
import { FuseRequest } from '../src/fuse/session.js';
import { OP, REQ_SCRATCH_LEN } from '../src/fuse/constants.js';
import { RangeLock } from '../src/fs/range-lock.js';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const distIndex = path.join(root, 'dist', 'fuse', 'index.js');
const canRun =
  process.platform === 'linux' && existsSync('/dev/fuse') && spawnSync('pkg-config', ['--exists', 'fuse3']).status === 0;
// Under CI=true the FUSE tests must run: a missing /dev/fuse or libfuse3-dev is a failure, not a skip.
if (!canRun && process.env.CI === 'true') throw new Error('CI=true but /dev/fuse or libfuse3-dev (pkg-config fuse3) is missing: the FUSE tests must run in CI');

// The server: /big (ino 2, word i holds i), /data (3, read/write), /slow (4, replies only after
// awaiting a microtask and a nextTick), /stop (5, its READ tears the session down synchronously
// from inside the handler, then tries to reply), /gbig (6, same bytes as /big, answered with
// reply.dataV() of a 1-byte piece and 4 KiB pieces).
const SERVER = `
import { FuseSession } from ${JSON.stringify(pathToFileURL(distIndex).href)};
import readline from 'node:readline';
const [mnt, cfgText] = process.argv.slice(2);
const cfg = JSON.parse(cfgText);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const now = Date.now();
const big = Buffer.alloc(cfg.bigSize);
for (let i = 0; i < cfg.bigSize; i += 4) big.writeUInt32LE(i / 4, i);
const files = new Map([
  [2, { name: 'big', content: big, mode: 0o100444 }],
  [3, { name: 'data', content: Buffer.alloc(0), mode: 0o100644 }],
  [4, { name: 'slow', content: Buffer.from('slow reply\\n'), mode: 0o100444 }],
  [5, { name: 'stop', content: Buffer.from('never\\n'), mode: 0o100444 }],
  [6, { name: 'gbig', content: big, mode: 0o100444 }],
]);
let gatherChecked = false;
const byName = new Map([...files].map(([ino, f]) => [f.name, ino]));
const attr = (ino) => {
  if (ino === 1) return { ino, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, atimeMs: now, mtimeMs: now, ctimeMs: now };
  const f = files.get(ino);
  return { ino, mode: f.mode, nlink: 1, uid: 0, gid: 0, size: f.content.length, atimeMs: now, mtimeMs: now, ctimeMs: now };
};
let reads = 0;
let session;
const ops = {
  lookup(req, reply) {
    const ino = req.parent === 1 ? byName.get(req.name) : undefined;
    if (ino === undefined) return reply.error(2);
    reply.entry({ ino, attr: attr(ino), attrTimeout: 1, entryTimeout: 1 });
  },
  getattr(req, reply) {
    if (req.ino !== 1 && !files.has(req.ino)) return reply.error(2);
    reply.attr(attr(req.ino), 1);
  },
  setattr(req, reply) {
    const f = files.get(req.ino);
    if (req.set.size !== undefined) {
      const n = Buffer.alloc(req.set.size);
      f.content.copy(n);
      f.content = n;
    }
    reply.attr(attr(req.ino), 1);
  },
  open(req, reply) {
    reply.open(req.ino, { keepCache: false });
  },
  release(req, reply) {
    reply.ok();
  },
  flush(req, reply) {
    reply.ok();
  },
  async read(req, reply) {
    reads++;
    const f = files.get(req.ino);
    const slice = () => f.content.subarray(req.off, Math.min(f.content.length, req.off + req.size));
    if (f.name === 'slow') {
      await null;
      await new Promise((r) => process.nextTick(r));
      await Promise.resolve();
      return reply.data(slice());
    }
    if (f.name === 'gbig') {
      if (!gatherChecked) {
        gatherChecked = true;
        let err = 'no-throw';
        try {
          reply.dataV([Buffer.alloc(req.size), Buffer.alloc(1)]); // one byte too many: refused, not consumed
        } catch (e) {
          err = e.constructor.name;
        }
        emit({ ev: 'gather-check', err, sent: reply.sent });
      }
      const end = Math.min(f.content.length, req.off + req.size);
      const bufs = [];
      for (let o = req.off; o < end; ) {
        const n = bufs.length === 0 ? 1 : Math.min(4096, end - o);
        bufs.push(f.content.subarray(o, o + n));
        o += n;
      }
      return reply.dataV(bufs);
    }
    if (f.name === 'stop') {
      session._exitTeardown();
      reply.data(slice());
      emit({ ev: 'stopped', sent: reply.sent, mounted: session.mounted });
      return;
    }
    reply.data(slice());
  },
  write(req, reply) {
    const f = files.get(req.ino);
    const end = req.off + req.data.length;
    if (end > f.content.length) {
      const n = Buffer.alloc(end);
      f.content.copy(n);
      f.content = n;
    }
    req.data.copy(f.content, req.off);
    reply.written(req.data.length);
  },
};
session = await FuseSession.mount(mnt, ops, { loop: cfg.loop, autoInvalData: false, handleSignals: true, requestTimeoutMs: 20000, log: (l) => process.stderr.write(l + '\\n') });
emit({ ev: 'ready', loop: session.loop, pid: process.pid });
void session.closed.then(() => emit({ ev: 'closed' }));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.cmd === 'ping') emit({ ev: 'pong', seq: c.seq, reads, stats: session.stats() });
  if (c.cmd === 'exit') process.exit(0);
});
`;

let work = '';
let serverScript = '';
const children = new FuseChildren();
const startServer = async (cfg: Record<string, unknown>): Promise<FuseChild> => {
  const mnt = await children.newDir('fl-fuse-loop-');
  return children.start(serverScript, mnt, [JSON.stringify({ bigSize: 1 << 20, ...cfg })], tmpdir());
};
const run = runClient;

beforeAll(async () => {
  if (!canRun) return;
  await ensureFuseBuilt();
  work = await mkdtemp(path.join(tmpdir(), 'fl-fuse-loop-work-'));
  serverScript = path.join(work, 'server.mjs');
  await writeFile(serverScript, SERVER);
}, 180_000);

afterEach(() => children.teardown());

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!canRun).each(['uv', 'thread'] as const)('FUSE loop mode %s', (loop) => {
  it('serves concurrent reads and large writes byte-exactly, and unmounts on SIGTERM', async () => {
    const s = await startServer({ loop });
    expect(s.ready.loop).toBe(loop);
    // Expected content of /big, and a 3 MiB + 123 byte write payload.
    const expected = Buffer.alloc(1 << 20);
    for (let i = 0; i < expected.length; i += 4) expected.writeUInt32LE(i / 4, i);
    const bigRef = path.join(work, `big-${loop}`);
    await writeFile(bigRef, expected);
    const payload = Buffer.alloc(3 * (1 << 20) + 123);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 12)) & 0xff;
    const payRef = path.join(work, `payload-${loop}`);
    await writeFile(payRef, payload);

    // Several readers at once (readahead and async reads keep several READs outstanding).
    const readers = await Promise.all(
      ['big', 'big', 'big', 'gbig', 'gbig'].map((name) => run('cmp', [bigRef, path.join(s.mnt, name)])),
    );
    for (const r of readers) expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(await s.waitEv((e) => e.ev === 'gather-check', 'gather-check')).toMatchObject({ err: 'RangeError', sent: false });
    const dd = await run('dd', [`if=${payRef}`, `of=${path.join(s.mnt, 'data')}`, 'bs=1M', 'conv=fsync'], 60_000);
    expect(dd.code).toBe(0);
    expect(await run('cmp', [payRef, path.join(s.mnt, 'data')])).toMatchObject({ code: 0, stderr: '' });

    s.send({ cmd: 'ping', seq: 1 });
    const pong = await s.waitEv((e) => e.ev === 'pong', 'pong');
    expect(pong.reads as number).toBeGreaterThan(0);
    expect((pong.stats as { outstanding: number; handlerErrors: number }).outstanding).toBe(0);
    expect((pong.stats as { handlerErrors: number }).handlerErrors).toBe(0);

    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
    expect(await pollUnmounted(s.mnt)).toBe(true);
  }, 120_000);

  it('an async handler that finishes in microtasks and nextTicks is answered without another wake-up', async () => {
    const s = await startServer({ loop });
    const r = await run('cat', [path.join(s.mnt, 'slow')], 15_000);
    expect(r).toMatchObject({ code: 0, stdout: 'slow reply\n' });
  }, 60_000);

  it('a synchronous teardown from inside a handler fails the request, unmounts, and the process lives on', async () => {
    const s = await startServer({ loop });
    const r = await run('cat', [path.join(s.mnt, 'stop')], 15_000);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const stopped = await s.waitEv((e) => e.ev === 'stopped', 'stopped');
    expect(stopped).toMatchObject({ sent: true, mounted: false }); // dropped as late, not thrown
    await s.waitEv((e) => e.ev === 'closed', 'closed');
    expect(await pollUnmounted(s.mnt)).toBe(true);
    s.send({ cmd: 'ping', seq: 2 });
    const pong = await s.waitEv((e) => e.ev === 'pong', 'pong after teardown');
    expect((pong.stats as { outstanding: number }).outstanding).toBe(0);
    s.send({ cmd: 'exit' });
    const ex = await s.exited;
    expect(ex).toEqual({ code: 0, signal: null });
    expect(s.stderr()).not.toMatch(/AddressSanitizer|Segmentation|Assertion/);
  }, 60_000);
});

describe('FuseRequest.cheapSignal', () => {
  const mk = () => new FuseRequest(1 << 16, OP.read, new Float64Array(REQ_SCRATCH_LEN), undefined, undefined, undefined);

  it('creates no AbortController until a listener is added, and mirrors aborted/reason', () => {
    const req = mk();
    const sig = req.cheapSignal;
    expect(sig.aborted).toBe(false);
    expect(() => sig.throwIfAborted()).not.toThrow();
    expect(req._ac).toBeUndefined();
    const reason = new Error('FUSE_INTERRUPT');
    req._abort(reason);
    expect(sig.aborted).toBe(true);
    expect(sig.reason).toBe(reason);
    expect(() => sig.throwIfAborted()).toThrow(reason);
    expect(req._ac).toBeUndefined();
    expect(req.signal.aborted).toBe(true); // the real signal, made later, is aborted too
  });

  it('listeners reach the real signal; removed listeners are not called', () => {
    const req = mk();
    const sig = req.cheapSignal;
    const calls: string[] = [];
    const a = () => calls.push('a');
    const b = () => calls.push('b');
    sig.addEventListener('abort', a, { once: true });
    sig.addEventListener('abort', b);
    sig.removeEventListener('abort', b);
    expect(req._ac).toBeDefined();
    expect(req.cheapSignal).toBe(req.signal); // once materialised, the real one is handed out
    req._abort(new Error('x'));
    expect(calls).toEqual(['a']);
  });

  it('cancels a range-lock wait on interrupt, like the real AbortSignal', async () => {
    const lock = new RangeLock();
    const held = await lock.acquire({ start: 0, end: 4096 }, 'exclusive');
    const req = mk();
    const waiting = lock.acquire({ start: 0, end: 4096 }, 'shared', req.cheapSignal);
    req._abort(Object.assign(new Error('FUSE_INTERRUPT'), { code: 'EINTR' }));
    await expect(waiting).rejects.toMatchObject({ code: 'EINTR' });
    lock.release(held);
    // Nothing is left queued: a new exclusive request is granted at once.
    const again = await lock.acquire({ start: 0, end: 4096 }, 'exclusive');
    lock.release(again);
  });
});
