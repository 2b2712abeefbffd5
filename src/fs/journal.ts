// Durable metadata for the file-backed store (--store DIR): a write-ahead journal of the
// Filesystem's MetadataChange records plus a compacted snapshot, and the store directory's
// format file and owner lock.
//
// Files in DIR:
//   FORMAT        {"format":"faultline-store","version":1}  (written once, at creation)
//   lock          {"pid":N,"start":S,"mountpoint":M}         (the live daemon that owns the store)
//   meta.snap     "<crc32 hex> <FsSnapshot JSON>\n"           (replaced atomically by compaction)
//   journal       "<crc32 hex> <MetadataChange JSON>\n" ...   (appended, one line per change)
//   clean         present only after a clean close (allocation maps are exact then)
//
// Crash-safety argument (what is durable when fsync returns):
// - Every metadata-changing operation appends its change to the journal with write(2) before the
//   FUSE reply (Filesystem calls onMetadataChange synchronously, and a write's new size/mtime is
//   journaled right after the data reached the store). So once an operation is acknowledged, its
//   record is in the kernel's page cache: a `kill -9` of the daemon loses nothing that was
//   acknowledged, metadata included.
// - fsync/fdatasync (and close, which syncs too) on any file fdatasync()s the journal after the
//   file's data: every record emitted before the fsync call is then on disk, in order. A power loss
//   can only tear records past the last fdatasync; each line carries a CRC-32 of its JSON, and replay
//   stops at the first line that is torn, corrupt, or whose seq does not follow: those records were
//   never covered by an acknowledged fsync (everything before the last fdatasync was complete).
// - Compaction writes the snapshot to a temp file, fsyncs it, renames it over meta.snap, fsyncs the
//   directory, and only then truncates the journal. A crash anywhere in between leaves either the
//   old snapshot + full journal or the new snapshot + (possibly) old journal records, which replay
//   skips because their seq is <= the snapshot's.

