/* faultline native-tests: shared library (patterns, clock, event logs, oracle, SIGBUS guard,
 * watchdog, actors, JSON report). Specification: /work/shared/notes/oracle.md.
 * Every departure from that note is marked "DEPARTURE" in the .c files and listed in README.md. */
#ifndef FL_H
#define FL_H

#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <sys/types.h>

#define FL_VERSION "1.0"
#define FL_SCHEMA 1

#define FL_INF UINT64_MAX  /* te of an in-flight operation */
#define FL_IDLE UINT64_MAX /* observer slot not observing */
#define FL_PAGE 4096u

/* ------------------------------------------------------------------ enums */

enum fl_evtype { EV_DATA = 1, EV_ZERO = 2, EV_ZAP = 3 };
enum fl_str { ST_PENDING = 0, ST_STRONG, ST_WEAK, ST_NOOP, ST_EPHEMERAL };

/* operation kinds (event origins). Names in fl_op_name(). */
enum fl_op {
  OP_INIT = 0, OP_PWRITE, OP_MSTORE, OP_PUNCH, OP_ZERO, OP_TRUNC, OP_EXTEND,
  OP_SPUNCH, OP_SZERO, OP_STRUNC, OP_SEXTEND, OP_SWRITE, OP__N
};

/* outcome of an operation, given to fl_end() */
enum fl_outcome {
  OUT_OK = 0,      /* syscall / access completed fully */
  OUT_FAILED,      /* failed or partial: may or may not have taken effect (WEAK) */
  OUT_NOTDONE,     /* certainly did nothing (EOPNOTSUPP, or SIGBUS at the unit start) (NOOP) */
  OUT_SIGBUS       /* mmap store interrupted by SIGBUS after the unit start (WEAK) */
};

/* observation path */
enum fl_via { VIA_MMAP = 0, VIA_PREAD, VIA_DIRECT, VIA_STORE, VIA_FINAL_PREAD, VIA_FINAL_MMAP,
  VIA_FINAL_FADVISE, VIA_FINAL_DIRECT, VIA_PAGEMAP, VIA_SIZE, VIA_WATCHDOG, VIA_SYSCALL, VIA__N };

/* violation kinds */
enum fl_vkind {
  V_STALE = 0, V_LOST_WRITE, V_SIGBUS_INSIDE_EOF, V_SHORT_READ_INSIDE_EOF, V_TORN_ILLEGAL,
  V_GARBAGE, V_POST_EOF_DATA, V_FINAL_MISMATCH, V_HANG, V_MISSING_SIGBUS, V_IO_ERROR, V__N
};

/* op counters */
enum fl_opk {
  K_MMAP_CYCLES = 0, K_MMAP_READS, K_MMAP_STORES, K_PREAD_UNITS, K_PREADS, K_DIRECT_READS,
  K_DIRECT_UNITS, K_PUNCH, K_ZERO, K_TRUNC_DOWN, K_TRUNC_UP, K_PWRITE, K_PWRITE_UNITS, K_FADVISE,
  K_MADVISE, K_SPUNCH, K_SZERO, K_STRUNC, K_SWRITE, K_INJECTED, K__N
};
/* check counters */
enum fl_chk {
  C_UNIT_READS = 0, C_UNIT_READS_MMAP, C_UNIT_READS_PREAD, C_UNIT_READS_DIRECT, C_STORE_CHECKS,
  C_SIGBUS_CHECKS, C_SHORT_CHECKS, C_FINAL_UNITS, C_PAGEMAP_CHECKS, C__N
};
/* legal-but-interesting counters */
enum fl_leg {
  L_SIGBUS_READ = 0, L_SIGBUS_WRITE, L_TORN_READS, L_POST_EOF_DATA, L_SHORT_READS, L_PARTIAL_STORES,
  L_CACHED_BEYOND_EOF, L_EPHEMERAL_STORES, L_DIRECT_EIO, L__N
};
/* skipped-check counters */
enum fl_skip { S_LOG_OVERFLOW = 0, S_SIZE_LOG_OVERFLOW, S_CANDIDATE_OVERFLOW, S_STRENGTH_UNKNOWN, S__N };

