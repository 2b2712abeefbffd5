// The data path of one regular file: size, read, write, truncate, fallocate, lseek, sync, over the
// range lock (range-lock.ts) and the page cache (page-cache.ts). Rules: range-lock-and-cache.md §3.
//
// Lock discipline:
// - READ hit (R6): every page cached -> answered in one synchronous turn without the lock; the
//   result is a Buffer, not a Promise. A request inside one page is a zero-copy view of the
//   immutable page buffer (the caller must not modify a read result).
// - READ miss (R2): SHARED lock over the page-aligned request (plus the readahead window), i_size read
//   after the grant (R4), every page looked up again and filled under the lock (single flight),
//   reply assembled from the fill results, then the lock is released. Fast form (stores with the
//   optional readPageShared, no read bug mode): the shared lock taken with tryAcquire, the pages
//   filled synchronously with the store's immutable buffers, reply built and lock released in the
//   same turn (a Buffer, not a Promise); falls back to the form above if the lock is contended.
//   Write-through writes with writeShared cache the store's new pages themselves (no second copy).
// - WRITE: EXCLUSIVE lock over its pages; an extending write locks [floor(min(off, size)), ∞) and
//   re-checks the size after the grant, re-locking if it moved (R5). Write-through: store first,
//   then the cached pages are replaced (copy-on-write) and the size updated in one synchronous turn.
//   Writeback: partial uncached pages are filled, then pages become DIRTY in one synchronous turn.
// - PUNCH / ZERO / TRUNCATE: EXCLUSIVE lock (truncate and size-extending ops from floor(min(old,new))
//   to ∞); truncate sets the new size first (R4); every cached page in the range is dropped, the
//   store is changed, and the partially affected head/tail pages are re-inserted zeroed (copy-on-write)
//   from the buffers dropped before -- all before the promise resolves. Dropping before the store
//   change means a failure of the store leaves no stale page (dropped pages are re-read). Dirty
//   partial pages (writeback mode) are written to the store first so their live bytes survive.
//
// Out-of-band changes (control socket): punch(), zero(), truncate(), writeAt() are the same
// operations and return the byte range the daemon must notify AFTER the promise resolved (R10).
// Their optional `beforeChange` callback exists for the bug mode notify-before-change and is invoked
// BEFORE the exclusive lock is requested, not after it is granted:
// - after the grant it could not re-open the race: a kernel READ that re-faults the range after the
//   early notify blocks on our shared lock until the change is published and so gets new data;
// - worse, it deadlocks if awaited: notify_inval_inode waits for a locked kernel folio whose READ is
//   queued behind our exclusive lock (R10; hf-mount #156/#196, mergerfs #1392).
// Called before the lock, the notify drops the kernel's pages while the old data is still served:
// a fault in the window [notify, exclusive grant) re-caches old data in the kernel, the change then
// lands and no notify follows, so the kernel serves stale bytes -- exactly the race the bug mode
// is meant to show (widen it with a delay in the callback or with read-before-reply).

import type { BugMode, FaultHooks, FileData, FileStore } from './types.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FsError,
  MAX_FILE_SIZE,
  NO_FAULTS,
  PAGE_SIZE,
  SEEK_DATA,
  SEEK_HOLE,
} from './types.js';
import { RangeLock, RangeLockStats, type RangeLockHandle } from './range-lock.js';
import { PageCache, PageState, ZERO_PAGE, allocReply, type InodePages } from './page-cache.js';
import type { InodeWitness, Witness } from './witness.js';

export type CacheMode = 'write-through' | 'writeback';

export interface FileDataOptions {
  /** Shared page cache; default: defaultPageCache(). A cache of capacity 0 disables caching. */
  cache?: PageCache;
  /** 'write-through' (default): writes reach the store before they resolve. 'writeback': writes
   * dirty cached pages, written back by sync() (fsync/flush/release), by dirty-limit pressure
   * and never lost by eviction; destroy() discards them. */
  cacheMode?: CacheMode;
  /** Pages filled beyond a missing read, within the file size (default 0). */
  readaheadPages?: number;
  faults?: FaultHooks;
  /** Kernel witness (late writeback of punched data); omitted = off (no cost). */
  witness?: Witness;
  /** Lock statistics shared by every inode (default: one per file). */
  lockStats?: RangeLockStats;
  /** Data path counters shared by every inode (default: one per file). */
  stats?: DataPathStats;
  /** Size of existing store content (default 0). */
  initialSize?: number;
  /** Called synchronously whenever the size changes. */
  onSizeChange?: (size: number) => void;
}

/** Options of the out-of-band entry points (control socket). */
export interface ChangeOptions {
  signal?: AbortSignal;
  /** Awaited before the exclusive lock is requested (see the header: notify-before-change). */
  beforeChange?: () => Promise<void>;
}

/** What changed: the page-aligned byte range to pass to notify_inval_inode (length 0 = to EOF). */
export interface ChangeResult {
  offset: number;
  length: number;
  /** File size after the change. */
  size: number;
  /** False if nothing changed (zero-length write, truncate to the current size). */
  changed: boolean;
}

