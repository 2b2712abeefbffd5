// `faultline validate`: the coherency matrix. Named scenarios × targets × mount configurations,
// each row with an expectation and a verdict:
//   negative  must be clean (tmpfs, local disk, faultline correct under each cache configuration)
//   positive  faultline with one bug mode: the targeting scenario must report it (DETECTED)
//   kernel    the two FUSE kernel findings: REPRODUCED / NOT REPRODUCED, never a tool failure
// Negative controls avoid the two kernel races on purpose (kernel-findings.md): page-aligned units
// whenever mmap stores meet punches, and no concurrent pread + pwrite with auto_inval_data in
// write-through mode. The racy configurations are the kernel rows.

import { mkdir, readFile } from 'node:fs/promises';
import { resolve, join } from 'node:path';
import type { MountOptions } from '../daemon/options.js';
import { compareRows, countChanges, outcomesOf, type ComparisonRow, type Group, type Status } from './compare.js';
import { ProgressLine, formatRate } from './progress.js';
import { renderHtml } from './report-html.js';
import { collectEnv, describeMount, makeWorkDir, runScenario, type RunEnv, type RunRecord, type TargetSpec } from './run.js';
import { findScenario } from './scenarios.js';
import { atomicWriteJson, textTable, violationSummary } from './stress.js';

export type TargetName = 'tmpfs' | 'disk' | 'faultline';

export interface MatrixRow {
  id: string;
  group: Group;
  title: string;
  scenario: string;
  target: TargetName;
  mount?: Partial<MountOptions>;
  bug?: string;
  /** A positive control no scenario is known to detect: NOT DETECTED is then XFAIL, not FAIL. */
  xfail?: string;
  /** Extra program arguments (e.g. --no-store-during-punch). */
  args?: string[];
  /** Seconds per profile; `quick` keeps the whole matrix near 2 minutes on 2 vCPUs. */
  quick: number;
  normal: number;
  why: string;
}

/** mmap stores never overlap a punch / zero range: keeps the kernel's punch races (finding 1 and its
 * page-aligned variant, row kern-store-during-punch) out of the controls. */
const NSP = ['--no-store-during-punch'];

/** More READ misses in the daemon (kernel cache churn, more readers) for the no-range-lock window. */
const CHURN = ['--mappers', '2', '--readers', '2', '--churn', '1'];

