// The file-backed store (--store DIR): each regular file's data lives in sparse backing files under
// DIR/data/<ino>/, mapped with mmap-io; metadata lives in a journal + snapshot (journal.ts).
//
// Mapping strategy. mmap-io 1.1.7 passes map()'s size and offset, and advise()'s offset/length, as
// C `int`: a file offset >= 2 GiB cannot be mapped, and one Buffer cannot exceed 2 GiB. So a file is
// split into SEGMENTS of SEG_BYTES (2 MiB), each its own sparse backing file DIR/data/<ino>/<seg>,
// always exactly SEG_BYTES long and mapped whole (MAP_SHARED, read/write) at offset 0 on first use.
// A mapping therefore never changes size: growth maps a new segment, nothing is ever remapped, and
// no Buffer over a mapping ever escapes this module (reads copy out, writes copy in). Segments that
// hold no data have no file at all (a 16 TiB sparse file with two data pages is two 2 MiB sparse
// files). The fd is closed right after mmap (the mapping keeps the file); fsync reopens by path, so
// a mount holds no fd per file. Each mapped segment costs one VMA (vm.max_map_count, 65530 by
// default): at most MAX_MAPPED_SEGMENTS (32 GiB) stay mapped, least recently used ones are dropped
// (mmap-io unmaps a Buffer when V8 collects it) and mapped again on their next use.
//
// Holes. Allocation is tracked per page in a bitmap per segment (the source of st_blocks,
// SEEK_DATA/SEEK_HOLE and readPage's null); invariant: a page the bitmap calls a hole reads as zero
// in its backing file. punch() turns whole pages into real holes with madvise(MADV_REMOVE) on the
// mapping (= fallocate(PUNCH_HOLE|KEEP_SIZE) of the backing range; Node has no fallocate), zeroes
// partial pages, and unlinks a segment file whose last page went. truncate() zeroes the tail of the
// last page, unlinks segment files wholly past the new size, and ftruncate()s the boundary segment
// file down to the page-rounded size and back up to SEG_BYTES (the dropped range becomes a hole; the
// mapping stays valid: it only covers past EOF between the two synchronous syscalls, when nothing
// reads it). allocate() touches each new page through the mapping, so fallocated space is really
// allocated in the backing file. The bitmaps are saved to DIR/data/<ino>/alloc on sync and close;
// after an unclean stop (no DIR/clean marker) they are merged with a scan of the backing files for
// non-zero pages, so a page written after the last save is never taken for a hole (a page punched
// after the last save may then count as allocated zeros: st_blocks may over-count, data never lies).
//
// Concurrency. Every method does its work synchronously on the JS thread (copies through the
// mapping, madvise, ftruncate are synchronous calls), so no two store calls interleave, and a
// read can never copy from a range that a truncate is taking away. Independently, the data path
// (file-data.ts doTruncate) calls store.truncate() holding an EXCLUSIVE range lock over
// [floorPage(min(old, new)), ∞), and reads that miss the cache (readMiss) hold a SHARED lock over the
// pages they fill, so no fill is in flight over a truncated range either (checked in file-data.ts).
//
// Durability. sync() (fsync/fdatasync/flush/release) msync(MS_ASYNC)s and fsyncs every segment file
// written since the last sync (Linux: fsync writes back pages dirtied through MAP_SHARED mappings;
// msync(MS_SYNC) is just fsync of the range), fsyncs the file's directory if segment files were
// removed, then fdatasyncs the metadata journal (group commit). See journal.ts for the argument.
//
// Capacity: logical, as for the memory store (an allocated page counts 4 KiB), limited by default
// to the free space of DIR's filesystem at open: a write fault into a full backing filesystem
// through a mapping would be a SIGBUS of the daemon, so the store must say ENOSPC first (another
// writer filling the backing filesystem meanwhile can still cause it; keep DIR on its own space).

import { createRequire } from 'node:module';
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  realpathSync,
  rmSync,
  statfsSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  fsyncSync,
  fsync as fsyncCb,
  constants as fsc,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { FsError, PAGE_SIZE, type FileStore, type StoreBackend } from './types.js';
import type { FsSnapshot, MetadataChange } from './metadata.js';
import { PageBudget } from './page-budget.js';
import { Journal, acquireLock, checkFormat, fsyncDir, loadMetadata, setClean, wasClean, writeFileAtomic, type StoreLock } from './journal.js';

