/* Unit tests of the oracle on hand-built event histories (explicit timestamps). */
#include "fl.h"

#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static int failures, checks;
#define CHECK(cond, ...)                                               \
  do {                                                                 \
    checks++;                                                          \
    if (!(cond)) {                                                     \
      failures++;                                                      \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
      fprintf(stderr, __VA_ARGS__);                                    \
      fputc('\n', stderr);                                             \
    }                                                                  \
  } while (0)

enum { A_MAIN = 0, A_W = 1, A_R = 2, A_P = 3, A_T = 4 };
#define U 1024u
#define NU 8u /* 8 units of 1 KiB = 2 pages */
#define FS (U * NU)

static fl_oracle *mk(uint32_t usz, uint32_t nunits, uint32_t cap) {
  fl_oracle *o = fl_oracle_new(usz, (uint64_t)usz * nunits, cap, 16, 77);
  if (!o) {
    fprintf(stderr, "oracle_new failed\n");
    exit(2);
  }
  fl_actor_add(o, R_MAIN, 0);
  fl_actor_add(o, R_WRITER, 0);
  fl_actor_add(o, R_READER, 0);
  fl_actor_add(o, R_PUNCHER, 0);
  fl_actor_add(o, R_TRUNCATOR, 0);
  /* initial state: size FS and zeros at [1, 2] */
  fl_opspec sp = {.op = OP_INIT, .actor = A_MAIN, .u0 = 0, .n = nunits, .resize = 1, .old_size = 0,
                  .new_size = (uint64_t)usz * nunits};
  fl_begin(o, &sp, 1);
  fl_end(o, &sp, 1, 2, OUT_OK);
  atomic_store(&o->clock, 2);
  atomic_store(&o->gen, 1000000); /* generations used by the tests count as issued */
  return o;
}

static void set_clock(fl_oracle *o, uint64_t v) { atomic_store(&o->clock, v); }

/* a data op on n units starting at u with gens g, g+1, ... */
static void data_begin(fl_oracle *o, int op, int actor, uint32_t u, uint32_t n, uint64_t g, uint64_t ts) {
  uint64_t gens[64];
  for (uint32_t i = 0; i < n; i++) gens[i] = g + i;
  fl_opspec sp = {.op = (uint8_t)op, .actor = (uint16_t)actor, .u0 = u, .n = n, .gens = gens};
  fl_begin(o, &sp, ts);
  if (ts > atomic_load(&o->clock)) set_clock(o, ts);
}
static void data_end(fl_oracle *o, int op, int actor, uint32_t u, uint32_t n, uint64_t ts, uint64_t te, int out) {
  fl_opspec sp = {.op = (uint8_t)op, .actor = (uint16_t)actor, .u0 = u, .n = n};
  fl_end(o, &sp, ts, te, out);
  if (te > atomic_load(&o->clock)) set_clock(o, te);
}
static void data(fl_oracle *o, int op, uint32_t u, uint32_t n, uint64_t g, uint64_t ts, uint64_t te, int out) {
  data_begin(o, op, A_W, u, n, g, ts);
  data_end(o, op, A_W, u, n, ts, te, out);
}
static void zero(fl_oracle *o, int op, uint32_t u, uint32_t n, uint64_t ts, uint64_t te, int out) {
  fl_opspec sp = {.op = (uint8_t)op, .actor = A_P, .u0 = u, .n = n};
  fl_begin(o, &sp, ts);
  fl_end(o, &sp, ts, te, out);
  if (te > atomic_load(&o->clock)) set_clock(o, te);
}
static void resize(fl_oracle *o, int op, uint64_t old, uint64_t nw, uint64_t ts, uint64_t te) {
  fl_opspec sp = {.op = (uint8_t)op, .actor = A_T, .resize = 1, .old_size = old, .new_size = nw};
  fl_begin(o, &sp, ts);
  if (te) fl_end(o, &sp, ts, te, OUT_OK);
  if (te > atomic_load(&o->clock)) set_clock(o, te);
}

