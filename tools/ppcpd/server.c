/*
 * server.c - TCP listeners and sessions.
 *
 * Each accepted connection gets one ppcp_conn (server role, system RNG,
 * wall clock for the "s" field) and one uv_timer.  The engine is sans-I/O:
 *
 *   read      -> ppcp_conn_feed (callbacks run inside: established, messages)
 *   EOF       -> ppcp_conn_eof
 *   timer     -> ppcp_conn_on_timeout (handshake deadline, heartbeat, idle)
 *   after any of these, and after every send: pd_session_flush, which
 *   writes what ppcp_conn_out holds (uv_try_write, the rest copied into
 *   uv_write requests), closes the session when the engine ended, and
 *   rearms the timer at the earliest of the engine's deadline, the write
 *   deadline and the close deadline.
 *
 * Limits: at most max-sessions connections; at most max-handshakes
 * connections that have not authenticated yet, and max-handshakes-per-ip
 * of them from one address.  A connection over a limit is closed at once,
 * before any byte is read.  Failed handshakes are counted per address.
 *
 * Backpressure: output waiting for the peer (wq_bytes) above PD_OUT_HIGH
 * pauses the session's child pipes, above PD_OUT_HARD also reading from
 * the peer (a peer that sends requests but reads no answers); both resume
 * below PD_OUT_LOW.  Downloads read the next batch of a file only while
 * wq_bytes is below PD_FILE_WINDOW (files.c), and every drained write
 * kicks them.  Reading from the peer also stops while a child's stdin or
 * an upload's disk lags.  A peer that reads nothing for write-timeout
 * while output waits is closed.
 *
 * Lifetime: a session ends in two steps.  sess_finish() stops reading,
 * kills its commands and waits for the last bytes (BYE, AUTH_FAIL) to be
 * written, for at most PD_CLOSE_DEADLINE_MS; sess_close() closes both
 * handles; the memory goes when both close callbacks ran.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "ppcpd.h"

enum {
	WRITE_CHUNK = 256 * 1024,
	IP_BUCKETS = 1024,
	IP_MAX = 8192,
	REFUSE_LOG_MS = 10000,
	/* The listen backlog (the kernel caps it at net.core.somaxconn, 4096
	 * on Debian 12).  A burst of connections larger than the backlog while
	 * the loop is busy overflows the accept queue: the kernel drops the
	 * client's ACK and retransmits its SYN-ACK after 1, 3, 7 s, so a
	 * legitimate client caught in a flood waits seconds before ppcpd even
	 * sees it.  Every queued connection is accepted, judged against the
	 * limits and closed or served at once, so a deep queue costs only
	 * kernel memory, bounded by somaxconn. */
	LISTEN_BACKLOG = 4096,
};

struct pd_listener {
	uv_tcp_t tcp;
	struct pd_daemon *d;
	ppcp_pong_info pong;
	char name[80];
	int closing;
};

/* Per source address: handshakes in progress, failures seen. */
struct ipent {
	struct ipent *next;
	int family;
	uint8_t addr[16];
	uint32_t handshakes;
	uint64_t failures;
	uint64_t last_seen;
};

struct pd_server {
	struct pd_listener *lis[PD_MAX_LISTEN];
	size_t nlis;
	struct pd_session *sessions;
	size_t nsessions, nhandshakes;
	struct ipent *ips[IP_BUCKETS];
	size_t nips;
	uv_timer_t shutdown_timer;
	int shutdown_timer_on;
	uint64_t refused, refuse_log_at;
};

struct pd_session {
	uv_tcp_t tcp;
	uv_timer_t timer;
	int nhandles;
	struct pd_daemon *d;
	ppcp_conn *conn;
	struct pd_session *prev, *next;
	struct sockaddr_storage peer;
	char name[80];
	struct ipent *ip;   /* while handshaking */
	int handshaking;    /* counted in nhandshakes and ip->handshakes */
	int finishing;      /* closes once the output is written */
	int closing;        /* handles are being closed */
	int reading;
	int pipes_paused;
	int tcp_ping;       /* the first frame was a PING (discovery by TCP) */
	int local_close;    /* we sent BYE */
	enum ppcp_state prev_state; /* before the last engine call */
	uint64_t rx_bytes;
	size_t wq_bytes;    /* bytes in uv_write requests */
	uint64_t write_progress;
	uint64_t finish_deadline;
	struct pd_cmd *cmds; /* exec.c's list */
	struct pd_sfiles *files; /* files.c's transfers */
	int client_role;    /* an outgoing session (ppcp agent): we are the client */
	int connected;      /* client role: the TCP connect finished */
	uv_connect_t connect_req;
	int64_t last_heard; /* Unix time of the last message received */
	void *ctl;          /* controller: this agent's entry (control.c) */
};

struct wreq {
	uv_write_t req;
	size_t len;
	uint8_t data[];
};

static void sess_close(struct pd_session *s);
static void sess_update_reading(struct pd_session *s);
static void sess_on_timer(uv_timer_t *t);

/* ---- per-address table ------------------------------------------------ */

static void ip_key(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			*family = AF_INET;
			memcpy(addr, a->sin6_addr.s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a->sin6_addr.s6_addr, 16);
		}
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		*family = AF_INET;
		memcpy(addr, &a->sin_addr, 4);
	}
}

