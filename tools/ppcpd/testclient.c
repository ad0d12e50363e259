/*
 * testclient.c - ppcpd_testclient, a client for ppcpd's end-to-end tests
 * (tests/e2e/t_daemon_*.sh), on the library's blocking API.  Not installed:
 * users have ppcp(1).  It speaks the protocol at the level the tests need
 * to see (every RESPONSE, raw COMMAND payloads, several sessions, idle
 * connections, raw discovery datagrams), where ppcp hides it.
 *
 *   ppcpd_testclient [OPTIONS] MODE [ARGS]
 *   options: --psk-file F --port N [--addr A (127.0.0.1)] [--bind SRC]
 *            [--server-id ID] [--wait MS (30000)] [--result FILE]
 *   modes:
 *     exec [--stdin] [--timeout S] [--cancel-after MS] -- ARGV...
 *     sh   [--stdin] [--timeout S] [--cancel-after MS] COMMAND
 *          stdout/stderr RESPONSEs to our stdout/stderr; the final RESPONSE
 *          (or ERROR) payload to --result; exit: the remote status, 128+N
 *          for signal N, 100 for an ERROR answer
 *     status                     the status RESPONSE payload on stdout
 *     send TYPE PAYLOAD          one message; every answer on stdout as
 *                                "TYPE PAYLOAD" until a final RESPONSE, an
 *                                ERROR or 2 s of silence
 *     multi N -- ARGV...         N sessions at once, ARGV on each; exit 0 if
 *                                every one exited 0
 *     parallel N -- ARGV...      one session, N commands at once; prints how
 *                                many exited 0 and how many were refused
 *     repeat N [--reconnect K] -- ARGV...  N runs in a row, a new session
 *                                every K runs; exit 0 if every one exited 0
 *     wait-bye [--ready FILE]    establish, create FILE, wait for a BYE
 *     stall SECONDS -- ARGV...   start ARGV, then read nothing for SECONDS
 *     hold N SECONDS [CHECK_MS]  N TCP connections that send nothing; after
 *                                CHECK_MS (1000) prints how many the server
 *                                closed
 *     trickle INTERVAL_MS        the start of a CLIENT_HELLO, one byte per
 *                                interval, until the server closes; prints
 *                                after how long
 *     handshake [N]              handshake and BYE (N times)
 *     tcp-ping [--target ID]     a PING as the first TCP frame
 *     udp-ping [--target ID] [--count N] [--small|--oversize|--garbage]
 *                                PINGs by UDP; prints how many PONGs came
 *                                back and the largest PONG and PING sizes
 *
 * Failures of the client itself exit 255 with one line on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h" /* ppcp__b64_encode, ppcp__b64_decode */
#include "ppcp.h"

static const char *o_psk_file, *o_addr = "127.0.0.1", *o_bind, *o_server_id, *o_result;
static long o_port = -1, o_wait = 30000;
static uint8_t psk[PPCP_PSK_FILE_BYTES];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ppcpd_testclient: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(255);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		c += k;
		n -= (size_t)k;
	}
}

static void result(const char *json)
{
	FILE *f;

	if (o_result == NULL)
		return;
	f = fopen(o_result, "w");
	if (f == NULL)
		die("cannot write %s: %s", o_result, strerror(errno));
	fprintf(f, "%s\n", json);
	fclose(f);
}

/* ---- connecting -------------------------------------------------------- */

