// Async child processes for tests (never spawnSync: the mount under test may need this process's
// event loop... it does not, the daemon is separate, but a hung mount must not hang the runner).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = (name: string) => `${ROOT}native-tests/bin/${name}`;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: '/', env: { ...process.env, ...opts.env }, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) {
      p.stdin!.on('error', () => undefined); // the child may exit without reading
      p.stdin!.end(opts.input);
    }
  });
}

/** FUSE tests need /dev/fuse and root. Under CI=true they must run: missing either is a failure. */
export function fuseAvailable(): boolean {
  const ok = existsSync('/dev/fuse') && process.getuid?.() === 0;
  if (!ok && process.env.CI === 'true') {
    throw new Error('CI=true but /dev/fuse or root is missing: the FUSE tests must run in CI, not skip');
  }
  return ok;
}
