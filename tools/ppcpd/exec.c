/*
 * exec.c - the child processes of COMMAND exec/shell (PROTOCOL.md §8.4).
 *
 * A command is a uv_process_t started with UV_PROCESS_DETACHED, so the
 * child calls setsid() and leads its own process group: killing -pid
 * reaches its grandchildren too.  stdout and stderr are pipes read as the
 * program writes; each read (at most PD_OUTPUT_CHUNK bytes) becomes one
 * RESPONSE {"stream","data"}.  stdin is /dev/null (libuv's UV_IGNORE)
 * unless the COMMAND asked for it, then a pipe fed by stdin COMMANDs.
 * libuv opens every descriptor of the daemon with O_CLOEXEC and resets the
 * signal dispositions and mask in the child, so the child inherits nothing
 * but its three standard descriptors.
 *
 * A command is done when its program was reaped (libuv's exit callback;
 * every child is reaped) and both output pipes reached EOF; then exactly
 * one final RESPONSE goes out and what is left of the process group gets
 * SIGKILL.  Its timer serves, whichever comes first:
 *   - the command's deadline: timed_out, then the kill sequence;
 *   - the kill sequence: SIGTERM to the group, SIGKILL PD_KILL_GRACE_MS
 *     later;
 *   - after the program exited, pipes still held open by a grandchild:
 *     after PD_DRAIN_GRACE_MS without output the group is killed and the
 *     pipes closed.
 * The output cap (max-output) counts stdout and stderr together; past it
 * the output is discarded, truncated is set and the group killed.
 *
 * A command whose session ends is detached: it is killed, its output
 * discarded, and it is reaped and freed like any other.  Memory is freed
 * when every handle's close callback ran (nhandles).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "internal.h" /* ppcp__b64_encode */
#include "ppcpd.h"

struct pd_cmd {
	struct pd_cmd *all_prev, *all_next; /* d->cmds */
	struct pd_cmd *s_prev, *s_next;     /* the session's list */
	struct pd_daemon *d;
	struct pd_session *s; /* NULL once detached */
	char id[PPCP_ID_MAX + 1];
	char prog[80]; /* argv[0], made safe for logs */
	uv_process_t proc;
	uv_pipe_t out, err, in;
	uv_timer_t timer;
	int nhandles;
	int out_open, err_open, in_open;
	int want_stdin, stdin_eof;
	size_t stdin_pending;
	int exited;
	int64_t exit_status;
	int term_signal;
	int timed_out, truncated;
	int done, paused;
	uint64_t out_bytes;
	uint64_t started, deadline, kill_at, last_activity;
	int kill_sent, sigkill_sent;
	int pid;
};

struct stdin_req {
	uv_write_t req;
	size_t len;
	uint8_t data[];
};

static void cmd_arm(struct pd_cmd *c);

/* ---- lists and lifetime ------------------------------------------------ */

static void cmd_unlink_session(struct pd_cmd *c)
{
	struct pd_cmd **head;

	if (c->s == NULL)
		return;
	head = pd_session_cmds(c->s);
	if (c->s_prev != NULL)
		c->s_prev->s_next = c->s_next;
	else
		*head = c->s_next;
	if (c->s_next != NULL)
		c->s_next->s_prev = c->s_prev;
	c->s_prev = c->s_next = NULL;
	c->s = NULL;
}

static void cmd_handle_closed(uv_handle_t *h)
{
	struct pd_cmd *c = h->data;

	if (--c->nhandles > 0)
		return;
	if (c->all_prev != NULL)
		c->all_prev->all_next = c->all_next;
	else
		c->d->cmds = c->all_next;
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	free(c);
}

static void cmd_close(struct pd_cmd *c, uv_handle_t *h, int *open_flag)
{
	if (open_flag != NULL) {
		if (!*open_flag)
			return;
		*open_flag = 0;
	}
	if (!uv_is_closing(h))
		uv_close(h, cmd_handle_closed);
	(void)c;
}

