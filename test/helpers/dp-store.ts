// Test double of FileStore / StoreBackend for the data-path tests (helper D). Every async method
// first awaits an optional gate (fc.scheduler's schedule()), then applies its effect atomically:
// the scheduler decides the instant at which each store access happens.

import { FsError, PAGE_SIZE, type FileStore, type StoreBackend } from '../../src/fs/types.js';

export type Gate = (label: string) => Promise<unknown> | undefined;
export type StoreOp = 'readPage' | 'write' | 'punch' | 'allocate' | 'truncate' | 'sync' | 'destroy';

export class TestStore implements FileStore {
  readonly pages = new Map<number, Buffer>();
  /** Pages the store may hold (ENOSPC beyond). */
  capacityPages = Infinity;
  /** Make the next call(s) of an op fail: a function returning an error (or undefined: succeed). */
  readonly failures = new Map<StoreOp, () => Error | undefined>();
  readonly log: string[] = [];
  destroyed = false;
  logging = false;

  constructor(private gate?: Gate) {}

  setGate(g: Gate | undefined): void {
    this.gate = g;
  }

  private async step(op: StoreOp, label: string): Promise<void> {
    const g = this.gate?.(`${op} ${label}`);
    if (g !== undefined) await g;
    if (this.destroyed && op !== 'destroy') throw new FsError('EIO', 'store destroyed');
    const f = this.failures.get(op)?.();
    if (f) throw f;
    if (this.logging) this.log.push(`${op} ${label}`);
  }

  /** Set content directly (no gate), for initial state. */
  put(offset: number, data: Uint8Array): void {
    this.apply(offset, data);
  }

  async readPage(index: number): Promise<Buffer | null> {
    await this.step('readPage', `${index}`);
    const b = this.pages.get(index);
    return b ? Buffer.from(b) : null;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.step('write', `${offset}+${data.length}`);
    let need = 0;
    for (let i = Math.floor(offset / PAGE_SIZE); i * PAGE_SIZE < offset + data.length; i++) if (!this.pages.has(i)) need++;
    if (this.pages.size + need > this.capacityPages) throw new FsError('ENOSPC');
    this.apply(offset, Buffer.from(data));
  }

  private apply(offset: number, data: Uint8Array): void {
    const end = offset + data.length;
    for (let i = Math.floor(offset / PAGE_SIZE); i * PAGE_SIZE < end; i++) {
      const ps = i * PAGE_SIZE;
      let p = this.pages.get(i);
      if (!p) this.pages.set(i, (p = Buffer.alloc(PAGE_SIZE)));
      const s = Math.max(offset, ps);
      const e = Math.min(end, ps + PAGE_SIZE);
      p.set(data.subarray(s - offset, e - offset), s - ps);
    }
  }

  private forPages(first: number, endIdx: number, fn: (i: number) => void): void {
    if (endIdx - first > this.pages.size) {
      for (const i of [...this.pages.keys()]) if (i >= first && i < endIdx) fn(i);
    } else for (let i = first; i < endIdx; i++) fn(i);
  }

  async punch(offset: number, length: number): Promise<void> {
    await this.step('punch', `${offset}+${length}`);
    const end = offset + length;
    this.forPages(Math.floor(offset / PAGE_SIZE), Math.ceil(end / PAGE_SIZE), (i) => {
      const p = this.pages.get(i);
      if (!p) return;
      const ps = i * PAGE_SIZE;
      if (offset <= ps && end >= ps + PAGE_SIZE) this.pages.delete(i);
      else p.fill(0, Math.max(offset, ps) - ps, Math.min(end, ps + PAGE_SIZE) - ps);
    });
  }

  async allocate(offset: number, length: number): Promise<void> {
    await this.step('allocate', `${offset}+${length}`);
    const first = Math.floor(offset / PAGE_SIZE);
    const endIdx = Math.ceil((offset + length) / PAGE_SIZE);
    let need = 0;
    for (let i = first; i < endIdx; i++) if (!this.pages.has(i)) need++;
    if (this.pages.size + need > this.capacityPages) throw new FsError('ENOSPC');
    for (let i = first; i < endIdx; i++) if (!this.pages.has(i)) this.pages.set(i, Buffer.alloc(PAGE_SIZE));
  }

