// Bad input never throws anything but FsError, and never corrupts the metadata: every public
// Filesystem method is called with random arguments (garbage and near-valid values mixed), then the
// snapshot must validate and equal the journal replay.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants as fsc } from 'node:fs';
import { Filesystem, applyChanges, validateSnapshot } from '../src/fs/filesystem.js';
import { MemoryStoreBackend } from '../src/fs/memory-store.js';
import { FsError } from '../src/fs/types.js';
import { makeFs } from './helpers/fs-harness.js';
import { simpleFileDataFactory } from './helpers/fs-simple-file-data.js';

const METHODS: [name: keyof Filesystem, arity: number][] = [
  ['getattr', 2],
  ['setattr', 3],
  ['access', 2],
  ['lookup', 2],
  ['forget', 2],
  ['forgetMulti', 1],
  ['mknod', 5],
  ['create', 5],
  ['mkdir', 4],
  ['symlink', 4],
  ['readlink', 1],
  ['link', 3],
  ['unlink', 2],
  ['rmdir', 2],
  ['rename', 5],
  ['open', 2],
  ['release', 2],
  ['flush', 2],
  ['fsync', 3],
  ['read', 4],
  ['write', 4],
  ['fallocate', 5],
  ['lseek', 4],
  ['opendir', 2],
  ['releasedir', 2],
  ['fsyncdir', 3],
  ['readdir', 4],
  ['readdirplus', 4],
  ['statfs', 1],
  ['resolvePath', 1],
  ['fileData', 1],
  ['noteDataChange', 1],
  ['serverChange', 2],
];

const argArb = fc.oneof(
  fc.constantFrom(1, 2, 3, 4, 5, 6, 0, -1, NaN, Infinity, 2 ** 53, 0.5, 'a', 'f', 'd', '', '.', '..', 'a/b', 'x'.repeat(300)),
  fc.integer({ min: -10, max: 1 << 20 }),
  fc.constantFrom(fsc.O_RDWR | fsc.O_TRUNC, 0o644, 0o40755, 0o100644, 3, 0x10, 0x02 | 0x01),
  fc.constant(Buffer.from('data')),
  fc.constant(() => true),
  fc.constant(async () => 1),
  fc.record({ size: fc.integer({ min: -5, max: 100_000 }) }),
  fc.record({ mode: fc.anything(), atime: fc.anything() }, { requiredKeys: [] }),
  fc.record({ uid: fc.anything(), gid: fc.anything(), umask: fc.anything() }, { requiredKeys: [] }),
  fc.anything(),
);

describe('Filesystem under random bad input', () => {
  it('only FsErrors, and the metadata stays consistent', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: METHODS.length - 1 }), fc.array(argArb, { minLength: 5, maxLength: 5 })), {
          minLength: 10,
          maxLength: 40,
        }),
        async (calls) => {
          const h = makeFs({ capacityBytes: 1 << 22 });
          const { fs } = h;
          const f = await fs.create(1, 'f', 0o644, fsc.O_RDWR, { uid: 0, gid: 0 });
          await fs.write(f.entry.ino, f.fh, 0, Buffer.from('hello'));
          fs.mkdir(1, 'd', 0o755, { uid: 0, gid: 0 });
          fs.opendir(1);
          for (const [m, args] of calls) {
            const [name, arity] = METHODS[m]!;
            const fn = fs[name] as unknown as (...a: unknown[]) => unknown;
            try {
              await fn.apply(fs, args.slice(0, arity));
            } catch (e) {
              if (!(e instanceof FsError)) throw new Error(`${String(name)} threw a non-FsError: ${e instanceof Error ? e.stack : typeof e}`);
            }
          }
          await fs.settle();
          const snap = fs.snapshot();
          validateSnapshot(snap);
          expect(applyChanges(h.base, h.changes)).toEqual(snap);
          expect(fs.backgroundErrors).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('restore rejects random snapshots with FsError', () => {
    const backend = new MemoryStoreBackend({ capacityBytes: 1 << 20 });
    const { factory } = simpleFileDataFactory();
    fc.assert(
      fc.property(fc.anything(), (junk) => {
        try {
          Filesystem.restore(junk as never, { backend, createFileData: factory });
        } catch (e) {
          expect(e).toBeInstanceOf(FsError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
