// `faultline demo`: the smallest end-to-end run. Mounts faultline in a temp dir (daemon in its own
// process), runs the deterministic punch_seq smoke and a short mmap_punch stress against it, prints
// what happened and unmounts.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMount } from './mount.js';

const BIN = (name: string) => fileURLToPath(new URL(`../../native-tests/bin/${name}`, import.meta.url));

function runProgram(name: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    process.stdout.write(`\n$ ${name} ${args.join(' ')}\n`);
    const p = spawn(BIN(name), args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: '/' });
    p.on('error', (e) => reject(new Error(`cannot run ${name}: ${e.message} (build the C programs: make -C native-tests)`)));
    p.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

export async function demo(seconds = 5): Promise<number> {
  const m = await startMount({}, { inheritStderr: true });
  process.stdout.write(`faultline: demo mount on ${m.mountpoint} (daemon pid ${m.pid})\n`);
  let worst = 0;
  try {
    worst = Math.max(worst, await runProgram('punch_seq', ['--seed', '1', m.mountpoint]));
    worst = Math.max(worst, await runProgram('mmap_punch', ['-d', String(seconds), '-u', '4096', '--align', 'page', '--no-store-during-punch', '--readers', '1', '--seed', '1', m.mountpoint]));
  } finally {
    await m.stop();
    process.stdout.write(`\nfaultline: unmounted ${m.mountpoint}\n`);
  }
  process.stdout.write(worst === 0 ? 'faultline: demo passed: no violations\n' : `faultline: demo FAILED (exit ${worst})\n`);
  return worst;
}
