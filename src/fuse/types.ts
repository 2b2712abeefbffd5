// Public types of faultline's FUSE facade: one method per low-level op, typed requests, and a
// typed single-use reply per op. Times are milliseconds (fractions allowed, like fs.Stats'
// *Ms fields); timeouts are seconds (as in libfuse).

import type { OpName } from './constants.js';

export type { OpName };

/** Inode attributes (struct stat). */
export interface Attr {
  ino: number;
  /** File type and permission bits (S_IFREG | 0o644, …). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  size: number;
  /** 512-byte blocks allocated. Default: ceil(size / 512). */
  blocks?: number;
  /** Default 4096. */
  blksize?: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A directory entry for lookup/mknod/mkdir/symlink/link/create replies and readdirplus. */
export interface Entry {
  ino: number;
  generation?: number;
  attr: Attr;
  /** Seconds the kernel may cache the attributes. */
  attrTimeout: number;
  /** Seconds the kernel may cache the name → inode mapping. */
  entryTimeout: number;
}

/** Per-open reply flags (fuse_file_info bits). */
export interface OpenFlags {
  /** FOPEN_KEEP_CACHE: do not drop the page cache on open. faultline sets this for every file. */
  keepCache?: boolean;
  /** FOPEN_DIRECT_IO: bypass the page cache (shared mmap then fails with ENODEV on libfuse < 3.17). */
  directIo?: boolean;
  nonseekable?: boolean;
  /** FOPEN_PARALLEL_DIRECT_WRITES; ignored when libfuse < 3.15 (see InitInfo.features). */
  parallelDirectWrites?: boolean;
  /** opendir only: let the kernel cache readdir results. */
  cacheReaddir?: boolean;
  noflush?: boolean;
}

export interface Statfs {
  bsize: number;
  frsize?: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail?: number;
  fsid?: number;
  flag?: number;
  namemax: number;
}

/** readdir entry. `off` is the offset of the NEXT entry (the kernel passes it back as req.off). */
export interface DirEntry {
  name: string;
  ino: number;
  /** Only the S_IFMT bits matter (S_IFREG, S_IFDIR, …). */
  mode: number;
  off: number;
}

/** readdirplus entry; every entry sent (except "." and "..") counts as a lookup (nlookup + 1). */
export interface DirEntryPlus {
  name: string;
  off: number;
  entry: Entry;
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface RequestBase {
  /** Unique request id (generation << 16 | slot). */
  readonly id: number;
  readonly op: OpName;
  /** Caller's credentials. */
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly umask: number;
  /**
   * Aborted on FUSE_INTERRUPT (reason: Error with errno EINTR), when the watchdog answered the
   * request (ETIMEDOUT) or when the session ends (ENOTCONN). The request still needs its one
   * reply after an interrupt; after a watchdog expiry or session end, replies are dropped.
   */
  readonly signal: AbortSignal;
  /** Same as signal.aborted without materialising the AbortSignal. */
  readonly aborted: boolean;
  /**
   * A cheap stand-in for `signal` for hot paths: `aborted`, `reason`, `throwIfAborted()` and
   * `addEventListener` / `removeEventListener` of 'abort' (what a range-lock wait needs). The real
   * AbortController (several µs and GC pressure per request) is only created once a listener is
   * added. It is not an AbortSignal instance: give `signal` to APIs that need a real one
   * (AbortSignal.any, timers/promises, fetch). Optional so that hand-made requests still type-check.
   */
  readonly cheapSignal?: AbortSignal;
}

export interface InoRequest extends RequestBase {
  readonly ino: number;
}
export interface LookupRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
}
export interface ForgetRequest {
  readonly ino: number;
  readonly nlookup: number;
}
export interface GetattrRequest extends InoRequest {
  /** File handle if the kernel sent one (fstat on an open file), else undefined. */
  readonly fh: number | undefined;
}
/** Values present only for the attributes being set. */
export interface SetattrValues {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  ctimeMs?: number;
  /** atime/mtime set to "now" (utimensat UTIME_NOW): atimeMs/mtimeMs hold Date.now(). */
  atimeNow?: boolean;
  mtimeNow?: boolean;
}
export interface SetattrRequest extends InoRequest {
  readonly fh: number | undefined;
  /** Raw FUSE_SET_ATTR_* bits (constants SET_ATTR_*). */
  readonly toSet: number;
  readonly set: SetattrValues;
}
export interface MknodRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
  readonly mode: number;
  readonly rdev: number;
}
export interface MkdirRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
  readonly mode: number;
}
export interface NameRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
}
export interface SymlinkRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
  readonly target: string;
}
export interface RenameRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
  readonly newParent: number;
  readonly newName: string;
  /** RENAME_NOREPLACE (1) / RENAME_EXCHANGE (2) / RENAME_WHITEOUT (4). */
  readonly flags: number;
}
export interface LinkRequest extends InoRequest {
  readonly newParent: number;
  readonly newName: string;
}
export interface OpenRequest extends InoRequest {
  /** open(2) flags. */
  readonly flags: number;
}
export interface ReadRequest extends InoRequest {
  readonly fh: number;
  readonly off: number;
  readonly size: number;
  readonly flags: number;
}
export interface WriteRequest extends InoRequest {
  readonly fh: number;
  readonly off: number;
  /** The written bytes (a copy owned by this request; keep it if you like). */
  readonly data: Buffer;
  readonly flags: number;
  /** True for writeback from the page cache (writeback_cache or mmap): uid/gid/pid not meaningful. */
  readonly writepage: boolean;
}
export interface FileRequest extends InoRequest {
  readonly fh: number;
}
export interface ReleaseRequest extends InoRequest {
  readonly fh: number;
  readonly flags: number;
}
export interface FsyncRequest extends InoRequest {
  readonly fh: number;
  readonly datasync: boolean;
}
export interface ReaddirRequest extends InoRequest {
  readonly fh: number;
  /** 0 for the first call, else the `off` of the last entry sent. */
  readonly off: number;
  /** Buffer size the kernel offered; entries() sends as many as fit. */
  readonly size: number;
}
export interface CreateRequest extends RequestBase {
  readonly parent: number;
  readonly name: string;
  readonly mode: number;
  readonly flags: number;
}
export interface FallocateRequest extends InoRequest {
  readonly fh: number;
  /** FALLOC_FL_* bits: 0, KEEP_SIZE (1), PUNCH_HOLE|KEEP_SIZE (3), ZERO_RANGE (0x10)[|KEEP_SIZE]. */
  readonly mode: number;
  readonly offset: number;
  readonly length: number;
}
export interface LseekRequest extends InoRequest {
  readonly fh: number;
  readonly off: number;
  /** SEEK_DATA (3) or SEEK_HOLE (4); the kernel handles SET/CUR/END itself. */
  readonly whence: number;
}
export interface AccessRequest extends InoRequest {
  readonly mask: number;
}
export interface GetxattrRequest extends InoRequest {
  readonly name: string;
  /** 0 = size query: answer with reply.size(n). */
  readonly size: number;
}
export interface ListxattrRequest extends InoRequest {
  readonly size: number;
}

