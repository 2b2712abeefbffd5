// Model test: the memory store against flat byte arrays plus an allocated-page bitmap, for random
// sequences of write / punch / allocate / truncate / destroy on two stores sharing one capacity limit.
// The modelled region straddles a chunk boundary so chunk creation and removal are exercised.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHUNK_PAGES, MemoryStoreBackend, type MemoryFileStore } from '../src/fs/memory-store.js';
import { FsError, PAGE_SIZE } from '../src/fs/types.js';

const P = PAGE_SIZE;
const N = 10; // pages in the modelled region
const BASE = CHUNK_PAGES - 4; // first page of the region (region crosses a chunk boundary)
const BASE_OFF = BASE * P;
const CAP = 14; // pages shared by both stores

interface StoreModel {
  bytes: Uint8Array;
  alloc: boolean[];
}

type Op =
  | { k: 'write'; s: number; off: number; len: number; byte: number }
  | { k: 'punch'; s: number; off: number; len: number }
  | { k: 'allocate'; s: number; off: number; len: number }
  | { k: 'truncate'; s: number; size: number }
  | { k: 'destroy'; s: number };

const offsetArb = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: N }), fc.constantFrom(0, 1, P - 1, 7)).map(([p, d]) => Math.min(p * P + d, N * P)),
  fc.integer({ min: 0, max: N * P }),
);
const rangeArb = fc
  .tuple(offsetArb, offsetArb)
  .map(([a, b]) => (a <= b ? { off: a, len: b - a } : { off: b, len: a - b }));
const storeArb = fc.integer({ min: 0, max: 1 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(storeArb, rangeArb, fc.integer({ min: 1, max: 255 })).map(([s, r, byte]) => ({ k: 'write' as const, s, ...r, byte })) },
  { weight: 3, arbitrary: fc.tuple(storeArb, rangeArb).map(([s, r]) => ({ k: 'punch' as const, s, ...r })) },
  { weight: 2, arbitrary: fc.tuple(storeArb, rangeArb).map(([s, r]) => ({ k: 'allocate' as const, s, ...r })) },
  { weight: 2, arbitrary: fc.tuple(storeArb, offsetArb).map(([s, size]) => ({ k: 'truncate' as const, s, size })) },
  { weight: 1, arbitrary: storeArb.map((s) => ({ k: 'destroy' as const, s })) },
);

function pagesOf(off: number, len: number): [number, number] {
  return [Math.floor(off / P), Math.ceil((off + len) / P)];
}

function used(models: StoreModel[]): number {
  return models.reduce((n, m) => n + m.alloc.filter(Boolean).length, 0);
}

/** Apply op to the model; returns the expected errno or null. */
function applyModel(models: StoreModel[], op: Op): string | null {
  if (op.k === 'destroy') {
    models[op.s] = { bytes: new Uint8Array(N * P), alloc: new Array<boolean>(N).fill(false) };
    return null;
  }
  const m = models[op.s]!;
  switch (op.k) {
    case 'write':
    case 'allocate': {
      if (op.len === 0) return null;
      const [a, b] = pagesOf(op.off, op.len);
      let need = 0;
      for (let i = a; i < b; i++) if (!m.alloc[i]) need++;
      if (used(models) + need > CAP) return 'ENOSPC';
      for (let i = a; i < b; i++) m.alloc[i] = true;
      if (op.k === 'write') m.bytes.fill(op.byte, op.off, op.off + op.len);
      return null;
    }
    case 'punch': {
      if (op.len === 0) return null;
      m.bytes.fill(0, op.off, op.off + op.len);
      for (let i = Math.ceil(op.off / P); i < Math.floor((op.off + op.len) / P); i++) m.alloc[i] = false;
      // Pages that were holes stay zero; allocated partial pages stay allocated.
      return null;
    }
    case 'truncate': {
      m.bytes.fill(0, op.size);
      for (let i = Math.ceil(op.size / P); i < N; i++) m.alloc[i] = false;
      return null;
    }
  }
}

async function applyStore(stores: MemoryFileStore[], backend: MemoryStoreBackend, op: Op): Promise<string | null> {
  try {
    const s = stores[op.s]!;
    switch (op.k) {
      case 'write': {
        await s.write(BASE_OFF + op.off, Buffer.alloc(op.len, op.byte));
        break;
      }
      case 'punch':
        await s.punch(BASE_OFF + op.off, op.len);
        break;
      case 'allocate':
        await s.allocate(BASE_OFF + op.off, op.len);
        break;
      case 'truncate':
        await s.truncate(BASE_OFF + op.size);
        break;
      case 'destroy':
        await s.destroy();
        stores[op.s] = backend.open(10 + op.s);
        break;
    }
    return null;
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
}

async function check(stores: MemoryFileStore[], models: StoreModel[], backend: MemoryStoreBackend): Promise<void> {
  expect(backend.usage().usedBytes).toBe(used(models) * P);
  for (let k = 0; k < 2; k++) {
    const s = stores[k]!;
    const m = models[k]!;
    expect(s.allocatedPages()).toBe(m.alloc.filter(Boolean).length);
    for (let i = 0; i < N; i++) {
      const page = await s.readPage(BASE + i);
      const want = m.bytes.subarray(i * P, (i + 1) * P);
      if (!m.alloc[i]) {
        expect(page, `store ${k} page ${i} should be a hole`).toBeNull();
        // Model invariant: holes read as zeros.
        expect(want.every((x) => x === 0)).toBe(true);
      } else {
        expect(page, `store ${k} page ${i} should be allocated`).not.toBeNull();
        expect(Buffer.compare(page!, Buffer.from(want)), `store ${k} page ${i} content`).toBe(0);
      }
    }
    for (let i = 0; i <= N; i++) {
      let data = -1;
      for (let j = i; j < N; j++) if (m.alloc[j]) { data = BASE + j; break; }
      let hole = BASE + N;
      for (let j = i; j < N; j++) if (!m.alloc[j]) { hole = BASE + j; break; }
      expect(s.nextDataPage(BASE + i)).toBe(data);
      expect(s.nextHolePage(BASE + i)).toBe(hole);
    }
    const first = m.alloc.indexOf(true);
    expect(s.nextDataPage(0)).toBe(first < 0 ? -1 : BASE + first);
  }
}

describe('memory store vs flat byte-array model', () => {
  it('random op sequences agree with the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const backend = new MemoryStoreBackend({ capacityBytes: CAP * P });
        const stores = [backend.open(10), backend.open(11)];
        const models: StoreModel[] = [0, 1].map(() => ({ bytes: new Uint8Array(N * P), alloc: new Array<boolean>(N).fill(false) }));
        for (const op of ops) {
          const want = applyModel(models, op);
          const got = await applyStore(stores, backend, op);
          expect(got, JSON.stringify(op)).toBe(want);
          await check(stores, models, backend);
        }
      }),
      { numRuns: 300 },
    );
  });
});
