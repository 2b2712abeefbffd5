/* mmap_probe: map a file, touch each given offset under the SIGBUS guard, print one JSON object per
 * offset (SIGBUS, or the bytes' checksum and first bytes). A small tool for other helpers'
 * integration tests, e.g. "truncate down; a mapped page beyond EOF raises SIGBUS; the EOF page tail
 * reads zeros". Optional steps between mapping and probing: prefault every page, truncate, punch.
 * Exit 0 when every probe ran (whatever it found), 2 on usage / set-up errors. */
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

static void usage(FILE *f) {
  fprintf(f,
          "usage: mmap_probe [options] FILE OFFSET...\n"
          "Maps FILE (MAP_SHARED) and touches each OFFSET under a SIGBUS guard; prints one JSON line per\n"
          "offset: {\"offset\",\"page\",\"result\":\"ok\"|\"sigbus\"|\"sigsegv\",\"fault_offset\",\"len\",\"zero\",\n"
          "\"checksum\" (FNV-1a 64 of the bytes read),\"first_bytes\" (hex),\"resident\",\"pte_present\"}.\n"
          "Then one line {\"summary\":true,...}. Offsets accept k/m/g suffixes.\n\n"
          "  -h, --help            this text\n"
          "  -l, --len N           bytes to read (or write) at each offset (default 8; at most 1 MiB)\n"
          "  -m, --map-size N      mapping length (default: max(file size, last offset + len), page-rounded)\n"
          "  -w, --write BYTE      store LEN bytes of BYTE (e.g. 0x58) instead of reading\n"
          "      --prefault        read every page of the mapping first (SIGBUS ignored)\n"
          "      --truncate SIZE   after mapping (and prefault), ftruncate the file to SIZE\n"
          "      --punch OFF:LEN   after mapping (and prefault), punch a hole (KEEP_SIZE)\n"
          "      --open-rdonly     open read-only (no --write, --truncate, --punch)\n"
          "Exit: 0 all probes ran, 2 usage / set-up error.\n");
}

