// A live progress line on stderr (only when it is a TTY): elapsed, ops/s over the last sample,
// violations so far. Fed by the PROGRESS lines the C programs print when FL_PROGRESS is set.

import type { Progress } from './run.js';

export class ProgressLine {
  private last: Progress | null = null;
  private shown = false;
  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    readonly enabled: boolean = Boolean(process.stderr.isTTY),
  ) {}

  /** A callback for runScenario's onProgress, labelled for one run. */
  for(label: string, duration: number): (p: Progress) => void {
    this.last = null;
    return (p) => this.update(label, duration, p);
  }

  update(label: string, duration: number, p: Progress): void {
    const prev = this.last;
    this.last = p;
    if (!this.enabled) return;
    const rate = prev && p.t > prev.t ? (p.ops - prev.ops) / (p.t - prev.t) : p.t > 0 ? p.ops / p.t : 0;
    const line = `${label}  ${p.t.toFixed(0)}/${duration} s  ${formatRate(rate)} ops/s  violations ${p.violations}`;
    this.out.write(`\r\x1b[K${line.slice(0, (this.out.columns || 120) - 1)}`);
    this.shown = true;
  }

  /** A status line without numbers (e.g. "mounting ..."). */
  status(text: string): void {
    if (!this.enabled) return;
    this.out.write(`\r\x1b[K${text.slice(0, (this.out.columns || 120) - 1)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.enabled && this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}

export function formatRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}
