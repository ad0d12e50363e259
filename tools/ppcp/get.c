/*
 * get.c - `ppcp get [-r] [--no-binary] [--limit-rate RATE] TARGET:PATH
 * [LOCAL]`: download a file (or, with -r, a directory tree) from the
 * server's file root (PROTOCOL.md §9.2, §9.4).
 *
 * What is on disk, and when:
 *
 *  - Nothing is created before the server has answered the request with
 *    its head: a refused path leaves no file behind.
 *  - Then the bytes go to LOCAL.part, next to it LOCAL.part.ppcp (the
 *    sidecar: JSON with server_id, path, size, sha256, mtime of the head and
 *    "verified", the number of bytes of LOCAL.part known to be on disk).
 *    Every XFER_CHECKPOINT bytes, and whenever the transfer stops
 *    (connection lost, Ctrl-C, local disk full), LOCAL.part is flushed
 *    (fdatasync) and only then the sidecar replaced (write, fsync,
 *    rename), so the sidecar never claims more than the disk holds.
 *  - The next `get` of the same server_id and path finds the sidecar and
 *    asks the head alone (length 0).  Same size, sha256 and mtime: it hashes
 *    the first "verified" bytes of LOCAL.part into the running SHA-256 and
 *    asks the rest (offset = verified).  Otherwise the source changed: it
 *    says so and starts over.
 *  - At the end, the SHA-256 of the whole file must equal the head's:
 *    LOCAL.part is flushed, renamed to LOCAL, and the sidecar removed.  A
 *    mismatch (or the server's ERROR "changed") means the file changed
 *    during the transfer: LOCAL.part and the sidecar are removed.  So LOCAL
 *    itself is only ever a complete, verified file.
 *
 * Records are checked as they come: the head must answer what was asked
 * (offset, length, a stream only when binary), binary-data records must be
 * on the head's stream, at the next expected offset, within the range, and
 * LAST exactly at its end; the same for FILE_CHUNK offsets.  A violation is
 * fatal for the session (§9.5): the server is authenticated and broken.
 *
 * --limit-rate pauses reading the socket, so TCP makes the server wait, and
 * announces a max_record of a few seconds' worth (PROTOCOL.md §6), so that
 * each record still arrives whole long before the idle timeout.
 * Ctrl-C keeps LOCAL.part for a resume, tells the server (ERROR cancelled),
 * says BYE and exits 130.
 *
 * `get @CLIENT_ID:PATH` on a controller reaches an agent instead: each
 * request goes through the controller's control socket (docs/CONTROL.md,
 * op "file") and the relayed lines are fed to the same handlers; only the
 * transport differs (struct get_transport: sess_tp, ctl_tp).  The sidecar
 * names the source "@CLIENT_ID"; closing the control connection is the
 * cancel (the controller sends the agent ERROR cancelled).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h" /* ppcp__b64_decode */

enum {
	GET_MAX_ENTRIES = 1000000,   /* -r: entries of one directory we accept */
	GET_CANCEL_FLUSH_MS = 1000,
	GET_DEAD = 16,               /* cancelled requests whose late data we ignore */
	GET_RECORD_SECONDS = 8,      /* --limit-rate: records of at most this many seconds */
};

enum dl_state { DL_WAIT, DL_DONE, DL_FAILED };

enum dl_fail {
	DLF_NONE,
	DLF_REFUSED,   /* an ERROR from the server: code, msg */
	DLF_CHANGED,   /* the file changed during the transfer */
	DLF_LOCAL,     /* a local file error: lerr, msg says what */
	DLF_PROTOCOL,  /* the server broke the protocol: msg */
};

struct getrun;

/* One request of ours and its answer: a download, a head probe, a listing. */
struct dl {
	struct getrun *g;
	const char *rpath;
	char id[PPCP_ID_MAX + 1];
	int probe;          /* length 0: only the head */
	int list;           /* op "list" */
	uint64_t want_off;  /* the offset asked for */
	enum dl_state state;
	enum dl_fail fail;
	int lerr;
	char code[PPCP_ID_MAX + 1];
	char msg[1024];
	/* the head */
	int have_head;
	uint64_t size, off, end, next;
	uint64_t expect_size; /* a resume: the sidecar's head (also sha, mtime) */
	int64_t mtime;
	char sha[65];
	int binary;
	uint32_t stream;
	/* the local copy */
	char local[PATH_MAX], part[PATH_MAX], side[PATH_MAX];
	int fd;
	ppcp_sha256 *h;
	uint64_t ckpt;      /* bytes flushed and recorded in the sidecar */
	int created;        /* .part created by this run */
	struct progress pr;
	/* a listing */
	json_t *entries;
};

struct get_transport;

struct getrun {
	struct cli *cli;
	const struct get_transport *tp;
	struct sess s;       /* a server; with @ID only s.server_id ("@ID") */
	const char *agent;   /* @ID: the agent's client_id, through the controller */
	int ctl_fd;          /* @ID: the control connection of the current request */
	uint64_t ctl_rx;     /* @ID: bytes read from the controller (--limit-rate) */
	char ctl_why[512];   /* @ID: why the relay ended before the answer */
	int ctl_said;        /* @ID: ctl_open already printed why */
	char *lbuf;          /* @ID: what the controller sent, up to a newline */
	size_t llen, lcap;
	int binary;
	int recursive;
	uint64_t rate;
	struct pace pace;
	struct dl *cur;
	uint8_t *b64buf;     /* decoded FILE_CHUNK data */
	size_t b64cap;
	int sig;
	unsigned failed, copied, skipped;
	/* Requests we cancelled: what was already on its way for them is
	 * dropped, not taken for a protocol violation. */
	char dead_id[GET_DEAD][PPCP_ID_MAX + 1];
	uint32_t dead_stream[GET_DEAD];
	unsigned ndead;
};

/*
 * How a request reaches the file's owner: a session of ours with a server
 * (sess_tp), or the controller's control socket that relays it to an agent
 * (ctl_tp, docs/CONTROL.md).  Everything else - the head and data checks,
 * .part, the sidecar, resume, SHA-256 and the rename - is the same code.
 */
struct get_transport {
	/* Send the FILE_REQUEST payload p for d and feed the answer to
	 * dl_on_message / dl_on_binary until d is answered, a signal
	 * (g->sig), or the transport ends (then d stays DL_WAIT). */
	void (*run)(struct getrun *g, struct dl *d, json_t *p);
	/* We give up on d (§9.6 ERROR cancelled): tell the owner. */
	void (*cancel)(struct getrun *g, struct dl *d, json_t *err);
	/* The owner broke the protocol: end the transport at once. */
	void (*abort)(struct getrun *g);
	/* The session to keep alive while hashing, or NULL. */
	struct sess *(*pump)(struct getrun *g);
	/* d ended without an answer: say why (no trailing period). */
	void (*why)(struct getrun *g, char *buf, size_t len);
};

