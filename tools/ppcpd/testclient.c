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
 *   file transfer (PROTOCOL.md §9), on the engine with poll() so that
 *   binary-data records arrive too; exit 0, 100 for an ERROR answer, 1 for
 *   a wrong answer, 3 when the session ended first:
 *     get [--binary] [--offset N] [--length N] [--hold-ms MS] [--rate B/S]
 *         [--cancel-after BYTES] [--stall SECONDS] PATH OUTFILE
 *                                the head and the result on stdout, the
 *                                bytes in OUTFILE; the SHA-256 is checked
 *                                when the whole file came
 *     put [--binary] [--mkdir] [--mode OCTAL] [--stop-after BYTES]
 *         [--bad out-of-order|past-end|unknown-stream|early-last|bad-base64|
 *          wrong-sha] LOCALFILE PATH
 *                                --stop-after: exit 3 without BYE once that
 *                                many bytes are sent (an interrupted upload)
 *     list PATH                  one "entry NAME TYPE SIZE" line each
 *     mix GETPATH OUTFILE PUTLOCAL PUTPATH -- ARGV
 *                                a binary get, a base64 put and an exec at
 *                                once in one session
 *     gets N PATH                N binary gets at once in one session
 *   options of the file modes: [--no-ext] (offer no extension)
 *   [--max-record N] [--hb-ms MS] (our heartbeat interval)
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

/* ---- file transfer (PROTOCOL.md §9), on the engine itself --------------
 *
 * The blocking API carries no binary-data records, so these modes drive a
 * ppcp_conn with poll(): one connection, any number of operations at once
 * (get, put, list, exec), each known by the id of its request and, for
 * binary data, by the stream of its head.
 */

enum { FOP_GET = 1, FOP_PUT, FOP_LIST, FOP_EXEC, FOP_MAX = 64 };

struct fop {
	int kind;
	char id[PPCP_ID_MAX + 1];
	int done, status; /* 0 ok, 100 an ERROR answered it, 1 something was wrong */
	char result[600];
	char *head;       /* the head's payload */
	/* get */
	int want_binary, out_fd, has_len;
	uint64_t req_off, req_len, cancel_after, hold_ms;
	int have_head, binary, cancelled;
	uint32_t stream;
	uint64_t size, next, end, got;
	uint8_t head_sha[32];
	ppcp_sha256 *h;
	uint64_t records;
	/* put */
	int in_fd, mkdir;
	long mode;
	uint64_t psize, pos, stop_after, sent, held;
	uint8_t psha[32];
	const char *bad;
	int sending;
	/* list */
	unsigned long entries, chunks;
	/* exec */
	uint64_t out_bytes;
};

static struct {
	int fd;
	ppcp_conn *c;
	int established, peer_bye;
	unsigned long hb_acks;
	struct fop *ops[FOP_MAX];
	int nops;
	uint64_t rx, hold_until, rate, t0;
	long max_record, hb_ms;
	int no_ext, handshaking;
} F;

static struct fop *fop_by_id(const char *id)
{
	for (int i = 0; i < F.nops; i++)
		if (strcmp(F.ops[i]->id, id) == 0)
			return F.ops[i];
	return NULL;
}

static struct fop *fop_by_stream(uint32_t stream)
{
	for (int i = 0; i < F.nops; i++)
		if (F.ops[i]->have_head && F.ops[i]->binary && F.ops[i]->stream == stream)
			return F.ops[i];
	return NULL;
}

