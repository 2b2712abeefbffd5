// Starting and stopping a faultline daemon in its own process, for the stress orchestrator,
// validate, bench and the integration tests. The daemon never runs in the caller's process: a
// caller that touches the mount synchronously would otherwise deadlock against itself.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toMountArgs, type MountOptions } from '../daemon/options.js';
import { readMountInfo } from '../fuse/preflight.js';

// The compiled CLI, from src/stress/ (under vitest) and from dist/stress/ alike.
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const READY = /^faultline: mounted on (.+) \(pid (\d+), control (.+)\)$/;

export interface MountHandle {
  mountpoint: string;
  pid: number;
  socket: string;
  /** Everything the daemon wrote to stderr so far (bounded), for failure messages. */
  stderr(): string;
  /** SIGTERM, wait for a clean exit and the mount to disappear; SIGKILL + lazy unmount on timeout. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL the daemon (crash test); auto_unmount removes the mount. */
  kill(): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Mount points currently in /proc/self/mountinfo (unescaped). */
export async function mountPoints(): Promise<Set<string>> {
  return new Set((await readMountInfo()).map((m) => m.mountPoint));
}

export async function isMounted(path: string): Promise<boolean> {
  return (await mountPoints()).has(path);
}

/** Polls until `path` is no longer a mount point; false if it still is after `ms`. */
export async function waitUnmounted(path: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await isMounted(path))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !(await isMounted(path));
}

function lazyUnmount(path: string): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn('umount', ['-l', path], { stdio: 'ignore' });
    p.on('error', () => resolve());
    p.on('exit', () => resolve());
  });
}

export interface StartOptions {
  /** Directory to mount on; a fresh temp dir (removed by stop()) when absent. */
  mountpoint?: string;
  /** Extra environment for the daemon (e.g. FAULTLINE_RUN_DIR). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the ready line. */
  timeoutMs?: number;
  /** Inherit the daemon's stderr instead of capturing it. */
  inheritStderr?: boolean;
}

export async function startMount(options: Partial<MountOptions> = {}, start: StartOptions = {}): Promise<MountHandle> {
  const ownDir = !start.mountpoint;
  const mountpoint = start.mountpoint ?? (await mkdtemp(join(tmpdir(), 'faultline-mnt-')));
  const child: ChildProcess = spawn(process.execPath, [CLI, 'mount', mountpoint, ...toMountArgs(options)], {
    stdio: ['ignore', 'pipe', start.inheritStderr ? 'inherit' : 'pipe'],
    env: { ...process.env, ...start.env },
    cwd: '/',
  });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    err += s;
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );

  const ready = await new Promise<{ pid: number; socket: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`faultline mount did not become ready in ${start.timeoutMs ?? 20000} ms\n${err}`)), start.timeoutMs ?? 20000);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      out += s;
      for (const line of out.split('\n')) {
        const m = READY.exec(line.trim());
        if (m) {
          clearTimeout(timer);
          resolve({ pid: Number(m[2]), socket: m[3]! });
          return;
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`faultline mount exited (${signal ?? code}) before it was ready:\n${err.trim()}`));
    });
  }).catch(async (e: unknown) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    if (await isMounted(mountpoint)) await lazyUnmount(mountpoint);
    if (ownDir) await rmdir(mountpoint).catch(() => undefined);
    throw e;
  });
  // Keep draining stdout so the daemon never blocks on a full pipe.
  child.stdout!.resume();

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  const cleanup = async () => {
    if (await isMounted(mountpoint)) {
      if (!(await waitUnmounted(mountpoint, 3000))) await lazyUnmount(mountpoint);
    }
    if (ownDir) await rmdir(mountpoint).catch(() => undefined);
  };
  return {
    mountpoint,
    pid: ready.pid,
    socket: ready.socket,
    exited,
    stderr: () => err,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
        const res = await exited;
        clearTimeout(timer);
        await cleanup();
        return res;
      })()),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await cleanup();
    },
  };
}