// ---------------------------------------------------------------------------------------------
// Replies: each is single-use. A second send throws. A send after the watchdog answered the
// request (or after the session ended) is logged and dropped.

export interface ReplyBase {
  /** Reply with a positive errno (ENOENT = 2, …). Values outside 1..511 become EIO. */
  error(errno: number): void;
  /** True once a reply was sent (or dropped as late). */
  readonly sent: boolean;
}
export interface EmptyReply extends ReplyBase {
  ok(): void;
}
export interface EntryReply extends ReplyBase {
  entry(entry: Entry): void;
}
export interface LookupReply extends EntryReply {
  /** Negative entry: "no such name", cached for entryTimeout seconds. */
  negative(entryTimeout: number): void;
}
export interface AttrReply extends ReplyBase {
  attr(attr: Attr, timeout: number): void;
}
export interface ReadlinkReply extends ReplyBase {
  readlink(target: string): void;
}
export interface OpenReply extends ReplyBase {
  open(fh: number, flags?: OpenFlags): void;
}
export interface CreateReply extends ReplyBase {
  create(entry: Entry, fh: number, flags?: OpenFlags): void;
}
export interface DataReply extends ReplyBase {
  /** Zero-copy: the kernel copies the bytes during the reply; the buffer may be reused afterwards. */
  data(buf: Uint8Array | null | undefined): void;
  /**
   * Gather reply (fuse_reply_iov): the buffers' bytes back to back, zero-copy, e.g. the cached
   * pages of a multi-page READ without assembling them into one Buffer first. At most 1024
   * buffers; their total must not exceed req.size.
   */
  dataV(bufs: readonly Uint8Array[]): void;
}
export interface WriteReply extends ReplyBase {
  written(count: number): void;
}
export interface StatfsReply extends ReplyBase {
  statfs(st: Statfs): void;
}
export interface LseekReply extends ReplyBase {
  offset(off: number): void;
}
export interface XattrReply extends ReplyBase {
  /** Answer to a size query (req.size === 0). */
  size(n: number): void;
  data(buf: Uint8Array): void;
}
export interface ReaddirReply extends ReplyBase {
  /** Sends as many entries as fit in req.size; returns how many were sent. [] = end of directory. */
  entries(list: readonly DirEntry[]): number;
}
export interface ReaddirplusReply extends ReplyBase {
  entries(list: readonly DirEntryPlus[]): number;
}