static uint32_t ip_hash(int family, const uint8_t addr[16])
{
	uint32_t h = 2166136261u ^ (uint32_t)family;

	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % IP_BUCKETS;
}

/* Drop the least recently seen address with no handshake in progress. */
static int ip_evict(struct pd_server *srv)
{
	struct ipent **best = NULL;

	for (size_t b = 0; b < IP_BUCKETS; b++)
		for (struct ipent **pp = &srv->ips[b]; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->handshakes == 0 && (best == NULL || (*pp)->last_seen < (*best)->last_seen))
				best = pp;
	if (best == NULL)
		return -1;
	struct ipent *e = *best;
	*best = e->next;
	free(e);
	srv->nips--;
	return 0;
}

static struct ipent *ip_get(struct pd_server *srv, const struct sockaddr *sa, int create,
			    uint64_t now)
{
	int family;
	uint8_t addr[16];
	uint32_t h;
	struct ipent *e;

	ip_key(sa, &family, addr);
	h = ip_hash(family, addr);
	for (e = srv->ips[h]; e != NULL; e = e->next) {
		if (e->family == family && memcmp(e->addr, addr, 16) == 0) {
			e->last_seen = now;
			return e;
		}
	}
	if (!create)
		return NULL;
	if (srv->nips >= IP_MAX && ip_evict(srv) != 0)
		return NULL;
	e = pd_xcalloc(1, sizeof(*e));
	e->family = family;
	memcpy(e->addr, addr, 16);
	e->last_seen = now;
	e->next = srv->ips[h];
	srv->ips[h] = e;
	srv->nips++;
	return e;
}

/* All half-open slots are taken: make room for a newcomer by closing the
 * oldest half-open connection of the address that holds the most of them,
 * unless the newcomer's address already holds as many.  A flood spread over
 * many addresses then cannot keep a legitimate client out: each of its
 * connections lives only until newer arrivals push it out, while a real
 * handshake finishes in milliseconds (adversarial T41). */
static void srv_evict_half_open(struct pd_server *srv, const struct ipent *newcomer)
{
	struct pd_session *victim = NULL;
	const struct ipent *top = NULL;

	for (struct pd_session *t = srv->sessions; t != NULL; t = t->next)
		if (t->handshaking && t->ip != NULL && !t->closing &&
		    (top == NULL || t->ip->handshakes > top->handshakes))
			top = t->ip;
	if (top == NULL || top->handshakes <= newcomer->handshakes)
		return;
	/* The list is newest first: the last match is the oldest. */
	for (struct pd_session *t = srv->sessions; t != NULL; t = t->next)
		if (t->handshaking && t->ip == top && !t->closing)
			victim = t;
	if (victim != NULL) {
		pd_debug("half-open slots full: closing the oldest from %s", victim->name);
		sess_close(victim);
	}
}

/* The handshake is over (or abandoned): release the half-open slot.
 * Returns the address's failure count after this one. */
static uint64_t sess_hs_done(struct pd_session *s, int failed)
{
	struct pd_server *srv = s->d->srv;
	uint64_t failures = 0;

	if (!s->handshaking)
		return 0;
	s->handshaking = 0;
	srv->nhandshakes--;
	if (s->ip != NULL) {
		s->ip->handshakes--;
		if (failed)
			s->ip->failures++;
		failures = s->ip->failures;
		s->ip = NULL;
	}
	return failures;
}

/* ---- logging of how a session ended ----------------------------------- */

static void sess_report(struct pd_session *s, int err, enum ppcp_state before)
{
	char host[sizeof(s->name)];
	uint64_t failures;

	if (s->handshaking) {
		/* A connection that closed before any hello, or that was a
		 * TCP PING (discovery by TCP: answered, or not for us), is
		 * not a failed handshake. */
		if (before == PPCP_ST_SERVER_EXPECT_CLIENT_HELLO && (s->rx_bytes == 0 || s->tcp_ping)) {
			sess_hs_done(s, 0);
			pd_debug("%s: connection closed before a hello%s: %s", s->name,
				 s->tcp_ping ? " (discovery by TCP)" : "", ppcp_strerror(err));
			return;
		}
		failures = sess_hs_done(s, 1);
		snprintf(host, sizeof(host), "%s", s->name);
		if (strrchr(host, ':') != NULL)
			*strrchr(host, ':') = '\0';
		const char *why = s->conn != NULL ? ppcp_conn_error_detail(s->conn) : "";
		pd_info("handshake with %s failed: %s%s%s (%llu failed handshake%s from %s)", s->name,
			err == PPCP_ERR_TRUNCATED ? "the peer closed the connection in the middle of the handshake"
						  : ppcp_strerror(err),
			why[0] ? ": " : "", why, (unsigned long long)failures, failures == 1 ? "" : "s",
			host);
		return;
	}
	switch (err) {
	case PPCP_ERR_CLOSED:
		if (s->local_close)
			pd_debug("session %s: BYE sent", s->name);
		else
			pd_info("session %s ended by the peer (BYE)", s->name);
		break;
	case PPCP_ERR_TRUNCATED:
		pd_info("session %s ended without BYE (connection closed: truncated)", s->name);
		break;
	default: {
		const char *why = s->conn != NULL ? ppcp_conn_error_detail(s->conn) : "";
		pd_info("session %s failed: %s%s%s", s->name, ppcp_strerror(err), why[0] ? ": " : "",
			why);
		break;
	}
	}
}

