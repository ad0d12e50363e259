/*
 * files.c - the owner's side of file transfer (PROTOCOL.md §9): a peer's
 * FILE_REQUEST get, put or list, served beneath file-root.
 *
 * Paths.  Every path is resolved by openat2(root_fd, path, RESOLVE_BENEATH
 * | RESOLVE_NO_MAGICLINKS) from a descriptor of the root opened at startup:
 * an absolute path, a ".." that leaves the root and a symbolic link whose
 * target lies outside it fail in the kernel (EXDEV, ELOOP) and are answered
 * unauthorized.  What is served is judged on the opened descriptor (fstat):
 * only regular files.  A kernel without openat2 fails closed: every request
 * is refused and the log says why.
 *
 * Threads.  The loop never touches the disk: opening, hashing, reading,
 * writing, fsync and rename run on libuv's threadpool (uv_queue_work), one
 * work at a time per transfer.  While busy is set the worker owns the
 * transfer's descriptors, buffers and hash; the loop owns everything else
 * and never frees a busy transfer.  Workers never log and never touch a
 * session; they leave a code and a message for the loop to answer with.
 * The one structure they share is the checksum cache, under a mutex.
 *
 * Download: prepare (open, fstat, SHA-256 of the whole file, from a small
 * cache keyed by dev, ino, size, mtime and ctime, holding only files whose
 * ctime was a second old when hashed) -> head -> batches of up
 * to FX_READ_CHUNKS chunks, each batch sent as soon as it is read.  A batch
 * is read only while the session's output waiting for the peer plus the
 * batches being read stay below PD_FILE_WINDOW; server.c kicks the
 * transfers again when the peer drains.  The batch that holds the last byte
 * also re-stats the file: another size or mtime than the head's gives ERROR
 * changed instead of the last chunk.
 *
 * Upload: prepare (resolve, or create with mkdir, the directory; open or
 * create the temporary file .NAME.ppcp-<16 hex>.part, flock it, hash what
 * it already holds) -> head {offset: what it holds} -> data checked for
 * order and range on the loop, queued, written and hashed by the worker ->
 * after the last byte: fsync, compare the SHA-256, fchmod, renameat over
 * the target, fsync the directory -> {"done": true}.  While more than
 * PD_FILE_WRITE_HIGH bytes wait for the disk the session stops reading
 * from the peer.  An upload that ends early (session gone, cancelled, a bad
 * chunk) keeps its temporary file so that the next attempt resumes; a
 * failed write or a hash mismatch deletes it.  The flock keeps two
 * attempts (two sessions, two daemons) from writing one temporary file.
 *
 * Listing: prepare (open the directory) -> batches of at most 1000 entries
 * (fewer when the peer's max_record is small), one FILE_CHUNK each.
 *
 * Lifetime: a transfer is on its session's list until it ends; its id and
 * stream are then remembered in a small ring so that chunks the peer had in
 * flight are dropped quietly, and it is freed once no work is in flight.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h" /* ppcp__b64_encode, ppcp__b64_decode */
#include "ppcpd.h"

enum {
	FX_PATH_MAX = 4096,           /* PROTOCOL.md §9.1 */
	FX_NAME_MAX = 255,            /* one path component on Linux */
	FX_BIN_CHUNK = 256 * 1024,    /* file data of one binary-data record */
	FX_JSON_CHUNK = 192 * 1024,   /* file data of one FILE_CHUNK (256 KiB of base64) */
	FX_JSON_RESERVE = 512,        /* envelope around a FILE_CHUNK's data */
	FX_READ_CHUNKS = 4,           /* chunks read per trip to the threadpool */
	FX_HASH_BUF = 1024 * 1024,
	FX_HASH_TRIES = 3,            /* a file that changes while it is hashed */
	FX_CACHE = 64,                /* checksums remembered */
	FX_CACHE_SETTLE_MS = 1000,    /* only of files unchanged for this long */
	FX_LIST_MAX = 1000,           /* entries per FILE_CHUNK (§9.4) */
	FX_LIST_ENTRY_JSON = 80,      /* an entry's JSON besides its name */
	FX_GRAVE = 64,                /* ended transfers remembered per session */
	FX_RESOLVE_TRIES = 8,         /* openat2 EAGAIN: a rename raced the lookup */
	FX_LOCK_TRIES = 40,           /* a temporary file locked by another attempt */
	FX_LOCK_WAIT_US = 50000,      /* 40 x 50 ms: at most 2 s */
	FX_STALE_AGE_S = 24 * 3600,   /* temporary files older than this go at startup */
	FX_SWEEP_MAX_ENTRIES = 1000000,
	FX_SWEEP_MAX_DEPTH = 32,
};
/* PROTOCOL.md §9.2, §9.3: offsets, lengths and sizes stay below 2^53. */
#define FX_LIMIT (UINT64_C(1) << 53)
#define FX_TMP_PREFIX_LEN 1          /* "." */
#define FX_TMP_SUFFIX ".ppcp-0123456789abcdef.part"
#define FX_TMP_SUFFIX_LEN (sizeof(FX_TMP_SUFFIX) - 1)

#define INVALID "invalid-message"

/* Where a download's checksum came from (logged at debug level). */
enum { FX_SHA_HASHED, FX_SHA_CACHED, FX_SHA_HASHED_CACHED };

struct fx_cache_ent {
	int used;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	uint8_t sha[PPCP_HASH_LEN];
};

/* One per daemon with a file-root. */
struct pd_files {
	struct pd_daemon *d;
	int root_fd;      /* O_PATH descriptor of file-root */
	int broken;       /* no openat2: refuse everything */
	uv_mutex_t lock;  /* the cache: workers share it */
	struct fx_cache_ent cache[FX_CACHE];
	unsigned cache_next;
	atomic_int stop;  /* shutting down: long works give up */
	uv_work_t sweep;
	unsigned long swept, stale_removed, stale_failed;
};

struct fx_grave {
	char id[PPCP_ID_MAX + 1];
	uint32_t stream; /* 0: none */
};

/* One per session that asked for a transfer. */
struct pd_sfiles {
	struct pd_xfer *list;
	size_t count;
	uint32_t next_stream;
	size_t inflight;      /* download bytes being read */
	size_t write_pending; /* upload bytes not yet on disk */
	struct fx_grave grave[FX_GRAVE];
	unsigned grave_next;
};

struct fx_blk {
	struct fx_blk *next;
	size_t len;
	uint8_t data[];
};

struct fx_ent {
	char *name;
	char type; /* 'f', 'd', 'o' */
	uint64_t size;
	int64_t mtime;
};

enum fx_op { FX_GET, FX_PUT, FX_LIST };
enum fx_state { FX_PREPARING, FX_RUNNING, FX_ENDED };

struct pd_xfer {
	struct pd_xfer *prev, *next; /* the session's list */
	struct pd_files *fs;
	struct pd_session *s; /* NULL once ended */
	enum fx_op op;
	enum fx_state state;
	char id[PPCP_ID_MAX + 1];
	char *path;           /* as the peer wrote it */
	char logpath[160];    /* made safe for the log */
	int binary;
	uint32_t stream;
	size_t chunk;         /* file bytes per record */
	int fd, dirfd;
	DIR *dir;
	uv_work_t work;
	int busy;
	atomic_int abort;
	uint64_t t0;
	/* A worker's failure, answered by the loop. */
	const char *code;
	char msg[512];

	/* get */
	uint64_t size, start, end, pos;
	struct timespec mtime;
	uint8_t sha[PPCP_HASH_LEN];
	uint8_t *buf;
	size_t want, buflen;
	int changed;
	int sha_how; /* FX_SHA_* */

	/* put */
	uint64_t held, next_off, wpos;
	uint8_t want_sha[PPCP_HASH_LEN];
	mode_t mode;
	int mkdir;
	char *dirpart, *name, *tmpname;
	ppcp_sha256 *h;
	struct fx_blk *q_head, *q_tail, *batch;
	size_t q_bytes, batch_bytes;
	int got_last, finalizing, finalized, drop_temp;

	/* list */
	struct fx_ent *ents, carry;
	size_t nents, budget;
	int list_eof;
	uint64_t listed, chunks, skipped;
};

static const char *const fx_op_name[] = { "get", "put", "list" };

/* ---- helpers for workers --------------------------------------------- */

