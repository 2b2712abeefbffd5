// Builds native-tests/ and runs the C unit tests and the stress programs on tmpfs (/dev/shm) and on
// the local disk (a temp dir under os.tmpdir(); ext4 on the dev machine). Short runs (2 s): they
// check verdicts and that every enabled operation kind ran, never timings.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const nt = path.join(root, 'native-tests');
const bin = (p: string) => path.join(nt, 'bin', p);
const execFileP = promisify(execFile);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 90_000, env?: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// the JSON report schema (native-tests/README.md), the parts the tests use
interface Report {
  program: string;
  verdict: 'clean' | 'violations' | 'vacuous' | 'error';
  exit_code: number;
  seed: number;
  config: Record<string, string | number>;
  env: { kernel: string; fstype: string; mount_options: string };
  duration_s: number;
  ops: Record<string, number>;
  checks: Record<string, number>;
  legal: Record<string, number>;
  violations: Record<string, number>;
  violations_total: number;
  stale_by: Record<string, number>;
  violation_samples: Array<{ kind: string; class: string; detail: string }>;
  skipped: { checks: Record<string, number>; roles: Array<{ role: string; reason: string }> };
}

let tmp: string;
let shm: string;
let disk: string;

async function stress(prog: string, args: string[], dir: string, name: string, timeoutMs = 90_000) {
  const json = path.join(tmp, `${name}.json`);
  const r = await run(bin(prog), ['--json', json, ...args, dir], timeoutMs);
  let rep: Report | undefined;
  if (fs.existsSync(json)) rep = JSON.parse(fs.readFileSync(json, 'utf8')) as Report;
  return { r, rep };
}

function explain(r: Run) {
  return `exit ${r.code} signal ${r.signal}\n${r.stdout}\n${r.stderr}`;
}

beforeAll(async () => {
  await execFileP('make', ['-s', '-C', nt], { maxBuffer: 16 << 20 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fl-native-'));
  disk = path.join(tmp, 'disk');
  fs.mkdirSync(disk);
  shm = fs.mkdtempSync('/dev/shm/fl-native-');
}, 180_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  if (shm) fs.rmSync(shm, { recursive: true, force: true });
});

describe('C oracle unit tests', () => {
  it('pass normally and under ASan/UBSan (make check)', async () => {
    const r = await run('make', ['-s', '-C', nt, 'check'], 300_000);
    expect(r.code, explain(r)).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('test_oracle:'));
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/test_oracle: \d{3,} checks, 0 failures/);
  }, 300_000);
});

describe('mmap_punch', () => {
  const fsCases = [
    ['tmpfs', () => shm],
    ['local disk', () => disk],
  ] as const;

  for (const [label, dir] of fsCases) {
    it(`is clean on ${label}, with every enabled kind executed`, async () => {
      const { r, rep } = await stress(
        'mmap_punch',
        ['-d', '2', '--seed', '11', '--writers', '1', '--readers', '1', '--churn', '1'],
        dir(),
        `clean-${label.replace(' ', '-')}`,
      );
      expect(rep, explain(r)).toBeDefined();
      expect(rep!.verdict, explain(r)).toBe('clean');
      expect(r.code).toBe(0);
      expect(rep!.violations_total).toBe(0);
      for (const k of ['mmap_cycles', 'mmap_reads', 'mmap_stores', 'preads', 'punch', 'truncate_down', 'truncate_up', 'pwrite', 'fadvise', 'madvise'])
        expect(rep!.ops[k], `ops.${k}`).toBeGreaterThan(0);
      const zeroSkipped = rep!.skipped.roles.some((x) => x.role === 'zeroer');
      if (!zeroSkipped) expect(rep!.ops.zero).toBeGreaterThan(0);
      else expect(rep!.env.fstype).not.toBe('ext4'); // ext4 supports ZERO_RANGE
      expect(rep!.checks.unit_reads).toBeGreaterThan(1000);
      expect(rep!.checks.final_units).toBeGreaterThan(0);
      expect(rep!.seed).toBe(11);
      expect(rep!.env.kernel).toBe(os.release());
      expect(rep!.config.unit_size).toBe(1024);
    }, 120_000);
  }

  it('is clean with -P (roles as processes sharing the logs)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-P', '-d', '2', '-u', '4096'], shm, 'procs');
    expect(rep?.verdict, explain(r)).toBe('clean');
    expect(rep!.config.mode).toBe('processes');
    expect(rep!.ops.punch).toBeGreaterThan(0);
    expect(rep!.ops.mmap_reads).toBeGreaterThan(0);
  }, 120_000);

  it('detects a punch logged but not done (STALE by punch)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-d', '2', '--inject', 'punch-skip:0.05'], shm, 'inj-punch');
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.verdict).toBe('violations');
    expect(rep!.ops.injected).toBeGreaterThan(0);
    expect(rep!.violations.STALE).toBeGreaterThan(0);
    expect(rep!.stale_by.punch).toBeGreaterThan(0);
  }, 120_000);

  it('detects a truncate one page further than logged (SIGBUS inside EOF / lost write)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-d', '2', '--inject', 'trunc-further:0.1'], disk, 'inj-trunc');
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.ops.injected).toBeGreaterThan(0);
    expect(rep!.violations.SIGBUS_INSIDE_EOF + rep!.violations.LOST_WRITE, explain(r)).toBeGreaterThan(0);
  }, 120_000);

  it('detects a pwrite logged but skipped (LOST_WRITE / STALE by pwrite)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-d', '2', '--writers', '1', '--inject', 'pwrite-skip:0.02'], shm, 'inj-pwrite');
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.ops.injected).toBeGreaterThan(0);
    expect(rep!.violations.LOST_WRITE + rep!.stale_by.pwrite, explain(r)).toBeGreaterThan(0);
    // nothing but the injected kinds
    const other = Object.entries(rep!.violations).filter(([k, v]) => v > 0 && !['LOST_WRITE', 'STALE', 'TORN_ILLEGAL', 'FINAL_MISMATCH'].includes(k));
    expect(other, explain(r)).toEqual([]);
  }, 120_000);

  it('reports a stuck operation as HANG and exits 1 (watchdog)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-d', '30', '--hang-timeout', '1', '--inject', 'hang:1'], shm, 'hang', 60_000);
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.violations.HANG).toBeGreaterThan(0);
    expect(rep!.duration_s).toBeLessThan(25);
    expect(r.stderr).toMatch(/HANG: .*pending operations/);
  }, 60_000);

  it('calls a run with no punch vacuous (exit 2)', async () => {
    const { r, rep } = await stress('mmap_punch', ['-d', '1', '--punchers', '0', '--zeroers', '0'], shm, 'vacuous');
    expect(r.code, explain(r)).toBe(2);
    expect(rep!.verdict).toBe('vacuous');
  }, 60_000);

  it('rejects bad usage with exit 2', async () => {
    const r = await run(bin('mmap_punch'), ['--unit', '3000', shm]);
    expect(r.code).toBe(2);
    const h = await run(bin('mmap_punch'), ['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/--inject/);
  });

  it('leaves no test file behind', () => {
    expect(fs.readdirSync(shm).filter((f) => f.startsWith('faultline-'))).toEqual([]);
    expect(fs.readdirSync(disk).filter((f) => f.startsWith('faultline-'))).toEqual([]);
  });
});

