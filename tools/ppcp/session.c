/*
 * session.c - the one engine loop of the CLI: ppcp_conn driven directly with
 * ppoll() over any number of sessions and, optionally, one input fd (our
 * stdin for exec).  Every subcommand that talks to servers uses it; exec
 * --all polls many sessions at once.
 *
 * Implementation notes:
 *
 *  - The TCP connection itself is made by the library's ppcp_tcp_connect()
 *    (src/io.c); from then on the socket is non-blocking and everything
 *    goes through sess_loop_run(): read what poll() says is there and feed
 *    it to the engine in one piece (callbacks run inside ppcp_conn_feed and
 *    hand messages to the subcommand at once, so no queue is needed), write
 *    what ppcp_conn_out() has, run ppcp_conn_on_timeout() at
 *    ppcp_conn_next_deadline().
 *
 *  - A session is over when it failed, or when it is CLOSED (BYE sent or
 *    received) and its output is flushed.  EOF is given to the engine, which
 *    tells a clean end (after BYE) from a truncation.
 *
 *  - Signals: SIGINT/SIGTERM/SIGHUP only set cli_signal; they are blocked
 *    except inside ppoll(), so one arriving just before ppoll() still wakes
 *    it.  The subcommand's on_signal decides (exec: COMMAND cancel).
 *
 *  - A write failure (the server reset the connection) first reads what the
 *    server may have said before it left, so the error names the cause.
 *
 *  - File transfers (get.c, put.c) add three things: binary-data records go
 *    to the subcommand's on_binary; a reader may pause (rx_paused) or read
 *    at most rx_max bytes per wake, which leaves the data in the socket so
 *    that TCP slows the sender (--limit-rate); and sess_pump() runs one
 *    non-blocking round between long local jobs (hashing a big file), so
 *    heartbeats keep flowing.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum {
	SESS_RBUF = 64 * 1024,
	SESS_MAX_POLL = 512, /* sessions one loop polls (exec --all) */
	SESS_READS_PER_WAKE = 16,
};

static int64_t sess_unix_time(void *user)
{
	(void)user;
	return (int64_t)time(NULL);
}

static void sess_cb_established(ppcp_conn *c, void *user)
{
	struct sess *s = user;

	s->established = 1;
	snprintf(s->server_id, sizeof(s->server_id), "%s", ppcp_conn_peer_id(c));
	if (s->on_established != NULL)
		s->on_established(s);
}

static void sess_cb_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	struct sess *s = user;

	(void)c;
	if (m->type == PPCP_MSG_BYE)
		s->peer_bye = 1;
	if (s->on_message != NULL)
		s->on_message(s, m);
}

static void sess_cb_binary(ppcp_conn *c, const uint8_t *data, size_t len, void *user)
{
	struct sess *s = user;

	(void)c;
	if (s->over)
		return;
	/* Only file transfers open streams (get.c): a record for none is
	 * fatal, as one for an unknown stream (PROTOCOL.md §9.5). */
	if (s->on_binary != NULL)
		s->on_binary(s, data, len);
	else
		sess_abort(s, PPCP_ERR_BAD_MESSAGE);
}

int sess_open(struct sess *s, const struct cli *cli, const char *address, uint16_t port,
	      const char *expect_id, int timeout_ms)
{
	ppcp_config cfg;
	int fd, ret, fl;

	s->fd = -1;
	s->conn = NULL;
	s->err = 0;
	s->established = s->over = s->peer_bye = s->eof = 0;
	s->why[0] = '\0';
	s->io_errno = 0;
	s->rx_paused = 0;
	s->rx_max = 0;
	s->rx_bytes = 0;
	snprintf(s->address, sizeof(s->address), "%s", address);
	s->port = port;
	snprintf(s->server_id, sizeof(s->server_id), "%s", expect_id != NULL ? expect_id : "");

	fd = ppcp_tcp_connect(address, port, timeout_ms > 0 ? timeout_ms : CLI_CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		s->err = fd;
		s->over = 1;
		return fd;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		close(fd);
		s->err = PPCP_ERR_IO;
		s->over = 1;
		return PPCP_ERR_IO;
	}

	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = cli->psk;
	cfg.psk_len = sizeof(cli->psk);
	cfg.server_id = expect_id;
	cfg.client_id = cli->client_id;
	cfg.extensions = PPCP_EXT_ALL;
	cfg.max_record = cli->max_record;
	cfg.handshake_timeout_ms = CLI_HANDSHAKE_TIMEOUT_MS;
	cfg.unix_time = sess_unix_time;
	cfg.cb.on_established = sess_cb_established;
	cfg.cb.on_message = sess_cb_message;
	cfg.cb.on_binary = sess_cb_binary;
	cfg.user = s;
	ret = ppcp_conn_new(&s->conn, &cfg, cli_now_ms());
	if (ret < 0) {
		close(fd);
		s->err = ret;
		s->over = 1;
		return ret;
	}
	s->fd = fd;
	return 0;
}

