// Shared/exclusive byte-range lock, one per inode (range-lock-and-cache.md §2).
//
// Specification, in one line: a request is granted iff no earlier, still-live request conflicts with
// it. Two requests conflict when their half-open ranges overlap and at least one is exclusive.
//
// Algorithm (Kara 2013 with Bueso's reader rule): live entries (holders and waiters) sit in one
// arrival-ordered doubly linked list. A new entry counts the live entries that conflict with it
// (`blockers`) and is appended; it is granted when the count is zero. Removing an entry (release or
// cancel) decrements every LATER waiting entry that conflicts with it and grants those that reach
// zero. Only earlier entries are ever counted, so the lock is FIFO among conflicting requests, never
// lets a reader barge past a waiting writer, and cannot starve anyone. The JS event loop is the
// critical section: every step below is synchronous.

import { FsError } from './types.js';

export type LockMode = 'shared' | 'exclusive';

/** Half-open byte range [start, end); end may be Infinity. Callers page-align it (rule R1). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export type LockState = 'waiting' | 'granted' | 'released' | 'cancelled';

/** What acquire/tryAcquire hand out; pass it back to release(). */
export interface RangeLockHandle {
  readonly start: number;
  readonly end: number;
  readonly mode: LockMode;
  readonly state: LockState;
}

const WAITING = 0;
const GRANTED = 1;
const RELEASED = 2;
const CANCELLED = 3;
const STATE_NAMES: readonly LockState[] = ['waiting', 'granted', 'released', 'cancelled'];

class Entry implements RangeLockHandle {
  prev: Entry | null = null;
  next: Entry | null = null;
  st = WAITING;
  blockers = 0;
  t0 = 0;
  resolve: ((h: RangeLockHandle) => void) | null = null;
  reject: ((e: Error) => void) | null = null;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;
  constructor(
    readonly owner: RangeLock,
    readonly start: number,
    readonly end: number,
    readonly excl: boolean,
  ) {}
  get mode(): LockMode {
    return this.excl ? 'exclusive' : 'shared';
  }
  get state(): LockState {
    return STATE_NAMES[this.st]!;
  }
}

function conflicts(a: Entry, b: Entry): boolean {
  return (a.excl || b.excl) && a.start < b.end && b.start < a.end;
}

// Wait-time histogram: bucket 0 is < 1 µs, bucket i ≥ 1 covers [2^((i-1)/4), 2^(i/4)) µs.
const NBUCKETS = 1 + 4 * 40;
function bucketOf(us: number): number {
  if (!(us >= 1)) return 0;
  const b = 1 + Math.floor(Math.log2(us) * 4);
  return b < NBUCKETS ? b : NBUCKETS - 1;
}

export interface LockStatsSnapshot {
  /** acquire() + successful tryAcquire() calls. */
  acquisitions: number;
  /** Acquisitions granted without waiting. */
  immediate: number;
  /** Acquisitions that had to wait (granted later or cancelled). */
  waits: number;
  /** Waiting acquisitions aborted through their AbortSignal. */
  cancels: number;
  /** tryAcquire() calls that failed. */
  tryFailures: number;
  /** Live holders / waiters right now, summed over every lock sharing this stats object. */
  holders: number;
  waiters: number;
  /** Over granted waits (ms). Percentiles are histogram upper bounds (≈19% resolution). */
  maxWaitMs: number;
  meanWaitMs: number;
  p50WaitMs: number;
  p99WaitMs: number;
}

/** Counters and a wait-time histogram; share one instance between all inodes' locks. */
export class RangeLockStats {
  acquisitions = 0;
  immediate = 0;
  waits = 0;
  cancels = 0;
  tryFailures = 0;
  holders = 0;
  waiters = 0;
  granted = 0; // waits that ended in a grant
  maxWaitMs = 0;
  totalWaitMs = 0;
  readonly hist = new Uint32Array(NBUCKETS);

  recordWait(ms: number): void {
    this.granted++;
    this.totalWaitMs += ms;
    if (ms > this.maxWaitMs) this.maxWaitMs = ms;
    this.hist[bucketOf(ms * 1000)]!++;
  }

  /** Wait time (ms) below which a fraction q of granted waits fell (upper bucket bound, capped by max). */
  percentile(q: number): number {
    if (this.granted === 0) return 0;
    const want = Math.ceil(q * this.granted);
    let acc = 0;
    for (let i = 0; i < NBUCKETS; i++) {
      acc += this.hist[i]!;
      if (acc >= want) return Math.min(this.maxWaitMs, i === 0 ? 0.001 : 2 ** (i / 4) / 1000);
    }
    return this.maxWaitMs;
  }

  snapshot(): LockStatsSnapshot {
    return {
      acquisitions: this.acquisitions,
      immediate: this.immediate,
      waits: this.waits,
      cancels: this.cancels,
      tryFailures: this.tryFailures,
      holders: this.holders,
      waiters: this.waiters,
      maxWaitMs: this.maxWaitMs,
      meanWaitMs: this.granted ? this.totalWaitMs / this.granted : 0,
      p50WaitMs: this.percentile(0.5),
      p99WaitMs: this.percentile(0.99),
    };
  }
}

export interface LockEntryInfo {
  start: number;
  end: number;
  mode: LockMode;
  state: LockState;
  /** Earlier live conflicting entries this one still waits for (0 for holders). */
  blockers: number;
  /** Milliseconds since it started waiting (waiters only). */
  waitingMs: number;
}

