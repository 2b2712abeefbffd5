import { describe, expect, it } from 'vitest';
import { RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, applyChanges, type Filesystem, type Timespec } from '../src/fs/filesystem.js';
import { errnoOfSync, listDir, makeFs, names } from './helpers/fs-harness.js';

const ROOT = 1;
const ctx = { uid: 0, gid: 0 };

function tsLess(a: Timespec, b: Timespec): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec < b.nsec);
}

/** Tree: /a/ (dir) /a/b/ (dir) /a/b/c/ (dir) /a/x (file) /y (file) /e/ (empty dir) /n/ (dir with /n/z) */
function tree(fs: Filesystem) {
  const a = fs.mkdir(ROOT, 'a', 0o755, ctx).ino;
  const b = fs.mkdir(a, 'b', 0o755, ctx).ino;
  const c = fs.mkdir(b, 'c', 0o755, ctx).ino;
  const x = fs.mknod(a, 'x', 0o644, 0, ctx).ino;
  const y = fs.mknod(ROOT, 'y', 0o644, 0, ctx).ino;
  const e = fs.mkdir(ROOT, 'e', 0o755, ctx).ino;
  const n = fs.mkdir(ROOT, 'n', 0o755, ctx).ino;
  const z = fs.mknod(n, 'z', 0o644, 0, ctx).ino;
  return { a, b, c, x, y, e, n, z };
}

