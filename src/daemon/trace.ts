// Request trace: one JSON line per request and per reply, with monotonic timestamps (ns since the
// trace started), inode, offset, length, and for data ops a short digest per 1 KiB unit. Bounded:
// after `maxBytes` the trace stops and says so in its last line. Written asynchronously.

import { createWriteStream, type WriteStream } from 'node:fs';

const UNIT = 1024;

/** 32-bit FNV-1a of one unit, as 8 hex digits; "0" for an all-zero unit (holes read as zeros). */
export function unitDigest(buf: Uint8Array, start: number, end: number): string {
  let h = 0x811c9dc5;
  let zero = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b !== 0) zero = false;
    h = Math.imul(h ^ b, 0x01000193);
  }
  return zero ? '0' : (h >>> 0).toString(16).padStart(8, '0');
}

/** Digests of the 1 KiB units of `data`, which starts at file offset `offset`. */
export function unitDigests(data: Uint8Array, offset: number): string[] {
  const out: string[] = [];
  let pos = 0;
  // First (possibly partial) unit aligned to the file's unit grid.
  const firstEnd = Math.min(data.length, UNIT - (offset % UNIT));
  if (firstEnd > 0) {
    out.push(unitDigest(data, 0, firstEnd));
    pos = firstEnd;
  }
  for (; pos < data.length; pos += UNIT) out.push(unitDigest(data, pos, Math.min(data.length, pos + UNIT)));
  return out;
}

export class Trace {
  private readonly stream: WriteStream;
  private readonly t0 = process.hrtime.bigint();
  private written = 0;
  private full = false;
  readonly path: string;

  constructor(path: string, private readonly maxBytes = 256 * 1024 * 1024) {
    this.path = path;
    this.stream = createWriteStream(path, { flags: 'w', mode: 0o600 });
    this.stream.on('error', () => (this.full = true));
  }

  now(): string {
    return (process.hrtime.bigint() - this.t0).toString();
  }

  line(obj: Record<string, unknown>): void {
    if (this.full) return;
    const s = JSON.stringify({ t: this.now(), ...obj }) + '\n';
    this.written += s.length;
    if (this.written > this.maxBytes) {
      this.full = true;
      this.stream.write(JSON.stringify({ t: this.now(), ev: 'trace-full', maxBytes: this.maxBytes }) + '\n');
      return;
    }
    this.stream.write(s);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
