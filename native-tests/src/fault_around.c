/* fault_around: truncate and punch against many mapped, cached pages.
 * A main thread keeps the whole file mapped and prefaulted (page cache and PTEs populated, large
 * writes so the page cache may use large folios), then truncates down to a random (often
 * sub-page) size or punches a random range, and checks right away:
 *   - no PTE beyond the EOF page is present (/proc/self/pagemap), before and after faulting the EOF
 *     page (which triggers fault-around of the cached neighbours);
 *   - every page wholly beyond EOF raises SIGBUS (MISSING_SIGBUS otherwise), the EOF page does not,
 *     the EOF page tail reads zeros, the data below EOF is intact (the oracle judges every unit);
 *   - after a punch, zeros in the range and intact neighbours;
 *   - page-cache residency beyond EOF (mincore) is reported as legal.cached_beyond_eof (a large
 *     folio straddling EOF may legitimately stay cached).
 * Concurrent mapper threads keep their own long-lived mappings and read random units all the time
 * (judged with the oracle, MISSING_SIGBUS included), so faults and fault-around race the
 * truncations. */
#include "fl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static fl_prog P;
static fl_oracle *O;
static char PATH[4096], DIR_[4096];
static uint32_t US, NU, NP, UPP;
static uint64_t FS;
static int N_MAP = 1, KEEP, PAGEMAP_OK;
static double INJ_TRUNC_SKIP; /* self-test: a truncation logged but not performed */

typedef struct {
  int a, fd;
  fl_rng rng;
  fl_jctx *j;
  uint8_t *buf;
  uint64_t *gens;
} worker;

static void winit(worker *w, int a) {
  memset(w, 0, sizeof *w);
  w->a = a;
  w->fd = open(PATH, O_RDWR);
  fl_rng_seed(&w->rng, P.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(a + 1)));
  w->j = fl_jctx_new(O);
  w->buf = malloc(FS);
  w->gens = calloc(NU, sizeof *w->gens);
  if (w->fd < 0 || !w->j || !w->buf || !w->gens) {
    fprintf(stderr, "fault_around: set-up failed: %s\n", strerror(errno));
    exit(3);
  }
}

static void wfini(worker *w) {
  close(w->fd);
  fl_jctx_free(w->j);
  free(w->buf);
  free(w->gens);
}

static void do_pwrite(worker *w, uint32_t u0, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    w->gens[i] = fl_new_gen(O);
    fl_pattern_fill(w->buf + (size_t)i * US, US, O->run, u0 + i, w->gens[i]);
  }
  fl_opspec sp = {.op = OP_PWRITE, .actor = (uint16_t)w->a, .u0 = u0, .n = n, .gens = w->gens};
  fl_publish(O, w->a);
  fl_wd_begin(O, w->a, W_PWRITE, (uint64_t)u0 * US, (uint64_t)n * US);
  uint64_t ts = fl_begin(O, &sp, 0);
  ssize_t r = pwrite(w->fd, w->buf, (size_t)n * US, (off_t)u0 * US);
  uint64_t te = fl_tick(O);
  fl_wd_end(O, w->a);
  fl_end(O, &sp, ts, te, r == (ssize_t)n * US ? OUT_OK : OUT_FAILED);
  fl_obs_end(O, w->a);
  FL_OPS(O, w->a, K_PWRITE, 1);
  FL_OPS(O, w->a, K_PWRITE_UNITS, n);
  if (r != (ssize_t)n * US) fl_violation(O, w->a, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)u0 * US, "pwrite: %zd", r);
}

static void resize(worker *w, uint64_t nw) {
  uint64_t old = atomic_load(&O->cur_size);
  int skip = nw < old && fl_rng_chance(&w->rng, INJ_TRUNC_SKIP);
  if (skip) FL_OPS(O, w->a, K_INJECTED, 1);
  fl_opspec sp = {.op = (uint8_t)(nw < old ? OP_TRUNC : OP_EXTEND), .actor = (uint16_t)w->a, .resize = 1,
                  .old_size = old, .new_size = nw};
  fl_publish(O, w->a);
  fl_wd_begin(O, w->a, W_FTRUNCATE, nw, 0);
  uint64_t ts = fl_begin(O, &sp, 0);
  int r = skip ? 0 : ftruncate(w->fd, (off_t)nw);
  uint64_t te = fl_tick(O);
  fl_wd_end(O, w->a);
  fl_end(O, &sp, ts, te, r == 0 ? OUT_OK : OUT_FAILED);
  fl_obs_end(O, w->a);
  atomic_store(&O->cur_size, nw);
  FL_OPS(O, w->a, nw < old ? K_TRUNC_DOWN : K_TRUNC_UP, 1);
  if (r) fl_violation(O, w->a, V_IO_ERROR, VIA_SYSCALL, 0, nw, "ftruncate: %s", strerror(errno));
}

