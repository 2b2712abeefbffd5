// A POSIX-faithful in-memory filesystem whose API mirrors the FUSE low-level operations. The daemon
// (src/daemon/) bridges FUSE requests to it; the control socket uses resolvePath / fileData /
// serverChange. Nothing here imports FUSE.
//
// Ownership: metadata (names, modes, owners, times, link counts, lookup counts, handles) lives here;
// a regular file's size and data belong to its FileData (created through the factory passed in the
// options), see range-lock-and-cache.md §3. getattr reads size and blocks from the FileData.
//
// Lifetime: an inode is freed (its FileData destroyed) only when nlink == 0 AND nlookup == 0 AND it
// has no open handle AND no operation of ours is in flight on it. Inode numbers are never reused.
//
// Persistence: every metadata mutation goes through #newInode / #set / #link / #unlink / #free, which
// append MetadataRecords to the current operation's change; each public operation emits at most one
// MetadataChange to `onMetadataChange`. snapshot() + the changes emitted afterwards replay (see
// metadata.ts applyChanges) to the same state. Runtime state (nlookup, handles) is not persisted.
//
// Choices (documented in the report):
// - Times are { sec, nsec } (JSON-able; nanosecond resolution from a realtime clock).
// - atime follows relatime: a read updates atime only if atime <= mtime, atime <= ctime, or atime is
//   more than 24 h old. readdir does not update atime.
// - mknod supports regular files only (type 0 or S_IFREG); S_IFDIR / FIFO / char / block / socket get
//   EPERM (Linux's errno for "filesystem does not support this node type"); any other type EINVAL.
// - No permission checks: mount with default_permissions and let the kernel check.
// - If the journal hook throws, the operation fails with EIO and the filesystem turns read-only
//   (EROFS for every later mutation), like ext4's errors=remount-ro.

import { constants as fsConstants } from 'node:fs';
import {
  FsError,
  MAX_FILE_SIZE,
  PAGE_SIZE,
  SEEK_DATA,
  SEEK_HOLE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  type ErrnoName,
  type FileData,
  type FileStore,
  type StoreBackend,
} from './types.js';
import {
  LINK_MAX,
  MODE_PERM_MASK,
  ROOT_INO,
  NAME_MAX,
  SYMLINK_MAX,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  S_ISGID,
  S_ISUID,
  applyChanges,
  byteLength,
  nameError,
  showValue,
  type NameEncoding,
  validateSnapshot,
  type FsSnapshot,
  type InodeAttrPatch,
  type InodeKind,
  type InodeRecord,
  type MetadataChange,
  type MetadataRecord,
  type Timespec,
} from './metadata.js';

export {
  applyChanges,
  validateSnapshot,
  type FsSnapshot,
  type InodeRecord,
  type MetadataChange,
  type MetadataRecord,
  type Timespec,
};

const O_TRUNC_FLAG = fsConstants.O_TRUNC;
const O_EXCL_FLAG = fsConstants.O_EXCL;

/** renameat2(2) flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

/** FUSE/stat attributes of an inode. */
export interface Attr {
  ino: number;
  /** Full st_mode (type | permissions). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** 512-byte blocks (st_blocks). */
  blocks: number;
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

/** A lookup/create/mkdir/... reply. Each Entry returned counts one lookup (see forget). */
export interface Entry {
  ino: number;
  /** Always 0: inode numbers are never reused, so (ino, 0) is unique over the filesystem's life. */
  generation: number;
  attr: Attr;
}

/** Who is asking (fuse_req_ctx): owner of created inodes. */
export interface RequestContext {
  uid: number;
  gid: number;
  /** Applied to the mode of created inodes if given (pass it only if the kernel did not apply it). */
  umask?: number;
}

/** setattr changes; absent fields are unchanged. 'now' is UTIME_NOW. */
export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
  ctime?: Timespec;
}

/** One readdir entry. `offset` is the offset to pass to continue AFTER this entry (fuse_add_direntry's off). */
export interface DirEntry {
  name: string;
  ino: number;
  /** Full st_mode of the entry (the type is mode & S_IFMT). */
  mode: number;
  offset: number;
}

export interface DirEntryPlus extends DirEntry {
  /** Entry for fuse_add_direntry_plus. For '.' and '..' no lookup is counted (the kernel does not either). */
  entry: Entry;
}

/**
 * Called for each entry in order; return true if the entry was added to the reply, false if it did
 * not fit (iteration stops there and that entry is NOT counted; the next readdir call resumes with it).
 */
export type DirEmit<E> = (entry: E) => boolean;

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

export interface OpenResult {
  fh: number;
}

export interface CreateResult {
  entry: Entry;
  fh: number;
}

/** Creates the data path of regular file `ino` over `store`, holding `initialSize` bytes (0 when new). */
export type FileDataFactory<D extends FileData = FileData> = (ino: number, store: FileStore, initialSize: number) => D;

export interface FilesystemOptions<D extends FileData = FileData> {
  backend: StoreBackend;
  createFileData: FileDataFactory<D>;
  /** Journal hook: one call per metadata-changing operation, synchronously, after the change. Must not throw. */
  onMetadataChange?: (change: MetadataChange) => void;
  /** Realtime clock; default: wall clock with nanosecond resolution. */
  clock?: () => Timespec;
  /** Maximum number of inodes (statfs files; creating more gets ENOSPC). Default 16 Mi. */
  maxInodes?: number;
  /** Root directory attributes for a fresh filesystem. Defaults: 0o755, uid/gid of this process. */
  rootMode?: number;
  rootUid?: number;
  rootGid?: number;
  /** Start read-only (EROFS for every mutation). */
  readOnly?: boolean;
  /** How the daemon turns the kernel's name bytes into strings (see metadata.ts NameEncoding). Default 'utf8'. */
  nameEncoding?: NameEncoding;
}

/** Directory entry as held in memory; the same object sits in the name map and the cookie-ordered array. */
interface Slot {
  name: string;
  ino: number;
  cookie: number;
  live: boolean;
}

/** Entries of one directory: by name, and in cookie order (for stable readdir offsets). */
class DirIndex {
  readonly byName = new Map<string, Slot>();
  /** Ascending by cookie; removed entries stay as dead slots until compaction. */
  order: Slot[] = [];
  dead = 0;
  nextCookie = 3;

  get size(): number {
    return this.byName.size;
  }

  add(name: string, ino: number, cookie = this.nextCookie): Slot {
    const slot: Slot = { name, ino, cookie, live: true };
    this.nextCookie = Math.max(this.nextCookie, cookie + 1);
    this.byName.set(name, slot);
    this.order.push(slot);
    return slot;
  }

  remove(name: string): Slot | undefined {
    const slot = this.byName.get(name);
    if (!slot) return undefined;
    this.byName.delete(name);
    slot.live = false;
    this.dead++;
    if (this.dead > 64 && this.dead * 2 > this.order.length) {
      this.order = this.order.filter((s) => s.live);
      this.dead = 0;
    }
    return slot;
  }

