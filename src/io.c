/*
 * io.c - the blocking socket adapter of ppcp.h: the seed's quick-start API
 * (ppcp_server_accept, ppcp_client_connect, ppcp_find_server) built on the
 * sans-I/O engine.
 *
 * Implementation notes:
 *
 *  - One pump (io_pump) drives a session towards a goal: the handshake
 *    finished and flushed, the output flushed, or a message queued.  It
 *    poll()s the fd for POLLIN when the read buffer has room and POLLOUT
 *    when the engine has output, writes what ppcp_conn_out() gives with
 *    send(MSG_NOSIGNAL | MSG_DONTWAIT), and runs ppcp_conn_on_timeout() at
 *    ppcp_conn_next_deadline().  Time is CLOCK_MONOTONIC in milliseconds.
 *    The caller's fd may be blocking or not: every read and write is
 *    MSG_DONTWAIT after poll() said it was ready.  EINTR is retried.
 *
 *  - Messages arrive inside ppcp_conn_feed() callbacks, so they are copied
 *    (type, id, payload as compact JSON text) into a small FIFO inside the
 *    session.  To keep that FIFO bounded without ever dropping a message,
 *    the adapter tracks frame boundaries itself (PROTOCOL.md §2: u32 len ‖
 *    body) and feeds the engine at most up to the end of one frame at a
 *    time; after the handshake one frame is one record and delivers at most
 *    one message.  When the FIFO is full, further input stays in the read
 *    buffer until ppcp_session_recv() makes room.  The engine still checks
 *    every length itself; the adapter only counts.
 *
 *  - EOF is reported to the engine (ppcp_conn_eof) only after every byte
 *    read before it was fed, so a BYE followed by a close is a clean end,
 *    not a truncation.  A connection reset is treated like EOF, which gives
 *    the more useful error (PPCP_ERR_PEER_ABORTED during the handshake).
 *
 *  - The first error sticks to the session (s->err), as it does to the
 *    connection.  After a failure the pump makes one best-effort, bounded
 *    attempt to flush what the engine left to send (at most an AUTH_FAIL),
 *    then returns the error.  Messages already queued are still returned by
 *    ppcp_session_recv() before the error or PPCP_ERR_CLOSED.
 *
 *  - HEARTBEAT and HEARTBEAT_ACK are answered by the engine and never queued;
 *    binary-data records have no place in this API and are discarded.
 *
 *  - Discovery (ppcp_find_server) sends one PING per address from one UDP
 *    socket per address family, then collects PONGs whose "i" is ours until
 *    the timeout, the first PONG of the target, or `max` servers.  Without
 *    addresses it broadcasts (255.255.255.255 and every IPv4 interface's
 *    directed broadcast address); PPCP_DISCOVER_ADDR keeps it unicast.
 *
 * Nothing here prints or exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum {
	IO_QUEUE_LEN = 8,          /* messages waiting for ppcp_session_recv */
	IO_RBUF_LEN = 16 * 1024,   /* bytes read but not yet fed */
	IO_FLUSH_FAIL_MS = 1000,   /* best-effort flush after a failure */
	IO_STALL_MS = PPCP_DEFAULT_IDLE_TIMEOUT_MS, /* a write that makes no progress */
	IO_CONNECT_DEFAULT_MS = 10000,
	IO_FIND_DEFAULT_MS = 1000,
	IO_FIND_MAX_ADDRS = 64,    /* addresses one discovery PINGs */
	IO_FIND_MAX_DGRAMS = 4096, /* datagrams one discovery reads at most */
};

/* What io_pump works towards. */
enum io_goal {
	IO_GOAL_ESTABLISHED, /* handshake done and its last message written */
	IO_GOAL_FLUSHED,     /* the engine's output is all written */
	IO_GOAL_MESSAGE,     /* a message is queued, or BYE came */
};

struct io_msg {
	enum ppcp_msg_type type;
	char id[PPCP_ID_MAX + 1];
	char *json; /* malloc'd compact JSON of "p" */
};

struct ppcp_session {
	int fd;            /* borrowed from the caller */
	ppcp_conn *conn;
	int err;           /* sticky: the first error of the session */
	int established;   /* on_established was called */
	int bye;           /* BYE received */
	int eof_seen;      /* read() returned 0 (or the peer reset) */
	int eof_fed;       /* ppcp_conn_eof() was called */

	/* PROTOCOL.md §2 frame boundaries of the input not yet fed. */
	uint8_t fr_hdr[PPCP_LEN_PREFIX];
	size_t fr_hdr_len; /* bytes of the length prefix seen */
	uint32_t fr_left;  /* body bytes still to come */

