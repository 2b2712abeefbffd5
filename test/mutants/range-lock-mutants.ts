// Deliberately broken range locks (helper D). Each is a small "recompute on every change" lock with
// the same API as src/fs/range-lock.ts and one classic defect. The property suite of
// test/helpers/dp-lock-model.ts must find a counterexample for every one of them
// (test/range-lock-mutants.test.ts); `spec` is the same skeleton with the correct rule and must pass,
// which shows the suite rejects the defects, not the skeleton.

type Mode = 'shared' | 'exclusive';
interface Range {
  start: number;
  end: number;
}

interface E {
  start: number;
  end: number;
  excl: boolean;
  granted: boolean;
  released: boolean;
  resolve: ((h: E) => void) | null;
  reject: ((e: Error) => void) | null;
}

const conflicts = (a: E, b: E): boolean => (a.excl || b.excl) && a.start < b.end && b.start < a.end;

export type Policy = 'spec' | 'reader-barging' | 'no-fifo' | 'forgets-wakeups-on-cancel';

export class MutantLock {
  private q: E[] = [];
  constructor(readonly policy: Policy) {}

  get idle(): boolean {
    return this.q.length === 0;
  }

  /** May `e` (in the queue at position i, or about to be appended when i = q.length) be granted now? */
  private grantable(e: E, i: number): boolean {
    const granted = this.q.filter((o) => o !== e && o.granted);
    const earlier = this.q.slice(0, i);
    switch (this.policy) {
      case 'spec':
      case 'forgets-wakeups-on-cancel':
        return !earlier.some((o) => conflicts(o, e));
      case 'reader-barging':
        // readers look only at granted writers: they overtake waiting writers (writer starvation)
        if (!e.excl) return !granted.some((o) => conflicts(o, e));
        return !earlier.some((o) => conflicts(o, e)) && !granted.some((o) => conflicts(o, e));
      case 'no-fifo':
        // anyone may go as soon as no holder conflicts: no order among waiters
        return !granted.some((o) => conflicts(o, e));
    }
  }

  private recompute(): void {
    for (let i = 0; i < this.q.length; i++) {
      const e = this.q[i]!;
      if (e.granted || !this.grantable(e, i)) continue;
      e.granted = true;
      const r = e.resolve!;
      e.resolve = e.reject = null;
      r(e);
    }
  }

  tryAcquire(r: Range, m: Mode): E | null {
    const e: E = { start: r.start, end: r.end, excl: m === 'exclusive', granted: false, released: false, resolve: null, reject: null };
    if (!this.grantable(e, this.q.length)) return null;
    e.granted = true;
    this.q.push(e);
    return e;
  }

  acquire(r: Range, m: Mode, signal?: AbortSignal): Promise<E> {
    const e: E = { start: r.start, end: r.end, excl: m === 'exclusive', granted: false, released: false, resolve: null, reject: null };
    return new Promise<E>((resolve, reject) => {
      e.resolve = resolve;
      e.reject = reject;
      this.q.push(e);
      this.recompute();
      signal?.addEventListener('abort', () => {
        if (e.granted) return;
        this.q.splice(this.q.indexOf(e), 1);
        e.reject!(new Error('EINTR'));
        if (this.policy !== 'forgets-wakeups-on-cancel') this.recompute();
      });
    });
  }

  release(h: object): void {
    const e = h as E;
    const i = this.q.indexOf(e);
    if (i < 0 || !e.granted || e.released) throw new Error('bad release');
    e.released = true;
    this.q.splice(i, 1);
    this.recompute();
  }
}