export const MATRIX: readonly MatrixRow[] = [
  // ---- negative controls -------------------------------------------------------------------
  { id: 'neg-tmpfs', group: 'negative', title: 'tmpfs, sub-page units', scenario: 'sub-page', target: 'tmpfs', quick: 2, normal: 15, why: 'a local filesystem serialises faults against punches: must be clean, also with sub-page units' },
  { id: 'neg-disk', group: 'negative', title: 'local disk (ext4), sub-page units', scenario: 'sub-page', target: 'disk', quick: 2, normal: 15, why: 'ext4 holds invalidate_lock across punches: must be clean' },
  { id: 'neg-fl-default', group: 'negative', title: 'faultline defaults (keep_cache, write-through, no auto_inval)', scenario: 'page-aligned', target: 'faultline', args: NSP, mount: {}, quick: 3, normal: 20, why: 'correct daemon, page-aligned units (finding 1 needs sub-page stores)' },
  { id: 'neg-fl-no-keep-cache', group: 'negative', title: 'faultline, keep_cache off', scenario: 'page-aligned', target: 'faultline', args: NSP, mount: { keepCache: false }, quick: 2, normal: 15, why: 'every open() drops the kernel page cache' },
  { id: 'neg-fl-wbcache', group: 'negative', title: 'faultline, kernel writeback cache', scenario: 'page-aligned', target: 'faultline', args: NSP, mount: { writebackCache: true }, quick: 2, normal: 15, why: 'the kernel buffers writes and owns i_size' },
  { id: 'neg-fl-daemon-wb', group: 'negative', title: 'faultline, daemon cache-mode writeback', scenario: 'page-aligned', target: 'faultline', args: NSP, mount: { cacheMode: 'writeback' }, quick: 2, normal: 15, why: 'the daemon keeps dirty pages until fsync / release / eviction' },
  { id: 'neg-fl-wbcache-daemon-wb', group: 'negative', title: 'faultline, writeback cache + daemon writeback', scenario: 'pread-pwrite', target: 'faultline', args: NSP, mount: { writebackCache: true, cacheMode: 'writeback' }, quick: 2, normal: 15, why: 'both write caches, extra pwrite / pread threads' },
  { id: 'neg-fl-autoinval', group: 'negative', title: 'faultline, auto_inval_data, write-through, attr_timeout 0, no pread', scenario: 'no-pread', target: 'faultline', args: NSP, mount: { autoInvalData: true, attrTimeout: 0 }, quick: 2, normal: 15, why: 'auto_inval_data on; no concurrent pread, which finding 2 needs' },
  { id: 'neg-fl-autoinval-wbcache', group: 'negative', title: 'faultline, auto_inval_data + writeback cache, pread', scenario: 'read-only-mapper', target: 'faultline', mount: { autoInvalData: true, writebackCache: true }, quick: 2, normal: 15, why: 'finding 2 disappears with the writeback cache (kernel-findings.md row 11)' },
  { id: 'neg-fl-no-daemon-cache', group: 'negative', title: 'faultline, daemon cache off (cache-pages 0)', scenario: 'pread-pwrite', target: 'faultline', args: NSP, mount: { cachePages: 0 }, quick: 2, normal: 15, why: 'every read goes to the store under the range lock' },
  { id: 'neg-fl-truncate', group: 'negative', title: 'faultline, truncate-heavy, readahead 8 pages, 16-page daemon cache', scenario: 'truncate-heavy', target: 'faultline', mount: { readaheadPages: 8, cachePages: 16, delays: ['truncate-before-store=1@0.5', 'read-fill-after-store=3@1'] }, quick: 10, normal: 15, why: 'the matched control of bug-read-past-eof' },
  { id: 'neg-fl-punch-delay', group: 'negative', title: 'faultline, punch-before-store delay, read-only mappers + pread + cache churn', scenario: 'read-only-mapper', target: 'faultline', args: CHURN, mount: { delays: ['punch-before-store=2'] }, quick: 2, normal: 15, why: 'the matched control of bug-no-range-lock' },
  { id: 'neg-fl-fault-around', group: 'negative', title: 'faultline, fault_around (SIGBUS / PTE past EOF)', scenario: 'fault-around', target: 'faultline', mount: {}, quick: 2, normal: 10, why: 'no page past EOF stays mapped after a truncate' },
  { id: 'neg-fl-punch-seq', group: 'negative', title: 'faultline, punch_seq sequences (sub-page, single thread)', scenario: 'punch-seq-sub-page', target: 'faultline', mount: {}, quick: 1, normal: 5, why: 'exact single-thread verdicts; the kernel races need concurrency' },
  { id: 'neg-fl-server-punch', group: 'negative', title: 'faultline, server-side punch / zero / truncate / write', scenario: 'server-punch', target: 'faultline', mount: {}, quick: 2, normal: 15, why: 'notify_inval_inode after every server-side change' },
  // ---- positive controls --------------------------------------------------------------------
  { id: 'bug-no-range-lock', group: 'positive', title: 'bug no-range-lock (punch-before-store delay, cache churn)', scenario: 'read-only-mapper', target: 'faultline', args: CHURN, bug: 'no-range-lock', mount: { delays: ['punch-before-store=2'] }, quick: 2, normal: 10, why: 'a read fill races a punch: STALE superseded by punch' },
  { id: 'bug-stale-cache-on-punch', group: 'positive', title: 'bug stale-cache-on-punch', scenario: 'page-aligned', target: 'faultline', args: NSP, bug: 'stale-cache-on-punch', quick: 2, normal: 10, why: 'cached pages survive a punch: STALE superseded by punch' },
  { id: 'bug-stale-cache-on-truncate', group: 'positive', title: 'bug stale-cache-on-truncate', scenario: 'truncate-heavy', target: 'faultline', bug: 'stale-cache-on-truncate', quick: 2, normal: 10, why: 'pages past a truncation survive a re-extension: STALE superseded by truncate' },
  { id: 'bug-read-past-eof', group: 'positive', title: 'bug read-past-eof (readahead 8 pages, 16-page daemon cache)', scenario: 'truncate-heavy', target: 'faultline', bug: 'read-past-eof', mount: { readaheadPages: 8, cachePages: 16, delays: ['truncate-before-store=1@0.5', 'read-fill-after-store=3@1'] }, quick: 10, normal: 15, why: 'readahead fills cache pre-truncate data past EOF' },
  { id: 'bug-short-read', group: 'positive', title: 'bug short-read', scenario: 'page-aligned', target: 'faultline', args: NSP, bug: 'short-read', quick: 2, normal: 10, why: 'a short READ shrinks i_size: SIGBUS / short pread inside EOF' },
  { id: 'bug-lost-write', group: 'positive', title: 'bug lost-write', scenario: 'page-aligned', target: 'faultline', args: NSP, bug: 'lost-write', quick: 2, normal: 10, why: 'acknowledged writes dropped: LOST_WRITE' },
  { id: 'bug-no-notify', group: 'positive', title: 'bug no-notify', scenario: 'server-punch', target: 'faultline', bug: 'no-notify', quick: 2, normal: 10, why: 'server-side changes never reach the kernel cache: STALE superseded by server-*' },
  { id: 'bug-notify-before-change', group: 'positive', title: 'bug notify-before-change', scenario: 'server-punch', target: 'faultline', bug: 'notify-before-change', quick: 3, normal: 15, why: 'a fault between the notify and the change re-caches old data' },
  // ---- kernel findings ----------------------------------------------------------------------
  { id: 'kern-punch-resurrection', group: 'kernel', title: 'finding 1: punch resurrection (sub-page mmap stores during punches)', scenario: 'fuse-punch-resurrection', target: 'faultline', mount: {}, quick: 5, normal: 30, why: 'fuse_file_fallocate takes no invalidate_lock: a re-dirtied page carries pre-punch bytes back' },
  { id: 'kern-store-during-punch', group: 'kernel', title: 'page-aligned mmap stores during punches / zero ranges, with a pread reader', scenario: 'page-aligned', args: ['--readers', '1'], target: 'faultline', mount: {}, quick: 5, normal: 30, why: 'the finding-1 window with page-aligned units: a store during the punch can be lost and an older store written back after it (seen on 6.18; not in kernel-findings.md)' },
  { id: 'kern-autoinval-lost-write', group: 'kernel', title: 'finding 2: lost writes with auto_inval_data (write-through, concurrent pread)', scenario: 'fuse-autoinval-lost-write', target: 'faultline', mount: { autoInvalData: true }, quick: 5, normal: 30, why: 'auto_inval_data invalidation drops a folio of an in-flight write-through WRITE' },
];

