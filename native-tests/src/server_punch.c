/* server_punch (faultline only): server-side punch / zero / truncate / write through the mount's
 * control socket (src/control/PROTOCOL.md) while reader threads keep the file mapped and read it
 * (mmap and pread), judged by the same oracle. Each server-side change is logged with ts taken
 * before the request is sent and te after the response arrived (the daemon answers only after its
 * notify_inval_inode completed).
 *
 * Size changes: a notify cannot push a new i_size to the kernel; the kernel re-reads it on the next
 * GETATTR. By default a server truncate's te is taken after the response AND an fstat() on the
 * file (attributes were invalidated by the notify, so fstat refreshes i_size). With
 * --no-size-refresh te is taken right after the response, and faults after a server-side
 * extension may SIGBUS against the kernel's stale i_size (reported as SIGBUS_INSIDE_EOF).
 *
 * Not a faultline mount (no control socket): a clear message and exit 2. */
#include "fl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static fl_prog P;
static fl_oracle *O;
static char PATH[4096], DIR_[4096], REL[4096], SOCK[4096];
static uint32_t US, NU;
static uint64_t FS;
static int N_MAP = 1, N_READ = 1, N_SERVER = 1, KEEP, SIZE_REFRESH = 1, ZERO_OK = 1;
static double MIX_PUNCH = 0.4, MIX_ZERO = 0.2, MIX_TRUNC = 0.15; /* rest: write */
static double PREAD_P = 1.0 / 3;
static uint32_t MAX_UNITS = 64;
static int ALIGN_PAGE;

/* ------------------------------------------------------------------ control connection */

typedef struct {
  int fd;
  char *rbuf;
  size_t rlen, rcap;
  uint64_t id;
} conn;

static int conn_open(conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(SOCK) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sa.sun_path, SOCK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
  c->rcap = 65536;
  c->rbuf = malloc(c->rcap);
  return c->rbuf ? 0 : -1;
}

static void conn_close(conn *c) {
  if (c->fd >= 0) close(c->fd);
  free(c->rbuf);
}