/* Signal the whole process group; the group may already be empty. */
static void cmd_signal(struct pd_cmd *c, int sig)
{
	if (c->pid > 0 && kill(-c->pid, sig) != 0 && errno != ESRCH)
		pd_debug("command %s: kill(-%d, %d): %s", c->id, c->pid, sig, strerror(errno));
}

/* SIGTERM to the group now, SIGKILL PD_KILL_GRACE_MS later. */
static void cmd_kill(struct pd_cmd *c)
{
	if (c->kill_sent || c->done)
		return;
	c->kill_sent = 1;
	c->kill_at = uv_now(c->d->loop);
	cmd_signal(c, SIGTERM);
	cmd_arm(c);
}

/* ---- output --------------------------------------------------------------- */

/* One RESPONSE {"stream","data"}; a chunk too large for the peer's
 * max_record is sent in halves (the engine says PPCP_ERR_TOO_BIG before
 * sealing anything). */
static int cmd_send_chunk(struct pd_cmd *c, const char *stream, const uint8_t *data, size_t n)
{
	char *b64 = pd_xmalloc(4 * ((n + 2) / 3) + 1);
	json_t *p;
	int r = PPCP_ERR_NOMEM;

	ppcp__b64_encode(b64, data, n);
	p = json_pack("{s:s,s:s}", "stream", stream, "data", b64);
	free(b64);
	if (p != NULL) {
		r = pd_session_send(c->s, PPCP_MSG_RESPONSE, c->id, p);
		json_decref(p);
	}
	if (r == PPCP_ERR_TOO_BIG && n > 1) {
		r = cmd_send_chunk(c, stream, data, n / 2);
		if (r == 0)
			r = cmd_send_chunk(c, stream, data + n / 2, n - n / 2);
	}
	return r;
}

static void cmd_output(struct pd_cmd *c, const char *stream, const uint8_t *data, size_t n)
{
	const struct pd_config *cfg = c->d->cfg;
	uint64_t room;

	if (c->truncated || c->s == NULL)
		return; /* discarded */
	room = cfg->max_output - c->out_bytes;
	if (n > room) {
		c->truncated = 1;
		n = (size_t)room;
		pd_info("command %s of %s ('%s'): output passed max-output (%llu bytes): killing it",
			c->id, pd_session_name(c->s), c->prog,
			(unsigned long long)cfg->max_output);
		cmd_kill(c);
	}
	if (n > 0) {
		c->out_bytes += n;
		(void)cmd_send_chunk(c, stream, data, n);
	}
	pd_session_flush(c->s);
}

static void cmd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	/* One buffer for every pipe: each read is sent before the next. */
	static char rbuf[PD_OUTPUT_CHUNK];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void cmd_maybe_done(struct pd_cmd *c);

