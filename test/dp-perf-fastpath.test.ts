// The data path's fast paths (helper I, issue 6) under the scheduler-driven race tests and in
// isolation: synchronous page fills from FileStore.readPageShared, write-through pages shared with
// the store through FileStore.writeShared, and the memory store's copy-on-write pages.
//
// The race harness (helpers/dp-harness.ts) wraps its store in GatedStore, which exposes only the
// FileStore methods every store has, so test/file-data-races.test.ts exercises the asynchronous
// fills. Here GatedStore also forwards the optional fast-path methods of the memory store (this
// file's module instance only: vitest isolates test files), so the same schedules, the same
// linearizability check and the same quiescence checks (cache == store) run over the fast paths,
// and the bug modes must still be caught with them on.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bugs, raceProperty } from './helpers/dp-harness.js';
import { GatedStore } from './helpers/dp-store.js';
import { MemoryStoreBackend } from '../src/fs/memory-store.js';
import { PageCache } from '../src/fs/page-cache.js';
import { createFileData } from '../src/fs/file-data.js';
import { PAGE_SIZE, type FileStore } from '../src/fs/types.js';

const proto = GatedStore.prototype as unknown as FileStore & { inner: FileStore };
proto.readPageShared = function (this: GatedStore, i: number): Buffer | null {
  const f = this.inner.readPageShared;
  if (f === undefined) throw new Error('dp-perf-fastpath: inner store has no readPageShared (use backing: memory)');
  return f.call(this.inner, i);
};
proto.writeShared = function (this: GatedStore, o: number, d: Uint8Array): Buffer[] {
  const f = this.inner.writeShared;
  if (f === undefined) throw new Error('dp-perf-fastpath: inner store has no writeShared (use backing: memory)');
  return f.call(this.inner, o, d);
};

/** A store that counts the calls of the fast-path methods (proves the fast paths are taken). */
function countingStore(): { store: FileStore; calls: { shared: number; writeShared: number; readPage: number; write: number } } {
  const inner = new MemoryStoreBackend({ capacityBytes: 64 << 20 }).open(1);
  const calls = { shared: 0, writeShared: 0, readPage: 0, write: 0 };
  const store: FileStore = Object.create(inner, {
    readPageShared: { value: (i: number) => (calls.shared++, inner.readPageShared(i)) },
    writeShared: { value: (o: number, d: Uint8Array) => (calls.writeShared++, inner.writeShared(o, d)) },
    readPage: { value: (i: number) => (calls.readPage++, inner.readPage(i)) },
    write: { value: (o: number, d: Uint8Array) => (calls.write++, inner.write(o, d)) },
  });
  return { store, calls };
}

describe('fast paths under scheduler-driven races (memory store, readPageShared / writeShared live)', () => {
  it('the harness really uses the fast paths', async () => {
    const { store, calls } = countingStore();
    const cache = new PageCache({ capacityPages: 64 });
    const fd = createFileData(1, store, { cache, readaheadPages: 2 });
    await fd.write(0, Buffer.alloc(5 * PAGE_SIZE + 100, 3));
    cache.forInode(1).dropAll();
    const r = fd.read(100, 2 * PAGE_SIZE);
    const b = r instanceof Promise ? await r : r;
    expect(b.equals(Buffer.alloc(2 * PAGE_SIZE, 3))).toBe(true);
    expect(calls).toEqual({ shared: 5, writeShared: 1, readPage: 0, write: 0 }); // 3 pages + 2 readahead
    expect(fd.stats.readaheadPages).toBe(2);
  });

  it('write-through and writeback, random capacity / readahead: 2000 schedules are clean', async () => {
    await fc.assert(raceProperty({}, () => ({ backing: 'memory' })), { numRuns: 2000, seed: 606 });
  });

  it('punch / truncate heavy, small cache: 1000 schedules are clean', async () => {
    await fc.assert(
      raceProperty({ weights: { read: 6, write: 2, punch: 4, zero: 2, truncate: 4, alloc: 1 }, capacities: [2, 64] }, () => ({ backing: 'memory' })),
      { numRuns: 1000, seed: 607 },
    );
  });

  const cases: { mode: Parameters<typeof bugs>[0]; opts?: Parameters<typeof raceProperty>[0]; runs: number }[] = [
    { mode: 'no-range-lock', opts: { weights: { read: 6, punch: 4, truncate: 2, write: 2 }, modes: ['write-through'], capacities: [64] }, runs: 3000 },
    { mode: 'stale-cache-on-punch', runs: 2000 },
    { mode: 'stale-cache-on-truncate', opts: { weights: { read: 5, truncate: 5, write: 3 } }, runs: 2000 },
    { mode: 'read-past-eof', opts: { weights: { read: 6, truncate: 4, write: 1, punch: 1 }, readaheads: [0, 2], capacities: [64] }, runs: 3000 },
    { mode: 'lost-write', runs: 500 },
  ];
  for (const c of cases) {
    it(`bug mode ${c.mode} is still caught with the fast paths on`, async () => {
      const r = await fc.check(raceProperty(c.opts, () => ({ backing: 'memory', faults: bugs(c.mode) })), { numRuns: c.runs, seed: 4242 });
      expect(r.failed).toBe(true);
    });
  }
});

