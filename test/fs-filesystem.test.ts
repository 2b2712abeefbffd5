import { describe, expect, it } from 'vitest';
import { constants as fsc } from 'node:fs';
import {
  Filesystem,
  applyChanges,
  type Attr,
  type DirEntryPlus,
  type Timespec,
} from '../src/fs/filesystem.js';
import { S_IFDIR, S_IFLNK, S_IFREG, S_IFIFO, S_IFCHR, S_IFSOCK, S_IFBLK, S_ISGID, S_ISUID } from '../src/fs/metadata.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FALLOC_FL_COLLAPSE_RANGE,
  MAX_FILE_SIZE,
  PAGE_SIZE,
  SEEK_DATA,
  SEEK_HOLE,
  SEEK_SET,
} from '../src/fs/types.js';
import { errnoOf, errnoOfSync, listDir, makeFs, names } from './helpers/fs-harness.js';

const ROOT = 1;
const ctx = { uid: 1000, gid: 100 };

function tsLess(a: Timespec, b: Timespec): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);
}

async function mkfile(fs: Filesystem, parent: number, name: string, content?: string) {
  const { entry, fh } = await fs.create(parent, name, 0o644, fsc.O_RDWR, ctx);
  if (content !== undefined) await fs.write(entry.ino, fh, 0, Buffer.from(content));
  return { ino: entry.ino, fh };
}

async function readAll(fs: Filesystem, ino: number, fh: number): Promise<string> {
  return (await fs.read(ino, fh, 0, 1 << 20)).toString();
}

describe('Filesystem basics', () => {
  it('starts with a root directory', () => {
    const { fs } = makeFs();
    const a = fs.getattr(ROOT);
    expect(a.ino).toBe(1);
    expect(a.mode).toBe(S_IFDIR | 0o755);
    expect(a.nlink).toBe(2);
    expect(fs.lookup(ROOT, '.').ino).toBe(1);
    expect(fs.lookup(ROOT, '..').ino).toBe(1);
    expect(names(listDir(fs, ROOT))).toEqual(['.', '..']);
  });

  it('create, write, read, getattr with st_blocks and times', async () => {
    const h = makeFs();
    const { fs } = h;
    const before = fs.getattr(ROOT);
    const { entry, fh } = await fs.create(ROOT, 'f', 0o640, fsc.O_RDWR, ctx);
    expect(entry.ino).toBe(2);
    expect(entry.generation).toBe(0);
    expect(entry.attr).toMatchObject({ mode: S_IFREG | 0o640, nlink: 1, uid: 1000, gid: 100, size: 0, blocks: 0, blksize: 4096 });
    const dirAfter = fs.getattr(ROOT);
    expect(tsLess(before.mtime, dirAfter.mtime)).toBe(true);
    expect(tsLess(before.ctime, dirAfter.ctime)).toBe(true);
    const created = entry.attr;
    expect(await fs.write(entry.ino, fh, 5000, Buffer.from('hello'))).toBe(5);
    const a = fs.getattr(entry.ino);
    expect(a.size).toBe(5005);
    expect(a.blocks).toBe(8); // one 4 KiB page: the hole before offset 4096 costs nothing
    expect(tsLess(created.mtime, a.mtime)).toBe(true);
    expect(a.ctime).toEqual(a.mtime);
    const r = await fs.read(entry.ino, fh, 4998, 100);
    expect(r.length).toBe(7);
    expect(r.toString('latin1')).toBe('\0\0hello');
    expect((await fs.read(entry.ino, fh, 6000, 10)).length).toBe(0);
    await fs.release(entry.ino, fh);
    expect(h.made.get(entry.ino)!.syncCount).toBe(1); // release syncs
  });

  it('read returns synchronously when the FileData does', async () => {
    const { fs } = makeFs({ syncReads: true });
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'abc');
    const r = fs.read(ino, fh, 0, 3);
    expect(r).toBeInstanceOf(Buffer);
    expect((r as Buffer).toString()).toBe('abc');
  });

  it('atime follows relatime', async () => {
    const h = makeFs({ syncReads: true });
    const { fs } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'abc');
    const a0 = fs.getattr(ino);
    // atime <= mtime: the first read updates atime.
    fs.read(ino, fh, 0, 1);
    const a1 = fs.getattr(ino);
    expect(tsLess(a0.atime, a1.atime)).toBe(true);
    expect(tsLess(a1.mtime, a1.atime)).toBe(true);
    // atime newer than mtime/ctime and < 24h old: no update.
    fs.read(ino, fh, 0, 1);
    expect(fs.getattr(ino).atime).toEqual(a1.atime);
    // A day later: updated again.
    h.advance(24 * 3600);
    fs.read(ino, fh, 0, 1);
    expect(tsLess(a1.atime, fs.getattr(ino).atime)).toBe(true);
  });

  it('mkdir, symlink, readlink, link counts', async () => {
    const { fs } = makeFs();
    const d = fs.mkdir(ROOT, 'd', 0o750, ctx);
    expect(d.attr.mode).toBe(S_IFDIR | 0o750);
    expect(d.attr.nlink).toBe(2);
    expect(fs.getattr(ROOT).nlink).toBe(3);
    const e = fs.mkdir(d.ino, 'e', 0o755, ctx);
    expect(fs.getattr(d.ino).nlink).toBe(3);
    expect(fs.lookup(e.ino, '..').ino).toBe(d.ino);
    const s = fs.symlink('../target/x', d.ino, 'ln', ctx);
    expect(s.attr.mode).toBe(S_IFLNK | 0o777);
    expect(s.attr.size).toBe(11);
    expect(fs.readlink(s.ino)).toBe('../target/x');
    const { ino } = await mkfile(fs, ROOT, 'f');
    const l = fs.link(ino, d.ino, 'g');
    expect(l.ino).toBe(ino);
    expect(l.attr.nlink).toBe(2);
    expect(fs.link(s.ino, ROOT, 'ln2').attr.nlink).toBe(2); // symlinks can be hard-linked
    fs.unlink(ROOT, 'f');
    expect(fs.getattr(ino).nlink).toBe(1);
    fs.rmdir(d.ino, 'e');
    expect(fs.getattr(d.ino).nlink).toBe(2);
    expect(fs.getattr(ROOT).nlink).toBe(3);
    expect(fs.getattr(e.ino).nlink).toBe(0); // still looked up
    fs.forget(e.ino, 1);
    expect(fs.has(e.ino)).toBe(false);
  });

  it('set-group-ID directories pass on their group', () => {
    const { fs } = makeFs();
    const d = fs.mkdir(ROOT, 'd', 0o2775, { uid: 1, gid: 50 });
    expect(d.attr.mode & S_ISGID).toBe(S_ISGID);
    const e = fs.mkdir(d.ino, 'e', 0o755, { uid: 2, gid: 60 });
    expect(e.attr.gid).toBe(50);
    expect(e.attr.mode & S_ISGID).toBe(S_ISGID);
    const f = fs.mknod(d.ino, 'f', S_IFREG | 0o644, 0, { uid: 2, gid: 60 });
    expect(f.attr.gid).toBe(50);
    expect(f.attr.mode & S_ISGID).toBe(0);
  });

  it('applies umask when given', () => {
    const { fs } = makeFs();
    expect(fs.mkdir(ROOT, 'd', 0o777, { ...ctx, umask: 0o022 }).attr.mode).toBe(S_IFDIR | 0o755);
  });

  it('mknod makes regular files only', () => {
    const { fs } = makeFs();
    expect(fs.mknod(ROOT, 'a', 0o600, 0, ctx).attr.mode).toBe(S_IFREG | 0o600);
    expect(fs.mknod(ROOT, 'b', S_IFREG | 0o600, 0, ctx).attr.mode).toBe(S_IFREG | 0o600);
    for (const t of [S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, S_IFDIR]) {
      expect(errnoOfSync(() => fs.mknod(ROOT, 'x', t | 0o600, 0, ctx))).toBe('EPERM');
    }
    expect(errnoOfSync(() => fs.mknod(ROOT, 'x', S_IFLNK | 0o600, 0, ctx))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.lookup(ROOT, 'x'))).toBe('ENOENT');
  });

  it('create of an existing name: EEXIST with O_EXCL, else opens (and O_TRUNC truncates)', async () => {
    const { fs } = makeFs();
    const { ino } = await mkfile(fs, ROOT, 'f', 'hello');
    expect(await errnoOf(() => fs.create(ROOT, 'f', 0o644, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR, ctx))).toBe('EEXIST');
    const r = await fs.create(ROOT, 'f', 0o644, fsc.O_CREAT | fsc.O_RDWR, ctx);
    expect(r.entry.ino).toBe(ino);
    expect(fs.getattr(ino).size).toBe(5);
    const t = await fs.create(ROOT, 'f', 0o644, fsc.O_CREAT | fsc.O_TRUNC | fsc.O_RDWR, ctx);
    expect(t.entry.ino).toBe(ino);
    expect(fs.getattr(ino).size).toBe(0);
    fs.mkdir(ROOT, 'd', 0o755, ctx);
    expect(await errnoOf(() => fs.create(ROOT, 'd', 0o644, fsc.O_RDWR, ctx))).toBe('EISDIR');
  });

  it('open with O_TRUNC truncates and updates mtime', async () => {
    const { fs } = makeFs();
    const { ino } = await mkfile(fs, ROOT, 'f', 'hello');
    const m0 = fs.getattr(ino).mtime;
    const { fh } = await fs.open(ino, fsc.O_WRONLY | fsc.O_TRUNC);
    const a = fs.getattr(ino);
    expect(a.size).toBe(0);
    expect(tsLess(m0, a.mtime)).toBe(true);
    await fs.release(ino, fh);
  });
});

