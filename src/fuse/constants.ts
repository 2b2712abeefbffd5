// Numeric protocol between src/native/faultline_fuse.c and the TypeScript facade, plus the
// libfuse capability bits faultline reports. Keep in sync with the C file.

/** Op codes as passed by the addon (OP_* in faultline_fuse.c). */
export const OP = {
  lookup: 1,
  forget: 2,
  getattr: 3,
  setattr: 4,
  readlink: 5,
  mknod: 6,
  mkdir: 7,
  unlink: 8,
  rmdir: 9,
  symlink: 10,
  rename: 11,
  link: 12,
  open: 13,
  read: 14,
  write: 15,
  flush: 16,
  release: 17,
  fsync: 18,
  opendir: 19,
  readdir: 20,
  readdirplus: 21,
  releasedir: 22,
  fsyncdir: 23,
  statfs: 24,
  create: 25,
  fallocate: 26,
  lseek: 27,
  access: 28,
  getxattr: 29,
  listxattr: 30,
} as const;

export type OpName = keyof typeof OP;

/** OP_NAMES[code] = name. */
export const OP_NAMES: readonly (OpName | '?')[] = (() => {
  const names: (OpName | '?')[] = new Array(31).fill('?');
  for (const [k, v] of Object.entries(OP)) names[v] = k as OpName;
  return names;
})();

/** Request scratch layout (Float64Array filled by the addon before each onRequest call). */
export const A_INO = 0;
export const A_UID = 1;
export const A_GID = 2;
export const A_PID = 3;
export const A_UMASK = 4;
export const A_ARG0 = 5;
export const A_INTERRUPTED = 15;
export const REQ_SCRATCH_LEN = 32;

/** Reply scratch layout. */
export const R_ATTR = 0; // ino mode nlink uid gid rdev size blksize blocks atimeMs mtimeMs ctimeMs
export const R_ENTRY = 12; // ino generation attrTimeout entryTimeout
export const R_STATFS = 16; // bsize frsize blocks bfree bavail files ffree favail fsid flag namemax
export const REPLY_SCRATCH_LEN = 32;
export const DIR_STRIDE = 3; // ino mode off
export const DIRPLUS_STRIDE = 17; // off ino generation attrTimeout entryTimeout + 12 attr fields

/** Open reply flag bits. */
export const OPEN_KEEP_CACHE = 1;
export const OPEN_DIRECT_IO = 2;
export const OPEN_NONSEEKABLE = 4;
export const OPEN_PARALLEL_DIRECT_WRITES = 8;
export const OPEN_CACHE_READDIR = 16;
export const OPEN_NOFLUSH = 32;

/** onEvent kinds. */
export const EV_INTERRUPT = 1;
export const EV_EXPIRED = 2;
export const EV_INIT = 3;
export const EV_LOOP_END = 4;

/** setattr to_set bits (fuse_lowlevel.h FUSE_SET_ATTR_*). */
export const SET_ATTR_MODE = 1 << 0;
export const SET_ATTR_UID = 1 << 1;
export const SET_ATTR_GID = 1 << 2;
export const SET_ATTR_SIZE = 1 << 3;
export const SET_ATTR_ATIME = 1 << 4;
export const SET_ATTR_MTIME = 1 << 5;
export const SET_ATTR_ATIME_NOW = 1 << 7;
export const SET_ATTR_MTIME_NOW = 1 << 8;
export const SET_ATTR_CTIME = 1 << 10;

/** libfuse FUSE_CAP_* bits (fuse_common.h, 3.14). */
export const CAP: Readonly<Record<string, number>> = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  POSIX_ACL: 1 << 19,
  HANDLE_KILLPRIV: 1 << 20,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
  EXPIRE_ONLY: 1 << 26,
};

/** Names of the FUSE_CAP_* bits set in `mask` (unknown bits as hex). */
export function capNames(mask: number): string[] {
  const out: string[] = [];
  let rest = mask;
  for (const [name, bit] of Object.entries(CAP)) {
    if (mask & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  // `rest` is a signed 32-bit value after &=; print unknown high bits as unsigned hex.
  if (rest) out.push(`0x${(rest >>> 0).toString(16)}`);
  return out;
}
