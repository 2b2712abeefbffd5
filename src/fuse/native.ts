// Loader and raw interface of the faultline_fuse addon (src/native/faultline_fuse.c, built by
// node-gyp from binding.gyp into build/Release/). Only src/fuse/ uses this module.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { FuseStats } from './types.js';

/** Opaque per-mount handle (an N-API external). */
export type NativeHandle = { readonly __faultlineFuseHandle: unique symbol };

export interface NativeMountConfig {
  mountpoint: string;
  /** Comma-separated `-o` options for fuse_session_new (fsname=…,subtype=…,auto_unmount,…). */
  options: string;
  debug: boolean;
  opsMask: number;
  asyncRead: boolean;
  writebackCache: boolean;
  autoInvalData: boolean;
  explicitInvalData: boolean;
  atomicOTrunc: boolean;
  parallelDirops: boolean;
  directIoAllowMmap: boolean;
  maxWrite: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeoutMs: number;
  /** Loop mode 'uv' (the JS thread polls /dev/fuse through libuv) instead of a loop thread. */
  uvLoop: boolean;
  onRequest: (id: number, op: number, name?: string, name2?: string, data?: Buffer) => void;
  onEvent: (kind: number, id: number) => void;
  reqScratch: Float64Array;
  replyScratch: Float64Array;
}

export interface NativeInitInfo {
  protoMajor: number;
  protoMinor: number;
  capable: number;
  wantDefault: number;
  want: number;
  maxWrite: number;
  maxRead: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
  connId: number;
}

/** What the addon counts itself: the public FuseStats less the facade's own handler-error count. */
export type NativeStats = Omit<FuseStats, 'handlerErrors'>;

/**
 * Reply functions return true when the reply was sent, false when it was dropped because the
 * watchdog already answered the request (or the session was torn down). They throw on a stale or
 * already-answered id (code ERR_FUSE_STALE_REQUEST), on a reply kind that does not fit the op
 * (ERR_FUSE_REPLY_KIND) and on bad arguments (TypeError/RangeError) — without consuming the
 * request in the last two cases.
 */
export interface NativeAddon {
  mount(config: NativeMountConfig): NativeHandle;
  unmount(h: NativeHandle): boolean;
  destroy(h: NativeHandle): number;
  initInfo(h: NativeHandle): NativeInitInfo | null;
  stats(h: NativeHandle): NativeStats;
  libfuseVersion(): string;
  features(): { parallelDirectWrites: boolean; directIoAllowMmap: boolean };
  replyErr(h: NativeHandle, id: number, errno: number): boolean;
  replyEntry(h: NativeHandle, id: number): boolean;
  replyCreate(h: NativeHandle, id: number, fh: number, openFlags: number): boolean;
  replyAttr(h: NativeHandle, id: number, timeout: number): boolean;
  replyReadlink(h: NativeHandle, id: number, target: string): boolean;
  replyOpen(h: NativeHandle, id: number, fh: number, openFlags: number): boolean;
  replyWrite(h: NativeHandle, id: number, count: number): boolean;
  replyBuf(h: NativeHandle, id: number, data: ArrayBufferView | null | undefined): boolean;
  /** Gather reply (fuse_reply_iov) of up to 1024 buffers, for read / readdir / readdirplus. */
  replyIov(h: NativeHandle, id: number, bufs: readonly ArrayBufferView[]): boolean;
  replyStatfs(h: NativeHandle, id: number): boolean;
  replyLseek(h: NativeHandle, id: number, off: number): boolean;
  replyXattr(h: NativeHandle, id: number, size: number): boolean;
  /** Returns how many entries were sent, or -1 if the reply was dropped. */
  replyDir(h: NativeHandle, id: number, plus: boolean, names: string[], nums: Float64Array, count: number): number;
  notifyInvalInode(h: NativeHandle, ino: number, off: number, len: number): Promise<number>;
  notifyInvalEntry(h: NativeHandle, parent: number, name: string): Promise<number>;
  notifyStore(h: NativeHandle, ino: number, off: number, data: Uint8Array): Promise<number>;
}

let cached: NativeAddon | undefined;

/** Where the addon is looked for, first match wins. */
export function addonCandidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', '..'); // dist/fuse → repo root; src/fuse → repo root
  const list: string[] = [];
  if (process.env.FAULTLINE_FUSE_ADDON) list.push(path.resolve(process.env.FAULTLINE_FUSE_ADDON));
  list.push(path.join(root, 'build', 'Release', 'faultline_fuse.node'));
  list.push(path.join(root, 'build', 'Debug', 'faultline_fuse.node'));
  return list;
}

/** Load the addon, or throw an Error saying how to build it. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    throw new Error(`faultline's FUSE binding needs Linux (this is ${process.platform})`);
  }
  const req = createRequire(import.meta.url);
  const candidates = addonCandidates();
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      cached = req(file) as NativeAddon;
      return cached;
    } catch (e) {
      throw new Error(
        `cannot load the FUSE addon ${file}: ${(e as Error).message}\n` +
          'Rebuild it: `npm rebuild` or `npm ci` in the repository (needs libfuse3-dev and pkg-config: ' +
          'apt-get install libfuse3-dev pkg-config).',
      );
    }
  }
  throw new Error(
    `the FUSE addon is not built (looked for ${candidates.join(', ')}).\n` +
      'Build it with `npm ci` (or `npm rebuild`) in the repository; it needs libfuse3-dev and pkg-config ' +
      '(apt-get install libfuse3-dev pkg-config). Without libfuse3-dev the build silently produces no addon.',
  );
}

/** True if the addon can be loaded (for tests that skip without it). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}