	struct io_msg q[IO_QUEUE_LEN];
	size_t q_head, q_len;

	size_t rpos, rlen; /* unfed input is rbuf[rpos..rlen) */
	uint8_t rbuf[IO_RBUF_LEN];
};

static uint64_t io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t io_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t io_unix_time(void *user)
{
	(void)user;
	return (int64_t)time(NULL);
}

/* The poll() timeout until deadline (UINT64_MAX = none), capped. */
static int io_poll_ms(uint64_t now, uint64_t deadline)
{
	if (deadline == UINT64_MAX)
		return -1;
	if (deadline <= now)
		return 0;
	if (deadline - now > INT_MAX)
		return INT_MAX;
	return (int)(deadline - now);
}

void ppcp_hostname_ident(char out[PPCP_ID_MAX + 1])
{
	char host[256];
	size_t i, n = 0;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && n < PPCP_ID_MAX; i++) {
		char ch = host[i];
		int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		out[n++] = ok ? ch : '-';
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, PPCP_ID_MAX + 1, "%s", "localhost");
}


/* ---- callbacks: run inside ppcp_conn_feed ----------------------------- */

static void io_on_established(ppcp_conn *c, void *user)
{
	ppcp_session *s = user;

	(void)c;
	s->established = 1;
}

static void io_on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	ppcp_session *s = user;
	struct io_msg *e;
	char *json;

	(void)c;
	switch (m->type) {
	case PPCP_MSG_HEARTBEAT:
	case PPCP_MSG_HEARTBEAT_ACK:
		return; /* answered by the engine; nothing for the caller */
	case PPCP_MSG_BYE:
		s->bye = 1;
		return;
	default:
		break;
	}
	if (s->err)
		return;
	/* io_feed stops at every frame boundary once the queue is full, so
	 * this cannot overflow; if it ever did, fail rather than drop. */
	if (s->q_len == IO_QUEUE_LEN) {
		s->err = PPCP_ERR_STATE;
		return;
	}
	if (m->payload != NULL)
		json = ppcp__json_dump(m->payload, NULL);
	else
		json = strdup("null");
	if (json == NULL) {
		s->err = PPCP_ERR_NOMEM;
		return;
	}
	e = &s->q[(s->q_head + s->q_len) % IO_QUEUE_LEN];
	e->type = m->type;
	snprintf(e->id, sizeof(e->id), "%s", m->id != NULL ? m->id : "");
	e->json = json;
	s->q_len++;
}

static void io_on_binary(ppcp_conn *c, const uint8_t *data, size_t len, void *user)
{
	/* The blocking API carries JSON messages only. */
	(void)c;
	(void)data;
	(void)len;
	(void)user;
}

/* ---- input ------------------------------------------------------------- */

/* How many of the avail bytes at p belong to the current frame; advances
 * the frame tracker past them. */
static size_t io_frame_take(ppcp_session *s, const uint8_t *p, size_t avail)
{
	size_t n = 0;

	while (n < avail) {
		if (s->fr_hdr_len < PPCP_LEN_PREFIX) {
			s->fr_hdr[s->fr_hdr_len++] = p[n++];
			if (s->fr_hdr_len < PPCP_LEN_PREFIX)
				continue;
			s->fr_left = ppcp__load_be32(s->fr_hdr);
			if (s->fr_left == 0)
				break; /* an empty body: the engine judges it */
			continue;
		}
		size_t take = avail - n < s->fr_left ? avail - n : s->fr_left;
		n += take;
		s->fr_left -= (uint32_t)take;
		if (s->fr_left == 0)
			break;
	}
	if (s->fr_hdr_len == PPCP_LEN_PREFIX && s->fr_left == 0)
		s->fr_hdr_len = 0; /* the frame is complete */
	return n;
}

/* Feed buffered input, one frame at a time, while the queue has room; then
 * report a pending EOF once everything before it was fed. */
