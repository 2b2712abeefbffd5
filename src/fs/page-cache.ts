// Userspace page cache: 4 KiB pages, a bounded global LRU, per-inode indexes, single-flight fills.
//
// Rules (range-lock-and-cache.md §3–4):
// - Page states: FILLING (holds a promise, no content yet), CLEAN (uptodate, equals the store),
//   DIRTY (uptodate, newer than the store; writeback cache mode only), WRITEBACK (being flushed).
// - Published page buffers are immutable: every change REPLACES page.buf (copy-on-write), so a
//   reply may reference a page buffer zero-copy and a reader that got a buffer keeps a consistent
//   page even if the page is replaced, dropped or evicted afterwards.
// - Only CLEAN pages sit on the LRU list; eviction pops its head synchronously (R8). FILLING, DIRTY
//   and WRITEBACK pages are never on the list, so they are never evicted. Readers hold buffers, not
//   pages, so no page reference count is needed: "unreferenced" holds by construction.
// - Single flight: concurrent misses on a page share its fill promise. A failed fill removes the
//   page and rejects every waiter; nothing is left behind.
// - Fills may only be started under the inode's range lock (shared or exclusive); invalidations
//   (dropRange / zeroing) only under the exclusive lock. The cache itself does not lock anything:
//   it is synchronous, and the data path (file-data.ts) supplies the discipline.

import { PAGE_SIZE } from './types.js';

export const PageState = { Filling: 0, Clean: 1, Dirty: 2, Writeback: 3 } as const;
export type PageState = (typeof PageState)[keyof typeof PageState];

/** One cached page. `buf` is null while FILLING, else an immutable PAGE_SIZE Buffer. */
export class CachedPage {
  state: PageState = PageState.Filling as PageState;
  buf: Buffer | null = null;
  fill: Promise<Buffer> | null = null;
  /** Removed from its inode's index while a fill or flush was still in flight. */
  detached = false;
  // LRU links (only while CLEAN and attached)
  prev: CachedPage | null = null;
  next: CachedPage | null = null;
  onLru = false;
  constructor(
    readonly owner: InodePages,
    readonly index: number,
  ) {}
}

/** Replies up to this size are carved from a shared slab (allocReply). */
const REPLY_MAX = 256 * 1024;
const REPLY_SLAB = 2 * 1024 * 1024;
let replySlab: Buffer | null = null;
let replyPos = 0;

/**
 * An uninitialised buffer of `n` bytes for a read reply assembled from several pages. Replies up to
 * 256 KiB are carved one after the other from 2 MiB slabs, never reused: one allocation per 2 MiB
 * instead of one malloc (>= 128 KiB: an mmap + page faults + munmap at GC) per reply -- measured
 * 38 -> 10 us for a 128 KiB reply. A slab is freed once every reply carved from it is garbage, so a
 * caller that keeps a small read result keeps up to 2 MiB alive (read results are short-lived).
 */
export function allocReply(n: number): Buffer {
  if (n > REPLY_MAX) return Buffer.allocUnsafe(n);
  if (replySlab === null || replyPos + n > REPLY_SLAB) {
    replySlab = Buffer.allocUnsafeSlow(REPLY_SLAB);
    replyPos = 0;
  }
  const b = replySlab.subarray(replyPos, replyPos + n);
  replyPos += (n + 7) & ~7;
  return b;
}

/** The all-zero page shared by every cached hole. Never mutate it. */
export const ZERO_PAGE: Buffer = Buffer.alloc(PAGE_SIZE);

export const DEFAULT_CACHE_PAGES = 65536; // 256 MiB

export interface PageCacheOptions {
  /** Capacity in pages (default 65536 = 256 MiB). 0 = no cache: every read goes to the store. */
  capacityPages?: number;
  /**
   * Most DIRTY pages (writeback mode) allowed before writes fall back to write-through and a flush
   * is requested. Default: a quarter of the capacity.
   */
  dirtyLimitPages?: number;
}

