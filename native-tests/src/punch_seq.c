/* punch_seq: deterministic single-thread sequences (mmap write → punch / zero / truncate → read via
 * the old mapping, a new mapping, pread, pread after fadvise(DONTNEED), O_DIRECT), judged by the
 * same oracle. With no concurrency every observation window is exact, so every verdict is exact.
 * Fast (well under 1 s): for smoke runs and bisecting. Prints each step's verdict.
 * MISSING_SIGBUS is checked (an access that succeeds on a page wholly beyond EOF). */
#include "fl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static fl_prog P;
static fl_oracle *O;
static fl_jctx *J;
static int A, FD, DIRECT_OK, ZERO_OK, PUNCH_OK, VERBOSE = 1;
static uint32_t US, NU;
static uint64_t FS;
static char PATH[4096], DIR_[4096];
static uint8_t *M1; /* the "old" mapping, kept across a sequence's mutations */
static uint8_t *BUF;
static uint64_t *GENS;
static const char *SEQ;
static int nsteps, nfail;

static uint64_t viol_total(void) { return fl_total_violations(O); }

/* ------------------------------------------------------------------ mutations (logged) */

static void fail_setup(const char *what) {
  fl_prog_error(&P, "%s: %s", what, strerror(errno));
  fprintf(stderr, "punch_seq: %s: %s\n", what, strerror(errno));
}

static void mstore(uint32_t u0, uint32_t n) {
  for (uint32_t u = u0; u < u0 + n; u++) {
    uint64_t g = fl_new_gen(O);
    fl_pattern_fill(BUF, US, O->run, u, g);
    fl_opspec sp = {.op = OP_MSTORE, .actor = (uint16_t)A, .u0 = u, .n = 1, .gens = &g};
    fl_publish(O, A);
    uint64_t ts = fl_begin(O, &sp, 0);
    uintptr_t fault = 0;
    int sig = fl_guarded_write(M1 + (size_t)u * US, BUF, US, &fault);
    uint64_t te = fl_tick(O);
    FL_OPS(O, A, K_MMAP_STORES, 1);
    FL_CHK(O, A, C_STORE_CHECKS, 1);
    if (sig == SIGBUS) {
      uint64_t foff = (uint64_t)(fault - (uintptr_t)M1);
      fl_end(O, &sp, ts, te, foff <= (uint64_t)u * US ? OUT_NOTDONE : OUT_SIGBUS);
      fl_judge_sigbus(O, A, foff, ts, te, VIA_STORE, 1);
    } else {
      fl_end(O, &sp, ts, te, sig ? OUT_FAILED : OUT_OK);
      if (!sig) fl_judge_no_sigbus(O, A, (uint64_t)u * US, ts, te, VIA_STORE);
    }
    fl_obs_end(O, A);
  }
}

static void pwrite_units(uint32_t u0, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    GENS[i] = fl_new_gen(O);
    fl_pattern_fill(BUF + (size_t)i * US, US, O->run, u0 + i, GENS[i]);
  }
  fl_opspec sp = {.op = OP_PWRITE, .actor = (uint16_t)A, .u0 = u0, .n = n, .gens = GENS};
  fl_publish(O, A);
  uint64_t ts = fl_begin(O, &sp, 0);
  ssize_t r = pwrite(FD, BUF, (size_t)n * US, (off_t)u0 * US);
  uint64_t te = fl_tick(O);
  fl_end(O, &sp, ts, te, r == (ssize_t)n * US ? OUT_OK : OUT_FAILED);
  fl_obs_end(O, A);
  FL_OPS(O, A, K_PWRITE, 1);
  FL_OPS(O, A, K_PWRITE_UNITS, n);
  if (r != (ssize_t)n * US) fl_violation(O, A, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)u0 * US, "pwrite: %zd", r);
}