/* judge results */
enum fl_jres { J_OK = 0, J_OK_TORN, J_POST_EOF, J_SKIP, J_VIOL };

const char *fl_op_name(int op);
const char *fl_via_name(int via);
const char *fl_vkind_name(int k);
const char *fl_opk_name(int k);
const char *fl_chk_name(int k);
const char *fl_leg_name(int k);
const char *fl_skip_name(int k);
const char *fl_str_name(int s);
const char *fl_evtype_name(int t);

/* ------------------------------------------------------------------ util */

typedef struct { uint64_t s[4]; } fl_rng;
void fl_rng_seed(fl_rng *r, uint64_t seed);
uint64_t fl_rng_next(fl_rng *r);
uint64_t fl_rng_below(fl_rng *r, uint64_t n); /* [0, n) ; n > 0 */
int fl_rng_chance(fl_rng *r, double p);
uint64_t fl_splitmix64(uint64_t *x);

uint64_t fl_now_ns(void); /* CLOCK_MONOTONIC */
double fl_now_s(void);
void fl_sleep_us(unsigned us);
uint64_t fl_fnv1a64(const void *p, size_t n);
size_t fl_base64(const uint8_t *in, size_t n, char *out); /* out needs 4*ceil(n/3)+1 */
int fl_parse_u64(const char *s, uint64_t *out); /* accepts k/m/g suffixes (binary) */
int fl_parse_double(const char *s, double *out);
int fl_mkdirs_for(const char *path);
uint64_t fl_round_up(uint64_t x, uint64_t a);
uint64_t fl_round_down(uint64_t x, uint64_t a);

/* environment of the target (kernel, filesystem type, mount options) */
typedef struct {
  char kernel[128], kernel_version[256], machine[80];
  char target[4096], target_dir[4096];
  char fstype[64], statfs_name[64], mountpoint[4096], mount_source[1024];
  char mount_options[1024], super_options[1024];
  unsigned long f_type;
  int nproc;
} fl_env;
int fl_env_probe(fl_env *e, const char *target_dir); /* 0 ok */
int fl_fs_keeps_post_eof(const fl_env *e);             /* tmpfs/ramfs/fuse: 1 */
int fl_target_path(const char *target, const char *program, char *path, size_t pn, char *dir, size_t dn);

/* ------------------------------------------------------------------ patterns */

#define FL_HDR 20
/* pattern(u, g): header {magic "FLT!", run id, unit, gen} + hash bytes; every byte non-zero */
void fl_pattern_fill(uint8_t *buf, uint32_t usz, uint32_t run, uint64_t u, uint64_t g);
/* decode a header: 1 if the magic and the run id match and the digits are valid */
int fl_pattern_decode(const uint8_t *buf, uint32_t len, uint32_t run, uint64_t *u, uint64_t *g);
int fl_all_zero(const uint8_t *b, size_t n);

/* ------------------------------------------------------------------ events */

typedef struct {
  uint64_t ts, te; /* te == FL_INF while in flight */
  uint64_t gen;    /* EV_DATA */
  uint16_t actor;
  uint8_t type, str, op, pad[3];
} fl_event;

typedef struct {
  uint64_t ts, te, size;
  uint16_t actor;
  uint8_t op, str, pad[4];
} fl_sevent;

typedef struct {
  uint64_t gen, sup_ts, sup_te; /* a pruned DATA event and its first superseder */
  uint16_t sup_actor;
  uint8_t sup_op, pad[5];
} fl_grave;

#define FL_GRAVES 8
typedef struct {
  uint32_t n, gnext;
  uint64_t floor;   /* observations with rs <= floor are skipped (log overflow) */
  uint64_t lost_te; /* a not-yet-superseded event ending at lost_te was dropped (0: none) */
  fl_grave graves[FL_GRAVES];
} fl_ulog;

typedef struct {
  uint32_t n, pad;
  uint64_t floor;
  uint64_t lost_te;
} fl_slog;

/* ------------------------------------------------------------------ actors */

