/*
 * bench_driver: the workload drivers of `faultline bench`. One workload per invocation; each
 * prints exactly one JSON line on stdout ({"workload":..., "ok":true, ...} or "ok":false with
 * "error") and exits 0 on success, 1 on failure, 2 on bad usage.
 *
 *   fill      --file F --size N             create/extend F to N bytes and write a pattern (untimed prep)
 *   randread  --file F --seconds S          4 KiB preads of uncached pages, POSIX_FADV_RANDOM; each pass
 *                                           reads every page once in random order, then drops the file's
 *                                           page cache (fdatasync + POSIX_FADV_DONTNEED, untimed).
 *                                           ops/s, p50/p99 from per-op clock_gettime.
 *   seqread   --file F --seconds S          sequential 1 MiB reads over the file, cache dropped per pass
 *   seqwrite  --file F --seconds S          sequential 1 MiB pwrites over the file + fsync per pass
 *   punch     --file F --seconds S          per page: FALLOC_FL_PUNCH_HOLE one page -> fault it through a
 *                                           live MAP_SHARED mapping (must read 0) -> pwrite it -> read it
 *                                           again through the mapping (must read the new stamp). cycles/s
 *   mapfault  --file F --seconds S          per pass: drop the cache, mmap the whole file afresh, touch every
 *                                           page in order (one byte each), munmap. pages/s
 *   meta      --dir D --seconds S           open(O_CREAT|O_EXCL)+close, stat, unlink of a fresh name. cycles/s
 *
 * Common options: --seconds S (default 2), --block N (seq workloads, default 1 MiB),
 * --advice normal|random|sequential (mapfault, default normal), --seed N, --max-ops N,
 * --region N (punch: bytes of the file used, default whole file).
 * Cache drops and pass setup are excluded from the timed interval; "seconds" is the timed total.
 * "resident_pct_max" (randread, seqread, mapfault) is the largest share of the file's pages still in
 * the page cache right after a drop (mincore): 0 means every timed read really went to the server
 * (tmpfs always reports 100: its page cache is the storage).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

static const char *workload = "?";
static const char *opt_file, *opt_dir;
static double opt_seconds = 2.0;
static uint64_t opt_size, opt_block = 1u << 20, opt_region, opt_max_ops;
static uint64_t opt_seed = 0x9e3779b97f4a7c15ull;
static const char *opt_advice = "normal";

/* ---------- output ---------- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* JSON-escape the message (quotes and backslashes; control chars dropped) */
	char esc[1100];
	size_t j = 0;
	for (size_t i = 0; msg[i] && j + 2 < sizeof(esc); i++) {
		char c = msg[i];
		if (c == '"' || c == '\\')
			esc[j++] = '\\';
		if ((unsigned char)c >= 0x20)
			esc[j++] = c;
	}
	esc[j] = 0;
	printf("{\"workload\":\"%s\",\"ok\":false,\"error\":\"%s\"}\n", workload, esc);
	fflush(stdout);
	exit(1);
}

#define CHECK(cond, what)                                                                  \
	do {                                                                               \
		if (!(cond))                                                               \
			fail("%s: %s", what, strerror(errno));                             \
	} while (0)

/* ---------- time, random, latencies ---------- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state;
static inline uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct lat {
	uint32_t *v;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1u << 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		CHECK(l->v, "realloc");
	}
	l->v[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* percentile in microseconds (nearest rank); sorts l->v */
static double lat_pct(struct lat *l, double p)
{
	if (!l->n)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)l->n);
	if (k >= l->n)
		k = l->n - 1;
	return l->v[k] / 1000.0;
}

static void lat_sort(struct lat *l)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
}

/* ---------- file helpers ---------- */

static uint64_t file_size(int fd)
{
	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat");
	return (uint64_t)st.st_size;
}

/* Drop the file's clean page-cache pages. Untimed. */
static void drop_cache(int fd)
{
	if (fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS)
		fail("fdatasync: %s", strerror(errno));
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (rc != 0)
		fail("posix_fadvise(DONTNEED): %s", strerror(rc));
}

