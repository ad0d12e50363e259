/*
 * control.c - the controller side of agents (PROTOCOL.md §11 "agent",
 * docs/CONTROL.md).
 *
 * With accept-agents, ppcpd offers the "agent" extension in AUTH_OK and
 * PONG.  Every established session that agreed on it is an agent: its
 * client_id (from AUTH, ppcp_conn_peer_id) names it, and right after
 * establishment the controller sends it a COMMAND "status" whose answer
 * gives the agent's host name.  An agent that reconnects (same client_id)
 * replaces its older session, which is closed: after an address change
 * the old one would otherwise linger until its idle timeout.
 *
 * The control socket is a UNIX stream socket, mode 0600, in a directory
 * only the daemon's user can enter; SO_PEERCRED lets only that user or
 * root talk.  One request per connection, as one JSON line; the answer is
 * JSON lines ending with {"done":true} (docs/CONTROL.md):
 *
 *   {"op":"list"}
 *   {"op":"command","target":"ID"|"*","p":{COMMAND payload}}
 *   {"op":"file","target":"ID","p":{FILE_REQUEST payload}}
 *
 * After a file request with "op":"put", the client sends the upload's data
 * on the same connection, one line each: {"offset":N,"last":bool,"data":
 * "<base64>"}; each is sent to the agent as a FILE_CHUNK of the request
 * (the relayed request asks for base64 chunks, "binary": false).  While the
 * agent's session has PD_CTL_UPLOAD_HIGH bytes or more waiting to go out,
 * the client is not read; pd_ctl_kick reads it again below
 * PD_CTL_UPLOAD_LOW (under PD_OUT_LOW, where a session paused for another
 * reason reads its peer again, so an upload never keeps it paused).
 *
 * Messages of agents that carry the id of a relayed request are relayed
 * as {"agent":ID,"type":"RESPONSE"|"ERROR"|"FILE_CHUNK","p":...}; file
 * data records as {"agent":ID,"type":"DATA","stream":N,"offset":N,
 * "last":bool,"data":base64}; an agent whose session ends first as
 * {"agent":ID,"type":"lost"}.  A control client that goes away cancels
 * the commands it started (COMMAND cancel).
 */
#define _GNU_SOURCE 1 /* struct ucred */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h" /* ppcp__b64_encode */
#include "ppcpd.h"

enum {
	CTL_LINE_MAX = 1024 * 1024, /* one request */
	CTL_PATH_MAX = 108,         /* sun_path */
	PD_CTL_UPLOAD_HIGH = PD_OUT_LOW,     /* stop reading an uploading client */
	PD_CTL_UPLOAD_LOW = PD_OUT_LOW / 2,  /* and read it again below this */
};

struct cclient;

/* One relayed request waiting for an agent's answer. */
struct pend {
	struct pend *next;
	char id[PPCP_ID_MAX + 1];
	struct cclient *c;
	int is_exec;     /* cancel it when the client goes away */
	uint32_t stream; /* file: the stream the head announced, 0 until then */
};

struct agent {
	struct agent *next;
	struct pd_session *s;
	char client_id[PPCP_ID_MAX + 1];
	char hostname[PPCP_ID_MAX + 1];
	char address[80];
	int64_t since;
	uint64_t seq;
	struct pend *pend;
	/* Streams of file requests whose client went away: their records
	 * still in flight are dropped (PROTOCOL.md §9.5). */
	uint32_t dead[8];
	unsigned ndead;
	int needs_flush; /* ctl_flush_marked writes its session out */
	int needs_read;  /* ctl_on_timer updates its session's reading */
	uint64_t held_since; /* not read because of slow control clients since (uv_now), or 0 */
};

struct cclient {
	uv_pipe_t pipe;
	struct pd_ctl *ctl;
	struct cclient *prev, *next;
	char *buf;
	size_t len;
	int got_request;
	int closing;
	size_t npending; /* answers still expected */
	struct pend *up;       /* a relayed upload whose data lines come from this client */
	struct agent *up_agent;
	int up_paused;         /* not read while the agent's session is backed up */
	int broken;            /* a write or shutdown failed: closed by ctl_on_timer */
	int released;          /* its queue drained: ctl_on_timer reads its agents again */
};

