/*
 * put.c - `ppcp put [-p] [-r] [--no-binary] [--limit-rate RATE] LOCAL
 * TARGET:PATH`: upload a file (or, with -r, the regular files of a
 * directory tree) to the server's file root, where it accepts uploads
 * (PROTOCOL.md §9.3).
 *
 *  - The local file is hashed first (with a progress bar on a terminal):
 *    the request carries its size, SHA-256 and permission bits, and "mkdir"
 *    with -p or -r.  PATH ending in '/' names a directory: the file keeps
 *    its base name there.
 *  - The server's head says how many bytes of this very upload it already
 *    holds from an interrupted attempt ("offset"); we send the rest, as
 *    binary-data records on its stream (an even number: the TCP server owns
 *    the transfer, §9.5) or, with --no-binary, as FILE_CHUNK messages, the
 *    last one marked; when there is nothing left (an empty file, or all of
 *    it already there) nothing follows the head.  Only the final {"done": true, "size": N} means the
 *    server verified the SHA-256 and renamed the file into place.
 *  - Sending is paced: at most two records wait in the engine, and
 *    --limit-rate holds the next one back until its time.
 *  - A file that changes while it is sent is caught by the server's hash
 *    check (ERROR "changed"); a file that shrinks, by our read.
 *  - Ctrl-C tells the server (ERROR cancelled), says BYE and exits 130; the
 *    server keeps what it has, and the same command resumes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h" /* ppcp__b64_encode */

enum {
	PUT_BIN_CHUNK = 256 * 1024,   /* file bytes per binary-data record, at most */
	PUT_JSON_CHUNK = 192 * 1024,  /* file bytes per FILE_CHUNK (256 KiB of base64) */
	PUT_JSON_OVERHEAD = 512,      /* envelope and members around the base64 */
	PUT_FLUSH_MS = 1000,
};

enum ul_state { UL_WAIT, UL_DONE, UL_FAILED };
enum ul_fail { ULF_NONE, ULF_REFUSED, ULF_CHANGED, ULF_LOCAL, ULF_PROTOCOL };

struct putrun;

struct ul {
	struct putrun *r;
	const char *lpath;
	const char *rpath;
	int fd;
	uint64_t size;
	char sha[65];
	unsigned mode;
	char id[PPCP_ID_MAX + 1];
	enum ul_state state;
	enum ul_fail fail;
	char code[PPCP_ID_MAX + 1];
	char msg[1024];
	int have_head;
	uint64_t off, next;
	int binary;
	uint32_t stream;
	int sent_last;
	struct progress pr;
};

struct putrun {
	struct cli *cli;
	struct sess s;
	int connected;
	int binary;
	int mkdir;
	uint64_t rate;
	struct pace pace;
	uint64_t sent;     /* file bytes queued, all files: what --limit-rate counts */
	struct ul *cur;
	uint8_t *buf;      /* file bytes of one record */
	size_t bin_chunk, json_chunk;
	int sig;
	unsigned copied, failed, skipped;
	const char *owner; /* "server", or "agent" for @CLIENT_ID */
	const char *agent; /* @CLIENT_ID: the agent's id */
	int ctl_down;      /* @CLIENT_ID: the controller or the agent is gone */
};