export interface PageCacheStats {
  capacityPages: number;
  dirtyLimitPages: number;
  /** Pages in the cache now, by state. */
  pages: number;
  clean: number;
  dirty: number;
  filling: number;
  writeback: number;
  inodes: number;
  /** Pages found uptodate by the read paths / pages that had to be filled (misses = fills). */
  hits: number;
  misses: number;
  /** Fills started, failed; fills joined by a second reader (single flight). */
  fills: number;
  fillErrors: number;
  fillsShared: number;
  evictions: number;
  /** Pages dropped by invalidation (punch, zero, truncate, destroy). */
  dropped: number;
  /** Flush requests issued because the dirty limit was reached. */
  flushRequests: number;
}

export class PageCache {
  readonly capacity: number;
  readonly dirtyLimit: number;
  private lruHead: CachedPage | null = null;
  private lruTail: CachedPage | null = null;
  /** Pages in all indexes (every state). */
  count = 0;
  dirtyCount = 0;
  fillingCount = 0;
  writebackCount = 0;
  private readonly inodes = new Map<number, InodePages>();
  private flushScheduled = false;
  // counters
  hits = 0;
  misses = 0;
  fills = 0;
  fillErrors = 0;
  fillsShared = 0;
  evictions = 0;
  dropped = 0;
  flushRequests = 0;

  constructor(opts: PageCacheOptions = {}) {
    const cap = opts.capacityPages ?? DEFAULT_CACHE_PAGES;
    if (!(Number.isInteger(cap) && cap >= 0)) throw new RangeError(`PageCache: capacityPages ${cap} is not an integer >= 0`);
    this.capacity = cap;
    const dl = opts.dirtyLimitPages ?? Math.floor(cap / 4);
    if (!(Number.isInteger(dl) && dl >= 0)) throw new RangeError(`PageCache: dirtyLimitPages ${dl} is not an integer >= 0`);
    this.dirtyLimit = Math.min(dl, cap);
  }

  /** The page index of inode `ino`, created on first use. */
  forInode(ino: number): InodePages {
    let ip = this.inodes.get(ino);
    if (ip === undefined) {
      ip = new InodePages(this, ino);
      this.inodes.set(ino, ip);
    }
    return ip;
  }

  /** Forget an inode's index (after dropping its pages). */
  removeInode(ip: InodePages): void {
    ip.dropAll();
    if (this.inodes.get(ip.ino) === ip) this.inodes.delete(ip.ino);
  }

  /** Can a writeback-mode write dirty `n` more pages? */
  dirtyRoom(n: number): boolean {
    return this.dirtyCount + n <= this.dirtyLimit;
  }

