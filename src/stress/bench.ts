// `faultline bench`: faultline side by side with the C limit and the Node peer, measured in the
// same run. Peers (tmpfs, the C libfuse3 low-level reference server, the fuse-native peer, faultline
// variants) are all mounted for the whole run, each in its own process on a fresh temp dir; the
// workloads are C drivers (native-tests/bench/bench_driver) run in interleaved rounds
// (A B C D, A B C D, ...) while /dev/cpu_dma_latency is held at 0. Each cell reports the median of
// the rounds with min and max, and the ratio against the C server.

import { access, mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_FAULTLINE_VARIANTS,
  faultlinePeer,
  forceUnmountAndRemove,
  fuseNativePeer,
  isMounted,
  readaheadKb,
  refServerPeer,
  runCommand,
  tmpfsPeer,
  type BenchPeer,
  type BenchWorkload,
  type FaultlineVariant,
  type PeerContext,
  type PeerInstance,
  type PeerKind,
} from './bench-peers.js';
import { benchSvg, formatBenchTable, formatNumber } from './bench-report.js';

export { benchSvg, formatBenchTable, formatNumber } from './bench-report.js';
export type { BenchPeer, BenchWorkload, FaultlineVariant, PeerInstance, PeerKind } from './bench-peers.js';
export { DEFAULT_FAULTLINE_VARIANTS } from './bench-peers.js';

// ---------------------------------------------------------------- workloads

export interface WorkloadInfo {
  name: BenchWorkload;
  title: string;
  /** Key of the headline number in the driver's JSON line. */
  metric: string;
  unit: string;
  description: string;
  /** Driver subcommand and its extra arguments. */
  driver: string;
  args: string[];
  /** The driver reports per-op latency percentiles (p50_us, p99_us). */
  latency: boolean;
}

export const WORKLOADS: readonly WorkloadInfo[] = [
  {
    name: 'randread', title: '4 KiB random read', metric: 'ops_per_s', unit: 'ops/s', driver: 'randread', args: [], latency: true,
    description: '4 KiB preads of uncached pages (POSIX_FADV_RANDOM; every page once per pass in random order, page cache dropped between passes)',
  },
  {
    name: 'seqread', title: 'sequential read 1 MiB', metric: 'gb_per_s', unit: 'GB/s', driver: 'seqread', args: ['--block', '1048576'], latency: false,
    description: 'sequential 1 MiB preads over the uncached file (kernel readahead decides the request size)',
  },
  {
    name: 'seqwrite', title: 'sequential write 1 MiB', metric: 'gb_per_s', unit: 'GB/s', driver: 'seqwrite', args: ['--block', '1048576'], latency: false,
    description: 'sequential 1 MiB pwrites over the file, fsync per pass',
  },
  {
    name: 'punch', title: 'punch→fault→rewrite', metric: 'cycles_per_s', unit: 'cycles/s', driver: 'punch', args: [], latency: true,
    description: 'punch one page (PUNCH_HOLE|KEEP_SIZE), fault it through a live MAP_SHARED mapping (must read 0), pwrite it, read it again through the mapping (must read the new data)',
  },
  {
    name: 'mapfault', title: 'fresh-mapping faults', metric: 'pages_per_s', unit: 'pages/s', driver: 'mapfault', args: ['--advice', 'normal'], latency: false,
    description: 'mmap the uncached file afresh and touch every page in order (MADV_NORMAL: kernel mmap readahead batches the READs)',
  },
  {
    name: 'mapfault-random', title: 'fresh-mapping faults, MADV_RANDOM', metric: 'pages_per_s', unit: 'pages/s', driver: 'mapfault', args: ['--advice', 'random'], latency: false,
    description: 'as mapfault with MADV_RANDOM: one 4 KiB READ per fault',
  },
  {
    name: 'meta', title: 'create+stat+unlink', metric: 'ops_per_s', unit: 'cycles/s', driver: 'meta', args: [], latency: true,
    description: 'open(O_CREAT|O_EXCL)+close, stat, unlink of a fresh name in the mount root; one cycle = all three',
  },
];