static int fall(int zero, uint32_t u0, uint32_t n) {
  fl_opspec sp = {.op = (uint8_t)(zero ? OP_ZERO : OP_PUNCH), .actor = (uint16_t)A, .u0 = u0, .n = n};
  fl_publish(O, A);
  uint64_t ts = fl_begin(O, &sp, 0);
  int r = fallocate(FD, FALLOC_FL_KEEP_SIZE | (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE), (off_t)u0 * US,
                    (off_t)n * US);
  uint64_t te = fl_tick(O);
  int err = errno;
  fl_end(O, &sp, ts, te, r == 0 ? OUT_OK : err == EOPNOTSUPP ? OUT_NOTDONE : OUT_FAILED);
  fl_obs_end(O, A);
  FL_OPS(O, A, zero ? K_ZERO : K_PUNCH, 1);
  if (r) fl_violation(O, A, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)u0 * US, "fallocate: %s", strerror(err));
  return r;
}

static void resize(uint64_t nw) {
  uint64_t old = fl_model_size(O);
  fl_opspec sp = {.op = (uint8_t)(nw < old ? OP_TRUNC : OP_EXTEND), .actor = (uint16_t)A, .resize = 1,
                  .old_size = old, .new_size = nw};
  fl_publish(O, A);
  uint64_t ts = fl_begin(O, &sp, 0);
  int r = ftruncate(FD, (off_t)nw);
  uint64_t te = fl_tick(O);
  fl_end(O, &sp, ts, te, r == 0 ? OUT_OK : OUT_FAILED);
  fl_obs_end(O, A);
  atomic_store(&O->cur_size, nw);
  FL_OPS(O, A, nw < old ? K_TRUNC_DOWN : K_TRUNC_UP, 1);
}

/* ------------------------------------------------------------------ checks */

enum { M_OLD = 1, M_NEW = 2, M_PREAD = 4, M_FADV = 8, M_DIRECT = 16, M_ALL = 31 };

static void check_map(uint8_t *m, int via, uint32_t u0, uint32_t n, uint32_t *sigbus) {
  for (uint32_t u = u0; u < u0 + n; u++) {
    uintptr_t fault;
    uint64_t rs = fl_obs_begin(O, A);
    int sig = fl_guarded_read(BUF, m + (size_t)u * US, US, &fault);
    uint64_t re = fl_tick(O);
    FL_OPS(O, A, K_MMAP_READS, 1);
    if (sig == SIGBUS) {
      (*sigbus)++;
      fl_judge_sigbus(O, A, (uint64_t)(fault - (uintptr_t)m), rs, re, via, 0);
    } else if (!sig) {
      fl_judge_content(O, J, A, u, rs, re, BUF, US, via, 0);
      fl_judge_no_sigbus(O, A, (uint64_t)u * US, rs, re, via);
    }
    fl_obs_end(O, A);
  }
}

static void check_pread(int fd, int via, uint32_t u0, uint32_t n, uint32_t step) {
  for (uint32_t u = u0; u < u0 + n; u += step) {
    uint32_t k = step;
    if (u + k > NU) k = NU - u;
    uint64_t rs = fl_obs_begin(O, A);
    ssize_t r = pread(fd, BUF, (size_t)k * US, (off_t)u * US);
    uint64_t re = fl_tick(O);
    FL_OPS(O, A, via == VIA_DIRECT ? K_DIRECT_READS : K_PREADS, 1);
    if (r < 0) {
      fl_violation(O, A, V_IO_ERROR, via, u, (uint64_t)u * US, "pread: %s", strerror(errno));
    } else {
      for (uint32_t i = 0; i < k; i++) {
        ssize_t off = (ssize_t)i * US;
        if (r > off)
          fl_judge_content(O, J, A, u + i, rs, re, BUF + off, r >= off + (ssize_t)US ? US : (uint32_t)(r - off), via, 0);
      }
      if (r < (ssize_t)k * US) fl_judge_short(O, A, (uint64_t)u * US, (uint64_t)u * US + (uint64_t)r, rs, re, via);
    }
    fl_obs_end(O, A);
  }
}

