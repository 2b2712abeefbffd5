// FuseSession: mount, dispatch requests to a FuseOps object with typed single-use replies,
// notifications, stats, unmount. See types.ts for the public contract.

import { constants as osConstants } from 'node:os';
import {
  A_ARG0,
  A_GID,
  A_INO,
  A_INTERRUPTED,
  A_PID,
  A_UID,
  A_UMASK,
  CAP,
  DIRPLUS_STRIDE,
  DIR_STRIDE,
  EV_EXPIRED,
  EV_INIT,
  EV_INTERRUPT,
  EV_LOOP_END,
  OP,
  OPEN_CACHE_READDIR,
  OPEN_DIRECT_IO,
  OPEN_KEEP_CACHE,
  OPEN_NOFLUSH,
  OPEN_NONSEEKABLE,
  OPEN_PARALLEL_DIRECT_WRITES,
  OP_NAMES,
  R_ATTR,
  R_ENTRY,
  R_STATFS,
  REPLY_SCRATCH_LEN,
  REQ_SCRATCH_LEN,
  SET_ATTR_ATIME,
  SET_ATTR_ATIME_NOW,
  SET_ATTR_CTIME,
  SET_ATTR_GID,
  SET_ATTR_MODE,
  SET_ATTR_MTIME,
  SET_ATTR_MTIME_NOW,
  SET_ATTR_SIZE,
  SET_ATTR_UID,
  capNames,
  type OpName,
} from './constants.js';
import { loadNative, type NativeAddon, type NativeHandle } from './native.js';
import { preflight } from './preflight.js';
import type {
  Attr,
  DirEntry,
  DirEntryPlus,
  Entry,
  FuseOps,
  FuseStats,
  InitInfo,
  MountOptions,
  OpenFlags,
  SetattrValues,
  Statfs,
} from './types.js';

const E = osConstants.errno;
const ERRNO_NAMES: string[] = (() => {
  const a: string[] = [];
  for (const [k, v] of Object.entries(E)) if (a[v] === undefined) a[v] = k;
  // Prefer the usual names of Linux aliases.
  a[E.EOPNOTSUPP] = 'EOPNOTSUPP';
  a[E.EAGAIN] = 'EAGAIN';
  a[E.EDEADLK] = 'EDEADLK';
  return a;
})();

function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}

/** The errno a thrown value carries: a positive `errno` property, else a `code` naming an errno. */
function explicitErrno(e: unknown): number | undefined {
  if (e !== null && typeof e === 'object') {
    const n = (e as { errno?: unknown }).errno;
    if (typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 512) return n;
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string' && Object.prototype.hasOwnProperty.call(E, c)) {
      const v = (E as Record<string, number>)[c];
      if (v !== undefined && v > 0 && v < 512) return v;
    }
  }
  return undefined;
}

/** The errno to answer for a thrown value: positive `errno`, else a known `code`, else EIO. */
export function errnoOf(e: unknown): number {
  return explicitErrno(e) ?? E.EIO;
}

function abortReason(code: 'EINTR' | 'ETIMEDOUT' | 'ENOTCONN', message: string): Error {
  const e = new Error(message) as Error & { errno: number; code: string };
  e.name = 'AbortError';
  e.errno = E[code];
  e.code = code;
  return e;
}

const EMPTY = Buffer.alloc(0);
const NO_SET: SetattrValues = Object.freeze({});

// ---------------------------------------------------------------------------------------------

/** A request as handlers see it (typed through the *Request interfaces in types.ts). */
export class FuseRequest {
  readonly id: number;
  readonly op: OpName;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly umask: number;
  ino = 0;
  parent = 0;
  name = '';
  newParent = 0;
  newName = '';
  target = '';
  fh: number | undefined = 0;
  flags = 0;
  mode = 0;
  rdev = 0;
  size = 0;
  off = 0;
  offset = 0;
  length = 0;
  whence = 0;
  mask = 0;
  datasync = false;
  writepage = false;
  toSet = 0;
  set: SetattrValues = NO_SET;
  data: Buffer = EMPTY;
  /** @internal */ _ac: AbortController | undefined = undefined;
  /** @internal */ _reason: unknown = undefined;

