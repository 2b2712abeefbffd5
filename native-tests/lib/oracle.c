/* The concurrent oracle of /work/shared/notes/oracle.md: per-unit event logs, the size register,
 * safe pruning, the per-byte union verdict and the classification of violations.
 *
 * DEPARTURES from oracle.md (also listed in README.md):
 *  - ZAP events are always logged, also where post-EOF data is tolerated (§3 says "skip it").
 *    The verdict is first computed with ZAP superseding EPHEMERAL data; an observation that is
 *    only explained when ZAPs are ignored is POST_EOF_DATA, counted as legal (legal.post_eof_data)
 *    when the per-filesystem switch allows it and as a violation otherwise. Same verdicts as the
 *    note, plus a count.
 *  - Pruning never drops an event because of a ZAP (only because of a STRONG superseder), so the
 *    POST_EOF_DATA recheck always finds the ephemeral event.
 *  - When a log overflows and no event is superseded even with respect to "now", the oldest
 *    completed event is dropped anyway and the unit is "blind" (every observation skipped) until a
 *    STRONG event that started after the dropped one completes; observations whose rs is not
 *    after that event's te are skipped too (it becomes the floor). The note only describes the
 *    floor case.
 *  - A failed operation (error return, short pwrite) is WEAK; an operation that certainly did
 *    nothing (EOPNOTSUPP, an mmap store faulting at the unit start) is NOOP.
 *  - If an operation's size window [ts, te] cannot be reconstructed (size log overflow), a punch
 *    or mmap store whose strength depends on i_size is WEAK (conservative) and counted in
 *    skipped.strength_unknown. */
#include "fl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_CAND 64 /* legal DATA candidates judged per byte; more → skip (§6.3) */
#define PRUNE_AT 8

static const char *op_names[OP__N] = {"init", "pwrite", "mmap-store", "punch", "zero", "truncate",
                                       "extend", "server-punch", "server-zero", "server-truncate",
                                       "server-extend", "server-write"};
const char *fl_op_name(int op) { return op >= 0 && op < OP__N ? op_names[op] : "?"; }

static const char *via_names[VIA__N] = {"mmap", "pread", "odirect", "mmap-store", "final-pread",
                                         "final-mmap", "final-fadvise-pread", "final-odirect",
                                         "pagemap", "size", "watchdog", "syscall"};
const char *fl_via_name(int v) { return v >= 0 && v < VIA__N ? via_names[v] : "?"; }

static const char *vk_names[V__N] = {"STALE", "LOST_WRITE", "SIGBUS_INSIDE_EOF",
                                      "SHORT_READ_INSIDE_EOF", "TORN_ILLEGAL", "GARBAGE",
                                      "POST_EOF_DATA", "FINAL_MISMATCH", "HANG", "MISSING_SIGBUS",
                                      "IO_ERROR"};
const char *fl_vkind_name(int k) { return k >= 0 && k < V__N ? vk_names[k] : "?"; }

static const char *opk_names[K__N] = {"mmap_cycles", "mmap_reads", "mmap_stores", "pread_units",
                                       "preads", "direct_reads", "direct_units", "punch", "zero",
                                       "truncate_down", "truncate_up", "pwrite", "pwrite_units",
                                       "fadvise", "madvise", "server_punch", "server_zero",
                                       "server_truncate", "server_write", "injected"};
const char *fl_opk_name(int k) { return k >= 0 && k < K__N ? opk_names[k] : "?"; }

static const char *chk_names[C__N] = {"unit_reads", "unit_reads_mmap", "unit_reads_pread",
                                       "unit_reads_direct", "store_checks", "sigbus_checks",
                                       "short_read_checks", "final_units", "pagemap_checks"};
const char *fl_chk_name(int k) { return k >= 0 && k < C__N ? chk_names[k] : "?"; }

static const char *leg_names[L__N] = {"sigbus_read", "sigbus_write", "torn_reads", "post_eof_data",
                                       "short_reads", "partial_stores", "cached_beyond_eof",
                                       "ephemeral_stores", "direct_eio"};
const char *fl_leg_name(int k) { return k >= 0 && k < L__N ? leg_names[k] : "?"; }

static const char *skip_names[S__N] = {"log_overflow", "size_log_overflow", "candidate_overflow",
                                        "strength_unknown"};
const char *fl_skip_name(int k) { return k >= 0 && k < S__N ? skip_names[k] : "?"; }

static const char *str_names[] = {"in-flight", "STRONG", "WEAK", "NOOP", "EPHEMERAL"};
const char *fl_str_name(int s) { return s >= 0 && s <= ST_EPHEMERAL ? str_names[s] : "?"; }
const char *fl_evtype_name(int t) {
  return t == EV_DATA ? "DATA" : t == EV_ZERO ? "ZERO" : t == EV_ZAP ? "ZAP" : "?";
}

static const char *role_names[R__N] = {"main", "mapper", "puncher", "zeroer", "truncator",
                                        "writer", "reader", "direct-reader", "churn", "server"};
const char *fl_role_name(int r) { return r >= 0 && r < R__N ? role_names[r] : "?"; }

/* ------------------------------------------------------------------ creation */

fl_oracle *fl_oracle_new(uint32_t usz, uint64_t fsize, uint32_t cap, uint32_t scap, uint32_t run) {
  if (usz == 0 || fsize % usz || cap < 8 || scap < 8) return NULL;
  uint64_t nunits = fsize / usz;
  size_t off_ulogs = fl_round_up(sizeof(fl_oracle), 64);
  size_t off_events = fl_round_up(off_ulogs + nunits * sizeof(fl_ulog), 64);
  size_t off_slog = fl_round_up(off_events + nunits * cap * sizeof(fl_event), 64);
  size_t off_sev = fl_round_up(off_slog + sizeof(fl_slog), 64);
  size_t total = fl_round_up(off_sev + scap * sizeof(fl_sevent), 4096);
  void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  fl_oracle *o = m; /* zero-filled */
  o->shm_size = total;
  o->usz = usz;
  o->nunits = (uint32_t)nunits;
  o->cap = cap;
  o->scap = scap;
  o->run = run;
  o->fsize = fsize;
  atomic_store(&o->cur_size, fsize);
  o->ulogs = (fl_ulog *)((char *)m + off_ulogs);
  o->events = (fl_event *)((char *)m + off_events);
  o->slog = (fl_slog *)((char *)m + off_slog);
  o->sevents = (fl_sevent *)((char *)m + off_sev);
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&o->lock, &ma);
  pthread_mutex_init(&o->size_mutex, &ma);
  pthread_mutex_init(&o->sample_lock, &ma);
  pthread_mutexattr_destroy(&ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&o->size_cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
  pthread_rwlock_init(&o->store_punch, &ra);
  pthread_rwlockattr_destroy(&ra);
  for (int i = 0; i < FL_MAX_ACTORS; i++) atomic_store(&o->actors[i].obs_lb, FL_IDLE);
  return o;
}

