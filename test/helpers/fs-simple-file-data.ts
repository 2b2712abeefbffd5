// A small, straightforward FileData over a FileStore: no cache, no range lock. It follows the
// FileData contract of src/fs/types.ts and serves the Filesystem tests; the real data path is
// src/fs/file-data.ts. Invariant: store bytes at and beyond `size` are zero (truncate zeroes the
// tail), so growing the size needs no store change.

import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FsError,
  MAX_FILE_SIZE,
  PAGE_SIZE,
  SEEK_DATA,
  SEEK_HOLE,
  type FileData,
  type FileStore,
} from '../../src/fs/types.js';

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

interface SyncReadable {
  readPageSync?(index: number): Buffer | null;
}

export interface SimpleFileDataOptions {
  /** Return reads synchronously when the store offers readPageSync (exercises the sync read path). */
  syncReads?: boolean;
}

export class SimpleFileData implements FileData {
  #size: number;
  readonly store: FileStore;
  readonly ino: number;
  destroyed = false;
  syncCount = 0;
  readonly #syncReads: boolean;

  constructor(ino: number, store: FileStore, initialSize = 0, options: SimpleFileDataOptions = {}) {
    this.ino = ino;
    this.store = store;
    this.#size = initialSize;
    this.#syncReads = options.syncReads ?? false;
  }

  get size(): number {
    return this.#size;
  }

  get blocks(): number {
    return this.store.allocatedPages() * (PAGE_SIZE / 512);
  }

  #alive(): void {
    if (this.destroyed) throw new FsError('EIO', `file data of inode ${this.ino} destroyed`);
  }

  read(offset: number, length: number): Buffer | Promise<Buffer> {
    this.#alive();
    if (!isInt(offset) || offset < 0 || !isInt(length) || length < 0) throw new FsError('EINVAL', 'bad read range');
    const end = Math.min(this.#size, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    const first = Math.floor(offset / PAGE_SIZE);
    const last = Math.ceil(end / PAGE_SIZE);
    const assemble = (pages: (Buffer | null)[]): Buffer => {
      const out = Buffer.alloc(end - offset);
      for (let k = 0; k < pages.length; k++) {
        const p = pages[k];
        if (!p) continue;
        const pageStart = (first + k) * PAGE_SIZE;
        const from = Math.max(offset, pageStart);
        const to = Math.min(end, pageStart + PAGE_SIZE);
        p.copy(out, from - offset, from - pageStart, to - pageStart);
      }
      return out;
    };
    const syncStore = this.store as FileStore & SyncReadable;
    if (this.#syncReads && typeof syncStore.readPageSync === 'function') {
      const pages: (Buffer | null)[] = [];
      for (let idx = first; idx < last; idx++) pages.push(syncStore.readPageSync(idx));
      return assemble(pages);
    }
    return (async () => {
      const pages: (Buffer | null)[] = [];
      for (let idx = first; idx < last; idx++) pages.push(await this.store.readPage(idx));
      return assemble(pages);
    })();
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    this.#alive();
    if (!isInt(offset) || offset < 0) throw new FsError('EINVAL', 'bad write offset');
    if (!(data instanceof Uint8Array)) throw new FsError('EINVAL', 'bad write data');
    if (offset + data.length > MAX_FILE_SIZE) throw new FsError('EFBIG', 'write past the maximum file size');
    if (data.length === 0) return 0;
    await this.store.write(offset, data);
    this.#size = Math.max(this.#size, offset + data.length);
    return data.length;
  }

  async setSize(size: number): Promise<void> {
    this.#alive();
    if (!isInt(size) || size < 0) throw new FsError('EINVAL', 'bad size');
    if (size > MAX_FILE_SIZE) throw new FsError('EFBIG', 'size past the maximum file size');
    const old = this.#size;
    this.#size = size; // R4: size first, then drop data
    if (size < old) await this.store.truncate(size);
  }

  async fallocate(mode: number, offset: number, length: number): Promise<void> {
    this.#alive();
    if (!isInt(offset) || offset < 0 || !isInt(length) || length <= 0) throw new FsError('EINVAL', 'bad fallocate range');
    const keep = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    const kind = mode & ~FALLOC_FL_KEEP_SIZE;
    if (!isInt(mode) || (kind !== 0 && kind !== FALLOC_FL_PUNCH_HOLE && kind !== FALLOC_FL_ZERO_RANGE)) {
      throw new FsError('EOPNOTSUPP', `fallocate mode ${String(mode)}`);
    }
    if (kind === FALLOC_FL_PUNCH_HOLE && !keep) throw new FsError('EOPNOTSUPP', 'PUNCH_HOLE needs KEEP_SIZE');
    const end = offset + length;
    if (end > MAX_FILE_SIZE) throw new FsError('EFBIG', 'fallocate past the maximum file size');
    if (kind === FALLOC_FL_PUNCH_HOLE) {
      await this.store.punch(offset, length);
      return;
    }
    if (kind === FALLOC_FL_ZERO_RANGE) await this.store.punch(offset, length);
    await this.store.allocate(offset, length);
    if (!keep && end > this.#size) this.#size = end;
  }

  seek(offset: number, whence: number): number {
    this.#alive();
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError('EINVAL', 'bad whence');
    if (!isInt(offset) || offset < 0 || offset >= this.#size) throw new FsError('ENXIO', 'offset at or past EOF');
    const page = Math.floor(offset / PAGE_SIZE);
    if (whence === SEEK_DATA) {
      const d = this.store.nextDataPage(page);
      if (d < 0 || d * PAGE_SIZE >= this.#size) throw new FsError('ENXIO', 'no data past offset');
      return Math.max(offset, d * PAGE_SIZE);
    }
    const h = this.store.nextHolePage(page);
    return Math.min(this.#size, Math.max(offset, h * PAGE_SIZE));
  }

  async sync(): Promise<void> {
    this.#alive();
    this.syncCount++;
    await this.store.sync();
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.store.destroy();
  }
}

/** A factory for Filesystem options that also records every FileData it made. */
export function simpleFileDataFactory(options: SimpleFileDataOptions = {}) {
  const made = new Map<number, SimpleFileData>();
  const factory = (ino: number, store: FileStore, initialSize: number): SimpleFileData => {
    const fd = new SimpleFileData(ino, store, initialSize, options);
    made.set(ino, fd);
    return fd;
  };
  return { factory, made };
}