static void check(const char *what, int methods) {
  uint64_t v0 = viol_total(), pe0 = fl_sum_legal(O, L_POST_EOF_DATA);
  uint32_t sb = 0;
  if (methods & M_OLD) check_map(M1, VIA_MMAP, 0, NU, &sb);
  if (methods & M_NEW) {
    uint8_t *m = mmap(NULL, FS, PROT_READ, MAP_SHARED, FD, 0);
    if (m != MAP_FAILED) {
      check_map(m, VIA_MMAP, 0, NU, &sb);
      munmap(m, FS);
    }
  }
  if (methods & M_PREAD) check_pread(FD, VIA_PREAD, 0, NU, 1);
  if (methods & M_FADV) {
    fsync(FD);
    posix_fadvise(FD, 0, 0, POSIX_FADV_DONTNEED);
    FL_OPS(O, A, K_FADVISE, 1);
    check_pread(FD, VIA_PREAD, 0, NU, 1);
  }
  if ((methods & M_DIRECT) && DIRECT_OK) {
    int dfd = open(PATH, O_RDONLY | O_DIRECT);
    if (dfd >= 0) {
      check_pread(dfd, VIA_DIRECT, 0, NU, FL_PAGE / US);
      close(dfd);
    }
  }
  nsteps++;
  uint64_t v1 = viol_total(), pe1 = fl_sum_legal(O, L_POST_EOF_DATA);
  if (v1 != v0) nfail++;
  if (VERBOSE && !P.quiet)
    printf("  [%s] %-44s %s (%llu violations, %u SIGBUS%s)\n", SEQ, what, v1 == v0 ? "ok" : "FAIL",
           (unsigned long long)(v1 - v0), sb, pe1 != pe0 ? ", post-EOF data seen (tolerated)" : "");
}

/* ------------------------------------------------------------------ sequences */

static void begin(const char *name) {
  SEQ = name;
  if (M1) munmap(M1, FS);
  if (fl_model_size(O) != FS) resize(FS);
  pwrite_units(0, NU);
  M1 = mmap(NULL, FS, PROT_READ | PROT_WRITE, MAP_SHARED, FD, 0);
  if (M1 == MAP_FAILED) {
    M1 = NULL;
    fail_setup("mmap");
    return;
  }
  uint32_t sb = 0;
  check_map(M1, VIA_MMAP, 0, NU, &sb); /* populate the old mapping */
}

static uint32_t UPP; /* units per page */
static uint32_t pg(uint32_t p) { return p * UPP; }

