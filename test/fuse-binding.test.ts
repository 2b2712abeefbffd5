// Integration tests of the FUSE binding (src/native/faultline_fuse.c + src/fuse/). The server
// always runs in a CHILD process (test/fixtures/fuse-hello-server.mjs, which imports dist/);
// clients are child processes too (cat, stat, fallocate, sh), never run with a cwd inside the
// mount. Every test unmounts in its teardown and kills only the children it started.

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FuseChildren, ensureFuseBuilt, mountedAt, pollUnmounted, runClient, type FuseChild } from './helpers/fuse-child.js';

const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const fixture = path.join(root, 'test', 'fixtures', 'fuse-hello-server.mjs');

const haveLibfuseDev = spawnSync('pkg-config', ['--exists', 'fuse3']).status === 0;
const haveDevFuse = existsSync('/dev/fuse');
const canRun = process.platform === 'linux' && haveDevFuse && haveLibfuseDev;
// Under CI=true the FUSE tests must run: a missing /dev/fuse or libfuse3-dev is a failure, not a skip.
if (!canRun && process.env.CI === 'true') throw new Error('CI=true but /dev/fuse or libfuse3-dev (pkg-config fuse3) is missing: the FUSE tests must run in CI');

const children = new FuseChildren();
const newDir = () => children.newDir('fl-fuse-test-');
const startServer = async (cfg: Record<string, unknown> = {}, mnt?: string): Promise<FuseChild> =>
  children.start(fixture, mnt ?? (await newDir()), [JSON.stringify(cfg)], root);
const run = runClient;

afterEach(() => children.teardown());

beforeAll(async () => {
  if (canRun) await ensureFuseBuilt();
}, 180_000);