void fl_oracle_free(fl_oracle *o) {
  if (o) munmap(o, o->shm_size);
}

int fl_actor_add(fl_oracle *o, int role, int idx) {
  if (o->nactors >= FL_MAX_ACTORS) return -1;
  int a = o->nactors++;
  o->actors[a].role = role;
  o->actors[a].idx = idx;
  o->actors[a].used = 1;
  atomic_store(&o->actors[a].obs_lb, FL_IDLE);
  return a;
}

void fl_size_lock(fl_oracle *o) {
  pthread_mutex_lock(&o->size_mutex);
  uint64_t t = o->size_next++;
  while (o->size_serving != t) pthread_cond_wait(&o->size_cond, &o->size_mutex);
  pthread_mutex_unlock(&o->size_mutex);
}

void fl_size_unlock(fl_oracle *o) {
  pthread_mutex_lock(&o->size_mutex);
  o->size_serving++;
  pthread_cond_broadcast(&o->size_cond);
  pthread_mutex_unlock(&o->size_mutex);
}

/* ------------------------------------------------------------------ helpers */

static inline int is_value(const fl_event *e) { return e->type == EV_DATA || e->type == EV_ZERO; }
static inline int is_strong_value(const fl_event *e) {
  return is_value(e) && e->str == ST_STRONG && e->te != FL_INF;
}

/* lower bound of every in-flight observation's rs (and of every future one) */
static uint64_t compute_minrs(fl_oracle *o) {
  uint64_t m = atomic_load(&o->clock); /* read the clock first, then the slots (§6.2) */
  for (int i = 0; i < o->nactors; i++) {
    uint64_t v = atomic_load(&o->actors[i].obs_lb);
    if (v < m) m = v;
  }
  return m;
}

static void add_grave(fl_ulog *L, uint64_t gen, const fl_event *sup) {
  fl_grave *g = &L->graves[L->gnext++ % FL_GRAVES];
  g->gen = gen;
  g->sup_ts = sup ? sup->ts : 0;
  g->sup_te = sup ? sup->te : 0;
  g->sup_actor = sup ? sup->actor : 0;
  g->sup_op = sup ? sup->op : 0xff;
}

/* the first (earliest-starting) STRONG value event that supersedes an event ending at te,
 * among those completed before `before` */
static const fl_event *first_superseder(const fl_event *E, uint32_t n, uint64_t te, uint64_t before) {
  const fl_event *best = NULL;
  for (uint32_t i = 0; i < n; i++) {
    const fl_event *s = &E[i];
    if (is_strong_value(s) && s->ts > te && s->te < before && (!best || s->ts < best->ts)) best = s;
  }
  return best;
}

/* A dropped, not-yet-superseded event blinds the unit until a STRONG event that started after
 * it completes; from then on, observations with rs > that te are safe (→ floor). */
static void resolve_lost(fl_ulog *L, fl_event *E) {
  if (!L->lost_te) return;
  uint64_t best = FL_INF;
  for (uint32_t i = 0; i < L->n; i++)
    if (is_strong_value(&E[i]) && E[i].ts > L->lost_te && E[i].te < best) best = E[i].te;
  if (best != FL_INF) {
    if (best > L->floor) L->floor = best;
    L->lost_te = 0;
  }
}

static void prune_unit(fl_oracle *o, uint32_t u, uint64_t minrs) {
  fl_ulog *L = &o->ulogs[u];
  fl_event *E = o->events + (size_t)u * o->cap;
  resolve_lost(L, E);
  uint64_t maxS = 0;
  for (uint32_t i = 0; i < L->n; i++)
    if (is_strong_value(&E[i]) && E[i].te < minrs && E[i].ts > maxS) maxS = E[i].ts;
  if (!maxS) return;
  uint32_t w = 0;
  for (uint32_t i = 0; i < L->n; i++) {
    fl_event *e = &E[i];
    if (e->te != FL_INF && e->te < maxS) {
      /* superseded for every observation with rs >= minrs, i.e. every current and future one */
      if (e->type == EV_DATA) add_grave(L, e->gen, first_superseder(E, L->n, e->te, minrs));
      continue;
    }
    E[w++] = *e;
  }
  L->n = w;
}

/* overflow: drop what is superseded with respect to "now" and record a floor; if nothing is,
 * drop the oldest completed event and blind the unit (see the DEPARTURES above). */
static int force_unit(fl_oracle *o, uint32_t u) {
  fl_ulog *L = &o->ulogs[u];
  fl_event *E = o->events + (size_t)u * o->cap;
  uint64_t maxS = 0;
  for (uint32_t i = 0; i < L->n; i++)
    if (is_strong_value(&E[i]) && E[i].ts > maxS) maxS = E[i].ts;
  uint32_t w = 0, dropped = 0;
  if (maxS) {
    for (uint32_t i = 0; i < L->n; i++) {
      fl_event *e = &E[i];
      if (e->te != FL_INF && e->te < maxS) {
        const fl_event *s = first_superseder(E, L->n, e->te, FL_INF);
        uint64_t fl = FL_INF;
        for (uint32_t k = 0; k < L->n; k++)
          if (is_strong_value(&E[k]) && E[k].ts > e->te && E[k].te < fl) fl = E[k].te;
        if (fl != FL_INF && fl > L->floor) L->floor = fl;
        if (e->type == EV_DATA) add_grave(L, e->gen, s);
        dropped++;
        continue;
      }
      E[w++] = *e;
    }
    L->n = w;
  }
  if (dropped) return 0;
  /* nothing superseded: drop the oldest completed event */
  int old = -1;
  for (uint32_t i = 0; i < L->n; i++)
    if (E[i].te != FL_INF && (old < 0 || E[i].ts < E[old].ts)) old = (int)i;
  if (old < 0) return -1; /* all in flight: cap too small */
  if (E[old].te > L->lost_te) L->lost_te = E[old].te;
  memmove(&E[old], &E[old + 1], (L->n - (uint32_t)old - 1) * sizeof *E);
  L->n--;
  return 0;
}

