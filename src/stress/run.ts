// Running the C stress programs of native-tests/ against a target: a fresh faultline mount
// (started and stopped around the run with startMount) or any directory. The program always runs
// in a child process with cwd "/" and is watched asynchronously: nothing here touches the mount
// synchronously, so the caller can never deadlock against a daemon it started.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { release, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MOUNT_OPTIONS, toMountArgs, type MountOptions } from '../daemon/options.js';
import { ControlClient } from '../control/client.js';
import { VERSION } from '../version.js';
import { startMount, type MountHandle } from './mount.js';
import type { ProgramName, Scenario } from './scenarios.js';

export const NATIVE_BIN = fileURLToPath(new URL('../../native-tests/bin/', import.meta.url));

/** The parts of a schema-1 report (native-tests/README.md) the aggregator uses. */
export interface ProgramReport {
  program: string;
  version: string;
  schema: number;
  seed: number;
  argv: string;
  config: Record<string, unknown>;
  env: Record<string, unknown>;
  duration_s: number;
  ops: Record<string, number>;
  rates: Record<string, number>;
  checks: Record<string, number>;
  legal: Record<string, number>;
  violations: Record<string, number>;
  violations_total: number;
  stale_by: Record<string, number>;
  violation_samples: Array<Record<string, unknown>>;
  notes: string[];
  skipped: { roles: Array<{ role: string; reason: string }> };
  verdict: 'clean' | 'violations' | 'vacuous' | 'error';
  exit_code: number;
  error: string | null;
  /** Added by faultline stress's C change; absent from older binaries. */
  first_violation_s?: number | null;
  timeline?: { interval_s: number; t: number[]; ops: number[]; violations: number[] };
}

export interface Progress {
  t: number;
  ops: number;
  violations: number;
}

export interface ProgramRun {
  exitCode: number;
  report: ProgramReport | null;
  stdout: string;
  stderr: string;
  argv: string[];
  wallS: number;
}

export interface RunProgramOptions {
  program: ProgramName;
  args: string[];
  target: string;
  duration: number;
  seed: number;
  jsonPath: string;
  onProgress?: (p: Progress) => void;
  /** Kill the program after this long (default duration + 90 s: its own watchdog fires at 30 s). */
  killAfterS?: number;
}

const PROGRESS = /^PROGRESS t=([\d.]+) ops=(\d+) violations=(\d+)$/;

/** Run one C program; never rejects for a program failure (exit code and report say it). */
export function runProgram(o: RunProgramOptions): Promise<ProgramRun> {
  const bin = join(NATIVE_BIN, o.program);
  const argv = ['-q', '-d', String(o.duration), '-s', String(o.seed), '-j', o.jsonPath, ...o.args, o.target];
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', env: { ...process.env, FL_PROGRESS: '1' } });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      stdout += s;
      if (stdout.length > 1 << 20) stdout = stdout.slice(-(1 << 19));
    });
    child.stderr.on('data', (s: string) => {
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = PROGRESS.exec(line);
        if (m) o.onProgress?.({ t: Number(m[1]), ops: Number(m[2]), violations: Number(m[3]) });
        else {
          stderr += line + '\n';
          if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
        }
      }
    });
    const limit = (o.killAfterS ?? o.duration + 90) * 1000;
    const timer = setTimeout(() => {
      stderr += `faultline: ${o.program} still running after ${limit / 1000} s: killed\n`;
      child.kill('SIGKILL');
    }, limit);
    const finish = async (code: number) => {
      clearTimeout(timer);
      let report: ProgramReport | null = null;
      try {
        report = JSON.parse(await readFile(o.jsonPath, 'utf8')) as ProgramReport;
      } catch {
        report = null;
      }
      resolve({ exitCode: code, report, stdout, stderr: stderr + partial, argv: [bin, ...argv], wallS: (Date.now() - t0) / 1000 });
    };
    child.on('error', (e) => {
      stderr += `faultline: cannot run ${bin}: ${e.message} (build it with: make -C native-tests)\n`;
    });
    child.on('close', (code, signal) => void finish(code ?? (signal ? 2 : 2)));
  });
}

// ---------------------------------------------------------------------------------------------
// A scenario on a target