static int write_all(int fd, const char *b, size_t n) {
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* read one response line (NUL-terminated, without the newline) into *line; -1 on EOF/error */
static int read_line(conn *c, char **line) {
  for (;;) {
    char *nl = memchr(c->rbuf, '\n', c->rlen);
    if (nl) {
      *nl = 0;
      *line = c->rbuf;
      return (int)(nl - c->rbuf) + 1;
    }
    if (c->rlen + 4096 > c->rcap) {
      char *nb = realloc(c->rbuf, c->rcap * 2);
      if (!nb) return -1;
      c->rbuf = nb;
      c->rcap *= 2;
    }
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c->rlen += (size_t)r;
  }
}

static void consume(conn *c, int n) {
  memmove(c->rbuf, c->rbuf + n, c->rlen - (size_t)n);
  c->rlen -= (size_t)n;
}

/* minimal JSON: find a top-level key's value; returns a pointer to it (or NULL) */
static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p;
}
static const char *skip_str(const char *p) { /* p at '"' */
  for (p++; *p && *p != '"'; p++)
    if (*p == '\\' && p[1]) p++;
  return *p ? p + 1 : p;
}
static const char *skip_val(const char *p) {
  p = skip_ws(p);
  if (*p == '"') return skip_str(p);
  if (*p == '{' || *p == '[') {
    int d = 0;
    for (; *p; p++) {
      if (*p == '"') {
        p = skip_str(p) - 1;
        continue;
      }
      if (*p == '{' || *p == '[') d++;
      if (*p == '}' || *p == ']') {
        if (--d == 0) return p + 1;
      }
    }
    return p;
  }
  while (*p && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}
static const char *json_top(const char *s, const char *key) {
  const char *p = skip_ws(s);
  if (*p != '{') return NULL;
  p++;
  size_t kl = strlen(key);
  for (;;) {
    p = skip_ws(p);
    if (*p != '"') return NULL;
    const char *k = p + 1, *ke = skip_str(p);
    int match = (size_t)(ke - 1 - k) == kl && strncmp(k, key, kl) == 0;
    p = skip_ws(ke);
    if (*p != ':') return NULL;
    p = skip_ws(p + 1);
    if (match) return p;
    p = skip_ws(skip_val(p));
    if (*p == ',') p++;
    else return NULL;
  }
}
static void json_strval(const char *v, char *out, size_t n) {
  out[0] = 0;
  if (!v || *v != '"') return;
  size_t o = 0;
  for (v++; *v && *v != '"' && o + 1 < n; v++) {
    if (*v == '\\' && v[1]) v++;
    out[o++] = *v;
  }
  out[o] = 0;
}

static void json_escape(const char *s, char *out, size_t n) {
  size_t o = 0;
  for (; *s && o + 7 < n; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') out[o++] = '\\', out[o++] = (char)ch;
    else if (ch < 0x20) o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
    else out[o++] = (char)ch;
  }
  out[o] = 0;
}

/* send a request (body without id, starting with '"cmd":...'); returns 1 ok, 0 error reply
 * (err filled), -1 transport failure */
static int request(conn *c, const char *body, char *err, size_t errn) {
  size_t bl = strlen(body);
  char *msg = malloc(bl + 64);
  if (!msg) return -1;
  int n = snprintf(msg, bl + 64, "{\"id\":%llu,%s}\n", (unsigned long long)++c->id, body);
  int r = write_all(c->fd, msg, (size_t)n);
  free(msg);
  if (r) {
    snprintf(err, errn, "send: %s", strerror(errno));
    return -1;
  }
  char *line;
  int ln = read_line(c, &line);
  if (ln < 0) {
    snprintf(err, errn, "connection closed by the daemon");
    return -1;
  }
  const char *ok = json_top(line, "ok");
  int res = ok && strncmp(ok, "true", 4) == 0;
  if (!res) {
    char e[256], en[64];
    json_strval(json_top(line, "error"), e, sizeof e);
    json_strval(json_top(line, "errno"), en, sizeof en);
    snprintf(err, errn, "%s%s%s", en, en[0] ? ": " : "", e[0] ? e : line);
  }
  consume(c, ln);
  return res;
}

/* ------------------------------------------------------------------ workers */

typedef struct {
  int a, fd;
  fl_rng rng;
  fl_jctx *j;
  uint8_t *buf;
  uint64_t *gens;
  char *b64, *body;
  conn c;
} worker;

static void winit(worker *w, int a, int want_conn) {
  memset(w, 0, sizeof *w);
  w->a = a;
  w->c.fd = -1;
  w->fd = open(PATH, O_RDWR);
  fl_rng_seed(&w->rng, P.seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(a + 1)));
  w->j = fl_jctx_new(O);
  w->buf = malloc(FS);
  w->gens = calloc(NU, sizeof *w->gens);
  size_t b64n = (size_t)MAX_UNITS * US / 3 * 4 + 16;
  w->b64 = malloc(b64n);
  w->body = malloc(b64n + 8192);
  if (w->fd < 0 || !w->j || !w->buf || !w->gens || !w->b64 || !w->body) {
    fprintf(stderr, "server_punch: set-up failed: %s\n", strerror(errno));
    exit(3);
  }
  if (want_conn && conn_open(&w->c) != 0) {
    fprintf(stderr, "server_punch: connect %s: %s\n", SOCK, strerror(errno));
    exit(3);
  }
}

static void wfini(worker *w) {
  close(w->fd);
  conn_close(&w->c);
  fl_jctx_free(w->j);
  free(w->buf);
  free(w->gens);
  free(w->b64);
  free(w->body);
}

static char RELESC[8192];