static void append_unit(fl_oracle *o, uint32_t u, const fl_event *ev, uint64_t minrs) {
  fl_ulog *L = &o->ulogs[u];
  fl_event *E = o->events + (size_t)u * o->cap;
  if (L->n >= PRUNE_AT) prune_unit(o, u, minrs);
  if (L->n >= o->cap && force_unit(o, u) != 0) {
    fprintf(stderr, "fl: unit %u log full of in-flight events (cap %u too small)\n", u, o->cap);
    abort();
  }
  E[L->n++] = *ev;
}

/* size log: same rules. All size events are STRONG (the programs never extend with pwrite). */
static inline int s_strong(const fl_sevent *e) { return e->str == ST_STRONG && e->te != FL_INF; }

static void resolve_lost_size(fl_oracle *o) {
  fl_slog *L = o->slog;
  fl_sevent *E = o->sevents;
  if (!L->lost_te) return;
  uint64_t best = FL_INF;
  for (uint32_t i = 0; i < L->n; i++)
    if (s_strong(&E[i]) && E[i].ts > L->lost_te && E[i].te < best) best = E[i].te;
  if (best != FL_INF) {
    if (best > L->floor) L->floor = best;
    L->lost_te = 0;
  }
}

static void prune_size(fl_oracle *o, uint64_t minrs, int force) {
  fl_slog *L = o->slog;
  fl_sevent *E = o->sevents;
  resolve_lost_size(o);
  uint64_t lim = force ? FL_INF : minrs, maxS = 0;
  for (uint32_t i = 0; i < L->n; i++)
    if (s_strong(&E[i]) && E[i].te < lim && E[i].ts > maxS) maxS = E[i].ts;
  uint32_t w = 0;
  for (uint32_t i = 0; i < L->n; i++) {
    if (maxS && E[i].te != FL_INF && E[i].te < maxS) {
      if (force) {
        uint64_t fl = FL_INF;
        for (uint32_t k = 0; k < L->n; k++)
          if (s_strong(&E[k]) && E[k].ts > E[i].te && E[k].te < fl) fl = E[k].te;
        if (fl != FL_INF && fl > L->floor) L->floor = fl;
      }
      continue;
    }
    E[w++] = E[i];
  }
  L->n = w;
  if (force && w >= o->scap) {
    int old = -1;
    for (uint32_t i = 0; i < L->n; i++)
      if (E[i].te != FL_INF && (old < 0 || E[i].ts < E[old].ts)) old = (int)i;
    if (old < 0) {
      fprintf(stderr, "fl: size log full of in-flight events\n");
      abort();
    }
    if (E[old].te > L->lost_te) L->lost_te = E[old].te;
    memmove(&E[old], &E[old + 1], (L->n - (uint32_t)old - 1) * sizeof *E);
    L->n--;
  }
}

static void append_size(fl_oracle *o, const fl_sevent *ev, uint64_t minrs) {
  fl_slog *L = o->slog;
  if (L->n >= PRUNE_AT) prune_size(o, minrs, 0);
  if (L->n >= o->scap) prune_size(o, minrs, 1);
  o->sevents[L->n++] = *ev;
}

/* legal sizes over [rs, re] (lock held); -1: cannot tell (overflow) */
static int size_range_locked(fl_oracle *o, uint64_t rs, uint64_t re, uint64_t *mn, uint64_t *mx) {
  fl_slog *L = o->slog;
  fl_sevent *E = o->sevents;
  if (rs <= L->floor) return -1;
  uint64_t maxS = 0;
  for (uint32_t i = 0; i < L->n; i++)
    if (s_strong(&E[i]) && E[i].te < rs && E[i].ts > maxS) maxS = E[i].ts;
  if (L->lost_te && maxS <= L->lost_te) return -1;
  uint64_t lo = UINT64_MAX, hi = 0;
  int any = 0;
  for (uint32_t i = 0; i < L->n; i++) {
    const fl_sevent *e = &E[i];
    if (e->str == ST_NOOP || e->ts >= re) continue;
    if (e->te != FL_INF && e->te < maxS) continue; /* superseded */
    any = 1;
    if (e->size < lo) lo = e->size;
    if (e->size > hi) hi = e->size;
  }
  if (!any) return -1;
  *mn = lo;
  *mx = hi;
  return 0;
}

int fl_size_range(fl_oracle *o, uint64_t rs, uint64_t re, uint64_t *mn, uint64_t *mx) {
  pthread_mutex_lock(&o->lock);
  int r = size_range_locked(o, rs, re, mn, mx);
  pthread_mutex_unlock(&o->lock);
  return r;
}

uint64_t fl_model_size(fl_oracle *o) {
  pthread_mutex_lock(&o->lock);
  uint64_t best_ts = 0, sz = o->fsize;
  for (uint32_t i = 0; i < o->slog->n; i++)
    if (o->sevents[i].str != ST_NOOP && o->sevents[i].ts >= best_ts) {
      best_ts = o->sevents[i].ts;
      sz = o->sevents[i].size;
    }
  pthread_mutex_unlock(&o->lock);
  return sz;
}

/* ------------------------------------------------------------------ begin / end */

static int ev_type_of(int op) {
  switch (op) {
    case OP_PWRITE: case OP_MSTORE: case OP_SWRITE: return EV_DATA;
    case OP_EXTEND: case OP_SEXTEND: return EV_ZAP;
    default: return EV_ZERO;
  }
}