enum fl_role {
  R_MAIN = 0, R_MAPPER, R_PUNCHER, R_ZEROER, R_TRUNCATOR, R_WRITER, R_READER, R_DIRECT, R_CHURN,
  R_SERVER, R__N
};
const char *fl_role_name(int r);

#define FL_MAX_ACTORS 64
typedef struct {
  _Atomic uint64_t obs_lb;      /* lower bound of the rs / ts of this actor's in-flight operation */
  _Atomic uint64_t wd_start_ns; /* watchdog: start of the current operation (0 = idle) */
  _Atomic uint64_t wd_off, wd_len;
  _Atomic uint32_t wd_op; /* fl_wdop */
  int32_t role, idx, pid, used;
  _Atomic uint64_t ops[K__N], checks[C__N], legal[L__N], viol[V__N], stale_by[OP__N], skipped[S__N];
} fl_actor;

enum fl_wdop {
  W_NONE = 0, W_MMAP_CYCLE, W_MMAP_ACCESS, W_PREAD, W_PWRITE, W_PUNCH, W_ZERO, W_FTRUNCATE,
  W_FADVISE, W_MADVISE, W_DIRECT, W_SERVER_REQ, W_FINAL, W_LOCK, W__N
};
const char *fl_wdop_name(int w);

/* ------------------------------------------------------------------ violation samples */

#define FL_MAX_SAMPLES 64
#define FL_SAMPLE_LEGAL 6
typedef struct {
  uint8_t type, op, str, pad;
  uint16_t actor;
  uint64_t gen, ts, te;
} fl_srcdesc;

typedef struct {
  uint8_t kind, via, cls, has_sup;
  uint16_t actor;
  uint8_t sup_op, nlegal;
  uint16_t sup_actor;
  uint32_t unit;
  int32_t first_bad;
  uint64_t file_off, rs, re, sup_ts, sup_te;
  fl_srcdesc legal[FL_SAMPLE_LEGAL];
  char seen[128];
  char detail[384];
} fl_sample;

/* ------------------------------------------------------------------ oracle */

typedef struct fl_oracle {
  _Atomic uint64_t clock;
  _Atomic uint64_t gen;
  _Atomic int stop;    /* workers stop when set */
  _Atomic int aborted; /* set on HANG or a fatal error */
  pthread_mutex_t lock;       /* the log lock */
  pthread_mutex_t size_mutex; /* workload: serialises size changes and pwrites (FIFO, see below) */
  pthread_cond_t size_cond;
  uint64_t size_next, size_serving;
  pthread_rwlock_t store_punch; /* workload: optional exclusion of mmap stores and punches */
  pthread_mutex_t sample_lock;
  uint32_t usz, nunits, cap, scap, run;
  uint64_t fsize;          /* the file size the workload returns to */
  _Atomic uint64_t cur_size; /* modelled current size (changed under size_mutex) */
  int post_eof_allowed;
  int nactors;
  fl_actor actors[FL_MAX_ACTORS];
  _Atomic uint32_t nsamples; /* number of violations offered (may exceed FL_MAX_SAMPLES) */
  uint32_t nstored;
  fl_sample samples[FL_MAX_SAMPLES];
  /* pointers into the same shared region (valid after fork) */
  fl_ulog *ulogs;
  fl_event *events; /* nunits * cap */
  fl_slog *slog;
  fl_sevent *sevents; /* scap */
  size_t shm_size;
} fl_oracle;

/* Create the oracle in MAP_SHARED|MAP_ANONYMOUS memory (usable across fork).
 * cap: events per unit log (>= 8), scap: size log capacity. */
fl_oracle *fl_oracle_new(uint32_t usz, uint64_t fsize, uint32_t cap, uint32_t scap, uint32_t run);
void fl_oracle_free(fl_oracle *o);

static inline uint64_t fl_tick(fl_oracle *o) { return atomic_fetch_add(&o->clock, 1) + 1; }
static inline uint64_t fl_new_gen(fl_oracle *o) { return atomic_fetch_add(&o->gen, 1) + 1; }

int fl_actor_add(fl_oracle *o, int role, int idx); /* returns actor id, or -1 */