/* one server-side operation, logged */
static int server_op(worker *w, fl_opspec *sp, const char *body, int refresh) {
  char err[512];
  fl_publish(O, w->a);
  fl_wd_begin(O, w->a, W_SERVER_REQ, (uint64_t)sp->u0 * US, (uint64_t)sp->n * US);
  uint64_t ts = fl_begin(O, sp, 0);
  int r = request(&w->c, body, err, sizeof err);
  if (r == 1 && refresh) {
    struct stat st;
    fstat(w->fd, &st); /* GETATTR: the kernel learns the new i_size */
  }
  uint64_t te = fl_tick(O);
  fl_wd_end(O, w->a);
  fl_end(O, sp, ts, te, r == 1 ? OUT_OK : OUT_FAILED);
  fl_obs_end(O, w->a);
  if (r != 1) {
    fl_violation(O, w->a, V_IO_ERROR, VIA_SYSCALL, sp->u0, (uint64_t)sp->u0 * US, "server %s failed: %s",
                 fl_op_name(sp->op), err);
    if (r < 0) {
      fprintf(stderr, "server_punch: control connection failed: %s\n", err);
      atomic_store(&O->stop, 1);
    }
  }
  return r;
}

static void swrite(worker *w, uint32_t u0, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    w->gens[i] = fl_new_gen(O);
    fl_pattern_fill(w->buf + (size_t)i * US, US, O->run, u0 + i, w->gens[i]);
  }
  fl_base64(w->buf, (size_t)n * US, w->b64);
  snprintf(w->body, (size_t)MAX_UNITS * US / 3 * 4 + 8192, "\"cmd\":\"write\",\"path\":\"%s\",\"offset\":%llu,\"data\":\"%s\"",
           RELESC, (unsigned long long)u0 * US, w->b64);
  fl_opspec sp = {.op = OP_SWRITE, .actor = (uint16_t)w->a, .u0 = u0, .n = n, .gens = w->gens};
  server_op(w, &sp, w->body, 0);
  FL_OPS(O, w->a, K_SWRITE, 1);
  FL_OPS(O, w->a, K_PWRITE_UNITS, n);
}

static void rewrite(worker *w, uint32_t u0, uint32_t end, double p) {
  uint32_t lim = (uint32_t)(atomic_load(&O->cur_size) / US);
  if (end > lim) end = lim;
  for (uint32_t u = u0; u < end && !atomic_load(&O->stop);) {
    uint32_t len = 1 + (uint32_t)fl_rng_below(&w->rng, 8);
    if (u + len > end) len = end - u;
    if (fl_rng_chance(&w->rng, p)) swrite(w, u, len);
    u += len;
  }
}

static void pick_range(worker *w, uint32_t *u0, uint32_t *n) {
  uint32_t len = 1 + (uint32_t)fl_rng_below(&w->rng, MAX_UNITS), s = (uint32_t)fl_rng_below(&w->rng, NU);
  if (s + len > NU) len = NU - s;
  if (ALIGN_PAGE) {
    uint32_t upp = FL_PAGE / US, a = s / upp * upp, b = (uint32_t)fl_round_up(s + len, upp);
    if (b > NU) b = NU;
    s = a;
    len = b - a;
  }
  *u0 = s;
  *n = len;
}

