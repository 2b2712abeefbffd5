// Scheduler-driven race scenarios for the data path (helper D). fast-check's scheduler decides when
// every operation starts, when every store access happens, and when interrupts fire; the history
// of operation results is then checked for linearizability against the sequential file model
// (P7 no stale read, P8 nothing past EOF, P9 per-request atomicity), and the quiescent state is
// checked: cache equals store, no cached page past EOF, store zero past EOF, lock idle, no filling page.

import fc from 'fast-check';
import { createFileData, type CacheMode, type CachedFileData } from '../../src/fs/file-data.js';
import { PageCache, PageState } from '../../src/fs/page-cache.js';
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FsError,
  PAGE_SIZE,
  type BugMode,
  type FaultHooks,
} from '../../src/fs/types.js';
import { checkLinearizable, FileModel, pattern, type FileOp, type HistoryEntry } from './dp-model.js';
import { GatedStore, storeZeroFrom, TestStore } from './dp-store.js';
import type { FileStore } from '../../src/fs/types.js';

export const NP = 6; // file space in pages
const SPACE = NP * PAGE_SIZE;

export type ScenOp =
  | { k: 'read'; off: number; len: number; abort?: boolean }
  | { k: 'write'; off: number; len: number; oob?: boolean; abort?: boolean }
  | { k: 'punch'; off: number; len: number; oob?: boolean; abort?: boolean }
  | { k: 'zero'; off: number; len: number; keep: boolean; oob?: boolean; abort?: boolean }
  | { k: 'alloc'; off: number; len: number; keep: boolean; abort?: boolean }
  | { k: 'truncate'; size: number; oob?: boolean; abort?: boolean };

export interface Scenario {
  initSize: number;
  holes: number[]; // initially unallocated pages
  capacity: number;
  readahead: number;
  mode: CacheMode;
  prewarm: boolean;
  ops: ScenOp[];
}

const offArb = fc.oneof(
  fc.nat(NP - 1).map((p) => p * PAGE_SIZE),
  fc.nat(NP * 4 - 1).map((u) => u * 1024),
  fc.nat(SPACE - 1),
);
const lenArb = fc.oneof(
  fc.integer({ min: 1, max: 3 }).map((p) => p * PAGE_SIZE),
  fc.integer({ min: 1, max: 8 }).map((u) => u * 1024),
  fc.integer({ min: 1, max: 3 * PAGE_SIZE }),
);
const sizeArb = fc.oneof(
  fc.nat(NP).map((p) => p * PAGE_SIZE),
  fc.nat(NP * 4).map((u) => u * 1024),
  fc.nat(SPACE),
);

export interface OpWeights {
  read?: number;
  write?: number;
  punch?: number;
  zero?: number;
  alloc?: number;
  truncate?: number;
}

export function opArb(w: OpWeights = {}): fc.Arbitrary<ScenOp> {
  const abort = fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const oob = fc.boolean();
  return fc.oneof(
    { weight: w.read ?? 5, arbitrary: fc.record({ k: fc.constant('read' as const), off: offArb, len: lenArb, abort }) },
    { weight: w.write ?? 3, arbitrary: fc.record({ k: fc.constant('write' as const), off: offArb, len: lenArb, oob, abort }) },
    { weight: w.punch ?? 3, arbitrary: fc.record({ k: fc.constant('punch' as const), off: offArb, len: lenArb, oob, abort }) },
    { weight: w.zero ?? 1, arbitrary: fc.record({ k: fc.constant('zero' as const), off: offArb, len: lenArb, keep: fc.boolean(), oob, abort }) },
    { weight: w.alloc ?? 1, arbitrary: fc.record({ k: fc.constant('alloc' as const), off: offArb, len: lenArb, keep: fc.boolean(), abort }) },
    { weight: w.truncate ?? 2, arbitrary: fc.record({ k: fc.constant('truncate' as const), size: sizeArb, oob, abort }) },
  );
}

