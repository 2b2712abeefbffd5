#!/usr/bin/env node
// postinstall: make sure the optional dependency mmap-io (used by `faultline mount --store`) is built.
// mmap-io 1.1.7's binding.gyp forces -std=c++11, but Node 20's headers need C++17, so its own
// install script fails under plain `npm ci` and npm drops it (it is an optionalDependency so that
// this failure does not abort the install). Here we install it again with CXXFLAGS=-std=gnu++17
// (make appends CXXFLAGS after the binding's flags, so the later -std wins). Never fails the
// install: without mmap-io only --store is unavailable, and the daemon says so.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
/** In a fresh process: a failed require() here would be cached by this one. */
function loads() {
  return spawnSync(process.execPath, ['-e', "require('mmap-io')"], { cwd: root, stdio: 'ignore' }).status === 0;
}
if (process.env.FAULTLINE_MMAP_IO_REBUILD || loads()) process.exit(0);
let version = '^1.1.7';
try {
  const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
  version = lock.packages?.['node_modules/mmap-io']?.version ?? version;
} catch {
  /* no lock: take the range */
}
process.stderr.write(`faultline: building mmap-io@${version} with CXXFLAGS=-std=gnu++17 (needed for --store)\n`);
const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
const r = spawnSync(npm[0], [...npm.slice(1), 'install', '--no-save', '--no-audit', '--no-fund', `mmap-io@${version}`], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CXXFLAGS: `-std=gnu++17 ${process.env.CXXFLAGS ?? ''}`.trim(), FAULTLINE_MMAP_IO_REBUILD: '1' },
});
if (r.status !== 0 || !loads()) {
  process.stderr.write('faultline: WARNING: mmap-io could not be built; `faultline mount --store` is unavailable (the in-memory store works).\n');
}
