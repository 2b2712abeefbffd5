// Unit tests of the file-backed store (src/fs/file-store.ts) and its journal (src/fs/journal.ts),
// in-process (no FUSE mount involved): real sparse backing files, real mmap, real st_blocks.

import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openFileStore, SEG_BYTES, SEG_PAGES, type OpenedFileStore } from '../src/fs/file-store.js';
import { Filesystem } from '../src/fs/filesystem.js';
import { fileDataFactory, type CachedFileData } from '../src/fs/file-data.js';
import { PageCache } from '../src/fs/page-cache.js';
import { FsError, PAGE_SIZE } from '../src/fs/types.js';

const dirs: string[] = [];
const opened: OpenedFileStore[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fl-store-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function open(dir: string, capacityBytes?: number): Promise<OpenedFileStore> {
  const o = await openFileStore(dir, { capacityBytes, log: () => undefined });
  opened.push(o);
  return o;
}
/** 512-byte blocks the backing filesystem really allocated for a segment file. */
const blocks = (p: string) => statSync(p).blocks;
const page = (c: number) => Buffer.alloc(PAGE_SIZE, c);

describe('file store: data', () => {
  it('writes and reads pages through the mapping; holes read null', async () => {
    const o = await open(join(tmp(), 's'));
    const s = o.backend.open(2);
    await s.write(PAGE_SIZE + 100, Buffer.from('hello'));
    expect(await s.readPage(0)).toBeNull();
    const p1 = (await s.readPage(1))!;
    expect(p1.subarray(100, 105).toString()).toBe('hello');
    expect(p1.subarray(0, 100).equals(Buffer.alloc(100))).toBe(true);
    expect(s.allocatedPages()).toBe(1);
    // A write spanning two segments (the second mapped on demand).
    const big = randomBytes(3 * PAGE_SIZE);
    const off = SEG_BYTES - PAGE_SIZE - 7;
    await s.write(off, big);
    const back = Buffer.concat([(await s.readPage(SEG_PAGES - 2))!, (await s.readPage(SEG_PAGES - 1))!, (await s.readPage(SEG_PAGES))!, (await s.readPage(SEG_PAGES + 1))!]);
    expect(back.subarray(PAGE_SIZE - 7, PAGE_SIZE - 7 + big.length).equals(big)).toBe(true);
    expect(s.segmentIndexes()).toEqual([0, 1]);
    // readPage returns a copy, not a view of the mapping.
    p1.fill(9);
    expect((await s.readPage(1))!.subarray(100, 105).toString()).toBe('hello');
  });

  it('punch frees the backing file blocks (st_blocks drops) and zeroes partial pages', async () => {
    const o = await open(join(tmp(), 's'));
    const s = o.backend.open(2);
    await s.write(0, Buffer.concat(Array.from({ length: 64 }, (_, i) => page(i + 1))));
    await s.sync();
    const path = s.segmentPath(0);
    const before = blocks(path);
    expect(before).toBeGreaterThanOrEqual(64 * 8);
    await s.punch(4 * PAGE_SIZE + 10, 40 * PAGE_SIZE); // partial page 4, whole 5..43, partial 44
    await s.sync();
    const after = blocks(path);
    expect(before - after).toBeGreaterThanOrEqual(39 * 8);
    expect(s.allocatedPages()).toBe(64 - 39);
    const p4 = (await s.readPage(4))!;
    expect(p4.subarray(0, 10).equals(Buffer.alloc(10, 5))).toBe(true);
    expect(p4.subarray(10).equals(Buffer.alloc(PAGE_SIZE - 10))).toBe(true);
    expect(await s.readPage(5)).toBeNull();
    const p44 = (await s.readPage(44))!;
    expect(p44.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(p44.subarray(10).equals(Buffer.alloc(PAGE_SIZE - 10, 45))).toBe(true);
    expect(s.nextDataPage(5)).toBe(44);
    expect(s.nextHolePage(0)).toBe(5);
    expect(s.nextHolePage(44)).toBe(64);
    // Writing into the punched range again reads back what was written, zeros around it.
    await s.write(6 * PAGE_SIZE + 1, Buffer.from([7]));
    const p6 = (await s.readPage(6))!;
    expect(p6[0]).toBe(0);
    expect(p6[1]).toBe(7);
    expect(p6.subarray(2).equals(Buffer.alloc(PAGE_SIZE - 2))).toBe(true);
  });

  it('punching a whole segment removes its backing file', async () => {
    const o = await open(join(tmp(), 's'));
    const s = o.backend.open(3);
    await s.write(SEG_BYTES + 5, Buffer.from('x'));
    expect(existsSync(s.segmentPath(1))).toBe(true);
    await s.punch(SEG_BYTES, SEG_BYTES);
    expect(existsSync(s.segmentPath(1))).toBe(false);
    expect(s.allocatedPages()).toBe(0);
    expect(s.nextDataPage(0)).toBe(-1);
  });

  it('truncate drops pages and backing blocks; old data never resurfaces on re-extension', async () => {
    const o = await open(join(tmp(), 's'));
    const s = o.backend.open(2);
    await s.write(0, Buffer.concat(Array.from({ length: 32 }, () => page(0xab))));
    await s.write(SEG_BYTES, page(0xcd));
    await s.sync();
    const before = blocks(s.segmentPath(0));
    await s.truncate(3 * PAGE_SIZE + 100);
    await s.sync();
    expect(existsSync(s.segmentPath(1))).toBe(false);
    expect(blocks(s.segmentPath(0))).toBeLessThan(before);
    expect(statSync(s.segmentPath(0)).size).toBe(SEG_BYTES);
    expect(s.allocatedPages()).toBe(4);
    const p3 = (await s.readPage(3))!;
    expect(p3.subarray(0, 100).equals(Buffer.alloc(100, 0xab))).toBe(true);
    expect(p3.subarray(100).equals(Buffer.alloc(PAGE_SIZE - 100))).toBe(true);
    expect(await s.readPage(4)).toBeNull();
    // Re-extend by writing far away: the dropped pages stay holes and read zero.
    await s.write(20 * PAGE_SIZE, Buffer.from('z'));
    expect(await s.readPage(10)).toBeNull();
    expect(s.nextDataPage(4)).toBe(20);
  });

  it('allocate really allocates zero pages in the backing file; ENOSPC stores nothing', async () => {
    const o = await open(join(tmp(), 's'), 16 * PAGE_SIZE);
    const s = o.backend.open(2);
    await s.allocate(0, 10 * PAGE_SIZE);
    await s.sync();
    expect(s.allocatedPages()).toBe(10);
    expect(blocks(s.segmentPath(0))).toBeGreaterThanOrEqual(80);
    expect((await s.readPage(9))!.equals(Buffer.alloc(PAGE_SIZE))).toBe(true);
    expect(o.backend.usage().usedBytes).toBe(10 * PAGE_SIZE);
    await expect(s.write(10 * PAGE_SIZE, Buffer.alloc(7 * PAGE_SIZE, 1))).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await s.readPage(10)).toBeNull();
    expect(o.backend.usage().usedBytes).toBe(10 * PAGE_SIZE);
    await s.write(10 * PAGE_SIZE, Buffer.alloc(6 * PAGE_SIZE, 1));
    await s.punch(0, 10 * PAGE_SIZE);
    expect(o.backend.usage().usedBytes).toBe(6 * PAGE_SIZE);
    await s.destroy();
    expect(o.backend.usage().usedBytes).toBe(0);
    expect(existsSync(s.dir)).toBe(false);
  });
});

function mkfs(o: OpenedFileStore): Filesystem<CachedFileData> {
  const opts = { backend: o.backend, onMetadataChange: o.onMetadataChange, createFileData: fileDataFactory({ cache: new PageCache({ capacityPages: 64 }) }) };
  const fs = o.snapshot ? Filesystem.restore(o.snapshot, opts) : new Filesystem(opts);
  o.attach(fs);
  return fs;
}

describe('file store: metadata, reopen, format and lock', () => {
  it('reopen after a clean close restores tree, attributes, data and allocation', async () => {
    const dir = join(tmp(), 's');
    let o = await open(dir);
    let fs = mkfs(o);
    const d = fs.mkdir(1, 'dir', 0o750);
    const c = await fs.create(d.ino, 'f', 0o100640, 0);
    const data = randomBytes(3 * PAGE_SIZE + 17);
    await fs.write(c.entry.ino, c.fh, 100 * PAGE_SIZE, data);
    await fs.fallocate(c.entry.ino, c.fh, 1 /* KEEP_SIZE */, 200 * PAGE_SIZE, 2 * PAGE_SIZE);
    await fs.release(c.entry.ino, c.fh);
    fs.symlink('dir/f', 1, 'ln');
    const before = fs.getattr(c.entry.ino);
    await fs.settle();
    await o.close();
    opened.splice(opened.indexOf(o), 1);

    o = await open(dir);
    expect(o.info.clean).toBe(true);
    fs = mkfs(o);
    const ino = fs.resolvePath('dir/f');
    const after = fs.getattr(ino);
    expect(after).toEqual(before);
    expect(after.blocks).toBe((4 + 2) * 8);
    expect(fs.readlink(fs.resolvePath('ln'))).toBe('dir/f');
    const h = await fs.open(ino, 0);
    const back = await fs.read(ino, h.fh, 100 * PAGE_SIZE, data.length);
    expect(Buffer.from(back).equals(data)).toBe(true);
    expect(fs.lseek(ino, h.fh, 0, 3 /* SEEK_DATA */)).toBe(100 * PAGE_SIZE);
    await fs.release(ino, h.fh);
  });

  it('reopen after an abandoned (unclean) open finds data written after the last allocation-map save', async () => {
    const dir = join(tmp(), 's');
    const o = await open(dir);
    const fs = mkfs(o);
    const c = await fs.create(1, 'f', 0o100644, 0);
    await fs.write(c.entry.ino, c.fh, 0, page(1));
    await fs.fsync(c.entry.ino, c.fh); // saves the map with page 0 only
    await fs.write(c.entry.ino, c.fh, 5 * PAGE_SIZE, page(2)); // journaled (size) but map not saved
    // Abandon without close (as kill -9 would): the lock names our own pid, so it is taken over.
    opened.splice(opened.indexOf(o), 1);
    const o2 = await open(dir);
    expect(o2.info.clean).toBe(false);
    const fs2 = mkfs(o2);
    const ino = fs2.resolvePath('f');
    expect(fs2.getattr(ino).size).toBe(6 * PAGE_SIZE);
    expect(fs2.getattr(ino).blocks).toBe(16);
    const h = await fs2.open(ino, 0);
    const b = Buffer.from(await fs2.read(ino, h.fh, 0, 6 * PAGE_SIZE));
    expect(b.subarray(0, PAGE_SIZE).equals(page(1))).toBe(true);
    expect(b.subarray(5 * PAGE_SIZE).equals(page(2))).toBe(true);
    expect(b.subarray(PAGE_SIZE, 5 * PAGE_SIZE).equals(Buffer.alloc(4 * PAGE_SIZE))).toBe(true);
    await fs2.release(ino, h.fh);
  });

  it('after an unclean stop, data past the journaled size is discarded (it never resurfaces on extension)', async () => {
    const dir = join(tmp(), 's');
    const o = await open(dir);
    const fs = mkfs(o);
    const c = await fs.create(1, 'f', 0o100644, 0);
    await fs.write(c.entry.ino, c.fh, 0, page(1));
    await fs.fsync(c.entry.ino, c.fh);
    // Bytes reach the backing file but their size record does not (as if killed in between).
    await o.backend.open(c.entry.ino).write(3 * PAGE_SIZE, page(9));
    await o.backend.open(c.entry.ino).write(PAGE_SIZE - 10, Buffer.alloc(10, 9)); // tail of page 0... inside EOF: kept
    opened.splice(opened.indexOf(o), 1);
    const o2 = await open(dir);
    const fs2 = mkfs(o2);
    const ino = fs2.resolvePath('f');
    expect(fs2.getattr(ino).size).toBe(PAGE_SIZE);
    expect(fs2.getattr(ino).blocks).toBe(8);
    await fs2.setattr(ino, { size: 8 * PAGE_SIZE });
    const h = await fs2.open(ino, 0);
    const b = Buffer.from(await fs2.read(ino, h.fh, 0, 8 * PAGE_SIZE));
    expect(b.subarray(PAGE_SIZE).equals(Buffer.alloc(7 * PAGE_SIZE))).toBe(true);
    expect(b.subarray(PAGE_SIZE - 10, PAGE_SIZE).equals(Buffer.alloc(10, 9))).toBe(true);
    await fs2.release(ino, h.fh);
  });

  it('a torn or corrupt journal tail is ignored; everything before it is replayed', async () => {
    const dir = join(tmp(), 's');
    const o = await open(dir);
    const fs = mkfs(o);
    fs.mkdir(1, 'a', 0o755);
    fs.mkdir(1, 'b', 0o755);
    // Abandon, then damage: a corrupt line and a torn one after the good records.
    opened.splice(opened.indexOf(o), 1);
    const j = join(dir, 'journal');
    const lines = readFileSync(j, 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBe(2);
    const bad = lines[1]!.replace('"b"', '"c"'); // checksum no longer matches
    writeFileSync(j, lines[0] + '\n' + bad + '\n' + lines[1]!.slice(0, 20));
    const o2 = await open(dir);
    expect(o2.info.replayed).toBe(1);
    expect(o2.info.stopReason).toMatch(/corrupt/);
    const fs2 = mkfs(o2);
    expect(fs2.resolvePath('a')).toBeGreaterThan(1);
    expect(() => fs2.resolvePath('b')).toThrow(FsError);
    expect(() => fs2.resolvePath('c')).toThrow(FsError);
    // New records append after the valid prefix and survive the next reopen.
    fs2.mkdir(1, 'd', 0o755);
    opened.splice(opened.indexOf(o2), 1);
    const o3 = await open(dir);
    const fs3 = mkfs(o3);
    expect(fs3.resolvePath('d')).toBeGreaterThan(1);
    appendFileSync(j, 'garbage\n');
  });

  it('refuses a directory that is not a faultline store, and a store of another format version', async () => {
    const d1 = tmp();
    writeFileSync(join(d1, 'somefile'), 'x');
    await expect(openFileStore(d1, { log: () => undefined })).rejects.toThrow(/not a faultline store/);
    const d2 = join(tmp(), 's');
    mkdirSync(d2);
    writeFileSync(join(d2, 'FORMAT'), JSON.stringify({ format: 'faultline-store', version: 99 }));
    await expect(openFileStore(d2, { log: () => undefined })).rejects.toThrow(/format version 99.*new directory/);
  });

  it('refuses a store held by another live process, takes over a dead one', async () => {
    const dir = join(tmp(), 's');
    const o = await open(dir);
    await o.close();
    opened.splice(opened.indexOf(o), 1);
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
      writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: child.pid, start, mountpoint: '/mnt/x' }));
      await expect(openFileStore(dir, { log: () => undefined })).rejects.toThrow(new RegExp(`in use by faultline daemon pid ${child.pid} \\(mounted on /mnt/x\\).*umount /mnt/x`));
      // Same pid but another start time = pid reuse: stale.
      writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: child.pid, start: start + 1, mountpoint: '/mnt/x' }));
      await open(dir);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a store inside the mountpoint', async () => {
    const d = tmp();
    mkdirSync(join(d, 'mnt'));
    await expect(openFileStore(join(d, 'mnt', 'store'), { mountpoint: join(d, 'mnt'), log: () => undefined })).rejects.toThrow(/inside the mountpoint/);
    await expect(openFileStore(d, { mountpoint: join(d, 'mnt'), log: () => undefined })).rejects.toThrow(/mountpoint .* is inside the store/);
  });
});