/* Percentage of the first `size` bytes of the file resident in the page cache (mincore). */
static double resident_pct(int fd, uint64_t size)
{
	if (size == 0)
		return 0;
	void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -1;
	size_t pages = (size + PAGE - 1) / PAGE;
	unsigned char *vec = malloc(pages);
	double pct = -1;
	if (vec && mincore(m, size, vec) == 0) {
		size_t in = 0;
		for (size_t i = 0; i < pages; i++)
			in += vec[i] & 1;
		pct = 100.0 * (double)in / (double)pages;
	}
	free(vec);
	munmap(m, size);
	return pct;
}

static int open_file(int flags)
{
	if (!opt_file)
		fail("--file is required");
	int fd = open(opt_file, flags, 0644);
	CHECK(fd >= 0, opt_file);
	return fd;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t offset, uint64_t salt)
{
	/* 8-byte words: offset of the word xor salt, so every page differs */
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = (offset + i) ^ salt;
		memcpy(buf + i, &w, 8);
	}
}

/* ---------- SIGBUS guard for mapping accesses ---------- */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;
static volatile void *bus_addr;

static void on_bus(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (!bus_armed)
		_exit(3);
	bus_addr = si->si_addr;
	siglongjmp(bus_jmp, 1);
}

static void install_bus_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* ---------- workloads ---------- */

static void w_fill(void)
{
	if (!opt_size)
		fail("--size is required");
	int fd = open_file(O_RDWR | O_CREAT);
	if (file_size(fd) != opt_size)
		CHECK(ftruncate(fd, (off_t)opt_size) == 0, "ftruncate");
	uint8_t *buf = aligned_alloc(PAGE, opt_block);
	CHECK(buf, "aligned_alloc");
	uint64_t t0 = now_ns();
	for (uint64_t off = 0; off < opt_size; off += opt_block) {
		size_t len = opt_size - off < opt_block ? (size_t)(opt_size - off) : (size_t)opt_block;
		fill_pattern(buf, len, off, 0);
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n != (ssize_t)len)
			fail("pwrite at %" PRIu64 ": %s", off, n < 0 ? strerror(errno) : "short write");
	}
	CHECK(fsync(fd) == 0, "fsync");
	double s = (double)(now_ns() - t0) / 1e9;
	drop_cache(fd);
	close(fd);
	printf("{\"workload\":\"fill\",\"ok\":true,\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"gb_per_s\":%.4f}\n",
	       opt_size, s, (double)opt_size / s / 1e9);
}

static void w_randread(void)
{
	int fd = open_file(O_RDONLY);
	uint64_t size = file_size(fd);
	uint64_t pages = size / PAGE;
	if (pages == 0)
		fail("file smaller than one page");
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	if (rc != 0)
		fail("posix_fadvise(RANDOM): %s", strerror(rc));
	uint32_t *perm = malloc(pages * sizeof(*perm));
	CHECK(perm, "malloc");
	for (uint64_t i = 0; i < pages; i++)
		perm[i] = (uint32_t)i;
	uint8_t *buf = aligned_alloc(PAGE, PAGE);
	CHECK(buf, "aligned_alloc");
	struct lat lat = {0};
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, ops = 0, passes = 0;
	double res_max = 0;
	while (timed < budget && (!opt_max_ops || ops < opt_max_ops)) {
		drop_cache(fd);
		double r = resident_pct(fd, pages * PAGE);
		if (r > res_max)
			res_max = r;
		for (uint64_t i = pages - 1; i > 0; i--) { /* Fisher-Yates */
			uint64_t j = rnd() % (i + 1);
			uint32_t t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		passes++;
		for (uint64_t i = 0; i < pages && timed < budget && (!opt_max_ops || ops < opt_max_ops); i++) {
			off_t off = (off_t)perm[i] * PAGE;
			uint64_t t0 = now_ns();
			ssize_t n = pread(fd, buf, PAGE, off);
			uint64_t dt = now_ns() - t0;
			if (n != PAGE)
				fail("pread at %lld: %s", (long long)off, n < 0 ? strerror(errno) : "short read");
			timed += dt;
			ops++;
			lat_add(&lat, dt);
		}
	}
	lat_sort(&lat);
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"randread\",\"ok\":true,\"ops\":%" PRIu64 ",\"seconds\":%.6f,\"ops_per_s\":%.1f,"
	       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"passes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
	       ",\"resident_pct_max\":%.1f}\n",
	       ops, s, (double)ops / s, lat_pct(&lat, 50), lat_pct(&lat, 99), passes, size, res_max);
	close(fd);
}