type R = void | Promise<void>;

/**
 * The filesystem. Every method is optional. Ops left out are not registered with libfuse, which
 * then answers them itself: ENOSYS for most; open/opendir/release/releasedir/flush-less succeed
 * with fh 0 (libfuse defaults); statfs gets libfuse's default. fallocate is always registered:
 * without a handler it answers EOPNOTSUPP (never the connection-wide, sticky ENOSYS).
 *
 * If a handler throws or its promise rejects before replying, the request is answered with the
 * error's `errno` (if a positive integer; else its `code` if it names an errno; else EIO) and the
 * error is logged. Handlers must reply exactly once, possibly long after returning.
 */
export interface FuseOps {
  lookup?(req: LookupRequest, reply: LookupReply): R;
  /** No reply. forget_multi arrives as one call per inode. */
  forget?(req: ForgetRequest): void;
  getattr?(req: GetattrRequest, reply: AttrReply): R;
  setattr?(req: SetattrRequest, reply: AttrReply): R;
  readlink?(req: InoRequest, reply: ReadlinkReply): R;
  mknod?(req: MknodRequest, reply: EntryReply): R;
  mkdir?(req: MkdirRequest, reply: EntryReply): R;
  unlink?(req: NameRequest, reply: EmptyReply): R;
  rmdir?(req: NameRequest, reply: EmptyReply): R;
  symlink?(req: SymlinkRequest, reply: EntryReply): R;
  rename?(req: RenameRequest, reply: EmptyReply): R;
  link?(req: LinkRequest, reply: EntryReply): R;
  open?(req: OpenRequest, reply: OpenReply): R;
  read?(req: ReadRequest, reply: DataReply): R;
  write?(req: WriteRequest, reply: WriteReply): R;
  flush?(req: FileRequest, reply: EmptyReply): R;
  release?(req: ReleaseRequest, reply: EmptyReply): R;
  fsync?(req: FsyncRequest, reply: EmptyReply): R;
  opendir?(req: OpenRequest, reply: OpenReply): R;
  readdir?(req: ReaddirRequest, reply: ReaddirReply): R;
  readdirplus?(req: ReaddirRequest, reply: ReaddirplusReply): R;
  releasedir?(req: ReleaseRequest, reply: EmptyReply): R;
  fsyncdir?(req: FsyncRequest, reply: EmptyReply): R;
  statfs?(req: InoRequest, reply: StatfsReply): R;
  create?(req: CreateRequest, reply: CreateReply): R;
  fallocate?(req: FallocateRequest, reply: EmptyReply): R;
  lseek?(req: LseekRequest, reply: LseekReply): R;
  access?(req: AccessRequest, reply: EmptyReply): R;
  getxattr?(req: GetxattrRequest, reply: XattrReply): R;
  listxattr?(req: ListxattrRequest, reply: XattrReply): R;
  /** Called once when the session ends (after the loop stopped; replies are no longer possible). */
  destroy?(): void;
}

// ---------------------------------------------------------------------------------------------
// Mount options, INIT info, stats

export interface MountOptions {
  /** -o fsname= (default "faultline"). No commas or backslashes. */
  fsname?: string;
  /** -o subtype= (default "faultline"; the mount shows as fuse.<subtype>). */
  subtype?: string;
  /** -o allow_other (non-root needs user_allow_other in /etc/fuse.conf). Default false. */
  allowOther?: boolean;
  /** -o default_permissions: the kernel checks permissions from the attributes. Default true. */
  defaultPermissions?: boolean;
  /** Extra -o options, passed verbatim (e.g. ["max_read=131072"]). auto_unmount is always on. */
  extraOptions?: string[];