interface MmapIo {
  map(size: number, protection: number, flags: number, fd: number, offset?: number, advise?: number): Buffer;
  advise(buffer: Buffer, offset: number, length: number, advise: number): void;
  sync(buffer: Buffer, offset?: number, size?: number, blocking_sync?: boolean, invalidate_pages?: boolean): void;
  PROT_READ: number;
  PROT_WRITE: number;
  MAP_SHARED: number;
}

let mmapMod: MmapIo | undefined;
function mmap(): MmapIo {
  if (!mmapMod) {
    try {
      mmapMod = createRequire(import.meta.url)('mmap-io') as MmapIo;
    } catch (e) {
      throw new Error(`--store needs the mmap-io addon, which failed to load (${(e as Error).message}); rebuild it: npm rebuild mmap-io (CXXFLAGS=-std=gnu++17 on Node 20)`);
    }
  }
  return mmapMod;
}

/** madvise(MADV_REMOVE): free the range and its backing store (linux/mman.h). */
const MADV_REMOVE = 9;
/**
 * Pages per segment (512 pages = 2 MiB, like the memory store's chunk). Small on purpose: V8
 * accounts every mapped Buffer's length as external memory, and each new 64 MiB mapping cost a
 * full GC (measured: 100 maps of 64 MiB 1.9 s with 60 GCs, of 2 MiB 0.5 s with 3).
 */
export const SEG_PAGES = 512;
/** Live mappings kept at most (one VMA each; vm.max_map_count is 65530 by default): LRU beyond. */
export const MAX_MAPPED_SEGMENTS = 16384;
export const SEG_BYTES = SEG_PAGES * PAGE_SIZE;
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

function checkOffset(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new FsError('EINVAL', `${name} must be a non-negative safe integer`);
  return v;
}