/* ---- the sidecar ----------------------------------------------------------- */

struct sidecar {
	char server_id[PPCP_ID_MAX + 1];
	char path[XFER_MAX_PATH + 1];
	uint64_t size, verified;
	int64_t mtime;
	char sha[65];
};

static int sidecar_read(const char *file, struct sidecar *sc)
{
	json_t *j;
	json_error_t jerr;
	const char *sid, *path, *sha;
	int ret = -1;

	j = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return -1;
	sid = json_string_value(json_object_get(j, "server_id"));
	path = json_string_value(json_object_get(j, "path"));
	sha = json_string_value(json_object_get(j, "sha256"));
	if (sid == NULL || path == NULL || !xfer_is_sha256_hex(sha) ||
	    strlen(sid) > PPCP_ID_MAX || strlen(path) > XFER_MAX_PATH ||
	    xfer_get_u53(j, "size", &sc->size) != 0 ||
	    xfer_get_u53(j, "verified", &sc->verified) != 0 ||
	    !json_is_integer(json_object_get(j, "mtime")) || sc->verified > sc->size)
		goto out;
	snprintf(sc->server_id, sizeof(sc->server_id), "%s", sid);
	snprintf(sc->path, sizeof(sc->path), "%s", path);
	snprintf(sc->sha, sizeof(sc->sha), "%s", sha);
	sc->mtime = (int64_t)json_integer_value(json_object_get(j, "mtime"));
	ret = 0;
out:
	json_decref(j);
	return ret;
}

/* Replace the sidecar atomically: a temporary file, fsync, rename. */
static int sidecar_write(struct dl *d, uint64_t verified)
{
	char tmp[PATH_MAX + 8];
	json_t *j;
	char *text = NULL;
	int fd = -1, ret = -1;
	size_t len;

	j = json_pack("{s:s,s:s,s:I,s:s,s:I,s:I}", "server_id", d->g->s.server_id, "path",
		      d->rpath, "size", (json_int_t)d->size, "sha256", d->sha, "mtime",
		      (json_int_t)d->mtime, "verified", (json_int_t)verified);
	if (j == NULL) {
		errno = ENOMEM;
		return -1;
	}
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", d->side) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd < 0)
		goto out;
	len = strlen(text);
	text[len] = '\n';
	if (write(fd, text, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
		if (errno == 0)
			errno = EIO;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, d->side) != 0)
		goto fail;
	ret = 0;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	fd = -1;
	{
		int e = errno;
		unlink(tmp);
		errno = e;
	}
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return ret;
}

/* Flush what arrived and record it: the .part first, then the sidecar. */
static int dl_checkpoint(struct dl *d)
{
	if (d->fd < 0 || d->next == d->ckpt)
		return 0;
	if (fdatasync(d->fd) != 0)
		return -1;
	if (sidecar_write(d, d->next) != 0)
		return -1;
	d->ckpt = d->next;
	return 0;
}

static void dl_discard(struct dl *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	unlink(d->part);
	unlink(d->side);
}

/* ---- failures --------------------------------------------------------------- */