static void cmd_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct pd_cmd *c = st->data;
	int is_err = st == (uv_stream_t *)&c->err;

	if (n == 0)
		return;
	if (n < 0) {
		/* EOF, or an error that ends the stream all the same.  After an
		 * error the output is incomplete: the client must not take it
		 * for the whole (PROTOCOL.md §8.4, "truncated"). */
		if (n != UV_EOF && !c->truncated && c->s != NULL) {
			char line[200];
			int k = snprintf(line, sizeof(line),
					 "ppcpd: reading the command's %s failed (%s): its output is "
					 "incomplete and the command was stopped\n",
					 is_err ? "stderr" : "stdout", uv_strerror((int)n));
			pd_warn("command %s of %s ('%s'): reading its %s failed: %s; output incomplete, "
				"stopping it",
				c->id, pd_session_name(c->s), c->prog, is_err ? "stderr" : "stdout",
				uv_strerror((int)n));
			if (k > 0)
				(void)cmd_send_chunk(c, "stderr", (const uint8_t *)line,
						     (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
			pd_session_flush(c->s);
			c->truncated = 1;
			cmd_kill(c);
		}
		cmd_close(c, (uv_handle_t *)st, is_err ? &c->err_open : &c->out_open);
		cmd_maybe_done(c);
		return;
	}
	c->last_activity = uv_now(c->d->loop);
	cmd_output(c, is_err ? "stderr" : "stdout", (const uint8_t *)buf->base, (size_t)n);
	if (c->exited)
		cmd_arm(c);
}

/* ---- the end -------------------------------------------------------------- */

static void cmd_maybe_done(struct pd_cmd *c)
{
	struct pd_session *s = c->s;
	double secs;
	json_t *p;

	if (c->done || !c->exited || c->out_open || c->err_open)
		return;
	c->done = 1;
	/* Whatever is left of the group does not outlive the command. */
	cmd_signal(c, SIGKILL);

	secs = (double)(uv_now(c->d->loop) - c->started) / 1000.0;
	if (c->term_signal != 0)
		pd_info("command %s of %s ('%s'): killed by signal %d after %.2f s, %llu bytes of output%s%s",
			c->id, s != NULL ? pd_session_name(s) : "a closed session", c->prog,
			c->term_signal, secs, (unsigned long long)c->out_bytes,
			c->timed_out ? ", timed out" : "", c->truncated ? ", truncated" : "");
	else
		pd_info("command %s of %s ('%s'): exit %lld after %.2f s, %llu bytes of output%s%s",
			c->id, s != NULL ? pd_session_name(s) : "a closed session", c->prog,
			(long long)c->exit_status, secs, (unsigned long long)c->out_bytes,
			c->timed_out ? ", timed out" : "", c->truncated ? ", truncated" : "");

	if (s != NULL) {
		/* PROTOCOL.md §8.4: the one final RESPONSE. */
		p = json_pack("{s:b,s:o,s:o,s:b,s:b}", "done", 1, "exit",
			      c->term_signal != 0 ? json_null() : json_integer(c->exit_status),
			      "signal",
			      c->term_signal != 0 ? json_integer(c->term_signal) : json_null(),
			      "timed_out", c->timed_out, "truncated", c->truncated);
		if (p != NULL) {
			(void)pd_session_send(s, PPCP_MSG_RESPONSE, c->id, p);
			json_decref(p);
		}
	}
	cmd_unlink_session(c);
	cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
	cmd_close(c, (uv_handle_t *)&c->timer, NULL);
	cmd_close(c, (uv_handle_t *)&c->proc, NULL);
	if (s != NULL)
		pd_session_flush(s);
}

static void cmd_on_exit(uv_process_t *proc, int64_t status, int sig)
{
	struct pd_cmd *c = proc->data;

	c->exited = 1;
	c->exit_status = status;
	c->term_signal = sig;
	c->last_activity = uv_now(c->d->loop);
	cmd_maybe_done(c);
	if (!c->done)
		cmd_arm(c);
}

/* ---- the timer ------------------------------------------------------------ */

static void cmd_on_timer(uv_timer_t *t)
{
	struct pd_cmd *c = t->data;
	uint64_t now = uv_now(c->d->loop);

	if (c->done)
		return;
	if (!c->kill_sent && now >= c->deadline) {
		c->timed_out = 1;
		pd_info("command %s ('%s'): timed out after %llu s: killing its process group",
			c->id, c->prog, (unsigned long long)((c->deadline - c->started) / 1000));
		cmd_kill(c);
	}
	if (c->kill_sent && !c->sigkill_sent && now >= c->kill_at + PD_KILL_GRACE_MS) {
		c->sigkill_sent = 1;
		cmd_signal(c, SIGKILL);
	}
	if (c->exited && !c->paused && now >= c->last_activity + PD_DRAIN_GRACE_MS) {
		/* The program is gone; a grandchild holds its output open. */
		cmd_signal(c, SIGKILL);
		cmd_close(c, (uv_handle_t *)&c->out, &c->out_open);
		cmd_close(c, (uv_handle_t *)&c->err, &c->err_open);
		cmd_maybe_done(c);
		return;
	}
	cmd_arm(c);
}

static void cmd_arm(struct pd_cmd *c)
{
	uint64_t now = uv_now(c->d->loop), dl = UINT64_MAX;

	if (c->done)
		return;
	if (!c->kill_sent)
		dl = c->deadline;
	if (c->kill_sent && !c->sigkill_sent && c->kill_at + PD_KILL_GRACE_MS < dl)
		dl = c->kill_at + PD_KILL_GRACE_MS;
	if (c->exited && !c->paused && c->last_activity + PD_DRAIN_GRACE_MS < dl)
		dl = c->last_activity + PD_DRAIN_GRACE_MS;
	if (dl == UINT64_MAX)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, cmd_on_timer, dl > now ? dl - now : 0, 0);
}