static void op_units(const fl_oracle *o, const fl_opspec *sp, uint32_t *u0, uint32_t *n) {
  if (sp->op == OP_TRUNC || sp->op == OP_STRUNC) {
    uint64_t a = sp->new_size / o->usz;
    *u0 = (uint32_t)(a < o->nunits ? a : o->nunits);
    *n = o->nunits - *u0;
  } else if (sp->op == OP_EXTEND || sp->op == OP_SEXTEND) {
    uint64_t a = sp->old_size / o->usz, b = fl_round_up(sp->new_size, o->usz) / o->usz;
    if (a > o->nunits) a = o->nunits;
    if (b > o->nunits) b = o->nunits;
    *u0 = (uint32_t)a;
    *n = b > a ? (uint32_t)(b - a) : 0;
  } else {
    *u0 = sp->u0;
    *n = sp->n;
  }
}

uint64_t fl_begin(fl_oracle *o, const fl_opspec *sp, uint64_t ts_explicit) {
  uint32_t u0, n;
  op_units(o, sp, &u0, &n);
  int type = ev_type_of(sp->op);
  pthread_mutex_lock(&o->lock);
  uint64_t minrs = compute_minrs(o);
  uint64_t ts = ts_explicit ? ts_explicit : fl_tick(o); /* inside the critical section (§2) */
  fl_event ev;
  memset(&ev, 0, sizeof ev);
  ev.ts = ts;
  ev.te = FL_INF;
  ev.actor = sp->actor;
  ev.type = (uint8_t)type;
  ev.str = ST_PENDING;
  ev.op = sp->op;
  for (uint32_t i = 0; i < n; i++) {
    ev.gen = type == EV_DATA ? sp->gens[i] : 0;
    append_unit(o, u0 + i, &ev, minrs);
  }
  if (sp->resize) {
    fl_sevent se;
    memset(&se, 0, sizeof se);
    se.ts = ts;
    se.te = FL_INF;
    se.size = sp->new_size;
    se.actor = sp->actor;
    se.op = sp->op;
    se.str = ST_PENDING;
    append_size(o, &se, minrs);
  }
  pthread_mutex_unlock(&o->lock);
  return ts;
}

static fl_event *find_ev(fl_oracle *o, uint32_t u, uint64_t ts) {
  fl_ulog *L = &o->ulogs[u];
  fl_event *E = o->events + (size_t)u * o->cap;
  for (uint32_t i = L->n; i-- > 0;)
    if (E[i].ts == ts) return &E[i];
  return NULL;
}

void fl_end(fl_oracle *o, const fl_opspec *sp, uint64_t ts, uint64_t te, int outcome) {
  uint32_t u0, n;
  op_units(o, sp, &u0, &n);
  int type = ev_type_of(sp->op);
  int by_size = outcome == OUT_OK && (sp->op == OP_MSTORE || sp->op == OP_PUNCH || sp->op == OP_ZERO ||
                                      sp->op == OP_SPUNCH || sp->op == OP_SZERO);
  int actor = sp->actor;
  pthread_mutex_lock(&o->lock);
  uint64_t mn = 0, mx = 0;
  int known = 1;
  if (by_size && size_range_locked(o, ts, te, &mn, &mx) != 0) known = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t u = u0 + i;
    fl_event *e = find_ev(o, u, ts);
    if (!e) continue; /* cannot happen: in-flight events are never dropped */
    uint8_t st;
    uint64_t lo = (uint64_t)u * o->usz, hi = lo + o->usz;
    if (outcome == OUT_NOTDONE) st = ST_NOOP;
    else if (outcome == OUT_FAILED || outcome == OUT_SIGBUS) st = ST_WEAK;
    else if (type == EV_ZAP) st = ST_STRONG;
    else if (!by_size) st = ST_STRONG;
    else if (!known) st = ST_WEAK;
    else if (mn >= hi) st = ST_STRONG;
    else if (mx <= lo) st = sp->op == OP_MSTORE ? ST_EPHEMERAL : ST_NOOP;
    else st = ST_WEAK;
    e->str = st;
    e->te = te;
  }
  if (sp->resize) {
    for (uint32_t i = o->slog->n; i-- > 0;)
      if (o->sevents[i].ts == ts) {
        o->sevents[i].te = te;
        o->sevents[i].str = outcome == OUT_OK ? ST_STRONG : outcome == OUT_NOTDONE ? ST_NOOP : ST_WEAK;
        break;
      }
  }
  pthread_mutex_unlock(&o->lock);
  if (by_size && !known && n) FL_SKIP(o, actor, S_STRENGTH_UNKNOWN, 1);
}

/* ------------------------------------------------------------------ judging */

struct fl_jctx {
  fl_oracle *o;
  fl_event *snap;
  uint32_t n;
  uint64_t floor, lost_te;
  fl_grave graves[FL_GRAVES];
  uint8_t *legal, *legal2, *expl;
  uint8_t *pat; /* (cap + 2) patterns */
  uint8_t *tmp;
};

fl_jctx *fl_jctx_new(fl_oracle *o) {
  fl_jctx *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->o = o;
  j->snap = calloc(o->cap, sizeof *j->snap);
  j->legal = calloc(o->cap, 1);
  j->legal2 = calloc(o->cap, 1);
  j->expl = calloc(o->usz, 1);
  j->pat = malloc((size_t)(o->cap + 2) * o->usz);
  j->tmp = malloc(o->usz);
  if (!j->snap || !j->legal || !j->legal2 || !j->expl || !j->pat || !j->tmp) {
    fl_jctx_free(j);
    return NULL;
  }
  return j;
}

void fl_jctx_free(fl_jctx *j) {
  if (!j) return;
  free(j->snap);
  free(j->legal);
  free(j->legal2);
  free(j->expl);
  free(j->pat);
  free(j->tmp);
  free(j);
}

static void snapshot(fl_oracle *o, fl_jctx *j, uint32_t u) {
  pthread_mutex_lock(&o->lock);
  fl_ulog *L = &o->ulogs[u];
  j->n = L->n;
  memcpy(j->snap, o->events + (size_t)u * o->cap, L->n * sizeof(fl_event));
  j->floor = L->floor;
  j->lost_te = L->lost_te;
  memcpy(j->graves, L->graves, sizeof j->graves);
  pthread_mutex_unlock(&o->lock);
}