export interface DataPathStatsSnapshot {
  reads: number;
  /** Reads answered by the synchronous lock-free path (R6). */
  readHits: number;
  /** Reads that took the shared lock (R2). */
  readMisses: number;
  readBytes: number;
  readaheadPages: number;
  writes: number;
  writeBytes: number;
  /** Writes that went write-through in writeback mode because the dirty limit was reached. */
  writebackFallbacks: number;
  punches: number;
  zeroes: number;
  truncates: number;
  allocates: number;
  /** Lock re-acquisitions because the size moved while waiting (R5). */
  relocks: number;
  /** Operations that failed with EINTR while waiting for the lock. */
  interrupted: number;
  /** Dirty pages written back; flushes that failed. */
  flushedPages: number;
  flushErrors: number;
  /** Times a bug mode changed what the data path did. */
  bugActions: Partial<Record<BugMode, number>>;
}

export class DataPathStats {
  reads = 0;
  readHits = 0;
  readMisses = 0;
  readBytes = 0;
  readaheadPages = 0;
  writes = 0;
  writeBytes = 0;
  writebackFallbacks = 0;
  punches = 0;
  zeroes = 0;
  truncates = 0;
  allocates = 0;
  relocks = 0;
  interrupted = 0;
  flushedPages = 0;
  flushErrors = 0;
  readonly bugActions = new Map<BugMode, number>();

  bugAct(mode: BugMode): void {
    this.bugActions.set(mode, (this.bugActions.get(mode) ?? 0) + 1);
  }

  snapshot(): DataPathStatsSnapshot {
    const { bugActions, ...rest } = this;
    return { ...rest, bugActions: Object.fromEntries(bugActions) } as DataPathStatsSnapshot;
  }
}

let defaultCache: PageCache | null = null;
/** The process-wide page cache used when FileDataOptions.cache is not given (default capacity). */
export function defaultPageCache(): PageCache {
  return (defaultCache ??= new PageCache());
}

const EMPTY = Buffer.alloc(0);
/** Largest READ reply assembled (FUSE asks for at most max_read, ≤ 1 MiB in practice). */
export const MAX_READ_BYTES = 256 * 1024 * 1024;
const floorPage = (x: number): number => Math.floor(x / PAGE_SIZE) * PAGE_SIZE;
const ceilPage = (x: number): number => Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
const isOffset = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
const FALLOC_PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const FALLOC_ZERO_KEEP = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

/** Bytes [offset, end) from the page buffers of pages first..last: a view inside one page, else one copy. */
function assemble(bufs: Buffer[], first: number, last: number, offset: number, end: number): Buffer {
  if (first === last) {
    const s = offset - first * PAGE_SIZE;
    const b = bufs[0]!;
    return s === 0 && end - offset === PAGE_SIZE ? b : b.subarray(s, s + (end - offset));
  }
  const out = allocReply(end - offset);
  let o = 0;
  for (let i = first; i <= last; i++) {
    const ps = i * PAGE_SIZE;
    o += bufs[i - first]!.copy(out, o, i === first ? offset - ps : 0, i === last ? end - ps : PAGE_SIZE);
  }
  return out;
}

/** A copy of page `b` with bytes [from, to) zeroed. */
function zeroedCopy(b: Buffer, from: number, to: number): Buffer {
  const nb = Buffer.allocUnsafe(PAGE_SIZE);
  b.copy(nb);
  nb.fill(0, from, to);
  return nb;
}

export class CachedFileData implements FileData {
  readonly ino: number;
  readonly store: FileStore;
  readonly lock: RangeLock;
  readonly cache: PageCache;
  readonly cacheMode: CacheMode;
  readonly readaheadPages: number;
  readonly stats: DataPathStats;
  /** The inode's page index, or null when the cache has capacity 0. */
  private readonly pages: InodePages | null;
  private readonly faults: FaultHooks;
  private readonly witness: InodeWitness | null;
  private readonly onSizeChange: ((size: number) => void) | undefined;
  private size_: number;
  private destroyed = false;
  private flushing: Promise<void> | null = null;

  constructor(ino: number, store: FileStore, opts: FileDataOptions = {}) {
    this.ino = ino;
    this.store = store;
    this.cache = opts.cache ?? defaultPageCache();
    this.cacheMode = opts.cacheMode ?? 'write-through';
    if (this.cacheMode !== 'write-through' && this.cacheMode !== 'writeback') {
      throw new RangeError(`cacheMode must be 'write-through' or 'writeback', not ${String(this.cacheMode)}`);
    }
    const ra = opts.readaheadPages ?? 0;
    if (!(Number.isInteger(ra) && ra >= 0 && ra <= 4096)) throw new RangeError(`readaheadPages ${ra} is not an integer in 0..4096`);
    this.readaheadPages = ra;
    this.faults = opts.faults ?? NO_FAULTS;
    this.witness = opts.witness ? opts.witness.forInode(ino) : null;
    this.lock = new RangeLock(opts.lockStats);
    this.stats = opts.stats ?? new DataPathStats();
    this.onSizeChange = opts.onSizeChange;
    const s = opts.initialSize ?? 0;
    if (!(isOffset(s) && s <= MAX_FILE_SIZE)) throw new RangeError(`initialSize ${s} out of range`);
    this.size_ = s;
    this.pages = this.cache.capacity > 0 ? this.cache.forInode(ino) : null;
    if (this.pages !== null && this.cacheMode === 'writeback') {
      this.pages.flusher = () => {
        this.flush().catch(() => {
          /* counted in stats.flushErrors; the pages stay dirty */
        });
      };
    }
  }

