/*
 * faultline_fuse: an N-API addon over libfuse3's low-level API.
 *
 * Who reads /dev/fuse (mount config uvLoop, MountOptions.loop in TypeScript):
 *   'uv'      (default) the JS thread itself: the fd (O_NONBLOCK) is watched by a uv_poll_t on
 *             Node's loop; the callback receives and processes up to UV_BATCH requests (EAGAIN
 *             returns to libuv, so the JS thread never blocks on its own mount), inside a handle
 *             scope and a callback scope. The ll_* handlers call the JS dispatcher directly: no
 *             thread hop (the tsfn wake-up cost about 6 us per request). WRITE data is copied once,
 *             from libfuse's receive buffer straight into a JS Buffer. Teardown from inside a
 *             handler is split: the libfuse session is destroyed only after process_buf returns.
 *   'thread'  a native loop thread (poll + fuse_session_receive_buf/process_buf, i.e.
 *             fuse_session_loop with a wake-up eventfd so teardown never closes the fd under a
 *             blocked reader). Each forwarded handler allocates a slot, copies its pointer
 *             arguments, registers an interrupt callback with the request id and posts the id to
 *             a threadsafe function. It never replies (except on errors) and never waits on JS.
 * In both modes every handler allocates a slot (id, interrupt callback by id), and interrupts,
 * INIT, LOOP_END, watchdog expiries and notify results reach JS through the tsfn.
 * Threads (per mounted session):
 *   loop      ('thread' mode only) see above.
 *   JS        receives requests (onRequest), replies with reply*(handle, id, ...) which call
 *             fuse_reply_* directly. Exactly once: slot_take() checks the generation.
 *   watchdog  answers EIO for requests older than the timeout, logs them, counts them.
 *   notifier  runs notify_inval_inode / inval_entry / store from a queue; resolves Promises.
 *   unmounter umount2(MNT_DETACH) (root) or `fusermount3 -u -q -z` (non-root) while the loop keeps
 *             serving (the kernel may need WRITE replies to sync the superblock), then stops the loop.
 * All helper threads block every asynchronous signal: Node owns signal handling.
 *
 * Request id = generation * 65536 + slot (generation is 32-bit and starts at 1, so ids < 2^48 and
 * never 0). A reply on a stale or used id throws; a reply on an id the watchdog already answered is
 * dropped (returns false) and counted as late.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef FUSE_MAKE_VERSION
#define FUSE_MAKE_VERSION(maj, min) ((maj) * 100 + (min))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Op codes shared with src/fuse/constants.ts                                                   */

enum {
  OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4, OP_READLINK = 5, OP_MKNOD = 6,
  OP_MKDIR = 7, OP_UNLINK = 8, OP_RMDIR = 9, OP_SYMLINK = 10, OP_RENAME = 11, OP_LINK = 12,
  OP_OPEN = 13, OP_READ = 14, OP_WRITE = 15, OP_FLUSH = 16, OP_RELEASE = 17, OP_FSYNC = 18,
  OP_OPENDIR = 19, OP_READDIR = 20, OP_READDIRPLUS = 21, OP_RELEASEDIR = 22, OP_FSYNCDIR = 23,
  OP_STATFS = 24, OP_CREATE = 25, OP_FALLOCATE = 26, OP_LSEEK = 27, OP_ACCESS = 28,
  OP_GETXATTR = 29, OP_LISTXATTR = 30, OP_COUNT = 31
};

static const char *const op_names[OP_COUNT] = {
  "?", "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir",
  "symlink", "rename", "link", "open", "read", "write", "flush", "release", "fsync", "opendir",
  "readdir", "readdirplus", "releasedir", "fsyncdir", "statfs", "create", "fallocate", "lseek",
  "access", "getxattr", "listxattr"
};

#define OPBIT(op) (1u << (op))
#define ENTRY_OPS (OPBIT(OP_LOOKUP) | OPBIT(OP_MKNOD) | OPBIT(OP_MKDIR) | OPBIT(OP_SYMLINK) | OPBIT(OP_LINK))
#define OK_OPS                                                                                    \
  (OPBIT(OP_UNLINK) | OPBIT(OP_RMDIR) | OPBIT(OP_RENAME) | OPBIT(OP_FLUSH) | OPBIT(OP_RELEASE) |  \
   OPBIT(OP_FSYNC) | OPBIT(OP_RELEASEDIR) | OPBIT(OP_FSYNCDIR) | OPBIT(OP_FALLOCATE) |            \
   OPBIT(OP_ACCESS))
#define BUF_OPS (OPBIT(OP_READ) | OPBIT(OP_READDIR) | OPBIT(OP_READDIRPLUS) | OPBIT(OP_GETXATTR) | OPBIT(OP_LISTXATTR))

/* Request scratch (Float64Array written by call_js, read by the JS dispatcher). */
#define NARGS 16
#define A_INO 0
#define A_UID 1
#define A_GID 2
#define A_PID 3
#define A_UMASK 4
#define A_ARG0 5
#define A_INTERRUPTED 15

/* Reply scratch (Float64Array written by JS before a reply call). */
#define R_ATTR 0 /* ino mode nlink uid gid rdev size blksize blocks atimeMs mtimeMs ctimeMs */
#define R_ENTRY 12 /* ino generation attrTimeout entryTimeout */
#define R_STATFS 16 /* bsize frsize blocks bfree bavail files ffree favail fsid flag namemax */
#define REPLY_SCRATCH_MIN 32
#define DIR_STRIDE 3 /* ino mode off */
#define DIRPLUS_STRIDE 17 /* off ino generation attrTimeout entryTimeout + 12 attr fields */

/* Open reply flag bits (src/fuse/constants.ts OPEN_*). */
#define OF_KEEP_CACHE 1
#define OF_DIRECT_IO 2
#define OF_NONSEEKABLE 4
#define OF_PARALLEL_DIRECT_WRITES 8
#define OF_CACHE_READDIR 16
#define OF_NOFLUSH 32

/* Events to JS (onEvent kinds). */
#define EV_INTERRUPT 1
#define EV_EXPIRED 2
#define EV_INIT 3
#define EV_LOOP_END 4

/* Tagged tsfn payloads: bit 63 set, type in bits 48..55, id in bits 0..47. */
#define TAG_BIT (1ull << 63)
#define TAG(type, id) ((void *)(uintptr_t)(TAG_BIT | ((uint64_t)(type) << 48) | (id)))
#define ID_MASK ((1ull << 48) - 1)
#define T_REQ 16 /* internal: deliver request */

#define NSLOTS 65536
#define SLOT_FREE 0
#define SLOT_PENDING 1

/* ------------------------------------------------------------------------------------------ */

typedef struct slot {
  fuse_req_t req;
  uint32_t gen;
  uint32_t expired_gen;
  int32_t prev, next; /* outstanding list (oldest first) / free list (next) */
  uint8_t op, state, interrupted, posted;
  uint8_t borrowed; /* uv mode: data points into libfuse's receive buffer (valid until post returns) */
  uint32_t size; /* requested size: read, readdir(plus), getxattr, listxattr, write */
  uint64_t ino;
  uint64_t start_ns;
  char *name, *name2;
  void *data;
  size_t datalen;
  double a[NARGS];
} slot_t;

typedef struct evhdr {
  int kind;
} evhdr_t;
#define EVP_FORGET 1
#define EVP_NOTIFY 2

typedef struct forget_ev {
  evhdr_t h;
  size_t count;
  double pairs[]; /* ino, nlookup */
} forget_ev_t;

typedef struct nitem {
  evhdr_t h;
  struct nitem *next;
  int kind; /* 1 inval_inode, 2 inval_entry, 3 store */
  uint64_t ino;
  int64_t off, len;
  char *name;
  size_t namelen;
  void *data;
  size_t datalen;
  napi_deferred deferred;
  int rc;
} nitem_t;

typedef struct opts {
  bool async_read, writeback_cache, auto_inval_data, explicit_inval_data, atomic_o_trunc;
  bool direct_io_allow_mmap, parallel_dirops;
  uint32_t max_write, max_readahead, max_background, congestion_threshold;
  bool has_max_readahead;
} opts_t;

typedef struct initinfo {
  bool done;
  unsigned proto_major, proto_minor;
  uint64_t capable, want_default, want;
  unsigned max_write, max_read, max_readahead, max_background, congestion_threshold, time_gran;
} initinfo_t;

typedef struct session {
  atomic_int refs; /* JS handle + tsfn (+ the uv poll handle until its close callback) */
  napi_env env;
  napi_threadsafe_function tsfn;
  napi_ref on_request, on_event, req_scratch_ref, reply_scratch_ref;
  double *req_scratch;
  double *reply_scratch;
  size_t reply_scratch_len;

  struct fuse_session *se;
  char *mountpoint;
  int efd;
  int conn_id;
  int aux_fds[4]; /* fusermount3 auto_unmount socket(s) opened by fuse_session_mount */
  int n_aux;
  opts_t opts;
  initinfo_t init;

  /* loop mode 'uv': the JS thread reads /dev/fuse itself from a uv_poll_t on Node's loop */
  bool uv_mode;
  uv_poll_t poll;
  bool poll_inited, poll_closed;
  struct fuse_buf fbuf;        /* receive buffer reused across callbacks (bufsize, malloc'd by libfuse) */
  int dispatch_depth;          /* > 0 while fuse_session_process_buf is on the JS thread's stack */
  bool finish_deferred;        /* teardown called during dispatch: finish after the stack unwinds */
  bool finish_in_hook;
  bool finished;
  bool session_ok;
  napi_async_context actx;
  napi_ref resource_ref;

  pthread_t loop_thr, wd_thr, notify_thr, unmount_thr;
  bool loop_started, wd_started, notify_started, unmount_started;
  atomic_bool stop_loop;
  atomic_bool loop_ended;
  atomic_bool torn_down;
  bool hook_added;
  int unmount_err;

  /* request table */
  pthread_mutex_t mu;
  slot_t *slots;
  int32_t free_head;
  int32_t next_unused;
  int32_t out_head, out_tail;
  uint32_t outstanding;
  bool closed; /* no more replies: every slot has been failed */

  /* watchdog */
  uint64_t timeout_ns;
  pthread_cond_t wd_cv;
  bool wd_stop;

  /* notifier */
  pthread_mutex_t nmu;
  pthread_cond_t ncv;
  nitem_t *nq_head, *nq_tail;
  bool n_stop;
  bool n_sending;
  uint32_t n_pending;

  /* counters */
  atomic_uint_fast64_t c_requests, c_interrupts, c_expired, c_late, c_stale, c_notify_sent,
      c_forgets, c_table_full;
} session_t;

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double ts_ms(struct timespec ts) {
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static struct timespec ms_ts(double ms) {
  struct timespec ts;
  double sec = ms / 1000.0;
  double fl = __builtin_floor(sec);
  ts.tv_sec = (time_t)fl;
  long ns = (long)((ms - fl * 1000.0) * 1e6 + 0.5);
  if (ns >= 1000000000L) { ts.tv_sec += 1; ns -= 1000000000L; }
  if (ns < 0) ns = 0;
  ts.tv_nsec = ns;
  return ts;
}

static void flog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void flog(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  if (n == 0 || buf[n - 1] != '\n') buf[n++] = '\n';
  ssize_t w = write(2, buf, (size_t)n);
  (void)w;
}

/* libfuse log capture: forwarded to stderr, last messages kept for mount errors. */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log_last[1024];

static void fuse_log_cb(enum fuse_log_level level, const char *fmt, va_list ap) {
  char buf[512];
  (void)level;
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  size_t len = strlen(buf);
  while (len > 0 && buf[len - 1] == '\n') buf[--len] = 0;
  flog("faultline-fuse: libfuse: %s", buf);
  pthread_mutex_lock(&g_log_mu);
  size_t cur = strlen(g_log_last);
  if (cur + len + 3 < sizeof g_log_last) {
    if (cur) { strcat(g_log_last, "; "); }
    strcat(g_log_last, buf);
  }
  pthread_mutex_unlock(&g_log_mu);
}

static bool utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p;
    int n;
    if (c < 0x80) { p++; continue; }
    else if ((c & 0xE0) == 0xC0) { n = 1; if (c < 0xC2) return false; }
    else if ((c & 0xF0) == 0xE0) n = 2;
    else if ((c & 0xF8) == 0xF0) { n = 3; if (c > 0xF4) return false; }
    else return false;
    unsigned cp = c & (0x3F >> n);
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    p += n + 1;
  }
  return true;
}

