// Model test of the Filesystem: random sequences of namespace, lookup, open and data operations
// are applied to the filesystem and to an independent model (a tree of entries plus per-inode
// lookup/open counts and file bytes). After every step:
//  - the errno (or success) matches the model's prediction,
//  - every directory lists exactly the model's entries, link counts match,
//  - inodes live iff the model says they are referenced; freed inodes' stores are gone,
//  - file contents match, and the backend's usage equals the sum of allocated pages,
//  - validateSnapshot(snapshot) holds, and snapshot == applyChanges(base, journal).
// At the end the snapshot is restored into a new Filesystem and compared.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constants as fsc } from 'node:fs';
import {
  Filesystem,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  applyChanges,
  validateSnapshot,
  type FilesystemOptions,
  type FsSnapshot,
} from '../src/fs/filesystem.js';
import { fileDataFactory } from '../src/fs/file-data.js';
import { PageCache } from '../src/fs/page-cache.js';
import { FsError, PAGE_SIZE } from '../src/fs/types.js';
import { listDir, makeFs } from './helpers/fs-harness.js';

const ROOT = 1;
const NAMES = ['a', 'b', 'c'];
const ctx = { uid: 0, gid: 0 };

type Kind = 'file' | 'dir' | 'symlink';
interface MInode {
  kind: Kind;
  entries: Map<string, number>; // dirs only
  nlookup: number;
  handles: number[];
  bytes: Buffer; // files only
  removed: boolean; // dirs: rmdir'd or replaced
}

type Op =
  | { k: 'mknod' | 'mkdir' | 'symlink' | 'unlink' | 'rmdir' | 'lookup'; d: number; n: number }
  | { k: 'link'; s: number; d: number; n: number }
  | { k: 'rename'; d1: number; n1: number; d2: number; n2: number; flags: number }
  | { k: 'forget'; i: number; c: number }
  | { k: 'open' | 'release'; i: number }
  | { k: 'write'; i: number; off: number; len: number; byte: number }
  | { k: 'truncate'; i: number; size: number };

const idx = fc.nat({ max: 1000 });
const nm = fc.nat({ max: NAMES.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constantFrom('mknod' as const, 'mkdir' as const), d: idx, n: nm }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('symlink' as const), d: idx, n: nm }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('unlink' as const, 'rmdir' as const, 'lookup' as const), d: idx, n: nm }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('link' as const), s: idx, d: idx, n: nm }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('rename' as const),
      d1: idx,
      n1: nm,
      d2: idx,
      n2: nm,
      flags: fc.constantFrom(0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_EXCHANGE | RENAME_NOREPLACE),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('forget' as const), i: idx, c: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('open' as const, 'release' as const), i: idx }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      i: idx,
      off: fc.integer({ min: 0, max: 3 * PAGE_SIZE }),
      len: fc.integer({ min: 1, max: PAGE_SIZE + 10 }),
      byte: fc.integer({ min: 1, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('truncate' as const), i: idx, size: fc.integer({ min: 0, max: 4 * PAGE_SIZE }) }) },
);

