// Mount options: the FUSE knobs that decide what the kernel caches (and so what the stress
// programs can see), plus the daemon's own cache, store and fault settings. The help text of each
// says its kernel effect; `faultline mount --help` prints it.

import { Option } from 'commander';

export interface MountOptions {
  writebackCache: boolean;
  autoInvalData: boolean;
  keepCache: boolean;
  directIo: boolean;
  attrTimeout: number;
  entryTimeout: number;
  maxWrite: number;
  allowOther: boolean;
  debug: boolean;
  cachePages: number;
  readaheadPages: number;
  cacheMode: 'write-through' | 'writeback';
  capacity: number;
  store?: string;
  bugs: string[];
  delays: string[];
  seed: number;
  requestTimeout: number;
  trace?: string;
  fsname: string;
}

export const DEFAULT_MOUNT_OPTIONS: MountOptions = {
  writebackCache: false,
  autoInvalData: false,
  keepCache: true,
  directIo: false,
  attrTimeout: 1,
  entryTimeout: 1,
  maxWrite: 1024 * 1024,
  allowOther: false,
  debug: false,
  cachePages: 65536,
  readaheadPages: 0,
  cacheMode: 'write-through',
  capacity: Infinity,
  bugs: [],
  delays: [],
  seed: 1,
  requestTimeout: 60,
  fsname: 'faultline',
};

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "1G", "512m", "4096", "unlimited" → bytes. */
export function parseSize(text: string, what = 'size'): number {
  const t = text.trim().toLowerCase();
  if (t === 'unlimited' || t === 'inf' || t === 'infinity') return Infinity;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/.exec(t);
  if (!m) throw new Error(`invalid ${what} "${text}": use a number of bytes with an optional K, M, G or T suffix (e.g. 512M)`);
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2]!]!);
}

function nonNegInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got "${v}"`);
    return n;
  };
}
function seconds(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${what} must be a non-negative number of seconds, got "${v}"`);
    return n;
  };
}
const collect = (v: string, prev: string[]) => [...prev, v];

/** The options of `faultline mount` (also accepted by `stress` and `validate` for their mounts). */
export function mountOptionList(): Option[] {
  return [
    new Option('--writeback-cache', 'negotiate FUSE_WRITEBACK_CACHE: the kernel buffers writes and owns i_size/mtime (the daemon\'s size is ignored in attribute replies); notify_inval_inode then writes dirty pages back first').default(false),
    new Option('--auto-inval-data', 'negotiate FUSE_CAP_AUTO_INVAL_DATA: every read() revalidates attributes and an mtime change drops the whole page cache. Default OFF on purpose: it loses completed writes in write-through mode under concurrent pread (kernel-findings.md, finding 2), and faultline tells the kernel about its own changes with notify_inval_inode'),
    new Option('--no-auto-inval-data', 'do not negotiate FUSE_CAP_AUTO_INVAL_DATA (the default)'),
    new Option('--keep-cache', 'reply FOPEN_KEEP_CACHE to open (default on): without it every open() drops and unmaps the file\'s whole page cache in every process, which hides stale-data bugs'),
    new Option('--no-keep-cache', 'do not set FOPEN_KEEP_CACHE: every open() invalidates the file\'s kernel page cache'),
    new Option('--direct-io', 'reply FOPEN_DIRECT_IO to open: reads and writes bypass the kernel page cache. MAP_SHARED mmap then fails with ENODEV (libfuse < 3.17 cannot negotiate DIRECT_IO_ALLOW_MMAP)').default(false),
    new Option('--attr-timeout <sec>', 'attribute cache timeout in attribute and entry replies: how long the kernel trusts size and mtime without GETATTR').argParser(seconds('--attr-timeout')).default(DEFAULT_MOUNT_OPTIONS.attrTimeout),
    new Option('--entry-timeout <sec>', 'name lookup cache timeout in entry replies').argParser(seconds('--entry-timeout')).default(DEFAULT_MOUNT_OPTIONS.entryTimeout),
    new Option('--max-write <bytes>', 'largest WRITE request the kernel sends (INIT max_write; the kernel caps it at max_pages)').argParser((v) => parseSize(v, '--max-write')).default(DEFAULT_MOUNT_OPTIONS.maxWrite),
    new Option('--allow-other', 'mount option allow_other: let other users access the mount (needs user_allow_other in /etc/fuse.conf when not root)').default(false),
    new Option('--debug', 'log every FUSE request and reply, one line each, to stderr').default(false),
    new Option('--cache-pages <n>', 'daemon page cache size in 4 KiB pages (0 disables the cache: every read goes to the store under the range lock)').argParser(nonNegInt('--cache-pages')).default(DEFAULT_MOUNT_OPTIONS.cachePages),
    new Option('--readahead-pages <n>', 'daemon readahead / fault-around window: pages filled beyond a missed read, re-checked against the size under the lock').argParser(nonNegInt('--readahead-pages')).default(DEFAULT_MOUNT_OPTIONS.readaheadPages),
    new Option('--cache-mode <mode>', 'daemon write policy: write-through stores every WRITE before replying; writeback keeps dirty pages until fsync, release or eviction').choices(['write-through', 'writeback']).default(DEFAULT_MOUNT_OPTIONS.cacheMode),
    new Option('--capacity <size>', 'filesystem capacity (e.g. 1G): writes past it fail with ENOSPC').argParser((v) => parseSize(v, '--capacity')).default(Infinity, 'unlimited'),
    new Option('--store <dir>', 'keep file data and metadata in DIR (mmap-io backed files) instead of memory: survives unmount and daemon crashes'),
    new Option('--bug <mode>', 'switch on a deliberate bug mode (repeatable; see `faultline bugs`)').argParser(collect).default([]),
    new Option('--delay <point=ms[@prob]>', 'inject a delay at a named point of the data paths (repeatable; see `faultline bugs`)').argParser(collect).default([]),
    new Option('--seed <n>', 'seed of the fault-injection RNG').argParser(nonNegInt('--seed')).default(DEFAULT_MOUNT_OPTIONS.seed),
    new Option('--request-timeout <sec>', 'watchdog: answer EIO to any request unanswered after this long, so no client becomes unkillable (0 disables)').argParser(seconds('--request-timeout')).default(DEFAULT_MOUNT_OPTIONS.requestTimeout),
    new Option('--trace <file>', 'write a JSON-lines trace of every request and reply to FILE (outside the mount)'),
    new Option('--fsname <name>', 'the mount source shown in /proc/mounts (xfstests matches it against TEST_DEV / SCRATCH_DEV); no commas or backslashes').argParser((v) => {
      if (!v || /[,\\\s]/.test(v)) throw new Error(`--fsname must be non-empty without commas, backslashes or spaces, got "${v}"`);
      return v;
    }).default(DEFAULT_MOUNT_OPTIONS.fsname),
  ];
}