  get size(): number {
    return this.size_;
  }

  get blocks(): number {
    return this.destroyed ? 0 : this.store.allocatedPages() * 8;
  }

  // ------------------------------------------------------------------ read

  read(offset: number, length: number, signal?: AbortSignal): Buffer | Promise<Buffer> {
    if (!isOffset(offset) || !isOffset(length)) return Promise.reject(new FsError('EINVAL', `read(${offset}, ${length})`));
    if (this.destroyed) return Promise.reject(new FsError('ESTALE', 'file destroyed'));
    this.stats.reads++;
    const size = this.size_;
    if (length === 0 || offset >= size) return EMPTY;
    const end = offset + length < size ? offset + length : size;
    if (end - offset > MAX_READ_BYTES) return Promise.reject(new FsError('EINVAL', `read of ${end - offset} bytes (max ${MAX_READ_BYTES})`));
    if (this.pages !== null) {
      const b = this.pages.readSync(offset, end); // R6: one synchronous turn
      if (b !== undefined) {
        this.stats.readHits++;
        return this.reply(b);
      }
      if (this.store.readPageShared !== undefined) {
        const r = this.readMissFast(offset, length);
        if (r !== undefined) return r;
      }
    }
    return this.readMiss(offset, length, signal);
  }

  /**
   * Bug short-read and accounting. The read-before-reply delay point is NOT applied here: it is
   * the daemon's (it awaits faults.delay('read-before-reply') between this result and the reply).
   */
  private reply(b: Buffer): Buffer {
    if (this.faults !== NO_FAULTS && b.length > 0 && this.faults.chance('short-read')) {
      b = b.subarray(0, b.length >> 1);
      this.stats.bugAct('short-read');
    }
    this.stats.readBytes += b.length;
    return b;
  }

  private async readMiss(offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    this.stats.readMisses++;
    const f = this.faults;
    // Bug read-past-eof: the size is sampled before waiting for the lock, the readahead window is
    // not locked, and readahead fills finish after the lock is released (R2, R4 broken).
    const pastEof = f.bug('read-past-eof');
    const sizeBefore = this.size_;
    const ra = this.readaheadPages;
    const reqEnd = offset + length;
    const lockEnd = Math.min(ceilPage(reqEnd) + (pastEof ? 0 : ra * PAGE_SIZE), MAX_FILE_SIZE + PAGE_SIZE);
    let h: RangeLockHandle | null = null;
    if (f.bug('no-range-lock')) this.stats.bugAct('no-range-lock');
    else h = await this.acquire(floorPage(offset), lockEnd, 'shared', signal);
    return this.readLocked(h, offset, reqEnd, pastEof, sizeBefore);
  }

  /**
   * The miss path in ONE synchronous turn when it can be (store with readPageShared, no bug mode
   * acting on reads): the shared lock over the same range as readMiss is taken with tryAcquire
   * (granted only if no earlier conflicting request is live, so it never barges, R2/§2), every
   * missing page is filled synchronously under it, the reply is assembled and the lock released
   * before returning a Buffer. If a fill turns asynchronous (a delay point fired, a page already
   * being filled by another reader), the lock stays held until the returned promise settles.
   * undefined: not possible now (lock contended, bug mode on); the caller takes readMiss.
   */
  private readMissFast(offset: number, length: number): Buffer | Promise<Buffer> | undefined {
    const f = this.faults;
    if (f.bug('read-past-eof') || f.bug('no-range-lock')) return undefined;
    const reqEnd = offset + length;
    const lockEnd = Math.min(ceilPage(reqEnd) + this.readaheadPages * PAGE_SIZE, MAX_FILE_SIZE + PAGE_SIZE);
    const h = this.lock.tryAcquire({ start: floorPage(offset), end: lockEnd }, 'shared');
    if (h === null) return undefined;
    this.stats.readMisses++;
    try {
      return this.readLocked(h, offset, reqEnd, false, 0);
    } catch (e) {
      return Promise.reject(e); // FileData.read reports errors as rejections
    }
  }

  /**
   * R2 body of a missed read, the shared lock `h` held (null: bug no-range-lock): size after the
   * grant (R4), every page looked up again and filled (single flight), reply assembled, lock
   * released -- synchronously when every fill was synchronous, else when the promise settles.
   */
  private readLocked(h: RangeLockHandle | null, offset: number, reqEnd: number, pastEof: boolean, sizeBefore: number): Buffer | Promise<Buffer> {
    let r: Buffer | Promise<Buffer>;
    try {
      r = this.readUnderLock(h !== null && !pastEof, offset, reqEnd, pastEof, sizeBefore);
    } catch (e) {
      if (h !== null) this.lock.release(h);
      throw e;
    }
    if (!(r instanceof Promise)) {
      if (h !== null) this.lock.release(h);
      return this.reply(r);
    }
    return r.then(
      (b) => {
        if (h !== null) this.lock.release(h);
        return this.reply(b);
      },
      (e: unknown) => {
        if (h !== null) this.lock.release(h);
        throw e;
      },
    );
  }

