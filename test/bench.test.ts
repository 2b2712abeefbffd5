// `faultline bench` smoke: the C reference server, the fuse-native peer and tmpfs (and faultline
// when dist/cli.js exists) run every workload for about a second. No timing thresholds: the test
// checks that every available peer produced a non-zero number for every workload it supports, that
// unsupported cells say why, that reports render, and that no mount is left behind.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BENCH_WORKLOADS, benchPeers, benchSvg, formatBenchTable, median, repoRoot, runBench, type BenchPeer, type BenchResult } from '../src/stress/bench.js';
import { mountPoints } from '../src/stress/bench-peers.js';

const canFuse = existsSync('/dev/fuse') && process.getuid?.() === 0;
const ci = process.env.CI === 'true';
const cli = join(repoRoot(), 'dist', 'cli.js');

describe('bench helpers', () => {
  it('median of odd and even sample counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });

  it('rejects unknown peers, unknown workloads and bad sizes before mounting anything', async () => {
    await expect(runBench({ peers: ['c-ref', 'nope'] })).rejects.toThrow(/unknown bench peer\(s\) nope; known: tmpfs, c-ref, fuse-native/);
    await expect(runBench({ workloads: ['randread', 'bogus' as never] })).rejects.toThrow(/unknown workload bogus/);
    await expect(runBench({ fileSize: 12345 })).rejects.toThrow(/multiple of 4096/);
    await expect(runBench({ rounds: 0 })).rejects.toThrow(/rounds/);
  });

  it('lists the default peers in measurement order', () => {
    expect(benchPeers().map((p) => p.name)).toEqual(['tmpfs', 'c-ref', 'fuse-native', 'faultline', 'faultline-nocache']);
    expect(benchPeers({ faultline: false }).map((p) => p.kind)).toEqual(['tmpfs', 'c-ref', 'fuse-native']);
    expect(benchPeers({ faultline: false, noiseFloor: true }).map((p) => p.name)).toEqual(['tmpfs', 'c-ref', 'c-ref-b', 'fuse-native']);
    expect(benchPeers().find((p) => p.name === 'fuse-native')!.unsupported).toEqual({ punch: 'n/a: fuse-native has no fallocate' });
  });
});

describe.skipIf(!canFuse && !ci)('bench smoke run', () => {
  let result: BenchResult;
  let mountsBefore: Set<string>;
  const failing: BenchPeer = {
    name: 'broken-peer',
    kind: 'custom',
    description: 'a peer whose server never starts',
    async start() {
      throw new Error('deliberately broken');
    },
  };

  beforeAll(async () => {
    if (!canFuse) throw new Error('the bench smoke test needs root and /dev/fuse (CI=true: failing instead of skipping)');
    mountsBefore = await mountPoints();
    result = await runBench({ smoke: true, extraPeers: [failing] });
  }, 600_000);

  it('records the environment and settings', () => {
    expect(result.version).toBe(1);
    expect(result.env.kernel.length).toBeGreaterThan(0);
    expect(result.env.cpuModel.length).toBeGreaterThan(0);
    expect(result.env.node).toBe(process.version);
    expect(result.env.libfuse3).toMatch(/^3\.\d+/);
    expect(result.settings.smoke).toBe(true);
    expect(result.settings.workloads).toEqual([...BENCH_WORKLOADS]);
    expect(result.workloads.map((w) => w.name)).toEqual([...BENCH_WORKLOADS]);
  });

  it('ran the C server, the fuse-native peer and tmpfs (and faultline when it is built)', () => {
    const byName = new Map(result.peers.map((p) => [p.name, p]));
    for (const name of ['tmpfs', 'c-ref', 'fuse-native']) {
      expect(byName.get(name)?.available, `${name}: ${byName.get(name)?.reason}`).toBe(true);
    }
    expect(byName.get('c-ref')?.info?.libfuse).toBe(result.env.libfuse3);
    expect(String(byName.get('fuse-native')?.info?.libfuse)).toMatch(/^libfuse\.so\.2/);
    const fl = byName.get('faultline');
    expect(fl).toBeDefined();
    if (existsSync(cli)) expect(fl!.available, fl!.reason).toBe(true);
    else expect(fl!.reason).toMatch(/not available/);
  });

  it('has every workload for every available peer with non-zero numbers', () => {
    for (const peer of result.peers.filter((p) => p.available)) {
      for (const w of BENCH_WORKLOADS) {
        const cell = result.results[peer.name]![w]!;
        expect(cell, `${peer.name}/${w}`).toBeDefined();
        if (peer.kind === 'fuse-native' && w === 'punch') {
          expect(cell.status).toBe('n/a');
          expect(cell.reason).toBe('n/a: fuse-native has no fallocate');
          continue;
        }
        expect(cell.status, `${peer.name}/${w}: ${cell.reason ?? ''}`).toBe('ok');
        expect(cell.samples.length).toBe(result.settings.rounds);
        expect(cell.median!).toBeGreaterThan(0);
        expect(cell.min!).toBeLessThanOrEqual(cell.median!);
        expect(cell.max!).toBeGreaterThanOrEqual(cell.median!);
        if (['randread', 'punch', 'meta'].includes(w)) {
          expect(cell.p50Us!).toBeGreaterThan(0);
          expect(cell.p99Us!).toBeGreaterThanOrEqual(cell.p50Us!);
        }
        if (w === 'punch') expect(cell.dataErrors, `${peer.name}: ${cell.firstDataError}`).toBe(0);
        // the FUSE peers really read from the server: nothing stayed cached after a drop
        if (peer.kind !== 'tmpfs' && ['randread', 'seqread', 'mapfault-random'].includes(w)) expect(cell.residentPctMax).toBe(0);
      }
    }
    const ref = result.ratios['c-ref']!;
    for (const w of BENCH_WORKLOADS) expect(ref[w]).toBe(1);
  });

  it('reports a peer that fails to start as not available and carries on', () => {
    const p = result.peers.find((x) => x.name === 'broken-peer')!;
    expect(p.available).toBe(false);
    expect(p.reason).toMatch(/failed to start: deliberately broken/);
    for (const w of BENCH_WORKLOADS) expect(result.results['broken-peer']![w]!.status).toBe('not available');
  });

  it('leaves no mount and no mount point behind', async () => {
    const now = await mountPoints();
    for (const p of result.peers) {
      if (!p.mountpoint) continue;
      expect(now.has(p.mountpoint), p.mountpoint).toBe(false);
      expect(existsSync(p.mountpoint), p.mountpoint).toBe(false);
    }
    for (const m of now) if (!mountsBefore.has(m)) expect(m).not.toMatch(/faultline-bench-/);
    const fuseMounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes('faultline-bench-'));
    expect(fuseMounts).toEqual([]);
  });

  it('renders the text table and the SVG with every peer and workload', () => {
    const text = formatBenchTable(result);
    const svg = benchSvg(result);
    for (const p of result.peers) {
      expect(text).toContain(p.name);
      expect(svg).toContain(`>${p.name}</text>`);
    }
    for (const w of result.workloads) {
      expect(text).toContain(`[${w.name}]`);
      expect(svg).toContain(w.title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
    }
    expect(text).toContain('n/a: fuse-native has no fallocate');
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // round-trips as JSON
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });
});

describe.skipIf(!canFuse && !ci)('bench abort', () => {
  it('an aborted run kills the driver, stops every peer and leaves no mount', async () => {
    if (!canFuse) throw new Error('needs root and /dev/fuse');
    const ac = new AbortController();
    const started: string[] = [];
    const p = runBench({
      smoke: true,
      seconds: 60,
      peers: ['tmpfs', 'c-ref'],
      workloads: ['randread', 'seqread'],
      signal: ac.signal,
      log: (line) => {
        const m = /^bench: starting (\S+) on (\S+)$/.exec(line);
        if (m) started.push(m[2]!);
        // abort a few seconds after the last peer started: normally while the first 60 s driver runs
        if (line.startsWith('bench: starting c-ref')) setTimeout(() => ac.abort(), 3000);
      },
    });
    const t0 = Date.now();
    await expect(p).rejects.toThrow(/abort/i);
    expect(Date.now() - t0).toBeLessThan(45_000); // liveness, not performance: the driver had a 60 s budget
    expect(started.length).toBe(2);
    const now = await mountPoints();
    for (const mnt of started) {
      expect(now.has(mnt), mnt).toBe(false);
      expect(existsSync(mnt), mnt).toBe(false);
    }
  }, 120_000);
});

describe.skipIf(!canFuse && !ci)('bench faultline peer plumbing', () => {
  // A stand-in for dist/cli.js: `mount MNT ...` runs the C reference server and prints faultline's
  // ready line. It proves the faultline peer (spawn, ready line, SIGTERM, unmount) and the goal
  // evaluation without the real daemon; it measures nothing about faultline.
  it('starts faultline variants through the CLI contract and evaluates the goals', async () => {
    if (!canFuse) throw new Error('needs root and /dev/fuse');
    const dir = await mkdtemp(join(tmpdir(), 'faultline-bench-fakecli-'));
    const fake = join(dir, 'cli.mjs');
    const ref = join(repoRoot(), 'native-tests', 'bench', 'bin', 'ref_server');
    await writeFile(
      fake,
      `import { spawn } from 'node:child_process';
const [, , cmd, mnt, ...rest] = process.argv;
if (cmd !== 'mount') process.exit(2);
const child = spawn(${JSON.stringify(ref)}, ['--size', '1048576', mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (d) => {
  if (/mounted on/.test(String(d))) process.stdout.write('faultline: mounted on ' + mnt + ' (pid ' + process.pid + ', control /nonexistent/' + rest.join('_') + '.sock)\\n');
});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (c) => process.exit(c ?? 1));
`,
    );
    try {
      const r = await runBench({
        smoke: true,
        cli: fake,
        peers: ['c-ref', 'fuse-native', 'faultline', 'faultline-nocache'],
        workloads: ['randread', 'seqread', 'punch'],
      });
      for (const name of ['faultline', 'faultline-nocache']) {
        const p = r.peers.find((x) => x.name === name)!;
        expect(p.available, p.reason).toBe(true);
        expect(r.results[name]!.punch!.status).toBe('ok');
        const ids = r.goals.filter((g) => g.peer === name).map((g) => g.id);
        // punch has no Node goal: fuse-native cannot punch
        expect(ids).toEqual(['randread-vs-c', 'seqread-vs-c', 'punch-vs-c', 'randread-vs-node', 'seqread-vs-node']);
        for (const g of r.goals.filter((x) => x.peer === name)) {
          expect(g.ratio!).toBeGreaterThan(0);
          expect(g.met).toBe(g.ratio! >= g.target);
          if (g.against === 'fuse-native') expect(g.ceiling!).toBeGreaterThan(0);
        }
      }
      expect(r.peers.find((x) => x.name === 'faultline-nocache')!.info!.control).toBe('/nonexistent/--cache-pages_0.sock');
      expect(formatBenchTable(r)).toMatch(/\[(MET |MISS)\] faultline randread ≥ 0\.8× c-ref/);
      const now = await mountPoints();
      for (const p of r.peers) if (p.mountpoint) expect(now.has(p.mountpoint)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