  /** Ask every inode with dirty pages to flush them (debounced to one setImmediate). */
  requestFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.flushRequests++;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const ip of this.inodes.values()) if (ip.dirtyCount > 0 && ip.flusher) ip.flusher();
    });
  }

  stats(): PageCacheStats {
    return {
      capacityPages: this.capacity,
      dirtyLimitPages: this.dirtyLimit,
      pages: this.count,
      clean: this.count - this.dirtyCount - this.fillingCount - this.writebackCount,
      dirty: this.dirtyCount,
      filling: this.fillingCount,
      writeback: this.writebackCount,
      inodes: this.inodes.size,
      hits: this.hits,
      misses: this.misses,
      fills: this.fills,
      fillErrors: this.fillErrors,
      fillsShared: this.fillsShared,
      evictions: this.evictions,
      dropped: this.dropped,
      flushRequests: this.flushRequests,
    };
  }

  /** Check internal invariants (tests). Throws with a description on the first violation. */
  checkInvariants(): void {
    let lru = 0;
    for (let p = this.lruHead; p !== null; p = p.next) {
      lru++;
      if (p.state !== PageState.Clean || !p.onLru || p.detached) throw new Error(`LRU holds a non-clean page ${p.index}`);
      if (p.owner.get(p.index) !== p) throw new Error(`LRU page ${p.index} not in its index`);
    }
    let n = 0;
    let d = 0;
    let f = 0;
    let w = 0;
    let clean = 0;
    for (const ip of this.inodes.values()) {
      let ipd = 0;
      for (const p of ip.pages()) {
        n++;
        if (p.state === PageState.Dirty) (d++, ipd++);
        else if (p.state === PageState.Filling) f++;
        else if (p.state === PageState.Writeback) (w++, ipd++);
        else clean++;
        if (p.state !== PageState.Filling && (p.buf === null || p.buf.length !== PAGE_SIZE)) throw new Error('bad page buffer');
        if ((p.state === PageState.Clean) !== p.onLru) throw new Error(`page ${p.index} state ${p.state} onLru ${p.onLru}`);
      }
      if (ipd !== ip.dirtyCount) throw new Error(`inode ${ip.ino} dirtyCount ${ip.dirtyCount} != ${ipd}`);
    }
    if (n !== this.count) throw new Error(`count ${this.count} != ${n}`);
    if (d !== this.dirtyCount) throw new Error(`dirtyCount ${this.dirtyCount} != ${d}`);
    if (f !== this.fillingCount) throw new Error(`fillingCount ${this.fillingCount} != ${f}`);
    if (w !== this.writebackCount) throw new Error(`writebackCount ${this.writebackCount} != ${w}`);
    if (lru !== clean) throw new Error(`LRU length ${lru} != clean pages ${clean}`);
    if (this.capacity > 0 && lru > 0 && this.count > this.capacity) throw new Error(`over capacity with evictable pages`);
  }

  // ---- LRU (internal to this module) ----

  /** @internal */ lruAdd(p: CachedPage): void {
    p.onLru = true;
    p.prev = this.lruTail;
    p.next = null;
    if (this.lruTail === null) this.lruHead = p;
    else this.lruTail.next = p;
    this.lruTail = p;
  }

  /** @internal */ lruRemove(p: CachedPage): void {
    if (!p.onLru) return;
    p.onLru = false;
    if (p.prev === null) this.lruHead = p.next;
    else p.prev.next = p.next;
    if (p.next === null) this.lruTail = p.prev;
    else p.next.prev = p.prev;
    p.prev = p.next = null;
  }

  /** @internal */ lruTouch(p: CachedPage): void {
    if (p === this.lruTail || !p.onLru) return;
    // unlink (p is not the tail, so p.next !== null)
    if (p.prev === null) this.lruHead = p.next;
    else p.prev.next = p.next;
    p.next!.prev = p.prev;
    // append
    p.prev = this.lruTail;
    p.next = null;
    this.lruTail!.next = p;
    this.lruTail = p;
  }

  /** @internal Evict clean LRU pages until within capacity (synchronous, R8). */
  shrink(): void {
    while (this.count > this.capacity && this.lruHead !== null) {
      const p = this.lruHead;
      this.lruRemove(p);
      p.owner.unindex(p);
      this.evictions++;
    }
  }
}

/** Pages of one inode. All methods are synchronous; see the locking rules at the top. */
export class InodePages {
  private readonly map = new Map<number, CachedPage>();
  dirtyCount = 0;
  /** Set by the data path (writeback mode): called when the cache wants dirty pages flushed. */
  flusher: (() => void) | null = null;

