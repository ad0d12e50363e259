/*
 * exec.c - `ppcp exec TARGET -- PROGRAM [ARG...]` and `ppcp exec --all --
 * PROGRAM [ARG...]`; sh.c reuses it for shell command lines.
 *
 * PROTOCOL.md §8.4: one COMMAND {"name": "exec", "args": {"argv": [...],
 * "stdin": bool, "timeout": n}} (or "shell" with "command"), answered by
 * RESPONSEs {"stream": "stdout"|"stderr", "data": base64} as the output
 * is produced, and one final {"done": true, "exit": n|null, "signal":
 * n|null, "timed_out": bool, "truncated": bool}; or by an ERROR carrying
 * the COMMAND's id when the server refuses.
 *
 *  - Output is written to our stdout and stderr as each RESPONSE arrives.
 *    With --all every line is prefixed by "server_id: " and written with
 *    one write(), so lines of different servers never mix.
 *  - Our stdin is forwarded (args.stdin = true, then COMMAND "stdin" with
 *    base64 chunks and a last one with eof) when it is a pipe, a file or a
 *    socket, or with -i; never from a terminal unless -i, never with -n or
 *    --all.  Reading pauses while the engine has much unsent output.
 *  - Ctrl-C (or SIGTERM, SIGHUP) sends COMMAND cancel for the running
 *    command and BYE, waits at most a second for them to be written, and
 *    exits 128+signal (130 for Ctrl-C).  A second signal exits at once.
 *  - Exit status: the remote program's; 128+N when a signal N killed it;
 *    255 when ppcp fails (cannot find, connect, authenticate, is refused,
 *    or the session dies before the final RESPONSE), after one line on
 *    stderr.  --all: 0 when every server ran it with status 0, 255 when
 *    ppcp failed with any server, else 1; and a summary line on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "internal.h" /* ppcp__b64_encode, ppcp__b64_decode */

enum {
	EXEC_STDIN_CHUNK = 48 * 1024,     /* bytes of our stdin per COMMAND stdin */
	EXEC_MAX_DATA = 65536,            /* PROTOCOL.md §8.4: data of one RESPONSE */
	EXEC_OUTQ_HIGH = 256 * 1024,      /* stop reading stdin above this backlog */
	EXEC_LINE_MAX = 64 * 1024,        /* --all: a longer line is split */
	EXEC_CANCEL_FLUSH_MS = 1000,
	EXEC_MAX_SERVERS = CLI_MAX_FOUND,
};

struct linebuf {
	char *buf;
	size_t len;
};

struct xs {
	struct sess s;
	struct xrun *run;
	char cmd_id[PPCP_ID_MAX + 1];
	int opened;     /* sess_open succeeded */
	int started;    /* COMMAND sent */
	int done;       /* final RESPONSE or ERROR received */
	int have_exit, exit_code, have_signal, signal_no, timed_out, truncated;
	int refused;
	char refusal[512];
	int bad_response; /* a RESPONSE we could not read */
	struct linebuf lb[2]; /* --all: partial lines of stdout, stderr */
};

struct xrun {
	struct cli *cli;
	const struct exec_req *req;
	struct xs *v;
	size_t n;
	struct sess **sv;
	int fwd_stdin;
	int stdin_done;
	int cancelled; /* the signal number */
	json_t *payload;
};

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* --all: one line with the server's prefix, in one write() so that lines
 * of different servers never mix; a newline is added when missing. */
static void emit_line(const struct xs *x, int fd, const char *data, size_t len)
{
	size_t plen = strlen(x->s.server_id) + 2, n;
	char *line = malloc(plen + len + 1);

	if (line == NULL)
		return;
	memcpy(line, x->s.server_id, plen - 2);
	memcpy(line + plen - 2, ": ", 2);
	memcpy(line + plen, data, len);
	n = plen + len;
	if (len == 0 || data[len - 1] != '\n')
		line[n++] = '\n';
	(void)write_all(fd, line, n);
	free(line);
}

/* --all: write the complete lines of lb (a line longer than EXEC_LINE_MAX
 * is cut); with flush, the rest too. */