static int fx_openat2(int dirfd, const char *path, uint64_t flags)
{
	struct open_how how;
	long fd = -1;

	memset(&how, 0, sizeof(how));
	/* openat2 refuses O_PATH with anything but O_CLOEXEC, O_DIRECTORY
	 * and O_NOFOLLOW. */
	how.flags = flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	for (int i = 0; i < FX_RESOLVE_TRIES; i++) {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return (int)fd;
}

static void fx_set_err(struct pd_xfer *x, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fx_set_err(struct pd_xfer *x, const char *code, const char *fmt, ...)
{
	va_list ap;

	x->code = code;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
}

static const char *fx_type_name(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISLNK(m))
		return "a symbolic link";
	return "not a regular file";
}

/* PROTOCOL.md §9.6: the owner's error codes, from an errno.  doing says
 * what failed ("opening", "writing"...). */
static void fx_set_errno(struct pd_xfer *x, int e, const char *doing)
{
	char eb[128];
	const char *es = strerror_r(e, eb, sizeof(eb));

	switch (e) {
	case ENOENT:
		fx_set_err(x, "not-found", "no such file or directory: '%.200s'", x->path);
		break;
	case ENOTDIR:
		fx_set_err(x, "not-found", "'%.200s': a component of the path is not a directory",
			   x->path);
		break;
	case EXDEV:
		fx_set_err(x, "unauthorized",
			   "'%.200s' is outside the file root (a '..' that leaves it, or a symbolic link that points out of it)",
			   x->path);
		break;
	case ELOOP:
		fx_set_err(x, "unauthorized",
			   "'%.200s' goes through a symbolic link that is not followed here (a loop, or a /proc magic link)",
			   x->path);
		break;
	case EACCES:
	case EPERM:
	case EROFS:
		fx_set_err(x, "permission-denied",
			   "the server's operating system refused %s '%.200s': %s", doing, x->path, es);
		break;
	case ENOSPC:
	case EDQUOT:
		fx_set_err(x, "no-space",
			   "the server's disk is full (or its quota is reached) while %s '%.200s': free space on the server, then try again",
			   doing, x->path);
		break;
	case EFBIG:
		fx_set_err(x, "no-space",
			   "'%.200s' is larger than the server's file system accepts", x->path);
		break;
	case ENAMETOOLONG:
		fx_set_err(x, INVALID, "'%.200s': a name in the path is too long", x->path);
		break;
	case EISDIR:
	case ENXIO:
	case ENODEV:
		fx_set_err(x, "not-regular", "'%.200s' is not a regular file", x->path);
		break;
	default:
		fx_set_err(x, "io-error", "error %s '%.200s' on the server: %s", doing, x->path, es);
		break;
	}
}

/* Hash [0, size) of fd into out.  0; -1 with the error set (or aborted). */
static int fx_hash_range(struct pd_xfer *x, int fd, uint64_t size, ppcp_sha256 *h)
{
	uint8_t *buf = malloc(FX_HASH_BUF);
	uint64_t pos = 0;
	int ret = -1;

	if (buf == NULL) {
		fx_set_err(x, "internal-error", "the server is out of memory");
		return -1;
	}
	while (pos < size) {
		size_t want = size - pos < FX_HASH_BUF ? (size_t)(size - pos) : FX_HASH_BUF;
		ssize_t n;

		if (atomic_load(&x->abort) || atomic_load(&x->fs->stop)) {
			fx_set_err(x, "cancelled", "the transfer ended");
			goto out;
		}
		n = pread(fd, buf, want, (off_t)pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fx_set_errno(x, errno, "reading");
			goto out;
		}
		if (n == 0) {
			fx_set_err(x, "changed", "'%.200s' shrank while its checksum was computed",
				   x->path);
			goto out;
		}
		if (ppcp_sha256_update(h, buf, (size_t)n) != 0) {
			fx_set_err(x, "internal-error", "SHA-256 failed on the server");
			goto out;
		}
		pos += (uint64_t)n;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int fx_same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int fx_cache_get(struct pd_files *fs, const struct stat *st, uint8_t sha[PPCP_HASH_LEN])
{
	int hit = 0;

	uv_mutex_lock(&fs->lock);
	for (size_t i = 0; i < FX_CACHE; i++) {
		const struct fx_cache_ent *e = &fs->cache[i];

		if (e->used && e->dev == st->st_dev && e->ino == st->st_ino &&
		    e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
		    e->mtime.tv_nsec == st->st_mtim.tv_nsec && e->ctime.tv_sec == st->st_ctim.tv_sec &&
		    e->ctime.tv_nsec == st->st_ctim.tv_nsec) {
			memcpy(sha, e->sha, PPCP_HASH_LEN);
			hit = 1;
			break;
		}
	}
	uv_mutex_unlock(&fs->lock);
	return hit;
}

/* 1 when the file's last change (ctime) was at least FX_CACHE_SETTLE_MS
 * old at `at`, the moment st was taken, before hashing.  Only such
 * checksums are remembered: with timestamps as coarse as a kernel tick, a
 * file written again in the tick of its last change, at the same size,
 * keeps its ctime and would match a stale entry for good (every download
 * failing its check); any change made after `at` gets a ctime later than
 * one that was a second old then ("racily clean", as git's index says). */
static int fx_cache_settled(const struct stat *st, const struct timespec *at)
{
	int64_t age_ms = ((int64_t)at->tv_sec - (int64_t)st->st_ctim.tv_sec) * 1000 +
			 ((int64_t)at->tv_nsec - (int64_t)st->st_ctim.tv_nsec) / 1000000;

	return age_ms >= FX_CACHE_SETTLE_MS;
}

static void fx_cache_put(struct pd_files *fs, const struct stat *st,
			 const uint8_t sha[PPCP_HASH_LEN])
{
	struct fx_cache_ent *e;

	uv_mutex_lock(&fs->lock);
	e = &fs->cache[fs->cache_next];
	fs->cache_next = (fs->cache_next + 1) % FX_CACHE;
	e->used = 1;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	memcpy(e->sha, sha, PPCP_HASH_LEN);
	uv_mutex_unlock(&fs->lock);
}

/* ".NAME.ppcp-0123456789abcdef.part" (PROTOCOL.md §9.3), NAME cut so that
 * the whole stays one legal component. */
static char *fx_tmp_name(const char *name, const char *sha_hex)
{
	size_t n = strlen(name), room = FX_NAME_MAX - FX_TMP_PREFIX_LEN - FX_TMP_SUFFIX_LEN;
	char *t = pd_xmalloc(FX_NAME_MAX + 1);

	if (n > room)
		n = room;
	snprintf(t, FX_NAME_MAX + 1, ".%.*s.ppcp-%.16s.part", (int)n, name, sha_hex);
	return t;
}

/* Is name one of our temporary files? */
static int fx_is_tmp_name(const char *name)
{
	size_t n = strlen(name);
	const char *sfx;

	if (n < FX_TMP_PREFIX_LEN + 1 + FX_TMP_SUFFIX_LEN || name[0] != '.')
		return 0;
	sfx = name + n - FX_TMP_SUFFIX_LEN;
	if (strncmp(sfx, ".ppcp-", 6) != 0 || strcmp(sfx + 22, ".part") != 0)
		return 0;
	for (int i = 6; i < 22; i++)
		if (!((sfx[i] >= '0' && sfx[i] <= '9') || (sfx[i] >= 'a' && sfx[i] <= 'f')))
			return 0;
	return 1;
}

/* ---- lists, lifetime -------------------------------------------------- */

static struct pd_sfiles *fx_sfiles(struct pd_session *s, int create)
{
	struct pd_sfiles **sfp = pd_session_files(s);

	if (*sfp == NULL && create) {
		*sfp = pd_xcalloc(1, sizeof(**sfp));
		/* PROTOCOL.md §9.5: the TCP server uses even numbers, the TCP
		 * client (ppcp agent) odd ones. */
		(*sfp)->next_stream = pd_session_is_client(s) ? 1 : 2;
	}
	return *sfp;
}

static struct pd_xfer *fx_find_id(struct pd_sfiles *sf, const char *id)
{
	for (struct pd_xfer *x = sf != NULL ? sf->list : NULL; x != NULL; x = x->next)
		if (strcmp(x->id, id) == 0)
			return x;
	return NULL;
}

static struct pd_xfer *fx_find_stream(struct pd_sfiles *sf, uint32_t stream)
{
	for (struct pd_xfer *x = sf != NULL ? sf->list : NULL; x != NULL; x = x->next)
		if (x->stream != 0 && x->stream == stream)
			return x;
	return NULL;
}

static uint32_t fx_new_stream(struct pd_sfiles *sf)
{
	for (;;) {
		uint32_t st = sf->next_stream;

		sf->next_stream = st >= UINT32_MAX - 1 ? ((st & 1u) ? 1 : 2) : st + 2;
		if (fx_find_stream(sf, st) == NULL)
			return st;
	}
}

static int fx_grave_id(const struct pd_sfiles *sf, const char *id)
{
	for (size_t i = 0; sf != NULL && i < FX_GRAVE; i++)
		if (sf->grave[i].id[0] != '\0' && strcmp(sf->grave[i].id, id) == 0)
			return 1;
	return 0;
}

static int fx_grave_stream(const struct pd_sfiles *sf, uint32_t stream)
{
	for (size_t i = 0; sf != NULL && i < FX_GRAVE; i++)
		if (sf->grave[i].stream != 0 && sf->grave[i].stream == stream)
			return 1;
	return 0;
}

static void fx_blk_free_list(struct fx_blk *b)
{
	while (b != NULL) {
		struct fx_blk *n = b->next;
		free(b);
		b = n;
	}
}

/* Release everything; x is neither busy nor on a list. */
static void fx_free(struct pd_xfer *x)
{
	/* Unlink before the descriptor (and its lock) goes: nobody may
	 * take the file over in between. */
	if (x->drop_temp && x->tmpname != NULL && x->dirfd >= 0)
		(void)unlinkat(x->dirfd, x->tmpname, 0);
	if (x->dir != NULL)
		closedir(x->dir);
	else if (x->fd >= 0)
		close(x->fd);
	if (x->dirfd >= 0)
		close(x->dirfd);
	fx_blk_free_list(x->q_head);
	fx_blk_free_list(x->batch);
	for (size_t i = 0; i < x->nents; i++)
		free(x->ents[i].name);
	free(x->ents);
	free(x->carry.name);
	free(x->buf);
	free(x->path);
	free(x->dirpart);
	free(x->name);
	free(x->tmpname);
	ppcp_sha256_free(x->h);
	free(x);
}

/* The transfer is over for its session: off the list, remembered in the
 * ring, freed now or when its work returns. */
static void fx_end(struct pd_xfer *x)
{
	struct pd_sfiles *sf = fx_sfiles(x->s, 0);
	struct fx_grave *g;

	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		sf->list = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	sf->count--;
	if (x->busy && x->op != FX_PUT && x->state == FX_RUNNING)
		sf->inflight -= x->want;
	if (x->op == FX_PUT)
		sf->write_pending -= x->q_bytes + x->batch_bytes;
	g = &sf->grave[sf->grave_next];
	sf->grave_next = (sf->grave_next + 1) % FX_GRAVE;
	snprintf(g->id, sizeof(g->id), "%s", x->id);
	g->stream = x->stream;
	x->s = NULL;
	x->state = FX_ENDED;
	atomic_store(&x->abort, 1);
	if (!x->busy)
		fx_free(x);
}

static double fx_secs(const struct pd_xfer *x)
{
	return (double)(uv_now(x->fs->d->loop) - x->t0) / 1000.0;
}

/* End the transfer with an ERROR to the peer (PROTOCOL.md §9.6). */
static void fx_fail(struct pd_xfer *x, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fx_fail(struct pd_xfer *x, const char *code, const char *fmt, ...)
{
	char msg[600], safe[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pd_info("session %s: %s '%s' (transfer %s) failed: %s: %s", pd_session_name(x->s),
		fx_op_name[x->op], x->logpath, x->id, code, pd_log_safe(safe, sizeof(safe), msg));
	pd_session_send_error(x->s, x->id, code, "%s", msg);
	fx_end(x);
}

static void fx_queue(struct pd_xfer *x, uv_work_cb work, uv_after_work_cb after)
{
	int r;

	x->busy = 1;
	x->work.data = x;
	r = uv_queue_work(x->fs->d->loop, &x->work, work, after);
	if (r != 0) {
		/* Only on invalid arguments; never expected. */
		x->busy = 0;
		fx_fail(x, "internal-error", "the server cannot schedule the transfer: %s",
			uv_strerror(r));
	}
}

/* The common start of every after-work callback: the transfer, or NULL
 * when its session ended meanwhile (then it is freed here). */
static struct pd_xfer *fx_returned(uv_work_t *w)
{
	struct pd_xfer *x = w->data;

	x->busy = 0;
	if (x->s == NULL) {
		fx_free(x);
		return NULL;
	}
	return x;
}

/* ---- download --------------------------------------------------------- */

static void fx_get_prepare(uv_work_t *w)
{
	struct pd_xfer *x = w->data;
	struct stat st, st2;
	struct timespec at = { 0, 0 }; /* when st was taken (0: never settled) */
	ppcp_sha256 *h = NULL;

	x->fd = fx_openat2(x->fs->root_fd, x->path, O_RDONLY | O_NONBLOCK);
	if (x->fd < 0) {
		fx_set_errno(x, errno, "opening");
		return;
	}
	if (fstat(x->fd, &st) != 0) {
		fx_set_errno(x, errno, "examining");
		return;
	}
	(void)clock_gettime(CLOCK_REALTIME, &at);
	/* PROTOCOL.md §9.1: judged on the opened file. */
	if (!S_ISREG(st.st_mode)) {
		fx_set_err(x, "not-regular", "'%.200s' is %s: only regular files are served",
			   x->path, fx_type_name(st.st_mode));
		return;
	}
	for (int tries = 0;; tries++) {
		uint8_t sha[PPCP_HASH_LEN];

		if (fx_cache_get(x->fs, &st, x->sha)) {
			x->sha_how = FX_SHA_CACHED;
			break;
		}
		if (h == NULL && ppcp_sha256_new(&h) != 0) {
			fx_set_err(x, "internal-error", "SHA-256 failed on the server");
			return;
		}
		if (fx_hash_range(x, x->fd, (uint64_t)st.st_size, h) != 0 ||
		    ppcp_sha256_final(h, sha) != 0) {
			if (x->code == NULL)
				fx_set_err(x, "internal-error", "SHA-256 failed on the server");
			ppcp_sha256_free(h);
			return;
		}
		if (fstat(x->fd, &st2) != 0) {
			fx_set_errno(x, errno, "examining");
			ppcp_sha256_free(h);
			return;
		}
		if (fx_same_version(&st, &st2)) {
			memcpy(x->sha, sha, sizeof(sha));
			x->sha_how = FX_SHA_HASHED;
			if (fx_cache_settled(&st, &at)) {
				fx_cache_put(x->fs, &st, sha);
				x->sha_how = FX_SHA_HASHED_CACHED;
			}
			break;
		}
		st = st2;
		(void)clock_gettime(CLOCK_REALTIME, &at);
		if (tries + 1 >= FX_HASH_TRIES) {
			fx_set_err(x, "changed",
				   "'%.200s' kept changing while its checksum was computed: try again when it is stable",
				   x->path);
			ppcp_sha256_free(h);
			return;
		}
	}
	ppcp_sha256_free(h);
	x->size = (uint64_t)st.st_size;
	x->mtime = st.st_mtim;
	(void)posix_fadvise(x->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

static void fx_get_read(uv_work_t *w)
{
	struct pd_xfer *x = w->data;
	struct stat st;

	x->buflen = 0;
	while (x->buflen < x->want) {
		ssize_t n = pread(x->fd, x->buf + x->buflen, x->want - x->buflen,
				  (off_t)(x->pos + x->buflen));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fx_set_errno(x, errno, "reading");
			return;
		}
		if (n == 0) {
			fx_set_err(x, "changed",
				   "'%.200s' shrank during the transfer (it had %llu bytes): start again",
				   x->path, (unsigned long long)x->size);
			return;
		}
		x->buflen += (size_t)n;
	}
	/* PROTOCOL.md §9.2: the last byte is sent only if the file still has
	 * the size and modification time of the head. */
	if (x->pos + x->buflen == x->end) {
		if (fstat(x->fd, &st) != 0) {
			fx_set_errno(x, errno, "examining");
			return;
		}
		x->changed = (uint64_t)st.st_size != x->size || st.st_mtim.tv_sec != x->mtime.tv_sec ||
			     st.st_mtim.tv_nsec != x->mtime.tv_nsec;
	}
}

static void fx_get_after_read(uv_work_t *w, int status);

/* Read the next batch when the session's window allows. */
static void fx_get_pump(struct pd_xfer *x)
{
	struct pd_sfiles *sf;
	uint64_t left;

	if (x->busy || x->state != FX_RUNNING || x->pos >= x->end)
		return;
	sf = fx_sfiles(x->s, 0);
	if (pd_session_out_pending(x->s) + sf->inflight >= PD_FILE_WINDOW) {
		/* Parked until the peer drains (pd_files_kick): no buffer kept. */
		free(x->buf);
		x->buf = NULL;
		return;
	}
	left = x->end - x->pos;
	x->want = left < x->chunk * FX_READ_CHUNKS ? (size_t)left : x->chunk * FX_READ_CHUNKS;
	if (x->buf == NULL)
		x->buf = pd_xmalloc(x->chunk * FX_READ_CHUNKS);
	sf->inflight += x->want;
	fx_queue(x, fx_get_read, fx_get_after_read);
}

/* One chunk of file data: a binary-data record or a FILE_CHUNK. */
static int fx_send_data(struct pd_xfer *x, const uint8_t *data, size_t n, int last)
{
	if (x->binary)
		return pd_session_send_file_data(x->s, x->stream, x->pos, last, data, n);
	/* The RFC form, written by the library without a JSON tree. */
	return pd_session_send_file_chunk(x->s, x->id, x->pos, last, data, n);
}

static void fx_get_after_read(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	struct pd_sfiles *sf;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	sf = fx_sfiles(s, 0);
	sf->inflight -= x->want;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
		pd_session_flush(s);
		return;
	}
	for (size_t o = 0; o < x->buflen;) {
		size_t n = x->buflen - o < x->chunk ? x->buflen - o : x->chunk;
		int last = x->pos + n == x->end, r;

		if (last && x->changed) {
			fx_fail(x, "changed",
				"'%.200s' changed during the transfer (its size or modification time is not the head's): start again",
				x->path);
			pd_session_flush(s);
			return;
		}
		r = fx_send_data(x, x->buf + o, n, last);
		if (r != 0) {
			fx_fail(x, "internal-error", "the server cannot send file data: %s",
				ppcp_strerror(r));
			pd_session_flush(s);
			return;
		}
		x->pos += n;
		o += n;
	}
	if (x->pos == x->end) {
		pd_info("session %s: get '%s' (transfer %s): %llu bytes sent in %.2f s", pd_session_name(s),
			x->logpath, x->id, (unsigned long long)(x->end - x->start), fx_secs(x));
		fx_end(x);
	} else {
		fx_get_pump(x);
	}
	pd_session_flush(s);
}

static void fx_get_after_prepare(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	ppcp_conn *c;
	char hex[2 * PPCP_HASH_LEN + 1];
	uint32_t peer_max;
	json_t *p;
	int r;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
		pd_session_flush(s);
		return;
	}
	/* PROTOCOL.md §9.2: offset <= size, offset + length <= size. */
	if (x->pos > x->size) {
		fx_fail(x, INVALID, "\"offset\" %llu is past the end of '%.200s' (%llu bytes)",
			(unsigned long long)x->pos, x->path, (unsigned long long)x->size);
		pd_session_flush(s);
		return;
	}
	if (x->end == UINT64_MAX) {
		x->end = x->size;
	} else if (x->end > x->size) {
		fx_fail(x, INVALID,
			"\"offset\" + \"length\" (%llu) is past the end of '%.200s' (%llu bytes)",
			(unsigned long long)x->end, x->path, (unsigned long long)x->size);
		pd_session_flush(s);
		return;
	}
	c = pd_session_conn(s);
	peer_max = ppcp_conn_peer_max_record(c);
	if (x->binary && (ppcp_conn_extensions(c) & PPCP_EXT_BINARY_DATA)) {
		x->stream = fx_new_stream(fx_sfiles(s, 0));
		x->chunk = peer_max - PPCP_FILE_DATA_HDR;
		if (x->chunk > FX_BIN_CHUNK)
			x->chunk = FX_BIN_CHUNK;
	} else {
		x->binary = 0;
		x->chunk = (peer_max - FX_JSON_RESERVE) / 4 * 3;
		if (x->chunk > FX_JSON_CHUNK)
			x->chunk = FX_JSON_CHUNK;
	}
	for (int i = 0; i < PPCP_HASH_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", x->sha[i]);
	pd_debug("session %s: get '%s' (transfer %s): checksum %s", pd_session_name(s), x->logpath, x->id,
		 x->sha_how == FX_SHA_CACHED	      ? "from the cache"
		 : x->sha_how == FX_SHA_HASHED_CACHED ? "computed, and remembered"
						      : "computed, not remembered (changed less than 1 s ago)");
	p = json_pack("{s:I,s:s,s:I,s:I,s:I,s:b}", "size", (json_int_t)x->size, "sha256", hex,
		      "mtime", (json_int_t)x->mtime.tv_sec, "offset", (json_int_t)x->pos, "length",
		      (json_int_t)(x->end - x->pos), "binary", x->binary);
	if (p != NULL && x->binary)
		json_object_set_new(p, "stream", json_integer(x->stream));
	r = p != NULL ? pd_session_send(s, PPCP_MSG_FILE_CHUNK, x->id, p) : PPCP_ERR_NOMEM;
	json_decref(p);
	if (r != 0) {
		fx_fail(x, "internal-error", "the server cannot send the head: %s", ppcp_strerror(r));
		pd_session_flush(s);
		return;
	}
	pd_info("session %s: get '%s' (transfer %s): %llu of %llu bytes from offset %llu, %s",
		pd_session_name(s), x->logpath, x->id, (unsigned long long)(x->end - x->pos),
		(unsigned long long)x->size, (unsigned long long)x->pos,
		x->binary ? "binary" : "base64");
	x->state = FX_RUNNING;
	if (x->pos == x->end) {
		/* A range of length 0 ends with the head. */
		fx_end(x);
	} else {
		fx_get_pump(x);
	}
	pd_session_flush(s);
}

/* ---- upload ------------------------------------------------------------ */

/* Open (O_RDONLY | O_DIRECTORY) the directory dir beneath the root; with
 * mk, create what is missing (mode 0755), one component at a time, each
 * resolved from the root again so that no link leads out.  -1 with errno. */
static int fx_open_dir(struct pd_xfer *x, const char *dir, int mk)
{
	int root = x->fs->root_fd, fd, parent, e = 0;
	char *buf;
	size_t n, i = 0;

	fd = fx_openat2(root, dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0 || errno != ENOENT || !mk)
		return fd;
	parent = fx_openat2(root, ".", O_RDONLY | O_DIRECTORY);
	if (parent < 0)
		return -1;
	buf = pd_xstrdup(dir);
	n = strlen(buf);
	while (i < n) {
		size_t start, end;
		char saved;

		while (i < n && buf[i] == '/')
			i++;
		start = i;
		while (i < n && buf[i] != '/')
			i++;
		end = i;
		if (end == start)
			break;
		saved = buf[end];
		buf[end] = '\0';
		fd = fx_openat2(root, buf, O_RDONLY | O_DIRECTORY);
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(parent, buf + start, 0755) != 0 && errno != EEXIST) {
				e = errno;
				break;
			}
			fd = fx_openat2(root, buf, O_RDONLY | O_DIRECTORY);
		}
		if (fd < 0) {
			e = errno;
			break;
		}
		close(parent);
		parent = fd;
		fd = -1;
		buf[end] = saved;
	}
	free(buf);
	if (e != 0) {
		close(parent);
		errno = e;
		return -1;
	}
	return parent;
}

/* Open or create the temporary file, locked, still under its name, ours,
 * with one link.  The fd, or -1 with the error set. */
static int fx_open_temp(struct pd_xfer *x)
{
	struct stat st, st2;
	int fd;

	for (int tries = 0; tries < FX_LOCK_TRIES; tries++) {
		fd = openat(x->dirfd, x->tmpname,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			fd = openat(x->dirfd, x->tmpname,
				    O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* removed between the two opens */
			if (errno == ELOOP || errno == ENXIO || errno == EISDIR) {
				/* Something else sits under our name. */
				if (unlinkat(x->dirfd, x->tmpname, 0) == 0)
					continue;
				fx_set_err(x, "not-regular",
					   "the temporary file of '%.200s' cannot be created: something that is not a regular file has its name",
					   x->path);
				return -1;
			}
			fx_set_errno(x, errno, "creating the temporary file of");
			return -1;
		}
		if (fstat(fd, &st) != 0) {
			fx_set_errno(x, errno, "examining the temporary file of");
			close(fd);
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			close(fd);
			if (errno != EWOULDBLOCK) {
				fx_set_errno(x, errno, "locking the temporary file of");
				return -1;
			}
			usleep(FX_LOCK_WAIT_US);
			continue;
		}
		/* The attempt that held the lock before us may have renamed
		 * or removed it: only the file under the name will do. */
		if (fstatat(x->dirfd, x->tmpname, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
		    st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
			close(fd);
			continue;
		}
		if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
			/* Not one we made: never write through it. */
			(void)unlinkat(x->dirfd, x->tmpname, 0);
			close(fd);
			continue;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
			fx_set_errno(x, errno, "opening the temporary file of");
			close(fd);
			return -1;
		}
		return fd;
	}
	fx_set_err(x, "rate-limited",
		   "another upload of '%.200s' with the same content is in progress: try again when it ends",
		   x->path);
	return -1;
}

static void fx_put_prepare(uv_work_t *w)
{
	struct pd_xfer *x = w->data;
	struct stat st;

	x->dirfd = fx_open_dir(x, x->dirpart, x->mkdir);
	if (x->dirfd < 0) {
		int e = errno;

		if (e == ENOENT)
			fx_set_err(x, "not-found",
				   "the directory of '%.200s' does not exist (an upload with \"mkdir\": true creates it)",
				   x->path);
		else
			fx_set_errno(x, e, "opening the directory of");
		return;
	}
	/* PROTOCOL.md §9.1: only regular files are replaced. */
	if (fstatat(x->dirfd, x->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISREG(st.st_mode)) {
			fx_set_err(x, "not-regular",
				   "'%.200s' exists and is %s: only regular files are replaced", x->path,
				   fx_type_name(st.st_mode));
			return;
		}
	} else if (errno != ENOENT) {
		fx_set_errno(x, errno, "examining");
		return;
	}
	x->fd = fx_open_temp(x);
	if (x->fd < 0)
		return;
	if (fstat(x->fd, &st) != 0) {
		fx_set_errno(x, errno, "examining the temporary file of");
		return;
	}
	/* PROTOCOL.md §9.3: what an interrupted attempt left is resumed. */
	x->held = (uint64_t)st.st_size;
	if (x->held > x->size) {
		if (ftruncate(x->fd, 0) != 0) {
			fx_set_errno(x, errno, "truncating the temporary file of");
			x->drop_temp = 1;
			return;
		}
		x->held = 0;
	}
	if (ppcp_sha256_new(&x->h) != 0) {
		fx_set_err(x, "internal-error", "SHA-256 failed on the server");
		return;
	}
	if (x->held > 0 && fx_hash_range(x, x->fd, x->held, x->h) != 0) {
		x->drop_temp = strcmp(x->code, "cancelled") != 0;
		return;
	}
	x->wpos = x->held;
}

/* Write the batch, hashing it; after the last byte, make it the file. */
static void fx_put_write(uv_work_t *w)
{
	struct pd_xfer *x = w->data;
	uint8_t got[PPCP_HASH_LEN];
	struct stat st, st2;

	for (struct fx_blk *b = x->batch; b != NULL; b = b->next) {
		size_t done = 0;

		while (done < b->len) {
			ssize_t n = pwrite(x->fd, b->data + done, b->len - done,
					   (off_t)(x->wpos + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				fx_set_errno(x, errno, "writing");
				x->drop_temp = 1;
				return;
			}
			done += (size_t)n;
		}
		if (ppcp_sha256_update(x->h, b->data, b->len) != 0) {
			fx_set_err(x, "internal-error", "SHA-256 failed on the server");
			return;
		}
		x->wpos += b->len;
	}
	if (!x->finalizing)
		return;
	x->drop_temp = 1; /* from here on, any failure deletes it */
	if (fsync(x->fd) != 0) {
		fx_set_errno(x, errno, "writing");
		return;
	}
	if (ppcp_sha256_final(x->h, got) != 0) {
		fx_set_err(x, "internal-error", "SHA-256 failed on the server");
		return;
	}
	if (memcmp(got, x->want_sha, sizeof(got)) != 0) {
		fx_set_err(x, "changed",
			   "the bytes received for '%.200s' do not match the request's sha256 (the file changed during the upload?): nothing was kept, send it again",
			   x->path);
		return;
	}
	if (fchmod(x->fd, x->mode) != 0) {
		fx_set_errno(x, errno, "setting the mode of");
		return;
	}
	/* Only the file we wrote and checked goes under the final name. */
	if (fstat(x->fd, &st) != 0 ||
	    fstatat(x->dirfd, x->tmpname, &st2, AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_dev != st2.st_dev || st.st_ino != st2.st_ino) {
		fx_set_err(x, "changed",
			   "the temporary file of '%.200s' was replaced during the upload: send it again",
			   x->path);
		x->drop_temp = 0; /* it is not ours any more */
		return;
	}
	/* No half-written file ever appears under the final name. */
	if (renameat(x->dirfd, x->tmpname, x->dirfd, x->name) != 0) {
		fx_set_errno(x, errno, "replacing");
		return;
	}
	x->drop_temp = 0;
	if (fsync(x->dirfd) != 0) {
		fx_set_errno(x, errno, "flushing the directory of");
		return;
	}
	x->finalized = 1;
}

static void fx_put_after_write(uv_work_t *w, int status);

/* Hand what is queued to the worker, or finish. */
static void fx_put_kick(struct pd_xfer *x)
{
	if (x->busy || x->state != FX_RUNNING || x->finalized)
		return;
	if (x->q_head == NULL && !x->got_last)
		return;
	x->batch = x->q_head;
	x->batch_bytes = x->q_bytes;
	x->q_head = x->q_tail = NULL;
	x->q_bytes = 0;
	x->finalizing = x->got_last;
	fx_queue(x, fx_put_write, fx_put_after_write);
}

static void fx_put_after_write(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	json_t *p;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	fx_sfiles(s, 0)->write_pending -= x->batch_bytes;
	fx_blk_free_list(x->batch);
	x->batch = NULL;
	x->batch_bytes = 0;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
	} else if (x->finalized) {
		p = json_pack("{s:b,s:I}", "done", 1, "size", (json_int_t)x->size);
		if (p != NULL)
			(void)pd_session_send(s, PPCP_MSG_FILE_CHUNK, x->id, p);
		json_decref(p);
		pd_info("session %s: put '%s' (transfer %s): %llu bytes written in %.2f s (%llu held from an earlier attempt), mode %04o",
			pd_session_name(s), x->logpath, x->id, (unsigned long long)x->size,
			fx_secs(x), (unsigned long long)x->held, (unsigned)x->mode);
		fx_end(x);
	} else {
		fx_put_kick(x);
	}
	pd_session_update_reading(s);
	pd_session_flush(s);
}

static void fx_put_after_prepare(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	ppcp_conn *c;
	json_t *p;
	int r;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
		pd_session_flush(s);
		return;
	}
	c = pd_session_conn(s);
	if (x->binary && (ppcp_conn_extensions(c) & PPCP_EXT_BINARY_DATA))
		x->stream = fx_new_stream(fx_sfiles(s, 0));
	else
		x->binary = 0;
	p = json_pack("{s:I,s:b}", "offset", (json_int_t)x->held, "binary", x->binary);
	if (p != NULL && x->binary)
		json_object_set_new(p, "stream", json_integer(x->stream));
	r = p != NULL ? pd_session_send(s, PPCP_MSG_FILE_CHUNK, x->id, p) : PPCP_ERR_NOMEM;
	json_decref(p);
	if (r != 0) {
		fx_fail(x, "internal-error", "the server cannot send the head: %s", ppcp_strerror(r));
		pd_session_flush(s);
		return;
	}
	pd_info("session %s: put '%s' (transfer %s): %llu bytes, mode %04o, %s%s, resuming at %llu",
		pd_session_name(s), x->logpath, x->id, (unsigned long long)x->size,
		(unsigned)x->mode, x->binary ? "binary" : "base64", x->mkdir ? ", mkdir" : "",
		(unsigned long long)x->held);
	x->state = FX_RUNNING;
	x->next_off = x->held;
	if (x->held == x->size) {
		/* Nothing left to send: every byte is already here. */
		x->got_last = 1;
		fx_put_kick(x);
	}
	pd_session_flush(s);
}

/* Data for an upload, in order and in range (PROTOCOL.md §9.3, §9.5).
 * 0, or -1 with why. */
static int fx_put_data(struct pd_xfer *x, uint64_t off, const uint8_t *data, size_t n, int last,
		       char *why, size_t cap)
{
	struct fx_blk *b;

	if (x->got_last) {
		snprintf(why, cap, "data for transfer %s after its last chunk", x->id);
		return -1;
	}
	if (off != x->next_off) {
		snprintf(why, cap, "data for transfer %s out of order: offset %llu, expected %llu",
			 x->id, (unsigned long long)off, (unsigned long long)x->next_off);
		return -1;
	}
	if (n > x->size - x->next_off) {
		snprintf(why, cap, "data for transfer %s past its announced size (%llu bytes)", x->id,
			 (unsigned long long)x->size);
		return -1;
	}
	if (last && x->next_off + n != x->size) {
		snprintf(why, cap, "transfer %s marked last at %llu bytes, but %llu were announced",
			 x->id, (unsigned long long)(x->next_off + n), (unsigned long long)x->size);
		return -1;
	}
	if (n > 0) {
		b = pd_xmalloc(sizeof(*b) + n);
		b->next = NULL;
		b->len = n;
		memcpy(b->data, data, n);
		if (x->q_tail != NULL)
			x->q_tail->next = b;
		else
			x->q_head = b;
		x->q_tail = b;
		x->q_bytes += n;
		fx_sfiles(x->s, 0)->write_pending += n;
		x->next_off += n;
	}
	if (last)
		x->got_last = 1;
	fx_put_kick(x);
	return 0;
}

/* ---- listing ----------------------------------------------------------- */

static void fx_list_prepare(uv_work_t *w)
{
	struct pd_xfer *x = w->data;

	x->fd = fx_openat2(x->fs->root_fd, x->path, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
	if (x->fd < 0) {
		if (errno == ENOTDIR)
			fx_set_err(x, "not-found", "'%.200s' is not a directory", x->path);
		else
			fx_set_errno(x, errno, "opening");
		return;
	}
	x->dir = fdopendir(x->fd);
	if (x->dir == NULL)
		fx_set_errno(x, errno, "reading");
}

/* The JSON of an entry at its worst: every byte of the name as \uXXXX
 * (jansson's JSON_ENSURE_ASCII writes at most that). */
static size_t fx_list_cost(const char *name)
{
	return 6 * strlen(name) + FX_LIST_ENTRY_JSON;
}

static void fx_list_read(uv_work_t *w)
{
	struct pd_xfer *x = w->data;
	size_t used = 0;
	struct dirent *de;
	struct stat st;

	x->nents = 0;
	if (x->ents == NULL)
		x->ents = calloc(FX_LIST_MAX, sizeof(*x->ents));
	if (x->ents == NULL) {
		fx_set_err(x, "internal-error", "the server is out of memory");
		return;
	}
	if (x->carry.name != NULL) {
		x->ents[x->nents++] = x->carry;
		used += fx_list_cost(x->carry.name);
		memset(&x->carry, 0, sizeof(x->carry));
	}
	while (x->nents < FX_LIST_MAX) {
		struct fx_ent e;

		errno = 0;
		de = readdir(x->dir);
		if (de == NULL) {
			if (errno != 0)
				fx_set_errno(x, errno, "reading");
			else
				x->list_eof = 1;
			return;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fx_is_tmp_name(de->d_name))
			continue;
		/* Symbolic links are reported, never followed (§9.4). */
		if (fstatat(dirfd(x->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue; /* gone meanwhile */
		memset(&e, 0, sizeof(e));
		e.name = strdup(de->d_name);
		if (e.name == NULL) {
			fx_set_err(x, "internal-error", "the server is out of memory");
			return;
		}
		e.type = S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : 'o';
		e.size = (uint64_t)st.st_size;
		e.mtime = (int64_t)st.st_mtim.tv_sec;
		if (x->nents > 0 && used + fx_list_cost(e.name) > x->budget) {
			x->carry = e; /* the first of the next batch */
			return;
		}
		used += fx_list_cost(e.name);
		x->ents[x->nents++] = e;
	}
}

static void fx_list_after_read(uv_work_t *w, int status);

static void fx_list_pump(struct pd_xfer *x)
{
	struct pd_sfiles *sf;

	if (x->busy || x->state != FX_RUNNING)
		return;
	sf = fx_sfiles(x->s, 0);
	if (pd_session_out_pending(x->s) + sf->inflight >= PD_FILE_WINDOW)
		return;
	x->want = 0;
	fx_queue(x, fx_list_read, fx_list_after_read);
}

static void fx_list_after_read(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	json_t *arr, *p;
	int r;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
		pd_session_flush(s);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < x->nents; i++) {
		const struct fx_ent *e = &x->ents[i];
		json_t *name = json_string(e->name), *o;

		if (name == NULL) {
			/* Not UTF-8: JSON cannot carry it (§9.4 names are UTF-8). */
			x->skipped++;
			continue;
		}
		o = json_pack("{s:o,s:s}", "name", name, "type",
			      e->type == 'f' ? "file" : e->type == 'd' ? "dir" : "other");
		if (o != NULL && e->type == 'f') {
			json_object_set_new(o, "size", json_integer((json_int_t)e->size));
			json_object_set_new(o, "mtime", json_integer((json_int_t)e->mtime));
		}
		if (o != NULL)
			json_array_append_new(arr, o);
	}
	x->listed += json_array_size(arr);
	for (size_t i = 0; i < x->nents; i++)
		free(x->ents[i].name);
	x->nents = 0;
	p = json_pack("{s:o,s:b}", "entries", arr, "last", x->list_eof && x->carry.name == NULL);
	r = p != NULL ? pd_session_send(s, PPCP_MSG_FILE_CHUNK, x->id, p) : PPCP_ERR_NOMEM;
	json_decref(p);
	if (r != 0) {
		fx_fail(x, "internal-error", "the server cannot send the listing: %s",
			ppcp_strerror(r));
		pd_session_flush(s);
		return;
	}
	x->chunks++;
	if (x->list_eof && x->carry.name == NULL) {
		pd_info("session %s: list '%s' (transfer %s): %llu entries in %llu chunk%s%s",
			pd_session_name(s), x->logpath, x->id, (unsigned long long)x->listed,
			(unsigned long long)x->chunks, x->chunks == 1 ? "" : "s",
			x->skipped > 0 ? " (names that are not UTF-8 left out)" : "");
		fx_end(x);
	} else {
		fx_list_pump(x);
	}
	pd_session_flush(s);
}

static void fx_list_after_prepare(uv_work_t *w, int status)
{
	struct pd_xfer *x = fx_returned(w);
	struct pd_session *s;
	uint32_t peer_max;

	(void)status;
	if (x == NULL)
		return;
	s = x->s;
	if (x->code != NULL) {
		fx_fail(x, x->code, "%s", x->msg);
		pd_session_flush(s);
		return;
	}
	peer_max = ppcp_conn_peer_max_record(pd_session_conn(s));
	x->budget = peer_max - FX_JSON_RESERVE;
	x->state = FX_RUNNING;
	fx_list_pump(x);
	pd_session_flush(s);
}

/* ---- requests ---------------------------------------------------------- */

/* Optional integer member in [0, FX_LIMIT): 0, or -1 when wrong. */
static int fx_get_u53(const json_t *o, const char *key, uint64_t dflt, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) >= FX_LIMIT)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int fx_get_bool(const json_t *o, const char *key, int *out)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL) {
		*out = 0;
		return 0;
	}
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

static int fx_hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The op-specific members of a request.  0, or -1 after answering. */
static int fx_parse_get(struct pd_session *s, const ppcp_msg *m, struct pd_xfer *x)
{
	const json_t *p = m->payload;
	uint64_t off, len;

	if (fx_get_u53(p, "offset", 0, &off) != 0) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"offset\" must be a whole number from 0 to 2^53 - 1");
		return -1;
	}
	if (fx_get_u53(p, "length", 0, &len) != 0) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"length\" must be a whole number from 0 to 2^53 - 1");
		return -1;
	}
	if (fx_get_bool(p, "binary", &x->binary) != 0) {
		pd_session_send_error(s, m->id, INVALID, "\"binary\" must be true or false");
		return -1;
	}
	x->start = x->pos = off;
	/* Absent: to the end of the file, known once it is open. */
	x->end = json_object_get(p, "length") != NULL ? off + len : UINT64_MAX;
	return 0;
}

static int fx_parse_put(struct pd_session *s, const ppcp_msg *m, struct pd_xfer *x)
{
	const struct pd_config *cfg = pd_session_daemon(s)->cfg;
	const json_t *p = m->payload, *v;
	const char *hex, *slash;
	char lower[17];
	json_int_t mode = 0644;

	v = json_object_get(p, "size");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) >= FX_LIMIT) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"size\" must be a whole number from 0 to 2^53 - 1");
		return -1;
	}
	x->size = (uint64_t)json_integer_value(v);
	v = json_object_get(p, "sha256");
	hex = json_string_value(v);
	if (hex == NULL || json_string_length(v) != 2 * PPCP_HASH_LEN) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"sha256\" must be 64 hexadecimal digits");
		return -1;
	}
	for (int i = 0; i < PPCP_HASH_LEN; i++) {
		int hi = fx_hex_nibble(hex[2 * i]), lo = fx_hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"sha256\" must be 64 hexadecimal digits");
			return -1;
		}
		x->want_sha[i] = (uint8_t)(hi << 4 | lo);
	}
	v = json_object_get(p, "mode");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 07777) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"mode\" must be permission bits from 0 to 0777");
			return -1;
		}
		/* Never set-user-id, set-group-id or sticky. */
		mode = json_integer_value(v) & 0777;
	}
	x->mode = (mode_t)mode;
	if (fx_get_bool(p, "binary", &x->binary) != 0 || fx_get_bool(p, "mkdir", &x->mkdir) != 0) {
		pd_session_send_error(s, m->id, INVALID, "\"binary\" and \"mkdir\" must be true or false");
		return -1;
	}
	/* The target is DIR/NAME; NAME must be a name. */
	slash = strrchr(x->path, '/');
	x->name = pd_xstrdup(slash != NULL ? slash + 1 : x->path);
	x->dirpart = slash != NULL ? strndup(x->path, (size_t)(slash - x->path)) : pd_xstrdup(".");
	if (x->dirpart == NULL)
		x->dirpart = pd_xstrdup(".");
	if (x->dirpart[0] == '\0') {
		free(x->dirpart);
		x->dirpart = pd_xstrdup("/"); /* "/name": absolute, refused below */
	}
	if (x->name[0] == '\0' || strcmp(x->name, ".") == 0 || strcmp(x->name, "..") == 0) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"path\" must end with a file name, not '%.200s'", x->path);
		return -1;
	}
	if (fx_is_tmp_name(x->name)) {
		/* Replacing another upload's temporary file would let that
		 * upload rename someone else's bytes into place. */
		pd_session_send_error(s, m->id, "unauthorized",
				      "names of the form .NAME.ppcp-HASH.part are reserved for uploads in progress");
		return -1;
	}
	if (strlen(x->name) > FX_NAME_MAX) {
		pd_session_send_error(s, m->id, INVALID,
				      "the file name of \"path\" is longer than %d bytes", FX_NAME_MAX);
		return -1;
	}
	if (x->size > cfg->max_file_size) {
		pd_info("session %s: refused an upload of %llu bytes (max-file-size %llu)",
			pd_session_name(s), (unsigned long long)x->size,
			(unsigned long long)cfg->max_file_size);
		pd_session_send_error(s, m->id, "unauthorized",
				      "an upload of %llu bytes is larger than this server accepts (max-file-size %llu)",
				      (unsigned long long)x->size,
				      (unsigned long long)cfg->max_file_size);
		return -1;
	}
	for (int i = 0; i < 8; i++)
		snprintf(lower + 2 * i, 3, "%02x", x->want_sha[i]);
	x->tmpname = fx_tmp_name(x->name, lower);
	return 0;
}