static void role_server(void *arg, int a) {
  (void)arg;
  worker w;
  winit(&w, a, 1);
  char body[8192 + 256];
  while (!atomic_load(&O->stop)) {
    double x = (double)(fl_rng_next(&w.rng) >> 11) / 9007199254740992.0;
    if (x < MIX_PUNCH + (ZERO_OK ? MIX_ZERO : 0)) {
      int zero = x >= MIX_PUNCH;
      uint32_t u0, n;
      pick_range(&w, &u0, &n);
      snprintf(body, sizeof body, "\"cmd\":\"%s\",\"path\":\"%s\",\"offset\":%llu,\"length\":%llu", zero ? "zero" : "punch",
               RELESC, (unsigned long long)u0 * US, (unsigned long long)n * US);
      fl_opspec sp = {.op = (uint8_t)(zero ? OP_SZERO : OP_SPUNCH), .actor = (uint16_t)a, .u0 = u0, .n = n};
      server_op(&w, &sp, body, 0);
      FL_OPS(O, a, zero ? K_SZERO : K_SPUNCH, 1);
      fl_size_lock(O);
      rewrite(&w, u0, u0 + n, 0.7);
      fl_size_unlock(O);
    } else if (x < MIX_PUNCH + MIX_ZERO + MIX_TRUNC) {
      uint64_t gran = ALIGN_PAGE ? FL_PAGE : US;
      uint64_t S = fl_rng_below(&w.rng, FS / gran) * gran;
      fl_size_lock(O);
      snprintf(body, sizeof body, "\"cmd\":\"truncate\",\"path\":\"%s\",\"size\":%llu", RELESC, (unsigned long long)S);
      fl_opspec sp = {.op = OP_STRUNC, .actor = (uint16_t)a, .resize = 1, .old_size = FS, .new_size = S};
      server_op(&w, &sp, body, SIZE_REFRESH);
      atomic_store(&O->cur_size, S);
      fl_sleep_us((unsigned)fl_rng_below(&w.rng, 200));
      snprintf(body, sizeof body, "\"cmd\":\"truncate\",\"path\":\"%s\",\"size\":%llu", RELESC, (unsigned long long)FS);
      fl_opspec sp2 = {.op = OP_SEXTEND, .actor = (uint16_t)a, .resize = 1, .old_size = S, .new_size = FS};
      server_op(&w, &sp2, body, SIZE_REFRESH);
      atomic_store(&O->cur_size, FS);
      FL_OPS(O, a, K_STRUNC, 2);
      rewrite(&w, (uint32_t)(S / US), NU, 0.5);
      fl_size_unlock(O);
    } else {
      uint32_t n = 1 + (uint32_t)fl_rng_below(&w.rng, 16), u0 = (uint32_t)fl_rng_below(&w.rng, NU);
      if (u0 + n > NU) n = NU - u0;
      fl_size_lock(O);
      swrite(&w, u0, n);
      fl_size_unlock(O);
    }
  }
  wfini(&w);
}

static void judge_pread(worker *w, uint32_t u0, uint32_t n, int via) {
  uint64_t rs = fl_obs_begin(O, w->a);
  fl_wd_begin(O, w->a, W_PREAD, (uint64_t)u0 * US, (uint64_t)n * US);
  ssize_t r = pread(w->fd, w->buf, (size_t)n * US, (off_t)u0 * US);
  uint64_t re = fl_tick(O);
  fl_wd_end(O, w->a);
  if (r < 0) {
    fl_violation(O, w->a, V_IO_ERROR, via, u0, (uint64_t)u0 * US, "pread: %s", strerror(errno));
  } else {
    for (uint32_t i = 0; i < n; i++) {
      ssize_t off = (ssize_t)i * US;
      if (r > off)
        fl_judge_content(O, w->j, w->a, u0 + i, rs, re, w->buf + off, r >= off + (ssize_t)US ? US : (uint32_t)(r - off),
                         via, via >= VIA_FINAL_PREAD);
    }
    if (r < (ssize_t)n * US) fl_judge_short(O, w->a, (uint64_t)u0 * US, (uint64_t)u0 * US + (uint64_t)r, rs, re, via);
  }
  fl_obs_end(O, w->a);
}