/* Start a helper thread with every asynchronous signal blocked. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGABRT);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static void session_unref(session_t *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  /* Last reference: nothing uses the table or the queues any more. */
  if (s->slots) {
    for (int32_t i = 0; i < s->next_unused; i++) {
      free(s->slots[i].name);
      free(s->slots[i].name2);
      free(s->slots[i].data);
    }
    free(s->slots);
  }
  if (s->efd >= 0) close(s->efd);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->nmu);
  pthread_cond_destroy(&s->wd_cv);
  pthread_cond_destroy(&s->ncv);
  free(s->mountpoint);
  free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Request table                                                                                */

static inline uint64_t slot_id(session_t *s, slot_t *sl) {
  return ((uint64_t)sl->gen << 16) | (uint64_t)(sl - s->slots);
}

/* Caller holds mu. */
static slot_t *lookup_locked(session_t *s, uint64_t id) {
  uint32_t idx = (uint32_t)(id & 0xFFFF);
  uint32_t gen = (uint32_t)(id >> 16);
  if ((int32_t)idx >= s->next_unused) return NULL;
  slot_t *sl = &s->slots[idx];
  if (sl->state != SLOT_PENDING || sl->gen != gen) return NULL;
  return sl;
}

/* Caller holds mu. Unlinks and frees the slot; returns its request. */
static fuse_req_t release_locked(session_t *s, slot_t *sl) {
  int32_t idx = (int32_t)(sl - s->slots);
  if (sl->prev >= 0) s->slots[sl->prev].next = sl->next; else s->out_head = sl->next;
  if (sl->next >= 0) s->slots[sl->next].prev = sl->prev; else s->out_tail = sl->prev;
  s->outstanding--;
  fuse_req_t req = sl->req;
  sl->req = NULL;
  free(sl->name); sl->name = NULL;
  free(sl->name2); sl->name2 = NULL;
  if (!sl->borrowed) free(sl->data);
  sl->data = NULL;
  sl->borrowed = 0;
  sl->datalen = 0;
  sl->state = SLOT_FREE;
  sl->gen++;
  if (sl->gen == 0) sl->gen = 1;
  sl->prev = -1;
  sl->next = s->free_head;
  s->free_head = idx;
  return req;
}

/* Allocate a slot for a new request (loop thread). On failure replies to req and returns NULL. */
static slot_t *begin(fuse_req_t req, int op, uint64_t ino) {
  session_t *s = fuse_req_userdata(req);
  pthread_mutex_lock(&s->mu);
  int32_t idx;
  if (s->closed) {
    idx = -1;
  } else if (s->free_head >= 0) {
    idx = s->free_head;
    s->free_head = s->slots[idx].next;
  } else if (s->next_unused < NSLOTS) {
    idx = s->next_unused++;
    s->slots[idx].gen = 1;
  } else {
    idx = -1;
  }
  if (idx < 0) {
    bool closed = s->closed;
    pthread_mutex_unlock(&s->mu);
    if (!closed) {
      atomic_fetch_add(&s->c_table_full, 1);
      flog("faultline-fuse: request table full (%d outstanding): %s ino=%llu answered EIO", NSLOTS,
           op_names[op], (unsigned long long)ino);
    }
    fuse_reply_err(req, EIO);
    return NULL;
  }
  slot_t *sl = &s->slots[idx];
  sl->req = req;
  sl->op = (uint8_t)op;
  sl->state = SLOT_PENDING;
  sl->interrupted = 0;
  sl->posted = 0;
  sl->size = 0;
  sl->ino = ino;
  sl->start_ns = mono_ns();
  sl->name = sl->name2 = NULL;
  sl->data = NULL;
  sl->borrowed = 0;
  sl->datalen = 0;
  sl->next = -1;
  sl->prev = s->out_tail;
  if (s->out_tail >= 0) s->slots[s->out_tail].next = idx; else s->out_head = idx;
  s->out_tail = idx;
  s->outstanding++;
  pthread_mutex_unlock(&s->mu);

  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  sl->a[A_INO] = (double)ino;
  sl->a[A_UID] = ctx->uid;
  sl->a[A_GID] = ctx->gid;
  sl->a[A_PID] = ctx->pid;
  sl->a[A_UMASK] = ctx->umask;
  for (int i = A_ARG0; i < NARGS; i++) sl->a[i] = 0;
  atomic_fetch_add(&s->c_requests, 1);
  return sl;
}

/* Fail a slot that was never posted (loop thread). */
static void fail_unposted(session_t *s, slot_t *sl, int err) {
  pthread_mutex_lock(&s->mu);
  fuse_req_t req = release_locked(s, sl);
  pthread_mutex_unlock(&s->mu);
  fuse_reply_err(req, err);
}

static void on_interrupt(fuse_req_t req, void *data) {
  session_t *s = fuse_req_userdata(req);
  uint64_t id = (uint64_t)(uintptr_t)data;
  pthread_mutex_lock(&s->mu);
  slot_t *sl = lookup_locked(s, id);
  bool post = false;
  if (sl) {
    sl->interrupted = 1;
    post = sl->posted;
  }
  pthread_mutex_unlock(&s->mu);
  if (sl) atomic_fetch_add(&s->c_interrupts, 1);
  if (post) napi_call_threadsafe_function(s->tsfn, TAG(EV_INTERRUPT, id), napi_tsfn_nonblocking);
}

static void deliver_request(napi_env env, session_t *s, uint64_t id);

/* Hand the request to JS (loop thread). Nothing may touch sl or req afterwards.
 * In uv mode this runs on the JS thread (inside fuse_session_process_buf, called from the poll
 * callback, which holds a handle scope and a callback scope) and calls the dispatcher directly:
 * the handler may reply synchronously (libfuse does not touch req after the op returns). */
static void post(session_t *s, slot_t *sl) {
  uint64_t id = slot_id(s, sl);
  fuse_req_t req = sl->req;
  fuse_req_interrupt_func(req, on_interrupt, (void *)(uintptr_t)id);
  pthread_mutex_lock(&s->mu);
  sl->posted = 1;
  pthread_mutex_unlock(&s->mu);
  if (s->uv_mode) {
    deliver_request(s->env, s, id);
    return;
  }
  if (napi_call_threadsafe_function(s->tsfn, TAG(T_REQ, id), napi_tsfn_nonblocking) != napi_ok) {
    pthread_mutex_lock(&s->mu);
    slot_t *cur = lookup_locked(s, id);
    fuse_req_t r = cur ? release_locked(s, cur) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (r) fuse_reply_err(r, EIO);
  }
}

#define A(i) (sl->a[A_ARG0 + (i)])
#define FH(fi) ((fi) ? (double)(fi)->fh : 0.0)

static bool dup_name(session_t *s, slot_t *sl, char **dst, const char *src) {
  *dst = strdup(src);
  if (!*dst) { fail_unposted(s, sl, ENOMEM); return false; }
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Low-level handlers (loop thread)                                                             */

static void ll_init(void *userdata, struct fuse_conn_info *conn);
static void ll_destroy(void *userdata) { (void)userdata; }

#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 17)
#define CONN_CAPABLE(c) ((uint64_t)(c)->capable_ext)
#define CONN_WANT(c) ((uint64_t)(c)->want_ext)
static void cap_apply(struct fuse_conn_info *c, uint64_t cap, bool on) {
  if (on) fuse_set_feature_flag(c, cap); else fuse_unset_feature_flag(c, cap);
}
#else
#define CONN_CAPABLE(c) ((uint64_t)(c)->capable)
#define CONN_WANT(c) ((uint64_t)(c)->want)
static void cap_apply(struct fuse_conn_info *c, uint64_t cap, bool on) {
  if (on && (c->capable & cap)) c->want |= (unsigned)cap; else c->want &= ~(unsigned)cap;
}
#endif

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session_t *s = userdata;
  initinfo_t *ii = &s->init;
  ii->proto_major = conn->proto_major;
  ii->proto_minor = conn->proto_minor;
  ii->capable = CONN_CAPABLE(conn);
  ii->want_default = CONN_WANT(conn);

  cap_apply(conn, FUSE_CAP_ASYNC_READ, s->opts.async_read);
  cap_apply(conn, FUSE_CAP_WRITEBACK_CACHE, s->opts.writeback_cache);
  cap_apply(conn, FUSE_CAP_AUTO_INVAL_DATA, s->opts.auto_inval_data);
  cap_apply(conn, FUSE_CAP_EXPLICIT_INVAL_DATA, s->opts.explicit_inval_data);
  cap_apply(conn, FUSE_CAP_ATOMIC_O_TRUNC, s->opts.atomic_o_trunc);
  cap_apply(conn, FUSE_CAP_PARALLEL_DIROPS, s->opts.parallel_dirops);
  cap_apply(conn, FUSE_CAP_SPLICE_READ, false);
  cap_apply(conn, FUSE_CAP_SPLICE_WRITE, false);
  cap_apply(conn, FUSE_CAP_SPLICE_MOVE, false);
#ifdef FUSE_CAP_OVER_IO_URING
  cap_apply(conn, FUSE_CAP_OVER_IO_URING, false); /* requests must come through our loop */
#endif
#ifdef FUSE_CAP_DIRECT_IO_ALLOW_MMAP
  cap_apply(conn, FUSE_CAP_DIRECT_IO_ALLOW_MMAP, s->opts.direct_io_allow_mmap);
#endif
  if (s->opts.max_write && s->opts.max_write < conn->max_write) conn->max_write = s->opts.max_write;
  if (s->opts.has_max_readahead && s->opts.max_readahead < conn->max_readahead)
    conn->max_readahead = s->opts.max_readahead;
  if (s->opts.max_background) conn->max_background = s->opts.max_background;
  if (s->opts.congestion_threshold) conn->congestion_threshold = s->opts.congestion_threshold;
  conn->time_gran = 1;

  ii->want = CONN_WANT(conn);
  ii->max_write = conn->max_write;
  ii->max_read = conn->max_read;
  ii->max_readahead = conn->max_readahead;
  ii->max_background = conn->max_background;
  ii->congestion_threshold = conn->congestion_threshold;
  ii->time_gran = conn->time_gran;
  ii->done = true;
  napi_call_threadsafe_function(s->tsfn, TAG(EV_INIT, 0), napi_tsfn_nonblocking);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (!utf8_ok(name)) { fuse_reply_err(req, ENOENT); return; }
  slot_t *sl = begin(req, OP_LOOKUP, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void deliver_forgets(napi_env env, session_t *s, forget_ev_t *ev);

static void post_forgets(session_t *s, size_t count, const uint64_t *inos, const uint64_t *nl,
                         const struct fuse_forget_data *fd) {
  forget_ev_t *ev = malloc(sizeof *ev + count * 2 * sizeof(double));
  if (!ev) return;
  ev->h.kind = EVP_FORGET;
  ev->count = count;
  for (size_t i = 0; i < count; i++) {
    ev->pairs[2 * i] = (double)(fd ? fd[i].ino : inos[i]);
    ev->pairs[2 * i + 1] = (double)(fd ? fd[i].nlookup : nl[i]);
  }
  atomic_fetch_add(&s->c_forgets, count);
  if (s->uv_mode) {
    /* JS thread: deliver in order with the requests around it. */
    deliver_forgets(s->env, s, ev);
    free(ev);
    return;
  }
  if (napi_call_threadsafe_function(s->tsfn, ev, napi_tsfn_nonblocking) != napi_ok) free(ev);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  session_t *s = fuse_req_userdata(req);
  uint64_t i = ino;
  fuse_reply_none(req);
  post_forgets(s, 1, &i, &nlookup, NULL);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session_t *s = fuse_req_userdata(req);
  post_forgets(s, count, NULL, NULL, forgets);
  fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_GETATTR, ino);
  if (!sl) return;
  A(0) = fi ? 1 : 0;
  A(1) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_SETATTR, ino);
  if (!sl) return;
  A(0) = to_set;
  A(1) = fi ? 1 : 0;
  A(2) = FH(fi);
  A(3) = attr->st_mode;
  A(4) = attr->st_uid;
  A(5) = attr->st_gid;
  A(6) = (double)attr->st_size;
  A(7) = ts_ms(attr->st_atim);
  A(8) = ts_ms(attr->st_mtim);
  A(9) = ts_ms(attr->st_ctim);
  post(fuse_req_userdata(req), sl);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  slot_t *sl = begin(req, OP_READLINK, ino);
  if (!sl) return;
  post(fuse_req_userdata(req), sl);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  if (!utf8_ok(name)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_MKNOD, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  A(0) = mode;
  A(1) = (double)rdev;
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  if (!utf8_ok(name)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_MKDIR, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  A(0) = mode;
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void name_op(fuse_req_t req, int op, fuse_ino_t parent, const char *name) {
  if (!utf8_ok(name)) { fuse_reply_err(req, ENOENT); return; }
  slot_t *sl = begin(req, op, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { name_op(req, OP_UNLINK, parent, name); }
static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { name_op(req, OP_RMDIR, parent, name); }

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  if (!utf8_ok(name) || !utf8_ok(link)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_SYMLINK, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  if (!dup_name(s, sl, &sl->name, name)) return;
  if (!dup_name(s, sl, &sl->name2, link)) return;
  post(s, sl);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
  if (!utf8_ok(name)) { fuse_reply_err(req, ENOENT); return; }
  if (!utf8_ok(newname)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_RENAME, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  A(0) = (double)newparent;
  A(1) = flags;
  if (!dup_name(s, sl, &sl->name, name)) return;
  if (!dup_name(s, sl, &sl->name2, newname)) return;
  post(s, sl);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  if (!utf8_ok(newname)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_LINK, ino);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  A(0) = (double)newparent;
  if (!dup_name(s, sl, &sl->name, newname)) return;
  post(s, sl);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_OPEN, ino);
  if (!sl) return;
  A(0) = fi->flags;
  post(fuse_req_userdata(req), sl);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_READ, ino);
  if (!sl) return;
  sl->size = (uint32_t)size;
  A(0) = (double)size;
  A(1) = (double)off;
  A(2) = FH(fi);
  A(3) = fi->flags;
  post(fuse_req_userdata(req), sl);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_WRITE, ino);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  if (size && s->uv_mode) {
    /* Delivered synchronously while buf is still valid: deliver_request copies it straight into
     * a JS Buffer (no malloc + copy + external-buffer finalizer). */
    sl->data = (void *)buf;
    sl->borrowed = 1;
  } else if (size) {
    sl->data = malloc(size);
    if (!sl->data) { fail_unposted(s, sl, ENOMEM); return; }
    memcpy(sl->data, buf, size);
  }
  sl->datalen = size;
  sl->size = (uint32_t)size;
  A(0) = (double)size;
  A(1) = (double)off;
  A(2) = FH(fi);
  A(3) = fi->flags;
  A(4) = fi->writepage;
  post(s, sl);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_FLUSH, ino);
  if (!sl) return;
  A(0) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_RELEASE, ino);
  if (!sl) return;
  A(0) = FH(fi);
  A(1) = fi->flags;
  post(fuse_req_userdata(req), sl);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_FSYNC, ino);
  if (!sl) return;
  A(0) = datasync;
  A(1) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_OPENDIR, ino);
  if (!sl) return;
  A(0) = fi->flags;
  post(fuse_req_userdata(req), sl);
}

