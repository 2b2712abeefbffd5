#!/usr/bin/env node
// Stand-alone runner of the bench orchestrator (until and besides `faultline bench`):
//   node scripts/bench/run-bench.mjs [--smoke] [--rounds N] [--seconds S] [--size BYTES|NM]
//        [--workloads a,b] [--peers a,b] [--no-faultline] [--cli PATH] [--rotate] [--noise-floor] [--readahead-kb N] [--out DIR] [--json]
// Needs the compiled orchestrator (npx tsc -p tsconfig.json); builds native-tests/bench itself.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { runBench, formatBenchTable } = await import(pathToFileURL(join(root, 'dist', 'stress', 'bench.js')).href);

function size(s) {
  const m = /^(\d+)([kmg]?)$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
}

const opts = { log: (l) => process.stderr.write(`${l}\n`) };
let json = false;
const a = process.argv.slice(2);
for (let i = 0; i < a.length; i++) {
  const k = a[i];
  const v = () => {
    if (i + 1 >= a.length) throw new Error(`${k} needs a value`);
    return a[++i];
  };
  if (k === '--smoke') opts.smoke = true;
  else if (k === '--rounds') opts.rounds = Number(v());
  else if (k === '--seconds') opts.seconds = Number(v());
  else if (k === '--size') opts.fileSize = size(v());
  else if (k === '--workloads') opts.workloads = v().split(',');
  else if (k === '--peers') opts.peers = v().split(',');
  else if (k === '--no-faultline') opts.faultline = false;
  else if (k === '--cli') opts.cli = v();
  else if (k === '--rotate') opts.order = 'rotate';
  else if (k === '--noise-floor') opts.noiseFloor = true;
  else if (k === '--readahead-kb') opts.readaheadKb = Number(v());
  else if (k === '--out') opts.outDir = v();
  else if (k === '--json') json = true;
  else {
    process.stderr.write(`unknown argument ${k}\n`);
    process.exit(2);
  }
}
const result = await runBench(opts);
process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : formatBenchTable(result));