/* legality of each snapshot event for [rs, re]; zap: ZAPs supersede EPHEMERAL events */
static void compute_legal(fl_jctx *j, uint64_t rs, uint64_t re, int zap, uint8_t *legal) {
  uint64_t maxS = 0, maxZ = 0;
  for (uint32_t i = 0; i < j->n; i++) {
    const fl_event *e = &j->snap[i];
    if (e->te == FL_INF || e->te >= rs) continue;
    if (is_strong_value(e) && e->ts > maxS) maxS = e->ts;
    if (e->type == EV_ZAP && e->str != ST_NOOP && e->ts > maxZ) maxZ = e->ts;
  }
  if (maxS > maxZ) maxZ = maxS;
  for (uint32_t i = 0; i < j->n; i++) {
    const fl_event *e = &j->snap[i];
    int ok = is_value(e) && e->str != ST_NOOP && e->ts < re;
    if (ok && e->te != FL_INF) {
      if (e->te < maxS) ok = 0;
      else if (zap && e->str == ST_EPHEMERAL && e->te < maxZ) ok = 0;
    }
    legal[i] = (uint8_t)ok;
  }
}

/* is b[0..len) explained by the events flagged in `sel`? 2: exact match of one source,
 * 1: per-byte union (torn), 0: no. Fills j->expl (per-byte explained) when it returns 0. */
static int check_with(fl_jctx *j, uint32_t u, const uint8_t *b, uint32_t len, const uint8_t *sel,
                      uint64_t extra_gen, int use_extra) {
  fl_oracle *o = j->o;
  int has_zero = 0, ndata = 0;
  for (uint32_t i = 0; i < j->n; i++)
    if (sel[i]) {
      if (j->snap[i].type == EV_ZERO) has_zero = 1;
      else ndata++;
    }
  if (fl_all_zero(b, len)) {
    if (has_zero) return 2;
    memset(j->expl, 0, len);
    return 0;
  }
  uint64_t hu, hg;
  if (fl_pattern_decode(b, len, o->run, &hu, &hg) && hu == u) {
    for (uint32_t i = 0; i < j->n; i++)
      if (sel[i] && j->snap[i].type == EV_DATA && j->snap[i].gen == hg) {
        fl_pattern_fill(j->tmp, o->usz, o->run, u, hg);
        if (memcmp(j->tmp, b, len) == 0) return 2;
        break;
      }
  }
  /* per-byte union (§4.1) */
  uint32_t k = 0;
  for (uint32_t i = 0; i < j->n && k < o->cap; i++)
    if (sel[i] && j->snap[i].type == EV_DATA) fl_pattern_fill(j->pat + (size_t)(k++) * o->usz, o->usz, o->run, u, j->snap[i].gen);
  if (use_extra && k < o->cap + 2) fl_pattern_fill(j->pat + (size_t)(k++) * o->usz, o->usz, o->run, u, extra_gen);
  int all = 1;
  for (uint32_t x = 0; x < len; x++) {
    int ok = 0;
    if (b[x] == 0) ok = has_zero;
    else
      for (uint32_t p = 0; p < k; p++)
        if (j->pat[(size_t)p * o->usz + x] == b[x]) {
          ok = 1;
          break;
        }
    j->expl[x] = (uint8_t)ok;
    if (!ok) all = 0;
  }
  return all ? 1 : 0;
}

static void fill_legal_desc(fl_jctx *j, const uint8_t *legal, fl_sample *s) {
  s->nlegal = 0;
  for (uint32_t i = 0; i < j->n && s->nlegal < FL_SAMPLE_LEGAL; i++)
    if (legal[i]) {
      fl_srcdesc *d = &s->legal[s->nlegal++];
      d->type = j->snap[i].type;
      d->op = j->snap[i].op;
      d->str = j->snap[i].str;
      d->actor = j->snap[i].actor;
      d->gen = j->snap[i].gen;
      d->ts = j->snap[i].ts;
      d->te = j->snap[i].te;
    }
}

static void set_sup(fl_sample *s, const fl_event *e) {
  if (!e) return;
  s->has_sup = 1;
  s->sup_op = e->op;
  s->sup_ts = e->ts;
  s->sup_te = e->te;
  s->sup_actor = e->actor;
}

static const char *actor_label(fl_oracle *o, int a, char *buf, size_t n) {
  if (a < 0 || a >= o->nactors) snprintf(buf, n, "?");
  else snprintf(buf, n, "%s#%d", fl_role_name(o->actors[a].role), o->actors[a].idx);
  return buf;
}

static void fmt_ts(char *buf, size_t n, uint64_t v) {
  if (v == FL_INF) snprintf(buf, n, "inf");
  else snprintf(buf, n, "%llu", (unsigned long long)v);
}