  constructor(id: number, op: number, s: Float64Array, name: string | undefined, name2: string | undefined, data: Buffer | undefined) {
    this.id = id;
    this.op = OP_NAMES[op] as OpName;
    this.uid = s[A_UID]!;
    this.gid = s[A_GID]!;
    this.pid = s[A_PID]!;
    this.umask = s[A_UMASK]!;
    const ino = s[A_INO]!;
    const a0 = s[A_ARG0]!;
    const a1 = s[A_ARG0 + 1]!;
    const a2 = s[A_ARG0 + 2]!;
    const a3 = s[A_ARG0 + 3]!;
    switch (op) {
      case OP.lookup:
      case OP.unlink:
      case OP.rmdir:
        this.parent = ino;
        this.name = name ?? '';
        break;
      case OP.getattr:
        this.ino = ino;
        this.fh = a0 ? a1 : undefined;
        break;
      case OP.setattr: {
        this.ino = ino;
        this.toSet = a0;
        this.fh = a1 ? a2 : undefined;
        const set: SetattrValues = {};
        const t = a0;
        if (t & SET_ATTR_MODE) set.mode = a3;
        if (t & SET_ATTR_UID) set.uid = s[A_ARG0 + 4];
        if (t & SET_ATTR_GID) set.gid = s[A_ARG0 + 5];
        if (t & SET_ATTR_SIZE) set.size = s[A_ARG0 + 6];
        if (t & SET_ATTR_ATIME) {
          if (t & SET_ATTR_ATIME_NOW) {
            set.atimeNow = true;
            set.atimeMs = Date.now();
          } else set.atimeMs = s[A_ARG0 + 7];
        }
        if (t & SET_ATTR_MTIME) {
          if (t & SET_ATTR_MTIME_NOW) {
            set.mtimeNow = true;
            set.mtimeMs = Date.now();
          } else set.mtimeMs = s[A_ARG0 + 8];
        }
        if (t & SET_ATTR_CTIME) set.ctimeMs = s[A_ARG0 + 9];
        this.set = set;
        break;
      }
      case OP.readlink:
      case OP.statfs:
        this.ino = ino;
        break;
      case OP.mknod:
        this.parent = ino;
        this.name = name ?? '';
        this.mode = a0;
        this.rdev = a1;
        break;
      case OP.mkdir:
        this.parent = ino;
        this.name = name ?? '';
        this.mode = a0;
        break;
      case OP.symlink:
        this.parent = ino;
        this.name = name ?? '';
        this.target = name2 ?? '';
        break;
      case OP.rename:
        this.parent = ino;
        this.name = name ?? '';
        this.newParent = a0;
        this.flags = a1;
        this.newName = name2 ?? '';
        break;
      case OP.link:
        this.ino = ino;
        this.newParent = a0;
        this.newName = name ?? '';
        break;
      case OP.open:
      case OP.opendir:
        this.ino = ino;
        this.flags = a0;
        break;
      case OP.read:
        this.ino = ino;
        this.size = a0;
        this.off = a1;
        this.fh = a2;
        this.flags = a3;
        break;
      case OP.write:
        this.ino = ino;
        this.size = a0;
        this.off = a1;
        this.fh = a2;
        this.flags = a3;
        this.writepage = s[A_ARG0 + 4] !== 0;
        this.data = data ?? EMPTY;
        break;
      case OP.flush:
        this.ino = ino;
        this.fh = a0;
        break;
      case OP.release:
      case OP.releasedir:
        this.ino = ino;
        this.fh = a0;
        this.flags = a1;
        break;
      case OP.fsync:
      case OP.fsyncdir:
        this.ino = ino;
        this.datasync = a0 !== 0;
        this.fh = a1;
        break;
      case OP.readdir:
      case OP.readdirplus:
        this.ino = ino;
        this.size = a0;
        this.off = a1;
        this.fh = a2;
        break;
      case OP.create:
        this.parent = ino;
        this.name = name ?? '';
        this.mode = a0;
        this.flags = a1;
        break;
      case OP.fallocate:
        this.ino = ino;
        this.mode = a0;
        this.offset = a1;
        this.length = a2;
        this.fh = a3;
        break;
      case OP.lseek:
        this.ino = ino;
        this.off = a0;
        this.whence = a1;
        this.fh = a2;
        break;
      case OP.access:
        this.ino = ino;
        this.mask = a0;
        break;
      case OP.getxattr:
        this.ino = ino;
        this.name = name ?? '';
        this.size = a0;
        break;
      case OP.listxattr:
        this.ino = ino;
        this.size = a0;
        break;
      default:
        this.ino = ino;
    }
    if (s[A_INTERRUPTED]) this._reason = abortReason('EINTR', 'FUSE_INTERRUPT');
  }

  get signal(): AbortSignal {
    if (!this._ac) {
      this._ac = new AbortController();
      if (this._reason !== undefined) this._ac.abort(this._reason);
    }
    return this._ac.signal;
  }

  get aborted(): boolean {
    return this._reason !== undefined;
  }

  /** See RequestBase.cheapSignal. */
  get cheapSignal(): AbortSignal {
    if (this._ac) return this._ac.signal;
    return new CheapSignal(this) as unknown as AbortSignal;
  }

  /** @internal */
  _abort(reason: unknown): void {
    if (this._reason !== undefined) return;
    this._reason = reason;
    this._ac?.abort(reason);
  }
}

/**
 * RequestBase.cheapSignal: the AbortSignal subset a range-lock wait uses, backed by the request.
 * Adding a listener materialises the request's real AbortController (FuseRequest.signal) and
 * registers there, so a later _abort() reaches it; before that, nothing can be listening.
 */