void pd_files_request(struct pd_session *s, const ppcp_msg *m)
{
	struct pd_daemon *d = pd_session_daemon(s);
	const struct pd_config *cfg = d->cfg;
	struct pd_files *fs = d->files;
	const json_t *p = m->payload, *v;
	struct pd_sfiles *sf;
	struct pd_xfer *x;
	const char *path;
	enum fx_op op = FX_GET;
	char safe[160];
	int r;

	/* Order of judgement: the feature, the shape (invalid-message), the
	 * policy (unauthorized), the session's count (rate-limited). */
	if (fs == NULL) {
		pd_info("session %s: refused a FILE_REQUEST (no file-root)", pd_session_name(s));
		pd_session_send_error(s, m->id, "unauthorized",
				      "file transfer is not enabled on this server (file-root)");
		return;
	}
	v = json_object_get(p, "op");
	if (v != NULL) {
		const char *o = json_string_value(v);

		if (o != NULL && strcmp(o, "put") == 0) {
			op = FX_PUT;
		} else if (o != NULL && strcmp(o, "list") == 0) {
			op = FX_LIST;
		} else {
			pd_session_send_error(s, m->id, INVALID,
					      "\"op\" must be \"put\", \"list\", or absent for a download");
			return;
		}
	}
	v = json_object_get(p, "path");
	path = json_string_value(v);
	if (path == NULL || json_string_length(v) < 1 || json_string_length(v) > FX_PATH_MAX ||
	    strlen(path) != json_string_length(v)) {
		pd_session_send_error(s, m->id, INVALID,
				      "\"path\" must be a string of 1 to %d bytes without NUL",
				      FX_PATH_MAX);
		return;
	}
	pd_log_safe(safe, sizeof(safe), path);
	if (op == FX_PUT && !cfg->allow_put) {
		pd_info("session %s: refused an upload to '%s' (allow-put is off)", pd_session_name(s),
			safe);
		pd_session_send_error(s, m->id, "unauthorized",
				      "uploads are not allowed on this server (allow-put)");
		return;
	}

	x = pd_xcalloc(1, sizeof(*x));
	x->fs = fs;
	x->op = op;
	x->fd = x->dirfd = -1;
	x->path = pd_xstrdup(path);
	snprintf(x->logpath, sizeof(x->logpath), "%s", safe);
	snprintf(x->id, sizeof(x->id), "%s", m->id);
	r = op == FX_GET ? fx_parse_get(s, m, x) : op == FX_PUT ? fx_parse_put(s, m, x) : 0;
	if (r != 0) {
		fx_free(x);
		return;
	}

	/* PROTOCOL.md §9.1: relative to the root.  The kernel refuses the
	 * rest (RESOLVE_BENEATH); this one is said plainly. */
	if (path[0] == '/') {
		pd_info("session %s: refused %s of '%s': an absolute path", pd_session_name(s),
			fx_op_name[op], safe);
		pd_session_send_error(s, m->id, "unauthorized",
				      "'%.200s' is an absolute path: paths are relative to the server's file root",
				      path);
		fx_free(x);
		return;
	}
	sf = fx_sfiles(s, 1);
	if (fx_find_id(sf, m->id) != NULL) {
		pd_session_send_error(s, m->id, INVALID,
				      "a transfer with this id is still running in this session");
		fx_free(x);
		return;
	}
	if (sf->count >= cfg->max_transfers) {
		pd_info("session %s: refused %s of '%s': %u transfers already (max-transfers)",
			pd_session_name(s), fx_op_name[op], safe, cfg->max_transfers);
		pd_session_send_error(s, m->id, "rate-limited",
				      "this session already runs %u transfers (max-transfers)",
				      cfg->max_transfers);
		fx_free(x);
		return;
	}
	if (fs->broken) {
		pd_error("session %s: refused %s of '%s': this kernel has no openat2, file transfer is disabled",
			 pd_session_name(s), fx_op_name[op], safe);
		pd_session_send_error(s, m->id, "internal-error",
				      "file transfer is disabled on this server: its kernel cannot resolve paths safely (openat2, Linux 5.6)");
		fx_free(x);
		return;
	}

	x->s = s;
	x->t0 = uv_now(d->loop);
	x->next = sf->list;
	if (sf->list != NULL)
		sf->list->prev = x;
	sf->list = x;
	sf->count++;
	pd_debug("session %s: FILE_REQUEST %s '%s' (transfer %s)", pd_session_name(s),
		 fx_op_name[op], safe, x->id);
	switch (op) {
	case FX_GET:
		fx_queue(x, fx_get_prepare, fx_get_after_prepare);
		break;
	case FX_PUT:
		fx_queue(x, fx_put_prepare, fx_put_after_prepare);
		break;
	case FX_LIST:
		fx_queue(x, fx_list_prepare, fx_list_after_prepare);
		break;
	}
}