describe('punch_seq', () => {
  for (const [label, dir] of [['tmpfs', () => shm], ['local disk', () => disk]] as const) {
    for (const unit of ['1024', '4096']) {
      it(`is exact and clean on ${label} (unit ${unit})`, async () => {
        const { r, rep } = await stress('punch_seq', ['-u', unit], dir(), `seq-${label.replace(' ', '-')}-${unit}`);
        expect(r.code, explain(r)).toBe(0);
        expect(rep!.verdict).toBe('clean');
        expect(rep!.ops.punch).toBeGreaterThan(0);
        expect(rep!.legal.sigbus_read).toBeGreaterThan(0); // truncation made pages past EOF fault
        expect(r.stdout).toMatch(/\[truncate-subpage\] .* ok/);
        expect(r.stdout).not.toMatch(/FAIL/);
      });
    }
  }

  it('flags post-EOF data on tmpfs when told it is forbidden', async () => {
    const { r, rep } = await stress('punch_seq', ['--post-eof', 'forbid'], shm, 'seq-posteof');
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.violations.POST_EOF_DATA).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/\[eof-tail-store-then-extend\] after extend .* FAIL/);
  });
});

describe('fault_around', () => {
  for (const [label, dir] of [['tmpfs', () => shm], ['local disk', () => disk]] as const) {
    it(`is clean on ${label}`, async () => {
      const { r, rep } = await stress('fault_around', ['-d', '2'], dir(), `fa-${label.replace(' ', '-')}`);
      expect(r.code, explain(r)).toBe(0);
      expect(rep!.ops.truncate_down).toBeGreaterThan(0);
      expect(rep!.ops.punch).toBeGreaterThan(0);
      expect(rep!.legal.sigbus_read).toBeGreaterThan(0);
      if (rep!.config.pagemap === 'yes') expect(rep!.checks.pagemap_checks).toBeGreaterThan(0);
    }, 60_000);
  }

  it('detects pages left mapped past EOF (truncations logged but skipped)', async () => {
    const { r, rep } = await stress('fault_around', ['-d', '1', '--inject', 'trunc-skip:0.2'], shm, 'fa-inj');
    expect(r.code, explain(r)).toBe(1);
    expect(rep!.violations.MISSING_SIGBUS).toBeGreaterThan(0);
  }, 60_000);
});

describe('mmap_probe', () => {
  it('sees SIGBUS beyond the EOF page and zeros in the EOF page tail after truncation', async () => {
    const f = path.join(shm, 'probe.dat');
    fs.writeFileSync(f, Buffer.alloc(3 * 4096, 0x41));
    const r = await run(bin('mmap_probe'), ['--prefault', '--truncate', '5000', '-m', '12288', f, '0', '4999', '5000', '8184', '8192']);
    expect(r.code, explain(r)).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const by = (o: number) => lines.find((x) => x.offset === o);
    expect(by(0).result).toBe('ok');
    expect(by(0).first_bytes).toBe('4141414141414141');
    expect(by(4999).first_bytes.slice(0, 2)).toBe('41');
    expect(by(5000).zero).toBe(true);
    expect(by(8184).result).toBe('ok'); // the last 8 bytes of the EOF page
    expect(by(8184).zero).toBe(true);
    expect(by(8192).result).toBe('sigbus');
    expect(by(8192).fault_offset).toBe(8192);
    expect(lines.at(-1).summary).toBe(true);
    expect(lines.at(-1).file_size).toBe(5000);
    fs.rmSync(f);
  });
});