class CheapSignal {
  constructor(private readonly r: FuseRequest) {}
  get aborted(): boolean {
    return this.r._reason !== undefined;
  }
  get reason(): unknown {
    return this.r._reason;
  }
  throwIfAborted(): void {
    if (this.r._reason !== undefined) throw this.r._reason;
  }
  addEventListener(...a: Parameters<AbortSignal['addEventListener']>): void {
    this.r.signal.addEventListener(...a);
  }
  removeEventListener(...a: Parameters<AbortSignal['removeEventListener']>): void {
    this.r._ac?.signal.removeEventListener(...a);
  }
}

// ---------------------------------------------------------------------------------------------

const ST_PENDING = 0;
const ST_SENT = 1;
const ST_EXPIRED = 2; // answered by the watchdog / teardown; the next send is logged and dropped
const ST_LATE = 3; // a late send was dropped

let dirNums = new Float64Array(64 * DIRPLUS_STRIDE);
const dirNames: string[] = [];

function putAttr(r: Float64Array, b: number, a: Attr): void {
  r[b] = a.ino;
  r[b + 1] = a.mode;
  r[b + 2] = a.nlink;
  r[b + 3] = a.uid;
  r[b + 4] = a.gid;
  r[b + 5] = a.rdev ?? 0;
  r[b + 6] = a.size;
  r[b + 7] = a.blksize ?? 4096;
  r[b + 8] = a.blocks ?? Math.ceil(a.size / 512);
  r[b + 9] = a.atimeMs;
  r[b + 10] = a.mtimeMs;
  r[b + 11] = a.ctimeMs;
}

function putEntry(r: Float64Array, e: Entry): void {
  putAttr(r, R_ATTR, e.attr);
  r[R_ENTRY] = e.ino;
  r[R_ENTRY + 1] = e.generation ?? 0;
  r[R_ENTRY + 2] = e.attrTimeout;
  r[R_ENTRY + 3] = e.entryTimeout;
}

function openBits(f: OpenFlags | undefined): number {
  if (!f) return 0;
  return (
    (f.keepCache ? OPEN_KEEP_CACHE : 0) |
    (f.directIo ? OPEN_DIRECT_IO : 0) |
    (f.nonseekable ? OPEN_NONSEEKABLE : 0) |
    (f.parallelDirectWrites ? OPEN_PARALLEL_DIRECT_WRITES : 0) |
    (f.cacheReaddir ? OPEN_CACHE_READDIR : 0) |
    (f.noflush ? OPEN_NOFLUSH : 0)
  );
}

function checkErrno(errno: number): number {
  if (typeof errno !== 'number' || !Number.isInteger(errno) || errno === 0) {
    throw new TypeError(`reply.error(${String(errno)}): errno must be a non-zero integer (e.g. ENOENT = 2)`);
  }
  return errno < 0 ? -errno : errno;
}

/** The single-use reply object (typed through the *Reply interfaces in types.ts). */
export class FuseReply {
  /** @internal */ _st = ST_PENDING;
  constructor(
    private readonly s: FuseSession,
    readonly req: FuseRequest,
  ) {}

  get sent(): boolean {
    return this._st !== ST_PENDING;
  }

  private begin(what: string): boolean {
    const st = this._st;
    if (st === ST_PENDING) return true;
    if (st === ST_EXPIRED) {
      this._st = ST_LATE;
      this.s._late(this, what, 'already answered by the watchdog or at unmount');
      return false;
    }
    throw new Error(`fuse: second reply ${what} to request #${this.req.id} (${this.req.op} ino=${this.req.ino || this.req.parent})`);
  }

  private end(sent: boolean, what: string): void {
    this.s._done(this);
    if (sent) {
      this._st = ST_SENT;
      if (this.s.debug) this.s._log(`fuse< #${this.req.id} ${this.req.op} ${what}`);
    } else {
      this._st = ST_LATE;
      this.s._late(this, what, 'already answered by the watchdog or at unmount');
    }
  }

  error(errno: number): void {
    if (!this.begin('error()')) return;
    let e = checkErrno(errno);
    if (this.req.op === 'fallocate' && e === E.ENOSYS) e = E.EOPNOTSUPP; // ENOSYS is sticky
    const sent = this.s._n.replyErr(this.s._h, this.req.id, e);
    this.end(sent, this.s.debug ? `error ${errnoName(e)}` : '');
  }

  ok(): void {
    if (!this.begin('ok()')) return;
    this.end(this.s._n.replyErr(this.s._h, this.req.id, 0), 'ok');
  }

  entry(entry: Entry): void {
    if (!this.begin('entry()')) return;
    putEntry(this.s._rs, entry);
    this.end(this.s._n.replyEntry(this.s._h, this.req.id), this.s.debug ? `entry ino=${entry.ino} size=${entry.attr.size}` : '');
  }