static void dir_op(fuse_req_t req, int op, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, op, ino);
  if (!sl) return;
  sl->size = (uint32_t)size;
  A(0) = (double)size;
  A(1) = (double)off;
  A(2) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  dir_op(req, OP_READDIR, ino, size, off, fi);
}
static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  dir_op(req, OP_READDIRPLUS, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_RELEASEDIR, ino);
  if (!sl) return;
  A(0) = FH(fi);
  A(1) = fi->flags;
  post(fuse_req_userdata(req), sl);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_FSYNCDIR, ino);
  if (!sl) return;
  A(0) = datasync;
  A(1) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  slot_t *sl = begin(req, OP_STATFS, ino);
  if (!sl) return;
  post(fuse_req_userdata(req), sl);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
  if (!utf8_ok(name)) { fuse_reply_err(req, EILSEQ); return; }
  slot_t *sl = begin(req, OP_CREATE, parent);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  A(0) = mode;
  A(1) = fi->flags;
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_FALLOCATE, ino);
  if (!sl) return;
  A(0) = mode;
  A(1) = (double)offset;
  A(2) = (double)length;
  A(3) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
  slot_t *sl = begin(req, OP_LSEEK, ino);
  if (!sl) return;
  A(0) = (double)off;
  A(1) = whence;
  A(2) = FH(fi);
  post(fuse_req_userdata(req), sl);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  slot_t *sl = begin(req, OP_ACCESS, ino);
  if (!sl) return;
  A(0) = mask;
  post(fuse_req_userdata(req), sl);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  if (!utf8_ok(name)) { fuse_reply_err(req, ENODATA); return; }
  slot_t *sl = begin(req, OP_GETXATTR, ino);
  if (!sl) return;
  session_t *s = fuse_req_userdata(req);
  sl->size = (uint32_t)size;
  A(0) = (double)size;
  if (!dup_name(s, sl, &sl->name, name)) return;
  post(s, sl);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  slot_t *sl = begin(req, OP_LISTXATTR, ino);
  if (!sl) return;
  sl->size = (uint32_t)size;
  A(0) = (double)size;
  post(fuse_req_userdata(req), sl);
}

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                      */

static void *loop_main(void *arg) {
  session_t *s = arg;
  struct fuse_session *se = s->se;
  struct fuse_buf fbuf = {.mem = NULL};
  int fd = fuse_session_fd(se);
  while (!fuse_session_exited(se) && !atomic_load(&s->stop_loop)) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->efd, .events = POLLIN}};
    int r = poll(p, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      flog("faultline-fuse: poll: %s", strerror(errno));
      break;
    }
    if (p[1].revents) break;
    if (!p[0].revents) continue;
    int res = fuse_session_receive_buf(se, &fbuf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break; /* 0: ENODEV (unmounted or aborted) */
    fuse_session_process_buf(se, &fbuf);
  }
  free(fbuf.mem);
  atomic_store(&s->loop_ended, true);
  napi_call_threadsafe_function(s->tsfn, TAG(EV_LOOP_END, 0), napi_tsfn_nonblocking);
  return NULL;
}

typedef struct expired {
  fuse_req_t req;
  uint64_t id, ino, age_ns;
  int op;
} expired_t;

static void *wd_main(void *arg) {
  session_t *s = arg;
  uint64_t period = s->timeout_ns / 8;
  if (period < 5000000ull) period = 5000000ull;
  if (period > 500000000ull) period = 500000000ull;
  expired_t ex[64];
  pthread_mutex_lock(&s->mu);
  while (!s->wd_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = (uint64_t)ts.tv_nsec + period;
    ts.tv_sec += (time_t)(t / 1000000000ull);
    ts.tv_nsec = (long)(t % 1000000000ull);
    pthread_cond_timedwait(&s->wd_cv, &s->mu, &ts);
    if (s->wd_stop) break;
    for (;;) {
      uint64_t now = mono_ns();
      int n = 0;
      while (n < 64 && s->out_head >= 0 && !s->closed) {
        slot_t *sl = &s->slots[s->out_head];
        if (now - sl->start_ns < s->timeout_ns) break;
        ex[n].id = slot_id(s, sl);
        ex[n].ino = sl->ino;
        ex[n].op = sl->op;
        ex[n].age_ns = now - sl->start_ns;
        sl->expired_gen = sl->gen;
        ex[n].req = release_locked(s, sl);
        n++;
      }
      if (n == 0) break;
      pthread_mutex_unlock(&s->mu);
      for (int i = 0; i < n; i++) {
        atomic_fetch_add(&s->c_expired, 1);
        flog("faultline-fuse: watchdog: %s ino=%llu unanswered after %.3f s (id %llu): replied EIO",
             op_names[ex[i].op], (unsigned long long)ex[i].ino, (double)ex[i].age_ns / 1e9,
             (unsigned long long)ex[i].id);
        fuse_reply_err(ex[i].req, EIO);
        napi_call_threadsafe_function(s->tsfn, TAG(EV_EXPIRED, ex[i].id), napi_tsfn_nonblocking);
      }
      pthread_mutex_lock(&s->mu);
      if (n < 64) break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static void *notify_main(void *arg) {
  session_t *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->nmu);
    while (!s->nq_head && !s->n_stop) pthread_cond_wait(&s->ncv, &s->nmu);
    nitem_t *it = s->nq_head;
    if (!it) { pthread_mutex_unlock(&s->nmu); break; }
    s->nq_head = it->next;
    if (!s->nq_head) s->nq_tail = NULL;
    bool stopping = s->n_stop;
    s->n_sending = !stopping;
    pthread_mutex_unlock(&s->nmu);

    int rc;
    if (stopping) {
      rc = -ENOTCONN;
    } else if (it->kind == 1) {
      rc = fuse_lowlevel_notify_inval_inode(s->se, it->ino, (off_t)it->off, (off_t)it->len);
    } else if (it->kind == 2) {
      rc = fuse_lowlevel_notify_inval_entry(s->se, it->ino, it->name, it->namelen);
    } else {
      struct fuse_bufvec bv = FUSE_BUFVEC_INIT(it->datalen);
      bv.buf[0].mem = it->data;
      rc = fuse_lowlevel_notify_store(s->se, it->ino, (off_t)it->off, &bv, 0);
    }
    if (!stopping) atomic_fetch_add(&s->c_notify_sent, 1);
    it->rc = rc;
    free(it->name); it->name = NULL;
    free(it->data); it->data = NULL;
    pthread_mutex_lock(&s->nmu);
    s->n_sending = false;
    s->n_pending--;
    pthread_mutex_unlock(&s->nmu);
    if (napi_call_threadsafe_function(s->tsfn, it, napi_tsfn_nonblocking) != napi_ok) free(it);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Mount table helpers                                                                          */

static void unescape_mnt(char *p) {
  char *w = p;
  while (*p) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *w++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
      p += 4;
    } else {
      *w++ = *p++;
    }
  }
  *w = 0;
}

/* Device (major:minor) and fstype of the topmost mount at `path`. Returns false if none. */
static bool find_mount(const char *path, unsigned *maj, unsigned *min, char *fstype, size_t fslen) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return false;
  char *line = NULL;
  size_t cap = 0;
  bool found = false;
  while (getline(&line, &cap, f) > 0) {
    /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
    unsigned a, b;
    char mp[PATH_MAX + 1];
    if (sscanf(line, "%*u %*u %u:%u %*s %4096s", &a, &b, mp) != 3) continue;
    unescape_mnt(mp);
    if (strcmp(mp, path) != 0) continue;
    char *sep = strstr(line, " - ");
    if (!sep) continue;
    char fs[128] = "";
    if (sscanf(sep + 3, "%127s", fs) != 1) continue;
    *maj = a;
    *min = b;
    snprintf(fstype, fslen, "%s", fs);
    found = true; /* keep scanning: the last matching line is the topmost mount */
  }
  free(line);
  fclose(f);
  return found;
}

