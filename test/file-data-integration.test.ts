// The data path inside helper B's Filesystem over the real MemoryStoreBackend: the factory fits,
// reads come back synchronously when cached, punches / truncates / server-side changes go through.
import { describe, expect, it } from 'vitest';
import { CachedFileData, DataPathStats, fileDataFactory } from '../src/fs/file-data.js';
import { PageCache } from '../src/fs/page-cache.js';
import { RangeLockStats } from '../src/fs/range-lock.js';
import { Witness } from '../src/fs/witness.js';
import { Faults } from '../src/faults/index.js';
import { Filesystem } from '../src/fs/filesystem.js';
import { MemoryStoreBackend } from '../src/fs/memory-store.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, PAGE_SIZE } from '../src/fs/types.js';

const P = PAGE_SIZE;

describe('CachedFileData inside Filesystem + MemoryStoreBackend', () => {
  it('create / write / cached read / punch / truncate / server-side change / unlink', async () => {
    const cache = new PageCache({ capacityPages: 256 });
    const stats = new DataPathStats();
    const lockStats = new RangeLockStats();
    const witness = new Witness();
    const faults = new Faults();
    const fs = new Filesystem<CachedFileData>({
      backend: new MemoryStoreBackend({ capacityBytes: 16 << 20 }),
      createFileData: fileDataFactory({ cache, stats, lockStats, witness, faults }),
    });
    const { entry, fh } = await fs.create(1, 'f', 0o644, 2 /* O_RDWR */);
    const ino = entry.ino;
    const data = Buffer.alloc(3 * P, 0x5a);
    expect(await fs.write(ino, fh, 0, data)).toBe(3 * P);
    const r = fs.read(ino, fh, 0, P);
    expect(r).toBeInstanceOf(Buffer); // R6 through the filesystem layer
    expect(r).toEqual(data.subarray(0, P));
    await fs.fallocate(ino, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, P, P);
    const after = await fs.read(ino, fh, 0, 3 * P);
    expect(after.subarray(P, 2 * P).every((b) => b === 0)).toBe(true);
    expect(fs.getattr(ino).size).toBe(3 * P);
    await fs.setattr(ino, { size: P + 10 });
    expect((await fs.read(ino, fh, 0, 3 * P)).length).toBe(P + 10);
    const res = await fs.serverChange(ino, (d) => d.punch(0, 10));
    expect(res).toMatchObject({ offset: 0, length: P, changed: true });
    expect((await fs.read(ino, fh, 0, 10)).every((b) => b === 0)).toBe(true);
    expect(stats.snapshot()).toMatchObject({ punches: 2, truncates: 1, writes: 1 });
    expect(witness.stats().rangesRecorded).toBe(1); // [0, 10) covers no whole 1 KiB unit
    expect(lockStats.holders + lockStats.waiters).toBe(0);
    await fs.release(ino, fh);
    fs.unlink(1, 'f');
    fs.forget(ino, 1);
    await fs.settle();
    expect(cache.stats()).toMatchObject({ pages: 0, inodes: 0 });
  });
});
