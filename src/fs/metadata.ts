// Plain, JSON-able metadata of the in-memory filesystem: inode records, the snapshot format, the
// journal records emitted for every metadata mutation, and a pure function that replays journal
// records onto a snapshot. Nothing here holds runtime state (lookup counts, open handles, data).
//
// Invariant kept by Filesystem and checked by its tests:
//   applyChanges(snapshotBefore, changesEmittedSince) deep-equals snapshotAfter.

import { FsError } from './types.js';

/** A short, never-throwing description of an arbitrary value for error messages. */
export function showValue(v: unknown): string {
  try {
    if (typeof v === 'string') return JSON.stringify(v.length > 64 ? v.slice(0, 64) + '...' : v);
    if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
    if (typeof v === 'function') return 'a function';
    if (typeof v === 'symbol') return 'a symbol';
    return String(v);
  } catch {
    return 'an unprintable value';
  }
}

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
/** Permission and set-id bits a mode may carry besides the type. */
export const MODE_PERM_MASK = 0o7777;

export const ROOT_INO = 1;
/** Longest name component, in UTF-8 bytes. */
export const NAME_MAX = 255;
/** Longest symlink target, in bytes (PATH_MAX - 1). */
export const SYMLINK_MAX = 4095;
/** Largest link count (ext4's EXT4_LINK_MAX); beyond it link/mkdir get EMLINK. */
export const LINK_MAX = 65000;

/** A timestamp with nanosecond resolution: `sec` since the epoch (may be negative), 0 <= nsec < 1e9. */
export interface Timespec {
  sec: number;
  nsec: number;
}

export type InodeKind = 'file' | 'dir' | 'symlink';

/** One directory entry as stored: [name, ino, cookie]. Cookies are unique and increasing per directory. */
export type DirentRecord = [name: string, ino: number, cookie: number];

/** The persistent fields of one inode. */
export interface InodeRecord {
  ino: number;
  kind: InodeKind;
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  /** Link count. Directories: 2 + number of subdirectories (0 once removed). */
  nlink: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Regular files: the size as of the last metadata record (FileData owns the live value). */
  size?: number;
  /** Symlinks: the target. */
  target?: string;
  /** Directories: the parent directory's inode number (the root's is itself). */
  parent?: number;
  /** Directories: next cookie to hand out (cookies 1 and 2 are '.' and '..'). */
  nextCookie?: number;
  /** Directories: entries in cookie order. */
  entries?: DirentRecord[];
}

/** Attributes that an `attr` journal record may set. */
export interface InodeAttrPatch {
  mode?: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  atime?: Timespec;
  mtime?: Timespec;
  ctime?: Timespec;
  size?: number;
  parent?: number;
}

/** One elementary metadata mutation. */
export type MetadataRecord =
  /** A new inode (full record; directories come with their initial empty entry list). */
  | { t: 'new'; inode: InodeRecord }
  /** Set some attributes of an inode. */
  | { t: 'attr'; ino: number; set: InodeAttrPatch }
  /** Add (or replace) directory entry `name` of `dir`, pointing at `ino`, with a fresh cookie. */
  | { t: 'link'; dir: number; name: string; ino: number; cookie: number }
  /** Remove directory entry `name` of `dir`. */
  | { t: 'unlink'; dir: number; name: string }
  /** The inode is gone for good (no links, no lookups, no open handles); its store was destroyed. */
  | { t: 'free'; ino: number };

/**
 * What one filesystem operation changed, as an atomic unit: a journal writes it as one entry.
 * `seq` increases by one per change within a Filesystem's life (restarting from the snapshot's
 * `seq`); `nextIno` is the inode counter after the change.
 */
export interface MetadataChange {
  seq: number;
  op: string;
  nextIno: number;
  records: MetadataRecord[];
}