function lowerBound(arr: number[], v: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One 64 MiB window of a file: its allocation bitmap and (once used) its mapping. */
class Segment {
  readonly idx: number;
  readonly bits = new Uint8Array(SEG_PAGES / 8);
  count = 0;
  map: Buffer | null = null;
  /** Written/punched/truncated since the last sync. */
  dirty = false;
  constructor(idx: number) {
    this.idx = idx;
  }
  has(p: number): boolean {
    return (this.bits[p >> 3]! & (1 << (p & 7))) !== 0;
  }
  set(p: number): boolean {
    const m = 1 << (p & 7);
    if (this.bits[p >> 3]! & m) return false;
    this.bits[p >> 3]! |= m;
    this.count++;
    return true;
  }
  clear(p: number): boolean {
    const m = 1 << (p & 7);
    if (!(this.bits[p >> 3]! & m)) return false;
    this.bits[p >> 3]! &= ~m;
    this.count--;
    return true;
  }
  /** Allocated pages in [lo, hi). */
  countRange(lo: number, hi: number): number {
    let n = 0;
    for (let p = lo; p < hi; p++) if (this.has(p)) n++;
    return n;
  }
  /** First set (want=true) or clear bit >= from, or -1. */
  find(from: number, want: boolean): number {
    for (let p = from; p < SEG_PAGES; ) {
      const b = this.bits[p >> 3]!;
      if ((p & 7) === 0 && b === (want ? 0 : 0xff)) {
        p += 8;
        continue;
      }
      if (((b & (1 << (p & 7))) !== 0) === want) return p;
      p++;
    }
    return -1;
  }
}

export interface FileStoreOptions {
  /** Logical capacity in bytes; default and upper bound: the free space of DIR's filesystem at open. */
  capacityBytes?: number;
  /** The mountpoint (realpath), to refuse a store inside it. */
  mountpoint?: string;
  /** Log function for warnings (default: stderr). */
  log?: (line: string) => void;
}

export class FileStoreBackend implements StoreBackend {
  readonly kind = 'file' as const;
  readonly dir: string;
  readonly dataDir: string;
  readonly #budget: PageBudget;
  readonly #stores = new Map<number, MappedFileStore>();
  readonly #journal: Journal | null;
  readonly log: (line: string) => void;
  /** MADV_REMOVE failed once (backing fs without hole punching): punches zero-fill instead. */
  punchFallback = false;
  /** Mapped segments, least recently used first (Map keeps insertion order). */
  readonly #mappedLru = new Map<Segment, true>();

  /** @internal Note a use of a mapped segment; drop the oldest mappings past the limit. */
  _touch(s: Segment): void {
    this.#mappedLru.delete(s);
    this.#mappedLru.set(s, true);
    while (this.#mappedLru.size > MAX_MAPPED_SEGMENTS) {
      const old = this.#mappedLru.keys().next().value as Segment;
      this.#mappedLru.delete(old);
      if (!old.dirty) old.map = null; // a dirty one stays mapped until its sync (fsync by path anyway)
    }
  }
  /** @internal */
  _untouch(s: Segment): void {
    this.#mappedLru.delete(s);
  }

  constructor(dir: string, capacityBytes: number, journal: Journal | null, log: (line: string) => void) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    mkdirSync(this.dataDir, { recursive: true });
    this.#budget = new PageBudget(capacityBytes, 'file store');
    this.#journal = journal;
    this.log = log;
  }

  /** Set the capacity (bytes, rounded down to pages; Infinity = unlimited). */
  setCapacity(capacityBytes: number): void {
    this.#budget.setCapacity(capacityBytes);
  }

  /** Capacity in bytes, rounded down to pages (Infinity = unlimited). */
  get capacityBytes(): number {
    return this.#budget.capacityBytes;
  }

  open(ino: number): MappedFileStore {
    if (!Number.isSafeInteger(ino) || ino < 1) throw new FsError('EINVAL', `bad inode number ${String(ino)}`);
    let s = this.#stores.get(ino);
    if (!s) {
      s = new MappedFileStore(this, ino);
      this.#stores.set(ino, s);
    }
    return s;
  }

  has(ino: number): boolean {
    return this.#stores.has(ino);
  }

  inodes(): number[] {
    return [...this.#stores.keys()].sort((a, b) => a - b);
  }

  usage(): { capacityBytes: number; usedBytes: number } {
    return this.#budget.usage();
  }

  /** @internal */
  _reserve(n: number): void {
    this.#budget.reserve(n);
  }
  /** @internal */
  _unreserve(n: number): void {
    this.#budget.release(n);
  }
  /** @internal Account pages found at open (may exceed capacity: never refuses). */
  _account(n: number): void {
    this.#budget.account(n);
  }
  /** @internal */
  _forget(ino: number, s: MappedFileStore): void {
    if (this.#stores.get(ino) === s) this.#stores.delete(ino);
  }
  /** @internal fdatasync the metadata journal. */
  async _syncJournal(): Promise<void> {
    await this.#journal?.sync();
  }

  /**
   * Make every metadata change so far durable (fdatasync of the journal). For fsyncdir and
   * syncfs, should they ever reach the daemon (FUSE_SYNCFS is sent only to virtiofs servers).
   */
  async syncMetadata(): Promise<void> {
    await this.#journal?.sync();
  }

  /** fsync every store's dirty segments and save allocation maps (close / periodic). */
  async syncAll(durableMaps: boolean): Promise<void> {
    for (const s of this.#stores.values()) await s.syncData(durableMaps);
  }
}

export class MappedFileStore implements FileStore {
  readonly ino: number;
  readonly dir: string;
  readonly #backend: FileStoreBackend;
  readonly #segs = new Map<number, Segment>();
  /** Indices of segments with count > 0, ascending. */
  readonly #keys: number[] = [];
  #allocated = 0;
  #destroyed = false;
  #allocDirty = false;
  /** Segment files were removed since the last sync (the directory needs an fsync). */
  #unlinked = false;

  constructor(backend: FileStoreBackend, ino: number) {
    this.#backend = backend;
    this.ino = ino;
    this.dir = join(backend.dataDir, String(ino));
  }

  #alive(): void {
    if (this.#destroyed) throw new FsError('EIO', `store of inode ${this.ino} was destroyed`);
  }

  #segPath(idx: number): string {
    return join(this.dir, String(idx));
  }

  #seg(idx: number, create: boolean): Segment | undefined {
    let s = this.#segs.get(idx);
    if (!s && create) {
      s = new Segment(idx);
      this.#segs.set(idx, s);
    }
    return s;
  }

  #noteCount(s: Segment, wasZero: boolean): void {
    if (wasZero && s.count > 0) this.#keys.splice(lowerBound(this.#keys, s.idx), 0, s.idx);
    else if (!wasZero && s.count === 0) {
      const i = lowerBound(this.#keys, s.idx);
      if (this.#keys[i] === s.idx) this.#keys.splice(i, 1);
    }
  }

  /** The segment's mapping, creating its sparse backing file on first use. */
  #mapped(s: Segment): Buffer {
    if (s.map) {
      this.#backend._touch(s);
      return s.map;
    }
    mkdirSync(this.dir, { recursive: true });
    let fd: number;
    try {
      fd = openSync(this.#segPath(s.idx), fsc.O_RDWR | fsc.O_CREAT, 0o600);
    } catch (e) {
      throw new FsError('EIO', `store: cannot open ${this.#segPath(s.idx)}: ${(e as Error).message}`);
    }
    try {
      if (fstatSync(fd).size !== SEG_BYTES) ftruncateSync(fd, SEG_BYTES);
      const m = mmap();
      s.map = m.map(SEG_BYTES, m.PROT_READ | m.PROT_WRITE, m.MAP_SHARED, fd, 0);
    } catch (e) {
      throw new FsError('EIO', `store: cannot map ${this.#segPath(s.idx)}: ${(e as Error).message}`);
    } finally {
      closeSync(fd);
    }
    this.#backend._touch(s);
    return s.map;
  }

  /** Remove segment `s` entirely (file and mapping). Its pages must already be unaccounted. */
  #dropSegment(s: Segment): void {
    s.map = null; // unmapped by mmap-io's finalizer at GC; never touched again
    this.#backend._untouch(s);
    this.#segs.delete(s.idx);
    const i = lowerBound(this.#keys, s.idx);
    if (this.#keys[i] === s.idx) this.#keys.splice(i, 1);
    try {
      unlinkSync(this.#segPath(s.idx));
      this.#unlinked = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FsError('EIO', `store: cannot remove ${this.#segPath(s.idx)}: ${(e as Error).message}`);
    }
  }

  /** Pages in [first, end) that are holes. */
  #holes(first: number, end: number): number {
    let n = 0;
    for (let si = Math.floor(first / SEG_PAGES); si * SEG_PAGES < end; si++) {
      const base = si * SEG_PAGES;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(end, base + SEG_PAGES) - base;
      const s = this.#segs.get(si);
      n += hi - lo - (s ? (lo === 0 && hi === SEG_PAGES ? s.count : s.countRange(lo, hi)) : 0);
    }
    return n;
  }

  async readPage(index: number): Promise<Buffer | null> {
    return this.readPageSync(index);
  }

  readPageSync(index: number): Buffer | null {
    this.#alive();
    checkOffset('page index', index);
    const s = this.#segs.get(Math.floor(index / SEG_PAGES));
    const p = index % SEG_PAGES;
    if (!s || !s.has(p)) return null;
    const m = this.#mapped(s);
    return Buffer.from(m.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#alive();
    if (!(data instanceof Uint8Array)) throw new FsError('EINVAL', 'data must be a Uint8Array');
    const off = checkOffset('offset', offset);
    const len = data.length;
    if (len === 0) return;
    const end = off + len;
    const first = Math.floor(off / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    this.#backend._reserve(this.#holes(first, last)); // ENOSPC before anything is stored
    let pos = off;
    while (pos < end) {
      const si = Math.floor(pos / SEG_PAGES / PAGE_SIZE);
      const base = si * SEG_BYTES;
      const stop = Math.min(end, base + SEG_BYTES);
      const s = this.#seg(si, true)!;
      let m: Buffer;
      try {
        m = this.#mapped(s);
      } catch (e) {
        // Give back the reservation of the pages not stored (those of this and later segments).
        this.#backend._unreserve(this.#holes(Math.floor(pos / PAGE_SIZE), last));
        if (s.count === 0 && !s.map) this.#segs.delete(si);
        throw e;
      }
      m.set(data.subarray(pos - off, stop - off), pos - base);
      const wasZero = s.count === 0;
      const p0 = Math.floor((pos - base) / PAGE_SIZE);
      const p1 = Math.ceil((stop - base) / PAGE_SIZE);
      for (let p = p0; p < p1; p++) if (s.set(p)) (this.#allocated++, (this.#allocDirty = true));
      this.#noteCount(s, wasZero);
      s.dirty = true;
      pos = stop;
    }
  }

  /** Zero bytes [from, to) of page `index` if allocated. */
  #zeroWithin(index: number, from: number, to: number): void {
    if (from >= to) return;
    const s = this.#segs.get(Math.floor(index / SEG_PAGES));
    const p = index % SEG_PAGES;
    if (!s || !s.has(p)) return;
    this.#mapped(s).fill(0, p * PAGE_SIZE + from, p * PAGE_SIZE + to);
    s.dirty = true;
  }

  /** Make whole pages [first, end) holes (real holes in the backing files). */
  #punchPages(first: number, end: number): void {
    if (first >= end) return;
    for (let si = Math.floor(first / SEG_PAGES); si * SEG_PAGES < end; ) {
      const ki = lowerBound(this.#keys, si);
      if (ki >= this.#keys.length) break;
      si = this.#keys[ki]!;
      const base = si * SEG_PAGES;
      if (base >= end) break;
      const s = this.#segs.get(si)!;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(end, base + SEG_PAGES) - base;
      let freed = 0;
      for (let p = lo; p < hi; p++) if (s.clear(p)) freed++;
      if (freed > 0) {
        this.#allocated -= freed;
        this.#backend._unreserve(freed);
        this.#allocDirty = true;
        if (s.count === 0) {
          this.#dropSegment(s);
        } else {
          const m = this.#mapped(s);
          if (!this.#backend.punchFallback) {
            try {
              mmap().advise(m, lo * PAGE_SIZE, (hi - lo) * PAGE_SIZE, MADV_REMOVE);
            } catch (e) {
              this.#backend.punchFallback = true;
              this.#backend.log(`store: madvise(MADV_REMOVE) failed (${(e as Error).message}); punched ranges are zero-filled instead of freed in the backing files`);
            }
          }
          if (this.#backend.punchFallback) m.fill(0, lo * PAGE_SIZE, hi * PAGE_SIZE);
          s.dirty = true;
          this.#noteCount(s, false);
        }
      }
      si++;
    }
  }

  async punch(offset: number, length: number): Promise<void> {
    this.#alive();
    const off = checkOffset('offset', offset);
    const len = checkOffset('length', length);
    if (len === 0) return;
    const end = off + len;
    const headPage = Math.floor(off / PAGE_SIZE);
    const tailPage = Math.floor(end / PAGE_SIZE);
    if (off % PAGE_SIZE !== 0) {
      const ps = headPage * PAGE_SIZE;
      this.#zeroWithin(headPage, off - ps, Math.min(end - ps, PAGE_SIZE));
    }
    if (end % PAGE_SIZE !== 0 && (tailPage !== headPage || off % PAGE_SIZE === 0)) this.#zeroWithin(tailPage, 0, end % PAGE_SIZE);
    this.#punchPages(Math.ceil(off / PAGE_SIZE), Math.floor(end / PAGE_SIZE));
  }

  async allocate(offset: number, length: number): Promise<void> {
    this.#alive();
    const off = checkOffset('offset', offset);
    const len = checkOffset('length', length);
    if (len === 0) return;
    const first = Math.floor(off / PAGE_SIZE);
    const last = Math.ceil((off + len) / PAGE_SIZE);
    const need = this.#holes(first, last);
    if (need === 0) return;
    this.#backend._reserve(need);
    for (let si = Math.floor(first / SEG_PAGES); si * SEG_PAGES < last; si++) {
      const base = si * SEG_PAGES;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(last, base + SEG_PAGES) - base;
      const s = this.#seg(si, true)!;
      let m: Buffer;
      try {
        m = this.#mapped(s);
      } catch (e) {
        this.#backend._unreserve(this.#holes(base + lo, last));
        if (s.count === 0 && !s.map) this.#segs.delete(si);
        throw e;
      }
      const wasZero = s.count === 0;
      for (let p = lo; p < hi; p++) {
        if (s.set(p)) {
          m[p * PAGE_SIZE] = 0; // write fault: the backing filesystem allocates the (zero) page
          this.#allocated++;
        }
      }
      this.#allocDirty = true;
      s.dirty = true;
      this.#noteCount(s, wasZero);
    }
  }

  async truncate(size: number): Promise<void> {
    this.#alive();
    checkOffset('size', size);
    const keep = Math.ceil(size / PAGE_SIZE);
    const rem = size % PAGE_SIZE;
    if (rem !== 0) this.#zeroWithin(Math.floor(size / PAGE_SIZE), rem, PAGE_SIZE);
    this.#truncatePages(keep);
  }

  /** Drop every page >= keep: unlink whole segments past it, cut the boundary segment file. */
  #truncatePages(keep: number): void {
    for (const s of [...this.#segs.values()]) {
      const base = s.idx * SEG_PAGES;
      if (base + SEG_PAGES <= keep) continue;
      const lo = Math.max(keep - base, 0);
      let freed = 0;
      for (let p = lo; p < SEG_PAGES; p++) if (s.clear(p)) freed++;
      this.#allocated -= freed;
      this.#backend._unreserve(freed);
      if (freed > 0) this.#allocDirty = true;
      if (lo === 0 || s.count === 0) {
        if (freed > 0 || lo === 0) this.#dropSegment(s);
        continue;
      }
      if (freed > 0 || existsSync(this.#segPath(s.idx))) {
        try {
          truncateSync(this.#segPath(s.idx), lo * PAGE_SIZE);
          truncateSync(this.#segPath(s.idx), SEG_BYTES);
        } catch (e) {
          throw new FsError('EIO', `store: cannot truncate ${this.#segPath(s.idx)}: ${(e as Error).message}`);
        }
        s.dirty = true;
      }
      this.#noteCount(s, false);
    }
  }

  allocatedPages(): number {
    return this.#allocated;
  }

  nextDataPage(from: number): number {
    if (this.#destroyed || !Number.isSafeInteger(from)) return -1;
    if (from < 0) from = 0;
    for (let k = lowerBound(this.#keys, Math.floor(from / SEG_PAGES)); k < this.#keys.length; k++) {
      const si = this.#keys[k]!;
      const base = si * SEG_PAGES;
      const p = this.#segs.get(si)!.find(Math.max(from, base) - base, true);
      if (p >= 0) return base + p;
    }
    return -1;
  }

  nextHolePage(from: number): number {
    if (!Number.isSafeInteger(from) || from < 0) from = 0;
    let idx = from;
    for (;;) {
      const si = Math.floor(idx / SEG_PAGES);
      const s = this.#segs.get(si);
      if (!s || s.count === 0) return idx;
      const base = si * SEG_PAGES;
      const p = s.find(idx - base, false);
      if (p >= 0) return base + p;
      idx = base + SEG_PAGES;
    }
  }

  /** fsync written segments (and the directory if segments went), save the allocation map. */
  async syncData(durableMap = false): Promise<void> {
    if (this.#destroyed) return;
    const dirty = [...this.#segs.values()].filter((s) => s.dirty);
    for (const s of dirty) s.dirty = false;
    const m = dirty.length > 0 ? mmap() : undefined;
    await Promise.all(
      dirty.map(async (s) => {
        try {
          if (s.map) m!.sync(s.map, 0, SEG_BYTES, false); // MS_ASYNC: start writeback of the mapping
        } catch {
          /* fsync below is what counts */
        }
        // open/close of a local file are fast: only the fsync goes to the thread pool (one hop).
        const fd = openSync(this.#segPath(s.idx), fsc.O_RDONLY);
        try {
          await new Promise<void>((res, rej) => fsyncCb(fd, (e) => (e ? rej(e) : res())));
        } finally {
          closeSync(fd);
        }
      }),
    ).catch((e: unknown) => {
      for (const s of dirty) s.dirty = true;
      throw new FsError('EIO', `store: fsync of inode ${this.ino} failed: ${(e as Error).message}`);
    });
    if (this.#allocDirty && !this.#destroyed) {
      this.#allocDirty = false;
      this.saveAllocMap(durableMap);
    }
    if (this.#unlinked && existsSync(this.dir)) {
      this.#unlinked = false;
      fsyncDir(this.dir);
    }
  }

  /** Write DIR/data/<ino>/alloc: {segment index: base64 bitmap}. */
  saveAllocMap(durable: boolean): void {
    const out: Record<string, string> = {};
    for (const s of this.#segs.values()) if (s.count > 0) out[s.idx] = Buffer.from(s.bits).toString('base64');
    if (Object.keys(out).length === 0 && !existsSync(this.dir)) return;
    mkdirSync(this.dir, { recursive: true });
    if (durable) writeFileAtomic(this.dir, 'alloc', JSON.stringify(out));
    else writeFileSync(join(this.dir, 'alloc'), JSON.stringify(out));
  }

  async sync(): Promise<void> {
    this.#alive();
    // Both must be durable when fsync returns; their order does not matter (an unacknowledged
    // fsync promises nothing), so they run in parallel.
    await Promise.all([this.syncData(), this.#backend._syncJournal()]);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#backend._unreserve(this.#allocated);
    this.#allocated = 0;
    for (const s of this.#segs.values()) {
      s.map = null;
      this.#backend._untouch(s);
    }
    this.#segs.clear();
    this.#keys.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
    this.#backend._forget(this.ino, this);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Segments with data (diagnostics/tests). */
  segmentIndexes(): number[] {
    return [...this.#keys];
  }

  /** Path of segment `idx`'s backing file (tests). */
  segmentPath(idx: number): string {
    return this.#segPath(idx);
  }

  /**
   * @internal Load this file's state at open: segment files, allocation map, a scan for non-zero
   * pages if the store was not closed cleanly, and discard everything at or past `size`.
   */
  _load(size: number, clean: boolean): void {
    if (!existsSync(this.dir)) return;
    let saved: Record<string, string> = {};
    try {
      saved = JSON.parse(readFileSync(join(this.dir, 'alloc'), 'utf8')) as Record<string, string>;
    } catch {
      clean = false; // no usable map: derive it from the data
    }
    const keep = Math.ceil(size / PAGE_SIZE);
    /** Non-zero pages at or past EOF found after an unclean stop: unjournaled extending writes. */
    const pastEof: number[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!/^\d+$/.test(name)) continue;
      const si = Number(name);
      const base = si * SEG_PAGES;
      const s = new Segment(si);
      const b = saved[name];
      if (b) {
        const bits = Buffer.from(b, 'base64');
        if (bits.length === s.bits.length) s.bits.set(bits);
        for (let p = 0; p < SEG_PAGES; p++) if (s.has(p)) s.count++;
      }
      if (!clean) {
        // Unclean stop: pages written after the last map save are data too (below EOF), and
        // non-zero pages past EOF were never published (their size record did not make it).
        const fd = openSync(this.#segPath(si), 'r');
        try {
          const chunk = Buffer.alloc(256 * PAGE_SIZE);
          for (let p = 0; p < SEG_PAGES; p += 256) {
            const n = readSync(fd, chunk, 0, 256 * PAGE_SIZE, p * PAGE_SIZE);
            for (let q = 0; q * PAGE_SIZE < n; q++) {
              if (chunk.subarray(q * PAGE_SIZE, (q + 1) * PAGE_SIZE).equals(ZERO_PAGE)) continue;
              s.set(p + q);
              if (base + p + q >= keep) pastEof.push(base + p + q);
            }
            if (n < 256 * PAGE_SIZE) break;
          }
        } finally {
          closeSync(fd);
        }
      }
      if (s.count === 0) {
        unlinkSync(this.#segPath(si));
        this.#unlinked = true;
        continue;
      }
      this.#segs.set(si, s);
      this.#allocated += s.count;
      this.#keys.splice(lowerBound(this.#keys, si), 0, si);
    }
    this.#backend._account(this.#allocated);
    // Pages past EOF may only hold zeros (fallocate KEEP_SIZE): punch what an unclean stop left there.
    for (const p of pastEof) this.#punchPages(p, p + 1);
    // Bytes of the last page past `size` must read as zero (a write past EOF that was not journaled).
    const rem = size % PAGE_SIZE;
    if (rem !== 0) this.#zeroWithin(Math.floor(size / PAGE_SIZE), rem, PAGE_SIZE);
    this.#allocDirty = true;
  }
}

/** The persistent state handed to the daemon. */
export interface OpenedFileStore {
  backend: FileStoreBackend;
  /** Metadata to restore (undefined: a fresh store; create an empty Filesystem). */
  snapshot: FsSnapshot | undefined;
  /** The journal hook for FilesystemOptions.onMetadataChange. */
  onMetadataChange: (change: MetadataChange) => void;
  /** Give the store the Filesystem (for compaction); compacts at once. */
  attach(fs: { snapshot(): FsSnapshot }): void;
  /** Sync everything, compact, mark clean, release the lock. Call after unmount + settle. */
  close(): Promise<void>;
  /** What opening found (for the log). */
  info: { created: boolean; clean: boolean; replayed: number; droppedBytes: number; stopReason?: string; files: number; usedBytes: number };
}

/** Compact the journal when it grows past this many bytes. */
const COMPACT_BYTES = 8 * 2 ** 20;
/** Background journal fdatasync / allocation map save period. */
const SYNC_PERIOD_MS = 1000;

function isInside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The realpath of `p`, or of its nearest existing ancestor joined with the rest. */
function realish(p: string): string {
  let cur = resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return resolve(p);
      rest.push(cur.slice(up.length + (up.endsWith('/') ? 0 : 1)));
      cur = up;
    }
  }
}

/**
 * Open (creating if needed) the store in `dir` for one daemon: refuses a store inside the
 * mountpoint, of an unknown format, or held by another live daemon.
 */
export async function openFileStore(dir: string, options: FileStoreOptions = {}): Promise<OpenedFileStore> {
  const log = options.log ?? ((l: string) => process.stderr.write(`faultline: ${l}\n`));
  if (typeof dir !== 'string' || dir === '') throw new Error('--store needs a directory');
  const abs = realish(dir);
  if (options.mountpoint) {
    const mnt = realish(options.mountpoint);
    if (isInside(abs, mnt)) {
      throw new Error(`--store ${abs} is inside the mountpoint ${mnt}: the daemon must never use files on its own mount (it would deadlock); put the store outside it`);
    }
    if (isInside(mnt, abs)) throw new Error(`mountpoint ${mnt} is inside the store ${abs}: use a mountpoint outside the store directory`);
  }
  mkdirSync(abs, { recursive: true });
  const created = checkFormat(abs) === 'created';
  const lock: StoreLock = acquireLock(abs, options.mountpoint ?? '');
  let journal: Journal | undefined;
  try {
    const clean = created || wasClean(abs);
    setClean(abs, false);
    const loaded = loadMetadata(abs);
    if (loaded.stopReason) log(`store ${abs}: journal replay stopped: ${loaded.stopReason} (${loaded.droppedBytes} byte(s) not replayed; they were never fsync'ed)`);
    journal = new Journal(abs);
    if (loaded.snapshot) journal.compact(loaded.snapshot); // drop the torn tail before appending
    else if (journal.bytes > 0) journal.compact({ format: 'faultline-fs', version: 1, nextIno: 2, seq: 0, inodes: [] });

    // Capacity: the requested one, bounded by what the backing filesystem can hold.
    const st = statfsSync(abs);
    const free = Number(st.bavail) * Number(st.bsize);
    const j = journal;
    const backend = new FileStoreBackend(abs, Infinity, j, log);
    const files = new Map<number, number>();
    for (const r of loaded.snapshot?.inodes ?? []) if (r.kind === 'file') files.set(r.ino, r.size ?? 0);
    for (const [ino, size] of files) backend.open(ino)._load(size, clean);
    const used = backend.usage().usedBytes;
    const maxCap = used + free;
    let cap = options.capacityBytes ?? maxCap;
    if (cap > maxCap) {
      log(`store ${abs}: capacity ${cap} exceeds the backing filesystem's free space; using ${maxCap}`);
      cap = maxCap;
    }
    backend.setCapacity(cap);
    // Orphan data directories: inodes that are not in the metadata (created after the last durable record).
    for (const name of readdirSync(backend.dataDir)) {
      if (!/^\d+$/.test(name) || !files.has(Number(name))) rmSync(join(backend.dataDir, name), { recursive: true, force: true });
    }
    // The stores' maps are exact now: save them before anything else can change.
    for (const ino of backend.inodes()) {
      backend.open(ino).saveAllocMap(true);
    }

    let fsRef: { snapshot(): FsSnapshot } | undefined;
    let compacting = false;
    const compact = (): void => {
      if (!fsRef || compacting) return;
      compacting = true;
      try {
        j.compact(fsRef.snapshot());
      } catch (e) {
        log(`store ${abs}: compaction failed: ${(e as Error).message}`);
      } finally {
        compacting = false;
      }
    };
    let closed = false;
    const timer = setInterval(() => {
      if (closed) return;
      if (j.dirty) j.sync().catch((e: unknown) => log(`store ${abs}: journal fdatasync failed: ${(e as Error).message}`));
      if (j.bytes > COMPACT_BYTES) compact();
    }, SYNC_PERIOD_MS);
    timer.unref();

    return {
      backend,
      snapshot: loaded.snapshot,
      info: { created, clean, replayed: loaded.replayed, droppedBytes: loaded.droppedBytes, stopReason: loaded.stopReason, files: files.size, usedBytes: used },
      onMetadataChange: (change) => {
        j.append(change);
      },
      attach(fs) {
        fsRef = fs;
        compact();
      },
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(timer);
        await backend.syncAll(true);
        if (fsRef) j.compact(fsRef.snapshot());
        j.close();
        fsyncDir(backend.dataDir);
        setClean(abs, true);
        lock.release();
      },
    };
  } catch (e) {
    try {
      journal?.close();
    } catch {
      /* ignore */
    }
    lock.release();
    throw e;
  }
}
