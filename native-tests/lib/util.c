#include "fl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ rng (xoshiro256**) */

uint64_t fl_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fl_rng_seed(fl_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = fl_splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fl_rng_next(fl_rng *r) {
  uint64_t *s = r->s;
  uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return res;
}

uint64_t fl_rng_below(fl_rng *r, uint64_t n) {
  if (n <= 1) return 0;
  return (uint64_t)(((unsigned __int128)fl_rng_next(r) * n) >> 64);
}

int fl_rng_chance(fl_rng *r, double p) {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  return (double)(fl_rng_next(r) >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* ------------------------------------------------------------------ time */

uint64_t fl_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double fl_now_s(void) { return (double)fl_now_ns() / 1e9; }

void fl_sleep_us(unsigned us) {
  struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------------ misc */

uint64_t fl_fnv1a64(const void *p, size_t n) {
  const uint8_t *b = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

size_t fl_base64(const uint8_t *in, size_t n, char *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = '=';
    out[o++] = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = '=';
  }
  out[o] = 0;
  return o;
}

int fl_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *s == '-') return -1;
  uint64_t mul = 1;
  if (*end) {
    switch (tolower((unsigned char)*end)) {
      case 'k': mul = 1024ull; break;
      case 'm': mul = 1024ull * 1024; break;
      case 'g': mul = 1024ull * 1024 * 1024; break;
      default: return -1;
    }
    end++;
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return -1;
  }
  if (v > UINT64_MAX / mul) return -1;
  *out = (uint64_t)v * mul;
  return 0;
}

int fl_parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || *end) return -1;
  *out = v;
  return 0;
}

uint64_t fl_round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
uint64_t fl_round_down(uint64_t x, uint64_t a) { return x / a * a; }

int fl_mkdirs_for(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf) return 0;
  *slash = 0;
  for (char *p = buf + 1; *p; p++) {
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) && errno != EEXIST) return -1;
      *p = '/';
    }
  }
  if (mkdir(buf, 0755) && errno != EEXIST) return -1;
  return 0;
}

/* ------------------------------------------------------------------ environment */

static const struct { unsigned long magic; const char *name; } fs_magics[] = {
    {0x01021994, "tmpfs"}, {0xEF53, "ext2/ext3/ext4"}, {0x58465342, "xfs"},
    {0x9123683E, "btrfs"}, {0x65735546, "fuse"},         {0x6969, "nfs"},
    {0x794c7630, "overlayfs"}, {0xF2F52010, "f2fs"},    {0x858458f6, "ramfs"},
    {0x01021997, "v9fs"},  {0x00c36400, "ceph"},         {0x2fc12fc1, "zfs"},
    {0x5346544e, "ntfs"},  {0x4d44, "msdos"},            {0x62656572, "sysfs"},
    {0x9fa0, "proc"},      {0x73717368, "squashfs"},     {0xde5e81e4, "efivarfs"},
};

/* decode the octal escapes of /proc/self/mountinfo (\040 etc.) in place */
static void mi_unescape(char *s) {
  char *o = s;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
        s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else {
      *o++ = *s++;
    }
  }
  *o = 0;
}

static int path_under(const char *path, const char *mnt) {
  size_t n = strlen(mnt);
  if (strcmp(mnt, "/") == 0) return 1;
  return strncmp(path, mnt, n) == 0 && (path[n] == 0 || path[n] == '/');
}