struct pd_ctl {
	struct pd_daemon *d;
	uv_pipe_t listen;
	int listening;
	char path[CTL_PATH_MAX];
	struct agent *agents;
	size_t nagents;
	struct cclient *clients;
	/* Deferred work (ctl_on_timer): closing control clients and reading
	 * agents again never happen inside a loop over agents or requests, and
	 * a control client that holds its agents back too long is dropped. */
	uv_timer_t timer;
	int timer_on;
};

/* ---- the path -------------------------------------------------------- */

void pd_control_default_path(uint16_t port, char *out, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (geteuid() == 0)
		snprintf(out, cap, "/run/ppcpd/control-%u.sock", (unsigned)port);
	else if (xdg != NULL && xdg[0] == '/')
		snprintf(out, cap, "%s/ppcpd-%u.sock", xdg, (unsigned)port);
	else
		snprintf(out, cap, "/tmp/ppcpd-%u/control-%u.sock", (unsigned)geteuid(),
			 (unsigned)port);
}

/* The socket's directory must exist (the defaults are created) and be
 * enterable by its owner only: the daemon's user or root. */
static int ctl_check_dir(const char *path, int create)
{
	char dir[CTL_PATH_MAX];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		pd_error("control socket: cannot create the directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		pd_error("control socket: %s is not a directory: create it (mode 700) or choose --control PATH",
			 dir);
		return -1;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 077) != 0) {
		pd_error("control socket: the directory %s can be entered by other users (mode %03o, owner %u): "
			 "run chmod 700 on it, or choose --control PATH in a private directory",
			 dir, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
		return -1;
	}
	return 0;
}

/* ---- writing to control clients ---------------------------------------- */

struct cw {
	uv_write_t req;
	struct cclient *c;
	char data[];
};

static void ctl_defer(struct pd_ctl *ctl);
static void ctl_on_timer(uv_timer_t *t);

static size_t cc_queued(struct cclient *c)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
}

/* A control client that reads slowly holds back the agents whose answers it
 * waits for (pd_ctl_relay_pending): once its queue is below half the mark,
 * ctl_on_timer reads them again.  The client is still allocated here:
 * closing it cancels its writes, whose callbacks run before the close
 * callback frees it. */
static void cc_on_write(uv_write_t *req, int status)
{
	struct cw *w = (struct cw *)req;
	struct cclient *c = w->c;

	(void)status;
	free(w);
	if (c->closing || c->npending == 0 || c->released ||
	    cc_queued(c) >= PD_CTL_RELAY_HIGH - PD_CTL_RELAY_GAP)
		return;
	c->released = 1;
	ctl_defer(c->ctl);
}

size_t pd_ctl_relay_pending(struct pd_session *s)
{
	struct agent *a = *pd_session_ctl(s);
	size_t n = 0;

	if (a == NULL)
		return 0;
	for (struct pend *p = a->pend; p != NULL; p = p->next)
		if (!p->c->closing)
			n += cc_queued(p->c);
	/* The agent is about to be held back: ctl_on_timer watches how long. */
	if (n >= PD_CTL_RELAY_HIGH - PD_CTL_RELAY_GAP) {
		struct pd_ctl *ctl = pd_session_daemon(s)->ctl;

		if (ctl != NULL && ctl->timer_on && !uv_is_active((uv_handle_t *)&ctl->timer))
			uv_timer_start(&ctl->timer, ctl_on_timer, 1000, 0);
	}
	return n;
}

static void cc_closed(uv_handle_t *h)
{
	struct cclient *c = h->data;

	free(c->buf);
	free(c);
}

static void cc_forget(struct cclient *c);
static void cc_upload_lines(struct cclient *c);
static void cc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void cc_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void cc_close(struct cclient *c)
{
	struct pd_ctl *ctl = c->ctl;

	if (c->closing)
		return;
	c->closing = 1;
	cc_forget(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->pipe, cc_closed);
}