static void lb_emit(struct xs *x, int which, int fd, int flush)
{
	struct linebuf *lb = &x->lb[which];
	size_t start = 0, i;

	for (i = 0; i < lb->len; i++) {
		if (lb->buf[i] != '\n' && i - start + 1 < EXEC_LINE_MAX)
			continue;
		emit_line(x, fd, lb->buf + start, i - start + 1);
		start = i + 1;
	}
	if (flush && start < lb->len) {
		emit_line(x, fd, lb->buf + start, lb->len - start);
		start = lb->len;
	}
	if (start > 0) {
		memmove(lb->buf, lb->buf + start, lb->len - start);
		lb->len -= start;
	}
}

static void output(struct xs *x, int which, const uint8_t *data, size_t n)
{
	int fd = which == 0 ? STDOUT_FILENO : STDERR_FILENO;
	struct linebuf *lb = &x->lb[which];
	char *nb;

	if (!x->run->req->all) {
		(void)write_all(fd, data, n);
		return;
	}
	nb = realloc(lb->buf, lb->len + n + 1);
	if (nb == NULL)
		return;
	lb->buf = nb;
	memcpy(lb->buf + lb->len, data, n);
	lb->len += n;
	lb_emit(x, which, fd, 0);
}

static void finish(struct xs *x)
{
	if (x->run->req->all) {
		lb_emit(x, 0, STDOUT_FILENO, 1);
		lb_emit(x, 1, STDERR_FILENO, 1);
	}
	x->done = 1;
	sess_close(&x->s);
}

static void on_response(struct xs *x, const json_t *p)
{
	static uint8_t data[EXEC_MAX_DATA + 3];
	const char *stream = json_string_value(json_object_get(p, "stream"));
	json_t *v;

	if (stream != NULL) {
		const char *b64 = json_string_value(json_object_get(p, "data"));
		size_t len = b64 != NULL ? strlen(b64) : 0;
		long n;

		if (b64 == NULL || (strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0)) {
			x->bad_response = 1;
			return;
		}
		n = ppcp__b64_decode(data, sizeof(data), b64, len);
		if (n < 0) {
			x->bad_response = 1;
			return;
		}
		output(x, strcmp(stream, "stdout") == 0 ? 0 : 1, data, (size_t)n);
		return;
	}
	if (!json_is_true(json_object_get(p, "done")))
		return; /* unknown members are ignored (PROTOCOL.md §7) */
	v = json_object_get(p, "exit");
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 255) {
		x->have_exit = 1;
		x->exit_code = (int)json_integer_value(v);
	}
	v = json_object_get(p, "signal");
	if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 128) {
		x->have_signal = 1;
		x->signal_no = (int)json_integer_value(v);
	}
	x->timed_out = json_is_true(json_object_get(p, "timed_out"));
	x->truncated = json_is_true(json_object_get(p, "truncated"));
	finish(x);
}

static void on_message(struct sess *s, const ppcp_msg *m)
{
	struct xs *x = s->user;

	if (!x->started || x->done || m->id == NULL)
		return;
	if (m->type == PPCP_MSG_RESPONSE && strcmp(m->id, x->cmd_id) == 0) {
		on_response(x, m->payload);
		return;
	}
	if (m->type == PPCP_MSG_ERROR) {
		const char *code = json_string_value(json_object_get(m->payload, "code"));
		const char *msg = json_string_value(json_object_get(m->payload, "message"));

		if (strcmp(m->id, x->cmd_id) == 0) {
			x->refused = 1;
			if (code != NULL && msg != NULL)
				snprintf(x->refusal, sizeof(x->refusal), "%s (%s)", msg, code);
			else
				snprintf(x->refusal, sizeof(x->refusal), "%s",
					 msg ? msg : code ? code : "no reason given");
			finish(x);
			return;
		}
		/* An ERROR about one of our stdin COMMANDs: the program
		 * finished before it read everything.  Not an error of ours. */
		cli_info(x->run->cli, 2, "%s: %s: %s", s->server_id, code ? code : "error",
			 msg ? msg : "");
	}
}

