/*
 * ref_server: the C reference for `faultline bench`.
 *
 * A minimal in-memory filesystem on libfuse3's LOW-LEVEL API, served by ONE thread
 * (fuse_session_loop). It is the upper limit a libfuse server reaches on this machine: every
 * READ is answered with fuse_reply_buf straight out of one contiguous buffer, every WRITE is a
 * memcpy, nothing else happens per request.
 *
 * One regular file exists at mount time (--name, --size; zero-filled). Further regular files can
 * be created and unlinked in the root directory (the create+stat+unlink workload needs that).
 * Operations: lookup, forget, getattr, setattr (size, mode, times), create, open (keep_cache),
 * read, write, flush, release, fsync, unlink, opendir/readdir, statfs, fallocate
 * (mode 0 / KEEP_SIZE / PUNCH_HOLE|KEEP_SIZE / ZERO_RANGE[|KEEP_SIZE]; others EOPNOTSUPP).
 *
 * Usage: ref_server [--name NAME] [--size BYTES] [--timeout SECONDS] [--die-with-parent] [-o OPTS] MOUNTPOINT
 *        ref_server --version
 * --size takes an optional K/M/G suffix; --timeout is the attr/entry timeout (default 1 s, libfuse's
 * high-level default); --die-with-parent: SIGTERM (so: clean unmount) when the parent process dies.
 * Mounts with auto_unmount. Prints "ref_server: mounted on MNT (pid N, libfuse V)" on stdout once
 * the mount exists; SIGTERM / SIGINT / SIGHUP leave the loop and unmount cleanly.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

#define MAX_FILE_SIZE ((uint64_t)1 << 40)
#define NAME_MAX_LEN 255

struct node {
	fuse_ino_t ino;
	char name[NAME_MAX_LEN + 1];
	int is_dir;
	mode_t mode;
	uint8_t *data;
	uint64_t size;
	uint64_t cap;
	uint64_t nlookup;
	int linked;
	struct timespec atime, mtime, ctime;
};

/* Inode table: index = ino - 1, inode numbers are never reused. Root is ino 1. */
static struct node **nodes;
static size_t n_nodes, cap_nodes;
/* Directory entries of the root (linked regular files), unordered. */
static struct node **children;
static size_t n_children, cap_children;
static double timeout_s = 1.0;
static uint64_t used_bytes;