/* read unit u through mapping m, judge it (content or SIGBUS, and MISSING_SIGBUS) */
static int read_unit(worker *w, uint8_t *m, uint32_t u) {
  uintptr_t fault;
  uint64_t rs = fl_obs_begin(O, w->a);
  int sig = fl_guarded_read(w->buf, m + (size_t)u * US, US, &fault);
  uint64_t re = fl_tick(O);
  FL_OPS(O, w->a, K_MMAP_READS, 1);
  if (sig == SIGBUS) {
    fl_judge_sigbus(O, w->a, (uint64_t)(fault - (uintptr_t)m), rs, re, VIA_MMAP, 0);
  } else if (sig) {
    fl_violation(O, w->a, V_IO_ERROR, VIA_MMAP, u, (uint64_t)u * US, "signal %d", sig);
  } else {
    fl_judge_content(O, w->j, w->a, u, rs, re, w->buf, US, VIA_MMAP, 0);
    fl_judge_no_sigbus(O, w->a, (uint64_t)u * US, rs, re, VIA_MMAP);
  }
  fl_obs_end(O, w->a);
  return sig;
}

static void prefault(uint8_t *m) {
  uint64_t sink[1];
  for (uint64_t q = 0; q < FS; q += FL_PAGE) {
    uintptr_t fault;
    fl_guarded_read(sink, m + q, 8, &fault);
  }
}

/* pages [from, NP) of mapping m must have no PTE (the file is at most `from` pages long) */
static void pagemap_check(worker *w, int pm, uint8_t *m, uint32_t from, uint64_t size, const char *when) {
  if (pm < 0 || from >= NP) return;
  uint64_t *ent = calloc(NP - from, 8);
  if (!ent) return;
  ssize_t r = pread(pm, ent, (size_t)(NP - from) * 8, (off_t)(((uintptr_t)m / FL_PAGE + from) * 8));
  if (r == (ssize_t)(NP - from) * 8) {
    for (uint32_t i = 0; i < NP - from; i++) {
      FL_CHK(O, w->a, C_PAGEMAP_CHECKS, 1);
      if (ent[i] >> 63)
        fl_violation(O, w->a, V_MISSING_SIGBUS, VIA_PAGEMAP, (from + i) * UPP, (uint64_t)(from + i) * FL_PAGE,
                     "PTE present for page %u %s (i_size %llu, EOF page %llu)", from + i, when,
                     (unsigned long long)size, (unsigned long long)(fl_round_up(size, FL_PAGE) / FL_PAGE));
    }
  }
  free(ent);
}

static void mincore_info(worker *w, uint8_t *m, uint32_t from) {
  unsigned char *vec = calloc(NP, 1);
  if (vec && mincore(m, FS, vec) == 0)
    for (uint32_t p = from; p < NP; p++)
      if (vec[p] & 1) FL_LEG(O, w->a, L_CACHED_BEYOND_EOF, 1);
  free(vec);
}

static void rewrite(worker *w, uint32_t u0, uint32_t end, double p) {
  for (uint32_t u = u0; u < end;) {
    uint32_t len = 1 + (uint32_t)fl_rng_below(&w->rng, 8);
    if (u + len > end) len = end - u;
    if (fl_rng_chance(&w->rng, p)) do_pwrite(w, u, len);
    u += len;
  }
}