static int start_command(struct xs *x)
{
	int ret = sess_send(&x->s, PPCP_MSG_COMMAND, x->run->payload, x->cmd_id);

	if (ret < 0) {
		cli_err(x->run->cli, "cannot send the command to %s: %s", x->s.server_id,
			ppcp_strerror(ret));
		return ret;
	}
	x->started = 1;
	return 0;
}

static void on_established(struct sess *s)
{
	struct xs *x = s->user;

	(void)start_command(x);
}

/* ---- stdin ---------------------------------------------------------------- */

static int want_in(struct sess_loop *L)
{
	struct xrun *r = L->user;
	struct xs *x = &r->v[0];

	return r->fwd_stdin && !r->stdin_done && !r->cancelled && x->started && !x->done &&
	       !x->s.over && sess_outq(&x->s) < EXEC_OUTQ_HIGH;
}

static void send_stdin(struct xrun *r, const uint8_t *buf, size_t n, int eof)
{
	struct xs *x = &r->v[0];
	char *b64 = malloc(4 * ((n + 2) / 3) + 1);
	json_t *p;

	if (b64 == NULL)
		return;
	ppcp__b64_encode(b64, buf, n);
	p = json_pack("{s:s,s:{s:s,s:s,s:b}}", "name", "stdin", "args", "of", x->cmd_id, "data",
		      b64, "eof", eof);
	free(b64);
	if (p == NULL)
		return;
	(void)sess_send(&x->s, PPCP_MSG_COMMAND, p, NULL);
	json_decref(p);
}

static void on_in(struct sess_loop *L)
{
	static uint8_t buf[EXEC_STDIN_CHUNK];
	struct xrun *r = L->user;
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0) {
		send_stdin(r, buf, (size_t)n, 0);
		return;
	}
	if (n < 0)
		cli_warn(r->cli, "reading our stdin: %s; closing the remote program's stdin",
			 strerror(errno));
	send_stdin(r, buf, 0, 1);
	r->stdin_done = 1;
}

/* ---- signals -------------------------------------------------------------- */

static void on_signal(struct sess_loop *L, int sig)
{
	struct xrun *r = L->user;
	size_t i;

	if (r->cancelled)
		exit(128 + sig); /* a second signal: no more waiting */
	r->cancelled = sig;
	for (i = 0; i < r->n; i++) {
		struct xs *x = &r->v[i];

		if (x->opened && x->started && !x->done && !x->s.over) {
			json_t *p = json_pack("{s:s,s:{s:s}}", "name", "cancel", "args", "of",
					      x->cmd_id);
			if (p != NULL)
				(void)sess_send(&x->s, PPCP_MSG_COMMAND, p, NULL);
			json_decref(p);
		}
		if (x->opened)
			sess_close(&x->s);
	}
	L->deadline = cli_now_ms() + EXEC_CANCEL_FLUSH_MS;
}

/* ---- results -------------------------------------------------------------- */

/* The exit status for one server, after a message when it is ours. */
static int result(struct xrun *r, struct xs *x)
{
	struct cli *cli = r->cli;
	const char *id = x->s.server_id[0] ? x->s.server_id : x->s.address;

	if (x->refused) {
		cli_err(cli, "%s refused the command: %s", id, x->refusal);
		return CLI_EXIT_FAIL;
	}
	if (!x->done) {
		if (!x->s.established) {
			cli_err(cli, "%s: handshake failed: %s; %s", id, sess_strerror(&x->s, 0),
				cli_advice(x->s.err));
		} else if (x->s.peer_bye || x->s.err == 0) {
			cli_err(cli, "%s ended the session before the command finished (the server "
				     "is shutting down or restarting?); run it again",
				id);
		} else {
			cli_err(cli, "connection to %s lost before the command finished: %s; %s", id,
				sess_strerror(&x->s, 0), cli_advice(x->s.err));
		}
		return CLI_EXIT_FAIL;
	}
	if (x->bad_response)
		cli_warn(cli, "%s sent output that could not be decoded; some output is missing",
			 id);
	if (x->timed_out)
		cli_warn(cli, "%s: the command passed its time limit and was killed", id);
	if (x->truncated)
		cli_warn(cli, "%s: the output is incomplete (it passed the server's max-output, or "
			      "the server could not read it: see above); the command was stopped",
			 id);
	/* Incomplete output never passes for a success. */
	if (x->truncated && x->have_exit && x->exit_code == 0)
		return CLI_EXIT_FAIL;
	if (x->have_exit)
		return x->exit_code;
	if (x->have_signal)
		return 128 + x->signal_no;
	cli_err(cli, "%s: the final RESPONSE gives neither an exit status nor a signal", id);
	return CLI_EXIT_FAIL;
}