static void cc_send(struct cclient *c, json_t *obj)
{
	char *text;
	size_t n;
	struct cw *w;
	uv_buf_t b;

	if (c->closing || c->broken || obj == NULL) {
		json_decref(obj);
		return;
	}
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text == NULL)
		return;
	n = strlen(text);
	w = pd_xmalloc(sizeof(*w) + n + 1);
	w->c = c;
	memcpy(w->data, text, n);
	w->data[n] = '\n';
	free(text);
	b = uv_buf_init(w->data, (unsigned)(n + 1));
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, cc_on_write) != 0) {
		/* Closed later (ctl_on_timer): the callers are in the middle
		 * of loops over agents and requests that closing would free. */
		free(w);
		c->broken = 1;
		ctl_defer(c->ctl);
	}
}

/* Everything answered: the last line, then close once written. */
static void cc_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct cclient *c = req->data;

	(void)status;
	free(req);
	cc_close(c);
}

static void cc_done(struct cclient *c)
{
	uv_shutdown_t *req;

	if (c->closing)
		return;
	cc_send(c, json_pack("{s:b}", "done", 1));
	if (c->broken)
		return;
	req = pd_xmalloc(sizeof(*req));
	req->data = c;
	if (uv_shutdown(req, (uv_stream_t *)&c->pipe, cc_shutdown_cb) != 0) {
		free(req);
		c->broken = 1;
		ctl_defer(c->ctl);
	}
}

static void cc_error(struct cclient *c, const char *msg)
{
	cc_send(c, json_pack("{s:s}", "error", msg));
	cc_done(c);
}

/* ---- the agent table ----------------------------------------------------- */

static struct agent *ag_find(struct pd_ctl *ctl, const char *id)
{
	for (struct agent *a = ctl->agents; a != NULL; a = a->next)
		if (strcmp(a->client_id, id) == 0)
			return a;
	return NULL;
}

/* p is about to be freed: its client no longer uploads through it. */
static void pend_unlink_upload(struct pend *p)
{
	if (p->c != NULL && p->c->up == p) {
		p->c->up = NULL;
		p->c->up_agent = NULL;
	}
}

static void pend_remove(struct agent *a, struct pend *p)
{
	for (struct pend **pp = &a->pend; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			pend_unlink_upload(p);
			free(p);
			return;
		}
	}
}

/* One answer fewer to wait for. */
static void cc_answered(struct cclient *c)
{
	if (c->npending > 0 && --c->npending == 0)
		cc_done(c);
}

/* Write out the sessions of the agents marked needs_flush.  Writing may end
 * a session, and pd_ctl_agent_down then frees that agent (only that one):
 * so the list is walked with the next one taken first, and no caller loops
 * over agents or their requests around a flush. */
static void ctl_flush_marked(struct pd_ctl *ctl)
{
	struct agent *a, *next;

	for (a = ctl->agents; a != NULL; a = next) {
		next = a->next;
		if (a->needs_flush) {
			a->needs_flush = 0;
			pd_session_flush(a->s);
		}
	}
}

/* ---- deferred work ---------------------------------------------------- */


static void ctl_defer(struct pd_ctl *ctl)
{
	if (!ctl->timer_on)
		return;
	uv_timer_start(&ctl->timer, ctl_on_timer, 0, 0);
}

/* Close broken control clients; read again the agents that clients
 * released; and watch the agents that slow control clients hold back (not
 * read while PD_CTL_RELAY_HIGH bytes of their answers wait): one held for
 * half the idle timeout would soon die of it (a session that is not read
 * hears nothing), so the clients that hold it are closed instead, and
 * their requests cancelled (cc_forget).  A client that reads, however
 * slowly, lets the agent be read every time its queue falls by
 * PD_CTL_RELAY_GAP. */