/* The workload's size mutex, FIFO (ticket) so a looping writer cannot starve the truncator. */
void fl_size_lock(fl_oracle *o);
void fl_size_unlock(fl_oracle *o);

/* Observer protocol: publish a lower bound of rs (or of an operation's ts), then tick. */
static inline uint64_t fl_obs_begin(fl_oracle *o, int actor) {
  atomic_store(&o->actors[actor].obs_lb, atomic_load(&o->clock));
  return fl_tick(o);
}
static inline void fl_publish(fl_oracle *o, int actor) {
  atomic_store(&o->actors[actor].obs_lb, atomic_load(&o->clock));
}
static inline void fl_obs_end(fl_oracle *o, int actor) { atomic_store(&o->actors[actor].obs_lb, FL_IDLE); }

/* operation description */
typedef struct {
  uint8_t op;
  uint16_t actor;
  uint32_t u0, n;        /* unit range of unit events (n may be 0) */
  const uint64_t *gens;  /* DATA ops: n generations */
  int resize;            /* size event */
  uint64_t old_size, new_size;
} fl_opspec;

/* Log the operation's intent and return its ts (taken inside the log's critical section).
 * ts_explicit != 0 is for unit tests (the clock is not ticked). The caller must have
 * published its lower bound (fl_publish) before. */
uint64_t fl_begin(fl_oracle *o, const fl_opspec *sp, uint64_t ts_explicit);
/* Complete it: te must be taken (fl_tick) right after the syscall / last access.
 * store_fault_off: for OUT_SIGBUS, offset of the fault in the unit. */
void fl_end(fl_oracle *o, const fl_opspec *sp, uint64_t ts, uint64_t te, int outcome);

/* per-thread judging context (scratch buffers) */
typedef struct fl_jctx fl_jctx;
fl_jctx *fl_jctx_new(fl_oracle *o);
void fl_jctx_free(fl_jctx *j);

/* Judge the content of unit u (len bytes from the unit start; len <= usz) read over [rs, re].
 * cls_out (optional): the classification (V_*) when J_VIOL; for final checks the caller
 * passes final=1 and the violation is counted as FINAL_MISMATCH with cls = classification. */
int fl_judge_content(fl_oracle *o, fl_jctx *j, int actor, uint32_t u, uint64_t rs, uint64_t re,
                     const uint8_t *b, uint32_t len, int via, int final);
/* SIGBUS at file offset fault_off (page = its page) during [rs, re]. is_store: count as write. */
int fl_judge_sigbus(fl_oracle *o, int actor, uint64_t fault_off, uint64_t rs, uint64_t re, int via,
                    int is_store);
/* A read at file offset off that returned up to end_off (< requested end) during [rs, re]. */
int fl_judge_short(fl_oracle *o, int actor, uint64_t off, uint64_t end_off, uint64_t rs, uint64_t re,
                   int via);
/* An access at page page_off completed without SIGBUS during [rs, re]: MISSING_SIGBUS if every
 * legal size was <= page_off. */
int fl_judge_no_sigbus(fl_oracle *o, int actor, uint64_t page_off, uint64_t rs, uint64_t re, int via);
/* legal size range over [rs, re]; returns 0, or -1 when the size log overflowed (skip) */
int fl_size_range(fl_oracle *o, uint64_t rs, uint64_t re, uint64_t *min, uint64_t *max);
/* The modelled final size (the latest size event). */
uint64_t fl_model_size(fl_oracle *o);
/* Number of legal sources of unit u for an observation at [rs, re] (for final checks). */
int fl_legal_count(fl_oracle *o, uint32_t u, uint64_t rs, uint64_t re);

/* record a violation that is not a content/SIGBUS verdict (HANG, IO_ERROR, pagemap, size...) */
/* Quiescent final check through a fresh read-only MAP_SHARED mapping of fd: every unit read under
 * the SIGBUS guard and judged (content, or SIGBUS against the size log). A SIGSEGV inside the
 * mapping is reported as IO_ERROR. buf holds at least usz bytes. Returns -1 if mmap failed. */