export interface ValidateOptions {
  profile: 'quick' | 'default' | 'soak';
  soakS?: number;
  duration?: number;
  only?: string;
  list?: boolean;
  seed: number;
  save?: string;
  baseline?: string;
  /** undefined: ./reports/<timestamp>; null: none. */
  reportDir?: string | null;
  tmpfsDir: string;
  diskDir: string;
  out?: NodeJS.WritableStream;
}

export type Blame = 'kernel' | 'daemon' | 'unknown' | 'tool' | 'none';

export interface ReportRow {
  id: string;
  group: Group;
  title: string;
  expect: string;
  scenario: string;
  /** Program arguments the row adds to the scenario's. */
  args: string | null;
  target: TargetName;
  targetDir: string;
  mountArgs: string | null;
  bug: string | null;
  xfail: string | null;
  duration: number;
  seed: number;
  status: Status;
  violations: number;
  firstViolationS: number | null;
  blame: Blame;
  verdict: string;
  record: RunRecord;
}

export interface ValidateReport {
  tool: 'faultline validate';
  schema: 1;
  started: string;
  finished: string;
  profile: string;
  seed: number;
  env: RunEnv & { tmpfsDir: string; diskDir: string; diskFstype: string };
  rows: ReportRow[];
  summary: Record<string, number>;
  baseline: { file: string; started: string; kernel: string } | null;
  comparison: ComparisonRow[] | null;
  exitCode: number;
  wallS: number;
}

