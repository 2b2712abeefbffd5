import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bugs, raceProperty, runScenario, type Scenario } from './helpers/dp-harness.js';

describe('data path under scheduler-driven races (P7, P8, P9, quiescence)', () => {
  it('write-through and writeback, random capacity / readahead: 3000 schedules are clean', async () => {
    await fc.assert(raceProperty(), { numRuns: 3000, seed: 20240601 });
  });

  it('punch / truncate heavy, small cache: 1000 schedules are clean', async () => {
    await fc.assert(raceProperty({ weights: { read: 6, write: 2, punch: 4, zero: 2, truncate: 4, alloc: 1 }, capacities: [2, 64] }), {
      numRuns: 1000,
      seed: 77,
    });
  });

  it('against the real MemoryFileStore (src/fs/memory-store.ts): 1000 schedules are clean', async () => {
    await fc.assert(raceProperty({}, () => ({ backing: 'memory' })), { numRuns: 1000, seed: 99 });
  });

  it('the classic race of the note, forced: a fill that reads the store before the punch lands', async () => {
    // write-through, cached, then read miss || punch: every schedule must be clean
    const sc: Scenario = {
      initSize: 8192,
      holes: [],
      capacity: 64,
      readahead: 0,
      mode: 'write-through',
      prewarm: false,
      ops: [
        { k: 'read', off: 0, len: 8192 },
        { k: 'punch', off: 0, len: 8192 },
        { k: 'read', off: 4096, len: 4096 },
      ],
    };
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        await runScenario(s, sc);
      }),
      { numRuns: 300, seed: 1 },
    );
  });
});

// Each bug mode that lives in the data path must make the race tests fail.
describe('bug modes are caught by the race tests', () => {
  const cases: { mode: Parameters<typeof bugs>[0]; opts?: Parameters<typeof raceProperty>[0]; runs: number }[] = [
    { mode: 'no-range-lock', opts: { weights: { read: 6, punch: 4, truncate: 2, write: 2 }, modes: ['write-through'], capacities: [64] }, runs: 3000 },
    { mode: 'stale-cache-on-punch', runs: 2000 },
    { mode: 'stale-cache-on-truncate', opts: { weights: { read: 5, truncate: 5, write: 3 } }, runs: 2000 },
    { mode: 'read-past-eof', opts: { weights: { read: 6, truncate: 4, write: 1, punch: 1 }, readaheads: [0, 2], capacities: [64] }, runs: 3000 },
    { mode: 'short-read', runs: 500 },
    { mode: 'lost-write', runs: 500 },
  ];
  for (const c of cases) {
    it(`${c.mode}: a counterexample is found`, async () => {
      const r = await fc.check(
        raceProperty(c.opts, () => ({ faults: bugs(c.mode) })),
        { numRuns: c.runs, seed: 4242 },
      );
      expect(r.failed).toBe(true);
      console.log(`${c.mode}: caught after ${r.numRuns} runs: ${String((r.errorInstance as Error | undefined)?.message).slice(0, 200)}`);
    });
  }
});