int pd_files_chunk(struct pd_session *s, const ppcp_msg *m)
{
	struct pd_sfiles *sf = fx_sfiles(s, 0);
	struct pd_xfer *x = fx_find_id(sf, m->id);
	const json_t *p = m->payload, *v;
	const char *data = NULL;
	uint8_t *buf = NULL;
	uint64_t off;
	long n = 0;
	int last;
	char why[300];

	if (x == NULL)
		return fx_grave_id(sf, m->id); /* in flight when it ended: dropped */
	if (x->op != FX_PUT)
		return 0; /* nothing of the kind was asked */
	if (x->state != FX_RUNNING) {
		fx_fail(x, INVALID, "FILE_CHUNK for transfer %s before its head", x->id);
		return 1;
	}
	v = json_object_get(p, "data");
	if (v != NULL) {
		size_t len = json_string_length(v);

		data = json_string_value(v);
		if (data != NULL) {
			buf = pd_xmalloc(len / 4 * 3 + 3);
			n = ppcp__b64_decode(buf, len / 4 * 3 + 3, data, len);
		}
	}
	if (!json_is_integer(json_object_get(p, "offset")) ||
	    json_integer_value(json_object_get(p, "offset")) < 0 || (v != NULL && data == NULL) ||
	    fx_get_bool(p, "last", &last) != 0) {
		free(buf);
		fx_fail(x, INVALID,
			"a FILE_CHUNK is {\"offset\": integer, \"data\": base64, \"last\": bool}");
		return 1;
	}
	if (n < 0) {
		free(buf);
		fx_fail(x, INVALID, "\"data\" is not canonical base64 (RFC 4648, padded)");
		return 1;
	}
	off = (uint64_t)json_integer_value(json_object_get(p, "offset"));
	if (fx_put_data(x, off, buf, (size_t)n, last, why, sizeof(why)) != 0)
		fx_fail(x, INVALID, "%s", why);
	free(buf);
	return 1;
}