  private readUnderLock(fast: boolean, offset: number, reqEnd: number, pastEof: boolean, sizeBefore: number): Buffer | Promise<Buffer> {
    this.alive();
    const ra = this.readaheadPages;
    const size = pastEof ? sizeBefore : this.size_; // R4: i_size after the grant
    if (pastEof && sizeBefore > this.size_) this.stats.bugAct('read-past-eof');
    const end = Math.min(reqEnd, size);
    if (offset >= end) return EMPTY;
    if (end - offset > MAX_READ_BYTES) throw new FsError('EINVAL', `read of ${end - offset} bytes (max ${MAX_READ_BYTES})`);
    const first = Math.floor(offset / PAGE_SIZE);
    const last = Math.floor((end - 1) / PAGE_SIZE);
    const pages = this.pages;
    if (pages === null) {
      const loads: Promise<Buffer | null>[] = [];
      for (let i = first; i <= last; i++) loads.push(this.loadPage(i));
      return Promise.all(loads).then((bs) => assemble(bs.map((b) => b ?? ZERO_PAGE), first, last, offset, end));
    }
    // Fast fills (store with readPageShared, no fill delay firing): each missing page is read and
    // inserted CLEAN synchronously, still under the shared lock (R2), without a Promise. Never
    // with a bug mode acting on this read: those keep the original asynchronous fills.
    const load = fast && this.store.readPageShared !== undefined ? this.loadFast : this.loadAsync;
    const parts: (Buffer | Promise<Buffer>)[] = [];
    let missed = false; // a page was not uptodate: a fill was started or joined
    let pending = false; // a part is still a promise
    for (let i = first; i <= last; i++) {
      if (!missed) {
        const p = pages.get(i);
        if (p === undefined || p.buf === null) missed = true;
      }
      const r = pages.fill(i, load);
      if (r instanceof Promise) pending = true;
      parts.push(r);
    }
    let raDone: Promise<unknown> | null = null;
    if (missed && ra > 0) {
      // Within the size read under the lock: never cache or return bytes past EOF.
      const raLast = Math.min(last + ra, Math.ceil(size / PAGE_SIZE) - 1);
      const raFills: Promise<Buffer>[] = [];
      let raPages = 0;
      for (let i = last + 1; i <= raLast; i++) {
        if (pages.get(i) !== undefined) continue;
        raPages++;
        if (pastEof) {
          // Bug read-past-eof: the window (sized from the i_size sampled before the lock) is read
          // from the store now and published later, unlocked, without re-checking the size or
          // whether a truncate dropped the range meanwhile: the fault-around class of bug. A
          // truncate down between the store read and the publish leaves pre-truncate data cached
          // past EOF, served after the file is extended again (STALE superseded by truncate).
          void this.loadPage(i).then(
            (b) => {
              if (this.destroyed || pages.get(i) !== undefined) return;
              pages.setClean(i, b ?? ZERO_PAGE);
              if ((i + 1) * PAGE_SIZE > this.size_) this.stats.bugAct('read-past-eof');
            },
            () => undefined,
          );
          continue;
        }
        const r = pages.fill(i, load);
        if (r instanceof Promise) raFills.push(r);
      }
      this.stats.readaheadPages += raPages;
      if (raFills.length > 0) {
        const settled = Promise.allSettled(raFills); // a failed readahead page fails no read
        if (!pastEof) raDone = settled; // fills complete under the lock (R2)
      }
    }
    if (!pending && raDone === null) return assemble(parts as Buffer[], first, last, offset, end);
    return (async () => {
      const bufs = pending ? await Promise.all(parts) : (parts as Buffer[]);
      if (raDone !== null) await raDone;
      return assemble(bufs, first, last, offset, end);
    })();
  }

  /** Backing read of one page, with its delay points. */
  private async loadPage(index: number): Promise<Buffer | null> {
    const f = this.faults;
    let d = f.delay('read-fill-before-store');
    if (d !== undefined) await d;
    const b = await this.store.readPage(index);
    d = f.delay('read-fill-after-store');
    if (d !== undefined) await d;
    return b;
  }

  /** loadPage as a PageCache loader (one function for every page, no closure per page). */
  private readonly loadAsync = (index: number): Promise<Buffer | null> => this.loadPage(index);

  /**
   * Page fill loader of the fast path: the store's immutable page (readPageShared), returned
   * synchronously unless a delay point fires (then the same delays as loadPage, awaited). Only
   * for stores with readPageShared. A throw is turned into a failed fill by PageCache.fill.
   */
  private readonly loadFast = (index: number): Buffer | null | Promise<Buffer | null> => {
    const f = this.faults;
    const d = f.delay('read-fill-before-store');
    if (d !== undefined) return this.loadAfter(index, d);
    const b = this.store.readPageShared!(index);
    const d2 = f.delay('read-fill-after-store');
    return d2 === undefined ? b : d2.then(() => b);
  };

  private async loadAfter(index: number, before: Promise<void>): Promise<Buffer | null> {
    await before;
    const b = this.store.readPageShared!(index);
    const d = this.faults.delay('read-fill-after-store');
    if (d !== undefined) await d;
    return b;
  }

