// Kernel witness: detects the "late writeback of punched data" of kernel-findings.md §3 from the
// daemon's side.
//
// For every recent punch / zero range of an inode it remembers, per 1 KiB unit fully inside the
// range, a digest of the NON-ZERO content the operation removed. A later WRITE that carries the same
// content back into the same unit is counted (and traced): after a completed punch nothing but the
// kernel's writeback of a page that was re-dirtied during the punch can produce those bytes again,
// as long as every write carries unique content (the stress patterns do: each unit starts with a
// header {magic, unit, generation}). With arbitrary workloads a legitimate rewrite of identical bytes
// counts too, so the count is meaningful for unique-pattern workloads only.
//
// Digest: FNV-1a 32 over the first 32 bytes of the unit plus 8 sampled bytes (64, 128, 256, 384,
// 512, 640, 768, 1023). A unit is "non-zero" if any of its 1024 bytes is non-zero (memcmp against a
// zero unit). Cost when no remembered range overlaps a write: two comparisons.
//
// Bounds: at most `maxRanges` ranges per inode (oldest dropped first), at most `maxAgeMs` old, at most
// `maxUnitsPerRange` non-zero units per range; holes of a sparse range are skipped, not read.

import { performance } from 'node:perf_hooks';

export const WITNESS_UNIT = 1024;
const ZERO_UNIT = Buffer.alloc(WITNESS_UNIT);
const SAMPLES = [64, 128, 256, 384, 512, 640, 768, 1023];

/** Digest of one WITNESS_UNIT-byte unit; 0 means the unit is all zeros. Never 0 otherwise. */
export function unitDigest(b: Uint8Array, off: number): number {
  if (ZERO_UNIT.compare(b, off, off + WITNESS_UNIT) === 0) return 0;
  return hashUnit(b, off);
}

/** The hash part of unitDigest (no zero test; never 0). */
function hashUnit(b: Uint8Array, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 32; i++) h = Math.imul(h ^ b[off + i]!, 0x01000193);
  for (let k = 0; k < SAMPLES.length; k++) h = Math.imul(h ^ b[off + SAMPLES[k]!]!, 0x01000193);
  h >>>= 0;
  return h === 0 ? 1 : h;
}

export interface Resurrection {
  ino: number;
  /** Byte offset of the resurrected unit. */
  unitOffset: number;
  /** The punch / zero range that removed it. */
  op: 'punch' | 'zero';
  rangeOffset: number;
  rangeLength: number;
  /** Sequence number of that punch (per witness) and its age when the write arrived. */
  seq: number;
  ageMs: number;
  /** The write that brought it back. */
  writeOffset: number;
  writeLength: number;
}

export interface WitnessOptions {
  /** Ranges remembered per inode (default 256). */
  maxRanges?: number;
  /** Non-zero units remembered per range (default 65536 = 64 MiB of content); the rest is not checked. */
  maxUnitsPerRange?: number;
  /** Ranges older than this are forgotten (default 30 000 ms). */
  maxAgeMs?: number;
  /** Called for every resurrected unit. */
  trace?: (r: Resurrection) => void;
}

export interface WitnessStats {
  /** Punch / zero ranges recorded, and non-zero units in them. */
  rangesRecorded: number;
  unitsRecorded: number;
  /** Writes checked, and those overlapping a remembered range. */
  writesChecked: number;
  writesOverlapping: number;
  /** Units whose removed content came back through a write (late writeback of punched data). */
  resurrections: number;
  /** Writes that carried at least one resurrected unit. */
  resurrectingWrites: number;
  /** Units digested (recording + checking), for cost accounting. */
  unitsDigested: number;
  /** Ranges whose content exceeded maxUnitsPerRange (only their first units are remembered). */
  rangesTruncated: number;
}

interface Rec {
  /** Digest of every non-zero unit the operation removed, by unit byte offset. */
  digests: Map<number, number>;
  /** Bounding range of those units. */
  lo: number;
  hi: number;
  op: 'punch' | 'zero';
  rangeOffset: number;
  rangeLength: number;
  seq: number;
  t: number;
}

/** One per filesystem; hands out per-inode witnesses and aggregates their counts. */
export class Witness {
  readonly maxRanges: number;
  readonly maxUnitsPerRange: number;
  readonly maxAgeMs: number;
  trace: ((r: Resurrection) => void) | undefined;
  readonly counts: WitnessStats = {
    rangesRecorded: 0,
    unitsRecorded: 0,
    writesChecked: 0,
    writesOverlapping: 0,
    resurrections: 0,
    resurrectingWrites: 0,
    unitsDigested: 0,
    rangesTruncated: 0,
  };
  private seq = 0;

  constructor(opts: WitnessOptions = {}) {
    this.maxRanges = opts.maxRanges ?? 256;
    this.maxUnitsPerRange = opts.maxUnitsPerRange ?? 65536;
    this.maxAgeMs = opts.maxAgeMs ?? 30_000;
    this.trace = opts.trace;
  }

  forInode(ino: number): InodeWitness {
    return new InodeWitness(this, ino);
  }

  stats(): WitnessStats {
    return { ...this.counts };
  }

  /** @internal */ nextSeq(): number {
    return ++this.seq;
  }
}