/* ---- output ------------------------------------------------------------ */

static void sess_handle_closed(uv_handle_t *h)
{
	struct pd_session *s = h->data;

	if (--s->nhandles > 0)
		return;
	ppcp_conn_free(s->conn);
	free(s);
}

static void sess_arm(struct pd_session *s)
{
	uint64_t now, dl;

	if (s->closing)
		return;
	now = uv_now(s->d->loop);
	dl = s->finishing ? UINT64_MAX : ppcp_conn_next_deadline(s->conn);
	if (s->wq_bytes > 0 && s->write_progress + s->d->cfg->write_timeout_ms < dl)
		dl = s->write_progress + s->d->cfg->write_timeout_ms;
	if (s->finishing && s->finish_deadline < dl)
		dl = s->finish_deadline;
	if (dl == UINT64_MAX)
		uv_timer_stop(&s->timer);
	else
		uv_timer_start(&s->timer, sess_on_timer, dl > now ? dl - now : 0, 0);
}

/* The connection broke under us (reset, EPIPE): nothing more can be sent. */
static void sess_broken(struct pd_session *s, const char *what, int err)
{
	if (s->handshaking || s->finishing)
		pd_debug("session %s: %s failed: %s", s->name, what, uv_strerror(err));
	else
		pd_info("session %s ended: %s failed: %s", s->name, what, uv_strerror(err));
	sess_close(s);
}

static void sess_on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct pd_session *s = req->handle->data;

	s->wq_bytes -= w->len;
	free(w);
	if (s->closing)
		return;
	s->write_progress = uv_now(s->d->loop);
	if (status < 0) {
		sess_broken(s, "write", status);
		return;
	}
	if (s->finishing && s->wq_bytes == 0) {
		sess_close(s);
		return;
	}
	sess_update_reading(s);
	sess_arm(s);
}

/* Move everything the engine queued to the socket.  0 or a libuv error. */
static int sess_write_out(struct pd_session *s)
{
	const uint8_t *data;
	size_t n;

	while ((n = ppcp_conn_out(s->conn, &data)) > 0) {
		struct wreq *w;
		uv_buf_t b;
		size_t chunk;
		int r;

		if (s->wq_bytes == 0) {
			b = uv_buf_init((char *)data, (unsigned)(n < WRITE_CHUNK ? n : WRITE_CHUNK));
			r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
			if (r > 0) {
				ppcp_conn_out_ack(s->conn, (size_t)r);
				continue;
			}
			if (r != UV_EAGAIN)
				return r;
		}
		chunk = n < WRITE_CHUNK ? n : WRITE_CHUNK;
		w = pd_xmalloc(sizeof(*w) + chunk);
		w->len = chunk;
		memcpy(w->data, data, chunk);
		b = uv_buf_init((char *)w->data, (unsigned)chunk);
		r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, sess_on_write);
		if (r != 0) {
			free(w);
			return r;
		}
		if (s->wq_bytes == 0)
			s->write_progress = uv_now(s->d->loop);
		s->wq_bytes += chunk;
		ppcp_conn_out_ack(s->conn, chunk);
	}
	return 0;
}

/* The session is over: stop reading, kill its commands, close once the
 * last bytes are out. */
static void sess_finish(struct pd_session *s)
{
	if (s->finishing || s->closing)
		return;
	s->finishing = 1;
	if (s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = 0;
	}
	pd_exec_detach_all(s);
	pd_files_detach_all(s);
	sess_hs_done(s, 0);
	if (s->wq_bytes == 0) {
		sess_close(s);
		return;
	}
	s->finish_deadline = uv_now(s->d->loop) + PD_CLOSE_DEADLINE_MS;
	sess_arm(s);
}

static void sess_close(struct pd_session *s)
{
	struct pd_server *srv = s->d->srv;

	if (s->closing)
		return;
	s->closing = 1;
	sess_hs_done(s, 0);
	pd_exec_detach_all(s);
	pd_files_detach_all(s);
	if (s->ctl != NULL)
		pd_ctl_agent_down(s);
	if (s->client_role)
		pd_agent_on_closed(s);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	uv_close((uv_handle_t *)&s->tcp, sess_handle_closed);
	uv_close((uv_handle_t *)&s->timer, sess_handle_closed);
}

void pd_session_flush(struct pd_session *s)
{
	enum ppcp_state st;
	int r;

	if (s == NULL || s->closing)
		return;
	r = s->client_role && !s->connected ? 0 : sess_write_out(s);
	if (r != 0) {
		sess_broken(s, "write", r);
		return;
	}
	st = ppcp_conn_state(s->conn);
	if (!s->finishing && (st == PPCP_ST_FAILED || st == PPCP_ST_CLOSED)) {
		sess_report(s, st == PPCP_ST_CLOSED ? PPCP_ERR_CLOSED : ppcp_conn_error(s->conn),
			    s->prev_state);
		sess_finish(s);
		return;
	}
	s->prev_state = st;
	sess_update_reading(s);
	sess_arm(s);
}