int main(int argc, char **argv) {
  uint64_t len = 8, map_size = 0, trunc_size = 0, punch_off = 0, punch_len = 0;
  int do_write = 0, prefault = 0, do_trunc = 0, do_punch = 0, rdonly = 0;
  uint8_t wbyte = 0;
  static struct option lo[] = {{"help", no_argument, 0, 'h'},        {"len", required_argument, 0, 'l'},
                               {"map-size", required_argument, 0, 'm'}, {"write", required_argument, 0, 'w'},
                               {"prefault", no_argument, 0, 1},         {"truncate", required_argument, 0, 2},
                               {"punch", required_argument, 0, 3},      {"open-rdonly", no_argument, 0, 4},
                               {0, 0, 0, 0}};
  int c;
  uint64_t v;
  while ((c = getopt_long(argc, argv, "hl:m:w:", lo, NULL)) != -1) {
    switch (c) {
      case 'h': usage(stdout); return 0;
      case 'l':
        if (fl_parse_u64(optarg, &len) || len == 0 || len > (1u << 20)) goto bad;
        break;
      case 'm':
        if (fl_parse_u64(optarg, &map_size) || map_size == 0) goto bad;
        break;
      case 'w':
        if (fl_parse_u64(optarg, &v) || v > 255) goto bad;
        do_write = 1;
        wbyte = (uint8_t)v;
        break;
      case 1: prefault = 1; break;
      case 2:
        if (fl_parse_u64(optarg, &trunc_size)) goto bad;
        do_trunc = 1;
        break;
      case 3: {
        char *colon = strchr(optarg, ':');
        if (!colon) goto bad;
        *colon = 0;
        if (fl_parse_u64(optarg, &punch_off) || fl_parse_u64(colon + 1, &punch_len) || !punch_len) goto bad;
        do_punch = 1;
        break;
      }
      case 4: rdonly = 1; break;
      default: goto bad;
    }
  }
  if (argc - optind < 2 || (rdonly && (do_write || do_trunc || do_punch))) goto bad;
  const char *path = argv[optind];
  int n = argc - optind - 1;
  uint64_t *offs = calloc((size_t)n, sizeof *offs);
  if (!offs) return 2;
  uint64_t maxend = 0;
  for (int i = 0; i < n; i++) {
    if (fl_parse_u64(argv[optind + 1 + i], &offs[i])) {
      fprintf(stderr, "mmap_probe: bad offset '%s'\n", argv[optind + 1 + i]);
      return 2;
    }
    if (offs[i] + len > maxend) maxend = offs[i] + len;
  }
  int fd = open(path, rdonly ? O_RDONLY : O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "mmap_probe: open %s: %s\n", path, strerror(errno));
    return 2;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return 2;
  if (!map_size) map_size = (uint64_t)st.st_size > maxend ? (uint64_t)st.st_size : maxend;
  map_size = fl_round_up(map_size, FL_PAGE);
  if (maxend > map_size) {
    fprintf(stderr, "mmap_probe: offsets beyond --map-size\n");
    return 2;
  }
  fl_guard_install();
  uint8_t *m = mmap(NULL, map_size, PROT_READ | (rdonly ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    fprintf(stderr, "mmap_probe: mmap: %s\n", strerror(errno));
    return 2;
  }
  uint8_t *buf = malloc(fl_round_up(len, 8) + 8);
  if (!buf) return 2;
  uint64_t pf_ok = 0, pf_bus = 0;
  if (prefault) {
    for (uint64_t q = 0; q < map_size; q += FL_PAGE) {
      uintptr_t fault;
      if (fl_guarded_read(buf, m + q, 8, &fault)) pf_bus++;
      else pf_ok++;
    }
  }
  if (do_trunc && ftruncate(fd, (off_t)trunc_size) != 0) {
    fprintf(stderr, "mmap_probe: ftruncate: %s\n", strerror(errno));
    return 2;
  }
  if (do_punch && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)punch_off, (off_t)punch_len) != 0) {
    fprintf(stderr, "mmap_probe: fallocate(PUNCH_HOLE): %s\n", strerror(errno));
    return 2;
  }
  int pm = open("/proc/self/pagemap", O_RDONLY);
  unsigned char *vec = calloc(map_size / FL_PAGE, 1);
  uint64_t nbus = 0;
  for (int i = 0; i < n; i++) {
    uint64_t off = offs[i];
    uintptr_t fault = 0;
    int sig;
    uint64_t aligned = fl_round_down(off, 8), alen = fl_round_up(off + len, 8) - aligned;
    if (do_write) {
      /* read-modify-write by 8-byte words so stores stay ascending and aligned */
      uint8_t *tmp = malloc(alen);
      if (!tmp) return 2;
      sig = fl_guarded_read(tmp, m + aligned, alen, &fault);
      if (!sig) {
        memset(tmp + (off - aligned), wbyte, len);
        sig = fl_guarded_write(m + aligned, tmp, alen, &fault);
      }
      free(tmp);
      memset(buf, wbyte, len);
    } else {
      uint8_t *tmp = malloc(alen);
      if (!tmp) return 2;
      sig = fl_guarded_read(tmp, m + aligned, alen, &fault);
      if (!sig) memcpy(buf, tmp + (off - aligned), len);
      free(tmp);
    }
    int resident = -1, present = -1;
    if (vec && mincore(m, map_size, vec) == 0) resident = vec[off / FL_PAGE] & 1;
    if (pm >= 0) {
      uint64_t ent;
      if (pread(pm, &ent, 8, (off_t)(((uintptr_t)(m + off) / FL_PAGE) * 8)) == 8) present = (int)((ent >> 63) & 1);
    }
    printf("{\"offset\":%llu,\"page\":%llu,\"result\":\"%s\"", (unsigned long long)off,
           (unsigned long long)(off / FL_PAGE), sig == SIGBUS ? "sigbus" : sig ? "sigsegv" : "ok");
    if (sig) {
      nbus++;
      printf(",\"fault_offset\":%llu", (unsigned long long)((uint8_t *)fault - m));
    } else {
      printf(",\"fault_offset\":null,\"len\":%llu,\"zero\":%s,\"checksum\":\"%016llx\",\"first_bytes\":\"",
             (unsigned long long)len, fl_all_zero(buf, len) ? "true" : "false",
             (unsigned long long)fl_fnv1a64(buf, len));
      for (uint64_t k = 0; k < len && k < 16; k++) printf("%02x", buf[k]);
      printf("\"");
    }
    printf(",\"resident\":%s,\"pte_present\":%s}\n", resident < 0 ? "null" : resident ? "true" : "false",
           present < 0 ? "null" : present ? "true" : "false");
  }
  if (fstat(fd, &st) != 0) st.st_size = -1;
  fl_json j;
  fl_json_init(&j, stdout);
  fl_json_obj(&j);
  fl_json_kbool(&j, "summary", 1);
  fl_json_kstr(&j, "file", path);
  fl_json_ki64(&j, "file_size", (int64_t)st.st_size);
  fl_json_ku64(&j, "map_size", map_size);
  fl_json_ki64(&j, "probes", n);
  fl_json_ku64(&j, "faults", nbus);
  fl_json_ku64(&j, "prefault_ok", pf_ok);
  fl_json_ku64(&j, "prefault_sigbus", pf_bus);
  fl_json_end_obj(&j);
  putchar('\n');
  munmap(m, map_size);
  close(fd);
  if (pm >= 0) close(pm);
  free(vec);
  free(buf);
  free(offs);
  return 0;
bad:
  usage(stderr);
  return 2;
}
