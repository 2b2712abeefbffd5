// The in-memory backing store: sparse files of 4 KiB pages, with one capacity limit shared by every
// file of a backend (one backend per mounted filesystem).
//
// Layout of one file: pages are grouped in chunks of CHUNK_PAGES (2 MiB). A Map holds the non-empty
// chunks by chunk index, and a sorted array holds the same chunk indices, so SEEK_DATA / SEEK_HOLE,
// punch and truncate cost O(log chunks + touched chunks * CHUNK_PAGES), never O(file size): a 16 TiB
// sparse file with two data pages is two chunks.
//
// Pages allocated by allocate() (fallocate) all reference one shared zero page, so fallocating a
// large range costs a pointer per page, not 4 KiB; the first write into such a page replaces the
// reference with a private copy. Capacity accounting is logical (an allocated zero page counts as a
// full page), which is what statfs and ENOSPC must see.
//
// Pages are copy-on-write: a page buffer is never mutated once stored (writes and partial zeroing
// replace it). readPage returns a fresh copy and write copies its input; readPageShared and
// writeShared (the data path's fast paths) hand out the immutable page buffers themselves.

import { FsError, PAGE_SIZE, type FileStore, type StoreBackend } from './types.js';
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { PageBudget } from './page-budget.js';

const CHUNK_SHIFT = 9;
/** Pages per chunk (512 pages = 2 MiB). */
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
/** Pages carved from one allocation (16 pages = 64 KiB). */
const SLAB_PAGES = 16;
let slab: Buffer | null = null;
let slabPos = 0;

/**
 * A new, uninitialised PAGE_SIZE buffer for a store page, carved from the current 64 KiB slab
 * (shared by every store of the process; memory is never reused: a page is never handed out
 * twice). One allocation per 16 pages instead of one per page; a slab lives as long as any of its
 * pages (in a store or in the page cache), so at worst one live page keeps 64 KiB alive (memory,
 * not capacity accounting, is then up to 16x the live data).
 */
function newPage(): Buffer {
  if (slab === null || slabPos === slab.length) {
    slab = Buffer.allocUnsafeSlow(SLAB_PAGES * PAGE_SIZE);
    slabPos = 0;
  }
  const b = slab.subarray(slabPos, slabPos + PAGE_SIZE);
  slabPos += PAGE_SIZE;
  return b;
}

/** The shared, never-mutated page that fallocated pages reference until first written. */
const ZERO_PAGE: Buffer = Buffer.alloc(PAGE_SIZE);

interface Chunk {
  /** Holey array of CHUNK_PAGES slots; undefined = hole. */
  pages: (Buffer | undefined)[];
  /** Allocated slots in `pages` (> 0 for every chunk kept in the map). */
  count: number;
}

function checkOffset(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new FsError('EINVAL', `${name} must be a non-negative safe integer, got ${typeof v === 'number' ? v : typeof v}`);
  }
  return v;
}

function checkRange(offset: unknown, length: unknown): [number, number] {
  const off = checkOffset('offset', offset);
  const len = checkOffset('length', length);
  if (off + len > Number.MAX_SAFE_INTEGER) throw new FsError('EINVAL', 'offset + length overflows');
  return [off, len];
}

/** Lower bound: first index i with arr[i] >= v. */
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

export interface MemoryStoreOptions {
  /**
   * Capacity in bytes shared by all files of this backend (rounded down to whole pages). Default:
   * half of the machine's RAM. Infinity means unlimited (statfs shows no limit), except for the
   * hard page limit below.
   */
  capacityBytes?: number;
  /**
   * Hard limit on allocated pages whatever the capacity, so that an absurd fallocate gets ENOSPC
   * instead of exhausting the V8 heap with page slots (8 bytes each; fallocated pages share one
   * zero page, written pages live outside the heap). Default: a quarter of the V8 heap limit in
   * slots (Node 20 on the 24 GiB test machine: 4 GiB heap, 128 Mi pages = 512 GiB).
   */
  hardLimitPages?: number;
}

export class MemoryStoreBackend implements StoreBackend {
  readonly kind = 'memory' as const;
  readonly capacityBytes: number;
  readonly #budget: PageBudget;
  readonly #stores = new Map<number, MemoryFileStore>();