export const BENCH_WORKLOADS: readonly BenchWorkload[] = WORKLOADS.map((w) => w.name);

export function workloadInfo(name: BenchWorkload): WorkloadInfo {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown workload ${name}`);
  return w;
}

// ---------------------------------------------------------------- options and results

export interface BenchOptions {
  /** About a second per workload and peer, one round, a 32 MiB file (explicit values below still win). */
  smoke?: boolean;
  /** Interleaved rounds (default 3; smoke 1). */
  rounds?: number;
  /** Seconds per workload, peer and round (default 2; smoke 1). */
  seconds?: number;
  /** Bench file size in bytes (default 256 MiB; smoke 32 MiB). */
  fileSize?: number;
  /** Workloads to run, in this order (default: all of BENCH_WORKLOADS). */
  workloads?: BenchWorkload[];
  /** Only the peers with these names (default: all built-in peers plus extraPeers). */
  peers?: string[];
  /** Include the faultline peers (default true; they are "not available" until dist/cli.js exists). */
  faultline?: boolean;
  /** faultline configurations to measure (default DEFAULT_FAULTLINE_VARIANTS). */
  faultlineVariants?: FaultlineVariant[];
  /** Path of the faultline CLI (default <repo>/dist/cli.js). */
  cli?: string;
  /**
   * Also measure a second instance of the C reference server ('c-ref-b'): identical servers, so
   * its ratio to c-ref shows how far this run's noise alone moves a ratio (default false).
   */
  noiseFloor?: boolean;
  /** Further peers, measured after the built-in ones. */
  extraPeers?: BenchPeer[];
  /** Set read_ahead_kb of every FUSE mount's bdi to this (default: leave the kernel's 128 KiB). */
  readaheadKb?: number;
  /**
   * Peer order within a round: 'fixed' (A B C D, A B C D, ...; the default) or 'rotate' (A B C D,
   * B C D A, ...), which cancels any systematic effect of a peer's position in the round.
   */
  order?: 'fixed' | 'rotate';
  /** Hold /dev/cpu_dma_latency at 0 for the whole run (default true). */
  holdCpuDmaLatency?: boolean;
  /** Run `make -C native-tests/bench` (incremental) before the run (default true). */
  build?: boolean;
  /** Write bench.json, bench.txt and bench.svg into this directory. */
  outDir?: string;
  /** Progress lines (default: silent). */
  log?: (line: string) => void;
  /** Kill a driver that runs longer than seconds + this (default 60 s); its peer is then stopped. */
  driverGraceMs?: number;
  /**
   * Abort the run (e.g. on SIGINT): the running driver is killed, every peer is stopped and
   * unmounted, and runBench rejects with an AbortError.
   */
  signal?: AbortSignal;
}

export interface BenchEnv {
  kernel: string;
  kernelVersion: string;
  cpuModel: string;
  cpus: number;
  cpuidleDriver: string | null;
  node: string;
  libfuse3: string | null;
  fuseNative: string | null;
  cpuDmaLatencyHeld: boolean;
  cpuDmaLatencyNote?: string;
  hostname: string;
  /** os.loadavg() when the run started and when it ended: other load on the machine skews everything. */
  loadAvgStart: number[];
  loadAvgEnd: number[];
}

export interface PeerReport {
  name: string;
  kind: PeerKind;
  description: string;
  available: boolean;
  /** Why the peer did not run (not available, failed to start, failed mid-run). */
  reason?: string;
  mountpoint?: string;
  pid?: number;
  /** The bdi read_ahead_kb of the mount (null: no bdi, e.g. tmpfs). */
  readaheadKb?: number | null;
  info?: Record<string, string | number | boolean>;
  /** The untimed fill of the bench file (driver JSON). */
  fill?: Record<string, unknown>;
}

export type CellStatus = 'ok' | 'n/a' | 'error' | 'not available';

export interface BenchCell {
  status: CellStatus;
  /** n/a / not available / error explanation. */
  reason?: string;
  unit: string;
  /** Headline number per successful round, in round order. */
  samples: number[];
  median?: number;
  min?: number;
  max?: number;
  /** Median over rounds of the per-round p50 / p99 latency (µs), for latency workloads. */
  p50Us?: number;
  p99Us?: number;
  /** punch: data errors seen by the driver (must be 0 on a correct filesystem), summed over rounds. */
  dataErrors?: number;
  firstDataError?: string;
  /** Largest share of the file still cached right after a drop (%, randread/seqread/mapfault*). */
  residentPctMax?: number;
  /** Every driver JSON line, in round order (failed rounds included). */
  runs: Record<string, unknown>[];
}

export interface BenchGoal {
  id: string;
  description: string;
  peer: string;
  workload: BenchWorkload;
  against: string;
  target: number;
  ratio: number | null;
  /** null when either side has no number. */
  met: boolean | null;
  /** For goals against the Node peer: what the reference (C) server reaches against the same peer. */
  ceiling?: number;
  note?: string;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  settings: {
    rounds: number;
    seconds: number;
    fileSize: number;
    fileName: string;
    workloads: BenchWorkload[];
    smoke: boolean;
    readaheadKb: number | null;
    order: string;
  };
  env: BenchEnv;
  workloads: { name: BenchWorkload; title: string; unit: string; metric: string; description: string }[];
  /** In measurement order. */
  peers: PeerReport[];
  /** results[peer][workload] for every peer in `peers` and every workload. */
  results: Record<string, Record<string, BenchCell>>;
  /** Name of the reference peer for ratios ('c-ref'). */
  reference: string;
  /** ratios[peer][workload] = median / median of the reference; null when either is missing. */
  ratios: Record<string, Record<string, number | null>>;
  goals: BenchGoal[];
}

// ---------------------------------------------------------------- paths and environment

/** The repository root (this file is src/stress/bench.ts or dist/stress/bench.js). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

async function exists(p: string, mode = fsConstants.F_OK): Promise<boolean> {
  try {
    await access(p, mode);
    return true;
  } catch {
    return false;
  }
}

/** `make -C native-tests/bench` (incremental) unless build is false; then the binaries must exist. */
async function ensureBuilt(root: string, binDir: string, build: boolean, log: (l: string) => void): Promise<void> {
  if (build) {
    const r = await runCommand('make', ['-s', '-C', join(root, 'native-tests', 'bench')], 180_000);
    if (r.code !== 0) throw new Error(`make -C native-tests/bench failed:\n${r.stderr.trim()}`);
    if (r.stdout.includes('cc ') || r.stdout.includes('gcc ')) log('bench: built native-tests/bench');
  }
  const need = [join(binDir, 'ref_server'), join(binDir, 'bench_driver')];
  const have = await Promise.all(need.map((p) => exists(p, fsConstants.X_OK)));
  if (!have.every(Boolean)) throw new Error(`bench binaries missing (${need.join(', ')}): run make -C native-tests/bench`);
}

async function collectEnv(binDir: string, root: string): Promise<Omit<BenchEnv, 'cpuDmaLatencyHeld' | 'cpuDmaLatencyNote' | 'loadAvgEnd'>> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(await readFile('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    /* keep os.cpus() */
  }
  let cpuidleDriver: string | null = null;
  try {
    cpuidleDriver = (await readFile('/sys/devices/system/cpu/cpuidle/current_driver', 'utf8')).trim();
  } catch {
    /* no cpuidle */
  }
  let libfuse3: string | null = null;
  const v = await runCommand(join(binDir, 'ref_server'), ['--version'], 10_000);
  const vm = /libfuse (\S+)/.exec(v.stdout);
  if (v.code === 0 && vm) libfuse3 = vm[1]!;
  let fuseNative: string | null = null;
  try {
    fuseNative = JSON.parse(await readFile(join(root, 'node_modules', 'fuse-native', 'package.json'), 'utf8')).version as string;
  } catch {
    /* not installed */
  }
  return {
    kernel: os.release(),
    kernelVersion: os.version(),
    cpuModel,
    cpus: os.cpus().length,
    cpuidleDriver,
    node: process.version,
    libfuse3,
    fuseNative,
    hostname: os.hostname(),
    loadAvgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Hold /dev/cpu_dma_latency at 0 µs until release() (the PM QoS request lives while the fd is open). */
function holdCpuDmaLatency(): { held: boolean; note?: string; release(): void } {
  try {
    // Not a FUSE path: synchronous I/O is fine here.
    const fd = openSync('/dev/cpu_dma_latency', 'r+');
    const zero = Buffer.alloc(4);
    writeSync(fd, zero, 0, 4);
    let open = true;
    return {
      held: true,
      release() {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } catch (e) {
    return { held: false, note: `could not hold /dev/cpu_dma_latency: ${(e as Error).message}`, release() {} };
  }
}

// ---------------------------------------------------------------- drivers

interface DriverRun {
  ok: boolean;
  json: Record<string, unknown>;
  error?: string;
  /** The driver outlived its time limit (the peer is presumed wedged). */
  timedOut: boolean;
}

async function runDriver(driver: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<DriverRun> {
  const r = await runCommand(driver, args, timeoutMs, signal);
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  let json: Record<string, unknown> = {};
  if (lines.length) {
    try {
      json = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
    } catch {
      json = {};
    }
  }
  if (r.timedOut) return { ok: false, json, error: `driver killed after ${timeoutMs} ms (wedged peer?)`, timedOut: true };
  if (r.code === 0 && json.ok === true) return { ok: true, json, timedOut: false };
  const error =
    typeof json.error === 'string'
      ? json.error
      : `driver exited with ${r.signal ?? `code ${r.code}`}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`;
  return { ok: false, json, error, timedOut: false };
}

// ---------------------------------------------------------------- statistics

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function summarize(cell: BenchCell, w: WorkloadInfo): void {
  const ok = cell.runs.filter((r) => r.ok === true);
  cell.samples = ok.map((r) => Number(r[w.metric]));
  if (cell.samples.length) {
    cell.median = median(cell.samples);
    cell.min = Math.min(...cell.samples);
    cell.max = Math.max(...cell.samples);
    if (cell.status !== 'error') cell.status = 'ok';
  }
  if (w.latency && ok.length) {
    cell.p50Us = median(ok.map((r) => Number(r.p50_us)));
    cell.p99Us = median(ok.map((r) => Number(r.p99_us)));
  }
  if (w.name === 'punch' && ok.length) {
    cell.dataErrors = ok.reduce((a, r) => a + Number(r.errors ?? 0), 0);
    const first = ok.find((r) => typeof r.first_error === 'string' && r.first_error !== '');
    if (first) cell.firstDataError = String(first.first_error);
  }
  const res = ok.map((r) => r.resident_pct_max).filter((x): x is number => typeof x === 'number');
  if (res.length) cell.residentPctMax = Math.max(...res);
}

const GOALS: { id: string; workload: BenchWorkload; against: 'reference' | 'fuse-native'; target: number }[] = [
  { id: 'randread-vs-c', workload: 'randread', against: 'reference', target: 0.8 },
  { id: 'seqread-vs-c', workload: 'seqread', against: 'reference', target: 0.9 },
  { id: 'punch-vs-c', workload: 'punch', against: 'reference', target: 0.7 },
];

function evaluateGoals(result: BenchResult): BenchGoal[] {
  const goals: BenchGoal[] = [];
  const nodePeer = result.peers.find((p) => p.kind === 'fuse-native' && p.available);
  const ratioOf = (peer: string, against: string, w: BenchWorkload): number | null => {
    const a = result.results[peer]?.[w];
    const b = result.results[against]?.[w];
    if (!a || !b || a.status !== 'ok' || b.status !== 'ok' || a.median === undefined || b.median === undefined || b.median <= 0) return null;
    return a.median / b.median;
  };
  // Goals only for the faultline peers that actually ran; the others show as "not available" rows.
  for (const p of result.peers.filter((x) => x.kind === 'faultline' && x.available)) {
    for (const g of GOALS) {
      if (!result.settings.workloads.includes(g.workload)) continue;
      const ratio = ratioOf(p.name, result.reference, g.workload);
      goals.push({
        id: g.id,
        description: `${p.name} ${g.workload} ≥ ${g.target}× ${result.reference}`,
        peer: p.name,
        workload: g.workload,
        against: result.reference,
        target: g.target,
        ratio,
        met: ratio === null ? null : ratio >= g.target,
      });
    }
    if (nodePeer) {
      for (const w of result.settings.workloads) {
        const nodeCell = result.results[nodePeer.name]?.[w];
        if (nodeCell?.status === 'n/a') continue;
        const ratio = ratioOf(p.name, nodePeer.name, w);
        const ceiling = ratioOf(result.reference, nodePeer.name, w);
        goals.push({
          id: `${w}-vs-node`,
          description: `${p.name} ${w} ≥ 2× ${nodePeer.name}`,
          peer: p.name,
          workload: w,
          against: nodePeer.name,
          target: 2,
          ratio,
          met: ratio === null ? null : ratio >= 2,
          ...(ceiling !== null ? { ceiling } : {}),
          ...(ceiling !== null && ceiling < 2
            ? { note: `out of reach in this run: ${result.reference} itself reached only ${ceiling.toFixed(2)}× ${nodePeer.name}` }
            : {}),
        });
      }
    }
  }
  return goals;
}

// ---------------------------------------------------------------- the run

const MiB = 1024 * 1024;

/** The peers a run measures, in order (before availability checks). */
export function benchPeers(options: BenchOptions = {}, root = repoRoot()): BenchPeer[] {
  const cli = options.cli ?? join(root, 'dist', 'cli.js');
  const peers: BenchPeer[] = [tmpfsPeer(), refServerPeer()];
  if (options.noiseFloor) peers.push(refServerPeer('c-ref-b'));
  peers.push(fuseNativePeer());
  if (options.faultline !== false) {
    for (const v of options.faultlineVariants ?? DEFAULT_FAULTLINE_VARIANTS) peers.push(faultlinePeer(v, cli));
  }
  peers.push(...(options.extraPeers ?? []));
  const only = options.peers;
  if (!only || !only.length) return peers;
  const unknown = only.filter((n) => !peers.some((p) => p.name === n));
  if (unknown.length) throw new Error(`unknown bench peer(s) ${unknown.join(', ')}; known: ${peers.map((p) => p.name).join(', ')}`);
  return peers.filter((p) => only.includes(p.name));
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const log = options.log ?? (() => undefined);
  const smoke = options.smoke ?? false;
  const rounds = options.rounds ?? (smoke ? 1 : 3);
  const seconds = options.seconds ?? (smoke ? 1 : 2);
  const fileSize = options.fileSize ?? (smoke ? 32 * MiB : 256 * MiB);
  const workloads = options.workloads ?? [...BENCH_WORKLOADS];
  for (const w of workloads) {
    if (!BENCH_WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; known: ${BENCH_WORKLOADS.join(', ')}`);
  }
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got ${rounds}`);
  if (!(seconds > 0)) throw new Error(`seconds must be positive, got ${seconds}`);
  if (!Number.isInteger(fileSize) || fileSize < 1 * MiB || fileSize % 4096 !== 0)
    throw new Error(`fileSize must be a multiple of 4096 of at least 1 MiB, got ${fileSize}`);
  const root = repoRoot();
  const binDir = join(root, 'native-tests', 'bench', 'bin');
  const driver = join(binDir, 'bench_driver');
  const fileName = 'bench.dat';
  const graceMs = options.driverGraceMs ?? 60_000;
  const signal = options.signal;
  const order = options.order ?? 'fixed';
  if (order !== 'fixed' && order !== 'rotate') throw new Error(`order must be 'fixed' or 'rotate', got ${String(order)}`);
  signal?.throwIfAborted();

  const peers = benchPeers(options, root);
  const names = new Set<string>();
  for (const p of peers) {
    if (names.has(p.name)) throw new Error(`duplicate peer name ${p.name}`);
    names.add(p.name);
  }
  await ensureBuilt(root, binDir, options.build ?? true, log);
  const envBase = await collectEnv(binDir, root);
  const ctx: PeerContext = { fileName, fileSize, repoRoot: root, binDir, log };

  const reports: PeerReport[] = peers.map((p) => ({ name: p.name, kind: p.kind, description: p.description, available: false }));
  const results: Record<string, Record<string, BenchCell>> = {};
  for (const p of peers) {
    results[p.name] = {};
    for (const w of workloads) {
      const info = workloadInfo(w);
      const na = p.unsupported?.[w];
      results[p.name]![w] = na ? { status: 'n/a', reason: na, unit: info.unit, samples: [], runs: [] } : { status: 'not available', unit: info.unit, samples: [], runs: [] };
    }
  }

  const instances = new Map<string, PeerInstance>();
  const latency = options.holdCpuDmaLatency === false ? { held: false, note: 'not requested', release() {} } : holdCpuDmaLatency();
  try {
    // Mount every peer (each in a fresh temp dir) and fill its file, untimed.
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[i]!;
      const rep = reports[i]!;
      signal?.throwIfAborted();
      let why: string | null;
      try {
        why = peer.available ? await peer.available(ctx) : null;
      } catch (e) {
        why = `availability check failed: ${(e as Error).message}`;
      }
      if (why) {
        rep.reason = `not available: ${why}`;
        log(`bench: ${peer.name}: ${rep.reason}`);
        continue;
      }
      const mnt = await mkdtemp(join(os.tmpdir(), `faultline-bench-${peer.name.replace(/[^\w.-]/g, '_')}-`));
      rep.mountpoint = mnt;
      let inst: PeerInstance;
      try {
        log(`bench: starting ${peer.name} on ${mnt}`);
        inst = await peer.start(mnt, ctx);
      } catch (e) {
        rep.reason = `not available: failed to start: ${(e as Error).message}`;
        log(`bench: ${peer.name}: ${rep.reason}`);
        await forceUnmountAndRemove(mnt, log);
        continue;
      }
      instances.set(peer.name, inst);
      rep.available = true;
      rep.pid = inst.pid;
      rep.info = inst.info;
      try {
        rep.readaheadKb = peer.kind === 'tmpfs' ? null : await readaheadKb(mnt, options.readaheadKb);
      } catch (e) {
        log(`bench: ${peer.name}: read_ahead_kb: ${(e as Error).message}`);
        rep.readaheadKb = null;
      }
      signal?.throwIfAborted();
      const fill = await runDriver(driver, ['fill', '--file', inst.file, '--size', String(fileSize)], 120_000 + fileSize / 1000, signal);
      rep.fill = fill.json;
      if (!fill.ok) {
        rep.available = false;
        rep.reason = `failed to fill ${inst.file}: ${fill.error}`;
        log(`bench: ${peer.name}: ${rep.reason}`);
        await inst.stop();
        instances.delete(peer.name);
      }
    }
    for (const rep of reports) {
      if (!rep.available) {
        for (const w of workloads) {
          const cell = results[rep.name]![w]!;
          if (cell.status === 'not available') cell.reason = rep.reason;
        }
      }
    }

    // Interleaved rounds: for each round, each workload, every peer in order (rotated per round
    // with order 'rotate').
    for (let round = 1; round <= rounds; round++) {
      const shift = order === 'rotate' ? (round - 1) % peers.length : 0;
      const roundPeers = [...peers.slice(shift), ...peers.slice(0, shift)];
      for (const w of workloads) {
        const info = workloadInfo(w);
        for (const peer of roundPeers) {
          const inst = instances.get(peer.name);
          const cell = results[peer.name]![w]!;
          if (!inst || cell.status === 'n/a') continue;
          const args = [info.driver, ...info.args, '--seconds', String(seconds), '--seed', String(round * 1000 + 17)];
          if (w === 'meta') args.push('--dir', inst.mountpoint);
          else args.push('--file', inst.file);
          signal?.throwIfAborted();
          const run = await runDriver(driver, args, seconds * 1000 + graceMs, signal);
          signal?.throwIfAborted();
          cell.runs.push({ round, ...run.json, ok: run.ok, ...(run.error ? { error: run.error } : {}) });
          if (run.ok) {
            log(`bench: round ${round}/${rounds} ${w} ${peer.name}: ${formatNumber(Number(run.json[info.metric]))} ${info.unit}`);
          } else {
            cell.status = 'error';
            cell.reason = run.error;
            log(`bench: round ${round}/${rounds} ${w} ${peer.name}: ERROR ${run.error}`);
            if (run.timedOut) {
              const rep = reports.find((r) => r.name === peer.name)!;
              rep.reason = `stopped mid-run: ${run.error}`;
              log(`bench: stopping ${peer.name}: ${rep.reason}`);
              await inst.stop();
              instances.delete(peer.name);
            }
          }
        }
      }
    }
  } finally {
    for (const [name, inst] of instances) {
      log(`bench: stopping ${name}`);
      await inst.stop();
    }
    instances.clear();
    latency.release();
  }
  // every mount must be gone
  for (const rep of reports) {
    if (rep.mountpoint && (await isMounted(rep.mountpoint))) throw new Error(`bench: ${rep.mountpoint} (${rep.name}) is still mounted after the run`);
  }

  for (const p of peers) for (const w of workloads) summarize(results[p.name]![w]!, workloadInfo(w));

  const reference = 'c-ref';
  const ratios: Record<string, Record<string, number | null>> = {};
  for (const p of peers) {
    ratios[p.name] = {};
    for (const w of workloads) {
      const a = results[p.name]![w]!;
      const b = results[reference]?.[w];
      ratios[p.name]![w] =
        a.status === 'ok' && b?.status === 'ok' && a.median !== undefined && b.median !== undefined && b.median > 0 ? a.median / b.median : null;
    }
  }

  const finished = Date.now();
  const result: BenchResult = {
    version: 1,
    startedAt,
    finishedAt: new Date(finished).toISOString(),
    durationS: (finished - t0) / 1000,
    settings: {
      rounds,
      seconds,
      fileSize,
      fileName,
      workloads,
      smoke,
      readaheadKb: options.readaheadKb ?? null,
      order:
        order === 'rotate'
          ? 'interleaved, rotated: for each round, for each workload, every peer, starting one peer later each round'
          : 'interleaved: for each round, for each workload, every peer in order',
    },
    env: {
      ...envBase,
      loadAvgEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      cpuDmaLatencyHeld: latency.held,
      ...(latency.note ? { cpuDmaLatencyNote: latency.note } : {}),
    },
    workloads: workloads.map((w) => {
      const i = workloadInfo(w);
      return { name: w, title: i.title, unit: i.unit, metric: i.metric, description: i.description };
    }),
    peers: reports,
    results,
    reference,
    ratios,
    goals: [],
  };
  result.goals = evaluateGoals(result);
  if (options.outDir) await writeBenchReports(result, options.outDir);
  return result;
}

/** Write bench.json, bench.txt and bench.svg into `dir`; returns their paths. */
export async function writeBenchReports(result: BenchResult, dir: string): Promise<{ json: string; text: string; svg: string }> {
  await mkdir(dir, { recursive: true });
  const out = { json: join(dir, 'bench.json'), text: join(dir, 'bench.txt'), svg: join(dir, 'bench.svg') };
  await writeFile(out.json, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(out.text, formatBenchTable(result));
  await writeFile(out.svg, benchSvg(result));
  return out;
}