static void fop_end(struct fop *o, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fop_end(struct fop *o, int status, const char *fmt, ...)
{
	va_list ap;

	if (o->done)
		return;
	o->done = 1;
	o->status = status;
	va_start(ap, fmt);
	vsnprintf(o->result, sizeof(o->result), fmt, ap);
	va_end(ap);
}

static int hex_to_bytes(const char *hex, uint8_t out[32])
{
	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void bytes_to_hex(const uint8_t in[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void fc_send(enum ppcp_msg_type t, const char *id, json_t *p, char *id_out)
{
	int r = ppcp_conn_send(F.c, t, id, p, id_out);

	if (r != 0)
		die("send %s: %s", ppcp_msg_type_name(t), ppcp_strerror(r));
}

static void get_data(struct fop *o, uint64_t off, const uint8_t *d, size_t n, int last)
{
	if (o->done)
		return;
	if (!o->have_head) {
		fop_end(o, 1, "data before the head");
		return;
	}
	if (off != o->next || n > o->end - o->next) {
		fop_end(o, 1, "data out of order or range: offset %llu (+%zu), expected %llu, end %llu",
			(unsigned long long)off, n, (unsigned long long)o->next,
			(unsigned long long)o->end);
		return;
	}
	if (o->out_fd >= 0 && n > 0 &&
	    pwrite(o->out_fd, d, n, (off_t)(off - o->req_off)) != (ssize_t)n)
		die("writing the output: %s", strerror(errno));
	if (o->h != NULL)
		ppcp_sha256_update(o->h, d, n);
	o->next += n;
	o->got += n;
	o->records++;
	if (o->cancel_after > 0 && o->got >= o->cancel_after && !o->cancelled) {
		json_t *p = json_pack("{s:s,s:s}", "code", "cancelled", "message", "testclient cancels");
		fc_send(PPCP_MSG_ERROR, o->id, p, NULL);
		json_decref(p);
		o->cancelled = 1;
		fop_end(o, 0, "cancelled after %llu bytes", (unsigned long long)o->got);
		return;
	}
	if (last) {
		uint8_t sha[32];

		if (o->next != o->end) {
			fop_end(o, 1, "last at %llu, end %llu", (unsigned long long)o->next,
				(unsigned long long)o->end);
			return;
		}
		if (o->h != NULL && o->req_off == 0 && o->end == o->size) {
			ppcp_sha256_final(o->h, sha);
			if (memcmp(sha, o->head_sha, 32) != 0) {
				fop_end(o, 1, "sha256 mismatch");
				return;
			}
			fop_end(o, 0, "%llu bytes in %llu records, sha256 ok", (unsigned long long)o->got,
				(unsigned long long)o->records);
		} else {
			fop_end(o, 0, "%llu bytes in %llu records (part of the file)",
				(unsigned long long)o->got, (unsigned long long)o->records);
		}
	} else if (n == 0) {
		fop_end(o, 1, "an empty chunk that is not the last");
	}
}

static void get_head(struct fop *o, const json_t *p)
{
	const json_t *st = json_object_get(p, "stream");

	o->have_head = 1;
	o->size = (uint64_t)json_integer_value(json_object_get(p, "size"));
	o->next = (uint64_t)json_integer_value(json_object_get(p, "offset"));
	o->end = o->next + (uint64_t)json_integer_value(json_object_get(p, "length"));
	o->binary = json_is_true(json_object_get(p, "binary"));
	o->stream = st != NULL ? (uint32_t)json_integer_value(st) : 0;
	if (hex_to_bytes(json_string_value(json_object_get(p, "sha256")), o->head_sha) != 0 ||
	    o->next != o->req_off || (o->has_len && o->end - o->next != o->req_len) ||
	    (o->binary && st == NULL)) {
		fop_end(o, 1, "bad head");
		return;
	}
	if (o->hold_ms > 0)
		F.hold_until = now_ms() + o->hold_ms;
	if (o->next == o->end) {
		if (o->size == 0 && o->h != NULL) {
			uint8_t sha[32];
			ppcp_sha256_final(o->h, sha);
			if (memcmp(sha, o->head_sha, 32) != 0) {
				fop_end(o, 1, "sha256 mismatch");
				return;
			}
		}
		fop_end(o, 0, "0 bytes (head only)");
	}
}

static void fc_on_established(ppcp_conn *c, void *u)
{
	(void)c;
	(void)u;
	F.established = 1;
}

static void fc_on_message(ppcp_conn *c, const ppcp_msg *m, void *u)
{
	struct fop *o;
	char *txt;

	(void)c;
	(void)u;
	if (m->type == PPCP_MSG_HEARTBEAT_ACK) {
		F.hb_acks++;
		return;
	}
	if (m->type == PPCP_MSG_BYE) {
		F.peer_bye = 1;
		return;
	}
	if (m->type == PPCP_MSG_HEARTBEAT)
		return;
	o = fop_by_id(m->id);
	if (m->type == PPCP_MSG_ERROR) {
		const char *code = json_string_value(json_object_get(m->payload, "code"));
		const char *msg = json_string_value(json_object_get(m->payload, "message"));

		if (o == NULL) {
			printf("ERROR about %s: %s: %s\n", m->id, code, msg);
			return;
		}
		if (!o->done)
			fop_end(o, 100, "ERROR %s: %s", code, msg);
		else if (!o->cancelled)
			printf("ERROR after the end of %s: %s: %s\n", o->id, code, msg);
		return;
	}
	if (o == NULL) {
		txt = json_dumps(m->payload, JSON_COMPACT);
		printf("UNEXPECTED %s %s %s\n", m->type_name, m->id, txt);
		free(txt);
		return;
	}
	if (o->done)
		return; /* after a cancel, what was in flight */
	if (o->kind == FOP_EXEC) {
		const json_t *d = json_object_get(m->payload, "data");

		if (d != NULL) {
			o->out_bytes += json_string_length(d) / 4 * 3;
		} else if (json_is_true(json_object_get(m->payload, "done"))) {
			const json_t *e = json_object_get(m->payload, "exit");
			fop_end(o, json_is_integer(e) && json_integer_value(e) == 0 ? 0 : 1,
				"exit %lld", json_is_integer(e) ? (long long)json_integer_value(e) : -1LL);
		}
		return;
	}
	if (m->type != PPCP_MSG_FILE_CHUNK) {
		fop_end(o, 1, "unexpected %s", m->type_name);
		return;
	}
	if (o->kind == FOP_GET) {
		const json_t *d = json_object_get(m->payload, "data");
		if (!o->have_head) {
			o->head = json_dumps(m->payload, JSON_COMPACT);
			get_head(o, m->payload);
		} else if (d != NULL) {
			size_t len = json_string_length(d);
			uint8_t *buf = malloc(len / 4 * 3 + 3);
			long n = ppcp__b64_decode(buf, len / 4 * 3 + 3, json_string_value(d), len);

			if (n < 0)
				fop_end(o, 1, "bad base64");
			else
				get_data(o, (uint64_t)json_integer_value(json_object_get(m->payload, "offset")),
					 buf, (size_t)n, json_is_true(json_object_get(m->payload, "last")));
			free(buf);
		} else {
			fop_end(o, 1, "a FILE_CHUNK without data after the head");
		}
	} else if (o->kind == FOP_PUT) {
		if (!o->have_head) {
			const json_t *st = json_object_get(m->payload, "stream");

			o->head = json_dumps(m->payload, JSON_COMPACT);
			o->have_head = 1;
			o->held = (uint64_t)json_integer_value(json_object_get(m->payload, "offset"));
			o->binary = json_is_true(json_object_get(m->payload, "binary"));
			o->stream = st != NULL ? (uint32_t)json_integer_value(st) : 0;
			o->pos = o->held;
			o->sending = o->pos < o->psize;
			printf("put head %s\n", o->head);
			fflush(stdout);
		} else if (json_is_true(json_object_get(m->payload, "done"))) {
			txt = json_dumps(m->payload, JSON_COMPACT);
			fop_end(o, 0, "done %s", txt);
			free(txt);
		} else {
			fop_end(o, 1, "unexpected FILE_CHUNK for an upload");
		}
	} else if (o->kind == FOP_LIST) {
		const json_t *e = json_object_get(m->payload, "entries"), *v;
		size_t i;

		o->chunks++;
		json_array_foreach(e, i, v)
		{
			const json_t *sz = json_object_get(v, "size");
			printf("entry %s %s %lld\n", json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "type")),
			       sz != NULL ? (long long)json_integer_value(sz) : -1LL);
			o->entries++;
		}
		if (json_is_true(json_object_get(m->payload, "last")))
			fop_end(o, 0, "%lu entries in %lu chunks", o->entries, o->chunks);
	}
}

static void fc_on_binary(ppcp_conn *c, const uint8_t *data, size_t len, void *u)
{
	uint32_t stream;
	uint64_t off;
	int last;
	const uint8_t *d;
	size_t n;
	struct fop *o;

	(void)c;
	(void)u;
	if (ppcp_file_data_parse(data, len, &stream, &off, &last, &d, &n) != 0)
		die("malformed binary-data record");
	o = fop_by_stream(stream);
	if (o == NULL || o->kind != FOP_GET)
		die("binary-data record for unknown stream %u", stream);
	get_data(o, off, d, n, last);
}

/* Write what the engine holds; block (poll) until it is all out when all. */
static void fc_write(int all)
{
	const uint8_t *data;
	size_t n;

	while ((n = ppcp_conn_out(F.c, &data)) > 0) {
		ssize_t k = send(F.fd, data, n, MSG_NOSIGNAL);

		if (k > 0) {
			ppcp_conn_out_ack(F.c, (size_t)k);
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { F.fd, POLLOUT, 0 };
			if (!all)
				return;
			poll(&pfd, 1, 1000);
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		die("write: %s", strerror(errno));
	}
}

static size_t fc_out_pending(void)
{
	const uint8_t *data;

	return ppcp_conn_out(F.c, &data);
}

static void put_pump(struct fop *o)
{
	uint32_t peer_max = ppcp_conn_peer_max_record(F.c);
	size_t chunk = o->binary ? peer_max - PPCP_FILE_DATA_HDR : (peer_max - 512) / 4 * 3;
	static uint8_t buf[256 * 1024 + 1];

	if (chunk > (o->binary ? 256 * 1024 : 192 * 1024))
		chunk = o->binary ? 256 * 1024 : 192 * 1024;
	while (o->sending && !o->done && fc_out_pending() < 2 * 1024 * 1024) {
		uint64_t left = o->psize - o->pos;
		size_t n = left < chunk ? (size_t)left : chunk, sendn = n;
		uint64_t off = o->pos;
		uint32_t stream = o->stream;
		int last = n == left;
		ssize_t k = n > 0 ? pread(o->in_fd, buf, n, (off_t)o->pos) : 0;

		if (k != (ssize_t)n)
			die("reading the input: short read");
		if (o->bad != NULL && o->sent == 0 && strcmp(o->bad, "out-of-order") == 0)
			off++;
		if (o->bad != NULL && strcmp(o->bad, "unknown-stream") == 0)
			stream += 100;
		if (o->bad != NULL && last && strcmp(o->bad, "past-end") == 0)
			buf[sendn++] = 'X';
		if (o->bad != NULL && o->sent == 0 && strcmp(o->bad, "early-last") == 0 && !last)
			last = 1;
		if (o->binary) {
			int r = ppcp_conn_send_file_data(F.c, stream, off, last, buf, sendn);
			if (r != 0)
				die("send_file_data: %s", ppcp_strerror(r));
		} else {
			char *b64 = malloc(4 * ((sendn + 2) / 3) + 1);
			json_t *p;

			ppcp__b64_encode(b64, buf, sendn);
			if (o->bad != NULL && strcmp(o->bad, "bad-base64") == 0)
				b64[0] = '*';
			p = json_pack("{s:I,s:s,s:b}", "offset", (json_int_t)off, "data", b64, "last", last);
			free(b64);
			fc_send(PPCP_MSG_FILE_CHUNK, o->id, p, NULL);
			json_decref(p);
		}
		o->pos += n;
		o->sent += n;
		if (last)
			o->sending = 0;
		if (o->stop_after > 0 && o->sent >= o->stop_after) {
			/* An uploader that dies: what was sent goes out, then the
			 * connection closes without BYE. */
			fc_write(1);
			printf("put: stopped after %llu bytes\n", (unsigned long long)o->sent);
			fflush(stdout);
			shutdown(F.fd, SHUT_WR);
			usleep(200000);
			_exit(3);
		}
	}
}

static int fc_all_done(void)
{
	for (int i = 0; i < F.nops; i++)
		if (!F.ops[i]->done)
			return 0;
	return 1;
}

/* Run until every operation is done, the session ends or the wait is over.
 * 0, or the engine's error. */
static int fc_run(uint64_t deadline)
{
	static uint8_t rbuf[256 * 1024];

	for (;;) {
		struct pollfd pfd = { F.fd, 0, 0 };
		uint64_t now = now_ms(), until = deadline, dl;
		enum ppcp_state st;

		if (F.established && (F.handshaking || fc_all_done()))
			return 0;
		for (int i = 0; i < F.nops; i++)
			if (F.ops[i]->kind == FOP_PUT)
				put_pump(F.ops[i]);
		fc_write(0);
		st = ppcp_conn_state(F.c);
		if (st == PPCP_ST_FAILED)
			return ppcp_conn_error(F.c);
		if (st == PPCP_ST_CLOSED)
			return PPCP_ERR_CLOSED;
		if (now >= deadline)
			return PPCP_ERR_TIMEOUT;
		if (F.rate > 0 && F.rx > F.rate * (now - F.t0) / 1000) {
			uint64_t t = F.t0 + F.rx * 1000 / F.rate;
			if (t > F.hold_until)
				F.hold_until = t;
		}
		if (F.hold_until <= now)
			pfd.events |= POLLIN;
		else if (F.hold_until < until)
			until = F.hold_until;
		if (fc_out_pending() > 0)
			pfd.events |= POLLOUT;
		for (int i = 0; i < F.nops; i++)
			if (F.ops[i]->kind == FOP_PUT && F.ops[i]->sending && !F.ops[i]->done)
				pfd.events |= POLLOUT; /* more to queue once the socket has room */
		dl = ppcp_conn_next_deadline(F.c);
		if (dl < until)
			until = dl;
		if (poll(&pfd, 1, until > now ? (int)(until - now) : 0) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		now = now_ms();
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(F.fd, rbuf, sizeof(rbuf), 0);

			if (k > 0) {
				F.rx += (uint64_t)k;
				(void)ppcp_conn_feed(F.c, rbuf, (size_t)k, now);
			} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
				int e = ppcp_conn_eof(F.c);
				return e != 0 ? e : PPCP_ERR_CLOSED;
			}
		}
		if (now >= ppcp_conn_next_deadline(F.c))
			(void)ppcp_conn_on_timeout(F.c, now);
	}
}

static void fc_open(void)
{
	ppcp_config cfg;
	int r;

	if (o_psk_file == NULL)
		die("--psk-file is required");
	F.fd = tcp_socket();
	if (F.fd < 0)
		die("cannot connect to %s:%ld", o_addr, o_port);
	fcntl(F.fd, F_SETFL, fcntl(F.fd, F_GETFL) | O_NONBLOCK);
	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = psk;
	cfg.psk_len = sizeof(psk);
	cfg.server_id = o_server_id;
	cfg.client_id = "testclient";
	if (F.max_record > 0)
		cfg.max_record = (uint32_t)F.max_record;
	if (F.hb_ms > 0)
		cfg.heartbeat_ms = (uint32_t)F.hb_ms;
	if (F.no_ext)
		cfg.extensions = 0;
	cfg.cb.on_established = fc_on_established;
	cfg.cb.on_message = fc_on_message;
	cfg.cb.on_binary = fc_on_binary;
	r = ppcp_conn_new(&F.c, &cfg, now_ms());
	if (r != 0)
		die("ppcp_conn_new: %s", ppcp_strerror(r));
	F.handshaking = 1;
	r = fc_run(now_ms() + 10000);
	F.handshaking = 0;
	if (!F.established)
		die("handshake: %s", ppcp_strerror(r));
}

static void fc_close(void)
{
	if (ppcp_conn_state(F.c) == PPCP_ST_ESTABLISHED) {
		(void)ppcp_conn_close(F.c, NULL);
		fc_write(1);
	}
	close(F.fd);
	ppcp_conn_free(F.c);
}

static struct fop *fop_new(int kind)
{
	struct fop *o = calloc(1, sizeof(*o));

	if (o == NULL || F.nops >= FOP_MAX)
		die("too many operations");
	o->kind = kind;
	o->out_fd = o->in_fd = -1;
	o->mode = -1;
	F.ops[F.nops++] = o;
	return o;
}

static void fop_start_get(struct fop *o, const char *path)
{
	json_t *p = json_pack("{s:s,s:I,s:b}", "path", path, "offset", (json_int_t)o->req_off,
			      "binary", o->want_binary);

	if (o->has_len)
		json_object_set_new(p, "length", json_integer((json_int_t)o->req_len));
	if (ppcp_sha256_new(&o->h) != 0)
		die("sha256");
	fc_send(PPCP_MSG_FILE_REQUEST, NULL, p, o->id);
	json_decref(p);
}

static void fop_start_put(struct fop *o, const char *local, const char *path)
{
	struct stat st;
	uint8_t buf[65536];
	ppcp_sha256 *h;
	ssize_t k;
	char hex[65];
	json_t *p;

	o->in_fd = open(local, O_RDONLY | O_CLOEXEC);
	if (o->in_fd < 0 || fstat(o->in_fd, &st) != 0)
		die("%s: %s", local, strerror(errno));
	o->psize = (uint64_t)st.st_size;
	ppcp_sha256_new(&h);
	while ((k = read(o->in_fd, buf, sizeof(buf))) > 0)
		ppcp_sha256_update(h, buf, (size_t)k);
	ppcp_sha256_final(h, o->psha);
	ppcp_sha256_free(h);
	if (o->bad != NULL && strcmp(o->bad, "wrong-sha") == 0)
		o->psha[0] ^= 1;
	bytes_to_hex(o->psha, hex);
	p = json_pack("{s:s,s:s,s:I,s:s,s:b}", "op", "put", "path", path, "size",
		      (json_int_t)o->psize, "sha256", hex, "binary", o->want_binary);
	if (o->mkdir)
		json_object_set_new(p, "mkdir", json_true());
	if (o->mode >= 0)
		json_object_set_new(p, "mode", json_integer(o->mode));
	fc_send(PPCP_MSG_FILE_REQUEST, NULL, p, o->id);
	json_decref(p);
}

static void fop_start_list(struct fop *o, const char *path)
{
	json_t *p = json_pack("{s:s,s:s}", "op", "list", "path", path);

	fc_send(PPCP_MSG_FILE_REQUEST, NULL, p, o->id);
	json_decref(p);
}

static void fop_start_exec(struct fop *o, char **argv, int argc)
{
	json_t *p = exec_payload(0, argv, argc, 0, 0);

	fc_send(PPCP_MSG_COMMAND, NULL, p, o->id);
	json_decref(p);
}

/* Options shared by the file modes; returns the index of the first
 * argument that is not one. */
static int fop_options(struct fop *o, int argc, char **argv, long *stall)
{
	int i;

	for (i = 0; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--binary") == 0) {
			o->want_binary = 1;
		} else if (strcmp(a, "--mkdir") == 0) {
			o->mkdir = 1;
		} else if (strcmp(a, "--no-ext") == 0) {
			F.no_ext = 1;
		} else if (more && strcmp(a, "--offset") == 0) {
			o->req_off = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--length") == 0) {
			o->has_len = 1;
			o->req_len = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--mode") == 0) {
			o->mode = strtol(argv[++i], NULL, 8);
		} else if (more && strcmp(a, "--stop-after") == 0) {
			o->stop_after = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--cancel-after") == 0) {
			o->cancel_after = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--hold-ms") == 0) {
			o->hold_ms = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--rate") == 0) {
			F.rate = strtoull(argv[++i], NULL, 10);
		} else if (more && strcmp(a, "--bad") == 0) {
			o->bad = argv[++i];
		} else if (more && strcmp(a, "--max-record") == 0) {
			F.max_record = atol(argv[++i]);
		} else if (more && strcmp(a, "--hb-ms") == 0) {
			F.hb_ms = atol(argv[++i]);
		} else if (more && strcmp(a, "--stall") == 0 && stall != NULL) {
			*stall = atol(argv[++i]);
		} else {
			die("unknown option %s", a);
		}
	}
	return i;
}

static int fop_report(struct fop *o, const char *what, int r)
{
	if (!o->done) {
		printf("%s: END %s\n", what, ppcp_err_name(r));
		return 3;
	}
	printf("%s: %s\n", what, o->result);
	return o->status;
}

static int mode_get(int argc, char **argv)
{
	struct fop *o = fop_new(FOP_GET);
	long stall = 0;
	int i = fop_options(o, argc, argv, &stall), r, status;
	uint64_t t0;
	double secs;

	if (argc - i != 2)
		die("get [OPTIONS] PATH OUTFILE");
	o->out_fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->out_fd < 0)
		die("%s: %s", argv[i + 1], strerror(errno));
	fc_open();
	fop_start_get(o, argv[i]);
	if (stall > 0) {
		/* A reader that never reads (adversarial T43). */
		fc_write(1);
		printf("get: stalling for %ld s\n", stall);
		fflush(stdout);
		sleep((unsigned)stall);
		return 0;
	}
	t0 = F.t0 = now_ms();
	r = fc_run(now_ms() + (uint64_t)o_wait);
	secs = (double)(now_ms() - t0) / 1000.0;
	if (o->head != NULL)
		printf("head %s\n", o->head);
	status = fop_report(o, "get", r);
	if (o->done && o->status == 0 && !o->cancelled)
		printf("get: %.3f s, %.1f MiB/s, %lu heartbeat acks\n", secs,
		       secs > 0 ? (double)o->got / 1048576.0 / secs : 0.0, F.hb_acks);
	if (o->cancelled) {
		/* What was in flight still arrives; the transfer must stop. */
		uint64_t before = F.rx;
		fc_run(now_ms() + 1000);
		printf("get: %llu bytes arrived in the second after the cancel\n",
		       (unsigned long long)(F.rx - before));
	}
	fc_close();
	return status;
}

