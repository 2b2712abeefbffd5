// server_punch without a faultline daemon: on a plain directory it must refuse (exit 2); against
// native-tests/tools/mock-ctl.mjs (a stand-in control socket that applies the server-side
// operations to a tmpfs file) it must find the socket the way PROTOCOL.md says, run clean, and
// catch a mock daemon that acknowledges punches it did not do. The faultline-mount runs are the
// lead's (they need the daemon).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const nt = path.join(root, 'native-tests');
const sp = path.join(nt, 'bin', 'server_punch');
const execFileP = promisify(execFile);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(sp, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

// FNV-1a 64 of the mountpoint's realpath, as PROTOCOL.md specifies
function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

async function startMock(sock: string, mockRoot: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(nt, 'tools', 'mock-ctl.mjs'), sock, mockRoot, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('error', reject);
    child.on('exit', (c) => reject(new Error(`mock exited ${c}`)));
  });
  return child;
}

function stopMock(c: ChildProcess | undefined) {
  if (c && c.exitCode === null && c.pid) process.kill(c.pid, 'SIGTERM');
}

let tmp: string;
let work: string;
let mocks: ChildProcess[] = [];

beforeAll(async () => {
  await execFileP('make', ['-s', '-C', nt], { maxBuffer: 16 << 20 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-sp-'));
  work = fs.mkdtempSync('/dev/shm/fl-sp-');
}, 180_000);

afterAll(() => {
  for (const m of mocks) stopMock(m);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('server_punch', () => {
  it('exits 2 with a clear message on a directory that is not a faultline mount', async () => {
    const runDir = path.join(tmp, 'empty-run');
    fs.mkdirSync(runDir);
    const r = await run(['-d', '1', work], { ...process.env, FAULTLINE_RUN_DIR: runDir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not on a faultline mount: no control socket/);
    expect(fs.readdirSync(work)).toEqual([]);
  });

  it('finds the socket by the mountpoint key and runs clean against a correct (mock) daemon', async () => {
    // /dev/shm is the mountpoint containing `work`; the mock serves paths relative to it
    const mountpoint = fs.realpathSync('/dev/shm');
    const runDir = path.join(tmp, 'run');
    fs.mkdirSync(runDir);
    const sock = path.join(runDir, `${fnv1a64(mountpoint)}.sock`);
    const mock = await startMock(sock, mountpoint);
    mocks.push(mock);
    const json = path.join(tmp, 'sp.json');
    const r = await run(['-d', '2', '--json', json, work], { ...process.env, FAULTLINE_RUN_DIR: runDir });
    stopMock(mock);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(rep.program).toBe('server_punch');
    expect(rep.verdict).toBe('clean');
    expect(rep.config.control_socket).toBe(sock);
    expect(rep.config.relative_path).toMatch(new RegExp(`^${path.basename(work)}/faultline-server_punch\\.\\d+\\.dat$`));
    for (const k of ['server_punch', 'server_truncate', 'server_write', 'mmap_reads', 'preads'])
      expect(rep.ops[k], k).toBeGreaterThan(0);
    expect(rep.checks.unit_reads).toBeGreaterThan(1000);
  }, 60_000);

  it('catches a daemon that acknowledges punches it did not do (STALE by server-punch)', async () => {
    const sock = path.join(tmp, 'bad.sock');
    const mock = await startMock(sock, fs.realpathSync('/dev/shm'), ['--fail-punch-rate', '0.3']);
    mocks.push(mock);
    const json = path.join(tmp, 'sp-bad.json');
    const r = await run(['-d', '2', '--ctl', sock, '--json', json, work]);
    stopMock(mock);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(rep.violations.STALE).toBeGreaterThan(0);
    expect(rep.stale_by['server-punch']).toBeGreaterThan(0);
  }, 60_000);
});
