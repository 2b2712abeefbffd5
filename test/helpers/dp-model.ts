// Sequential model of one file and a linearizability checker for histories of concurrent
// operations on it (helper D). A history is legal iff the operations can be ordered consistently
// with real time (an op that completed before another started comes first) so that every read
// returns exactly the model's bytes at its point (content AND length: a short read inside EOF or a
// byte past EOF is a violation). This is P7 + P8 + P9 of range-lock-and-cache.md at once.

import { createHash } from 'node:crypto';

export type FileOp =
  | { kind: 'read'; off: number; len: number }
  | { kind: 'write'; off: number; data: Buffer }
  | { kind: 'punch'; off: number; len: number }
  | { kind: 'zero'; off: number; len: number; keep: boolean }
  | { kind: 'alloc'; off: number; len: number; keep: boolean }
  | { kind: 'truncate'; size: number };

export interface HistoryEntry {
  op: FileOp;
  /** Logical invocation / response times. */
  inv: number;
  res: number;
  /** Read result. */
  result?: Buffer;
  /** The op failed: it may or may not have taken effect. */
  maybe?: boolean;
  label?: string;
}

export class FileModel {
  constructor(
    public size: number,
    public bytes: Buffer,
  ) {}
  static of(size: number, capacity: number, init?: Buffer): FileModel {
    const b = Buffer.alloc(capacity);
    if (init) init.copy(b, 0, 0, size);
    return new FileModel(size, b);
  }
  clone(): FileModel {
    return new FileModel(this.size, Buffer.from(this.bytes));
  }
  key(): string {
    return `${this.size}:${createHash('sha1').update(this.bytes.subarray(0, this.size)).digest('hex')}`;
  }
  private grow(n: number): void {
    if (n > this.bytes.length) {
      const b = Buffer.alloc(Math.max(n, this.bytes.length * 2));
      this.bytes.copy(b);
      this.bytes = b;
    }
  }
  read(off: number, len: number): Buffer {
    const end = Math.min(off + len, this.size);
    return end > off ? this.bytes.subarray(off, end) : Buffer.alloc(0);
  }
  apply(op: FileOp): void {
    switch (op.kind) {
      case 'read':
        return;
      case 'write':
        this.grow(op.off + op.data.length);
        op.data.copy(this.bytes, op.off);
        this.size = Math.max(this.size, op.off + op.data.length);
        return;
      case 'punch':
        this.zeroRange(op.off, op.off + op.len);
        return;
      case 'zero':
        this.zeroRange(op.off, op.off + op.len);
        if (!op.keep) this.size = Math.max(this.size, op.off + op.len);
        return;
      case 'alloc':
        if (!op.keep) this.size = Math.max(this.size, op.off + op.len);
        return;
      case 'truncate':
        if (op.size < this.size) this.zeroRange(op.size, this.size);
        this.size = op.size;
        return;
    }
  }
  private zeroRange(a: number, b: number): void {
    const e = Math.min(b, this.bytes.length);
    if (e > a) this.bytes.fill(0, a, e);
  }
}

export type LinResult = { ok: true; order: number[] } | { ok: false; reason: string };

/** Wing & Gong search with memoisation on (set of done ops, model state). */
export function checkLinearizable(history: HistoryEntry[], init: FileModel, budget = 200_000): LinResult {
  const n = history.length;
  if (n > 30) throw new Error('history too long for the checker');
  const seen = new Set<string>();
  const order: number[] = [];
  let steps = 0;
  let deepest = 0;
  let deepestFail = '';
  const dfs = (done: number, m: FileModel): boolean => {
    if (++steps > budget) throw new Error('linearizability search budget exhausted');
    if (order.length === n) return true;
    const memo = `${done}|${m.key()}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    // earliest response among pending ops: only ops invoked before it may go next
    let minRes = Infinity;
    for (let i = 0; i < n; i++) if (!(done & (1 << i)) && history[i]!.res < minRes) minRes = history[i]!.res;
    for (let i = 0; i < n; i++) {
      if (done & (1 << i)) continue;
      const h = history[i]!;
      if (h.inv > minRes) continue;
      if (h.op.kind === 'read') {
        const want = m.read(h.op.off, h.op.len);
        if (!want.equals(h.result!)) {
          if (order.length >= deepest) {
            deepest = order.length;
            deepestFail = `read#${i} ${h.label ?? ''} [${h.op.off},+${h.op.len}) got ${h.result!.length} bytes, model has ${want.length} (size ${m.size}) after [${order.join(',')}]`;
          }
          continue;
        }
        order.push(i);
        if (dfs(done | (1 << i), m)) return true;
        order.pop();
        continue;
      }
      const m2 = m.clone();
      m2.apply(h.op);
      order.push(i);
      if (dfs(done | (1 << i), m2)) return true;
      if (h.maybe) {
        // a failed op may also have had no effect
        if (dfs(done | (1 << i), m)) return true;
      }
      order.pop();
    }
    return false;
  };
  if (dfs(0, init.clone())) return { ok: true, order: [...order] };
  return { ok: false, reason: deepestFail || 'no linearization' };
}

/** Non-zero, op-specific content: byte i of write `id` (never 0). */
export function pattern(id: number, len: number, salt = 0): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = ((id * 131 + salt * 17 + i * 7 + (i >> 8)) % 255) + 1;
  return b;
}