  constructor(options: MemoryStoreOptions = {}) {
    const cap = options.capacityBytes ?? Math.floor(totalmem() / 2);
    if (typeof cap !== 'number' || Number.isNaN(cap) || cap < 0) {
      throw new FsError('EINVAL', `capacityBytes must be a non-negative number or Infinity, got ${typeof cap === 'number' ? cap : typeof cap}`);
    }
    const hard = options.hardLimitPages ?? Math.floor(getHeapStatistics().heap_size_limit / 4 / 8);
    if (typeof hard !== 'number' || Number.isNaN(hard) || hard < 0) throw new FsError('EINVAL', 'hardLimitPages must be a non-negative number');
    this.#budget = new PageBudget(cap, 'memory store', hard);
    this.capacityBytes = this.#budget.capacityBytes;
  }

  open(ino: number): MemoryFileStore {
    if (!Number.isSafeInteger(ino) || ino < 1) throw new FsError('EINVAL', `bad inode number ${typeof ino === 'number' ? ino : typeof ino}`);
    let s = this.#stores.get(ino);
    if (!s) {
      s = new MemoryFileStore(this, ino);
      this.#stores.set(ino, s);
    }
    return s;
  }

  /** True if a store for `ino` exists (was opened and not destroyed). */
  has(ino: number): boolean {
    return this.#stores.has(ino);
  }

  /** Inode numbers of all live stores, ascending (for persistence / orphan checks). */
  inodes(): number[] {
    return [...this.#stores.keys()].sort((a, b) => a - b);
  }

  usage(): { capacityBytes: number; usedBytes: number } {
    return this.#budget.usage();
  }

  /** Pages still available (Infinity if unlimited). */
  get freePages(): number {
    return this.#budget.free;
  }

  /** @internal Reserve `n` pages or throw ENOSPC, reserving nothing. */
  _reserve(n: number): void {
    this.#budget.reserve(n);
  }

  /** @internal */
  _unreserve(n: number): void {
    this.#budget.release(n);
  }

  /** @internal */
  _forget(ino: number, store: MemoryFileStore): void {
    if (this.#stores.get(ino) === store) this.#stores.delete(ino);
  }
}

export class MemoryFileStore implements FileStore {
  readonly ino: number;
  readonly #backend: MemoryStoreBackend;
  readonly #chunks = new Map<number, Chunk>();
  /** Indices of the chunks in #chunks, ascending. */
  readonly #keys: number[] = [];
  #allocated = 0;
  #destroyed = false;

  constructor(backend: MemoryStoreBackend, ino: number) {
    this.#backend = backend;
    this.ino = ino;
  }

  #alive(): void {
    if (this.#destroyed) throw new FsError('EIO', `store of inode ${this.ino} was destroyed`);
  }

  #page(index: number): Buffer | undefined {
    return this.#chunks.get(Math.floor(index / CHUNK_PAGES))?.pages[index % CHUNK_PAGES];
  }

  #chunkFor(ci: number): Chunk {
    let c = this.#chunks.get(ci);
    if (!c) {
      c = { pages: new Array<Buffer | undefined>(CHUNK_PAGES), count: 0 };
      this.#chunks.set(ci, c);
      this.#keys.splice(lowerBound(this.#keys, ci), 0, ci);
    }
    return c;
  }

  #dropChunk(ci: number): void {
    this.#chunks.delete(ci);
    const i = lowerBound(this.#keys, ci);
    if (this.#keys[i] === ci) this.#keys.splice(i, 1);
  }

  /** Set page `index` (must be a hole) to `buf`. Capacity must already be reserved. */
  #insert(index: number, buf: Buffer): void {
    const c = this.#chunkFor(Math.floor(index / CHUNK_PAGES));
    c.pages[index % CHUNK_PAGES] = buf;
    c.count++;
    this.#allocated++;
  }

