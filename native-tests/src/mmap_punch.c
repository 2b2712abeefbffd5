/* mmap_punch: the main stress. Mapper threads (fresh mapping per cycle, mapped reads and ascending
 * 8-byte stores, optional pread), punch and zero-range threads, a truncate-down/up thread, pwrite
 * threads, optional pread and O_DIRECT readers and kernel-cache churn, all on one file, judged by
 * the oracle of oracle.md. -P runs every role instance as its own process (shared-memory logs).
 *
 * Workload invariants (oracle.md §1): only ftruncate changes i_size; pwrites are serialised with
 * truncation by the size mutex and clipped to the current size, so they never extend the file;
 * punches are not serialised with truncation or with the mappers (unless --no-store-during-punch,
 * which excludes mmap stores while a punch or zero-range runs). */
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

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif

typedef struct {
  fl_prog prog;
  fl_oracle *o;
  char path[4096], dir[4096];
  uint32_t usz, nunits;
  uint64_t fsize;
  int n_map, n_punch, n_zero, n_trunc, n_write, n_read, n_direct, n_churn;
  double store_p, mpread_p, whole_p, rewrite_p, trunc_rewrite_p, dontneed_p;
  uint32_t max_punch, max_walk, max_io;
  int align_page, stores_during_punch, missing_sigbus, keep;
  const char *post_eof;
  uint32_t cap, scap;
  unsigned trunc_sleep_us;
  double inj_punch, inj_trunc, inj_pwrite;
  int direct_ok, pageout_advice, direct_eio_legal;
  double inj_hang;
} ctx_t;

static ctx_t C;

static void usage(FILE *f) {
  fprintf(f,
          "usage: mmap_punch [options] TARGET\n"
          "Stress mmap faults against hole punch / zero range / truncate / pwrite on one file in\n"
          "TARGET (a directory, or the test file's path) and judge every observation with the oracle.\n"
          "Exit: 0 clean, 1 violations (incl. HANG), 2 usage / set-up error / vacuous run.\n\n" FL_COMMON_USAGE
          "  -P, --procs             run each role instance as a separate process (shared-memory logs)\n"
          "  -u, --unit N            unit size: 512, 1024 (default) or 4096\n"
          "  -f, --file-size N       file size (default 256k; a multiple of 4096)\n"
          "      --mappers N         mapper threads (default 1)\n"
          "      --punchers N        punch threads (default 1)\n"
          "      --zeroers N         zero-range threads (default 1; disabled where EOPNOTSUPP)\n"
          "      --truncators N      truncate down/up threads (default 1)\n"
          "      --writers N         pwrite threads (default 0)\n"
          "      --readers N         pread reader threads (default 0)\n"
          "      --direct-readers N  O_DIRECT reader threads (default 0; skipped where EINVAL)\n"
          "      --churn N           kernel-cache churn threads: fadvise DONTNEED + MADV_PAGEOUT, and\n"
          "                          mappers then also MADV_DONTNEED their mapping (default 0)\n"
          "      --store-prob P      share of mapper accesses that are mmap stores (default 0.125;\n"
          "                          0 = read-only mapper)\n"
          "      --mapper-pread-prob P  share of the other mapper accesses done with pread (default 0.333)\n"
          "      --whole-file-prob P share of punches covering the whole file (default 0.02)\n"
          "      --max-punch-units N punch / zero length 1..N units (default 64)\n"
          "      --max-walk N        units walked per mapping cycle 1..N (default 64)\n"
          "      --max-io-units N    pwrite / pread length 1..N units (default 16)\n"
          "      --rewrite-prob P    share of punched units rewritten afterwards (default 0.7)\n"
          "      --trunc-rewrite-prob P  share of [S, size) rewritten after truncate down/up (default 0.5)\n"
          "      --trunc-sleep-us N  sleep 0..N us between truncate down and up (default 50)\n"
          "      --align unit|page   ranges and truncate sizes unit-aligned (sub-page; default) or\n"
          "                          page-aligned\n"
          "      --no-store-during-punch  mmap stores never overlap a punch / zero-range\n"
          "      --post-eof auto|allow|forbid  post-EOF mmap data visible after extension: tolerated\n"
          "                          (tmpfs, FUSE: auto) or a violation (ext4 etc.: auto)\n"
          "      --missing-sigbus    flag accesses that succeed on a page certainly beyond EOF\n"
          "      --log-cap N         events per unit log (default 128)\n"
          "      --size-log-cap N    size log capacity (default 1024)\n"
          "      --inject KIND[:RATE] self-test: punch-skip (punch logged, not done), trunc-further\n"
          "                          (truncate one page further than logged), pwrite-skip (pwrite\n"
          "                          logged, not done), hang (a punch stalls for 3x --hang-timeout:\n"
          "                          the watchdog must report HANG); RATE default 0.01; repeatable\n"
          "      --direct-eio-legal  EIO from O_DIRECT reads is counted as legal.direct_eio instead of\n"
          "                          IO_ERROR (ext4/xfs: iomap returns EIO when a DIO read meets a\n"
          "                          delalloc extent created by a racing mmap store)\n"
          "      --keep              keep the test file\n");
}

/* ------------------------------------------------------------------ helpers */

static int open_file(int extra) {
  int fd = open(C.path, O_RDWR | extra);
  if (fd < 0) {
    fprintf(stderr, "mmap_punch: open %s: %s\n", C.path, strerror(errno));
    exit(3);
  }
  return fd;
}