static void ul_failf(struct ul *u, enum ul_fail kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void ul_failf(struct ul *u, enum ul_fail kind, const char *fmt, ...)
{
	va_list ap;

	if (u->state != UL_WAIT)
		return;
	u->state = UL_FAILED;
	u->fail = kind;
	va_start(ap, fmt);
	vsnprintf(u->msg, sizeof(u->msg), fmt, ap);
	va_end(ap);
}

static void ul_violation(struct ul *u, const char *what)
{
	ul_failf(u, ULF_PROTOCOL, "%s", what);
	sess_abort(&u->r->s, PPCP_ERR_BAD_MESSAGE);
}

/* Tell the server we stop this upload (§9.6). */
static void ul_cancel(struct ul *u, const char *why)
{
	json_t *p = json_pack("{s:s,s:s}", "code", "cancelled", "message", why);

	if (p != NULL && u->id[0] != '\0')
		(void)sess_reply(&u->r->s, PPCP_MSG_ERROR, u->id, p);
	json_decref(p);
}

/* ---- messages ---------------------------------------------------------------- */

static void ul_head(struct ul *u, const json_t *p)
{
	const json_t *bin = json_object_get(p, "binary");
	char base[64];

	if (xfer_get_u53(p, "offset", &u->off) != 0 || u->off > u->size) {
		ul_violation(u, "its head has no valid offset (0 to the size, PROTOCOL.md §9.3)");
		return;
	}
	if (bin != NULL && !json_is_boolean(bin)) {
		ul_violation(u, "its head has a \"binary\" that is not a boolean");
		return;
	}
	u->binary = json_is_true(bin);
	if (u->binary && !u->r->binary) {
		ul_violation(u, "it chose binary-data records we did not ask for");
		return;
	}
	if (u->binary && xfer_check_stream(p, &u->stream, 0) != 0) {
		ul_violation(u, "its head names no valid stream (an even number from 2, PROTOCOL.md "
				"§9.5)");
		return;
	}
	u->next = u->off;
	u->have_head = 1;
	/* Nothing left to send (an empty file, or the server holds it all):
	 * as for a download of length 0, nothing follows the head, and the
	 * owner finishes at once (PROTOCOL.md §9.2, §9.3). */
	u->sent_last = u->off == u->size;
	if (u->off > 0)
		cli_info(u->r->cli, 1, "the %s holds %llu bytes of an earlier attempt: resuming "
				       "at %llu bytes of %llu",
			 u->r->owner, (unsigned long long)u->off, (unsigned long long)u->off,
			 (unsigned long long)u->size);
	progress_start(&u->pr, u->r->cli, xfer_base_name(u->lpath, base, sizeof(base)), u->size,
		       u->off);
}

static void put_on_message(struct sess *s, const ppcp_msg *m)
{
	struct putrun *r = s->user;
	struct ul *u = r->cur;
	uint64_t n;

	if (m->id == NULL || (m->type != PPCP_MSG_FILE_CHUNK && m->type != PPCP_MSG_ERROR))
		return;
	if (u == NULL || u->state != UL_WAIT || strcmp(m->id, u->id) != 0) {
		if (m->type == PPCP_MSG_FILE_CHUNK && (u == NULL || strcmp(m->id, u->id) != 0)) {
			json_t *p = json_pack("{s:s,s:s}", "code", "unauthorized", "message",
					      "no such request of ours");
			if (p != NULL)
				(void)sess_reply(s, PPCP_MSG_ERROR, m->id, p);
			json_decref(p);
		}
		return;
	}
	if (m->type == PPCP_MSG_ERROR) {
		const char *code = json_string_value(json_object_get(m->payload, "code"));
		const char *msg = json_string_value(json_object_get(m->payload, "message"));

		snprintf(u->code, sizeof(u->code), "%s", code ? code : "?");
		ul_failf(u, code != NULL && strcmp(code, "changed") == 0 ? ULF_CHANGED : ULF_REFUSED,
			 "%s", msg ? msg : "no reason given");
		return;
	}
	if (!u->have_head) {
		ul_head(u, m->payload);
		return;
	}
	if (!u->sent_last || !json_is_true(json_object_get(m->payload, "done"))) {
		ul_violation(u, "it sent a FILE_CHUNK other than the final {\"done\": true} to an "
				"upload");
		return;
	}
	if (xfer_get_u53(m->payload, "size", &n) != 0 || n != u->size) {
		ul_violation(u, "its final answer gives another size than ours");
		return;
	}
	u->state = UL_DONE;
}

/* ---- sending ------------------------------------------------------------------ */

/* Read the next record's bytes of u into r->buf (at most room): their
 * number, or 0 (nothing to send now, or u failed). */
static size_t ul_read_next(struct putrun *r, struct ul *u, uint64_t room)
{
	size_t chunk = u->binary ? r->bin_chunk : r->json_chunk, n;
	uint64_t left = u->size - u->next;

	n = left < chunk ? (size_t)left : chunk;
	if (room < n)
		n = (size_t)room;
	if (n == 0)
		return 0;
	for (size_t got = 0; got < n;) {
		ssize_t rd = pread(u->fd, r->buf + got, n - got, (off_t)(u->next + got));

		if (rd < 0 && errno == EINTR)
			continue;
		if (rd < 0) {
			ul_failf(u, ULF_LOCAL, "reading %s: %s; check the local file, then run the "
						  "same command again to resume",
				 u->lpath, strerror(errno));
			ul_cancel(u, "the client cannot read the file");
			return 0;
		}
		if (rd == 0) {
			ul_failf(u, ULF_CHANGED, "%s became shorter while it was sent", u->lpath);
			ul_cancel(u, "the file changed");
			return 0;
		}
		got += (size_t)rd;
	}
	return n;
}

/* Queue the next record of u: 1 queued, 0 nothing to do now. */
static int ul_send_one(struct putrun *r, struct ul *u, uint64_t room)
{
	size_t n = ul_read_next(r, u, room);
	int last, ret;

	if (n == 0)
		return 0;
	last = u->next + n == u->size;
	if (u->binary) {
		ret = sess_send_file_data(&r->s, u->stream, u->next, last, r->buf, n);
	} else {
		ret = sess_send_file_chunk(&r->s, u->id, u->next, last, r->buf, n);
	}
	if (ret < 0)
		return 0; /* the session's error ends the loop */
	u->next += n;
	r->sent += n;
	u->sent_last = last;
	progress_update(&u->pr, u->next);
	return 1;
}

static void put_tick(struct sess_loop *L, uint64_t now)
{
	struct putrun *r = L->user;
	struct ul *u = r->cur;
	size_t chunk;

	L->wake = UINT64_MAX;
	if (u == NULL || u->state != UL_WAIT || !u->have_head || u->sent_last || r->s.over)
		return;
	chunk = u->binary ? r->bin_chunk : r->json_chunk;
	/* At most about two records wait in the engine: memory stays bounded
	 * and the socket's POLLOUT wakes us for the next. */
	while (sess_outq(&r->s) < chunk && !u->sent_last && u->state == UL_WAIT && !r->s.over) {
		uint64_t allow = pace_allowed(&r->pace, now, r->sent);

		if (allow == 0 && u->next < u->size) {
			L->wake = pace_when(&r->pace, r->sent);
			if (L->wake <= now)
				L->wake = now + 1;
			return;
		}
		if (!ul_send_one(r, u, allow))
			return;
	}
}

static int put_stop(struct sess_loop *L)
{
	struct putrun *r = L->user;

	return r->sig != 0 || r->cur->state != UL_WAIT || r->s.over;
}

static void put_signal(struct sess_loop *L, int sig)
{
	struct putrun *r = L->user;

	r->sig = sig;
}

static int put_flush_stop(struct sess_loop *L)
{
	return L->s[0]->over;
}

/* ---- one file ----------------------------------------------------------------- */

static int ul_report(struct putrun *r, struct ul *u, const char *target)
{
	struct cli *cli = r->cli;

	switch (u->fail) {
	case ULF_REFUSED:
		cli_err(cli, "put %s %s:%s: the %s refused: %s (%s); %s", u->lpath, target,
			u->rpath, r->owner, u->msg, u->code, xfer_advice(u->code, 1, r->agent != NULL));
		break;
	case ULF_CHANGED:
		cli_err(cli, "put %s %s:%s: the file changed during the transfer (%s); run the "
			     "command again when it no longer changes",
			u->lpath, target, u->rpath, u->msg);
		break;
	case ULF_LOCAL:
		cli_err(cli, "put %s %s:%s: %s", u->lpath, target, u->rpath, u->msg);
		break;
	case ULF_PROTOCOL:
		cli_err(cli, "put %s %s:%s: the %s broke the protocol: %s; the session was "
			     "closed (a bug in the %s: report it)",
			u->lpath, target, u->rpath, r->owner, u->msg, r->owner);
		break;
	default:
		break;
	}
	return CLI_EXIT_FAIL;
}

static int ul_interrupted(struct putrun *r, struct ul *u, const char *target)
{
	struct cli *cli = r->cli;

	if (r->sig != 0) {
		ul_cancel(u, "interrupted");
		cli_err(cli, "put %s %s:%s: interrupted after %llu of %llu bytes; run the same "
			     "command again to resume",
			u->lpath, target, u->rpath, (unsigned long long)u->next,
			(unsigned long long)u->size);
		return 128 + r->sig;
	}
	if (r->s.peer_bye)
		cli_err(cli, "put %s %s:%s: the server ended the session before the upload was "
			     "confirmed (shutting down?); run the same command again to resume",
			u->lpath, target, u->rpath);
	else
		cli_err(cli, "put %s %s:%s: connection to %s lost after %llu of %llu bytes: %s; "
			     "run the same command again to resume",
			u->lpath, target, u->rpath, r->s.server_id, (unsigned long long)u->next,
			(unsigned long long)u->size,
			sess_strerror(&r->s, r->s.err ? r->s.err : PPCP_ERR_TRUNCATED));
	return CLI_EXIT_FAIL;
}

/* Open and hash lpath into u: 0, CLI_EXIT_FAIL or 128+N (message printed). */
static int ul_prepare(struct putrun *r, struct ul *u, int nofollow)
{
	struct cli *cli = r->cli;
	ppcp_sha256 *h = NULL;
	uint8_t dig[32];
	struct stat st;
	char label[80], base[64];
	int ret;

	u->fd = open(u->lpath, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
	if (u->fd < 0) {
		cli_err(cli, "put: cannot open %s: %s", u->lpath, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (fstat(u->fd, &st) != 0) {
		cli_err(cli, "put: cannot read %s: %s", u->lpath, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_err(cli, "put: %s is not a regular file%s", u->lpath,
			S_ISDIR(st.st_mode) ? " (use -r for a directory)" : "");
		return CLI_EXIT_FAIL;
	}
	u->size = (uint64_t)st.st_size;
	u->mode = (unsigned)st.st_mode & 0777;
	if (u->size >= (UINT64_C(1) << 53)) {
		cli_err(cli, "put: %s is larger than the protocol allows (2^53 bytes)", u->lpath);
		return CLI_EXIT_FAIL;
	}
	if (ppcp_sha256_new(&h) != 0) {
		cli_err(cli, "out of memory");
		return CLI_EXIT_FAIL;
	}
	snprintf(label, sizeof(label), "hashing %s", xfer_base_name(u->lpath, base, sizeof(base)));
	ret = xfer_hash_fd(cli, u->fd, u->size, h, r->connected ? &r->s : NULL, label);
	if (ret == 0 && ppcp_sha256_final(h, dig) != 0)
		ret = -ENOMEM;
	ppcp_sha256_free(h);
	if (ret == -EINTR) {
		r->sig = cli_signal;
		cli_signal = 0;
		return 128 + r->sig;
	}
	if (ret == -ENODATA) {
		cli_err(cli, "put: %s became shorter while it was hashed; run the command again "
			     "when it no longer changes",
			u->lpath);
		return CLI_EXIT_FAIL;
	}
	if (ret != 0) {
		cli_err(cli, "put: reading %s: %s; check the local file, then run the same command "
			     "again",
			u->lpath, strerror(-ret));
		return CLI_EXIT_FAIL;
	}
	xfer_hex(dig, u->sha);
	return 0;
}

/* How u ended, whichever way it went: 0 (confirmed), the failure's exit
 * status (message printed), or -1 when it did not end (interrupted, or the
 * transport went away: the caller says which). */
static int ul_outcome(struct putrun *r, struct ul *u, const char *target)
{
	if (u->state == UL_DONE) {
		progress_end(&u->pr, 1);
		cli_info(r->cli, 1, "%s -> %s:%s: %llu bytes, sha256 %s", u->lpath, target, u->rpath,
			 (unsigned long long)u->size, u->sha);
		return 0;
	}
	progress_end(&u->pr, 0);
	return u->state == UL_FAILED ? ul_report(r, u, target) : -1;
}

/* Send the request of u (prepared) and run until it is confirmed. */
static int ul_run(struct putrun *r, struct ul *u, const char *target)
{
	struct sess *v[1] = { &r->s };
	struct sess_loop L;
	json_t *p;
	int ret, code;

	p = json_pack("{s:s,s:s,s:I,s:s,s:i,s:b}", "op", "put", "path", u->rpath, "size",
		      (json_int_t)u->size, "sha256", u->sha, "mode", (int)u->mode, "binary",
		      r->binary);
	if (p != NULL && r->mkdir)
		json_object_set_new(p, "mkdir", json_true());
	if (p == NULL) {
		cli_err(r->cli, "put: the remote path '%s' is not valid UTF-8", u->rpath);
		return CLI_EXIT_FAIL;
	}
	ret = sess_send(&r->s, PPCP_MSG_FILE_REQUEST, p, u->id);
	json_decref(p);
	if (ret < 0)
		return ul_interrupted(r, u, target);
	r->cur = u;
	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.stop = put_stop;
	L.on_tick = put_tick;
	L.on_signal = put_signal;
	L.deadline = UINT64_MAX;
	L.user = r;
	(void)sess_loop_run(&L);
	r->cur = NULL;
	code = ul_outcome(r, u, target);
	if (code >= 0)
		return code;
	return ul_interrupted(r, u, target);
}

/* ---- put @CLIENT_ID:PATH, through the controller (docs/CONTROL.md) ------------- */

enum { PUT_CTL_MAX_LINE = 1024 * 1024 };

struct ctlput {
	int fd;
	char *in;      /* the controller's lines, not yet complete */
	size_t inlen;
	char *out;     /* the data line being written */
	size_t outlen, outoff;
	char why[512]; /* the relay ended before the upload was confirmed */
};

static void ctlput_end(struct ctlput *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctlput_end(struct ctlput *cp, const char *fmt, ...)
{
	va_list ap;

	if (cp->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(cp->why, sizeof(cp->why), fmt, ap);
		va_end(ap);
	}
}

/* One line of the controller's answer: fed to put_on_message as if it came
 * from a session with the agent. */
static void ctlput_line(struct putrun *r, struct ul *u, struct ctlput *cp, const char *line,
			size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *err = json_string_value(json_object_get(j, "error"));

	if (j == NULL) {
		ctlput_end(cp, "the controller sent a line that is not JSON (a bug: report it)");
	} else if (err != NULL) {
		ctlput_end(cp, "the controller refused: %s", err);
	} else if (json_is_true(json_object_get(j, "done"))) {
		if (u->state == UL_WAIT)
			ctlput_end(cp, "the controller ended the answer early");
	} else if (json_is_array(json_object_get(j, "agents"))) {
		if (json_array_size(json_object_get(j, "agents")) == 0)
			ctlput_end(cp, "no agent '%s' is connected to this controller ('ppcp agents' "
				       "lists them)",
				   r->agent);
	} else if (type == NULL) {
		/* something newer than us: ignored */
	} else if (strcmp(type, "lost") == 0) {
		ctlput_end(cp, "the agent '%s' lost its session with the controller", r->agent);
	} else if (strcmp(type, "FILE_CHUNK") == 0 || strcmp(type, "ERROR") == 0) {
		ppcp_msg m;

		memset(&m, 0, sizeof(m));
		m.type = ppcp_msg_type_from_name(type);
		m.type_name = type;
		m.id = u->id;
		m.payload = json_object_get(j, "p");
		if (!json_is_object(m.payload))
			ul_failf(u, ULF_PROTOCOL, "a relayed message has no payload");
		else
			put_on_message(&r->s, &m);
	}
	json_decref(j);
}

/* The next data line of u into cp->out: 1, or 0 (none now; *wake_ms set
 * when --limit-rate holds it back). */
static int ctlput_next(struct putrun *r, struct ul *u, struct ctlput *cp, int *wake_ms)
{
	uint64_t now = cli_now_ms(), allow = pace_allowed(&r->pace, now, r->sent);
	size_t n;
	int last, k;

	if (!u->have_head || u->sent_last || u->state != UL_WAIT)
		return 0;
	if (allow == 0) {
		uint64_t when = pace_when(&r->pace, r->sent);
		*wake_ms = when > now ? (when - now > 1000 ? 1000 : (int)(when - now)) : 1;
		return 0;
	}
	n = ul_read_next(r, u, allow);
	if (n == 0)
		return 0;
	last = u->next + n == u->size;
	k = snprintf(cp->out, 64, "{\"offset\":%llu,\"last\":%s,\"data\":\"",
		     (unsigned long long)u->next, last ? "true" : "false");
	k += (int)ppcp__b64_encode(cp->out + k, r->buf, n);
	memcpy(cp->out + k, "\"}\n", 3);
	cp->outlen = (size_t)k + 3;
	cp->outoff = 0;
	u->next += n;
	r->sent += n;
	u->sent_last = last;
	progress_update(&u->pr, u->next);
	return 1;
}

/* Send the request of u (prepared) through the controller and run until
 * it is confirmed: 0, CLI_EXIT_FAIL or 128+N (message printed). */
static int ul_run_ctl(struct putrun *r, struct ul *u, const char *target)
{
	struct ctlput cp;
	json_t *p, *req;
	FILE *f;
	int code;

	memset(&cp, 0, sizeof(cp));
	cp.fd = -1;
	/* Base64 FILE_CHUNKs: the controller asks the agent for them. */
	p = json_pack("{s:s,s:s,s:I,s:s,s:i,s:b}", "op", "put", "path", u->rpath, "size",
		      (json_int_t)u->size, "sha256", u->sha, "mode", (int)u->mode, "binary", 0);
	if (p != NULL && r->mkdir)
		json_object_set_new(p, "mkdir", json_true());
	if (p == NULL) {
		cli_err(r->cli, "put: the remote path '%s' is not valid UTF-8", u->rpath);
		return CLI_EXIT_FAIL;
	}
	req = json_pack("{s:s,s:s,s:o}", "op", "file", "target", r->agent, "p", p);
	if (ctl_open(r->cli, req, &f) != 0) {
		json_decref(req);
		r->ctl_down = 1;
		return CLI_EXIT_FAIL; /* ctl_open said why */
	}
	json_decref(req);
	cp.fd = dup(fileno(f));
	fclose(f);
	cp.in = malloc(PUT_CTL_MAX_LINE);
	cp.out = malloc(64 + 4 * ((r->json_chunk + 2) / 3) + 4);
	if (cp.fd < 0 || cp.in == NULL || cp.out == NULL ||
	    fcntl(cp.fd, F_SETFL, fcntl(cp.fd, F_GETFL) | O_NONBLOCK) != 0) {
		ctlput_end(&cp, "cannot use the control connection: %s", strerror(errno));
		goto done;
	}
	snprintf(u->id, sizeof(u->id), "relayed"); /* the controller picks the real one */
	r->cur = u;
	while (u->state == UL_WAIT && cp.why[0] == '\0') {
		struct pollfd pfd = { cp.fd, POLLIN, 0 };
		int wake_ms = 1000;
		ssize_t n;
		char *nl;

		if (cli_signal != 0) {
			r->sig = cli_signal;
			cli_signal = 0;
			break;
		}
		if (cp.outlen == 0)
			(void)ctlput_next(r, u, &cp, &wake_ms);
		if (u->state != UL_WAIT)
			break; /* the local file could not be read */
		if (cp.outlen > 0)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, wake_ms) < 0 && errno != EINTR) {
			ctlput_end(&cp, "poll: %s", strerror(errno));
			break;
		}
		/* Its answers first: an ERROR or "lost" explains a closed socket. */
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(cp.fd, cp.in + cp.inlen, PUT_CTL_MAX_LINE - cp.inlen);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				ctlput_end(&cp, "the controller closed the control socket before the "
						"upload was confirmed%s%s",
					   n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
				break;
			}
			cp.inlen += (size_t)n;
			while (u->state == UL_WAIT && cp.why[0] == '\0' &&
			       (nl = memchr(cp.in, '\n', cp.inlen)) != NULL) {
				size_t len = (size_t)(nl - cp.in);

				ctlput_line(r, u, &cp, cp.in, len);
				memmove(cp.in, nl + 1, cp.inlen - len - 1);
				cp.inlen -= len + 1;
			}
			if (cp.inlen == PUT_CTL_MAX_LINE)
				ctlput_end(&cp, "the controller sent a line of more than %d bytes",
					   PUT_CTL_MAX_LINE);
			continue;
		}
		if (pfd.revents & POLLOUT) {
			/* MSG_NOSIGNAL: a controller that went away is an error
			 * to report, not a SIGPIPE. */
			n = send(cp.fd, cp.out + cp.outoff, cp.outlen - cp.outoff, MSG_NOSIGNAL);
			if (n > 0) {
				cp.outoff += (size_t)n;
				if (cp.outoff == cp.outlen)
					cp.outlen = 0;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				/* The controller closed: its last lines (read next) say
				 * why, or EOF does. */
				cp.outlen = 0;
			}
		}
	}
done:
	r->cur = NULL;
	/* Closing the connection makes the controller cancel what is still
	 * running for it: the agent keeps what it has, for a resume. */
	if (cp.fd >= 0)
		close(cp.fd);
	free(cp.in);
	free(cp.out);
	code = ul_outcome(r, u, target);
	if (code >= 0)
		return code;
	if (r->sig != 0) {
		cli_err(r->cli, "put %s %s:%s: interrupted after %llu of %llu bytes; run the same "
				"command again to resume",
			u->lpath, target, u->rpath, (unsigned long long)u->next,
			(unsigned long long)u->size);
		return 128 + r->sig;
	}
	/* Not this file's answer but the relay's end: the next file of a
	 * tree would meet the same. */
	r->ctl_down = 1;
	cli_err(r->cli, "put %s %s:%s: %s; run the same command again to resume", u->lpath, target,
		u->rpath, cp.why[0] != '\0' ? cp.why : "the relay ended");
	return CLI_EXIT_FAIL;
}

static int put_one(struct putrun *r, const char *target, const char *lpath, const char *rpath,
		   int nofollow)
{
	struct ul u;
	int code;

	memset(&u, 0, sizeof(u));
	u.r = r;
	u.lpath = lpath;
	u.rpath = rpath;
	u.fd = -1;
	code = ul_prepare(r, &u, nofollow);
	if (code == 0)
		code = r->agent != NULL ? ul_run_ctl(r, &u, target) : ul_run(r, &u, target);
	if (u.fd >= 0)
		close(u.fd);
	if (code == 0)
		r->copied++;
	else if (code == CLI_EXIT_FAIL)
		r->failed++;
	return code;
}

/* ---- directories (-r) ----------------------------------------------------------- */

static int put_tree(struct putrun *r, const char *target, const char *ldir, const char *rdir,
		    int depth)
{
	struct cli *cli = r->cli;
	struct dirent *de;
	DIR *dir;
	int worst = 0;

	if (depth > XFER_MAX_DEPTH) {
		cli_err(cli, "put %s: more than %d directory levels: not followed", ldir,
			XFER_MAX_DEPTH);
		r->failed++;
		return CLI_EXIT_FAIL;
	}
	dir = opendir(ldir);
	if (dir == NULL) {
		cli_err(cli, "put: cannot read the directory %s: %s", ldir, strerror(errno));
		r->failed++;
		return CLI_EXIT_FAIL;
	}
	while ((de = readdir(dir)) != NULL) {
		char l[PATH_MAX], rp[XFER_MAX_PATH + 1];
		struct stat st;
		int code;

		/* Ctrl-C between two files: no request for the next one. */
		if (cli_signal != 0 && r->sig == 0) {
			r->sig = cli_signal;
			cli_signal = 0;
			cli_err(cli, "put: interrupted in %s; run the same command again to copy the rest",
				ldir);
		}
		if (r->sig != 0) {
			worst = 128 + r->sig;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(l, sizeof(l), "%s/%s", ldir, de->d_name) >= sizeof(l) ||
		    (size_t)snprintf(rp, sizeof(rp), "%s/%s", rdir, de->d_name) >= sizeof(rp)) {
			cli_warn(cli, "put: %s/%s: path too long: skipped", ldir, de->d_name);
			r->skipped++;
			continue;
		}
		if (lstat(l, &st) != 0) {
			cli_warn(cli, "put: %s: %s: skipped", l, strerror(errno));
			r->skipped++;
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			code = put_one(r, target, l, rp, 1);
		} else if (S_ISDIR(st.st_mode)) {
			code = put_tree(r, target, l, rp, depth + 1);
		} else {
			cli_warn(cli, "put: %s is not a regular file or directory (a symbolic link or "
				      "a special file): skipped",
				 l);
			r->skipped++;
			continue;
		}
		if (code != 0 && code != CLI_EXIT_FAIL) {
			worst = code; /* a signal */
			break;
		}
		if (code != 0) {
			worst = CLI_EXIT_FAIL;
			if (r->s.over || r->ctl_down)
				break;
		}
	}
	closedir(dir);
	return worst;
}

/* put -r DIR TARGET:DEST/ copies into DEST/DIR; TARGET:DEST names the copy
 * (rpath is DEST, or DEST/DIR when DEST ended in '/').  Prints the count. */
static int put_dir(struct putrun *r, const char *target, const char *lpath, const char *rpath)
{
	char rdir[XFER_MAX_PATH + 1];
	size_t plen;
	int code;

	snprintf(rdir, sizeof(rdir), "%s", rpath);
	plen = strlen(rdir);
	while (plen > 1 && rdir[plen - 1] == '/')
		rdir[--plen] = '\0';
	code = put_tree(r, target, lpath, rdir, 0);
	if (code == CLI_EXIT_FAIL || r->skipped > 0)
		cli_warn(r->cli, "%u files copied, %u failed, %u skipped", r->copied, r->failed,
			 r->skipped);
	else if (code == 0)
		cli_info(r->cli, 1, "%u files copied", r->copied);
	return code;
}

/* ---- the subcommand ------------------------------------------------------------- */

struct put_opts {
	int recursive, mkdir, no_binary;
	uint64_t rate;
};

static int put_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct put_opts *o = user;

	switch (opt) {
	case 'r':
		o->recursive = 1;
		return 0;
	case 'p':
		o->mkdir = 1;
		return 0;
	case 'B':
		o->no_binary = 1;
		return 0;
	case 'L':
		return xfer_opt_rate(cli, arg, &o->rate);
	case 'C':
		ctl_set_path(arg);
		return 0;
	}
	return -1;
}

static const struct option put_longopts[] = {
	{ "recursive", no_argument, NULL, 'r' },
	{ "parents", no_argument, NULL, 'p' },
	{ "no-binary", no_argument, NULL, 'B' },
	{ "limit-rate", required_argument, NULL, 'L' },
	{ "control", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 },
};

static const char put_synopsis[] =
	"put [-p] [-r] [--no-binary] [--limit-rate RATE] LOCAL TARGET:PATH\n"
	"       ppcp put [-p] [-r] [--limit-rate RATE] [--control PATH] LOCAL @CLIENT_ID:PATH   (on a "
	"controller)";

int cmd_put(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = { "rp", put_longopts, put_opt, NULL, 0 };
	struct put_opts po;
	struct putrun *r;
	struct ul pre;
	struct stat st;
	char target[256], rpath[XFER_MAX_PATH + 1], base[NAME_MAX + 1];
	const char *path, *lpath;
	size_t plen, cap;
	int i, code = CLI_EXIT_FAIL;

	memset(&po, 0, sizeof(po));
	o.user = &po;
	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || argc - i != 2)
		return cli_usage(cli, put_synopsis);
	lpath = argv[i];
	if (xfer_split_remote(argv[i + 1], target, sizeof(target), &path) != 0) {
		cli_err(cli, "put: '%s' is not TARGET:PATH", argv[i + 1]);
		return cli_usage(cli, put_synopsis);
	}
	/* PATH ending in '/': into that directory, under the local name. */
	plen = strlen(path);
	xfer_base_name(lpath, base, sizeof(base));
	if (path[plen - 1] == '/') {
		if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
		    strcmp(base, "/") == 0) {
			cli_err(cli, "put: %s has no name to use in %s; name the remote file", lpath,
				path);
			return CLI_EXIT_FAIL;
		}
		if ((size_t)snprintf(rpath, sizeof(rpath), "%s%s", path, base) >= sizeof(rpath)) {
			cli_err(cli, "put: the remote path is longer than %d bytes", XFER_MAX_PATH);
			return CLI_EXIT_FAIL;
		}
	} else if ((size_t)snprintf(rpath, sizeof(rpath), "%s", path) >= sizeof(rpath)) {
		cli_err(cli, "put: the remote path is longer than %d bytes", XFER_MAX_PATH);
		return CLI_EXIT_FAIL;
	}
	if (stat(lpath, &st) != 0) {
		cli_err(cli, "put: cannot read %s: %s", lpath, strerror(errno));
		return CLI_EXIT_FAIL;
	}
	if (S_ISDIR(st.st_mode) && !po.recursive) {
		cli_err(cli, "put: %s is a directory: use -r to copy a tree", lpath);
		return CLI_EXIT_FAIL;
	}

	if (target[0] == '@' && (target[1] == '\0' || strcmp(target, "@all") == 0 ||
				 strlen(target + 1) > PPCP_ID_MAX)) {
		cli_err(cli, "put: '%s' does not name one agent: give @CLIENT_ID ('ppcp agents' lists them)",
			target);
		return CLI_EXIT_FAIL;
	}

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return CLI_EXIT_FAIL;
	r->cli = cli;
	r->binary = !po.no_binary;
	r->mkdir = po.mkdir || po.recursive;
	r->rate = po.rate;
	r->owner = "server";
	cli_signals_catch();

	/* A single file is hashed before we connect: a local problem costs
	 * no session, and the server does not wait for us. */
	memset(&pre, 0, sizeof(pre));
	pre.r = r;
	pre.lpath = lpath;
	pre.rpath = rpath;
	pre.fd = -1;
	if (!S_ISDIR(st.st_mode)) {
		code = ul_prepare(r, &pre, 0);
		if (code != 0)
			goto out;
	}
	if (target[0] == '@') {
		/* The agent's max_record is not known here: the base64 chunks
		 * stay well below the 1 MiB every PPCP implementation takes. */
		r->owner = "agent";
		r->agent = target + 1;
		r->s.user = r; /* put_on_message takes the run from there */
		r->s.fd = -1;
		r->binary = 0;
		r->json_chunk = PUT_JSON_CHUNK;
		r->buf = malloc(r->json_chunk);
		if (r->buf == NULL) {
			cli_err(cli, "out of memory");
			code = CLI_EXIT_FAIL;
			goto out;
		}
		pace_start(&r->pace, r->rate, cli_now_ms());
		/* One request through the controller per file. */
		code = S_ISDIR(st.st_mode) ? put_dir(r, target, lpath, rpath)
					   : ul_run_ctl(r, &pre, target);
		goto out;
	}
	if (resolve_connect(cli, target, &r->s) != 0) {
		code = CLI_EXIT_FAIL;
		goto out;
	}
	r->connected = 1;
	if (cli_signal != 0) {
		code = 128 + cli_signal;
		goto out;
	}
	r->s.user = r;
	r->s.on_message = put_on_message;
	/* Records fit what the server accepts (PROTOCOL.md §6 max_record). */
	cap = ppcp_conn_peer_max_record(r->s.conn);
	r->bin_chunk = cap - PPCP_FILE_DATA_HDR < PUT_BIN_CHUNK ? cap - PPCP_FILE_DATA_HDR
								: PUT_BIN_CHUNK;
	r->json_chunk = (cap - PUT_JSON_OVERHEAD) / 4 * 3 < PUT_JSON_CHUNK
				? (cap - PUT_JSON_OVERHEAD) / 4 * 3
				: PUT_JSON_CHUNK;
	r->buf = malloc(r->bin_chunk > r->json_chunk ? r->bin_chunk : r->json_chunk);
	if (r->buf == NULL) {
		cli_err(cli, "out of memory");
		code = CLI_EXIT_FAIL;
		goto out;
	}
	pace_start(&r->pace, r->rate, cli_now_ms());

	if (S_ISDIR(st.st_mode))
		code = put_dir(r, target, lpath, rpath);
	else
		code = ul_run(r, &pre, target);
	if (code > 128 && code < CLI_EXIT_FAIL) {
		struct sess *v[1] = { &r->s };
		struct sess_loop L;

		sess_close(&r->s);
		memset(&L, 0, sizeof(L));
		L.s = v;
		L.n = 1;
		L.in_fd = -1;
		L.stop = put_flush_stop;
		L.on_signal = put_signal;
		L.deadline = cli_now_ms() + PUT_FLUSH_MS;
		L.user = r;
		(void)sess_loop_run(&L);
	} else if (!r->s.over) {
		sess_bye(&r->s);
	}
out:
	if (pre.fd >= 0)
		close(pre.fd);
	if (r->connected || r->s.conn != NULL)
		sess_free(&r->s);
	free(r->buf);
	free(r);
	return code;
}
