// The self-contained HTML page of `faultline validate`: no scripts, no network, inline CSS and SVG.
// The matrix as a coloured table, violations over time per row, op rates, and the before/after
// comparison when a baseline was given.

import type { ValidateReport, ReportRow } from './validate.js';
import type { ComparisonRow } from './compare.js';

const esc = (s: unknown): string =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STATUS_CLASS: Record<string, string> = {
  PASS: 'ok',
  DETECTED: 'ok',
  'NOT REPRODUCED': 'info',
  REPRODUCED: 'warn',
  XFAIL: 'xfail',
  FAIL: 'bad',
  ERROR: 'err',
  FIXED: 'ok',
  REGRESSED: 'bad',
  UNCHANGED: 'info',
  NEW: 'info',
  MISSING: 'err',
};

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** Cumulative violations (red, left axis) and op rate (grey, right axis) over time. */
export function timelineSvg(r: ReportRow, w = 260, h = 64): string {
  const tl = r.record.timeline;
  if (!tl || tl.t.length === 0) return '<span class="muted">no timeline</span>';
  const t = [0, ...tl.t];
  const v = [0, ...tl.violations];
  const o = [0, ...tl.ops];
  const rate: number[] = [0];
  // A final sample right after the previous one (the end of the run) gives no meaningful rate.
  const minDt = (tl.t.length > 1 ? tl.t[1]! - tl.t[0]! : 1) * 0.25;
  for (let i = 1; i < t.length; i++) rate.push(t[i]! - t[i - 1]! > minDt ? (o[i]! - o[i - 1]!) / (t[i]! - t[i - 1]!) : rate[i - 1]!);
  rate[0] = rate[1] ?? 0;
  const tmax = Math.max(t[t.length - 1]!, 1e-9);
  const vmax = Math.max(...v, 1);
  const rmax = Math.max(...rate, 1);
  const pad = 2;
  const x = (s: number) => (pad + (s / tmax) * (w - 2 * pad)).toFixed(1);
  const y = (val: number, max: number) => (h - pad - (val / max) * (h - 2 * pad)).toFixed(1);
  const line = (vals: number[], max: number) => vals.map((val, i) => `${i ? 'L' : 'M'}${x(t[i]!)},${y(val, max)}`).join(' ');
  const first = r.record.first_violation_s;
  return (
    `<svg class="tl" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="timeline of ${esc(r.id)}">` +
    `<rect x="0" y="0" width="${w}" height="${h}" fill="#fafafa" stroke="#ddd"/>` +
    `<path d="${line(rate, rmax)}" fill="none" stroke="#999" stroke-width="1"/>` +
    `<path d="${line(v, vmax)}" fill="none" stroke="#c62828" stroke-width="2"/>` +
    (first != null ? `<line x1="${x(Math.min(first, tmax))}" x2="${x(Math.min(first, tmax))}" y1="0" y2="${h}" stroke="#c62828" stroke-dasharray="2,2"/>` : '') +
    `<text x="${w - 4}" y="12" text-anchor="end" font-size="10" fill="#c62828" stroke="#fafafa" stroke-width="3" paint-order="stroke">${v[v.length - 1]} viol.</text>` +
    `<text x="${w - 4}" y="${h - 4}" text-anchor="end" font-size="10" fill="#666" stroke="#fafafa" stroke-width="3" paint-order="stroke">${fmt(rmax)} ops/s peak, ${tmax.toFixed(1)} s</text>` +
    `</svg>`
  );
}