/* ---- input --------------------------------------------------------------- */

static void sess_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	/* One buffer for every connection: each read is fed to its engine
	 * before the loop reads anything else. */
	static char rbuf[65536];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void sess_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct pd_session *s = stream->data;
	enum ppcp_state before;
	int err;

	if (nread == 0 || s->closing || s->finishing)
		return;
	if (nread < 0) {
		before = ppcp_conn_state(s->conn);
		if (nread == UV_EOF) {
			err = ppcp_conn_eof(s->conn);
			if (err == 0)
				err = PPCP_ERR_CLOSED;
		} else {
			pd_debug("session %s: read failed: %s", s->name, uv_strerror((int)nread));
			err = before == PPCP_ST_SERVER_EXPECT_AUTH ? PPCP_ERR_PEER_ABORTED
								   : PPCP_ERR_TRUNCATED;
			(void)ppcp_conn_eof(s->conn);
		}
		if (before != PPCP_ST_CLOSED && before != PPCP_ST_FAILED)
			sess_report(s, err, before);
		/* Nothing more can be delivered; what is queued may still go
		 * out if the peer only half-closed. */
		sess_finish(s);
		return;
	}
	/* Byte 4 of the stream starts the first frame's body: '{' is a PING. */
	if (s->rx_bytes <= 4 && s->rx_bytes + (uint64_t)nread > 4)
		s->tcp_ping = buf->base[4 - s->rx_bytes] == '{';
	s->rx_bytes += (uint64_t)nread;
	(void)ppcp_conn_feed(s->conn, (const uint8_t *)buf->base, (size_t)nread, uv_now(s->d->loop));
	pd_session_flush(s);
}

static void sess_update_reading(struct pd_session *s)
{
	size_t stdin_pending, disk_pending, relay_pending;
	int want;

	if (s->closing || s->finishing || (s->client_role && !s->connected))
		return;
	stdin_pending = pd_exec_stdin_pending(s);
	disk_pending = pd_files_write_pending(s);
	relay_pending = pd_ctl_relay_pending(s); /* an agent's answers to a slow control client */
	if (s->reading)
		want = s->wq_bytes < PD_OUT_HARD && stdin_pending < PD_STDIN_HIGH &&
		       disk_pending < PD_FILE_WRITE_HIGH && relay_pending < PD_CTL_RELAY_HIGH;
	else
		want = s->wq_bytes < PD_OUT_LOW && stdin_pending < PD_STDIN_HIGH / 2 &&
		       disk_pending < PD_FILE_WRITE_HIGH / 2 &&
		       relay_pending < PD_CTL_RELAY_HIGH - PD_CTL_RELAY_GAP;
	if (want && !s->reading) {
		if (uv_read_start((uv_stream_t *)&s->tcp, sess_alloc, sess_on_read) == 0)
			s->reading = 1;
	} else if (!want && s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = 0;
		pd_debug("session %s: reading paused (%zu bytes waiting for the peer)", s->name,
			 s->wq_bytes);
	}
	if (!s->pipes_paused && s->wq_bytes >= PD_OUT_HIGH) {
		s->pipes_paused = 1;
		pd_exec_pause(s, 1);
	} else if (s->pipes_paused && s->wq_bytes < PD_OUT_LOW) {
		s->pipes_paused = 0;
		pd_exec_pause(s, 0);
	}
	/* Downloads waiting for the peer to drain (they read nothing while
	 * the window is full). */
	if (s->wq_bytes < PD_FILE_WINDOW)
		pd_files_kick(s);
	/* Uploads relayed from control clients to this agent, likewise. */
	pd_ctl_kick(s);
}

void pd_session_update_reading(struct pd_session *s)
{
	sess_update_reading(s);
}

/* ---- timer --------------------------------------------------------------- */

static void sess_on_timer(uv_timer_t *t)
{
	struct pd_session *s = t->data;
	uint64_t now = uv_now(s->d->loop);

	if (s->closing)
		return;
	if (s->finishing) {
		if (now >= s->finish_deadline) {
			pd_debug("session %s: closing with %zu bytes unwritten", s->name, s->wq_bytes);
			sess_close(s);
		}
		return;
	}
	if (s->wq_bytes > 0 && now >= s->write_progress + s->d->cfg->write_timeout_ms) {
		pd_info("session %s: the peer read nothing for %u ms (write-timeout): closing",
			s->name, s->d->cfg->write_timeout_ms);
		if (s->handshaking)
			sess_hs_done(s, 1);
		sess_close(s);
		return;
	}
	(void)ppcp_conn_on_timeout(s->conn, now);
	pd_session_flush(s);
}

/* ---- engine callbacks ---------------------------------------------------- */