static json_t *build_payload(struct cli *cli, const struct exec_req *req, int with_stdin)
{
	json_t *args = json_object(), *p;
	int i;

	if (args == NULL)
		return NULL;
	if (req->shell != NULL) {
		json_t *c = json_string(req->shell);
		if (c == NULL) {
			cli_err(cli, "the command line is not valid UTF-8");
			json_decref(args);
			return NULL;
		}
		json_object_set_new(args, "command", c);
	} else {
		json_t *a = json_array();
		for (i = 0; i < req->argc; i++) {
			json_t *sv = json_string(req->argv[i]);
			if (sv == NULL) {
				cli_err(cli, "argument %d ('%s') is not valid UTF-8", i + 1,
					req->argv[i]);
				json_decref(a);
				json_decref(args);
				return NULL;
			}
			json_array_append_new(a, sv);
		}
		json_object_set_new(args, "argv", a);
	}
	json_object_set_new(args, "stdin", json_boolean(with_stdin));
	if (req->cmd_timeout_s > 0)
		json_object_set_new(args, "timeout", json_integer(req->cmd_timeout_s));
	p = json_pack("{s:s,s:o}", "name", req->shell != NULL ? "shell" : "exec", "args", args);
	return p;
}

static int stdin_forwardable(int mode)
{
	struct stat st;

	if (mode < 0)
		return 0;
	if (mode > 0)
		return 1;
	if (isatty(STDIN_FILENO))
		return 0;
	if (fstat(STDIN_FILENO, &st) != 0)
		return 0;
	return S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode);
}

static int run_one(struct xrun *r)
{
	struct sess_loop L;
	struct xs *x = &r->v[0];
	int code;

	if (resolve_connect(r->cli, r->req->target, &x->s) != 0)
		return CLI_EXIT_FAIL;
	if (cli_signal != 0)
		exit(128 + cli_signal); /* interrupted before anything started */
	x->opened = 1;
	x->run = r;
	x->s.user = x;
	x->s.on_message = on_message;
	if (start_command(x) < 0) {
		sess_free(&x->s);
		return CLI_EXIT_FAIL;
	}
	memset(&L, 0, sizeof(L));
	L.s = r->sv;
	L.n = 1;
	L.in_fd = r->fwd_stdin ? STDIN_FILENO : -1;
	L.want_in = want_in;
	L.on_in = on_in;
	L.on_signal = on_signal;
	L.deadline = UINT64_MAX;
	L.user = r;
	(void)sess_loop_run(&L);
	if (r->cancelled) {
		sess_free(&x->s);
		return 128 + r->cancelled;
	}
	code = result(r, x);
	sess_free(&x->s);
	return code;
}

