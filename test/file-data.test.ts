import { describe, expect, it } from 'vitest';
import { createFileData, DataPathStats } from '../src/fs/file-data.js';
import { PageCache, PageState } from '../src/fs/page-cache.js';
import { Faults, DELAY_POINTS } from '../src/faults/index.js';
import {
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_NO_HIDE_STALE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_UNSHARE_RANGE,
  FALLOC_FL_ZERO_RANGE,
  FsError,
  MAX_FILE_SIZE,
  PAGE_SIZE,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_HOLE,
} from '../src/fs/types.js';
import { TestStore } from './helpers/dp-store.js';
import { pattern } from './helpers/dp-model.js';

const P = PAGE_SIZE;
const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

function setup(opts: Parameters<typeof createFileData>[2] = {}, size = 0) {
  const store = new TestStore();
  const cache = opts.cache ?? new PageCache({ capacityPages: 64 });
  const fd = createFileData(7, store, { cache, initialSize: size, ...opts });
  return { store, cache, fd };
}

const errno = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
  return 'OK';
};

const deferred = () => {
  let resolve!: () => void;
  const p = new Promise<void>((r) => (resolve = r));
  return { p, resolve };
};

describe('CachedFileData: read paths', () => {
  it('R6: a fully cached read is answered synchronously (a Buffer, not a Promise), zero-copy inside a page', async () => {
    const { fd, store } = setup();
    await fd.write(0, pattern(1, 3 * P));
    const r1 = fd.read(0, P);
    expect(r1).toBeInstanceOf(Buffer);
    expect(fd.read(0, P)).toBe(r1); // the immutable page buffer itself
    expect(fd.read(P - 10, 20)).toBeInstanceOf(Buffer); // spans two cached pages: copied, still sync
    expect(Buffer.from(fd.read(100, 3 * P) as Buffer)).toEqual(pattern(1, 3 * P).subarray(100));
    // a missing page makes it a Promise (shared lock path)
    await fd.setSize(6 * P);
    store.put(5 * P, pattern(2, P)); // changed behind the data path's back (as if never cached)
    const miss = fd.read(5 * P, P);
    expect(miss).toBeInstanceOf(Promise);
    expect(await miss).toEqual(pattern(2, P));
    expect(fd.read(5 * P, P)).toBeInstanceOf(Buffer);
    expect(fd.stats.snapshot()).toMatchObject({ reads: 6, readHits: 5, readMisses: 1 });
  });

  it('capacity 0 = no cache: every read goes to the store', async () => {
    const { fd, store } = setup({ cache: new PageCache({ capacityPages: 0 }) });
    await fd.write(0, pattern(1, 2 * P));
    store.logging = true;
    const a = fd.read(10, P);
    expect(a).toBeInstanceOf(Promise);
    expect(await a).toEqual(pattern(1, 2 * P).subarray(10, 10 + P));
    expect(await fd.read(10, P)).toEqual(pattern(1, 2 * P).subarray(10, 10 + P));
    expect(store.log.filter((l) => l.startsWith('readPage')).length).toBe(4);
  });

  it('never short inside EOF, never past EOF; holes read as zeros', async () => {
    const { fd } = setup();
    await fd.write(3 * P + 5, Buffer.from('abc'));
    expect(fd.size).toBe(3 * P + 8);
    const all = await fd.read(0, 10 * P);
    expect(all.length).toBe(3 * P + 8);
    expect(all.subarray(0, 3 * P + 5).every((b) => b === 0)).toBe(true);
    expect(all.subarray(3 * P + 5).toString()).toBe('abc');
    expect((await fd.read(3 * P + 8, 10)).length).toBe(0);
    expect((await fd.read(1 << 30, 10)).length).toBe(0);
    expect(await errno(Promise.resolve().then(() => fd.read(-1, 10)))).toBe('EINVAL');
    await fd.setSize(2 ** 40);
    expect(await errno(Promise.resolve().then(() => fd.read(0, 2 ** 40)))).toBe('EINVAL'); // no giant buffer
    expect((await fd.read(2 ** 40 - 5, 2 ** 40)).length).toBe(5); // a long request at EOF is fine
  });

  it('readahead fills pages beyond a miss but never past EOF', async () => {
    const { fd, store, cache } = setup({ readaheadPages: 4 }, 3 * P + 100);
    store.put(0, pattern(3, 3 * P + 100));
    await fd.read(0, 10);
    const ip = cache.forInode(7);
    expect([...ip.pages()].map((p) => p.index).sort()).toEqual([0, 1, 2, 3]);
    expect(fd.stats.readaheadPages).toBe(3);
    expect(ip.get(3)!.buf!.subarray(100).every((b) => b === 0)).toBe(true);
    expect(fd.read(P, 2 * P + 100)).toBeInstanceOf(Buffer);
  });

  it('a failed store read rejects every waiting reader and leaves no page behind', async () => {
    const { fd, store, cache } = setup({}, 2 * P);
    store.put(0, pattern(4, 2 * P));
    let fail = true;
    store.failures.set('readPage', () => (fail ? new FsError('EIO', 'media') : undefined));
    const a = fd.read(0, P);
    const b = fd.read(0, 2 * P);
    expect(await errno(a as Promise<Buffer>)).toBe('EIO');
    expect(await errno(b as Promise<Buffer>)).toBe('EIO');
    expect(cache.stats()).toMatchObject({ filling: 0, pages: 0 });
    expect(fd.lock.idle).toBe(true);
    fail = false;
    expect(await fd.read(0, 2 * P)).toEqual(pattern(4, 2 * P));
  });
});