static void pick_range(fl_rng *r, uint32_t maxu, uint32_t *u0, uint32_t *n) {
  if (fl_rng_chance(r, C.whole_p)) {
    *u0 = 0;
    *n = C.nunits;
    return;
  }
  uint32_t len = 1 + (uint32_t)fl_rng_below(r, maxu);
  uint32_t s = (uint32_t)fl_rng_below(r, C.nunits);
  if (s + len > C.nunits) len = C.nunits - s;
  if (C.align_page) {
    uint32_t upp = FL_PAGE / C.usz;
    uint32_t a = s / upp * upp, b = (uint32_t)fl_round_up(s + len, upp);
    if (b > C.nunits) b = C.nunits;
    s = a;
    len = b - a;
  }
  *u0 = s;
  *n = len;
}

typedef struct {
  int a, fd;
  fl_rng rng;
  fl_jctx *j;
  uint8_t *buf;   /* max(max_io, max_punch) units */
  uint64_t *gens;
} worker;

static void worker_init(worker *w, int a, int extra_flags) {
  memset(w, 0, sizeof *w);
  w->a = a;
  w->fd = open_file(extra_flags);
  fl_rng_seed(&w->rng, C.prog.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(a + 1)));
  w->j = fl_jctx_new(C.o);
  uint32_t mx = C.nunits;
  if (posix_memalign((void **)&w->buf, FL_PAGE, (size_t)mx * C.usz) != 0) w->buf = NULL;
  w->gens = calloc(mx, sizeof *w->gens);
  if (!w->j || !w->buf || !w->gens) {
    fprintf(stderr, "mmap_punch: out of memory\n");
    exit(3);
  }
}

static void worker_fini(worker *w) {
  close(w->fd);
  fl_jctx_free(w->j);
  free(w->buf);
  free(w->gens);
}

/* pwrite fresh generations to units [u0, u0+n) (caller holds the size mutex and clipped) */
static void do_pwrite(worker *w, uint32_t u0, uint32_t n) {
  fl_oracle *o = C.o;
  if (!n) return;
  for (uint32_t i = 0; i < n; i++) {
    w->gens[i] = fl_new_gen(o);
    fl_pattern_fill(w->buf + (size_t)i * C.usz, C.usz, o->run, u0 + i, w->gens[i]);
  }
  int inject = fl_rng_chance(&w->rng, C.inj_pwrite);
  size_t len = (size_t)n * C.usz;
  off_t off = (off_t)u0 * C.usz;
  fl_opspec sp = {.op = OP_PWRITE, .actor = (uint16_t)w->a, .u0 = u0, .n = n, .gens = w->gens};
  fl_publish(o, w->a);
  fl_wd_begin(o, w->a, W_PWRITE, (uint64_t)off, len);
  uint64_t ts = fl_begin(o, &sp, 0);
  ssize_t r = inject ? (ssize_t)len : pwrite(w->fd, w->buf, len, off);
  uint64_t te = fl_tick(o);
  fl_wd_end(o, w->a);
  int err = errno;
  fl_end(o, &sp, ts, te, r == (ssize_t)len ? OUT_OK : OUT_FAILED);
  fl_obs_end(o, w->a);
  FL_OPS(o, w->a, K_PWRITE, 1);
  FL_OPS(o, w->a, K_PWRITE_UNITS, n);
  if (inject) FL_OPS(o, w->a, K_INJECTED, 1);
  if (r != (ssize_t)len)
    fl_violation(o, w->a, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)off, "pwrite(%zu at %lld) = %zd (%s)", len,
                 (long long)off, r, r < 0 ? strerror(err) : "short");
}

/* rewrite about a share p of the units [u0, u0+n) that lie inside the current size: alternating
 * runs of 1..8 units that are written (probability p) or skipped */
static void rewrite_subset(worker *w, uint32_t u0, uint32_t n, double p) {
  uint64_t cur = atomic_load(&C.o->cur_size);
  uint32_t lim = (uint32_t)(cur / C.usz), end = u0 + n < lim ? u0 + n : lim;
  for (uint32_t u = u0; u < end;) {
    uint32_t len = 1 + (uint32_t)fl_rng_below(&w->rng, 8);
    if (u + len > end) len = end - u;
    if (fl_rng_chance(&w->rng, p)) do_pwrite(w, u, len);
    u += len;
  }
}

static void lock_size(worker *w) {
  fl_wd_begin(C.o, w->a, W_LOCK, 0, 0);
  fl_size_lock(C.o);
  fl_wd_end(C.o, w->a);
}

/* ------------------------------------------------------------------ roles */

static void judge_read(worker *w, uint32_t u0, uint32_t n, ssize_t r, uint64_t rs, uint64_t re, int via) {
  fl_oracle *o = C.o;
  for (uint32_t i = 0; i < n; i++) {
    ssize_t uoff = (ssize_t)i * C.usz;
    if (r >= uoff + (ssize_t)C.usz)
      fl_judge_content(o, w->j, w->a, u0 + i, rs, re, w->buf + uoff, C.usz, via, 0);
    else if (r > uoff)
      fl_judge_content(o, w->j, w->a, u0 + i, rs, re, w->buf + uoff, (uint32_t)(r - uoff), via, 0);
  }
  if (r >= 0 && r < (ssize_t)n * C.usz)
    fl_judge_short(o, w->a, (uint64_t)u0 * C.usz, (uint64_t)u0 * C.usz + (uint64_t)r, rs, re, via);
}

