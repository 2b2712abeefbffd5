// Server-side changes through the control socket, seen by a live mapping in another process:
// with notify the mapping reads the new bytes; with bug mode no-notify it keeps the stale ones
// (proving the test can see the difference). Plus the ctl CLI, the trace, and socket permissions.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startMount, type MountHandle } from '../src/stress/mount.js';
import { ControlClient } from '../src/control/client.js';
import { ROOT, fuseAvailable, run } from './helpers/run.js';

const FUSE = fuseAvailable();
const CLI = join(ROOT, 'dist/cli.js');

interface Holder {
  cmd(line: string): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** Starts test/fixtures/mmap-holder.cjs on FILE and waits until it has faulted every page in. */
async function holder(file: string, mapLen: number): Promise<Holder> {
  const p: ChildProcess = spawn(process.execPath, [join(ROOT, 'test/fixtures/mmap-holder.cjs'), file, String(mapLen)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.on('exit', (code, signal) => r({ code, signal })));
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const next = () =>
    Promise.race([
      new Promise<string>((r) => (lines.length ? r(lines.shift()!) : waiters.push(r))),
      exited.then((e) => {
        throw new Error(`holder exited (${e.signal ?? e.code})`);
      }),
    ]);
  expect(JSON.parse(await next())).toMatchObject({ ready: true });
  return {
    cmd: async (line) => {
      p.stdin!.write(line + '\n');
      return JSON.parse(await next()) as Record<string, unknown>;
    },
    exited,
    kill: () => p.kill('SIGKILL'),
  };
}

describe.skipIf(!FUSE)('server-side changes and the control socket', () => {
  let m: MountHandle;
  let ctl: ControlClient;
  beforeAll(async () => {
    m = await startMount();
    ctl = await ControlClient.forMount(m.mountpoint);
  });
  afterAll(async () => {
    ctl?.close();
    await m?.stop();
  });

  it('server-side punch with notify: a live mapping reads zeros; with no-notify it keeps stale data', async () => {
    const f = join(m.mountpoint, 'mapped');
    await writeFile(f, Buffer.alloc(65536, 0x61));
    const h = await holder(f, 65536);
    try {
      expect(await h.cmd('read 8192 4096')).toMatchObject({ all: 0x61 });
      const r = await ctl.request('punch', { path: '/mapped', offset: 8192, length: 4096 });
      expect(r).toMatchObject({ changed: true, notify: { sent: true, rc: 0, offset: 8192, length: 4096 } });
      expect(await h.cmd('read 8192 4096')).toMatchObject({ zero: true });
      expect(await h.cmd('read 12288 4096')).toMatchObject({ all: 0x61 });

      await ctl.request('set', { knob: 'bug.no-notify', value: 'on' });
      const r2 = await ctl.request('punch', { path: 'mapped', offset: 16384, length: 4096 });
      expect(r2).toMatchObject({ notify: { sent: false } });
      // The kernel was not told: the mapping still shows the punched bytes ...
      expect(await h.cmd('read 16384 4096')).toMatchObject({ all: 0x61 });
      // ... while the daemon has zeros, as an explicit eviction then shows.
      await ctl.request('set', { knob: 'bug.no-notify', value: 'off' });
      await ctl.request('evict-kernel-cache', { path: 'mapped', offset: 16384, length: 4096 });
      expect(await h.cmd('read 16384 4096')).toMatchObject({ zero: true });
    } finally {
      h.kill();
    }
  });

  it('server-side write and zero reach a live mapping; server-side truncate makes pages past EOF SIGBUS', async () => {
    const f = join(m.mountpoint, 'mapped2');
    await writeFile(f, Buffer.alloc(65536, 0x62));
    const h = await holder(f, 65536);
    try {
      await ctl.request('write', { path: 'mapped2', offset: 4096, data: Buffer.alloc(4096, 0x63).toString('base64') });
      expect(await h.cmd('read 4096 4096')).toMatchObject({ all: 0x63 });
      await ctl.request('zero', { path: 'mapped2', offset: 0, length: 100 });
      expect(await h.cmd('read 0 100')).toMatchObject({ zero: true });
      expect(await h.cmd('read 100 100')).toMatchObject({ all: 0x62 });
      const t = await ctl.request('truncate', { path: 'mapped2', size: 8192 });
      expect(t).toMatchObject({ size: 8192, notify: { sent: true } });
      expect(await h.cmd('size')).toMatchObject({ size: 8192 });
      expect(await h.cmd('read 4096 4096')).toMatchObject({ all: 0x63 });
      h.cmd('read 40960 16').catch(() => undefined);
      expect(await h.exited).toMatchObject({ signal: 'SIGBUS' });
    } finally {
      h.kill();
    }
  });

  it('answers bad requests with errors and keeps serving', async () => {
    await expect(ctl.request('punch', { path: 'nope', offset: 0, length: 1 })).rejects.toMatchObject({ errno: 'ENOENT' });
    await expect(ctl.request('punch', { path: 'mapped', offset: -1, length: 1 })).rejects.toThrow(/non-negative/);
    await expect(ctl.request('set', { knob: 'bug.nonsense', value: 'on' })).rejects.toThrow(/valid modes: no-range-lock/);
    await expect(ctl.request('frobnicate')).rejects.toThrow(/unknown command/);
    expect(await ctl.request('status')).toMatchObject({ mountpoint: m.mountpoint, pid: m.pid });
  });

  it('ctl CLI: status, set, stats and the trace', async () => {
    const st = await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'set', 'delay.read-fill-before-store', '1@0.5']);
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse((await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'status'])).stdout) as Record<string, unknown>;
    expect(status.delays).toEqual({ 'read-fill-before-store': { ms: 1, prob: 0.5 } });
    expect(status.init).toMatchObject({ granted: { writebackCache: false, autoInvalData: false } });
    await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'set', 'delay.read-fill-before-store', 'off']);

    const traceFile = join('/tmp', `fl-trace-${process.pid}.jsonl`);
    expect((await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'trace', 'on', traceFile])).code).toBe(0);
    await writeFile(join(m.mountpoint, 'traced'), Buffer.alloc(2048, 0x41));
    await readFile(join(m.mountpoint, 'traced'));
    expect((await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'trace', 'off'])).code).toBe(0);
    const trace = (await readFile(traceFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const w = trace.find((t) => t.ev === 'data' && t.op === 'write');
    expect(w).toMatchObject({ off: 0, len: 2048 });
    expect((w!.units as string[]).length).toBe(2);
    expect(trace.some((t) => t.ev === 'req' && t.op === 'create')).toBe(true);
    expect(trace.some((t) => t.ev === 'rep' && t.op === 'write')).toBe(true);

    const stats = JSON.parse((await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'stats'])).stdout) as Record<string, any>;
    expect(stats.requests.ops.write.count).toBeGreaterThan(0);
    expect(stats.requests.notifies.sent).toBeGreaterThan(0);
    expect(stats.fuse).toHaveProperty('watchdogExpired', 0);
    expect(stats.cache).toHaveProperty('hits');
    expect(stats.lock).toHaveProperty('waits');

    const bad = await run(process.execPath, [CLI, 'ctl', m.mountpoint, 'set', 'bug.bogus', 'on']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/valid modes/);
    const notMounted = await run(process.execPath, [CLI, 'ctl', '/tmp', 'status']);
    expect(notMounted.code).toBe(2);
    expect(notMounted.stderr).toMatch(/not a faultline mount/);
  });

  it('the control socket is mode 0600 and refuses other users', async () => {
    const s = await stat(m.socket);
    expect(s.mode & 0o777).toBe(0o600);
    const other = await new Promise<string>((resolve) => {
      const p = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(m.socket)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`], {
        uid: 65534,
        gid: 65534,
        cwd: '/',
      });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      p.on('exit', () => resolve(out.trim()));
    });
    expect(other).toBe('EACCES');
  });
});