  // ------------------------------------------------------------------ write

  async write(offset: number, data: Uint8Array, signal?: AbortSignal): Promise<number> {
    await this.doWrite(offset, data, signal, undefined);
    return data.length;
  }

  /** Out-of-band write (control socket): may extend the file. */
  writeAt(offset: number, data: Uint8Array, opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.doWrite(offset, data, opts.signal, opts.beforeChange);
  }

  private async doWrite(
    offset: number,
    data: Uint8Array,
    signal: AbortSignal | undefined,
    before: (() => Promise<void>) | undefined,
  ): Promise<ChangeResult> {
    if (!isOffset(offset)) throw new FsError('EINVAL', `write offset ${offset}`);
    const len = data.length;
    const end = offset + len;
    if (end > MAX_FILE_SIZE) throw new FsError('EFBIG', `write to ${end} past ${MAX_FILE_SIZE}`);
    this.alive();
    if (len === 0) return { offset: floorPage(offset), length: 0, size: this.size_, changed: false };
    if (before) await before();
    const h = await this.lockForChange(offset, end, true, signal);
    try {
      this.alive();
      const f = this.faults;
      const size = this.size_;
      const newSize = end > size ? end : size;
      this.stats.writes++;
      this.stats.writeBytes += len;
      if (this.witness !== null) this.witness.check(offset, data);
      if (f.chance('lost-write')) {
        this.stats.bugAct('lost-write');
        if (newSize !== size) this.publishSize(newSize);
        return { offset: floorPage(offset), length: ceilPage(end) - floorPage(offset), size: newSize, changed: true };
      }
      let d = f.delay('write-before-store');
      if (d !== undefined) await d;
      const pages = this.pages;
      const npages = Math.ceil(end / PAGE_SIZE) - Math.floor(offset / PAGE_SIZE);
      if (pages !== null && this.cacheMode === 'writeback' && this.cache.dirtyRoom(npages)) {
        const bases = await this.writebackBases(pages, offset, end, size);
        d = f.delay('write-after-store');
        if (d !== undefined) await d;
        // one synchronous turn: pages become DIRTY, size moves
        for (let i = Math.floor(offset / PAGE_SIZE), k = 0; i * PAGE_SIZE < end; i++, k++) {
          pages.setDirty(i, this.merged(bases[k] ?? null, i, offset, data));
        }
      } else {
        if (pages !== null && this.cacheMode === 'writeback') {
          this.stats.writebackFallbacks++;
          this.cache.requestFlush();
        }
        // Fast path: the store's new immutable pages become the cached ones (no second copy).
        const shared = pages !== null && this.store.writeShared !== undefined ? this.store.writeShared(offset, data) : null;
        if (shared === null) await this.store.write(offset, data);
        d = f.delay('write-after-store');
        if (d !== undefined) await d;
        if (pages !== null) this.updateCachedPages(pages, offset, data, size, shared);
      }
      if (newSize !== size) this.publishSize(newSize);
      return { offset: floorPage(offset), length: ceilPage(end) - floorPage(offset), size: newSize, changed: true };
    } finally {
      this.lock.release(h);
    }
  }

  /** Page `i` with `data` (written at `offset`) merged in; `base` null = no old content needed. */
  private merged(base: Buffer | null, i: number, offset: number, data: Uint8Array): Buffer {
    const ps = i * PAGE_SIZE;
    const s = Math.max(offset, ps);
    const e = Math.min(offset + data.length, ps + PAGE_SIZE);
    let nb: Buffer;
    // A fully covered page takes every byte from `data`: no old content to copy (or zero).
    if (s === ps && e === ps + PAGE_SIZE) nb = Buffer.allocUnsafe(PAGE_SIZE);
    else if (base === null) nb = Buffer.alloc(PAGE_SIZE);
    else {
      nb = Buffer.allocUnsafe(PAGE_SIZE);
      base.copy(nb);
    }
    nb.set(data.subarray(s - offset, e - offset), s - ps);
    return nb;
  }

  /**
   * Can page i's bytes outside the write [offset, end) be derived without reading? True if the page
   * is fully covered, or every uncovered byte lies at or past the old EOF (hence zero).
   */
  private static derivable(i: number, offset: number, end: number, oldSize: number): boolean {
    const ps = i * PAGE_SIZE;
    const pe = ps + PAGE_SIZE;
    return (offset <= ps || ps >= oldSize) && (end >= pe || end >= oldSize);
  }

  /**
   * Write-through: replace cached pages (copy-on-write), add derivable ones. Synchronous. `shared`
   * (store.writeShared's result): a fully covered page reuses the store's immutable page, which
   * holds exactly the written bytes; partial pages are merged as before.
   */
  private updateCachedPages(pages: InodePages, offset: number, data: Uint8Array, oldSize: number, shared: Buffer[] | null = null): void {
    const end = offset + data.length;
    const first = Math.floor(offset / PAGE_SIZE);
    for (let i = first; i * PAGE_SIZE < end; i++) {
      const cur = pages.peek(i);
      if (cur === null && !CachedFileData.derivable(i, offset, end, oldSize)) continue;
      const ps = i * PAGE_SIZE;
      const nb = shared !== null && offset <= ps && end >= ps + PAGE_SIZE ? shared[i - first]! : this.merged(cur, i, offset, data);
      if (pages.isDirty(i)) pages.setDirty(i, nb);
      else pages.setClean(i, nb);
    }
  }