const EXPECT: Record<Group, string> = { negative: 'clean', positive: 'detected', kernel: 'kernel finding' };

export function selectRows(only: string | undefined): MatrixRow[] {
  if (!only) return [...MATRIX];
  const keys = only.split(',').map((s) => s.trim()).filter(Boolean);
  const rows = MATRIX.filter((r) => keys.some((k) => r.id === k || r.group === k || r.id.startsWith(k) || (k.endsWith('*') && r.id.startsWith(k.slice(0, -1)))));
  const unknown = keys.filter((k) => !MATRIX.some((r) => r.id === k || r.group === k || r.id.startsWith(k.replace(/\*$/, ''))));
  if (unknown.length) throw new Error(`--only: no row matches ${unknown.map((k) => `"${k}"`).join(', ')}; run faultline validate --list`);
  return rows;
}

export function rowDuration(r: MatrixRow, o: Pick<ValidateOptions, 'profile' | 'soakS' | 'duration'>): number {
  if (o.duration) return o.duration;
  // Soak: the whole matrix takes about soakS, split over the rows like the default durations.
  if (o.profile === 'soak' && o.soakS) {
    const total = MATRIX.reduce((n, x) => n + x.normal, 0);
    return Math.max(r.normal, Math.round((o.soakS * r.normal) / total));
  }
  return o.profile === 'quick' ? r.quick : r.normal;
}

/** Status of one run against its row's expectation (pure). */
export function statusOf(group: Group, rec: Pick<RunRecord, 'violations_total' | 'verdict' | 'exitCode'>, xfail = false): Status {
  const v = rec.violations_total;
  if (group === 'negative') return v > 0 ? 'FAIL' : rec.verdict === 'clean' && rec.exitCode === 0 ? 'PASS' : 'ERROR';
  if (group === 'positive') return v > 0 ? 'DETECTED' : rec.verdict === 'clean' ? (xfail ? 'XFAIL' : 'FAIL') : 'ERROR';
  return v > 0 ? 'REPRODUCED' : rec.verdict === 'clean' ? 'NOT REPRODUCED' : 'ERROR';
}

