/* Program runtime: configuration record, report (JSON + human summary), watchdog, actors as
 * threads or processes. */
#include "fl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *wdop_names[W__N] = {"none", "mmap-cycle", "mmap-access", "pread", "pwrite",
                                        "punch", "zero-range", "ftruncate", "fadvise", "madvise",
                                        "odirect-read", "server-request", "final-check", "lock-wait"};
const char *fl_wdop_name(int w) { return w >= 0 && w < W__N ? wdop_names[w] : "?"; }

void fl_prog_init(fl_prog *p, const char *program, int argc, char **argv) {
  memset(p, 0, sizeof *p);
  p->program = program;
  p->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20) ^ (fl_now_ns() & 0xfffff);
  p->seed &= 0xffffffffffffull;
  p->duration = 5;
  p->hang_timeout = 30;
  p->tl_interval = 1.0;
  p->first_violation_s = -1;
  p->progress = getenv("FL_PROGRESS") != NULL;
  size_t n = 0;
  for (int i = 0; i < argc && n < sizeof p->argv_line - 1; i++) {
    int w = snprintf(p->argv_line + n, sizeof p->argv_line - n, "%s%s", i ? " " : "", argv[i]);
    if (w < 0) break;
    n += (size_t)w;
  }
  if (n >= sizeof p->argv_line) p->argv_line[sizeof p->argv_line - 1] = 0;
}

int fl_common_opt(fl_prog *p, int c, const char *arg) {
  switch (c) {
    case 's':
      if (fl_parse_u64(arg, &p->seed)) {
        fprintf(stderr, "%s: bad --seed '%s'\n", p->program, arg);
        exit(2);
      }
      return 1;
    case 'd':
      if (fl_parse_double(arg, &p->duration) || p->duration < 0) {
        fprintf(stderr, "%s: bad --duration '%s'\n", p->program, arg);
        exit(2);
      }
      return 1;
    case 'j': p->json_path = arg; return 1;
    case 'q': p->quiet = 1; return 1;
    case 1000:
      if (fl_parse_double(arg, &p->hang_timeout) || p->hang_timeout <= 0) {
        fprintf(stderr, "%s: bad --hang-timeout '%s'\n", p->program, arg);
        exit(2);
      }
      return 1;
  }
  return 0;
}

static void cfg_set(fl_prog *p, const char *k, const char *v, int is_num) {
  for (int i = 0; i < p->ncfg; i++)
    if (strcmp(p->cfg[i].key, k) == 0) {
      snprintf(p->cfg[i].val, sizeof p->cfg[i].val, "%s", v);
      p->cfg[i].is_num = is_num;
      return;
    }
  if (p->ncfg >= FL_MAX_CFG) return;
  snprintf(p->cfg[p->ncfg].key, sizeof p->cfg[p->ncfg].key, "%s", k);
  snprintf(p->cfg[p->ncfg].val, sizeof p->cfg[p->ncfg].val, "%s", v);
  p->cfg[p->ncfg].is_num = is_num;
  p->ncfg++;
}
void fl_cfg_str(fl_prog *p, const char *k, const char *v) { cfg_set(p, k, v ? v : "", 0); }
void fl_cfg_num(fl_prog *p, const char *k, double v) {
  char b[64];
  snprintf(b, sizeof b, "%.10g", v);
  cfg_set(p, k, b, 1);
}

void fl_note(fl_prog *p, const char *fmt, ...) {
  if (p->nnotes >= FL_MAX_NOTES) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->notes[p->nnotes++], sizeof p->notes[0], fmt, ap);
  va_end(ap);
}

void fl_role_skipped(fl_prog *p, const char *role, const char *fmt, ...) {
  if (p->nroles_skipped >= 16) return;
  snprintf(p->roles_skipped[p->nroles_skipped].role, sizeof p->roles_skipped[0].role, "%s", role);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->roles_skipped[p->nroles_skipped].reason, sizeof p->roles_skipped[0].reason, fmt, ap);
  va_end(ap);
  p->nroles_skipped++;
}

void fl_prog_error(fl_prog *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->errbuf, sizeof p->errbuf, fmt, ap);
  va_end(ap);
  p->error = p->errbuf;
}

/* ------------------------------------------------------------------ report */