static int io_feed(ppcp_session *s)
{
	int ret;

	while (s->rpos < s->rlen && s->q_len < IO_QUEUE_LEN && !s->err) {
		enum ppcp_state st = ppcp_conn_state(s->conn);

		if (st == PPCP_ST_CLOSED || st == PPCP_ST_FAILED) {
			/* The engine accepts nothing more (§8.5). */
			s->rpos = s->rlen;
			break;
		}
		size_t n = io_frame_take(s, s->rbuf + s->rpos, s->rlen - s->rpos);
		ret = ppcp_conn_feed(s->conn, s->rbuf + s->rpos, n, io_now_ms());
		s->rpos += n;
		if (ret < 0)
			return ret;
	}
	if (s->rpos == s->rlen)
		s->rpos = s->rlen = 0;
	if (s->err)
		return s->err;
	if (s->eof_seen && !s->eof_fed && s->rlen == 0) {
		s->eof_fed = 1;
		ret = ppcp_conn_eof(s->conn);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One non-blocking read into rbuf.  Returns 0 (data, nothing, or EOF noted)
 * or PPCP_ERR_IO. */
static int io_read(ppcp_session *s)
{
	ssize_t r;

	if (s->rpos > 0) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
		s->rlen -= s->rpos;
		s->rpos = 0;
	}
	if (s->rlen == sizeof(s->rbuf))
		return 0;
	r = recv(s->fd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen, MSG_DONTWAIT);
	if (r > 0) {
		s->rlen += (size_t)r;
		return 0;
	}
	if (r == 0) {
		s->eof_seen = 1;
		return 0;
	}
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (errno == ECONNRESET) {
		s->eof_seen = 1;
		return 0;
	}
	return PPCP_ERR_IO;
}

/* ---- output ------------------------------------------------------------ */

/* One non-blocking write of the engine's output.  Returns 1 if bytes were
 * written, 0 if none could be, or PPCP_ERR_IO. */
static int io_write(ppcp_session *s)
{
	const uint8_t *out;
	size_t len = ppcp_conn_out(s->conn, &out);
	ssize_t w;

	if (len == 0)
		return 0;
	w = send(s->fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w > 0) {
		ppcp_conn_out_ack(s->conn, (size_t)w);
		return 1;
	}
	if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return PPCP_ERR_IO;
}

/* Best effort, bounded: write what the engine still has (after a failure,
 * at most an AUTH_FAIL).  Errors are ignored: the session already failed. */
static void io_flush_best_effort(ppcp_session *s)
{
	uint64_t deadline = io_now_ms() + IO_FLUSH_FAIL_MS;
	const uint8_t *out;

	while (ppcp_conn_out(s->conn, &out) > 0) {
		uint64_t now = io_now_ms();
		struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

		if (now >= deadline)
			break;
		if (poll(&pfd, 1, io_poll_ms(now, deadline)) < 0 && errno != EINTR)
			break;
		if (io_write(s) < 0)
			break;
	}
}

/* Record err as the session's sticky error (the first one wins), flush what
 * is left to say, and return the sticky error. */
static int io_fail(ppcp_session *s, int err)
{
	if (!s->err) {
		/* The engine's own sticky error, when it has one, is the cause. */
		int cerr = ppcp_conn_error(s->conn);
		s->err = cerr < 0 ? cerr : err;
	}
	io_flush_best_effort(s);
	return s->err;
}

static int io_goal_met(const ppcp_session *s, enum io_goal goal, size_t outlen)
{
	switch (goal) {
	case IO_GOAL_ESTABLISHED:
		return s->established && outlen == 0;
	case IO_GOAL_FLUSHED:
		return outlen == 0;
	case IO_GOAL_MESSAGE:
		return s->q_len > 0 || s->bye || ppcp_conn_state(s->conn) == PPCP_ST_CLOSED;
	}
	return 1;
}

/*
 * io_pump - move the session towards goal until it is met (0), the deadline
 * passes (1, after at least one poll; stall_ms > 0 pushes the deadline out whenever bytes are
 * written), or the session fails (its sticky error, negative).
 */
static int io_pump(ppcp_session *s, enum io_goal goal, uint64_t deadline, uint32_t stall_ms)
{
	int ret, polled = 0;

	if (s->err)
		return s->err;
	for (;;) {
		const uint8_t *out;
		size_t outlen;
		uint64_t now, timer;
		struct pollfd pfd;

		ret = io_feed(s);
		if (ret < 0)
			return io_fail(s, ret);
		outlen = ppcp_conn_out(s->conn, &out);
		if (io_goal_met(s, goal, outlen))
			return 0;
		if (s->eof_fed && outlen == 0) {
			/* The peer is gone and the goal cannot be met any more. */
			return io_fail(s, goal == IO_GOAL_MESSAGE ? PPCP_ERR_TRUNCATED :
								      PPCP_ERR_IO);
		}

		now = io_now_ms();
		timer = ppcp_conn_next_deadline(s->conn);
		if (timer <= now) {
			ret = ppcp_conn_on_timeout(s->conn, now);
			if (ret < 0)
				return io_fail(s, ret);
			continue;
		}
		/* Poll at least once, so a zero timeout still reads what
		 * has already arrived. */
		if (deadline <= now && polled)
			return 1;

		pfd.fd = s->fd;
		pfd.events = 0;
		pfd.revents = 0;
		if (!s->eof_seen && (s->rpos > 0 || s->rlen < sizeof(s->rbuf)))
			pfd.events |= POLLIN;
		if (outlen > 0)
			pfd.events |= POLLOUT;
		ret = poll(&pfd, 1, io_poll_ms(now, timer < deadline ? timer : deadline));
		polled = 1;
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return io_fail(s, PPCP_ERR_IO);
		}
		if (ret == 0)
			continue;
		if (pfd.revents & POLLNVAL)
			return io_fail(s, PPCP_ERR_IO);
		if ((pfd.events & POLLIN) && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
			ret = io_read(s);
			if (ret < 0)
				return io_fail(s, ret);
		}
		if ((pfd.events & POLLOUT) && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
			ret = io_write(s);
			if (ret < 0) {
				/* The peer may have said why before it left:
				 * read what is there, so an EOF or AUTH_FAIL
				 * gives the engine's error rather than IO. */
				if (io_read(s) == 0)
					(void)io_feed(s);
				return io_fail(s, PPCP_ERR_IO);
			}
			if (ret > 0 && stall_ms > 0 && deadline != UINT64_MAX)
				deadline = io_now_ms() + stall_ms;
		}
	}
}

