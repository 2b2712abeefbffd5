// Mount preconditions, checked before libfuse is asked to mount, so that failures come with a
// message that says how to fix them. Everything here is async and touches only paths that are
// not (yet) our mount.

import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';

export interface MountInfoLine {
  mountPoint: string;
  fstype: string;
  source: string;
  majMin: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parsed /proc/self/mountinfo. */
export async function readMountInfo(): Promise<MountInfoLine[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const out: MountInfoLine[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const head = line.slice(0, sep).split(' ');
    const tail = line.slice(sep + 3).split(' ');
    out.push({
      majMin: head[2] ?? '',
      mountPoint: unescapeMount(head[4] ?? ''),
      fstype: tail[0] ?? '',
      source: unescapeMount(tail[1] ?? ''),
    });
  }
  return out;
}

/** The topmost mount at `dir` (exact path), or undefined. */
export async function mountAt(dir: string): Promise<MountInfoLine | undefined> {
  const all = await readMountInfo();
  let found: MountInfoLine | undefined;
  for (const m of all) if (m.mountPoint === dir) found = m;
  return found;
}

async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = ['/bin', '/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      await fsp.access(p, fsc.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Check that `mountpoint` can be mounted on and return its real absolute path.
 * Throws an Error whose message says what is wrong and how to fix it.
 */
export async function preflight(mountpoint: string, opts: { allowOther?: boolean } = {}): Promise<string> {
  if (process.platform !== 'linux') throw new Error(`FUSE mounts need Linux (this is ${process.platform})`);
  if (typeof mountpoint !== 'string' || mountpoint === '') throw new TypeError('mountpoint must be a non-empty path');
  const abs = path.resolve(mountpoint);
  let st;
  try {
    st = await fsp.stat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`mountpoint ${abs} does not exist: create it first (mkdir -p ${abs})`);
    if (code === 'ENOTCONN')
      throw new Error(
        `mountpoint ${abs} is a dead FUSE mount (transport endpoint is not connected): clean it up with ` +
          `"umount -l ${abs}" (or "fusermount3 -uz ${abs}") and mount again`,
      );
    if (code === 'EACCES') throw new Error(`mountpoint ${abs} is not accessible (permission denied): check the parent directories' permissions`);
    throw new Error(`cannot stat mountpoint ${abs}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new Error(`mountpoint ${abs} is not a directory: mount on an (empty) directory`);
  const real = await fsp.realpath(abs);
  const existing = await mountAt(real);
  if (existing) {
    throw new Error(
      `${real} is already a mount point (${existing.fstype} from ${existing.source}): unmount it first ` +
        `(umount ${real}${existing.fstype.startsWith('fuse') ? `, or fusermount3 -u ${real}; umount -l ${real} if it is dead` : ''}) ` +
        'or choose another directory',
    );
  }
  // Existence only: with auto_unmount libfuse always mounts through the setuid fusermount3, which
  // opens /dev/fuse itself, so the user needs no access to it.
  try {
    await fsp.stat('/dev/fuse');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `no /dev/fuse (${code}): load the FUSE module (modprobe fuse); in a container, run it with --device /dev/fuse ` +
        '(and --cap-add SYS_ADMIN)',
    );
  }
  const fusermount = await findExecutable('fusermount3');
  if (!fusermount) {
    throw new Error(
      'fusermount3 not found: install the fuse3 package (apt-get install fuse3). libfuse needs it for ' +
        'auto_unmount (faultline always mounts with auto_unmount, even as root)',
    );
  }
  if (process.geteuid?.() !== 0) {
    try {
      const st2 = await fsp.stat(fusermount);
      if (!(st2.mode & 0o4000) || st2.uid !== 0) {
        throw new Error(`${fusermount} is not setuid root: run as root, or reinstall fuse3 (chmod u+s ${fusermount})`);
      }
    } catch (e) {
      if ((e as Error).message.includes('setuid')) throw e;
    }
    if (opts.allowOther) {
      let conf = '';
      try {
        conf = await fsp.readFile('/etc/fuse.conf', 'utf8');
      } catch {
        /* missing */
      }
      if (!/^\s*user_allow_other\b/m.test(conf)) {
        throw new Error('allow_other as non-root needs "user_allow_other" in /etc/fuse.conf: add it, or run as root');
      }
    }
  }
  return real;
}
