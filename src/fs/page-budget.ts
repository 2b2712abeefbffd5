// Capacity accounting shared by all stores of one backend, in 4 KiB pages: a write reserves its new
// pages before it stores anything, so running out is an ENOSPC that leaves nothing half-written.

import { FsError, PAGE_SIZE } from './types.js';

export class PageBudget {
  /** Pages allocated now. */
  used = 0;
  #capacityPages = Infinity;
  /** Capacity in bytes, rounded down to whole pages (Infinity = unlimited). */
  capacityBytes = Infinity;

  /** `what` names the store in ENOSPC messages; the hard limit refuses absurd sizes whatever the capacity. */
  constructor(
    capacityBytes: number,
    private readonly what: string,
    private readonly hardLimitPages = Infinity,
  ) {
    this.setCapacity(capacityBytes);
  }

  setCapacity(capacityBytes: number): void {
    this.#capacityPages = capacityBytes === Infinity ? Infinity : Math.floor(capacityBytes / PAGE_SIZE);
    this.capacityBytes = capacityBytes === Infinity ? Infinity : this.#capacityPages * PAGE_SIZE;
  }

  /** Pages still available (Infinity if unlimited). */
  get free(): number {
    return this.#capacityPages - this.used;
  }

  /** Reserve `n` pages or throw ENOSPC, reserving nothing. */
  reserve(n: number): void {
    if (n <= 0) return;
    if (this.used + n > this.#capacityPages) {
      throw new FsError('ENOSPC', `${this.what} full: ${n} more page(s) needed, ${this.#capacityPages - this.used} free of ${this.#capacityPages}`);
    }
    if (this.used + n > this.hardLimitPages) {
      throw new FsError('ENOSPC', `${this.what}: ${n} more page(s) would pass the hard limit of ${this.hardLimitPages} pages`);
    }
    this.used += n;
  }

  /** Give back `n` pages. */
  release(n: number): void {
    this.used -= n;
  }

  /** Count pages found already allocated (reopening a store): never refuses. */
  account(n: number): void {
    this.used += n;
  }

  usage(): { capacityBytes: number; usedBytes: number } {
    return { capacityBytes: this.capacityBytes, usedBytes: this.used * PAGE_SIZE };
  }
}