  /** Replace the content of allocated page `index` by `buf` (copy-on-write: pages are never mutated). */
  #replace(index: number, buf: Buffer): void {
    this.#chunks.get(Math.floor(index / CHUNK_PAGES))!.pages[index % CHUNK_PAGES] = buf;
  }

  /** Allocated pages in [first, end). */
  #countAllocated(first: number, end: number): number {
    if (first >= end) return 0;
    const c0 = Math.floor(first / CHUNK_PAGES);
    const c1 = Math.floor((end - 1) / CHUNK_PAGES);
    let n = 0;
    for (let k = lowerBound(this.#keys, c0); k < this.#keys.length && this.#keys[k]! <= c1; k++) {
      const ci = this.#keys[k]!;
      const chunk = this.#chunks.get(ci)!;
      const base = ci * CHUNK_PAGES;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(end, base + CHUNK_PAGES) - base;
      if (lo === 0 && hi === CHUNK_PAGES) {
        n += chunk.count;
      } else {
        for (let s = lo; s < hi; s++) if (chunk.pages[s] !== undefined) n++;
      }
    }
    return n;
  }

  /** Make pages [first, end) holes, returning their capacity to the backend. */
  #dropPages(first: number, end: number): void {
    if (first >= end) return;
    const c0 = Math.floor(first / CHUNK_PAGES);
    const c1 = Math.floor((end - 1) / CHUNK_PAGES);
    const from = lowerBound(this.#keys, c0);
    let to = from;
    while (to < this.#keys.length && this.#keys[to]! <= c1) to++;
    const touched = this.#keys.slice(from, to);
    let freed = 0;
    for (const ci of touched) {
      const chunk = this.#chunks.get(ci)!;
      const base = ci * CHUNK_PAGES;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(end, base + CHUNK_PAGES) - base;
      if (lo === 0 && hi === CHUNK_PAGES) {
        freed += chunk.count;
        chunk.count = 0;
      } else {
        for (let s = lo; s < hi; s++) {
          if (chunk.pages[s] !== undefined) {
            chunk.pages[s] = undefined;
            chunk.count--;
            freed++;
          }
        }
      }
      if (chunk.count === 0) this.#dropChunk(ci);
    }
    this.#allocated -= freed;
    this.#backend._unreserve(freed);
  }

  /** Zero bytes [from, to) of page `index` if it is allocated (within one page). */
  #zeroWithin(index: number, from: number, to: number): void {
    if (from >= to) return;
    const p = this.#page(index);
    if (p === undefined || p === ZERO_PAGE) return;
    const nb = newPage(); // copy-on-write
    p.copy(nb);
    nb.fill(0, from, to);
    this.#replace(index, nb);
  }

  async readPage(index: number): Promise<Buffer | null> {
    this.#alive();
    checkOffset('page index', index);
    const p = this.#page(index);
    if (p === undefined) return null;
    return p === ZERO_PAGE ? Buffer.alloc(PAGE_SIZE) : Buffer.from(p);
  }

  /** Synchronous variant of readPage, for callers that can use it (same result). */
  readPageSync(index: number): Buffer | null {
    this.#alive();
    checkOffset('page index', index);
    const p = this.#page(index);
    if (p === undefined) return null;
    return p === ZERO_PAGE ? Buffer.alloc(PAGE_SIZE) : Buffer.from(p);
  }

  /** FileStore.readPageShared: the page itself (immutable, never mutated by anyone), or null. */
  readPageShared(index: number): Buffer | null {
    this.#alive();
    checkOffset('page index', index);
    return this.#page(index) ?? null;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#writePages(offset, data, null);
  }

  /** FileStore.writeShared: write() synchronously; returns the new (immutable) touched pages. */
  writeShared(offset: number, data: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    this.#writePages(offset, data, out);
    return out;
  }

  /**
   * Copy-on-write: every touched page gets a NEW buffer (old content + data), so a page buffer
   * handed out by readPageShared/writeShared never changes. New pages come from newPage() slabs.
   */
  #writePages(offset: number, data: Uint8Array, out: Buffer[] | null): void {
    this.#alive();
    if (!(data instanceof Uint8Array)) throw new FsError('EINVAL', 'data must be a Uint8Array');
    const [off, len] = checkRange(offset, data.length);
    if (len === 0) return;
    const end = off + len;
    const first = Math.floor(off / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE); // exclusive
    const need = last - first - this.#countAllocated(first, last);
    this.#backend._reserve(need); // throws ENOSPC before anything is stored
    let src = 0;
    for (let idx = first; idx < last; idx++) {
      const pageStart = idx * PAGE_SIZE;
      const from = Math.max(off, pageStart) - pageStart;
      const to = Math.min(end, pageStart + PAGE_SIZE) - pageStart;
      const n = to - from;
      const nb = newPage();
      const old = this.#page(idx);
      if (n !== PAGE_SIZE) {
        if (old === undefined || old === ZERO_PAGE) nb.fill(0);
        else old.copy(nb);
      }
      nb.set(data.subarray(src, src + n), from);
      src += n;
      if (old === undefined) this.#insert(idx, nb);
      else this.#replace(idx, nb);
      if (out !== null) out.push(nb);
    }
  }

  async punch(offset: number, length: number): Promise<void> {
    this.#alive();
    const [off, len] = checkRange(offset, length);
    if (len === 0) return;
    const end = off + len;
    const firstFull = Math.ceil(off / PAGE_SIZE);
    const endFull = Math.floor(end / PAGE_SIZE);
    const headPage = Math.floor(off / PAGE_SIZE);
    const tailPage = Math.floor(end / PAGE_SIZE);
    if (off % PAGE_SIZE !== 0) {
      // Partial head page (may also contain the end).
      const pageStart = headPage * PAGE_SIZE;
      this.#zeroWithin(headPage, off - pageStart, Math.min(end - pageStart, PAGE_SIZE));
    }
    if (end % PAGE_SIZE !== 0 && (tailPage !== headPage || off % PAGE_SIZE === 0)) {
      this.#zeroWithin(tailPage, 0, end % PAGE_SIZE);
    }
    this.#dropPages(firstFull, endFull);
  }

  async allocate(offset: number, length: number): Promise<void> {
    this.#alive();
    const [off, len] = checkRange(offset, length);
    if (len === 0) return;
    const first = Math.floor(off / PAGE_SIZE);
    const last = Math.ceil((off + len) / PAGE_SIZE);
    const need = last - first - this.#countAllocated(first, last);
    if (need === 0) return;
    this.#backend._reserve(need);
    for (let ci = Math.floor(first / CHUNK_PAGES); ci * CHUNK_PAGES < last; ci++) {
      const base = ci * CHUNK_PAGES;
      const lo = Math.max(first, base) - base;
      const hi = Math.min(last, base + CHUNK_PAGES) - base;
      const chunk = this.#chunkFor(ci);
      for (let s = lo; s < hi; s++) {
        if (chunk.pages[s] === undefined) {
          chunk.pages[s] = ZERO_PAGE;
          chunk.count++;
          this.#allocated++;
        }
      }
      if (chunk.count === 0) this.#dropChunk(ci); // cannot happen (hi > lo), kept for safety
    }
  }

  async truncate(size: number): Promise<void> {
    this.#alive();
    checkOffset('size', size);
    const keep = Math.ceil(size / PAGE_SIZE);
    const lastKey = this.#keys[this.#keys.length - 1];
    if (lastKey !== undefined) this.#dropPages(keep, (lastKey + 1) * CHUNK_PAGES);
    const rem = size % PAGE_SIZE;
    if (rem !== 0) this.#zeroWithin(Math.floor(size / PAGE_SIZE), rem, PAGE_SIZE);
  }

  allocatedPages(): number {
    return this.#allocated;
  }

  nextDataPage(from: number): number {
    if (this.#destroyed || !Number.isSafeInteger(from)) return -1;
    if (from < 0) from = 0;
    const c0 = Math.floor(from / CHUNK_PAGES);
    for (let k = lowerBound(this.#keys, c0); k < this.#keys.length; k++) {
      const ci = this.#keys[k]!;
      const chunk = this.#chunks.get(ci)!;
      const base = ci * CHUNK_PAGES;
      for (let s = Math.max(from, base) - base; s < CHUNK_PAGES; s++) {
        if (chunk.pages[s] !== undefined) return base + s;
      }
    }
    return -1;
  }

  nextHolePage(from: number): number {
    if (!Number.isSafeInteger(from) || from < 0) from = 0;
    let idx = from;
    for (;;) {
      const ci = Math.floor(idx / CHUNK_PAGES);
      const chunk = this.#chunks.get(ci);
      if (!chunk) return idx;
      const base = ci * CHUNK_PAGES;
      for (let s = idx - base; s < CHUNK_PAGES; s++) {
        if (chunk.pages[s] === undefined) return base + s;
      }
      idx = base + CHUNK_PAGES;
    }
  }

  async sync(): Promise<void> {
    this.#alive();
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#backend._unreserve(this.#allocated);
    this.#allocated = 0;
    this.#chunks.clear();
    this.#keys.length = 0;
    this.#backend._forget(this.ino, this);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Number of chunks held (diagnostics: proves holes cost nothing). */
  get chunkCount(): number {
    return this.#chunks.size;
  }
}

export { CHUNK_PAGES };
