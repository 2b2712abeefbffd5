// Shared set-up for the Filesystem tests: a memory backend, the simple FileData, a deterministic
// clock, a journal recorder, and small helpers (errno capture, readdir collection).

import { MemoryStoreBackend } from '../../src/fs/memory-store.js';
import {
  Filesystem,
  type DirEntry,
  type DirEntryPlus,
  type FilesystemOptions,
  type FsSnapshot,
  type MetadataChange,
  type Timespec,
} from '../../src/fs/filesystem.js';
import { FsError } from '../../src/fs/types.js';
import { simpleFileDataFactory, type SimpleFileData } from './fs-simple-file-data.js';

/** A clock that advances by `stepNs` on every reading (strictly increasing times). */
export function steppingClock(startSec = 1_700_000_000, stepNs = 1000) {
  let ns = BigInt(startSec) * 1_000_000_000n;
  const clock = (): Timespec => {
    ns += BigInt(stepNs);
    return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
  };
  const advance = (sec: number) => {
    ns += BigInt(sec) * 1_000_000_000n;
  };
  return { clock, advance };
}

export interface Harness {
  fs: Filesystem;
  backend: MemoryStoreBackend;
  made: Map<number, SimpleFileData>;
  changes: MetadataChange[];
  base: FsSnapshot;
  advance: (sec: number) => void;
  options: FilesystemOptions;
}

export function makeFs(
  opts: { capacityBytes?: number; syncReads?: boolean } & Partial<FilesystemOptions> = {},
): Harness {
  const backend = new MemoryStoreBackend({ capacityBytes: opts.capacityBytes ?? 64 << 20 });
  const { factory, made } = simpleFileDataFactory({ syncReads: opts.syncReads ?? false });
  const { clock, advance } = steppingClock();
  const changes: MetadataChange[] = [];
  const options: FilesystemOptions = {
    backend,
    createFileData: factory,
    clock,
    rootUid: 0,
    rootGid: 0,
    onMetadataChange: (c) => changes.push(structuredClone(c)),
    ...opts,
  };
  const fs = new Filesystem(options);
  return { fs, backend, made, changes, base: fs.snapshot(), advance, options };
}

/** The errno name an operation fails with (sync or async), or undefined if it succeeds. */
export async function errnoOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw new Error(`non-FsError thrown: ${String(e)}`, { cause: e });
  }
  return undefined;
}

/** Synchronous variant: fails the test if the op returns a promise. */
export function errnoOfSync(fn: () => unknown): string | undefined {
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('expected a synchronous operation');
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
  return undefined;
}

/** Read a whole directory with a fresh handle, `batch` entries per readdir call. */
export function listDir(fs: Filesystem, ino: number, batch = 1000): DirEntry[] {
  const { fh } = fs.opendir(ino);
  const out: DirEntry[] = [];
  let off = 0;
  for (;;) {
    let n = 0;
    fs.readdir(ino, fh, off, (e) => {
      if (n === batch) return false;
      if (e.offset <= off) throw new Error(`readdir offset did not increase: ${off} -> ${e.offset} (${e.name})`);
      n++;
      out.push(e);
      off = e.offset;
      return true;
    });
    if (n === 0) break;
  }
  void fs.releasedir(ino, fh);
  return out;
}

export function names(entries: { name: string }[]): string[] {
  return entries.map((e) => e.name);
}

export type { DirEntryPlus };