static void role_mapper(void *arg, int a) {
  (void)arg;
  worker w;
  winit(&w, a, 0);
  fl_guard_install();
  while (!atomic_load(&O->stop)) {
    fl_wd_begin(O, a, W_MMAP_CYCLE, 0, FS);
    uint8_t *m = mmap(NULL, FS, PROT_READ, MAP_SHARED, w.fd, 0);
    fl_wd_end(O, a);
    if (m == MAP_FAILED) {
      fl_violation(O, a, V_IO_ERROR, VIA_SYSCALL, 0, 0, "mmap: %s", strerror(errno));
      fl_sleep_us(100000);
      continue;
    }
    FL_OPS(O, a, K_MMAP_CYCLES, 1);
    uint32_t start = (uint32_t)fl_rng_below(&w.rng, NU), len = 1 + (uint32_t)fl_rng_below(&w.rng, 64);
    for (uint32_t i = 0; i < len && !atomic_load(&O->stop); i++) {
      uint32_t u = (start + i) % NU;
      if (fl_rng_chance(&w.rng, PREAD_P)) {
        judge_pread(&w, u, 1, VIA_PREAD);
        FL_OPS(O, a, K_PREADS, 1);
        FL_OPS(O, a, K_PREAD_UNITS, 1);
        continue;
      }
      uintptr_t fault;
      fl_wd_begin(O, a, W_MMAP_ACCESS, (uint64_t)u * US, US);
      uint64_t rs = fl_obs_begin(O, a);
      int sig = fl_guarded_read(w.buf, m + (size_t)u * US, US, &fault);
      uint64_t re = fl_tick(O);
      fl_wd_end(O, a);
      FL_OPS(O, a, K_MMAP_READS, 1);
      if (sig == SIGBUS) fl_judge_sigbus(O, a, (uint64_t)(fault - (uintptr_t)m), rs, re, VIA_MMAP, 0);
      else if (sig) fl_violation(O, a, V_IO_ERROR, VIA_MMAP, u, (uint64_t)u * US, "signal %d", sig);
      else fl_judge_content(O, w.j, a, u, rs, re, w.buf, US, VIA_MMAP, 0);
      fl_obs_end(O, a);
    }
    munmap(m, FS);
  }
  wfini(&w);
}

static void role_reader(void *arg, int a) {
  (void)arg;
  worker w;
  winit(&w, a, 0);
  while (!atomic_load(&O->stop)) {
    uint32_t n = 1 + (uint32_t)fl_rng_below(&w.rng, 16), u0 = (uint32_t)fl_rng_below(&w.rng, NU);
    if (u0 + n > NU) n = NU - u0;
    judge_pread(&w, u0, n, VIA_PREAD);
    FL_OPS(O, a, K_PREADS, 1);
    FL_OPS(O, a, K_PREAD_UNITS, n);
  }
  wfini(&w);
}

static void final_check(int a) {
  worker w;
  winit(&w, a, 0);
  struct stat st;
  uint64_t model = fl_model_size(O);
  if (fstat(w.fd, &st) == 0 && (uint64_t)st.st_size != model)
    fl_violation(O, a, V_FINAL_MISMATCH, VIA_SIZE, 0, (uint64_t)st.st_size, "file size %lld, expected %llu",
                 (long long)st.st_size, (unsigned long long)model);
  for (uint32_t u = 0; u < NU; u++) judge_pread(&w, u, 1, VIA_FINAL_PREAD);
  fl_final_mmap_check(O, w.j, a, w.fd, w.buf, FS, US, NU);
  posix_fadvise(w.fd, 0, 0, POSIX_FADV_DONTNEED);
  for (uint32_t u = 0; u < NU; u++) judge_pread(&w, u, 1, VIA_FINAL_FADVISE);
  wfini(&w);
}

/* ------------------------------------------------------------------ main */