/** The whole metadata of a filesystem. JSON-able (no bigint, no Map). */
export interface FsSnapshot {
  format: 'faultline-fs';
  version: 1;
  /** Next inode number to hand out; numbers are never reused within a filesystem's life. */
  nextIno: number;
  /** seq of the last change reflected in this snapshot (0 for a fresh filesystem). */
  seq: number;
  /** All inodes, ascending by ino. Includes unlinked-but-open inodes (nlink 0): restore frees them. */
  inodes: InodeRecord[];
}

function isInt(v: unknown, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

function isTimespec(v: unknown): v is Timespec {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Timespec;
  return Number.isSafeInteger(t.sec) && isInt(t.nsec) && t.nsec < 1e9;
}

function bad(msg: string): never {
  throw new FsError('EINVAL', `bad snapshot: ${msg}`);
}

/** Deep copy of a record (records handed out never alias internal state). */
export function cloneRecord(r: InodeRecord): InodeRecord {
  const c: InodeRecord = {
    ino: r.ino,
    kind: r.kind,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    nlink: r.nlink,
    atime: { ...r.atime },
    mtime: { ...r.mtime },
    ctime: { ...r.ctime },
  };
  if (r.size !== undefined) c.size = r.size;
  if (r.target !== undefined) c.target = r.target;
  if (r.parent !== undefined) c.parent = r.parent;
  if (r.nextCookie !== undefined) c.nextCookie = r.nextCookie;
  if (r.entries !== undefined) c.entries = r.entries.map((e) => [e[0], e[1], e[2]]);
  return c;
}

/**
 * Check a snapshot's structure and referential integrity; throws FsError('EINVAL') describing the
 * first problem. Checks: field types, unique inos below nextIno, a root directory, entries point at
 * existing inodes, cookies increasing and below nextCookie, names valid, directory nlink = 2 + subdirs
 * and regular file nlink = number of entries naming it (for linked inodes), parent pointers.
 */
export function validateSnapshot(s: unknown, enc: NameEncoding = 'utf8'): FsSnapshot {
  if (typeof s !== 'object' || s === null) bad('not an object');
  const snap = s as FsSnapshot;
  if (snap.format !== 'faultline-fs' || snap.version !== 1) bad('unknown format/version');
  if (!isInt(snap.nextIno, 2)) bad('nextIno');
  if (!isInt(snap.seq)) bad('seq');
  if (!Array.isArray(snap.inodes)) bad('inodes');
  const byIno = new Map<number, InodeRecord>();
  for (const r of snap.inodes) {
    if (typeof r !== 'object' || r === null) bad('inode not an object');
    if (!isInt(r.ino, 1) || r.ino >= snap.nextIno) bad(`ino ${showValue(r.ino)}`);
    if (byIno.has(r.ino)) bad(`duplicate ino ${r.ino}`);
    if (r.kind !== 'file' && r.kind !== 'dir' && r.kind !== 'symlink') bad(`kind of ${r.ino}`);
    const type = r.kind === 'file' ? S_IFREG : r.kind === 'dir' ? S_IFDIR : S_IFLNK;
    if (!isInt(r.mode) || (r.mode & S_IFMT) !== type || (r.mode & ~(S_IFMT | MODE_PERM_MASK)) !== 0) {
      bad(`mode of ${r.ino}`);
    }
    if (!isInt(r.uid) || r.uid > 0xffffffff || !isInt(r.gid) || r.gid > 0xffffffff) bad(`uid/gid of ${r.ino}`);
    if (!isInt(r.nlink)) bad(`nlink of ${r.ino}`);
    if (!isTimespec(r.atime) || !isTimespec(r.mtime) || !isTimespec(r.ctime)) bad(`times of ${r.ino}`);
    if (r.kind === 'file' && !isInt(r.size)) bad(`size of ${r.ino}`);
    if (r.kind === 'symlink' && (typeof r.target !== 'string' || r.target.length === 0)) bad(`target of ${r.ino}`);
    if (r.kind === 'dir') {
      if (!isInt(r.parent, 1) || !isInt(r.nextCookie, 3) || !Array.isArray(r.entries)) bad(`dir fields of ${r.ino}`);
      let prev = 2;
      const names = new Set<string>();
      for (const e of r.entries) {
        if (!Array.isArray(e) || e.length !== 3) bad(`entry of ${r.ino}`);
        const [name, ino, cookie] = e;
        if (typeof name !== 'string' || nameError(name, enc) !== null || name === '.' || name === '..') {
          bad(`entry name in ${r.ino}`);
        }
        if (names.has(name)) bad(`duplicate entry ${name} in ${r.ino}`);
        names.add(name);
        if (!isInt(ino, 1)) bad(`entry ino in ${r.ino}`);
        if (!isInt(cookie) || cookie <= prev || cookie >= r.nextCookie) bad(`entry cookie in ${r.ino}`);
        prev = cookie;
      }
    }
    byIno.set(r.ino, r);
  }
  const root = byIno.get(1);
  if (!root || root.kind !== 'dir' || root.parent !== 1) bad('no root directory');
  const links = new Map<number, number>();
  const subdirs = new Map<number, number>();
  for (const r of byIno.values()) {
    if (r.kind !== 'dir') continue;
    for (const [name, ino] of r.entries!) {
      const child = byIno.get(ino);
      if (!child) bad(`entry ${name} in ${r.ino} points at missing inode ${ino}`);
      links.set(ino, (links.get(ino) ?? 0) + 1);
      if (child.kind === 'dir') {
        if (child.parent !== r.ino) bad(`parent of directory ${ino}`);
        subdirs.set(r.ino, (subdirs.get(r.ino) ?? 0) + 1);
      }
    }
  }
  for (const r of byIno.values()) {
    const n = links.get(r.ino) ?? 0;
    if (r.kind === 'dir') {
      if (r.ino !== 1 && n > 1) bad(`directory ${r.ino} has ${n} links`);
      const expect = r.ino === 1 || n === 1 ? 2 + (subdirs.get(r.ino) ?? 0) : 0;
      if (r.nlink !== expect) bad(`nlink of directory ${r.ino} is ${r.nlink}, expected ${expect}`);
      if (r.nlink === 0 && r.entries!.length !== 0) bad(`removed directory ${r.ino} has entries`);
    } else if (r.nlink !== n) {
      bad(`nlink of ${r.ino} is ${r.nlink}, but ${n} entries name it`);
    }
  }
  return snap;
}

/**
 * How names (and symlink targets) are represented as JS strings: 'utf8' (the daemon decoded the
 * kernel's bytes as UTF-8) or 'latin1' (one char per byte: byte-exact for names that are not valid
 * UTF-8; every char must then be <= U+00FF). Only byte lengths depend on it.
 */
export type NameEncoding = 'utf8' | 'latin1';

/** Length in bytes of `s` under `enc`, or -1 if `s` cannot be represented (latin1 chars > U+00FF). */
export function byteLength(s: string, enc: NameEncoding): number {
  if (enc === 'latin1') {
    for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) > 0xff) return -1;
    return s.length;
  }
  return Buffer.byteLength(s, 'utf8');
}