describe('rename', () => {
  it('renames within a directory and replaces an existing file', () => {
    const h = makeFs();
    const { fs } = h;
    const t = tree(fs);
    fs.forget(t.y, 1);
    const dir0 = fs.getattr(t.a);
    const x0 = fs.getattr(t.x);
    fs.rename(t.a, 'x', t.a, 'x2');
    expect(errnoOfSync(() => fs.lookup(t.a, 'x'))).toBe('ENOENT');
    expect(fs.resolvePath('a/x2')).toBe(t.x);
    expect(tsLess(dir0.mtime, fs.getattr(t.a).mtime)).toBe(true);
    expect(tsLess(x0.ctime, fs.getattr(t.x).ctime)).toBe(true);
    // Replace /y (no lookups left): it is freed.
    fs.rename(t.a, 'x2', ROOT, 'y');
    expect(fs.resolvePath('y')).toBe(t.x);
    expect(fs.has(t.y)).toBe(false);
    expect(names(listDir(fs, t.a))).toEqual(['.', '..', 'b']);
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
  });

  it('a replaced file that is still looked up survives with nlink 0', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    fs.rename(t.a, 'x', ROOT, 'y');
    expect(fs.has(t.y)).toBe(true);
    expect(fs.getattr(t.y).nlink).toBe(0);
    fs.forget(t.y, 1);
    expect(fs.has(t.y)).toBe(false);
  });

  it('moves directories across parents with link counts and ..', () => {
    const h = makeFs();
    const { fs } = h;
    const t = tree(fs);
    expect(fs.getattr(t.a).nlink).toBe(3);
    expect(fs.getattr(ROOT).nlink).toBe(5);
    fs.rename(t.a, 'b', ROOT, 'b');
    expect(fs.getattr(t.a).nlink).toBe(2);
    expect(fs.getattr(ROOT).nlink).toBe(6);
    expect(fs.lookup(t.b, '..').ino).toBe(ROOT);
    expect(listDir(fs, t.b).find((e) => e.name === '..')!.ino).toBe(ROOT);
    // Directory over an empty directory: the target is removed.
    fs.rename(ROOT, 'b', ROOT, 'e');
    expect(fs.resolvePath('e')).toBe(t.b);
    expect(fs.getattr(ROOT).nlink).toBe(5);
    expect(fs.getattr(t.e).nlink).toBe(0);
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
  });

  it('RENAME_NOREPLACE', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    expect(errnoOfSync(() => fs.rename(t.a, 'x', ROOT, 'y', RENAME_NOREPLACE))).toBe('EEXIST');
    expect(errnoOfSync(() => fs.rename(t.a, 'x', ROOT, '.', RENAME_NOREPLACE))).toBe('EEXIST');
    fs.rename(t.a, 'x', ROOT, 'x', RENAME_NOREPLACE);
    expect(fs.resolvePath('x')).toBe(t.x);
  });

  it('RENAME_EXCHANGE swaps files, and a file with a directory across parents', () => {
    const h = makeFs();
    const { fs } = h;
    const t = tree(fs);
    expect(errnoOfSync(() => fs.rename(t.a, 'x', ROOT, 'missing', RENAME_EXCHANGE))).toBe('ENOENT');
    fs.rename(t.a, 'x', ROOT, 'y', RENAME_EXCHANGE);
    expect(fs.resolvePath('a/x')).toBe(t.y);
    expect(fs.resolvePath('y')).toBe(t.x);
    expect(fs.getattr(t.x).nlink).toBe(1);
    // /n (dir) <-> /a/x (file): root loses a subdir, a gains one.
    const rootN = fs.getattr(ROOT).nlink;
    const aN = fs.getattr(t.a).nlink;
    fs.rename(ROOT, 'n', t.a, 'x', RENAME_EXCHANGE);
    expect(fs.resolvePath('a/x')).toBe(t.n);
    expect(fs.resolvePath('n')).toBe(t.y);
    expect(fs.getattr(ROOT).nlink).toBe(rootN - 1);
    expect(fs.getattr(t.a).nlink).toBe(aN + 1);
    expect(fs.lookup(t.n, '..').ino).toBe(t.a);
    expect(fs.resolvePath('a/x/z')).toBe(t.z);
    // Two directories: link counts unchanged, parents swapped.
    fs.rename(t.a, 'x', t.b, 'c', RENAME_EXCHANGE);
    expect(fs.lookup(t.n, '..').ino).toBe(t.b);
    expect(fs.lookup(t.c, '..').ino).toBe(t.a);
    expect(applyChanges(h.base, h.changes)).toEqual(fs.snapshot());
  });

  it('type mismatches and non-empty targets', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    expect(errnoOfSync(() => fs.rename(ROOT, 'e', ROOT, 'y'))).toBe('ENOTDIR');
    expect(errnoOfSync(() => fs.rename(ROOT, 'y', ROOT, 'e'))).toBe('EISDIR');
    expect(errnoOfSync(() => fs.rename(ROOT, 'e', ROOT, 'n'))).toBe('ENOTEMPTY');
    // With EXCHANGE, types may differ and targets may be non-empty.
    fs.rename(ROOT, 'e', ROOT, 'n', RENAME_EXCHANGE);
    expect(fs.resolvePath('e/z')).toBe(t.z);
  });

  it('a directory cannot move into its own subtree', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    expect(errnoOfSync(() => fs.rename(ROOT, 'a', t.a, 'a2'))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.rename(ROOT, 'a', t.b, 'a2'))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.rename(ROOT, 'a', t.c, 'a2'))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.rename(ROOT, 'a', t.c, 'a2', RENAME_NOREPLACE))).toBe('EINVAL');
    // Exchanging a directory with one inside it, either way round.
    expect(errnoOfSync(() => fs.rename(ROOT, 'a', t.b, 'c', RENAME_EXCHANGE))).toBe('EINVAL');
    expect(errnoOfSync(() => fs.rename(t.b, 'c', ROOT, 'a', RENAME_EXCHANGE))).toBe('EINVAL');
    // Onto an ancestor of the source: ENOTEMPTY (Linux), EINVAL with EXCHANGE.
    expect(errnoOfSync(() => fs.rename(t.b, 'c', ROOT, 'a'))).toBe('ENOTEMPTY');
    expect(errnoOfSync(() => fs.rename(t.a, 'x', ROOT, 'a'))).toBe('ENOTEMPTY');
    // Moving a directory to a sibling position is fine.
    fs.rename(t.b, 'c', t.a, 'c');
    expect(fs.lookup(t.c, '..').ino).toBe(t.a);
  });

  it('same inode, dots, missing names and bad flags', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    fs.link(t.y, t.a, 'y2');
    fs.rename(ROOT, 'y', t.a, 'y2'); // two links of one inode: nothing happens
    expect(fs.resolvePath('y')).toBe(t.y);
    expect(fs.resolvePath('a/y2')).toBe(t.y);
    expect(fs.getattr(t.y).nlink).toBe(2);
    fs.rename(ROOT, 'y', ROOT, 'y');
    fs.rename(ROOT, 'y', ROOT, 'y', RENAME_EXCHANGE);
    expect(fs.resolvePath('y')).toBe(t.y);
    const cases: [() => void, string][] = [
      [() => fs.rename(ROOT, '.', ROOT, 'q'), 'EBUSY'],
      [() => fs.rename(ROOT, '..', ROOT, 'q'), 'EBUSY'],
      [() => fs.rename(ROOT, 'y', ROOT, '..'), 'EBUSY'],
      [() => fs.rename(ROOT, 'missing', ROOT, 'q'), 'ENOENT'],
      [() => fs.rename(999, 'y', ROOT, 'q'), 'ENOENT'],
      [() => fs.rename(ROOT, 'y', 999, 'q'), 'ENOENT'],
      [() => fs.rename(t.y, 'y', ROOT, 'q'), 'ENOTDIR'],
      [() => fs.rename(ROOT, 'y', t.y, 'q'), 'ENOTDIR'],
      [() => fs.rename(ROOT, 'y', ROOT, 'q', RENAME_EXCHANGE | RENAME_NOREPLACE), 'EINVAL'],
      [() => fs.rename(ROOT, 'y', ROOT, 'q', RENAME_WHITEOUT), 'EINVAL'],
      [() => fs.rename(ROOT, 'y', ROOT, 'q', -1), 'EINVAL'],
      [() => fs.rename(ROOT, 'y', ROOT, 'x'.repeat(256)), 'ENAMETOOLONG'],
      [() => fs.rename(ROOT, 'y', ROOT, ''), 'ENOENT'],
    ];
    const before = fs.snapshot();
    for (const [fn, code] of cases) expect(errnoOfSync(fn)).toBe(code);
    expect(fs.snapshot()).toEqual(before);
  });

  it('rename in or into a removed directory gets ENOENT', () => {
    const { fs } = makeFs();
    const t = tree(fs);
    fs.rmdir(ROOT, 'e');
    expect(errnoOfSync(() => fs.rename(ROOT, 'y', t.e, 'y'))).toBe('ENOENT');
    expect(fs.resolvePath('y')).toBe(t.y);
  });
});