static void sess_on_established(ppcp_conn *c, void *user)
{
	struct pd_session *s = user;
	char cid[PPCP_ID_MAX * 4 + 1];
	uint32_t ext = ppcp_conn_extensions(c);

	sess_hs_done(s, 0);
	s->last_heard = (int64_t)time(NULL);
	pd_info("session %s established (%s '%s'%s%s%s)", s->name,
		s->client_role ? "controller" : "client",
		pd_log_safe(cid, sizeof(cid), ppcp_conn_peer_id(c)),
		ext & PPCP_EXT_KEY_UPDATE ? ", key-update" : "",
		ext & PPCP_EXT_BINARY_DATA ? ", binary-data" : "",
		ext & PPCP_EXT_AGENT ? ", agent" : "");
	if (s->client_role)
		pd_agent_on_established(s);
	else if ((ext & PPCP_EXT_AGENT) && s->d->ctl != NULL)
		pd_ctl_agent_up(s);
}

static void sess_on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	struct pd_session *s = user;
	char code[80], msg[300];

	(void)c;
	if (s->closing || s->finishing)
		return; /* the rest of a read after a fatal error */
	s->last_heard = (int64_t)time(NULL);
	/* Controller: answers of agents to what the control socket sent. */
	if (s->ctl != NULL && pd_ctl_on_message(s, m))
		return;
	switch (m->type) {
	case PPCP_MSG_COMMAND:
		pd_command_dispatch(s, m);
		break;
	case PPCP_MSG_FILE_REQUEST:
		pd_files_request(s, m);
		break;
	case PPCP_MSG_FILE_CHUNK:
		/* Data of an upload; else PROTOCOL.md §8.6, adversarial T33:
		 * nothing was asked. */
		if (!pd_files_chunk(s, m))
			pd_session_send_error(s, m->id, "unauthorized",
					      "unsolicited FILE_CHUNK: no upload with this id is in progress");
		break;
	case PPCP_MSG_RESPONSE:
		pd_session_send_error(s, m->id, "unauthorized",
				      "unsolicited RESPONSE: this server sent no COMMAND");
		break;
	case PPCP_MSG_ERROR:
		/* PROTOCOL.md §9.6: an ERROR with a transfer's id ends it. */
		if (pd_files_peer_error(s, m))
			break;
		pd_info("session %s: the peer sent ERROR %s: %s", s->name,
			pd_log_safe(code, sizeof(code),
				    json_string_value(json_object_get(m->payload, "code"))),
			pd_log_safe(msg, sizeof(msg),
				    json_string_value(json_object_get(m->payload, "message"))));
		break;
	default:
		/* HEARTBEAT (answered by the engine), HEARTBEAT_ACK, BYE
		 * (seen by pd_session_flush as the CLOSED state). */
		break;
	}
}

static void sess_on_binary(ppcp_conn *c, const uint8_t *data, size_t len, void *user)
{
	struct pd_session *s = user;

	(void)c;
	if (s->closing || s->finishing)
		return;
	s->last_heard = (int64_t)time(NULL);
	if (s->ctl != NULL && pd_ctl_on_binary(s, data, len))
		return;
	pd_files_binary(s, data, len);
}

static int64_t sess_unix_time(void *user)
{
	(void)user;
	return (int64_t)time(NULL);
}

/* The engine's configuration shared by both roles. */
static void sess_config(struct pd_daemon *d, struct pd_session *s, ppcp_config *pc,
			enum ppcp_role role)
{
	const struct pd_config *cfg = d->cfg;

	ppcp_config_init(pc, role);
	pc->psk = d->psk;
	pc->psk_len = sizeof(d->psk);
	pc->handshake_timeout_ms = cfg->handshake_timeout_ms;
	pc->heartbeat_ms = cfg->heartbeat_ms;
	pc->idle_timeout_ms = cfg->idle_timeout_ms;
	/* Server: a controller offers "agent" (the engine answers with the
	 * intersection); client: an agent always offers it. */
	if (role == PPCP_ROLE_CLIENT || cfg->accept_agents)
		pc->extensions = PPCP_EXT_ALL | PPCP_EXT_AGENT;
	pc->unix_time = sess_unix_time;
	pc->cb.on_established = sess_on_established;
	pc->cb.on_message = sess_on_message;
	pc->cb.on_binary = sess_on_binary;
	pc->user = s;
}

/* ---- accepting ----------------------------------------------------------- */

static void free_on_close(uv_handle_t *h)
{
	free(h->data);
}

/* Log at most one warning per REFUSE_LOG_MS: a flood must not flood the log. */
static void srv_refuse_log(struct pd_daemon *d, const char *why)
{
	struct pd_server *srv = d->srv;
	uint64_t now = uv_now(d->loop);

	srv->refused++;
	if (now >= srv->refuse_log_at) {
		pd_warn("refusing connections: %s (%llu refused since the last report)", why,
			(unsigned long long)srv->refused);
		srv->refused = 0;
		srv->refuse_log_at = now + REFUSE_LOG_MS;
	}
}