export type TargetSpec = { kind: 'faultline'; mount: Partial<MountOptions> } | { kind: 'dir'; dir: string; label?: string };

export interface Witness {
  resurrections: number;
  resurrectingWrites: number;
  rangesRecorded: number;
  writesChecked: number;
}

/** One scenario run: what `faultline stress --json` and the validate report store per row. */
export interface RunRecord {
  scenario: string;
  program: ProgramName;
  target: string;
  fstype: string;
  mountOptions: Partial<MountOptions> | null;
  mountArgs: string[] | null;
  argv: string[];
  seed: number;
  durationRequested: number;
  duration_s: number;
  wall_s: number;
  exitCode: number;
  verdict: string;
  violations_total: number;
  violations: Record<string, number>;
  stale_by: Record<string, number>;
  first_violation_s: number | null;
  ops_total: number;
  ops_per_s: number;
  ops: Record<string, number>;
  rates: Record<string, number>;
  checks: Record<string, number>;
  timeline: { t: number[]; ops: number[]; violations: number[] } | null;
  samples: string[];
  notes: string[];
  programVersion: string | null;
  witness: Witness | null;
  daemon: { faults?: unknown; notifies?: unknown; watchdogEio?: unknown } | null;
  error: string | null;
}

export interface RunScenarioOptions {
  duration: number;
  seed: number;
  /** Directory for the per-program JSON reports (kept: the aggregate points at them). */
  workDir: string;
  extraArgs?: string[];
  onProgress?: (p: Progress) => void;
  /** Keep the daemon's stderr tail in error messages. */
  verbose?: boolean;
}

function sumOps(ops: Record<string, number> | undefined): number {
  if (!ops) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(ops)) if (k !== 'injected' && typeof v === 'number') n += v;
  return n;
}

async function daemonStats(m: MountHandle): Promise<Record<string, unknown> | null> {
  let c: ControlClient | undefined;
  try {
    c = await ControlClient.connect(m.socket);
    return await Promise.race([
      c.request('stats'),
      new Promise<null>((r) => setTimeout(() => r(null), 5000)),
    ]);
  } catch {
    return null;
  } finally {
    c?.close();
  }
}

let runCounter = 0;