describe('CachedFileData: write, truncate, fallocate', () => {
  it('writes update store and cache before resolving; extending writes grow the size', async () => {
    const sizes: number[] = [];
    const { fd, store } = setup({ onSizeChange: (s) => sizes.push(s) });
    expect(await fd.write(100, pattern(1, 5000))).toBe(5000);
    expect(fd.size).toBe(5100);
    expect(store.content(5100).subarray(100)).toEqual(pattern(1, 5000));
    expect(fd.read(0, 5100)).toBeInstanceOf(Buffer); // derivable pages were cached
    await fd.write(50, Buffer.from('xy'));
    expect((fd.read(50, 3) as Buffer).toString('latin1')).toBe('xy\0');
    expect((fd.read(99, 2) as Buffer)[1]).toBe(pattern(1, 1)[0]);
    expect(sizes).toEqual([5100]);
    expect(fd.blocks).toBe(2 * 8);
    expect(await errno(fd.write(MAX_FILE_SIZE - 1, Buffer.alloc(2)))).toBe('EFBIG');
    expect(await errno(fd.write(-1, Buffer.alloc(2)))).toBe('EINVAL');
    expect(await fd.write(10, Buffer.alloc(0))).toBe(0);
  });

  it('truncate down then up reads zeros past the old cut (P8), cached tail zeroed copy-on-write', async () => {
    const { fd, store } = setup();
    await fd.write(0, pattern(1, 3 * P));
    const before = fd.read(0, P) as Buffer;
    const copy = Buffer.from(before);
    await fd.setSize(P / 2);
    expect(before).toEqual(copy); // the old buffer was not edited
    expect(fd.size).toBe(P / 2);
    expect((await fd.read(0, 3 * P)).length).toBe(P / 2);
    await fd.setSize(3 * P);
    const all = await fd.read(0, 3 * P);
    expect(all.subarray(0, P / 2)).toEqual(pattern(1, P / 2));
    expect(all.subarray(P / 2).every((b) => b === 0)).toBe(true);
    expect(store.zeroFrom(P / 2)).toBe(true);
    expect(await errno(fd.setSize(MAX_FILE_SIZE + 1))).toBe('EFBIG');
    expect(await errno(fd.setSize(-1))).toBe('EINVAL');
    await fd.setSize(MAX_FILE_SIZE);
    expect(fd.size).toBe(MAX_FILE_SIZE);
  });

  it('punch: whole pages dropped, partial pages zeroed; size unchanged', async () => {
    const { fd, store, cache } = setup();
    const data = pattern(2, 4 * P);
    await fd.write(0, data);
    await fd.fallocate(PUNCH, 1000, 2 * P + 10);
    const want = Buffer.from(data);
    want.fill(0, 1000, 1000 + 2 * P + 10);
    expect(fd.size).toBe(4 * P);
    expect(store.content(4 * P)).toEqual(want);
    const ip = cache.forInode(7);
    expect(ip.get(1)).toBeUndefined(); // whole page dropped
    expect(ip.get(0)!.buf).toEqual(want.subarray(0, P)); // partial: zeroed copy, still cached
    expect(ip.get(2)!.buf).toEqual(want.subarray(2 * P, 3 * P));
    expect(await fd.read(0, 4 * P)).toEqual(want);
    expect(store.pages.has(1)).toBe(false);
  });

  it('fallocate modes, errors and size effects', async () => {
    const { fd, store } = setup();
    for (const mode of [
      FALLOC_FL_PUNCH_HOLE,
      FALLOC_FL_COLLAPSE_RANGE,
      FALLOC_FL_INSERT_RANGE,
      FALLOC_FL_UNSHARE_RANGE,
      FALLOC_FL_NO_HIDE_STALE | PUNCH,
      FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
      0x100,
      -1,
    ]) {
      expect(await errno(fd.fallocate(mode, 0, P))).toBe('EOPNOTSUPP');
    }
    expect(await errno(fd.fallocate(0, -1, P))).toBe('EINVAL');
    expect(await errno(fd.fallocate(0, 0, 0))).toBe('EINVAL');
    expect(await errno(fd.fallocate(0, 0, -5))).toBe('EINVAL');
    expect(await errno(fd.fallocate(0, MAX_FILE_SIZE - P, 2 * P))).toBe('EFBIG');
    await fd.fallocate(FALLOC_FL_KEEP_SIZE, 0, 2 * P);
    expect(fd.size).toBe(0);
    expect(store.allocatedPages()).toBe(2);
    await fd.fallocate(0, P, 2 * P + 1);
    expect(fd.size).toBe(3 * P + 1);
    expect(store.allocatedPages()).toBe(4);
    await fd.write(0, pattern(5, 3 * P + 1));
    await fd.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 10, 20 * P);
    expect(fd.size).toBe(3 * P + 1);
    const r = await fd.read(0, 4 * P);
    expect(r.subarray(0, 10)).toEqual(pattern(5, 10));
    expect(r.subarray(10).every((b) => b === 0)).toBe(true);
    await fd.fallocate(FALLOC_FL_ZERO_RANGE, 5 * P, 100);
    expect(fd.size).toBe(5 * P + 100);
    expect(store.pages.has(5)).toBe(true); // zero range leaves the range allocated
  });

  it('seek SEEK_DATA / SEEK_HOLE from the store; ENXIO at or past EOF', async () => {
    const { fd } = setup();
    await fd.write(2 * P, pattern(1, P));
    await fd.write(5 * P, pattern(1, 10));
    expect(fd.size).toBe(5 * P + 10);
    expect(fd.seek(0, SEEK_DATA)).toBe(2 * P);
    expect(fd.seek(2 * P + 7, SEEK_DATA)).toBe(2 * P + 7);
    expect(fd.seek(3 * P, SEEK_DATA)).toBe(5 * P);
    expect(fd.seek(0, SEEK_HOLE)).toBe(0);
    expect(fd.seek(2 * P + 1, SEEK_HOLE)).toBe(3 * P);
    expect(fd.seek(5 * P + 3, SEEK_HOLE)).toBe(5 * P + 10); // the implicit hole at EOF
    expect(() => fd.seek(5 * P + 10, SEEK_DATA)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
    expect(() => fd.seek(5 * P + 10, SEEK_HOLE)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
    expect(() => fd.seek(-1, SEEK_DATA)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
    expect(() => fd.seek(0, SEEK_CUR)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    await fd.fallocate(PUNCH, 5 * P, P);
    expect(() => fd.seek(3 * P, SEEK_DATA)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
  });

  it('destroy drops the cache and the store; later calls fail with ESTALE', async () => {
    const { fd, store, cache } = setup();
    await fd.write(0, pattern(1, 2 * P));
    await fd.destroy();
    expect(store.destroyed).toBe(true);
    expect(cache.stats()).toMatchObject({ pages: 0, inodes: 0 });
    expect(fd.blocks).toBe(0);
    expect(await errno(Promise.resolve().then(() => fd.read(0, 1)))).toBe('ESTALE');
    expect(await errno(fd.write(0, Buffer.from('x')))).toBe('ESTALE');
    await fd.destroy(); // idempotent
  });
});

describe('CachedFileData: interrupts and delay points', () => {
  it('an interrupt aborts only a waiting acquisition (EINTR, no effect); running requests complete', async () => {
    const gate = deferred();
    const faults = new Faults();
    const { fd, store } = setup({ faults });
    await fd.write(0, pattern(1, 2 * P));
    // hold the exclusive lock inside a punch: block its store call
    let first = true;
    store.setGate((label) => (label.startsWith('punch') && first ? ((first = false), gate.p) : undefined));
    const punch = fd.fallocate(PUNCH, P, P);
    await new Promise((r) => setImmediate(r));
    const ctl = new AbortController();
    const r = fd.read(P, P, ctl.signal); // page 1 was dropped: miss, waits for the lock
    const w = fd.write(P, Buffer.from('zz'), ctl.signal);
    const hit = fd.read(0, 10, ctl.signal); // page 0 untouched: synchronous hit, unaffected
    expect(hit).toBeInstanceOf(Buffer);
    ctl.abort();
    expect(await errno(r as Promise<Buffer>)).toBe('EINTR');
    expect(await errno(w)).toBe('EINTR');
    gate.resolve();
    await punch;
    expect((await fd.read(P, P)).every((b) => b === 0)).toBe(true); // the aborted write did nothing
    expect(fd.stats.interrupted).toBe(2);
    expect(fd.lock.idle).toBe(true);
  });

  it('every data-path delay point fires on its path; read-before-reply is left to the daemon', async () => {
    const faults = new Faults({ delays: DELAY_POINTS.map((p) => `${p}=0`) });
    const { fd, store } = setup({ faults });
    await fd.setSize(2 * P);
    store.put(0, pattern(9, P));
    await fd.read(0, P); // miss: fill points
    expect(fd.read(0, P)).toBeInstanceOf(Buffer); // a hit stays synchronous with every delay on
    await fd.write(0, Buffer.from('a'));
    await fd.fallocate(PUNCH, 0, 10);
    await fd.fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 10);
    await fd.setSize(P);
    expect(Object.keys(faults.stats().delaysFired).sort()).toEqual(DELAY_POINTS.filter((p) => p !== 'read-before-reply').sort());
  });
});

describe('CachedFileData: writeback cache mode', () => {
  it('writes stay dirty until sync; reads see them; eviction never drops them', async () => {
    const cache = new PageCache({ capacityPages: 4, dirtyLimitPages: 3 });
    const { fd, store } = setup({ cache, cacheMode: 'writeback' });
    await fd.write(0, pattern(1, 2 * P));
    expect(store.allocatedPages()).toBe(0);
    expect(cache.stats().dirty).toBe(2);
    // churn clean pages through the small cache
    const other = createFileData(8, new TestStore(), { cache, initialSize: 10 * P });
    for (let i = 0; i < 10; i++) await other.read(i * P, P);
    expect(cache.stats().dirty).toBe(2);
    expect(fd.read(0, 2 * P)).toEqual(pattern(1, 2 * P));
    expect(fd.seek(0, SEEK_DATA)).toBe(0); // dirty pages are data
    expect(fd.seek(0, SEEK_HOLE)).toBe(2 * P);
    await fd.sync();
    expect(store.content(2 * P)).toEqual(pattern(1, 2 * P));
    expect(cache.stats().dirty).toBe(0);
    cache.checkInvariants();
  });

  it('a partial write to an uncached page fills it first (under the exclusive lock)', async () => {
    const { fd, store } = setup({ cacheMode: 'writeback' }, 2 * P);
    store.put(0, pattern(2, 2 * P));
    await fd.write(100, Buffer.from('hello'));
    const want = pattern(2, 2 * P);
    want.write('hello', 100, 'latin1');
    expect(await fd.read(0, 2 * P)).toEqual(want);
    expect(store.content(2 * P)).toEqual(pattern(2, 2 * P));
    await fd.sync();
    expect(store.content(2 * P)).toEqual(want);
  });

  it('the dirty limit makes writes go through and requests a background flush', async () => {
    const cache = new PageCache({ capacityPages: 64, dirtyLimitPages: 2 });
    const stats = new DataPathStats();
    const { fd, store } = setup({ cache, cacheMode: 'writeback', stats });
    await fd.write(0, pattern(1, 2 * P));
    await fd.write(2 * P, pattern(2, P)); // no room: write-through
    expect(stats.writebackFallbacks).toBe(1);
    expect(store.content(3 * P).subarray(2 * P)).toEqual(pattern(2, P));
    for (let i = 0; i < 5 && cache.stats().dirty > 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(cache.stats().dirty).toBe(0); // background flush wrote the dirty pages
    expect(store.content(2 * P)).toEqual(pattern(1, 2 * P));
    expect(stats.flushedPages).toBe(2);
  });

  it('punch and truncate keep the live bytes of dirty partial pages', async () => {
    const { fd, store, cache } = setup({ cacheMode: 'writeback' });
    const data = pattern(3, 3 * P);
    await fd.write(0, data);
    await fd.fallocate(PUNCH, 100, P); // partial pages 0 and 1
    await fd.setSize(2 * P + 50); // dirty partial tail page 2
    const want = Buffer.from(data.subarray(0, 2 * P + 50));
    want.fill(0, 100, 100 + P);
    expect(await fd.read(0, 3 * P)).toEqual(want);
    await fd.sync();
    expect(store.content(2 * P + 50)).toEqual(want);
    expect(store.zeroFrom(2 * P + 50)).toBe(true);
    for (const p of cache.forInode(7).pages()) expect(p.state).toBe(PageState.Clean);
  });

  it('a failed flush keeps the pages dirty and reports the error', async () => {
    const { fd, store, cache } = setup({ cacheMode: 'writeback' });
    await fd.write(0, pattern(1, P));
    store.failures.set('write', () => new FsError('ENOSPC'));
    expect(await errno(fd.sync())).toBe('ENOSPC');
    expect(cache.stats().dirty).toBe(1);
    store.failures.clear();
    await fd.sync();
    expect(store.content(P)).toEqual(pattern(1, P));
  });
});

describe('CachedFileData: out-of-band changes', () => {
  it('return the page range to notify; truncate to the end of file', async () => {
    const { fd } = setup();
    await fd.write(0, pattern(1, 4 * P));
    expect(await fd.punch(100, 200)).toEqual({ offset: 0, length: P, size: 4 * P, changed: true });
    expect(await fd.zero(P + 1, P)).toEqual({ offset: P, length: 2 * P, size: 4 * P, changed: true });
    expect(await fd.writeAt(4 * P, Buffer.from('x'))).toEqual({ offset: 4 * P, length: P, size: 4 * P + 1, changed: true });
    expect(await fd.truncate(P + 5)).toEqual({ offset: P, length: 0, size: P + 5, changed: true });
    expect(await fd.truncate(P + 5)).toMatchObject({ changed: false });
    expect(await errno(fd.punch(-1, 5))).toBe('EINVAL');
    expect(await errno(fd.zero(0, 0))).toBe('EINVAL');
    expect(await errno(fd.truncate(MAX_FILE_SIZE + 1))).toBe('EFBIG');
  });

  it('beforeChange runs before the exclusive lock is requested (notify-before-change re-opens the race)', async () => {
    const { fd, store } = setup({}, P);
    store.put(0, pattern(1, P));
    const gate = deferred();
    let readDuring: Buffer | null = null;
    const punched = fd.punch(0, P, {
      beforeChange: async () => {
        expect(fd.lock.idle).toBe(true); // nothing held yet
        readDuring = await fd.read(0, P); // a kernel re-fault here gets the OLD data...
        gate.resolve();
      },
    });
    await gate.p;
    await punched;
    expect(readDuring).toEqual(pattern(1, P)); // ...and would keep it: no notify follows
    expect((await fd.read(0, P)).every((b) => b === 0)).toBe(true);
  });
});