static bool mount_is_ours(session_t *s) {
  unsigned maj, min;
  char fs[128];
  if (!find_mount(s->mountpoint, &maj, &min, fs, sizeof fs)) return false;
  if (strncmp(fs, "fuse", 4) != 0) return false;
  if (s->conn_id < 0) return true;
  return maj == 0 && (int)min == s->conn_id;
}

static int do_umount(const char *mnt) {
  if (geteuid() == 0) {
    if (umount2(mnt, MNT_DETACH) == 0) return 0;
    return errno;
  }
  const char *argv[] = {"fusermount3", "-u", "-q", "-z", "--", mnt, NULL};
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, dfl;
  sigemptyset(&none);
  sigfillset(&dfl);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = posix_spawnp(&pid, "fusermount3", NULL, &attr, (char *const *)argv, environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return rc;
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return errno;
  }
  return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : EIO;
}

static void *unmount_main(void *arg) {
  session_t *s = arg;
  int err = 0;
  if (mount_is_ours(s)) err = do_umount(s->mountpoint);
  s->unmount_err = err;
  if (err) flog("faultline-fuse: unmount %s failed: %s", s->mountpoint, strerror(err));
  atomic_store(&s->stop_loop, true);
  if (s->uv_mode) {
    /* No loop thread to notice the eventfd: end the session from here (the poll callback stops
     * reading once it sees stop_loop; JS answers LOOP_END with destroy()). */
    if (!atomic_exchange(&s->loop_ended, true))
      napi_call_threadsafe_function(s->tsfn, TAG(EV_LOOP_END, 0), napi_tsfn_nonblocking);
    return NULL;
  }
  uint64_t one = 1;
  ssize_t w = write(s->efd, &one, sizeof one);
  (void)w;
  return NULL;
}

static bool fusectl_abort(session_t *s) {
  if (s->conn_id < 0) return false;
  char path[128];
  snprintf(path, sizeof path, "/sys/fs/fuse/connections/%d/abort", s->conn_id);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && geteuid() == 0) {
    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL);
    fd = open(path, O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) return false;
  ssize_t w = write(fd, "1", 1);
  close(fd);
  return w == 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown (JS thread): stop loop -> fail outstanding -> stop watchdog -> stop notifier ->
 * session destroy (closes /dev/fuse, aborting the connection) -> join unmounter -> unmount if
 * nobody did -> release tsfn. Idempotent. Returns the number of requests failed with EIO. */

static void cleanup_hook(void *arg);
static void teardown_finish(session_t *s);
static void teardown_unmount(session_t *s, bool in_hook);

static uint32_t teardown(session_t *s, bool in_hook) {
  if (atomic_exchange(&s->torn_down, true)) return 0;
  uint32_t failed = 0;

  if (s->loop_started && !s->uv_mode) {
    atomic_store(&s->stop_loop, true);
    uint64_t one = 1;
    ssize_t w = write(s->efd, &one, sizeof one);
    (void)w;
    pthread_join(s->loop_thr, NULL);
    s->loop_started = false;
  }
  if (s->uv_mode) {
    /* JS thread: stop reading. The handle is closed (uv_close) in teardown_finish, before the fd. */
    atomic_store(&s->stop_loop, true);
    if (s->poll_inited && !s->poll_closed) uv_poll_stop(&s->poll);
    s->loop_started = false;
  }
  /* Replies below may hit an aborted connection; an exited session keeps libfuse quiet about it. */
  if (s->se) fuse_session_exit(s->se);

  if (s->wd_started) {
    pthread_mutex_lock(&s->mu);
    s->wd_stop = true;
    pthread_cond_signal(&s->wd_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->wd_thr, NULL);
    s->wd_started = false;
  }

  /* Fail every outstanding request. The loop is stopped, so nothing new arrives. (In uv mode a
   * request whose handler is on the stack right now may be among them: libfuse does not touch a
   * request after its op returns, so answering it here is safe.) */
  for (;;) {
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    fuse_req_t req = NULL;
    if (s->out_head >= 0) req = release_locked(s, &s->slots[s->out_head]);
    pthread_mutex_unlock(&s->mu);
    if (!req) break;
    fuse_reply_err(req, EIO);
    failed++;
  }

  bool session_ok = true;
  if (s->notify_started) {
    pthread_mutex_lock(&s->nmu);
    s->n_stop = true;
    pthread_cond_signal(&s->ncv);
    pthread_mutex_unlock(&s->nmu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    if (pthread_timedjoin_np(s->notify_thr, NULL, &ts) != 0) {
      flog("faultline-fuse: notifier thread stuck in the kernel at teardown; aborting connection %d", s->conn_id);
      fusectl_abort(s);
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 2;
      if (pthread_timedjoin_np(s->notify_thr, NULL, &ts) != 0) {
        flog("faultline-fuse: notifier thread still stuck; leaking the libfuse session");
        session_ok = false;
      }
    }
    if (session_ok) s->notify_started = false;
  }
  s->session_ok = session_ok;
  s->finish_in_hook = in_hook;

  if (s->dispatch_depth > 0) {
    /* uv mode, called from a handler inside fuse_session_process_buf: the session (and the
     * receive buffer) must outlive the libfuse frames on the stack. The poll callback finishes.
     * (Not even the unmount may run here: with the connection still alive, umount2 could wait
     * for a WRITE only this thread can answer. If the process exits first, e.g. process.exit()
     * from a handler, auto_unmount removes the mount.) */
    s->finish_deferred = true;
    return failed;
  }
  teardown_finish(s);
  return failed;
}

/* Join the unmounter or unmount now, then let fusermount3's auto_unmount watcher go. Idempotent. */
static void teardown_unmount(session_t *s, bool in_hook) {
  if (s->unmount_started) {
    pthread_join(s->unmount_thr, NULL);
    s->unmount_started = false;
  } else if (mount_is_ours(s)) {
    if (!in_hook || geteuid() == 0) {
      int err = do_umount(s->mountpoint);
      if (err) flog("faultline-fuse: unmount %s failed: %s", s->mountpoint, strerror(err));
    }
  }
  /* The mount is gone: let fusermount3's auto_unmount watcher exit now, not at process exit. */
  for (int i = 0; i < s->n_aux; i++) close(s->aux_fds[i]);
  s->n_aux = 0;
}

static void poll_close_cb(uv_handle_t *h) {
  session_unref(h->data);
}

/* Second half of teardown: close the poll handle, destroy the libfuse session (closes the fd),
 * unmount, release the tsfn. JS thread, never while process_buf is on the stack. */
static void teardown_finish(session_t *s) {
  if (s->finished) return;
  s->finished = true;
  s->finish_deferred = false;
  bool in_hook = s->finish_in_hook;

  if (s->poll_inited && !s->poll_closed) {
    s->poll_closed = true;
    uv_close((uv_handle_t *)&s->poll, poll_close_cb); /* removes the fd from epoll now */
  }

  if (s->se && s->session_ok) {
    fuse_session_destroy(s->se); /* closes /dev/fuse: aborts the connection if still alive */
    s->se = NULL;
  } else if (s->se) {
    fusectl_abort(s);
  }
  free(s->fbuf.mem);
  s->fbuf.mem = NULL;

  teardown_unmount(s, in_hook);

  if (s->hook_added && !in_hook) {
    napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
  }
  s->hook_added = false;
  if (s->actx && !in_hook) {
    napi_async_destroy(s->env, s->actx);
    s->actx = NULL;
  }
  if (s->resource_ref && !in_hook) {
    napi_delete_reference(s->env, s->resource_ref);
    s->resource_ref = NULL;
  }
  if (s->tsfn) {
    napi_release_threadsafe_function(s->tsfn, in_hook ? napi_tsfn_abort : napi_tsfn_release);
  }
}

static void cleanup_hook(void *arg) {
  session_t *s = arg;
  s->hook_added = false;
  teardown(s, true);
}

/* ------------------------------------------------------------------------------------------ */
/* tsfn → JS                                                                                    */

static void report_exception(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) return;
  napi_value exc, str;
  napi_get_and_clear_last_exception(env, &exc);
  char buf[512] = "(unprintable)";
  napi_value stack;
  bool has = false;
  if (napi_has_named_property(env, exc, "stack", &has) == napi_ok && has &&
      napi_get_named_property(env, exc, "stack", &stack) == napi_ok &&
      napi_coerce_to_string(env, stack, &str) == napi_ok) {
    napi_get_value_string_utf8(env, str, buf, sizeof buf, NULL);
  } else if (napi_coerce_to_string(env, exc, &str) == napi_ok) {
    napi_get_value_string_utf8(env, str, buf, sizeof buf, NULL);
  }
  flog("faultline-fuse: exception in FUSE dispatcher (ignored): %s", buf);
}

static void free_cb(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void call_fn(napi_env env, napi_ref ref, size_t argc, napi_value *argv) {
  napi_value fn, undef, res;
  if (napi_get_reference_value(env, ref, &fn) != napi_ok || !fn) return;
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, fn, argc, argv, &res) != napi_ok) report_exception(env);
}

static void deliver_request(napi_env env, session_t *s, uint64_t id) {
  pthread_mutex_lock(&s->mu);
  slot_t *sl = lookup_locked(s, id);
  if (!sl) {
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&s->c_stale, 1);
    return;
  }
  memcpy(s->req_scratch, sl->a, sizeof sl->a);
  s->req_scratch[A_INTERRUPTED] = sl->interrupted;
  int op = sl->op;
  char *name = sl->name, *name2 = sl->name2;
  void *data = sl->data;
  size_t datalen = sl->datalen;
  bool borrowed = sl->borrowed;
  sl->name = sl->name2 = NULL;
  sl->data = NULL;
  sl->borrowed = 0;
  sl->datalen = 0;
  pthread_mutex_unlock(&s->mu);

  napi_value argv[5];
  napi_create_double(env, (double)id, &argv[0]);
  napi_create_int32(env, op, &argv[1]);
  napi_get_undefined(env, &argv[2]);
  argv[3] = argv[2];
  argv[4] = argv[2];
  if (name) napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &argv[2]);
  if (name2) napi_create_string_utf8(env, name2, NAPI_AUTO_LENGTH, &argv[3]);
  free(name);
  free(name2);
  if (op == OP_WRITE && borrowed) {
    void *dst;
    if (napi_create_buffer_copy(env, datalen, data, &dst, &argv[4]) != napi_ok) {
      /* Could not allocate the Buffer: answer ENOMEM instead of calling JS without data. */
      pthread_mutex_lock(&s->mu);
      slot_t *cur = lookup_locked(s, id);
      fuse_req_t r = cur ? release_locked(s, cur) : NULL;
      pthread_mutex_unlock(&s->mu);
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
      }
      if (r) fuse_reply_err(r, ENOMEM);
      return;
    }
  } else if (op == OP_WRITE) {
    if (data) {
      if (napi_create_external_buffer(env, datalen, data, free_cb, NULL, &argv[4]) != napi_ok) {
        /* External buffers unavailable: fall back to a copy. */
        void *dst;
        napi_create_buffer_copy(env, datalen, data, &dst, &argv[4]);
        free(data);
      }
    } else {
      void *dst;
      napi_create_buffer(env, 0, &dst, &argv[4]);
    }
  } else if (!borrowed) {
    free(data);
  }
  call_fn(env, s->on_request, 5, argv);
}

