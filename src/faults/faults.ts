// Fault injection: named delay points and deliberate bug modes (see README.md in this directory).
//
// The data path calls delay(point) at every DelayPoint; it returns undefined unless a delay fires, so
// callers only await when one does and the fast path stays synchronous. bug(mode) is a flag read;
// chance(mode) is a seeded coin flip for the modes that act on a fraction of requests.

import type { BugMode, DelayPoint, FaultHooks } from '../fs/types.js';

export const DELAY_POINTS: readonly DelayPoint[] = [
  'read-fill-before-store',
  'read-fill-after-store',
  'read-before-reply',
  'write-before-store',
  'write-after-store',
  'punch-before-store',
  'punch-after-store',
  'zero-before-store',
  'zero-after-store',
  'truncate-before-store',
  'truncate-after-store',
];

export const BUG_MODES: readonly BugMode[] = [
  'no-range-lock',
  'stale-cache-on-punch',
  'stale-cache-on-truncate',
  'no-notify',
  'notify-before-change',
  'read-past-eof',
  'short-read',
  'lost-write',
];

/** Modes that act on a fraction of requests through chance(); others are all-or-nothing. */
export const CHANCE_MODES: readonly BugMode[] = ['short-read', 'lost-write'];
/** Default probability of chance() for a CHANCE_MODES bug switched on without `@PROB`. */
export const DEFAULT_BUG_PROBABILITY = 0.1;

export interface DelaySpec {
  /** Delay in milliseconds (0 = yield one macrotask turn). */
  ms: number;
  /** Probability in [0, 1] that the delay fires at each pass. */
  prob: number;
}

export interface FaultsOptions {
  /** RNG seed (uint32). Default 1. */
  seed?: number;
  /** Bug modes to switch on: names or "MODE[@PROB]" strings (one string or several). */
  bugs?: string | Iterable<string>;
  /** Delays: "POINT=MS[@PROB]" strings (one or several) or a map of specs. */
  delays?: string | Iterable<string> | Partial<Record<DelayPoint, DelaySpec>>;
}

export interface FaultsStatus {
  seed: number;
  /** Enabled bug modes, in BUG_MODES order. */
  bugs: BugMode[];
  /** Probability of each enabled chance mode. */
  bugProbability: Partial<Record<BugMode, number>>;
  delays: Partial<Record<DelayPoint, DelaySpec>>;
}

export interface FaultsStats {
  /** Delays that fired, per point. */
  delaysFired: Partial<Record<DelayPoint, number>>;
  /** chance() calls that returned true, per mode. */
  chanceHits: Partial<Record<BugMode, number>>;
}

const isDelayPoint = (s: string): s is DelayPoint => (DELAY_POINTS as readonly string[]).includes(s);
const isBugMode = (s: string): s is BugMode => (BUG_MODES as readonly string[]).includes(s);

/** A clear error for the CLI and the control socket; `code` is EINVAL for errno replies. */
export class FaultSpecError extends Error {
  readonly code = 'EINVAL';
}

function parseProb(s: string, what: string): number {
  if (!/^(?:0(?:\.\d+)?|1(?:\.0*)?|\.\d+)$/.test(s)) {
    throw new FaultSpecError(`${what}: probability "${s}" is not a number in [0, 1]`);
  }
  return Number(s);
}

/** Parse a --bug argument: "MODE" or "MODE@PROB" (PROB only for short-read and lost-write). */
export function parseBug(spec: string): { mode: BugMode; prob: number } {
  const s = spec.trim();
  const at = s.indexOf('@');
  const name = at < 0 ? s : s.slice(0, at);
  if (!isBugMode(name)) {
    throw new FaultSpecError(`unknown bug mode "${name}"; valid modes: ${BUG_MODES.join(', ')}`);
  }
  if (at < 0) return { mode: name, prob: CHANCE_MODES.includes(name) ? DEFAULT_BUG_PROBABILITY : 1 };
  if (!CHANCE_MODES.includes(name)) {
    throw new FaultSpecError(`bug mode "${name}" takes no probability (only ${CHANCE_MODES.join(', ')} do)`);
  }
  return { mode: name, prob: parseProb(s.slice(at + 1), `--bug ${s}`) };
}

