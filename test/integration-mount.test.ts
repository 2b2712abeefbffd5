// Integration tests against a real faultline mount: the daemon runs in its own process
// (`faultline mount`), the test drives it with async file I/O, coreutils/util-linux and the C
// probes in native-tests/. Every test's mount is stopped in afterEach/afterAll, even on failure.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, writeFile, mkdir, readdir, rename, rm, rmdir, stat, symlink, readlink, link, unlink, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMount, isMounted, type MountHandle } from '../src/stress/mount.js';
import { BIN, fuseAvailable, run } from './helpers/run.js';

const FUSE = fuseAvailable();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** lseek SEEK_DATA/SEEK_HOLE through python3 (Node has no SEEK_HOLE); -1 for ENXIO. */
async function seek(path: string, offset: number, whence: 'DATA' | 'HOLE'): Promise<number> {
  const r = await run('python3', ['-c', `import os,sys
fd=os.open(sys.argv[1], os.O_RDONLY)
try: print(os.lseek(fd, int(sys.argv[2]), os.SEEK_${whence}))
except OSError as e: print(-1 if e.errno == 6 else -100 - e.errno)`, path, String(offset)]);
  return Number(r.stdout.trim());
}

/** pwrite through python3, returning the errno name or "ok". */
async function pwriteErrno(path: string, offset: number, data = 'x'): Promise<string> {
  const r = await run('python3', ['-c', `import os,sys,errno
fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT, 0o644)
try: os.pwrite(fd, sys.argv[3].encode(), int(sys.argv[2])); print('ok')
except OSError as e: print(errno.errorcode[e.errno])`, path, String(offset), data]);
  return r.stdout.trim();
}

interface Probe {
  offset: number;
  result: 'ok' | 'sigbus' | 'sigsegv';
  zero?: boolean;
}
async function probe(args: string[]): Promise<Probe[]> {
  const r = await run(BIN('mmap_probe'), args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Probe & { summary?: boolean })
    .filter((p) => !p.summary);
}