static void w_seqread(void)
{
	int fd = open_file(O_RDONLY);
	uint64_t size = file_size(fd);
	if (size == 0)
		fail("empty file");
	uint8_t *buf = aligned_alloc(PAGE, opt_block);
	CHECK(buf, "aligned_alloc");
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, bytes = 0, passes = 0, reads = 0;
	double res_max = 0;
	while (timed < budget) {
		drop_cache(fd);
		double r = resident_pct(fd, size);
		if (r > res_max)
			res_max = r;
		passes++;
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += opt_block) {
			ssize_t n = pread(fd, buf, opt_block, (off_t)off);
			if (n <= 0)
				fail("pread at %" PRIu64 ": %s", off, n < 0 ? strerror(errno) : "unexpected EOF");
			bytes += (uint64_t)n;
			reads++;
			if ((reads & 15) == 0 && timed + (now_ns() - t0) >= budget)
				break;
		}
		timed += now_ns() - t0;
	}
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"seqread\",\"ok\":true,\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"gb_per_s\":%.4f,"
	       "\"block\":%" PRIu64 ",\"passes\":%" PRIu64 ",\"file_bytes\":%" PRIu64 ",\"resident_pct_max\":%.1f}\n",
	       bytes, s, (double)bytes / s / 1e9, opt_block, passes, size, res_max);
	close(fd);
}

static void w_seqwrite(void)
{
	int fd = open_file(O_WRONLY);
	uint64_t size = file_size(fd);
	if (size == 0)
		fail("empty file");
	uint8_t *buf = aligned_alloc(PAGE, opt_block);
	CHECK(buf, "aligned_alloc");
	fill_pattern(buf, opt_block, 0, rnd());
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, bytes = 0, passes = 0, writes = 0;
	while (timed < budget) {
		passes++;
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += opt_block) {
			size_t len = size - off < opt_block ? (size_t)(size - off) : (size_t)opt_block;
			ssize_t n = pwrite(fd, buf, len, (off_t)off);
			if (n != (ssize_t)len)
				fail("pwrite at %" PRIu64 ": %s", off, n < 0 ? strerror(errno) : "short write");
			bytes += len;
			writes++;
			if ((writes & 15) == 0 && timed + (now_ns() - t0) >= budget)
				break;
		}
		CHECK(fsync(fd) == 0, "fsync");
		timed += now_ns() - t0;
	}
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"seqwrite\",\"ok\":true,\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"gb_per_s\":%.4f,"
	       "\"block\":%" PRIu64 ",\"passes\":%" PRIu64 ",\"file_bytes\":%" PRIu64 "}\n",
	       bytes, s, (double)bytes / s / 1e9, opt_block, passes, size);
	close(fd);
}

