// Where a mount's control socket lives (see PROTOCOL.md): a run directory plus the FNV-1a 64 hash
// of the mountpoint's realpath. The C programs compute the same key.

import { realpath } from 'node:fs/promises';
import { join } from 'node:path';

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FAULTLINE_RUN_DIR) return env.FAULTLINE_RUN_DIR;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/faultline';
  return join(env.XDG_RUNTIME_DIR || '/tmp', `faultline-${uid}`);
}

/** FNV-1a 64-bit of the UTF-8 bytes of `s`, as 16 lower-case hex digits. */
export function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export interface ControlPaths {
  key: string;
  socket: string;
  info: string;
}

/** Paths for an already-resolved (realpath) mountpoint. */
export function controlPathsFor(realMountpoint: string, env: NodeJS.ProcessEnv = process.env): ControlPaths {
  const key = fnv1a64(realMountpoint);
  const dir = runDir(env);
  return { key, socket: join(dir, `${key}.sock`), info: join(dir, `${key}.json`) };
}

/**
 * Paths for a mountpoint given by the user. realpath() of a live FUSE mountpoint is answered by the
 * kernel from its dentry cache plus a GETATTR of the root; never call this from the daemon serving
 * that mount (the daemon resolves its mountpoint before mounting).
 */
export async function controlPaths(mountpoint: string, env: NodeJS.ProcessEnv = process.env): Promise<ControlPaths> {
  return controlPathsFor(await realpath(mountpoint), env);
}