static void pread_units(worker *w, uint32_t u0, uint32_t n, int via) {
  fl_oracle *o = C.o;
  size_t len = (size_t)n * C.usz;
  off_t off = (off_t)u0 * C.usz;
  uint64_t rs = fl_obs_begin(o, w->a);
  fl_wd_begin(o, w->a, via == VIA_DIRECT ? W_DIRECT : W_PREAD, (uint64_t)off, len);
  ssize_t r = pread(w->fd, w->buf, len, off);
  uint64_t re = fl_tick(o);
  fl_wd_end(o, w->a);
  int err = errno;
  if (r < 0 && via == VIA_DIRECT && err == EIO && C.direct_eio_legal)
    FL_LEG(o, w->a, L_DIRECT_EIO, 1); /* iomap_dio_iter(): DIO read met a DELALLOC extent (mmap store) */
  else if (r < 0)
    fl_violation(o, w->a, V_IO_ERROR, via, u0, (uint64_t)off, "pread(%zu at %lld): %s", len, (long long)off,
                 strerror(err));
  else
    judge_read(w, u0, n, r, rs, re, via);
  fl_obs_end(o, w->a);
}

static void role_mapper(void *arg, int a) {
  (void)arg;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  fl_guard_install();
  int prot = PROT_READ | (C.store_p > 0 ? PROT_WRITE : 0);
  uint8_t *sbuf = aligned_alloc(64, C.usz), *rbuf = aligned_alloc(64, C.usz);
  while (!atomic_load(&o->stop)) {
    fl_wd_begin(o, a, W_MMAP_CYCLE, 0, C.fsize);
    uint8_t *m = mmap(NULL, C.fsize, prot, MAP_SHARED, w.fd, 0);
    if (m == MAP_FAILED) {
      fl_wd_end(o, a);
      fl_violation(o, a, V_IO_ERROR, VIA_SYSCALL, 0, 0, "mmap: %s", strerror(errno));
      fl_sleep_us(100000);
      continue;
    }
    FL_OPS(o, a, K_MMAP_CYCLES, 1);
    uint32_t start = (uint32_t)fl_rng_below(&w.rng, C.nunits), len = 1 + (uint32_t)fl_rng_below(&w.rng, C.max_walk);
    for (uint32_t i = 0; i < len && !atomic_load(&o->stop); i++) {
      uint32_t u = (start + i) % C.nunits;
      uint8_t *p = m + (size_t)u * C.usz;
      uint64_t uoff = (uint64_t)u * C.usz;
      if (C.n_churn && fl_rng_chance(&w.rng, C.dontneed_p)) {
        uint32_t a0, an;
        pick_range(&w.rng, C.max_punch, &a0, &an);
        uint64_t s = fl_round_down((uint64_t)a0 * C.usz, FL_PAGE), e = fl_round_up((uint64_t)(a0 + an) * C.usz, FL_PAGE);
        if (madvise(m + s, e - s, MADV_DONTNEED) == 0) FL_OPS(o, a, K_MADVISE, 1);
      }
      if (fl_rng_chance(&w.rng, C.store_p)) {
        uint64_t g = fl_new_gen(o);
        fl_pattern_fill(sbuf, C.usz, o->run, u, g);
        if (!C.stores_during_punch) pthread_rwlock_rdlock(&o->store_punch);
        fl_opspec sp = {.op = OP_MSTORE, .actor = (uint16_t)a, .u0 = u, .n = 1, .gens = &g};
        fl_publish(o, a);
        uint64_t ts = fl_begin(o, &sp, 0);
        uintptr_t fault = 0;
        int sig = fl_guarded_write(p, sbuf, C.usz, &fault);
        uint64_t te = fl_tick(o);
        FL_OPS(o, a, K_MMAP_STORES, 1);
        FL_CHK(o, a, C_STORE_CHECKS, 1);
        if (sig == SIGBUS) {
          uint64_t foff = (uint64_t)(fault - (uintptr_t)m);
          fl_end(o, &sp, ts, te, foff <= uoff ? OUT_NOTDONE : OUT_SIGBUS);
          if (foff > uoff) FL_LEG(o, a, L_PARTIAL_STORES, 1);
          fl_judge_sigbus(o, a, foff, ts, te, VIA_STORE, 1);
        } else if (sig) {
          fl_end(o, &sp, ts, te, OUT_FAILED);
          fl_violation(o, a, V_IO_ERROR, VIA_STORE, u, uoff, "signal %d on an mmap store at %p", sig, (void *)fault);
        } else {
          fl_end(o, &sp, ts, te, OUT_OK);
          if (C.missing_sigbus) fl_judge_no_sigbus(o, a, uoff, ts, te, VIA_STORE);
        }
        fl_obs_end(o, a);
        if (!C.stores_during_punch) pthread_rwlock_unlock(&o->store_punch);
      } else if (fl_rng_chance(&w.rng, C.mpread_p)) {
        pread_units(&w, u, 1, VIA_PREAD);
        FL_OPS(o, a, K_PREADS, 1);
        FL_OPS(o, a, K_PREAD_UNITS, 1);
      } else {
        uintptr_t fault = 0;
        uint64_t rs = fl_obs_begin(o, a);
        int sig = fl_guarded_read(rbuf, p, C.usz, &fault);
        uint64_t re = fl_tick(o);
        FL_OPS(o, a, K_MMAP_READS, 1);
        if (sig == SIGBUS) {
          fl_judge_sigbus(o, a, (uint64_t)(fault - (uintptr_t)m), rs, re, VIA_MMAP, 0);
        } else if (sig) {
          fl_violation(o, a, V_IO_ERROR, VIA_MMAP, u, uoff, "signal %d on an mmap read at %p", sig, (void *)fault);
        } else {
          fl_judge_content(o, w.j, a, u, rs, re, rbuf, C.usz, VIA_MMAP, 0);
          if (C.missing_sigbus) fl_judge_no_sigbus(o, a, uoff, rs, re, VIA_MMAP);
        }
        fl_obs_end(o, a);
      }
    }
    munmap(m, C.fsize);
    fl_wd_end(o, a);
  }
  free(sbuf);
  free(rbuf);
  worker_fini(&w);
}