export class RangeLock {
  private head: Entry | null = null;
  private tail: Entry | null = null;
  /** Live granted entries of this lock. */
  holders = 0;
  /** Live waiting entries of this lock. */
  waiters = 0;
  readonly stats: RangeLockStats;

  constructor(stats?: RangeLockStats) {
    this.stats = stats ?? new RangeLockStats();
  }

  /** Nothing held and nobody waiting. */
  get idle(): boolean {
    return this.head === null;
  }

  /** Synchronous: the handle if the request would be granted right now (never barges), else null. */
  tryAcquire(range: ByteRange, mode: LockMode): RangeLockHandle | null {
    const e = this.make(range, mode);
    for (let o = this.head; o !== null; o = o.next) {
      if (conflicts(o, e)) {
        this.stats.tryFailures++;
        return null;
      }
    }
    this.append(e);
    this.grantNow(e);
    return e;
  }

  /**
   * Queue a request; resolves with the handle once granted (FIFO among conflicting requests).
   * If `signal` aborts while the request waits, it is removed and the promise rejects with
   * FsError('EINTR'); a request that can be granted at once is granted even if `signal` is aborted.
   */
  acquire(range: ByteRange, mode: LockMode, signal?: AbortSignal): Promise<RangeLockHandle> {
    const e = this.make(range, mode);
    let n = 0;
    for (let o = this.head; o !== null; o = o.next) if (conflicts(o, e)) n++;
    if (n === 0) {
      this.append(e);
      this.grantNow(e);
      return Promise.resolve(e);
    }
    if (signal?.aborted) {
      this.stats.acquisitions++;
      this.stats.waits++;
      this.stats.cancels++;
      return Promise.reject(new FsError('EINTR', 'interrupted while waiting for the range lock'));
    }
    e.blockers = n;
    this.append(e);
    this.waiters++;
    this.stats.acquisitions++;
    this.stats.waits++;
    this.stats.waiters++;
    e.t0 = performance.now();
    return new Promise<RangeLockHandle>((resolve, reject) => {
      e.resolve = resolve;
      e.reject = reject;
      if (signal) {
        e.signal = signal;
        e.onAbort = () => this.cancel(e);
        signal.addEventListener('abort', e.onAbort, { once: true });
      }
    });
  }

  /** Release a granted handle. Throws on a double release and on a handle that was never granted. */
  release(handle: RangeLockHandle): void {
    const e = handle as Entry;
    if (!(e instanceof Entry) || e.owner !== this) throw new Error('RangeLock.release: handle of another lock');
    if (e.st !== GRANTED) {
      throw new Error(
        e.st === RELEASED
          ? 'RangeLock.release: double release'
          : `RangeLock.release: handle was never granted (${e.state})`,
      );
    }
    e.st = RELEASED;
    this.holders--;
    this.stats.holders--;
    this.removeAndWake(e);
  }

  /** Live entries in arrival order (debugging, slow-wait dumps). */
  snapshot(): LockEntryInfo[] {
    const out: LockEntryInfo[] = [];
    const now = performance.now();
    for (let o = this.head; o !== null; o = o.next) {
      out.push({
        start: o.start,
        end: o.end,
        mode: o.mode,
        state: o.state,
        blockers: o.blockers,
        waitingMs: o.st === WAITING ? now - o.t0 : 0,
      });
    }
    return out;
  }

  private make(range: ByteRange, mode: LockMode): Entry {
    const { start, end } = range;
    if (!(start >= 0 && end > start)) throw new RangeError(`RangeLock: bad range [${start}, ${end})`);
    if (mode !== 'shared' && mode !== 'exclusive') throw new RangeError(`RangeLock: bad mode ${String(mode)}`);
    return new Entry(this, start, end, mode === 'exclusive');
  }

  private append(e: Entry): void {
    e.prev = this.tail;
    if (this.tail === null) this.head = e;
    else this.tail.next = e;
    this.tail = e;
  }

  private grantNow(e: Entry): void {
    e.st = GRANTED;
    this.holders++;
    const s = this.stats;
    s.holders++;
    s.acquisitions++;
    s.immediate++;
  }

  /** Unlink e; every later waiter that conflicts with it loses one blocker (woken at zero). */
  private removeAndWake(e: Entry): void {
    const next = e.next;
    if (e.prev === null) this.head = next;
    else e.prev.next = next;
    if (next === null) this.tail = e.prev;
    else next.prev = e.prev;
    e.prev = e.next = null;
    for (let o = next; o !== null; o = o.next) {
      if (o.st === WAITING && conflicts(e, o) && --o.blockers === 0) this.grantWaiter(o);
    }
  }

  private grantWaiter(e: Entry): void {
    e.st = GRANTED;
    this.waiters--;
    this.holders++;
    const s = this.stats;
    s.waiters--;
    s.holders++;
    s.recordWait(performance.now() - e.t0);
    if (e.signal !== null) e.signal.removeEventListener('abort', e.onAbort!);
    const resolve = e.resolve!;
    e.resolve = e.reject = null;
    e.signal = null;
    e.onAbort = null;
    resolve(e);
  }

  private cancel(e: Entry): void {
    if (e.st !== WAITING) return; // granted in the meantime: the caller owns the handle
    e.st = CANCELLED;
    this.waiters--;
    this.stats.waiters--;
    this.stats.cancels++;
    const reject = e.reject!;
    e.resolve = e.reject = null;
    e.signal = null;
    e.onAbort = null;
    this.removeAndWake(e);
    reject(new FsError('EINTR', 'interrupted while waiting for the range lock'));
  }
}