static void run_sequences(void) {
  uint32_t sub = UPP > 1 ? 1 : 0; /* one unit into a page, when units are smaller than pages */

  begin("aligned-punch");
  mstore(pg(2), pg(4));
  check("after mmap stores", M_ALL);
  if (PUNCH_OK) {
    fall(0, pg(3), pg(2));
    check("after punch of pages 3-4", M_ALL);
  }

  if (UPP > 1 && PUNCH_OK) {
    begin("subpage-punch");
    mstore(pg(2), pg(2));
    fall(0, pg(2) + sub, UPP - 2 * sub); /* inside page 2, its first and last unit kept */
    check("after sub-page punch inside page 2", M_ALL);
    fall(0, pg(3) - sub, 2 * sub + UPP); /* straddles pages 2|3|4 */
    check("after punch straddling pages 2-4", M_ALL);
  }

  if (PUNCH_OK) {
    begin("whole-file-punch");
    mstore(0, NU);
    fall(0, 0, NU);
    check("after whole-file punch", M_ALL);
    mstore(pg(1), 1);
    check("after a store into the hole", M_ALL);

    begin("eof-page-punch");
    mstore(NU - UPP, UPP);
    fall(0, NU - 1, 1);
    check("after punch of the last unit", M_ALL);
    fall(0, NU - UPP, UPP);
    check("after punch of the EOF page", M_ALL);
  }

  if (ZERO_OK) {
    begin("zero-range");
    mstore(pg(1), pg(3));
    fall(1, pg(2), pg(1));
    check("after aligned zero-range", M_ALL);
    if (UPP > 1) {
      fall(1, pg(3) - sub, 2 * sub + 1);
      check("after sub-page zero-range", M_ALL);
    }
  }

  begin("truncate-subpage");
  {
    uint64_t S = (uint64_t)pg(5) * US + (UPP > 1 ? US : 0);
    mstore(pg(4), pg(3));
    resize(S);
    check("after truncate down (old map: SIGBUS past EOF page)", M_ALL);
    resize(FS);
    check("after extend: zeros past the old EOF", M_ALL);
  }

  begin("truncate-aligned");
  resize((uint64_t)pg(4) * US);
  check("after truncate to 4 pages", M_ALL);
  resize(FS);
  check("after extend", M_ALL);

  begin("eof-tail-store-then-extend");
  {
    uint64_t S = (uint64_t)pg(5) * US + (UPP > 1 ? US : 0);
    resize(S);
    if (UPP > 1) {
      mstore((uint32_t)(S / US), UPP - 1); /* the tail of the EOF page: ephemeral */
      check("after stores into the EOF page tail", M_OLD | M_NEW);
    }
    resize(FS);
    check("after extend (post-EOF data: fs-dependent)", M_ALL);
  }

  if (PUNCH_OK) {
    begin("store-after-punch");
    fall(0, pg(2), pg(1));
    mstore(pg(2), UPP);
    check("after store into a punched page via the old map", M_ALL);
  }

  begin("pwrite-over-mapped");
  pwrite_units(pg(1), pg(2));
  check("after pwrite over mapped pages", M_ALL);
  mstore(pg(1), 1);
  pwrite_units(pg(1), 1);
  check("after mmap store then pwrite of a unit", M_ALL);

  begin("truncate-zero");
  resize(0);
  check("after truncate to 0", M_OLD | M_NEW | M_PREAD);
  resize(FS);
  check("after extend from 0", M_ALL);

  if (PUNCH_OK) {
    begin("punch-beyond-eof");
    resize((uint64_t)pg(3) * US);
    fall(0, pg(5), pg(1));
    check("after punch beyond EOF", M_ALL);
    resize(FS);
    check("after extend", M_ALL);
  }
  if (M1) munmap(M1, FS);
  M1 = NULL;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: punch_seq [options] TARGET\n"
          "Deterministic single-thread mmap/punch/zero/truncate sequences with exact verdicts.\n"
          "Exit: 0 clean, 1 violations, 2 usage / set-up error / vacuous.\n\n" FL_COMMON_USAGE
          "                          (punch_seq repeats the sequences until DURATION; default: once)\n"
          "  -u, --unit N            unit size: 512, 1024 (default) or 4096\n"
          "  -f, --file-size N       file size (default 64k = 16 pages; at least 8 pages)\n"
          "      --post-eof auto|allow|forbid  (see mmap_punch)\n"
          "      --keep              keep the test file\n");
}

