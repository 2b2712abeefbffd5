import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeLock, RangeLockStats, type RangeLockHandle } from '../src/fs/range-lock.js';
import { FsError } from '../src/fs/types.js';
import { lockProperty, runLockCommands } from './helpers/dp-lock-model.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await Promise.resolve();
};

function track(p: Promise<RangeLockHandle>): { h: RangeLockHandle | null; err: unknown } {
  const t = { h: null as RangeLockHandle | null, err: undefined as unknown };
  p.then(
    (h) => (t.h = h),
    (e) => (t.err = e),
  );
  return t;
}

describe('RangeLock: model-based properties P1-P6 against the one-line spec', () => {
  it('10 000 random command sequences agree with the reference model', async () => {
    await fc.assert(lockProperty(() => new RangeLock()), { numRuns: 10_000, seed: 0x5eed });
  });

  it('the minimal broken-cancel counterexample of the note passes on the real lock', async () => {
    // R held, W waits, R' waits behind W, cancel W, release R
    await runLockCommands(new RangeLock(), [
      { t: 'acq', start: 0, len: 4, excl: false, cancellable: false },
      { t: 'acq', start: 0, len: 4, excl: true, cancellable: true },
      { t: 'acq', start: 0, len: 4, excl: false, cancellable: false },
      { t: 'cancel', k: 0 },
      { t: 'rel', k: 0 },
    ]);
  });
});