export async function runScenario(s: Scenario, target: TargetSpec, o: RunScenarioOptions): Promise<RunRecord> {
  const jsonPath = join(o.workDir, `${String(++runCounter).padStart(3, '0')}-${s.name}-${target.kind === 'dir' ? (target.label ?? 'dir') : 'faultline'}.json`);
  const mountOptions = target.kind === 'faultline' ? { ...target.mount, ...s.mount, seed: target.mount.seed ?? o.seed } : null;
  const rec: RunRecord = {
    scenario: s.name,
    program: s.program,
    target: target.kind === 'faultline' ? 'faultline' : target.dir,
    fstype: target.kind === 'faultline' ? 'fuse.faultline' : '',
    mountOptions,
    mountArgs: mountOptions ? toMountArgs(mountOptions) : null,
    argv: [],
    seed: o.seed,
    durationRequested: o.duration,
    duration_s: 0,
    wall_s: 0,
    exitCode: 2,
    verdict: 'error',
    violations_total: 0,
    violations: {},
    stale_by: {},
    first_violation_s: null,
    ops_total: 0,
    ops_per_s: 0,
    ops: {},
    rates: {},
    checks: {},
    timeline: null,
    samples: [],
    notes: [],
    programVersion: null,
    witness: null,
    daemon: null,
    error: null,
  };
  if (s.faultlineOnly && target.kind !== 'faultline') rec.notes.push(`${s.name} needs a faultline mount; on ${target.dir} the program refuses (exit 2)`);
  let mount: MountHandle | undefined;
  const t0 = Date.now();
  try {
    let dir: string;
    if (target.kind === 'faultline') {
      try {
        mount = await startMount(mountOptions!);
      } catch (e) {
        rec.error = `cannot start the faultline daemon: ${(e as Error).message}`;
        return rec;
      }
      dir = mount.mountpoint;
      rec.target = `faultline (${dir})`;
    } else dir = target.dir;
    const r = await runProgram({ program: s.program, args: [...s.args, ...(o.extraArgs ?? [])], target: dir, duration: o.duration, seed: o.seed, jsonPath, onProgress: o.onProgress });
    rec.argv = r.argv;
    rec.exitCode = r.exitCode;
    if (mount) {
      const st = await daemonStats(mount);
      if (st) {
        const w = st.witness as Partial<Witness> | undefined;
        if (w) rec.witness = { resurrections: w.resurrections ?? 0, resurrectingWrites: w.resurrectingWrites ?? 0, rangesRecorded: w.rangesRecorded ?? 0, writesChecked: w.writesChecked ?? 0 };
        rec.daemon = { faults: st.faults, notifies: (st.fuse as Record<string, unknown> | undefined)?.notifies };
      }
    }
    const rep = r.report;
    if (!rep) {
      rec.verdict = 'error';
      rec.error = `${s.program} wrote no report (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`;
      return rec;
    }
    rec.verdict = rep.verdict;
    rec.fstype = String(rep.env?.fstype ?? rec.fstype);
    rec.duration_s = rep.duration_s;
    rec.violations_total = rep.violations_total;
    rec.violations = Object.fromEntries(Object.entries(rep.violations).filter(([, v]) => v > 0));
    rec.stale_by = Object.fromEntries(Object.entries(rep.stale_by).filter(([, v]) => v > 0));
    rec.first_violation_s = rep.first_violation_s ?? null;
    rec.ops = Object.fromEntries(Object.entries(rep.ops).filter(([, v]) => v > 0));
    rec.rates = Object.fromEntries(Object.entries(rep.rates).filter(([, v]) => v > 0));
    rec.checks = Object.fromEntries(Object.entries(rep.checks).filter(([, v]) => v > 0));
    rec.ops_total = sumOps(rep.ops);
    rec.ops_per_s = rep.duration_s > 0 ? rec.ops_total / rep.duration_s : 0;
    rec.timeline = rep.timeline ? { t: rep.timeline.t, ops: rep.timeline.ops, violations: rep.timeline.violations } : null;
    rec.samples = rep.violation_samples.slice(0, 8).map((x) => String(x.detail ?? ''));
    rec.notes.push(...rep.notes, ...rep.skipped.roles.map((x) => `skipped ${x.role}: ${x.reason}`));
    rec.programVersion = `${rep.program} ${rep.version} (schema ${rep.schema})`;
    if (rep.error) rec.error = rep.error;
    if (r.exitCode !== rep.exit_code) rec.notes.push(`exit status ${r.exitCode} differs from the report's ${rep.exit_code}`);
    return rec;
  } finally {
    if (mount) {
      const res = await mount.stop();
      if (res.code !== 0 && res.code !== null) rec.notes.push(`daemon exited with status ${res.code}${o.verbose ? `: ${mount.stderr().trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      if (res.signal) rec.notes.push(`daemon ended by ${res.signal}`);
    }
    rec.wall_s = (Date.now() - t0) / 1000;
  }
}

// ---------------------------------------------------------------------------------------------
// Environment of a run

export interface RunEnv {
  faultline: string;
  kernel: string;
  kernelVersion: string;
  libfuse: string | null;
  node: string;
  nproc: number;
  host: string;
}

function capture(cmd: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], cwd: '/' });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => resolve(null));
    p.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}

export async function collectEnv(): Promise<RunEnv> {
  const [libfuse, kver, host] = await Promise.all([
    capture('pkg-config', ['--modversion', 'fuse3']),
    readFile('/proc/sys/kernel/version', 'utf8').then((s) => s.trim(), () => ''),
    readFile('/proc/sys/kernel/hostname', 'utf8').then((s) => s.trim(), () => ''),
  ]);
  return {
    faultline: VERSION,
    kernel: release(),
    kernelVersion: kver,
    libfuse,
    node: process.version,
    nproc: cpus().length,
    host,
  };
}

export async function makeWorkDir(prefix = 'faultline-stress-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The user-facing mount options that differ from the defaults, as `faultline mount` arguments. */
export function describeMount(o: Partial<MountOptions> | null): string {
  if (!o) return '-';
  const a = toMountArgs({ ...o, seed: DEFAULT_MOUNT_OPTIONS.seed });
  return a.length ? a.join(' ') : 'defaults';
}