/** Parse the value part of a delay: "MS" or "MS@PROB". */
export function parseDelayValue(value: string, what = 'delay'): DelaySpec {
  const v = value.trim();
  const m = /^(\d+(?:\.\d+)?)(?:@(.*))?$/.exec(v);
  if (!m) throw new FaultSpecError(`${what}: "${v}" is not MS[@PROB] (milliseconds, optional probability in [0, 1])`);
  const ms = Number(m[1]);
  if (!Number.isFinite(ms) || ms > 600_000) throw new FaultSpecError(`${what}: delay ${m[1]} ms out of range (0..600000)`);
  return { ms, prob: m[2] === undefined ? 1 : parseProb(m[2], what) };
}

/** Parse a --delay argument: "POINT=MS[@PROB]". */
export function parseDelay(spec: string): { point: DelayPoint; spec: DelaySpec } {
  const s = spec.trim();
  const eq = s.indexOf('=');
  if (eq < 0) throw new FaultSpecError(`--delay "${s}": expected POINT=MS[@PROB]; points: ${DELAY_POINTS.join(', ')}`);
  const point = s.slice(0, eq).trim();
  if (!isDelayPoint(point)) {
    throw new FaultSpecError(`unknown delay point "${point}"; valid points: ${DELAY_POINTS.join(', ')}`);
  }
  return { point, spec: parseDelayValue(s.slice(eq + 1), `--delay ${s}`) };
}