static int run_all(struct xrun *r)
{
	struct cli *cli = r->cli;
	struct disco_req req;
	struct found *f;
	struct sess_loop L;
	size_t n = 0, i, k, ok = 0, failed = 0;
	int ours = 0, theirs = 0;

	if (cli_load_psk(cli) < 0)
		return CLI_EXIT_FAIL;
	f = calloc(CLI_MAX_FOUND, sizeof(*f));
	if (f == NULL)
		return CLI_EXIT_FAIL;
	memset(&req, 0, sizeof(req));
	req.timeout_ms = cli->timeout_ms;
	if (disco_run(cli, &req, f, CLI_MAX_FOUND, &n) < 0) {
		free(f);
		return CLI_EXIT_FAIL;
	}
	/* One per server_id: the first is the preferred path (disco.c). */
	for (i = k = 0; i < n; i++)
		if (k == 0 || strcmp(f[k - 1].si.pong.server_id, f[i].si.pong.server_id) != 0)
			f[k++] = f[i];
	n = k;
	if (n == 0) {
		char where[512];

		disco_describe(cli, where, sizeof(where));
		cli_err(cli, "exec --all: no server answered a PING to %s on UDP port %u within "
			     "%.1f s; `ppcp doctor` shows which step fails",
			where, (unsigned)cli->port, cli->timeout_ms / 1000.0);
		free(f);
		return CLI_EXIT_FAIL;
	}
	r->v = calloc(n, sizeof(*r->v));
	r->sv = calloc(n, sizeof(*r->sv));
	if (r->v == NULL || r->sv == NULL) {
		free(f);
		return CLI_EXIT_FAIL;
	}
	r->n = n;
	for (i = 0; i < n; i++) {
		struct xs *x = &r->v[i];

		x->run = r;
		x->s.fd = -1;
		x->s.user = x;
		x->s.on_message = on_message;
		x->s.on_established = on_established;
		r->sv[i] = &x->s;
		if (sess_open(&x->s, cli, f[i].si.address, f[i].si.port, f[i].si.pong.server_id,
			      CLI_CONNECT_TIMEOUT_MS) == 0)
			x->opened = 1;
		snprintf(x->s.path, sizeof(x->s.path), "%s", f[i].path);
		snprintf(x->s.hostname, sizeof(x->s.hostname), "%s", f[i].si.pong.hostname);
		snprintf(x->s.server_id, sizeof(x->s.server_id), "%s", f[i].si.pong.server_id);
	}
	free(f);

	memset(&L, 0, sizeof(L));
	L.s = r->sv;
	L.n = n;
	L.in_fd = -1;
	L.on_signal = on_signal;
	L.deadline = UINT64_MAX;
	L.user = r;
	(void)sess_loop_run(&L);
	if (r->cancelled) {
		for (i = 0; i < n; i++)
			sess_free(&r->v[i].s);
		return 128 + r->cancelled;
	}

	for (i = 0; i < n; i++) {
		struct xs *x = &r->v[i];
		int code;

		if (!x->opened) {
			cli_err(cli, "%s: cannot connect to %s port %u: %s", x->s.server_id,
				x->s.address, (unsigned)x->s.port, ppcp_strerror(x->s.err));
			code = CLI_EXIT_FAIL;
			ours = 1;
		} else {
			if (x->s.established)
				resolve_success(cli, &x->s);
			code = result(r, x);
			if (code == CLI_EXIT_FAIL && !x->done)
				ours = 1;
			else if (code == CLI_EXIT_FAIL && x->refused)
				ours = 1;
			else if (code != 0)
				theirs = 1;
			if (code == CLI_EXIT_FAIL && x->done && x->truncated && x->have_exit &&
			    x->exit_code == 0)
				cli_warn(cli, "%s: exit status 0, but the output is incomplete",
					 x->s.server_id);
			else if (code != 0 && x->done && !x->refused)
				cli_warn(cli, "%s: exit status %d", x->s.server_id, code);
		}
		if (code == 0)
			ok++;
		else
			failed++;
		sess_free(&x->s);
		free(x->lb[0].buf);
		free(x->lb[1].buf);
	}
	fprintf(stderr, "%zu ok, %zu failed\n", ok, failed);
	if (ours)
		return CLI_EXIT_FAIL;
	return theirs ? 1 : 0;
}

/* ---- agents: exec @CLIENT_ID / @all through the controller -------------- */

/* docs/CONTROL.md: the controller relays the COMMAND to its agents and
 * their RESPONSEs and ERRORs back; each is handed to on_message as if it
 * came from a session of ours, so output, refusals and exit statuses read
 * exactly as for servers. */