  /** Writeback: old content of the pages a write touches (fills under the exclusive lock). */
  private async writebackBases(pages: InodePages, offset: number, end: number, oldSize: number): Promise<(Buffer | null)[]> {
    const out: (Buffer | null)[] = [];
    let waits: Promise<void>[] | null = null;
    for (let i = Math.floor(offset / PAGE_SIZE), k = 0; i * PAGE_SIZE < end; i++, k++) {
      const cur = pages.peek(i);
      if (cur !== null || CachedFileData.derivable(i, offset, end, oldSize)) {
        out.push(cur);
        continue;
      }
      const r = pages.fill(i, this.store.readPageShared !== undefined ? this.loadFast : this.loadAsync);
      if (r instanceof Promise) {
        out.push(null);
        (waits ??= []).push(r.then((b) => void (out[k] = b)));
      } else out.push(r);
    }
    if (waits !== null) await Promise.all(waits);
    return out;
  }

  // ------------------------------------------------------------------ truncate / fallocate

  async setSize(size: number, signal?: AbortSignal): Promise<void> {
    await this.doTruncate(size, signal, undefined);
  }

  /** Publish a new size (synchronous; the caller holds the exclusive lock from the old EOF on). */
  private publishSize(size: number): void {
    this.size_ = size;
    this.onSizeChange?.(size);
  }

  /** Out-of-band truncate (control socket). */
  truncate(size: number, opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.doTruncate(size, opts.signal, opts.beforeChange);
  }

  private async doTruncate(
    newSize: number,
    signal: AbortSignal | undefined,
    before: (() => Promise<void>) | undefined,
  ): Promise<ChangeResult> {
    if (!isOffset(newSize)) throw new FsError('EINVAL', `size ${newSize}`);
    if (newSize > MAX_FILE_SIZE) throw new FsError('EFBIG', `size ${newSize} past ${MAX_FILE_SIZE}`);
    this.alive();
    if (before) await before();
    let h: RangeLockHandle;
    for (;;) {
      const ls = floorPage(Math.min(this.size_, newSize));
      h = await this.acquire(ls, Infinity, 'exclusive', signal);
      if (floorPage(Math.min(this.size_, newSize)) >= ls) break;
      this.lock.release(h); // the size dropped below our range while we waited (R5)
      this.stats.relocks++;
    }
    try {
      this.alive();
      const old = this.size_;
      const lo = Math.min(old, newSize);
      if (old === newSize) return { offset: floorPage(lo), length: 0, size: old, changed: false };
      this.stats.truncates++;
      const f = this.faults;
      const pages = this.pages;
      const stale = f.bug('stale-cache-on-truncate');
      const tailIdx = Math.floor(lo / PAGE_SIZE);
      const tailOff = lo - tailIdx * PAGE_SIZE;
      // Writeback: the live bytes of a dirty partial tail page must reach the store first.
      if (pages !== null && tailOff !== 0 && pages.isDirty(tailIdx)) await this.writePagesLocked(pages, [tailIdx]);
      this.publishSize(newSize); // R4: the size first
      let tail: Buffer | null = null;
      if (pages !== null) {
        if (stale) this.stats.bugAct('stale-cache-on-truncate');
        else {
          if (tailOff !== 0) tail = pages.drop(tailIdx);
          pages.dropRange(tailIdx, Infinity);
        }
      }
      let d = f.delay('truncate-before-store');
      if (d !== undefined) await d;
      // Shrink: discard past the new size. Grow: make sure nothing lingers past the old size.
      await this.store.truncate(lo);
      d = f.delay('truncate-after-store');
      if (d !== undefined) await d;
      if (tail !== null) pages!.setClean(tailIdx, zeroedCopy(tail, tailOff, PAGE_SIZE));
      return { offset: floorPage(lo), length: 0, size: newSize, changed: true };
    } finally {
      this.lock.release(h);
    }
  }

  async fallocate(mode: number, offset: number, length: number, signal?: AbortSignal): Promise<void> {
    if (!isOffset(offset) || !(Number.isSafeInteger(length) && length > 0)) {
      throw new FsError('EINVAL', `fallocate offset ${offset} length ${length}`);
    }
    if (mode !== 0 && mode !== FALLOC_FL_KEEP_SIZE && mode !== FALLOC_PUNCH && mode !== FALLOC_FL_ZERO_RANGE && mode !== FALLOC_ZERO_KEEP) {
      throw new FsError('EOPNOTSUPP', `fallocate mode 0x${(mode >>> 0).toString(16)}`);
    }
    if (offset + length > MAX_FILE_SIZE) throw new FsError('EFBIG', `fallocate to ${offset + length} past ${MAX_FILE_SIZE}`);
    this.alive();
    const keep = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    if (mode & FALLOC_FL_PUNCH_HOLE) await this.doZeroOrPunch('punch', offset, length, true, signal, undefined);
    else if (mode & FALLOC_FL_ZERO_RANGE) await this.doZeroOrPunch('zero', offset, length, keep, signal, undefined);
    else await this.doAllocate(offset, length, keep, signal);
  }