void pd_files_binary(struct pd_session *s, const uint8_t *rec, size_t len)
{
	struct pd_sfiles *sf = fx_sfiles(s, 0);
	struct pd_xfer *x;
	uint32_t stream;
	uint64_t off;
	const uint8_t *data;
	size_t n;
	int last;
	char why[300];

	if (ppcp_file_data_parse(rec, len, &stream, &off, &last, &data, &n) != 0) {
		pd_session_fail(s, "a binary-data record shorter than its header or with unknown flags");
		return;
	}
	x = fx_find_stream(sf, stream);
	if (x == NULL) {
		int uploading = 0;

		if (fx_grave_stream(sf, stream))
			return; /* in flight when its transfer ended: dropped */
		for (struct pd_xfer *y = sf != NULL ? sf->list : NULL; y != NULL; y = y->next)
			uploading |= y->op == FX_PUT && y->state == FX_RUNNING;
		if (!uploading) {
			/* PROTOCOL.md §8.6: a record for no transfer at all. */
			pd_session_send_error(s, NULL, "unauthorized",
					      "binary-data record for stream %u: no upload is in progress in this session",
					      stream);
			return;
		}
		snprintf(why, sizeof(why), "binary-data record for stream %u, which no upload uses",
			 stream);
		pd_session_fail(s, why);
		return;
	}
	if (x->op != FX_PUT) {
		snprintf(why, sizeof(why), "binary-data record on stream %u, a download to the peer",
			 stream);
		pd_session_fail(s, why);
		return;
	}
	/* PROTOCOL.md §9.5: out of order or past the range is fatal. */
	if (fx_put_data(x, off, data, n, last, why, sizeof(why)) != 0)
		pd_session_fail(s, why);
}