static void main_loop(int a) {
  worker w;
  winit(&w, a);
  int pm = PAGEMAP_OK ? open("/proc/self/pagemap", O_RDONLY) : -1;
  uint8_t *m = mmap(NULL, FS, PROT_READ, MAP_SHARED, w.fd, 0);
  if (m == MAP_FAILED) {
    fl_prog_error(&P, "mmap: %s", strerror(errno));
    return;
  }
  prefault(m);
  uint64_t iter = 0;
  while (fl_now_s() - P.t_start < P.duration && !atomic_load(&O->stop)) {
    iter++;
    if (fl_rng_chance(&w.rng, 0.6)) {
      /* truncate down: half page-aligned, half sub-page */
      uint64_t S = fl_rng_chance(&w.rng, 0.5) ? fl_rng_below(&w.rng, NP) * FL_PAGE : fl_rng_below(&w.rng, NU) * US;
      uint32_t eofp = (uint32_t)(fl_round_up(S, FL_PAGE) / FL_PAGE); /* first page wholly beyond EOF */
      fl_size_lock(O);
      resize(&w, S);
      pagemap_check(&w, pm, m, eofp, S, "right after the truncation");
      mincore_info(&w, m, eofp);
      if (S % FL_PAGE) { /* the EOF page: tail zeros; faulting it runs fault-around */
        for (uint32_t u = (eofp - 1) * UPP; u < eofp * UPP; u++) read_unit(&w, m, u);
        pagemap_check(&w, pm, m, eofp, S, "after faulting the EOF page");
      }
      if (eofp >= 2) read_unit(&w, m, (eofp - 2) * UPP);
      pagemap_check(&w, pm, m, eofp, S, "after faulting below EOF");
      for (uint32_t p = eofp; p < NP; p++) read_unit(&w, m, p * UPP); /* each must SIGBUS */
      for (uint32_t u = 0; u < (uint32_t)(S / US); u++) read_unit(&w, m, u);
      resize(&w, FS);
      rewrite(&w, (uint32_t)(S / US), NU, 0.5);
      fl_size_unlock(O);
      prefault(m);
      for (uint32_t u = (uint32_t)(S / US); u < NU; u++) read_unit(&w, m, u);
    } else {
      uint32_t n = 1 + (uint32_t)fl_rng_below(&w.rng, 4 * UPP), u0 = (uint32_t)fl_rng_below(&w.rng, NU);
      if (fl_rng_chance(&w.rng, 0.3)) { /* page-aligned */
        u0 = u0 / UPP * UPP;
        n = (uint32_t)fl_round_up(n, UPP);
      }
      if (u0 + n > NU) n = NU - u0;
      fl_opspec sp = {.op = OP_PUNCH, .actor = (uint16_t)a, .u0 = u0, .n = n};
      fl_publish(O, a);
      fl_wd_begin(O, a, W_PUNCH, (uint64_t)u0 * US, (uint64_t)n * US);
      uint64_t ts = fl_begin(O, &sp, 0);
      int r = fallocate(w.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)u0 * US, (off_t)n * US);
      uint64_t te = fl_tick(O);
      fl_wd_end(O, a);
      int err = errno;
      fl_end(O, &sp, ts, te, r == 0 ? OUT_OK : OUT_FAILED);
      fl_obs_end(O, a);
      FL_OPS(O, a, K_PUNCH, 1);
      if (r) fl_violation(O, a, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)u0 * US, "fallocate: %s", strerror(err));
      uint32_t lo = u0 >= UPP ? u0 - UPP : 0, hi = u0 + n + UPP < NU ? u0 + n + UPP : NU;
      for (uint32_t u = lo; u < hi; u++) read_unit(&w, m, u);
      fl_size_lock(O);
      rewrite(&w, u0, u0 + n, 0.7);
      fl_size_unlock(O);
      for (uint32_t u = lo; u < hi; u++) read_unit(&w, m, u);
    }
    if (iter % 64 == 0) { /* a fresh mapping now and then */
      munmap(m, FS);
      m = mmap(NULL, FS, PROT_READ, MAP_SHARED, w.fd, 0);
      if (m == MAP_FAILED) {
        fl_prog_error(&P, "mmap: %s", strerror(errno));
        break;
      }
      prefault(m);
    }
  }
  atomic_store(&O->stop, 1);
  if (m != MAP_FAILED) munmap(m, FS);
  if (pm >= 0) close(pm);
  wfini(&w);
}

static void role_mapper(void *arg, int a) {
  (void)arg;
  worker w;
  winit(&w, a);
  fl_guard_install();
  uint8_t *m = MAP_FAILED;
  uint64_t k = 0;
  while (!atomic_load(&O->stop)) {
    if (m == MAP_FAILED || k++ % 4096 == 0) {
      if (m != MAP_FAILED) munmap(m, FS);
      m = mmap(NULL, FS, PROT_READ, MAP_SHARED, w.fd, 0);
      if (m == MAP_FAILED) {
        fl_violation(O, a, V_IO_ERROR, VIA_SYSCALL, 0, 0, "mmap: %s", strerror(errno));
        break;
      }
      FL_OPS(O, a, K_MMAP_CYCLES, 1);
    }
    fl_wd_begin(O, a, W_MMAP_ACCESS, 0, FS);
    read_unit(&w, m, (uint32_t)fl_rng_below(&w.rng, NU));
    fl_wd_end(O, a);
  }
  if (m != MAP_FAILED) munmap(m, FS);
  wfini(&w);
}

