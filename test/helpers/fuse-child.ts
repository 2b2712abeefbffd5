// Shared harness of the FUSE transport tests: a FUSE server script in a CHILD process that reports
// JSON-line events on stdout and takes JSON commands on stdin, client commands as child processes
// (cwd outside the mount), and a teardown that stops every server and removes every mount it left.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { isMounted, waitUnmounted } from '../../src/stress/mount.js';
import { ROOT } from './run.js';

export type Ev = Record<string, unknown> & { ev: string };

export interface FuseChild {
  child: ChildProcess;
  mnt: string;
  events: Ev[];
  stderr: () => string;
  send(cmd: Record<string, unknown>): void;
  waitEv(pred: (e: Ev) => boolean, what: string, timeoutMs?: number): Promise<Ev>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The server's first event, {ev: 'ready', ...}. */
  ready: Ev;
}

export const mountedAt = isMounted;
export const pollUnmounted = (mnt: string, timeoutMs = 10_000) => waitUnmounted(mnt, timeoutMs);

export class FuseChildren {
  private readonly started: FuseChild[] = [];
  private readonly dirs: string[] = [];

  /** A fresh temp dir, removed by teardown() (unless something is still mounted on it). */
  async newDir(prefix: string): Promise<string> {
    const d = await mkdtemp(path.join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }

  /** Runs `node script mnt ...args` and waits for its 'ready' event. */
  async start(script: string, mnt: string, args: string[], cwd: string): Promise<FuseChild> {
    const child = spawn(process.execPath, [script, mnt, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const events: Ev[] = [];
    let err = '';
    const waiters: { pred: (e: Ev) => boolean; resolve: (e: Ev) => void }[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: Ev;
      try {
        e = JSON.parse(line) as Ev;
      } catch {
        return;
      }
      events.push(e);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.pred(e)) {
          waiters[i]!.resolve(e);
          waiters.splice(i, 1);
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    const s: FuseChild = {
      child,
      mnt,
      events,
      stderr: () => err,
      send: (cmd) => child.stdin!.write(JSON.stringify(cmd) + '\n'),
      waitEv: (pred, what, timeoutMs = 20_000) => {
        const found = events.find(pred);
        if (found) return Promise.resolve(found);
        return new Promise<Ev>((resolve, reject) => {
          const t = setTimeout(
            () => reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events).slice(0, 2000)}; stderr: ${err.slice(-2000)}`)),
            timeoutMs,
          );
          waiters.push({
            pred,
            resolve: (e) => {
              clearTimeout(t);
              resolve(e);
            },
          });
          void exited.then(({ code, signal }) => {
            clearTimeout(t);
            reject(new Error(`server exited (${code ?? signal}) while waiting for ${what}; stderr: ${err.slice(-3000)}`));
          });
        });
      },
      exited,
      ready: undefined as unknown as Ev,
    };
    this.started.push(s);
    s.ready = await s.waitEv((e) => e.ev === 'ready', 'ready');
    return s;
  }

  /** SIGTERM every server started (SIGKILL after 10 s), lazy-unmount what stayed, remove the dirs. */
  async teardown(): Promise<void> {
    for (const s of this.started.splice(0)) {
      if (s.child.exitCode === null && s.child.signalCode === null) {
        s.child.kill('SIGTERM');
        const t = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
        await s.exited;
        clearTimeout(t);
      }
      if (!(await pollUnmounted(s.mnt, 10_000))) spawnSync('umount', ['-l', s.mnt]);
    }
    for (const d of this.dirs.splice(0)) if (!(await mountedAt(d))) await rm(d, { recursive: true, force: true });
  }
}

export interface ClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A client command as a child process (cwd outside any mount), killed after timeoutMs; `.child` to signal it. */
export function runClient(cmd: string, args: string[], timeoutMs = 30_000): Promise<ClientRun> & { child: ChildProcess } {
  const child = spawn(cmd, args, { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<ClientRun>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return Object.assign(done, { child });
}

/** The addon must exist; dist/ is (re)built when missing or older than src/fuse (tsc emits despite type errors elsewhere). */
export async function ensureFuseBuilt(): Promise<void> {
  const addon = path.join(ROOT, 'build', 'Release', 'faultline_fuse.node');
  const distIndex = path.join(ROOT, 'dist', 'fuse', 'index.js');
  if (!existsSync(addon)) throw new Error(`${addon} is missing: build the addon with "npm rebuild" (node-gyp)`);
  const srcDir = path.join(ROOT, 'src', 'fuse');
  const newest = Math.max(...readdirSync(srcDir).map((f) => statSync(path.join(srcDir, f)).mtimeMs));
  if (!existsSync(distIndex) || statSync(distIndex).mtimeMs < newest) {
    await runClient(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.json')], 120_000);
  }
  if (!existsSync(distIndex)) throw new Error('dist/fuse/index.js missing: run npx tsc -p tsconfig.json');
}