static void role_punch(void *arg, int a) {
  int zero = arg != NULL;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  int mode = FALLOC_FL_KEEP_SIZE | (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE);
  while (!atomic_load(&o->stop)) {
    uint32_t u0, n;
    pick_range(&w.rng, C.max_punch, &u0, &n);
    off_t off = (off_t)u0 * C.usz, len = (off_t)n * C.usz;
    int inject = !zero && fl_rng_chance(&w.rng, C.inj_punch);
    if (!C.stores_during_punch) pthread_rwlock_wrlock(&o->store_punch);
    fl_opspec sp = {.op = (uint8_t)(zero ? OP_ZERO : OP_PUNCH), .actor = (uint16_t)a, .u0 = u0, .n = n};
    fl_publish(o, a);
    fl_wd_begin(o, a, zero ? W_ZERO : W_PUNCH, (uint64_t)off, (uint64_t)len);
    uint64_t ts = fl_begin(o, &sp, 0);
    if (C.inj_hang > 0 && fl_rng_chance(&w.rng, C.inj_hang)) { /* self-test of the watchdog */
      FL_OPS(o, a, K_INJECTED, 1);
      fl_sleep_us((unsigned)(C.prog.hang_timeout * 3e6) + 1000000);
    }
    int r = inject ? 0 : fallocate(w.fd, mode, off, len);
    uint64_t te = fl_tick(o);
    int err = errno;
    fl_wd_end(o, a);
    fl_end(o, &sp, ts, te, r == 0 ? OUT_OK : (err == EOPNOTSUPP ? OUT_NOTDONE : OUT_FAILED));
    fl_obs_end(o, a);
    if (!C.stores_during_punch) pthread_rwlock_unlock(&o->store_punch);
    FL_OPS(o, a, zero ? K_ZERO : K_PUNCH, 1);
    if (inject) FL_OPS(o, a, K_INJECTED, 1);
    if (r != 0)
      fl_violation(o, a, V_IO_ERROR, VIA_SYSCALL, u0, (uint64_t)off, "fallocate(%s, %lld, %lld): %s",
                   zero ? "ZERO_RANGE" : "PUNCH_HOLE", (long long)off, (long long)len, strerror(err));
    lock_size(&w);
    rewrite_subset(&w, u0, n, C.rewrite_p);
    fl_size_unlock(o);
  }
  worker_fini(&w);
}

static void resize(worker *w, int op, uint64_t old, uint64_t nw, uint64_t actual) {
  fl_oracle *o = C.o;
  fl_opspec sp = {.op = (uint8_t)op, .actor = (uint16_t)w->a, .resize = 1, .old_size = old, .new_size = nw};
  fl_publish(o, w->a);
  fl_wd_begin(o, w->a, W_FTRUNCATE, actual, 0);
  uint64_t ts = fl_begin(o, &sp, 0);
  int r = ftruncate(w->fd, (off_t)actual);
  uint64_t te = fl_tick(o);
  int err = errno;
  fl_wd_end(o, w->a);
  fl_end(o, &sp, ts, te, r == 0 ? OUT_OK : OUT_FAILED);
  fl_obs_end(o, w->a);
  atomic_store(&o->cur_size, nw);
  FL_OPS(o, w->a, op == OP_TRUNC ? K_TRUNC_DOWN : K_TRUNC_UP, 1);
  if (r != 0)
    fl_violation(o, w->a, V_IO_ERROR, VIA_SYSCALL, 0, actual, "ftruncate(%llu): %s", (unsigned long long)actual,
                 strerror(err));
}

static void role_trunc(void *arg, int a) {
  (void)arg;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  uint64_t gran = C.align_page ? FL_PAGE : C.usz;
  while (!atomic_load(&o->stop)) {
    uint64_t S = fl_rng_below(&w.rng, C.fsize / gran) * gran;
    uint64_t actual = S;
    if (S >= FL_PAGE && fl_rng_chance(&w.rng, C.inj_trunc)) {
      actual = S - FL_PAGE; /* self-test: one page further than logged */
      FL_OPS(o, a, K_INJECTED, 1);
    }
    lock_size(&w);
    resize(&w, OP_TRUNC, C.fsize, S, actual);
    if (C.trunc_sleep_us) fl_sleep_us((unsigned)fl_rng_below(&w.rng, C.trunc_sleep_us + 1));
    resize(&w, OP_EXTEND, S, C.fsize, C.fsize);
    rewrite_subset(&w, (uint32_t)(S / C.usz), C.nunits - (uint32_t)(S / C.usz), C.trunc_rewrite_p);
    fl_size_unlock(o);
  }
  worker_fini(&w);
}

static void role_writer(void *arg, int a) {
  (void)arg;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  while (!atomic_load(&o->stop)) {
    uint32_t n = 1 + (uint32_t)fl_rng_below(&w.rng, C.max_io), u0 = (uint32_t)fl_rng_below(&w.rng, C.nunits);
    if (u0 + n > C.nunits) n = C.nunits - u0;
    lock_size(&w);
    uint32_t lim = (uint32_t)(atomic_load(&o->cur_size) / C.usz);
    if (u0 < lim) do_pwrite(&w, u0, u0 + n > lim ? lim - u0 : n);
    fl_size_unlock(o);
  }
  worker_fini(&w);
}

