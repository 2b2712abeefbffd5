// Peers of `faultline bench`: the filesystems measured side by side, and the process plumbing to
// start and stop them. A peer is {name, start(mnt) -> {file, stop()}}; every peer runs in its own
// process (tmpfs: the kernel), is mounted on a fresh temp dir, and stop() kills it by PID and makes
// sure the mount is gone, whatever happened before.

import { spawn, type ChildProcess } from 'node:child_process';
import { access, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';

export type BenchWorkload = 'randread' | 'seqread' | 'seqwrite' | 'punch' | 'mapfault' | 'mapfault-random' | 'meta';

export type PeerKind = 'tmpfs' | 'c-ref' | 'fuse-native' | 'faultline' | 'custom';

/** A running peer: the bench file on its mount, and how to take it down. */
export interface PeerInstance {
  /** The mount point (the directory the meta workload creates files in). */
  mountpoint: string;
  /** The bench file (created and filled by the bench if it does not exist). */
  file: string;
  /** PID of the server process (absent for tmpfs). */
  pid?: number;
  /** Versions and settings worth recording (libfuse version, options, …). */
  info: Record<string, string | number | boolean>;
  /** Kill the server by PID, make sure the mount is gone, remove the mount point. Never throws. */
  stop(): Promise<void>;
}

export interface PeerContext {
  fileName: string;
  fileSize: number;
  repoRoot: string;
  binDir: string;
  log: (line: string) => void;
}

export interface BenchPeer {
  name: string;
  kind: PeerKind;
  description: string;
  /** Workloads this peer cannot run, with the reason shown in its cell ("n/a: …"). */
  unsupported?: Partial<Record<BenchWorkload, string>>;
  /** null when the peer can run here, else why not (shown as "not available: …"). */
  available?(ctx: PeerContext): Promise<string | null>;
  /** Mount on `mnt` (an existing empty directory) and return once the mount serves requests. */
  start(mnt: string, ctx: PeerContext): Promise<PeerInstance>;
}

// ---------------------------------------------------------------- process helpers

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command to completion (never in a mount: cwd is /). SIGKILL after timeoutMs. */
export function runCommand(cmd: string, args: string[], timeoutMs = 60_000, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: null, signal: null, stdout: '', stderr: String(e), timedOut: false });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      if (stderr.length > 1 << 16) stderr = stderr.slice(-(1 << 15));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ code: null, signal: null, stdout, stderr: stderr + String(e), timedOut });
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal: sig, stdout, stderr, timedOut });
    });
  });
}

import { isMounted } from './mount.js';
export { mountPoints, isMounted } from './mount.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitUnmounted(path: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await isMounted(path))) return true;
    await sleep(25);
  }
  return !(await isMounted(path));
}

/** Make sure nothing is mounted on `mnt` any more (lazy unmount as the last resort), then rmdir it. */
export async function forceUnmountAndRemove(mnt: string, log: (l: string) => void): Promise<void> {
  try {
    if (await isMounted(mnt)) {
      if (!(await waitUnmounted(mnt, 2000))) {
        log(`bench: ${mnt} still mounted after its server exited: umount -l`);
        const r = await runCommand('umount', ['-l', mnt], 10_000);
        if (r.code !== 0) await runCommand('fusermount3', ['-uz', mnt], 10_000);
      }
    }
  } catch (e) {
    log(`bench: unmounting ${mnt}: ${String(e)}`);
  }
  await rmdir(mnt).catch(() => undefined);
}

export interface ServerProcess {
  pid: number;
  match: RegExpExecArray;
  stderr(): string;
  /** SIGTERM, wait, SIGKILL if needed, then make sure the mount is gone and remove `mnt`. */
  stop(): Promise<void>;
}

/**
 * Start a FUSE server process and wait for its ready line on stdout. On any failure the process is
 * killed, the mount removed, and the error (with the server's stderr) thrown.
 */