static int find_socket(const char *mountpoint, char *out, size_t n) {
  char rp[PATH_MAX];
  if (!realpath(mountpoint, rp)) return -1;
  char rundir[4096];
  const char *env = getenv("FAULTLINE_RUN_DIR");
  if (env && *env) snprintf(rundir, sizeof rundir, "%s", env);
  else if (geteuid() == 0) snprintf(rundir, sizeof rundir, "/run/faultline");
  else {
    const char *x = getenv("XDG_RUNTIME_DIR");
    snprintf(rundir, sizeof rundir, "%s/faultline-%u", x && *x ? x : "/tmp", (unsigned)getuid());
  }
  int w = snprintf(out, n, "%s/%016llx.sock", rundir, (unsigned long long)fl_fnv1a64(rp, strlen(rp)));
  return w > 0 && (size_t)w < n ? 0 : -1;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: server_punch [options] TARGET\n"
          "faultline mounts only: server-side punch / zero / truncate / write through the mount's control\n"
          "socket while reader threads map and read the file; judged by the oracle.\n"
          "Exit: 0 clean, 1 violations, 2 usage / set-up error / not a faultline mount / vacuous.\n\n" FL_COMMON_USAGE
          "      --ctl SOCKET        control socket (default: found from the mountpoint, see PROTOCOL.md)\n"
          "  -u, --unit N            unit size: 512, 1024 (default) or 4096\n"
          "  -f, --file-size N       file size (default 256k; multiple of 4096)\n"
          "      --mappers N         mapper threads (read-only mappings; default 1)\n"
          "      --readers N         pread reader threads (default 1)\n"
          "      --server-threads N  threads issuing server-side operations, one connection each (default 1)\n"
          "      --mix P,Z,T         shares of punch, zero, truncate (the rest: write; default 0.4,0.2,0.15)\n"
          "      --max-units N       punch / zero length 1..N units (default 64)\n"
          "      --mapper-pread-prob P  share of mapper accesses done with pread (default 0.333)\n"
          "      --align unit|page   ranges and sizes unit-aligned (default) or page-aligned\n"
          "      --no-size-refresh   do not fstat() after a server truncate (see the source)\n"
          "      --keep              keep the test file\n");
}

