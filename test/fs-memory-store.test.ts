import { describe, expect, it } from 'vitest';
import { MemoryStoreBackend, CHUNK_PAGES } from '../src/fs/memory-store.js';
import { FsError, MAX_FILE_SIZE, PAGE_SIZE } from '../src/fs/types.js';

const P = PAGE_SIZE;
const TiB = 2 ** 40;

function fill(n: number, byte: number): Buffer {
  return Buffer.alloc(n, byte);
}

async function errnoOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
  return undefined;
}

describe('MemoryStoreBackend', () => {
  it('holes cost nothing: a write at 15 TiB allocates one page and one chunk', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    await s.write(15 * TiB, fill(10, 7));
    expect(s.allocatedPages()).toBe(1);
    expect(s.chunkCount).toBe(1);
    expect(b.usage().usedBytes).toBe(P);
    expect(await s.readPage(0)).toBeNull();
    expect(await s.readPage(15 * TiB / P - 1)).toBeNull();
    const p = await s.readPage(15 * TiB / P);
    expect(p).not.toBeNull();
    expect(p!.subarray(0, 10).equals(fill(10, 7))).toBe(true);
    expect(p!.subarray(10).every((x) => x === 0)).toBe(true);
  });

  it('readPage returns a fresh copy, write copies its input', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    const src = fill(P, 1);
    await s.write(0, src);
    src.fill(9); // caller reuses its buffer
    const a = (await s.readPage(0))!;
    expect(a[0]).toBe(1);
    a.fill(5); // caller scribbles on the copy
    expect((await s.readPage(0))![0]).toBe(1);
  });

  it('writes spanning pages, partial pages keep their other bytes', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    await s.write(P - 3, fill(P + 6, 0xaa)); // pages 0, 1, 2
    expect(s.allocatedPages()).toBe(3);
    await s.write(P + 10, fill(2, 0xbb));
    const p1 = (await s.readPage(1))!;
    expect(p1[9]).toBe(0xaa);
    expect(p1[10]).toBe(0xbb);
    expect(p1[11]).toBe(0xbb);
    expect(p1[12]).toBe(0xaa);
    const p2 = (await s.readPage(2))!;
    expect(p2[2]).toBe(0xaa);
    expect(p2[3]).toBe(0);
    const p0 = (await s.readPage(0))!;
    expect(p0[P - 4]).toBe(0);
    expect(p0[P - 3]).toBe(0xaa);
  });

  it('punch frees whole pages and zeroes partial ones', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    await s.write(0, fill(4 * P, 0x11));
    expect(b.usage().usedBytes).toBe(4 * P);
    await s.punch(100, 2 * P); // zero page 0 from 100, free page 1, zero page 2 up to 100
    expect(s.allocatedPages()).toBe(3);
    expect(b.usage().usedBytes).toBe(3 * P);
    expect(await s.readPage(1)).toBeNull();
    const p0 = (await s.readPage(0))!;
    expect(p0.subarray(0, 100).every((x) => x === 0x11)).toBe(true);
    expect(p0.subarray(100).every((x) => x === 0)).toBe(true);
    const p2 = (await s.readPage(2))!;
    expect(p2.subarray(0, 100).every((x) => x === 0)).toBe(true);
    expect(p2.subarray(100).every((x) => x === 0x11)).toBe(true);
    // Within one page.
    await s.punch(3 * P + 10, 20);
    const p3 = (await s.readPage(3))!;
    expect(p3[9]).toBe(0x11);
    expect(p3.subarray(10, 30).every((x) => x === 0)).toBe(true);
    expect(p3[30]).toBe(0x11);
    // Punching holes stays a no-op for holes, and a huge punch frees everything.
    await s.punch(0, MAX_FILE_SIZE);
    expect(s.allocatedPages()).toBe(0);
    expect(s.chunkCount).toBe(0);
    expect(b.usage().usedBytes).toBe(0);
  });

  it('truncate drops pages past the size and zeroes the tail', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    await s.write(0, fill(3 * P, 0x22));
    await s.write(5 * CHUNK_PAGES * P, fill(1, 1)); // far away, another chunk
    await s.truncate(P + 5);
    expect(s.allocatedPages()).toBe(2);
    const p1 = (await s.readPage(1))!;
    expect(p1.subarray(0, 5).every((x) => x === 0x22)).toBe(true);
    expect(p1.subarray(5).every((x) => x === 0)).toBe(true);
    expect(await s.readPage(2)).toBeNull();
    expect(s.nextDataPage(2)).toBe(-1);
    await s.truncate(0);
    expect(s.allocatedPages()).toBe(0);
    expect(b.usage().usedBytes).toBe(0);
  });

  it('allocate fills holes with zero pages, counts once, and copy-on-writes them', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 64 * P });
    const s = b.open(2);
    await s.write(P, fill(P, 3));
    await s.allocate(10, 3 * P); // pages 0..3: 0, 2, 3 are new
    expect(s.allocatedPages()).toBe(4);
    expect(b.usage().usedBytes).toBe(4 * P);
    expect((await s.readPage(0))!.every((x) => x === 0)).toBe(true);
    expect((await s.readPage(1))!.every((x) => x === 3)).toBe(true);
    await s.write(2 * P + 1, fill(1, 9));
    expect((await s.readPage(2))![1]).toBe(9);
    expect((await s.readPage(3))!.every((x) => x === 0)).toBe(true); // shared zero page untouched
    expect((await s.readPage(0))!.every((x) => x === 0)).toBe(true);
    await s.allocate(0, 4 * P); // nothing new
    expect(b.usage().usedBytes).toBe(4 * P);
  });

  it('SEEK_DATA / SEEK_HOLE helpers on a sparse multi-terabyte file', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 24 });
    const s = b.open(2);
    const a = (3 * TiB) / P; // page indices
    const c = (11 * TiB) / P;
    await s.write(a * P, fill(2 * P, 1)); // pages a, a+1
    await s.write(c * P + 5, fill(1, 1)); // page c
    await s.allocate((c + CHUNK_PAGES - 1) * P, 2 * P); // pages straddling a chunk boundary
    expect(s.nextDataPage(0)).toBe(a);
    expect(s.nextDataPage(a + 1)).toBe(a + 1);
    expect(s.nextDataPage(a + 2)).toBe(c);
    expect(s.nextDataPage(c + 1)).toBe(c + CHUNK_PAGES - 1);
    expect(s.nextDataPage(c + CHUNK_PAGES + 1)).toBe(-1);
    expect(s.nextHolePage(0)).toBe(0);
    expect(s.nextHolePage(a)).toBe(a + 2);
    expect(s.nextHolePage(c)).toBe(c + 1);
    expect(s.nextHolePage(c + CHUNK_PAGES - 1)).toBe(c + CHUNK_PAGES + 1);
    expect(s.allocatedPages()).toBe(5);
  });

  it('nextHolePage skips a long run of full chunks', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 64 << 20 });
    const s = b.open(2);
    await s.allocate(0, 3 * CHUNK_PAGES * P + 7 * P);
    expect(s.nextHolePage(0)).toBe(3 * CHUNK_PAGES + 7);
    await s.punch(2 * CHUNK_PAGES * P + 3 * P, P);
    expect(s.nextHolePage(0)).toBe(2 * CHUNK_PAGES + 3);
    expect(s.nextDataPage(2 * CHUNK_PAGES + 3)).toBe(2 * CHUNK_PAGES + 4);
  });

  it('ENOSPC at the capacity limit stores nothing, partial writes into allocated pages need no space, and freeing space recovers', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 4 * P + 100 }); // rounds down to 4 pages
    expect(b.usage().capacityBytes).toBe(4 * P);
    const s1 = b.open(2);
    const s2 = b.open(3);
    await s1.write(0, fill(3 * P, 1));
    // Needs 2 new pages, 1 free: nothing stored.
    expect(await errnoOf(s2.write(P - 1, fill(2, 2)))).toBe('ENOSPC');
    expect(s2.allocatedPages()).toBe(0);
    expect(await s2.readPage(0)).toBeNull();
    expect(b.usage().usedBytes).toBe(3 * P);
    // Across existing and new pages of s1: 1 new page needed of 1 free; fine.
    await s1.write(3 * P - 1, fill(2, 4));
    expect(b.usage().usedBytes).toBe(4 * P);
    // Full: partial and full overwrites of allocated pages still work.
    await s1.write(10, fill(P, 5));
    expect((await s1.readPage(0))![10]).toBe(5);
    expect(await errnoOf(s2.write(0, fill(1, 1)))).toBe('ENOSPC');
    expect(await errnoOf(s2.allocate(0, 1))).toBe('ENOSPC');
    expect(await errnoOf(s1.allocate(0, 5 * P))).toBe('ENOSPC');
    expect(s1.allocatedPages()).toBe(4);
    expect((await s1.readPage(3))![0]).toBe(4);
    // Free space by punching, and by destroying a store.
    await s1.punch(P, P);
    expect(b.usage().usedBytes).toBe(3 * P);
    await s2.write(0, fill(1, 6));
    expect((await s2.readPage(0))![0]).toBe(6);
    expect(await errnoOf(s2.write(P, fill(1, 1)))).toBe('ENOSPC');
    await s1.destroy();
    expect(b.usage().usedBytes).toBe(P);
    await s2.write(P, fill(3 * P, 7));
    expect(b.usage().usedBytes).toBe(4 * P);
  });

  it('open returns the same store per inode; destroy frees and forgets it', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(5);
    expect(b.open(5)).toBe(s);
    await s.write(0, fill(1, 1));
    await s.destroy();
    expect(b.has(5)).toBe(false);
    expect(await errnoOf(s.readPage(0))).toBe('EIO');
    expect(await errnoOf(s.write(0, fill(1, 1)))).toBe('EIO');
    const t = b.open(5);
    expect(t).not.toBe(s);
    expect(await t.readPage(0)).toBeNull();
    expect(b.usage().usedBytes).toBe(0);
  });

  it('bad arguments get EINVAL, never a crash', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const s = b.open(2);
    expect(await errnoOf(s.write(-1, fill(1, 1)))).toBe('EINVAL');
    expect(await errnoOf(s.write(0.5, fill(1, 1)))).toBe('EINVAL');
    expect(await errnoOf(s.write(Number.MAX_SAFE_INTEGER, fill(2, 1)))).toBe('EINVAL');
    expect(await errnoOf(s.write(0, 'abc' as unknown as Uint8Array))).toBe('EINVAL');
    expect(await errnoOf(s.punch(0, -1))).toBe('EINVAL');
    expect(await errnoOf(s.allocate(NaN, 1))).toBe('EINVAL');
    expect(await errnoOf(s.truncate(-5))).toBe('EINVAL');
    expect(await errnoOf(s.readPage(-1))).toBe('EINVAL');
    expect(await errnoOf(() => b.open(0))).toBe('EINVAL');
    expect(await errnoOf(() => new MemoryStoreBackend({ capacityBytes: -1 }))).toBe('EINVAL');
    expect(s.allocatedPages()).toBe(0);
    // Zero-length operations are no-ops.
    await s.write(0, new Uint8Array(0));
    await s.punch(0, 0);
    await s.allocate(0, 0);
    expect(s.allocatedPages()).toBe(0);
  });

  it('unlimited capacity reports Infinity; the hard page limit still gives ENOSPC, not an out-of-memory crash', async () => {
    const b = new MemoryStoreBackend({ capacityBytes: Infinity });
    expect(b.usage()).toEqual({ capacityBytes: Infinity, usedBytes: 0 });
    const s = b.open(2);
    // 16 TiB of fallocate = 4 Gi page slots: refused up front, nothing allocated.
    expect(await errnoOf(s.allocate(0, MAX_FILE_SIZE))).toBe('ENOSPC');
    expect(s.allocatedPages()).toBe(0);
    const small = new MemoryStoreBackend({ capacityBytes: Infinity, hardLimitPages: 3 });
    const t = small.open(2);
    await t.allocate(0, 3 * P);
    expect(await errnoOf(t.write(3 * P, fill(1, 1)))).toBe('ENOSPC');
    expect(t.allocatedPages()).toBe(3);
  });
});