static void ctl_on_timer(uv_timer_t *t)
{
	struct pd_ctl *ctl = t->data;
	uint64_t now = uv_now(ctl->d->loop);
	uint64_t limit = ctl->d->cfg->idle_timeout_ms / 2;
	struct cclient *c, *cnext;
	struct agent *a, *anext;
	int held = 0;

	for (a = ctl->agents; a != NULL; a = a->next) {
		if (pd_ctl_relay_pending(a->s) < PD_CTL_RELAY_HIGH - PD_CTL_RELAY_GAP) {
			a->held_since = 0;
			continue;
		}
		if (a->held_since == 0)
			a->held_since = now;
		if (now - a->held_since < limit) {
			held = 1;
			continue;
		}
		pd_warn("agent '%s': not read for %llu ms because control clients read nothing of "
			"its answers: closing those clients, their requests are cancelled",
			a->client_id, (unsigned long long)(now - a->held_since));
		a->held_since = 0;
		for (struct pend *p = a->pend; p != NULL; p = p->next)
			if (cc_queued(p->c) > 0)
				p->c->broken = 1;
	}
	for (c = ctl->clients; c != NULL; c = cnext) {
		cnext = c->next;
		if (c->closing)
			continue;
		if (c->broken) {
			/* cc_close frees only c's requests; others are only
			 * marked broken, never freed here. */
			cc_close(c);
			continue;
		}
		if (c->released) {
			c->released = 0;
			for (a = ctl->agents; a != NULL; a = a->next)
				for (struct pend *p = a->pend; p != NULL; p = p->next)
					if (p->c == c)
						a->needs_read = 1;
		}
	}
	/* A closed client's agents are read again too (cc_forget dropped
	 * their requests): every agent that is below the mark is looked at. */
	for (a = ctl->agents; a != NULL; a = anext) {
		anext = a->next;
		if (a->needs_read || pd_ctl_relay_pending(a->s) < PD_CTL_RELAY_HIGH - PD_CTL_RELAY_GAP) {
			a->needs_read = 0;
			pd_session_update_reading(a->s); /* may free a (only a) */
		}
	}
	if (held)
		uv_timer_start(&ctl->timer, ctl_on_timer, 1000, 0);
}

/* The client went away: forget its requests, cancel its commands. */
static void cc_forget(struct cclient *c)
{
	for (struct agent *a = c->ctl->agents; a != NULL; a = a->next) {
		struct pend **pp = &a->pend;

		while (*pp != NULL) {
			struct pend *p = *pp;

			if (p->c != c) {
				pp = &p->next;
				continue;
			}
			if (p->is_exec) {
				json_t *cp = json_pack("{s:s,s:{s:s}}", "name", "cancel", "args", "of",
						       p->id);
				char cid[PPCP_ID_MAX + 1];

				snprintf(cid, sizeof(cid), "ctl-%llu", (unsigned long long)++a->seq);
				(void)pd_session_send(a->s, PPCP_MSG_COMMAND, cid, cp);
				json_decref(cp);
				a->needs_flush = 1;
			} else {
				/* PROTOCOL.md §9.6: the requester cancels; what
				 * is already on its way is dropped. */
				json_t *ep = json_pack("{s:s,s:s}", "code", "cancelled", "message",
						       "the control client went away");

				(void)pd_session_send(a->s, PPCP_MSG_ERROR, p->id, ep);
				json_decref(ep);
				a->needs_flush = 1;
				if (p->stream != 0)
					a->dead[a->ndead++ % 8] = p->stream;
			}
			*pp = p->next;
			pend_unlink_upload(p);
			free(p);
		}
	}
	c->npending = 0;
	ctl_flush_marked(c->ctl);
}

void pd_ctl_agent_up(struct pd_session *s)
{
	struct pd_daemon *d = pd_session_daemon(s);
	struct pd_ctl *ctl = d->ctl;
	const char *id = ppcp_conn_peer_id(pd_session_conn(s));
	struct agent *a, *old;
	char safe[PPCP_ID_MAX * 4 + 1];
	json_t *p;

	if (id == NULL || id[0] == '\0') {
		pd_info("session %s: an agent without client_id: closing", pd_session_name(s));
		pd_session_drop(s, "an agent must announce a client_id");
		return;
	}
	old = ag_find(ctl, id);
	if (old != NULL) {
		pd_info("agent '%s' connected again from %s: closing its session from %s",
			pd_log_safe(safe, sizeof(safe), id), pd_session_name(s), old->address);
		pd_session_drop(old->s, "replaced by a new session of the same agent");
		if (ag_find(ctl, id) == old)
			pd_ctl_agent_down(old->s); /* still flushing its BYE */
	}
	a = pd_xcalloc(1, sizeof(*a));
	a->s = s;
	snprintf(a->client_id, sizeof(a->client_id), "%s", id);
	snprintf(a->address, sizeof(a->address), "%s", pd_session_name(s));
	a->since = (int64_t)time(NULL);
	a->next = ctl->agents;
	ctl->agents = a;
	ctl->nagents++;
	*pd_session_ctl(s) = a;
	pd_info("agent '%s' connected from %s (%zu agents)", pd_log_safe(safe, sizeof(safe), id),
		a->address, ctl->nagents);
	/* Its host name: the answer to a status COMMAND (docs/CONTROL.md). */
	p = json_pack("{s:s,s:{}}", "name", "status", "args");
	(void)pd_session_send(s, PPCP_MSG_COMMAND, "ctl-status", p);
	json_decref(p);
}