static void w_punch(void)
{
	int fd = open_file(O_RDWR);
	uint64_t size = file_size(fd);
	uint64_t region = opt_region && opt_region < size ? opt_region : size;
	uint64_t pages = region / PAGE;
	if (pages == 0)
		fail("file smaller than one page");
	volatile uint8_t *map = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED, "mmap");
	install_bus_handler();
	uint8_t *buf = aligned_alloc(PAGE, PAGE);
	CHECK(buf, "aligned_alloc");
	struct lat lat = {0};
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, cycles = 0, errors = 0, sigbus = 0;
	char first_error[200] = "";
	uint64_t salt = rnd();
	volatile uint64_t sink = 0;
	while (timed < budget && (!opt_max_ops || cycles < opt_max_ops)) {
		uint64_t page = cycles % pages;
		off_t off = (off_t)(page * PAGE);
		uint64_t stamp = (cycles + 1) ^ salt;
		if (stamp == 0)
			stamp = 1;
		for (unsigned i = 0; i < PAGE; i += 8)
			memcpy(buf + i, &stamp, 8);
		uint64_t t0 = now_ns();
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, PAGE) != 0)
			fail("fallocate(PUNCH_HOLE|KEEP_SIZE) at %lld: %s", (long long)off, strerror(errno));
		uint64_t a = 0, b = 0;
		bus_armed = 1;
		if (sigsetjmp(bus_jmp, 1) == 0) {
			memcpy(&a, (const void *)(map + off), 8); /* fault: must read the hole */
			memcpy(&b, (const void *)(map + off + PAGE - 8), 8);
		} else {
			sigbus++;
			a = b = UINT64_MAX;
		}
		bus_armed = 0;
		if ((a | b) != 0) {
			if (!errors++)
				snprintf(first_error, sizeof(first_error),
					 "page %" PRIu64 " read %#" PRIx64 "/%#" PRIx64 " after punch, expected 0", page, a, b);
		}
		ssize_t n = pwrite(fd, buf, PAGE, off);
		if (n != PAGE)
			fail("pwrite at %lld: %s", (long long)off, n < 0 ? strerror(errno) : "short write");
		bus_armed = 1;
		if (sigsetjmp(bus_jmp, 1) == 0) {
			memcpy(&a, (const void *)(map + off), 8); /* must see the new stamp */
			memcpy(&b, (const void *)(map + off + PAGE - 8), 8);
		} else {
			sigbus++;
			a = b = 0;
		}
		bus_armed = 0;
		uint64_t dt = now_ns() - t0;
		if (a != stamp || b != stamp) {
			if (!errors++)
				snprintf(first_error, sizeof(first_error),
					 "page %" PRIu64 " read %#" PRIx64 "/%#" PRIx64 " after pwrite, expected %#" PRIx64,
					 page, a, b, stamp);
		}
		sink += a;
		timed += dt;
		cycles++;
		lat_add(&lat, dt);
	}
	(void)sink;
	lat_sort(&lat);
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"punch\",\"ok\":true,\"cycles\":%" PRIu64 ",\"seconds\":%.6f,\"cycles_per_s\":%.1f,"
	       "\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%" PRIu64 ",\"sigbus\":%" PRIu64
	       ",\"region_bytes\":%" PRIu64 ",\"first_error\":\"%s\"}\n",
	       cycles, s, (double)cycles / s, lat_pct(&lat, 50), lat_pct(&lat, 99), errors, sigbus, pages * PAGE,
	       first_error);
	munmap((void *)map, pages * PAGE);
	close(fd);
}

static void w_mapfault(void)
{
	int fd = open_file(O_RDONLY);
	uint64_t size = file_size(fd);
	uint64_t pages = size / PAGE;
	if (pages == 0)
		fail("file smaller than one page");
	int advice;
	if (strcmp(opt_advice, "normal") == 0)
		advice = MADV_NORMAL;
	else if (strcmp(opt_advice, "random") == 0)
		advice = MADV_RANDOM;
	else if (strcmp(opt_advice, "sequential") == 0)
		advice = MADV_SEQUENTIAL;
	else
		fail("--advice must be normal, random or sequential");
	install_bus_handler();
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, touched = 0, passes = 0;
	double res_max = 0;
	volatile uint64_t sink = 0;
	while (timed < budget) {
		drop_cache(fd);
		double r = resident_pct(fd, pages * PAGE);
		if (r > res_max)
			res_max = r;
		passes++;
		uint64_t t0 = now_ns();
		volatile uint8_t *map = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(map != MAP_FAILED, "mmap");
		if (advice != MADV_NORMAL)
			CHECK(madvise((void *)map, pages * PAGE, advice) == 0, "madvise");
		bus_armed = 1;
		if (sigsetjmp(bus_jmp, 1) != 0) {
			bus_armed = 0;
			fail("SIGBUS touching page %lld of a %" PRIu64 "-byte file",
			     (long long)(((const volatile uint8_t *)bus_addr - map) / PAGE), size);
		}
		uint64_t i = 0;
		for (; i < pages; i++) {
			sink += map[i * PAGE];
			if ((i & 255) == 255 && timed + (now_ns() - t0) >= budget) {
				i++;
				break;
			}
		}
		bus_armed = 0;
		touched += i;
		munmap((void *)map, pages * PAGE);
		timed += now_ns() - t0;
	}
	(void)sink;
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"mapfault\",\"ok\":true,\"pages\":%" PRIu64 ",\"seconds\":%.6f,\"pages_per_s\":%.1f,"
	       "\"advice\":\"%s\",\"passes\":%" PRIu64 ",\"file_bytes\":%" PRIu64 ",\"resident_pct_max\":%.1f}\n",
	       touched, s, (double)touched / s, opt_advice, passes, size, res_max);
	close(fd);
}