  constructor(
    readonly cache: PageCache,
    readonly ino: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(index: number): CachedPage | undefined {
    return this.map.get(index);
  }

  pages(): IterableIterator<CachedPage> {
    return this.map.values();
  }

  /** Content of page `index` if uptodate (clean, dirty or under writeback), without touching the LRU. */
  peek(index: number): Buffer | null {
    const p = this.map.get(index);
    return p === undefined ? null : p.buf;
  }

  /**
   * The R6 hit path: bytes [off, end) if every page is uptodate, else undefined (a miss). One
   * synchronous call; a request inside one page returns a zero-copy view of the immutable buffer.
   * Requires 0 <= off < end.
   */
  readSync(off: number, end: number): Buffer | undefined {
    const c = this.cache;
    const first = Math.floor(off / PAGE_SIZE);
    const last = Math.floor((end - 1) / PAGE_SIZE);
    if (first === last) {
      const p = this.map.get(first);
      if (p === undefined || p.buf === null) return undefined; // counted by fill()
      c.hits++;
      c.lruTouch(p);
      const s = off - first * PAGE_SIZE;
      return s === 0 && end - off === PAGE_SIZE ? p.buf : p.buf.subarray(s, s + (end - off));
    }
    for (let i = first; i <= last; i++) {
      const p = this.map.get(i);
      if (p === undefined || p.buf === null) return undefined;
    }
    const out = allocReply(end - off);
    let o = 0;
    for (let i = first; i <= last; i++) {
      const p = this.map.get(i)!;
      c.lruTouch(p);
      const ps = i * PAGE_SIZE;
      const s = i === first ? off - ps : 0;
      const e = i === last ? end - ps : PAGE_SIZE;
      o += p.buf!.copy(out, o, s, e);
    }
    c.hits += last - first + 1;
    return out;
  }

  /**
   * Single-flight fill of page `index`: the cached content if uptodate, the running fill if one is
   * in flight, else starts `load()` (whose result becomes a CLEAN page; null = hole = zeros).
   * The caller must hold the range lock over the page. Rejections remove the page. A `load` that
   * returns its result synchronously (store fast path) makes the page CLEAN at once: no promise.
   */
  fill(index: number, load: (index: number) => Buffer | null | Promise<Buffer | null>): Buffer | Promise<Buffer> {
    const c = this.cache;
    let p = this.map.get(index);
    if (p !== undefined) {
      if (p.buf !== null) {
        c.hits++;
        c.lruTouch(p);
        return p.buf;
      }
      c.fillsShared++;
      return p.fill!;
    }
    c.misses++;
    c.fills++;
    p = new CachedPage(this, index);
    this.map.set(index, p);
    c.count++;
    c.fillingCount++;
    const page = p;
    let loaded: Promise<Buffer | null>;
    try {
      const r = load(index);
      if (r instanceof Promise) loaded = r;
      else if ((r === null ? ZERO_PAGE : r).length === PAGE_SIZE) {
        const buf = r === null ? ZERO_PAGE : r;
        c.fillingCount--;
        p.buf = buf;
        p.state = PageState.Clean;
        c.lruAdd(p);
        c.shrink();
        return buf;
      } else loaded = Promise.resolve(r); // wrong size: the failure path below
    } catch (err) {
      loaded = Promise.reject(err);
    }
    const failed = (err: unknown): never => {
      page.fill = null;
      c.fillErrors++;
      if (!page.detached) {
        c.fillingCount--;
        this.map.delete(index);
        c.count--;
        page.detached = true;
      }
      throw err;
    };
    p.fill = loaded.then((b) => {
      const buf = b === null ? ZERO_PAGE : b;
      if (buf.length !== PAGE_SIZE) return failed(new Error(`page fill of ${index} returned ${buf.length} bytes`));
      page.fill = null;
      if (page.detached) return buf; // invalidated meanwhile (only possible without the lock)
      c.fillingCount--;
      page.buf = buf;
      page.state = PageState.Clean;
      c.lruAdd(page);
      c.shrink();
      return buf;
    }, failed);
    return p.fill;
  }

  /** Install `buf` (PAGE_SIZE, never mutated afterwards) as the CLEAN content of page `index`. */
  setClean(index: number, buf: Buffer): void {
    const p = this.prepare(index);
    p.buf = buf;
    p.state = PageState.Clean;
    this.cache.lruAdd(p);
    this.cache.shrink();
  }

  /** Install `buf` as the DIRTY content of page `index` (writeback mode; exclusive lock held). */
  setDirty(index: number, buf: Buffer): void {
    const p = this.prepare(index);
    p.buf = buf;
    p.state = PageState.Dirty;
    this.dirtyCount++;
    this.cache.dirtyCount++;
    this.cache.shrink();
  }

  /** The page object to install new content in: the existing one (leaving its state) or a new one. */
  private prepare(index: number): CachedPage {
    const c = this.cache;
    let p = this.map.get(index);
    if (p !== undefined && p.state === PageState.Filling) {
      // Only without the range lock (bug modes): the fill keeps running on a detached page, so its
      // completion does not reinsert its content.
      this.unindex(p);
      p = undefined;
    }
    if (p === undefined) {
      p = new CachedPage(this, index);
      this.map.set(index, p);
      c.count++;
      return p;
    }
    this.leaveState(p);
    return p;
  }

  /** Undo the accounting of p's current state. */
  private leaveState(p: CachedPage): void {
    const c = this.cache;
    switch (p.state) {
      case PageState.Clean:
        c.lruRemove(p);
        break;
      case PageState.Dirty:
        this.dirtyCount--;
        c.dirtyCount--;
        break;
      case PageState.Writeback:
        this.dirtyCount--;
        c.writebackCount--;
        break;
      case PageState.Filling:
        c.fillingCount--;
        break;
    }
  }

  /** DIRTY page -> WRITEBACK (flush starting; shared lock held). */
  startWriteback(p: CachedPage): void {
    if (p.state !== PageState.Dirty) throw new Error('startWriteback: page not dirty');
    p.state = PageState.Writeback;
    this.cache.dirtyCount--;
    this.cache.writebackCount++;
  }

  /** Flush of p finished: WRITEBACK -> CLEAN (ok) or back to DIRTY (failed). */
  endWriteback(p: CachedPage, ok: boolean): void {
    if (p.state !== PageState.Writeback || p.detached) return;
    const c = this.cache;
    c.writebackCount--;
    if (ok) {
      this.dirtyCount--;
      p.state = PageState.Clean;
      c.lruAdd(p);
      c.shrink();
    } else {
      p.state = PageState.Dirty;
      c.dirtyCount++;
    }
  }

  /** Indexes of DIRTY pages, ascending. */
  dirtyIndexes(): number[] {
    const out: number[] = [];
    if (this.dirtyCount === 0) return out;
    for (const p of this.map.values()) if (p.state === PageState.Dirty) out.push(p.index);
    return out.sort((a, b) => a - b);
  }

  /** Is page `index` dirty or under writeback (newer than, or not yet in, the store)? */
  isDirty(index: number): boolean {
    if (this.dirtyCount === 0) return false;
    const p = this.map.get(index);
    return p !== undefined && (p.state === PageState.Dirty || p.state === PageState.Writeback);
  }

  /** Smallest dirty page index >= from, or -1. */
  nextDirty(from: number): number {
    let best = -1;
    if (this.dirtyCount === 0) return best;
    for (const p of this.map.values()) {
      if ((p.state === PageState.Dirty || p.state === PageState.Writeback) && p.index >= from && (best < 0 || p.index < best)) best = p.index;
    }
    return best;
  }

  /** Remove page p from this index (eviction or invalidation). */
  /** @internal */ unindex(p: CachedPage): void {
    if (this.map.get(p.index) !== p) return;
    this.leaveState(p);
    this.map.delete(p.index);
    this.cache.count--;
    p.detached = true;
  }

  /** Drop page `index` whatever its state (exclusive lock held). Returns its content, if any. */
  drop(index: number): Buffer | null {
    const p = this.map.get(index);
    if (p === undefined) return null;
    this.unindex(p);
    this.cache.dropped++;
    return p.buf;
  }

  /** Drop every page with first <= index < end (end may be Infinity). Synchronous. */
  dropRange(first: number, end: number): void {
    if (this.map.size === 0 || end <= first) return;
    if (end - first <= this.map.size) {
      for (let i = first; i < end; i++) this.drop(i);
      return;
    }
    for (const p of this.map.values()) if (p.index >= first && p.index < end) this.drop(p.index);
  }

  /** Drop every page. */
  dropAll(): void {
    for (const p of this.map.values()) this.drop(p.index);
  }
}