/* classify a content violation; returns V_* */
static int classify(fl_jctx *j, uint32_t u, uint64_t rs, uint64_t re, const uint8_t *b, uint32_t len,
                    const uint8_t *legal, fl_sample *s) {
  fl_oracle *o = j->o;
  fill_legal_desc(j, legal, s);
  /* first byte not explained by a legal source */
  check_with(j, u, b, len, legal, 0, 0);
  s->first_bad = -1;
  for (uint32_t x = 0; x < len; x++)
    if (!j->expl[x]) {
      s->first_bad = (int32_t)x;
      break;
    }
  if (fl_all_zero(b, len)) {
    snprintf(s->seen, sizeof s->seen, "zeros (%u bytes)", len);
    /* the superseder of the ZEROs: the latest legal DATA is what should have been seen */
    return V_LOST_WRITE;
  }
  uint64_t hu = 0, hg = 0;
  int hdr = fl_pattern_decode(b, len, o->run, &hu, &hg);
  if (hdr && hu != u) {
    snprintf(s->seen, sizeof s->seen, "data of unit %llu gen %llu (misplaced)", (unsigned long long)hu,
             (unsigned long long)hg);
    return V_GARBAGE;
  }
  if (hdr) {
    fl_pattern_fill(j->tmp, o->usz, o->run, u, hg);
    int exact = memcmp(j->tmp, b, len) == 0;
    int idx = -1;
    for (uint32_t i = 0; i < j->n; i++)
      if (j->snap[i].type == EV_DATA && j->snap[i].gen == hg) idx = (int)i;
    if (exact) {
      if (idx >= 0) {
        const fl_event *e = &j->snap[idx];
        char a[32], b1[24], b2[24];
        fmt_ts(b1, sizeof b1, e->ts);
        fmt_ts(b2, sizeof b2, e->te);
        snprintf(s->seen, sizeof s->seen, "gen %llu (%s by %s [%s,%s] %s)", (unsigned long long)hg,
                 fl_op_name(e->op), actor_label(o, e->actor, a, sizeof a), b1, b2, fl_str_name(e->str));
        if (e->ts >= re) return V_GARBAGE; /* a write that started after the read ended */
        if (e->str == ST_NOOP) return V_GARBAGE; /* a store that faulted before its first byte */
        const fl_event *sup = first_superseder(j->snap, j->n, e->te, rs);
        if (!sup && e->str == ST_EPHEMERAL) {
          for (uint32_t i = 0; i < j->n; i++)
            if (j->snap[i].type == EV_ZAP && j->snap[i].ts > e->te && j->snap[i].te < rs) {
              sup = &j->snap[i];
              break;
            }
        }
        set_sup(s, sup);
        return V_STALE;
      }
      for (int g = 0; g < FL_GRAVES; g++)
        if (j->graves[g].gen == hg && hg) {
          snprintf(s->seen, sizeof s->seen, "gen %llu (pruned from the log)", (unsigned long long)hg);
          if (j->graves[g].sup_op != 0xff) {
            s->has_sup = 1;
            s->sup_op = j->graves[g].sup_op;
            s->sup_ts = j->graves[g].sup_ts;
            s->sup_te = j->graves[g].sup_te;
            s->sup_actor = j->graves[g].sup_actor;
          }
          return V_STALE;
        }
      if (hg > 0 && hg <= atomic_load(&o->gen)) {
        snprintf(s->seen, sizeof s->seen, "gen %llu (pruned; superseder unknown)", (unsigned long long)hg);
        return V_STALE;
      }
      snprintf(s->seen, sizeof s->seen, "gen %llu (never issued)", (unsigned long long)hg);
      return V_GARBAGE;
    }
  }
  /* torn: can every byte be explained by some logged event (legal or not)? */
  memset(j->legal2, 1, j->n);
  uint32_t nb = 0;
  for (uint32_t x = 0; x < len; x++) nb += !j->expl[x];
  int r = check_with(j, u, b, len, j->legal2, hg, hdr);
  if (r) {
    /* which superseded event explains the first bad byte? */
    if (s->first_bad >= 0) {
      uint32_t x = (uint32_t)s->first_bad;
      for (uint32_t i = 0; i < j->n; i++) {
        const fl_event *e = &j->snap[i];
        if (legal[i] || !is_value(e)) continue;
        int m;
        if (e->type == EV_ZERO) m = b[x] == 0;
        else {
          fl_pattern_fill(j->tmp, o->usz, o->run, u, e->gen);
          m = j->tmp[x] == b[x];
        }
        if (m) {
          set_sup(s, first_superseder(j->snap, j->n, e->te, rs));
          break;
        }
      }
    }
    snprintf(s->seen, sizeof s->seen, "torn: %u of %u bytes from superseded sources, first at +%d (0x%02x)",
             nb, len, s->first_bad, s->first_bad >= 0 ? b[s->first_bad] : 0);
    return V_TORN_ILLEGAL;
  }
  snprintf(s->seen, sizeof s->seen, "garbage: %u of %u bytes unexplained, first at +%d (0x%02x)", nb, len,
           s->first_bad, s->first_bad >= 0 ? b[s->first_bad] : 0);
  return V_GARBAGE;
}

static void count_read_check(fl_oracle *o, int actor, int via) {
  FL_CHK(o, actor, C_UNIT_READS, 1);
  if (via == VIA_MMAP || via == VIA_FINAL_MMAP) FL_CHK(o, actor, C_UNIT_READS_MMAP, 1);
  else if (via == VIA_DIRECT || via == VIA_FINAL_DIRECT) FL_CHK(o, actor, C_UNIT_READS_DIRECT, 1);
  else FL_CHK(o, actor, C_UNIT_READS_PREAD, 1);
  if (via >= VIA_FINAL_PREAD && via <= VIA_FINAL_DIRECT) FL_CHK(o, actor, C_FINAL_UNITS, 1);
}

static void finish_sample(fl_oracle *o, fl_sample *s) {
  char a[32], b1[24], b2[24], c1[24], c2[24], sa[32];
  fmt_ts(b1, sizeof b1, s->rs);
  fmt_ts(b2, sizeof b2, s->re);
  int n = snprintf(s->detail, sizeof s->detail, "%s%s%s unit %u (file offset %llu) via %s by %s [%s,%s]: %s",
                   fl_vkind_name(s->kind), s->kind == V_FINAL_MISMATCH ? "/" : "",
                   s->kind == V_FINAL_MISMATCH ? fl_vkind_name(s->cls) : "", s->unit,
                   (unsigned long long)s->file_off, fl_via_name(s->via), actor_label(o, s->actor, a, sizeof a),
                   b1, b2, s->seen);
  if (s->has_sup && n > 0 && (size_t)n < sizeof s->detail) {
    fmt_ts(c1, sizeof c1, s->sup_ts);
    fmt_ts(c2, sizeof c2, s->sup_te);
    int w = snprintf(s->detail + n, sizeof s->detail - (size_t)n, "; superseded by %s by %s [%s,%s]",
                     fl_op_name(s->sup_op), actor_label(o, s->sup_actor, sa, sizeof sa), c1, c2);
    if (w > 0) n += w;
  }
  /* content verdicts: name up to 3 legal sources */
  for (int i = 0; i < s->nlegal && i < 3 && n > 0 && (size_t)n < sizeof s->detail; i++) {
    const fl_srcdesc *d = &s->legal[i];
    fmt_ts(c1, sizeof c1, d->ts);
    fmt_ts(c2, sizeof c2, d->te);
    int w;
    if (d->type == EV_DATA)
      w = snprintf(s->detail + n, sizeof s->detail - (size_t)n, "%s gen %llu (%s [%s,%s] %s)", i ? "," : "; legal:",
                   (unsigned long long)d->gen, fl_op_name(d->op), c1, c2, fl_str_name(d->str));
    else if (d->type == EV_ZERO)
      w = snprintf(s->detail + n, sizeof s->detail - (size_t)n, "%s zeros (%s [%s,%s] %s)", i ? "," : "; legal:",
                   fl_op_name(d->op), c1, c2, fl_str_name(d->str));
    else
      w = snprintf(s->detail + n, sizeof s->detail - (size_t)n, "%s size %llu (%s [%s,%s])", i ? "," : "; legal:",
                   (unsigned long long)d->gen, fl_op_name(d->op), c1, c2);
    if (w <= 0) break;
    n += w;
  }
}

