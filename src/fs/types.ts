// Contracts of the fs room: the backing store, the per-file data path, and the hooks the
// data path exposes to fault injection. Nothing here imports FUSE; the daemon (src/daemon/)
// and the control socket (src/control/) are the only users outside src/fs/.

import { constants as osConstants } from 'node:os';

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** Largest file size faultline accepts (16 TiB). Writes, truncates and fallocates past it get EFBIG. */
export const MAX_FILE_SIZE = 2 ** 44;

/** fallocate(2) mode bits (linux/falloc.h). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_NO_HIDE_STALE = 0x04;
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const FALLOC_FL_INSERT_RANGE = 0x20;
export const FALLOC_FL_UNSHARE_RANGE = 0x40;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export type ErrnoName = keyof typeof osConstants.errno;

/** An error that becomes an errno reply. `errno` is positive (ENOENT = 2). */
export class FsError extends Error {
  readonly errno: number;
  readonly code: ErrnoName;
  constructor(code: ErrnoName, message?: string) {
    super(message ? `${code}: ${message}` : code);
    this.code = code;
    this.errno = osConstants.errno[code];
  }
}

/**
 * One file's data in the backing store, in 4 KiB pages. The store does not know the file size:
 * the data path (FileData) owns it. Pages never written, or punched whole, are holes and cost
 * nothing. All methods may be called concurrently only as the data path's range lock allows.
 */
export interface FileStore {
  /** A fresh PAGE_SIZE copy of page `index`, or null if that page is a hole (reads as zeros). */
  readPage(index: number): Promise<Buffer | null>;
  /**
   * OPTIONAL fast path (stores whose pages are immutable, copy-on-write: the memory store). Page
   * `index` synchronously, as a PAGE_SIZE buffer that may be the store's own and that NOBODY may
   * ever modify (the store replaces, never mutates, a page), or null for a hole. Same content as
   * readPage at the same instant. The page cache keeps such buffers without copying them.
   */
  readPageShared?(index: number): Buffer | null;
  /**
   * OPTIONAL fast path, same immutability contract as readPageShared: write() done synchronously
   * (same errors, thrown), returning the new immutable content of every page the write touched,
   * in order (page floor(offset/4K) first). A store implements both or neither.
   */
  writeShared?(offset: number, data: Uint8Array): Buffer[];
  /** Store `data` at `offset`, allocating pages as needed. Throws FsError('ENOSPC') at capacity, storing nothing. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Make [offset, offset+length) read as zeros: whole pages become holes, partial pages are zeroed. */
  punch(offset: number, length: number): Promise<void>;
  /** Allocate (zero-filled) every hole page touched by [offset, offset+length). ENOSPC as for write. */
  allocate(offset: number, length: number): Promise<void>;
  /** Discard data at and beyond `size`: pages past it become holes, the tail of the last page is zeroed. */
  truncate(size: number): Promise<void>;
  /** Number of allocated pages (st_blocks = allocatedPages * 8). */
  allocatedPages(): number;
  /** First allocated page index >= from, or -1 if none. */
  nextDataPage(from: number): number;
  /** First hole page index >= from (there is always one, at the latest past the last allocated page). */
  nextHolePage(from: number): number;
  /** Make written data durable (a no-op for memory). */
  sync(): Promise<void>;
  /** Free everything; the store is unusable afterwards. */
  destroy(): Promise<void>;
}

/** Creates and accounts FileStores: one backend per mounted filesystem. */
export interface StoreBackend {
  readonly kind: 'memory' | 'file';
  /** The store of inode `ino`, created empty if it does not exist yet. */
  open(ino: number): FileStore;
  /** Capacity in bytes (Infinity if unlimited) and bytes allocated now, for statfs. */
  usage(): { capacityBytes: number; usedBytes: number };
}

/** Delay points on the data paths (see src/faults/). Names are part of the CLI (--delay POINT=MS[@PROB]). */
export type DelayPoint =
  | 'read-fill-before-store'
  | 'read-fill-after-store'
  | 'read-before-reply'
  | 'write-before-store'
  | 'write-after-store'
  | 'punch-before-store'
  | 'punch-after-store'
  | 'zero-before-store'
  | 'zero-after-store'
  | 'truncate-before-store'
  | 'truncate-after-store';

/** Deliberate bug modes, each re-opening exactly one race. All off by default. */
export type BugMode =
  | 'no-range-lock'
  | 'stale-cache-on-punch'
  | 'stale-cache-on-truncate'
  | 'no-notify'
  | 'notify-before-change'
  | 'read-past-eof'
  | 'short-read'
  | 'lost-write';

/**
 * What the data path asks of fault injection. `delay` returns undefined when no delay fires (the
 * common case: callers must not await then, so the fast path stays synchronous).
 */
export interface FaultHooks {
  delay(point: DelayPoint): Promise<void> | undefined;
  bug(mode: BugMode): boolean;
  /** Seeded coin flip for bug modes that act on a fraction of requests (short-read, lost-write). */
  chance(mode: BugMode): boolean;
}

export const NO_FAULTS: FaultHooks = {
  delay: () => undefined,
  bug: () => false,
  chance: () => false,
};

/**
 * The data path of one regular file: size, read, write, truncate, fallocate, lseek, sync.
 * Implemented in src/fs/file-data.ts over the range lock and the page cache. `signal` is the
 * request's FUSE_INTERRUPT; it aborts only waiting lock acquisitions.
 */
export interface FileData {
  readonly size: number;
  /** 512-byte blocks allocated (st_blocks). */
  readonly blocks: number;
  /** Up to `length` bytes at `offset`, fewer only at EOF. Synchronous when every page is cached. */
  read(offset: number, length: number, signal?: AbortSignal): Buffer | Promise<Buffer>;
  /** Returns the number of bytes written (all of them, or an FsError). Extends the size as needed. */
  write(offset: number, data: Uint8Array, signal?: AbortSignal): Promise<number>;
  /** truncate(2) / ftruncate(2): set the size, zeroing or dropping data beyond it. */
  setSize(size: number, signal?: AbortSignal): Promise<void>;
  /** fallocate(2) with mode 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE]; others EOPNOTSUPP. */
  fallocate(mode: number, offset: number, length: number, signal?: AbortSignal): Promise<void>;
  /** lseek SEEK_DATA / SEEK_HOLE (ENXIO at or past EOF); other whences are the kernel's business. */
  seek(offset: number, whence: number): number;
  /** fsync/fdatasync/flush/release: write back dirty cached pages (writeback cache mode) and sync the store. */
  sync(): Promise<void>;
  /** The inode is gone: drop cached pages and destroy the store. */
  destroy(): Promise<void>;
}