  negative(entryTimeout: number): void {
    if (!this.begin('negative()')) return;
    const r = this.s._rs;
    r.fill(0, 0, R_ENTRY + 4);
    r[R_ENTRY + 3] = entryTimeout;
    this.end(this.s._n.replyEntry(this.s._h, this.req.id), 'negative entry');
  }

  attr(attr: Attr, timeout: number): void {
    if (!this.begin('attr()')) return;
    putAttr(this.s._rs, R_ATTR, attr);
    this.end(this.s._n.replyAttr(this.s._h, this.req.id, timeout), this.s.debug ? `attr size=${attr.size} mode=0${attr.mode.toString(8)}` : '');
  }

  readlink(target: string): void {
    if (!this.begin('readlink()')) return;
    this.end(this.s._n.replyReadlink(this.s._h, this.req.id, target), 'readlink');
  }

  open(fh: number, flags?: OpenFlags): void {
    if (!this.begin('open()')) return;
    const bits = openBits(flags);
    this.end(this.s._n.replyOpen(this.s._h, this.req.id, fh, bits), this.s.debug ? `open fh=${fh} flags=${bits}` : '');
  }

  create(entry: Entry, fh: number, flags?: OpenFlags): void {
    if (!this.begin('create()')) return;
    putEntry(this.s._rs, entry);
    this.end(this.s._n.replyCreate(this.s._h, this.req.id, fh, openBits(flags)), this.s.debug ? `create ino=${entry.ino} fh=${fh}` : '');
  }

  data(buf: Uint8Array | null | undefined): void {
    if (!this.begin('data()')) return;
    this.end(this.s._n.replyBuf(this.s._h, this.req.id, buf), this.s.debug ? `data ${buf ? buf.byteLength : 0}B` : '');
  }

  dataV(bufs: readonly Uint8Array[]): void {
    if (!this.begin('dataV()')) return;
    this.end(this.s._n.replyIov(this.s._h, this.req.id, bufs), this.s.debug ? `dataV ${bufs.length} buffers` : '');
  }

  written(count: number): void {
    if (!this.begin('written()')) return;
    this.end(this.s._n.replyWrite(this.s._h, this.req.id, count), this.s.debug ? `written ${count}` : '');
  }

  statfs(st: Statfs): void {
    if (!this.begin('statfs()')) return;
    const r = this.s._rs;
    const b = R_STATFS;
    r[b] = st.bsize;
    r[b + 1] = st.frsize ?? st.bsize;
    r[b + 2] = st.blocks;
    r[b + 3] = st.bfree;
    r[b + 4] = st.bavail;
    r[b + 5] = st.files;
    r[b + 6] = st.ffree;
    r[b + 7] = st.favail ?? st.ffree;
    r[b + 8] = st.fsid ?? 0;
    r[b + 9] = st.flag ?? 0;
    r[b + 10] = st.namemax;
    this.end(this.s._n.replyStatfs(this.s._h, this.req.id), 'statfs');
  }

  offset(off: number): void {
    if (!this.begin('offset()')) return;
    this.end(this.s._n.replyLseek(this.s._h, this.req.id, off), this.s.debug ? `offset ${off}` : '');
  }

  size(n: number): void {
    if (!this.begin('size()')) return;
    this.end(this.s._n.replyXattr(this.s._h, this.req.id, n), this.s.debug ? `xattr size ${n}` : '');
  }

  entries(list: readonly (DirEntry | DirEntryPlus)[]): number {
    if (!this.begin('entries()')) return 0;
    const plus = this.req.op === 'readdirplus';
    const stride = plus ? DIRPLUS_STRIDE : DIR_STRIDE;
    const n = list.length;
    if (dirNums.length < n * stride) dirNums = new Float64Array(Math.max(n * stride, dirNums.length * 2));
    const nums = dirNums;
    dirNames.length = n;
    for (let i = 0; i < n; i++) {
      const d = list[i]!;
      dirNames[i] = d.name;
      const b = i * stride;
      if (plus) {
        const e = (d as DirEntryPlus).entry;
        nums[b] = d.off;
        nums[b + 1] = e.ino;
        nums[b + 2] = e.generation ?? 0;
        nums[b + 3] = e.attrTimeout;
        nums[b + 4] = e.entryTimeout;
        putAttr(nums, b + 5, e.attr);
      } else {
        const de = d as DirEntry;
        nums[b] = de.ino;
        nums[b + 1] = de.mode;
        nums[b + 2] = de.off;
      }
    }
    let sent: number;
    try {
      sent = this.s._n.replyDir(this.s._h, this.req.id, plus, dirNames, nums, n);
    } finally {
      dirNames.length = 0;
    }
    this.end(sent >= 0, this.s.debug ? `entries ${sent}/${n}` : '');
    return sent < 0 ? 0 : sent;
  }
}

// ---------------------------------------------------------------------------------------------

type Handler = (req: FuseRequest, reply: FuseReply) => void | Promise<void>;