export interface ScenarioArbOptions {
  weights?: OpWeights;
  maxOps?: number;
  modes?: CacheMode[];
  capacities?: number[];
  readaheads?: number[];
}

export function scenarioArb(o: ScenarioArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc.record({
    initSize: sizeArb,
    holes: fc.uniqueArray(fc.nat(NP - 1), { maxLength: 2 }),
    capacity: fc.constantFrom(...(o.capacities ?? [64, 64, 3, 0])),
    readahead: fc.constantFrom(...(o.readaheads ?? [0, 2])),
    mode: fc.constantFrom(...(o.modes ?? (['write-through', 'writeback'] as CacheMode[]))),
    prewarm: fc.boolean(),
    ops: fc.array(opArb(o.weights), { minLength: 2, maxLength: o.maxOps ?? 7 }),
  });
}

/** Run `p` to completion, letting the scheduler release everything that is scheduled meanwhile. */
export async function drive<T>(s: fc.Scheduler, p: Promise<T>): Promise<T> {
  let settled = false;
  const q = p.finally(() => {
    settled = true;
  });
  q.catch(() => undefined);
  for (let i = 0; !settled; i++) {
    if (i > 100_000) throw new Error('drive: no progress (deadlock?)');
    await s.waitAll();
    await new Promise((r) => setImmediate(r));
  }
  return q;
}

function toFileOp(op: ScenOp, id: number): FileOp {
  switch (op.k) {
    case 'read':
      return { kind: 'read', off: op.off, len: op.len };
    case 'write':
      return { kind: 'write', off: op.off, data: pattern(id + 1, op.len) };
    case 'punch':
      return { kind: 'punch', off: op.off, len: op.len };
    case 'zero':
      return { kind: 'zero', off: op.off, len: op.len, keep: op.oob ? true : op.keep };
    case 'alloc':
      return { kind: 'alloc', off: op.off, len: op.len, keep: op.keep };
    case 'truncate':
      return { kind: 'truncate', size: op.size };
  }
}

async function exec(fd: CachedFileData, op: ScenOp, fop: FileOp, signal?: AbortSignal): Promise<Buffer | undefined> {
  switch (op.k) {
    case 'read':
      return await fd.read(op.off, op.len, signal);
    case 'write':
      if (op.oob) await fd.writeAt(op.off, (fop as { data: Buffer }).data, { signal });
      else await fd.write(op.off, (fop as { data: Buffer }).data, signal);
      return;
    case 'punch':
      if (op.oob) await fd.punch(op.off, op.len, { signal });
      else await fd.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, op.off, op.len, signal);
      return;
    case 'zero':
      if (op.oob) await fd.zero(op.off, op.len, { signal });
      else await fd.fallocate(FALLOC_FL_ZERO_RANGE | (op.keep ? FALLOC_FL_KEEP_SIZE : 0), op.off, op.len, signal);
      return;
    case 'alloc':
      await fd.fallocate(op.keep ? FALLOC_FL_KEEP_SIZE : 0, op.off, op.len, signal);
      return;
    case 'truncate':
      if (op.oob) await fd.truncate(op.size, { signal });
      else await fd.setSize(op.size, signal);
      return;
  }
}

export interface RunOptions {
  /** 'test' (default): TestStore; 'memory': helper B's MemoryFileStore. */
  backing?: 'test' | 'memory';
  faults?: FaultHooks;
  witness?: import('../../src/fs/witness.js').Witness;
}