  async truncate(size: number): Promise<void> {
    await this.step('truncate', `${size}`);
    const idx = Math.floor(size / PAGE_SIZE);
    this.forPages(Math.ceil(size / PAGE_SIZE), Infinity, (i) => this.pages.delete(i));
    const p = this.pages.get(idx);
    if (p && size % PAGE_SIZE !== 0) p.fill(0, size % PAGE_SIZE);
  }

  allocatedPages(): number {
    return this.pages.size;
  }

  nextDataPage(from: number): number {
    let best = -1;
    for (const i of this.pages.keys()) if (i >= from && (best < 0 || i < best)) best = i;
    return best;
  }

  nextHolePage(from: number): number {
    let i = from;
    while (this.pages.has(i)) i++;
    return i;
  }

  async sync(): Promise<void> {
    await this.step('sync', '');
  }

  async destroy(): Promise<void> {
    await this.step('destroy', '');
    this.destroyed = true;
    this.pages.clear();
  }

  /** Page content now (zeros for holes). */
  page(index: number): Buffer {
    return this.pages.get(index) ?? Buffer.alloc(PAGE_SIZE);
  }

  /** Bytes [0, n). */
  content(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (const [i, p] of this.pages) {
      const ps = i * PAGE_SIZE;
      if (ps < n) p.copy(out, ps, 0, Math.min(PAGE_SIZE, n - ps));
    }
    return out;
  }

  /** Is every byte at or past `size` zero? */
  zeroFrom(size: number): boolean {
    for (const [i, p] of this.pages) {
      const ps = i * PAGE_SIZE;
      if (ps + PAGE_SIZE <= size) continue;
      for (let k = Math.max(0, size - ps); k < PAGE_SIZE; k++) if (p[k] !== 0) return false;
    }
    return true;
  }
}

export class TestBackend implements StoreBackend {
  readonly kind = 'memory' as const;
  readonly stores = new Map<number, TestStore>();
  constructor(private readonly gate?: Gate) {}
  open(ino: number): TestStore {
    let s = this.stores.get(ino);
    if (!s) this.stores.set(ino, (s = new TestStore(this.gate)));
    return s;
  }
  usage(): { capacityBytes: number; usedBytes: number } {
    let used = 0;
    for (const s of this.stores.values()) used += s.allocatedPages() * PAGE_SIZE;
    return { capacityBytes: Infinity, usedBytes: used };
  }
}

/** Any FileStore behind a settable gate (so fc.scheduler orders the real memory store's calls too). */
export class GatedStore implements FileStore {
  gate: Gate | undefined;
  constructor(readonly inner: FileStore) {}
  private async g(label: string): Promise<void> {
    const p = this.gate?.(label);
    if (p !== undefined) await p;
  }
  async readPage(i: number): Promise<Buffer | null> {
    await this.g(`readPage ${i}`);
    return this.inner.readPage(i);
  }
  async write(o: number, d: Uint8Array): Promise<void> {
    await this.g(`write ${o}+${d.length}`);
    return this.inner.write(o, d);
  }
  async punch(o: number, l: number): Promise<void> {
    await this.g(`punch ${o}+${l}`);
    return this.inner.punch(o, l);
  }
  async allocate(o: number, l: number): Promise<void> {
    await this.g(`allocate ${o}+${l}`);
    return this.inner.allocate(o, l);
  }
  async truncate(s: number): Promise<void> {
    await this.g(`truncate ${s}`);
    return this.inner.truncate(s);
  }
  allocatedPages(): number {
    return this.inner.allocatedPages();
  }
  nextDataPage(f: number): number {
    return this.inner.nextDataPage(f);
  }
  nextHolePage(f: number): number {
    return this.inner.nextHolePage(f);
  }
  async sync(): Promise<void> {
    await this.g('sync');
    return this.inner.sync();
  }
  async destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** Is every byte of `s` at or past `size` zero? (reads through the store, ungated) */
export async function storeZeroFrom(s: FileStore, size: number): Promise<boolean> {
  for (let i = s.nextDataPage(Math.floor(size / PAGE_SIZE)); i >= 0; i = s.nextDataPage(i + 1)) {
    const b = await s.readPage(i);
    if (!b) continue;
    const from = Math.max(0, size - i * PAGE_SIZE);
    for (let k = from; k < PAGE_SIZE; k++) if (b[k] !== 0) return false;
  }
  return true;
}