void pd_ctl_agent_down(struct pd_session *s)
{
	struct pd_ctl *ctl = pd_session_daemon(s)->ctl;
	struct agent *a = *pd_session_ctl(s);
	char safe[PPCP_ID_MAX * 4 + 1];

	*pd_session_ctl(s) = NULL;
	if (a == NULL || ctl == NULL)
		return;
	for (struct agent **pp = &ctl->agents; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	ctl->nagents--;
	pd_info("agent '%s' (%s) disconnected (%zu agents)",
		pd_log_safe(safe, sizeof(safe), a->client_id), a->address, ctl->nagents);
	while (a->pend != NULL) {
		struct pend *p = a->pend;
		struct cclient *c = p->c;

		a->pend = p->next;
		pend_unlink_upload(p);
		free(p);
		cc_send(c, json_pack("{s:s,s:s}", "agent", a->client_id, "type", "lost"));
		cc_answered(c);
	}
	free(a);
}

static struct pend *pend_find(struct agent *a, const char *id)
{
	for (struct pend *p = a->pend; p != NULL; p = p->next)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

int pd_ctl_on_message(struct pd_session *s, const ppcp_msg *m)
{
	struct agent *a = *pd_session_ctl(s);
	struct pend *p;
	int last = 0;

	if (m->type != PPCP_MSG_RESPONSE && m->type != PPCP_MSG_ERROR &&
	    m->type != PPCP_MSG_FILE_CHUNK)
		return 0;
	if (m->id == NULL)
		return 0;
	if (strcmp(m->id, "ctl-status") == 0) {
		const char *h = json_string_value(json_object_get(
			json_object_get(m->payload, "status"), "hostname"));

		if (h != NULL)
			snprintf(a->hostname, sizeof(a->hostname), "%s", h);
		return 1;
	}
	if (strncmp(m->id, "ctl-", 4) == 0 && pend_find(a, m->id) == NULL)
		return 1; /* the answer to a cancel, or to a request nobody waits for */
	p = pend_find(a, m->id);
	if (p == NULL)
		return 0;
	if (m->type == PPCP_MSG_ERROR)
		last = 1;
	else if (m->type == PPCP_MSG_RESPONSE)
		last = json_is_true(json_object_get(m->payload, "done"));
	else if (m->type == PPCP_MSG_FILE_CHUNK) {
		json_t *st = json_object_get(m->payload, "stream");

		if (json_is_integer(st))
			p->stream = (uint32_t)json_integer_value(st);
		/* The base64 form: the last chunk says so; a head of an empty
		 * range (a probe, a file of 0 bytes) is all there is (§9.2). */
		last = json_is_true(json_object_get(m->payload, "last")) ||
		       json_is_true(json_object_get(m->payload, "done")) ||
		       (json_is_string(json_object_get(m->payload, "sha256")) &&
			json_integer_value(json_object_get(m->payload, "length")) == 0 &&
			json_is_integer(json_object_get(m->payload, "length")));
	}
	cc_send(p->c, json_pack("{s:s,s:s,s:O}", "agent", a->client_id, "type", m->type_name, "p",
				m->payload));
	if (last) {
		struct cclient *c = p->c;

		pend_remove(a, p);
		cc_answered(c);
	}
	return 1;
}

int pd_ctl_on_binary(struct pd_session *s, const uint8_t *data, size_t len)
{
	struct agent *a = *pd_session_ctl(s);
	uint32_t stream;
	uint64_t off;
	int last;
	const uint8_t *fd;
	size_t flen;
	char *b64;
	struct pend *p;

	if (ppcp_file_data_parse(data, len, &stream, &off, &last, &fd, &flen) != 0)
		return 0;
	for (p = a->pend; p != NULL; p = p->next)
		if (p->stream == stream && stream != 0)
			break;
	if (p == NULL) {
		for (unsigned k = 0; k < 8 && k < a->ndead; k++)
			if (stream != 0 && a->dead[k] == stream)
				return 1; /* its client went away */
		return 0;
	}
	b64 = pd_xmalloc(4 * ((flen + 2) / 3) + 1);
	(void)ppcp__b64_encode(b64, fd, flen);
	cc_send(p->c, json_pack("{s:s,s:s,s:I,s:I,s:b,s:s}", "agent", a->client_id, "type", "DATA",
				"stream", (json_int_t)stream, "offset", (json_int_t)off, "last", last,
				"data", b64));
	free(b64);
	if (last) {
		struct cclient *c = p->c;

		pend_remove(a, p);
		cc_answered(c);
	}
	return 1;
}

/* ---- requests ------------------------------------------------------------ */

static void ctl_list(struct cclient *c)
{
	json_t *arr = json_array();

	for (struct agent *a = c->ctl->agents; a != NULL; a = a->next) {
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s,s:I,s:I}", "client_id", a->client_id, "hostname",
				       a->hostname, "address", a->address, "connected_since",
				       (json_int_t)a->since, "last_heard",
				       (json_int_t)pd_session_last_heard(a->s)));
	}
	cc_send(c, json_pack("{s:o}", "agents", arr));
	cc_done(c);
}