describe('setattr', () => {
  it('mode, owner, size and times, with ctime updates', async () => {
    const h = makeFs();
    const { fs } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'x'.repeat(10000));
    let prev = fs.getattr(ino);
    let a = await fs.setattr(ino, { mode: 0o4755 });
    expect(a.mode).toBe(S_IFREG | 0o4755);
    expect(tsLess(prev.ctime, a.ctime)).toBe(true);
    expect(a.mtime).toEqual(prev.mtime);
    // chown without a mode clears set-user-ID (and set-group-ID when group-executable).
    await fs.setattr(ino, { mode: 0o6755 });
    a = await fs.setattr(ino, { uid: 7, gid: 8 });
    expect(a.uid).toBe(7);
    expect(a.gid).toBe(8);
    expect(a.mode & (S_ISUID | S_ISGID)).toBe(0);
    // S_ISGID without group-exec (mandatory-locking marker) survives chown.
    await fs.setattr(ino, { mode: 0o2644 });
    expect((await fs.setattr(ino, { gid: 9 })).mode & S_ISGID).toBe(S_ISGID);
    // Truncate down: size, blocks, mtime and ctime.
    prev = fs.getattr(ino);
    expect(prev.blocks).toBe(24);
    a = await fs.setattr(ino, { size: 100 });
    expect(a.size).toBe(100);
    expect(a.blocks).toBe(8);
    expect(tsLess(prev.mtime, a.mtime)).toBe(true);
    expect(a.ctime).toEqual(a.mtime);
    const tail = await fs.read(ino, fh, 0, 200);
    expect(tail.length).toBe(100);
    // Extend: the new range reads as zeros, no blocks allocated.
    a = await fs.setattr(ino, { size: 3 * PAGE_SIZE });
    expect(a.size).toBe(3 * PAGE_SIZE);
    expect(a.blocks).toBe(8);
    const r = await fs.read(ino, fh, 90, 20);
    expect(r.subarray(0, 10).toString()).toBe('x'.repeat(10));
    expect(r.subarray(10).every((b) => b === 0)).toBe(true);
    // Explicit times and UTIME_NOW.
    a = await fs.setattr(ino, { atime: { sec: 5, nsec: 6 }, mtime: { sec: 7, nsec: 999_999_999 } });
    expect(a.atime).toEqual({ sec: 5, nsec: 6 });
    expect(a.mtime).toEqual({ sec: 7, nsec: 999_999_999 });
    prev = a;
    a = await fs.setattr(ino, { mtime: 'now' });
    expect(tsLess(prev.ctime, a.mtime)).toBe(true);
    expect(a.atime).toEqual({ sec: 5, nsec: 6 });
    a = await fs.setattr(ino, { ctime: { sec: 1, nsec: 2 } });
    expect(a.ctime).toEqual({ sec: 1, nsec: 2 });
    // An empty change set changes nothing.
    expect(await fs.setattr(ino, {})).toEqual(a);
  });

  it('rejects bad setattr input without changing anything', async () => {
    const { fs } = makeFs();
    const { ino } = await mkfile(fs, ROOT, 'f', 'abc');
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    const s = fs.symlink('t', ROOT, 's', ctx);
    const before = fs.getattr(ino);
    expect(await errnoOf(() => fs.setattr(ino, { size: -1 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { size: 1.5 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { size: MAX_FILE_SIZE + 1 }))).toBe('EFBIG');
    expect(await errnoOf(() => fs.setattr(ino, { mode: 0o4000000 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { uid: -1 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { gid: 2 ** 32 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { atime: { sec: 1, nsec: 1e9 } }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { mtime: 'later' as unknown as 'now' }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { ctime: 'now' as unknown as Timespec }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, { size: 1, mode: -1 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(ino, null as unknown as {}))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(d.ino, { size: 0 }))).toBe('EISDIR');
    expect(await errnoOf(() => fs.setattr(s.ino, { size: 0 }))).toBe('EINVAL');
    expect(await errnoOf(() => fs.setattr(999, { mode: 0o600 }))).toBe('ENOENT');
    expect(fs.getattr(ino)).toEqual(before);
  });
});

describe('lookup counting and inode lifetime', () => {
  it('an unlinked but open file stays readable until released, then its store is destroyed', async () => {
    const h = makeFs();
    const { fs, backend } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'persist');
    expect(fs.inodeState(ino)).toEqual({ nlink: 1, nlookup: 1, opens: 1, pins: 0 });
    fs.unlink(ROOT, 'f');
    fs.forget(ino, 1);
    expect(errnoOfSync(() => fs.lookup(ROOT, 'f'))).toBe('ENOENT');
    expect(fs.has(ino)).toBe(true);
    expect(fs.getattr(ino).nlink).toBe(0);
    expect(await readAll(fs, ino, fh)).toBe('persist');
    expect(await fs.write(ino, fh, 7, Buffer.from('!'))).toBe(1);
    expect(await readAll(fs, ino, fh)).toBe('persist!');
    expect(backend.has(ino)).toBe(true);
    expect(backend.usage().usedBytes).toBe(PAGE_SIZE);
    await fs.release(ino, fh);
    expect(fs.has(ino)).toBe(false);
    expect(h.made.get(ino)!.destroyed).toBe(true);
    expect(backend.has(ino)).toBe(false);
    expect(backend.usage().usedBytes).toBe(0);
    expect(errnoOfSync(() => fs.getattr(ino))).toBe('ENOENT');
    expect(await errnoOf(() => fs.read(ino, fh, 0, 1))).toBe('EBADF');
    // The last change frees the inode.
    expect(h.changes.at(-1)!.records).toEqual([{ t: 'free', ino }]);
  });

  it('an unlinked but looked-up inode stays until forgotten (open by ino still works)', async () => {
    const h = makeFs();
    const { fs, backend } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'data');
    await fs.release(ino, fh);
    fs.lookup(ROOT, 'f');
    fs.lookup(ROOT, 'f');
    expect(fs.inodeState(ino)!.nlookup).toBe(3);
    fs.unlink(ROOT, 'f');
    fs.forget(ino, 2);
    expect(fs.has(ino)).toBe(true);
    const o = await fs.open(ino, fsc.O_RDONLY);
    expect(await readAll(fs, ino, o.fh)).toBe('data');
    fs.forget(ino, 1); // lookups gone, still open
    expect(fs.has(ino)).toBe(true);
    await fs.release(ino, o.fh);
    expect(fs.has(ino)).toBe(false);
    expect(backend.has(ino)).toBe(false);
    expect(h.made.get(ino)!.destroyed).toBe(true);
  });

  it('a linked inode survives forget; a file with another link survives unlink', async () => {
    const { fs } = makeFs();
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'x');
    await fs.release(ino, fh);
    fs.forget(ino, 1);
    expect(fs.has(ino)).toBe(true);
    expect(fs.inodeState(ino)!.nlookup).toBe(0);
    fs.link(ino, ROOT, 'g'); // counts a lookup
    fs.unlink(ROOT, 'f');
    expect(fs.has(ino)).toBe(true);
    fs.forget(ino, 1);
    expect(fs.has(ino)).toBe(true);
    fs.unlink(ROOT, 'g'); // nlink 0, nlookup 0, no handle: freed at once
    expect(fs.has(ino)).toBe(false);
  });

  it('lookup, readdirplus, create, mknod, mkdir, symlink and link each count one lookup', async () => {
    const { fs } = makeFs();
    const f = await fs.create(ROOT, 'f', 0o644, 0, ctx);
    const n = fs.mknod(ROOT, 'n', 0o644, 0, ctx);
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    const s = fs.symlink('t', ROOT, 's', ctx);
    fs.link(n.ino, ROOT, 'n2');
    fs.lookup(ROOT, 'd');
    expect(fs.inodeState(f.entry.ino)!.nlookup).toBe(1);
    expect(fs.inodeState(n.ino)!.nlookup).toBe(2);
    expect(fs.inodeState(d.ino)!.nlookup).toBe(2);
    expect(fs.inodeState(s.ino)!.nlookup).toBe(1);
    // Over-forgetting is counted as a bug and clamps; unknown inodes are ignored.
    fs.forget(s.ino, 5);
    expect(fs.inodeState(s.ino)!.nlookup).toBe(0);
    fs.forget(12345, 1);
    fs.forget(NaN, 1);
    expect(fs.badForgets).toBe(3);
    fs.forgetMulti([{ ino: n.ino, nlookup: 2 }, { ino: d.ino, nlookup: 2 }]);
    expect(fs.inodeState(n.ino)!.nlookup).toBe(0);
    expect(fs.inodeState(d.ino)!.nlookup).toBe(0);
  });

  it('a removed directory with an open handle lists only . and .. and refuses new entries', async () => {
    const { fs } = makeFs();
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    const { fh } = fs.opendir(d.ino);
    fs.rmdir(ROOT, 'd');
    fs.forget(d.ino, 1);
    expect(fs.has(d.ino)).toBe(true);
    const seen: string[] = [];
    fs.readdir(d.ino, fh, 0, (e) => (seen.push(e.name), true));
    expect(seen).toEqual(['.', '..']);
    expect(errnoOfSync(() => fs.mkdir(d.ino, 'x', 0o755, ctx))).toBe('ENOENT');
    expect(await errnoOf(() => fs.create(d.ino, 'x', 0o644, 0, ctx))).toBe('ENOENT');
    expect(errnoOfSync(() => fs.lookup(d.ino, 'x'))).toBe('ENOENT');
    await fs.releasedir(d.ino, fh);
    expect(fs.has(d.ino)).toBe(false);
  });

  it('an inode is not freed while a write to it is in flight', async () => {
    const h = makeFs();
    const { fs } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f');
    const fd = h.made.get(ino)!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const origWrite = fd.write.bind(fd);
    fd.write = async (off: number, data: Uint8Array) => {
      await gate;
      return origWrite(off, data);
    };
    const w = fs.write(ino, fh, 0, Buffer.from('abc'));
    fs.unlink(ROOT, 'f');
    fs.forget(ino, 1);
    const rel = fs.release(ino, fh); // handle gone, but the write pins the inode
    await Promise.resolve();
    expect(fs.has(ino)).toBe(true);
    expect(fd.destroyed).toBe(false);
    release();
    expect(await w).toBe(3);
    await rel;
    expect(fs.has(ino)).toBe(false);
    await fs.settle();
    expect(fd.destroyed).toBe(true);
  });
});

describe('readdir', () => {
  it('offsets are stable when entries are unlinked between calls', async () => {
    const { fs } = makeFs();
    for (let i = 0; i < 20; i++) fs.mknod(ROOT, `f${i}`, 0o644, 0, ctx);
    const { fh } = fs.opendir(ROOT);
    const got: string[] = [];
    let off = 0;
    // Read 5 entries (., .., f0, f1, f2).
    let n = 0;
    fs.readdir(ROOT, fh, off, (e) => {
      if (n++ === 5) return false;
      got.push(e.name);
      off = e.offset;
      return true;
    });
    expect(got).toEqual(['.', '..', 'f0', 'f1', 'f2']);
    // Concurrently unlink already-returned and not-yet-returned entries, including the one at `off`.
    fs.unlink(ROOT, 'f2');
    fs.unlink(ROOT, 'f0');
    fs.unlink(ROOT, 'f3');
    fs.unlink(ROOT, 'f10');
    fs.readdir(ROOT, fh, off, (e) => (got.push(e.name), true));
    const expected = ['.', '..', 'f0', 'f1', 'f2', ...Array.from({ length: 20 }, (_, i) => `f${i}`).slice(4).filter((x) => x !== 'f10')];
    expect(got).toEqual(expected);
    // Re-reading from an old offset resumes at the same place.
    const again: string[] = [];
    fs.readdir(ROOT, fh, off, (e) => (again.push(e.name), true));
    expect(again).toEqual(expected.slice(5));
    await fs.releasedir(ROOT, fh);
  });

  it('offsets survive many deletions (index compaction)', () => {
    const { fs } = makeFs();
    for (let i = 0; i < 500; i++) fs.mknod(ROOT, `f${i}`, 0o644, 0, ctx);
    const all = listDir(fs, ROOT);
    const mid = all.find((e) => e.name === 'f250')!;
    for (let i = 0; i < 400; i++) if (i !== 250 && i !== 260) fs.unlink(ROOT, `f${i}`);
    const { fh } = fs.opendir(ROOT);
    const rest: string[] = [];
    fs.readdir(ROOT, fh, mid.offset, (e) => (rest.push(e.name), true));
    expect(rest).toEqual(['f260', ...Array.from({ length: 100 }, (_, i) => `f${400 + i}`)]);
    expect(names(listDir(fs, ROOT, 7)).length).toBe(2 + 102);
  });

  it('readdirplus counts a lookup only for the entries that fitted, never for . and ..', () => {
    const { fs } = makeFs();
    const inos = ['a', 'b', 'c', 'd'].map((n) => fs.mknod(ROOT, n, 0o644, 0, ctx).ino);
    for (const ino of inos) fs.forget(ino, 1);
    const { fh } = fs.opendir(ROOT);
    const got: DirEntryPlus[] = [];
    let room = 4; // '.', '..', 'a', 'b' fit
    fs.readdirplus(ROOT, fh, 0, (e) => {
      if (room === 0) return false;
      room--;
      got.push(e);
      return true;
    });
    expect(names(got)).toEqual(['.', '..', 'a', 'b']);
    expect(got[2]!.entry.attr.mode).toBe(S_IFREG | 0o644);
    expect(got[2]!.entry.ino).toBe(inos[0]);
    expect(inos.map((i) => fs.inodeState(i)!.nlookup)).toEqual([1, 1, 0, 0]);
    expect(fs.inodeState(ROOT)!.nlookup).toBe(0);
    const more: DirEntryPlus[] = [];
    fs.readdirplus(ROOT, fh, got.at(-1)!.offset, (e) => (more.push(e), true));
    expect(names(more)).toEqual(['c', 'd']);
    expect(inos.map((i) => fs.inodeState(i)!.nlookup)).toEqual([1, 1, 1, 1]);
  });

  it('plain readdir reports types and counts no lookups', () => {
    const { fs } = makeFs();
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    fs.symlink('x', ROOT, 's', ctx);
    fs.forget(d.ino, 1);
    const es = listDir(fs, ROOT);
    expect(es.map((e) => [e.name, e.mode & 0o170000])).toEqual([
      ['.', S_IFDIR],
      ['..', S_IFDIR],
      ['d', S_IFDIR],
      ['s', S_IFLNK],
    ]);
    expect(fs.inodeState(d.ino)!.nlookup).toBe(0);
    const sub = listDir(fs, d.ino);
    expect(sub.map((e) => [e.name, e.ino])).toEqual([
      ['.', d.ino],
      ['..', ROOT],
    ]);
  });
});

describe('data ops through the filesystem', () => {
  it('fallocate, punch and SEEK_DATA/SEEK_HOLE', async () => {
    const { fs } = makeFs();
    const { ino, fh } = await mkfile(fs, ROOT, 'f');
    await fs.write(ino, fh, 10 * PAGE_SIZE, Buffer.alloc(PAGE_SIZE, 1));
    await fs.fallocate(ino, fh, 0, 20 * PAGE_SIZE, 2 * PAGE_SIZE);
    expect(fs.getattr(ino).size).toBe(22 * PAGE_SIZE);
    expect(fs.getattr(ino).blocks).toBe(3 * 8);
    expect(fs.lseek(ino, fh, 0, SEEK_DATA)).toBe(10 * PAGE_SIZE);
    expect(fs.lseek(ino, fh, 10 * PAGE_SIZE + 5, SEEK_HOLE)).toBe(11 * PAGE_SIZE);
    expect(fs.lseek(ino, fh, 11 * PAGE_SIZE, SEEK_DATA)).toBe(20 * PAGE_SIZE);
    expect(fs.lseek(ino, fh, 20 * PAGE_SIZE, SEEK_HOLE)).toBe(22 * PAGE_SIZE);
    expect(errnoOfSync(() => fs.lseek(ino, fh, 22 * PAGE_SIZE, SEEK_DATA))).toBe('ENXIO');
    expect(errnoOfSync(() => fs.lseek(ino, fh, 0, SEEK_SET))).toBe('EINVAL');
    const m0 = fs.getattr(ino).mtime;
    await fs.fallocate(ino, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * PAGE_SIZE, PAGE_SIZE);
    const a = fs.getattr(ino);
    expect(a.size).toBe(22 * PAGE_SIZE);
    expect(a.blocks).toBe(2 * 8);
    expect(tsLess(m0, a.mtime)).toBe(true);
    expect(fs.lseek(ino, fh, 0, SEEK_DATA)).toBe(20 * PAGE_SIZE);
    await fs.fallocate(ino, fh, FALLOC_FL_ZERO_RANGE, 30 * PAGE_SIZE, 10);
    expect(fs.getattr(ino).size).toBe(30 * PAGE_SIZE + 10);
    expect(await errnoOf(() => fs.fallocate(ino, fh, FALLOC_FL_PUNCH_HOLE, 0, 1))).toBe('EOPNOTSUPP');
    expect(await errnoOf(() => fs.fallocate(ino, fh, FALLOC_FL_COLLAPSE_RANGE, 0, PAGE_SIZE))).toBe('EOPNOTSUPP');
    expect(await errnoOf(() => fs.fallocate(ino, fh, 0, 0, 0))).toBe('EINVAL');
    expect(await errnoOf(() => fs.fallocate(ino, fh, 0, MAX_FILE_SIZE, 1))).toBe('EFBIG');
    expect(await errnoOf(() => fs.write(ino, fh, MAX_FILE_SIZE, Buffer.from('x')))).toBe('EFBIG');
    expect(fs.getattr(ino).size).toBe(30 * PAGE_SIZE + 10);
  });

  it('ENOSPC from the store reaches the caller and changes nothing', async () => {
    const { fs } = makeFs({ capacityBytes: 2 * PAGE_SIZE });
    const { ino, fh } = await mkfile(fs, ROOT, 'f');
    await fs.write(ino, fh, 0, Buffer.alloc(PAGE_SIZE, 1));
    const before = fs.getattr(ino);
    expect(await errnoOf(() => fs.write(ino, fh, PAGE_SIZE, Buffer.alloc(2 * PAGE_SIZE, 2)))).toBe('ENOSPC');
    expect(fs.getattr(ino)).toEqual(before);
    expect(fs.statfs().bfree).toBe(1);
    await fs.write(ino, fh, PAGE_SIZE, Buffer.alloc(PAGE_SIZE, 2));
    expect(fs.statfs().bfree).toBe(0);
  });

  it('statfs reports capacity, usage and inode counts', async () => {
    const { fs } = makeFs({ capacityBytes: 100 * PAGE_SIZE, maxInodes: 10 });
    const s0 = fs.statfs();
    expect(s0).toEqual({ bsize: 4096, frsize: 4096, blocks: 100, bfree: 100, bavail: 100, files: 10, ffree: 9, favail: 9, namemax: 255 });
    const { ino, fh } = await mkfile(fs, ROOT, 'f');
    await fs.write(ino, fh, 0, Buffer.alloc(3 * PAGE_SIZE + 1));
    const s1 = fs.statfs();
    expect(s1.bfree).toBe(96);
    expect(s1.ffree).toBe(8);
    for (let i = 0; i < 8; i++) fs.mknod(ROOT, `g${i}`, 0o644, 0, ctx);
    expect(fs.statfs().ffree).toBe(0);
    expect(errnoOfSync(() => fs.mkdir(ROOT, 'full', 0o755, ctx))).toBe('ENOSPC');
    expect(errnoOfSync(() => fs.lookup(ROOT, 'full'))).toBe('ENOENT');
    // Unlimited capacity still gives finite numbers.
    const u = makeFs({ capacityBytes: Infinity });
    expect(Number.isFinite(u.fs.statfs().blocks)).toBe(true);
  });
});

describe('errno of bad input', () => {
  it('names: ENAMETOOLONG, EINVAL, ENOENT, EEXIST', async () => {
    const { fs } = makeFs();
    const long = 'x'.repeat(256);
    const okLong = 'y'.repeat(255);
    const multibyte = 'é'.repeat(128); // 256 bytes
    expect(fs.mknod(ROOT, okLong, 0o644, 0, ctx).ino).toBeGreaterThan(1);
    const ops: [string, (name: string) => unknown][] = [
      ['lookup', (n) => fs.lookup(ROOT, n)],
      ['mknod', (n) => fs.mknod(ROOT, n, 0o644, 0, ctx)],
      ['mkdir', (n) => fs.mkdir(ROOT, n, 0o755, ctx)],
      ['symlink', (n) => fs.symlink('t', ROOT, n, ctx)],
      ['unlink', (n) => fs.unlink(ROOT, n)],
      ['rmdir', (n) => fs.rmdir(ROOT, n)],
      ['link', (n) => fs.link(fs.resolvePath(okLong), ROOT, n)],
      ['rename-src', (n) => fs.rename(ROOT, n, ROOT, 'z')],
      ['rename-dst', (n) => fs.rename(ROOT, okLong, ROOT, n)],
      ['create', (n) => fs.create(ROOT, n, 0o644, 0, ctx)],
    ];
    for (const [op, f] of ops) {
      expect(await errnoOf(() => f(long)), op).toBe('ENAMETOOLONG');
      expect(await errnoOf(() => f(multibyte)), op).toBe('ENAMETOOLONG');
      expect(await errnoOf(() => f('a/b')), op).toBe('EINVAL');
      expect(await errnoOf(() => f('a\0b')), op).toBe('EINVAL');
      expect(await errnoOf(() => f('')), op).toBe('ENOENT');
      expect(await errnoOf(() => f(42 as unknown as string)), op).toBe('EINVAL');
    }
    expect(errnoOfSync(() => fs.mknod(ROOT, '.', 0o644, 0, ctx))).toBe('EEXIST');
    expect(errnoOfSync(() => fs.mkdir(ROOT, '..', 0o755, ctx))).toBe('EEXIST');
    expect(errnoOfSync(() => fs.symlink('t', ROOT, '.', ctx))).toBe('EEXIST');
    expect(errnoOfSync(() => fs.mknod(ROOT, okLong, 0o644, 0, ctx))).toBe('EEXIST');
    expect(errnoOfSync(() => fs.unlink(ROOT, '.'))).toBe('EISDIR');
    expect(errnoOfSync(() => fs.unlink(ROOT, '..'))).toBe('EISDIR');
    expect(errnoOfSync(() => fs.rmdir(ROOT, '.'))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.rmdir(ROOT, '..'))).toBe('ENOTEMPTY');
    // Only the one valid entry exists.
    expect(names(listDir(fs, ROOT))).toEqual(['.', '..', okLong]);
  });

  it('inodes, handles, types and arguments', async () => {
    const { fs } = makeFs();
    const { ino: f, fh } = await mkfile(fs, ROOT, 'f', 'abc');
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx).ino;
    const s = fs.symlink('t', ROOT, 's', ctx).ino;
    const dfh = fs.opendir(d).fh;
    const cases: [string, () => unknown, string][] = [
      ['getattr unknown', () => fs.getattr(999), 'ENOENT'],
      ['getattr bad', () => fs.getattr('1' as unknown as number), 'ENOENT'],
      ['lookup in file', () => fs.lookup(f, 'x'), 'ENOTDIR'],
      ['lookup missing', () => fs.lookup(ROOT, 'nope'), 'ENOENT'],
      ['mkdir in file', () => fs.mkdir(f, 'x', 0o755, ctx), 'ENOTDIR'],
      ['mkdir in unknown', () => fs.mkdir(999, 'x', 0o755, ctx), 'ENOENT'],
      ['mkdir exists', () => fs.mkdir(ROOT, 'd', 0o755, ctx), 'EEXIST'],
      ['mkdir bad mode', () => fs.mkdir(ROOT, 'x', -1, ctx), 'EINVAL'],
      ['mkdir bad ctx', () => fs.mkdir(ROOT, 'x', 0o755, { uid: -1, gid: 0 }), 'EINVAL'],
      ['mkdir bad umask', () => fs.mkdir(ROOT, 'x', 0o755, { uid: 0, gid: 0, umask: 0o1777 }), 'EINVAL'],
      ['unlink dir', () => fs.unlink(ROOT, 'd'), 'EISDIR'],
      ['unlink missing', () => fs.unlink(ROOT, 'nope'), 'ENOENT'],
      ['rmdir file', () => fs.rmdir(ROOT, 'f'), 'ENOTDIR'],
      ['rmdir missing', () => fs.rmdir(ROOT, 'nope'), 'ENOENT'],
      ['link dir', () => fs.link(d, ROOT, 'x'), 'EPERM'],
      ['link exists', () => fs.link(f, ROOT, 'd'), 'EEXIST'],
      ['link into file', () => fs.link(f, f, 'x'), 'ENOTDIR'],
      ['link unknown', () => fs.link(999, ROOT, 'x'), 'ENOENT'],
      ['readlink file', () => fs.readlink(f), 'EINVAL'],
      ['symlink empty target', () => fs.symlink('', ROOT, 'x', ctx), 'ENOENT'],
      ['symlink long target', () => fs.symlink('a'.repeat(4096), ROOT, 'x', ctx), 'ENAMETOOLONG'],
      ['symlink NUL target', () => fs.symlink('a\0', ROOT, 'x', ctx), 'EINVAL'],
      ['open dir', () => fs.open(d, 0), 'EISDIR'],
      ['open symlink', () => fs.open(s, 0), 'ELOOP'],
      ['open bad flags', () => fs.open(f, -1), 'EINVAL'],
      ['opendir file', () => fs.opendir(f), 'ENOTDIR'],
      ['read bad fh', () => fs.read(f, 999, 0, 1), 'EBADF'],
      ['read dir fh', () => fs.read(d, dfh, 0, 1), 'EBADF'],
      ['read fh of other inode', () => fs.read(d, fh, 0, 1), 'EBADF'],
      ['read negative', () => fs.read(f, fh, -1, 1), 'EINVAL'],
      ['read bad length', () => fs.read(f, fh, 0, 0.5), 'EINVAL'],
      ['write negative', () => fs.write(f, fh, -1, Buffer.from('x')), 'EINVAL'],
      ['write not bytes', () => fs.write(f, fh, 0, 'x' as unknown as Buffer), 'EINVAL'],
      ['readdir file handle', () => fs.readdir(d, fh, 0, () => true), 'EBADF'],
      ['readdir bad offset', () => fs.readdir(d, dfh, -1, () => true), 'EINVAL'],
      ['readdir no emit', () => fs.readdir(d, dfh, 0, undefined as unknown as () => boolean), 'EINVAL'],
      ['release dir handle', () => fs.release(d, dfh), 'EBADF'],
      ['releasedir file handle', () => fs.releasedir(f, fh), 'EBADF'],
      ['lseek dir', () => fs.lseek(d, dfh, 0, SEEK_DATA), 'EBADF'],
      ['lseek bad offset', () => fs.lseek(f, fh, NaN, SEEK_DATA), 'EINVAL'],
      ['fallocate bad mode', () => fs.fallocate(f, fh, -1, 0, 1), 'EINVAL'],
      ['access bad mask', () => fs.access(f, 8), 'EINVAL'],
      ['fileData dir', () => fs.fileData(d), 'EISDIR'],
      ['fileData symlink', () => fs.fileData(s), 'EINVAL'],
      ['create bad mode', () => fs.create(ROOT, 'x', S_IFDIR | 0o755, 0, ctx), 'EINVAL'],
      ['rename bad flags', () => fs.rename(ROOT, 'f', ROOT, 'g', 8), 'EINVAL'],
    ];
    for (const [what, fn, code] of cases) expect(await errnoOf(fn), what).toBe(code);
    // Nothing was created by the failures.
    expect(names(listDir(fs, ROOT))).toEqual(['.', '..', 'f', 'd', 's']);
    expect(await readAll(fs, f, fh)).toBe('abc');
  });

  it('constructor and snapshot input validation', () => {
    expect(errnoOfSync(() => new Filesystem(undefined as never))).toBe('EINVAL');
    const h = makeFs();
    expect(errnoOfSync(() => Filesystem.restore({} as never, h.options))).toBe('EINVAL');
    const snap = h.fs.snapshot();
    const broken = structuredClone(snap);
    broken.inodes[0]!.entries = [['x', 77, 3]];
    broken.inodes[0]!.nextCookie = 4;
    expect(errnoOfSync(() => Filesystem.restore(broken, h.options))).toBe('EINVAL');
  });
});