void sess_free(struct sess *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	ppcp_conn_free(s->conn);
	s->conn = NULL;
}

static void sess_fail(struct sess *s, int err)
{
	if (s->err == 0) {
		int cerr = s->conn != NULL ? ppcp_conn_error(s->conn) : 0;
		s->err = cerr < 0 ? cerr : err;
		if (cerr < 0)
			snprintf(s->why, sizeof(s->why), "%s", ppcp_conn_error_detail(s->conn));
	}
	s->over = 1;
}

const char *sess_strerror(const struct sess *s, int err)
{
	static char buf[256];

	if (err == 0)
		err = s->err;
	if (err == PPCP_ERR_IO && err == s->err && s->io_errno != 0) {
		snprintf(buf, sizeof(buf), "%s (the socket said: %s)", ppcp_strerror(err),
			 strerror(s->io_errno));
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s%s%s", ppcp_strerror(err),
		 err == s->err && s->why[0] != '\0' ? " (" : "", err == s->err ? s->why : "");
	if (err == s->err && s->why[0] != '\0')
		strncat(buf, ")", sizeof(buf) - strlen(buf) - 1);
	return buf;
}

void sess_abort(struct sess *s, int err)
{
	if (s->err == 0)
		s->err = err;
	s->over = 1;
}

int sess_reply(struct sess *s, enum ppcp_msg_type t, const char *id, json_t *payload)
{
	int ret;

	if (s->over || s->conn == NULL)
		return s->err ? s->err : PPCP_ERR_STATE;
	ret = ppcp_conn_send(s->conn, t, id, payload, NULL);
	if (ret < 0 && ret != PPCP_ERR_INVAL && ret != PPCP_ERR_TOO_BIG)
		sess_fail(s, ret);
	return ret;
}

int sess_send(struct sess *s, enum ppcp_msg_type t, json_t *payload, char *id_out)
{
	int ret;

	if (s->over || s->conn == NULL)
		return s->err ? s->err : PPCP_ERR_STATE;
	ret = ppcp_conn_send(s->conn, t, NULL, payload, id_out);
	if (ret < 0 && ret != PPCP_ERR_INVAL && ret != PPCP_ERR_TOO_BIG)
		sess_fail(s, ret);
	return ret;
}

int sess_send_file_chunk(struct sess *s, const char *id, uint64_t offset, int last,
			 const uint8_t *data, size_t len)
{
	int ret;

	if (s->over || s->conn == NULL)
		return s->err ? s->err : PPCP_ERR_STATE;
	ret = ppcp_conn_send_file_chunk(s->conn, id, offset, last, data, len);
	if (ret < 0 && ret != PPCP_ERR_INVAL && ret != PPCP_ERR_TOO_BIG)
		sess_fail(s, ret);
	return ret;
}

int sess_send_file_data(struct sess *s, uint32_t stream, uint64_t offset, int last,
			const uint8_t *data, size_t len)
{
	int ret;

	if (s->over || s->conn == NULL)
		return s->err ? s->err : PPCP_ERR_STATE;
	ret = ppcp_conn_send_file_data(s->conn, stream, offset, last, data, len);
	if (ret < 0 && ret != PPCP_ERR_TOO_BIG)
		sess_fail(s, ret);
	return ret;
}

void sess_close(struct sess *s)
{
	if (s->conn == NULL || s->over)
		return;
	if (ppcp_conn_state(s->conn) == PPCP_ST_ESTABLISHED)
		(void)ppcp_conn_close(s->conn, NULL);
	else if (ppcp_conn_state(s->conn) != PPCP_ST_CLOSED)
		s->over = 1; /* nothing to say goodbye to */
}

size_t sess_outq(struct sess *s)
{
	const uint8_t *out;

	if (s->conn == NULL)
		return 0;
	return ppcp_conn_out(s->conn, &out);
}

/* Read what is there and feed it; at EOF tell the engine. */
static void sess_read(struct sess *s)
{
	uint8_t buf[SESS_RBUF];
	size_t budget = s->rx_max > 0 ? s->rx_max : SIZE_MAX; /* rate limit (get) */
	int i, ret;

	for (i = 0; i < SESS_READS_PER_WAKE && !s->over && budget > 0; i++) {
		size_t want = budget < sizeof(buf) ? budget : sizeof(buf);
		ssize_t r = recv(s->fd, buf, want, MSG_DONTWAIT);

		if (r > 0) {
			s->rx_bytes += (uint64_t)r;
			budget -= (size_t)r;
			ret = ppcp_conn_feed(s->conn, buf, (size_t)r, cli_now_ms());
			ppcp_wipe(buf, (size_t)r);
			if (ret < 0) {
				sess_fail(s, ret);
				return;
			}
			if ((size_t)r < want)
				return;
			continue;
		}
		if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r < 0 && errno != ECONNRESET && errno != EPIPE) {
			s->io_errno = errno;
			sess_fail(s, PPCP_ERR_IO);
			return;
		}
		/* EOF (or a reset, which gives the more useful error). */
		s->eof = 1;
		ret = ppcp_conn_eof(s->conn);
		if (ret < 0)
			sess_fail(s, ret);
		else
			s->over = 1;
		return;
	}
}

