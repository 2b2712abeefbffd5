// The faultline daemon: one process serving one mount. Builds the store, page cache, fault
// injection, witness and filesystem, mounts through the FUSE facade, serves the control socket,
// prints the ready line, and unmounts cleanly on SIGINT/SIGTERM.

import { readdir } from 'node:fs/promises';
import { resolve as resolvePath, relative, isAbsolute } from 'node:path';
import { mount, preflight, type FuseSession } from '../fuse/index.js';
import { Filesystem } from '../fs/filesystem.js';
import { MemoryStoreBackend } from '../fs/memory-store.js';
import { PageCache } from '../fs/page-cache.js';
import { DataPathStats, fileDataFactory, type CachedFileData, type ChangeResult } from '../fs/file-data.js';
import { RangeLockStats } from '../fs/range-lock.js';
import { Witness } from '../fs/witness.js';
import { FsError, type StoreBackend } from '../fs/types.js';
import type { FsSnapshot, MetadataChange } from '../fs/metadata.js';
import { Faults, BUG_MODES, DELAY_POINTS } from '../faults/index.js';
import { ControlServer, type ControlRequest } from '../control/server.js';
import { controlPathsFor } from '../control/paths.js';
import { createOps } from './bridge.js';
import { RequestStats } from './stats.js';
import { Trace } from './trace.js';
import type { MountOptions } from './options.js';
import { VERSION } from '../version.js';

export interface Daemon {
  session: FuseSession;
  stop(): Promise<void>;
}

function log(line: string): void {
  process.stderr.write(`faultline: ${line}\n`);
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new FsError('EINVAL', `${what} must be a non-negative integer`);
  return v;
}

/** What openBackend returns: the backend, and for --store the persisted metadata and journal hooks. */
interface OpenedBackend {
  backend: StoreBackend;
  /** Metadata to restore (--store with existing content). */
  snapshot?: FsSnapshot;
  /** Journal hook (--store). */
  onMetadataChange?: (change: MetadataChange) => void;
  /** Hand the store the Filesystem (compaction). */
  attach?: (fs: { snapshot(): FsSnapshot }) => void;
  close?: () => Promise<void>;
  /** fsyncdir: make metadata durable (--store). */
  syncMetadata?: () => Promise<void>;
}

/** Opens the store backend for the options (memory, or --store DIR, which must lie outside `mountpoint`). */
async function openBackend(options: MountOptions, mountpoint: string): Promise<OpenedBackend> {
  const capacityBytes = Number.isFinite(options.capacity) ? options.capacity : undefined;
  if (options.store) {
    // The file-backed store (src/fs/file-store.ts) is loaded only when asked for (it needs mmap-io).
    const { openFileStore } = await import('../fs/file-store.js');
    const opened = await openFileStore(options.store, { capacityBytes, mountpoint, log });
    return { ...opened, syncMetadata: () => opened.backend.syncMetadata() };
  }
  return { backend: new MemoryStoreBackend({ capacityBytes }) };
}