  /** FUSE_CAP_ASYNC_READ. Default true. */
  asyncRead?: boolean;
  /** FUSE_CAP_WRITEBACK_CACHE. Default false. */
  writebackCache?: boolean;
  /** FUSE_CAP_AUTO_INVAL_DATA, always set explicitly (libfuse would turn it on). Default false. */
  autoInvalData?: boolean;
  /** FUSE_CAP_EXPLICIT_INVAL_DATA. Default false. */
  explicitInvalData?: boolean;
  /**
   * FUSE_CAP_ATOMIC_O_TRUNC. Default false: open(O_TRUNC) then arrives as OPEN without O_TRUNC
   * followed by SETATTR(size=0), so truncation has one code path.
   */
  atomicOTrunc?: boolean;
  /** FUSE_CAP_PARALLEL_DIROPS. Default true (libfuse's default). */
  parallelDirops?: boolean;
  /** FUSE_CAP_DIRECT_IO_ALLOW_MMAP; only with libfuse >= 3.17 (InitInfo.features). Default false. */
  directIoAllowMmap?: boolean;
  /** Cap on max_write (bytes). Default: libfuse's (1 MiB). */
  maxWrite?: number;
  /** Cap on max_readahead (bytes). Default: the kernel's offer. */
  maxReadahead?: number;
  maxBackground?: number;
  congestionThreshold?: number;

  /**
   * Watchdog: a request unanswered after this many ms is answered EIO and logged (op, ino, age);
   * a later reply from JS is logged and dropped. 0 disables. Default 30000.
   */
  requestTimeoutMs?: number;
  /**
   * Who reads /dev/fuse. 'uv': the JS thread itself, from a libuv poll handle on Node's event loop
   * (non-blocking fd, up to 64 requests per wake-up, handlers called directly: no thread hop).
   * 'thread': a native loop thread that hands each request to JS through a threadsafe function.
   * Default: the FAULTLINE_FUSE_LOOP environment variable if set, else 'uv' (measured faster).
   */
  loop?: 'thread' | 'uv';
  /** How long mount() waits for FUSE_INIT. Default 10000. */
  initTimeoutMs?: number;
  /** Log every request and reply, one line each. */
  debug?: boolean;
  /** libfuse's own debug output (-d). */
  libfuseDebug?: boolean;
  /**
   * Install SIGINT/SIGTERM/SIGHUP handlers that unmount every live session and exit(0) (a second
   * signal exits 1 at once). Default true. Set false if the daemon handles signals itself (it must
   * then call unmount()).
   */
  handleSignals?: boolean;
  /** Where log lines go. Default: process.stderr. */
  log?: (line: string) => void;
}

export interface InitInfo {
  protoMajor: number;
  protoMinor: number;
  /** FUSE_CAP_* offered by the kernel (as libfuse maps them). */
  capable: number;
  /** libfuse's default want before faultline's choices. */
  wantDefault: number;
  /** FUSE_CAP_* granted (sent in the INIT reply). */
  want: number;
  capableNames: string[];
  wantNames: string[];
  /** Convenience view of `want`. */
  granted: {
    asyncRead: boolean;
    writebackCache: boolean;
    autoInvalData: boolean;
    explicitInvalData: boolean;
    atomicOTrunc: boolean;
    parallelDirops: boolean;
    readdirplus: boolean;
    splice: boolean;
  };
  maxWrite: number;
  maxRead: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
  /** /sys/fs/fuse/connections/<connId> (-1 if unknown). */
  connId: number;
  libfuseVersion: string;
  /** Compiled-in libfuse support. */
  features: { parallelDirectWrites: boolean; directIoAllowMmap: boolean };
}

export interface FuseStats {
  /** Requests handed to JS and not yet answered. */
  outstanding: number;
  /** Requests received (excluding forgets). */
  requests: number;
  forgets: number;
  interrupts: number;
  /** Requests the watchdog answered with EIO. */
  watchdogExpired: number;
  /** Replies dropped because the watchdog (or teardown) had answered first. */
  lateReplies: number;
  /** Request events dropped because the watchdog expired them before JS saw them. */
  staleEvents: number;
  /** Requests refused because 65536 were outstanding. */
  tableFull: number;
  /** Handler exceptions/rejections answered with an errno. */
  handlerErrors: number;
  notifySent: number;
  notifyPending: number;
}