describe('memory store copy-on-write (pages handed out are never mutated)', () => {
  it('readPageShared / writeShared buffers keep their content across writes, punch, zero, truncate', async () => {
    const s = new MemoryStoreBackend({ capacityBytes: 64 << 20 }).open(1);
    const w = s.writeShared(0, Buffer.alloc(3 * PAGE_SIZE, 1));
    expect(w.length).toBe(3);
    const before = w.map((b) => Buffer.from(b));
    const r1 = s.readPageShared(1)!;
    expect(r1).toBe(w[1]);
    await s.write(PAGE_SIZE + 10, Buffer.alloc(20, 2)); // partial write into page 1
    await s.punch(10, 20); // partial punch of page 0
    await s.truncate(2 * PAGE_SIZE + 5); // tail of page 2 zeroed
    await s.allocate(3 * PAGE_SIZE, PAGE_SIZE);
    for (let k = 0; k < 3; k++) expect(w[k]!.equals(before[k]!)).toBe(true);
    // the store's content did change
    expect((await s.readPage(1))!.subarray(10, 30).equals(Buffer.alloc(20, 2))).toBe(true);
    expect((await s.readPage(0))!.subarray(10, 30).equals(Buffer.alloc(20, 0))).toBe(true);
    expect((await s.readPage(2))!.subarray(5).equals(Buffer.alloc(PAGE_SIZE - 5, 0))).toBe(true);
    // shared reads: holes are null, readPage is a private copy equal to the shared page
    expect(s.readPageShared(7)).toBe(null);
    const c1 = (await s.readPage(1))!;
    expect(c1).not.toBe(s.readPageShared(1));
    expect(c1.equals(s.readPageShared(1)!)).toBe(true);
  });

  it('writeShared covers partial head and tail pages with the old content', () => {
    const s = new MemoryStoreBackend({ capacityBytes: 64 << 20 }).open(1);
    s.writeShared(0, Buffer.alloc(40 * PAGE_SIZE, 9));
    const w = s.writeShared(PAGE_SIZE - 3, Buffer.alloc(20 * PAGE_SIZE + 6, 5));
    expect(w.length).toBe(22);
    expect(w[0]!.subarray(0, PAGE_SIZE - 3).equals(Buffer.alloc(PAGE_SIZE - 3, 9))).toBe(true);
    expect(w[0]!.subarray(PAGE_SIZE - 3).equals(Buffer.alloc(3, 5))).toBe(true);
    expect(w[21]!.subarray(0, 3).equals(Buffer.alloc(3, 5))).toBe(true);
    expect(w[21]!.subarray(3).equals(Buffer.alloc(PAGE_SIZE - 3, 9))).toBe(true);
    for (let k = 0; k < 22; k++) expect(s.readPageShared(k + 0)).toBe(w[k]);
  });

  it('writeShared into holes and fallocated pages zero-fills the rest of partial pages; ENOSPC stores nothing', () => {
    const be = new MemoryStoreBackend({ capacityBytes: 4 * PAGE_SIZE });
    const s = be.open(1);
    void s.allocate(0, PAGE_SIZE);
    const w = s.writeShared(100, Buffer.alloc(PAGE_SIZE, 4)); // page 0 (fallocated), page 1 (hole)
    expect(w[0]!.subarray(0, 100).equals(Buffer.alloc(100))).toBe(true);
    expect(w[1]!.subarray(100).equals(Buffer.alloc(PAGE_SIZE - 100))).toBe(true);
    expect(() => s.writeShared(2 * PAGE_SIZE, Buffer.alloc(3 * PAGE_SIZE, 1))).toThrow(/ENOSPC/);
    expect(s.readPageShared(2)).toBe(null);
    expect(s.allocatedPages()).toBe(2);
  });
});