static void w_meta(void)
{
	if (!opt_dir)
		fail("--dir is required");
	size_t dl = strlen(opt_dir);
	char *path = malloc(dl + 64);
	CHECK(path, "malloc");
	struct lat lat = {0};
	uint64_t budget = (uint64_t)(opt_seconds * 1e9), timed = 0, ops = 0;
	while (timed < budget && (!opt_max_ops || ops < opt_max_ops)) {
		snprintf(path, dl + 64, "%s/m.%d.%" PRIu64, opt_dir, (int)getpid(), ops);
		uint64_t t0 = now_ns();
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			fail("create %s: %s", path, strerror(errno));
		CHECK(close(fd) == 0, "close");
		struct stat st;
		if (stat(path, &st) != 0)
			fail("stat %s: %s", path, strerror(errno));
		if (!S_ISREG(st.st_mode) || st.st_size != 0)
			fail("stat %s: not an empty regular file", path);
		if (unlink(path) != 0)
			fail("unlink %s: %s", path, strerror(errno));
		uint64_t dt = now_ns() - t0;
		timed += dt;
		ops++;
		lat_add(&lat, dt);
	}
	lat_sort(&lat);
	double s = (double)timed / 1e9;
	printf("{\"workload\":\"meta\",\"ok\":true,\"ops\":%" PRIu64 ",\"seconds\":%.6f,\"ops_per_s\":%.1f,"
	       "\"p50_us\":%.2f,\"p99_us\":%.2f}\n",
	       ops, s, (double)ops / s, lat_pct(&lat, 50), lat_pct(&lat, 99));
}

/* ---------- main ---------- */

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		fail("bad number '%s'", s);
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	else if (*end == 'g' || *end == 'G')
		v <<= 30, end++;
	if (*end)
		fail("bad number '%s'", s);
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_driver fill|randread|seqread|seqwrite|punch|mapfault|meta "
			"[--file F] [--dir D] [--seconds S] [--size N] [--block N] [--region N]\n"
			"       [--advice normal|random|sequential] [--seed N] [--max-ops N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	workload = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--file") == 0)
			opt_file = v;
		else if (strcmp(a, "--dir") == 0)
			opt_dir = v;
		else if (strcmp(a, "--seconds") == 0) {
			char *end;
			opt_seconds = strtod(v, &end);
			if (*end || !(opt_seconds > 0))
				fail("bad --seconds '%s'", v);
		} else if (strcmp(a, "--size") == 0)
			opt_size = parse_u64(v);
		else if (strcmp(a, "--block") == 0)
			opt_block = parse_u64(v);
		else if (strcmp(a, "--region") == 0)
			opt_region = parse_u64(v);
		else if (strcmp(a, "--max-ops") == 0)
			opt_max_ops = parse_u64(v);
		else if (strcmp(a, "--seed") == 0)
			opt_seed = parse_u64(v);
		else if (strcmp(a, "--advice") == 0)
			opt_advice = v;
		else
			usage();
	}
	if (opt_block == 0 || opt_block % PAGE)
		fail("--block must be a positive multiple of 4096");
	rng_state = opt_seed;

	if (strcmp(workload, "fill") == 0)
		w_fill();
	else if (strcmp(workload, "randread") == 0)
		w_randread();
	else if (strcmp(workload, "seqread") == 0)
		w_seqread();
	else if (strcmp(workload, "seqwrite") == 0)
		w_seqwrite();
	else if (strcmp(workload, "punch") == 0)
		w_punch();
	else if (strcmp(workload, "mapfault") == 0)
		w_mapfault();
	else if (strcmp(workload, "meta") == 0)
		w_meta();
	else
		usage();
	fflush(stdout);
	return 0;
}