/* ---- sessions ----------------------------------------------------------- */

static int io_session_new(int fd, enum ppcp_role role, const uint8_t *psk, size_t psk_len,
			  const ppcp_session_options *opt, ppcp_session **out)
{
	ppcp_session *s = NULL;
	ppcp_config cfg;
	ppcp_pong_info pong;
	char host[PPCP_ID_MAX + 1];
	int ret;

	*out = NULL;
	if (fd < 0 || psk == NULL || (opt != NULL && opt->timeout_ms < 0))
		return PPCP_ERR_INVAL;
	if (role == PPCP_ROLE_SERVER && (opt == NULL || opt->server_id == NULL))
		return PPCP_ERR_INVAL;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return PPCP_ERR_NOMEM;
	s->fd = fd;

	ppcp_hostname_ident(host);
	ppcp_config_init(&cfg, role);
	cfg.psk = psk;
	cfg.psk_len = psk_len;
	cfg.server_id = opt != NULL ? opt->server_id : NULL;
	if (role == PPCP_ROLE_CLIENT)
		cfg.client_id = opt != NULL && opt->client_id != NULL ? opt->client_id : host;
	if (opt != NULL && opt->timeout_ms > 0)
		cfg.handshake_timeout_ms = (uint32_t)opt->timeout_ms;
	cfg.extensions = opt != NULL && opt->extensions != 0 ? opt->extensions
							      : PPCP_EXT_KEY_UPDATE;
	cfg.rng = NULL; /* the system CSPRNG */
	cfg.unix_time = io_unix_time;
	cfg.cb.on_established = io_on_established;
	cfg.cb.on_message = io_on_message;
	cfg.cb.on_binary = io_on_binary;
	cfg.user = s;

	if (role == PPCP_ROLE_SERVER) {
		/* Answer a TCP PING (PROTOCOL.md §10.4) with the port this
		 * socket was accepted on; without one (not TCP) stay silent. */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		uint16_t port = 0;

		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
		if (port != 0) {
			memset(&pong, 0, sizeof(pong));
			pong.server_id = opt->server_id;
			pong.hostname = host;
			pong.port = port;
			pong.capabilities = cfg.extensions;
			cfg.pong = &pong;
		}
	}

	ret = ppcp_conn_new(&s->conn, &cfg, io_now_ms());
	if (ret < 0) {
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

static int io_handshake(int fd, enum ppcp_role role, const uint8_t *psk, size_t psk_len,
			const ppcp_session_options *opt, ppcp_session **out)
{
	ppcp_session *s = NULL;
	uint64_t limit;
	int ret;

	if (out == NULL)
		return PPCP_ERR_INVAL;
	*out = NULL;
	ret = io_session_new(fd, role, psk, psk_len, opt, &s);
	if (ret < 0)
		return ret;

	/* The engine enforces the handshake deadline; ours is a backstop a
	 * little later, so a missing timer cannot block forever. */
	limit = opt != NULL && opt->timeout_ms > 0 ? (uint64_t)opt->timeout_ms :
						      PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	ret = io_pump(s, IO_GOAL_ESTABLISHED, io_now_ms() + limit + 100, 0);
	if (ret > 0)
		ret = io_fail(s, PPCP_ERR_HANDSHAKE_TIMEOUT);
	if (ret < 0) {
		ppcp_session_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int ppcp_server_accept(int fd, const uint8_t *psk, size_t psk_len,
		       const ppcp_session_options *opt, ppcp_session **out)
{
	return io_handshake(fd, PPCP_ROLE_SERVER, psk, psk_len, opt, out);
}

int ppcp_client_connect(int fd, const uint8_t *psk, size_t psk_len,
			const ppcp_session_options *opt, ppcp_session **out)
{
	return io_handshake(fd, PPCP_ROLE_CLIENT, psk, psk_len, opt, out);
}

/* Write everything the engine has queued; a write that makes no progress
 * for IO_STALL_MS fails the session with PPCP_ERR_TIMEOUT. */
static int io_flush(ppcp_session *s)
{
	int ret = io_pump(s, IO_GOAL_FLUSHED, io_now_ms() + IO_STALL_MS, IO_STALL_MS);

	if (ret > 0)
		ret = io_fail(s, PPCP_ERR_TIMEOUT);
	return ret;
}

static int io_send(ppcp_session *s, enum ppcp_msg_type type, const char *id,
		   const char *payload_json, char *id_out)
{
	int ret;

	if (s == NULL)
		return PPCP_ERR_INVAL;
	if (s->err)
		return s->err;
	if (s->bye)
		return PPCP_ERR_CLOSED;
	ret = ppcp_conn_send_json(s->conn, type, id, payload_json, id_out);
	if (ret < 0)
		return ret; /* sticky engine errors also stick to the session */
	return io_flush(s);
}

int ppcp_session_send(ppcp_session *s, enum ppcp_msg_type type, const char *payload_json,
		      char *id_out)
{
	return io_send(s, type, NULL, payload_json, id_out);
}

int ppcp_session_reply(ppcp_session *s, enum ppcp_msg_type type, const char *id,
		       const char *payload_json)
{
	if (id == NULL)
		return PPCP_ERR_INVAL;
	return io_send(s, type, id, payload_json, NULL);
}

int ppcp_session_recv(ppcp_session *s, int timeout_ms, enum ppcp_msg_type *type, char *id_out,
		      char **payload_json)
{
	struct io_msg *e;
	uint64_t deadline;
	int ret;

	if (payload_json != NULL)
		*payload_json = NULL;
	if (s == NULL || timeout_ms < -1)
		return PPCP_ERR_INVAL;

	if (s->q_len == 0 && !s->bye && !s->err) {
		deadline = timeout_ms < 0 ? UINT64_MAX : io_now_ms() + (uint64_t)timeout_ms;
		ret = io_pump(s, IO_GOAL_MESSAGE, deadline, 0);
		if (ret > 0)
			return PPCP_ERR_AGAIN; /* not sticky: the session goes on */
	}
	if (s->q_len == 0) {
		if (s->err)
			return s->err;
		return PPCP_ERR_CLOSED;
	}

	e = &s->q[s->q_head];
	if (type != NULL)
		*type = e->type;
	if (id_out != NULL)
		memcpy(id_out, e->id, sizeof(e->id));
	if (payload_json != NULL)
		*payload_json = e->json;
	else
		free(e->json);
	e->json = NULL;
	s->q_head = (s->q_head + 1) % IO_QUEUE_LEN;
	s->q_len--;
	return 0;
}

int ppcp_session_close(ppcp_session *s)
{
	int ret;

	if (s == NULL)
		return PPCP_ERR_INVAL;
	if (s->err)
		return s->err;
	if (ppcp_conn_state(s->conn) == PPCP_ST_ESTABLISHED) {
		ret = ppcp_conn_close(s->conn, NULL);
		if (ret < 0)
			return io_fail(s, ret);
	}
	/* After a BYE received there is nothing to say; flush what is left. */
	return io_flush(s);
}

const char *ppcp_session_peer_id(const ppcp_session *s)
{
	if (s == NULL)
		return "";
	return ppcp_conn_peer_id(s->conn);
}

ppcp_conn *ppcp_session_conn(ppcp_session *s)
{
	return s != NULL ? s->conn : NULL;
}

void ppcp_session_free(ppcp_session *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < IO_QUEUE_LEN; i++) {
		if (s->q[i].json != NULL) {
			ppcp_wipe(s->q[i].json, strlen(s->q[i].json));
			free(s->q[i].json);
		}
	}
	ppcp_conn_free(s->conn);
	ppcp_wipe(s, sizeof(*s));
	free(s);
}

/* ---- addresses ---------------------------------------------------------- */

/* Parse a numeric IPv4 or IPv6 address ("::1", "[::1]", "fe80::1%eth0")
 * with port into ss.  0 or PPCP_ERR_ADDR. */
static int io_parse_addr(const char *addr, uint16_t port, int socktype,
			 struct sockaddr_storage *ss, socklen_t *sl)
{
	struct addrinfo hints, *ai = NULL;
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	char serv[8];
	size_t len;

	if (addr == NULL)
		return PPCP_ERR_ADDR;
	while (*addr == ' ' || *addr == '\t')
		addr++;
	len = strlen(addr);
	while (len > 0 && (addr[len - 1] == ' ' || addr[len - 1] == '\t'))
		len--;
	if (len >= 2 && addr[0] == '[' && addr[len - 1] == ']') {
		addr++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(host))
		return PPCP_ERR_ADDR;
	memcpy(host, addr, len);
	host[len] = '\0';
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, serv, &hints, &ai) != 0 || ai == NULL)
		return PPCP_ERR_ADDR;
	if (ai->ai_addrlen > sizeof(*ss) ||
	    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) {
		freeaddrinfo(ai);
		return PPCP_ERR_ADDR;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int ppcp_tcp_connect(const char *address, uint16_t port, int timeout_ms)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t deadline;
	int fd = -1, ret, one = 1, soerr = 0, flags;
	socklen_t elen = sizeof(soerr);

	if (port == 0)
		return PPCP_ERR_ADDR;
	ret = io_parse_addr(address, port, SOCK_STREAM, &ss, &sl);
	if (ret < 0)
		return ret;
	if (timeout_ms <= 0)
		timeout_ms = IO_CONNECT_DEFAULT_MS;
	deadline = io_now_ms() + (uint64_t)timeout_ms;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return PPCP_ERR_IO;
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			ret = PPCP_ERR_CONNECT;
			goto out;
		}
		for (;;) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			uint64_t now = io_now_ms();
			int r;

			if (now >= deadline) {
				errno = ETIMEDOUT;
				ret = PPCP_ERR_CONNECT;
				goto out;
			}
			r = poll(&pfd, 1, io_poll_ms(now, deadline));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				ret = PPCP_ERR_IO;
				goto out;
			}
			if (r > 0)
				break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) != 0) {
			ret = PPCP_ERR_IO;
			goto out;
		}
		if (soerr != 0) {
			errno = soerr;
			ret = PPCP_ERR_CONNECT;
			goto out;
		}
	}
	/* Back to blocking, as the caller expects of a plain socket. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		ret = PPCP_ERR_IO;
		goto out;
	}
	return fd;
out:
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return ret;
}

/* ---- discovery ---------------------------------------------------------- */

