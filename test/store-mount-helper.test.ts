// The mount(8) helper scripts/mount.fuse.faultline: it starts a detached daemon on a --store, waits
// for its ready line, and `umount MNT` makes the daemon exit (after closing the store cleanly).
// Run directly from scripts/ (paths from the environment), and through `mount -t fuse.faultline`
// when the helper is installed in /sbin (scripts/install-mount-helper.sh).

import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMounted } from '../src/stress/mount.js';
import { ROOT, fuseAvailable, run } from './helpers/run.js';

const FUSE = fuseAvailable();
const HELPER = `${ROOT}scripts/mount.fuse.faultline`;
const INSTALLED = existsSync('/sbin/mount.fuse.faultline');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
async function waitDead(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

async function setup() {
  const base = await mkdtemp(join(tmpdir(), 'fl-helper-'));
  const mnt = join(base, 'mnt');
  const logs = join(base, 'logs');
  await mkdir(mnt);
  const env = { FAULTLINE_NODE: process.execPath, FAULTLINE_CLI: `${ROOT}dist/cli.js`, FAULTLINE_LOG_DIR: logs };
  const logFile = join(logs, `mount-${mnt.replaceAll('/', '_')}.log`);
  const daemonPid = async (): Promise<number> => Number(/\(pid (\d+),/.exec(await readFile(logFile, 'utf8'))?.[1]);
  cleanups.push(async () => {
    if (await isMounted(mnt)) await run('umount', ['-l', mnt]);
    const pid = await daemonPid().catch(() => NaN);
    if (Number.isInteger(pid) && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(base, { recursive: true, force: true });
  });
  return { base, mnt, store: join(base, 'store'), env, logFile, daemonPid };
}

describe.skipIf(!FUSE)('mount.fuse.faultline', () => {
  it('mounts a store detached, translates -o options, and umount makes the daemon exit', async () => {
    const t = await setup();
    const r = await run('bash', [HELPER, t.store, t.mnt, '-o', 'rw,nosuid,nodev,relatime,cache_pages=64,capacity=64M'], { env: t.env });
    expect(r.code, r.stderr).toBe(0);
    expect(await isMounted(t.mnt)).toBe(true);
    const log = await readFile(t.logFile, 'utf8');
    expect(log).toMatch(/mount \S+ --cache-pages 64 --capacity 64M --store /);
    const pid = await t.daemonPid();
    expect(alive(pid)).toBe(true);
    await writeFile(join(t.mnt, 'f'), 'persisted');
    const u = await run('umount', [t.mnt]);
    expect(u.code, u.stderr).toBe(0);
    expect(await waitDead(pid, 15_000)).toBe(true);
    expect(await readdir(t.store)).toContain('clean'); // the store was closed cleanly

    // Mounting again finds the file; a bad option fails with the daemon's message and mounts nothing.
    const bad = await run('bash', [HELPER, t.store, t.mnt, '-o', 'no_such_knob=1'], { env: t.env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown option '--no-such-knob'/);
    expect(await isMounted(t.mnt)).toBe(false);
    const ro = await run('bash', [HELPER, t.store, t.mnt, '-o', 'ro'], { env: t.env });
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/no read-only mode/);
    const again = await run('bash', [HELPER, 'testdev', t.mnt, '-o', `source=${t.store}`], { env: t.env });
    expect(again.code, again.stderr).toBe(0);
    expect(await readFile(join(t.mnt, 'f'), 'utf8')).toBe('persisted');
    const pid2 = await t.daemonPid();
    expect((await run('umount', [t.mnt])).code).toBe(0);
    expect(await waitDead(pid2, 15_000)).toBe(true);
  }, 60_000);

  it('mount -t fuse.faultline STORE MNT and umount MNT (installed helper)', async () => {
    // mount(8) looks for /sbin/mount.fuse.faultline: install it for this test when it is not there
    // (and remove it again afterwards), so that the real mount -t path runs on a fresh CI machine.
    if (!INSTALLED) {
      const inst = await run('bash', [`${ROOT}scripts/install-mount-helper.sh`]);
      expect(inst.code, inst.stderr).toBe(0);
      cleanups.push(async () => {
        await run('bash', [`${ROOT}scripts/install-mount-helper.sh`, '--uninstall']);
      });
    }
    const t = await setup();
    const r = await run('mount', ['-t', 'fuse.faultline', t.store, t.mnt], { env: { FAULTLINE_LOG_DIR: t.env.FAULTLINE_LOG_DIR } });
    expect(r.code, r.stderr).toBe(0);
    expect(await isMounted(t.mnt)).toBe(true);
    const pid = await t.daemonPid();
    await writeFile(join(t.mnt, 'g'), 'x');
    expect((await run('umount', [t.mnt])).code).toBe(0);
    expect(await waitDead(pid, 15_000)).toBe(true);
    expect(await isMounted(t.mnt)).toBe(false);
  }, 60_000);
});
