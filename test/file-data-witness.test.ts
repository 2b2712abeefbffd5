import { describe, expect, it } from 'vitest';
import { createFileData } from '../src/fs/file-data.js';
import { PageCache } from '../src/fs/page-cache.js';
import { unitDigest, Witness, WITNESS_UNIT, type Resurrection } from '../src/fs/witness.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, PAGE_SIZE } from '../src/fs/types.js';
import { TestStore } from './helpers/dp-store.js';

const U = WITNESS_UNIT;
/** A stress-style unit: header {magic, unit, gen} then derived non-zero bytes. */
function unit(u: number, gen: number): Buffer {
  const b = Buffer.alloc(U);
  b.writeUInt32LE(0xfa17, 0);
  b.writeUInt32LE(u, 4);
  b.writeUInt32LE(gen, 8);
  for (let i = 12; i < U; i++) b[i] = ((u * 31 + gen * 7 + i) % 255) + 1;
  return b;
}
const units = (first: number, gens: number[]): Buffer => Buffer.concat(gens.map((g, i) => unit(first + i, g)));

function setup(cached = true) {
  const trace: Resurrection[] = [];
  const witness = new Witness({ trace: (r) => trace.push(r) });
  const store = new TestStore();
  const fd = createFileData(3, store, { cache: new PageCache({ capacityPages: cached ? 64 : 0 }), witness });
  return { fd, witness, trace, store };
}

describe('kernel witness: late writeback of punched data', () => {
  it('counts a write that carries punched content back into the same unit (the 3.1 log excerpt)', async () => {
    const { fd, witness, trace } = setup();
    // page 33..34 of the finding, shrunk: units 0..7 (2 pages), generation 1
    await fd.write(0, units(0, [1, 1, 1, 1, 1, 1, 1, 1]));
    // punch units 1..6 (sub-page, like "P< 126976 29696")
    await fd.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 * U, 6 * U);
    // the kernel writes back page 0 re-dirtied by an mmap store to unit 3 (gen 2) during the punch:
    // units 0..2 carry their OLD bytes, unit 3 is new
    await fd.write(0, units(0, [1, 1, 1, 2]));
    expect(witness.stats().resurrections).toBe(2); // units 1 and 2 (unit 0 was never punched)
    expect(trace.map((t) => t.unitOffset)).toEqual([1 * U, 2 * U]);
    expect(trace[0]).toMatchObject({ ino: 3, op: 'punch', rangeOffset: U, rangeLength: 6 * U, writeOffset: 0, writeLength: PAGE_SIZE });
    // new content into the hole is legitimate
    await fd.write(4 * U, units(4, [3, 3]));
    expect(witness.stats()).toMatchObject({ resurrections: 2, resurrectingWrites: 1, rangesRecorded: 1, unitsRecorded: 6 });
  });

  it('records zero ranges too, reads uncached content from the store, ignores zero units', async () => {
    const { fd, witness, store } = setup(false);
    await fd.write(0, Buffer.concat([units(0, [5, 5]), Buffer.alloc(U), unit(3, 5)]));
    expect(store.allocatedPages()).toBe(1);
    await fd.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, PAGE_SIZE);
    expect(witness.stats().unitsRecorded).toBe(3);
    await fd.write(0, Buffer.alloc(PAGE_SIZE)); // zeros never count
    expect(witness.stats().resurrections).toBe(0);
    await fd.write(3 * U, unit(3, 5));
    expect(witness.stats().resurrections).toBe(1);
  });

  it('costs nothing measurable when no remembered range overlaps; writes before a punch never count', async () => {
    const { fd, witness } = setup();
    await fd.write(0, units(0, [1, 1, 1, 1]));
    await fd.write(10 * PAGE_SIZE, units(40, [1, 1, 1, 1]));
    await fd.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE_SIZE);
    await fd.write(10 * PAGE_SIZE, units(40, [1, 1, 1, 1]));
    expect(witness.stats()).toMatchObject({ writesChecked: 3, writesOverlapping: 0, resurrections: 0 });
  });

  it('is bounded by count and age', async () => {
    const w = new Witness({ maxRanges: 2, maxAgeMs: 1e9 });
    const iw = w.forInode(1);
    const pg = units(0, [1, 1, 1, 1]);
    for (let i = 0; i < 3; i++) await iw.record('punch', i * PAGE_SIZE, PAGE_SIZE, 1e9, () => pg);
    expect(iw.remembered).toBe(2);
    expect(iw.check(0, units(0, [1]))).toBe(0); // the first range was forgotten
    expect(iw.check(PAGE_SIZE, pg.subarray(0, U))).toBe(1);
    const old = new Witness({ maxAgeMs: -1 }).forInode(1);
    await old.record('punch', 0, PAGE_SIZE, 1e9, () => pg);
    expect(old.check(0, pg)).toBe(0);
  });

  it('a huge sparse punch reads only data pages; units per range are capped', async () => {
    const { fd, witness, store } = setup(false);
    await fd.setSize(2 ** 43);
    await fd.write(2 ** 42, units(0, [1, 1, 1, 1]));
    await fd.write(2 ** 20, units(0, [2, 2]));
    store.logging = true;
    await fd.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 ** 43);
    expect(store.log.filter((l) => l.startsWith('readPage'))).toEqual([`readPage ${2 ** 20 / PAGE_SIZE}`, `readPage ${2 ** 42 / PAGE_SIZE}`]);
    expect(witness.stats().unitsRecorded).toBe(6);
    const capped = new Witness({ maxUnitsPerRange: 3 });
    await capped.forInode(1).record('punch', 0, 2 * PAGE_SIZE, 2 * PAGE_SIZE, () => units(0, [1, 1, 1, 1]));
    expect(capped.stats()).toMatchObject({ unitsRecorded: 3, rangesTruncated: 1 });
  });

  it('unitDigest: 0 only for zero units, sensitive to the header', () => {
    expect(unitDigest(Buffer.alloc(U), 0)).toBe(0);
    const a = unit(1, 1);
    const b = unit(1, 2);
    expect(unitDigest(a, 0)).not.toBe(0);
    expect(unitDigest(a, 0)).not.toBe(unitDigest(b, 0));
    const last = Buffer.alloc(U);
    last[U - 1] = 1;
    expect(unitDigest(last, 0)).not.toBe(0);
  });
});