static void role_reader(void *arg, int a) {
  int direct = arg != NULL;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, direct ? O_DIRECT : 0);
  uint32_t upp = FL_PAGE / C.usz;
  while (!atomic_load(&o->stop)) {
    uint32_t n = 1 + (uint32_t)fl_rng_below(&w.rng, C.max_io), u0 = (uint32_t)fl_rng_below(&w.rng, C.nunits);
    if (direct) { /* page-aligned offset and length */
      u0 = u0 / upp * upp;
      n = (uint32_t)fl_round_up(n, upp);
    }
    if (u0 + n > C.nunits) n = C.nunits - u0;
    pread_units(&w, u0, n, direct ? VIA_DIRECT : VIA_PREAD);
    FL_OPS(o, a, direct ? K_DIRECT_READS : K_PREADS, 1);
    FL_OPS(o, a, direct ? K_DIRECT_UNITS : K_PREAD_UNITS, n);
  }
  worker_fini(&w);
}

static void role_churn(void *arg, int a) {
  (void)arg;
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  fl_guard_install();
  uint8_t *m = mmap(NULL, C.fsize, PROT_READ, MAP_SHARED, w.fd, 0);
  uint64_t sink[FL_PAGE / 8];
  while (!atomic_load(&o->stop)) {
    uint32_t u0, n;
    pick_range(&w.rng, C.max_punch, &u0, &n);
    uint64_t s = fl_round_down((uint64_t)u0 * C.usz, FL_PAGE), e = fl_round_up((uint64_t)(u0 + n) * C.usz, FL_PAGE);
    fl_wd_begin(o, a, W_FADVISE, s, e - s);
    if (posix_fadvise(w.fd, (off_t)s, (off_t)(e - s), POSIX_FADV_DONTNEED) == 0) FL_OPS(o, a, K_FADVISE, 1);
    fl_wd_end(o, a);
    if (m != MAP_FAILED) {
      fl_wd_begin(o, a, W_MADVISE, s, e - s);
      for (uint64_t q = s; q < e; q += FL_PAGE) {
        uintptr_t fault;
        fl_guarded_read(sink, m + q, 64, &fault); /* fault it in (not judged; SIGBUS is fine) */
      }
      if (madvise(m + s, e - s, C.pageout_advice) == 0) FL_OPS(o, a, K_MADVISE, 1);
      fl_wd_end(o, a);
    }
    fl_sleep_us(200);
  }
  if (m != MAP_FAILED) munmap(m, C.fsize);
  worker_fini(&w);
}

/* ------------------------------------------------------------------ final check */

static void final_check(int a) {
  fl_oracle *o = C.o;
  worker w;
  worker_init(&w, a, 0);
  fl_wd_begin(o, a, W_FINAL, 0, C.fsize);
  struct stat st;
  uint64_t model = fl_model_size(o);
  if (fstat(w.fd, &st) == 0 && (uint64_t)st.st_size != model)
    fl_violation(o, a, V_FINAL_MISMATCH, VIA_SIZE, 0, (uint64_t)st.st_size, "file size %lld, expected %llu",
                 (long long)st.st_size, (unsigned long long)model);
  /* 1: pread */
  for (uint32_t u = 0; u < C.nunits; u++) {
    uint64_t rs = fl_obs_begin(o, a);
    ssize_t r = pread(w.fd, w.buf, C.usz, (off_t)u * C.usz);
    uint64_t re = fl_tick(o);
    if (r == (ssize_t)C.usz) fl_judge_content(o, w.j, a, u, rs, re, w.buf, C.usz, VIA_FINAL_PREAD, 1);
    else if (r >= 0) judge_read(&w, u, 1, r, rs, re, VIA_FINAL_PREAD);
    else fl_violation(o, a, V_IO_ERROR, VIA_FINAL_PREAD, u, (uint64_t)u * C.usz, "pread: %s", strerror(errno));
    fl_obs_end(o, a);
  }
  /* 2: a fresh mapping */
  fl_final_mmap_check(o, w.j, a, w.fd, w.buf, C.fsize, C.usz, C.nunits);
  /* 3: drop the clean page cache, read again */
  fsync(w.fd);
  posix_fadvise(w.fd, 0, 0, POSIX_FADV_DONTNEED);
  for (uint32_t u = 0; u < C.nunits; u++) {
    uint64_t rs = fl_obs_begin(o, a);
    ssize_t r = pread(w.fd, w.buf, C.usz, (off_t)u * C.usz);
    uint64_t re = fl_tick(o);
    if (r == (ssize_t)C.usz) fl_judge_content(o, w.j, a, u, rs, re, w.buf, C.usz, VIA_FINAL_FADVISE, 1);
    fl_obs_end(o, a);
  }
  /* 4: O_DIRECT */
  if (C.direct_ok) {
    int dfd = open(C.path, O_RDONLY | O_DIRECT);
    if (dfd >= 0) {
      for (uint32_t u = 0; u < C.nunits; u += FL_PAGE / C.usz) {
        uint32_t n = FL_PAGE / C.usz;
        uint64_t rs = fl_obs_begin(o, a);
        ssize_t r = pread(dfd, w.buf, FL_PAGE, (off_t)u * C.usz);
        uint64_t re = fl_tick(o);
        for (uint32_t i = 0; i < n && r == (ssize_t)FL_PAGE; i++)
          fl_judge_content(o, w.j, a, u + i, rs, re, w.buf + (size_t)i * C.usz, C.usz, VIA_FINAL_DIRECT, 1);
        fl_obs_end(o, a);
      }
      close(dfd);
    }
  }
  fl_wd_end(o, a);
  worker_fini(&w);
}

/* ------------------------------------------------------------------ main */