/** Who is to blame, from the row, its result, the other rows (controls) and the daemon witness. */
export function blameOf(row: Pick<ReportRow, 'group' | 'target' | 'status' | 'bug'> & { xfail?: string | null } & { record: Pick<RunRecord, 'witness' | 'stale_by' | 'error'> }, all: readonly Pick<ReportRow, 'group' | 'target' | 'status'>[]): { blame: Blame; why: string } {
  const w = row.record.witness?.resurrections ?? 0;
  const witness = w > 0 ? `the daemon's witness saw ${w} punched unit(s) written back late by the kernel` : '';
  const flNegs = all.filter((r) => r.group === 'negative' && r.target === 'faultline');
  const localNegs = all.filter((r) => r.group === 'negative' && r.target !== 'faultline');
  const flClean = flNegs.length > 0 && flNegs.every((r) => r.status === 'PASS');
  const localClean = localNegs.length > 0 && localNegs.every((r) => r.status === 'PASS');
  switch (row.status) {
    case 'PASS':
    case 'NOT REPRODUCED':
      return { blame: 'none', why: '' };
    case 'XFAIL':
      return { blame: 'tool', why: row.xfail ?? 'known gap' };
    case 'ERROR':
      return { blame: 'unknown', why: `set-up error or vacuous run${row.record.error ? `: ${row.record.error}` : ''}` };
    case 'DETECTED':
      return { blame: 'daemon', why: `the injected bug mode ${row.bug}` };
    case 'FAIL':
      if (row.group === 'positive') return { blame: 'tool', why: `the stress did not observe the injected bug ${row.bug}: the scenario or oracle misses it` };
      if (row.target !== 'faultline') return { blame: 'unknown', why: 'a local filesystem failed: a kernel bug or an oracle false positive' };
      if (w > 0) return { blame: 'kernel', why: witness };
      return { blame: localClean ? 'daemon' : 'unknown', why: localClean ? 'the same workloads are clean on the local filesystems and the kernel witness saw nothing: most likely the daemon (or an unknown FUSE client race)' : 'no local-filesystem control ran clean to compare with' };
    case 'REPRODUCED':
      if (w > 0) return { blame: 'kernel', why: witness + (flClean ? '; faultline negative controls clean' : '') };
      if (flClean) return { blame: 'kernel', why: 'faultline negative controls clean: the daemon is correct under the controlled configurations' };
      return { blame: 'unknown', why: flNegs.length ? 'some faultline negative control failed too: the daemon is suspect' : 'no faultline negative control ran (use the full matrix to assign blame)' };
  }
}

function verdictText(r: ReportRow, why: string): string {
  const v = r.record;
  const n = `${v.violations_total} violation${v.violations_total === 1 ? '' : 's'}`;
  const first = v.first_violation_s != null ? `, first after ${v.first_violation_s.toFixed(2)} s` : '';
  const kinds = violationSummary(v);
  const wit = v.witness && v.witness.resurrections > 0 ? `; witness: ${v.witness.resurrections} late-written punched units` : '';
  let s: string;
  switch (r.status) {
    case 'PASS':
      s = 'clean';
      break;
    case 'XFAIL':
      s = `not detected in ${v.duration_s.toFixed(1)} s`;
      break;
    case 'NOT REPRODUCED':
      s = `not reproduced in ${v.duration_s.toFixed(1)} s${wit}`;
      break;
    case 'ERROR':
      s = `error: ${v.error ?? v.notes.join('; ') ?? v.verdict}`;
      break;
    default:
      s = `${n}${first}${kinds ? `: ${kinds}` : ''}${wit}`;
  }
  return why && r.status !== 'DETECTED' ? `${s} [${r.blame}: ${why}]` : s;
}

export function listRows(out: NodeJS.WritableStream): void {
  out.write(
    textTable(
      ['row', 'group', 'target', 'scenario', 'mount', 'quick s', 'default s', 'what'],
      MATRIX.map((r) => [r.id, r.group, r.target, r.scenario + (r.args?.length ? ` ${r.args.join(' ')}` : ''), r.target === 'faultline' ? describeMount({ ...r.mount, bugs: r.bug ? [r.bug] : [] }) : '-', String(r.quick), String(r.normal), r.title]),
    ),
  );
}

export function matrixTable(rows: readonly ReportRow[]): string {
  return textTable(
    ['row', 'expect', 'status', 'viol', 'first s', 'ops/s', 'blame', 'detail'],
    rows.map((r) => [r.id, r.expect, r.status, String(r.violations), r.firstViolationS != null ? r.firstViolationS.toFixed(2) : '-', formatRate(r.record.ops_per_s), r.blame === 'none' ? '-' : r.blame, r.verdict]),
  );
}

export function comparisonTable(rows: readonly ComparisonRow[]): string {
  return textTable(
    ['row', 'change', 'before', 'after'],
    rows.map((r) => [r.id, r.change, r.before ? `${r.before.status} (${r.before.violations})` : '-', r.after ? `${r.after.status} (${r.after.violations})` : '-']),
  );
}