/** mulberry32: small, fast, seedable; good enough for coin flips. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

export class Faults implements FaultHooks {
  private seed_ = 1;
  private rand: () => number = mulberry32(1);
  private readonly on = new Map<BugMode, number>(); // mode -> probability
  private readonly delays = new Map<DelayPoint, DelaySpec>();
  private readonly fired = new Map<DelayPoint, number>();
  private readonly hits = new Map<BugMode, number>();
  /** True when no delay is configured: delay() returns at once. */
  private noDelays = true;

  constructor(opts: FaultsOptions = {}) {
    if (opts.seed !== undefined) this.setSeed(opts.seed);
    for (const b of typeof opts.bugs === 'string' ? [opts.bugs] : (opts.bugs ?? [])) {
      const { mode, prob } = parseBug(b);
      this.setBug(mode, true, prob);
    }
    const d = typeof opts.delays === 'string' ? [opts.delays] : opts.delays;
    if (d !== undefined) {
      if (typeof (d as Iterable<string>)[Symbol.iterator] === 'function') {
        for (const s of d as Iterable<string>) {
          const { point, spec } = parseDelay(s);
          this.setDelay(point, spec);
        }
      } else {
        for (const [point, spec] of Object.entries(d as Record<string, DelaySpec>)) {
          if (!isDelayPoint(point)) throw new FaultSpecError(`unknown delay point "${point}"; valid points: ${DELAY_POINTS.join(', ')}`);
          this.setDelay(point, spec);
        }
      }
    }
  }

  // ---- FaultHooks ----

  delay(point: DelayPoint): Promise<void> | undefined {
    if (this.noDelays) return undefined;
    const d = this.delays.get(point);
    if (d === undefined || (d.prob < 1 && this.rand() >= d.prob)) return undefined;
    this.fired.set(point, (this.fired.get(point) ?? 0) + 1);
    return sleep(d.ms);
  }

  bug(mode: BugMode): boolean {
    return this.on.size !== 0 && this.on.has(mode);
  }

  chance(mode: BugMode): boolean {
    if (this.on.size === 0) return false;
    const p = this.on.get(mode);
    if (p === undefined || !(p >= 1 || this.rand() < p)) return false;
    this.hits.set(mode, (this.hits.get(mode) ?? 0) + 1);
    return true;
  }

  // ---- runtime control (CLI, control socket) ----

  setSeed(seed: number): void {
    if (!Number.isInteger(seed)) throw new FaultSpecError(`seed "${seed}" is not an integer`);
    this.seed_ = seed >>> 0;
    this.rand = mulberry32(this.seed_);
  }

  /** Switch a bug mode on or off; `prob` (chance modes only) defaults to DEFAULT_BUG_PROBABILITY. */
  setBug(mode: BugMode, enabled: boolean, prob?: number): void {
    if (!isBugMode(mode)) throw new FaultSpecError(`unknown bug mode "${String(mode)}"; valid modes: ${BUG_MODES.join(', ')}`);
    if (!enabled) {
      this.on.delete(mode);
      return;
    }
    const chance = CHANCE_MODES.includes(mode);
    if (prob !== undefined && !chance && prob !== 1) throw new FaultSpecError(`bug mode "${mode}" takes no probability`);
    const p = prob ?? (chance ? DEFAULT_BUG_PROBABILITY : 1);
    if (!(p >= 0 && p <= 1)) throw new FaultSpecError(`bug ${mode}: probability ${p} not in [0, 1]`);
    this.on.set(mode, p);
  }

  /** Set (spec) or clear (null) the delay at a point. */
  setDelay(point: DelayPoint, spec: DelaySpec | null): void {
    if (!isDelayPoint(point)) throw new FaultSpecError(`unknown delay point "${String(point)}"; valid points: ${DELAY_POINTS.join(', ')}`);
    if (spec === null) this.delays.delete(point);
    else {
      if (!(spec.ms >= 0 && spec.ms <= 600_000)) throw new FaultSpecError(`delay ${point}: ${spec.ms} ms out of range (0..600000)`);
      if (!(spec.prob >= 0 && spec.prob <= 1)) throw new FaultSpecError(`delay ${point}: probability ${spec.prob} not in [0, 1]`);
      this.delays.set(point, { ms: spec.ms, prob: spec.prob });
    }
    this.noDelays = this.delays.size === 0;
  }

  /**
   * The control socket's `set` command: `bug.<mode>` = on | off | on@PROB | PROB (chance modes);
   * `delay.<point>` = MS[@PROB] | off; `seed` = integer. Throws FaultSpecError on anything else.
   * Returns false if the knob is not a fault knob (so the caller can try its own knobs).
   */
  set(knob: string, value: string | number | boolean): boolean {
    const v = String(value).trim();
    if (knob === 'seed') {
      if (!/^-?\d+$/.test(v)) throw new FaultSpecError(`seed: "${v}" is not an integer`);
      this.setSeed(Number(v));
      return true;
    }
    if (knob.startsWith('bug.')) {
      const mode = knob.slice(4);
      if (!isBugMode(mode)) throw new FaultSpecError(`unknown bug mode "${mode}"; valid modes: ${BUG_MODES.join(', ')}`);
      if (v === 'off' || v === 'false' || v === '0') this.setBug(mode, false);
      else if (v === 'on' || v === 'true') this.setBug(mode, true);
      else if (v.startsWith('on@')) this.setBug(mode, true, parseProb(v.slice(3), knob));
      else if (CHANCE_MODES.includes(mode) && /^[.\d]/.test(v)) this.setBug(mode, true, parseProb(v, knob));
      else throw new FaultSpecError(`${knob}: value "${v}" must be on, off${CHANCE_MODES.includes(mode) ? ', on@PROB or PROB' : ''}`);
      return true;
    }
    if (knob.startsWith('delay.')) {
      const point = knob.slice(6);
      if (!isDelayPoint(point)) throw new FaultSpecError(`unknown delay point "${point}"; valid points: ${DELAY_POINTS.join(', ')}`);
      this.setDelay(point, v === 'off' ? null : parseDelayValue(v, knob));
      return true;
    }
    return false;
  }

  status(): FaultsStatus {
    const bugs = BUG_MODES.filter((m) => this.on.has(m));
    const bugProbability: Partial<Record<BugMode, number>> = {};
    for (const m of bugs) if (CHANCE_MODES.includes(m)) bugProbability[m] = this.on.get(m)!;
    const delays: Partial<Record<DelayPoint, DelaySpec>> = {};
    for (const p of DELAY_POINTS) {
      const d = this.delays.get(p);
      if (d) delays[p] = { ...d };
    }
    return { seed: this.seed_, bugs, bugProbability, delays };
  }

  stats(): FaultsStats {
    return { delaysFired: Object.fromEntries(this.fired), chanceHits: Object.fromEntries(this.hits) };
  }
}