static void ctl_relay(struct cclient *c, const char *target, json_t *payload, int file)
{
	struct pd_ctl *ctl = c->ctl;
	json_t *names = json_array();
	size_t sent = 0;

	if (!json_is_object(payload)) {
		json_decref(names);
		cc_error(c, "the request has no payload object \"p\"");
		return;
	}
	if (file && strcmp(target, "*") == 0) {
		json_decref(names);
		cc_error(c, "a file request names one agent");
		return;
	}
	const char *op = file ? json_string_value(json_object_get(payload, "op")) : NULL;
	int put = op != NULL && strcmp(op, "put") == 0;

	/* An upload's data comes as base64 lines: the agent must expect
	 * FILE_CHUNKs, not binary-data records. */
	if (put)
		json_object_set_new(payload, "binary", json_false());
	for (struct agent *a = ctl->agents; a != NULL; a = a->next) {
		struct pend *p;
		int r;

		if (strcmp(target, "*") != 0 && strcmp(target, a->client_id) != 0)
			continue;
		p = pd_xcalloc(1, sizeof(*p));
		snprintf(p->id, sizeof(p->id), "ctl-%llu", (unsigned long long)++a->seq);
		p->c = c;
		p->is_exec = !file;
		r = pd_session_send(a->s, file ? PPCP_MSG_FILE_REQUEST : PPCP_MSG_COMMAND, p->id,
				    payload);
		if (r != 0) {
			cc_send(c, json_pack("{s:s,s:s,s:{s:s,s:s}}", "agent", a->client_id, "type",
					     "ERROR", "p", "code", "internal", "message",
					     ppcp_strerror(r)));
			free(p);
			continue;
		}
		p->next = a->pend;
		a->pend = p;
		if (put) {
			c->up = p;
			c->up_agent = a;
		}
		json_array_append_new(names, json_string(a->client_id));
		sent++;
		c->npending++;
		a->needs_flush = 1;
	}
	cc_send(c, json_pack("{s:o}", "agents", names));
	if (sent == 0)
		cc_done(c);
	ctl_flush_marked(ctl);
}