static int parse_inject(const char *s) {
  char kind[32];
  double rate = 0.01;
  const char *colon = strchr(s, ':');
  size_t kl = colon ? (size_t)(colon - s) : strlen(s);
  if (kl >= sizeof kind) return -1;
  memcpy(kind, s, kl);
  kind[kl] = 0;
  if (colon && (fl_parse_double(colon + 1, &rate) || rate <= 0 || rate > 1)) return -1;
  if (!strcmp(kind, "punch-skip")) C.inj_punch = rate;
  else if (!strcmp(kind, "trunc-further")) C.inj_trunc = rate;
  else if (!strcmp(kind, "pwrite-skip")) C.inj_pwrite = rate;
  else if (!strcmp(kind, "hang")) C.inj_hang = rate;
  else return -1;
  return 0;
}

static int num_opt(const char *name, const char *arg, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (fl_parse_u64(arg, out) || *out < lo || *out > hi) {
    fprintf(stderr, "mmap_punch: bad --%s '%s' (%llu..%llu)\n", name, arg, (unsigned long long)lo,
            (unsigned long long)hi);
    exit(2);
  }
  return 0;
}
static double prob_opt(const char *name, const char *arg) {
  double v;
  if (fl_parse_double(arg, &v) || v < 0 || v > 1) {
    fprintf(stderr, "mmap_punch: bad --%s '%s' (0..1)\n", name, arg);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  fl_prog *p = &C.prog;
  fl_prog_init(p, "mmap_punch", argc, argv);
  C.usz = 1024;
  C.fsize = 256 * 1024;
  C.n_map = C.n_punch = C.n_zero = C.n_trunc = 1;
  C.store_p = 0.125;
  C.mpread_p = 1.0 / 3;
  C.whole_p = 0.02;
  C.rewrite_p = 0.7;
  C.trunc_rewrite_p = 0.5;
  C.dontneed_p = 0.02;
  C.max_punch = 64;
  C.max_walk = 64;
  C.max_io = 16;
  C.stores_during_punch = 1;
  C.post_eof = "auto";
  C.cap = 128;
  C.scap = 1024;
  C.trunc_sleep_us = 50;
  static struct option lo[] = {FL_COMMON_LONGOPTS,
                               {"procs", no_argument, 0, 'P'},
                               {"unit", required_argument, 0, 'u'},
                               {"file-size", required_argument, 0, 'f'},
                               {"mappers", required_argument, 0, 1},
                               {"punchers", required_argument, 0, 2},
                               {"zeroers", required_argument, 0, 3},
                               {"truncators", required_argument, 0, 4},
                               {"writers", required_argument, 0, 5},
                               {"readers", required_argument, 0, 6},
                               {"direct-readers", required_argument, 0, 7},
                               {"churn", required_argument, 0, 8},
                               {"store-prob", required_argument, 0, 9},
                               {"mapper-pread-prob", required_argument, 0, 10},
                               {"whole-file-prob", required_argument, 0, 11},
                               {"max-punch-units", required_argument, 0, 12},
                               {"max-walk", required_argument, 0, 13},
                               {"max-io-units", required_argument, 0, 14},
                               {"rewrite-prob", required_argument, 0, 15},
                               {"trunc-rewrite-prob", required_argument, 0, 16},
                               {"trunc-sleep-us", required_argument, 0, 17},
                               {"align", required_argument, 0, 18},
                               {"no-store-during-punch", no_argument, 0, 19},
                               {"post-eof", required_argument, 0, 20},
                               {"missing-sigbus", no_argument, 0, 21},
                               {"log-cap", required_argument, 0, 22},
                               {"size-log-cap", required_argument, 0, 23},
                               {"inject", required_argument, 0, 24},
                               {"keep", no_argument, 0, 25},
                               {"direct-eio-legal", no_argument, 0, 26},
                               {0, 0, 0, 0}};
  int c;
  uint64_t v;
  while ((c = getopt_long(argc, argv, "hs:d:j:qPu:f:", lo, NULL)) != -1) {
    if (fl_common_opt(p, c, optarg)) continue;
    switch (c) {
      case 'h': usage(stdout); return 0;
      case 'P': p->procs = 1; break;
      case 'u':
        num_opt("unit", optarg, 512, 4096, &v);
        if (v != 512 && v != 1024 && v != 4096) {
          fprintf(stderr, "mmap_punch: --unit must be 512, 1024 or 4096\n");
          return 2;
        }
        C.usz = (uint32_t)v;
        break;
      case 'f':
        num_opt("file-size", optarg, FL_PAGE, 1ull << 32, &C.fsize);
        if (C.fsize % FL_PAGE) {
          fprintf(stderr, "mmap_punch: --file-size must be a multiple of 4096\n");
          return 2;
        }
        break;
      case 1: num_opt("mappers", optarg, 0, 16, &v); C.n_map = (int)v; break;
      case 2: num_opt("punchers", optarg, 0, 16, &v); C.n_punch = (int)v; break;
      case 3: num_opt("zeroers", optarg, 0, 16, &v); C.n_zero = (int)v; break;
      case 4: num_opt("truncators", optarg, 0, 1, &v); C.n_trunc = (int)v; break;
      case 5: num_opt("writers", optarg, 0, 16, &v); C.n_write = (int)v; break;
      case 6: num_opt("readers", optarg, 0, 16, &v); C.n_read = (int)v; break;
      case 7: num_opt("direct-readers", optarg, 0, 16, &v); C.n_direct = (int)v; break;
      case 8: num_opt("churn", optarg, 0, 16, &v); C.n_churn = (int)v; break;
      case 9: C.store_p = prob_opt("store-prob", optarg); break;
      case 10: C.mpread_p = prob_opt("mapper-pread-prob", optarg); break;
      case 11: C.whole_p = prob_opt("whole-file-prob", optarg); break;
      case 12: num_opt("max-punch-units", optarg, 1, 1u << 20, &v); C.max_punch = (uint32_t)v; break;
      case 13: num_opt("max-walk", optarg, 1, 1u << 20, &v); C.max_walk = (uint32_t)v; break;
      case 14: num_opt("max-io-units", optarg, 1, 1u << 20, &v); C.max_io = (uint32_t)v; break;
      case 15: C.rewrite_p = prob_opt("rewrite-prob", optarg); break;
      case 16: C.trunc_rewrite_p = prob_opt("trunc-rewrite-prob", optarg); break;
      case 17: num_opt("trunc-sleep-us", optarg, 0, 1000000, &v); C.trunc_sleep_us = (unsigned)v; break;
      case 18:
        if (!strcmp(optarg, "page")) C.align_page = 1;
        else if (!strcmp(optarg, "unit")) C.align_page = 0;
        else {
          fprintf(stderr, "mmap_punch: --align unit|page\n");
          return 2;
        }
        break;
      case 19: C.stores_during_punch = 0; break;
      case 20:
        if (strcmp(optarg, "auto") && strcmp(optarg, "allow") && strcmp(optarg, "forbid")) {
          fprintf(stderr, "mmap_punch: --post-eof auto|allow|forbid\n");
          return 2;
        }
        C.post_eof = optarg;
        break;
      case 21: C.missing_sigbus = 1; break;
      case 22: num_opt("log-cap", optarg, 16, 4096, &v); C.cap = (uint32_t)v; break;
      case 23: num_opt("size-log-cap", optarg, 16, 65536, &v); C.scap = (uint32_t)v; break;
      case 24:
        if (parse_inject(optarg)) {
          fprintf(stderr, "mmap_punch: bad --inject '%s' (punch-skip|trunc-further|pwrite-skip|hang[:RATE])\n", optarg);
          return 2;
        }
        break;
      case 25: C.keep = 1; break;
      case 26: C.direct_eio_legal = 1; break;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if (fl_target_path(argv[optind], "mmap_punch", C.path, sizeof C.path, C.dir, sizeof C.dir)) return 2;
  C.nunits = (uint32_t)(C.fsize / C.usz);
  int nact = 1 + C.n_map + C.n_punch + C.n_zero + C.n_trunc + C.n_write + C.n_read + C.n_direct + C.n_churn;
  if (nact > FL_MAX_ACTORS || C.cap < (uint32_t)nact + 8) {
    fprintf(stderr, "mmap_punch: too many actors (%d) for --log-cap %u\n", nact, C.cap);
    return 2;
  }
  if (fl_env_probe(&p->env, C.dir) == 0) p->env_ok = 1;
  snprintf(p->env.target, sizeof p->env.target, "%s", C.path);

  int fd = open(C.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "mmap_punch: cannot create %s: %s\n", C.path, strerror(errno));
    return 2;
  }
  uint64_t runseed = p->seed ^ ((uint64_t)getpid() << 32) ^ fl_now_ns();
  C.o = fl_oracle_new(C.usz, C.fsize, C.cap, C.scap, (uint32_t)fl_splitmix64(&runseed));
  if (!C.o) {
    fprintf(stderr, "mmap_punch: cannot allocate the shared logs\n");
    return 2;
  }
  fl_oracle *o = C.o;
  o->post_eof_allowed = !strcmp(C.post_eof, "allow") || (!strcmp(C.post_eof, "auto") && fl_fs_keeps_post_eof(&p->env));
  int main_a = fl_actor_add(o, R_MAIN, 0);
  fl_guard_install();

  /* initial state: size FSIZE, zeros; then probes; then data everywhere */
  fl_opspec init = {.op = OP_INIT, .actor = (uint16_t)main_a, .u0 = 0, .n = C.nunits, .resize = 1, .new_size = C.fsize};
  uint64_t ts = fl_begin(o, &init, 0);
  int r = ftruncate(fd, (off_t)C.fsize);
  fl_end(o, &init, ts, fl_tick(o), OUT_OK);
  if (r) {
    fprintf(stderr, "mmap_punch: ftruncate: %s\n", strerror(errno));
    return 2;
  }
  int punch_ok = 1;
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, C.usz) != 0) {
    fl_role_skipped(p, "puncher", "fallocate(PUNCH_HOLE): %s", strerror(errno));
    punch_ok = 0;
    C.n_punch = 0;
  }
  if (C.n_zero && fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, C.usz) != 0) {
    fl_role_skipped(p, "zeroer", "fallocate(ZERO_RANGE): %s", strerror(errno));
    C.n_zero = 0;
  }
  {
    void *b = NULL;
    int dfd = open(C.path, O_RDONLY | O_DIRECT);
    C.direct_ok = dfd >= 0 && posix_memalign(&b, FL_PAGE, FL_PAGE) == 0 && pread(dfd, b, FL_PAGE, 0) >= 0;
    int err = errno;
    if (dfd >= 0) close(dfd);
    free(b);
    if (!C.direct_ok) {
      if (C.n_direct) fl_role_skipped(p, "direct-reader", "O_DIRECT: %s", strerror(err));
      else fl_note(p, "O_DIRECT unavailable (%s): no O_DIRECT final pass", strerror(err));
      C.n_direct = 0;
    }
  }
  C.pageout_advice = MADV_PAGEOUT;
  if (C.n_churn) {
    void *m = mmap(NULL, FL_PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED && madvise(m, FL_PAGE, MADV_PAGEOUT) != 0) {
      C.pageout_advice = MADV_COLD;
      fl_note(p, "MADV_PAGEOUT: %s; churn uses MADV_COLD", strerror(errno));
    }
    if (m != MAP_FAILED) munmap(m, FL_PAGE);
  }
  {
    worker w;
    worker_init(&w, main_a, 0);
    for (uint32_t u = 0; u < C.nunits; u += 64) do_pwrite(&w, u, C.nunits - u < 64 ? C.nunits - u : 64);
    worker_fini(&w);
  }
  close(fd);

  /* config record */
  fl_cfg_str(p, "target", C.path);
  fl_cfg_num(p, "unit_size", C.usz);
  fl_cfg_num(p, "file_size", (double)C.fsize);
  fl_cfg_num(p, "duration", p->duration);
  fl_cfg_str(p, "mode", p->procs ? "processes" : "threads");
  fl_cfg_num(p, "mappers", C.n_map);
  fl_cfg_num(p, "punchers", C.n_punch);
  fl_cfg_num(p, "zeroers", C.n_zero);
  fl_cfg_num(p, "truncators", C.n_trunc);
  fl_cfg_num(p, "writers", C.n_write);
  fl_cfg_num(p, "readers", C.n_read);
  fl_cfg_num(p, "direct_readers", C.n_direct);
  fl_cfg_num(p, "churn", C.n_churn);
  fl_cfg_num(p, "store_prob", C.store_p);
  fl_cfg_num(p, "mapper_pread_prob", C.mpread_p);
  fl_cfg_num(p, "whole_file_prob", C.whole_p);
  fl_cfg_num(p, "max_punch_units", C.max_punch);
  fl_cfg_num(p, "max_walk", C.max_walk);
  fl_cfg_num(p, "max_io_units", C.max_io);
  fl_cfg_num(p, "rewrite_prob", C.rewrite_p);
  fl_cfg_num(p, "trunc_rewrite_prob", C.trunc_rewrite_p);
  fl_cfg_num(p, "trunc_sleep_us", C.trunc_sleep_us);
  fl_cfg_str(p, "align", C.align_page ? "page" : "unit");
  fl_cfg_str(p, "stores_during_punch", C.stores_during_punch ? "yes" : "no");
  fl_cfg_str(p, "post_eof", C.post_eof);
  fl_cfg_str(p, "post_eof_allowed", o->post_eof_allowed ? "yes" : "no");
  fl_cfg_str(p, "missing_sigbus", C.missing_sigbus ? "yes" : "no");
  fl_cfg_num(p, "log_cap", C.cap);
  fl_cfg_num(p, "size_log_cap", C.scap);
  fl_cfg_num(p, "hang_timeout", p->hang_timeout);
  fl_cfg_num(p, "inject_punch_skip", C.inj_punch);
  fl_cfg_num(p, "inject_trunc_further", C.inj_trunc);
  fl_cfg_num(p, "inject_pwrite_skip", C.inj_pwrite);
  fl_cfg_num(p, "inject_hang", C.inj_hang);
  fl_cfg_str(p, "direct_eio_legal", C.direct_eio_legal ? "yes" : "no");

  /* actors */
  int ids[FL_MAX_ACTORS];
  fl_actor_fn fns[FL_MAX_ACTORS];
  void *args[FL_MAX_ACTORS];
  int n = 0;
  static int one = 1;