export async function startServerProcess(opts: {
  label: string;
  cmd: string;
  args: string[];
  ready: RegExp;
  mnt: string;
  log: (line: string) => void;
  timeoutMs?: number;
}): Promise<ServerProcess> {
  const { label, cmd, args, ready, mnt, log } = opts;
  const child = spawn(cmd, args, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    if (err.length > 1 << 16) err = err.slice(-(1 << 15));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => {
      err += String(e);
      resolve({ code: null, signal: null });
    });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (alive() && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const killer = setTimeout(() => {
          if (alive() && child.pid !== undefined) {
            log(`bench: ${label} (pid ${child.pid}) ignored SIGTERM for 8 s: SIGKILL`);
            try {
              process.kill(child.pid, 'SIGKILL');
            } catch {
              /* gone */
            }
          }
        }, 8000);
        await exited;
        clearTimeout(killer);
      }
      await forceUnmountAndRemove(mnt, log);
    })());

  let out = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const timer = setTimeout(() => reject(new Error(`${label} did not print its ready line within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      for (const line of out.split('\n')) {
        const m = ready.exec(line.trim());
        if (m) {
          clearTimeout(timer);
          resolve(m);
          return;
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${signal ?? `code ${code}`}) before it was ready`));
    });
  }).catch(async (e: unknown) => {
    await stop();
    const tail = err.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${e instanceof Error ? e.message : String(e)}${tail ? `: ${tail}` : ''}`);
  });
  // keep draining stdout so the server never blocks on a full pipe
  child.stdout!.resume();
  return { pid: child.pid!, match, stderr: () => err, stop };
}

// ---------------------------------------------------------------- bdi readahead

/** The bdi read_ahead_kb file of the filesystem mounted on `mnt`, or null (tmpfs has no bdi). */
export async function bdiReadaheadPath(mnt: string): Promise<string | null> {
  const st = await stat(mnt);
  const dev = st.dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  const p = `/sys/class/bdi/${major}:${minor}/read_ahead_kb`;
  try {
    await access(p, fsConstants.R_OK);
    return p;
  } catch {
    return null;
  }
}

export async function readaheadKb(mnt: string, set?: number): Promise<number | null> {
  const p = await bdiReadaheadPath(mnt);
  if (!p) return null;
  if (set !== undefined) await writeFile(p, `${set}\n`);
  return Number((await readFile(p, 'utf8')).trim());
}

// ---------------------------------------------------------------- the peers

export function tmpfsPeer(): BenchPeer {
  return {
    name: 'tmpfs',
    kind: 'tmpfs',
    description: 'tmpfs, no FUSE: the page cache is the storage (upper bound; its reads are never uncached)',
    async available() {
      return process.getuid?.() === 0 ? null : 'mounting tmpfs needs root';
    },
    async start(mnt, ctx) {
      const size = Math.ceil((ctx.fileSize * 2 + (64 << 20)) / 4096) * 4096;
      const r = await runCommand('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'faultline-bench', mnt], 20_000);
      if (r.code !== 0) throw new Error(`mount -t tmpfs failed: ${r.stderr.trim() || r.signal}`);
      let stopped: Promise<void> | undefined;
      return {
        mountpoint: mnt,
        file: join(mnt, ctx.fileName),
        info: { mount: 'tmpfs' },
        stop: () =>
          (stopped ??= (async () => {
            const u = await runCommand('umount', [mnt], 20_000);
            if (u.code !== 0) ctx.log(`bench: umount ${mnt}: ${u.stderr.trim()}`);
            await forceUnmountAndRemove(mnt, ctx.log);
          })()),
      };
    },
  };
}

/**
 * The C reference server. A second instance (name 'c-ref-b', the bench's noiseFloor option) measures
 * the same server twice in one run: its ratio to 'c-ref' is the run's noise floor.
 */
export function refServerPeer(name = 'c-ref'): BenchPeer {
  return {
    name,
    kind: 'c-ref',
    description:
      name === 'c-ref'
        ? 'C libfuse3 low-level server, one thread (native-tests/bench/ref_server.c): the limit for a libfuse server here'
        : 'a second instance of the C reference server: its ratio to c-ref is the noise floor of this run',
    async available(ctx) {
      try {
        await access(join(ctx.binDir, 'ref_server'), fsConstants.X_OK);
        return null;
      } catch {
        return `${join(ctx.binDir, 'ref_server')} not built (make -C native-tests/bench)`;
      }
    },
    async start(mnt, ctx) {
      const p = await startServerProcess({
        label: 'ref_server',
        cmd: join(ctx.binDir, 'ref_server'),
        args: ['--name', ctx.fileName, '--size', String(ctx.fileSize), '--die-with-parent', mnt],
        ready: /^ref_server: mounted on (.+) \(pid (\d+), libfuse (\S+)\)$/,
        mnt,
        log: ctx.log,
      });
      return {
        mountpoint: mnt,
        file: join(mnt, ctx.fileName),
        pid: p.pid,
        info: { libfuse: p.match[3]!, api: 'low-level', threads: 1, keep_cache: true },
        stop: p.stop,
      };
    },
  };
}

export function fuseNativePeer(): BenchPeer {
  const script = (ctx: PeerContext) => join(ctx.repoRoot, 'scripts', 'bench', 'fuse-native-peer.cjs');
  return {
    name: 'fuse-native',
    kind: 'fuse-native',
    description: 'Node peer on fuse-native 2.2.6 (libfuse 2 high-level path API, fuse_loop_mt; scripts/bench/fuse-native-peer.cjs)',
    unsupported: { punch: 'n/a: fuse-native has no fallocate' },
    async available(ctx) {
      try {
        await access(join(ctx.repoRoot, 'node_modules', 'fuse-native', 'package.json'));
      } catch {
        return 'fuse-native is not installed (optional dependency)';
      }
      try {
        await access(script(ctx));
      } catch {
        return `${script(ctx)} missing`;
      }
      return null;
    },
    async start(mnt, ctx) {
      const p = await startServerProcess({
        label: 'fuse-native-peer',
        cmd: process.execPath,
        args: [script(ctx), '--name', ctx.fileName, '--size', String(ctx.fileSize), '--die-with-parent', mnt],
        ready: /^fuse-native-peer: mounted on (.+) \(pid (\d+), fuse-native (\S+), (\S+)\)$/,
        mnt,
        log: ctx.log,
      });
      return {
        mountpoint: mnt,
        file: join(mnt, ctx.fileName),
        pid: p.pid,
        info: { 'fuse-native': p.match[3]!, libfuse: p.match[4]!, api: 'high-level', options: 'kernel_cache,big_writes,hard_remove' },
        stop: p.stop,
      };
    },
  };
}

export interface FaultlineVariant {
  name: string;
  /** Extra arguments after `mount <mnt>`. */
  args: string[];
  description?: string;
}

/** The default faultline peers: default config, and the daemon cache disabled (--cache-pages 0). */
export const DEFAULT_FAULTLINE_VARIANTS: FaultlineVariant[] = [
  { name: 'faultline', args: [], description: 'faultline daemon, default options' },
  { name: 'faultline-nocache', args: ['--cache-pages', '0'], description: 'faultline daemon, userspace page cache disabled (--cache-pages 0)' },
];

export function faultlinePeer(variant: FaultlineVariant, cliPath: string): BenchPeer {
  return {
    name: variant.name,
    kind: 'faultline',
    description: variant.description ?? `faultline daemon ${variant.args.join(' ')}`.trim(),
    async available() {
      try {
        await access(cliPath);
        return null;
      } catch {
        return `${cliPath} does not exist yet (build faultline: npx tsc -p tsconfig.json)`;
      }
    },
    async start(mnt, ctx) {
      const p = await startServerProcess({
        label: variant.name,
        cmd: process.execPath,
        args: [cliPath, 'mount', mnt, ...variant.args],
        ready: /^faultline: mounted on (.+) \(pid (\d+), control (.+)\)$/,
        mnt,
        log: ctx.log,
        timeoutMs: 30_000,
      });
      return {
        mountpoint: mnt,
        file: join(mnt, ctx.fileName),
        pid: p.pid,
        info: { args: variant.args.join(' ') || '(defaults)', control: p.match[3]! },
        stop: p.stop,
      };
    },
  };
}