class Model {
  inodes = new Map<number, MInode>([[ROOT, this.#mk('dir')]]);

  #mk(kind: Kind): MInode {
    return { kind, entries: new Map(), nlookup: 0, handles: [], bytes: Buffer.alloc(0), removed: false };
  }

  add(ino: number, kind: Kind): void {
    this.inodes.set(ino, this.#mk(kind));
  }

  get(ino: number): MInode {
    return this.inodes.get(ino)!;
  }

  /** Live directories reachable from the root, in a stable order. */
  dirs(): number[] {
    const out: number[] = [];
    const walk = (ino: number) => {
      out.push(ino);
      for (const c of [...this.get(ino).entries.values()].sort((a, b) => a - b)) if (this.get(c).kind === 'dir') walk(c);
    };
    walk(ROOT);
    return out;
  }

  /** All live inodes, ascending. */
  all(): number[] {
    return [...this.inodes.keys()].sort((a, b) => a - b);
  }

  links(ino: number): number {
    let n = 0;
    for (const d of this.dirs()) for (const c of this.get(d).entries.values()) if (c === ino) n++;
    return n;
  }

  nlink(ino: number): number {
    const i = this.get(ino);
    if (i.kind !== 'dir') return this.links(ino);
    if (ino !== ROOT && this.links(ino) === 0) return 0;
    return 2 + [...i.entries.values()].filter((c) => this.get(c).kind === 'dir').length;
  }

  /** Is `a` equal to `b` or an ancestor of it (walking down from a)? */
  contains(a: number, b: number): boolean {
    if (a === b) return true;
    for (const c of this.get(a).entries.values()) if (this.get(c).kind === 'dir' && this.contains(c, b)) return true;
    return false;
  }

  /** Drop inodes that nothing references any more; returns their numbers. */
  collect(): number[] {
    const freed: number[] = [];
    for (const ino of this.all()) {
      if (ino === ROOT) continue;
      const i = this.get(ino);
      if (this.nlink(ino) === 0 && i.nlookup === 0 && i.handles.length === 0) {
        this.inodes.delete(ino);
        freed.push(ino);
      }
    }
    return freed;
  }
}

function pick<T>(arr: T[], i: number): T | undefined {
  return arr.length === 0 ? undefined : arr[i % arr.length];
}

async function run(fs: Filesystem, m: Model, op: Op): Promise<{ got: string; want: string }> {
  const dirs = m.dirs();
  const files = m.all().filter((i) => m.get(i).kind === 'file');
  const any = m.all();
  let want = 'ok';
  let action: () => Promise<unknown> | unknown = () => undefined;
  let onOk: (r: unknown) => void = () => undefined;
  switch (op.k) {
    case 'mknod':
    case 'mkdir':
    case 'symlink': {
      const d = pick(dirs, op.d)!;
      const name = NAMES[op.n]!;
      if (m.get(d).entries.has(name)) want = 'EEXIST';
      action = () =>
        op.k === 'mknod'
          ? fs.mknod(d, name, 0o644, 0, ctx)
          : op.k === 'mkdir'
            ? fs.mkdir(d, name, 0o755, ctx)
            : fs.symlink('target', d, name, ctx);
      onOk = (r) => {
        const ino = (r as { ino: number }).ino;
        m.add(ino, op.k === 'mknod' ? 'file' : op.k === 'mkdir' ? 'dir' : 'symlink');
        m.get(ino).nlookup++;
        m.get(d).entries.set(name, ino);
      };
      break;
    }
    case 'lookup': {
      const d = pick(dirs, op.d)!;
      const name = NAMES[op.n]!;
      const c = m.get(d).entries.get(name);
      if (c === undefined) want = 'ENOENT';
      action = () => fs.lookup(d, name);
      onOk = () => m.get(c!).nlookup++;
      break;
    }
    case 'unlink':
    case 'rmdir': {
      const d = pick(dirs, op.d)!;
      const name = NAMES[op.n]!;
      const c = m.get(d).entries.get(name);
      if (c === undefined) want = 'ENOENT';
      else if (op.k === 'unlink' && m.get(c).kind === 'dir') want = 'EISDIR';
      else if (op.k === 'rmdir' && m.get(c).kind !== 'dir') want = 'ENOTDIR';
      else if (op.k === 'rmdir' && m.get(c).entries.size > 0) want = 'ENOTEMPTY';
      action = () => (op.k === 'unlink' ? fs.unlink(d, name) : fs.rmdir(d, name));
      onOk = () => m.get(d).entries.delete(name);
      break;
    }
    case 'link': {
      const s = pick(any, op.s)!;
      const d = pick(dirs, op.d)!;
      const name = NAMES[op.n]!;
      if (m.get(s).kind === 'dir') want = 'EPERM';
      else if (m.get(d).entries.has(name)) want = 'EEXIST';
      else if (m.links(s) === 0) want = 'ENOENT';
      action = () => fs.link(s, d, name);
      onOk = () => {
        m.get(d).entries.set(name, s);
        m.get(s).nlookup++;
      };
      break;
    }
    case 'rename': {
      const d1 = pick(dirs, op.d1)!;
      const d2 = pick(dirs, op.d2)!;
      const n1 = NAMES[op.n1]!;
      const n2 = NAMES[op.n2]!;
      const src = m.get(d1).entries.get(n1);
      const dst = m.get(d2).entries.get(n2);
      const ex = (op.flags & RENAME_EXCHANGE) !== 0;
      const nr = (op.flags & RENAME_NOREPLACE) !== 0;
      if (ex && nr) want = 'EINVAL';
      else if (src === undefined) want = 'ENOENT';
      else if (ex && dst === undefined) want = 'ENOENT';
      else if (nr && dst !== undefined) want = 'EEXIST';
      else if (m.get(src).kind === 'dir' && m.contains(src, d2)) want = 'EINVAL';
      else if (dst !== undefined && dst !== src && m.get(dst).kind === 'dir' && m.contains(dst, d1)) want = ex ? 'EINVAL' : 'ENOTEMPTY';
      else if (dst !== undefined && dst !== src && !ex) {
        const sd = m.get(src).kind === 'dir';
        const dd = m.get(dst).kind === 'dir';
        if (sd && !dd) want = 'ENOTDIR';
        else if (!sd && dd) want = 'EISDIR';
        else if (dd && m.get(dst).entries.size > 0) want = 'ENOTEMPTY';
      }
      action = () => fs.rename(d1, n1, d2, n2, op.flags);
      onOk = () => {
        if (src === dst) return;
        if (ex) {
          m.get(d1).entries.set(n1, dst!);
          m.get(d2).entries.set(n2, src!);
        } else {
          m.get(d1).entries.delete(n1);
          m.get(d2).entries.set(n2, src!);
        }
      };
      break;
    }
    case 'forget': {
      const withLookups = any.filter((i) => m.get(i).nlookup > 0);
      const i = pick(withLookups, op.i);
      if (i === undefined) return { got: 'ok', want: 'ok' };
      const c = Math.min(op.c, m.get(i).nlookup);
      action = () => fs.forget(i, c);
      onOk = () => (m.get(i).nlookup -= c);
      break;
    }
    case 'open': {
      const i = pick(files, op.i);
      if (i === undefined) return { got: 'ok', want: 'ok' };
      action = () => fs.open(i, fsc.O_RDWR);
      onOk = (r) => m.get(i).handles.push((r as { fh: number }).fh);
      break;
    }
    case 'release': {
      const open = files.filter((i) => m.get(i).handles.length > 0);
      const i = pick(open, op.i);
      if (i === undefined) return { got: 'ok', want: 'ok' };
      const fh = m.get(i).handles[0]!;
      action = () => fs.release(i, fh);
      onOk = () => m.get(i).handles.shift();
      break;
    }
    case 'write': {
      const open = files.filter((i) => m.get(i).handles.length > 0);
      const i = pick(open, op.i);
      if (i === undefined) return { got: 'ok', want: 'ok' };
      const data = Buffer.alloc(op.len, op.byte);
      action = () => fs.write(i, m.get(i).handles[0]!, op.off, data);
      onOk = () => {
        const mi = m.get(i);
        const end = op.off + op.len;
        if (end > mi.bytes.length) mi.bytes = Buffer.concat([mi.bytes, Buffer.alloc(end - mi.bytes.length)]);
        data.copy(mi.bytes, op.off);
      };
      break;
    }
    case 'truncate': {
      const i = pick(files, op.i);
      if (i === undefined) return { got: 'ok', want: 'ok' };
      action = () => fs.setattr(i, { size: op.size });
      onOk = () => {
        const mi = m.get(i);
        mi.bytes = op.size <= mi.bytes.length ? Buffer.from(mi.bytes.subarray(0, op.size)) : Buffer.concat([mi.bytes, Buffer.alloc(op.size - mi.bytes.length)]);
      };
      break;
    }
  }
  let got = 'ok';
  try {
    const r = await action();
    onOk(r);
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    got = e.code;
  }
  return { got, want };
}

async function checkState(h: ReturnType<typeof makeFs>, m: Model, freedBefore: Set<number>): Promise<void> {
  const { fs, backend } = h;
  for (const ino of m.collect()) freedBefore.add(ino);
  await fs.settle();
  for (const ino of freedBefore) {
    expect(fs.has(ino), `inode ${ino} should be freed`).toBe(false);
    expect(backend.has(ino)).toBe(false);
  }
  let pages = 0;
  for (const ino of m.all()) {
    expect(fs.has(ino), `inode ${ino} should be live`).toBe(true);
    const mi = m.get(ino);
    const a = fs.getattr(ino);
    expect(a.nlink, `nlink of ${ino}`).toBe(m.nlink(ino));
    expect(fs.inodeState(ino)!.nlookup).toBe(mi.nlookup);
    expect(fs.inodeState(ino)!.opens).toBe(mi.handles.length);
    if (mi.kind === 'dir' && a.nlink > 0) {
      const listed = listDir(fs, ino).slice(2).map((e) => [e.name, e.ino]);
      expect(listed.sort(), `entries of ${ino}`).toEqual([...mi.entries.entries()].sort());
    }
    if (mi.kind === 'file') {
      expect(a.size).toBe(mi.bytes.length);
      const fd = fs.fileData(ino);
      const got = await fd.read(0, mi.bytes.length + 10);
      expect(Buffer.compare(got, mi.bytes), `content of ${ino}`).toBe(0);
      pages += a.blocks / 8;
    }
  }
  expect(backend.usage().usedBytes).toBe(pages * PAGE_SIZE);
  const snap = fs.snapshot();
  validateSnapshot(snap);
  expect(applyChanges(h.base, h.changes)).toEqual(snap);
}

function withoutOrphans(s: FsSnapshot): FsSnapshot {
  return { ...s, inodes: s.inodes.filter((r) => r.ino === ROOT || r.nlink > 0) };
}

/** FileData implementations to run the model against. */
const IMPLEMENTATIONS: [string, () => Partial<FilesystemOptions>][] = [
  ['SimpleFileData (test helper)', () => ({})],
  ['CachedFileData write-through', () => ({ createFileData: fileDataFactory({ cache: new PageCache() }) })],
  ['CachedFileData writeback', () => ({ createFileData: fileDataFactory({ cache: new PageCache(), cacheMode: 'writeback' }) })],
];

describe.each(IMPLEMENTATIONS)('Filesystem vs model, %s', (_name, extra) => {
  it('random operation sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 30, maxLength: 80 }), async (ops) => {
        const h = makeFs({ capacityBytes: 1 << 24, ...extra() });
        const m = new Model();
        const freed = new Set<number>();
        for (const op of ops) {
          const { got, want } = await run(h.fs, m, op);
          expect(got, JSON.stringify(op)).toBe(want);
          await checkState(h, m, freed);
        }
        // Restore from the snapshot into a fresh Filesystem on the same backend.
        const snap = JSON.parse(JSON.stringify(h.fs.snapshot())) as FsSnapshot;
        const orphans = snap.inodes.filter((r) => r.ino !== ROOT && r.nlink === 0).length;
        const fs2 = Filesystem.restore(snap, { ...h.options, onMetadataChange: undefined });
        await fs2.settle();
        const snap2 = fs2.snapshot();
        expect(snap2).toEqual({ ...withoutOrphans(snap), seq: snap.seq + (orphans > 0 ? 1 : 0) });
      }),
      { numRuns: 150 },
    );
  });
});
