// Pure parts of faultline validate: the before/after comparison, the row status against its
// expectation, blame assignment, row selection, duration parsing. No mounts.
import { describe, expect, it } from 'vitest';
import { compareRows, countChanges, isBad, outcomesOf, type RowOutcome } from '../src/stress/compare.js';
import { blameOf, exitCodeOf, MATRIX, selectRows, statusOf, type ReportRow } from '../src/stress/validate.js';
import { parseDuration } from '../src/stress/cli-commands.js';
import { SCENARIOS, findScenario } from '../src/stress/scenarios.js';

describe('compareRows (fix validation)', () => {
  // A kernel developer's before/after pair: the fix removes finding 1, breaks one negative control,
  // loses detection of one bug, leaves the rest alone, adds and drops a row.
  const before: RowOutcome[] = [
    { id: 'neg-tmpfs', group: 'negative', status: 'PASS', violations: 0 },
    { id: 'neg-fl-default', group: 'negative', status: 'PASS', violations: 0 },
    { id: 'neg-fl-wbcache', group: 'negative', status: 'FAIL', violations: 7 },
    { id: 'bug-lost-write', group: 'positive', status: 'DETECTED', violations: 900 },
    { id: 'bug-short-read', group: 'positive', status: 'DETECTED', violations: 600 },
    { id: 'kern-punch-resurrection', group: 'kernel', status: 'REPRODUCED', violations: 2353 },
    { id: 'kern-autoinval-lost-write', group: 'kernel', status: 'NOT REPRODUCED', violations: 0 },
    { id: 'kern-store-during-punch', group: 'kernel', status: 'REPRODUCED', violations: 3 },
    { id: 'neg-disk', group: 'negative', status: 'ERROR', violations: 0 },
    { id: 'old-row', group: 'negative', status: 'PASS', violations: 0 },
  ];
  const after: RowOutcome[] = [
    { id: 'neg-tmpfs', group: 'negative', status: 'PASS', violations: 0 },
    { id: 'neg-fl-default', group: 'negative', status: 'FAIL', violations: 12 },
    { id: 'neg-fl-wbcache', group: 'negative', status: 'PASS', violations: 0 },
    { id: 'bug-lost-write', group: 'positive', status: 'FAIL', violations: 0 },
    { id: 'bug-short-read', group: 'positive', status: 'DETECTED', violations: 450 },
    { id: 'kern-punch-resurrection', group: 'kernel', status: 'NOT REPRODUCED', violations: 0 },
    { id: 'kern-autoinval-lost-write', group: 'kernel', status: 'REPRODUCED', violations: 22 },
    { id: 'kern-store-during-punch', group: 'kernel', status: 'REPRODUCED', violations: 9 },
    { id: 'neg-disk', group: 'negative', status: 'PASS', violations: 0 },
    { id: 'new-row', group: 'positive', status: 'DETECTED', violations: 5 },
  ];
  const cmp = compareRows(before, after);
  const change = (id: string) => cmp.find((r) => r.id === id)?.change;

  it('classifies every row', () => {
    expect(change('neg-tmpfs')).toBe('UNCHANGED');
    expect(change('neg-fl-default')).toBe('REGRESSED');
    expect(change('neg-fl-wbcache')).toBe('FIXED');
    expect(change('bug-lost-write')).toBe('REGRESSED'); // lost detection power
    expect(change('bug-short-read')).toBe('UNCHANGED'); // counts differ, outcome the same
    expect(change('kern-punch-resurrection')).toBe('FIXED');
    expect(change('kern-autoinval-lost-write')).toBe('REGRESSED');
    expect(change('kern-store-during-punch')).toBe('UNCHANGED');
    expect(change('neg-disk')).toBe('FIXED'); // an error that now runs clean
    expect(change('new-row')).toBe('NEW');
    expect(change('old-row')).toBe('MISSING');
    expect(cmp).toHaveLength(11);
  });

  it('keeps the counts before and after', () => {
    const r = cmp.find((x) => x.id === 'kern-punch-resurrection')!;
    expect(r.before).toEqual({ status: 'REPRODUCED', violations: 2353 });
    expect(r.after).toEqual({ status: 'NOT REPRODUCED', violations: 0 });
    expect(cmp.find((x) => x.id === 'new-row')!.before).toBeNull();
    expect(cmp.find((x) => x.id === 'old-row')!.after).toBeNull();
  });

  it('counts the changes', () => {
    expect(countChanges(cmp)).toEqual({ FIXED: 3, REGRESSED: 3, UNCHANGED: 3, NEW: 1, MISSING: 1 });
  });

  it('an identical run is all UNCHANGED, also for XFAIL rows', () => {
    const same = compareRows(before, before);
    expect(same.every((r) => r.change === 'UNCHANGED')).toBe(true);
    expect(isBad({ id: 'x', group: 'positive', status: 'XFAIL', violations: 0 })).toBe(false);
  });

  it('reads outcomes from a saved report and rejects other JSON', () => {
    expect(outcomesOf({ rows: [{ id: 'a', group: 'negative', status: 'PASS', violations: 0, title: 'A' }] })).toEqual([{ id: 'a', title: 'A', group: 'negative', status: 'PASS', violations: 0 }]);
    expect(() => outcomesOf({ runs: [] })).toThrow(/not a faultline validate report/);
    expect(() => outcomesOf({ rows: [{ id: 'a' }] })).toThrow(/row 0 lacks/);
  });
});