export async function startDaemon(mountpoint: string, options: MountOptions): Promise<Daemon> {
  const real = await preflight(mountpoint, { allowOther: options.allowOther });
  // FUSE could mount over a non-empty directory; a test bench must not hide files under a mount.
  if ((await readdir(real)).length > 0) throw new Error(`mountpoint ${real} is not empty: mount on an empty directory (the mount would hide its contents)`);
  const faults = new Faults({ seed: options.seed, bugs: options.bugs, delays: options.delays });
  const cache = new PageCache({ capacityPages: options.cachePages });
  const lockStats = new RangeLockStats();
  const dataStats = new DataPathStats();
  let trace: Trace | undefined;
  // The witness logs its first events and then every 1000th (the exact counts are in ctl stats):
  // a stress run can produce thousands, and a benchmark that rewrites the same bytes after a
  // punch looks like one (the witness assumes unique content, as the stress patterns have).
  let witnessLogged = 0;
  const witness = new Witness({
    trace: (r) => {
      witnessLogged++;
      if (witnessLogged <= 10 || witnessLogged % 1000 === 0) {
        log(`witness: late write of punched data (#${witnessLogged}): ino ${r.ino} unit @${r.unitOffset} removed by ${r.op} [${r.rangeOffset}, +${r.rangeLength}) ${r.ageMs.toFixed(1)} ms earlier${witnessLogged === 10 ? '; further events: every 1000th, counts in faultline ctl stats' : ''}`);
      }
      trace?.line({ ev: 'witness', ...r });
    },
  });
  const store = await openBackend(options, real);
  const { backend, close: closeBackend } = store;
  const fsOptions = {
    backend,
    onMetadataChange: store.onMetadataChange,
    createFileData: fileDataFactory({
      cache,
      cacheMode: options.cacheMode,
      readaheadPages: options.readaheadPages,
      faults,
      witness,
      lockStats,
      stats: dataStats,
    }),
  };
  let fs: Filesystem<CachedFileData>;
  try {
    fs = store.snapshot ? Filesystem.restore(store.snapshot, fsOptions) : new Filesystem(fsOptions);
    store.attach?.(fs);
  } catch (e) {
    await closeBackend?.().catch(() => undefined);
    throw e;
  }
  const requestStats = new RequestStats();
  if (options.trace) trace = new Trace(options.trace);

  const ops = createOps({ fs, options, faults, stats: requestStats, syncMetadata: store.syncMetadata, trace: () => trace, log });
  const session = await mount(real, ops, {
    fsname: options.fsname,
    subtype: 'faultline',
    allowOther: options.allowOther,
    writebackCache: options.writebackCache,
    autoInvalData: options.autoInvalData,
    maxWrite: options.maxWrite,
    requestTimeoutMs: options.requestTimeout * 1000,
    debug: options.debug,
    handleSignals: false,
    log: (l) => log(l),
  });

  // ---- server-side changes and the control socket ----

  function fileOf(path: unknown): { ino: number } {
    if (typeof path !== 'string' || path === '') throw new FsError('EINVAL', 'path must be a non-empty string (relative to the mount root)');
    let rel = path;
    if (isAbsolute(path)) {
      // Accept both "/f" (relative to the mount root) and a full path inside the mount.
      const inside = relative(real, path);
      rel = inside.startsWith('..') || isAbsolute(inside) ? path.slice(1) : inside;
    }
    const ino = fs.resolvePath(rel);
    fs.fileData(ino); // EISDIR / EINVAL for anything but a regular file
    return { ino };
  }

  async function notify(ino: number, offset: number, length: number): Promise<{ sent: boolean; rc?: number; offset: number; length: number }> {
    if (faults.bug('no-notify')) return { sent: false, offset, length };
    const rc = await session.notifyInvalInode(ino, offset, length);
    requestStats.notifies++;
    if (rc !== 0 && rc !== -2) requestStats.notifyErrors++;
    return { sent: true, rc, offset, length };
  }

  /**
   * A server-side change: lock, change, publish, release (all inside the data path's call, with the
   * inode pinned by fs.serverChange), then notify the kernel: never while a range lock is held.
   */
  async function serverChange(ino: number, change: (data: CachedFileData, o: { beforeChange?: () => Promise<void> }) => Promise<ChangeResult>) {
    let early: { sent: boolean; rc?: number; offset: number; length: number } | undefined;
    const before = faults.bug('notify-before-change') && !faults.bug('no-notify');
    const o = before
      ? {
          // Re-opens the race on purpose: the kernel drops its pages before the change exists, so a
          // fault in between caches the old data again and nothing invalidates it afterwards.
          beforeChange: async () => {
            early = await notify(ino, 0, 0);
          },
        }
      : {};
    const res = await fs.serverChange(ino, (data) => change(data, o));
    const n = early ?? (await notify(ino, res.offset, res.length));
    return { ino, size: res.size, changed: res.changed, notify: n };
  }

  async function handle(req: ControlRequest): Promise<Record<string, unknown>> {
    switch (req.cmd) {
      case 'status':
        return {
          mountpoint: real,
          pid: process.pid,
          version: VERSION,
          options: { ...options, capacity: Number.isFinite(options.capacity) ? options.capacity : 'unlimited' },
          bugs: faults.status().bugs,
          bugProbability: faults.status().bugProbability,
          delays: faults.status().delays,
          seed: faults.status().seed,
          init: session.init,
          store: backend.kind,
          trace: trace?.path ?? null,
        };
      case 'stats':
        return {
          fuse: session.stats(),
          requests: requestStats.toJSON(),
          dataPath: dataStats.snapshot(),
          lock: lockStats.snapshot(),
          cache: cache.stats(),
          faults: faults.stats(),
          witness: witness.stats(),
          store: backend.usage(),
        };
      case 'set': {
        const knob = String(req.knob ?? '');
        if (!knob) throw new FsError('EINVAL', 'set needs a knob (bug.<mode>, delay.<point>, seed)');
        if (!faults.set(knob, req.value as string)) {
          throw new FsError('EINVAL', `unknown knob "${knob}"; knobs: bug.<mode> (${BUG_MODES.join(', ')}), delay.<point> (${DELAY_POINTS.join(', ')}), seed`);
        }
        return { knob, value: req.value, bugs: faults.status().bugs, delays: faults.status().delays };
      }
      case 'punch':
      case 'zero': {
        const { ino } = fileOf(req.path);
        const offset = int(req.offset, 'offset');
        const length = int(req.length, 'length');
        if (length === 0) throw new FsError('EINVAL', 'length must be > 0');
        return serverChange(ino, (data, o) => (req.cmd === 'punch' ? data.punch(offset, length, o) : data.zero(offset, length, o)));
      }
      case 'truncate': {
        const { ino } = fileOf(req.path);
        const size = int(req.size, 'size');
        return serverChange(ino, (data, o) => data.truncate(size, o));
      }
      case 'write': {
        const { ino } = fileOf(req.path);
        const offset = int(req.offset, 'offset');
        if (typeof req.data !== 'string') throw new FsError('EINVAL', 'data must be a base64 string');
        const bytes = Buffer.from(req.data, 'base64');
        return serverChange(ino, (data, o) => data.writeAt(offset, bytes, o));
      }
      case 'evict-kernel-cache': {
        const { ino } = fileOf(req.path);
        const offset = req.offset === undefined ? 0 : int(req.offset, 'offset');
        const length = req.length === undefined ? 0 : int(req.length, 'length');
        const rc = await session.notifyInvalInode(ino, offset, length);
        requestStats.notifies++;
        return { ino, notify: { sent: true, rc, offset, length } };
      }
      case 'trace': {
        if (req.on) {
          const file = typeof req.file === 'string' && req.file ? resolvePath(req.file) : `/tmp/faultline-trace-${process.pid}.jsonl`;
          const rel = relative(real, file);
          if (!rel.startsWith('..') && !isAbsolute(rel)) throw new FsError('EINVAL', `trace file ${file} is inside the mount: the trace would trace itself; put it elsewhere`);
          await trace?.close();
          trace = new Trace(file);
          return { on: true, file };
        }
        const file = trace?.path ?? null;
        const t = trace;
        trace = undefined;
        await t?.close();
        return { on: false, file };
      }
      default:
        throw new FsError('EINVAL', `unknown command "${req.cmd}"; commands: status, stats, set, punch, zero, truncate, write, evict-kernel-cache, trace`);
    }
  }

  const paths = controlPathsFor(real);
  const control = new ControlServer(paths, handle);
  try {
    await control.listen({ mountpoint: real, pid: process.pid, version: VERSION, options });
  } catch (e) {
    await session.unmount().catch(() => undefined);
    throw new Error(`cannot create the control socket ${paths.socket}: ${(e as Error).message}`);
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await control.close().catch(() => undefined);
      await session.unmount().catch((e: unknown) => log(`unmount: ${(e as Error).message}`));
      await fs.settle?.().catch?.(() => undefined);
      await trace?.close();
      await closeBackend?.().catch((e: unknown) => log(`closing the store: ${(e as Error).message}`));
    })());

  // Unmounted from outside (umount MNT, fusermount -u, a connection abort): release everything
  // (a --store is closed cleanly: synced, compacted, unlocked) so that the process can exit.
  void session.closed.then(() => {
    if (stopping) return;
    log('the mount went away: shutting down');
    void stop();
  });

  process.stdout.write(`faultline: mounted on ${real} (pid ${process.pid}, control ${paths.socket})\n`);
  return { session, stop };
}