describe('read-only mode and journal failure', () => {
  it('EROFS for mutations when read-only; reads still work', async () => {
    const { fs } = makeFs();
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'abc');
    fs.setReadOnly(true);
    expect(errnoOfSync(() => fs.mknod(ROOT, 'x', 0o644, 0, ctx))).toBe('EROFS');
    expect(errnoOfSync(() => fs.unlink(ROOT, 'f'))).toBe('EROFS');
    expect(errnoOfSync(() => fs.rename(ROOT, 'f', ROOT, 'g'))).toBe('EROFS');
    expect(await errnoOf(() => fs.write(ino, fh, 0, Buffer.from('x')))).toBe('EROFS');
    expect(await errnoOf(() => fs.setattr(ino, { mode: 0o600 }))).toBe('EROFS');
    expect(await errnoOf(() => fs.open(ino, fsc.O_RDWR))).toBe('EROFS');
    expect(errnoOfSync(() => fs.access(ino, 2))).toBe('EROFS');
    expect(await readAll(fs, ino, fh)).toBe('abc');
    fs.setReadOnly(false);
    fs.mknod(ROOT, 'x', 0o644, 0, ctx);
  });

  it('a throwing journal hook turns the filesystem read-only and reports EIO', () => {
    let fail = false;
    const h = makeFs({
      onMetadataChange: () => {
        if (fail) throw new Error('disk full');
      },
    });
    h.fs.mknod(ROOT, 'a', 0o644, 0, ctx);
    fail = true;
    expect(errnoOfSync(() => h.fs.mknod(ROOT, 'b', 0o644, 0, ctx))).toBe('EIO');
    expect(h.fs.readOnly).toBe(true);
    expect(errnoOfSync(() => h.fs.mknod(ROOT, 'c', 0o644, 0, ctx))).toBe('EROFS');
  });
});