static int run_agents(struct xrun *r)
{
	struct cli *cli = r->cli;
	const char *name = r->req->target + 1;
	int all = strcmp(name, "all") == 0;
	json_t *req, *j, *names;
	FILE *f;
	size_t n = 0, i, ok = 0, failed = 0;
	int ours = 0, theirs = 0, code = CLI_EXIT_FAIL;

	req = json_pack("{s:s,s:s,s:O}", "op", "command", "target", all ? "*" : name, "p",
			r->payload);
	if (ctl_open(cli, req, &f) != 0) {
		json_decref(req);
		return CLI_EXIT_FAIL;
	}
	json_decref(req);
	j = ctl_read(f);
	names = json_object_get(j, "agents");
	if (!json_is_array(names)) {
		const char *err = json_string_value(json_object_get(j, "error"));

		cli_err(cli, "the controller refused: %s", err != NULL ? err : "no answer");
		json_decref(j);
		fclose(f);
		return CLI_EXIT_FAIL;
	}
	n = json_array_size(names);
	if (n == 0) {
		if (all)
			cli_err(cli, "exec @all: no agent is connected to this controller ('ppcp agents' lists them)");
		else
			cli_err(cli, "exec: no agent '%s' is connected to this controller ('ppcp agents' lists them)",
				name);
		json_decref(j);
		fclose(f);
		return CLI_EXIT_FAIL;
	}
	r->v = calloc(n, sizeof(*r->v));
	if (r->v == NULL) {
		json_decref(j);
		fclose(f);
		return CLI_EXIT_FAIL;
	}
	r->n = n;
	for (i = 0; i < n; i++) {
		struct xs *x = &r->v[i];

		x->run = r;
		x->s.fd = -1;
		x->s.user = x;
		x->s.established = 1;
		x->opened = 1;
		x->started = 1;
		snprintf(x->cmd_id, sizeof(x->cmd_id), "agent");
		snprintf(x->s.server_id, sizeof(x->s.server_id), "%s",
			 json_string_value(json_array_get(names, i)));
	}
	json_decref(j);
	while (cli_signal == 0 && (j = ctl_read(f)) != NULL) {
		const char *agent = json_string_value(json_object_get(j, "agent"));
		const char *type = json_string_value(json_object_get(j, "type"));
		struct xs *x = NULL;

		if (json_is_true(json_object_get(j, "done"))) {
			json_decref(j);
			break;
		}
		for (i = 0; agent != NULL && i < n; i++)
			if (strcmp(r->v[i].s.server_id, agent) == 0)
				x = &r->v[i];
		if (x != NULL && type != NULL && !x->done) {
			if (strcmp(type, "lost") == 0) {
				x->s.err = PPCP_ERR_TRUNCATED;
				if (r->req->all) {
					lb_emit(x, 0, STDOUT_FILENO, 1);
					lb_emit(x, 1, STDERR_FILENO, 1);
				}
			} else {
				ppcp_msg m;

				memset(&m, 0, sizeof(m));
				m.type = ppcp_msg_type_from_name(type);
				m.type_name = type;
				m.id = x->cmd_id;
				m.payload = json_object_get(j, "p");
				on_message(&x->s, &m);
			}
		}
		json_decref(j);
	}
	fclose(f); /* a signal: the controller cancels what is still running */
	if (cli_signal != 0) {
		code = 128 + cli_signal;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct xs *x = &r->v[i];
		int c;

		if (!x->done && x->s.err == 0)
			x->s.peer_bye = 1;
		c = result(r, x);
		if (!all) {
			code = c;
			continue;
		}
		if (c == CLI_EXIT_FAIL && (!x->done || x->refused))
			ours = 1;
		else if (c != 0)
			theirs = 1;
		if (c != 0 && x->done && !x->refused)
			cli_warn(cli, "%s: exit status %d", x->s.server_id, c);
		if (c == 0)
			ok++;
		else
			failed++;
	}
	if (all) {
		fprintf(stderr, "%zu ok, %zu failed\n", ok, failed);
		code = ours ? CLI_EXIT_FAIL : theirs ? 1 : 0;
	}
out:
	for (i = 0; i < n; i++) {
		free(r->v[i].lb[0].buf);
		free(r->v[i].lb[1].buf);
	}
	free(r->v);
	r->v = NULL;
	return code;
}