static void deliver_forgets(napi_env env, session_t *s, forget_ev_t *ev) {
  for (size_t i = 0; i < ev->count; i++) {
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    s->req_scratch[A_INO] = ev->pairs[2 * i];
    s->req_scratch[A_ARG0] = ev->pairs[2 * i + 1];
    napi_value argv[2];
    napi_create_double(env, 0, &argv[0]);
    napi_create_int32(env, OP_FORGET, &argv[1]);
    call_fn(env, s->on_request, 2, argv);
    napi_close_handle_scope(env, scope);
  }
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  session_t *s = context;
  uintptr_t v = (uintptr_t)data;
  if (env == NULL) {
    if (!(v & TAG_BIT)) {
      evhdr_t *h = data;
      if (h->kind == EVP_NOTIFY) {
        nitem_t *it = data;
        free(it->name);
        free(it->data);
      }
      free(data);
    }
    return;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  if (v & TAG_BIT) {
    int type = (int)((v >> 48) & 0x7F);
    uint64_t id = v & ID_MASK;
    if (type == T_REQ) {
      deliver_request(env, s, id);
    } else {
      napi_value argv[2];
      napi_create_int32(env, type, &argv[0]);
      napi_create_double(env, (double)id, &argv[1]);
      call_fn(env, s->on_event, 2, argv);
    }
  } else {
    evhdr_t *h = data;
    if (h->kind == EVP_FORGET) {
      forget_ev_t *ev = data;
      deliver_forgets(env, s, ev);
      free(ev);
    } else if (h->kind == EVP_NOTIFY) {
      nitem_t *it = data;
      napi_value rc;
      napi_create_int32(env, it->rc, &rc);
      napi_resolve_deferred(env, it->deferred, rc);
      free(it);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_t *s = data;
  if (s->on_request) napi_delete_reference(env, s->on_request);
  if (s->on_event) napi_delete_reference(env, s->on_event);
  if (s->req_scratch_ref) napi_delete_reference(env, s->req_scratch_ref);
  if (s->reply_scratch_ref) napi_delete_reference(env, s->reply_scratch_ref);
  s->on_request = s->on_event = s->req_scratch_ref = s->reply_scratch_ref = NULL;
  s->tsfn = NULL;
  session_unref(s);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  session_unref(data);
}

/* ------------------------------------------------------------------------------------------ */
/* Loop mode 'uv': /dev/fuse (O_NONBLOCK) is watched by a uv_poll_t on Node's loop; the callback
 * reads and processes up to UV_BATCH requests, then yields to libuv. The ll_* handlers run on the
 * JS thread and call the dispatcher directly (no thread hop). The JS thread never blocks on its
 * own mount: EAGAIN returns to libuv. Interrupts, INIT, LOOP_END, watchdog expiries and
 * notifications still travel through the tsfn (queued, asynchronous). */

#ifndef UV_BATCH
#define UV_BATCH 64
#endif

static void on_fuse_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  session_t *s = h->data;
  if (atomic_load(&s->torn_down) || s->finished) return;
  if (status < 0 || atomic_load(&s->stop_loop) || !s->se || fuse_session_exited(s->se)) {
    uv_poll_stop(h);
    /* libuv reports POLLERR as UV_EBADF: /dev/fuse signals a dead connection that way. */
    if (status < 0 && status != UV_EBADF) flog("faultline-fuse: poll /dev/fuse: %s", uv_strerror(status));
    if (status < 0 && !atomic_exchange(&s->loop_ended, true))
      napi_call_threadsafe_function(s->tsfn, TAG(EV_LOOP_END, 0), napi_tsfn_nonblocking);
    return;
  }
  napi_env env = s->env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource = NULL;
  napi_callback_scope cs = NULL;
  if (s->resource_ref) napi_get_reference_value(env, s->resource_ref, &resource);
  if (resource && s->actx) napi_open_callback_scope(env, resource, s->actx, &cs);
  bool ended = false;
  s->dispatch_depth++;
  for (int i = 0; i < UV_BATCH; i++) {
    if (atomic_load(&s->torn_down) || atomic_load(&s->stop_loop)) break;
    int res = fuse_session_receive_buf(s->se, &s->fbuf);
    if (res == -EAGAIN) break;
    if (res == -EINTR) continue;
    if (res <= 0) { /* 0: ENODEV (unmounted or aborted) */
      ended = true;
      break;
    }
    napi_handle_scope rs;
    napi_open_handle_scope(env, &rs);
    fuse_session_process_buf(s->se, &s->fbuf);
    napi_close_handle_scope(env, rs);
  }
  s->dispatch_depth--;
  if ((ended || atomic_load(&s->stop_loop)) && !s->finished && !s->finish_deferred) {
    uv_poll_stop(h);
    if (ended && !atomic_exchange(&s->loop_ended, true))
      napi_call_threadsafe_function(s->tsfn, TAG(EV_LOOP_END, 0), napi_tsfn_nonblocking);
  }
  /* Closing the callback scope runs queued microtasks and nextTicks (async handlers continue
   * here); they may call destroy(), which then runs to completion (dispatch_depth is 0). */
  if (cs) napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
  if (s->finish_deferred) teardown_finish(s);
}

/* ------------------------------------------------------------------------------------------ */
/* N-API plumbing                                                                               */

#define THROW(env, ...)                                                                           \
  do {                                                                                            \
    char _m[512];                                                                                 \
    snprintf(_m, sizeof _m, __VA_ARGS__);                                                         \
    napi_throw_error(env, NULL, _m);                                                              \
    return NULL;                                                                                  \
  } while (0)
#define THROW_TYPE(env, ...)                                                                      \
  do {                                                                                            \
    char _m[512];                                                                                 \
    snprintf(_m, sizeof _m, __VA_ARGS__);                                                         \
    napi_throw_type_error(env, NULL, _m);                                                         \
    return NULL;                                                                                  \
  } while (0)
#define THROW_RANGE(env, ...)                                                                     \
  do {                                                                                            \
    char _m[512];                                                                                 \
    snprintf(_m, sizeof _m, __VA_ARGS__);                                                         \
    napi_throw_range_error(env, NULL, _m);                                                        \
    return NULL;                                                                                  \
  } while (0)

#define GET_ARGS(n)                                                                               \
  size_t argc = (n);                                                                              \
  napi_value argv[(n) > 0 ? (n) : 1];                                                             \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static session_t *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "faultline_fuse: bad session handle");
    return NULL;
  }
  return p;
}

static bool get_f64(napi_env env, napi_value v, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "faultline_fuse: expected a number");
    return false;
  }
  return true;
}

static bool get_id(napi_env env, napi_value v, uint64_t *id) {
  int64_t x;
  if (napi_get_value_int64(env, v, &x) != napi_ok || x <= 0 || (uint64_t)x > ID_MASK) {
    napi_throw_type_error(env, NULL, "faultline_fuse: bad request id");
    return false;
  }
  *id = (uint64_t)x;
  return true;
}

static napi_value mk_bool(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/* Reply helpers. peek() checks the id and op kind without consuming the request; take()
 * consumes it. Both return 1 (ok), 0 (drop: expired by the watchdog or session closed) or -1
 * (a JS exception is pending: stale or used id, wrong reply kind). */
static int peek(napi_env env, session_t *s, uint64_t id, uint32_t opmask, const char *what, int *op,
                uint32_t *size, fuse_req_t *req) {
  pthread_mutex_lock(&s->mu);
  slot_t *sl = lookup_locked(s, id);
  if (!sl) {
    uint32_t idx = (uint32_t)(id & 0xFFFF);
    bool expired = (int32_t)idx < s->next_unused && s->slots[idx].expired_gen == (uint32_t)(id >> 16);
    bool closed = s->closed;
    pthread_mutex_unlock(&s->mu);
    if (expired || closed) {
      atomic_fetch_add(&s->c_late, 1);
      return 0;
    }
    char m[160];
    snprintf(m, sizeof m, "faultline_fuse: %s: request %llu is not outstanding (already answered, or a stale id)",
             what, (unsigned long long)id);
    napi_throw_error(env, "ERR_FUSE_STALE_REQUEST", m);
    return -1;
  }
  int o = sl->op;
  if (!(opmask & OPBIT(o))) {
    pthread_mutex_unlock(&s->mu);
    char m[160];
    snprintf(m, sizeof m, "faultline_fuse: %s is not a valid reply to a %s request", what, op_names[o]);
    napi_throw_type_error(env, "ERR_FUSE_REPLY_KIND", m);
    return -1;
  }
  if (op) *op = o;
  if (size) *size = sl->size;
  if (req) *req = sl->req;
  pthread_mutex_unlock(&s->mu);
  return 1;
}

static fuse_req_t take(session_t *s, uint64_t id) {
  pthread_mutex_lock(&s->mu);
  slot_t *sl = lookup_locked(s, id);
  fuse_req_t req = sl ? release_locked(s, sl) : NULL;
  if (!sl) atomic_fetch_add(&s->c_late, 1);
  pthread_mutex_unlock(&s->mu);
  return req;
}

/* Doubles from JS → integers without UB: NaN/negative → 0, clamp to the type's range. */
static uint64_t d2u(double x) {
  if (!(x > 0)) return 0;
  if (x >= 18446744073709549568.0) return UINT64_MAX;
  return (uint64_t)x;
}
static int64_t d2i(double x) {
  if (!(x == x)) return 0;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  if (x >= 9223372036854774784.0) return INT64_MAX;
  return (int64_t)x;
}
static double d2timeout(double x) { return (x > 0 && x < 1e12) ? x : 0; }
static struct timespec ms_ts_safe(double ms) {
  if (!(ms == ms) || ms > 1e15 || ms < -1e15) ms = 0;
  return ms_ts(ms);
}

static void fill_stat(struct stat *st, const double *r) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)d2u(r[0]);
  st->st_mode = (mode_t)d2u(r[1]);
  st->st_nlink = (nlink_t)d2u(r[2]);
  st->st_uid = (uid_t)d2u(r[3]);
  st->st_gid = (gid_t)d2u(r[4]);
  st->st_rdev = (dev_t)d2u(r[5]);
  st->st_size = (off_t)d2i(r[6]);
  st->st_blksize = (blksize_t)d2u(r[7]);
  st->st_blocks = (blkcnt_t)d2i(r[8]);
  st->st_atim = ms_ts_safe(r[9]);
  st->st_mtim = ms_ts_safe(r[10]);
  st->st_ctim = ms_ts_safe(r[11]);
}

static void fill_entry(struct fuse_entry_param *e, const double *r) {
  memset(e, 0, sizeof *e);
  fill_stat(&e->attr, r + R_ATTR);
  e->ino = (fuse_ino_t)d2u(r[R_ENTRY]);
  e->attr.st_ino = e->ino;
  e->generation = d2u(r[R_ENTRY + 1]);
  e->attr_timeout = d2timeout(r[R_ENTRY + 2]);
  e->entry_timeout = d2timeout(r[R_ENTRY + 3]);
}

static void fill_fi(struct fuse_file_info *fi, double fh, uint32_t flags) {
  memset(fi, 0, sizeof *fi);
  fi->fh = d2u(fh);
  fi->keep_cache = (flags & OF_KEEP_CACHE) ? 1 : 0;
  fi->direct_io = (flags & OF_DIRECT_IO) ? 1 : 0;
  fi->nonseekable = (flags & OF_NONSEEKABLE) ? 1 : 0;
  fi->cache_readdir = (flags & OF_CACHE_READDIR) ? 1 : 0;
  fi->noflush = (flags & OF_NOFLUSH) ? 1 : 0;
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 15)
  fi->parallel_direct_writes = (flags & OF_PARALLEL_DIRECT_WRITES) ? 1 : 0;
#endif
}

#define REPLY_PROLOGUE(n)                                                                         \
  GET_ARGS(n);                                                                                    \
  if (argc < (n)) THROW_TYPE(env, "faultline_fuse: expected %d arguments", (n));                  \
  session_t *s = get_session(env, argv[0]);                                                       \
  if (!s) return NULL;                                                                            \
  uint64_t id;                                                                                    \
  if (!get_id(env, argv[1], &id)) return NULL

/* replyErr(handle, id, errno): errno 0 is "success" for ops without a payload. */
static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  int32_t err;
  if (napi_get_value_int32(env, argv[2], &err) != napi_ok) THROW_TYPE(env, "faultline_fuse: errno must be a number");
  if (err < 0) err = -err;
  int op;
  int r = peek(env, s, id, err == 0 ? OK_OPS : 0xFFFFFFFFu, err == 0 ? "ok()" : "error()", &op, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  if (err > 511) {
    flog("faultline-fuse: %s: errno %d out of range, replying EIO", op_names[op], err);
    err = EIO;
  }
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_err(req, err);
  return mk_bool(env, true);
}