#define ADD(cnt, role, fn, arg)                 \
  for (int i = 0; i < (cnt); i++) {             \
    ids[n] = fl_actor_add(o, role, i);          \
    fns[n] = fn;                                \
    args[n] = arg;                              \
    n++;                                        \
  }
  ADD(C.n_map, R_MAPPER, role_mapper, NULL)
  ADD(C.n_punch, R_PUNCHER, role_punch, NULL)
  ADD(C.n_zero, R_ZEROER, role_punch, &one)
  ADD(C.n_trunc, R_TRUNCATOR, role_trunc, NULL)
  ADD(C.n_write, R_WRITER, role_writer, NULL)
  ADD(C.n_read, R_READER, role_reader, NULL)
  ADD(C.n_direct, R_DIRECT, role_reader, &one)
  ADD(C.n_churn, R_CHURN, role_churn, NULL)
#undef ADD
  if (!p->quiet)
    printf("mmap_punch: %s on %s (%s), unit %u, file %llu bytes, %d actors (%s), seed %llu, %.1f s\n", C.path,
           p->env.fstype, p->env.mount_options, C.usz, (unsigned long long)C.fsize, n,
           p->procs ? "processes" : "threads", (unsigned long long)p->seed, p->duration);
  fflush(stdout);
  if (!C.keep) C.prog.cleanup_path = C.path;
  fl_watchdog_start(p, o);
  p->t_start = fl_now_s();
  fl_run_actors(p, o, n, ids, fns, args, p->duration);
  p->t_end = fl_now_s();
  if (!p->error) final_check(main_a);
  fl_watchdog_stop();

  uint64_t punches = fl_sum_ops(o, K_PUNCH) + fl_sum_ops(o, K_ZERO);
  if (!punch_ok || punches == 0) {
    p->vacuous = 1;
    snprintf(p->vacuous_why, sizeof p->vacuous_why, "no punch or zero-range was executed%s",
             punch_ok ? "" : " (punch unsupported)");
  } else if (fl_sum_checks(o, C_UNIT_READS) == 0) {
    p->vacuous = 1;
    snprintf(p->vacuous_why, sizeof p->vacuous_why, "no unit read was checked");
  }
  int code = fl_report(p, o);
  if (!C.keep) unlink(C.path);
  fl_oracle_free(o);
  return code;
}