/** Returns the errno name for an invalid name component, or null if valid. */
export function nameError(name: unknown, enc: NameEncoding = 'utf8'): 'EINVAL' | 'ENOENT' | 'ENAMETOOLONG' | null {
  if (typeof name !== 'string') return 'EINVAL';
  if (name.length === 0) return 'ENOENT';
  if (name.includes('/') || name.includes('\0')) return 'EINVAL';
  const n = byteLength(name, enc);
  if (n < 0) return 'EINVAL';
  if (n > NAME_MAX) return 'ENAMETOOLONG';
  return null;
}

/**
 * Apply journal changes to a snapshot, returning a new snapshot (the input is not modified).
 * Throws FsError('EINVAL') if a record does not fit the snapshot (a corrupt or mismatched journal),
 * or if a change's seq is not exactly the next one.
 */
export function applyChanges(snapshot: FsSnapshot, changes: Iterable<MetadataChange>): FsSnapshot {
  const inodes = new Map<number, InodeRecord>();
  /** Directory entries while replaying: name -> [ino, cookie] (Map keeps replay O(records)). */
  const dirs = new Map<number, Map<string, [number, number]>>();
  for (const r of snapshot.inodes) {
    const c = cloneRecord(r);
    inodes.set(c.ino, c);
    if (c.entries) dirs.set(c.ino, new Map(c.entries.map((e) => [e[0], [e[1], e[2]]])));
  }
  let nextIno = snapshot.nextIno;
  let seq = snapshot.seq;
  const bad = (msg: string): never => {
    throw new FsError('EINVAL', `journal does not fit the snapshot: ${msg}`);
  };
  const need = (ino: number): InodeRecord => inodes.get(ino) ?? bad(`unknown inode ${ino}`);
  const needDir = (ino: number): [InodeRecord, Map<string, [number, number]>] => {
    const r = need(ino);
    const m = dirs.get(ino);
    if (!m) bad(`inode ${ino} is not a directory`);
    return [r, m!];
  };
  for (const ch of changes) {
    if (ch.seq !== seq + 1) bad(`seq ${ch.seq} does not follow ${seq}`);
    seq = ch.seq;
    for (const rec of ch.records) {
      switch (rec.t) {
        case 'new': {
          if (inodes.has(rec.inode.ino)) bad(`re-creates inode ${rec.inode.ino}`);
          const c = cloneRecord(rec.inode);
          inodes.set(c.ino, c);
          if (c.kind === 'dir') dirs.set(c.ino, new Map((c.entries ?? []).map((e) => [e[0], [e[1], e[2]]])));
          break;
        }
        case 'attr': {
          const r = need(rec.ino);
          const s = rec.set;
          if (s.mode !== undefined) r.mode = s.mode;
          if (s.uid !== undefined) r.uid = s.uid;
          if (s.gid !== undefined) r.gid = s.gid;
          if (s.nlink !== undefined) r.nlink = s.nlink;
          if (s.atime !== undefined) r.atime = { ...s.atime };
          if (s.mtime !== undefined) r.mtime = { ...s.mtime };
          if (s.ctime !== undefined) r.ctime = { ...s.ctime };
          if (s.size !== undefined) r.size = s.size;
          if (s.parent !== undefined) r.parent = s.parent;
          break;
        }
        case 'link': {
          const [d, m] = needDir(rec.dir);
          m.delete(rec.name); // re-insert at the end: Map order = cookie order
          m.set(rec.name, [rec.ino, rec.cookie]);
          d.nextCookie = Math.max(d.nextCookie ?? 3, rec.cookie + 1);
          break;
        }
        case 'unlink': {
          const [, m] = needDir(rec.dir);
          if (!m.delete(rec.name)) bad(`unlinks missing entry ${showValue(rec.name)} of ${rec.dir}`);
          break;
        }
        case 'free':
          need(rec.ino);
          inodes.delete(rec.ino);
          dirs.delete(rec.ino);
          break;
        default:
          bad(`unknown record type ${showValue((rec as { t?: unknown }).t)}`);
      }
    }
    nextIno = Math.max(nextIno, ch.nextIno);
  }
  for (const [ino, m] of dirs) {
    const r = inodes.get(ino)!;
    r.entries = [...m].map(([name, [child, cookie]]) => [name, child, cookie] as DirentRecord);
    r.entries.sort((a, b) => a[2] - b[2]);
  }
  return {
    format: 'faultline-fs',
    version: 1,
    nextIno,
    seq,
    inodes: [...inodes.values()].sort((a, b) => a.ino - b.ino),
  };
}