/* replyEntry(handle, id): entry from the reply scratch. ino 0 = negative entry (lookup only). */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  int op;
  int r = peek(env, s, id, ENTRY_OPS, "entry()", &op, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  struct fuse_entry_param e;
  fill_entry(&e, s->reply_scratch);
  if (e.ino == 0 && op != OP_LOOKUP) THROW_TYPE(env, "faultline_fuse: entry() with ino 0 is only valid for lookup");
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_entry(req, &e);
  return mk_bool(env, true);
}

/* replyCreate(handle, id, fh, openFlags) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double fh;
  uint32_t flags;
  if (!get_f64(env, argv[2], &fh)) return NULL;
  if (napi_get_value_uint32(env, argv[3], &flags) != napi_ok) THROW_TYPE(env, "faultline_fuse: bad open flags");
  int r = peek(env, s, id, OPBIT(OP_CREATE), "create()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  struct fuse_entry_param e;
  fill_entry(&e, s->reply_scratch);
  if (e.ino == 0) THROW_TYPE(env, "faultline_fuse: create() needs a non-zero ino");
  struct fuse_file_info fi;
  fill_fi(&fi, fh, flags);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_create(req, &e, &fi);
  return mk_bool(env, true);
}

/* replyAttr(handle, id, timeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double timeout;
  if (!get_f64(env, argv[2], &timeout)) return NULL;
  int r = peek(env, s, id, OPBIT(OP_GETATTR) | OPBIT(OP_SETATTR), "attr()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  struct stat st;
  fill_stat(&st, s->reply_scratch + R_ATTR);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_attr(req, &st, d2timeout(timeout));
  return mk_bool(env, true);
}

/* replyReadlink(handle, id, target) */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  size_t len;
  if (napi_get_value_string_utf8(env, argv[2], NULL, 0, &len) != napi_ok) THROW_TYPE(env, "faultline_fuse: readlink target must be a string");
  if (len == 0 || len >= PATH_MAX) THROW_RANGE(env, "faultline_fuse: readlink target length %zu out of range", len);
  int r = peek(env, s, id, OPBIT(OP_READLINK), "readlink()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  char *buf = malloc(len + 1);
  if (!buf) THROW(env, "faultline_fuse: out of memory");
  napi_get_value_string_utf8(env, argv[2], buf, len + 1, NULL);
  fuse_req_t req = take(s, id);
  if (req) fuse_reply_readlink(req, buf);
  free(buf);
  return mk_bool(env, req != NULL);
}

/* replyOpen(handle, id, fh, openFlags) */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double fh;
  uint32_t flags;
  if (!get_f64(env, argv[2], &fh)) return NULL;
  if (napi_get_value_uint32(env, argv[3], &flags) != napi_ok) THROW_TYPE(env, "faultline_fuse: bad open flags");
  int r = peek(env, s, id, OPBIT(OP_OPEN) | OPBIT(OP_OPENDIR), "open()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  struct fuse_file_info fi;
  fill_fi(&fi, fh, flags);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_open(req, &fi);
  return mk_bool(env, true);
}

/* replyWrite(handle, id, count) */
static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double count;
  if (!get_f64(env, argv[2], &count)) return NULL;
  uint32_t size;
  int r = peek(env, s, id, OPBIT(OP_WRITE), "written()", NULL, &size, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  if (!(count >= 0) || count > (double)size || count != (double)(uint64_t)count)
    THROW_RANGE(env, "faultline_fuse: written(%g) out of range for a %u-byte write", count, size);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_write(req, (size_t)count);
  return mk_bool(env, true);
}

/* Bytes of a TypedArray / DataView (false: not one). */
static bool view_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_ta = false, is_dv = false;
  napi_is_typedarray(env, v, &is_ta);
  if (is_ta) {
    napi_typedarray_type tt;
    size_t n;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, v, &tt, &n, data, &ab, &off);
    size_t el = 1;
    switch (tt) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: el = 1;
    }
    *len = n * el;
    return true;
  }
  napi_is_dataview(env, v, &is_dv);
  if (!is_dv) return false;
  napi_value ab;
  size_t off;
  napi_get_dataview_info(env, v, len, data, &ab, &off);
  return true;
}

/* replyBuf(handle, id, data?: ArrayBufferView) — zero-copy: the kernel copies during writev. */
static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  void *data = NULL;
  size_t len = 0;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t != napi_undefined && t != napi_null && !view_bytes(env, argv[2], &data, &len))
    THROW_TYPE(env, "faultline_fuse: data() expects a Buffer/Uint8Array");
  uint32_t size;
  int op;
  int r = peek(env, s, id, BUF_OPS, "data()", &op, &size, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  if ((op == OP_GETXATTR || op == OP_LISTXATTR) && size == 0)
    THROW_TYPE(env, "faultline_fuse: %s with size 0 is a size query: use size()", op_names[op]);
  if (len > size) THROW_RANGE(env, "faultline_fuse: data() of %zu bytes exceeds the %u bytes %s asked for", len, size, op_names[op]);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_buf(req, data ? data : "", len);
  return mk_bool(env, true);
}

#define MAX_IOV 1024

/* replyIov(handle, id, bufs: ArrayBufferView[]) — gather reply (fuse_reply_iov): the buffers are
 * sent back to back, zero-copy (the kernel copies them during writev). */
static napi_value js_reply_iov(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  bool is_arr = false;
  napi_is_array(env, argv[2], &is_arr);
  if (!is_arr) THROW_TYPE(env, "faultline_fuse: dataV() expects an array of Buffers/Uint8Arrays");
  uint32_t n;
  napi_get_array_length(env, argv[2], &n);
  if (n > MAX_IOV) THROW_RANGE(env, "faultline_fuse: dataV() with %u buffers (at most %d)", n, MAX_IOV);
  struct iovec iov[MAX_IOV];
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || !view_bytes(env, v, &iov[i].iov_base, &iov[i].iov_len))
      THROW_TYPE(env, "faultline_fuse: dataV(): element %u is not a Buffer/Uint8Array", i);
    if (!iov[i].iov_base) iov[i].iov_base = (void *)"";
    total += iov[i].iov_len;
  }
  uint32_t size;
  int op;
  int r = peek(env, s, id, OPBIT(OP_READ) | OPBIT(OP_READDIR) | OPBIT(OP_READDIRPLUS), "dataV()", &op, &size, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  if (total > size) THROW_RANGE(env, "faultline_fuse: dataV() of %zu bytes exceeds the %u bytes %s asked for", total, size, op_names[op]);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  if (n == 0) fuse_reply_buf(req, "", 0);
  else fuse_reply_iov(req, iov, (int)n);
  return mk_bool(env, true);
}

/* replyStatfs(handle, id) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(2);
  int r = peek(env, s, id, OPBIT(OP_STATFS), "statfs()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  const double *x = s->reply_scratch + R_STATFS;
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = (unsigned long)d2u(x[0]);
  st.f_frsize = (unsigned long)d2u(x[1]);
  st.f_blocks = (fsblkcnt_t)d2u(x[2]);
  st.f_bfree = (fsblkcnt_t)d2u(x[3]);
  st.f_bavail = (fsblkcnt_t)d2u(x[4]);
  st.f_files = (fsfilcnt_t)d2u(x[5]);
  st.f_ffree = (fsfilcnt_t)d2u(x[6]);
  st.f_favail = (fsfilcnt_t)d2u(x[7]);
  st.f_fsid = (unsigned long)d2u(x[8]);
  st.f_flag = (unsigned long)d2u(x[9]);
  st.f_namemax = (unsigned long)d2u(x[10]);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_statfs(req, &st);
  return mk_bool(env, true);
}

/* replyLseek(handle, id, off) */
static napi_value js_reply_lseek(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double off;
  if (!get_f64(env, argv[2], &off)) return NULL;
  if (!(off >= 0)) THROW_RANGE(env, "faultline_fuse: lseek offset must be >= 0");
  int r = peek(env, s, id, OPBIT(OP_LSEEK), "offset()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_lseek(req, (off_t)d2i(off));
  return mk_bool(env, true);
}

/* replyXattr(handle, id, size): answer to a size query (request size 0). */
static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double n;
  if (!get_f64(env, argv[2], &n)) return NULL;
  if (!(n >= 0)) THROW_RANGE(env, "faultline_fuse: xattr size must be >= 0");
  int r = peek(env, s, id, OPBIT(OP_GETXATTR) | OPBIT(OP_LISTXATTR), "size()", NULL, NULL, NULL);
  if (r < 0) return NULL;
  if (r == 0) return mk_bool(env, false);
  fuse_req_t req = take(s, id);
  if (!req) return mk_bool(env, false);
  fuse_reply_xattr(req, (size_t)d2u(n));
  return mk_bool(env, true);
}

/* replyDir(handle, id, plus, names: string[], nums: Float64Array, count) → entries sent, or -1
 * if the reply was dropped (watchdog / closed). Entries that do not fit in the requested size
 * are not sent; the return value says how many were. */
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(6);
  bool plus;
  uint32_t count;
  if (napi_get_value_bool(env, argv[2], &plus) != napi_ok) THROW_TYPE(env, "faultline_fuse: plus must be a boolean");
  if (napi_get_value_uint32(env, argv[5], &count) != napi_ok) THROW_TYPE(env, "faultline_fuse: bad count");
  bool is_arr;
  napi_is_array(env, argv[3], &is_arr);
  if (!is_arr) THROW_TYPE(env, "faultline_fuse: names must be an array");
  napi_typedarray_type tt;
  size_t nnums;
  void *nd;
  napi_value ab;
  size_t off;
  bool is_ta;
  napi_is_typedarray(env, argv[4], &is_ta);
  if (!is_ta) THROW_TYPE(env, "faultline_fuse: nums must be a Float64Array");
  napi_get_typedarray_info(env, argv[4], &tt, &nnums, &nd, &ab, &off);
  if (tt != napi_float64_array) THROW_TYPE(env, "faultline_fuse: nums must be a Float64Array");
  size_t stride = plus ? DIRPLUS_STRIDE : DIR_STRIDE;
  if ((size_t)count * stride > nnums) THROW_RANGE(env, "faultline_fuse: nums too short for %u entries", count);
  const double *nums = nd;

  uint32_t size;
  fuse_req_t req;
  int r = peek(env, s, id, plus ? OPBIT(OP_READDIRPLUS) : OPBIT(OP_READDIR), plus ? "entries() (readdirplus)" : "entries() (readdir)",
               NULL, &size, &req);
  if (r < 0) return NULL;
  if (r == 0) {
    napi_value v;
    napi_create_int32(env, -1, &v);
    return v;
  }
  char *buf = malloc(size ? size : 1);
  if (!buf) THROW(env, "faultline_fuse: out of memory");
  size_t pos = 0;
  uint32_t n = 0;
  char name[1100];
  for (uint32_t i = 0; i < count; i++) {
    napi_value nv;
    size_t nlen;
    if (napi_get_element(env, argv[3], i, &nv) != napi_ok ||
        napi_get_value_string_utf8(env, nv, name, sizeof name, &nlen) != napi_ok) {
      free(buf);
      THROW_TYPE(env, "faultline_fuse: entry %u: name must be a string", i);
    }
    if (nlen == 0 || nlen >= 1024 || memchr(name, '/', nlen)) {
      free(buf);
      THROW_RANGE(env, "faultline_fuse: entry %u: bad name (empty, too long or contains '/')", i);
    }
    const double *e = nums + (size_t)i * stride;
    size_t need;
    if (plus) {
      struct fuse_entry_param ep;
      memset(&ep, 0, sizeof ep);
      ep.ino = (fuse_ino_t)d2u(e[1]);
      ep.generation = d2u(e[2]);
      ep.attr_timeout = d2timeout(e[3]);
      ep.entry_timeout = d2timeout(e[4]);
      fill_stat(&ep.attr, e + 5);
      ep.attr.st_ino = ep.ino;
      need = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &ep, (off_t)d2i(e[0]));
    } else {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = (ino_t)d2u(e[0]);
      st.st_mode = (mode_t)d2u(e[1]);
      need = fuse_add_direntry(req, buf + pos, size - pos, name, &st, (off_t)d2i(e[2]));
    }
    if (need > size - pos) break;
    pos += need;
    n++;
  }
  req = take(s, id);
  napi_value v;
  if (req) {
    fuse_reply_buf(req, buf, pos);
    napi_create_uint32(env, n, &v);
  } else {
    napi_create_int32(env, -1, &v);
  }
  free(buf);
  return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Notifications: queued to the notifier thread; return a Promise<number> (0 or -errno).         */

