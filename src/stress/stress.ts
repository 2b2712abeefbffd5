// `faultline stress`: run scenario presets against a fresh faultline mount (one per scenario, with
// the user's mount options plus what the scenario needs) or against a directory, aggregate the
// programs' schema-1 reports into one JSON file, print a summary table.
// Exit status like the programs: 1 if any run found violations, else 2 if any run was a set-up
// error or vacuous, else 0.

import { mkdir, writeFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { MountOptions } from '../daemon/options.js';
import { ProgressLine, formatRate } from './progress.js';
import { collectEnv, describeMount, makeWorkDir, runScenario, type RunEnv, type RunRecord, type TargetSpec } from './run.js';
import { findScenario, type Scenario } from './scenarios.js';

export interface StressOptions {
  scenarios: string[];
  /** A directory to run in instead of a fresh faultline mount. */
  target?: string;
  mount: Partial<MountOptions>;
  duration: number;
  seed: number;
  json?: string;
  extraArgs: string[];
  quiet?: boolean;
  keepReports?: boolean;
}

export interface StressResult {
  tool: 'faultline stress';
  schema: 1;
  started: string;
  env: RunEnv;
  runs: RunRecord[];
  exitCode: number;
}

export function exitCodeOf(runs: RunRecord[]): number {
  if (runs.some((r) => r.violations_total > 0 || r.verdict === 'violations')) return 1;
  if (runs.some((r) => r.exitCode !== 0 || r.verdict !== 'clean')) return 2;
  return 0;
}

/** A plain text table with left-aligned columns. */
export function textTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

export function violationSummary(r: RunRecord): string {
  const kinds = Object.entries(r.violations).map(([k, v]) => `${k}=${v}`);
  const by = Object.entries(r.stale_by).map(([k, v]) => `${k}:${v}`);
  return kinds.length ? kinds.join(' ') + (by.length ? ` (stale by ${by.join(' ')})` : '') : '';
}

export async function atomicWriteJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.tmp.${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

export async function runStress(o: StressOptions, out: NodeJS.WritableStream = process.stdout): Promise<StressResult> {
  const scenarios: Scenario[] = o.scenarios.map(findScenario);
  const env = await collectEnv();
  const work = await makeWorkDir();
  const progress = new ProgressLine();
  const runs: RunRecord[] = [];
  const started = new Date().toISOString();
  let interrupted = false;
  const onSig = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSig);
  try {
    for (const [i, s] of scenarios.entries()) {
      if (interrupted) break;
      const target: TargetSpec = o.target ? { kind: 'dir', dir: resolve(o.target), label: 'dir' } : { kind: 'faultline', mount: o.mount };
      const seed = o.seed + i;
      const label = `[${i + 1}/${scenarios.length}] ${s.name}`;
      progress.status(`${label}: starting${target.kind === 'faultline' ? ' the faultline daemon' : ''}`);
      const rec = await runScenario(s, target, { duration: o.duration, seed, workDir: work.dir, extraArgs: o.extraArgs, onProgress: progress.for(label, o.duration), verbose: true });
      progress.clear();
      runs.push(rec);
      if (!o.quiet) {
        out.write(`${s.name}: ${rec.verdict} (exit ${rec.exitCode}) ${rec.violations_total} violations${rec.first_violation_s != null ? `, first after ${rec.first_violation_s.toFixed(2)} s` : ''}; ${formatRate(rec.ops_per_s)} ops/s over ${rec.duration_s.toFixed(1)} s on ${rec.fstype}${rec.witness?.resurrections ? `; daemon witness: ${rec.witness.resurrections} punched units written back late` : ''}\n`);
        if (rec.error) out.write(`  error: ${rec.error}\n`);
        for (const smp of rec.samples.slice(0, 3)) out.write(`  FAIL ${smp}\n`);
      }
    }
  } finally {
    process.removeListener('SIGINT', onSig);
    if (!o.keepReports) await work.remove();
  }
  const result: StressResult = { tool: 'faultline stress', schema: 1, started, env, runs, exitCode: exitCodeOf(runs) };
  out.write('\n' + stressTable(runs));
  out.write(`kernel ${env.kernel}, libfuse ${env.libfuse ?? '?'}, faultline ${env.faultline}${o.target ? `, target ${o.target}` : `, mount: ${describeMount(o.mount)}`}\n`);
  if (interrupted) out.write('interrupted: the remaining scenarios did not run\n');
  if (o.json) {
    await atomicWriteJson(o.json, result);
    out.write(`JSON: ${resolve(o.json)}\n`);
  }
  return result;
}

export function stressTable(runs: RunRecord[]): string {
  return textTable(
    ['scenario', 'program', 'fs', 'seed', 'dur s', 'ops/s', 'verdict', 'viol', 'first s', 'witness', 'details'],
    runs.map((r) => [
      r.scenario,
      r.program,
      r.fstype,
      String(r.seed),
      r.duration_s.toFixed(1),
      formatRate(r.ops_per_s),
      r.verdict,
      String(r.violations_total),
      r.first_violation_s != null ? r.first_violation_s.toFixed(2) : '-',
      r.witness ? String(r.witness.resurrections) : '-',
      r.error ? `error: ${r.error}` : violationSummary(r),
    ]),
  );
}