/** Turn commander's parsed option object into MountOptions. */
export function toMountOptions(o: Record<string, unknown>): MountOptions {
  const d = DEFAULT_MOUNT_OPTIONS;
  return {
    writebackCache: Boolean(o.writebackCache ?? d.writebackCache),
    autoInvalData: Boolean(o.autoInvalData ?? d.autoInvalData),
    keepCache: o.keepCache === undefined ? d.keepCache : Boolean(o.keepCache),
    directIo: Boolean(o.directIo ?? d.directIo),
    attrTimeout: (o.attrTimeout as number) ?? d.attrTimeout,
    entryTimeout: (o.entryTimeout as number) ?? d.entryTimeout,
    maxWrite: (o.maxWrite as number) ?? d.maxWrite,
    allowOther: Boolean(o.allowOther ?? d.allowOther),
    debug: Boolean(o.debug ?? d.debug),
    cachePages: (o.cachePages as number) ?? d.cachePages,
    readaheadPages: (o.readaheadPages as number) ?? d.readaheadPages,
    cacheMode: (o.cacheMode as MountOptions['cacheMode']) ?? d.cacheMode,
    capacity: (o.capacity as number) ?? d.capacity,
    store: o.store as string | undefined,
    bugs: (o.bug as string[]) ?? [],
    delays: (o.delay as string[]) ?? [],
    seed: (o.seed as number) ?? d.seed,
    requestTimeout: (o.requestTimeout as number) ?? d.requestTimeout,
    trace: o.trace as string | undefined,
    fsname: (o.fsname as string | undefined) ?? d.fsname,
  };
}

/** The same options as command-line arguments, for starting a daemon in a child process. */
export function toMountArgs(o: Partial<MountOptions>): string[] {
  const a: string[] = [];
  const d = DEFAULT_MOUNT_OPTIONS;
  if (o.writebackCache) a.push('--writeback-cache');
  if (o.autoInvalData !== undefined) a.push(o.autoInvalData ? '--auto-inval-data' : '--no-auto-inval-data');
  if (o.keepCache === false) a.push('--no-keep-cache');
  if (o.directIo) a.push('--direct-io');
  if (o.attrTimeout !== undefined && o.attrTimeout !== d.attrTimeout) a.push('--attr-timeout', String(o.attrTimeout));
  if (o.entryTimeout !== undefined && o.entryTimeout !== d.entryTimeout) a.push('--entry-timeout', String(o.entryTimeout));
  if (o.maxWrite !== undefined && o.maxWrite !== d.maxWrite) a.push('--max-write', String(o.maxWrite));
  if (o.allowOther) a.push('--allow-other');
  if (o.debug) a.push('--debug');
  if (o.cachePages !== undefined && o.cachePages !== d.cachePages) a.push('--cache-pages', String(o.cachePages));
  if (o.readaheadPages !== undefined && o.readaheadPages !== d.readaheadPages) a.push('--readahead-pages', String(o.readaheadPages));
  if (o.cacheMode && o.cacheMode !== d.cacheMode) a.push('--cache-mode', o.cacheMode);
  if (o.capacity !== undefined && Number.isFinite(o.capacity)) a.push('--capacity', String(o.capacity));
  if (o.store) a.push('--store', o.store);
  for (const b of o.bugs ?? []) a.push('--bug', b);
  for (const x of o.delays ?? []) a.push('--delay', x);
  if (o.seed !== undefined && o.seed !== d.seed) a.push('--seed', String(o.seed));
  if (o.requestTimeout !== undefined && o.requestTimeout !== d.requestTimeout) a.push('--request-timeout', String(o.requestTimeout));
  if (o.trace) a.push('--trace', o.trace);
  if (o.fsname && o.fsname !== d.fsname) a.push('--fsname', o.fsname);
  return a;
}