static void ctl_request(struct cclient *c, const char *line, size_t len)
{
	json_error_t je;
	json_t *req = json_loadb(line, len, 0, &je);
	const char *op, *target;

	c->got_request = 1;
	op = json_string_value(json_object_get(req, "op"));
	target = json_string_value(json_object_get(req, "target"));
	if (op == NULL) {
		cc_error(c, "not a request: a JSON object with \"op\" is expected (docs/CONTROL.md)");
	} else if (strcmp(op, "list") == 0) {
		ctl_list(c);
	} else if ((strcmp(op, "command") == 0 || strcmp(op, "file") == 0) && target != NULL) {
		ctl_relay(c, target, json_object_get(req, "p"), op[0] == 'f');
	} else {
		cc_error(c, "unknown op or no target: list, command or file (docs/CONTROL.md)");
	}
	json_decref(req);
}

/* The data lines of an upload waiting in c->buf, forwarded to the agent as
 * FILE_CHUNKs until its session backs up. */
static void cc_upload_lines(struct cclient *c)
{
	char *nl;

	while (c->up != NULL && !c->closing && !c->broken && !c->up_paused &&
	       (nl = memchr(c->buf, '\n', c->len)) != NULL) {
		struct agent *a = c->up_agent;
		json_t *line = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);
		const json_t *off = json_object_get(line, "offset");
		int r;

		if (!json_is_integer(off) || json_integer_value(off) < 0 ||
		    !json_is_string(json_object_get(line, "data")) ||
		    !json_is_boolean(json_object_get(line, "last")) ||
		    json_object_size(line) != 3) {
			json_decref(line);
			cc_error(c, "a data line is not {\"offset\":N,\"last\":bool,\"data\":\"base64\"} "
				    "(docs/CONTROL.md)");
			return; /* cc_close cancels the upload at the agent */
		}
		r = pd_session_send(a->s, PPCP_MSG_FILE_CHUNK, c->up->id, line);
		json_decref(line);
		if (r != 0) {
			cc_error(c, ppcp_strerror(r));
			return;
		}
		c->len -= (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len);
		pd_session_flush(a->s);
		/* Writing may have ended the agent's session (and freed a):
		 * pd_ctl_agent_down then unlinked the upload. */
		if (c->up == NULL || c->closing)
			return;
		if (pd_session_out_pending(a->s) >= PD_CTL_UPLOAD_HIGH) {
			c->up_paused = 1;
			uv_read_stop((uv_stream_t *)&c->pipe);
		}
	}
}

void pd_ctl_kick(struct pd_session *s)
{
	struct agent *a = *pd_session_ctl(s);
	struct pd_ctl *ctl;

	if (a == NULL || (ctl = pd_session_daemon(s)->ctl) == NULL ||
	    pd_session_out_pending(s) >= PD_CTL_UPLOAD_LOW)
		return;
	for (struct cclient *c = ctl->clients; c != NULL; c = c->next) {
		if (c->up_agent != a || !c->up_paused || c->closing || c->broken)
			continue;
		c->up_paused = 0;
		cc_upload_lines(c);
		if (*pd_session_ctl(s) != a)
			return; /* writing ended the agent's session */
		if (!c->up_paused && !c->closing)
			uv_read_start((uv_stream_t *)&c->pipe, cc_alloc, cc_on_read);
	}
}

static void cc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char rbuf[65536];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void cc_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct cclient *c = st->data;
	char *nl;

	if (c->closing)
		return;
	if (nread < 0) {
		cc_close(c); /* gone: cc_forget cancels what it started */
		return;
	}
	if (nread == 0 || (c->got_request && c->up == NULL))
		return; /* more after the request is ignored; EOF is what counts */
	if (c->len + (size_t)nread > CTL_LINE_MAX) {
		cc_error(c, c->got_request ? "a data line is too long" : "request too long");
		return;
	}
	c->buf = realloc(c->buf, c->len + (size_t)nread + 1);
	if (c->buf == NULL) {
		pd_error("out of memory");
		abort();
	}
	memcpy(c->buf + c->len, buf->base, (size_t)nread);
	c->len += (size_t)nread;
	if (!c->got_request) {
		nl = memchr(c->buf, '\n', c->len);
		if (nl == NULL)
			return;
		ctl_request(c, c->buf, (size_t)(nl - c->buf));
		if (c->closing)
			return;
		c->len -= (size_t)(nl + 1 - c->buf);
		memmove(c->buf, nl + 1, c->len);
	}
	cc_upload_lines(c);
}