int pd_files_peer_error(struct pd_session *s, const ppcp_msg *m)
{
	struct pd_xfer *x = fx_find_id(fx_sfiles(s, 0), m->id);
	char code[80];

	if (x == NULL)
		return 0;
	pd_info("session %s: %s '%s' (transfer %s) ended by the peer: ERROR %s", pd_session_name(s),
		fx_op_name[x->op], x->logpath, x->id,
		pd_log_safe(code, sizeof(code),
			    json_string_value(json_object_get(m->payload, "code"))));
	fx_end(x);
	return 1;
}

void pd_files_kick(struct pd_session *s)
{
	struct pd_sfiles *sf = fx_sfiles(s, 0);
	struct pd_xfer *x, *next;

	for (x = sf != NULL ? sf->list : NULL; x != NULL; x = next) {
		next = x->next;
		if (x->op == FX_GET)
			fx_get_pump(x);
		else if (x->op == FX_LIST)
			fx_list_pump(x);
	}
}

size_t pd_files_write_pending(struct pd_session *s)
{
	struct pd_sfiles *sf = fx_sfiles(s, 0);

	return sf != NULL ? sf->write_pending : 0;
}

void pd_files_detach_all(struct pd_session *s)
{
	struct pd_sfiles *sf = fx_sfiles(s, 0);

	if (sf == NULL)
		return;
	while (sf->list != NULL) {
		struct pd_xfer *x = sf->list;

		if (x->op == FX_PUT)
			pd_info("session %s: put '%s' (transfer %s) interrupted at %llu of %llu bytes: the temporary file is kept for a resumed upload",
				pd_session_name(s), x->logpath, x->id,
				(unsigned long long)x->next_off, (unsigned long long)x->size);
		else
			pd_info("session %s: %s '%s' (transfer %s) interrupted: the session ended",
				pd_session_name(s), fx_op_name[x->op], x->logpath, x->id);
		fx_end(x);
	}
	free(sf);
	*pd_session_files(s) = NULL;
}