  /** Index in `order` of the first slot with cookie > offset. */
  startAfter(offset: number): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.order[mid]!.cookie <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

class Inode {
  readonly ino: number;
  readonly kind: InodeKind;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Regular files: last journaled size. */
  size = 0;
  target: string | undefined;
  parent = 0;
  dir: DirIndex | undefined;
  data: FileData | undefined;
  // Runtime only:
  nlookup = 0;
  opens = 0;
  pins = 0;
  /** Subdirectory count, kept so nlink checks are O(1). */
  constructor(r: Omit<InodeRecord, 'entries' | 'nextCookie' | 'size' | 'target' | 'parent'>) {
    this.ino = r.ino;
    this.kind = r.kind;
    this.mode = r.mode;
    this.uid = r.uid;
    this.gid = r.gid;
    this.nlink = r.nlink;
    this.atime = r.atime;
    this.mtime = r.mtime;
    this.ctime = r.ctime;
  }
}

interface Handle {
  fh: number;
  ino: number;
  dir: boolean;
  flags: number;
}

function fail(code: ErrnoName, message?: string): never {
  throw new FsError(code, message);
}

function isInt(v: unknown, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

function checkId(name: string, v: unknown): number {
  if (!isInt(v) || v > 0xfffffffe) fail('EINVAL', `${name} must be an integer in [0, 2^32-2], got ${showValue(v)}`);
  return v;
}

function checkTime(name: string, v: unknown): Timespec | 'now' {
  if (v === 'now') return v;
  if (typeof v !== 'object' || v === null) fail('EINVAL', `${name} must be { sec, nsec } or 'now'`);
  const t = v as Timespec;
  if (!Number.isSafeInteger(t.sec) || !isInt(t.nsec) || t.nsec >= 1e9) {
    fail('EINVAL', `${name} must be { sec: integer, nsec: 0..999999999 }`);
  }
  return { sec: t.sec, nsec: t.nsec };
}

function cmpTime(a: Timespec, b: Timespec): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nsec - b.nsec;
}

function defaultClock(): () => Timespec {
  const baseNs = BigInt(Date.now()) * 1_000_000n;
  const baseHr = process.hrtime.bigint();
  return () => {
    const ns = baseNs + (process.hrtime.bigint() - baseHr);
    return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
  };
}

function checkName(name: unknown, enc: NameEncoding): asserts name is string {
  const e = nameError(name, enc);
  if (e) fail(e, e === 'ENAMETOOLONG' ? `name longer than ${NAME_MAX} bytes` : `invalid name ${JSON.stringify(name)}`);
}

function isDot(name: string): boolean {
  return name === '.' || name === '..';
}

const DAY_SEC = 24 * 3600;
/** Largest read served in one call (FUSE requests are at most max_read, 1 MiB by default). */
export const MAX_READ = 1 << 30;

/**
 * The filesystem. `D` is the FileData type the factory makes (e.g. CachedFileData), so fileData()
 * and serverChange() hand the control socket the full type without casts.
 */
export class Filesystem<D extends FileData = FileData> {
  readonly backend: StoreBackend;
  readonly #factory: FileDataFactory<D>;
  readonly #hook: ((change: MetadataChange) => void) | undefined;
  readonly #clock: () => Timespec;
  readonly #enc: NameEncoding;
  readonly maxInodes: number;
  readonly #inodes = new Map<number, Inode>();
  readonly #handles = new Map<number, Handle>();
  #nextIno = 2;
  #nextFh = 1;
  #seq = 0;
  #readOnly = false;
  /** Records of the operation in progress (null outside an operation). */
  #records: MetadataRecord[] | null = null;
  readonly #pending = new Set<Promise<void>>();
  /** Errors from FileData.destroy / sync on release (not reported to anyone else). */
  readonly backgroundErrors: unknown[] = [];
  /** forget() calls that named an unknown inode or more lookups than counted (kernel/daemon bugs). */
  badForgets = 0;

  constructor(options: FilesystemOptions<D>, snapshot?: FsSnapshot) {
    if (!options || typeof options.createFileData !== 'function' || !options.backend) {
      fail('EINVAL', 'Filesystem needs { backend, createFileData }');
    }
    this.backend = options.backend;
    this.#factory = options.createFileData;
    this.#hook = options.onMetadataChange;
    this.#clock = options.clock ?? defaultClock();
    this.#enc = options.nameEncoding ?? 'utf8';
    if (this.#enc !== 'utf8' && this.#enc !== 'latin1') fail('EINVAL', 'nameEncoding must be utf8 or latin1');
    this.maxInodes = options.maxInodes ?? 16 * 1024 * 1024;
    if (!isInt(this.maxInodes, 1)) fail('EINVAL', 'maxInodes');
    if (snapshot === undefined) {
      const now = this.#clock();
      const mode = options.rootMode ?? 0o755;
      const root = new Inode({
        ino: ROOT_INO,
        kind: 'dir',
        mode: S_IFDIR | (mode & MODE_PERM_MASK),
        uid: checkId('rootUid', options.rootUid ?? process.getuid?.() ?? 0),
        gid: checkId('rootGid', options.rootGid ?? process.getgid?.() ?? 0),
        nlink: 2,
        atime: now,
        mtime: { ...now },
        ctime: { ...now },
      });
      root.parent = ROOT_INO;
      root.dir = new DirIndex();
      this.#inodes.set(ROOT_INO, root);
    } else {
      this.#restore(validateSnapshot(snapshot, this.#enc));
    }
    this.#readOnly = options.readOnly ?? false;
  }

  /**
   * Rebuild a filesystem from a snapshot (after replaying a journal onto it with applyChanges).
   * Regular files get their FileData through createFileData(ino, backend.open(ino), size).
   * Inodes with nlink 0 (unlinked while open at snapshot time) are freed at once: one change
   * 'restore-orphans' with their 'free' records is emitted, and their stores are destroyed (await settle()).
   */
  static restore<D extends FileData = FileData>(snapshot: FsSnapshot, options: FilesystemOptions<D>): Filesystem<D> {
    return new Filesystem<D>(options, snapshot);
  }

  #restore(s: FsSnapshot): void {
    this.#nextIno = s.nextIno;
    this.#seq = s.seq;
    for (const r of s.inodes) {
      const ino = new Inode({ ...r, atime: { ...r.atime }, mtime: { ...r.mtime }, ctime: { ...r.ctime } });
      if (r.kind === 'dir') {
        ino.parent = r.parent!;
        ino.dir = new DirIndex();
        for (const [name, child, cookie] of r.entries!) ino.dir.add(name, child, cookie);
        ino.dir.nextCookie = r.nextCookie!;
      } else if (r.kind === 'symlink') {
        ino.target = r.target!;
      } else {
        ino.size = r.size!;
      }
      this.#inodes.set(r.ino, ino);
    }
    for (const ino of this.#inodes.values()) {
      if (ino.kind === 'file') ino.data = this.#factory(ino.ino, this.backend.open(ino.ino), ino.size);
    }
    this.#mutate('restore-orphans', () => {
      for (const ino of [...this.#inodes.values()]) if (ino.ino !== ROOT_INO && ino.nlink === 0) this.#free(ino);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // State access

  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Make the filesystem read-only (EROFS for mutations) or writable again. */
  setReadOnly(ro: boolean): void {
    this.#readOnly = ro;
  }

  /** Number of live inodes (including unlinked-but-referenced ones). */
  get inodeCount(): number {
    return this.#inodes.size;
  }

  get openHandleCount(): number {
    return this.#handles.size;
  }

  /** seq of the last emitted change. */
  get seq(): number {
    return this.#seq;
  }

  /** True if inode `ino` is live. */
  has(ino: number): boolean {
    return this.#inodes.has(ino);
  }

  /** Runtime counters of an inode (diagnostics and tests), or undefined if it is not live. */
  inodeState(ino: number): { nlink: number; nlookup: number; opens: number; pins: number } | undefined {
    const i = this.#inodes.get(ino);
    return i && { nlink: i.nlink, nlookup: i.nlookup, opens: i.opens, pins: i.pins };
  }

  /** Wait until every FileData.destroy() started by freeing inodes has finished. */
  async settle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  // ---------------------------------------------------------------------------------------------
  // Internal: lookups and checks

  #get(ino: unknown): Inode {
    const i = typeof ino === 'number' ? this.#inodes.get(ino) : undefined;
    if (!i) fail('ENOENT', `no inode ${showValue(ino)}`);
    return i;
  }

  #getDir(ino: unknown): Inode {
    const i = this.#get(ino);
    if (i.kind !== 'dir') fail('ENOTDIR', `inode ${i.ino} is not a directory`);
    return i;
  }

  #writable(): void {
    if (this.#readOnly) fail('EROFS', 'filesystem is read-only');
  }

  #handle(ino: unknown, fh: unknown, dir: boolean): Handle {
    const h = typeof fh === 'number' ? this.#handles.get(fh) : undefined;
    if (!h || h.ino !== ino || h.dir !== dir) fail('EBADF', `bad ${dir ? 'directory ' : ''}handle ${showValue(fh)} for inode ${showValue(ino)}`);
    return h;
  }