static uint8_t bufs[4][4096];
static uint8_t *pat(fl_oracle *o, int slot, uint32_t u, uint64_t g) {
  fl_pattern_fill(bufs[slot], o->usz, o->run, u, g);
  return bufs[slot];
}
static uint8_t *zeros(int slot) {
  memset(bufs[slot], 0, sizeof bufs[slot]);
  return bufs[slot];
}

static int last_kind(fl_oracle *o) { return o->nstored ? o->samples[o->nstored - 1].kind : -1; }
static int last_cls(fl_oracle *o) { return o->nstored ? o->samples[o->nstored - 1].cls : -1; }
static int last_sup(fl_oracle *o) {
  return o->nstored && o->samples[o->nstored - 1].has_sup ? o->samples[o->nstored - 1].sup_op : -1;
}

static int judge(fl_oracle *o, fl_jctx *j, uint32_t u, uint64_t rs, uint64_t re, const uint8_t *b) {
  return fl_judge_content(o, j, A_R, u, rs, re, b, o->usz, VIA_MMAP, 0);
}

static fl_event *find(fl_oracle *o, uint32_t u, uint64_t ts) {
  for (uint32_t i = 0; i < o->ulogs[u].n; i++)
    if (o->events[(size_t)u * o->cap + i].ts == ts) return &o->events[(size_t)u * o->cap + i];
  return NULL;
}

/* ------------------------------------------------------------------ tests */

static void t_patterns(void) {
  uint8_t b[4096], c[4096];
  uint32_t sizes[] = {512, 1024, 4096};
  fl_rng r;
  fl_rng_seed(&r, 1);
  for (int s = 0; s < 3; s++)
    for (int k = 0; k < 300; k++) {
      uint64_t u = fl_rng_below(&r, 1u << 24), g = fl_rng_next(&r) >> (1 + k % 40);
      if (k == 0) u = 0, g = 0;
      if (k == 1) u = 254, g = 255;
      fl_pattern_fill(b, sizes[s], 99, u, g);
      int nz = 1;
      for (uint32_t i = 0; i < sizes[s]; i++)
        if (!b[i]) nz = 0;
      CHECK(nz, "pattern has a zero byte (usz %u u %llu g %llu)", sizes[s], (unsigned long long)u,
            (unsigned long long)g);
      uint64_t du, dg;
      CHECK(fl_pattern_decode(b, sizes[s], 99, &du, &dg) && du == u && dg == g, "decode roundtrip");
      CHECK(!fl_pattern_decode(b, sizes[s], 98, &du, &dg), "other run id decoded");
      fl_pattern_fill(c, sizes[s], 99, u, g + 1);
      CHECK(memcmp(b + FL_HDR, c + FL_HDR, sizes[s] - FL_HDR) != 0, "different gens give the same body");
    }
}