describe.skipIf(!FUSE)('faultline mount: data paths', () => {
  let m: MountHandle;
  beforeAll(async () => {
    m = await startMount({ capacity: 256 * 2 ** 20 });
  });
  afterAll(async () => {
    await m?.stop();
  });

  it('writes and reads back a 64 MiB file by checksum', async () => {
    const data = randomBytes(64 * 2 ** 20);
    const src = join(await mkdtemp(join(tmpdir(), 'fl-it-')), 'src');
    await writeFile(src, data);
    const cp = await run('cp', [src, join(m.mountpoint, 'big')]);
    expect(cp.code, cp.stderr).toBe(0);
    await rm(src);
    const back = await readFile(join(m.mountpoint, 'big'));
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
    const st = await stat(join(m.mountpoint, 'big'));
    expect(st.size).toBe(64 * 2 ** 20);
    expect(st.blocks).toBe((64 * 2 ** 20) / 512);
    await unlink(join(m.mountpoint, 'big'));
  });

  it('punch hole: zeros, SEEK_HOLE finds it, st_blocks drops', async () => {
    const f = join(m.mountpoint, 'punch');
    await writeFile(f, Buffer.alloc(1 << 20, 0x5a));
    const before = await stat(f);
    const r = await run('fallocate', ['-p', '-o', '65536', '-l', '131072', f]);
    expect(r.code, r.stderr).toBe(0);
    const after = await stat(f);
    expect(after.size).toBe(1 << 20);
    expect(before.blocks - after.blocks).toBe(131072 / 512);
    const back = await readFile(f);
    expect(back.subarray(65536, 196608).every((b) => b === 0)).toBe(true);
    expect(back.subarray(0, 65536).every((b) => b === 0x5a)).toBe(true);
    expect(back.subarray(196608).every((b) => b === 0x5a)).toBe(true);
    expect(await seek(f, 0, 'HOLE')).toBe(65536);
    expect(await seek(f, 65536, 'DATA')).toBe(196608);
    // A sub-page punch zeroes exactly its bytes.
    expect((await run('fallocate', ['-p', '-o', '1000', '-l', '100', f])).code).toBe(0);
    const sub = await readFile(f);
    expect(sub.subarray(1000, 1100).every((b) => b === 0)).toBe(true);
    expect(sub[999]).toBe(0x5a);
    expect(sub[1100]).toBe(0x5a);
  });

  it('zero range, with and without KEEP_SIZE', async () => {
    const f = join(m.mountpoint, 'zero');
    await writeFile(f, Buffer.alloc(16384, 0x41));
    expect((await run('fallocate', ['-z', '-o', '4000', '-l', '5000', f])).code).toBe(0);
    let b = await readFile(f);
    expect(b.length).toBe(16384);
    expect(b.subarray(4000, 9000).every((x) => x === 0)).toBe(true);
    expect(b[3999]).toBe(0x41);
    expect(b[9000]).toBe(0x41);
    // Without KEEP_SIZE, zero range past EOF extends the file.
    expect((await run('fallocate', ['-z', '-o', '16384', '-l', '8192', f])).code).toBe(0);
    b = await readFile(f);
    expect(b.length).toBe(24576);
    expect(b.subarray(16384).every((x) => x === 0)).toBe(true);
  });

  it('truncate down: a mapped page beyond EOF raises SIGBUS, the EOF page tail reads zeros; truncate up reads zeros', async () => {
    const f = join(m.mountpoint, 'trunc');
    await writeFile(f, Buffer.alloc(65536, 0x77));
    const p = await probe(['--prefault', '--truncate', '10000', '--len', '8', '--map-size', '65536', f, '9000', '10000', '12288', '40000']);
    expect(p.map((x) => x.result)).toEqual(['ok', 'ok', 'sigbus', 'sigbus']);
    expect(p[0]!.zero).toBe(false);
    expect(p[1]!.zero).toBe(true);
    const tail = await probe(['--len', String(12288 - 10000), f, '10000']);
    expect(tail[0]).toMatchObject({ result: 'ok', zero: true });
    expect((await run('truncate', ['-s', '65536', f])).code).toBe(0);
    const b = await readFile(f);
    expect(b.subarray(0, 10000).every((x) => x === 0x77)).toBe(true);
    expect(b.subarray(10000).every((x) => x === 0)).toBe(true);
  });

  it('keeps an unlinked or renamed open file readable and writable', async () => {
    const f = join(m.mountpoint, 'open-unlink');
    await writeFile(f, 'hello');
    const fh = await open(f, 'r+');
    await unlink(f);
    await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });
    const buf = Buffer.alloc(5);
    await fh.read(buf, 0, 5, 0);
    expect(buf.toString()).toBe('hello');
    await fh.write('HELLO', 0);
    await fh.read(buf, 0, 5, 0);
    expect(buf.toString()).toBe('HELLO');
    await fh.close();

    const g = join(m.mountpoint, 'open-rename');
    await writeFile(g, 'abc');
    const gh = await open(g, 'r+');
    await rename(g, join(m.mountpoint, 'renamed'));
    await gh.write('xyz', 3);
    await gh.close();
    expect(await readFile(join(m.mountpoint, 'renamed'), 'utf8')).toBe('abcxyz');
  });

  it('directory operations: mkdir, readdir of many entries, rmdir, rename, symlink, link', async () => {
    const d = join(m.mountpoint, 'dir');
    await mkdir(d);
    const names = Array.from({ length: 600 }, (_, i) => `file-with-a-longish-name-${i}`);
    for (const n of names) await writeFile(join(d, n), n);
    expect((await readdir(d)).sort()).toEqual([...names].sort());
    await expect(rmdir(d)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await mkdir(join(d, 'sub'));
    expect((await stat(d)).nlink).toBe(3);
    await rename(join(d, 'sub'), join(m.mountpoint, 'moved'));
    expect((await stat(d)).nlink).toBe(2);
    await expect(rename(m.mountpoint + '/moved', m.mountpoint + '/moved/inside')).rejects.toMatchObject({ code: 'EINVAL' });
    await symlink('dir/file-with-a-longish-name-1', join(m.mountpoint, 'sl'));
    expect(await readlink(join(m.mountpoint, 'sl'))).toBe('dir/file-with-a-longish-name-1');
    expect(await readFile(join(m.mountpoint, 'sl'), 'utf8')).toBe('file-with-a-longish-name-1');
    await link(join(d, names[2]!), join(m.mountpoint, 'hard'));
    expect((await stat(join(m.mountpoint, 'hard'))).nlink).toBe(2);
    for (const n of names) await unlink(join(d, n));
    await rmdir(d);
    await rmdir(join(m.mountpoint, 'moved'));
    expect((await readdir(m.mountpoint)).includes('dir')).toBe(false);
  });

  it('answers bad input with errnos and keeps serving: COLLAPSE/INSERT → EOPNOTSUPP, huge offsets → EFBIG', async () => {
    const f = join(m.mountpoint, 'bad');
    await writeFile(f, Buffer.alloc(65536, 1));
    for (const flag of ['-c', '-i']) {
      const r = await run('fallocate', [flag, '-o', '4096', '-l', '4096', f]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/not supported/i);
    }
    // A plain punch still reaches the daemon afterwards (EOPNOTSUPP is not sticky like ENOSYS).
    expect((await run('fallocate', ['-p', '-o', '0', '-l', '4096', f])).code).toBe(0);
    expect(await pwriteErrno(f, 2 ** 50)).toBe('EFBIG');
    const r = await run('truncate', ['-s', String(2 ** 50), f]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/too large/i);
    expect((await stat(f)).size).toBe(65536);
    expect((await readFile(f)).subarray(4096).every((b) => b === 1)).toBe(true);
  });
});