export class InodeWitness {
  private recs: Rec[] = [];
  // Bounding interval of all remembered non-zero units: the whole cost of a non-overlapping write.
  private lo = Infinity;
  private hi = -Infinity;

  constructor(
    readonly witness: Witness,
    readonly ino: number,
  ) {}

  /**
   * Remember the content [offset, offset+length) held before a punch / zero range. `page(index)`
   * returns page `index`'s current content (null = hole); `nextData(from)`, if given, the first page
   * >= from that may hold data (-1: none), so holes of a huge sparse range are skipped. Call it under
   * the exclusive lock, before anything changes. Only units fully inside the range and below `size`
   * are recorded.
   */
  async record(
    op: 'punch' | 'zero',
    offset: number,
    length: number,
    size: number,
    page: (index: number) => Buffer | null | Promise<Buffer | null>,
    nextData?: (from: number) => number,
  ): Promise<void> {
    const w = this.witness;
    const start = Math.ceil(offset / WITNESS_UNIT) * WITNESS_UNIT;
    const end = Math.floor(Math.min(offset + length, size) / WITNESS_UNIT) * WITNESS_UNIT;
    if (end <= start) return;
    const P = 4096;
    const digests = new Map<number, number>();
    let lo = Infinity;
    let hi = -Infinity;
    const lastPage = Math.ceil(end / P); // exclusive
    scan: for (let pi = Math.floor(start / P); pi < lastPage; pi++) {
      if (nextData !== undefined) {
        const n = nextData(pi);
        if (n < 0 || n >= lastPage) break;
        pi = Math.max(pi, n);
      }
      let b = page(pi);
      if (b !== null && !(b instanceof Buffer)) b = await b;
      if (b === null) continue;
      const ps = pi * P;
      for (let u = Math.max(ps, start); u < Math.min(ps + P, end); u += WITNESS_UNIT) {
        w.counts.unitsDigested++;
        const d = unitDigest(b, u - ps);
        if (d === 0) continue;
        if (digests.size >= w.maxUnitsPerRange) {
          w.counts.rangesTruncated++;
          break scan;
        }
        digests.set(u, d);
        if (u < lo) lo = u;
        hi = u + WITNESS_UNIT;
      }
    }
    w.counts.rangesRecorded++;
    if (digests.size === 0) return;
    w.counts.unitsRecorded += digests.size;
    this.expire();
    if (this.recs.length >= w.maxRanges) this.recs.shift();
    this.recs.push({ digests, lo, hi, op, rangeOffset: offset, rangeLength: length, seq: w.nextSeq(), t: performance.now() });
    this.recompute();
  }

  /** Check a WRITE of `data` at `offset`; returns the number of resurrected units (usually 0). */
  check(offset: number, data: Uint8Array): number {
    const w = this.witness;
    w.counts.writesChecked++;
    const end = offset + data.length;
    if (end <= this.lo || offset >= this.hi) return 0;
    return this.checkSlow(offset, end, data);
  }

  private checkSlow(offset: number, end: number, data: Uint8Array): number {
    const w = this.witness;
    if (this.expire()) {
      this.recompute();
      if (end <= this.lo || offset >= this.hi) return 0;
    }
    w.counts.writesOverlapping++;
    const now = performance.now();
    const ustart = Math.ceil(offset / WITNESS_UNIT) * WITNESS_UNIT;
    const uend = Math.floor(end / WITNESS_UNIT) * WITNESS_UNIT;
    let found = 0;
    for (let u = Math.max(ustart, this.lo); u < Math.min(uend, this.hi); u += WITNESS_UNIT) {
      let d = -1;
      // newest first: report the most recent punch that removed this content
      for (let i = this.recs.length - 1; i >= 0; i--) {
        const r = this.recs[i]!;
        if (u < r.lo || u >= r.hi) continue;
        const rd = r.digests.get(u);
        if (rd === undefined) continue;
        if (d < 0) {
          w.counts.unitsDigested++;
          d = hashUnit(data, u - offset); // recorded digests are never those of zero units...
        }
        if (d === rd && unitDigest(data, u - offset) !== 0) {
          // ...so only a (rare) hash match needs the zero test
          found++;
          w.counts.resurrections++;
          w.trace?.({
            ino: this.ino,
            unitOffset: u,
            op: r.op,
            rangeOffset: r.rangeOffset,
            rangeLength: r.rangeLength,
            seq: r.seq,
            ageMs: now - r.t,
            writeOffset: offset,
            writeLength: end - offset,
          });
          break;
        }
      }
    }
    if (found > 0) w.counts.resurrectingWrites++;
    return found;
  }

  /** Forget everything (inode destroyed). */
  clear(): void {
    this.recs = [];
    this.lo = Infinity;
    this.hi = -Infinity;
  }

  /** Ranges remembered now. */
  get remembered(): number {
    return this.recs.length;
  }

  private expire(): boolean {
    const limit = performance.now() - this.witness.maxAgeMs;
    let n = 0;
    while (n < this.recs.length && this.recs[n]!.t < limit) n++;
    if (n > 0) this.recs.splice(0, n);
    return n > 0;
  }

  private recompute(): void {
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of this.recs) {
      if (r.lo < lo) lo = r.lo;
      if (r.hi > hi) hi = r.hi;
    }
    this.lo = lo;
    this.hi = hi;
  }
}