describe('control socket support', () => {
  it('resolvePath does not count lookups and does not follow symlinks', async () => {
    const { fs } = makeFs();
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    const e = fs.mkdir(d.ino, 'e', 0o755, ctx);
    const { ino } = await mkfile(fs, e.ino, 'f');
    fs.symlink('e', d.ino, 'l', ctx);
    const nl = fs.inodeState(ino)!.nlookup;
    expect(fs.resolvePath('d/e/f')).toBe(ino);
    expect(fs.resolvePath('/d//e/./f')).toBe(ino);
    expect(fs.resolvePath('d/e/../e/f')).toBe(ino);
    expect(fs.resolvePath('')).toBe(ROOT);
    expect(fs.resolvePath('/')).toBe(ROOT);
    expect(fs.resolvePath('..')).toBe(ROOT);
    expect(fs.inodeState(ino)!.nlookup).toBe(nl);
    expect(errnoOfSync(() => fs.resolvePath('d/l/f'))).toBe('ENOTDIR');
    expect(errnoOfSync(() => fs.resolvePath('d/e/f/g'))).toBe('ENOTDIR');
    expect(errnoOfSync(() => fs.resolvePath('d/nope'))).toBe('ENOENT');
    expect(errnoOfSync(() => fs.resolvePath('d/' + 'x'.repeat(300)))).toBe('ENAMETOOLONG');
    expect(errnoOfSync(() => fs.resolvePath(5 as unknown as string))).toBe('EINVAL');
  });

  it('serverChange pins the inode, journals the size and updates mtime/ctime', async () => {
    const h = makeFs();
    const { fs } = h;
    const { ino, fh } = await mkfile(fs, ROOT, 'f', 'hello world');
    const a0: Attr = fs.getattr(ino);
    const r = await fs.serverChange(ino, async (fd) => {
      await fd.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 5);
      await fd.setSize(8);
      return 'done';
    });
    expect(r).toBe('done');
    expect(h.changes.at(-1)!.op).toBe('server-change');
    expect(h.changes.at(-1)!.records).toEqual([{ t: 'attr', ino, set: { size: 8, mtime: expect.anything(), ctime: expect.anything() } }]);
    const a1 = fs.getattr(ino);
    expect(a1.size).toBe(8);
    expect(tsLess(a0.mtime, a1.mtime)).toBe(true);
    expect((await fs.read(ino, fh, 0, 100)).toString('latin1')).toBe('\0\0\0\0\0 wo');
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
    // A result with changed: false leaves the times alone.
    const a2 = fs.getattr(ino);
    expect(await fs.serverChange(ino, async () => ({ changed: false }))).toEqual({ changed: false });
    expect(fs.getattr(ino).mtime).toEqual(a2.mtime);
    // Pinned: an inode unlinked and forgotten during the change is freed only afterwards.
    await fs.release(ino, fh);
    let during: boolean | undefined;
    await fs.serverChange(ino, async (fd) => {
      fs.unlink(ROOT, 'f');
      fs.forget(ino, 1);
      await fd.write(0, Buffer.from('x'));
      during = fs.has(ino);
    });
    expect(during).toBe(true);
    expect(fs.has(ino)).toBe(false);
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
  });

  it('noteDataChange journals changes made directly through fileData', async () => {
    const h = makeFs();
    const { fs } = h;
    const { ino } = await mkfile(fs, ROOT, 'f', 'hello world');
    // Direct FileData use followed by noteDataChange.
    await fs.fileData(ino).write(100, Buffer.from('z'));
    fs.noteDataChange(ino);
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
  });
});