static int mode_put(int argc, char **argv)
{
	struct fop *o = fop_new(FOP_PUT);
	int i = fop_options(o, argc, argv, NULL), r, status;
	uint64_t t0;
	double secs;

	if (argc - i != 2)
		die("put [OPTIONS] LOCALFILE PATH");
	fc_open();
	fop_start_put(o, argv[i], argv[i + 1]);
	t0 = now_ms();
	r = fc_run(now_ms() + (uint64_t)o_wait);
	secs = (double)(now_ms() - t0) / 1000.0;
	status = fop_report(o, "put", r);
	if (o->done && o->status == 0)
		printf("put: %llu bytes sent (from offset %llu) in %.3f s\n",
		       (unsigned long long)o->sent, (unsigned long long)o->held, secs);
	if (r != 0 && o->done)
		printf("put: session: %s\n", ppcp_err_name(r));
	fc_close();
	return status;
}

static int mode_list(int argc, char **argv)
{
	struct fop *o = fop_new(FOP_LIST);
	int i = fop_options(o, argc, argv, NULL), r, status;

	if (argc - i != 1)
		die("list [OPTIONS] PATH");
	fc_open();
	fop_start_list(o, argv[i]);
	r = fc_run(now_ms() + (uint64_t)o_wait);
	status = fop_report(o, "list", r);
	fc_close();
	return status;
}