int main(int argc, char **argv) {
  fl_prog_init(&P, "server_punch", argc, argv);
  US = 1024;
  FS = 256 * 1024;
  const char *ctl = NULL;
  static struct option lo[] = {FL_COMMON_LONGOPTS,
                               {"ctl", required_argument, 0, 1},
                               {"unit", required_argument, 0, 'u'},
                               {"file-size", required_argument, 0, 'f'},
                               {"mappers", required_argument, 0, 2},
                               {"readers", required_argument, 0, 3},
                               {"server-threads", required_argument, 0, 4},
                               {"mix", required_argument, 0, 5},
                               {"max-units", required_argument, 0, 6},
                               {"mapper-pread-prob", required_argument, 0, 7},
                               {"align", required_argument, 0, 8},
                               {"no-size-refresh", no_argument, 0, 9},
                               {"keep", no_argument, 0, 10},
                               {0, 0, 0, 0}};
  int c;
  uint64_t v;
  while ((c = getopt_long(argc, argv, "hs:d:j:qu:f:", lo, NULL)) != -1) {
    if (fl_common_opt(&P, c, optarg)) continue;
    switch (c) {
      case 'h': usage(stdout); return 0;
      case 1: ctl = optarg; break;
      case 'u':
        if (fl_parse_u64(optarg, &v) || (v != 512 && v != 1024 && v != 4096)) goto bad;
        US = (uint32_t)v;
        break;
      case 'f':
        if (fl_parse_u64(optarg, &FS) || FS % FL_PAGE || !FS || FS > (1ull << 30)) goto bad;
        break;
      case 2: if (fl_parse_u64(optarg, &v) || v > 16) goto bad; N_MAP = (int)v; break;
      case 3: if (fl_parse_u64(optarg, &v) || v > 16) goto bad; N_READ = (int)v; break;
      case 4: if (fl_parse_u64(optarg, &v) || v < 1 || v > 8) goto bad; N_SERVER = (int)v; break;
      case 5:
        if (sscanf(optarg, "%lf,%lf,%lf", &MIX_PUNCH, &MIX_ZERO, &MIX_TRUNC) != 3 || MIX_PUNCH < 0 || MIX_ZERO < 0 ||
            MIX_TRUNC < 0 || MIX_PUNCH + MIX_ZERO + MIX_TRUNC > 1)
          goto bad;
        break;
      case 6: if (fl_parse_u64(optarg, &v) || !v || v > 4096) goto bad; MAX_UNITS = (uint32_t)v; break;
      case 7: if (fl_parse_double(optarg, &PREAD_P) || PREAD_P < 0 || PREAD_P > 1) goto bad; break;
      case 8:
        if (!strcmp(optarg, "page")) ALIGN_PAGE = 1;
        else if (strcmp(optarg, "unit")) goto bad;
        break;
      case 9: SIZE_REFRESH = 0; break;
      case 10: KEEP = 1; break;
      default: goto bad;
    }
  }
  if (optind != argc - 1) goto bad;
  if (fl_target_path(argv[optind], "server_punch", PATH, sizeof PATH, DIR_, sizeof DIR_)) return 2;
  NU = (uint32_t)(FS / US);
  if (MAX_UNITS > NU) MAX_UNITS = NU;
  if (fl_env_probe(&P.env, DIR_) != 0) {
    fprintf(stderr, "server_punch: %s: %s\n", DIR_, strerror(errno));
    return 2;
  }
  snprintf(P.env.target, sizeof P.env.target, "%s", PATH);
  if (ctl) snprintf(SOCK, sizeof SOCK, "%s", ctl);
  else if (find_socket(P.env.mountpoint, SOCK, sizeof SOCK) != 0) {
    fprintf(stderr, "server_punch: cannot resolve the mountpoint of %s\n", DIR_);
    return 2;
  }
  struct stat st;
  if (stat(SOCK, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    fprintf(stderr,
            "server_punch: %s is not on a faultline mount: no control socket %s (mountpoint %s, fstype %s).\n"
            "server_punch needs a faultline mount (or --ctl SOCKET).\n",
            DIR_, SOCK, P.env.mountpoint, P.env.fstype);
    return 2;
  }
  /* check the daemon answers */
  {
    conn c0;
    char err[512];
    if (conn_open(&c0) != 0) {
      fprintf(stderr, "server_punch: cannot connect to %s: %s\n", SOCK, strerror(errno));
      return 2;
    }
    if (request(&c0, "\"cmd\":\"status\"", err, sizeof err) != 1) {
      fprintf(stderr, "server_punch: status request failed: %s\n", err);
      conn_close(&c0);
      return 2;
    }
    conn_close(&c0);
  }
  /* the path relative to the mount root */
  {
    char rp[PATH_MAX], mp[PATH_MAX];
    if (!realpath(DIR_, rp) || !realpath(P.env.mountpoint, mp)) return 2;
    const char *base = strrchr(PATH, '/');
    base = base ? base + 1 : PATH;
    size_t ml = strlen(mp);
    const char *sub = strcmp(mp, "/") == 0 ? rp : rp + ml;
    int w = snprintf(REL, sizeof REL, "%s%s%.*s", *sub == '/' ? sub + 1 : sub, *sub ? "/" : "", 255, base);
    if (w < 0 || (size_t)w >= sizeof REL) {
      fprintf(stderr, "server_punch: path too long\n");
      return 2;
    }
    json_escape(REL, RELESC, sizeof RELESC);
  }
  int fd = open(PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "server_punch: cannot create %s: %s\n", PATH, strerror(errno));
    return 2;
  }
  uint64_t rs = P.seed ^ fl_now_ns();
  O = fl_oracle_new(US, FS, 64, 256, (uint32_t)fl_splitmix64(&rs));
  if (!O) return 2;
  O->post_eof_allowed = 1; /* no mmap stores in this program: no post-EOF data can exist */
  int a = fl_actor_add(O, R_MAIN, 0);
  fl_guard_install();
  fl_opspec init = {.op = OP_INIT, .actor = (uint16_t)a, .u0 = 0, .n = NU, .resize = 1, .new_size = FS};
  uint64_t ts = fl_begin(O, &init, 0);
  int r = ftruncate(fd, (off_t)FS);
  fl_end(O, &init, ts, fl_tick(O), OUT_OK);
  if (r) return 2;
  {
    worker w;
    winit(&w, a, 1);
    /* initial data through the server (also proves the write path) */
    for (uint32_t u = 0; u < NU; u += 16) swrite(&w, u, NU - u < 16 ? NU - u : 16);
    /* probe zero-range */
    char body[8192 + 128], err[512];
    snprintf(body, sizeof body, "\"cmd\":\"zero\",\"path\":\"%s\",\"offset\":0,\"length\":0", RELESC);
    if (request(&w.c, body, err, sizeof err) != 1 && strstr(err, "EOPNOTSUPP")) {
      ZERO_OK = 0;
      fl_role_skipped(&P, "server-zero", "%s", err);
    }
    wfini(&w);
  }
  close(fd);
  if (fl_total_violations(O)) {
    fprintf(stderr, "server_punch: the initial server-side write failed\n");
    P.t_start = P.t_end = fl_now_s();
    fl_prog_error(&P, "initial server-side write failed");
    return fl_report(&P, O);
  }
  fl_cfg_str(&P, "target", PATH);
  fl_cfg_str(&P, "relative_path", REL);
  fl_cfg_str(&P, "control_socket", SOCK);
  fl_cfg_num(&P, "unit_size", US);
  fl_cfg_num(&P, "file_size", (double)FS);
  fl_cfg_num(&P, "duration", P.duration);
  fl_cfg_num(&P, "mappers", N_MAP);
  fl_cfg_num(&P, "readers", N_READ);
  fl_cfg_num(&P, "server_threads", N_SERVER);
  fl_cfg_num(&P, "mix_punch", MIX_PUNCH);
  fl_cfg_num(&P, "mix_zero", MIX_ZERO);
  fl_cfg_num(&P, "mix_truncate", MIX_TRUNC);
  fl_cfg_num(&P, "max_units", MAX_UNITS);
  fl_cfg_num(&P, "mapper_pread_prob", PREAD_P);
  fl_cfg_str(&P, "align", ALIGN_PAGE ? "page" : "unit");
  fl_cfg_str(&P, "size_refresh", SIZE_REFRESH ? "yes" : "no");
  if (!P.quiet)
    printf("server_punch: %s on %s (%s) via %s, unit %u, file %llu bytes, seed %llu, %.1f s\n", PATH, P.env.fstype,
           P.env.mount_options, SOCK, US, (unsigned long long)FS, (unsigned long long)P.seed, P.duration);
  int ids[FL_MAX_ACTORS];
  fl_actor_fn fns[FL_MAX_ACTORS];
  void *args[FL_MAX_ACTORS];
  int n = 0;
  for (int i = 0; i < N_MAP; i++, n++) ids[n] = fl_actor_add(O, R_MAPPER, i), fns[n] = role_mapper, args[n] = NULL;
  for (int i = 0; i < N_READ; i++, n++) ids[n] = fl_actor_add(O, R_READER, i), fns[n] = role_reader, args[n] = NULL;
  for (int i = 0; i < N_SERVER; i++, n++) ids[n] = fl_actor_add(O, R_SERVER, i), fns[n] = role_server, args[n] = NULL;
  if (!KEEP) P.cleanup_path = PATH;
  fl_watchdog_start(&P, O);
  P.t_start = fl_now_s();
  fl_run_actors(&P, O, n, ids, fns, args, P.duration);
  P.t_end = fl_now_s();
  if (!P.error) final_check(a);
  fl_watchdog_stop();
  if (fl_sum_ops(O, K_SPUNCH) + fl_sum_ops(O, K_SZERO) == 0) {
    P.vacuous = 1;
    snprintf(P.vacuous_why, sizeof P.vacuous_why, "no server-side punch or zero was executed");
  }
  int code = fl_report(&P, O);
  if (!KEEP) unlink(PATH);
  fl_oracle_free(O);
  return code;
bad:
  usage(stderr);
  return 2;
}