static void ctl_on_connection(uv_stream_t *server, int status)
{
	struct pd_ctl *ctl = server->data;
	struct cclient *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	c = pd_xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	uv_pipe_init(ctl->d->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = ctl->clients;
	if (ctl->clients != NULL)
		ctl->clients->prev = c;
	ctl->clients = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		cc_close(c);
		return;
	}
	/* Only our own user or root (SO_PEERCRED). */
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
		cc_close(c);
		return;
	}
	if (cred.uid != geteuid() && cred.uid != 0) {
		char msg[200];

		pd_warn("control socket: refused uid %u (pid %d): only uid %u or root may use it",
			(unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
		snprintf(msg, sizeof(msg),
			 "permission denied: uid %u may not use this control socket (only uid %u or root)",
			 (unsigned)cred.uid, (unsigned)geteuid());
		cc_error(c, msg);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, cc_alloc, cc_on_read);
}

/* ---- start and stop ------------------------------------------------------ */

int pd_ctl_start(struct pd_daemon *d)
{
	const struct pd_config *cfg = d->cfg;
	struct pd_ctl *ctl;
	struct stat st;
	int r;

	if (!cfg->accept_agents)
		return 0;
	ctl = pd_xcalloc(1, sizeof(*ctl));
	ctl->d = d;
	d->ctl = ctl;
	if (cfg->control_path != NULL) {
		if (strlen(cfg->control_path) >= sizeof(ctl->path)) {
			pd_error("control socket: the path %s is too long (at most %zu bytes)",
				 cfg->control_path, sizeof(ctl->path) - 1);
			return -1;
		}
		snprintf(ctl->path, sizeof(ctl->path), "%s", cfg->control_path);
	} else {
		pd_control_default_path(pd_server_port(d), ctl->path, sizeof(ctl->path));
	}
	if (ctl_check_dir(ctl->path, cfg->control_path == NULL) != 0)
		return -1;
	/* A socket left by a daemon that died: the TCP port is ours now, so
	 * no other controller of this port is alive. */
	if (lstat(ctl->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			pd_error("control socket: %s exists and is not a socket: remove it or choose --control PATH",
				 ctl->path);
			return -1;
		}
		(void)unlink(ctl->path);
	}
	uv_timer_init(d->loop, &ctl->timer);
	ctl->timer.data = ctl;
	ctl->timer_on = 1;
	uv_pipe_init(d->loop, &ctl->listen, 0);
	ctl->listen.data = ctl;
	ctl->listening = 1;
	r = uv_pipe_bind(&ctl->listen, ctl->path);
	if (r == 0 && chmod(ctl->path, 0600) != 0)
		r = -errno;
	if (r == 0)
		r = uv_listen((uv_stream_t *)&ctl->listen, 64, ctl_on_connection);
	if (r != 0) {
		pd_error("control socket: cannot listen on %s: %s", ctl->path, uv_strerror(r));
		return -1;
	}
	pd_info("controller: accepting agents; control socket %s", ctl->path);
	return 0;
}

void pd_ctl_close(struct pd_daemon *d)
{
	struct pd_ctl *ctl = d->ctl;

	if (ctl == NULL)
		return;
	if (ctl->listening) {
		ctl->listening = 0;
		uv_close((uv_handle_t *)&ctl->listen, NULL);
		(void)unlink(ctl->path);
	}
	if (ctl->timer_on) {
		ctl->timer_on = 0;
		uv_close((uv_handle_t *)&ctl->timer, NULL);
	}
	while (ctl->clients != NULL)
		cc_close(ctl->clients);
}

void pd_ctl_free(struct pd_daemon *d)
{
	struct pd_ctl *ctl = d->ctl;

	if (ctl == NULL)
		return;
	while (ctl->agents != NULL) {
		struct agent *a = ctl->agents;

		ctl->agents = a->next;
		while (a->pend != NULL) {
			struct pend *p = a->pend;
			a->pend = p->next;
			free(p);
		}
		free(a);
	}
	free(ctl);
	d->ctl = NULL;
}
