// The bridge from FUSE low-level requests (src/fuse) to the filesystem core (src/fs): argument and
// attribute conversion, per-open flags from the mount options, readdir sizing, the read-before-reply
// delay point, per-op stats, and the request trace. It holds no filesystem state of its own.

import type {
  Attr as FuseAttr,
  DirEntry as FuseDirEntry,
  DirEntryPlus as FuseDirEntryPlus,
  Entry as FuseEntry,
  FuseOps,
  OpenFlags,
  ReplyBase,
  RequestBase,
} from '../fuse/index.js';
import type { Attr, Entry, Filesystem, SetattrChanges, Timespec } from '../fs/filesystem.js';
import { FsError, type FaultHooks } from '../fs/types.js';
import type { MountOptions } from './options.js';
import type { RequestStats } from './stats.js';
import { unitDigests, type Trace } from './trace.js';

const msOf = (t: Timespec): number => t.sec * 1000 + t.nsec / 1e6;
function timespecOf(ms: number): Timespec {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)) };
}

function fuseAttr(a: Attr): FuseAttr {
  return {
    ino: a.ino,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev,
    size: a.size,
    blocks: a.blocks,
    blksize: a.blksize,
    atimeMs: msOf(a.atime),
    mtimeMs: msOf(a.mtime),
    ctimeMs: msOf(a.ctime),
  };
}

// struct fuse_dirent is 24 bytes + name, struct fuse_direntplus adds a 128-byte fuse_entry_out;
// both are padded to 8 bytes. Used to stop collecting entries once the kernel's buffer is full, so
// that readdirplus counts lookups only for entries that are really sent.
const align8 = (n: number) => (n + 7) & ~7;
const direntSize = (name: string) => align8(24 + Buffer.byteLength(name));
const direntplusSize = (name: string) => align8(152 + Buffer.byteLength(name));

export interface BridgeContext {
  fs: Filesystem;
  options: MountOptions;
  faults: FaultHooks;
  stats: RequestStats;
  /** fsyncdir: make metadata durable (the file-backed store's journal). */
  syncMetadata?: () => Promise<void>;
  /** The active trace, if any (checked on every request; set and cleared by the control socket). */
  trace(): Trace | undefined;
  log(line: string): void;
}

type Handler<Q extends RequestBase, P extends ReplyBase> = (req: Q, reply: P) => void | Promise<void>;