export function summarize(rows: readonly ReportRow[]): Record<string, number> {
  const s: Record<string, number> = { rows: rows.length };
  for (const r of rows) s[r.status] = (s[r.status] ?? 0) + 1;
  return s;
}

export function exitCodeOf(rows: readonly ReportRow[], comparison: readonly ComparisonRow[] | null): number {
  if (rows.some((r) => r.status === 'FAIL') || comparison?.some((c) => c.change === 'REGRESSED')) return 1;
  if (rows.some((r) => r.status === 'ERROR')) return 2;
  return 0;
}

async function fstypeOf(dir: string): Promise<string> {
  try {
    const text = await readFile('/proc/self/mountinfo', 'utf8');
    const real = resolve(dir);
    let best = '';
    let fstype = '?';
    for (const line of text.split('\n')) {
      const f = line.split(' ');
      const mp = f[4];
      const dash = f.indexOf('-');
      if (!mp || dash < 0) continue;
      if ((real === mp || real.startsWith(mp.endsWith('/') ? mp : mp + '/')) && mp.length >= best.length) {
        best = mp;
        fstype = f[dash + 1] ?? '?';
      }
    }
    return fstype;
  } catch {
    return '?';
  }
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, '').replace(/\..*$/, '').replace('T', '-');
}

export async function runValidate(o: ValidateOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  if (o.list) {
    listRows(out);
    return 0;
  }
  const rows = selectRows(o.only);
  // The programs run with cwd "/": control directories must be absolute.
  o = { ...o, tmpfsDir: resolve(o.tmpfsDir), diskDir: resolve(o.diskDir) };
  for (const r of rows) findScenario(r.scenario);
  let baseline: { file: string; report: ValidateReport } | null = null;
  if (o.baseline) {
    let text: string;
    try {
      text = await readFile(o.baseline, 'utf8');
    } catch (e) {
      throw new Error(`cannot read the baseline ${o.baseline}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new Error(`the baseline ${o.baseline} is not JSON: ${(e as Error).message}`);
    }
    outcomesOf(parsed, `the baseline ${o.baseline}`);
    baseline = { file: resolve(o.baseline), report: parsed as ValidateReport };
  }
  const t0 = Date.now();
  const started = new Date();
  const env = await collectEnv();
  const diskFstype = await fstypeOf(o.diskDir);
  const tmpfsFstype = await fstypeOf(o.tmpfsDir);
  const total = rows.reduce((s, r) => s + rowDuration(r, o), 0);
  out.write(`faultline validate (${o.profile}): ${rows.length} rows, about ${Math.ceil(total + rows.length * 1.5)} s; kernel ${env.kernel}, libfuse ${env.libfuse ?? '?'}, seed ${o.seed}\n`);
  if (tmpfsFstype !== 'tmpfs') out.write(`warning: ${o.tmpfsDir} is ${tmpfsFstype}, not tmpfs\n`);
  const work = await makeWorkDir('faultline-validate-');
  const progress = new ProgressLine();
  const results: ReportRow[] = [];
  let interrupted = false;
  const onSig = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSig);
  try {
    for (const [i, row] of rows.entries()) {
      if (interrupted) break;
      const sc = findScenario(row.scenario);
      const duration = rowDuration(row, o);
      const seed = o.seed + MATRIX.indexOf(row);
      const target: TargetSpec =
        row.target === 'faultline'
          ? { kind: 'faultline', mount: { ...row.mount, bugs: [...(row.mount?.bugs ?? []), ...(row.bug ? [row.bug] : [])] } }
          : { kind: 'dir', dir: row.target === 'tmpfs' ? o.tmpfsDir : o.diskDir, label: row.target };
      const label = `[${i + 1}/${rows.length}] ${row.id}`;
      progress.status(`${label}: starting`);
      const rec = await runScenario(sc, target, { duration, seed, workDir: work.dir, extraArgs: row.args, onProgress: progress.for(label, duration), verbose: true });
      progress.clear();
      const status = statusOf(row.group, rec, Boolean(row.xfail));
      const rr: ReportRow = {
        id: row.id,
        group: row.group,
        title: row.title,
        expect: EXPECT[row.group],
        scenario: row.scenario,
        args: row.args?.length ? row.args.join(' ') : null,
        target: row.target,
        targetDir: target.kind === 'dir' ? target.dir : rec.target,
        mountArgs: rec.mountArgs ? describeMount(rec.mountOptions) : null,
        bug: row.bug ?? null,
        xfail: row.xfail ?? null,
        duration,
        seed,
        status,
        violations: rec.violations_total,
        firstViolationS: rec.first_violation_s,
        blame: 'none',
        verdict: '',
        record: rec,
      };
      results.push(rr);
      out.write(`${label} ${status}${rec.violations_total ? ` (${rec.violations_total})` : ''} ${formatRate(rec.ops_per_s)} ops/s, ${rec.wall_s.toFixed(1)} s\n`);
    }
  } finally {
    process.removeListener('SIGINT', onSig);
    await work.remove();
  }
  // Blame needs every row (the controls), so it comes after the runs.
  for (const r of results) {
    const b = blameOf(r, results);
    r.blame = b.blame;
    r.verdict = verdictText(r, b.why);
  }
  let comparison: ComparisonRow[] | null = null;
  if (baseline) {
    const selected = new Set(results.map((r) => r.id));
    // Rows not selected with --only are not "missing": compare what ran.
    const before = outcomesOf(baseline.report).filter((r) => !o.only || selected.has(r.id));
    comparison = compareRows(before, results.map((r) => ({ id: r.id, title: r.title, group: r.group, status: r.status, violations: r.violations })));
  }
  const exitCode = exitCodeOf(results, comparison);
  const report: ValidateReport = {
    tool: 'faultline validate',
    schema: 1,
    started: started.toISOString(),
    finished: new Date().toISOString(),
    profile: o.profile + (o.profile === 'soak' ? ` ${o.soakS} s` : ''),
    seed: o.seed,
    env: { ...env, tmpfsDir: o.tmpfsDir, diskDir: o.diskDir, diskFstype },
    rows: results,
    summary: summarize(results),
    baseline: baseline ? { file: baseline.file, started: baseline.report.started, kernel: baseline.report.env?.kernel } : null,
    comparison,
    exitCode,
    wallS: (Date.now() - t0) / 1000,
  };
  out.write('\n' + matrixTable(results));
  const sum = Object.entries(report.summary).map(([k, v]) => `${k} ${v}`).join(', ');
  out.write(`\n${sum}; ${report.wallS.toFixed(0)} s; kernel ${env.kernel}, libfuse ${env.libfuse ?? '?'}, faultline ${env.faultline}, ${results[0]?.record.programVersion ?? ''}\n`);
  if (comparison) {
    const c = countChanges(comparison);
    out.write(`\ncompared with ${baseline!.file} (kernel ${baseline!.report.env?.kernel ?? '?'}):\n` + comparisonTable(comparison));
    out.write(Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ') + '\n');
  }
  if (interrupted) out.write('interrupted: the remaining rows did not run\n');
  if (o.reportDir !== null) {
    const dir = resolve(o.reportDir ?? join('reports', timestamp(started)));
    await mkdir(dir, { recursive: true });
    await atomicWriteJson(join(dir, 'report.json'), report);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'report.html'), renderHtml(report));
    out.write(`report: ${join(dir, 'report.html')} (and report.json)\n`);
  }
  if (o.save) {
    await atomicWriteJson(o.save, report);
    out.write(`saved: ${resolve(o.save)} (use it with --baseline)\n`);
  }
  out.write(exitCode === 0 ? 'verdict: OK (every control as expected)\n' : exitCode === 1 ? 'verdict: FAILED (a control failed or a row regressed)\n' : 'verdict: ERROR (a row could not run)\n');
  return exitCode;
}