static void sess_write(struct sess *s)
{
	const uint8_t *out;
	size_t len = ppcp_conn_out(s->conn, &out);
	ssize_t w;

	if (len == 0)
		return;
	w = send(s->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0) {
		ppcp_conn_out_ack(s->conn, (size_t)w);
		return;
	}
	if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (w < 0 && errno != EPIPE && errno != ECONNRESET) {
		/* Our side failed, not the server: say so. */
		s->io_errno = errno;
		sess_fail(s, PPCP_ERR_IO);
		return;
	}
	/* The server is gone: what it said last explains why. */
	sess_read(s);
	if (!s->over) {
		int ret = ppcp_conn_eof(s->conn);
		sess_fail(s, ret < 0 ? ret : PPCP_ERR_IO);
	}
}

/* Timers, and the end of a session that closed cleanly or failed. */
static void sess_settle(struct sess *s, uint64_t now)
{
	enum ppcp_state st;

	if (s->over)
		return;
	if (ppcp_conn_next_deadline(s->conn) <= now) {
		int ret = ppcp_conn_on_timeout(s->conn, now);
		if (ret < 0) {
			sess_fail(s, ret);
			return;
		}
	}
	st = ppcp_conn_state(s->conn);
	if (st == PPCP_ST_FAILED) {
		sess_fail(s, PPCP_ERR_STATE);
		return;
	}
	if (st == PPCP_ST_CLOSED && sess_outq(s) == 0) {
		/* BYE written (or received): nothing more to say. */
		shutdown(s->fd, SHUT_WR);
		s->over = 1;
	}
}

static int sess_poll_ms(uint64_t now, uint64_t until)
{
	if (until == UINT64_MAX)
		return -1;
	if (until <= now)
		return 0;
	if (until - now > INT_MAX)
		return INT_MAX;
	return (int)(until - now);
}

int sess_loop_run(struct sess_loop *L)
{
	struct pollfd pfd[SESS_MAX_POLL + 1];
	size_t map[SESS_MAX_POLL + 1];
	sigset_t block, orig;
	int ret = 0;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &orig);

	for (;;) {
		uint64_t now = cli_now_ms(), until = L->deadline;
		nfds_t np = 0;
		size_t i, live = 0;
		int r, in_slot = -1;
		struct timespec ts, *tsp = NULL;

		if (cli_signal != 0) {
			int sig = cli_signal;

			cli_signal = 0;
			if (L->on_signal == NULL) {
				sigprocmask(SIG_SETMASK, &orig, NULL);
				exit(128 + sig);
			}
			L->on_signal(L, sig);
		}
		if (L->on_tick != NULL) {
			L->on_tick(L, now);
			if (L->wake < until)
				until = L->wake;
		}
		for (i = 0; i < L->n; i++)
			sess_settle(L->s[i], now);
		if (L->stop != NULL && L->stop(L))
			break;
		for (i = 0; i < L->n && np < SESS_MAX_POLL; i++) {
			struct sess *s = L->s[i];
			uint64_t t;

			if (s->over)
				continue;
			live++;
			pfd[np].fd = s->fd;
			pfd[np].events = s->eof || s->rx_paused ? 0 : POLLIN;
			if (sess_outq(s) > 0)
				pfd[np].events |= POLLOUT;
			if (pfd[np].events == 0 && s->rx_paused)
				pfd[np].fd = -1; /* poll() ignores it: no hang-up spin */
			pfd[np].revents = 0;
			map[np++] = i;
			t = ppcp_conn_next_deadline(s->conn);
			if (t < until)
				until = t;
		}
		if (live == 0)
			break; /* every session is over */
		if (now >= L->deadline) {
			ret = 1;
			break;
		}
		if (L->in_fd >= 0 && L->want_in != NULL && L->want_in(L)) {
			in_slot = (int)np;
			pfd[np].fd = L->in_fd;
			pfd[np].events = POLLIN;
			pfd[np].revents = 0;
			np++;
		}
		r = sess_poll_ms(now, until);
		if (r >= 0) {
			ts.tv_sec = r / 1000;
			ts.tv_nsec = (long)(r % 1000) * 1000000L;
			tsp = &ts;
		}
		r = ppoll(pfd, np, tsp, &orig);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = -1;
			break;
		}
		for (nfds_t k = 0; k < np; k++) {
			if (pfd[k].revents == 0)
				continue;
			if ((int)k == in_slot) {
				L->on_in(L);
				continue;
			}
			struct sess *s = L->s[map[k]];
			if (s->over)
				continue;
			if (pfd[k].revents & POLLNVAL) {
				sess_fail(s, PPCP_ERR_IO);
				continue;
			}
			/* A paused reader leaves the data in the socket (TCP
			 * pushes back); a hang-up is read once it resumes. */
			if ((pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) && !s->rx_paused)
				sess_read(s);
			if (!s->over && (pfd[k].revents & (POLLOUT | POLLERR)))
				sess_write(s);
		}
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return ret;
}

