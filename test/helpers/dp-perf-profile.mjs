#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof): self time per function (top N) and inclusive time
// of the functions whose name matches --focus. Helper I's tool for issue 6.
//
//   node test/helpers/dp-perf-profile.mjs PROFILE.cpuprofile [--top 30] [--focus regex]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && (args.indexOf(a) === 0 || !args[args.indexOf(a) - 1].startsWith('--')));
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const top = Number(opt('--top', 30));
const focus = opt('--focus', null);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const label = (n) => {
  const c = n.callFrame;
  const f = c.url ? c.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '') : '';
  return `${c.functionName || '(anonymous)'} ${f}${f ? ':' + (c.lineNumber + 1) : ''}`;
};
const self = new Map();
const incl = new Map();
for (const [id, t] of dt) {
  const n = byId.get(id);
  const l = label(n);
  self.set(l, (self.get(l) ?? 0) + t);
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const lx = label(byId.get(x));
    if (seen.has(lx)) continue;
    seen.add(lx);
    incl.set(lx, (incl.get(lx) ?? 0) + t);
  }
}
const pct = (t) => ((100 * t) / total).toFixed(1).padStart(5) + '%';
console.log(`total ${(total / 1e3).toFixed(0)} ms sampled`);
console.log('--- self time');
for (const [l, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(t), l);
console.log('--- inclusive time' + (focus ? ` (matching /${focus}/)` : ''));
const re = focus ? new RegExp(focus) : null;
for (const [l, t] of [...incl].sort((a, b) => b[1] - a[1]).filter(([l]) => !re || re.test(l)).slice(0, top)) console.log(pct(t), l);