static void *mapper_thread(void *x) {
  role_mapper(NULL, *(int *)x);
  return NULL;
}

static void final_check(int a) {
  worker w;
  winit(&w, a);
  for (uint32_t u = 0; u < NU; u++) {
    uint64_t rs = fl_obs_begin(O, a);
    ssize_t r = pread(w.fd, w.buf, US, (off_t)u * US);
    uint64_t re = fl_tick(O);
    if (r == (ssize_t)US) fl_judge_content(O, w.j, a, u, rs, re, w.buf, US, VIA_FINAL_PREAD, 1);
    else fl_violation(O, a, V_FINAL_MISMATCH, VIA_FINAL_PREAD, u, (uint64_t)u * US, "pread returned %zd", r);
    fl_obs_end(O, a);
  }
  fl_final_mmap_check(O, w.j, a, w.fd, w.buf, FS, US, NU);
  wfini(&w);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: fault_around [options] TARGET\n"
          "Truncate and punch against a fully mapped, cached file; check SIGBUS exactly beyond the EOF\n"
          "page, zeros in the EOF page tail, no PTE past EOF (pagemap), data intact; concurrent mapper\n"
          "threads race faults and fault-around against the truncations.\n"
          "Exit: 0 clean, 1 violations, 2 usage / set-up error / vacuous.\n\n" FL_COMMON_USAGE
          "  -u, --unit N            unit size: 512, 1024 (default) or 4096\n"
          "      --pages N           file size in pages (default 128; 2..65536)\n"
          "      --mappers N         concurrent mapper threads (default 1)\n"
          "      --inject trunc-skip[:RATE]  self-test: truncations logged but not performed (default\n"
          "                          rate 0.05): pages past the logged EOF stay mapped\n"
          "      --keep              keep the test file\n");
}