/* ---- start ---------------------------------------------------------------- */

int pd_exec_start(struct pd_session *s, const struct pd_spawn *sp, struct pd_cmd **out)
{
	struct pd_daemon *d = pd_session_daemon(s);
	uv_loop_t *loop = d->loop;
	uv_process_options_t opt;
	uv_stdio_container_t stdio[3];
	struct pd_cmd *c = pd_xcalloc(1, sizeof(*c)), **head;
	int r;

	c->d = d;
	snprintf(c->id, sizeof(c->id), "%s", sp->id);
	pd_log_safe(c->prog, sizeof(c->prog), sp->argv[0]);
	c->want_stdin = sp->want_stdin;
	/* Linked to the daemon at once: the close callbacks unlink it. */
	c->all_next = d->cmds;
	if (d->cmds != NULL)
		d->cmds->all_prev = c;
	d->cmds = c;

	uv_pipe_init(loop, &c->out, 0);
	uv_pipe_init(loop, &c->err, 0);
	uv_timer_init(loop, &c->timer);
	c->out.data = c->err.data = c->timer.data = c->proc.data = c;
	c->nhandles = 4; /* out, err, timer, proc */
	c->out_open = c->err_open = 1;
	if (c->want_stdin) {
		uv_pipe_init(loop, &c->in, 0);
		c->in.data = c;
		c->nhandles++;
		c->in_open = 1;
		stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
		stdio[0].data.stream = (uv_stream_t *)&c->in;
	} else {
		stdio[0].flags = UV_IGNORE; /* /dev/null */
	}
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&c->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&c->err;

	memset(&opt, 0, sizeof(opt));
	opt.exit_cb = cmd_on_exit;
	opt.file = sp->argv[0];
	opt.args = sp->argv;
	opt.flags = UV_PROCESS_DETACHED; /* setsid(): its own process group */
	opt.stdio_count = 3;
	opt.stdio = stdio;

	r = uv_spawn(loop, &c->proc, &opt);
	if (r != 0) {
		/* uv_spawn initialised the handle and reaped a child that
		 * failed to exec; everything is closed and nothing runs. */
		c->done = 1;
		cmd_close(c, (uv_handle_t *)&c->out, &c->out_open);
		cmd_close(c, (uv_handle_t *)&c->err, &c->err_open);
		cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
		cmd_close(c, (uv_handle_t *)&c->timer, NULL);
		cmd_close(c, (uv_handle_t *)&c->proc, NULL);
		*out = NULL;
		return r;
	}
	c->pid = c->proc.pid;
	c->started = c->last_activity = uv_now(loop);
	c->deadline = c->started + (uint64_t)sp->timeout_s * 1000;

	c->s = s;
	head = pd_session_cmds(s);
	c->s_next = *head;
	if (*head != NULL)
		(*head)->s_prev = c;
	*head = c;

	uv_read_start((uv_stream_t *)&c->out, cmd_alloc, cmd_on_read);
	uv_read_start((uv_stream_t *)&c->err, cmd_alloc, cmd_on_read);
	cmd_arm(c);
	*out = c;
	return 0;
}

/* ---- stdin ---------------------------------------------------------------- */

static void cmd_on_stdin_written(uv_write_t *req, int status)
{
	struct stdin_req *w = (struct stdin_req *)req;
	struct pd_cmd *c = req->handle->data;

	c->stdin_pending -= w->len;
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		/* The program closed its input (EPIPE): later data is dropped,
		 * as a shell pipe would. */
		pd_debug("command %s: writing its stdin: %s", c->id, uv_strerror(status));
		cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
	} else if (c->stdin_eof && c->stdin_pending == 0) {
		cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
	}
	if (c->s != NULL)
		pd_session_update_reading(c->s);
}