function ratesSvg(rows: readonly ReportRow[]): string {
  const w = 640;
  const bh = 14;
  const lw = 220;
  const h = rows.length * (bh + 4) + 8;
  const max = Math.max(...rows.map((r) => r.record.ops_per_s), 1);
  const bars = rows
    .map((r, i) => {
      const y = 4 + i * (bh + 4);
      const bw = ((w - lw - 80) * r.record.ops_per_s) / max;
      return (
        `<text x="${lw - 6}" y="${y + bh - 3}" text-anchor="end" font-size="11">${esc(r.id)}</text>` +
        `<rect x="${lw}" y="${y}" width="${bw.toFixed(1)}" height="${bh}" class="bar-${STATUS_CLASS[r.status] ?? 'info'}"/>` +
        `<text x="${(lw + bw + 4).toFixed(1)}" y="${y + bh - 3}" font-size="11">${fmt(r.record.ops_per_s)}/s</text>`
      );
    })
    .join('');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="op rates">${bars}</svg>`;
}

function comparisonHtml(c: readonly ComparisonRow[], base: ValidateReport['baseline']): string {
  const rows = c
    .map(
      (r) =>
        `<tr><td>${esc(r.id)}</td><td class="${STATUS_CLASS[r.change]}">${r.change}</td>` +
        `<td>${r.before ? `${esc(r.before.status)} (${r.before.violations})` : '-'}</td>` +
        `<td>${r.after ? `${esc(r.after.status)} (${r.after.violations})` : '-'}</td></tr>`,
    )
    .join('\n');
  return (
    `<h2>Before / after</h2><p>Baseline: <code>${esc(base?.file)}</code> (started ${esc(base?.started)}, kernel ${esc(base?.kernel)})</p>` +
    `<table id="comparison"><thead><tr><th>row</th><th>change</th><th>before</th><th>after</th></tr></thead><tbody>\n${rows}\n</tbody></table>`
  );
}

export function renderHtml(rep: ValidateReport): string {
  const rows = rep.rows
    .map(
      (r) =>
        `<tr data-row="${esc(r.id)}" data-status="${esc(r.status)}">` +
        `<td><b>${esc(r.id)}</b><br><span class="muted">${esc(r.title)}</span></td>` +
        `<td>${esc(r.group)}</td>` +
        `<td>${esc(r.target)}<br><span class="muted">${esc(r.record.fstype)}</span></td>` +
        `<td>${esc(r.scenario)}<br><span class="muted">${esc(r.record.program)}${r.args ? ` ${esc(r.args)}` : ''}</span></td>` +
        `<td><code>${esc(r.mountArgs ?? '-')}</code></td>` +
        `<td>${esc(r.expect)}</td>` +
        `<td class="${STATUS_CLASS[r.status] ?? ''} status">${esc(r.status)}</td>` +
        `<td class="num">${r.violations}</td>` +
        `<td class="num">${r.firstViolationS != null ? r.firstViolationS.toFixed(2) : '-'}</td>` +
        `<td class="num">${fmt(r.record.ops_per_s)}</td>` +
        `<td class="num">${r.record.witness ? r.record.witness.resurrections : '-'}</td>` +
        `<td>${esc(r.blame === 'none' ? '-' : r.blame)}</td>` +
        `<td>${timelineSvg(r)}</td>` +
        `<td class="detail">${esc(r.verdict)}<br><span class="muted">seed ${r.seed}, ${r.record.duration_s.toFixed(1)} s</span></td>` +
        `</tr>`,
    )
    .join('\n');
  const samples = rep.rows
    .filter((r) => r.record.samples.length)
    .map((r) => `<details><summary>${esc(r.id)}: ${r.record.samples.length} sample(s)</summary><pre>${r.record.samples.map(esc).join('\n')}</pre><p class="muted"><code>${esc(r.record.argv.join(' '))}</code></p></details>`)
    .join('\n');
  const sum = Object.entries(rep.summary)
    .map(([k, v]) => `<span class="pill ${STATUS_CLASS[k] ?? ''}">${esc(k)} ${v}</span>`)
    .join(' ');
  const env = rep.env;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faultline validate ${esc(rep.started)}</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#eee}
.num{text-align:right}
.muted{color:#777;font-size:11px}
.ok{background:#c8e6c9}.bad{background:#ef9a9a;font-weight:bold}.warn{background:#ffe082}.info{background:#e3f2fd}.err{background:#ce93d8}.xfail{background:#eeeeee;font-style:italic}
.bar-ok{fill:#66bb6a}.bar-bad{fill:#e53935}.bar-warn{fill:#ffb300}.bar-info{fill:#64b5f6}.bar-err{fill:#ab47bc}
.status{font-weight:bold;white-space:nowrap}
.detail{max-width:420px;font-size:12px}
.pill{padding:2px 8px;border-radius:8px;border:1px solid #bbb}
code{font-size:11px}
</style></head><body>
<h1>faultline validate — ${rep.exitCode === 0 ? 'OK' : rep.exitCode === 1 ? 'FAILED' : 'ERROR'}</h1>
<p>${sum}</p>
<table id="env"><tbody>
<tr><th>kernel</th><td>${esc(env.kernel)} <span class="muted">${esc(env.kernelVersion)}</span></td></tr>
<tr><th>libfuse</th><td>${esc(env.libfuse ?? '?')}</td></tr>
<tr><th>faultline</th><td>${esc(env.faultline)}, node ${esc(env.node)}, ${env.nproc} CPUs, host ${esc(env.host)}</td></tr>
<tr><th>programs</th><td>${esc(rep.rows[0]?.record.programVersion ?? '?')}</td></tr>
<tr><th>profile</th><td>${esc(rep.profile)}, base seed ${rep.seed}, started ${esc(rep.started)}, ${rep.wallS.toFixed(0)} s</td></tr>
<tr><th>controls</th><td>tmpfs ${esc(env.tmpfsDir)}, disk ${esc(env.diskDir)} (${esc(env.diskFstype)})</td></tr>
</tbody></table>
<h2>Matrix</h2>
<p class="muted">negative: must be clean (PASS); positive: the bug mode must be DETECTED; kernel: REPRODUCED / NOT REPRODUCED, never a tool failure. Timeline: cumulative violations (red), op rate (grey), first violation (dashed).</p>
<table id="matrix"><thead><tr><th>row</th><th>group</th><th>target</th><th>scenario</th><th>mount options</th><th>expect</th><th>status</th><th>violations</th><th>first (s)</th><th>ops/s</th><th>witness</th><th>blame</th><th>over time</th><th>verdict</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${rep.comparison ? comparisonHtml(rep.comparison, rep.baseline) : ''}
<h2>Op rates</h2>
${ratesSvg(rep.rows)}
<h2>Violation samples</h2>
${samples || '<p class="muted">none</p>'}
</body></html>
`;
}