int fl_judge_content(fl_oracle *o, fl_jctx *j, int actor, uint32_t u, uint64_t rs, uint64_t re,
                     const uint8_t *b, uint32_t len, int via, int final) {
  count_read_check(o, actor, via);
  if (len > o->usz) len = o->usz;
  snapshot(o, j, u);
  if (rs <= j->floor) {
    FL_SKIP(o, actor, S_LOG_OVERFLOW, 1);
    return J_SKIP;
  }
  if (j->lost_te) {
    int ok = 0;
    for (uint32_t i = 0; i < j->n; i++)
      if (is_strong_value(&j->snap[i]) && j->snap[i].ts > j->lost_te && j->snap[i].te < rs) ok = 1;
    if (!ok) {
      FL_SKIP(o, actor, S_LOG_OVERFLOW, 1);
      return J_SKIP;
    }
  }
  compute_legal(j, rs, re, 1, j->legal);
  int ndata = 0;
  for (uint32_t i = 0; i < j->n; i++) ndata += j->legal[i] && j->snap[i].type == EV_DATA;
  if (ndata > MAX_CAND) {
    FL_SKIP(o, actor, S_CANDIDATE_OVERFLOW, 1);
    return J_SKIP;
  }
  int r = check_with(j, u, b, len, j->legal, 0, 0);
  if (r == 2) return J_OK;
  if (r == 1) {
    FL_LEG(o, actor, L_TORN_READS, 1);
    return J_OK_TORN;
  }
  /* POST_EOF recheck: ZAPs ignored */
  compute_legal(j, rs, re, 0, j->legal2);
  if (memcmp(j->legal, j->legal2, j->n) != 0) {
    {
      const uint8_t *l2 = j->legal2;
      int r2 = check_with(j, u, b, len, l2, 0, 0);
      if (r2) {
        fl_sample s;
        memset(&s, 0, sizeof s);
        if (o->post_eof_allowed) {
          FL_LEG(o, actor, L_POST_EOF_DATA, 1);
          return J_POST_EOF;
        }
        s.kind = V_POST_EOF_DATA;
        s.cls = V_POST_EOF_DATA;
        s.via = (uint8_t)via;
        s.actor = (uint16_t)actor;
        s.unit = u;
        s.file_off = (uint64_t)u * o->usz;
        s.rs = rs;
        s.re = re;
        s.first_bad = -1;
        fill_legal_desc(j, j->legal, &s);
        snprintf(s.seen, sizeof s.seen, "mmap data stored past EOF, visible after the file was extended");
        for (uint32_t i = 0; i < j->n; i++)
          if (j->snap[i].type == EV_ZAP && j->snap[i].te < rs) set_sup(&s, &j->snap[i]);
        finish_sample(o, &s);
        fl_add(&o->actors[actor].viol[V_POST_EOF_DATA], 1);
        fl_record_sample(o, &s);
        return J_VIOL;
      }
    }
  }
  fl_sample s;
  memset(&s, 0, sizeof s);
  s.via = (uint8_t)via;
  s.actor = (uint16_t)actor;
  s.unit = u;
  s.rs = rs;
  s.re = re;
  int cls = classify(j, u, rs, re, b, len, j->legal, &s);
  s.cls = (uint8_t)cls;
  s.kind = (uint8_t)(final ? V_FINAL_MISMATCH : cls);
  s.file_off = (uint64_t)u * o->usz + (s.first_bad > 0 ? (uint64_t)s.first_bad : 0);
  finish_sample(o, &s);
  fl_add(&o->actors[actor].viol[s.kind], 1);
  if (s.kind == V_STALE && s.has_sup) fl_add(&o->actors[actor].stale_by[s.sup_op], 1);
  fl_record_sample(o, &s);
  return J_VIOL;
}

int fl_legal_count(fl_oracle *o, uint32_t u, uint64_t rs, uint64_t re) {
  fl_jctx *j = fl_jctx_new(o);
  if (!j) return -1;
  snapshot(o, j, u);
  compute_legal(j, rs, re, 1, j->legal);
  int c = 0;
  for (uint32_t i = 0; i < j->n; i++) c += j->legal[i];
  fl_jctx_free(j);
  return c;
}

static void size_sample(fl_oracle *o, fl_sample *s, uint64_t rs, uint64_t re) {
  /* list the size events that were legal in the window, as sources */
  pthread_mutex_lock(&o->lock);
  uint64_t maxS = 0;
  for (uint32_t i = 0; i < o->slog->n; i++)
    if (s_strong(&o->sevents[i]) && o->sevents[i].te < rs && o->sevents[i].ts > maxS) maxS = o->sevents[i].ts;
  for (uint32_t i = 0; i < o->slog->n && s->nlegal < FL_SAMPLE_LEGAL; i++) {
    const fl_sevent *e = &o->sevents[i];
    if (e->ts >= re || (e->te != FL_INF && e->te < maxS) || e->str == ST_NOOP) continue;
    fl_srcdesc *d = &s->legal[s->nlegal++];
    d->type = 0;
    d->op = e->op;
    d->str = e->str;
    d->actor = e->actor;
    d->gen = e->size; /* for size sources, gen holds the size */
    d->ts = e->ts;
    d->te = e->te;
  }
  pthread_mutex_unlock(&o->lock);
}