  /** Out-of-band hole punch (size unchanged). */
  punch(offset: number, length: number, opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.checkedRange(offset, length, () => this.doZeroOrPunch('punch', offset, length, true, opts.signal, opts.beforeChange));
  }

  /** Out-of-band zero range (size unchanged). */
  zero(offset: number, length: number, opts: ChangeOptions = {}): Promise<ChangeResult> {
    return this.checkedRange(offset, length, () => this.doZeroOrPunch('zero', offset, length, true, opts.signal, opts.beforeChange));
  }

  private checkedRange(offset: number, length: number, run: () => Promise<ChangeResult>): Promise<ChangeResult> {
    if (!isOffset(offset) || !(Number.isSafeInteger(length) && length > 0)) {
      return Promise.reject(new FsError('EINVAL', `offset ${offset} length ${length}`));
    }
    if (offset + length > MAX_FILE_SIZE) return Promise.reject(new FsError('EFBIG', `range end ${offset + length} past ${MAX_FILE_SIZE}`));
    return run();
  }

  private async doAllocate(offset: number, length: number, keep: boolean, signal?: AbortSignal): Promise<void> {
    const end = offset + length;
    const h = await this.lockForChange(offset, end, !keep, signal);
    try {
      this.alive();
      this.stats.allocates++;
      await this.store.allocate(offset, length); // content unchanged: holes and allocated pages read zero
      if (!keep && end > this.size_) this.publishSize(end);
    } finally {
      this.lock.release(h);
    }
  }

  private async doZeroOrPunch(
    kind: 'punch' | 'zero',
    offset: number,
    length: number,
    keep: boolean,
    signal: AbortSignal | undefined,
    before: (() => Promise<void>) | undefined,
  ): Promise<ChangeResult> {
    this.alive();
    const end = offset + length;
    if (before) await before();
    const h = await this.lockForChange(offset, end, !keep, signal);
    try {
      this.alive();
      const f = this.faults;
      const size = this.size_;
      if (kind === 'punch') this.stats.punches++;
      else this.stats.zeroes++;
      const pages = this.pages;
      // What the kernel witness must recognise if it comes back (content before any change).
      if (this.witness !== null) {
        await this.witness.record(kind, offset, length, size, (i) => this.currentPage(i), (i) => this.nextDataPage(i));
      }
      const first = Math.floor(offset / PAGE_SIZE);
      const last = Math.floor((end - 1) / PAGE_SIZE);
      const headPartial = offset !== first * PAGE_SIZE;
      const tailPartial = end !== (last + 1) * PAGE_SIZE;
      const stale = f.bug('stale-cache-on-punch');
      let head: Buffer | null = null;
      let tail: Buffer | null = null;
      if (pages !== null) {
        if (stale) this.stats.bugAct('stale-cache-on-punch');
        else {
          if (pages.dirtyCount > 0) {
            const partial: number[] = [];
            if (headPartial && pages.isDirty(first)) partial.push(first);
            if (tailPartial && !(last === first && headPartial) && pages.isDirty(last)) partial.push(last);
            if (partial.length > 0) await this.writePagesLocked(pages, partial);
          }
          if (headPartial) head = pages.drop(first);
          if (tailPartial && (last !== first || !headPartial)) tail = pages.drop(last);
          pages.dropRange(first, last + 1);
        }
      }
      let d = f.delay(kind === 'punch' ? 'punch-before-store' : 'zero-before-store');
      if (d !== undefined) await d;
      await this.store.punch(offset, length);
      if (kind === 'zero') await this.store.allocate(offset, length);
      d = f.delay(kind === 'punch' ? 'punch-after-store' : 'zero-after-store');
      if (d !== undefined) await d;
      // Re-insert the partially affected pages, zeroed (copy-on-write): they equal the store now.
      const fp = first * PAGE_SIZE;
      const lp = last * PAGE_SIZE;
      if (head !== null) pages!.setClean(first, zeroedCopy(head, offset - fp, Math.min(end - fp, PAGE_SIZE)));
      if (tail !== null) pages!.setClean(last, zeroedCopy(tail, Math.max(offset - lp, 0), end - lp));
      const newSize = !keep && end > size ? end : size;
      if (newSize !== size) this.publishSize(newSize);
      return { offset: floorPage(offset), length: ceilPage(end) - floorPage(offset), size: this.size_, changed: true };
    } finally {
      this.lock.release(h);
    }
  }

  /** Current content of page i (cache, else store); for the witness. Lock held. */
  private currentPage(i: number): Buffer | null | Promise<Buffer | null> {
    const b = this.pages?.peek(i) ?? null;
    return b !== null ? b : this.store.readPage(i);
  }

  /** First page >= i holding data in the store or dirty in the cache, or -1. */
  private nextDataPage(i: number): number {
    const a = this.store.nextDataPage(i);
    const d = this.pages !== null ? this.pages.nextDirty(i) : -1;
    return a < 0 ? d : d < 0 ? a : Math.min(a, d);
  }

  // ------------------------------------------------------------------ seek, sync, destroy