int exec_run(struct cli *cli, const struct exec_req *req)
{
	struct xrun r;
	struct xs one;
	struct sess *sv[1];
	int code;

	memset(&r, 0, sizeof(r));
	r.cli = cli;
	r.req = req;
	r.fwd_stdin = !req->all && stdin_forwardable(req->stdin_mode);
	r.payload = build_payload(cli, req, r.fwd_stdin);
	if (r.payload == NULL)
		return CLI_EXIT_FAIL;
	cli_signals_catch();
	if (req->target != NULL && req->target[0] == '@') {
		struct exec_req areq = *req;

		areq.all = strcmp(req->target, "@all") == 0; /* prefixed output */
		r.req = &areq;
		r.fwd_stdin = 0;
		json_decref(r.payload);
		r.payload = build_payload(cli, &areq, 0);
		code = r.payload != NULL ? run_agents(&r) : CLI_EXIT_FAIL;
	} else if (req->all) {
		code = run_all(&r);
		free(r.v);
		free(r.sv);
	} else {
		memset(&one, 0, sizeof(one));
		one.s.fd = -1;
		sv[0] = &one.s;
		r.v = &one;
		r.n = 1;
		r.sv = sv;
		code = run_one(&r);
	}
	json_decref(r.payload);
	return code;
}

/* ---- the subcommand ------------------------------------------------------- */

static int exec_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct exec_req *req = user;

	switch (opt) {
	case 'a':
		req->all = 1;
		return 0;
	case 'i':
		req->stdin_mode = 1;
		return 0;
	case 'n':
		req->stdin_mode = -1;
		return 0;
	case 'C':
		ctl_set_path(arg);
		return 0;
	case 'T':
		req->cmd_timeout_s = cli_parse_seconds(arg, 86400);
		if (req->cmd_timeout_s < 1000) {
			cli_err(cli, "--command-timeout: '%s' is not a whole number of seconds "
				     "(1-86400)",
				arg);
			return -1;
		}
		req->cmd_timeout_s /= 1000;
		return 0;
	}
	return -1;
}

static const struct option exec_longopts[] = {
	{ "all", no_argument, NULL, 'a' },
	{ "stdin", no_argument, NULL, 'i' },
	{ "no-stdin", no_argument, NULL, 'n' },
	{ "command-timeout", required_argument, NULL, 'T' },
	{ "control", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 },
};

static const char exec_synopsis[] =
	"exec [-i|-n] [--command-timeout S] TARGET -- PROGRAM [ARG...]\n"
	"       ppcp exec --all [--command-timeout S] -- PROGRAM [ARG...]\n"
	"       ppcp exec [--control PATH] @CLIENT_ID|@all -- PROGRAM [ARG...]   (on a controller)";

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	struct exec_req req;
	struct cli_opts o = { "ain", exec_longopts, exec_opt, NULL, 1 };
	int i;

	memset(&req, 0, sizeof(req));
	o.user = &req;
	i = cli_parse(cli, argc, argv, &o);
	if (i < 0)
		return cli_usage(cli, exec_synopsis);
	if (!req.all) {
		if (i >= argc)
			return cli_usage(cli, exec_synopsis);
		req.target = argv[i++];
		/* Options may also follow TARGET, up to "--". */
		if (i < argc && strcmp(argv[i], "--") != 0 && argv[i][0] == '-') {
			int j = cli_parse(cli, argc - i + 1, argv + i - 1, &o);
			if (j < 0)
				return cli_usage(cli, exec_synopsis);
			i += j - 1;
			if (req.all)
				return cli_usage(cli, exec_synopsis);
		}
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc)
		return cli_usage(cli, exec_synopsis);
	/* exec --all takes no TARGET: what follows "--" is the program, and
	 * without "--" `exec --all NAME -- prog` would run NAME everywhere. */
	if (req.all && (i == 0 || strcmp(argv[i - 1], "--") != 0)) {
		cli_err(cli, "exec --all takes no TARGET: write exec --all -- PROGRAM [ARG...]");
		return cli_usage(cli, exec_synopsis);
	}
	req.argv = argv + i;
	req.argc = argc - i;
	return exec_run(cli, &req);
}
