#!/usr/bin/env node
// The Node peer of `faultline bench`: a minimal in-memory filesystem on fuse-native 2.2.6
// (libfuse 2.9 high-level path API, the system libfuse.so.2 through its prebuild, fuse_loop_mt). Same file and operations as
// native-tests/bench/ref_server.c minus fallocate, which fuse-native cannot express (the kernel
// gets ENOSYS and disables fallocate for the connection).
//
// Usage: node scripts/bench/fuse-native-peer.cjs [--name NAME] [--size BYTES] [--timeout S] [--die-with-parent] MOUNTPOINT
// --die-with-parent: unmount and exit when the parent process goes away (polled once a second).
// Prints "fuse-native-peer: mounted on MNT (pid N, fuse-native V, libfuse.so.X.Y.Z)" on stdout once INIT completed.
// SIGTERM / SIGINT unmount (fusermount -uz) and exit. Mounted with auto_unmount, kernel_cache (the
// high-level equivalent of keep_cache), big_writes (libfuse 2 otherwise caps writes at 4 KiB) and
// hard_remove: the peer is configured as well as fuse-native allows, not as a straw man.
'use strict';

const path = require('node:path');

let Fuse;
try {
  Fuse = require('fuse-native');
} catch (err) {
  process.stderr.write(`fuse-native-peer: cannot load fuse-native: ${err && err.message}\n`);
  process.exit(3);
}

function usage(msg) {
  if (msg) process.stderr.write(`fuse-native-peer: ${msg}\n`);
  process.stderr.write('usage: fuse-native-peer.cjs [--name NAME] [--size BYTES] [--timeout S] [--die-with-parent] MOUNTPOINT\n');
  process.exit(2);
}

function parseSize(s) {
  const m = /^(\d+)([kKmMgG]?)$/.exec(s);
  if (!m) usage(`bad size '${s}'`);
  const mul = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  return Number(m[1]) * mul;
}

let name = 'bench.dat';
let size = 256 * 1024 * 1024;
let timeout = 1;
let mnt = null;
let dieWithParent = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--name' && i + 1 < argv.length) name = argv[++i];
  else if (a === '--size' && i + 1 < argv.length) size = parseSize(argv[++i]);
  else if (a === '--timeout' && i + 1 < argv.length) timeout = Number(argv[++i]);
  else if (a === '--die-with-parent') dieWithParent = true;
  else if (a.startsWith('-') || mnt !== null) usage(`unexpected argument '${a}'`);
  else mnt = a;
}
if (!mnt) usage('missing MOUNTPOINT');
if (!name || name.includes('/')) usage('bad --name');
if (!(timeout >= 0)) usage('bad --timeout');
mnt = path.resolve(mnt);

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const MAX_SIZE = 2 ** 40;

// name -> { ino, mode, data: Buffer (capacity), size, atime, mtime, ctime }
const files = new Map();
let nextIno = 2;
const rootTimes = new Date();

function newFile(mode) {
  const t = new Date();
  return { ino: nextIno++, mode: S_IFREG | (mode & 0o7777), data: Buffer.alloc(0), size: 0, atime: t, mtime: t, ctime: t };
}

function reserve(f, want) {
  if (want > MAX_SIZE) return Fuse.EFBIG;
  if (want <= f.data.length) return 0;
  let cap = Math.max(f.data.length, 4096);
  while (cap < want) cap *= 2;
  let nd;
  try {
    nd = Buffer.alloc(cap);
  } catch {
    return Fuse.ENOSPC;
  }
  f.data.copy(nd, 0, 0, f.size);
  f.data = nd;
  return 0;
}

function setSize(f, newSize) {
  if (newSize > f.size) {
    const err = reserve(f, newSize);
    if (err) return err;
  } else {
    f.data.fill(0, newSize, f.size);
  }
  f.size = newSize;
  f.mtime = f.ctime = new Date();
  return 0;
}

{
  const f = newFile(0o644);
  const err = reserve(f, size);
  if (err) {
    process.stderr.write('fuse-native-peer: cannot allocate the file\n');
    process.exit(1);
  }
  f.size = size;
  files.set(name, f);
}

function lookup(p) {
  if (p.length < 2 || p.indexOf('/', 1) !== -1) return null;
  return files.get(p.slice(1)) || null;
}

function statOf(f) {
  return {
    mode: f.mode,
    uid: process.getuid(),
    gid: process.getgid(),
    size: f.size,
    nlink: 1,
    ino: f.ino,
    blksize: 4096,
    blocks: Math.ceil(f.size / 512),
    atime: f.atime,
    mtime: f.mtime,
    ctime: f.ctime,
  };
}