void sess_pump(struct sess *s)
{
	struct pollfd pfd;
	uint64_t now = cli_now_ms();

	sess_settle(s, now);
	if (s->over)
		return;
	pfd.fd = s->fd;
	pfd.events = s->eof ? 0 : POLLIN;
	if (sess_outq(s) > 0)
		pfd.events |= POLLOUT;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (pfd.revents & POLLNVAL) {
		sess_fail(s, PPCP_ERR_IO);
		return;
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		sess_read(s);
	if (!s->over && (pfd.revents & (POLLOUT | POLLERR)))
		sess_write(s);
	sess_settle(s, cli_now_ms());
}

static int hs_stop(struct sess_loop *L)
{
	struct sess *s = L->s[0];

	/* Established, and the last handshake bytes written. */
	return s->over || (s->established && sess_outq(s) == 0);
}

int sess_handshake(struct sess *s)
{
	struct sess *v[1] = { s };
	struct sess_loop L;

	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.stop = hs_stop;
	/* The engine has its own handshake deadline; this is a backstop. */
	L.deadline = cli_now_ms() + CLI_HANDSHAKE_TIMEOUT_MS + 1000;
	L.on_signal = NULL;
	if (sess_loop_run(&L) == 1 && !s->over) {
		s->err = PPCP_ERR_HANDSHAKE_TIMEOUT;
		s->over = 1;
	}
	if (s->established && !s->over)
		return 0;
	if (s->err == 0)
		s->err = s->established ? PPCP_ERR_CLOSED : PPCP_ERR_PEER_ABORTED;
	return s->err;
}

/* ---- one request, one answer (status, doctor) ------------------------------ */

struct call {
	char id[PPCP_ID_MAX + 1];
	json_t *reply;
	int kind; /* 0 waiting, 1 RESPONSE done, 2 ERROR */
	void (*prev)(struct sess *s, const ppcp_msg *m);
	void *prev_user;
};

static void call_on_message(struct sess *s, const ppcp_msg *m)
{
	struct call *c = s->user;

	if (c->kind != 0 || m->id == NULL || strcmp(m->id, c->id) != 0)
		return;
	if (m->type == PPCP_MSG_RESPONSE &&
	    json_is_true(json_object_get((json_t *)m->payload, "done"))) {
		c->reply = json_deep_copy(m->payload);
		c->kind = 1;
	} else if (m->type == PPCP_MSG_ERROR) {
		c->reply = json_deep_copy(m->payload);
		c->kind = 2;
	}
}

static int call_stop(struct sess_loop *L)
{
	struct call *c = L->user;

	return c->kind != 0 || L->s[0]->over;
}

int sess_command(struct sess *s, json_t *payload, json_t **reply, int timeout_ms)
{
	struct sess *v[1] = { s };
	struct sess_loop L;
	struct call c;
	int ret;

	*reply = NULL;
	memset(&c, 0, sizeof(c));
	c.prev = s->on_message;
	c.prev_user = s->user;
	ret = sess_send(s, PPCP_MSG_COMMAND, payload, c.id);
	if (ret < 0)
		return ret;
	s->on_message = call_on_message;
	s->user = &c;
	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.stop = call_stop;
	L.user = &c;
	L.deadline = cli_now_ms() + (uint64_t)timeout_ms;
	ret = sess_loop_run(&L);
	s->on_message = c.prev;
	s->user = c.prev_user;
	if (c.kind != 0) {
		*reply = c.reply;
		return c.kind == 1 ? 0 : 1;
	}
	if (ret == 1)
		return PPCP_ERR_TIMEOUT;
	if (s->err)
		return s->err;
	return s->peer_bye ? PPCP_ERR_CLOSED : PPCP_ERR_TRUNCATED;
}

static int bye_stop(struct sess_loop *L)
{
	return L->s[0]->over;
}

void sess_bye(struct sess *s)
{
	struct sess *v[1] = { s };
	struct sess_loop L;

	if (s->conn == NULL || s->over)
		return;
	sess_close(s);
	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.stop = bye_stop;
	L.deadline = cli_now_ms() + 1000;
	(void)sess_loop_run(&L);
}