static void dl_failf(struct dl *d, enum dl_fail kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dl_failf(struct dl *d, enum dl_fail kind, const char *fmt, ...)
{
	va_list ap;

	if (d->state != DL_WAIT)
		return;
	d->state = DL_FAILED;
	d->fail = kind;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
}

/* The server broke the rules of §9: fatal for the session. */
static void dl_violation(struct dl *d, const char *what)
{
	dl_failf(d, DLF_PROTOCOL, "%s", what);
	d->g->tp->abort(d->g);
}

/* Tell the owner we give up on this request (§9.6). */
static void dl_cancel(struct dl *d, const char *why)
{
	struct getrun *g = d->g;
	json_t *p;

	if (d->id[0] == '\0')
		return;
	p = json_pack("{s:s,s:s}", "code", "cancelled", "message", why);
	if (p != NULL)
		g->tp->cancel(g, d, p);
	json_decref(p);
}

static int dead_id(const struct getrun *g, const char *id)
{
	unsigned k;

	for (k = 0; k < GET_DEAD && k < g->ndead; k++)
		if (strcmp(g->dead_id[k], id) == 0)
			return 1;
	return 0;
}

static int dead_stream(const struct getrun *g, uint32_t stream)
{
	unsigned k;

	for (k = 0; k < GET_DEAD && k < g->ndead; k++)
		if (stream != 0 && g->dead_stream[k] == stream)
			return 1;
	return 0;
}

static void dl_local_error(struct dl *d, int err, const char *doing)
{
	d->lerr = err;
	if (err == ENOSPC || err == EDQUOT)
		dl_failf(d, DLF_LOCAL, "local disk full %s %s", doing, d->part);
	else
		dl_failf(d, DLF_LOCAL, "%s %s: %s", doing, d->part, strerror(err));
	dl_cancel(d, "the client cannot write the file");
}

/* ---- the end ------------------------------------------------------------------ */

static void fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static void dl_complete(struct dl *d)
{
	uint8_t dig[32];
	char hex[65];

	if (ppcp_sha256_final(d->h, dig) != 0) {
		dl_failf(d, DLF_LOCAL, "SHA-256 failed");
		return;
	}
	xfer_hex(dig, hex);
	if (strcmp(hex, d->sha) != 0) {
		dl_discard(d);
		dl_failf(d, DLF_CHANGED, "the SHA-256 of what arrived differs from the server's");
		return;
	}
	if (fsync(d->fd) != 0) {
		dl_local_error(d, errno, "flushing");
		return;
	}
	if (close(d->fd) != 0) {
		d->fd = -1;
		dl_local_error(d, errno, "closing");
		return;
	}
	d->fd = -1;
	if (rename(d->part, d->local) != 0) {
		int e = errno;
		d->lerr = e;
		dl_failf(d, DLF_LOCAL, "cannot rename %s to %s: %s", d->part, d->local,
			 strerror(e));
		return;
	}
	unlink(d->side);
	fsync_dir_of(d->local);
	d->state = DL_DONE;
}

/* ---- the answer ------------------------------------------------------------------ */

static int dl_open_part(struct dl *d)
{
	d->fd = open(d->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (d->fd < 0) {
		dl_local_error(d, errno, "creating");
		return -1;
	}
	d->created = 1;
	d->ckpt = 0;
	/* The sidecar from the start: a resume needs the head's identity. */
	if (sidecar_write(d, 0) != 0) {
		int e = errno;
		dl_discard(d);
		dl_local_error(d, e, "writing the sidecar of");
		return -1;
	}
	return 0;
}

static void dl_head(struct dl *d, const json_t *p)
{
	struct getrun *g = d->g;
	const char *sha = json_string_value(json_object_get(p, "sha256"));
	const json_t *bin = json_object_get(p, "binary");
	uint64_t off, len;
	int binary;

	if (xfer_get_u53(p, "size", &d->size) != 0 || !xfer_is_sha256_hex(sha) ||
	    !json_is_integer(json_object_get(p, "mtime")) ||
	    xfer_get_u53(p, "offset", &off) != 0 || xfer_get_u53(p, "length", &len) != 0) {
		dl_violation(d, "its head lacks size, sha256, mtime, offset or length (PROTOCOL.md "
				"§9.2)");
		return;
	}
	if (bin != NULL && !json_is_boolean(bin)) {
		dl_violation(d, "its head has a \"binary\" that is not a boolean");
		return;
	}
	binary = json_is_true(bin);
	if (off != d->want_off || off > d->size ||
	    len != (d->probe ? 0 : d->size - d->want_off)) {
		dl_violation(d, "its head does not answer the range we asked for");
		return;
	}
	if (binary && (!g->binary || d->probe)) {
		dl_violation(d, "it chose binary-data records we did not ask for");
		return;
	}
	if (binary && xfer_check_stream(p, &d->stream, g->agent != NULL) != 0) {
		dl_violation(d, g->agent != NULL
					? "its head names no valid stream (an odd number from 1 for "
					  "an agent, PROTOCOL.md §9.5)"
					: "its head names no valid stream (an even number from 2, "
					  "PROTOCOL.md §9.5)");
		return;
	}
	if (d->want_off > 0 &&
	    (d->size != d->expect_size || strcmp(sha, d->sha) != 0 ||
	     json_integer_value(json_object_get(p, "mtime")) != d->mtime)) {
		/* It changed between the probe and this request. */
		d->have_head = 1;
		d->binary = binary;
		dl_cancel(d, "the file changed");
		dl_discard(d);
		dl_failf(d, DLF_CHANGED, "its size, sha256 or mtime changed since the probe");
		return;
	}
	snprintf(d->sha, sizeof(d->sha), "%s", sha);
	d->mtime = (int64_t)json_integer_value(json_object_get(p, "mtime"));
	d->binary = binary;
	d->off = d->next = off;
	d->end = off + len;
	d->have_head = 1;
	if (d->probe) {
		d->state = DL_DONE;
		return;
	}
	if (d->want_off == 0 && dl_open_part(d) != 0)
		return;
	{
		char base[64];
		progress_start(&d->pr, g->cli, xfer_base_name(d->local, base, sizeof(base)),
			       d->size, d->off);
	}
	if (d->next == d->end)
		dl_complete(d); /* nothing follows the head (§9.2) */
}

/* Bytes at offset off, from a binary record or a FILE_CHUNK. */
static void dl_data(struct dl *d, uint64_t off, const uint8_t *data, size_t n, int last)
{
	if (!d->have_head || d->state != DL_WAIT) {
		dl_violation(d, "it sent data before its head or after the end");
		return;
	}
	if (off != d->next) {
		dl_violation(d, "it sent data out of order (not at the next offset)");
		return;
	}
	if (n > d->end - d->next) {
		dl_violation(d, "it sent data past the range it announced");
		return;
	}
	if (last != (off + n == d->end) && (last || n == 0)) {
		/* LAST exactly on the record that ends the range; an empty
		 * record only as that LAST one. */
		dl_violation(d, last ? "it marked a chunk last before the end of the range"
				     : "it sent an empty chunk that is not the last");
		return;
	}
	while (n > 0) {
		ssize_t w = write(d->fd, data, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			/* Keep only whole records: cut what this one left. */
			(void)ftruncate(d->fd, (off_t)d->next);
			dl_local_error(d, e, "writing");
			return;
		}
		if (ppcp_sha256_update(d->h, data, (size_t)w) != 0) {
			dl_failf(d, DLF_LOCAL, "SHA-256 failed");
			return;
		}
		data += w;
		n -= (size_t)w;
		d->next += (uint64_t)w;
	}
	progress_update(&d->pr, d->next);
	if (d->next - d->ckpt >= XFER_CHECKPOINT && dl_checkpoint(d) != 0) {
		dl_local_error(d, errno, "flushing");
		return;
	}
	if (last)
		dl_complete(d);
}

static void dl_chunk(struct dl *d, const json_t *p)
{
	struct getrun *g = d->g;
	const char *b64 = json_string_value(json_object_get(p, "data"));
	const json_t *lastv = json_object_get(p, "last");
	uint64_t off;
	size_t len;
	long n;

	if (d->binary) {
		dl_violation(d, "it sent FILE_CHUNK data on a binary transfer");
		return;
	}
	if (xfer_get_u53(p, "offset", &off) != 0 || b64 == NULL ||
	    (lastv != NULL && !json_is_boolean(lastv))) {
		dl_violation(d, "a FILE_CHUNK lacks offset or data (PROTOCOL.md §9.2)");
		return;
	}
	len = strlen(b64);
	if (len / 4 * 3 + 3 > g->b64cap) {
		dl_violation(d, "a FILE_CHUNK is larger than any record");
		return;
	}
	n = ppcp__b64_decode(g->b64buf, g->b64cap, b64, len);
	if (n < 0) {
		dl_violation(d, "a FILE_CHUNK holds invalid base64");
		return;
	}
	dl_data(d, off, g->b64buf, (size_t)n, json_is_true(lastv));
}

static void dl_list_chunk(struct dl *d, const json_t *p)
{
	const json_t *e = json_object_get(p, "entries");
	const json_t *lastv = json_object_get(p, "last");

	if (!json_is_array(e) || (lastv != NULL && !json_is_boolean(lastv))) {
		dl_violation(d, "a listing lacks its entries (PROTOCOL.md §9.4)");
		return;
	}
	if (json_array_size(d->entries) + json_array_size(e) > GET_MAX_ENTRIES) {
		dl_violation(d, "a listing has too many entries");
		return;
	}
	json_array_extend(d->entries, (json_t *)e);
	if (json_is_true(lastv))
		d->state = DL_DONE;
}

/* The owner's answer to the current request: an ERROR or a FILE_CHUNK. */
static void dl_on_message(struct getrun *g, const ppcp_msg *m)
{
	struct dl *d = g->cur;

	if (m->type == PPCP_MSG_ERROR) {
		const char *code = json_string_value(json_object_get(m->payload, "code"));
		const char *msg = json_string_value(json_object_get(m->payload, "message"));

		snprintf(d->code, sizeof(d->code), "%s", code ? code : "?");
		if (code != NULL && strcmp(code, "changed") == 0) {
			dl_discard(d);
			dl_failf(d, DLF_CHANGED, "%s", msg ? msg : "the server says so");
		} else {
			dl_failf(d, DLF_REFUSED, "%s", msg ? msg : "no reason given");
		}
		return;
	}
	if (d->list)
		dl_list_chunk(d, m->payload);
	else if (!d->have_head)
		dl_head(d, m->payload);
	else
		dl_chunk(d, m->payload);
}

/* A binary-data record of the current request (§9.5), already parsed. */
static void dl_on_binary(struct getrun *g, uint32_t stream, uint64_t off, int last,
			 const uint8_t *data, size_t n)
{
	struct dl *d = g->cur;

	if (d == NULL || d->state != DL_WAIT || !d->have_head || !d->binary ||
	    stream != d->stream) {
		if (d != NULL)
			dl_violation(d, "it sent a binary-data record for an unknown stream");
		g->tp->abort(g);
		return;
	}
	dl_data(d, off, data, n, last);
}

static void get_on_message(struct sess *s, const ppcp_msg *m)
{
	struct getrun *g = s->user;
	struct dl *d = g->cur;

	if (m->id == NULL || (m->type != PPCP_MSG_FILE_CHUNK && m->type != PPCP_MSG_ERROR))
		return;
	if (d == NULL || d->state != DL_WAIT || strcmp(m->id, d->id) != 0) {
		if (dead_id(g, m->id) || (d != NULL && strcmp(m->id, d->id) == 0))
			return; /* late data of a request we ended */
		if (m->type == PPCP_MSG_FILE_CHUNK) {
			/* §8.6: an unsolicited FILE_CHUNK gets ERROR unauthorized. */
			json_t *p = json_pack("{s:s,s:s}", "code", "unauthorized", "message",
					      "no such request of ours");
			if (p != NULL)
				(void)sess_reply(s, PPCP_MSG_ERROR, m->id, p);
			json_decref(p);
		} else {
			const char *msg = json_string_value(json_object_get(m->payload, "message"));
			cli_info(g->cli, 2, "ERROR about %s: %s", m->id, msg != NULL ? msg : "?");
		}
		return;
	}
	dl_on_message(g, m);
}

static void get_on_binary(struct sess *s, const uint8_t *rec, size_t len)
{
	struct getrun *g = s->user;
	struct dl *d = g->cur;
	uint32_t stream;
	uint64_t off;
	const uint8_t *data;
	size_t n;
	int last;

	if (ppcp_file_data_parse(rec, len, &stream, &off, &last, &data, &n) != 0) {
		if (d != NULL)
			dl_violation(d, "a binary-data record is malformed");
		sess_abort(s, PPCP_ERR_BAD_MESSAGE);
		return;
	}
	if (dead_stream(g, stream))
		return; /* late data of a request we ended */
	dl_on_binary(g, stream, off, last, data, n);
}

/* ---- running one request ------------------------------------------------------- */

static int dl_stop(struct sess_loop *L)
{
	struct getrun *g = L->user;

	return g->sig != 0 || g->cur->state != DL_WAIT || g->s.over;
}

static void dl_tick(struct sess_loop *L, uint64_t now)
{
	struct getrun *g = L->user;
	struct sess *s = &g->s;
	uint64_t allow;

	L->wake = UINT64_MAX;
	if (g->rate == 0)
		return;
	allow = pace_allowed(&g->pace, now, s->rx_bytes);
	if (allow == 0) {
		s->rx_paused = 1;
		L->wake = pace_when(&g->pace, s->rx_bytes);
		if (L->wake <= now)
			L->wake = now + 1;
	} else {
		s->rx_paused = 0;
		s->rx_max = allow < SIZE_MAX ? (size_t)allow : SIZE_MAX;
	}
}

static void dl_signal(struct sess_loop *L, int sig)
{
	struct getrun *g = L->user;

	g->sig = sig;
}

/* Send the request of d and run the transport until it is answered. */
static void dl_run(struct getrun *g, struct dl *d)
{
	json_t *p;

	if (d->list)
		p = json_pack("{s:s,s:s}", "op", "list", "path", d->rpath);
	else if (d->probe)
		p = json_pack("{s:s,s:I,s:I,s:b}", "path", d->rpath, "offset", (json_int_t)0,
			      "length", (json_int_t)0, "binary", 0);
	else
		p = json_pack("{s:s,s:I,s:b}", "path", d->rpath, "offset",
			      (json_int_t)d->want_off, "binary", g->binary);
	if (p == NULL) {
		dl_failf(d, DLF_LOCAL, "the path is not valid UTF-8");
		return;
	}
	g->tp->run(g, d, p);
	json_decref(p);
	g->cur = NULL;
}

/* ---- transport: a session with a server ------------------------------------------ */

static void sess_tp_run(struct getrun *g, struct dl *d, json_t *p)
{
	struct sess *v[1] = { &g->s };
	struct sess_loop L;

	if (sess_send(&g->s, PPCP_MSG_FILE_REQUEST, p, d->id) < 0)
		return; /* the session's error is reported by the caller */
	g->cur = d;
	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.stop = dl_stop;
	L.on_tick = dl_tick;
	L.on_signal = dl_signal;
	L.deadline = UINT64_MAX;
	L.user = g;
	(void)sess_loop_run(&L);
	g->s.rx_paused = 0;
}

/* ERROR cancelled, and drop what the server already sent for it. */
static void sess_tp_cancel(struct getrun *g, struct dl *d, json_t *err)
{
	unsigned k = g->ndead++ % GET_DEAD;

	snprintf(g->dead_id[k], sizeof(g->dead_id[k]), "%s", d->id);
	g->dead_stream[k] = d->have_head && d->binary ? d->stream : 0;
	(void)sess_reply(&g->s, PPCP_MSG_ERROR, d->id, err);
}

static void sess_tp_abort(struct getrun *g)
{
	sess_abort(&g->s, PPCP_ERR_BAD_MESSAGE);
}

static struct sess *sess_tp_pump(struct getrun *g)
{
	return &g->s;
}

static void sess_tp_why(struct getrun *g, char *buf, size_t len)
{
	if (g->s.peer_bye)
		snprintf(buf, len, "the server ended the session before the end of the file "
				   "(shutting down?)");
	else
		snprintf(buf, len, "connection to %s lost: %s", g->s.server_id,
			 sess_strerror(&g->s, g->s.err ? g->s.err : PPCP_ERR_TRUNCATED));
}

static const struct get_transport sess_tp = {
	sess_tp_run, sess_tp_cancel, sess_tp_abort, sess_tp_pump, sess_tp_why,
};

/* ---- transport: an agent, through the controller (docs/CONTROL.md) --------------- */

enum { GET_CTL_MAX_LINE = 64 * 1024 * 1024 };

/* Room to decode n bytes of base64. */
static int ctl_b64_room(struct getrun *g, size_t n)
{
	size_t need = n / 4 * 3 + 4;
	uint8_t *b;

	if (need <= g->b64cap)
		return 0;
	b = realloc(g->b64buf, need);
	if (b == NULL)
		return -1;
	g->b64buf = b;
	g->b64cap = need;
	return 0;
}

static void ctl_tp_end(struct getrun *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The relay ended before the answer: why, once; nothing more will come. */
static void ctl_tp_end(struct getrun *g, const char *fmt, ...)
{
	va_list ap;

	if (g->ctl_why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(g->ctl_why, sizeof(g->ctl_why), fmt, ap);
		va_end(ap);
	}
	if (g->ctl_fd >= 0)
		close(g->ctl_fd);
	g->ctl_fd = -1;
	g->s.over = 1; /* -r: the next request would fail the same way */
}

/* One line of the controller's answer. */
static void ctl_tp_line(struct getrun *g, struct dl *d, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *err = json_string_value(json_object_get(j, "error"));

	if (j == NULL) {
		ctl_tp_end(g, "the controller sent a line that is not JSON (a bug: report it)");
	} else if (err != NULL) {
		ctl_tp_end(g, "the controller refused: %s", err);
	} else if (json_is_true(json_object_get(j, "done"))) {
		ctl_tp_end(g, "the controller ended the answer early");
	} else if (json_is_array(json_object_get(j, "agents"))) {
		if (json_array_size(json_object_get(j, "agents")) == 0)
			ctl_tp_end(g, "no agent '%s' is connected to this controller ('ppcp agents' "
				      "lists them)",
				   g->agent);
	} else if (type == NULL) {
		/* something newer than us: ignored */
	} else if (strcmp(type, "lost") == 0) {
		ctl_tp_end(g, "the agent '%s' lost its session with the controller", g->agent);
	} else if (strcmp(type, "DATA") == 0) {
		const char *b64 = json_string_value(json_object_get(j, "data"));
		const json_t *lastv = json_object_get(j, "last");
		uint64_t stream, off;
		long n;

		if (b64 == NULL || !json_is_boolean(lastv) ||
		    xfer_get_u53(j, "stream", &stream) != 0 || stream > UINT32_MAX ||
		    xfer_get_u53(j, "offset", &off) != 0 || ctl_b64_room(g, strlen(b64)) != 0 ||
		    (n = ppcp__b64_decode(g->b64buf, g->b64cap, b64, strlen(b64))) < 0)
			dl_violation(d, "a relayed binary-data record is malformed");
		else
			dl_on_binary(g, (uint32_t)stream, off, json_is_true(lastv), g->b64buf,
				     (size_t)n);
	} else if (strcmp(type, "FILE_CHUNK") == 0 || strcmp(type, "ERROR") == 0) {
		const char *b64 = json_string_value(json_object_get(json_object_get(j, "p"), "data"));
		ppcp_msg m;

		memset(&m, 0, sizeof(m));
		m.type = ppcp_msg_type_from_name(type);
		m.type_name = type;
		m.id = d->id;
		m.payload = json_object_get(j, "p");
		if (!json_is_object(m.payload))
			dl_violation(d, "a relayed message has no payload");
		else if (b64 != NULL && ctl_b64_room(g, strlen(b64)) != 0)
			dl_failf(d, DLF_LOCAL, "out of memory");
		else
			dl_on_message(g, &m);
	}
	json_decref(j);
}

/* One request per control connection: {"op":"file","target":ID,"p":...}. */
static void ctl_tp_run(struct getrun *g, struct dl *d, json_t *p)
{
	json_t *req;
	FILE *f;

	g->ctl_why[0] = '\0';
	g->llen = 0;
	snprintf(d->id, sizeof(d->id), "relayed"); /* the controller picks the real one */
	req = json_pack("{s:s,s:s,s:O}", "op", "file", "target", g->agent, "p", p);
	if (ctl_open(g->cli, req, &f) != 0) {
		json_decref(req);
		g->ctl_said = 1; /* ctl_open printed why */
		ctl_tp_end(g, "the controller's control socket cannot be used");
		return;
	}
	json_decref(req);
	g->ctl_fd = dup(fileno(f));
	fclose(f); /* read with read(2) and poll(2): a signal must not wait */
	if (g->ctl_fd < 0) {
		ctl_tp_end(g, "dup: %s", strerror(errno));
		return;
	}
	g->cur = d;
	while (g->ctl_fd >= 0 && d->state == DL_WAIT) {
		struct pollfd pfd = { g->ctl_fd, POLLIN, 0 };
		uint64_t allow = UINT64_MAX;
		int wait_ms = 1000;
		char *nl;
		ssize_t r;

		if (cli_signal != 0) {
			g->sig = cli_signal;
			cli_signal = 0;
			break;
		}
		/* --limit-rate: not reading makes the controller stop reading
		 * the agent (docs/CONTROL.md), so the agent waits too. */
		if (g->rate > 0) {
			uint64_t now = cli_now_ms();

			allow = pace_allowed(&g->pace, now, g->ctl_rx);
			if (allow == 0) {
				/* Wait, without polling the socket: its
				 * hang-up would wake us at once. */
				uint64_t when = pace_when(&g->pace, g->ctl_rx);
				wait_ms = when > now ? (when - now > 1000 ? 1000 : (int)(when - now)) : 1;
				(void)poll(NULL, 0, wait_ms);
				continue;
			}
		}
		if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR) {
			ctl_tp_end(g, "poll: %s", strerror(errno));
			break;
		}
		if (pfd.revents == 0)
			continue;
		if (g->lcap - g->llen < 65536) {
			size_t cap = g->lcap < 131072 ? 131072 : g->lcap * 2;
			char *b;

			if (cap > GET_CTL_MAX_LINE || (b = realloc(g->lbuf, cap)) == NULL) {
				ctl_tp_end(g, "the controller sent a line of more than %d bytes",
					   GET_CTL_MAX_LINE / 2);
				break;
			}
			g->lbuf = b;
			g->lcap = cap;
		}
		r = read(g->ctl_fd, g->lbuf + g->llen,
			 allow < g->lcap - g->llen ? (size_t)allow : g->lcap - g->llen);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r > 0)
			g->ctl_rx += (uint64_t)r;
		if (r <= 0) {
			ctl_tp_end(g, "the controller closed the control socket before the end of "
				      "the answer%s%s",
				   r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			break;
		}
		g->llen += (size_t)r;
		while (g->ctl_fd >= 0 && d->state == DL_WAIT &&
		       (nl = memchr(g->lbuf, '\n', g->llen)) != NULL) {
			size_t n = (size_t)(nl - g->lbuf);

			ctl_tp_line(g, d, g->lbuf, n);
			memmove(g->lbuf, nl + 1, g->llen - n - 1);
			g->llen -= n + 1;
		}
	}
	/* Answered or not: closing the connection makes the controller cancel
	 * what is still running for it. */
	if (g->ctl_fd >= 0)
		close(g->ctl_fd);
	g->ctl_fd = -1;
}

static void ctl_tp_cancel(struct getrun *g, struct dl *d, json_t *err)
{
	(void)d;
	(void)err;
	if (g->ctl_fd >= 0)
		close(g->ctl_fd); /* the controller sends the agent ERROR cancelled */
	g->ctl_fd = -1;
}

static void ctl_tp_abort(struct getrun *g)
{
	ctl_tp_cancel(g, NULL, NULL);
}

static struct sess *ctl_tp_pump(struct getrun *g)
{
	(void)g;
	return NULL;
}

static void ctl_tp_why(struct getrun *g, char *buf, size_t len)
{
	snprintf(buf, len, "%s", g->ctl_why[0] != '\0' ? g->ctl_why : "the relay ended");
}

static const struct get_transport ctl_tp = {
	ctl_tp_run, ctl_tp_cancel, ctl_tp_abort, ctl_tp_pump, ctl_tp_why,
};

/* ---- one file ----------------------------------------------------------------- */

/* The session ended (or we were interrupted) in the middle: keep what is
 * on disk for a resume and say how. */
static int dl_interrupted(struct getrun *g, struct dl *d, const char *target)
{
	struct cli *cli = g->cli;
	int kept = d->fd >= 0 && dl_checkpoint(d) == 0;
	char how[PATH_MAX + 256];

	if (d->fd >= 0)
		snprintf(how, sizeof(how), "%s holds %llu of %llu bytes: run the same command "
					   "again to resume",
			 d->part, (unsigned long long)(kept ? d->next : d->ckpt),
			 (unsigned long long)d->size);
	else
		snprintf(how, sizeof(how), "run the same command again");
	if (g->sig != 0) {
		dl_cancel(d, "interrupted");
		cli_err(cli, "get %s:%s: interrupted; %s", target, d->rpath, how);
		return 128 + g->sig;
	}
	{
		char why[600];

		if (g->ctl_said)
			return CLI_EXIT_FAIL; /* one line: it was printed */
		g->tp->why(g, why, sizeof(why));
		cli_err(cli, "get %s:%s: %s; %s", target, d->rpath, why, how);
	}
	return CLI_EXIT_FAIL;
}

static int dl_report(struct getrun *g, struct dl *d, const char *target)
{
	struct cli *cli = g->cli;

	switch (d->fail) {
	case DLF_REFUSED:
		cli_err(cli, "get %s:%s: the %s refused: %s (%s); %s", target, d->rpath,
			g->agent != NULL ? "agent" : "server", d->msg, d->code,
			xfer_advice(d->code, 0, g->agent != NULL));
		break;
	case DLF_CHANGED:
		cli_err(cli, "get %s:%s: the file changed during the transfer (%s); the partial "
			     "copy was removed: run the command again when the file no longer "
			     "changes",
			target, d->rpath, d->msg);
		break;
	case DLF_LOCAL:
		if (d->lerr == ENOSPC || d->lerr == EDQUOT)
			cli_err(cli, "get %s:%s: %s; %s holds %llu bytes: free some space and run "
				     "the same command again to resume",
				target, d->rpath, d->msg, d->part, (unsigned long long)d->ckpt);
		else
			cli_err(cli, "get %s:%s: %s; check the local directory and run the same "
				     "command again",
				target, d->rpath, d->msg);
		break;
	case DLF_PROTOCOL:
		cli_err(cli, "get %s:%s: the %s broke the protocol: %s; %s (a bug in the %s: "
			     "report it)",
			target, d->rpath, g->agent != NULL ? "agent" : "server", d->msg,
			g->agent != NULL ? "the request was cancelled" : "the session was closed",
			g->agent != NULL ? "agent or the controller" : "server");
		break;
	default:
		break;
	}
	return CLI_EXIT_FAIL;
}

/* Is there a partial copy of this very source, and how much of it counts? */
static uint64_t dl_find_partial(struct getrun *g, struct dl *d, struct sidecar *sc)
{
	struct stat st;

	if (sidecar_read(d->side, sc) != 0)
		return 0;
	if (strcmp(sc->server_id, g->s.server_id) != 0 || strcmp(sc->path, d->rpath) != 0) {
		cli_warn(g->cli, "%s is the partial download of %s:%s, not of this file: starting "
				 "over",
			 d->part, sc->server_id, sc->path);
		return 0;
	}
	if (lstat(d->part, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < sc->verified) {
		cli_info(g->cli, 1, "%s is missing or shorter than its sidecar says: starting "
				    "over",
			 d->part);
		return 0;
	}
	return sc->verified;
}

/* Ask the head alone and compare it with the sidecar: 1 same file, 0
 * changed, -1 the request failed (d says why). */
static int dl_same_source(struct getrun *g, struct dl *d, const struct sidecar *sc)
{
	struct dl probe;

	memset(&probe, 0, sizeof(probe));
	probe.g = g;
	probe.rpath = d->rpath;
	probe.probe = 1;
	probe.fd = -1;
	dl_run(g, &probe);
	if (probe.state != DL_DONE) {
		d->fail = probe.fail;
		d->lerr = probe.lerr;
		d->state = probe.state;
		snprintf(d->code, sizeof(d->code), "%s", probe.code);
		snprintf(d->msg, sizeof(d->msg), "%s", probe.msg);
		return -1;
	}
	return probe.size == sc->size && probe.mtime == sc->mtime &&
	       strcmp(probe.sha, sc->sha) == 0;
}

/* Reopen .part, cut it to the verified bytes, hash them: 0 or -1. */
static int dl_reopen(struct getrun *g, struct dl *d, uint64_t verified)
{
	char label[64 + 16], base[64];
	int ret;

	d->fd = open(d->part, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (d->fd < 0)
		return -1;
	if (ftruncate(d->fd, (off_t)verified) != 0 ||
	    lseek(d->fd, (off_t)verified, SEEK_SET) != (off_t)verified)
		goto fail;
	snprintf(label, sizeof(label), "checking %s", xfer_base_name(d->part, base, sizeof(base)));
	ret = xfer_hash_fd(g->cli, d->fd, verified, d->h, g->tp->pump(g), label);
	if (ret == -EINTR) {
		g->sig = cli_signal;
		cli_signal = 0;
		goto fail;
	}
	if (ret != 0) {
		errno = -ret;
		goto fail;
	}
	d->ckpt = verified;
	return 0;
fail:
	close(d->fd);
	d->fd = -1;
	return -1;
}

/* Download rpath into local (already resolved: the final file name).
 * Returns 0, CLI_EXIT_FAIL, or 128+N after a signal. */
static int get_one(struct getrun *g, const char *target, const char *rpath, const char *local)
{
	struct cli *cli = g->cli;
	struct sidecar sc;
	struct dl d;
	uint64_t verified;
	int code = CLI_EXIT_FAIL;

	memset(&d, 0, sizeof(d));
	d.g = g;
	d.rpath = rpath;
	d.fd = -1;
	if ((size_t)snprintf(d.local, sizeof(d.local), "%s", local) >= sizeof(d.local) ||
	    (size_t)snprintf(d.part, sizeof(d.part), "%s.part", local) >= sizeof(d.part) ||
	    (size_t)snprintf(d.side, sizeof(d.side), "%s.part.ppcp", local) >= sizeof(d.side)) {
		cli_err(cli, "get %s:%s: the local name %s is too long", target, rpath, local);
		return CLI_EXIT_FAIL;
	}
	if (ppcp_sha256_new(&d.h) != 0) {
		cli_err(cli, "out of memory");
		return CLI_EXIT_FAIL;
	}

	verified = dl_find_partial(g, &d, &sc);
	if (verified > 0) {
		int same = dl_same_source(g, &d, &sc);

		if (same < 0)
			goto ended;
		if (same == 0) {
			cli_warn(cli, "%s:%s changed on the server since the partial download (size, "
				      "sha256 or mtime differ): starting over",
				 target, rpath);
			verified = 0;
		} else if (dl_reopen(g, &d, verified) != 0) {
			if (g->sig != 0) {
				ppcp_sha256_free(d.h);
				return 128 + g->sig;
			}
			cli_warn(cli, "cannot reuse %s (%s): starting over", d.part, strerror(errno));
			ppcp_sha256_free(d.h);
			if (ppcp_sha256_new(&d.h) != 0) {
				cli_err(cli, "out of memory");
				return CLI_EXIT_FAIL;
			}
			verified = 0;
		} else {
			/* The head is the sidecar's, checked by the probe
			 * and again when the request is answered. */
			d.size = d.expect_size = sc.size;
			d.mtime = sc.mtime;
			snprintf(d.sha, sizeof(d.sha), "%s", sc.sha);
			cli_info(cli, 1, "resuming at %llu bytes of %llu",
				 (unsigned long long)verified, (unsigned long long)sc.size);
		}
	}
	d.want_off = verified;
	dl_run(g, &d);
ended:
	if (d.state == DL_DONE) {
		progress_end(&d.pr, 1);
		cli_info(cli, 1, "%s:%s -> %s: %llu bytes, sha256 %s", target, rpath, local,
			 (unsigned long long)d.size, d.sha);
		code = 0;
	} else if (d.state == DL_FAILED) {
		progress_end(&d.pr, 0);
		if (d.fail == DLF_LOCAL && d.fd >= 0 && d.lerr != 0)
			(void)dl_checkpoint(&d); /* keep what is whole for a resume */
		code = dl_report(g, &d, target);
	} else {
		progress_end(&d.pr, 0);
		code = dl_interrupted(g, &d, target);
	}
	if (d.fd >= 0)
		close(d.fd);
	ppcp_sha256_free(d.h);
	return code;
}

/* ---- directories (-r) ----------------------------------------------------------- */

static int valid_entry_name(const char *n)
{
	return n != NULL && n[0] != '\0' && strchr(n, '/') == NULL && strcmp(n, ".") != 0 &&
	       strcmp(n, "..") != 0 && strlen(n) <= 255;
}

static void join(char *out, size_t len, const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (strcmp(dir, ".") == 0)
		snprintf(out, len, "%s", name);
	else if (n > 0 && dir[n - 1] == '/')
		snprintf(out, len, "%s%s", dir, name);
	else
		snprintf(out, len, "%s/%s", dir, name);
}

static int get_tree(struct getrun *g, const char *target, const char *rpath, const char *ldir,
		    int depth)
{
	struct cli *cli = g->cli;
	struct stat st;
	struct dl d;
	json_t *e;
	size_t i;
	int worst = 0;

	if (depth > XFER_MAX_DEPTH) {
		cli_err(cli, "get %s:%s: more than %d directory levels: not followed", target,
			rpath, XFER_MAX_DEPTH);
		g->failed++;
		return CLI_EXIT_FAIL;
	}
	memset(&d, 0, sizeof(d));
	d.g = g;
	d.rpath = rpath;
	d.list = 1;
	d.fd = -1;
	d.entries = json_array();
	if (d.entries == NULL)
		return CLI_EXIT_FAIL;
	dl_run(g, &d);
	if (d.state != DL_DONE) {
		int code = d.state == DL_FAILED ? dl_report(g, &d, target)
						: dl_interrupted(g, &d, target);
		json_decref(d.entries);
		g->failed++;
		return code;
	}
	if (lstat(ldir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			cli_err(cli, "get %s:%s: %s exists and is not a directory; move it away or "
				     "name another LOCAL",
				target, rpath, ldir);
			json_decref(d.entries);
			g->failed++;
			return CLI_EXIT_FAIL;
		}
	} else if (mkdir(ldir, 0777) != 0) {
		cli_err(cli, "get %s:%s: cannot create the directory %s: %s", target, rpath, ldir,
			strerror(errno));
		json_decref(d.entries);
		g->failed++;
		return CLI_EXIT_FAIL;
	}
	json_array_foreach(d.entries, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *type = json_string_value(json_object_get(e, "type"));
		char r[XFER_MAX_PATH + 1], l[PATH_MAX];
		int code = 0;

		if (!valid_entry_name(name) || type == NULL) {
			/* §9.4: a name is one path component.  Never followed. */
			cli_err(cli, "get %s:%s: the server listed an entry with an invalid name or "
				     "no type (a bug in the server: report it); not copied",
				target, rpath);
			g->failed++;
			worst = CLI_EXIT_FAIL;
			continue;
		}
		join(r, sizeof(r), rpath, name);
		join(l, sizeof(l), ldir, name);
		if (strlen(r) > XFER_MAX_PATH || strlen(l) + 16 >= sizeof(l)) {
			cli_warn(cli, "get %s:%s: path too long: skipped", target, r);
			g->skipped++;
			continue;
		}
		if (strcmp(type, "file") == 0) {
			if (lstat(l, &st) == 0 && !S_ISREG(st.st_mode)) {
				cli_err(cli, "get %s:%s: %s exists and is not a regular file: skipped",
					target, r, l);
				code = CLI_EXIT_FAIL;
			} else {
				code = get_one(g, target, r, l);
			}
			if (code == 0)
				g->copied++;
		} else if (strcmp(type, "dir") == 0) {
			code = get_tree(g, target, r, l, depth + 1);
		} else {
			cli_warn(cli, "get %s:%s: not a regular file or directory (a symbolic link or "
				      "a special file): skipped",
				 target, r);
			g->skipped++;
			continue;
		}
		if (code != 0 && code != CLI_EXIT_FAIL) {
			worst = code; /* a signal: stop */
			break;
		}
		if (code != 0) {
			if (strcmp(type, "file") == 0)
				g->failed++;
			worst = CLI_EXIT_FAIL;
			if (g->s.over)
				break; /* the session is gone: nothing more can come */
		}
	}
	json_decref(d.entries);
	return worst;
}

/* ---- the subcommand ------------------------------------------------------------- */

struct get_opts {
	int recursive;
	int no_binary;
	uint64_t rate;
};

static int get_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct get_opts *o = user;

	switch (opt) {
	case 'r':
		o->recursive = 1;
		return 0;
	case 'B':
		o->no_binary = 1;
		return 0;
	case 'C':
		ctl_set_path(arg);
		return 0;
	case 'L':
		return xfer_opt_rate(cli, arg, &o->rate);
	}
	return -1;
}

static const struct option get_longopts[] = {
	{ "recursive", no_argument, NULL, 'r' },
	{ "no-binary", no_argument, NULL, 'B' },
	{ "limit-rate", required_argument, NULL, 'L' },
	{ "control", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 },
};

static const char get_synopsis[] =
	"get [-r] [--no-binary] [--limit-rate RATE] TARGET:PATH [LOCAL]\n"
	"       ppcp get [-r] [--no-binary] [--control PATH] @CLIENT_ID:PATH [LOCAL]   (on a "
	"controller)";

/* The local name: LOCAL, or inside LOCAL when it is a directory, or the
 * base name of PATH here.  0 or -1 (message printed). */
static int local_name(struct cli *cli, const char *rpath, const char *local, int recursive,
		      char *out, size_t len)
{
	char base[NAME_MAX + 1];
	struct stat st;

	xfer_base_name(rpath, base, sizeof(base));
	if (recursive && local != NULL && !valid_entry_name(base)) {
		/* get -r ID:. DIR: the root's entries go into DIR itself. */
		snprintf(out, len, "%s", local);
		return 0;
	}
	if (local != NULL && stat(local, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!valid_entry_name(base)) {
			cli_err(cli, "get: '%s' has no file name to use inside %s; give LOCAL as a "
				     "file name",
				rpath, local);
			return -1;
		}
		join(out, len, local, base);
		return 0;
	}
	if (local != NULL) {
		size_t n = strlen(local);
		if (n > 0 && local[n - 1] == '/') {
			cli_err(cli, "get: %s is not an existing directory", local);
			return -1;
		}
		snprintf(out, len, "%s", local);
		return 0;
	}
	if (!valid_entry_name(base)) {
		cli_err(cli, "get: '%s' has no file name to use here; give LOCAL", rpath);
		return -1;
	}
	snprintf(out, len, "%s", base);
	return 0;
}

/* The transfer itself, whatever the transport: 0, CLI_EXIT_FAIL or 128+N. */
static int get_run(struct getrun *g, const char *target, const char *rpath, const char *local)
{
	struct cli *cli = g->cli;
	int code;

	if (g->recursive) {
		code = get_tree(g, target, rpath, local, 0);
		if (code == CLI_EXIT_FAIL || g->skipped > 0)
			cli_warn(cli, "%u files copied, %u failed, %u skipped", g->copied, g->failed,
				 g->skipped);
		else if (code == 0)
			cli_info(cli, 1, "%u files copied", g->copied);
	} else {
		code = get_one(g, target, rpath, local);
	}
	return code;
}

/* get @CLIENT_ID:PATH: the controller relays the requests to its agent. */
static int get_agent(struct getrun *g, const char *target, const char *rpath, const char *local)
{
	int code;

	g->tp = &ctl_tp;
	g->agent = target + 1;
	if (g->agent[0] == '\0' || strcmp(g->agent, "all") == 0 ||
	    strlen(target) > PPCP_ID_MAX) {
		cli_err(g->cli, "get: '%s' does not name one agent: give @CLIENT_ID ('ppcp agents' "
				"lists them)",
			target);
		free(g);
		return CLI_EXIT_FAIL;
	}
	/* --limit-rate paces what is read from the controller (base64 lines:
	 * the data itself comes about 3/4 as fast). */
	pace_start(&g->pace, g->rate, cli_now_ms());
	/* The sidecar's source: "@ID" is never a server_id (PROTOCOL.md §10.3). */
	snprintf(g->s.server_id, sizeof(g->s.server_id), "%s", target);
	g->s.fd = -1;
	code = get_run(g, target, rpath, local);
	free(g->b64buf);
	free(g->lbuf);
	free(g);
	return code;
}

int cmd_get(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = { "r", get_longopts, get_opt, NULL, 0 };
	struct get_opts go;
	struct getrun *g;
	char target[256], local[PATH_MAX];
	const char *rpath;
	int i, code;

	memset(&go, 0, sizeof(go));
	o.user = &go;
	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || argc - i < 1 || argc - i > 2)
		return cli_usage(cli, get_synopsis);
	if (xfer_split_remote(argv[i], target, sizeof(target), &rpath) != 0) {
		cli_err(cli, "get: '%s' is not TARGET:PATH", argv[i]);
		return cli_usage(cli, get_synopsis);
	}
	if (strlen(rpath) > XFER_MAX_PATH) {
		cli_err(cli, "get: PATH is longer than %d bytes", XFER_MAX_PATH);
		return CLI_EXIT_FAIL;
	}
	if (local_name(cli, rpath, argc - i == 2 ? argv[i + 1] : NULL, go.recursive, local,
		       sizeof(local)) != 0)
		return CLI_EXIT_FAIL;

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return CLI_EXIT_FAIL;
	g->cli = cli;
	g->binary = !go.no_binary;
	g->recursive = go.recursive;
	g->rate = go.rate;
	g->ctl_fd = -1;
	cli_signals_catch();
	if (target[0] == '@')
		return get_agent(g, target, rpath, local);
	g->tp = &sess_tp;
	if (g->rate > 0) {
		/* A slow reader gets small records: one must arrive whole
		 * well within the idle timeout (45 s) of our engine, or the
		 * session would die at 1K/s with the server's 256 KiB ones. */
		uint64_t mr = g->rate * GET_RECORD_SECONDS;
		cli->max_record = mr < 4096 ? 4096 : mr > PPCP_DEFAULT_MAX_RECORD
							? PPCP_DEFAULT_MAX_RECORD
							: (uint32_t)mr;
	}
	if (resolve_connect(cli, target, &g->s) != 0) {
		free(g);
		return CLI_EXIT_FAIL;
	}
	if (cli_signal != 0) {
		sess_free(&g->s);
		free(g);
		return 128 + cli_signal;
	}
	g->s.user = g;
	g->s.on_message = get_on_message;
	g->s.on_binary = get_on_binary;
	g->b64cap = ppcp_conn_max_record(g->s.conn);
	g->b64buf = malloc(g->b64cap);
	if (g->b64buf == NULL) {
		sess_free(&g->s);
		free(g);
		return CLI_EXIT_FAIL;
	}
	pace_start(&g->pace, g->rate, cli_now_ms());
	code = get_run(g, target, rpath, local);
	if (code > 128 && code < CLI_EXIT_FAIL) {
		/* Interrupted: tell the server, briefly. */
		sess_close(&g->s);
		{
			struct sess *v[1] = { &g->s };
			struct sess_loop L;

			memset(&L, 0, sizeof(L));
			L.s = v;
			L.n = 1;
			L.in_fd = -1;
			L.deadline = cli_now_ms() + GET_CANCEL_FLUSH_MS;
			L.on_signal = dl_signal;
			L.user = g;
			(void)sess_loop_run(&L);
		}
	} else if (!g->s.over) {
		sess_bye(&g->s);
	}
	sess_free(&g->s);
	free(g->b64buf);
	free(g);
	return code;
}