  seek(offset: number, whence: number): number {
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError('EINVAL', `seek whence ${whence}`);
    this.alive();
    const size = this.size_;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= size) throw new FsError('ENXIO');
    const idx = Math.floor(offset / PAGE_SIZE);
    const pages = this.pages;
    if (whence === SEEK_DATA) {
      const p = this.nextDataPage(idx);
      if (p < 0) throw new FsError('ENXIO');
      const pos = Math.max(offset, p * PAGE_SIZE);
      if (pos >= size) throw new FsError('ENXIO');
      return pos;
    }
    let hole = this.store.nextHolePage(idx);
    if (pages !== null) while (pages.isDirty(hole)) hole = this.store.nextHolePage(hole + 1);
    return Math.min(Math.max(offset, hole * PAGE_SIZE), size);
  }

  async sync(): Promise<void> {
    if (this.destroyed) return;
    if (this.pages !== null && this.pages.dirtyCount > 0) await this.flush();
    await this.store.sync();
  }

  /**
   * Write back every dirty page under the shared lock (writers and invalidators wait). Flushes of
   * one inode are serialised, so a sync() that returns has seen every page it found dirty reach
   * the store, including pages a background flush had in flight.
   */
  async flush(): Promise<void> {
    const pages = this.pages;
    if (pages === null) return;
    while (this.flushing !== null) await this.flushing.catch(() => undefined);
    if (pages.dirtyCount === 0 || this.destroyed) return;
    const run = (async () => {
      const h = await this.lock.acquire({ start: 0, end: Infinity }, 'shared');
      try {
        if (!this.destroyed) await this.writePagesLocked(pages, pages.dirtyIndexes());
      } finally {
        this.lock.release(h);
      }
    })();
    this.flushing = run;
    try {
      await run;
    } finally {
      this.flushing = null;
    }
  }

  /** Write the given dirty pages to the store; the caller holds a lock covering them. */
  private async writePagesLocked(pages: InodePages, indexes: number[]): Promise<void> {
    let err: unknown = null;
    for (const i of indexes) {
      const p = pages.get(i);
      if (p === undefined || p.state !== PageState.Dirty) continue;
      pages.startWriteback(p);
      const n = Math.min(PAGE_SIZE, this.size_ - i * PAGE_SIZE);
      try {
        if (n > 0) await this.store.write(i * PAGE_SIZE, p.buf!.subarray(0, n));
        pages.endWriteback(p, true);
        this.stats.flushedPages++;
      } catch (e) {
        pages.endWriteback(p, false);
        this.stats.flushErrors++;
        err = e;
        break;
      }
    }
    if (err !== null) throw err;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    const h = await this.lock.acquire({ start: 0, end: Infinity }, 'exclusive');
    try {
      if (this.destroyed) return;
      this.destroyed = true;
      if (this.pages !== null) {
        this.pages.flusher = null;
        this.cache.removeInode(this.pages);
      }
      this.witness?.clear();
      await this.store.destroy();
    } finally {
      this.lock.release(h);
    }
  }

  // ------------------------------------------------------------------ helpers

  private alive(): void {
    if (this.destroyed) throw new FsError('ESTALE', 'file destroyed');
  }

  private acquire(start: number, end: number, mode: 'shared' | 'exclusive', signal?: AbortSignal): Promise<RangeLockHandle> {
    const p = this.lock.acquire({ start, end }, mode, signal);
    if (signal === undefined) return p;
    return p.catch((e: unknown) => {
      if (e instanceof FsError && e.code === 'EINTR') this.stats.interrupted++;
      throw e;
    });
  }

  /**
   * EXCLUSIVE lock for a change of [start, end). If it may extend the file, lock
   * [floor(min(start, size)), ∞) and re-check the size after the grant, re-locking if it moved (R5).
   */
  private async lockForChange(start: number, end: number, mayExtend: boolean, signal?: AbortSignal): Promise<RangeLockHandle> {
    for (;;) {
      const size = this.size_;
      const ext = mayExtend && end > size;
      const ls = ext ? floorPage(Math.min(start, size)) : floorPage(start);
      const le = ext ? Infinity : ceilPage(end);
      const h = await this.acquire(ls, le, 'exclusive', signal);
      const s2 = this.size_;
      if (!(mayExtend && end > s2) || (le === Infinity && ls <= floorPage(Math.min(start, s2)))) return h;
      this.lock.release(h);
      this.stats.relocks++;
    }
  }
}

/**
 * Factory: `createFileData(ino, store, opts)`. A number as third argument is the initial size, so
 * the function also fits filesystem.ts's FileDataFactory `(ino, store, initialSize)` directly
 * (with the default options: shared default cache, write-through, no faults).
 */
export function createFileData(ino: number, store: FileStore, opts: FileDataOptions | number = {}): CachedFileData {
  return new CachedFileData(ino, store, typeof opts === 'number' ? { initialSize: opts } : opts);
}

/** A FileDataFactory `(ino, store, initialSize)` with options shared by every file of a mount. */
export function fileDataFactory(shared: Omit<FileDataOptions, 'initialSize'> = {}): (ino: number, store: FileStore, initialSize: number) => CachedFileData {
  return (ino, store, initialSize) => new CachedFileData(ino, store, { ...shared, initialSize });
}