static const char *verdict_of(fl_prog *p, fl_oracle *o, int *code) {
  uint64_t v = o ? fl_total_violations(o) : 0;
  if (v) { *code = 1; return "violations"; }
  if (p->error) { *code = 2; return "error"; }
  if (p->vacuous) { *code = 2; return "vacuous"; }
  *code = 0;
  return "clean";
}

static double elapsed(fl_prog *p) {
  double e = (p->t_end > 0 ? p->t_end : fl_now_s()) - p->t_start;
  return p->t_start > 0 && e > 0 ? e : 0;
}

void fl_report_json(fl_prog *p, fl_oracle *o, FILE *f, const char *verdict, int code) {
  fl_json j;
  fl_json_init(&j, f);
  fl_json_obj(&j);
  fl_json_kstr(&j, "program", p->program);
  fl_json_kstr(&j, "version", FL_VERSION);
  fl_json_ku64(&j, "schema", FL_SCHEMA);
  fl_json_ku64(&j, "seed", p->seed);
  fl_json_kstr(&j, "argv", p->argv_line);
  fl_json_key(&j, "config");
  fl_json_obj(&j);
  for (int i = 0; i < p->ncfg; i++) {
    fl_json_key(&j, p->cfg[i].key);
    if (p->cfg[i].is_num) {
      double d = strtod(p->cfg[i].val, NULL);
      if (d == (double)(int64_t)d && d > -9e15 && d < 9e15) fl_json_i64(&j, (int64_t)d);
      else fl_json_dbl(&j, d);
    } else {
      fl_json_str(&j, p->cfg[i].val);
    }
  }
  fl_json_end_obj(&j);
  fl_json_key(&j, "env");
  fl_json_obj(&j);
  fl_json_kstr(&j, "kernel", p->env.kernel);
  fl_json_kstr(&j, "kernel_version", p->env.kernel_version);
  fl_json_kstr(&j, "machine", p->env.machine);
  fl_json_ki64(&j, "nproc", p->env.nproc);
  fl_json_ku64(&j, "page_size", FL_PAGE);
  fl_json_kstr(&j, "target", p->env.target[0] ? p->env.target : p->env.target_dir);
  fl_json_kstr(&j, "fstype", p->env.fstype);
  fl_json_kstr(&j, "statfs_type", p->env.statfs_name);
  char ft[32];
  snprintf(ft, sizeof ft, "0x%lx", p->env.f_type);
  fl_json_kstr(&j, "f_type", ft);
  fl_json_kstr(&j, "mountpoint", p->env.mountpoint);
  fl_json_kstr(&j, "mount_source", p->env.mount_source);
  fl_json_kstr(&j, "mount_options", p->env.mount_options);
  fl_json_kstr(&j, "super_options", p->env.super_options);
  fl_json_end_obj(&j);
  double el = elapsed(p);
  fl_json_kdbl(&j, "duration_s", el);
  fl_json_key(&j, "ops");
  fl_json_obj(&j);
  for (int k = 0; k < K__N; k++) fl_json_ku64(&j, fl_opk_name(k), o ? fl_sum_ops(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_key(&j, "rates");
  fl_json_obj(&j);
  for (int k = 0; k < K__N; k++) fl_json_kdbl(&j, fl_opk_name(k), o && el > 0 ? (double)fl_sum_ops(o, k) / el : 0);
  fl_json_end_obj(&j);
  /* per role: sum of ops of the actors of each role */
  fl_json_key(&j, "roles");
  fl_json_obj(&j);
  if (o) {
    for (int r = 0; r < R__N; r++) {
      int n = 0;
      uint64_t sums[K__N] = {0};
      for (int a = 0; a < o->nactors; a++)
        if (o->actors[a].role == r) {
          n++;
          for (int k = 0; k < K__N; k++) sums[k] += atomic_load(&o->actors[a].ops[k]);
        }
      if (!n) continue;
      fl_json_key(&j, fl_role_name(r));
      fl_json_obj(&j);
      fl_json_ki64(&j, "actors", n);
      fl_json_key(&j, "ops");
      fl_json_obj(&j);
      for (int k = 0; k < K__N; k++)
        if (sums[k]) fl_json_ku64(&j, fl_opk_name(k), sums[k]);
      fl_json_end_obj(&j);
      fl_json_key(&j, "per_s");
      fl_json_obj(&j);
      for (int k = 0; k < K__N; k++)
        if (sums[k]) fl_json_kdbl(&j, fl_opk_name(k), el > 0 ? (double)sums[k] / el : 0);
      fl_json_end_obj(&j);
      fl_json_end_obj(&j);
    }
  }
  fl_json_end_obj(&j);
  fl_json_key(&j, "checks");
  fl_json_obj(&j);
  for (int k = 0; k < C__N; k++) fl_json_ku64(&j, fl_chk_name(k), o ? fl_sum_checks(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_key(&j, "legal");
  fl_json_obj(&j);
  for (int k = 0; k < L__N; k++) fl_json_ku64(&j, fl_leg_name(k), o ? fl_sum_legal(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_kbool(&j, "post_eof_allowed", o ? o->post_eof_allowed : 0);
  fl_json_key(&j, "violations");
  fl_json_obj(&j);
  for (int k = 0; k < V__N; k++) fl_json_ku64(&j, fl_vkind_name(k), o ? fl_sum_viol(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_ku64(&j, "violations_total", o ? fl_total_violations(o) : 0);
  fl_json_key(&j, "stale_by");
  fl_json_obj(&j);
  for (int k = 0; k < OP__N; k++) fl_json_ku64(&j, fl_op_name(k), o ? fl_sum_stale_by(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_key(&j, "violation_samples");
  fl_json_arr(&j);
  uint32_t ns = o ? o->nstored : 0;
  for (uint32_t i = 0; i < ns && i < FL_MAX_SAMPLES; i++) {
    const fl_sample *s = &o->samples[i];
    fl_json_obj(&j);
    fl_json_kstr(&j, "kind", fl_vkind_name(s->kind));
    fl_json_kstr(&j, "class", fl_vkind_name(s->cls));
    fl_json_kstr(&j, "via", fl_via_name(s->via));
    fl_json_ku64(&j, "unit", s->unit);
    fl_json_ku64(&j, "file_offset", s->file_off);
    fl_json_ki64(&j, "first_bad_byte", s->first_bad);
    fl_json_ku64(&j, "rs", s->rs);
    fl_json_ku64(&j, "re", s->re);
    char a[48];
    if (s->actor < o->nactors)
      snprintf(a, sizeof a, "%s#%d", fl_role_name(o->actors[s->actor].role), o->actors[s->actor].idx);
    else
      snprintf(a, sizeof a, "?");
    fl_json_kstr(&j, "actor", a);
    fl_json_ki64(&j, "pid", s->actor < o->nactors ? o->actors[s->actor].pid : 0);
    fl_json_kstr(&j, "seen", s->seen);
    fl_json_key(&j, "superseded_by");
    if (s->has_sup) {
      fl_json_obj(&j);
      fl_json_kstr(&j, "op", fl_op_name(s->sup_op));
      if (s->sup_actor < o->nactors)
        snprintf(a, sizeof a, "%s#%d", fl_role_name(o->actors[s->sup_actor].role), o->actors[s->sup_actor].idx);
      fl_json_kstr(&j, "actor", a);
      fl_json_ku64(&j, "ts", s->sup_ts);
      if (s->sup_te == FL_INF) fl_json_key(&j, "te"), fl_json_null(&j);
      else fl_json_ku64(&j, "te", s->sup_te);
      fl_json_end_obj(&j);
    } else {
      fl_json_null(&j);
    }
    fl_json_key(&j, "legal_sources");
    fl_json_arr(&j);
    for (int k = 0; k < s->nlegal; k++) {
      const fl_srcdesc *d = &s->legal[k];
      fl_json_obj(&j);
      fl_json_kstr(&j, "type", d->type ? fl_evtype_name(d->type) : "SIZE");
      fl_json_kstr(&j, "op", fl_op_name(d->op));
      fl_json_kstr(&j, "strength", fl_str_name(d->str));
      if (d->type == EV_DATA) fl_json_ku64(&j, "gen", d->gen);
      if (d->type == 0) fl_json_ku64(&j, "size", d->gen);
      fl_json_ku64(&j, "ts", d->ts);
      if (d->te == FL_INF) fl_json_key(&j, "te"), fl_json_null(&j);
      else fl_json_ku64(&j, "te", d->te);
      fl_json_end_obj(&j);
    }
    fl_json_end_arr(&j);
    fl_json_kstr(&j, "detail", s->detail);
    fl_json_end_obj(&j);
  }
  fl_json_end_arr(&j);
  uint64_t offered = o ? atomic_load(&o->nsamples) : 0;
  fl_json_ku64(&j, "violation_samples_dropped", offered > ns ? offered - ns : 0);
  fl_json_key(&j, "skipped");
  fl_json_obj(&j);
  fl_json_key(&j, "checks");
  fl_json_obj(&j);
  for (int k = 0; k < S__N; k++) fl_json_ku64(&j, fl_skip_name(k), o ? fl_sum_skipped(o, k) : 0);
  fl_json_end_obj(&j);
  fl_json_key(&j, "roles");
  fl_json_arr(&j);
  for (int i = 0; i < p->nroles_skipped; i++) {
    fl_json_obj(&j);
    fl_json_kstr(&j, "role", p->roles_skipped[i].role);
    fl_json_kstr(&j, "reason", p->roles_skipped[i].reason);
    fl_json_end_obj(&j);
  }
  fl_json_end_arr(&j);
  fl_json_end_obj(&j);
  fl_json_key(&j, "notes");
  fl_json_arr(&j);
  for (int i = 0; i < p->nnotes; i++) fl_json_str(&j, p->notes[i]);
  if (p->vacuous) fl_json_str(&j, p->vacuous_why);
  fl_json_end_arr(&j);
  fl_json_key(&j, "first_violation_s");
  if (p->first_violation_s >= 0) fl_json_dbl(&j, p->first_violation_s);
  else fl_json_null(&j);
  fl_json_key(&j, "timeline");
  fl_json_obj(&j);
  fl_json_kdbl(&j, "interval_s", p->tl_interval);
  fl_json_key(&j, "t");
  fl_json_arr(&j);
  for (int i = 0; i < p->ntl; i++) fl_json_dbl(&j, p->tl[i].t);
  fl_json_end_arr(&j);
  fl_json_key(&j, "ops");
  fl_json_arr(&j);
  for (int i = 0; i < p->ntl; i++) fl_json_u64(&j, p->tl[i].ops);
  fl_json_end_arr(&j);
  fl_json_key(&j, "violations");
  fl_json_arr(&j);
  for (int i = 0; i < p->ntl; i++) fl_json_u64(&j, p->tl[i].viol);
  fl_json_end_arr(&j);
  fl_json_end_obj(&j);
  fl_json_kstr(&j, "verdict", verdict);
  fl_json_ki64(&j, "exit_code", code);
  fl_json_key(&j, "error");
  if (p->error) fl_json_str(&j, p->error);
  else fl_json_null(&j);
  fl_json_end_obj(&j);
  fputc('\n', f);
}

static void write_json_file(fl_prog *p, fl_oracle *o, const char *verdict, int code) {
  if (!p->json_path) return;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", p->json_path, (int)getpid());
  fl_mkdirs_for(p->json_path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, "%s: cannot write %s: %s\n", p->program, tmp, strerror(errno));
    return;
  }
  fl_report_json(p, o, f, verdict, code);
  if (fclose(f) != 0 || rename(tmp, p->json_path) != 0)
    fprintf(stderr, "%s: cannot write %s: %s\n", p->program, p->json_path, strerror(errno));
}

static void summary(fl_prog *p, fl_oracle *o, const char *verdict, int code, FILE *f) {
  double el = elapsed(p);
  fprintf(f, "%s: %s (exit %d): %.2f s on %s (%s, %s), kernel %s, seed %llu\n", p->program, verdict, code, el,
          p->env.fstype[0] ? p->env.fstype : "?", p->env.mountpoint[0] ? p->env.mountpoint : "?",
          p->env.mount_options, p->env.kernel, (unsigned long long)p->seed);
  if (p->quiet) return;
  if (p->error) fprintf(f, "  error: %s\n", p->error);
  if (!o) return;
  fprintf(f, "  ops:");
  for (int k = 0; k < K__N; k++) {
    uint64_t v = fl_sum_ops(o, k);
    if (v) fprintf(f, " %s=%llu (%.0f/s)", fl_opk_name(k), (unsigned long long)v, el > 0 ? (double)v / el : 0.0);
  }
  fprintf(f, "\n  checks:");
  for (int k = 0; k < C__N; k++) {
    uint64_t v = fl_sum_checks(o, k);
    if (v) fprintf(f, " %s=%llu", fl_chk_name(k), (unsigned long long)v);
  }
  fprintf(f, "\n  legal:");
  int any = 0;
  for (int k = 0; k < L__N; k++) {
    uint64_t v = fl_sum_legal(o, k);
    if (v) fprintf(f, " %s=%llu", fl_leg_name(k), (unsigned long long)v), any = 1;
  }
  fprintf(f, "%s (post-EOF data %s)\n", any ? "" : " none", o->post_eof_allowed ? "tolerated" : "is a violation");
  fprintf(f, "  violations:");
  uint64_t tot = fl_total_violations(o);
  if (!tot) fprintf(f, " none");
  for (int k = 0; k < V__N; k++) {
    uint64_t v = fl_sum_viol(o, k);
    if (!v) continue;
    fprintf(f, " %s=%llu", fl_vkind_name(k), (unsigned long long)v);
    if (k == V_STALE) {
      fprintf(f, " (superseded by:");
      for (int q = 0; q < OP__N; q++) {
        uint64_t s = fl_sum_stale_by(o, q);
        if (s) fprintf(f, " %s=%llu", fl_op_name(q), (unsigned long long)s);
      }
      fprintf(f, ")");
    }
  }
  fprintf(f, "\n");
  int sk = 0;
  for (int k = 0; k < S__N; k++) {
    uint64_t v = fl_sum_skipped(o, k);
    if (v) fprintf(f, "%s %s=%llu", sk++ ? "" : "  skipped checks:", fl_skip_name(k), (unsigned long long)v);
  }
  if (sk) fprintf(f, "\n");
  for (int i = 0; i < p->nroles_skipped; i++)
    fprintf(f, "  skipped role %s: %s\n", p->roles_skipped[i].role, p->roles_skipped[i].reason);
  for (int i = 0; i < p->nnotes; i++) fprintf(f, "  note: %s\n", p->notes[i]);
  if (p->vacuous) fprintf(f, "  VACUOUS: %s\n", p->vacuous_why);
  uint32_t ns = o->nstored;
  for (uint32_t i = 0; i < ns && i < 12; i++) fprintf(f, "  FAIL %s\n", o->samples[i].detail);
  if (ns > 12) fprintf(f, "  ... %u more samples in the JSON report\n", ns - 12);
}

int fl_report(fl_prog *p, fl_oracle *o) {
  if (p->t_end <= 0) p->t_end = fl_now_s();
  if (o && p->first_violation_s < 0 && fl_total_violations(o) > 0) p->first_violation_s = elapsed(p);
  int code;
  const char *v = verdict_of(p, o, &code);
  write_json_file(p, o, v, code);
  summary(p, o, v, code, stdout);
  fflush(stdout);
  return code;
}

/* ------------------------------------------------------------------ watchdog */

static pthread_t wd_thread;
static _Atomic int wd_running;
static pid_t wd_children[FL_MAX_ACTORS];
static _Atomic int wd_nchildren;
static fl_prog *wd_prog;
static fl_oracle *wd_oracle;

void fl_watchdog_set_children(const pid_t *pids, int n) {
  if (n > FL_MAX_ACTORS) n = FL_MAX_ACTORS;
  for (int i = 0; i < n; i++) wd_children[i] = pids[i];
  atomic_store(&wd_nchildren, n);
}

int fl_watchdog_check(fl_prog *p, fl_oracle *o) {
  uint64_t now = fl_now_ns(), lim = (uint64_t)(p->hang_timeout * 1e9);
  int hung = -1;
  for (int a = 0; a < o->nactors; a++) {
    uint64_t st = atomic_load_explicit(&o->actors[a].wd_start_ns, memory_order_acquire);
    if (st && now > st && now - st > lim) {
      hung = a;
      break;
    }
  }
  if (hung < 0) return 0;
  static _Atomic int once;
  if (atomic_exchange(&once, 1)) return 1;
  atomic_store(&o->aborted, 1);
  atomic_store(&o->stop, 1);
  fprintf(stderr, "%s: HANG: an operation has been pending for more than %.0f s; pending operations:\n", p->program,
          p->hang_timeout);
  for (int a = 0; a < o->nactors; a++) {
    fl_actor *x = &o->actors[a];
    uint64_t st = atomic_load(&x->wd_start_ns);
    if (!st) continue;
    double age = st < now ? (double)(now - st) / 1e9 : 0.0;
    fprintf(stderr, "  %s#%d (pid %d): %s offset %llu length %llu, pending %.1f s\n", fl_role_name(x->role), x->idx,
            x->pid, fl_wdop_name((int)atomic_load(&x->wd_op)), (unsigned long long)atomic_load(&x->wd_off),
            (unsigned long long)atomic_load(&x->wd_len), age);
    if (age * 1e9 > (double)lim)
      fl_violation(o, a, V_HANG, VIA_WATCHDOG, (uint32_t)(atomic_load(&x->wd_off) / (o->usz ? o->usz : 1)),
                   atomic_load(&x->wd_off), "%s offset %llu length %llu pending for %.1f s (pid %d)",
                   fl_wdop_name((int)atomic_load(&x->wd_op)), (unsigned long long)atomic_load(&x->wd_off),
                   (unsigned long long)atomic_load(&x->wd_len), age, x->pid);
  }
  fl_note(p, "run aborted by the watchdog (HANG); the op counts are those at the time of the hang");
  int n = atomic_load(&wd_nchildren);
  for (int i = 0; i < n; i++)
    if (wd_children[i] > 0) kill(wd_children[i], SIGKILL);
  fl_report(p, o);
  if (p->cleanup_path) unlink(p->cleanup_path);
  fflush(NULL);
  _exit(1);
}

/* Timeline: cumulative ops and violations, sampled every tl_interval seconds by the watchdog
 * thread (first_violation_s at its 200 ms resolution); with FL_PROGRESS in the environment each
 * sample is also printed on stderr as "PROGRESS t=SEC ops=N violations=N". */
static void tl_sample(fl_prog *p, fl_oracle *o, int force) {
  if (!p || !o || p->t_start <= 0) return;
  double el = (p->t_end > 0 ? p->t_end : fl_now_s()) - p->t_start;
  if (el < 0) el = 0;
  uint64_t viol = fl_total_violations(o);
  if (viol > 0 && p->first_violation_s < 0) p->first_violation_s = el;
  if (!force && p->ntl > 0 && el - p->tl[p->ntl - 1].t < p->tl_interval * 0.999) return;
  if (!force && p->ntl == 0 && el < p->tl_interval * 0.999) return;
  if (p->ntl > 0 && el <= p->tl[p->ntl - 1].t) return;
  if (p->ntl == FL_MAX_TL) { /* keep every other sample, double the interval */
    int k = 0;
    for (int i = 1; i < p->ntl; i += 2) p->tl[k++] = p->tl[i];
    p->ntl = k;
    p->tl_interval *= 2;
  }
  uint64_t ops = 0;
  for (int k = 0; k < K__N; k++) ops += fl_sum_ops(o, k);
  p->tl[p->ntl].t = el;
  p->tl[p->ntl].ops = ops;
  p->tl[p->ntl].viol = viol;
  p->ntl++;
  if (p->progress)
    fprintf(stderr, "PROGRESS t=%.2f ops=%llu violations=%llu\n", el, (unsigned long long)ops,
            (unsigned long long)viol);
}

static void *wd_main(void *arg) {
  (void)arg;
  while (atomic_load(&wd_running)) {
    fl_watchdog_check(wd_prog, wd_oracle);
    tl_sample(wd_prog, wd_oracle, 0);
    fl_sleep_us(200000);
  }
  return NULL;
}

void fl_watchdog_start(fl_prog *p, fl_oracle *o) {
  wd_prog = p;
  wd_oracle = o;
  atomic_store(&wd_running, 1);
  if (pthread_create(&wd_thread, NULL, wd_main, NULL) != 0) atomic_store(&wd_running, 0);
}

void fl_watchdog_stop(void) {
  if (atomic_exchange(&wd_running, 0)) {
    pthread_join(wd_thread, NULL);
    tl_sample(wd_prog, wd_oracle, 1);
  }
}

/* ------------------------------------------------------------------ actors */

typedef struct {
  fl_actor_fn fn;
  void *arg;
  int actor;
} tstart;

static void *thread_main(void *x) {
  tstart *t = x;
  t->fn(t->arg, t->actor);
  return NULL;
}

int fl_run_actors(fl_prog *p, fl_oracle *o, int n, const int *ids, fl_actor_fn *fns, void **args, double duration) {
  int rc = 0;
  double t0 = fl_now_s();
  if (!p->procs) {
    pthread_t *th = calloc((size_t)n, sizeof *th);
    tstart *ts = calloc((size_t)n, sizeof *ts);
    if (!th || !ts) {
      fl_prog_error(p, "out of memory");
      return -1;
    }
    int started = 0;
    for (int i = 0; i < n; i++) {
      ts[i].fn = fns[i];
      ts[i].arg = args[i];
      ts[i].actor = ids[i];
      o->actors[ids[i]].pid = (int)getpid();
      if (pthread_create(&th[i], NULL, thread_main, &ts[i]) != 0) {
        fl_prog_error(p, "pthread_create failed");
        atomic_store(&o->stop, 1);
        rc = -1;
        break;
      }
      started++;
    }
    while (!atomic_load(&o->stop) && fl_now_s() - t0 < duration) fl_sleep_us(20000);
    atomic_store(&o->stop, 1);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    free(th);
    free(ts);
    return rc;
  }
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  if (!pids) return -1;
  fflush(NULL);
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      fl_prog_error(p, "fork failed: %s", strerror(errno));
      atomic_store(&o->stop, 1);
      rc = -1;
      break;
    }
    if (pid == 0) {
      o->actors[ids[i]].pid = (int)getpid();
      fns[i](args[i], ids[i]);
      fflush(NULL);
      _exit(0);
    }
    pids[i] = pid;
    o->actors[ids[i]].pid = (int)pid;
  }
  fl_watchdog_set_children(pids, n);
  int alive = 0;
  double failed_at = 0;
  for (int i = 0; i < n; i++) alive += pids[i] > 0;
  while (alive > 0) {
    /* a failed child may have died holding a shared lock: give the others 2 s, then kill them */
    if (failed_at > 0 && fl_now_s() - failed_at > 2.0) {
      for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
      failed_at = -1;
    }
    if (!atomic_load(&o->stop) && fl_now_s() - t0 >= duration) atomic_store(&o->stop, 1);
    int st;
    pid_t w = waitpid(-1, &st, WNOHANG);
    if (w > 0) {
      for (int i = 0; i < n; i++)
        if (pids[i] == w) {
          pids[i] = -pids[i];
          alive--;
          int bad = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
          if (bad) {
            const fl_actor *x = &o->actors[ids[i]];
            if (WIFSIGNALED(st))
              fl_prog_error(p, "%s#%d (pid %d) was killed by signal %d", fl_role_name(x->role), x->idx, (int)w,
                            WTERMSIG(st));
            else
              fl_prog_error(p, "%s#%d (pid %d) exited with status %d", fl_role_name(x->role), x->idx, (int)w,
                            WEXITSTATUS(st));
            atomic_store(&o->stop, 1);
            if (failed_at == 0) failed_at = fl_now_s();
            rc = -1;
          }
        }
      continue;
    }
    if (w < 0 && errno == ECHILD) break;
    fl_sleep_us(20000);
  }
  fl_watchdog_set_children(NULL, 0);
  free(pids);
  return rc;
}

int fl_final_mmap_check(fl_oracle *o, fl_jctx *j, int actor, int fd, uint8_t *buf, uint64_t fsize, uint32_t usz,
                        uint32_t nunits) {
  uint8_t *m = mmap(NULL, fsize, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -1;
  for (uint32_t u = 0; u < nunits; u++) {
    uintptr_t fault;
    uint64_t rs = fl_obs_begin(o, actor);
    int sig = fl_guarded_read(buf, m + (size_t)u * usz, usz, &fault);
    uint64_t re = fl_tick(o);
    uint64_t off = (uint64_t)(fault - (uintptr_t)m);
    if (sig == 0) fl_judge_content(o, j, actor, u, rs, re, buf, usz, VIA_FINAL_MMAP, 1);
    else if (sig == SIGBUS) fl_judge_sigbus(o, actor, off, rs, re, VIA_FINAL_MMAP, 0);
    else fl_violation(o, actor, V_IO_ERROR, VIA_FINAL_MMAP, u, off, "SIGSEGV at file offset %llu inside the mapping",
                      (unsigned long long)off);
    fl_obs_end(o, actor);
  }
  munmap(m, fsize);
  return 0;
}