struct io_dest {
	struct sockaddr_storage ss;
	socklen_t sl;
	char kind; /* 'u'nicast, 'b'roadcast, 'm'ulticast: the PING id's last letter */
};

/* Add a destination unless it is already listed.  0 or PPCP_ERR_INVAL when
 * the list is full. */
static int io_dest_add(struct io_dest *d, size_t *n, const struct sockaddr_storage *ss,
		       socklen_t sl)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (d[i].sl == sl && memcmp(&d[i].ss, ss, sl) == 0)
			return 0;
	if (*n == IO_FIND_MAX_ADDRS)
		return PPCP_ERR_INVAL;
	memset(&d[*n], 0, sizeof(d[*n]));
	memcpy(&d[*n].ss, ss, sl);
	d[*n].sl = sl;
	(*n)++;
	return 0;
}

/* Destinations from a comma-separated list (PPCP_DISCOVER_ADDR). */
static int io_dests_from_list(const char *list, uint16_t port, struct io_dest *d, size_t *n)
{
	char item[128];
	const char *p = list;
	int ret;

	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		struct sockaddr_storage ss;
		socklen_t sl;

		if (len >= sizeof(item))
			return PPCP_ERR_ADDR;
		memcpy(item, p, len);
		item[len] = '\0';
		p += len;
		if (*p == ',')
			p++;
		if (strspn(item, " \t") == len)
			continue; /* empty item: "a,,b" or a trailing comma */
		ret = io_parse_addr(item, port, SOCK_DGRAM, &ss, &sl);
		if (ret < 0)
			return ret;
		ret = io_dest_add(d, n, &ss, sl);
		if (ret < 0)
			return ret;
	}
	return *n > 0 ? 0 : PPCP_ERR_ADDR;
}