import { closeSync, fsyncSync, fdatasync, ftruncateSync, openSync, readFileSync, renameSync, writeSync, existsSync, unlinkSync, linkSync, writeFileSync, readdirSync, constants as fsc, fstatSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { applyChanges, validateSnapshot, type FsSnapshot, type MetadataChange } from './metadata.js';

export const STORE_FORMAT = 'faultline-store';
export const STORE_VERSION = 1;

function crcHex(s: string): string {
  return crc32(s).toString(16).padStart(8, '0');
}

/** One checksummed line. */
export function encodeLine(obj: unknown): string {
  const json = JSON.stringify(obj);
  return `${crcHex(json)} ${json}\n`;
}

/** The JSON of a checksummed line, or undefined if torn/corrupt. */
export function decodeLine(line: string): unknown {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  if (crcHex(json) !== line.slice(0, 8)) return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write `data` to `path` atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeFileAtomic(dir: string, name: string, data: string): void {
  const tmp = join(dir, `.${name}.tmp`);
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o644);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  fsyncDir(dir);
}

// ------------------------------------------------------------------ format and lock

/** Check (or create, for an empty/missing dir's contents) the FORMAT file. Throws with advice. */
export function checkFormat(dir: string): 'created' | 'existing' {
  const f = join(dir, 'FORMAT');
  if (!existsSync(f)) {
    const entries = readdirSync(dir).filter((e) => e !== 'lost+found');
    if (entries.length > 0) {
      throw new Error(`store ${dir} is not empty and has no FORMAT file: it is not a faultline store. Use an empty or new directory for --store.`);
    }
    writeFileAtomic(dir, 'FORMAT', JSON.stringify({ format: STORE_FORMAT, version: STORE_VERSION }) + '\n');
    return 'created';
  }
  let v: { format?: unknown; version?: unknown };
  try {
    v = JSON.parse(readFileSync(f, 'utf8')) as typeof v;
  } catch (e) {
    throw new Error(`store ${dir}: FORMAT is unreadable (${(e as Error).message}); not a faultline store of a known format. Use a new directory for --store.`);
  }
  if (v.format !== STORE_FORMAT) throw new Error(`store ${dir}: FORMAT says "${String(v.format)}", not ${STORE_FORMAT}. Use a new directory for --store.`);
  if (v.version !== STORE_VERSION) {
    throw new Error(`store ${dir} has format version ${String(v.version)}; this faultline reads version ${STORE_VERSION} only. Use the faultline that wrote it, or a new directory for --store.`);
  }
  return 'existing';
}

/** Start time of a process (clock ticks since boot, /proc/PID/stat field 22), or undefined if it does not exist. */
function procStart(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined; // a zombie holds nothing
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

export interface StoreLock {
  release(): void;
}

/**
 * Take the store's owner lock: DIR/lock is created atomically with link(2) (fails if it exists).
 * An existing lock whose process is alive (same pid AND same start time) refuses the mount; a
 * stale one (its daemon died, e.g. kill -9) is taken over. Node has no flock(2), hence pid + start
 * time liveness.
 */
export function acquireLock(dir: string, mountpoint: string): StoreLock {
  const path = join(dir, 'lock');
  const me = { pid: process.pid, start: procStart(process.pid), mountpoint };
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = join(dir, `.lock.${process.pid}`);
    writeFileSync(tmp, JSON.stringify(me) + '\n');
    try {
      linkSync(tmp, path);
      unlinkSync(tmp);
      return {
        release: () => {
          try {
            const cur = JSON.parse(readFileSync(path, 'utf8')) as { pid?: number };
            if (cur.pid === process.pid) unlinkSync(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      unlinkSync(tmp);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner: { pid?: number; start?: number; mountpoint?: string } = {};
    try {
      owner = JSON.parse(readFileSync(path, 'utf8')) as typeof owner;
    } catch {
      /* torn lock file: treat as stale */
    }
    const alive = typeof owner.pid === 'number' && owner.pid !== process.pid && procStart(owner.pid) !== undefined && procStart(owner.pid) === owner.start;
    if (alive) {
      throw new Error(
        `store ${dir} is in use by faultline daemon pid ${owner.pid}${owner.mountpoint ? ` (mounted on ${owner.mountpoint})` : ''}: ` +
          `unmount it first (umount ${owner.mountpoint ?? 'MOUNTPOINT'}), or use another --store directory`,
      );
    }
    try {
      unlinkSync(path); // stale: its daemon is gone
    } catch {
      /* raced with another taker */
    }
  }
  throw new Error(`store ${dir}: could not take the lock file ${path} (another daemon is starting on it?)`);
}

// ------------------------------------------------------------------ snapshot + journal

export interface LoadedMetadata {
  /** The snapshot with every valid journal record applied; undefined for a fresh store. */
  snapshot: FsSnapshot | undefined;
  /** Journal records replayed. */
  replayed: number;
  /** Bytes of the journal that were dropped (torn/corrupt tail). */
  droppedBytes: number;
  /** Why replay stopped early, if it did. */
  stopReason?: string;
}

/** Load meta.snap and replay the journal's valid prefix onto it. */
export function loadMetadata(dir: string): LoadedMetadata {
  let snap: FsSnapshot | undefined;
  const snapPath = join(dir, 'meta.snap');
  if (existsSync(snapPath)) {
    const text = readFileSync(snapPath, 'utf8');
    const v = decodeLine(text.endsWith('\n') ? text.slice(0, -1) : text);
    if (v === undefined) throw new Error(`store ${dir}: meta.snap fails its checksum (corrupt). The store cannot be opened; use a new directory for --store.`);
    snap = validateSnapshot(v);
  }
  const jPath = join(dir, 'journal');
  if (!existsSync(jPath)) return { snapshot: snap, replayed: 0, droppedBytes: 0 };
  const buf = readFileSync(jPath);
  const changes: MetadataChange[] = [];
  let pos = 0;
  let stopReason: string | undefined;
  let seq = snap?.seq ?? 0;
  let goodEnd = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) {
      stopReason = 'torn last line';
      break;
    }
    const v = decodeLine(buf.toString('utf8', pos, nl)) as MetadataChange | undefined;
    if (v === undefined || typeof v.seq !== 'number' || !Array.isArray(v.records)) {
      stopReason = `corrupt line at byte ${pos}`;
      break;
    }
    if (v.seq <= seq) {
      // Already in the snapshot (a compaction crashed before truncating the journal).
      pos = nl + 1;
      goodEnd = pos;
      continue;
    }
    if (v.seq !== seq + 1) {
      stopReason = `seq ${v.seq} does not follow ${seq} at byte ${pos}`;
      break;
    }
    changes.push(v);
    seq = v.seq;
    pos = nl + 1;
    goodEnd = pos;
  }
  if (changes.length === 0) return { snapshot: snap, replayed: 0, droppedBytes: buf.length - goodEnd, stopReason };
  // The daemon compacts right after creating a fresh filesystem, so a journal without a snapshot
  // means that first compaction never completed: there is nothing to replay onto.
  if (!snap) return { snapshot: undefined, replayed: 0, droppedBytes: buf.length, stopReason: 'journal without snapshot' };
  let applied: FsSnapshot;
  let replayed = changes.length;
  try {
    applied = applyChanges(snap, changes);
  } catch {
    // Some record does not fit (cannot happen without a bug or a corruption the CRC missed): replay
    // change by change (each call copies the snapshot, hence only on this path) and stop there.
    applied = snap;
    replayed = 0;
    for (const ch of changes) {
      try {
        applied = applyChanges(applied, [ch]);
        replayed++;
      } catch (e) {
        stopReason = `change seq ${ch.seq} does not fit: ${(e as Error).message}`;
        break;
      }
    }
  }
  return { snapshot: validateSnapshot(applied), replayed, droppedBytes: buf.length - goodEnd, stopReason };
}

/**
 * The journal writer. append() is synchronous (write(2) of one line); sync() fdatasyncs on the
 * thread pool with group commit: concurrent callers share one fdatasync, and a caller whose records
 * were appended after an in-flight fdatasync started waits for the next one.
 */
export class Journal {
  readonly dir: string;
  #fd: number;
  #bytes = 0;
  /** Number of appends so far; #synced = appends covered by the last completed fdatasync. */
  #appended = 0;
  #synced = 0;
  #inflight: Promise<void> | null = null;
  #inflightCovers = 0;
  #closed = false;

  constructor(dir: string) {
    this.dir = dir;
    this.#fd = openSync(join(dir, 'journal'), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, 0o644);
    this.#bytes = fstatSync(this.#fd).size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get dirty(): boolean {
    return this.#synced < this.#appended;
  }

  append(change: MetadataChange): void {
    if (this.#closed) throw new Error('journal is closed');
    const line = encodeLine(change);
    const b = Buffer.from(line, 'utf8');
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off, b.length - off);
    this.#bytes += b.length;
    this.#appended++;
  }

  /** Make every record appended before this call durable. */
  async sync(): Promise<void> {
    const target = this.#appended;
    while (this.#synced < target) {
      if (this.#closed) return;
      if (this.#inflight) {
        await this.#inflight.catch(() => undefined);
        continue;
      }
      const covers = this.#appended;
      this.#inflightCovers = covers;
      const fd = this.#fd;
      this.#inflight = new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
      try {
        await this.#inflight;
        this.#synced = Math.max(this.#synced, covers);
      } finally {
        this.#inflight = null;
      }
    }
  }

  /** Replace snapshot + journal by a snapshot of `snap` (synchronous; see the header). */
  compact(snap: FsSnapshot): void {
    fsyncSync(this.#fd); // records up to snap.seq durable first (in case the rename is not)
    writeFileAtomic(this.dir, 'meta.snap', encodeLine(snap));
    ftruncateSync(this.#fd, 0);
    fsyncSync(this.#fd);
    this.#bytes = 0;
    this.#synced = this.#appended;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      fsyncSync(this.#fd);
    } finally {
      closeSync(this.#fd);
    }
  }

  get inflightCovers(): number {
    return this.#inflightCovers;
  }
}

/** Mark the store cleanly closed / open (allocation maps exact only after a clean close). */
export function setClean(dir: string, clean: boolean): void {
  const p = join(dir, 'clean');
  if (clean) writeFileAtomic(dir, 'clean', `${Date.now()}\n`);
  else if (existsSync(p)) {
    unlinkSync(p);
    fsyncDir(dir);
  }
}

export function wasClean(dir: string): boolean {
  return existsSync(join(dir, 'clean'));
}