/** Run a scenario under scheduler `s`; throws (with a description) on any violation. */
export async function runScenario(s: fc.Scheduler, sc: Scenario, ro: RunOptions = {}): Promise<void> {
  // helper B's store is imported lazily, so the other scenarios do not depend on it
  const inner: FileStore =
    ro.backing === 'memory'
      ? new (await import('../../src/fs/memory-store.js')).MemoryStoreBackend({ capacityBytes: 64 << 20 }).open(1)
      : new TestStore();
  const store = new GatedStore(inner);
  const init = pattern(1000, sc.initSize);
  await inner.write(0, init);
  for (const h of sc.holes) {
    if (h * PAGE_SIZE < sc.initSize) await inner.punch(h * PAGE_SIZE, PAGE_SIZE); // some pages are holes
    init.fill(0, h * PAGE_SIZE, Math.min((h + 1) * PAGE_SIZE, sc.initSize));
  }
  const model = FileModel.of(sc.initSize, SPACE * 2, init);

  const cache = new PageCache({ capacityPages: sc.capacity, dirtyLimitPages: sc.capacity >= 64 ? 16 : 2 });
  const fd = createFileData(1, store, {
    cache,
    initialSize: sc.initSize,
    cacheMode: sc.mode,
    readaheadPages: sc.readahead,
    faults: ro.faults,
    witness: ro.witness,
  });
  if (sc.prewarm && sc.initSize > 0) await fd.read(0, sc.initSize); // gate-free: store not gated yet

  store.gate = (label) => s.schedule(Promise.resolve(label), label);
  let clock = 0;
  const history: HistoryEntry[] = [];
  const run = async (op: ScenOp, id: number): Promise<void> => {
    const fop = toFileOp(op, id);
    let ctl: AbortController | undefined;
    if (op.abort) {
      ctl = new AbortController();
      void s.schedule(Promise.resolve(), `abort ${id}`).then(() => ctl!.abort());
    }
    const inv = ++clock;
    let result: Buffer | undefined;
    try {
      result = await exec(fd, op, fop, ctl?.signal);
    } catch (e) {
      if (e instanceof FsError && e.code === 'EINTR') return; // aborted while waiting: no effect
      throw e;
    }
    const res = ++clock;
    history.push({ op: fop, inv, res, result: op.k === 'read' ? Buffer.from(result!) : undefined, label: `${id}:${op.k}` });
  };
  const all = Promise.all(sc.ops.map((op, id) => s.schedule(Promise.resolve(), `start ${id} ${op.k}`).then(() => run(op, id))));
  await drive(s, all);
  await drive(s, fd.sync());
  // final read: after everything, sequential
  const inv = ++clock;
  const fin = await drive(s, Promise.resolve(fd.read(0, SPACE * 2)));
  history.push({ op: { kind: 'read', off: 0, len: SPACE * 2 }, inv, res: ++clock, result: Buffer.from(fin), label: 'final' });

  const lin = checkLinearizable(history, model);
  if (!lin.ok) throw new Error(`not linearizable: ${lin.reason}`);

  // quiescence
  store.gate = undefined;
  if (!fd.lock.idle) throw new Error('lock not idle after quiescence');
  cache.checkInvariants();
  const size = fd.size;
  if (!(await storeZeroFrom(inner, size))) throw new Error(`store holds data past EOF ${size}`);
  const ip = cache.forInode(1);
  for (const p of [...ip.pages()]) {
    if (p.state === PageState.Filling) throw new Error(`page ${p.index} still filling`);
    if (p.state !== PageState.Clean) throw new Error(`page ${p.index} not clean after sync`);
    if (p.index * PAGE_SIZE >= size) throw new Error(`page ${p.index} cached past EOF ${size}`);
    const sp = (await inner.readPage(p.index)) ?? Buffer.alloc(PAGE_SIZE);
    if (!p.buf!.equals(sp)) throw new Error(`cached page ${p.index} differs from the store`);
  }
}

export function raceProperty(o: ScenarioArbOptions = {}, ro: () => RunOptions = () => ({})) {
  return fc.asyncProperty(fc.scheduler(), scenarioArb(o), async (s, sc) => {
    await runScenario(s, sc, ro());
  });
}

/** A FaultHooks with the given bug modes always on (chance() always true). */
export function bugs(...modes: BugMode[]): FaultHooks {
  return { delay: () => undefined, bug: (m) => modes.includes(m), chance: (m) => modes.includes(m) };
}