int fl_judge_sigbus(fl_oracle *o, int actor, uint64_t fault_off, uint64_t rs, uint64_t re, int via, int is_store) {
  FL_CHK(o, actor, C_SIGBUS_CHECKS, 1);
  uint64_t page = fl_round_down(fault_off, FL_PAGE), mn, mx;
  if (fl_size_range(o, rs, re, &mn, &mx) != 0) {
    FL_SKIP(o, actor, S_SIZE_LOG_OVERFLOW, 1);
    return J_SKIP;
  }
  if (mn <= page) { /* §4.2 */
    FL_LEG(o, actor, is_store ? L_SIGBUS_WRITE : L_SIGBUS_READ, 1);
    return J_OK;
  }
  fl_sample s;
  memset(&s, 0, sizeof s);
  s.kind = s.cls = V_SIGBUS_INSIDE_EOF;
  s.via = (uint8_t)via;
  s.actor = (uint16_t)actor;
  s.unit = (uint32_t)(fault_off / o->usz);
  s.file_off = fault_off;
  s.rs = rs;
  s.re = re;
  s.first_bad = -1;
  size_sample(o, &s, rs, re);
  snprintf(s.seen, sizeof s.seen, "SIGBUS at page %llu (offset %llu) while every legal size was >= %llu",
           (unsigned long long)(page / FL_PAGE), (unsigned long long)page, (unsigned long long)mn);
  finish_sample(o, &s);
  fl_add(&o->actors[actor].viol[V_SIGBUS_INSIDE_EOF], 1);
  fl_record_sample(o, &s);
  return J_VIOL;
}

int fl_judge_short(fl_oracle *o, int actor, uint64_t off, uint64_t end_off, uint64_t rs, uint64_t re, int via) {
  FL_CHK(o, actor, C_SHORT_CHECKS, 1);
  uint64_t mn, mx;
  if (fl_size_range(o, rs, re, &mn, &mx) != 0) {
    FL_SKIP(o, actor, S_SIZE_LOG_OVERFLOW, 1);
    return J_SKIP;
  }
  if (mn <= end_off) { /* §4.3 */
    FL_LEG(o, actor, L_SHORT_READS, 1);
    return J_OK;
  }
  fl_sample s;
  memset(&s, 0, sizeof s);
  s.kind = s.cls = V_SHORT_READ_INSIDE_EOF;
  s.via = (uint8_t)via;
  s.actor = (uint16_t)actor;
  s.unit = (uint32_t)(end_off / o->usz);
  s.file_off = end_off;
  s.rs = rs;
  s.re = re;
  s.first_bad = -1;
  size_sample(o, &s, rs, re);
  snprintf(s.seen, sizeof s.seen, "read at %llu ended at %llu while every legal size was >= %llu",
           (unsigned long long)off, (unsigned long long)end_off, (unsigned long long)mn);
  finish_sample(o, &s);
  fl_add(&o->actors[actor].viol[V_SHORT_READ_INSIDE_EOF], 1);
  fl_record_sample(o, &s);
  return J_VIOL;
}

int fl_judge_no_sigbus(fl_oracle *o, int actor, uint64_t page_off, uint64_t rs, uint64_t re, int via) {
  uint64_t mn, mx;
  page_off = fl_round_down(page_off, FL_PAGE);
  if (fl_size_range(o, rs, re, &mn, &mx) != 0) return J_SKIP;
  if (mx > page_off) return J_OK; /* some legal size leaves the page (partly) inside EOF */
  fl_sample s;
  memset(&s, 0, sizeof s);
  s.kind = s.cls = V_MISSING_SIGBUS;
  s.via = (uint8_t)via;
  s.actor = (uint16_t)actor;
  s.unit = (uint32_t)(page_off / o->usz);
  s.file_off = page_off;
  s.rs = rs;
  s.re = re;
  s.first_bad = -1;
  size_sample(o, &s, rs, re);
  snprintf(s.seen, sizeof s.seen, "access to page %llu succeeded while every legal size was <= %llu",
           (unsigned long long)(page_off / FL_PAGE), (unsigned long long)mx);
  finish_sample(o, &s);
  fl_add(&o->actors[actor].viol[V_MISSING_SIGBUS], 1);
  fl_record_sample(o, &s);
  return J_VIOL;
}

void fl_violation(fl_oracle *o, int actor, int kind, int via, uint32_t unit, uint64_t file_off, const char *fmt, ...) {
  fl_sample s;
  memset(&s, 0, sizeof s);
  s.kind = s.cls = (uint8_t)kind;
  s.via = (uint8_t)via;
  s.actor = (uint16_t)(actor < 0 ? 0 : actor);
  s.unit = unit;
  s.file_off = file_off;
  s.first_bad = -1;
  s.rs = s.re = atomic_load(&o->clock);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s.seen, sizeof s.seen, fmt, ap);
  va_end(ap);
  finish_sample(o, &s);
  fl_add(&o->actors[actor < 0 ? 0 : actor].viol[kind], 1);
  fl_record_sample(o, &s);
}

void fl_record_sample(fl_oracle *o, const fl_sample *s) {
  atomic_fetch_add(&o->nsamples, 1);
  if (pthread_mutex_trylock(&o->sample_lock) != 0) {
    /* never block a reporter (the watchdog may run while a thread holds it) for long */
    for (int i = 0; i < 1000; i++) {
      if (pthread_mutex_trylock(&o->sample_lock) == 0) goto locked;
      fl_sleep_us(10);
    }
    return;
  }
locked:
  if (o->nstored < FL_MAX_SAMPLES) o->samples[o->nstored++] = *s;
  pthread_mutex_unlock(&o->sample_lock);
}

/* ------------------------------------------------------------------ sums */

#define SUMFN(name, field)                                                     \
  uint64_t name(fl_oracle *o, int k) {                                         \
    uint64_t t = 0;                                                            \
    for (int i = 0; i < o->nactors; i++) t += atomic_load(&o->actors[i].field[k]); \
    return t;                                                                  \
  }
SUMFN(fl_sum_ops, ops)
SUMFN(fl_sum_checks, checks)
SUMFN(fl_sum_legal, legal)
SUMFN(fl_sum_viol, viol)
SUMFN(fl_sum_skipped, skipped)
SUMFN(fl_sum_stale_by, stale_by)

uint64_t fl_total_violations(fl_oracle *o) {
  uint64_t t = 0;
  for (int k = 0; k < V__N; k++) t += fl_sum_viol(o, k);
  return t;
}