/* mix GETPATH OUTFILE PUTLOCAL PUTPATH -- ARGV: a binary download, a
 * base64 upload and a command at once in one session. */
static int mode_mix(int argc, char **argv)
{
	struct fop *g = fop_new(FOP_GET), *p = fop_new(FOP_PUT), *e = fop_new(FOP_EXEC);
	int i = fop_options(g, argc, argv, NULL), r, bad = 0;

	if (argc - i < 6 || strcmp(argv[i + 4], "--") != 0)
		die("mix [OPTIONS] GETPATH OUTFILE PUTLOCAL PUTPATH -- ARGV");
	g->want_binary = 1;
	g->out_fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (g->out_fd < 0)
		die("%s: %s", argv[i + 1], strerror(errno));
	fc_open();
	fop_start_get(g, argv[i]);
	fop_start_put(p, argv[i + 2], argv[i + 3]);
	fop_start_exec(e, argv + i + 5, argc - i - 5);
	r = fc_run(now_ms() + (uint64_t)o_wait);
	bad |= fop_report(g, "mix get", r) != 0;
	bad |= fop_report(p, "mix put", r) != 0;
	bad |= fop_report(e, "mix exec", r) != 0;
	printf("mix: %lu heartbeat acks\n", F.hb_acks);
	fc_close();
	return bad;
}

