import { describe, expect, it } from 'vitest';
import { PageCache, PageState, ZERO_PAGE } from '../src/fs/page-cache.js';
import { FsError, PAGE_SIZE } from '../src/fs/types.js';

const page = (v: number): Buffer => Buffer.alloc(PAGE_SIZE, v);

function deferred<T>(): { p: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const p = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  return { p, resolve, reject };
}

describe('PageCache', () => {
  it('single-flight fills: concurrent misses share one load', async () => {
    const c = new PageCache({ capacityPages: 8 });
    const ip = c.forInode(1);
    const d = deferred<Buffer | null>();
    let loads = 0;
    const load = (): Promise<Buffer | null> => (loads++, d.p);
    const a = ip.fill(3, load);
    const b = ip.fill(3, load);
    expect(a).toBeInstanceOf(Promise);
    expect(b).toBe(a);
    expect(ip.get(3)!.state).toBe(PageState.Filling);
    expect(ip.readSync(3 * PAGE_SIZE, 4 * PAGE_SIZE)).toBeUndefined(); // a filling page is a miss
    d.resolve(page(7));
    expect((await a)[0]).toBe(7);
    expect(loads).toBe(1);
    expect(ip.fill(3, load)).toBeInstanceOf(Buffer); // now a hit, synchronously
    expect(c.stats()).toMatchObject({ fills: 1, fillsShared: 1, pages: 1, clean: 1, filling: 0 });
    c.checkInvariants();
  });

  it('a failed fill rejects every waiter and leaves nothing behind', async () => {
    const c = new PageCache({ capacityPages: 8 });
    const ip = c.forInode(1);
    const d = deferred<Buffer | null>();
    const a = ip.fill(0, () => d.p);
    const b = ip.fill(0, () => d.p);
    d.reject(new FsError('EIO'));
    await expect(a).rejects.toMatchObject({ code: 'EIO' });
    await expect(b).rejects.toMatchObject({ code: 'EIO' });
    expect(ip.get(0)).toBeUndefined();
    expect(c.stats()).toMatchObject({ pages: 0, filling: 0, fillErrors: 1 });
    // a synchronous throw of the loader behaves the same
    await expect(ip.fill(0, () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(ip.size).toBe(0);
    // so does a loader returning a buffer of the wrong size
    await expect(ip.fill(0, async () => Buffer.alloc(10))).rejects.toThrow(/returned 10 bytes/);
    expect(c.stats()).toMatchObject({ pages: 0, filling: 0, fillErrors: 3 });
    // and the next fill works
    expect((await ip.fill(0, async () => null))).toBe(ZERO_PAGE);
    c.checkInvariants();
  });

  it('evicts least recently used clean pages only, synchronously, across inodes', async () => {
    const c = new PageCache({ capacityPages: 3, dirtyLimitPages: 3 });
    const a = c.forInode(1);
    const b = c.forInode(2);
    a.setClean(0, page(1));
    a.setClean(1, page(2));
    b.setDirty(0, page(3)); // never evicted
    expect(a.readSync(0, 10)![0]).toBe(1); // touch a:0 -> a:1 is LRU
    b.setClean(1, page(4)); // over capacity -> evict a:1
    expect(a.get(1)).toBeUndefined();
    expect(a.get(0)).toBeDefined();
    expect(b.get(0)!.state).toBe(PageState.Dirty);
    b.setClean(2, page(5)); // evicts a:0 (LRU), not the dirty page
    expect(a.get(0)).toBeUndefined();
    expect(b.get(0)).toBeDefined();
    expect(c.stats().evictions).toBe(2);
    // a filling page is not evictable either
    const d = deferred<Buffer | null>();
    const f = b.fill(9, () => d.p);
    b.setClean(3, page(6));
    expect(b.get(9)!.state).toBe(PageState.Filling);
    d.resolve(page(9));
    await f;
    c.checkInvariants();
    expect(c.count).toBeLessThanOrEqual(3);
  });

  it('readSync: zero-copy inside a page, copy across pages, undefined on any miss', () => {
    const c = new PageCache({ capacityPages: 16 });
    const ip = c.forInode(1);
    const p0 = page(1);
    ip.setClean(0, p0);
    ip.setClean(1, page(2));
    const whole = ip.readSync(0, PAGE_SIZE)!;
    expect(whole).toBe(p0);
    const part = ip.readSync(100, 200)!;
    expect(part.buffer).toBe(p0.buffer);
    expect(part.length).toBe(100);
    const span = ip.readSync(PAGE_SIZE - 2, PAGE_SIZE + 2)!;
    expect([...span]).toEqual([1, 1, 2, 2]);
    expect(ip.readSync(PAGE_SIZE, 2 * PAGE_SIZE + 1)).toBeUndefined();
  });

  it('copy-on-write: a buffer handed out never changes', () => {
    const c = new PageCache({ capacityPages: 16 });
    const ip = c.forInode(1);
    ip.setClean(0, page(1));
    const got = ip.readSync(0, PAGE_SIZE)!;
    ip.setClean(0, page(2));
    ip.drop(0);
    expect(got.every((x) => x === 1)).toBe(true);
  });

  it('drops ranges by index, including huge ranges, in any state', () => {
    const c = new PageCache({ capacityPages: 16 });
    const ip = c.forInode(1);
    for (let i = 0; i < 6; i++) ip.setClean(i * 1000, page(i));
    ip.setDirty(7000, page(9));
    ip.dropRange(2000, Infinity);
    expect([...ip.pages()].map((p) => p.index).sort((a, b) => a - b)).toEqual([0, 1000]);
    expect(c.stats()).toMatchObject({ dirty: 0, pages: 2, dropped: 5 });
    ip.dropRange(0, 1);
    expect(ip.get(0)).toBeUndefined();
    c.checkInvariants();
  });

  it('writeback transitions and dirty accounting', () => {
    const c = new PageCache({ capacityPages: 4, dirtyLimitPages: 2 });
    const ip = c.forInode(1);
    expect(c.dirtyRoom(2)).toBe(true);
    ip.setDirty(0, page(1));
    ip.setDirty(5, page(1));
    expect(c.dirtyRoom(1)).toBe(false);
    expect(ip.dirtyIndexes()).toEqual([0, 5]);
    expect(ip.nextDirty(1)).toBe(5);
    const p = ip.get(0)!;
    ip.startWriteback(p);
    expect(ip.isDirty(0)).toBe(true);
    ip.endWriteback(p, false);
    expect(p.state).toBe(PageState.Dirty);
    ip.startWriteback(p);
    ip.endWriteback(p, true);
    expect(p.state).toBe(PageState.Clean);
    expect(ip.dirtyCount).toBe(1);
    c.checkInvariants();
    c.removeInode(ip);
    expect(c.stats()).toMatchObject({ pages: 0, dirty: 0, inodes: 0 });
  });

  it('requestFlush calls the flushers of inodes with dirty pages once per turn', async () => {
    const c = new PageCache({ capacityPages: 4 });
    const a = c.forInode(1);
    const b = c.forInode(2);
    let fa = 0;
    let fb = 0;
    a.flusher = () => fa++;
    b.flusher = () => fb++;
    a.setDirty(0, page(1));
    c.requestFlush();
    c.requestFlush();
    await new Promise((r) => setImmediate(r));
    expect([fa, fb]).toEqual([1, 0]);
  });

  it('validates options', () => {
    expect(() => new PageCache({ capacityPages: -1 })).toThrow(RangeError);
    expect(() => new PageCache({ capacityPages: 1.5 })).toThrow(RangeError);
    expect(new PageCache().capacity).toBe(65536);
    expect(new PageCache({ capacityPages: 0 }).capacity).toBe(0);
  });
});