static void srv_on_connection(uv_stream_t *server, int status)
{
	struct pd_listener *lis = server->data;
	struct pd_daemon *d = lis->d;
	struct pd_server *srv = d->srv;
	const struct pd_config *cfg = d->cfg;
	struct pd_session *s;
	struct ipent *ip;
	ppcp_config pc;
	uv_tcp_t *tcp;
	int len, r;
	char why[160];

	if (status < 0) {
		/* EMFILE and the like: libuv has already dropped the connection. */
		snprintf(why, sizeof(why), "accept on %s failed: %s", lis->name, uv_strerror(status));
		pd_debug("%s", why);
		srv_refuse_log(d, why);
		return;
	}
	s = pd_xcalloc(1, sizeof(*s));
	tcp = &s->tcp;
	uv_tcp_init(d->loop, tcp);
	if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
		tcp->data = s;
		uv_close((uv_handle_t *)tcp, free_on_close);
		return;
	}
	len = sizeof(s->peer);
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&s->peer, &len) != 0) {
		tcp->data = s;
		uv_close((uv_handle_t *)tcp, free_on_close);
		return;
	}
	pd_addr_str((struct sockaddr *)&s->peer, s->name, sizeof(s->name));

	/* Limits, judged before anything is read (adversarial T41). */
	ip = ip_get(srv, (struct sockaddr *)&s->peer, 1, uv_now(d->loop));
	if (!d->shutting_down && srv->nsessions < cfg->max_sessions &&
	    srv->nhandshakes >= cfg->max_handshakes && ip != NULL)
		srv_evict_half_open(srv, ip);
	why[0] = '\0';
	if (d->shutting_down)
		snprintf(why, sizeof(why), "shutting down");
	else if (srv->nsessions >= cfg->max_sessions)
		snprintf(why, sizeof(why), "%u sessions open (max-sessions)", cfg->max_sessions);
	else if (srv->nhandshakes >= cfg->max_handshakes)
		snprintf(why, sizeof(why), "%u handshakes in progress (max-handshakes)",
			 cfg->max_handshakes);
	else if (ip == NULL)
		snprintf(why, sizeof(why), "too many addresses with handshakes in progress");
	else if (ip->handshakes >= cfg->max_handshakes_per_ip)
		snprintf(why, sizeof(why), "%u handshakes in progress from one address (max-handshakes-per-ip)",
			 cfg->max_handshakes_per_ip);
	if (why[0] != '\0') {
		pd_debug("refusing the connection from %s: %s", s->name, why);
		srv_refuse_log(d, why);
		tcp->data = s;
		uv_close((uv_handle_t *)tcp, free_on_close);
		return;
	}

	sess_config(d, s, &pc, PPCP_ROLE_SERVER);
	pc.server_id = d->server_id;
	pc.pong = &lis->pong;
	r = ppcp_conn_new(&s->conn, &pc, uv_now(d->loop));
	if (r != 0) {
		pd_error("cannot create a session for %s: %s", s->name, ppcp_strerror(r));
		tcp->data = s;
		uv_close((uv_handle_t *)tcp, free_on_close);
		return;
	}
	s->d = d;
	tcp->data = s;
	uv_timer_init(d->loop, &s->timer);
	s->timer.data = s;
	s->nhandles = 2;
	uv_tcp_nodelay(tcp, 1);

	s->handshaking = 1;
	s->prev_state = PPCP_ST_SERVER_EXPECT_CLIENT_HELLO;
	s->ip = ip;
	ip->handshakes++;
	srv->nhandshakes++;
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	pd_debug("connection from %s on %s (%zu open, %zu handshaking)", s->name, lis->name,
		 srv->nsessions, srv->nhandshakes);
	sess_update_reading(s);
	sess_arm(s);
}

/* ---- listeners ----------------------------------------------------------- */

static uint16_t addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static void lis_closed(uv_handle_t *h)
{
	free(h->data);
}

static void lis_close(struct pd_listener *l)
{
	if (l->closing)
		return;
	l->closing = 1;
	uv_close((uv_handle_t *)&l->tcp, lis_closed);
}

/* Listen on one address: TCP, and UDP discovery on the same address and
 * port.  Port 0 takes a free port for both (tests): TCP picks one, and
 * if UDP cannot have the same number a new one is tried. */
static int srv_listen_one(struct pd_daemon *d, const struct pd_listen *la)
{
	struct pd_server *srv = d->srv;
	int tries = addr_port((const struct sockaddr *)&la->addr) == 0 ? 32 : 1;
	int r = 0;

	for (int t = 0; t < tries; t++) {
		struct sockaddr_storage ss = la->addr;
		struct pd_listener *l = pd_xcalloc(1, sizeof(*l));
		int len = sizeof(ss);

		l->d = d;
		uv_tcp_init(d->loop, &l->tcp);
		l->tcp.data = l;
		r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss,
				ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
		if (r == 0)
			r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, srv_on_connection);
		if (r == 0)
			r = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
		if (r == 0)
			r = pd_disco_add(d, (struct sockaddr *)&ss, la->wildcard,
					 addr_port((struct sockaddr *)&ss));
		if (r != 0) {
			lis_close(l);
			if (r == UV_EADDRINUSE && tries > 1)
				continue;
			return r;
		}
		pd_addr_str((struct sockaddr *)&ss, l->name, sizeof(l->name));
		l->pong.server_id = d->server_id;
		l->pong.hostname = d->hostname;
		l->pong.port = addr_port((struct sockaddr *)&ss);
		l->pong.capabilities = PPCP_EXT_ALL | (d->cfg->accept_agents ? PPCP_EXT_AGENT : 0);
		srv->lis[srv->nlis++] = l;
		pd_info("listening on %s (TCP sessions, UDP discovery)", l->name);
		return 0;
	}
	return r;
}