export function createOps(ctx: BridgeContext): FuseOps {
  const { fs, options, faults, stats } = ctx;
  const attrTimeout = options.attrTimeout;
  const entryTimeout = options.entryTimeout;
  const fileFlags: OpenFlags = { keepCache: options.keepCache, directIo: options.directIo };
  const dirFlags: OpenFlags = {};

  const entry = (e: Entry): FuseEntry => ({ ino: e.ino, generation: e.generation, attr: fuseAttr(e.attr), attrTimeout, entryTimeout });
  const who = (req: RequestBase) => ({ uid: req.uid, gid: req.gid });

  /** Per-op latency stats and the trace around a handler. Errors still reach the facade, which replies. */
  function timed<Q extends RequestBase, P extends ReplyBase>(name: string, fn: Handler<Q, P>): Handler<Q, P> {
    const st = stats.op(name);
    return (req, reply) => {
      const tr = ctx.trace();
      if (tr) tr.line({ ev: 'req', id: req.id, op: name, ...traceArgs(req) });
      const t0 = performance.now();
      let r: void | Promise<void>;
      try {
        r = fn(req, reply);
      } catch (e) {
        st.record((performance.now() - t0) * 1000, true);
        if (tr) tr.line({ ev: 'rep', id: req.id, op: name, err: (e as { code?: string }).code ?? String(e) });
        // Expected errors (ENOENT on lookup, EEXIST, ...) are replies, not incidents: answer them here
        // so the facade logs only unexpected exceptions.
        if (e instanceof FsError && !reply.sent) return reply.error(e.errno);
        throw e;
      }
      if (r === undefined) {
        st.record((performance.now() - t0) * 1000, false);
        if (tr) tr.line({ ev: 'rep', id: req.id, op: name });
        return;
      }
      return r.then(
        () => {
          st.record((performance.now() - t0) * 1000, false);
          const t = ctx.trace();
          if (t) t.line({ ev: 'rep', id: req.id, op: name });
        },
        (e: unknown) => {
          st.record((performance.now() - t0) * 1000, true);
          const t = ctx.trace();
          if (t) t.line({ ev: 'rep', id: req.id, op: name, err: (e as { code?: string }).code ?? String(e) });
          if (e instanceof FsError && !reply.sent) return reply.error(e.errno);
          throw e;
        },
      );
    };
  }

  function replyRead(req: { id: number; off: number }, reply: { data(b: Uint8Array): void }, buf: Buffer): void | Promise<void> {
    const d = faults.delay('read-before-reply');
    const tr = ctx.trace();
    if (tr) tr.line({ ev: 'data', id: req.id, op: 'read', off: req.off, len: buf.length, units: unitDigests(buf, req.off) });
    if (d === undefined) {
      reply.data(buf);
      return;
    }
    return d.then(() => reply.data(buf));
  }

  const ops: FuseOps = {
    lookup: timed('lookup', (req, reply) => reply.entry(entry(fs.lookup(req.parent, req.name)))),
    forget: (req) => fs.forget(req.ino, req.nlookup),
    getattr: timed('getattr', (req, reply) => reply.attr(fuseAttr(fs.getattr(req.ino, req.fh)), attrTimeout)),
    setattr: timed('setattr', async (req, reply) => {
      const s = req.set;
      const changes: SetattrChanges = {};
      if (s.mode !== undefined) changes.mode = s.mode;
      if (s.uid !== undefined) changes.uid = s.uid;
      if (s.gid !== undefined) changes.gid = s.gid;
      if (s.size !== undefined) changes.size = s.size;
      if (s.atimeNow) changes.atime = 'now';
      else if (s.atimeMs !== undefined) changes.atime = timespecOf(s.atimeMs);
      if (s.mtimeNow) changes.mtime = 'now';
      else if (s.mtimeMs !== undefined) changes.mtime = timespecOf(s.mtimeMs);
      if (s.ctimeMs !== undefined) changes.ctime = timespecOf(s.ctimeMs);
      reply.attr(fuseAttr(await fs.setattr(req.ino, changes, req.fh)), attrTimeout);
    }),
    readlink: timed('readlink', (req, reply) => reply.readlink(fs.readlink(req.ino))),
    mknod: timed('mknod', (req, reply) => reply.entry(entry(fs.mknod(req.parent, req.name, req.mode, req.rdev, who(req))))),
    mkdir: timed('mkdir', (req, reply) => reply.entry(entry(fs.mkdir(req.parent, req.name, req.mode, who(req))))),
    unlink: timed('unlink', (req, reply) => {
      fs.unlink(req.parent, req.name);
      reply.ok();
    }),
    rmdir: timed('rmdir', (req, reply) => {
      fs.rmdir(req.parent, req.name);
      reply.ok();
    }),
    symlink: timed('symlink', (req, reply) => reply.entry(entry(fs.symlink(req.target, req.parent, req.name, who(req))))),
    rename: timed('rename', (req, reply) => {
      fs.rename(req.parent, req.name, req.newParent, req.newName, req.flags);
      reply.ok();
    }),
    link: timed('link', (req, reply) => reply.entry(entry(fs.link(req.ino, req.newParent, req.newName)))),
    open: timed('open', async (req, reply) => reply.open((await fs.open(req.ino, req.flags)).fh, fileFlags)),
    create: timed('create', async (req, reply) => {
      const r = await fs.create(req.parent, req.name, req.mode, req.flags, who(req));
      reply.create(entry(r.entry), r.fh, fileFlags);
    }),
    read: timed('read', (req, reply) => {
      const r = fs.read(req.ino, req.fh, req.off, req.size, req.cheapSignal ?? req.signal);
      if (r instanceof Promise) return r.then((buf) => replyRead(req, reply, buf));
      return replyRead(req, reply, r);
    }),
    write: timed('write', async (req, reply) => {
      const tr = ctx.trace();
      if (tr) tr.line({ ev: 'data', id: req.id, op: 'write', off: req.off, len: req.data.length, units: unitDigests(req.data, req.off) });
      reply.written(await fs.write(req.ino, req.fh, req.off, req.data, req.cheapSignal ?? req.signal));
    }),
    flush: timed('flush', async (req, reply) => {
      await fs.flush(req.ino, req.fh);
      reply.ok();
    }),
    release: timed('release', async (req, reply) => {
      await fs.release(req.ino, req.fh);
      reply.ok();
    }),
    fsync: timed('fsync', async (req, reply) => {
      await fs.fsync(req.ino, req.fh, req.datasync);
      reply.ok();
    }),
    fallocate: timed('fallocate', async (req, reply) => {
      await fs.fallocate(req.ino, req.fh, req.mode, req.offset, req.length, req.cheapSignal ?? req.signal);
      reply.ok();
    }),
    lseek: timed('lseek', (req, reply) => reply.offset(fs.lseek(req.ino, req.fh, req.off, req.whence))),
    opendir: timed('opendir', (req, reply) => reply.open(fs.opendir(req.ino, req.flags).fh, dirFlags)),
    readdir: timed('readdir', (req, reply) => {
      const list: FuseDirEntry[] = [];
      let room = req.size;
      fs.readdir(req.ino, req.fh, req.off, (e) => {
        const need = direntSize(e.name);
        if (need > room) return false;
        room -= need;
        list.push({ name: e.name, ino: e.ino, mode: e.mode, off: e.offset });
        return true;
      });
      reply.entries(list);
    }),
    readdirplus: timed('readdirplus', (req, reply) => {
      const list: FuseDirEntryPlus[] = [];
      let room = req.size;
      fs.readdirplus(req.ino, req.fh, req.off, (e) => {
        const need = direntplusSize(e.name);
        if (need > room) return false;
        room -= need;
        list.push({ name: e.name, off: e.offset, entry: entry(e.entry) });
        return true;
      });
      const sent = reply.entries(list);
      // Entries the kernel's buffer could not take after all were counted as lookups: undo them.
      for (let k = sent; k < list.length; k++) {
        const e = list[k]!;
        if (e.name !== '.' && e.name !== '..') fs.forget(e.entry.ino, 1);
      }
    }),
    releasedir: timed('releasedir', async (req, reply) => {
      await fs.releasedir(req.ino, req.fh);
      reply.ok();
    }),
    fsyncdir: timed('fsyncdir', (req, reply) => {
      fs.fsyncdir(req.ino, req.fh, req.datasync);
      // The file-backed store makes the metadata journal durable; memory has nothing to sync.
      const p = ctx.syncMetadata?.();
      if (!p) return reply.ok();
      return p.then(() => reply.ok());
    }),
    statfs: timed('statfs', (req, reply) => reply.statfs(fs.statfs(req.ino))),
    access: timed('access', (req, reply) => {
      fs.access(req.ino, req.mask);
      reply.ok();
    }),
  };
  return ops;
}

function traceArgs(req: RequestBase): Record<string, unknown> {
  const r = req as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['ino', 'parent', 'name', 'fh', 'off', 'size', 'mode', 'offset', 'length', 'flags', 'newParent', 'newName']) {
    if (r[k] !== undefined) out[k] = r[k];
  }
  const set = r.set as Record<string, unknown> | undefined;
  if (set) out.set = set;
  const data = r.data as Buffer | undefined;
  if (data) out.len = data.length;
  return out;
}