static void die(const char *what)
{
	fprintf(stderr, "ref_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n)
		die("realloc");
	return q;
}

static struct timespec now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static struct node *node_get(fuse_ino_t ino)
{
	if (ino == 0 || ino > n_nodes)
		return NULL;
	return nodes[ino - 1];
}

static struct node *node_new(const char *name, int is_dir, mode_t mode)
{
	struct node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	if (n_nodes == cap_nodes) {
		cap_nodes = cap_nodes ? cap_nodes * 2 : 64;
		nodes = xrealloc(nodes, cap_nodes * sizeof(*nodes));
	}
	nodes[n_nodes++] = n;
	n->ino = n_nodes;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->is_dir = is_dir;
	n->mode = mode;
	n->atime = n->mtime = n->ctime = now();
	return n;
}

static void node_free(struct node *n)
{
	nodes[n->ino - 1] = NULL;
	used_bytes -= n->cap;
	free(n->data);
	free(n);
}

static void link_child(struct node *n)
{
	if (n_children == cap_children) {
		cap_children = cap_children ? cap_children * 2 : 16;
		children = xrealloc(children, cap_children * sizeof(*children));
	}
	children[n_children++] = n;
	n->linked = 1;
}

static struct node *find_child(const char *name, size_t *idx)
{
	for (size_t i = 0; i < n_children; i++) {
		if (strcmp(children[i]->name, name) == 0) {
			if (idx)
				*idx = i;
			return children[i];
		}
	}
	return NULL;
}

/* Make room for `size` bytes; new bytes are zero. Returns 0 or an errno. */
static int reserve(struct node *n, uint64_t size)
{
	if (size > MAX_FILE_SIZE)
		return EFBIG;
	if (size <= n->cap)
		return 0;
	uint64_t cap = n->cap ? n->cap : 4096;
	while (cap < size)
		cap *= 2;
	uint8_t *d = realloc(n->data, cap);
	if (!d)
		return ENOSPC;
	memset(d + n->cap, 0, cap - n->cap);
	used_bytes += cap - n->cap;
	n->data = d;
	n->cap = cap;
	return 0;
}

static int set_size(struct node *n, uint64_t size)
{
	if (size > n->size) {
		int err = reserve(n, size);
		if (err)
			return err;
		/* bytes in [old size, cap) are kept zero by truncation below, so nothing to do */
	} else {
		memset(n->data + size, 0, n->size - size);
	}
	n->size = size;
	return 0;
}

static void fill_attr(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = n->is_dir ? 2 : (n->linked ? 1 : 0);
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = n->is_dir ? 4096 : (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->is_dir ? 4096 : n->size) + 511) / 512;
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static void reply_entry(fuse_req_t req, struct node *n, const struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = 1;
	e.attr_timeout = timeout_s;
	e.entry_timeout = timeout_s;
	fill_attr(n, &e.attr);
	n->nlookup++;
	int rc = fi ? fuse_reply_create(req, &e, fi) : fuse_reply_entry(req, &e);
	if (rc != 0)
		n->nlookup--; /* the kernel never saw the entry (interrupted) */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct node *n = find_child(name, NULL);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, n, NULL);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_get(ino);
	if (!n || n->ino == FUSE_ROOT_ID)
		return;
	n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
	if (n->nlookup == 0 && !n->linked)
		node_free(n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		forget_one(f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = node_get(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct stat st;
	fill_attr(n, &st);
	fuse_reply_attr(req, &st, timeout_s);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = node_get(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct timespec t = now();
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (n->is_dir) {
			fuse_reply_err(req, EISDIR);
			return;
		}
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		int err = set_size(n, (uint64_t)attr->st_size);
		if (err) {
			fuse_reply_err(req, err);
			return;
		}
		n->mtime = t;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_ATIME)
		n->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		n->atime = t;
	if (to_set & FUSE_SET_ATTR_MTIME)
		n->mtime = attr->st_mtim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		n->mtime = t;
	n->ctime = t;
	struct stat st;
	fill_attr(n, &st);
	fuse_reply_attr(req, &st, timeout_s);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (strlen(name) > NAME_MAX_LEN) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	struct node *n = find_child(name, NULL);
	if (n) {
		if (fi->flags & O_EXCL) {
			fuse_reply_err(req, EEXIST);
			return;
		}
	} else {
		n = node_new(name, 0, S_IFREG | (mode & 07777));
		if (!n) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		link_child(n);
	}
	fi->keep_cache = 1;
	reply_entry(req, n, fi);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	size_t idx;
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct node *n = find_child(name, &idx);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	children[idx] = children[--n_children];
	n->linked = 0;
	n->ctime = now();
	if (n->nlookup == 0)
		node_free(n);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n = node_get(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = node_get(ino);
	if (!n || off < 0) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	if ((uint64_t)off >= n->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	uint64_t len = n->size - (uint64_t)off;
	if (len > size)
		len = size;
	fuse_reply_buf(req, (const char *)n->data + off, len);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = node_get(ino);
	if (!n || off < 0) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	uint64_t end = (uint64_t)off + size;
	if (end > n->size) {
		int err = reserve(n, end);
		if (err) {
			fuse_reply_err(req, err);
			return;
		}
		n->size = end;
	}
	memcpy(n->data + off, buf, size);
	n->mtime = n->ctime = now();
	fuse_reply_write(req, size);
}

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	op_ok(req, ino, fi);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	struct node *n = node_get(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	uint64_t start = (uint64_t)off, end = start + (uint64_t)len;
	int keep = mode & FALLOC_FL_KEEP_SIZE;
	int err = 0;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		if (start < n->size)
			memset(n->data + start, 0, (end < n->size ? end : n->size) - start);
	} else if ((mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE || (mode & ~FALLOC_FL_KEEP_SIZE) == 0) {
		if (!keep && end > n->size) {
			err = set_size(n, end);
		}
		if (!err && (mode & FALLOC_FL_ZERO_RANGE) && start < n->size)
			memset(n->data + start, 0, (end < n->size ? end : n->size) - start);
	} else {
		err = EOPNOTSUPP;
	}
	if (!err)
		n->mtime = n->ctime = now();
	fuse_reply_err(req, err);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	struct stat st;
	memset(&st, 0, sizeof(st));
	/* entry k (0 = ".", 1 = "..", 2.. = children) has offset k + 1 */
	for (size_t k = (size_t)off; k < n_children + 2; k++) {
		const char *name;
		if (k == 0) {
			name = ".";
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else if (k == 1) {
			name = "..";
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else {
			name = children[k - 2]->name;
			st.st_ino = children[k - 2]->ino;
			st.st_mode = children[k - 2]->mode;
		}
		size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)k + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = MAX_FILE_SIZE / 4096;
	sv.f_bfree = sv.f_bavail = (MAX_FILE_SIZE - used_bytes) / 4096;
	sv.f_files = 1u << 20;
	sv.f_ffree = sv.f_favail = (1u << 20) - n_children;
	sv.f_namemax = NAME_MAX_LEN;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.create = op_create,
	.unlink = op_unlink,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_ok,
	.release = op_ok,
	.fsync = op_fsync,
	.readdir = op_readdir,
	.statfs = op_statfs,
	.fallocate = op_fallocate,
};

static void usage(void)
{
	fprintf(stderr,
		"usage: ref_server [--name NAME] [--size BYTES] [--timeout SECONDS] [--die-with-parent] [-o OPTS] MOUNTPOINT\n"
		"       ref_server --version\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *name = "bench.dat";
	uint64_t size = 256ull << 20;
	const char *mnt = NULL;
	char opts[1024] = "auto_unmount,fsname=faultline-ref,subtype=faultline-ref,default_permissions";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--version") == 0) {
			printf("libfuse %s\n", fuse_pkgversion());
			return 0;
		} else if (strcmp(a, "--name") == 0 && i + 1 < argc) {
			name = argv[++i];
		} else if (strcmp(a, "--size") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			const char *arg = argv[++i];
			unsigned long long v = strtoull(arg, &end, 0);
			if (errno || end == arg)
				usage();
			if (*end == 'k' || *end == 'K')
				v <<= 10, end++;
			else if (*end == 'm' || *end == 'M')
				v <<= 20, end++;
			else if (*end == 'g' || *end == 'G')
				v <<= 30, end++;
			if (*end || v > MAX_FILE_SIZE)
				usage();
			size = v;
		} else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			char *end;
			timeout_s = strtod(argv[++i], &end);
			if (*end || timeout_s < 0)
				usage();
		} else if (strcmp(a, "--die-with-parent") == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
				die("prctl(PR_SET_PDEATHSIG)");
			if (getppid() == 1)
				return 1; /* the parent is already gone */
		} else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			size_t l = strlen(opts);
			if (snprintf(opts + l, sizeof(opts) - l, ",%s", argv[++i]) >= (int)(sizeof(opts) - l))
				usage();
		} else if (a[0] == '-' || mnt) {
			usage();
		} else {
			mnt = a;
		}
	}
	if (!mnt || !*name || strlen(name) > NAME_MAX_LEN || strchr(name, '/'))
		usage();

	struct node *root = node_new("", 1, S_IFDIR | 0755);
	struct node *file = node_new(name, 0, S_IFREG | 0644);
	if (!root || !file || root->ino != FUSE_ROOT_ID)
		die("node_new");
	if (reserve(file, size) != 0) {
		errno = ENOMEM;
		die("allocating the file");
	}
	file->size = size;
	link_child(file);

	char *fargv[] = {argv[0], "-o", opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) {
		fprintf(stderr, "ref_server: fuse_session_new failed\n");
		return 1;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "ref_server: fuse_set_signal_handlers failed\n");
		return 1;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		fprintf(stderr, "ref_server: mounting %s failed\n", mnt);
		return 1;
	}
	printf("ref_server: mounted on %s (pid %d, libfuse %s)\n", mnt, (int)getpid(), fuse_pkgversion());
	fflush(stdout);

	int rc = fuse_session_loop(se);

	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	fprintf(stderr, "ref_server: unmounted %s (loop rc %d)\n", mnt, rc);
	return rc < 0 ? 1 : 0;
}