describe('persistence', () => {
  it('applyChanges rejects a journal that does not fit the snapshot', () => {
    const h = makeFs();
    h.fs.mknod(ROOT, 'a', 0o644, 0, ctx);
    h.fs.unlink(ROOT, 'a');
    const [c1, c2] = h.changes;
    // 'a' is unlinked but still looked up: present with nlink 0.
    expect(applyChanges(h.base, [c1!, c2!]).inodes.map((r) => [r.ino, r.nlink])).toEqual([[1, 2], [2, 0]]);
    expect(errnoOfSync(() => applyChanges(h.base, [c2!]))).toBe('EINVAL'); // seq gap
    expect(errnoOfSync(() => applyChanges(h.base, [c1!, c1!]))).toBe('EINVAL'); // replayed twice
    const later = applyChanges(h.base, [c1!]);
    expect(errnoOfSync(() => applyChanges(later, [{ ...c2!, seq: 2, records: [{ t: 'unlink', dir: 1, name: 'zz' }] }]))).toBe('EINVAL');
    expect(errnoOfSync(() => applyChanges(later, [{ ...c2!, records: [{ t: 'attr', ino: 99, set: {} }] }]))).toBe('EINVAL');
    expect(errnoOfSync(() => applyChanges(later, [{ ...c2!, records: [{ t: 'link', dir: 2, name: 'x', ino: 1, cookie: 9 }] }]))).toBe('EINVAL');
  });


  it('snapshot + journal replay reproduces the state; restore round-trips and frees orphans', async () => {
    const h = makeFs();
    const { fs } = h;
    const d = fs.mkdir(ROOT, 'd', 0o755, ctx);
    const { ino, fh } = await mkfile(fs, d.ino, 'f', 'abc');
    fs.link(ino, ROOT, 'hard');
    fs.symlink('d/f', ROOT, 'sym', ctx);
    const orphan = await mkfile(fs, ROOT, 'orphan', 'gone soon');
    fs.unlink(ROOT, 'orphan');
    fs.rename(ROOT, 'hard', d.ino, 'hard2');
    await fs.setattr(ino, { mode: 0o600, atime: { sec: 1, nsec: 2 } });
    const snap = fs.snapshot();
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    expect(applyChanges(h.base, h.changes)).toEqual(snap);
    expect(h.changes.map((c) => c.seq)).toEqual(h.changes.map((_, i) => i + 1));

    // Restore over the same backend (the stores are reopened by inode number).
    const changes2: unknown[] = [];
    const fs2 = Filesystem.restore(JSON.parse(JSON.stringify(snap)), {
      ...h.options,
      onMetadataChange: (c) => changes2.push(c),
    });
    await fs2.settle();
    expect(fs2.has(orphan.ino)).toBe(false);
    expect(h.backend.has(orphan.ino)).toBe(false);
    expect(changes2).toEqual([{ seq: snap.seq + 1, op: 'restore-orphans', nextIno: snap.nextIno, records: [{ t: 'free', ino: orphan.ino }] }]);
    const f2 = fs2.resolvePath('d/f');
    expect(f2).toBe(ino);
    expect(fs2.getattr(f2)).toEqual({ ...fs.getattr(ino) });
    const o = await fs2.open(f2, fsc.O_RDONLY);
    expect(await readAll(fs2, f2, o.fh)).toBe('abc');
    expect(fs2.readlink(fs2.resolvePath('sym'))).toBe('d/f');
    expect(names(listDir(fs2, fs2.resolvePath('d')))).toEqual(['.', '..', 'f', 'hard2']);
    // Inode numbers continue; never reused.
    const n = fs2.mknod(ROOT, 'new', 0o644, 0, ctx);
    expect(n.ino).toBe(snap.nextIno);
    expect(n.ino).toBeGreaterThan(orphan.ino);
    // readdir cookies continue too: the new entry comes after the old ones.
    expect(names(listDir(fs2, ROOT)).at(-1)).toBe('new');
    void fh;
  });
});