static void t_basic(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  CHECK(judge(o, j, 0, 3, 4, zeros(0)) == J_OK, "initial zeros");
  data(o, OP_PWRITE, 0, 4, 100, 5, 6, OUT_OK); /* units 0..3 gens 100..103 */
  CHECK(judge(o, j, 1, 7, 8, pat(o, 0, 1, 101)) == J_OK, "completed pwrite seen");
  CHECK(judge(o, j, 1, 7, 8, zeros(0)) == J_VIOL && last_kind(o) == V_LOST_WRITE, "zeros after write: LOST_WRITE");
  CHECK(judge(o, j, 1, 4, 8, zeros(0)) == J_OK, "read overlapping the write: old zeros legal");
  CHECK(judge(o, j, 2, 7, 8, pat(o, 0, 1, 101)) == J_VIOL && last_kind(o) == V_GARBAGE,
        "another unit's data is GARBAGE");
  uint8_t *g = pat(o, 0, 1, 101);
  g[500] ^= 0x55;
  if (!g[500]) g[500] = 1;
  CHECK(judge(o, j, 1, 7, 8, g) == J_VIOL && last_kind(o) == V_GARBAGE, "corrupted byte is GARBAGE");
  CHECK(judge(o, j, 1, 7, 8, pat(o, 0, 1, 5000000)) == J_VIOL && last_kind(o) == V_GARBAGE, "unknown gen is GARBAGE");
  /* a write that starts after the read ended */
  data(o, OP_PWRITE, 3, 1, 200, 20, 21, OUT_OK);
  CHECK(judge(o, j, 3, 9, 10, pat(o, 0, 3, 200)) == J_VIOL && last_kind(o) == V_GARBAGE, "future data");
  CHECK(fl_sum_checks(o, C_UNIT_READS) == 8, "unit_reads counted: %llu", (unsigned long long)fl_sum_checks(o, C_UNIT_READS));
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_punch(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 0, 8, 100, 3, 4, OUT_OK);
  zero(o, OP_PUNCH, 4, 4, 10, 20, OUT_OK); /* punch page 1 */
  CHECK(find(o, 5, 10) && find(o, 5, 10)->str == ST_STRONG, "punch inside EOF is STRONG");
  /* overlapping read: old, zeros, or a per-byte mix */
  CHECK(judge(o, j, 5, 12, 15, pat(o, 0, 5, 105)) == J_OK, "old data during punch");
  CHECK(judge(o, j, 5, 12, 15, zeros(0)) == J_OK, "zeros during punch");
  uint8_t *m = pat(o, 0, 5, 105);
  memset(m + 512, 0, 512);
  CHECK(judge(o, j, 5, 12, 15, m) == J_OK_TORN, "torn old/zero during punch is legal");
  CHECK(fl_sum_legal(o, L_TORN_READS) == 1, "torn counted");
  /* after the punch */
  CHECK(judge(o, j, 5, 21, 22, zeros(0)) == J_OK, "zeros after punch");
  CHECK(judge(o, j, 5, 21, 22, pat(o, 0, 5, 105)) == J_VIOL && last_kind(o) == V_STALE && last_sup(o) == OP_PUNCH,
        "old data after the punch completed: STALE by punch (kind %d sup %d)", last_kind(o), last_sup(o));
  CHECK(fl_sum_stale_by(o, OP_PUNCH) == 1, "stale_by punch");
  m = pat(o, 0, 5, 105);
  memset(m + 512, 0, 512);
  CHECK(judge(o, j, 5, 21, 22, m) == J_VIOL && last_kind(o) == V_TORN_ILLEGAL && last_sup(o) == OP_PUNCH,
        "torn with superseded bytes after the punch: TORN_ILLEGAL");
  CHECK(o->samples[o->nstored - 1].first_bad == 0, "first bad byte %d", o->samples[o->nstored - 1].first_bad);
  /* a write after the punch, then zeros: lost write */
  data(o, OP_PWRITE, 5, 1, 300, 23, 24, OUT_OK);
  CHECK(judge(o, j, 5, 25, 26, zeros(0)) == J_VIOL && last_kind(o) == V_LOST_WRITE, "zeros after rewrite");
  CHECK(judge(o, j, 5, 25, 26, pat(o, 0, 5, 300)) == J_OK, "rewrite seen");
  /* final mode */
  CHECK(fl_judge_content(o, j, A_R, 5, 25, 26, pat(o, 0, 5, 105), U, VIA_FINAL_PREAD, 1) == J_VIOL &&
            last_kind(o) == V_FINAL_MISMATCH && last_cls(o) == V_STALE,
        "final mismatch keeps the class");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_torn_writes_inflight(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 2, 1, 10, 3, 4, OUT_OK);
  data(o, OP_PWRITE, 2, 1, 11, 10, 20, OUT_OK);
  uint8_t *a = pat(o, 0, 2, 10), *b = pat(o, 1, 2, 11);
  memcpy(a + 700, b + 700, 324);
  CHECK(judge(o, j, 2, 12, 15, a) == J_OK_TORN, "old/new mix during write");
  CHECK(judge(o, j, 2, 21, 22, a) == J_VIOL && last_kind(o) == V_TORN_ILLEGAL && last_sup(o) == OP_PWRITE,
        "old/new mix after write");
  CHECK(judge(o, j, 2, 21, 22, pat(o, 0, 2, 10)) == J_VIOL && last_kind(o) == V_STALE && last_sup(o) == OP_PWRITE,
        "old after write: STALE by pwrite");
  /* in-flight write: never supersedes, its data is legal */
  data_begin(o, OP_PWRITE, A_W, 2, 1, 12, 30);
  CHECK(judge(o, j, 2, 31, 32, pat(o, 0, 2, 11)) == J_OK, "older data legal while the write is in flight");
  CHECK(judge(o, j, 2, 31, 32, pat(o, 0, 2, 12)) == J_OK, "in-flight data legal");
  CHECK(judge(o, j, 2, 31, 32, pat(o, 0, 2, 10)) == J_VIOL && last_kind(o) == V_STALE, "superseded stays stale");
  data_end(o, OP_PWRITE, A_W, 2, 1, 30, 33, OUT_OK);
  CHECK(judge(o, j, 2, 34, 35, pat(o, 0, 2, 11)) == J_VIOL && last_kind(o) == V_STALE, "after completion: stale");
  /* a failed pwrite is WEAK: it does not supersede */
  data(o, OP_PWRITE, 2, 1, 13, 40, 41, OUT_FAILED);
  CHECK(judge(o, j, 2, 42, 43, pat(o, 0, 2, 12)) == J_OK, "WEAK write does not supersede");
  CHECK(judge(o, j, 2, 42, 43, pat(o, 0, 2, 13)) == J_OK, "WEAK write legal");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_sizes(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 0, 8, 100, 3, 4, OUT_OK);
  resize(o, OP_TRUNC, FS, 1024, 10, 11);  /* units 1..7 zero */
  resize(o, OP_EXTEND, 1024, FS, 12, 13); /* ZAP units 1..7 */
  CHECK(fl_judge_sigbus(o, A_R, 4096 + 100, 9, 12, VIA_MMAP, 0) == J_OK, "SIGBUS overlapping truncation");
  CHECK(fl_sum_legal(o, L_SIGBUS_READ) == 1, "legal sigbus counted");
  CHECK(fl_judge_sigbus(o, A_R, 4096, 14, 15, VIA_MMAP, 0) == J_VIOL && last_kind(o) == V_SIGBUS_INSIDE_EOF,
        "SIGBUS after extension");
  CHECK(fl_judge_sigbus(o, A_R, 0, 9, 12, VIA_MMAP, 1) == J_VIOL && last_kind(o) == V_SIGBUS_INSIDE_EOF,
        "SIGBUS on the partial EOF page");
  CHECK(fl_judge_short(o, A_R, 2048, 2048, 9, 12, VIA_PREAD) == J_OK, "short read during truncation");
  CHECK(fl_judge_short(o, A_R, 2048, 2048, 14, 15, VIA_PREAD) == J_VIOL && last_kind(o) == V_SHORT_READ_INSIDE_EOF,
        "short read after extension");
  CHECK(fl_judge_no_sigbus(o, A_R, 4096, 14, 15, VIA_MMAP) == J_OK, "no sigbus inside EOF");
  /* data of unit 2 truncated away, then extended: zeros only */
  CHECK(judge(o, j, 2, 14, 15, zeros(0)) == J_OK, "zeros after truncate+extend");
  CHECK(judge(o, j, 2, 14, 15, pat(o, 0, 2, 102)) == J_VIOL && last_kind(o) == V_STALE && last_sup(o) == OP_TRUNC,
        "pre-truncate data after extension: STALE by truncate");
  CHECK(judge(o, j, 2, 9, 12, pat(o, 0, 2, 102)) == J_OK, "old data during truncation");
  /* MISSING_SIGBUS: certainly beyond EOF */
  resize(o, OP_TRUNC, FS, 1024, 20, 21);
  CHECK(fl_judge_no_sigbus(o, A_R, 4096, 22, 23, VIA_MMAP) == J_VIOL && last_kind(o) == V_MISSING_SIGBUS,
        "missing sigbus");
  CHECK(fl_judge_no_sigbus(o, A_R, 0, 22, 23, VIA_MMAP) == J_OK, "EOF page never SIGBUS");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_strength(void) {
  fl_oracle *o = mk(U, NU, 32);
  data(o, OP_PWRITE, 0, 8, 100, 3, 4, OUT_OK);
  /* punch of page 1 racing a truncation to 4096: WEAK */
  zero(o, OP_PUNCH, 4, 4, 10, 20, OUT_OK);
  resize(o, OP_TRUNC, FS, 4096, 12, 13);
  CHECK(find(o, 5, 10)->str == ST_STRONG, "strength computed at end (punch ended before the resize was logged)");
  /* redo with the truncation logged inside the punch window */
  fl_opspec pp = {.op = OP_PUNCH, .actor = A_P, .u0 = 4, .n = 2};
  fl_begin(o, &pp, 30);
  resize(o, OP_EXTEND, 4096, FS, 31, 32);
  resize(o, OP_TRUNC, FS, 4096, 33, 34);
  fl_end(o, &pp, 30, 35, OUT_OK);
  set_clock(o, 35);
  CHECK(find(o, 4, 30)->str == ST_WEAK, "punch racing truncation is WEAK: %s", fl_str_name(find(o, 4, 30)->str));
  /* punch certainly beyond EOF: NOOP; inside: STRONG */
  zero(o, OP_PUNCH, 6, 2, 40, 41, OUT_OK);
  CHECK(find(o, 6, 40)->str == ST_NOOP, "punch beyond EOF is NOOP");
  zero(o, OP_PUNCH, 0, 2, 42, 43, OUT_OK);
  CHECK(find(o, 0, 42)->str == ST_STRONG, "punch inside EOF is STRONG");
  zero(o, OP_PUNCH, 0, 1, 44, 45, OUT_NOTDONE);
  CHECK(find(o, 0, 44)->str == ST_NOOP, "EOPNOTSUPP punch is NOOP");
  /* mmap stores: inside / EOF-page tail / SIGBUS at start / partial */
  resize(o, OP_EXTEND, 4096, 5120, 50, 51);
  data(o, OP_MSTORE, 4, 1, 500, 52, 53, OUT_OK);
  data(o, OP_MSTORE, 5, 1, 501, 54, 55, OUT_OK);
  data(o, OP_MSTORE, 6, 1, 502, 56, 57, OUT_NOTDONE);
  data(o, OP_MSTORE, 3, 1, 503, 58, 59, OUT_SIGBUS);
  CHECK(find(o, 4, 52)->str == ST_STRONG, "store inside EOF STRONG");
  CHECK(find(o, 5, 54)->str == ST_EPHEMERAL, "store past EOF EPHEMERAL");
  CHECK(find(o, 6, 56)->str == ST_NOOP, "store faulting at the unit start NOOP");
  CHECK(find(o, 3, 58)->str == ST_WEAK, "partial store WEAK");
  fl_oracle_free(o);
}

static void t_post_eof(void) {
  for (int allowed = 0; allowed < 2; allowed++) {
    fl_oracle *o = mk(U, NU, 32);
    o->post_eof_allowed = allowed;
    fl_jctx *j = fl_jctx_new(o);
    resize(o, OP_TRUNC, FS, 5 * U, 10, 11);
    data(o, OP_MSTORE, 5, 1, 700, 12, 13, OUT_OK); /* EPHEMERAL */
    CHECK(judge(o, j, 5, 14, 15, pat(o, 0, 5, 700)) == J_OK, "ephemeral data visible before extension");
    resize(o, OP_EXTEND, 5 * U, FS, 16, 17);
    CHECK(judge(o, j, 5, 18, 19, zeros(0)) == J_OK, "zeros after extension");
    int r = judge(o, j, 5, 18, 19, pat(o, 0, 5, 700));
    if (allowed)
      CHECK(r == J_POST_EOF && fl_sum_legal(o, L_POST_EOF_DATA) == 1, "post-EOF tolerated (r=%d)", r);
    else
      CHECK(r == J_VIOL && last_kind(o) == V_POST_EOF_DATA && fl_total_violations(o) == 1, "post-EOF violation");
    /* pruning must keep the ephemeral event (ZAPs never prune) */
    for (int k = 0; k < 20; k++) resize(o, OP_EXTEND, FS, FS, 100 + 2 * (uint64_t)k, 101 + 2 * (uint64_t)k);
    zero(o, OP_PUNCH, 0, 1, 200, 201, OUT_OK);
    r = judge(o, j, 5, 202, 203, pat(o, 0, 5, 700));
    CHECK(allowed ? r == J_POST_EOF : (r == J_VIOL && last_kind(o) == V_POST_EOF_DATA), "post-EOF after pruning r=%d", r);
    /* a STRONG write supersedes it for good */
    data(o, OP_PWRITE, 5, 1, 701, 210, 211, OUT_OK);
    CHECK(judge(o, j, 5, 212, 213, pat(o, 0, 5, 700)) == J_VIOL && last_kind(o) == V_STALE, "then stale");
    fl_jctx_free(j);
    fl_oracle_free(o);
  }
}

static void t_partial_store(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 1, 1, 10, 3, 4, OUT_OK);
  data(o, OP_MSTORE, 1, 1, 11, 10, 11, OUT_SIGBUS);
  uint8_t *a = pat(o, 0, 1, 11), *b = pat(o, 1, 1, 10);
  memcpy(a + 512, b + 512, 512);
  CHECK(judge(o, j, 1, 12, 13, a) == J_OK_TORN, "partial store + old data legal after the store");
  CHECK(judge(o, j, 1, 12, 13, pat(o, 0, 1, 10)) == J_OK, "old data legal (WEAK store)");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

/* pruning with a slow reader: the event it may need must stay */
static void t_prune_slow_reader(void) {
  fl_oracle *o = mk(U, NU, 32);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 0, 1, 10, 3, 4, OUT_OK);
  /* reader publishes lb 5, takes rs 6 */
  atomic_store(&o->actors[A_R].obs_lb, 5);
  uint64_t t = 10;
  for (int k = 0; k < 12; k++, t += 4) {
    zero(o, OP_PUNCH, 0, 1, t, t + 1, OUT_OK);
    data(o, OP_PWRITE, 0, 1, 100 + (uint64_t)k, t + 2, t + 3, OUT_OK);
  }
  CHECK(o->ulogs[0].n <= 32 && o->ulogs[0].floor == 0, "no overflow");
  CHECK(judge(o, j, 0, 6, t, pat(o, 0, 0, 10)) == J_OK, "slow reader's old value still legal");
  CHECK(judge(o, j, 0, 6, t, pat(o, 0, 0, 105)) == J_OK, "slow reader: intermediate legal");
  atomic_store(&o->actors[A_R].obs_lb, FL_IDLE);
  zero(o, OP_PUNCH, 0, 1, t, t + 1, OUT_OK);
  data(o, OP_PWRITE, 0, 1, 999, t + 2, t + 3, OUT_OK);
  CHECK(o->ulogs[0].n <= 4, "pruned once the reader finished (n=%u)", o->ulogs[0].n);
  CHECK(judge(o, j, 0, t + 4, t + 5, pat(o, 0, 0, 999)) == J_OK, "latest legal");
  CHECK(judge(o, j, 0, t + 4, t + 5, pat(o, 0, 0, 111)) == J_VIOL && last_kind(o) == V_STALE &&
            last_sup(o) == OP_PUNCH,
        "pruned data is STALE; superseder from the graveyard (sup %d)", last_sup(o));
  CHECK(judge(o, j, 0, t + 4, t + 5, pat(o, 0, 0, 10)) == J_VIOL && last_kind(o) == V_STALE,
        "long-pruned data is STALE");
  CHECK(judge(o, j, 0, t + 4, t + 5, pat(o, 0, 0, 101)) == J_VIOL && last_kind(o) == V_STALE, "pruned → stale");
  CHECK(fl_sum_skipped(o, S_LOG_OVERFLOW) == 0, "nothing skipped");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_overflow(void) {
  fl_oracle *o = mk(U, NU, 8);
  fl_jctx *j = fl_jctx_new(o);
  data(o, OP_PWRITE, 0, 1, 10, 3, 4, OUT_OK);
  atomic_store(&o->actors[A_R].obs_lb, 5); /* slow reader pins minrs */
  uint64_t t = 10;
  for (int k = 0; k < 30; k++, t += 2) data(o, OP_PWRITE, 0, 1, 100 + (uint64_t)k, t, t + 1, OUT_OK);
  CHECK(o->ulogs[0].n <= 8 && o->ulogs[0].floor > 6, "overflow recorded a floor (%llu)",
        (unsigned long long)o->ulogs[0].floor);
  CHECK(judge(o, j, 0, 6, t, pat(o, 0, 0, 10)) == J_SKIP, "slow observation skipped, not judged");
  CHECK(fl_sum_skipped(o, S_LOG_OVERFLOW) == 1, "skip counted");
  atomic_store(&o->actors[A_R].obs_lb, FL_IDLE);
  CHECK(judge(o, j, 0, t, t + 1, pat(o, 0, 0, 129)) == J_OK, "new observation judged: latest legal");
  CHECK(judge(o, j, 0, t, t + 1, pat(o, 0, 0, 10)) == J_VIOL && last_kind(o) == V_STALE, "and stale detected");
  fl_jctx_free(j);
  fl_oracle_free(o);

  /* nothing superseded even w.r.t. now (all WEAK): blind until a STRONG event completes */
  o = mk(U, NU, 8);
  j = fl_jctx_new(o);
  t = 10;
  for (int k = 0; k < 12; k++, t += 2) data(o, OP_PWRITE, 1, 1, 100 + (uint64_t)k, t, t + 1, OUT_FAILED);
  CHECK(o->ulogs[1].lost_te != 0, "lost recorded");
  CHECK(judge(o, j, 1, t, t + 1, pat(o, 0, 1, 100)) == J_SKIP, "blind: skipped");
  CHECK(judge(o, j, 1, t, t + 1, pat(o, 0, 1, 5)) == J_SKIP, "blind: even garbage skipped");
  uint64_t ws = t;
  data(o, OP_PWRITE, 1, 1, 500, ws, ws + 1, OUT_OK);
  data(o, OP_PWRITE, 0, 1, 501, ws + 2, ws + 3, OUT_OK);
  CHECK(judge(o, j, 1, ws + 4, ws + 5, pat(o, 0, 1, 500)) == J_OK, "after a STRONG superseder: judged");
  CHECK(judge(o, j, 1, ws + 4, ws + 5, pat(o, 0, 1, 100)) == J_VIOL && last_kind(o) == V_STALE, "stale after it");
  CHECK(judge(o, j, 1, ws, ws + 5, pat(o, 0, 1, 100)) == J_SKIP, "observation overlapping it: skipped");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_candidates(void) {
  fl_oracle *o = mk(U, NU, 96);
  fl_jctx *j = fl_jctx_new(o);
  atomic_store(&o->actors[A_R].obs_lb, 5);
  for (int k = 0; k < 70; k++) data(o, OP_PWRITE, 0, 1, 100 + (uint64_t)k, 10 + 2 * (uint64_t)k, 11 + 2 * (uint64_t)k, OUT_FAILED);
  CHECK(judge(o, j, 0, 6, 300, pat(o, 0, 0, 100)) == J_SKIP, "too many candidates: skip");
  CHECK(fl_sum_skipped(o, S_CANDIDATE_OVERFLOW) == 1, "candidate overflow counted");
  fl_jctx_free(j);
  fl_oracle_free(o);
}

static void t_size_log_prune(void) {
  fl_oracle *o = mk(4096, 4, 16);
  atomic_store(&o->actors[A_R].obs_lb, 5);
  uint64_t t = 10;
  for (int k = 0; k < 6; k++, t += 4) {
    resize(o, OP_TRUNC, 16384, 4096, t, t + 1);
    resize(o, OP_EXTEND, 4096, 16384, t + 2, t + 3);
  }
  CHECK(fl_judge_sigbus(o, A_R, 8192, 6, t, VIA_MMAP, 0) == J_OK, "slow reader keeps the size history");
  atomic_store(&o->actors[A_R].obs_lb, FL_IDLE);
  resize(o, OP_TRUNC, 16384, 16384, t, t + 1);
  CHECK(o->slog->n <= 3, "size log pruned (%u)", o->slog->n);
  CHECK(fl_judge_sigbus(o, A_R, 8192, t + 2, t + 3, VIA_MMAP, 0) == J_VIOL, "after: SIGBUS illegal");
  /* overflow of the size log: skip */
  fl_oracle_free(o);
  o = mk(4096, 4, 16);
  atomic_store(&o->actors[A_R].obs_lb, 5);
  t = 10;
  for (int k = 0; k < 20; k++, t += 4) {
    resize(o, OP_TRUNC, 16384, 4096, t, t + 1);
    resize(o, OP_EXTEND, 4096, 16384, t + 2, t + 3);
  }
  CHECK(fl_judge_sigbus(o, A_R, 8192, 6, 7, VIA_MMAP, 0) == J_SKIP, "size log overflow → skip");
  CHECK(fl_sum_skipped(o, S_SIZE_LOG_OVERFLOW) == 1, "counted");
  fl_oracle_free(o);
}

/* the guard: real SIGBUS beyond EOF of a real file */
static void t_guard(void) {
  fl_guard_install();
  char path[] = "/tmp/fl-test-guard-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  unlink(path);
  CHECK(ftruncate(fd, 4096 + 100) == 0, "ftruncate");
  uint8_t *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(m != MAP_FAILED, "mmap");
  uint8_t buf[1024], src[1024];
  memset(src, 7, sizeof src);
  uintptr_t fault = 0;
  CHECK(fl_guarded_read(buf, m, 1024, &fault) == 0, "read inside EOF");
  CHECK(fl_guarded_read(buf, m + 4096 + 1024, 1024, &fault) == 0 && fl_all_zero(buf, 1024), "EOF page tail zero");
  CHECK(fl_guarded_read(buf, m + 8192, 1024, &fault) == SIGBUS && fault == (uintptr_t)(m + 8192), "SIGBUS beyond");
  CHECK(fl_guarded_write(m + 8192 + 512, src, 512, &fault) == SIGBUS && fault == (uintptr_t)(m + 8192 + 512),
        "store SIGBUS at its first byte");
  CHECK(fl_guarded_write(m + 1024, src, 1024, &fault) == 0 && m[1024] == 7, "store inside");
  /* repeated faults work (SA_NODEFER) */
  int n = 0;
  for (int k = 0; k < 100; k++) n += fl_guarded_read(buf, m + 8192, 8, &fault) == SIGBUS;
  CHECK(n == 100, "repeated SIGBUS %d", n);
  munmap(m, 3 * 4096);
  close(fd);
}

static void t_json_base64(void) {
  char out[64];
  fl_base64((const uint8_t *)"hello!!", 7, out);
  CHECK(strcmp(out, "aGVsbG8hIQ==") == 0, "base64 %s", out);
  CHECK(fl_fnv1a64("", 0) == 0xcbf29ce484222325ull, "fnv basis");
  CHECK(fl_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull, "fnv 'a'");
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  fl_json j;
  fl_json_init(&j, f);
  fl_json_obj(&j);
  fl_json_kstr(&j, "a", "x\"y\n");
  fl_json_key(&j, "b");
  fl_json_arr(&j);
  fl_json_u64(&j, 1);
  fl_json_u64(&j, 2);
  fl_json_end_arr(&j);
  fl_json_kbool(&j, "c", 1);
  fl_json_end_obj(&j);
  fclose(f);
  CHECK(strcmp(buf, "{\"a\":\"x\\\"y\\n\",\"b\":[1,2],\"c\":true}") == 0, "json %s", buf);
  free(buf);
}

int main(void) {
  t_patterns();
  t_basic();
  t_punch();
  t_torn_writes_inflight();
  t_sizes();
  t_strength();
  t_post_eof();
  t_partial_store();
  t_prune_slow_reader();
  t_overflow();
  t_candidates();
  t_size_log_prune();
  t_guard();
  t_json_base64();
  printf("test_oracle: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