/* gets N PATH: N downloads at once in one session (max-transfers). */
static int mode_gets(int argc, char **argv)
{
	int n, ok = 0, limited = 0, r;

	if (argc != 2 || (n = atoi(argv[0])) < 1 || n > FOP_MAX)
		die("gets N PATH");
	fc_open();
	for (int k = 0; k < n; k++) {
		struct fop *o = fop_new(FOP_GET);
		o->want_binary = 1;
		fop_start_get(o, argv[1]);
	}
	r = fc_run(now_ms() + (uint64_t)o_wait);
	for (int k = 0; k < n; k++) {
		ok += F.ops[k]->done && F.ops[k]->status == 0;
		limited += F.ops[k]->done && strstr(F.ops[k]->result, "ERROR rate-limited") != NULL;
	}
	printf("gets: %d sent, %d ok, %d rate-limited%s%s\n", n, ok, limited, r != 0 ? ", " : "",
	       r != 0 ? ppcp_err_name(r) : "");
	fc_close();
	return ok + limited == n ? 0 : 1;
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
	if (strcmp(mode, "get") == 0)
		return mode_get(argc, argv);
	if (strcmp(mode, "put") == 0)
		return mode_put(argc, argv);
	if (strcmp(mode, "list") == 0)
		return mode_list(argc, argv);
	if (strcmp(mode, "mix") == 0)
		return mode_mix(argc, argv);
	if (strcmp(mode, "gets") == 0)
		return mode_gets(argc, argv);
	die("unknown mode %s", mode);
}