static napi_value enqueue_notify(napi_env env, session_t *s, nitem_t *it) {
  napi_value promise;
  if (napi_create_promise(env, &it->deferred, &promise) != napi_ok) {
    free(it->name);
    free(it->data);
    free(it);
    THROW(env, "faultline_fuse: cannot create promise");
  }
  it->h.kind = EVP_NOTIFY;
  pthread_mutex_lock(&s->nmu);
  bool ok = s->notify_started && !s->n_stop && !atomic_load(&s->torn_down);
  if (ok) {
    it->next = NULL;
    if (s->nq_tail) s->nq_tail->next = it; else s->nq_head = it;
    s->nq_tail = it;
    s->n_pending++;
    pthread_cond_signal(&s->ncv);
  }
  pthread_mutex_unlock(&s->nmu);
  if (!ok) {
    napi_value rc;
    napi_create_int32(env, -ENOTCONN, &rc);
    napi_resolve_deferred(env, it->deferred, rc);
    free(it->name);
    free(it->data);
    free(it);
  }
  return promise;
}

/* notifyInvalInode(handle, ino, off, len) */
static napi_value js_notify_inval_inode(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  if (argc < 4) THROW_TYPE(env, "faultline_fuse: expected 4 arguments");
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  double ino, off, len;
  if (!get_f64(env, argv[1], &ino) || !get_f64(env, argv[2], &off) || !get_f64(env, argv[3], &len)) return NULL;
  if (!(ino >= 1)) THROW_RANGE(env, "faultline_fuse: bad ino");
  nitem_t *it = calloc(1, sizeof *it);
  if (!it) THROW(env, "faultline_fuse: out of memory");
  it->kind = 1;
  it->ino = d2u(ino);
  it->off = d2i(off);
  it->len = d2i(len);
  return enqueue_notify(env, s, it);
}

/* notifyInvalEntry(handle, parent, name) */
static napi_value js_notify_inval_entry(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  if (argc < 3) THROW_TYPE(env, "faultline_fuse: expected 3 arguments");
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  double parent;
  if (!get_f64(env, argv[1], &parent)) return NULL;
  if (!(parent >= 1)) THROW_RANGE(env, "faultline_fuse: bad parent ino");
  size_t len;
  if (napi_get_value_string_utf8(env, argv[2], NULL, 0, &len) != napi_ok) THROW_TYPE(env, "faultline_fuse: name must be a string");
  if (len == 0 || len >= 1024) THROW_RANGE(env, "faultline_fuse: bad name length");
  nitem_t *it = calloc(1, sizeof *it);
  if (!it) THROW(env, "faultline_fuse: out of memory");
  it->name = malloc(len + 1);
  if (!it->name) { free(it); THROW(env, "faultline_fuse: out of memory"); }
  napi_get_value_string_utf8(env, argv[2], it->name, len + 1, NULL);
  it->namelen = len;
  it->kind = 2;
  it->ino = d2u(parent);
  return enqueue_notify(env, s, it);
}

/* notifyStore(handle, ino, off, data) — data is copied. */
static napi_value js_notify_store(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  if (argc < 4) THROW_TYPE(env, "faultline_fuse: expected 4 arguments");
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  double ino, off;
  if (!get_f64(env, argv[1], &ino) || !get_f64(env, argv[2], &off)) return NULL;
  if (!(ino >= 1) || !(off >= 0)) THROW_RANGE(env, "faultline_fuse: bad ino or offset");
  bool is_ta;
  napi_is_typedarray(env, argv[3], &is_ta);
  if (!is_ta) THROW_TYPE(env, "faultline_fuse: notifyStore data must be a Uint8Array");
  napi_typedarray_type tt;
  size_t n, boff;
  void *src;
  napi_value ab;
  napi_get_typedarray_info(env, argv[3], &tt, &n, &src, &ab, &boff);
  if (tt != napi_uint8_array && tt != napi_int8_array && tt != napi_uint8_clamped_array)
    THROW_TYPE(env, "faultline_fuse: notifyStore data must be a Uint8Array");
  nitem_t *it = calloc(1, sizeof *it);
  if (!it) THROW(env, "faultline_fuse: out of memory");
  it->data = malloc(n ? n : 1);
  if (!it->data) { free(it); THROW(env, "faultline_fuse: out of memory"); }
  if (n) memcpy(it->data, src, n);
  it->datalen = n;
  it->kind = 3;
  it->ino = d2u(ino);
  it->off = d2i(off);
  return enqueue_notify(env, s, it);
}

/* ------------------------------------------------------------------------------------------ */
/* mount / unmount / destroy / info                                                             */

static bool prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return false;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}

static bool prop_bool(napi_env env, napi_value obj, const char *key, bool dflt) {
  napi_value v;
  bool b = dflt;
  if (prop(env, obj, key, &v)) napi_get_value_bool(env, v, &b);
  return b;
}

static double prop_num(napi_env env, napi_value obj, const char *key, double dflt) {
  napi_value v;
  double d = dflt;
  if (prop(env, obj, key, &v)) napi_get_value_double(env, v, &d);
  return d;
}

static char *prop_str(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  if (!prop(env, obj, key, &v)) return NULL;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, NULL);
  return s;
}

static bool get_f64_array(napi_env env, napi_value v, double **out, size_t *len) {
  bool is_ta;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return false;
  napi_typedarray_type tt;
  void *d;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &tt, len, &d, &ab, &off);
  if (tt != napi_float64_array) return false;
  *out = d;
  return true;
}

/* Set FD_CLOEXEC on descriptors opened during fuse_session_mount (libfuse 3.14 leaves the
 * auto_unmount socket to fusermount3 inheritable; a child of ours holding it would keep
 * fusermount3 from unmounting after we die). */
static void snapshot_fds(uint8_t *bits, size_t nbits) {
  memset(bits, 0, nbits / 8);
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    long fd = strtol(de->d_name, NULL, 10);
    if (fd >= 0 && (size_t)fd < nbits) bits[fd / 8] |= (uint8_t)(1u << (fd % 8));
  }
  closedir(d);
}

static void cloexec_new_fds(session_t *s, const uint8_t *before, size_t nbits) {
  int fuse_fd = fuse_session_fd(s->se);
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int self = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
    long fd = strtol(de->d_name, NULL, 10);
    if (fd < 0 || fd == self) continue;
    if ((size_t)fd < nbits && (before[fd / 8] & (1u << (fd % 8)))) continue;
    int fl = fcntl((int)fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
    struct stat st;
    if (fd != fuse_fd && s->n_aux < 4 && fstat((int)fd, &st) == 0 && S_ISSOCK(st.st_mode))
      s->aux_fds[s->n_aux++] = (int)fd;
  }
  closedir(d);
}

/* mount(config) → handle. config: { mountpoint, options (comma list for -o), debug, opsMask,
 * asyncRead, writebackCache, autoInvalData, explicitInvalData, atomicOTrunc, parallelDirops,
 * directIoAllowMmap, maxWrite, maxReadahead, maxBackground, congestionThreshold, timeoutMs,
 * onRequest, onEvent, reqScratch, replyScratch } */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  if (argc < 1) THROW_TYPE(env, "faultline_fuse: mount(config) needs a config object");
  napi_value cfg = argv[0];
  napi_value on_request, on_event, req_scr, rep_scr;
  if (!prop(env, cfg, "onRequest", &on_request) || !prop(env, cfg, "onEvent", &on_event) ||
      !prop(env, cfg, "reqScratch", &req_scr) || !prop(env, cfg, "replyScratch", &rep_scr))
    THROW_TYPE(env, "faultline_fuse: mount config needs onRequest, onEvent, reqScratch, replyScratch");

  session_t *s = calloc(1, sizeof *s);
  if (!s) THROW(env, "faultline_fuse: out of memory");
  atomic_init(&s->refs, 1);
  s->env = env;
  s->efd = -1;
  s->conn_id = -1;
  s->free_head = -1;
  s->out_head = s->out_tail = -1;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->nmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wd_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_cond_init(&s->ncv, NULL);

  size_t rq_len;
  if (!get_f64_array(env, req_scr, &s->req_scratch, &rq_len) || rq_len < NARGS ||
      !get_f64_array(env, rep_scr, &s->reply_scratch, &s->reply_scratch_len) || s->reply_scratch_len < REPLY_SCRATCH_MIN) {
    session_unref(s);
    THROW_TYPE(env, "faultline_fuse: reqScratch/replyScratch must be Float64Arrays (>= %d / %d)", NARGS, REPLY_SCRATCH_MIN);
  }
  s->mountpoint = prop_str(env, cfg, "mountpoint");
  if (!s->mountpoint || s->mountpoint[0] != '/') {
    session_unref(s);
    THROW_TYPE(env, "faultline_fuse: mountpoint must be an absolute path");
  }
  char *mopts = prop_str(env, cfg, "options");
  bool debug = prop_bool(env, cfg, "debug", false);
  uint32_t ops_mask = (uint32_t)d2u(prop_num(env, cfg, "opsMask", 0));
  s->opts.async_read = prop_bool(env, cfg, "asyncRead", true);
  s->opts.writeback_cache = prop_bool(env, cfg, "writebackCache", false);
  s->opts.auto_inval_data = prop_bool(env, cfg, "autoInvalData", false);
  s->opts.explicit_inval_data = prop_bool(env, cfg, "explicitInvalData", false);
  s->opts.atomic_o_trunc = prop_bool(env, cfg, "atomicOTrunc", false);
  s->opts.parallel_dirops = prop_bool(env, cfg, "parallelDirops", true);
  s->opts.direct_io_allow_mmap = prop_bool(env, cfg, "directIoAllowMmap", false);
  s->opts.max_write = (uint32_t)d2u(prop_num(env, cfg, "maxWrite", 0));
  double mra = prop_num(env, cfg, "maxReadahead", -1);
  s->opts.has_max_readahead = mra >= 0;
  s->opts.max_readahead = mra >= 0 ? (uint32_t)d2u(mra) : 0;
  s->opts.max_background = (uint32_t)d2u(prop_num(env, cfg, "maxBackground", 0));
  s->opts.congestion_threshold = (uint32_t)d2u(prop_num(env, cfg, "congestionThreshold", 0));
  s->uv_mode = prop_bool(env, cfg, "uvLoop", false);
  double tmo = prop_num(env, cfg, "timeoutMs", 30000);
  s->timeout_ns = (tmo > 0 && tmo < 1e12) ? (uint64_t)(tmo * 1e6) : 0;

  s->slots = calloc(NSLOTS, sizeof(slot_t));
  if (!s->slots) {
    free(mopts);
    session_unref(s);
    THROW(env, "faultline_fuse: out of memory");
  }
  s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  /* JS references and the threadsafe function. */
  napi_create_reference(env, on_request, 1, &s->on_request);
  napi_create_reference(env, on_event, 1, &s->on_event);
  napi_create_reference(env, req_scr, 1, &s->req_scratch_ref);
  napi_create_reference(env, rep_scr, 1, &s->reply_scratch_ref);
  napi_value rname;
  napi_create_string_utf8(env, "faultline_fuse", NAPI_AUTO_LENGTH, &rname);
  atomic_fetch_add(&s->refs, 1); /* owned by the tsfn */
  if (napi_create_threadsafe_function(env, NULL, NULL, rname, 0, 1, s, tsfn_finalize, s, call_js, &s->tsfn) != napi_ok) {
    atomic_fetch_sub(&s->refs, 1);
    napi_delete_reference(env, s->on_request);
    napi_delete_reference(env, s->on_event);
    napi_delete_reference(env, s->req_scratch_ref);
    napi_delete_reference(env, s->reply_scratch_ref);
    free(mopts);
    session_unref(s);
    THROW(env, "faultline_fuse: cannot create threadsafe function");
  }

  /* Low-level ops: only those JS implements (libfuse's defaults answer the rest), plus
   * fallocate always (the TS default answers EOPNOTSUPP, never the sticky ENOSYS). */
  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.init = ll_init;
  ops.destroy = ll_destroy;