  #fileOf(ino: Inode): FileData {
    if (ino.kind === 'dir') fail('EISDIR', `inode ${ino.ino} is a directory`);
    if (ino.kind !== 'file' || !ino.data) fail('EINVAL', `inode ${ino.ino} is not a regular file`);
    return ino.data;
  }

  #now(): Timespec {
    return this.#clock();
  }

  #newCtx(ctx: RequestContext | undefined): { uid: number; gid: number; umask: number } {
    if (ctx === undefined) return { uid: 0, gid: 0, umask: 0 };
    if (typeof ctx !== 'object' || ctx === null) fail('EINVAL', 'bad request context');
    const umask = ctx.umask === undefined ? 0 : ctx.umask;
    if (!isInt(umask) || umask > 0o777) fail('EINVAL', 'bad umask');
    return { uid: checkId('uid', ctx.uid), gid: checkId('gid', ctx.gid), umask };
  }

  // ---------------------------------------------------------------------------------------------
  // Internal: the only places that mutate persistent metadata

  /** Run `fn` as one operation: its records become one MetadataChange. Re-entrant. */
  #mutate<T>(op: string, fn: () => T): T {
    if (this.#records !== null) return fn();
    this.#records = [];
    let result: T;
    try {
      result = fn();
    } finally {
      const records = this.#records;
      this.#records = null;
      if (records.length > 0) this.#emit(op, records);
    }
    return result;
  }

  #emit(op: string, records: MetadataRecord[]): void {
    this.#seq++;
    if (!this.#hook) return;
    try {
      this.#hook({ seq: this.#seq, op, nextIno: this.#nextIno, records });
    } catch (e) {
      this.#readOnly = true;
      this.backgroundErrors.push(e);
      fail('EIO', `metadata journal failed (filesystem is now read-only): ${showValue(e instanceof Error ? e.message : e)}`);
    }
  }

  #record(r: MetadataRecord): void {
    if (this.#records === null) throw new Error('internal: metadata mutation outside #mutate');
    this.#records.push(r);
  }

  #newInode(kind: InodeKind, mode: number, uid: number, gid: number, init: (i: Inode) => void): Inode {
    if (this.#inodes.size >= this.maxInodes) fail('ENOSPC', `inode limit ${this.maxInodes} reached`);
    const now = this.#now();
    const i = new Inode({
      ino: this.#nextIno++,
      kind,
      mode,
      uid,
      gid,
      nlink: kind === 'dir' ? 2 : 1,
      atime: now,
      mtime: { ...now },
      ctime: { ...now },
    });
    init(i);
    this.#inodes.set(i.ino, i);
    this.#record({ t: 'new', inode: this.#toRecord(i) });
    return i;
  }

  #set(i: Inode, patch: InodeAttrPatch): void {
    if (patch.mode !== undefined) i.mode = patch.mode;
    if (patch.uid !== undefined) i.uid = patch.uid;
    if (patch.gid !== undefined) i.gid = patch.gid;
    if (patch.nlink !== undefined) i.nlink = patch.nlink;
    if (patch.atime !== undefined) i.atime = { ...patch.atime };
    if (patch.mtime !== undefined) i.mtime = { ...patch.mtime };
    if (patch.ctime !== undefined) i.ctime = { ...patch.ctime };
    if (patch.size !== undefined) i.size = patch.size;
    if (patch.parent !== undefined) i.parent = patch.parent;
    const set: InodeAttrPatch = {};
    for (const [k, v] of Object.entries(patch) as [keyof InodeAttrPatch, unknown][]) {
      if (v !== undefined) (set as Record<string, unknown>)[k] = typeof v === 'object' ? { ...(v as Timespec) } : v;
    }
    this.#record({ t: 'attr', ino: i.ino, set });
  }

  #link(dir: Inode, name: string, child: Inode): void {
    const d = dir.dir!;
    if (d.byName.has(name)) d.remove(name);
    const slot = d.add(name, child.ino);
    this.#record({ t: 'link', dir: dir.ino, name, ino: child.ino, cookie: slot.cookie });
  }

  #unlink(dir: Inode, name: string): void {
    dir.dir!.remove(name);
    this.#record({ t: 'unlink', dir: dir.ino, name });
  }

  /** Forget inode `i` for good; returns the promise of its FileData.destroy() (never rejects). */
  #free(i: Inode): Promise<void> | undefined {
    this.#record({ t: 'free', ino: i.ino });
    this.#inodes.delete(i.ino);
    const data = i.data;
    i.data = undefined;
    if (!data) return undefined;
    const p: Promise<void> = Promise.resolve()
      .then(() => data.destroy())
      .catch((e: unknown) => {
        this.backgroundErrors.push(e);
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    return p;
  }

  /** Free `i` if nothing references it any more; returns the destroy promise if it was freed. */
  #maybeFree(i: Inode): Promise<void> | undefined {
    if (i.ino === ROOT_INO || i.nlink !== 0 || i.nlookup !== 0 || i.opens !== 0 || i.pins !== 0) return undefined;
    if (this.#inodes.get(i.ino) !== i) return undefined;
    return this.#mutate('free', () => this.#free(i));
  }

  #toRecord(i: Inode, liveSize = false): InodeRecord {
    const r: InodeRecord = {
      ino: i.ino,
      kind: i.kind,
      mode: i.mode,
      uid: i.uid,
      gid: i.gid,
      nlink: i.nlink,
      atime: { ...i.atime },
      mtime: { ...i.mtime },
      ctime: { ...i.ctime },
    };
    if (i.kind === 'file') r.size = liveSize && i.data ? i.data.size : i.size;
    if (i.kind === 'symlink') r.target = i.target!;
    if (i.kind === 'dir') {
      r.parent = i.parent;
      r.nextCookie = i.dir!.nextCookie;
      r.entries = [];
      for (const s of i.dir!.order) if (s.live) r.entries.push([s.name, s.ino, s.cookie]);
    }
    return r;
  }

  /** Pin an inode across an await so it cannot be freed under us. */
  #pin(i: Inode): () => Promise<void> | undefined {
    i.pins++;
    return () => {
      i.pins--;
      return this.#maybeFree(i);
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Attributes

  #attr(i: Inode): Attr {
    let size: number;
    let blocks = 0;
    if (i.kind === 'file') {
      size = i.data ? i.data.size : i.size;
      blocks = i.data ? i.data.blocks : 0;
    } else if (i.kind === 'symlink') {
      size = byteLength(i.target!, this.#enc);
    } else {
      // A directory occupies one 4 KiB block, as on ext4 (du and ls -s agree across filesystems).
      size = PAGE_SIZE;
      blocks = PAGE_SIZE / 512;
    }
    return {
      ino: i.ino,
      mode: i.mode,
      nlink: i.nlink,
      uid: i.uid,
      gid: i.gid,
      rdev: 0,
      size,
      blocks,
      blksize: PAGE_SIZE,
      atime: { ...i.atime },
      mtime: { ...i.mtime },
      ctime: { ...i.ctime },
    };
  }

  #entry(i: Inode, countLookup: boolean): Entry {
    if (countLookup) i.nlookup++;
    return { ino: i.ino, generation: 0, attr: this.#attr(i) };
  }

  getattr(ino: number, _fh?: number): Attr {
    return this.#attr(this.#get(ino));
  }

  /**
   * setattr(2)-family. Validates everything first; a size change goes through FileData.setSize
   * (and updates mtime/ctime unless mtime is given); every applied change updates ctime (unless
   * ctime is given). chown of a non-directory without a mode change clears S_ISUID, and S_ISGID if
   * group-execute is set (Linux behaviour).
   */
  async setattr(ino: number, changes: SetattrChanges, _fh?: number): Promise<Attr> {
    const i = this.#get(ino);
    if (typeof changes !== 'object' || changes === null) fail('EINVAL', 'setattr needs a changes object');
    const c = changes;
    const mode = c.mode;
    if (mode !== undefined && (!isInt(mode) || (mode & ~(S_IFMT | MODE_PERM_MASK)) !== 0)) fail('EINVAL', 'bad mode');
    const uid = c.uid === undefined ? undefined : checkId('uid', c.uid);
    const gid = c.gid === undefined ? undefined : checkId('gid', c.gid);
    const atime = c.atime === undefined ? undefined : checkTime('atime', c.atime);
    const mtime = c.mtime === undefined ? undefined : checkTime('mtime', c.mtime);
    const ctime0 = c.ctime === undefined ? undefined : checkTime('ctime', c.ctime);
    if (ctime0 === 'now') fail('EINVAL', "ctime cannot be 'now'; omit it");
    const ctime: Timespec | undefined = ctime0;
    const size = c.size;
    let data: FileData | undefined;
    if (size !== undefined) {
      if (i.kind === 'dir') fail('EISDIR', 'cannot set the size of a directory');
      if (i.kind !== 'file') fail('EINVAL', 'cannot set the size of a symlink');
      if (!isInt(size)) fail('EINVAL', `bad size ${showValue(size)}`);
      if (size > MAX_FILE_SIZE) fail('EFBIG', `size ${size} > ${MAX_FILE_SIZE}`);
      data = this.#fileOf(i);
    }
    const any =
      mode !== undefined || uid !== undefined || gid !== undefined || size !== undefined ||
      atime !== undefined || mtime !== undefined || ctime !== undefined;
    if (!any) return this.#attr(i);
    this.#writable();
    const unpin = this.#pin(i);
    try {
      if (data) await data.setSize(size!);
      this.#applySetattr(i, data, mode, uid, gid, atime, mtime, ctime);
    } finally {
      await unpin();
    }
    return this.#attr(i);
  }

  #applySetattr(
    i: Inode,
    data: FileData | undefined,
    mode: number | undefined,
    uid: number | undefined,
    gid: number | undefined,
    atime: Timespec | 'now' | undefined,
    mtime: Timespec | 'now' | undefined,
    ctime: Timespec | undefined,
  ): void {
    this.#mutate('setattr', () => {
      const now = this.#now();
      const patch: InodeAttrPatch = {};
      if (mode !== undefined) patch.mode = (i.mode & S_IFMT) | (mode & MODE_PERM_MASK);
      if (uid !== undefined) patch.uid = uid;
      if (gid !== undefined) patch.gid = gid;
      if ((uid !== undefined || gid !== undefined) && mode === undefined && i.kind !== 'dir') {
        let m = i.mode & ~S_ISUID;
        if (m & 0o010) m &= ~S_ISGID;
        if (m !== i.mode) patch.mode = m;
      }
      if (atime !== undefined) patch.atime = atime === 'now' ? now : atime;
      if (mtime !== undefined) patch.mtime = mtime === 'now' ? now : mtime;
      if (data) {
        patch.size = data.size;
        if (mtime === undefined) patch.mtime = now;
      }
      patch.ctime = ctime ?? now;
      this.#set(i, patch);
    });
  }

  access(ino: number, mask: number): void {
    this.#get(ino);
    if (!isInt(mask) || mask > 7) fail('EINVAL', 'bad access mask');
    if ((mask & 2) !== 0 && this.#readOnly) fail('EROFS', 'filesystem is read-only');
  }

  // ---------------------------------------------------------------------------------------------
  // Names

  /** Look `name` up in directory `parent`; counts one lookup on success. '.' and '..' are allowed. */
  lookup(parent: number, name: string): Entry {
    const d = this.#getDir(parent);
    checkName(name, this.#enc);
    if (name === '.') return this.#entry(d, true);
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    if (name === '..') return this.#entry(this.#get(d.parent), true);
    const slot = d.dir!.byName.get(name);
    if (!slot) fail('ENOENT', `${name} not found in ${d.ino}`);
    return this.#entry(this.#get(slot.ino), true);
  }

  /** Drop `nlookup` lookups of `ino` (FUSE forget). Never throws; unknown inodes are ignored. */
  forget(ino: number, nlookup: number): void {
    const i = typeof ino === 'number' ? this.#inodes.get(ino) : undefined;
    if (!i || !isInt(nlookup)) {
      this.badForgets++;
      return;
    }
    if (nlookup > i.nlookup) {
      this.badForgets++;
      i.nlookup = 0;
    } else {
      i.nlookup -= nlookup;
    }
    try {
      void this.#maybeFree(i);
    } catch (e) {
      this.backgroundErrors.push(e);
    }
  }

  forgetMulti(items: Iterable<{ ino: number; nlookup: number }>): void {
    if (items === null || typeof (items as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
      this.badForgets++;
      return;
    }
    for (const it of items) {
      if (typeof it !== 'object' || it === null) this.badForgets++;
      else this.forget(it.ino, it.nlookup);
    }
  }

  /** Owner and mode bits of a new inode in directory `d` (set-group-ID directories pass their gid on). */
  #newOwner(d: Inode, ctx: { uid: number; gid: number; umask: number }, perm: number, isDir: boolean) {
    let mode = perm & MODE_PERM_MASK & ~ctx.umask;
    let gid = ctx.gid;
    if (d.mode & S_ISGID) {
      gid = d.gid;
      if (isDir) mode |= S_ISGID;
    }
    return { mode, uid: ctx.uid, gid };
  }

  /** Common checks for creating `name` in `parent`: returns the directory. */
  #prepareCreate(parent: number, name: string): Inode {
    const d = this.#getDir(parent);
    checkName(name, this.#enc);
    if (isDot(name)) fail('EEXIST', `${name} exists`);
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    if (d.dir!.byName.has(name)) fail('EEXIST', `${name} exists in ${d.ino}`);
    this.#writable();
    return d;
  }

  #touchDir(d: Inode, now: Timespec, patch: InodeAttrPatch = {}): void {
    this.#set(d, { ...patch, mtime: now, ctime: now });
  }

  #makeFile(d: Inode, name: string, mode: number, c: { uid: number; gid: number; umask: number }): Inode {
    return this.#mutate('create', () => {
      const o = this.#newOwner(d, c, mode, false);
      const f = this.#newInode('file', S_IFREG | o.mode, o.uid, o.gid, (i) => {
        i.size = 0;
      });
      f.data = this.#factory(f.ino, this.backend.open(f.ino), 0);
      this.#link(d, name, f);
      this.#touchDir(d, f.ctime);
      return f;
    });
  }

  /**
   * mknod(2): regular files only. `mode` type 0 or S_IFREG makes a regular file; S_IFDIR, S_IFIFO,
   * S_IFCHR, S_IFBLK, S_IFSOCK get EPERM (not supported by this filesystem); other types EINVAL.
   */
  mknod(parent: number, name: string, mode: number, _rdev: number, ctx?: RequestContext): Entry {
    if (!isInt(mode) || (mode & ~(S_IFMT | MODE_PERM_MASK)) !== 0) fail('EINVAL', 'bad mode');
    const type = mode & S_IFMT;
    if (type === S_IFDIR || type === S_IFIFO || type === S_IFCHR || type === S_IFBLK || type === S_IFSOCK) {
      fail('EPERM', 'only regular files can be created with mknod');
    }
    if (type !== 0 && type !== S_IFREG) fail('EINVAL', 'bad file type');
    const c = this.#newCtx(ctx);
    const d = this.#prepareCreate(parent, name);
    return this.#entry(this.#makeFile(d, name, mode, c), true);
  }

  /**
   * create + open. If `name` exists: EEXIST with O_EXCL, EISDIR for a directory, EEXIST for a
   * symlink, else the existing file is opened (truncated with O_TRUNC). Counts one lookup.
   */
  async create(parent: number, name: string, mode: number, flags: number, ctx?: RequestContext): Promise<CreateResult> {
    if (!isInt(mode) || (mode & ~(S_IFMT | MODE_PERM_MASK)) !== 0) fail('EINVAL', 'bad mode');
    if ((mode & S_IFMT) !== 0 && (mode & S_IFMT) !== S_IFREG) fail('EINVAL', 'create makes regular files');
    if (!isInt(flags)) fail('EINVAL', 'bad flags');
    const c = this.#newCtx(ctx);
    const d = this.#getDir(parent);
    checkName(name, this.#enc);
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    const existing = isDot(name) ? d : (() => {
      const s = d.dir!.byName.get(name);
      return s && this.#get(s.ino);
    })();
    if (existing) {
      if (flags & O_EXCL_FLAG) fail('EEXIST', `${name} exists`);
      if (existing.kind === 'dir') fail('EISDIR', `${name} is a directory`);
      if (existing.kind !== 'file') fail('EEXIST', `${name} is a symlink`);
      const { fh } = await this.open(existing.ino, flags);
      if (!this.#inodes.has(existing.ino)) fail('ENOENT', `${name} was freed`);
      return { entry: this.#entry(existing, true), fh };
    }
    this.#writable();
    const f = this.#makeFile(d, name, mode, c);
    const fh = this.#openHandle(f, false, flags);
    return { entry: this.#entry(f, true), fh };
  }

  mkdir(parent: number, name: string, mode: number, ctx?: RequestContext): Entry {
    if (!isInt(mode) || (mode & ~(S_IFMT | MODE_PERM_MASK)) !== 0) fail('EINVAL', 'bad mode');
    const c = this.#newCtx(ctx);
    const d = this.#prepareCreate(parent, name);
    if (d.nlink >= LINK_MAX) fail('EMLINK', `directory ${d.ino} has too many subdirectories`);
    const sub = this.#mutate('mkdir', () => {
      const o = this.#newOwner(d, c, mode, true);
      const sub = this.#newInode('dir', S_IFDIR | o.mode, o.uid, o.gid, (i) => {
        i.parent = d.ino;
        i.dir = new DirIndex();
      });
      this.#link(d, name, sub);
      this.#touchDir(d, sub.ctime, { nlink: d.nlink + 1 });
      return sub;
    });
    return this.#entry(sub, true);
  }

  symlink(target: string, parent: number, name: string, ctx?: RequestContext): Entry {
    if (typeof target !== 'string' || target.includes('\0')) fail('EINVAL', 'bad symlink target');
    if (target.length === 0) fail('ENOENT', 'empty symlink target');
    const tlen = byteLength(target, this.#enc);
    if (tlen < 0) fail('EINVAL', 'symlink target not representable in the name encoding');
    if (tlen > SYMLINK_MAX) fail('ENAMETOOLONG', 'symlink target too long');
    const c = this.#newCtx(ctx);
    const d = this.#prepareCreate(parent, name);
    const l = this.#mutate('symlink', () => {
      const gid = d.mode & S_ISGID ? d.gid : c.gid;
      const l = this.#newInode('symlink', S_IFLNK | 0o777, c.uid, gid, (i) => {
        i.target = target;
      });
      this.#link(d, name, l);
      this.#touchDir(d, l.ctime);
      return l;
    });
    return this.#entry(l, true);
  }

  readlink(ino: number): string {
    const i = this.#get(ino);
    if (i.kind !== 'symlink') fail('EINVAL', `inode ${i.ino} is not a symlink`);
    return i.target!;
  }

  /** link(2): new name `newname` in `newparent` for `ino`. Directories: EPERM. Counts one lookup. */
  link(ino: number, newparent: number, newname: string): Entry {
    const i = this.#get(ino);
    const d = this.#getDir(newparent);
    checkName(newname, this.#enc);
    if (i.kind === 'dir') fail('EPERM', 'cannot hard-link a directory');
    if (isDot(newname)) fail('EEXIST', `${newname} exists`);
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    if (d.dir!.byName.has(newname)) fail('EEXIST', `${newname} exists in ${d.ino}`);
    if (i.nlink === 0) fail('ENOENT', `inode ${i.ino} has been unlinked`);
    if (i.nlink >= LINK_MAX) fail('EMLINK', `inode ${i.ino} has ${i.nlink} links`);
    this.#writable();
    this.#mutate('link', () => {
      const now = this.#now();
      this.#link(d, newname, i);
      this.#set(i, { nlink: i.nlink + 1, ctime: now });
      this.#touchDir(d, now);
    });
    return this.#entry(i, true);
  }

  unlink(parent: number, name: string): void {
    const d = this.#getDir(parent);
    checkName(name, this.#enc);
    if (isDot(name)) fail('EISDIR', `cannot unlink ${name}`);
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    const slot = d.dir!.byName.get(name);
    if (!slot) fail('ENOENT', `${name} not found in ${d.ino}`);
    const i = this.#get(slot.ino);
    if (i.kind === 'dir') fail('EISDIR', `${name} is a directory`);
    this.#writable();
    this.#mutate('unlink', () => {
      const now = this.#now();
      this.#unlink(d, name);
      this.#set(i, { nlink: i.nlink - 1, ctime: now });
      this.#touchDir(d, now);
      void this.#maybeFree(i);
    });
  }

  rmdir(parent: number, name: string): void {
    const d = this.#getDir(parent);
    checkName(name, this.#enc);
    if (name === '.') fail('EINVAL', 'cannot rmdir .');
    if (name === '..') fail('ENOTEMPTY', 'cannot rmdir ..');
    if (d.nlink === 0) fail('ENOENT', `directory ${d.ino} was removed`);
    const slot = d.dir!.byName.get(name);
    if (!slot) fail('ENOENT', `${name} not found in ${d.ino}`);
    const i = this.#get(slot.ino);
    if (i.kind !== 'dir') fail('ENOTDIR', `${name} is not a directory`);
    if (i.dir!.size !== 0) fail('ENOTEMPTY', `${name} is not empty`);
    this.#writable();
    this.#mutate('rmdir', () => {
      const now = this.#now();
      this.#unlink(d, name);
      this.#set(i, { nlink: 0, ctime: now });
      this.#touchDir(d, now, { nlink: d.nlink - 1 });
      void this.#maybeFree(i);
    });
  }

  /** True if directory `a` is `b` or an ancestor of `b` (walking parent pointers of `b`). */
  #isAncestor(a: Inode, b: Inode): boolean {
    let cur: Inode | undefined = b;
    for (let guard = 0; cur && guard <= this.#inodes.size; guard++) {
      if (cur === a) return true;
      if (cur.ino === ROOT_INO) return false;
      cur = this.#inodes.get(cur.parent);
    }
    return false;
  }

  /**
   * renameat2(2). flags: 0, RENAME_NOREPLACE (EEXIST if the target exists) or RENAME_EXCHANGE
   * (atomically swap; ENOENT if the target is missing). Errors as Linux: EINVAL for bad flags or for
   * moving a directory into its own subtree; EBUSY for '.'/'..'; ENOTDIR (dir over non-dir); EISDIR
   * (non-dir over dir); ENOTEMPTY (over a non-empty directory, incl. an ancestor of the source);
   * EMLINK; EROFS. Renaming onto another link of the same inode does nothing.
   */
  rename(parent: number, name: string, newparent: number, newname: string, flags = 0): void {
    if (!isInt(flags) || (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) !== 0) {
      fail('EINVAL', `bad rename flags ${showValue(flags)}`);
    }
    if (flags & RENAME_WHITEOUT) fail('EINVAL', 'RENAME_WHITEOUT is not supported');
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) fail('EINVAL', 'NOREPLACE with EXCHANGE');
    const exchange = (flags & RENAME_EXCHANGE) !== 0;
    const op = this.#getDir(parent);
    const np = this.#getDir(newparent);
    checkName(name, this.#enc);
    checkName(newname, this.#enc);
    if (isDot(name)) fail('EBUSY', `cannot rename ${name}`);
    if (isDot(newname)) fail(flags & RENAME_NOREPLACE ? 'EEXIST' : 'EBUSY', `cannot rename onto ${newname}`);
    if (op.nlink === 0 || np.nlink === 0) fail('ENOENT', 'directory was removed');
    const srcSlot = op.dir!.byName.get(name);
    if (!srcSlot) fail('ENOENT', `${name} not found in ${op.ino}`);
    const src = this.#get(srcSlot.ino);
    const dstSlot = np.dir!.byName.get(newname);
    const dst = dstSlot ? this.#get(dstSlot.ino) : undefined;
    if (exchange && !dst) fail('ENOENT', `${newname} not found in ${np.ino}`);
    if ((flags & RENAME_NOREPLACE) && dst) fail('EEXIST', `${newname} exists in ${np.ino}`);
    if (src.kind === 'dir' && this.#isAncestor(src, np)) fail('EINVAL', 'cannot move a directory into itself');
    if (dst && dst !== src && dst.kind === 'dir' && this.#isAncestor(dst, op)) {
      fail(exchange ? 'EINVAL' : 'ENOTEMPTY', 'target is an ancestor of the source');
    }
    if (dst === src) {
      this.#writable();
      return; // same inode (same name, or two links of one file): nothing to do
    }
    if (!exchange && dst) {
      if (src.kind === 'dir' && dst.kind !== 'dir') fail('ENOTDIR', `${newname} is not a directory`);
      if (src.kind !== 'dir' && dst.kind === 'dir') fail('EISDIR', `${newname} is a directory`);
      if (dst.kind === 'dir' && dst.dir!.size !== 0) fail('ENOTEMPTY', `${newname} is not empty`);
    }
    // Link-count deltas of the parents (subdirectory moves).
    let opDelta = 0;
    let npDelta = 0;
    if (op !== np) {
      if (src.kind === 'dir') {
        opDelta--;
        npDelta++;
      }
      if (exchange && dst!.kind === 'dir') {
        npDelta--;
        opDelta++;
      }
    }
    if (!exchange && dst?.kind === 'dir') npDelta--;
    if (op.nlink + opDelta > LINK_MAX || np.nlink + npDelta > LINK_MAX) fail('EMLINK', 'too many subdirectories');
    this.#writable();
    this.#mutate(exchange ? 'exchange' : 'rename', () => {
      const now = this.#now();
      if (exchange) {
        this.#link(op, name, dst!);
        this.#link(np, newname, src);
        if (op !== np) {
          if (src.kind === 'dir') this.#set(src, { parent: np.ino, ctime: now });
          else this.#set(src, { ctime: now });
          if (dst!.kind === 'dir') this.#set(dst!, { parent: op.ino, ctime: now });
          else this.#set(dst!, { ctime: now });
        } else {
          this.#set(src, { ctime: now });
          this.#set(dst!, { ctime: now });
        }
      } else {
        if (dst) {
          this.#unlink(np, newname);
          this.#set(dst, { nlink: dst.kind === 'dir' ? 0 : dst.nlink - 1, ctime: now });
        }
        this.#unlink(op, name);
        this.#link(np, newname, src);
        if (src.kind === 'dir' && op !== np) this.#set(src, { parent: np.ino, ctime: now });
        else this.#set(src, { ctime: now });
      }
      if (op === np) {
        this.#touchDir(op, now, opDelta + npDelta !== 0 ? { nlink: op.nlink + opDelta + npDelta } : {});
      } else {
        this.#touchDir(op, now, opDelta !== 0 ? { nlink: op.nlink + opDelta } : {});
        this.#touchDir(np, now, npDelta !== 0 ? { nlink: np.nlink + npDelta } : {});
      }
      if (dst && !exchange) void this.#maybeFree(dst);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Open files

  #openHandle(i: Inode, dir: boolean, flags: number): number {
    let fh = this.#nextFh;
    while (this.#handles.has(fh)) fh = fh >= Number.MAX_SAFE_INTEGER ? 1 : fh + 1;
    this.#nextFh = fh >= Number.MAX_SAFE_INTEGER ? 1 : fh + 1;
    this.#handles.set(fh, { fh, ino: i.ino, dir, flags });
    i.opens++;
    return fh;
  }

  /** open(2) of a regular file; O_TRUNC truncates to 0 (with mtime/ctime). Directories: EISDIR. */
  async open(ino: number, flags: number): Promise<OpenResult> {
    const i = this.#get(ino);
    if (!isInt(flags)) fail('EINVAL', 'bad flags');
    if (i.kind === 'dir') fail('EISDIR', `inode ${i.ino} is a directory`);
    if (i.kind === 'symlink') fail('ELOOP', `inode ${i.ino} is a symlink`);
    const acc = flags & 3;
    if ((acc !== 0 || flags & O_TRUNC_FLAG) && this.#readOnly) fail('EROFS', 'filesystem is read-only');
    const fh = this.#openHandle(i, false, flags);
    if (flags & O_TRUNC_FLAG) {
      try {
        await this.setattr(i.ino, { size: 0 });
      } catch (e) {
        await this.release(i.ino, fh).catch(() => undefined);
        throw e;
      }
    }
    return { fh };
  }

  /** Close handle `fh`: FileData.sync(), then free the inode if it was the last reference. */
  async release(ino: number, fh: number): Promise<void> {
    const h = this.#handle(ino, fh, false);
    const i = this.#get(h.ino);
    this.#handles.delete(h.fh);
    const unpin = this.#pin(i);
    i.opens--;
    try {
      if (i.data) await i.data.sync();
    } catch (e) {
      this.backgroundErrors.push(e);
    } finally {
      await unpin();
    }
  }

  /** Sync a regular file's data (flush on close(2), fsync(2)). */
  async flush(ino: number, fh: number): Promise<void> {
    this.#handle(ino, fh, false);
    const i = this.#get(ino);
    if (!i.data) return;
    const unpin = this.#pin(i);
    try {
      await i.data.sync();
    } finally {
      await unpin();
    }
  }

  async fsync(ino: number, fh: number, _datasync = false): Promise<void> {
    return this.flush(ino, fh);
  }

  /**
   * read(2). Returns synchronously when FileData does (every page cached). Applies relatime.
   * Access-mode checks are the kernel's (it issues page-cache READs with any handle).
   */
  read(ino: number, fh: number, offset: number, length: number, signal?: AbortSignal): Buffer | Promise<Buffer> {
    this.#handle(ino, fh, false);
    const i = this.#get(ino);
    const data = this.#fileOf(i);
    if (!isInt(offset) || !isInt(length)) fail('EINVAL', 'bad offset or length');
    if (length > MAX_READ) fail('EINVAL', `read length ${length} > ${MAX_READ}`);
    const r = data.read(offset, length, signal);
    if (!(r instanceof Promise)) {
      this.#relatime(i);
      return r;
    }
    const unpin = this.#pin(i);
    return r.then(
      async (buf) => {
        this.#relatime(i);
        await unpin();
        return buf;
      },
      async (e: unknown) => {
        await unpin();
        throw e;
      },
    );
  }

  #relatime(i: Inode): void {
    if (this.#readOnly || !this.#inodes.has(i.ino)) return;
    const now = this.#now();
    if (cmpTime(i.atime, i.mtime) <= 0 || cmpTime(i.atime, i.ctime) <= 0 || now.sec - i.atime.sec >= DAY_SEC) {
      try {
        this.#mutate('atime', () => this.#set(i, { atime: now }));
      } catch (e) {
        this.backgroundErrors.push(e);
      }
    }
  }

  /** write(2): all bytes or an FsError; updates size, mtime and ctime. */
  async write(ino: number, fh: number, offset: number, data: Uint8Array, signal?: AbortSignal): Promise<number> {
    this.#handle(ino, fh, false);
    const i = this.#get(ino);
    const fd = this.#fileOf(i);
    if (!isInt(offset)) fail('EINVAL', 'bad offset');
    if (!(data instanceof Uint8Array)) fail('EINVAL', 'data must be a Uint8Array');
    this.#writable();
    const unpin = this.#pin(i);
    try {
      const n = await fd.write(offset, data, signal);
      this.#dataChanged(i, 'write', true);
      return n;
    } finally {
      await unpin();
    }
  }

  /** fallocate(2) through FileData; updates mtime/ctime when the size changed or data was zeroed/punched. */
  async fallocate(ino: number, fh: number, mode: number, offset: number, length: number, signal?: AbortSignal): Promise<void> {
    this.#handle(ino, fh, false);
    const i = this.#get(ino);
    if (i.kind === 'symlink') fail('ENODEV', 'not a regular file');
    const fd = this.#fileOf(i);
    if (!isInt(mode) || !isInt(offset) || typeof length !== 'number') fail('EINVAL', 'bad fallocate arguments');
    this.#writable();
    const before = fd.size;
    const unpin = this.#pin(i);
    try {
      await fd.fallocate(mode, offset, length, signal);
      this.#dataChanged(i, 'fallocate', (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) !== 0 || fd.size !== before);
    } finally {
      await unpin();
    }
  }

  /** After a data change: journal the new size and, if `touch`, mtime/ctime = now. */
  #dataChanged(i: Inode, op: string, touch: boolean): void {
    if (!this.#inodes.has(i.ino) || !i.data) return;
    const size = i.data.size;
    if (!touch && size === i.size) return;
    this.#mutate(op, () => {
      const patch: InodeAttrPatch = {};
      if (size !== i.size) patch.size = size;
      if (touch) {
        const now = this.#now();
        patch.mtime = now;
        patch.ctime = now;
      }
      this.#set(i, patch);
    });
  }

  /** lseek(2) SEEK_DATA / SEEK_HOLE (ENXIO at or past EOF); other whences are the kernel's (EINVAL). */
  lseek(ino: number, fh: number, offset: number, whence: number): number {
    this.#handle(ino, fh, false);
    const fd = this.#fileOf(this.#get(ino));
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) fail('EINVAL', `unsupported whence ${showValue(whence)}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset)) fail('EINVAL', 'bad offset');
    return fd.seek(offset, whence);
  }

  // ---------------------------------------------------------------------------------------------
  // Directories

  opendir(ino: number, _flags = 0): OpenResult {
    const i = this.#getDir(ino);
    return { fh: this.#openHandle(i, true, 0) };
  }

  async releasedir(ino: number, fh: number): Promise<void> {
    const h = this.#handle(ino, fh, true);
    this.#handles.delete(h.fh);
    const i = this.#inodes.get(h.ino);
    if (!i) return;
    i.opens--;
    await this.#maybeFree(i);
  }

  fsyncdir(ino: number, fh: number, _datasync = false): void {
    this.#handle(ino, fh, true);
  }

  /**
   * readdir protocol. Offsets: 0 = start; '.' continues at 1, '..' at 2, every other entry at its
   * cookie (> 2, unique and increasing in the directory, stable for the entry's life). A call resumes
   * with the first entry whose offset is greater than `offset`, so entries removed meanwhile are simply
   * skipped and no remaining entry is returned twice or missed; an entry added or renamed meanwhile
   * (new cookie) may or may not appear, as POSIX allows. `emit` is called synchronously per entry
   * until it returns false or the directory ends.
   */
  readdir(ino: number, fh: number, offset: number, emit: DirEmit<DirEntry>): void {
    this.#readdir(ino, fh, offset, false, emit as DirEmit<DirEntry | DirEntryPlus>);
  }

  /** readdirplus: like readdir, with an Entry per name; counts one lookup for every entry for which emit returned true, except '.' and '..'. */
  readdirplus(ino: number, fh: number, offset: number, emit: DirEmit<DirEntryPlus>): void {
    this.#readdir(ino, fh, offset, true, emit as DirEmit<DirEntry | DirEntryPlus>);
  }

  #readdir(ino: number, fh: number, offset: number, plus: boolean, emit: DirEmit<DirEntry | DirEntryPlus>): void {
    const d = this.#getDir(ino);
    this.#handle(ino, fh, true);
    if (!isInt(offset)) fail('EINVAL', 'bad directory offset');
    if (typeof emit !== 'function') fail('EINVAL', 'emit must be a function');
    const one = (name: string, i: Inode, off: number, count: boolean): boolean => {
      const e: DirEntry | DirEntryPlus = plus
        ? { name, ino: i.ino, mode: i.mode, offset: off, entry: this.#entry(i, false) }
        : { name, ino: i.ino, mode: i.mode, offset: off };
      if (!emit(e)) return false;
      if (count) i.nlookup++;
      return true;
    };
    if (offset < 1 && !one('.', d, 1, false)) return;
    if (offset < 2) {
      const parent = this.#inodes.get(d.parent) ?? d;
      if (!one('..', parent, 2, false)) return;
    }
    const idx = d.dir!;
    for (let k = idx.startAfter(offset); k < idx.order.length; k++) {
      const s = idx.order[k]!;
      if (!s.live) continue;
      const child = this.#inodes.get(s.ino);
      if (!child) continue;
      if (!one(s.name, child, s.cookie, plus)) return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Filesystem-wide

  statfs(_ino?: number): StatFs {
    const { capacityBytes, usedBytes } = this.backend.usage();
    const used = Math.ceil(usedBytes / PAGE_SIZE);
    const blocks = Number.isFinite(capacityBytes) ? Math.floor(capacityBytes / PAGE_SIZE) : Math.max(MAX_FILE_SIZE / PAGE_SIZE, used);
    const bfree = Math.max(0, blocks - used);
    const ffree = Math.max(0, this.maxInodes - this.#inodes.size);
    return { bsize: PAGE_SIZE, frsize: PAGE_SIZE, blocks, bfree, bavail: bfree, files: this.maxInodes, ffree, favail: ffree, namemax: NAME_MAX };
  }

  // ---------------------------------------------------------------------------------------------
  // Control socket support

  /**
   * Resolve a path relative to the root ('dir/file', '/dir/file', '' or '/' = root) to an inode
   * number without touching lookup counts. '.' and '..' are honoured ('..' of the root is the root).
   * Symlinks are not followed: a symlink as an intermediate component gives ENOTDIR.
   */
  resolvePath(path: string): number {
    if (typeof path !== 'string' || path.includes('\0')) fail('EINVAL', 'bad path');
    let cur = this.#get(ROOT_INO);
    for (const comp of path.split('/')) {
      if (comp === '' || comp === '.') continue;
      if (cur.kind !== 'dir') fail('ENOTDIR', `${comp}: parent is not a directory`);
      checkName(comp, this.#enc);
      if (comp === '..') {
        cur = this.#inodes.get(cur.parent) ?? cur;
        continue;
      }
      const slot = cur.dir!.byName.get(comp);
      if (!slot) fail('ENOENT', `${path}: ${comp} not found`);
      cur = this.#get(slot.ino);
    }
    return cur.ino;
  }

  /** The FileData of regular file `ino` (EISDIR for directories, EINVAL for symlinks). */
  fileData(ino: number): D {
    return this.#fileOf(this.#get(ino)) as D;
  }

  /**
   * Run a server-side data change (control socket punch / zero / truncate / write) on regular file
   * `ino`: the inode is pinned (cannot be freed) while `fn` runs; afterwards (also if `fn` fails) the
   * size is journaled and mtime/ctime set to now, unless `fn` resolved to an object with
   * `changed: false`. Returns fn's result. EROFS when read-only.
   */
  async serverChange<T>(ino: number, fn: (data: D) => Promise<T>): Promise<T> {
    if (typeof fn !== 'function') fail('EINVAL', 'serverChange needs a function');
    const i = this.#get(ino);
    const fd = this.#fileOf(i);
    this.#writable();
    const unpin = this.#pin(i);
    let result: T | undefined;
    try {
      result = await fn(fd as D);
      return result;
    } finally {
      try {
        // A result with `changed: false` (file-data.ts ChangeResult) leaves mtime/ctime alone.
        const unchanged = typeof result === 'object' && result !== null && (result as { changed?: unknown }).changed === false;
        this.#dataChanged(i, 'server-change', !unchanged);
      } finally {
        await unpin();
      }
    }
  }

  /** Journal a data change made directly through fileData(ino) (size; mtime/ctime = now). */
  noteDataChange(ino: number): void {
    const i = this.#get(ino);
    this.#fileOf(i);
    this.#dataChanged(i, 'server-change', true);
  }

  // ---------------------------------------------------------------------------------------------
  // Persistence

  /**
   * All metadata as plain JSON-able data. File sizes are read live from each FileData. Restore with
   * Filesystem.restore(snapshot, options); replay later changes first with applyChanges().
   */
  snapshot(): FsSnapshot {
    const inodes = [...this.#inodes.values()].sort((a, b) => a.ino - b.ino).map((i) => this.#toRecord(i, true));
    return { format: 'faultline-fs', version: 1, nextIno: this.#nextIno, seq: this.#seq, inodes };
  }
}