const live = new Set<FuseSession>();
let signalsInstalled = false;
let signalling = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onSignal(sig: NodeJS.Signals): void {
  if (signalling) {
    process.stderr.write(`faultline-fuse: ${sig} again: exiting now\n`);
    process.exit(1);
  }
  signalling = true;
  const list = [...live].filter((s) => s.handleSignals);
  process.stderr.write(`faultline-fuse: ${sig}: unmounting ${list.map((s) => s.mountpoint).join(', ') || '(nothing)'}\n`);
  void Promise.allSettled(list.map((s) => s.unmount())).then(() => process.exit(0));
}

let exitHookInstalled = false;

const DEFAULT_LOOP: 'thread' | 'uv' = 'uv';

function loopMode(o: unknown): 'thread' | 'uv' {
  const v = o ?? (process.env.FAULTLINE_FUSE_LOOP || undefined) ?? DEFAULT_LOOP;
  if (v !== 'thread' && v !== 'uv') {
    throw new TypeError(`FUSE loop mode must be 'thread' or 'uv' (option loop / FAULTLINE_FUSE_LOOP), not ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * process.exit() on the main thread does not run N-API env cleanup hooks, so tear every live
 * session down synchronously from 'exit' (stop the loop, fail outstanding requests, close
 * /dev/fuse, unmount). The addon's env cleanup hook remains as a fallback (e.g. worker threads).
 */
function onProcessExit(): void {
  for (const s of [...live]) s._exitTeardown();
}

function updateSignalHandlers(): void {
  if (!exitHookInstalled && live.size > 0) {
    process.on('exit', onProcessExit);
    exitHookInstalled = true;
  }
  const want = [...live].some((s) => s.handleSignals);
  if (want && !signalsInstalled) {
    for (const sig of SIGNALS) process.on(sig, onSignal);
    signalsInstalled = true;
  } else if (!want && signalsInstalled && !signalling) {
    for (const sig of SIGNALS) process.off(sig, onSignal);
    signalsInstalled = false;
  }
}

function fmtReq(r: FuseRequest): string {
  switch (r.op) {
    case 'lookup':
    case 'unlink':
    case 'rmdir':
      return `parent=${r.parent} name=${JSON.stringify(r.name)}`;
    case 'mknod':
    case 'mkdir':
    case 'create':
      return `parent=${r.parent} name=${JSON.stringify(r.name)} mode=0${r.mode.toString(8)} flags=0x${r.flags.toString(16)}`;
    case 'symlink':
      return `parent=${r.parent} name=${JSON.stringify(r.name)} target=${JSON.stringify(r.target)}`;
    case 'rename':
      return `parent=${r.parent} name=${JSON.stringify(r.name)} -> ${r.newParent}/${JSON.stringify(r.newName)} flags=${r.flags}`;
    case 'link':
      return `ino=${r.ino} -> ${r.newParent}/${JSON.stringify(r.newName)}`;
    case 'setattr':
      return `ino=${r.ino} fh=${r.fh} set=${JSON.stringify(r.set)}`;
    case 'read':
    case 'readdir':
    case 'readdirplus':
      return `ino=${r.ino} fh=${r.fh} off=${r.off} size=${r.size}`;
    case 'write':
      return `ino=${r.ino} fh=${r.fh} off=${r.off} size=${r.size}${r.writepage ? ' writepage' : ''}`;
    case 'fallocate':
      return `ino=${r.ino} fh=${r.fh} mode=0x${r.mode.toString(16)} offset=${r.offset} length=${r.length}`;
    case 'lseek':
      return `ino=${r.ino} off=${r.off} whence=${r.whence}`;
    case 'open':
    case 'opendir':
      return `ino=${r.ino} flags=0x${r.flags.toString(16)}`;
    case 'getxattr':
      return `ino=${r.ino} name=${JSON.stringify(r.name)} size=${r.size}`;
    default:
      return `ino=${r.ino}${r.fh !== undefined && r.fh !== 0 ? ` fh=${r.fh}` : ''}`;
  }
}

/**
 * One mounted filesystem. Create with FuseSession.mount(); the promise resolves once the kernel's
 * FUSE_INIT has been answered (so the mount is usable and `init` is filled in).
 */
export class FuseSession {
  readonly mountpoint: string;
  /** INIT negotiation result (set before mount() resolves). */
  init!: InitInfo;
  /** Resolves when the session has ended: unmount(), external unmount, or connection abort. */
  readonly closed: Promise<void>;
  readonly debug: boolean;
  readonly handleSignals: boolean;
  /** Who reads /dev/fuse: 'uv' (the JS thread, through libuv) or 'thread' (a native loop thread). */
  readonly loop: 'thread' | 'uv';

  /** @internal */ _n: NativeAddon;
  /** @internal */ _h!: NativeHandle;
  /** @internal */ readonly _rs = new Float64Array(REPLY_SCRATCH_LEN);
  private readonly reqScratch = new Float64Array(REQ_SCRATCH_LEN);
  private readonly ops: FuseOps;
  private readonly handlers: (Handler | undefined)[] = new Array(31).fill(undefined);
  private readonly pending: (FuseReply | undefined)[] = new Array(65536).fill(undefined);
  private readonly logFn: (line: string) => void;
  private ended = false;
  private unmountRequested = false;
  private handlerErrors = 0;
  private resolveClosed!: () => void;
  private initWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private lastStats: FuseStats | undefined;

  private constructor(mountpoint: string, ops: FuseOps, o: MountOptions, native: NativeAddon) {
    this.mountpoint = mountpoint;
    this.ops = ops;
    this.debug = !!o.debug;
    this.handleSignals = o.handleSignals ?? true;
    this.loop = loopMode(o.loop);
    this.logFn = o.log ?? ((line: string) => void process.stderr.write(line + '\n'));
    this._n = native;
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
    for (const [name, code] of Object.entries(OP)) {
      const fn = (ops as Record<string, unknown>)[name];
      if (typeof fn === 'function') this.handlers[code] = fn as Handler;
    }
  }

  /**
   * Mount `ops` on `mountpoint`. Checks the preconditions first (throws Errors that say how to fix
   * them), mounts with auto_unmount, and resolves once FUSE_INIT has been negotiated.
   */
  static async mount(mountpoint: string, ops: FuseOps, options: MountOptions = {}): Promise<FuseSession> {
    const o = options;
    for (const [k, v] of [
      ['fsname', o.fsname],
      ['subtype', o.subtype],
    ] as const) {
      if (v !== undefined && (typeof v !== 'string' || v === '' || /[,\\\s]/.test(v))) {
        throw new TypeError(`mount option ${k} must be a non-empty string without commas, backslashes or spaces`);
      }
    }
    for (const x of o.extraOptions ?? []) {
      if (typeof x !== 'string' || x === '' || x.includes(',')) throw new TypeError(`bad extra mount option ${JSON.stringify(x)}`);
    }
    const native = loadNative();
    const real = await preflight(mountpoint, { allowOther: o.allowOther });
    const s = new FuseSession(real, ops, o, native);
    await s.start(o);
    return s;
  }

  private async start(o: MountOptions): Promise<void> {
    const mopts = [
      `fsname=${o.fsname ?? 'faultline'}`,
      `subtype=${o.subtype ?? 'faultline'}`,
      'auto_unmount',
    ];
    if (o.defaultPermissions ?? true) mopts.push('default_permissions');
    if (o.allowOther) mopts.push('allow_other');
    mopts.push(...(o.extraOptions ?? []));
    let opsMask = 0;
    for (let code = 1; code < this.handlers.length; code++) if (this.handlers[code]) opsMask |= 1 << code;
    if (typeof this.ops.forget === 'function') opsMask |= 1 << OP.forget;

    const initDone = new Promise<void>((resolve, reject) => (this.initWaiter = { resolve, reject }));
    try {
      this._h = this._n.mount({
        mountpoint: this.mountpoint,
        options: mopts.join(','),
        debug: !!o.libfuseDebug,
        opsMask,
        asyncRead: o.asyncRead ?? true,
        writebackCache: o.writebackCache ?? false,
        autoInvalData: o.autoInvalData ?? false,
        explicitInvalData: o.explicitInvalData ?? false,
        atomicOTrunc: o.atomicOTrunc ?? false,
        parallelDirops: o.parallelDirops ?? true,
        directIoAllowMmap: o.directIoAllowMmap ?? false,
        maxWrite: o.maxWrite ?? 0,
        maxReadahead: o.maxReadahead ?? -1,
        maxBackground: o.maxBackground ?? 0,
        congestionThreshold: o.congestionThreshold ?? 0,
        timeoutMs: o.requestTimeoutMs ?? 30_000,
        uvLoop: this.loop === 'uv',
        onRequest: this.onRequest,
        onEvent: this.onEvent,
        reqScratch: this.reqScratch,
        replyScratch: this._rs,
      });
    } catch (e) {
      throw new Error(
        `cannot mount ${this.mountpoint}: ${(e as Error).message}. ` +
          'Check the messages above from libfuse/fusermount3; the mountpoint must be an existing directory that is not ' +
          'already a mount point, /dev/fuse must be usable and fusermount3 installed' +
          (process.geteuid?.() === 0
            ? '.'
            : '; as non-root, the setuid fusermount3 must be able to open /dev/fuse (this fails in some containers and ' +
              'user namespaces: run as root there).'),
      );
    }
    live.add(this);
    updateSignalHandlers();
    const initTimeout = o.initTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        initDone,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`FUSE_INIT did not arrive within ${initTimeout} ms after mounting ${this.mountpoint}`)),
            initTimeout,
          );
        }),
      ]);
    } catch (e) {
      this.finish();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- dispatch (hot path) --------------------------------------------------------------------

  private readonly onRequest = (id: number, op: number, name?: string, name2?: string, data?: Buffer): void => {
    if (op === OP.forget) {
      const s = this.reqScratch;
      const ino = s[A_INO]!;
      const nlookup = s[A_ARG0]!;
      if (this.debug) this._log(`fuse> forget ino=${ino} nlookup=${nlookup}`);
      try {
        this.ops.forget?.({ ino, nlookup });
      } catch (e) {
        this.handlerErrors++;
        this._log(`fuse: forget handler threw (ignored): ${(e as Error)?.stack ?? String(e)}`);
      }
      return;
    }
    const req = new FuseRequest(id, op, this.reqScratch, name, name2, data);
    const reply = new FuseReply(this, req);
    if (this.ended) {
      reply._st = ST_EXPIRED;
      return;
    }
    this.pending[id & 0xffff] = reply;
    if (this.debug) this._log(`fuse> #${id} ${req.op} ${fmtReq(req)}${req.aborted ? ' (interrupted)' : ''}`);
    const h = this.handlers[op];
    let r: void | Promise<void>;
    try {
      if (h === undefined) {
        reply.error(op === OP.fallocate ? E.EOPNOTSUPP : E.ENOSYS);
        return;
      }
      r = h.call(this.ops, req, reply);
    } catch (e) {
      this.handlerFailed(reply, e);
      return;
    }
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
      (r as Promise<void>).then(undefined, (e: unknown) => this.handlerFailed(reply, e));
    }
  };

  private handlerFailed(reply: FuseReply, e: unknown): void {
    this.handlerErrors++;
    const req = reply.req;
    const ex = explicitErrno(e);
    const errno = ex ?? E.EIO;
    const what = e instanceof Error ? (ex !== undefined ? e.message : (e.stack ?? e.message)) : String(e);
    if (reply._st !== ST_PENDING) {
      this._log(`fuse: ${req.op} handler for #${req.id} failed after replying: ${what}`);
      return;
    }
    this._log(`fuse: ${req.op} #${req.id} ${fmtReq(req)} failed, answering ${errnoName(errno)}: ${what}`);
    try {
      reply.error(errno);
    } catch (e2) {
      this._log(`fuse: cannot answer #${req.id}: ${(e2 as Error)?.message ?? String(e2)}`);
    }
  }

  private readonly onEvent = (kind: number, id: number): void => {
    switch (kind) {
      case EV_INTERRUPT: {
        const r = this.pending[id & 0xffff];
        if (r && r.req.id === id) {
          if (this.debug) this._log(`fuse> #${id} INTERRUPT (${r.req.op})`);
          r.req._abort(abortReason('EINTR', 'FUSE_INTERRUPT'));
        }
        break;
      }
      case EV_EXPIRED: {
        const r = this.pending[id & 0xffff];
        if (r && r.req.id === id) {
          this.pending[id & 0xffff] = undefined;
          if (r._st === ST_PENDING) r._st = ST_EXPIRED;
          r.req._abort(abortReason('ETIMEDOUT', 'request answered EIO by the watchdog'));
        }
        break;
      }
      case EV_INIT: {
        const ni = this._n.initInfo(this._h);
        if (ni) {
          const w = ni.want;
          this.init = {
            ...ni,
            capableNames: capNames(ni.capable),
            wantNames: capNames(w),
            granted: {
              asyncRead: !!(w & CAP.ASYNC_READ!),
              writebackCache: !!(w & CAP.WRITEBACK_CACHE!),
              autoInvalData: !!(w & CAP.AUTO_INVAL_DATA!),
              explicitInvalData: !!(w & CAP.EXPLICIT_INVAL_DATA!),
              atomicOTrunc: !!(w & CAP.ATOMIC_O_TRUNC!),
              parallelDirops: !!(w & CAP.PARALLEL_DIROPS!),
              readdirplus: !!(w & CAP.READDIRPLUS!),
              splice: !!(w & (CAP.SPLICE_READ! | CAP.SPLICE_WRITE! | CAP.SPLICE_MOVE!)),
            },
            libfuseVersion: this._n.libfuseVersion(),
            features: this._n.features(),
          };
          if (this.debug) {
            this._log(
              `fuse: INIT proto ${ni.protoMajor}.${ni.protoMinor} want=${this.init.wantNames.join('|')} ` +
                `max_write=${ni.maxWrite} max_readahead=${ni.maxReadahead}`,
            );
          }
        }
        this.initWaiter?.resolve();
        this.initWaiter = undefined;
        break;
      }
      case EV_LOOP_END:
        this.finish();
        break;
    }
  };

  /** @internal */
  _done(r: FuseReply): void {
    const slot = r.req.id & 0xffff;
    if (this.pending[slot] === r) this.pending[slot] = undefined;
  }

  /** @internal */
  _late(r: FuseReply, what: string, why: string): void {
    this._log(`fuse: late reply ${what} to #${r.req.id} (${r.req.op} ino=${r.req.ino || r.req.parent}) dropped: ${why}`);
  }

  /** @internal */
  _log(line: string): void {
    try {
      this.logFn(line);
    } catch {
      /* never let logging crash the daemon */
    }
  }

  /** @internal Synchronous teardown at process exit. */
  _exitTeardown(): void {
    if (this.ended) return;
    this.unmountRequested = true;
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      this.lastStats = this.stats();
    } catch {
      /* ignore */
    }
    let failed = 0;
    try {
      failed = this._h ? this._n.destroy(this._h) : 0;
    } catch (e) {
      this._log(`fuse: destroy failed: ${(e as Error).message}`);
    }
    const reason = abortReason('ENOTCONN', 'FUSE session ended');
    for (let i = 0; i < this.pending.length; i++) {
      const r = this.pending[i];
      if (r) {
        this.pending[i] = undefined;
        if (r._st === ST_PENDING) r._st = ST_EXPIRED;
        r.req._abort(reason);
      }
    }
    if (failed) this._log(`fuse: ${this.mountpoint}: ${failed} request(s) still outstanding at unmount were answered EIO`);
    if (!this.unmountRequested && this.initWaiter === undefined) {
      this._log(`fuse: ${this.mountpoint}: session ended (unmounted externally or connection aborted)`);
    }
    try {
      this.ops.destroy?.();
    } catch (e) {
      this._log(`fuse: destroy handler threw: ${(e as Error)?.stack ?? String(e)}`);
    }
    live.delete(this);
    updateSignalHandlers();
    if (this.initWaiter) {
      this.initWaiter.reject(new Error(`the FUSE session on ${this.mountpoint} ended before FUSE_INIT completed`));
      this.initWaiter = undefined;
    }
    this.resolveClosed();
  }

  // --- public API ---------------------------------------------------------------------------

  /** True until the session has ended. */
  get mounted(): boolean {
    return !this.ended;
  }

  /**
   * Unmount (lazily, MNT_DETACH) while still serving requests the kernel needs to finish (e.g.
   * writeback), then stop the loop, answer anything outstanding with EIO and free the session.
   * Resolves when done; idempotent. If the session has not ended after `forceAfterMs`, the
   * connection is torn down forcibly (outstanding requests get EIO / ENOTCONN).
   */
  unmount(forceAfterMs = 10_000): Promise<void> {
    if (!this.ended && !this.unmountRequested) {
      this.unmountRequested = true;
      try {
        this._n.unmount(this._h);
      } catch (e) {
        this._log(`fuse: unmount: ${(e as Error).message}; tearing down`);
        this.finish();
      }
      if (!this.ended && forceAfterMs > 0) {
        const t = setTimeout(() => {
          if (!this.ended) {
            this._log(`fuse: ${this.mountpoint}: unmount did not complete within ${forceAfterMs} ms; aborting the connection`);
            this.finish();
          }
        }, forceAfterMs);
        t.unref();
        void this.closed.then(() => clearTimeout(t));
      }
    }
    return this.closed;
  }

  /**
   * Invalidate the kernel's cache of inode `ino`: pages covering [off, off+len) (len 0 = to EOF),
   * and its attributes; off < 0 invalidates attributes only. Runs on the notifier thread, never
   * on the JS thread. Resolves with libfuse's result: 0, or -errno (-ENOENT if the kernel does not
   * have the inode cached; -ENOTCONN once unmounted). Never rejects for a kernel error.
   * Do not hold daemon locks that a READ of the same pages needs while awaiting it.
   */
  notifyInvalInode(ino: number, off = 0, len = 0): Promise<number> {
    if (this.ended) return Promise.resolve(-E.ENOTCONN);
    return this._n.notifyInvalInode(this._h, ino, off, len);
  }

  /** Invalidate the dentry `name` in directory `parent`. Same result convention. */
  notifyInvalEntry(parent: number, name: string): Promise<number> {
    if (this.ended) return Promise.resolve(-E.ENOTCONN);
    return this._n.notifyInvalEntry(this._h, parent, name);
  }

  /** Push `data` into the kernel's page cache of `ino` at `off` (copied). Same result convention. */
  notifyStore(ino: number, off: number, data: Uint8Array): Promise<number> {
    if (this.ended) return Promise.resolve(-E.ENOTCONN);
    return this._n.notifyStore(this._h, ino, off, data);
  }

  stats(): FuseStats {
    if (this.ended && this.lastStats) return { ...this.lastStats, outstanding: 0, handlerErrors: this.handlerErrors };
    const n = this._n.stats(this._h);
    return { ...n, handlerErrors: this.handlerErrors };
  }
}

/** Same as FuseSession.mount. */
export function mount(mountpoint: string, ops: FuseOps, options?: MountOptions): Promise<FuseSession> {
  return FuseSession.mount(mountpoint, ops, options);
}