describe('RangeLock: unit behaviour', () => {
  it('readers share, a writer waits, later readers queue behind the writer (no barging)', async () => {
    const l = new RangeLock();
    const r1 = l.tryAcquire({ start: 0, end: 8192 }, 'shared')!;
    expect(r1).not.toBeNull();
    const w = track(l.acquire({ start: 4096, end: 8192 }, 'exclusive'));
    const r2 = track(l.acquire({ start: 0, end: 4096 }, 'shared')); // disjoint from w: granted
    const r3 = track(l.acquire({ start: 4096, end: 12288 }, 'shared')); // overlaps waiting w: waits
    await flush();
    expect(w.h).toBeNull();
    expect(r2.h).not.toBeNull();
    expect(r3.h).toBeNull();
    expect(l.tryAcquire({ start: 6000, end: 7000 }, 'shared')).toBeNull(); // sync path never barges
    expect(l.holders).toBe(2);
    expect(l.waiters).toBe(2);
    l.release(r1);
    await flush();
    expect(w.h).not.toBeNull();
    expect(r3.h).toBeNull();
    l.release(w.h!);
    await flush();
    expect(r3.h).not.toBeNull();
    l.release(r2.h!);
    l.release(r3.h!);
    expect(l.idle).toBe(true);
  });

  it('release twice throws, foreign and never-granted handles throw', () => {
    const l = new RangeLock();
    const other = new RangeLock();
    const h = l.tryAcquire({ start: 0, end: Infinity }, 'exclusive')!;
    expect(() => other.release(h)).toThrow(/another lock/);
    l.release(h);
    expect(() => l.release(h)).toThrow(/double release/);
    expect(() => l.release({ start: 0, end: 1, mode: 'shared', state: 'granted' })).toThrow();
    expect(l.idle).toBe(true);
  });

  it('rejects bad ranges and modes', () => {
    const l = new RangeLock();
    expect(() => l.tryAcquire({ start: 5, end: 5 }, 'shared')).toThrow(RangeError);
    expect(() => l.tryAcquire({ start: -1, end: 5 }, 'shared')).toThrow(RangeError);
    expect(() => l.tryAcquire({ start: NaN, end: 5 }, 'shared')).toThrow(RangeError);
    expect(() => l.tryAcquire({ start: 0, end: 5 }, 'both' as never)).toThrow(RangeError);
  });

  it('abort removes only a waiting acquisition, rejects it with EINTR and wakes what it blocked', async () => {
    const stats = new RangeLockStats();
    const l = new RangeLock(stats);
    const r = l.tryAcquire({ start: 0, end: 4096 }, 'shared')!;
    const ctl = new AbortController();
    const w = track(l.acquire({ start: 0, end: 4096 }, 'exclusive', ctl.signal));
    const r2 = track(l.acquire({ start: 0, end: 4096 }, 'shared'));
    await flush();
    expect(r2.h).toBeNull();
    ctl.abort();
    await flush();
    expect(w.err).toBeInstanceOf(FsError);
    expect((w.err as FsError).code).toBe('EINTR');
    expect(r2.h).not.toBeNull();
    expect(stats.cancels).toBe(1);
    // an already-aborted signal does not stop an acquisition that needs no wait
    const g = await l.acquire({ start: 8192, end: 12288 }, 'exclusive', AbortSignal.abort());
    expect(g.state).toBe('granted');
    // ...but does stop one that would wait
    await expect(l.acquire({ start: 0, end: 4096 }, 'exclusive', AbortSignal.abort())).rejects.toMatchObject({ code: 'EINTR' });
    // aborting after the grant changes nothing: the caller owns the handle
    const ctl2 = new AbortController();
    const late = l.acquire({ start: 16384, end: 20480 }, 'shared', ctl2.signal);
    ctl2.abort();
    const lh = await late;
    l.release(lh);
    l.release(g);
    l.release(r);
    l.release(r2.h!);
    expect(l.idle).toBe(true);
    expect(stats.holders).toBe(0);
    expect(stats.waiters).toBe(0);
  });

  it('a cancelled waiter is never granted later', async () => {
    const l = new RangeLock();
    const x = l.tryAcquire({ start: 0, end: Infinity }, 'exclusive')!;
    const ctl = new AbortController();
    const w = track(l.acquire({ start: 0, end: 4096 }, 'shared', ctl.signal));
    ctl.abort();
    l.release(x);
    await flush();
    expect(w.h).toBeNull();
    expect(l.idle).toBe(true);
  });

  it('counts waits and reports wait percentiles', async () => {
    const stats = new RangeLockStats();
    const a = new RangeLock(stats);
    const b = new RangeLock(stats);
    const ha = a.tryAcquire({ start: 0, end: 1 }, 'exclusive')!;
    const hb = b.tryAcquire({ start: 0, end: 1 }, 'exclusive')!;
    const wa = a.acquire({ start: 0, end: 1 }, 'exclusive');
    expect(stats.snapshot()).toMatchObject({ holders: 2, waiters: 1, waits: 1, immediate: 2, acquisitions: 3 });
    await new Promise((r) => setTimeout(r, 5));
    a.release(ha);
    a.release(await wa);
    b.release(hb);
    const s = stats.snapshot();
    expect(s.holders).toBe(0);
    expect(s.waiters).toBe(0);
    expect(s.maxWaitMs).toBeGreaterThan(0);
    expect(s.p99WaitMs).toBeGreaterThan(0);
    expect(s.p99WaitMs).toBeLessThanOrEqual(s.maxWaitMs);
    expect(a.snapshot()).toEqual([]);
  });

  it('scenario A shape: a writer behind a stream of overlapping readers is granted after exactly the readers that arrived before it', async () => {
    const l = new RangeLock();
    const held: RangeLockHandle[] = [];
    for (let i = 0; i < 8; i++) held.push(l.tryAcquire({ start: 0, end: 65536 }, 'shared')!);
    const w = track(l.acquire({ start: 16384, end: 20480 }, 'exclusive'));
    // readers keep re-locking: each release is followed by a new request
    for (let round = 0; round < 8; round++) {
      l.release(held.shift()!);
      held.push(await l.acquire({ start: 0, end: 4096 }, 'shared')); // disjoint: granted at once
      const again = track(l.acquire({ start: 0, end: 65536 }, 'shared')); // overlaps the writer: queued
      await flush();
      expect(again.h).toBeNull();
    }
    await flush();
    expect(w.h).not.toBeNull(); // all 8 earlier readers are gone
    l.release(w.h!);
    for (const h of held) l.release(h);
    await flush();
  });
});
