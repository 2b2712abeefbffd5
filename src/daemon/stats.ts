// Per-op request counters and latency histograms for `faultline ctl stats`. Cheap enough for the
// hot path: one performance.now() pair and two array increments per request.

const BUCKETS = 40; // bucket i holds latencies in [2^(i-1), 2^i) microseconds; bucket 0 is < 1 µs

export class OpStats {
  count = 0;
  errors = 0;
  private readonly hist = new Float64Array(BUCKETS);
  private maxUs = 0;

  record(us: number, failed: boolean): void {
    this.count++;
    if (failed) this.errors++;
    if (us > this.maxUs) this.maxUs = us;
    const b = us < 1 ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log2(us)));
    this.hist[b]!++;
  }

  /** Upper bound (µs) of the bucket holding quantile q: within a factor 2 of the true value. */
  percentile(q: number): number {
    if (this.count === 0) return 0;
    const target = q * this.count;
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.hist[b]!;
      if (seen >= target) return Math.min(b === 0 ? 1 : 2 ** b, this.maxUs);
    }
    return this.maxUs;
  }

  toJSON(): Record<string, number> {
    return {
      count: this.count,
      errors: this.errors,
      p50_us: Math.round(this.percentile(0.5)),
      p99_us: Math.round(this.percentile(0.99)),
      max_us: Math.round(this.maxUs),
    };
  }
}

export class RequestStats {
  private readonly ops = new Map<string, OpStats>();
  notifies = 0;
  notifyErrors = 0;

  op(name: string): OpStats {
    let s = this.ops.get(name);
    if (!s) {
      s = new OpStats();
      this.ops.set(name, s);
    }
    return s;
  }

  toJSON(): Record<string, unknown> {
    const ops: Record<string, unknown> = {};
    for (const [name, s] of [...this.ops].sort(([a], [b]) => a.localeCompare(b))) if (s.count > 0) ops[name] = s.toJSON();
    return { ops, notifies: { sent: this.notifies, errors: this.notifyErrors } };
  }
}