int pd_exec_stdin(struct pd_cmd *c, const uint8_t *data, size_t len, int eof, const char **why)
{
	if (!c->want_stdin) {
		*why = "was started without \"stdin\": true";
		return -1;
	}
	if (c->stdin_eof) {
		*why = "has its standard input closed already (eof)";
		return -1;
	}
	if (len > 0 && c->in_open) {
		struct stdin_req *w = pd_xmalloc(sizeof(*w) + len);
		uv_buf_t b;

		w->len = len;
		memcpy(w->data, data, len);
		b = uv_buf_init((char *)w->data, (unsigned)len);
		if (uv_write(&w->req, (uv_stream_t *)&c->in, &b, 1, cmd_on_stdin_written) != 0) {
			free(w);
			cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
		} else {
			c->stdin_pending += len;
		}
	}
	if (eof) {
		c->stdin_eof = 1;
		if (c->stdin_pending == 0)
			cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
	}
	return 0;
}

/* ---- queries and bulk actions -------------------------------------------- */

struct pd_cmd *pd_exec_find(struct pd_session *s, const char *id)
{
	for (struct pd_cmd *c = *pd_session_cmds(s); c != NULL; c = c->s_next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

void pd_exec_cancel(struct pd_cmd *c)
{
	pd_info("command %s ('%s'): cancelled by the peer: killing its process group", c->id,
		c->prog);
	cmd_kill(c);
}

size_t pd_exec_count(struct pd_session *s)
{
	size_t n = 0;

	for (struct pd_cmd *c = *pd_session_cmds(s); c != NULL; c = c->s_next)
		n++;
	return n;
}

size_t pd_exec_stdin_pending(struct pd_session *s)
{
	size_t n = 0;

	for (struct pd_cmd *c = *pd_session_cmds(s); c != NULL; c = c->s_next)
		n += c->stdin_pending;
	return n;
}

static void cmd_set_paused(struct pd_cmd *c, int pause)
{
	if (c->paused == pause)
		return;
	c->paused = pause;
	if (c->out_open) {
		if (pause)
			uv_read_stop((uv_stream_t *)&c->out);
		else
			uv_read_start((uv_stream_t *)&c->out, cmd_alloc, cmd_on_read);
	}
	if (c->err_open) {
		if (pause)
			uv_read_stop((uv_stream_t *)&c->err);
		else
			uv_read_start((uv_stream_t *)&c->err, cmd_alloc, cmd_on_read);
	}
	if (!pause)
		c->last_activity = uv_now(c->d->loop);
	cmd_arm(c);
}

void pd_exec_pause(struct pd_session *s, int pause)
{
	for (struct pd_cmd *c = *pd_session_cmds(s); c != NULL; c = c->s_next)
		cmd_set_paused(c, pause);
}

void pd_exec_detach_all(struct pd_session *s)
{
	struct pd_cmd **head = pd_session_cmds(s);

	while (*head != NULL) {
		struct pd_cmd *c = *head;

		cmd_unlink_session(c);
		/* Its output is read and dropped until it is gone. */
		cmd_set_paused(c, 0);
		cmd_kill(c);
	}
}

void pd_exec_kill_all(struct pd_daemon *d)
{
	for (struct pd_cmd *c = d->cmds; c != NULL; c = c->all_next)
		cmd_kill(c);
}

void pd_exec_abandon_all(struct pd_daemon *d)
{
	for (struct pd_cmd *c = d->cmds; c != NULL; c = c->all_next) {
		if (c->done)
			continue;
		cmd_signal(c, SIGKILL);
		cmd_unlink_session(c);
		c->done = 1;
		cmd_close(c, (uv_handle_t *)&c->out, &c->out_open);
		cmd_close(c, (uv_handle_t *)&c->err, &c->err_open);
		cmd_close(c, (uv_handle_t *)&c->in, &c->in_open);
		cmd_close(c, (uv_handle_t *)&c->timer, NULL);
		cmd_close(c, (uv_handle_t *)&c->proc, NULL);
	}
}