/* Broadcast destinations: 255.255.255.255 and the directed broadcast
 * address of every IPv4 interface that has one.  Only taken when the
 * caller gave no address and PPCP_DISCOVER_ADDR is unset. */
/* PROTOCOL.md §10.4: the IPv4 group, and the IPv6 link-local group on every
 * interface that has IPv6 and multicast. */
static int io_dests_multicast(uint16_t port, struct io_dest *d, size_t *n)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct ifaddrs *ifa = NULL, *i;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	inet_pton(AF_INET, "239.255.80.67", &sin->sin_addr);
	(void)io_dest_add(d, n, &ss, sizeof(*sin));
	if (getifaddrs(&ifa) != 0)
		return 0;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET6 ||
		    !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_MULTICAST) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		memset(&ss, 0, sizeof(ss));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, "ff02::5050", &sin6->sin6_addr);
		sin6->sin6_scope_id = if_nametoindex(i->ifa_name);
		if (sin6->sin6_scope_id == 0)
			continue;
		if (io_dest_add(d, n, &ss, sizeof(*sin6)) < 0)
			break;
	}
	freeifaddrs(ifa);
	return 0;
}

static int io_dests_broadcast(uint16_t port, struct io_dest *d, size_t *n)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct ifaddrs *ifa = NULL, *i;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_BROADCAST);
	(void)io_dest_add(d, n, &ss, sizeof(*sin));

	if (getifaddrs(&ifa) != 0)
		return 0; /* the limited broadcast still goes out */
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_BROADCAST) ||
		    i->ifa_broadaddr == NULL)
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(sin, i->ifa_broadaddr, sizeof(*sin));
		sin->sin_port = htons(port);
		if (io_dest_add(d, n, &ss, sizeof(*sin)) < 0)
			break;
	}
	freeifaddrs(ifa);
	return 0;
}

