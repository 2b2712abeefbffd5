// faultline's FUSE binding: a typed facade over the faultline_fuse N-API addon (libfuse3
// low-level API). See types.ts for the contract and session.ts for the implementation.

export { FuseSession, mount, errnoOf } from './session.js';
export type { FuseRequest, FuseReply } from './session.js';
export type * from './types.js';
export {
  OP,
  OP_NAMES,
  CAP,
  capNames,
  SET_ATTR_MODE,
  SET_ATTR_UID,
  SET_ATTR_GID,
  SET_ATTR_SIZE,
  SET_ATTR_ATIME,
  SET_ATTR_MTIME,
  SET_ATTR_ATIME_NOW,
  SET_ATTR_MTIME_NOW,
  SET_ATTR_CTIME,
} from './constants.js';
export { nativeAvailable } from './native.js';
export { preflight, mountAt } from './preflight.js';
