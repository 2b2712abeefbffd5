// Fix validation: compare a validate run with a saved baseline, row by row. Pure functions.
//
// Each row has a "bad" outcome that depends on its expectation: a negative control is bad when it
// FAILs (violations), a positive control when it FAILs (bug not detected), a kernel-finding row when
// the finding is REPRODUCED, any row when it is an ERROR. Then:
//   FIXED      bad before, good now            REGRESSED  good before, bad now
//   UNCHANGED  same side as before             NEW        row absent from the baseline
//   MISSING    row in the baseline, not run now (e.g. --only)

export type Group = 'negative' | 'positive' | 'kernel';
/** XFAIL: a positive control known not to be detected (a documented gap of the tool). */
export type Status = 'PASS' | 'FAIL' | 'DETECTED' | 'XFAIL' | 'REPRODUCED' | 'NOT REPRODUCED' | 'ERROR';
export type Change = 'FIXED' | 'REGRESSED' | 'UNCHANGED' | 'NEW' | 'MISSING';

/** The part of a report row the comparison needs. */
export interface RowOutcome {
  id: string;
  title?: string;
  group: Group;
  status: Status;
  violations: number;
}

export interface ComparisonRow {
  id: string;
  title: string;
  group: Group;
  before: { status: Status; violations: number } | null;
  after: { status: Status; violations: number } | null;
  change: Change;
}

export function isBad(r: RowOutcome): boolean {
  return r.status === 'FAIL' || r.status === 'ERROR' || r.status === 'REPRODUCED';
}

export function compareRows(before: readonly RowOutcome[], after: readonly RowOutcome[]): ComparisonRow[] {
  const prev = new Map(before.map((r) => [r.id, r]));
  const out: ComparisonRow[] = [];
  const seen = new Set<string>();
  for (const a of after) {
    seen.add(a.id);
    const b = prev.get(a.id);
    const after_ = { status: a.status, violations: a.violations };
    if (!b) {
      out.push({ id: a.id, title: a.title ?? a.id, group: a.group, before: null, after: after_, change: 'NEW' });
      continue;
    }
    const wasBad = isBad(b);
    const nowBad = isBad(a);
    const change: Change = wasBad && !nowBad ? 'FIXED' : !wasBad && nowBad ? 'REGRESSED' : 'UNCHANGED';
    out.push({ id: a.id, title: a.title ?? b.title ?? a.id, group: a.group, before: { status: b.status, violations: b.violations }, after: after_, change });
  }
  for (const b of before)
    if (!seen.has(b.id)) out.push({ id: b.id, title: b.title ?? b.id, group: b.group, before: { status: b.status, violations: b.violations }, after: null, change: 'MISSING' });
  return out;
}

export function countChanges(rows: readonly ComparisonRow[]): Record<Change, number> {
  const c: Record<Change, number> = { FIXED: 0, REGRESSED: 0, UNCHANGED: 0, NEW: 0, MISSING: 0 };
  for (const r of rows) c[r.change]++;
  return c;
}

/** Rows of a saved report (report.json of validate) as outcomes; throws a clear error otherwise. */
export function outcomesOf(report: unknown, what = 'baseline'): RowOutcome[] {
  const rows = (report as { rows?: unknown })?.rows;
  if (!Array.isArray(rows)) throw new Error(`${what} is not a faultline validate report (no "rows" array)`);
  return rows.map((r: Record<string, unknown>, i) => {
    if (typeof r.id !== 'string' || typeof r.status !== 'string' || typeof r.group !== 'string')
      throw new Error(`${what}: row ${i} lacks id / group / status`);
    return { id: r.id, title: typeof r.title === 'string' ? r.title : r.id, group: r.group as Group, status: r.status as Status, violations: Number(r.violations ?? 0) };
  });
}