void pd_server_init(struct pd_daemon *d)
{
	if (d->srv == NULL)
		d->srv = pd_xcalloc(1, sizeof(*d->srv));
}

uint16_t pd_server_port(const struct pd_daemon *d)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (d->srv == NULL || d->srv->nlis == 0 ||
	    uv_tcp_getsockname(&d->srv->lis[0]->tcp, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return addr_port((struct sockaddr *)&ss);
}

/* ---- outgoing sessions (ppcp agent) ---------------------------------------- */

static void sess_on_connect(uv_connect_t *req, int status)
{
	struct pd_session *s = req->data;

	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		pd_info("cannot connect to %s: %s", s->name, uv_strerror(status));
		sess_close(s);
		return;
	}
	s->connected = 1;
	uv_tcp_nodelay(&s->tcp, 1);
	pd_debug("connected to %s: handshake", s->name);
	pd_session_flush(s); /* the CLIENT_HELLO, and start reading */
}

int pd_session_connect(struct pd_daemon *d, const struct sockaddr *addr, const char *expect_id,
		       const char *client_id, struct pd_session **out)
{
	struct pd_server *srv = d->srv;
	struct pd_session *s = pd_xcalloc(1, sizeof(*s));
	ppcp_config pc;
	int r;

	s->d = d;
	s->client_role = 1;
	memcpy(&s->peer, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							   : sizeof(struct sockaddr_in));
	pd_addr_str(addr, s->name, sizeof(s->name));
	sess_config(d, s, &pc, PPCP_ROLE_CLIENT);
	pc.server_id = expect_id;
	pc.client_id = client_id;
	r = ppcp_conn_new(&s->conn, &pc, uv_now(d->loop));
	if (r != 0) {
		pd_error("cannot create a session for %s: %s", s->name, ppcp_strerror(r));
		free(s);
		return r;
	}
	uv_tcp_init(d->loop, &s->tcp);
	s->tcp.data = s;
	uv_timer_init(d->loop, &s->timer);
	s->timer.data = s;
	s->nhandles = 2;
	s->prev_state = PPCP_ST_CLIENT_EXPECT_SERVER_HELLO;
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	s->connect_req.data = s;
	*out = s;
	r = uv_tcp_connect(&s->connect_req, &s->tcp, addr, sess_on_connect);
	if (r != 0) {
		pd_info("cannot connect to %s: %s", s->name, uv_strerror(r));
		sess_close(s); /* the agent hears of it through pd_agent_on_closed */
		return 0;
	}
	sess_arm(s);
	return 0;
}

void pd_session_drop(struct pd_session *s, const char *why)
{
	if (s->closing)
		return;
	pd_info("session %s: %s: closing", s->name, why);
	if (!s->finishing && ppcp_conn_state(s->conn) == PPCP_ST_ESTABLISHED) {
		s->local_close = 1;
		(void)ppcp_conn_close(s->conn, why);
		pd_session_flush(s);
		if (!s->closing)
			sess_finish(s);
		return;
	}
	sess_close(s);
}

int pd_session_sockname(struct pd_session *s, struct sockaddr_storage *out)
{
	int len = sizeof(*out);

	return uv_tcp_getsockname(&s->tcp, (struct sockaddr *)out, &len);
}

int pd_session_is_client(const struct pd_session *s)
{
	return s->client_role;
}

const struct sockaddr *pd_session_peer(const struct pd_session *s)
{
	return (const struct sockaddr *)&s->peer;
}

void **pd_session_ctl(struct pd_session *s)
{
	return &s->ctl;
}

int64_t pd_session_last_heard(const struct pd_session *s)
{
	return s->last_heard;
}