int fl_final_mmap_check(fl_oracle *o, fl_jctx *j, int actor, int fd, uint8_t *buf, uint64_t fsize, uint32_t usz,
                        uint32_t nunits);
void fl_violation(fl_oracle *o, int actor, int kind, int via, uint32_t unit, uint64_t file_off,
                  const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void fl_record_sample(fl_oracle *o, const fl_sample *s);

/* counters (owner-only increments, relaxed) */
static inline void fl_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
#define FL_OPS(o, a, k, n) fl_add(&(o)->actors[a].ops[k], (n))
#define FL_CHK(o, a, k, n) fl_add(&(o)->actors[a].checks[k], (n))
#define FL_LEG(o, a, k, n) fl_add(&(o)->actors[a].legal[k], (n))
#define FL_SKIP(o, a, k, n) fl_add(&(o)->actors[a].skipped[k], (n))
uint64_t fl_sum_ops(fl_oracle *o, int k);
uint64_t fl_sum_checks(fl_oracle *o, int k);
uint64_t fl_sum_legal(fl_oracle *o, int k);
uint64_t fl_sum_viol(fl_oracle *o, int k);
uint64_t fl_sum_skipped(fl_oracle *o, int k);
uint64_t fl_sum_stale_by(fl_oracle *o, int op);
uint64_t fl_total_violations(fl_oracle *o); /* POST_EOF_DATA included only when not allowed */

/* ------------------------------------------------------------------ SIGBUS guard */

void fl_guard_install(void);
/* Copy n bytes (ascending 8-byte volatile loads; n % 8 == 0) from a mapping. Returns 0, or the
 * signal number (SIGBUS / SIGSEGV) with *fault set to the faulting address. */
int fl_guarded_read(void *dst, const void *src, size_t n, uintptr_t *fault);
/* Store n bytes (ascending 8-byte volatile stores). Same return convention. */
int fl_guarded_write(void *dst, const void *src, size_t n, uintptr_t *fault);

/* ------------------------------------------------------------------ watchdog */

static inline void fl_wd_begin(fl_oracle *o, int a, int op, uint64_t off, uint64_t len) {
  fl_actor *x = &o->actors[a];
  atomic_store_explicit(&x->wd_op, (uint32_t)op, memory_order_relaxed);
  atomic_store_explicit(&x->wd_off, off, memory_order_relaxed);
  atomic_store_explicit(&x->wd_len, len, memory_order_relaxed);
  atomic_store_explicit(&x->wd_start_ns, fl_now_ns(), memory_order_release);
}
static inline void fl_wd_end(fl_oracle *o, int a) {
  atomic_store_explicit(&o->actors[a].wd_start_ns, 0, memory_order_release);
}

/* ------------------------------------------------------------------ JSON */

typedef struct {
  FILE *f;
  int depth;
  int first[64];
  int after_key;
} fl_json;
void fl_json_init(fl_json *j, FILE *f);
void fl_json_obj(fl_json *j);
void fl_json_end_obj(fl_json *j);
void fl_json_arr(fl_json *j);
void fl_json_end_arr(fl_json *j);
void fl_json_key(fl_json *j, const char *k);
void fl_json_str(fl_json *j, const char *s);
void fl_json_u64(fl_json *j, uint64_t v);
void fl_json_i64(fl_json *j, int64_t v);
void fl_json_dbl(fl_json *j, double v);
void fl_json_bool(fl_json *j, int v);
void fl_json_null(fl_json *j);
void fl_json_kstr(fl_json *j, const char *k, const char *s);
void fl_json_ku64(fl_json *j, const char *k, uint64_t v);
void fl_json_ki64(fl_json *j, const char *k, int64_t v);
void fl_json_kdbl(fl_json *j, const char *k, double v);
void fl_json_kbool(fl_json *j, const char *k, int v);

/* ------------------------------------------------------------------ program runtime */

/* config entries recorded for the report */
#define FL_MAX_CFG 96
#define FL_MAX_NOTES 32
#define FL_MAX_TL 2048
typedef struct {
  const char *program;
  uint64_t seed;
  double duration;      /* requested */
  double hang_timeout;  /* seconds */
  const char *json_path;
  int quiet;
  int procs;            /* -P */
  char argv_line[2048];
  /* filled by the program */
  int ncfg;
  struct { char key[48]; char val[256]; int is_num; } cfg[FL_MAX_CFG];
  int nnotes;
  char notes[FL_MAX_NOTES][256];
  int nroles_skipped;
  struct { char role[32]; char reason[224]; } roles_skipped[16];
  fl_env env;
  int env_ok;
  double t_start, t_end;
  const char *error; /* set: verdict "error" */
  char errbuf[512];
  int vacuous;
  char vacuous_why[256];
  const char *cleanup_path; /* removed by the watchdog before it exits (unless NULL) */
  /* timeline, sampled by the watchdog thread: cumulative ops and violations at t seconds after
   * t_start; the interval doubles when the buffer is full. first_violation_s < 0: none seen. */
  int ntl;
  double tl_interval;
  struct { double t; uint64_t ops, viol; } tl[FL_MAX_TL];
  double first_violation_s;
  int progress; /* FL_PROGRESS set: a progress line on stderr every sample */
  /* rates: per role / kind: computed from ops / (t_end - t_start) */
} fl_prog;

void fl_prog_init(fl_prog *p, const char *program, int argc, char **argv);
void fl_cfg_str(fl_prog *p, const char *k, const char *v);
void fl_cfg_num(fl_prog *p, const char *k, double v);
void fl_note(fl_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fl_role_skipped(fl_prog *p, const char *role, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fl_prog_error(fl_prog *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Compute the verdict, write the JSON file (if requested) and the human summary; return the exit
 * code: 0 clean, 1 violations, 2 error / vacuous. */
int fl_report(fl_prog *p, fl_oracle *o);
/* Write JSON to a FILE */
void fl_report_json(fl_prog *p, fl_oracle *o, FILE *f, const char *verdict, int code);

/* Watchdog: a thread that checks every actor's current operation; an operation older than
 * hang_timeout seconds is a HANG: it prints the pending operations, writes the report with the
 * HANG violation, kills the given child pids (if any) and exits the process with status 1. */
void fl_watchdog_start(fl_prog *p, fl_oracle *o);
void fl_watchdog_stop(void);
void fl_watchdog_set_children(const pid_t *pids, int n);
/* one check (used by the -P parent loop); returns 1 if a hang was found (and handled: exits) */
int fl_watchdog_check(fl_prog *p, fl_oracle *o);

/* Run `n` actors: threads (procs == 0) or forked processes (procs == 1). Each actor runs
 * fn(arg, actor_id) until o->stop. The caller sets o->stop after the duration; this helper does
 * that: it sleeps `duration` seconds (watching for hangs), sets stop, joins / reaps.
 * Returns 0, or -1 when a child process failed (p->error set). */
typedef void (*fl_actor_fn)(void *arg, int actor);
int fl_run_actors(fl_prog *p, fl_oracle *o, int n, const int *actor_ids, fl_actor_fn *fns,
                  void **args, double duration);

/* usage helpers */
int fl_common_opt(fl_prog *p, int c, const char *arg); /* 1 if handled */
#define FL_COMMON_LONGOPTS                                                           \
  {"help", no_argument, 0, 'h'}, {"seed", required_argument, 0, 's'},                  \
      {"duration", required_argument, 0, 'd'}, {"json", required_argument, 0, 'j'},    \
      {"quiet", no_argument, 0, 'q'}, {"hang-timeout", required_argument, 0, 1000}
#define FL_COMMON_USAGE                                                                  \
  "  -h, --help              this text\n"                                                  \
  "  -s, --seed N            random seed (default: time-based; printed)\n"                 \
  "  -d, --duration SEC      run time (fractions allowed)\n"                               \
  "  -j, --json FILE         write the JSON report (schema: native-tests/README.md)\n"     \
  "  -q, --quiet             only the verdict line on stdout\n"                            \
  "      --hang-timeout SEC  an operation stuck this long is a HANG (default 30)\n"

#endif
