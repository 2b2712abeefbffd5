// Reports of `faultline bench`: a text table and a self-contained SVG chart of a BenchResult.

import type { BenchCell, BenchResult } from './bench.js';

/** 1234567 → "1.23M", 45678 → "45.7k", 2.345 → "2.35", 0.5 → "0.500". */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(x / 1e3).toPrecision(3)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(a >= 1 ? 2 : 3);
}

function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '–';
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function fmtBytes(n: number): string {
  if (n % (1024 * 1024 * 1024) === 0) return `${n / 1024 ** 3} GiB`;
  if (n % (1024 * 1024) === 0) return `${n / 1024 ** 2} MiB`;
  return `${n} B`;
}

function pad(s: string, w: number): string {
  return s.length >= w ? s : s + ' '.repeat(w - s.length);
}
function lpad(s: string, w: number): string {
  return s.length >= w ? s : ' '.repeat(w - s.length) + s;
}

function cellShort(c: BenchCell | undefined): string {
  if (!c) return '–';
  if (c.status === 'ok' && c.median !== undefined) return formatNumber(c.median);
  if (c.status === 'n/a') return 'n/a';
  if (c.status === 'error') return c.median !== undefined ? `${formatNumber(c.median)}!` : 'error';
  return 'not avail.';
}

/** The result as a plain-text report (ends with a newline). */
export function formatBenchTable(result: BenchResult): string {
  const out: string[] = [];
  const e = result.env;
  const s = result.settings;
  out.push(`faultline bench  ${result.startedAt}  (${result.durationS.toFixed(0)} s${s.smoke ? ', smoke run: numbers are not meaningful' : ''})`);
  out.push(`kernel ${e.kernel} | ${e.cpuModel} x${e.cpus} | cpuidle ${e.cpuidleDriver ?? '?'} | libfuse ${e.libfuse3 ?? '?'} | fuse-native ${e.fuseNative ?? '-'} | Node ${e.node}`);
  out.push(
    `/dev/cpu_dma_latency ${e.cpuDmaLatencyHeld ? 'held at 0 for the whole run' : `NOT held (${e.cpuDmaLatencyNote ?? '?'}): expect bimodal wake-ups`}` +
      ` | read_ahead_kb ${s.readaheadKb ?? 'kernel default'}`,
  );
  const busy = Math.max(e.loadAvgStart[0] ?? 0, e.loadAvgEnd[0] ?? 0) > 0.5 * e.cpus;
  out.push(
    `load average ${e.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} at start, ${e.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')} at end` +
      (busy ? '  WARNING: the machine was busy with other work; the numbers are skewed' : ''),
  );
  out.push(`${s.rounds} interleaved${s.order.includes('rotated') ? ' (rotated)' : ''} round(s) x ${s.seconds} s per workload and peer; file ${s.fileName} ${fmtBytes(s.fileSize)}; median [min-max], ratio to ${result.reference}`);
  out.push('');

  const peers = result.peers;
  // Summary matrix: medians.
  const wCol = Math.max(18, ...result.workloads.map((w) => w.name.length + 2));
  const pCol = Math.max(12, ...peers.map((p) => p.name.length + 2));
  out.push(pad('workload', wCol) + pad('unit', 10) + peers.map((p) => lpad(p.name, pCol)).join(''));
  for (const w of result.workloads) {
    out.push(pad(w.name, wCol) + pad(w.unit, 10) + peers.map((p) => lpad(cellShort(result.results[p.name]?.[w.name]), pCol)).join(''));
  }
  out.push('');
  const twin = peers.find((p) => p.kind === 'c-ref' && p.name !== result.reference && p.available);
  if (twin) {
    out.push(
      `noise floor: ${twin.name} is the same server as ${result.reference}; its ratios show what noise alone does to a ratio in this run: ` +
        result.workloads.map((w) => `${w.name} ${fmtRatio(result.ratios[twin.name]?.[w.name])}`).join(', '),
    );
    out.push('');
  }

  // Per workload detail.
  for (const w of result.workloads) {
    out.push(`${w.title} [${w.name}] (${w.unit}): ${w.description}`);
    for (const p of peers) {
      const c = result.results[p.name]?.[w.name];
      let line = `  ${pad(p.name, pCol)}`;
      if (!c) {
        out.push(line + '–');
        continue;
      }
      if (c.median !== undefined) {
        line += lpad(formatNumber(c.median), 9) + '  ' + pad(`[${formatNumber(c.min!)}-${formatNumber(c.max!)}]`, 18) + lpad(fmtRatio(result.ratios[p.name]?.[w.name]), 8);
        if (c.p50Us !== undefined) line += `   p50 ${c.p50Us.toFixed(1)} us  p99 ${c.p99Us!.toFixed(1)} us`;
        if (c.dataErrors) line += `   DATA ERRORS ${c.dataErrors} (${c.firstDataError ?? ''})`;
        if (p.kind !== 'tmpfs' && c.residentPctMax !== undefined && c.residentPctMax > 1) line += `   (${c.residentPctMax.toFixed(0)}% still cached after drop)`;
        if (p.kind === 'tmpfs' && ['randread', 'seqread', 'mapfault', 'mapfault-random'].includes(w.name)) line += '   (page cache: never uncached)';
        if (c.status === 'error') line += `   ERROR in some rounds: ${c.reason ?? ''}`;
      } else if (c.status === 'n/a') {
        line += c.reason ?? 'n/a';
      } else if (c.status === 'error') {
        line += `error: ${c.reason ?? ''}`;
      } else {
        line += c.reason ?? 'not available';
      }
      out.push(line);
    }
    out.push('');
  }

  if (!result.goals.length) {
    out.push('Goals: none evaluated (no faultline peer ran).');
    out.push('');
  } else {
    out.push('Goals (median ratios, same run):');
    for (const g of result.goals) {
      const tag = g.met === null ? '[n/a ]' : g.met ? '[MET ]' : '[MISS]';
      out.push(`  ${tag} ${pad(g.description, 44)} ${pad(g.ratio === null ? 'no number' : fmtRatio(g.ratio), 8)}${g.note ? ` (${g.note})` : ''}`);
    }
    out.push('');
  }
  out.push('Peers:');
  for (const p of peers) {
    const info = p.info ? Object.entries(p.info).map(([k, v]) => `${k}=${v}`).join(' ') : '';
    out.push(
      `  ${pad(p.name, pCol)}${p.available ? `pid ${p.pid ?? '-'}  ra ${p.readaheadKb ?? '-'} KiB  ${info}` : p.reason ?? 'not available'}`,
    );
    out.push(`  ${pad('', pCol)}${p.description}`);
    if (p.available && p.reason) out.push(`  ${pad('', pCol)}${p.reason}`);
  }
  return out.join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const KIND_COLOR: Record<string, string> = {
  tmpfs: '#9e9e9e',
  'c-ref': '#3b6fb6',
  'fuse-native': '#4f9a55',
  faultline: '#d0642b',
  custom: '#8e5ea2',
};

/**
 * A self-contained SVG chart: one panel per workload, one bar per peer, bar length = median
 * relative to the reference peer (linear axis, clipped with an arrow past the axis end), min-max
 * whiskers, the absolute median as a label, and the goal thresholds as ticks on faultline rows.
 */
export function benchSvg(result: BenchResult): string {
  const W = 960;
  const labelW = 150;
  const barW = 520;
  const x0 = labelW + 10;
  const rowH = 18;
  const parts: string[] = [];
  let y = 20;
  const e = result.env;
  parts.push(`<text x="10" y="${y}" font-size="15" font-weight="bold">faultline bench — ${esc(result.startedAt)}${result.settings.smoke ? ' (smoke run)' : ''}</text>`);
  y += 18;
  parts.push(
    `<text x="10" y="${y}" font-size="11" fill="#444">${esc(`kernel ${e.kernel} · ${e.cpuModel} ×${e.cpus} · libfuse ${e.libfuse3 ?? '?'} · fuse-native ${e.fuseNative ?? '-'} · Node ${e.node} · cpu_dma_latency ${e.cpuDmaLatencyHeld ? 'held at 0' : 'NOT held'}`)}</text>`,
  );
  y += 14;
  parts.push(
    `<text x="10" y="${y}" font-size="11" fill="#444">${esc(`${result.settings.rounds} interleaved round(s) × ${result.settings.seconds} s per workload and peer · bars: median relative to ${result.reference} (linear, clipped ▷), whiskers min–max, red dashes: goals`)}</text>`,
  );
  y += 14;
  const peers = result.peers;
  for (const w of result.workloads) {
    y += 16;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${esc(`${w.title} (${w.unit})`)}</text>`);
    y += 6;
    const ref = result.results[result.reference]?.[w.name];
    let base = ref?.status === 'ok' && ref.median ? ref.median : undefined;
    let baseLabel = result.reference;
    if (base === undefined) {
      const meds = peers.map((p) => result.results[p.name]?.[w.name]?.median).filter((m): m is number => m !== undefined && m > 0);
      base = meds.length ? Math.max(...meds) : undefined;
      baseLabel = 'best';
    }
    let axisMax = 1.25;
    if (base) {
      for (const p of peers) {
        if (p.kind === 'tmpfs') continue;
        const c = result.results[p.name]?.[w.name];
        if (c?.max !== undefined) axisMax = Math.max(axisMax, c.max / base);
      }
    }
    axisMax = Math.min(4, Math.ceil(axisMax * 4) / 4);
    const scale = barW / axisMax;
    const top = y;
    for (const p of peers) {
      y += rowH;
      const c = result.results[p.name]?.[w.name];
      parts.push(`<text x="${labelW}" y="${y - 5}" font-size="11" text-anchor="end">${esc(p.name)}</text>`);
      if (!c || c.median === undefined || !base) {
        const why = !c ? '–' : c.status === 'n/a' ? c.reason ?? 'n/a' : c.status === 'error' ? `error: ${c.reason ?? ''}` : c.reason ?? 'not available';
        parts.push(`<text x="${x0 + 4}" y="${y - 5}" font-size="10" fill="#888">${esc(why.length > 110 ? `${why.slice(0, 107)}...` : why)}</text>`);
        continue;
      }
      const r = c.median / base;
      const clipped = r > axisMax;
      const len = Math.max(1, Math.min(r, axisMax) * scale);
      const color = KIND_COLOR[p.kind] ?? '#777';
      parts.push(`<rect x="${x0}" y="${y - rowH + 4}" width="${len.toFixed(1)}" height="${rowH - 7}" fill="${color}"/>`);
      if (clipped) parts.push(`<path d="M${x0 + len - 8},${y - rowH + 3} l10,${(rowH - 5) / 2} l-10,${(rowH - 5) / 2} z" fill="#fff" stroke="${color}"/>`);
      if (c.min !== undefined && c.max !== undefined && c.max > c.min) {
        const a = Math.min(c.min / base, axisMax) * scale;
        const b = Math.min(c.max / base, axisMax) * scale;
        const ym = y - rowH / 2 + 0.5;
        parts.push(`<path d="M${(x0 + a).toFixed(1)},${ym} H${(x0 + b).toFixed(1)} M${(x0 + a).toFixed(1)},${ym - 3} v6 M${(x0 + b).toFixed(1)},${ym - 3} v6" stroke="#222" stroke-width="1"/>`);
      }
      if (p.kind === 'faultline') {
        for (const g of result.goals.filter((g) => g.peer === p.name && g.workload === w.name && g.against === result.reference)) {
          const gx = x0 + Math.min(g.target, axisMax) * scale;
          parts.push(`<path d="M${gx.toFixed(1)},${y - rowH + 2} v${rowH - 3}" stroke="#c00" stroke-width="2" stroke-dasharray="2,2"/>`);
        }
      }
      let label = `${formatNumber(c.median)} ${w.unit}  (${r >= 10 ? r.toFixed(1) : r.toFixed(2)}× ${baseLabel})`;
      if (c.p50Us !== undefined) label += `  p50 ${c.p50Us.toFixed(1)} µs`;
      if (c.dataErrors) label += `  ${c.dataErrors} DATA ERRORS`;
      parts.push(`<text x="${x0 + barW + 12}" y="${y - 5}" font-size="11">${esc(label)}</text>`);
    }
    // axis: 0, 1 (reference) and the end
    const bottom = y + 2;
    parts.push(`<path d="M${x0},${top} V${bottom}" stroke="#000"/>`);
    for (const t of [0.5, 1, 1.5, 2, 3, 4].filter((t) => t <= axisMax)) {
      const tx = x0 + t * scale;
      parts.push(`<path d="M${tx.toFixed(1)},${top} V${bottom}" stroke="${t === 1 ? '#3b6fb6' : '#ccc'}" stroke-width="${t === 1 ? 1 : 0.7}" stroke-dasharray="${t === 1 ? '' : '3,3'}"/>`);
      parts.push(`<text x="${tx.toFixed(1)}" y="${bottom + 10}" font-size="9" text-anchor="middle" fill="#666">${t}×</text>`);
    }
    y = bottom + 12;
  }
  if (result.goals.length) {
    y += 18;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">Goals</text>`);
    for (const g of result.goals) {
      y += 15;
      const tag = g.met === null ? 'n/a' : g.met ? 'MET' : 'MISS';
      const color = g.met === null ? '#888' : g.met ? '#2e7d32' : '#c62828';
      parts.push(
        `<text x="20" y="${y}" font-size="11"><tspan fill="${color}" font-weight="bold">${tag}</tspan> ${esc(`${g.description}: ${g.ratio === null ? 'no number' : `${g.ratio.toFixed(2)}×`}${g.note ? ` (${g.note})` : ''}`)}</text>`,
      );
    }
  }
  y += 20;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`
  );
}