describe.skipIf(!canRun)('FUSE binding (child-process server)', () => {
  it('mounts with the negotiated INIT, serves stat/read/readdir, and reads back written data', async () => {
    const s = await startServer();
    const init = s.ready.init as Record<string, unknown> & { granted: Record<string, boolean>; wantNames: string[] };
    expect(init.protoMajor).toBe(7);
    expect(init.granted.autoInvalData).toBe(false); // chosen explicitly, libfuse would enable it
    expect(init.granted.writebackCache).toBe(false);
    expect(init.granted.atomicOTrunc).toBe(false);
    expect(init.granted.splice).toBe(false);
    expect(init.granted.asyncRead).toBe(true);
    expect(init.maxWrite).toBeGreaterThan(0);
    expect(await mountedAt(s.mnt)).toBe(true);

    const st = await run('stat', ['-c', '%s %F %a', path.join(s.mnt, 'hello')]);
    expect(st.stdout.trim()).toBe('12 regular file 444');
    expect((await run('cat', [path.join(s.mnt, 'hello')])).stdout).toBe('hello world\n');
    const ls = await run('ls', ['-a', s.mnt]);
    expect(ls.stdout.split('\n')).toEqual(expect.arrayContaining(['.', '..', 'hello', 'data', 'big']));

    const data = path.join(s.mnt, 'data');
    const w = await run('sh', ['-c', 'printf "0123456789abcdef" > "$1" && cat "$1" && truncate -s 4 "$1" && echo && cat "$1"', 'sh', data]);
    expect(w.stderr).toBe('');
    expect(w.stdout).toBe('0123456789abcdef\n0123');
    // Reading it back through a fresh process sees the same bytes the server stored.
    expect((await run('cat', [data])).stdout).toBe('0123');
    const big = await run('sh', ['-c', 'dd if="$1" bs=65536 skip=3 count=1 status=none | od -An -tx4 -N8', 'sh', path.join(s.mnt, 'big')]);
    // Word i of /big holds i: offset 196608 is word 49152 = 0xc000.
    expect(big.stdout.trim().split(/\s+/)).toEqual(['0000c000', '0000c001']);
  });

  it('applies INIT choices from mount options (writeback cache, auto_inval_data, atomic_o_trunc, readahead)', async () => {
    const s = await startServer({
      mountOptions: { writebackCache: true, autoInvalData: true, atomicOTrunc: true, asyncRead: false, maxReadahead: 65536, maxWrite: 131072 },
    });
    const init = s.ready.init as Record<string, number> & { granted: Record<string, boolean>; capable: number };
    expect(init.granted).toMatchObject({ writebackCache: true, autoInvalData: true, atomicOTrunc: true, asyncRead: false, splice: false });
    expect(init.maxReadahead).toBe(65536);
    expect(init.maxWrite).toBe(131072);
    // Everything granted was offered by the kernel.
    expect(init.want & ~init.capable).toBe(0);
    // With writeback cache the kernel buffers the write; the data still reaches the server.
    const data = path.join(s.mnt, 'data');
    const w = await run('sh', ['-c', 'printf abc > "$1" && sync "$1" && cat "$1"', 'sh', data]);
    expect(w.stdout).toBe('abc');
  });

  it('forwards fallocate punch with mode 0x3 and zero-range with 0x10', async () => {
    const s = await startServer();
    const f = path.join(s.mnt, 'falloc');
    const p = await run('fallocate', ['-p', '-o', '4096', '-l', '8192', f]);
    expect(p.code, p.stderr).toBe(0);
    const ev = await s.waitEv((e) => e.ev === 'fallocate', 'fallocate event');
    expect(ev).toMatchObject({ ino: 4, mode: 0x3, offset: 4096, length: 8192 });
    const z = await run('fallocate', ['-z', '-o', '0', '-l', '4096', f]);
    expect(z.code, z.stderr).toBe(0);
    await s.waitEv((e) => e.ev === 'fallocate' && e.mode === 0x10, 'zero-range fallocate');
  });

  it('answers fallocate with EOPNOTSUPP without a handler, and a second fallocate still reaches the daemon', async () => {
    const s = await startServer({ noFallocate: true, debug: true });
    const f = path.join(s.mnt, 'data');
    for (let i = 0; i < 2; i++) {
      const r = await run('fallocate', ['-p', '-o', '0', '-l', '4096', f]);
      expect(r.code).not.toBe(0);
      // fallocate(1) words EOPNOTSUPP for -p as "keep size mode is unsupported".
      expect(r.stderr).toMatch(/not supported|unsupported/i);
    }
    // ENOSYS would have made the kernel answer the second call itself (fc->no_fallocate).
    const seen = s.stderr().match(/^fuse> #\d+ fallocate /gm) ?? [];
    expect(seen.length).toBe(2);
    expect(s.stderr()).toMatch(/fuse< #\d+ fallocate error EOPNOTSUPP/);
  });

  it('delivers FUSE_INTERRUPT as an aborted signal when the client is SIGKILLed, and the request still gets one reply', async () => {
    const s = await startServer({ fallocateDelayMs: 60_000 });
    const client = run('fallocate', ['-p', '-o', '0', '-l', '4096', path.join(s.mnt, 'falloc')], 120_000);
    await s.waitEv((e) => e.ev === 'fallocate', 'fallocate start');
    client.child.kill('SIGKILL');
    const ab = await s.waitEv((e) => e.ev === 'fallocate-aborted', 'abort');
    expect(ab.reason).toBe('EINTR');
    const rep = await s.waitEv((e) => e.ev === 'fallocate-replied', 'reply');
    expect(rep).toMatchObject({ aborted: true, sent: true, again: 'threw' });
    const r = await client;
    expect(r.signal).toBe('SIGKILL'); // exits only once the daemon replied
    s.send({ cmd: 'stats' });
    const st = (await s.waitEv((e) => e.ev === 'stats', 'stats')).stats as Record<string, number>;
    expect(st.interrupts).toBeGreaterThanOrEqual(1);
    expect(st.outstanding).toBe(0);
  });

  it('watchdog: an unanswered READ gets EIO after the timeout, a late reply is logged and dropped, the daemon keeps serving', async () => {
    const s = await startServer({ timeoutMs: 1000, lateMs: 2500 });
    const hang = await run('cat', [path.join(s.mnt, 'hang')]);
    expect(hang.code).not.toBe(0);
    expect(hang.stderr).toMatch(/Input\/output error/);
    expect(s.stderr()).toMatch(/watchdog: read ino=5 unanswered after \d+\.\d+ s/);

    const late = await run('cat', [path.join(s.mnt, 'late')]);
    expect(late.stderr).toMatch(/Input\/output error/);
    const lr = await s.waitEv((e) => e.ev === 'late-replied', 'late reply');
    expect(lr).toMatchObject({ sent: true, aborted: true });
    expect(s.stderr()).toMatch(/late reply data\(\) to #\d+ \(read ino=8\) dropped/);

    expect((await run('cat', [path.join(s.mnt, 'hello')])).stdout).toBe('hello world\n');
    s.send({ cmd: 'stats' });
    const st = (await s.waitEv((e) => e.ev === 'stats', 'stats')).stats as Record<string, number>;
    // Each cat costs two expiries: the failed readahead READ is retried once by read_folio.
    expect(st.watchdogExpired).toBeGreaterThanOrEqual(2);
    expect(st.outstanding).toBe(0);
    expect(s.child.exitCode).toBe(null);
  });

  it('a second reply throws in the facade, and the raw addon rejects a used id', async () => {
    const s = await startServer();
    expect((await run('cat', [path.join(s.mnt, 'double')])).stdout).toBe('double\n');
    const d = await s.waitEv((e) => e.ev === 'double', 'double');
    expect(d.second).toMatch(/second reply data\(\) to request #\d+/);
    expect(d.raw).toBe('ERR_FUSE_STALE_REQUEST');
  });

  it('notify_inval_inode while a READ of the same page is outstanding does not deadlock the server', async () => {
    const s = await startServer();
    const reader = run('cat', [path.join(s.mnt, 'hold')], 60_000);
    await s.waitEv((e) => e.ev === 'read-held', 'held READ');
    s.send({ cmd: 'notify', ino: 6, off: 0, len: 0, seq: 1 });
    const sent = await s.waitEv((e) => e.ev === 'notify-sent', 'notify sent');
    // The notify is blocked in the kernel on the folio the held READ locked...
    expect(sent.pendingAfter100ms).toBe(true);
    // ...and the JS thread still answers.
    s.send({ cmd: 'ping', seq: 7 });
    await s.waitEv((e) => e.ev === 'pong' && e.seq === 7, 'pong while notify pending');
    expect(s.events.some((e) => e.ev === 'notify-done')).toBe(false);
    s.send({ cmd: 'release' });
    const done = await s.waitEv((e) => e.ev === 'notify-done', 'notify done');
    expect(done.rc).toBe(0);
    const r = await reader;
    expect(r, r.stderr).toMatchObject({ code: 0, signal: null });
    expect(r.stdout).toBe('o'.repeat(8192));
  });

  it('with keep_cache a server-side change stays invisible until notify_inval_inode, then a fresh read sees it', async () => {
    const s = await startServer();
    const f = path.join(s.mnt, 'cached');
    expect((await run('cat', [f])).stdout).toBe('old-content\n');
    s.send({ cmd: 'set', name: 'cached', text: 'new-content\n' });
    await s.waitEv((e) => e.ev === 'set-done', 'set');
    expect((await run('cat', [f])).stdout).toBe('old-content\n'); // served from the kernel's page cache
    s.send({ cmd: 'notify', ino: 10, off: 0, len: 0, seq: 2 });
    const done = await s.waitEv((e) => e.ev === 'notify-done' && e.seq === 2, 'notify');
    expect(done.rc).toBe(0);
    expect((await run('cat', [f])).stdout).toBe('new-content\n');
  });

  it('readdir and readdirplus send as many entries as fit and continue from the returned offsets', async () => {
    for (const plus of [false, true]) {
      const s = await startServer({ manyFiles: 3000, readdirplus: plus });
      const ls = await run('ls', ['-f', s.mnt]);
      const names = ls.stdout.split('\n').filter(Boolean);
      expect(names.length).toBe(3000 + 11 + 2); // many files + the 11 fixed ones + . and ..
      expect(new Set(names).size).toBe(names.length);
      expect(names).toContain('f2999');
      // The last (empty) call's event may arrive after ls exited.
      await s.waitEv((e) => (e.ev === 'readdir' || e.ev === 'readdirplus') && e.offered === 0, 'end of directory');
      // With readdirplus implemented, libfuse asks for READDIRPLUS_AUTO: the kernel uses
      // readdirplus for the first call and plain readdir after it. Follow the whole sequence.
      const calls = s.events.filter((e) => e.ev === 'readdir' || e.ev === 'readdirplus');
      if (plus) expect(calls[0]!.ev).toBe('readdirplus');
      else expect(calls.every((e) => e.ev === 'readdir')).toBe(true);
      // The list does not fit one kernel buffer: the first call sent only part of it...
      expect(calls.length).toBeGreaterThan(1);
      expect(calls[0]!.off).toBe(0);
      expect(calls[0]!.sent as number).toBeGreaterThan(0);
      expect(calls[0]!.sent as number).toBeLessThan(calls[0]!.offered as number);
      // ...and every later call started exactly where the previous one stopped, until the end.
      for (let i = 1; i < calls.length; i++) {
        expect(calls[i]!.off).toBe((calls[i - 1]!.off as number) + (calls[i - 1]!.sent as number));
      }
      expect(calls.at(-1)!.offered).toBe(0);
      const st = await run('stat', ['-c', '%s', path.join(s.mnt, 'f0123')]);
      expect(st.stdout.trim()).toBe('9');
      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
    }
  });

  it('handler errors become errno replies: errno property, async rejection, plain Error → EIO, wrong reply kind → EIO', async () => {
    const s = await startServer();
    const wr = await run('sh', ['-c', 'echo x > "$1"', 'sh', path.join(s.mnt, 'throws')]);
    expect(wr.stderr).toMatch(/Permission denied/);
    const rd = await run('cat', [path.join(s.mnt, 'throws')]);
    expect(rd.stderr).toMatch(/Input\/output error/);
    const wk = await run('cat', [path.join(s.mnt, 'wrongkind')]);
    expect(wk.stderr).toMatch(/Input\/output error/);
    const err = s.stderr();
    expect(err).toMatch(/fuse: open #\d+ ino=12 flags=0x\w+ failed, answering EACCES: no writing to \/throws/);
    expect(err).toMatch(/fuse: read #\d+ ino=12 .*failed, answering EIO: Error: plain error without errno/);
    expect(err).toMatch(/entry\(\) is not a valid reply to a read request/);
    expect((await run('cat', [path.join(s.mnt, 'hello')])).stdout).toBe('hello world\n');
    s.send({ cmd: 'stats' });
    const st = (await s.waitEv((e) => e.ev === 'stats', 'stats')).stats as Record<string, number>;
    expect(st.handlerErrors).toBeGreaterThanOrEqual(3);
    expect(st.outstanding).toBe(0);
  });

  it('notify_inval_entry drops a cached dentry after a server-side rename', async () => {
    const s = await startServer({ ttl: 3600 });
    const f = path.join(s.mnt, 'hello');
    expect((await run('stat', ['-c', '%i', f])).stdout.trim()).toBe('2');
    s.send({ cmd: 'rename', from: 'hello', to: 'hello2' });
    await s.waitEv((e) => e.ev === 'renamed', 'rename');
    // The kernel still trusts its cached dentry (entry timeout 3600 s).
    expect((await run('stat', ['-c', '%i', f])).stdout.trim()).toBe('2');
    s.send({ cmd: 'notifyEntry', parent: 1, name: 'hello', seq: 3 });
    expect((await s.waitEv((e) => e.ev === 'notify-done' && e.seq === 3, 'notify entry')).rc).toBe(0);
    const gone = await run('stat', ['-c', '%i', f]);
    expect(gone.stderr).toMatch(/No such file or directory/);
    expect((await run('cat', [path.join(s.mnt, 'hello2')])).stdout).toBe('hello world\n');
    // Not cached (never looked up): the kernel answers ENOENT, which resolves, never rejects.
    s.send({ cmd: 'notifyEntry', parent: 1, name: 'no-such-name', seq: 4 });
    expect((await s.waitEv((e) => e.ev === 'notify-done' && e.seq === 4, 'notify entry 2')).rc).toBe(-2);
  });

  it('notify_store puts data into the kernel page cache without a READ', async () => {
    const s = await startServer({ ttl: 3600 });
    const f = path.join(s.mnt, 'cached');
    expect((await run('cat', [f])).stdout).toBe('old-content\n');
    s.send({ cmd: 'store', ino: 10, off: 0, text: 'NEW', seq: 5 });
    expect((await s.waitEv((e) => e.ev === 'notify-done' && e.seq === 5, 'store')).rc).toBe(0);
    // The server still holds "old-content": what the client sees came from the store.
    expect((await run('cat', [f])).stdout).toBe('NEW-content\n');
  });

  it('kill -9 of the server leaves no mount behind (auto_unmount)', async () => {
    const s = await startServer();
    expect(await mountedAt(s.mnt)).toBe(true);
    s.child.kill('SIGKILL');
    await s.exited;
    expect(await pollUnmounted(s.mnt, 10_000)).toBe(true);
  });

  it('SIGTERM unmounts cleanly and the server exits 0', async () => {
    const s = await startServer();
    expect((await run('cat', [path.join(s.mnt, 'hello')])).stdout).toBe('hello world\n');
    s.child.kill('SIGTERM');
    const ex = await s.exited;
    expect(ex).toEqual({ code: 0, signal: null });
    expect(await mountedAt(s.mnt)).toBe(false);
    expect(s.stderr()).toMatch(/SIGTERM: unmounting/);
  });

  it('mount errors say what is wrong and how to fix it', async () => {
    const missing = path.join(await newDir(), 'nope');
    const bad = spawn(process.execPath, [fixture, missing, '{}'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => bad.on('exit', (c) => r(c)));
    expect(code).not.toBe(0);
    expect(err).toMatch(/mountpoint .*nope does not exist: create it first \(mkdir -p/);

    const file = path.join(await newDir(), 'file');
    await (await import('node:fs/promises')).writeFile(file, 'x');
    const nd = spawn(process.execPath, [fixture, file, '{}'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let err3 = '';
    nd.stderr.on('data', (d: Buffer) => (err3 += d.toString()));
    expect(await new Promise<number | null>((r) => nd.on('exit', (c) => r(c)))).not.toBe(0);
    expect(err3).toMatch(/mountpoint .*file is not a directory/);

    const s = await startServer();
    const again = spawn(process.execPath, [fixture, s.mnt, '{}'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let err2 = '';
    again.stderr.on('data', (d: Buffer) => (err2 += d.toString()));
    const code2 = await new Promise<number | null>((r) => again.on('exit', (c) => r(c)));
    expect(code2).not.toBe(0);
    expect(err2).toMatch(/is already a mount point \(fuse\.faultline/);
    // The first server is unaffected.
    expect((await run('cat', [path.join(s.mnt, 'hello')])).stdout).toBe('hello world\n');
  });
});