int fl_env_probe(fl_env *e, const char *target_dir) {
  memset(e, 0, sizeof *e);
  struct utsname u;
  if (uname(&u) == 0) {
    snprintf(e->kernel, sizeof e->kernel, "%s", u.release);
    snprintf(e->kernel_version, sizeof e->kernel_version, "%s", u.version);
    snprintf(e->machine, sizeof e->machine, "%s", u.machine);
  }
  e->nproc = (int)sysconf(_SC_NPROCESSORS_ONLN);
  char rp[PATH_MAX];
  if (!realpath(target_dir, rp)) return -1;
  snprintf(e->target_dir, sizeof e->target_dir, "%s", rp);
  struct statfs sf;
  if (statfs(rp, &sf) == 0) {
    e->f_type = (unsigned long)sf.f_type;
    snprintf(e->statfs_name, sizeof e->statfs_name, "0x%lx", e->f_type);
    for (size_t i = 0; i < sizeof fs_magics / sizeof fs_magics[0]; i++)
      if (fs_magics[i].magic == e->f_type) snprintf(e->statfs_name, sizeof e->statfs_name, "%s", fs_magics[i].name);
  }
  struct stat st;
  if (stat(rp, &st) != 0) return -1;
  FILE *f = fopen("/proc/self/mountinfo", "r");
  if (!f) return 0;
  char *line = NULL;
  size_t cap = 0;
  size_t best = 0;
  while (getline(&line, &cap, f) > 0) {
    /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
    char *save = NULL, *fields[32];
    int nf = 0;
    line[strcspn(line, "\n")] = 0;
    for (char *t = strtok_r(line, " ", &save); t && nf < 32; t = strtok_r(NULL, " ", &save)) fields[nf++] = t;
    if (nf < 7) continue;
    int dash = -1;
    for (int i = 6; i < nf; i++)
      if (strcmp(fields[i], "-") == 0) { dash = i; break; }
    if (dash < 0 || dash + 3 > nf) continue;
    unsigned maj, min;
    if (sscanf(fields[2], "%u:%u", &maj, &min) != 2) continue;
    char mnt[4096];
    snprintf(mnt, sizeof mnt, "%s", fields[4]);
    mi_unescape(mnt);
    if (!path_under(rp, mnt)) continue;
    int devmatch = (major(st.st_dev) == maj && minor(st.st_dev) == min);
    size_t score = strlen(mnt) * 2 + (size_t)devmatch;
    if (score >= best) { /* later entries (mounted on top) win ties */
      best = score;
      snprintf(e->mountpoint, sizeof e->mountpoint, "%s", mnt);
      snprintf(e->mount_options, sizeof e->mount_options, "%s", fields[5]);
      snprintf(e->fstype, sizeof e->fstype, "%s", fields[dash + 1]);
      snprintf(e->mount_source, sizeof e->mount_source, "%s", fields[dash + 2]);
      mi_unescape(e->mount_source);
      snprintf(e->super_options, sizeof e->super_options, "%s", dash + 3 < nf ? fields[dash + 3] : "");
    }
  }
  free(line);
  fclose(f);
  if (!e->fstype[0]) snprintf(e->fstype, sizeof e->fstype, "%s", e->statfs_name);
  return 0;
}

int fl_fs_keeps_post_eof(const fl_env *e) {
  if (e->f_type == 0x01021994 || e->f_type == 0x858458f6 || e->f_type == 0x65735546) return 1;
  if (strncmp(e->fstype, "fuse", 4) == 0 || strcmp(e->fstype, "tmpfs") == 0) return 1;
  return 0;
}

/* target: a directory (the test file is created in it) or a file path (created / truncated).
 * Fills path and dir; returns 0, or -1 with a message on stderr. */
int fl_target_path(const char *target, const char *program, char *path, size_t pn, char *dir, size_t dn) {
  struct stat st;
  if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(dir, dn, "%s", target);
    int w = snprintf(path, pn, "%s/faultline-%s.%d.dat", target, program, (int)getpid());
    if (w < 0 || (size_t)w >= pn) return -1;
    return 0;
  }
  snprintf(path, pn, "%s", target);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", target);
  char *slash = strrchr(tmp, '/');
  if (!slash) snprintf(dir, dn, ".");
  else if (slash == tmp) snprintf(dir, dn, "/");
  else {
    *slash = 0;
    snprintf(dir, dn, "%s", tmp);
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "%s: %s: no such directory\n", program, dir);
    return -1;
  }
  return 0;
}
