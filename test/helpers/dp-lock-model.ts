// Reference model of the range lock's one-line specification and a fast-check property suite that
// compares any lock implementation with it (helper D). Used for the real lock and for the broken
// variants in test/mutants/, which the suite must reject.
//
//   spec: a request is granted iff no earlier, still-live request conflicts with it.

import fc from 'fast-check';

export type Mode = 'shared' | 'exclusive';
export interface Range {
  start: number;
  end: number;
}
export interface LockLike {
  tryAcquire(r: Range, m: Mode): object | null;
  acquire(r: Range, m: Mode, signal?: AbortSignal): Promise<object>;
  release(h: object): void;
  readonly idle: boolean;
}

export type LockCmd =
  | { t: 'acq'; start: number; len: number; excl: boolean; cancellable: boolean }
  | { t: 'try'; start: number; len: number; excl: boolean }
  | { t: 'rel'; k: number }
  | { t: 'cancel'; k: number }
  | { t: 'double'; k: number };

const INF = 8; // len === INF means end = Infinity

export const lockCmdArb: fc.Arbitrary<LockCmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('acq' as const), start: fc.integer({ min: 0, max: 7 }), len: fc.integer({ min: 1, max: INF }), excl: fc.boolean(), cancellable: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('try' as const), start: fc.integer({ min: 0, max: 7 }), len: fc.integer({ min: 1, max: INF }), excl: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('rel' as const), k: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cancel' as const), k: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('double' as const), k: fc.nat(7) }) },
);

interface Req {
  id: number;
  start: number;
  end: number;
  excl: boolean;
  live: boolean;
  // implementation side
  handle: object | null;
  granted: boolean; // promise resolved (or tryAcquire success)
  rejected: unknown;
  released: boolean;
  ctl: AbortController | null;
}

const conflicts = (a: Req, b: Req): boolean => (a.excl || b.excl) && a.start < b.end && b.start < a.end;

/** Model: the granted set is every live request with no earlier live conflicting request. */
function modelGranted(reqs: Req[]): Set<number> {
  const g = new Set<number>();
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i]!;
    if (!r.live) continue;
    let ok = true;
    for (let j = 0; j < i && ok; j++) if (reqs[j]!.live && conflicts(reqs[j]!, r)) ok = false;
    if (ok) g.add(r.id);
  }
  return g;
}

async function flush(): Promise<void> {
  for (let i = 0; i < 4; i++) await Promise.resolve();
}

class Mismatch extends Error {}

/** Run one command sequence against `lock`; throws on the first divergence from the model. */
export async function runLockCommands(lock: LockLike, cmds: LockCmd[]): Promise<void> {
  const reqs: Req[] = [];
  const check = (what: string): void => {
    const g = modelGranted(reqs);
    for (const r of reqs) {
      if (r.released) continue;
      const want = g.has(r.id);
      if (r.live && r.granted !== want) {
        throw new Mismatch(`${what}: request #${r.id} [${r.start},${r.end}) ${r.excl ? 'X' : 'S'} granted=${r.granted}, spec says ${want}`);
      }
      if (!r.live && r.granted) throw new Mismatch(`${what}: cancelled request #${r.id} was granted`);
    }
    // P1 directly
    const held = reqs.filter((r) => r.granted && !r.released);
    for (let i = 0; i < held.length; i++)
      for (let j = i + 1; j < held.length; j++)
        if (conflicts(held[i]!, held[j]!)) throw new Mismatch(`${what}: conflicting grants #${held[i]!.id} and #${held[j]!.id}`);
  };
  for (const [step, c] of cmds.entries()) {
    const what = `step ${step} ${JSON.stringify(c)}`;
    if (c.t === 'acq' || c.t === 'try') {
      const end = c.len === INF ? Infinity : c.start + c.len;
      const r: Req = { id: reqs.length, start: c.start, end, excl: c.excl, live: true, handle: null, granted: false, rejected: undefined, released: false, ctl: null };
      if (c.t === 'try') {
        const wouldGrant = !reqs.some((o) => o.live && conflicts(o, r));
        const h = lock.tryAcquire({ start: r.start, end }, c.excl ? 'exclusive' : 'shared');
        if ((h !== null) !== wouldGrant) throw new Mismatch(`${what}: tryAcquire ${h !== null ? 'succeeded' : 'failed'}, spec says ${wouldGrant}`);
        if (h === null) continue;
        r.handle = h;
        r.granted = true;
        reqs.push(r);
      } else {
        reqs.push(r);
        if (c.cancellable) r.ctl = new AbortController();
        lock.acquire({ start: r.start, end }, c.excl ? 'exclusive' : 'shared', r.ctl?.signal).then(
          (h) => {
            r.handle = h;
            r.granted = true;
          },
          (e: unknown) => {
            r.rejected = e ?? new Error('rejected');
          },
        );
      }
    } else if (c.t === 'rel' || c.t === 'double') {
      const held = reqs.filter((r) => r.live && r.granted && !r.released);
      if (c.t === 'double') {
        const gone = reqs.filter((r) => r.released);
        if (gone.length === 0) continue;
        const r = gone[c.k % gone.length]!;
        let threw = false;
        try {
          lock.release(r.handle!);
        } catch {
          threw = true;
        }
        if (!threw) throw new Mismatch(`${what}: double release of #${r.id} did not throw`);
        continue;
      }
      if (held.length === 0) continue;
      const r = held[c.k % held.length]!;
      lock.release(r.handle!);
      r.released = true;
      r.live = false;
    } else {
      const waiting = reqs.filter((r) => r.live && !r.granted && r.ctl);
      if (waiting.length === 0) continue;
      const r = waiting[c.k % waiting.length]!;
      r.ctl!.abort();
      r.live = false;
      await flush();
      if (r.granted) throw new Mismatch(`${what}: aborted waiter #${r.id} was granted`);
      if (r.rejected === undefined) throw new Mismatch(`${what}: aborted waiter #${r.id} not rejected`);
    }
    await flush();
    check(what);
  }
  // Drain: release everything the spec grants until nothing is live (P2, P4).
  for (let guard = 0; guard < 1000; guard++) {
    const held = reqs.filter((r) => r.live && r.granted && !r.released);
    if (held.length === 0) break;
    for (const r of held) {
      lock.release(r.handle!);
      r.released = true;
      r.live = false;
    }
    await flush();
    check('drain');
  }
  const stuck = reqs.filter((r) => r.live);
  if (stuck.length > 0) throw new Mismatch(`drain: ${stuck.length} request(s) never granted (lost wake-up), e.g. #${stuck[0]!.id}`);
  if (!lock.idle) throw new Mismatch('drain: lock not idle after releasing everything');
  // never-granted / foreign handles throw
  let threw = false;
  try {
    lock.release({ start: 0, end: 1, mode: 'shared', state: 'granted' });
  } catch {
    threw = true;
  }
  if (!threw) throw new Mismatch('release of a never-granted handle did not throw');
}

export function lockProperty(make: () => LockLike, maxCommands = 40): fc.IAsyncPropertyWithHooks<[LockCmd[]]> {
  return fc.asyncProperty(fc.array(lockCmdArb, { maxLength: maxCommands }), async (cmds) => {
    await runLockCommands(make(), cmds);
  });
}