/* ---- startup: stale temporary files ----------------------------------- */

static void fx_sweep_dir(struct pd_files *fs, int dfd, int depth, time_t now)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *de;
	struct stat st;

	if (dir == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (atomic_load(&fs->stop) || ++fs->swept > FX_SWEEP_MAX_ENTRIES)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode) && depth < FX_SWEEP_MAX_DEPTH) {
			int sub = openat(dirfd(dir), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				fx_sweep_dir(fs, sub, depth + 1, now);
		} else if (S_ISREG(st.st_mode) && fx_is_tmp_name(de->d_name) &&
			   st.st_mtime + FX_STALE_AGE_S < now) {
			/* Not while an upload (of another daemon) holds it. */
			int fd = openat(dirfd(dir), de->d_name,
					O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

			if (fd < 0)
				continue;
			if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
				if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
					fs->stale_removed++;
				else
					fs->stale_failed++;
			}
			close(fd);
		}
	}
	closedir(dir);
}

static void fx_sweep(uv_work_t *w)
{
	struct pd_files *fs = w->data;
	int fd = openat(fs->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		fx_sweep_dir(fs, fd, 0, time(NULL));
}

static void fx_after_sweep(uv_work_t *w, int status)
{
	struct pd_files *fs = w->data;

	(void)status;
	if (fs->stale_removed > 0 || fs->stale_failed > 0)
		pd_info("file-root: removed %lu temporary files of uploads interrupted more than 24 h ago%s",
			fs->stale_removed, fs->stale_failed > 0 ? " (some could not be removed)" : "");
	else
		pd_debug("file-root: no stale temporary file (%lu entries looked at)", fs->swept);
}

/* ---- the daemon -------------------------------------------------------- */

int pd_files_init(struct pd_daemon *d)
{
	const struct pd_config *cfg = d->cfg;
	struct pd_files *fs;
	int fd;

	if (cfg->file_root == NULL)
		return 0;
	fs = pd_xcalloc(1, sizeof(*fs));
	fs->d = d;
	fs->root_fd = open(cfg->file_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0) {
		pd_error("file-root %s: cannot open it: %s", cfg->file_root, strerror(errno));
		free(fs);
		return -1;
	}
	if (uv_mutex_init(&fs->lock) != 0) {
		pd_error("file-root: cannot create a mutex");
		close(fs->root_fd);
		free(fs);
		return -1;
	}
	/* Fail closed without openat2: no other call resolves safely. */
	fd = fx_openat2(fs->root_fd, ".", O_PATH | O_DIRECTORY);
	if (fd >= 0) {
		close(fd);
	} else if (errno == ENOSYS || errno == EPERM) {
		/* The kernel lacks it, or a seccomp filter forbids it: for good. */
		fs->broken = 1;
		pd_error("file transfer is disabled: openat2 on file-root failed (%s)%s", strerror(errno),
			 errno == ENOSYS ? ": this kernel lacks it (Linux 5.6 or later is needed)"
					 : ": a seccomp filter (container?) forbids it; allow openat2");
	} else {
		/* Anything else (no descriptor left, no memory) may pass: do
		 * not start with file transfer silently off. */
		pd_error("file-root %s: cannot open it: %s; fix that, then start ppcpd again",
			 cfg->file_root, strerror(errno));
		uv_mutex_destroy(&fs->lock);
		close(fs->root_fd);
		free(fs);
		return -1;
	}
	d->files = fs;
	if (!fs->broken) {
		fs->sweep.data = fs;
		if (uv_queue_work(d->loop, &fs->sweep, fx_sweep, fx_after_sweep) != 0)
			pd_warn("file-root: the cleanup of stale temporary files did not start");
	}
	return 0;
}

void pd_files_shutdown(struct pd_daemon *d)
{
	if (d->files != NULL)
		atomic_store(&d->files->stop, 1);
}

void pd_files_free(struct pd_daemon *d)
{
	struct pd_files *fs = d->files;

	if (fs == NULL)
		return;
	close(fs->root_fd);
	uv_mutex_destroy(&fs->lock);
	free(fs);
	d->files = NULL;
}