static int tcp_socket(void)
{
	struct sockaddr_in a, b;
	int fd;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)o_port);
	if (inet_pton(AF_INET, o_addr, &a.sin_addr) != 1)
		die("--addr %s: IPv4 only", o_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (o_bind != NULL) {
		memset(&b, 0, sizeof(b));
		b.sin_family = AF_INET;
		if (inet_pton(AF_INET, o_bind, &b.sin_addr) != 1)
			die("--bind %s: IPv4 only", o_bind);
		if (bind(fd, (struct sockaddr *)&b, sizeof(b)) != 0)
			die("bind %s: %s", o_bind, strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct conn {
	int fd;
	ppcp_session *s;
};

/* Connect and handshake; returns 0 or the library's error. */
static int session_open(struct conn *c)
{
	ppcp_session_options so;
	int r;

	memset(c, 0, sizeof(*c));
	if (o_psk_file == NULL)
		die("--psk-file is required");
	c->fd = tcp_socket();
	if (c->fd < 0)
		return PPCP_ERR_CONNECT;
	memset(&so, 0, sizeof(so));
	so.server_id = o_server_id;
	so.client_id = "testclient";
	so.timeout_ms = 10000;
	r = ppcp_client_connect(c->fd, psk, sizeof(psk), &so, &c->s);
	if (r != 0) {
		close(c->fd);
		c->fd = -1;
	}
	return r;
}

static void session_close(struct conn *c)
{
	if (c->s != NULL) {
		(void)ppcp_session_close(c->s);
		ppcp_session_free(c->s);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->s = NULL;
	c->fd = -1;
}

static void session_open_or_die(struct conn *c)
{
	int r = session_open(c);

	if (r != 0)
		die("cannot open a session with %s:%ld: %s", o_addr, o_port, ppcp_strerror(r));
}

/* ---- exec and sh -------------------------------------------------------- */

struct run {
	int done;      /* final RESPONSE or ERROR received */
	int status;    /* our exit status for it */
	size_t out_bytes;
	char *final;   /* final payload JSON */
};

/* Handle one message that may belong to command id; 1 when it ended it. */
static int run_on_message(struct run *r, const char *id, enum ppcp_msg_type type, const char *rid,
			  const char *payload, int echo)
{
	json_t *p;
	json_error_t jerr;
	const json_t *v;

	if (strcmp(rid, id) != 0) {
		if (type == PPCP_MSG_ERROR)
			fprintf(stderr, "ppcpd_testclient: ERROR about %s: %s\n", rid, payload);
		return 0;
	}
	p = json_loads(payload, 0, &jerr);
	if (p == NULL)
		die("unparsable payload: %s", payload);
	if (type == PPCP_MSG_ERROR) {
		fprintf(stderr, "ppcpd_testclient: ERROR %s: %s\n",
			json_string_value(json_object_get(p, "code")),
			json_string_value(json_object_get(p, "message")));
		r->done = 1;
		r->status = 100;
		r->final = strdup(payload);
		json_decref(p);
		return 1;
	}
	if (type != PPCP_MSG_RESPONSE)
		die("unexpected %s for command %s", ppcp_msg_type_name(type), id);
	v = json_object_get(p, "stream");
	if (v != NULL) {
		const char *d = json_string_value(json_object_get(p, "data"));
		size_t len = d != NULL ? strlen(d) : 0;
		uint8_t *buf;
		long n;

		if (r->done)
			die("output after the final RESPONSE");
		if (d == NULL || !json_is_string(v))
			die("bad stream RESPONSE: %s", payload);
		buf = malloc(len / 4 * 3 + 3);
		n = ppcp__b64_decode(buf, len / 4 * 3 + 3, d, len);
		if (n < 0 || n > 65536)
			die("bad base64 or a chunk over 65536 bytes (%ld)", n);
		r->out_bytes += (size_t)n;
		if (echo)
			write_all(strcmp(json_string_value(v), "stderr") == 0 ? 2 : 1, buf, (size_t)n);
		free(buf);
		json_decref(p);
		return 0;
	}
	if (!json_is_true(json_object_get(p, "done")))
		die("RESPONSE neither output nor final: %s", payload);
	r->done = 1;
	r->final = strdup(payload);
	v = json_object_get(p, "signal");
	if (json_is_integer(v))
		r->status = 128 + (int)json_integer_value(v);
	else if (json_is_integer(json_object_get(p, "exit")))
		r->status = (int)json_integer_value(json_object_get(p, "exit"));
	else
		r->status = 0; /* status has no exit */
	json_decref(p);
	return 1;
}

static json_t *exec_payload(int shell, char **argv, int argc, int want_stdin, long timeout)
{
	json_t *args = json_object(), *p;

	if (shell) {
		json_object_set_new(args, "command", json_string(argv[0]));
	} else {
		json_t *a = json_array();
		for (int i = 0; i < argc; i++)
			json_array_append_new(a, json_string(argv[i]));
		json_object_set_new(args, "argv", a);
	}
	if (want_stdin)
		json_object_set_new(args, "stdin", json_true());
	if (timeout > 0)
		json_object_set_new(args, "timeout", json_integer(timeout));
	p = json_pack("{s:s,s:o}", "name", shell ? "shell" : "exec", "args", args);
	return p;
}

static int send_json(ppcp_session *s, enum ppcp_msg_type t, json_t *p, char *id)
{
	char *txt = json_dumps(p, JSON_COMPACT);
	int r = ppcp_session_send(s, t, txt, id);

	free(txt);
	return r;
}

static void send_stdin_all(ppcp_session *s, const char *cmd_id)
{
	static uint8_t buf[48 * 1024];
	char b64[sizeof(buf) / 3 * 4 + 8];
	ssize_t n;

	for (;;) {
		json_t *p;
		int r;

		n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("reading stdin: %s", strerror(errno));
		ppcp__b64_encode(b64, buf, (size_t)n);
		p = json_pack("{s:s,s:{s:s,s:s,s:b}}", "name", "stdin", "args", "of", cmd_id, "data",
			      b64, "eof", n == 0);
		r = send_json(s, PPCP_MSG_COMMAND, p, NULL);
		json_decref(p);
		if (r != 0)
			die("sending stdin: %s", ppcp_strerror(r));
		if (n == 0)
			return;
	}
}

static int mode_exec(int shell, int argc, char **argv)
{
	int want_stdin = 0, i;
	long timeout = 0, cancel_after = -1;
	struct conn c;
	struct run r;
	char id[PPCP_ID_MAX + 1];
	uint64_t deadline, cancel_at = 0;
	json_t *p;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--stdin") == 0)
			want_stdin = 1;
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = atol(argv[++i]);
		else if (strcmp(argv[i], "--cancel-after") == 0 && i + 1 < argc)
			cancel_after = atol(argv[++i]);
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			break;
	}
	if (i >= argc)
		die("nothing to run");
	session_open_or_die(&c);
	p = exec_payload(shell, argv + i, argc - i, want_stdin, timeout);
	if (send_json(c.s, PPCP_MSG_COMMAND, p, id) != 0)
		die("sending the COMMAND failed");
	json_decref(p);
	if (want_stdin)
		send_stdin_all(c.s, id);
	memset(&r, 0, sizeof(r));
	deadline = now_ms() + (uint64_t)o_wait;
	if (cancel_after >= 0)
		cancel_at = now_ms() + (uint64_t)cancel_after;
	while (!r.done) {
		enum ppcp_msg_type type;
		char rid[PPCP_ID_MAX + 1], *payload = NULL;
		uint64_t now = now_ms(), until = deadline;
		int k;

		if (cancel_at != 0 && now >= cancel_at) {
			p = json_pack("{s:s,s:{s:s}}", "name", "cancel", "args", "of", id);
			if (send_json(c.s, PPCP_MSG_COMMAND, p, NULL) != 0)
				die("sending cancel failed");
			json_decref(p);
			cancel_at = 0;
		}
		if (now >= deadline)
			die("no final RESPONSE within %ld ms", o_wait);
		if (cancel_at != 0 && cancel_at < until)
			until = cancel_at;
		k = ppcp_session_recv(c.s, (int)(until - now), &type, rid, &payload);
		if (k == PPCP_ERR_AGAIN)
			continue;
		if (k != 0)
			die("session ended before the final RESPONSE: %s", ppcp_strerror(k));
		run_on_message(&r, id, type, rid, payload, 1);
		free(payload);
	}
	if (r.final != NULL)
		result(r.final);
	free(r.final);
	session_close(&c);
	return r.status;
}

/* ---- status, send ------------------------------------------------------- */

static int mode_status(void)
{
	struct conn c;
	enum ppcp_msg_type type;
	char id[PPCP_ID_MAX + 1], rid[PPCP_ID_MAX + 1], *payload = NULL;
	int k;

	session_open_or_die(&c);
	if (ppcp_session_send(c.s, PPCP_MSG_COMMAND, "{\"name\":\"status\",\"args\":{}}", id) != 0)
		die("sending status failed");
	k = ppcp_session_recv(c.s, (int)o_wait, &type, rid, &payload);
	if (k != 0)
		die("no answer: %s", ppcp_strerror(k));
	printf("%s %s\n", ppcp_msg_type_name(type), payload);
	free(payload);
	session_close(&c);
	return type == PPCP_MSG_RESPONSE && strcmp(rid, id) == 0 ? 0 : 1;
}

static int mode_send(int argc, char **argv)
{
	struct conn c;
	enum ppcp_msg_type t;
	char id[PPCP_ID_MAX + 1];
	int k;

	if (argc != 2)
		die("send TYPE PAYLOAD");
	t = ppcp_msg_type_from_name(argv[0]);
	if (t == PPCP_MSG_UNKNOWN)
		die("unknown type %s", argv[0]);
	session_open_or_die(&c);
	k = ppcp_session_send(c.s, t, argv[1], id);
	if (k != 0)
		die("send: %s", ppcp_strerror(k));
	for (int n = 0; n < 100000; n++) {
		enum ppcp_msg_type type;
		char rid[PPCP_ID_MAX + 1], *payload = NULL;

		k = ppcp_session_recv(c.s, 2000, &type, rid, &payload);
		if (k == PPCP_ERR_AGAIN)
			break;
		if (k != 0) {
			printf("END %s\n", ppcp_err_name(k));
			break;
		}
		printf("%s %s %s\n", ppcp_msg_type_name(type), strcmp(rid, id) == 0 ? "same-id" : rid,
		       payload);
		fflush(stdout);
		if (type == PPCP_MSG_ERROR || strstr(payload, "\"done\":true") != NULL) {
			free(payload);
			break;
		}
		free(payload);
	}
	session_close(&c);
	return 0;
}

/* ---- many sessions ------------------------------------------------------ */

static int wait_done(struct conn *c, const char *id, struct run *r)
{
	uint64_t deadline = now_ms() + (uint64_t)o_wait;

	memset(r, 0, sizeof(*r));
	while (!r->done) {
		enum ppcp_msg_type type;
		char rid[PPCP_ID_MAX + 1], *payload = NULL;
		uint64_t now = now_ms();
		int k;

		if (now >= deadline)
			return PPCP_ERR_TIMEOUT;
		k = ppcp_session_recv(c->s, (int)(deadline - now), &type, rid, &payload);
		if (k == PPCP_ERR_AGAIN)
			continue;
		if (k != 0)
			return k;
		run_on_message(r, id, type, rid, payload, 0);
		free(payload);
	}
	free(r->final);
	r->final = NULL;
	return 0;
}

static int argv_after_dashes(int argc, char **argv, int *i)
{
	for (; *i < argc; (*i)++) {
		if (strcmp(argv[*i], "--") == 0) {
			(*i)++;
			break;
		}
	}
	return *i < argc;
}

static int mode_multi(int argc, char **argv)
{
	int n, i = 1, ok = 0, k;
	struct conn *cs;
	char (*ids)[PPCP_ID_MAX + 1];
	json_t *p;
	uint64_t t0 = now_ms();

	if (argc < 1 || (n = atoi(argv[0])) < 1)
		die("multi N -- ARGV");
	if (!argv_after_dashes(argc, argv, &i))
		die("multi N -- ARGV");
	cs = calloc((size_t)n, sizeof(*cs));
	ids = calloc((size_t)n, sizeof(*ids));
	p = exec_payload(0, argv + i, argc - i, 0, 0);
	for (int s = 0; s < n; s++) {
		k = session_open(&cs[s]);
		if (k != 0)
			die("session %d of %d: %s", s + 1, n, ppcp_strerror(k));
	}
	printf("multi: %d sessions established at once\n", n);
	for (int s = 0; s < n; s++)
		if (send_json(cs[s].s, PPCP_MSG_COMMAND, p, ids[s]) != 0)
			die("session %d: send failed", s + 1);
	for (int s = 0; s < n; s++) {
		struct run r;

		k = wait_done(&cs[s], ids[s], &r);
		if (k == 0 && r.status == 0)
			ok++;
		else
			fprintf(stderr, "session %d: %s, status %d\n", s + 1,
				k != 0 ? ppcp_strerror(k) : "done", r.status);
		session_close(&cs[s]);
	}
	json_decref(p);
	free(cs);
	free(ids);
	printf("multi: %d of %d ok in %llu ms\n", ok, n, (unsigned long long)(now_ms() - t0));
	return ok == n ? 0 : 1;
}

static int mode_parallel(int argc, char **argv)
{
	int n, i = 1, done = 0, exited0 = 0, limited = 0;
	struct conn c;
	char (*ids)[PPCP_ID_MAX + 1];
	uint64_t deadline;
	json_t *p;

	if (argc < 1 || (n = atoi(argv[0])) < 1 || !argv_after_dashes(argc, argv, &i))
		die("parallel N -- ARGV");
	ids = calloc((size_t)n, sizeof(*ids));
	session_open_or_die(&c);
	p = exec_payload(0, argv + i, argc - i, 0, 0);
	for (int k = 0; k < n; k++)
		if (send_json(c.s, PPCP_MSG_COMMAND, p, ids[k]) != 0)
			die("send failed");
	json_decref(p);
	deadline = now_ms() + (uint64_t)o_wait;
	while (done < n && now_ms() < deadline) {
		enum ppcp_msg_type type;
		char rid[PPCP_ID_MAX + 1], *payload = NULL;
		int k = ppcp_session_recv(c.s, 1000, &type, rid, &payload);

		if (k == PPCP_ERR_AGAIN)
			continue;
		if (k != 0)
			die("session: %s", ppcp_strerror(k));
		if (type == PPCP_MSG_ERROR) {
			done++;
			if (strstr(payload, "\"rate-limited\"") != NULL)
				limited++;
			fprintf(stderr, "ppcpd_testclient: ERROR rate-limited: %s\n", payload);
		} else if (strstr(payload, "\"done\":true") != NULL) {
			done++;
			if (strstr(payload, "\"exit\":0,") != NULL)
				exited0++;
		}
		free(payload);
	}
	session_close(&c);
	free(ids);
	printf("parallel: %d sent, %d exited 0, %d rate-limited\n", n, exited0, limited);
	return done == n ? 0 : 1;
}

static int mode_repeat(int argc, char **argv)
{
	int n, i = 1, every = 0, ok = 0, k;
	struct conn c = { -1, NULL };
	json_t *p;

	if (argc < 1 || (n = atoi(argv[0])) < 1)
		die("repeat N [--reconnect K] -- ARGV");
	if (argc > 2 && strcmp(argv[1], "--reconnect") == 0)
		every = atoi(argv[2]);
	if (!argv_after_dashes(argc, argv, &i))
		die("repeat N -- ARGV");
	p = exec_payload(0, argv + i, argc - i, 0, 0);
	for (int r = 0; r < n; r++) {
		char id[PPCP_ID_MAX + 1];
		struct run res;

		if (c.s == NULL || (every > 0 && r % every == 0)) {
			session_close(&c);
			session_open_or_die(&c);
		}
		if (send_json(c.s, PPCP_MSG_COMMAND, p, id) != 0)
			die("run %d: send failed", r + 1);
		k = wait_done(&c, id, &res);
		if (k != 0)
			die("run %d: %s", r + 1, ppcp_strerror(k));
		if (res.status == 0)
			ok++;
	}
	session_close(&c);
	json_decref(p);
	printf("repeat: %d of %d ok\n", ok, n);
	return ok == n ? 0 : 1;
}

/* ---- waiting, stalling, holding ------------------------------------------ */

static int mode_wait_bye(int argc, char **argv)
{
	struct conn c;
	const char *ready = NULL;
	uint64_t deadline;

	if (argc == 2 && strcmp(argv[0], "--ready") == 0)
		ready = argv[1];
	session_open_or_die(&c);
	if (ready != NULL) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	deadline = now_ms() + (uint64_t)o_wait;
	while (now_ms() < deadline) {
		enum ppcp_msg_type type;
		char rid[PPCP_ID_MAX + 1], *payload = NULL;
		int k = ppcp_session_recv(c.s, 1000, &type, rid, &payload);

		free(payload);
		if (k == PPCP_ERR_AGAIN || k == 0)
			continue;
		if (k == PPCP_ERR_CLOSED) {
			printf("BYE\n");
			session_close(&c);
			return 0;
		}
		printf("END %s\n", ppcp_strerror(k));
		session_close(&c);
		return 1;
	}
	printf("no BYE\n");
	return 1;
}

static int mode_stall(int argc, char **argv)
{
	struct conn c;
	json_t *p;
	int i = 1, secs;

	if (argc < 1 || (secs = atoi(argv[0])) < 1 || !argv_after_dashes(argc, argv, &i))
		die("stall SECONDS -- ARGV");
	session_open_or_die(&c);
	p = exec_payload(0, argv + i, argc - i, 0, 0);
	if (send_json(c.s, PPCP_MSG_COMMAND, p, NULL) != 0)
		die("send failed");
	json_decref(p);
	printf("stalling\n");
	fflush(stdout);
	sleep((unsigned)secs);
	close(c.fd);
	ppcp_session_free(c.s);
	return 0;
}

static int mode_hold(int argc, char **argv)
{
	struct rlimit rl;
	int n, secs, connected = 0, closed = 0;
	long check_ms = 1000;
	uint64_t t0 = now_ms();
	int *fds;

	if (argc < 2 || argc > 3 || (n = atoi(argv[0])) < 1 || (secs = atoi(argv[1])) < 1)
		die("hold N SECONDS [CHECK_MS]");
	if (argc == 3)
		check_ms = atol(argv[2]);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds = calloc((size_t)n, sizeof(int));
	for (int i = 0; i < n; i++) {
		fds[i] = tcp_socket();
		if (fds[i] >= 0)
			connected++;
	}
	usleep((useconds_t)check_ms * 1000);
	for (int i = 0; i < n; i++) {
		char b;
		ssize_t k;

		if (fds[i] < 0)
			continue;
		k = recv(fds[i], &b, 1, MSG_DONTWAIT | MSG_PEEK);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			closed++;
	}
	printf("hold: %d connected, %d closed by the server\n", connected, closed);
	fflush(stdout);
	while (now_ms() - t0 < (uint64_t)secs * 1000)
		usleep(50000);
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return 0;
}

static int mode_trickle(int argc, char **argv)
{
	static const uint8_t hello[] = { 0, 0, 0, PPCP_CLIENT_HELLO_LEN, 'P', 'P', 'C', 'P', 1, 1, 1, 0 };
	long interval;
	uint64_t t0 = now_ms();
	int fd;

	if (argc != 1 || (interval = atol(argv[0])) < 1)
		die("trickle INTERVAL_MS");
	fd = tcp_socket();
	if (fd < 0)
		die("connect: %s", strerror(errno));
	for (size_t i = 0; now_ms() - t0 < (uint64_t)o_wait; i++) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		char b;

		if (i < sizeof(hello) && send(fd, &hello[i], 1, MSG_NOSIGNAL) != 1)
			break;
		if (poll(&pfd, 1, (int)interval) > 0 && recv(fd, &b, 1, 0) <= 0)
			break;
	}
	printf("trickle: closed by the server after %llu ms\n", (unsigned long long)(now_ms() - t0));
	close(fd);
	return 0;
}

static int mode_handshake(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 1, good = 0;
	uint64_t t0 = now_ms();

	for (int i = 0; i < n; i++) {
		struct conn c;
		int r = session_open(&c);

		if (r != 0) {
			printf("handshake failed: %s\n", ppcp_strerror(r));
			continue;
		}
		good++;
		session_close(&c);
	}
	if (n == 1 && good == 1)
		printf("handshake ok in %llu ms\n", (unsigned long long)(now_ms() - t0));
	else if (n > 1)
		printf("handshakes: %d ok, %d failed\n", good, n - good);
	return good == n ? 0 : 1;
}

/* ---- discovery ----------------------------------------------------------- */

static void make_ping(ppcp_ping *ping, const char *target)
{
	memset(ping, 0, sizeof(*ping));
	snprintf(ping->id, sizeof(ping->id), "tc%08lx", (unsigned long)(now_ms() & 0xffffffff));
	snprintf(ping->client_id, sizeof(ping->client_id), "testclient");
	snprintf(ping->hostname, sizeof(ping->hostname), "testhost");
	snprintf(ping->version, sizeof(ping->version), "%s", PPCP_VERSION_STRING);
	if (target != NULL)
		snprintf(ping->target, sizeof(ping->target), "%s", target);
	ping->ts = (int64_t)time(NULL);
}

static int mode_tcp_ping(int argc, char **argv)
{
	const char *target = NULL;
	uint8_t buf[PPCP_PING_MAX + 4], in[PPCP_PING_MAX + 4];
	size_t len, have = 0;
	ppcp_ping ping;
	ppcp_pong pong;
	int fd, r;

	if (argc == 2 && strcmp(argv[0], "--target") == 0)
		target = argv[1];
	make_ping(&ping, target);
	if (ppcp_ping_encode(&ping, buf + 4, sizeof(buf) - 4, &len) != 0)
		die("ping_encode");
	ppcp__store_be32(buf, (uint32_t)len);
	fd = tcp_socket();
	if (fd < 0)
		die("connect: %s", strerror(errno));
	write_all(fd, buf, len + 4);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t k;

		if (poll(&pfd, 1, 3000) <= 0) {
			printf("no answer\n");
			return 1;
		}
		k = read(fd, in + have, sizeof(in) - have);
		if (k <= 0) {
			printf("closed without a PONG\n");
			return 1;
		}
		have += (size_t)k;
		if (have >= 4 && have >= 4 + ppcp__load_be32(in))
			break;
	}
	r = ppcp_pong_decode(in + 4, ppcp__load_be32(in), &pong);
	if (r != 0)
		die("bad PONG: %s", ppcp_strerror(r));
	printf("PONG %s %s %u (%u bytes for a %zu-byte PING)\n", pong.server_id, pong.hostname,
	       pong.port, ppcp__load_be32(in), len);
	close(fd);
	return 0;
}

static int mode_udp_ping(int argc, char **argv)
{
	const char *target = NULL, *kind = "normal";
	int count = 1, got = 0, fd;
	uint8_t buf[2048];
	size_t len = 0, max_pong = 0;
	struct sockaddr_in a;
	ppcp_ping ping;
	uint64_t until;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--target") == 0 && i + 1 < argc)
			target = argv[++i];
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = atoi(argv[++i]);
		else if (argv[i][0] == '-' && argv[i][1] == '-')
			kind = argv[i] + 2;
		else
			die("udp-ping: unknown %s", argv[i]);
	}
	make_ping(&ping, target);
	if (strcmp(kind, "normal") == 0) {
		if (ppcp_ping_encode(&ping, buf, sizeof(buf), &len) != 0)
			die("ping_encode");
	} else if (strcmp(kind, "small") == 0) {
		/* Valid but unpadded: smaller than any PONG. */
		len = (size_t)snprintf((char *)buf, sizeof(buf),
				       "{\"i\":\"%s\",\"p\":{\"client_id\":\"t\",\"hostname\":\"t\",\"version\":\"1\"},\"s\":0,\"t\":\"PING\",\"v\":1}",
				       ping.id);
	} else if (strcmp(kind, "oversize") == 0) {
		int n = snprintf((char *)buf, sizeof(buf),
				 "{\"i\":\"%s\",\"p\":{\"client_id\":\"t\",\"hostname\":\"t\",\"pad\":\"", ping.id);
		memset(buf + n, '0', 1100);
		n += 1100;
		n += snprintf((char *)buf + n, sizeof(buf) - (size_t)n,
			      "\",\"version\":\"1\"},\"s\":0,\"t\":\"PING\",\"v\":1}");
		len = (size_t)n;
	} else if (strcmp(kind, "garbage") == 0) {
		memset(buf, '{', 600);
		len = 600;
	} else {
		die("udp-ping: unknown kind %s", kind);
	}
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)o_port);
	if (inet_pton(AF_INET, o_addr, &a.sin_addr) != 1 ||
	    (a.sin_addr.s_addr & htonl(0xff000000)) != htonl(0x7f000000))
		die("udp-ping sends to a loopback address only");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	for (int i = 0; i < count; i++)
		if (sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a)) < 0)
			die("sendto: %s", strerror(errno));
	until = now_ms() + 1000;
	for (;;) {
		uint8_t in[2048];
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = now_ms();
		ssize_t k;
		ppcp_pong pong;

		if (now >= until || poll(&pfd, 1, (int)(until - now)) <= 0)
			break;
		k = recv(fd, in, sizeof(in), 0);
		if (k <= 0)
			break;
		if (ppcp_pong_decode(in, (size_t)k, &pong) != 0)
			die("a datagram that is not a PONG");
		got++;
		if ((size_t)k > max_pong)
			max_pong = (size_t)k;
	}
	close(fd);
	printf("udp-ping: sent %d PINGs of %zu bytes, %d PONGs, largest PONG %zu bytes\n", count,
	       len, got, max_pong);
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	int i;
	const char *mode;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			die("%s needs a value", argv[i]);
		if (strcmp(argv[i], "--psk-file") == 0)
			o_psk_file = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			o_port = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--addr") == 0)
			o_addr = argv[i + 1];
		else if (strcmp(argv[i], "--bind") == 0)
			o_bind = argv[i + 1];
		else if (strcmp(argv[i], "--server-id") == 0)
			o_server_id = argv[i + 1];
		else if (strcmp(argv[i], "--wait") == 0)
			o_wait = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--result") == 0)
			o_result = argv[i + 1];
		else
			die("unknown option %s", argv[i]);
	}
	if (i >= argc)
		die("usage: ppcpd_testclient [OPTIONS] MODE [ARGS] (see testclient.c)");
	if (o_port < 1 || o_port > 65535)
		die("--port N is required");
	if (o_psk_file != NULL) {
		int r = ppcp_psk_load(o_psk_file, psk);
		if (r != 0)
			die("PSK %s: %s", o_psk_file, ppcp_strerror(r));
	}
	mode = argv[i++];
	argc -= i;
	argv += i;
	if (strcmp(mode, "exec") == 0)
		return mode_exec(0, argc, argv);
	if (strcmp(mode, "sh") == 0)
		return mode_exec(1, argc, argv);
	if (strcmp(mode, "status") == 0)
		return mode_status();
	if (strcmp(mode, "send") == 0)
		return mode_send(argc, argv);
	if (strcmp(mode, "multi") == 0)
		return mode_multi(argc, argv);
	if (strcmp(mode, "parallel") == 0)
		return mode_parallel(argc, argv);
	if (strcmp(mode, "repeat") == 0)
		return mode_repeat(argc, argv);
	if (strcmp(mode, "wait-bye") == 0)
		return mode_wait_bye(argc, argv);
	if (strcmp(mode, "stall") == 0)
		return mode_stall(argc, argv);
	if (strcmp(mode, "hold") == 0)
		return mode_hold(argc, argv);
	if (strcmp(mode, "trickle") == 0)
		return mode_trickle(argc, argv);
	if (strcmp(mode, "handshake") == 0)
		return mode_handshake(argc, argv);
	if (strcmp(mode, "tcp-ping") == 0)
		return mode_tcp_ping(argc, argv);
	if (strcmp(mode, "udp-ping") == 0)
		return mode_udp_ping(argc, argv);
	die("unknown mode %s", mode);
}