describe.skipIf(!FUSE)('faultline mount: capacity', () => {
  let m: MountHandle;
  afterEach(async () => {
    await m?.stop();
  });
  it('fails writes past --capacity with ENOSPC, loses nothing already stored, and keeps serving', async () => {
    m = await startMount({ capacity: 2 ** 20 });
    const f = join(m.mountpoint, 'fill');
    await writeFile(join(m.mountpoint, 'keep'), Buffer.alloc(256 * 1024, 9));
    const r = await run('dd', ['if=/dev/zero', `of=${f}`, 'bs=64k', 'count=64', 'conv=fsync']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    expect((await readFile(join(m.mountpoint, 'keep'))).every((b) => b === 9)).toBe(true);
    await unlink(f);
    await writeFile(join(m.mountpoint, 'after'), Buffer.alloc(512 * 1024, 3));
    expect((await stat(join(m.mountpoint, 'after'))).size).toBe(512 * 1024);
    const df = await run('df', ['-B1', m.mountpoint]);
    expect(df.stdout).toMatch(/faultline/);
  });
});

describe.skipIf(!FUSE)('faultline mount: process lifecycle', () => {
  it('SIGTERM unmounts cleanly and exits 0', async () => {
    const m = await startMount();
    await writeFile(join(m.mountpoint, 'x'), 'x');
    const res = await m.stop();
    expect(res).toEqual({ code: 0, signal: null });
    expect(await isMounted(m.mountpoint)).toBe(false);
  });

  it('kill -9 of the daemon leaves no mount behind (auto_unmount)', async () => {
    const m = await startMount();
    const mp = m.mountpoint;
    try {
      expect(await isMounted(mp)).toBe(true);
      process.kill(m.pid, 'SIGKILL');
      const end = Date.now() + 10_000;
      while ((await isMounted(mp)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(await isMounted(mp)).toBe(false);
    } finally {
      await m.kill();
    }
  });

  it('refuses a mountpoint that is not empty, with a message saying how to fix it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fl-nonempty-'));
    await writeFile(join(dir, 'f'), 'x');
    try {
      const started = await startMount({}, { mountpoint: dir }).then(
        async (m) => {
          await m.stop();
          return 'mounted';
        },
        (e: Error) => e.message,
      );
      expect(started).toMatch(/not empty/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