#define OPT_OP(bit, field, fn) if (ops_mask & OPBIT(bit)) ops.field = fn
  OPT_OP(OP_LOOKUP, lookup, ll_lookup);
  if (ops_mask & OPBIT(OP_FORGET)) { ops.forget = ll_forget; ops.forget_multi = ll_forget_multi; }
  OPT_OP(OP_GETATTR, getattr, ll_getattr);
  OPT_OP(OP_SETATTR, setattr, ll_setattr);
  OPT_OP(OP_READLINK, readlink, ll_readlink);
  OPT_OP(OP_MKNOD, mknod, ll_mknod);
  OPT_OP(OP_MKDIR, mkdir, ll_mkdir);
  OPT_OP(OP_UNLINK, unlink, ll_unlink);
  OPT_OP(OP_RMDIR, rmdir, ll_rmdir);
  OPT_OP(OP_SYMLINK, symlink, ll_symlink);
  OPT_OP(OP_RENAME, rename, ll_rename);
  OPT_OP(OP_LINK, link, ll_link);
  OPT_OP(OP_OPEN, open, ll_open);
  OPT_OP(OP_READ, read, ll_read);
  OPT_OP(OP_WRITE, write, ll_write);
  OPT_OP(OP_FLUSH, flush, ll_flush);
  OPT_OP(OP_RELEASE, release, ll_release);
  OPT_OP(OP_FSYNC, fsync, ll_fsync);
  OPT_OP(OP_OPENDIR, opendir, ll_opendir);
  OPT_OP(OP_READDIR, readdir, ll_readdir);
  OPT_OP(OP_READDIRPLUS, readdirplus, ll_readdirplus);
  OPT_OP(OP_RELEASEDIR, releasedir, ll_releasedir);
  OPT_OP(OP_FSYNCDIR, fsyncdir, ll_fsyncdir);
  OPT_OP(OP_STATFS, statfs, ll_statfs);
  OPT_OP(OP_CREATE, create, ll_create);
  ops.fallocate = ll_fallocate;
  OPT_OP(OP_LSEEK, lseek, ll_lseek);
  OPT_OP(OP_ACCESS, access, ll_access);
  OPT_OP(OP_GETXATTR, getxattr, ll_getxattr);
  OPT_OP(OP_LISTXATTR, listxattr, ll_listxattr);
#undef OPT_OP

  char *fargv[4];
  int fargc = 0;
  fargv[fargc++] = (char *)"faultline";
  if (mopts && *mopts) {
    fargv[fargc++] = (char *)"-o";
    fargv[fargc++] = mopts;
  }
  if (debug) fargv[fargc++] = (char *)"-d";
  struct fuse_args args = FUSE_ARGS_INIT(fargc, fargv);

  pthread_mutex_lock(&g_log_mu);
  g_log_last[0] = 0;
  pthread_mutex_unlock(&g_log_mu);

  char err[1400] = "";
  s->se = fuse_session_new(&args, &ops, sizeof ops, s);
  fuse_opt_free_args(&args);
  if (!s->se) {
    snprintf(err, sizeof err, "faultline_fuse: fuse_session_new failed (bad mount options \"%.900s\"?)", mopts ? mopts : "");
  } else {
    static uint8_t before[65536 / 8];
    snapshot_fds(before, sizeof before * 8);
    if (fuse_session_mount(s->se, s->mountpoint) != 0) {
      snprintf(err, sizeof err, "faultline_fuse: fuse_session_mount(%.900s) failed", s->mountpoint);
      fuse_session_destroy(s->se);
      s->se = NULL;
    } else {
      cloexec_new_fds(s, before, sizeof before * 8);
    }
  }
  free(mopts);
  if (!s->se) {
    pthread_mutex_lock(&g_log_mu);
    if (g_log_last[0]) {
      strncat(err, ": ", sizeof err - strlen(err) - 1);
      strncat(err, g_log_last, sizeof err - strlen(err) - 1);
    }
    pthread_mutex_unlock(&g_log_mu);
    atomic_store(&s->torn_down, true);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    session_unref(s);
    napi_throw_error(env, "ERR_FUSE_MOUNT", err);
    return NULL;
  }

  int fd = fuse_session_fd(s->se);
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  {
    unsigned maj, min;
    char fs[128];
    if (find_mount(s->mountpoint, &maj, &min, fs, sizeof fs) && maj == 0 && strncmp(fs, "fuse", 4) == 0)
      s->conn_id = (int)min;
  }

  int rc = 0;
  if (s->uv_mode) {
    uv_loop_t *loop = NULL;
    napi_value resource;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop ||
        napi_create_object(env, &resource) != napi_ok ||
        napi_create_reference(env, resource, 1, &s->resource_ref) != napi_ok ||
        napi_async_init(env, resource, rname, &s->actx) != napi_ok) {
      rc = EINVAL;
    } else {
      int ur = uv_poll_init(loop, &s->poll, fd);
      if (ur == 0) {
        s->poll.data = s;
        s->poll_inited = true;
        atomic_fetch_add(&s->refs, 1); /* owned by the poll handle until poll_close_cb */
        ur = uv_poll_start(&s->poll, UV_READABLE, on_fuse_readable);
      }
      if (ur != 0) {
        flog("faultline-fuse: uv_poll on /dev/fuse: %s", uv_strerror(ur));
        rc = EIO;
      } else {
        s->loop_started = true;
      }
    }
  } else {
    rc = start_thread(&s->loop_thr, loop_main, s);
    if (rc == 0) s->loop_started = true;
  }
  if (rc == 0) {
    rc = start_thread(&s->notify_thr, notify_main, s);
    if (rc == 0) s->notify_started = true;
  }
  if (rc == 0 && s->timeout_ns) {
    rc = start_thread(&s->wd_thr, wd_main, s);
    if (rc == 0) s->wd_started = true;
  }
  if (rc != 0) {
    teardown(s, false);
    session_unref(s);
    THROW(env, "faultline_fuse: cannot start threads: %s", strerror(rc));
  }

  napi_add_env_cleanup_hook(env, cleanup_hook, s);
  s->hook_added = true;

  napi_value handle;
  if (napi_create_external(env, s, handle_finalize, NULL, &handle) != napi_ok) {
    teardown(s, false);
    session_unref(s);
    THROW(env, "faultline_fuse: cannot create handle");
  }
  return handle;
}

/* unmount(handle): asynchronous. Detaches the mount on a helper thread while the loop keeps
 * serving; the loop then ends and posts LOOP_END. Returns false if already ended/unmounting. */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  if (s->unmount_started || atomic_load(&s->torn_down) || !s->loop_started) return mk_bool(env, false);
  if (atomic_load(&s->loop_ended)) return mk_bool(env, false);
  int rc = start_thread(&s->unmount_thr, unmount_main, s);
  if (rc != 0) THROW(env, "faultline_fuse: cannot start unmount thread: %s", strerror(rc));
  s->unmount_started = true;
  return mk_bool(env, true);
}

/* destroy(handle) → number of outstanding requests failed with EIO. Synchronous; call after
 * LOOP_END (it also works before: it then stops the loop and aborts the connection). */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  uint32_t failed = teardown(s, false);
  napi_value v;
  napi_create_uint32(env, failed, &v);
  return v;
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, key, x);
}

static napi_value js_init_info(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  napi_value o;
  if (!s->init.done) {
    napi_get_null(env, &o);
    return o;
  }
  napi_create_object(env, &o);
  set_num(env, o, "protoMajor", s->init.proto_major);
  set_num(env, o, "protoMinor", s->init.proto_minor);
  set_num(env, o, "capable", (double)s->init.capable);
  set_num(env, o, "wantDefault", (double)s->init.want_default);
  set_num(env, o, "want", (double)s->init.want);
  set_num(env, o, "maxWrite", s->init.max_write);
  set_num(env, o, "maxRead", s->init.max_read);
  set_num(env, o, "maxReadahead", s->init.max_readahead);
  set_num(env, o, "maxBackground", s->init.max_background);
  set_num(env, o, "congestionThreshold", s->init.congestion_threshold);
  set_num(env, o, "timeGran", s->init.time_gran);
  set_num(env, o, "connId", s->conn_id);
  return o;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  session_t *s = get_session(env, argv[0]);
  if (!s) return NULL;
  pthread_mutex_lock(&s->mu);
  uint32_t outstanding = s->outstanding;
  pthread_mutex_unlock(&s->mu);
  pthread_mutex_lock(&s->nmu);
  uint32_t npend = s->n_pending;
  pthread_mutex_unlock(&s->nmu);
  napi_value o;
  napi_create_object(env, &o);
  set_num(env, o, "outstanding", outstanding);
  set_num(env, o, "requests", (double)atomic_load(&s->c_requests));
  set_num(env, o, "forgets", (double)atomic_load(&s->c_forgets));
  set_num(env, o, "interrupts", (double)atomic_load(&s->c_interrupts));
  set_num(env, o, "watchdogExpired", (double)atomic_load(&s->c_expired));
  set_num(env, o, "lateReplies", (double)atomic_load(&s->c_late));
  set_num(env, o, "staleEvents", (double)atomic_load(&s->c_stale));
  set_num(env, o, "tableFull", (double)atomic_load(&s->c_table_full));
  set_num(env, o, "notifySent", (double)atomic_load(&s->c_notify_sent));
  set_num(env, o, "notifyPending", npend);
  return o;
}

static napi_value js_libfuse_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  char buf[64];
  snprintf(buf, sizeof buf, "%s (built against %d.%d)", fuse_pkgversion(), FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION);
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value js_features(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o;
  napi_create_object(env, &o);
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 15)
  napi_value t = mk_bool(env, true);
#else
  napi_value t = mk_bool(env, false);
#endif
  napi_set_named_property(env, o, "parallelDirectWrites", t);
#ifdef FUSE_CAP_DIRECT_IO_ALLOW_MMAP
  napi_set_named_property(env, o, "directIoAllowMmap", mk_bool(env, true));
#else
  napi_set_named_property(env, o, "directIoAllowMmap", mk_bool(env, false));
#endif
  return o;
}

static napi_value Init(napi_env env, napi_value exports) {
  fuse_set_log_func(fuse_log_cb);
  napi_property_descriptor props[] = {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
    FN("mount", js_mount),
    FN("unmount", js_unmount),
    FN("destroy", js_destroy),
    FN("initInfo", js_init_info),
    FN("stats", js_stats),
    FN("libfuseVersion", js_libfuse_version),
    FN("features", js_features),
    FN("replyErr", js_reply_err),
    FN("replyEntry", js_reply_entry),
    FN("replyCreate", js_reply_create),
    FN("replyAttr", js_reply_attr),
    FN("replyReadlink", js_reply_readlink),
    FN("replyOpen", js_reply_open),
    FN("replyWrite", js_reply_write),
    FN("replyBuf", js_reply_buf),
    FN("replyIov", js_reply_iov),
    FN("replyStatfs", js_reply_statfs),
    FN("replyLseek", js_reply_lseek),
    FN("replyXattr", js_reply_xattr),
    FN("replyDir", js_reply_dir),
    FN("notifyInvalInode", js_notify_inval_inode),
    FN("notifyInvalEntry", js_notify_inval_entry),
    FN("notifyStore", js_notify_store),
#undef FN
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