const ops = {
  getattr(p, cb) {
    if (p === '/') {
      return cb(0, {
        mode: S_IFDIR | 0o755, uid: process.getuid(), gid: process.getgid(), size: 4096, nlink: 2, ino: 1,
        blksize: 4096, blocks: 8, atime: rootTimes, mtime: rootTimes, ctime: rootTimes,
      });
    }
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    return cb(0, statOf(f));
  },
  fgetattr(p, fd, cb) {
    return ops.getattr(p, cb);
  },
  readdir(p, cb) {
    if (p !== '/') return cb(Fuse.ENOTDIR);
    return cb(0, ['.', '..', ...files.keys()]);
  },
  open(p, flags, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    return cb(0, 42);
  },
  create(p, mode, cb) {
    if (p.length < 2 || p.indexOf('/', 1) !== -1) return cb(Fuse.EACCES);
    const n = p.slice(1);
    if (Buffer.byteLength(n) > 255) return cb(Fuse.ENAMETOOLONG);
    if (!files.has(n)) files.set(n, newFile(mode));
    return cb(0, 42);
  },
  read(p, fd, buf, len, pos, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    if (pos >= f.size) return cb(0);
    const n = Math.min(len, f.size - pos);
    f.data.copy(buf, 0, pos, pos + n);
    return cb(n);
  },
  write(p, fd, buf, len, pos, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    const end = pos + len;
    if (end > f.size) {
      const err = reserve(f, end);
      if (err) return cb(err);
      f.size = end;
    }
    buf.copy(f.data, pos, 0, len);
    f.mtime = f.ctime = new Date();
    return cb(len);
  },
  truncate(p, newSize, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    return cb(setSize(f, newSize));
  },
  ftruncate(p, fd, newSize, cb) {
    return ops.truncate(p, newSize, cb);
  },
  unlink(p, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    files.delete(p.slice(1));
    return cb(0);
  },
  utimens(p, atime, mtime, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    f.atime = new Date(atime);
    f.mtime = new Date(mtime);
    f.ctime = new Date();
    return cb(0);
  },
  chmod(p, mode, cb) {
    const f = lookup(p);
    if (!f) return cb(Fuse.ENOENT);
    f.mode = (f.mode & ~0o7777) | (mode & 0o7777);
    return cb(0);
  },
  statfs(p, cb) {
    let used = 0;
    for (const f of files.values()) used += f.data.length;
    const blocks = MAX_SIZE / 4096;
    const free = Math.max(0, blocks - Math.ceil(used / 4096));
    // fuse-native passes statfs fields as Uint32: keep them in range
    const clamp = (v) => Math.min(v, 0xffffffff);
    return cb(0, {
      bsize: 4096, frsize: 4096, blocks: clamp(blocks), bfree: clamp(free), bavail: clamp(free),
      files: 1 << 20, ffree: (1 << 20) - files.size, favail: (1 << 20) - files.size, fsid: 0, flag: 0, namemax: 255,
    });
  },
  flush(p, fd, cb) {
    return cb(0);
  },
  fsync(p, datasync, fd, cb) {
    return cb(0);
  },
  release(p, fd, cb) {
    return cb(0);
  },
};

// fuse-native builds its option string from a fixed list; append what it cannot express:
// big_writes (else 4 KiB WRITEs) and hard_remove (else libfuse 2 "hides" a file whose RELEASE is
// still in flight by renaming it, and fails unlink with ENOSYS because this peer has no rename).
const EXTRA_OPTS = 'big_writes,hard_remove';
class BenchFuse extends Fuse {
  _fuseOptions() {
    const base = super._fuseOptions();
    return base ? `${base},${EXTRA_OPTS}` : `-o${EXTRA_OPTS}`;
  }
}

const fuse = new BenchFuse(mnt, ops, {
  autoUnmount: true,
  kernelCache: true,
  entryTimeout: timeout,
  attrTimeout: timeout,
  fsname: 'faultline-fuse-native',
  timeout: false,
});

// Which libfuse the binding really loaded (the prebuild links the system libfuse.so.2).
function loadedLibfuse() {
  try {
    const fs = require('node:fs');
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const m = /\s(\/\S*libfuse\.so[^\s]*)$/m.exec(maps);
    if (m) return path.basename(fs.realpathSync(m[1]));
  } catch {
    /* fall through */
  }
  return 'libfuse-unknown';
}

let stopping = false;
function stop(sig) {
  if (stopping) return;
  stopping = true;
  fuse.unmount((err) => {
    if (err) process.stderr.write(`fuse-native-peer: unmount: ${err.message}\n`);
    else process.stderr.write(`fuse-native-peer: unmounted ${mnt} (${sig})\n`);
    process.exit(err ? 1 : 0);
  });
  // fuse-native's FUSE thread is not always joined; never hang on the way out.
  setTimeout(() => process.exit(1), 5000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGHUP', () => stop('SIGHUP'));
if (dieWithParent) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop('parent exited');
  }, 1000).unref();
}

fuse.mount((err) => {
  if (err) {
    process.stderr.write(`fuse-native-peer: mount ${mnt} failed: ${err.message}\n`);
    process.exit(1);
  }
  const version = require('fuse-native/package.json').version;
  process.stdout.write(`fuse-native-peer: mounted on ${mnt} (pid ${process.pid}, fuse-native ${version}, ${loadedLibfuse()})\n`);
});