static int io_udp_socket(int family, int broadcast)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read the datagrams waiting on fd; record the PONGs that answer our PING.
 * Returns 1 when discovery is complete (target found or out full). */
static int io_collect(int fd, const char *ping_id, const char *target, uint64_t t0_us,
		      ppcp_server_info *out, size_t max, size_t *n, size_t *budget)
{
	size_t base = strlen(ping_id);
	uint8_t buf[PPCP_PING_MAX + 1];

	while (*budget > 0) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ppcp_pong pong;
		ssize_t r;
		size_t i;

		r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &fl);
		if (r < 0)
			return 0; /* EAGAIN, or an ICMP error: nothing more now */
		(*budget)--;
		/* A PONG is never larger than our PING (PROTOCOL.md §10.2). */
		if ((size_t)r > PPCP_PING_MAX)
			continue;
		if (ppcp_pong_decode(buf, (size_t)r, &pong) != 0)
			continue;
		/* Our id, then '.' and the kind of PING it answers. */
		if (strncmp(pong.id, ping_id, base) != 0 || pong.id[base] != '.' ||
		    strchr("ubm", pong.id[base + 1]) == NULL || pong.id[base + 1] == '\0' ||
		    pong.id[base + 2] != '\0')
			continue;
		for (i = 0; i < *n; i++)
			if (strcmp(out[i].pong.server_id, pong.server_id) == 0)
				break;
		if (i == *n) {
			ppcp_server_info *si = &out[*n];
			uint64_t rtt = io_now_us() - t0_us;

			memset(si, 0, sizeof(*si));
			if (getnameinfo((struct sockaddr *)&from, fl, si->address,
					sizeof(si->address), NULL, 0, NI_NUMERICHOST) != 0)
				continue;
			si->port = pong.port;
			si->pong = pong;
			snprintf(si->path, sizeof(si->path), "%s",
				 pong.id[base + 1] == 'b'   ? "broadcast"
				 : pong.id[base + 1] == 'm' ? "multicast"
							    : "unicast");
			si->rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
			(*n)++;
		}
		if (target != NULL && strcmp(pong.server_id, target) == 0)
			return 1;
		if (*n == max)
			return 1;
	}
	return 0;
}