int main(int argc, char **argv) {
  fl_prog_init(&P, "punch_seq", argc, argv);
  P.duration = 0;
  US = 1024;
  FS = 64 * 1024;
  const char *post_eof = "auto";
  int keep = 0;
  static struct option lo[] = {FL_COMMON_LONGOPTS,
                               {"unit", required_argument, 0, 'u'},
                               {"file-size", required_argument, 0, 'f'},
                               {"post-eof", required_argument, 0, 1},
                               {"keep", no_argument, 0, 2},
                               {0, 0, 0, 0}};
  int c;
  uint64_t v;
  while ((c = getopt_long(argc, argv, "hs:d:j:qu:f:", lo, NULL)) != -1) {
    if (fl_common_opt(&P, c, optarg)) continue;
    switch (c) {
      case 'h': usage(stdout); return 0;
      case 'u':
        if (fl_parse_u64(optarg, &v) || (v != 512 && v != 1024 && v != 4096)) {
          fprintf(stderr, "punch_seq: --unit must be 512, 1024 or 4096\n");
          return 2;
        }
        US = (uint32_t)v;
        break;
      case 'f':
        if (fl_parse_u64(optarg, &FS) || FS % FL_PAGE || FS < 8 * FL_PAGE || FS > (1ull << 30)) {
          fprintf(stderr, "punch_seq: bad --file-size\n");
          return 2;
        }
        break;
      case 1:
        if (strcmp(optarg, "auto") && strcmp(optarg, "allow") && strcmp(optarg, "forbid")) {
          fprintf(stderr, "punch_seq: --post-eof auto|allow|forbid\n");
          return 2;
        }
        post_eof = optarg;
        break;
      case 2: keep = 1; break;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if (fl_target_path(argv[optind], "punch_seq", PATH, sizeof PATH, DIR_, sizeof DIR_)) return 2;
  NU = (uint32_t)(FS / US);
  UPP = FL_PAGE / US;
  if (fl_env_probe(&P.env, DIR_) == 0) P.env_ok = 1;
  snprintf(P.env.target, sizeof P.env.target, "%s", PATH);
  FD = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (FD < 0) {
    fprintf(stderr, "punch_seq: cannot create %s: %s\n", PATH, strerror(errno));
    return 2;
  }
  uint64_t rs = P.seed ^ fl_now_ns();
  O = fl_oracle_new(US, FS, 64, 64, (uint32_t)fl_splitmix64(&rs));
  J = O ? fl_jctx_new(O) : NULL;
  BUF = malloc(FS);
  GENS = calloc(NU, sizeof *GENS);
  if (!O || !J || !BUF || !GENS) {
    fprintf(stderr, "punch_seq: out of memory\n");
    return 2;
  }
  void *dbuf = NULL;
  if (posix_memalign(&dbuf, FL_PAGE, FS) == 0) {
    free(BUF);
    BUF = dbuf;
  }
  O->post_eof_allowed = !strcmp(post_eof, "allow") || (!strcmp(post_eof, "auto") && fl_fs_keeps_post_eof(&P.env));
  A = fl_actor_add(O, R_MAIN, 0);
  fl_guard_install();
  fl_opspec init = {.op = OP_INIT, .actor = (uint16_t)A, .u0 = 0, .n = NU, .resize = 1, .new_size = FS};
  uint64_t ts = fl_begin(O, &init, 0);
  int r = ftruncate(FD, (off_t)FS);
  fl_end(O, &init, ts, fl_tick(O), OUT_OK);
  if (r) {
    fprintf(stderr, "punch_seq: ftruncate: %s\n", strerror(errno));
    return 2;
  }
  PUNCH_OK = fallocate(FD, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, US) == 0;
  if (!PUNCH_OK) fl_role_skipped(&P, "punch", "fallocate(PUNCH_HOLE): %s", strerror(errno));
  ZERO_OK = fallocate(FD, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, US) == 0;
  if (!ZERO_OK) fl_role_skipped(&P, "zero-range", "fallocate(ZERO_RANGE): %s", strerror(errno));
  {
    int dfd = open(PATH, O_RDONLY | O_DIRECT);
    DIRECT_OK = dfd >= 0 && pread(dfd, BUF, FL_PAGE, 0) >= 0;
    if (!DIRECT_OK) fl_role_skipped(&P, "odirect-read", "O_DIRECT: %s", strerror(errno));
    if (dfd >= 0) close(dfd);
  }
  fl_cfg_str(&P, "target", PATH);
  fl_cfg_num(&P, "unit_size", US);
  fl_cfg_num(&P, "file_size", (double)FS);
  fl_cfg_num(&P, "duration", P.duration);
  fl_cfg_str(&P, "post_eof", post_eof);
  fl_cfg_str(&P, "post_eof_allowed", O->post_eof_allowed ? "yes" : "no");
  fl_cfg_str(&P, "missing_sigbus", "yes");
  if (!P.quiet)
    printf("punch_seq: %s on %s (%s), unit %u, file %llu bytes\n", PATH, P.env.fstype, P.env.mount_options, US,
           (unsigned long long)FS);
  if (!keep) P.cleanup_path = PATH;
  fl_watchdog_start(&P, O);
  P.t_start = fl_now_s();
  int passes = 0;
  do {
    fl_wd_begin(O, A, W_FINAL, 0, FS);
    run_sequences();
    fl_wd_end(O, A);
    passes++;
    VERBOSE = 0; /* print the steps of the first pass only */
  } while (!P.error && fl_now_s() - P.t_start < P.duration);
  P.t_end = fl_now_s();
  fl_watchdog_stop();
  fl_cfg_num(&P, "passes", passes);
  fl_note(&P, "%d passes of %d checked steps; %d steps failed", passes, nsteps / passes, nfail);
  if (!PUNCH_OK) {
    P.vacuous = 1;
    snprintf(P.vacuous_why, sizeof P.vacuous_why, "punch unsupported: no punch sequence ran");
  }
  close(FD);
  int code = fl_report(&P, O);
  if (!keep) unlink(PATH);
  fl_jctx_free(J);
  fl_oracle_free(O);
  return code;
}