int main(int argc, char **argv) {
  fl_prog_init(&P, "fault_around", argc, argv);
  P.duration = 3;
  US = 1024;
  NP = 128;
  static struct option lo[] = {FL_COMMON_LONGOPTS,
                               {"unit", required_argument, 0, 'u'},
                               {"pages", required_argument, 0, 1},
                               {"mappers", required_argument, 0, 2},
                               {"keep", no_argument, 0, 3},
                               {"inject", required_argument, 0, 4},
                               {0, 0, 0, 0}};
  int c;
  uint64_t v;
  while ((c = getopt_long(argc, argv, "hs:d:j:qu:", lo, NULL)) != -1) {
    if (fl_common_opt(&P, c, optarg)) continue;
    switch (c) {
      case 'h': usage(stdout); return 0;
      case 'u':
        if (fl_parse_u64(optarg, &v) || (v != 512 && v != 1024 && v != 4096)) {
          fprintf(stderr, "fault_around: --unit must be 512, 1024 or 4096\n");
          return 2;
        }
        US = (uint32_t)v;
        break;
      case 1:
        if (fl_parse_u64(optarg, &v) || v < 2 || v > 65536) {
          fprintf(stderr, "fault_around: bad --pages\n");
          return 2;
        }
        NP = (uint32_t)v;
        break;
      case 2:
        if (fl_parse_u64(optarg, &v) || v > 16) {
          fprintf(stderr, "fault_around: bad --mappers\n");
          return 2;
        }
        N_MAP = (int)v;
        break;
      case 3: KEEP = 1; break;
      case 4:
        INJ_TRUNC_SKIP = 0.05;
        if (strncmp(optarg, "trunc-skip", 10) || (optarg[10] && (optarg[10] != ':' || fl_parse_double(optarg + 11, &INJ_TRUNC_SKIP) ||
                                                                 INJ_TRUNC_SKIP <= 0 || INJ_TRUNC_SKIP > 1))) {
          fprintf(stderr, "fault_around: bad --inject (trunc-skip[:RATE])\n");
          return 2;
        }
        break;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if (fl_target_path(argv[optind], "fault_around", PATH, sizeof PATH, DIR_, sizeof DIR_)) return 2;
  FS = (uint64_t)NP * FL_PAGE;
  NU = (uint32_t)(FS / US);
  UPP = FL_PAGE / US;
  if (fl_env_probe(&P.env, DIR_) == 0) P.env_ok = 1;
  snprintf(P.env.target, sizeof P.env.target, "%s", PATH);
  int fd = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "fault_around: cannot create %s: %s\n", PATH, strerror(errno));
    return 2;
  }
  uint64_t rs = P.seed ^ fl_now_ns();
  O = fl_oracle_new(US, FS, 64, 256, (uint32_t)fl_splitmix64(&rs));
  if (!O) return 2;
  O->post_eof_allowed = fl_fs_keeps_post_eof(&P.env);
  int a = fl_actor_add(O, R_MAIN, 0);
  fl_guard_install();
  fl_opspec init = {.op = OP_INIT, .actor = (uint16_t)a, .u0 = 0, .n = NU, .resize = 1, .new_size = FS};
  uint64_t ts = fl_begin(O, &init, 0);
  int r = ftruncate(fd, (off_t)FS);
  fl_end(O, &init, ts, fl_tick(O), OUT_OK);
  if (r) return 2;
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, US) != 0) {
    fprintf(stderr, "fault_around: fallocate(PUNCH_HOLE): %s\n", strerror(errno));
    P.vacuous = 1;
    snprintf(P.vacuous_why, sizeof P.vacuous_why, "punch unsupported (%s)", strerror(errno));
    return fl_report(&P, O);
  }
  close(fd);
  {
    worker w;
    winit(&w, a);
    do_pwrite(&w, 0, NU); /* one large write: large folios where the page cache uses them */
    pread(w.fd, w.buf, FS, 0);
    wfini(&w);
  }
  {
    int pm = open("/proc/self/pagemap", O_RDONLY);
    uint64_t ent = 0;
    PAGEMAP_OK = pm >= 0 && pread(pm, &ent, 8, 0) == 8;
    if (pm >= 0) close(pm);
    if (!PAGEMAP_OK) fl_note(&P, "/proc/self/pagemap unreadable: PTE checks skipped (SIGBUS checks remain)");
  }
  fl_cfg_str(&P, "target", PATH);
  fl_cfg_num(&P, "unit_size", US);
  fl_cfg_num(&P, "pages", NP);
  fl_cfg_num(&P, "file_size", (double)FS);
  fl_cfg_num(&P, "mappers", N_MAP);
  fl_cfg_num(&P, "duration", P.duration);
  fl_cfg_str(&P, "pagemap", PAGEMAP_OK ? "yes" : "no");
  fl_cfg_str(&P, "post_eof_allowed", O->post_eof_allowed ? "yes" : "no");
  fl_cfg_str(&P, "missing_sigbus", "yes");
  fl_cfg_num(&P, "inject_trunc_skip", INJ_TRUNC_SKIP);
  if (!P.quiet)
    printf("fault_around: %s on %s (%s), unit %u, %u pages, %d mappers, seed %llu, %.1f s\n", PATH, P.env.fstype,
           P.env.mount_options, US, NP, N_MAP, (unsigned long long)P.seed, P.duration);
  int ids[16];
  for (int i = 0; i < N_MAP; i++) ids[i] = fl_actor_add(O, R_MAPPER, i);
  int ta = fl_actor_add(O, R_TRUNCATOR, 0);
  if (!KEEP) P.cleanup_path = PATH;
  fl_watchdog_start(&P, O);
  P.t_start = fl_now_s();
  /* the mappers run as threads; the main loop runs here and sets stop when done */
  pthread_t th[16];
  int started = 0;
  for (int i = 0; i < N_MAP; i++, started++)
    if (pthread_create(&th[i], NULL, mapper_thread, &ids[i]) != 0) break;
  main_loop(ta);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  P.t_end = fl_now_s();
  final_check(a);
  fl_watchdog_stop();
  if (fl_sum_ops(O, K_PUNCH) == 0 || fl_sum_ops(O, K_TRUNC_DOWN) == 0) {
    P.vacuous = 1;
    snprintf(P.vacuous_why, sizeof P.vacuous_why, "no punch or no truncation executed");
  }
  int code = fl_report(&P, O);
  if (!KEEP) unlink(PATH);
  fl_oracle_free(O);
  return code;
}