int pd_server_start(struct pd_daemon *d)
{
	const struct pd_config *cfg = d->cfg;
	struct rlimit rl;

	pd_server_init(d);
	/* Every session is a descriptor, every command three more. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct pd_listen *la = &cfg->listen[i];
		int r = srv_listen_one(d, la);

		if (r == 0)
			continue;
		if (cfg->listen_is_default && la->addr.ss_family == AF_INET6 &&
		    (r == UV_EAFNOSUPPORT || r == UV_EADDRNOTAVAIL)) {
			pd_warn("IPv6 is not available (%s): listening on IPv4 only", uv_strerror(r));
			continue;
		}
		pd_error("cannot listen on %s: %s: %s", la->text, uv_strerror(r),
			 r == UV_EADDRINUSE ? "another program (another ppcpd?) uses this port; stop it or choose --listen ADDR:PORT"
			 : r == UV_EACCES  ? "ports below 1024 need privileges; choose another port"
			 : r == UV_EMFILE || r == UV_ENFILE || r == UV_ENOBUFS || r == UV_ENOMEM
				? "the system is out of descriptors or memory; raise the open-file limit (ulimit -n, LimitNOFILE=) or free some, then start ppcpd again"
				: "check the address with 'ip addr'");
		return -1;
	}
	if (d->srv->nlis == 0) {
		pd_error("no address to listen on: give --listen ADDR:PORT");
		return -1;
	}
	return 0;
}

/* ---- shutdown ------------------------------------------------------------ */

static void srv_shutdown_timer_closed(uv_handle_t *h)
{
	(void)h;
}

static void srv_on_shutdown_deadline(uv_timer_t *t)
{
	struct pd_daemon *d = t->data;
	struct pd_server *srv = d->srv;

	pd_warn("shutdown: %zu sessions still flushing after %d s: closing them", srv->nsessions,
		PD_SHUTDOWN_GRACE_MS / 1000);
	while (srv->sessions != NULL)
		sess_close(srv->sessions);
	pd_exec_abandon_all(d);
	uv_close((uv_handle_t *)t, srv_shutdown_timer_closed);
	srv->shutdown_timer_on = 0;
}

void pd_server_shutdown(struct pd_daemon *d)
{
	struct pd_server *srv = d->srv;
	struct pd_session *s, *next;

	if (d->shutting_down)
		return;
	d->shutting_down = 1;
	pd_info("shutting down: %zu sessions open", srv->nsessions);
	for (size_t i = 0; i < srv->nlis; i++)
		lis_close(srv->lis[i]);
	srv->nlis = 0;
	pd_disco_close(d);
	pd_ctl_close(d);
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->finishing || s->closing)
			continue;
		if (ppcp_conn_state(s->conn) == PPCP_ST_ESTABLISHED) {
			/* PROTOCOL.md §8.5: BYE, then close once written. */
			s->local_close = 1;
			(void)ppcp_conn_close(s->conn, "server shutting down");
			pd_session_flush(s);
		} else {
			sess_close(s);
		}
	}
	pd_exec_kill_all(d);
	/* Unreferenced: when everything closed earlier the loop just ends. */
	uv_timer_init(d->loop, &srv->shutdown_timer);
	srv->shutdown_timer.data = d;
	uv_timer_start(&srv->shutdown_timer, srv_on_shutdown_deadline, PD_SHUTDOWN_GRACE_MS, 0);
	uv_unref((uv_handle_t *)&srv->shutdown_timer);
	srv->shutdown_timer_on = 1;
}

void pd_server_free(struct pd_daemon *d)
{
	struct pd_server *srv = d->srv;

	if (srv == NULL)
		return;
	for (size_t b = 0; b < IP_BUCKETS; b++) {
		while (srv->ips[b] != NULL) {
			struct ipent *e = srv->ips[b];
			srv->ips[b] = e->next;
			free(e);
		}
	}
	free(srv);
	d->srv = NULL;
}

/* ---- for command.c and exec.c ------------------------------------------- */

const char *pd_session_name(const struct pd_session *s)
{
	return s->name;
}

struct pd_cmd **pd_session_cmds(struct pd_session *s)
{
	return &s->cmds;
}

struct pd_daemon *pd_session_daemon(struct pd_session *s)
{
	return s->d;
}

struct pd_sfiles **pd_session_files(struct pd_session *s)
{
	return &s->files;
}

ppcp_conn *pd_session_conn(struct pd_session *s)
{
	return s->conn;
}

size_t pd_session_out_pending(const struct pd_session *s)
{
	return s->wq_bytes;
}

int pd_session_send_file_data(struct pd_session *s, uint32_t stream, uint64_t offset, int last,
			      const uint8_t *data, size_t len)
{
	if (s == NULL || s->closing || s->finishing)
		return PPCP_ERR_STATE;
	return ppcp_conn_send_file_data(s->conn, stream, offset, last, data, len);
}

int pd_session_send_file_chunk(struct pd_session *s, const char *id, uint64_t offset, int last,
			       const uint8_t *data, size_t len)
{
	if (s == NULL || s->closing || s->finishing)
		return PPCP_ERR_STATE;
	return ppcp_conn_send_file_chunk(s->conn, id, offset, last, data, len);
}

void pd_session_fail(struct pd_session *s, const char *why)
{
	char safe[400];

	if (s->closing || s->finishing)
		return;
	/* The library has no call that fails a connection from outside: the
	 * session ends here, without BYE, as after any fatal error. */
	pd_info("session %s failed: %s: %s", s->name, ppcp_strerror(PPCP_ERR_BAD_MESSAGE),
		pd_log_safe(safe, sizeof(safe), why));
	sess_close(s);
}

int pd_session_send(struct pd_session *s, enum ppcp_msg_type type, const char *id,
		    const struct json_t *payload)
{
	if (s == NULL || s->closing || s->finishing)
		return PPCP_ERR_STATE;
	return ppcp_conn_send(s->conn, type, id, payload, NULL);
}

void pd_session_send_error(struct pd_session *s, const char *id, const char *code,
			   const char *fmt, ...)
{
	char msg[1024];
	json_t *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p = json_pack("{s:s,s:s}", "code", code, "message", msg);
	if (p == NULL) {
		/* A peer's string cut inside a UTF-8 sequence: say it in ASCII. */
		char safe[1024];
		p = json_pack("{s:s,s:s}", "code", code, "message",
			      pd_log_safe(safe, sizeof(safe), msg));
	}
	if (p == NULL)
		return;
	(void)pd_session_send(s, PPCP_MSG_ERROR, id, p);
	json_decref(p);
}