describe('row status and blame', () => {
  const rec = (violations_total: number, verdict: string, exitCode: number) => ({ violations_total, verdict, exitCode });
  it('maps a run to its expectation', () => {
    expect(statusOf('negative', rec(0, 'clean', 0))).toBe('PASS');
    expect(statusOf('negative', rec(3, 'violations', 1))).toBe('FAIL');
    expect(statusOf('negative', rec(0, 'vacuous', 2))).toBe('ERROR');
    expect(statusOf('positive', rec(5, 'violations', 1))).toBe('DETECTED');
    expect(statusOf('positive', rec(0, 'clean', 0))).toBe('FAIL');
    expect(statusOf('positive', rec(0, 'clean', 0), true)).toBe('XFAIL');
    expect(statusOf('positive', rec(0, 'error', 2))).toBe('ERROR');
    expect(statusOf('kernel', rec(9, 'violations', 1))).toBe('REPRODUCED');
    expect(statusOf('kernel', rec(0, 'clean', 0))).toBe('NOT REPRODUCED');
  });

  type B = Parameters<typeof blameOf>[0];
  const row = (group: B['group'], target: B['target'], status: B['status'], resurrections = 0): B => ({
    group,
    target,
    status,
    bug: group === 'positive' ? 'lost-write' : undefined,
    record: { witness: { resurrections, resurrectingWrites: 0, rangesRecorded: 0, writesChecked: 0 }, stale_by: {}, error: null },
  });
  const controlsClean = [row('negative', 'tmpfs', 'PASS'), row('negative', 'faultline', 'PASS')];

  it('blames the kernel for a finding when the daemon controls are clean or the witness saw it', () => {
    expect(blameOf(row('kernel', 'faultline', 'REPRODUCED'), controlsClean).blame).toBe('kernel');
    expect(blameOf(row('kernel', 'faultline', 'REPRODUCED', 12), [row('negative', 'faultline', 'FAIL')]).blame).toBe('kernel');
    expect(blameOf(row('kernel', 'faultline', 'REPRODUCED'), [row('negative', 'faultline', 'FAIL')]).blame).toBe('unknown');
  });
  it('blames the daemon for a failed faultline control when the local filesystems are clean', () => {
    expect(blameOf(row('negative', 'faultline', 'FAIL'), controlsClean).blame).toBe('daemon');
    expect(blameOf(row('negative', 'faultline', 'FAIL', 4), controlsClean).blame).toBe('kernel');
    expect(blameOf(row('negative', 'tmpfs', 'FAIL'), controlsClean).blame).toBe('unknown');
    expect(blameOf(row('positive', 'faultline', 'FAIL'), controlsClean).blame).toBe('tool');
    expect(blameOf(row('positive', 'faultline', 'DETECTED'), controlsClean).blame).toBe('daemon');
  });

  it('exit status: failed control or regression 1, error 2', () => {
    const r = (status: ReportRow['status']) => ({ status }) as ReportRow;
    expect(exitCodeOf([r('PASS'), r('DETECTED'), r('REPRODUCED'), r('XFAIL')], null)).toBe(0);
    expect(exitCodeOf([r('PASS'), r('FAIL')], null)).toBe(1);
    expect(exitCodeOf([r('PASS'), r('ERROR')], null)).toBe(2);
    expect(exitCodeOf([r('PASS')], [{ id: 'a', title: 'a', group: 'kernel', before: null, after: null, change: 'REGRESSED' }])).toBe(1);
  });
});

describe('matrix and options', () => {
  it('every row names a known scenario, ids are unique, negative faultline rows avoid the kernel races', () => {
    expect(new Set(MATRIX.map((r) => r.id)).size).toBe(MATRIX.length);
    for (const r of MATRIX) expect(() => findScenario(r.scenario)).not.toThrow();
    for (const r of MATRIX.filter((x) => x.group === 'negative' && x.target === 'faultline')) {
      const s = SCENARIOS.find((x) => x.name === r.scenario)!;
      const args = [...s.args, ...(r.args ?? [])];
      const unit = args[args.indexOf('-u') + 1];
      // finding 1: sub-page stores during punches only in single-threaded punch_seq
      if (s.program === 'mmap_punch') expect(unit, r.id).toBe('4096');
      // finding 2: auto_inval_data in write-through mode never with concurrent pread
      if (r.mount?.autoInvalData && !r.mount.writebackCache) {
        expect(args.join(' '), r.id).toContain('--mapper-pread-prob 0');
        expect(args.join(' '), r.id).not.toMatch(/--readers [1-9]/);
      }
    }
    // every bug mode has a positive control
    const bugs = MATRIX.filter((r) => r.group === 'positive').map((r) => r.bug);
    expect(bugs.sort()).toEqual(['lost-write', 'no-notify', 'no-range-lock', 'notify-before-change', 'read-past-eof', 'short-read', 'stale-cache-on-punch', 'stale-cache-on-truncate']);
  });

  it('selects rows by id, prefix and group', () => {
    expect(selectRows('neg-tmpfs').map((r) => r.id)).toEqual(['neg-tmpfs']);
    expect(selectRows('bug-').every((r) => r.group === 'positive')).toBe(true);
    expect(selectRows('kernel').map((r) => r.group)).toEqual(['kernel', 'kernel', 'kernel']);
    expect(() => selectRows('nope')).toThrow(/no row matches "nope"/);
  });

  it('parses durations', () => {
    expect(parseDuration('10')).toBe(10);
    expect(parseDuration('2.5')).toBe(2.5);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('abc')).toBeNaN();
    expect(parseDuration('5x')).toBeNaN();
  });
});
