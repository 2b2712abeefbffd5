import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MutantLock, type Policy } from './mutants/range-lock-mutants.js';
import { lockProperty } from './helpers/dp-lock-model.js';

// The property suite of range-lock.test.ts must catch each deliberately broken lock.
describe('range lock property suite catches broken locks', () => {
  it('the recompute skeleton with the correct rule passes (the suite does not reject the skeleton)', async () => {
    await fc.assert(lockProperty(() => new MutantLock('spec')), { numRuns: 2000, seed: 7 });
  });

  for (const policy of ['reader-barging', 'no-fifo', 'forgets-wakeups-on-cancel'] as Policy[]) {
    it(`finds a counterexample for ${policy}`, async () => {
      const r = await fc.check(lockProperty(() => new MutantLock(policy)), { numRuns: 10_000, seed: 11 });
      expect(r.failed).toBe(true);
      // print the shrunk counterexample: it documents the defect
      console.log(`${policy}: failed after ${r.numRuns} runs; ${String((r.errorInstance as Error | undefined)?.message)}`);
    });
  }
});
