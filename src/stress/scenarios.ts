// Stress scenario presets: each names one C program of native-tests/, its arguments, and the
// daemon options it needs when the target is a fresh faultline mount. `faultline stress` runs them
// by name; `faultline validate` builds its matrix from them.

import type { MountOptions } from '../daemon/options.js';

export type ProgramName = 'mmap_punch' | 'fault_around' | 'punch_seq' | 'server_punch';

export interface Scenario {
  name: string;
  description: string;
  program: ProgramName;
  args: string[];
  /** Daemon options this scenario needs on a faultline mount (merged over the user's). */
  mount?: Partial<MountOptions>;
  /** Only meaningful on a faultline mount (server-side operations through the control socket). */
  faultlineOnly?: boolean;
}

const PAGE = ['-u', '4096', '--align', 'page'];

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'page-aligned',
    description: 'mmap_punch, 4 KiB units, page-aligned punches / zero ranges / truncates, mmap stores + pread in the mapper (stores during punches can hit a rare FUSE kernel race, validate row kern-store-during-punch; --args --no-store-during-punch excludes it)',
    program: 'mmap_punch',
    args: [...PAGE],
  },
  {
    name: 'sub-page',
    description: 'mmap_punch, 1 KiB units, sub-page ranges (kernel finding 1 on FUSE: punch resurrection)',
    program: 'mmap_punch',
    args: ['-u', '1024', '--align', 'unit'],
  },
  {
    name: 'no-pread',
    description: 'mmap_punch, page-aligned, mapper never uses pread and no reader threads (safe with auto_inval_data, finding 2)',
    program: 'mmap_punch',
    args: [...PAGE, '--mapper-pread-prob', '0'],
  },
  {
    name: 'read-only-mapper',
    description: 'mmap_punch, page-aligned, read-only mappings (no mmap stores) + a pread reader',
    program: 'mmap_punch',
    args: [...PAGE, '--store-prob', '0', '--readers', '1'],
  },
  {
    name: 'pread-pwrite',
    description: 'mmap_punch, page-aligned, extra pwrite writer and pread reader threads against punches',
    program: 'mmap_punch',
    args: [...PAGE, '--writers', '1', '--readers', '1'],
  },
  {
    name: 'truncate-heavy',
    description: 'mmap_punch, page-aligned, truncate down/up with 2 read-only mappers and a pread reader, no zero range; targets size races (read-past-eof)',
    program: 'mmap_punch',
    args: [...PAGE, '--zeroers', '0', '--store-prob', '0', '--truncators', '1', '--mappers', '2', '--readers', '1', '--trunc-sleep-us', '200'],
  },
  {
    name: 'fault-around',
    description: 'fault_around: truncate / punch a fully mapped, prefaulted file; SIGBUS past EOF, no PTE past EOF, zeros in the EOF tail',
    program: 'fault_around',
    args: ['-u', '4096', '--mappers', '2'],
  },
  {
    name: 'punch-seq',
    description: 'punch_seq: deterministic single-thread mmap/punch/zero/truncate sequences with exact verdicts (repeated for the duration)',
    program: 'punch_seq',
    args: ['-u', '4096'],
  },
  {
    name: 'punch-seq-sub-page',
    description: 'punch_seq with 1 KiB units (sub-page punches, single-threaded: no race needed)',
    program: 'punch_seq',
    args: ['-u', '1024'],
  },
  {
    name: 'server-punch',
    description: 'server_punch: server-side punch / zero / truncate / write through the control socket while mappers and readers read (notify_inval_inode path)',
    program: 'server_punch',
    args: [...PAGE, '--mappers', '2'],
    faultlineOnly: true,
  },
  {
    name: 'fuse-punch-resurrection',
    description: 'kernel finding 1: sub-page mmap stores during punches, no truncation (kernel-findings.md row 2)',
    program: 'mmap_punch',
    args: ['-u', '1024', '--align', 'unit', '--truncators', '0'],
  },
  {
    name: 'fuse-autoinval-lost-write',
    description: 'kernel finding 2: auto_inval_data, write-through, attr_timeout 0 (every read revalidates), read-only mappers + concurrent pread and pwrite, no truncation (kernel-findings.md row 8)',
    program: 'mmap_punch',
    args: [...PAGE, '--store-prob', '0', '--mappers', '2', '--readers', '2', '--writers', '1', '--truncators', '0'],
    mount: { autoInvalData: true, writebackCache: false, cacheMode: 'write-through', attrTimeout: 0 },
  },
];

export function findScenario(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario "${name}"; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
}