int ppcp_find_server(uint16_t port, const ppcp_find_options *opt, ppcp_server_info *out,
		     size_t max, size_t *n)
{
	struct io_dest dests[IO_FIND_MAX_ADDRS];
	size_t ndest = 0, i, sent = 0, budget = IO_FIND_MAX_DGRAMS;
	int fds[2] = { -1, -1 }; /* IPv4, IPv6 */
	int ret = 0, timeout_ms;
	unsigned flags = opt != NULL ? opt->flags : 0;
	const char *target = opt != NULL ? opt->target : NULL;
	const char *env;
	ppcp_ping ping;
	char base[2 * 8 + 1];
	uint8_t pkt[3][PPCP_PING_MAX];
	uint8_t rnd[8];
	size_t pktlen[3], mark;
	uint64_t t0_us, deadline;

	if (n != NULL)
		*n = 0;
	if (n == NULL || out == NULL || max == 0 || port == 0 ||
	    (opt != NULL && (opt->timeout_ms < 0 || (opt->naddrs > 0 && opt->addrs == NULL))))
		return PPCP_ERR_INVAL;
	if (target != NULL && target[0] == '\0')
		target = NULL;
	timeout_ms = opt != NULL && opt->timeout_ms > 0 ? opt->timeout_ms : IO_FIND_DEFAULT_MS;

	/* Where to PING: the caller's list, else $PPCP_DISCOVER_ADDR, else
	 * broadcast. */
	if (opt != NULL && opt->addrs != NULL) {
		if (opt->naddrs == 0)
			return PPCP_ERR_ADDR;
		for (i = 0; i < opt->naddrs; i++) {
			struct sockaddr_storage ss;
			socklen_t sl;

			ret = io_parse_addr(opt->addrs[i], port, SOCK_DGRAM, &ss, &sl);
			if (ret < 0)
				return ret;
			ret = io_dest_add(dests, &ndest, &ss, sl);
			if (ret < 0)
				return ret;
		}
	} else if ((env = getenv("PPCP_DISCOVER_ADDR")) != NULL) {
		/* Set but empty is a mistake, never a reason to broadcast. */
		if (env[0] == '\0')
			return PPCP_ERR_ADDR;
		ret = io_dests_from_list(env, port, dests, &ndest);
		if (ret < 0)
			return ret;
	} else {
		flags |= PPCP_FIND_BROADCAST;
	}
	for (i = 0; i < ndest; i++)
		dests[i].kind = 'u';
	mark = ndest;
	if (flags & PPCP_FIND_BROADCAST)
		(void)io_dests_broadcast(port, dests, &ndest);
	for (i = mark; i < ndest; i++)
		dests[i].kind = 'b';
	mark = ndest;
	if (flags & PPCP_FIND_MULTICAST)
		(void)io_dests_multicast(port, dests, &ndest);
	for (i = mark; i < ndest; i++)
		dests[i].kind = 'm';

	/* The PING (PROTOCOL.md §10.1), with a fresh random id. */
	memset(&ping, 0, sizeof(ping));
	ret = ppcp__rand(rnd, sizeof(rnd));
	if (ret < 0)
		return ret;
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(base + 2 * i, 3, "%02x", rnd[i]);
	ppcp_hostname_ident(ping.hostname);
	memcpy(ping.client_id, ping.hostname, sizeof(ping.client_id));
	snprintf(ping.version, sizeof(ping.version), "%s", PPCP_VERSION_STRING);
	if (target != NULL) {
		if (strlen(target) > PPCP_ID_MAX)
			return PPCP_ERR_INVAL;
		snprintf(ping.target, sizeof(ping.target), "%s", target);
	}
	ping.ts = (int64_t)time(NULL);
	/* One PING per kind of destination: its id ends in .u, .b or .m, so
	 * the PONG says which path reached the server. */
	for (i = 0; i < 3; i++) {
		snprintf(ping.id, sizeof(ping.id), "%s.%c", base, "ubm"[i]);
		ret = ppcp_ping_encode(&ping, pkt[i], sizeof(pkt[i]), &pktlen[i]);
		if (ret < 0)
			return ret;
	}

	t0_us = io_now_us();
	for (i = 0; i < ndest; i++) {
		int fam = dests[i].ss.ss_family == AF_INET6 ? 1 : 0;
		int k = dests[i].kind == 'b' ? 1 : dests[i].kind == 'm' ? 2 : 0;

		/* SO_BROADCAST on IPv4 also lets a directed broadcast address
		 * given by the caller through. */
		if (fds[fam] < 0)
			fds[fam] = io_udp_socket(fam ? AF_INET6 : AF_INET, !fam);
		if (fds[fam] < 0)
			continue;
		if (sendto(fds[fam], pkt[k], pktlen[k], MSG_NOSIGNAL, (struct sockaddr *)&dests[i].ss,
			   dests[i].sl) == (ssize_t)pktlen[k])
			sent++;
	}
	if (sent == 0) {
		ret = PPCP_ERR_IO;
		goto out;
	}

	deadline = io_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct pollfd pfd[2];
		nfds_t np = 0;
		uint64_t now = io_now_ms();
		int r, done = 0;

		if (now >= deadline || budget == 0)
			break;
		for (i = 0; i < 2; i++) {
			if (fds[i] < 0)
				continue;
			pfd[np].fd = fds[i];
			pfd[np].events = POLLIN;
			pfd[np].revents = 0;
			np++;
		}
		r = poll(pfd, np, io_poll_ms(now, deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = PPCP_ERR_IO;
			goto out;
		}
		for (i = 0; i < np && !done; i++)
			if (pfd[i].revents != 0)
				done = io_collect(pfd[i].fd, base, target, t0_us, out, max, n,
						  &budget);
		if (done)
			break;
	}
	ret = *n > 0 ? 0 : PPCP_ERR_NOT_FOUND;
out:
	for (i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}
