/*
 * test_io.c - the blocking adapter (src/io.c): sessions over socketpairs
 * and loopback TCP with the server in a thread, and discovery against a UDP
 * responder thread on 127.0.0.1 (and ::1 where the host has it).
 *
 * Network safety: every discovery here names its addresses (addrs, or
 * PPCP_DISCOVER_ADDR), so the broadcast branch is never taken; as a second
 * guard the program runs with PPCP_DISCOVER_ADDR=127.0.0.1 throughout.
 * Every wait is bounded; alarm() ends the program if something hangs.
 * cmocka's assertions run in the main thread only: threads record results.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

static const uint8_t psk_a[32] = { 0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87,
				   0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f,
				   0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78,
				   0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0 };
static const uint8_t psk_b[32] = { 0x11 }; /* differs from psk_a */

enum { HS_TIMEOUT_MS = 5000, RECV_TIMEOUT_MS = 5000 };

static void env_loopback(void)
{
	if (setenv("PPCP_DISCOVER_ADDR", "127.0.0.1", 1) != 0)
		abort();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- a server thread --------------------------------------------------- */

enum srv_script {
	SRV_ACCEPT_ONLY,  /* handshake, then free */
	SRV_ECHO,         /* answer each message with its payload and id, until BYE */
	SRV_DRAIN,        /* sleep, then receive everything until BYE */
	SRV_SEND_FIRST,   /* sleep, send one large message, then as SRV_DRAIN */
};

#define SRV_MAX_MSGS 64

struct srv {
	int fd;
	const uint8_t *psk;
	enum srv_script script;
	int timeout_ms;
	long delay_ms; /* SRV_DRAIN: wait before the first recv */
	pthread_t th;
	/* results */
	int accept_ret;
	char peer[PPCP_ID_MAX + 1];
	size_t nmsgs;
	enum ppcp_msg_type types[SRV_MAX_MSGS];
	char ids[SRV_MAX_MSGS][PPCP_ID_MAX + 1];
	char *payloads[SRV_MAX_MSGS];
	int send_ret;
	int end_ret;   /* the recv that ended the loop */
	int after_ret; /* one more recv after that */
	volatile int done;
};

static void *srv_main(void *arg)
{
	struct srv *v = arg;
	ppcp_session_options opt = { .server_id = "srv-test", .timeout_ms = v->timeout_ms };
	ppcp_session *s = NULL;
	int i;

	v->accept_ret = ppcp_server_accept(v->fd, v->psk, 32, &opt, &s);
	if (v->accept_ret < 0)
		return NULL;
	snprintf(v->peer, sizeof(v->peer), "%s", ppcp_session_peer_id(s));
	if (v->script == SRV_DRAIN || v->script == SRV_SEND_FIRST)
		sleep_ms(v->delay_ms);
	if (v->script == SRV_SEND_FIRST) {
		enum { BIG = 300 * 1000 };
		char *big = malloc(BIG + 32);

		if (big == NULL)
			abort();
		memcpy(big, "{\"output\":\"", 11);
		memset(big + 11, 'x', BIG);
		memcpy(big + 11 + BIG, "\"}", 3);
		v->send_ret = ppcp_session_send(s, PPCP_MSG_RESPONSE, big, NULL);
		free(big);
	}
	if (v->script != SRV_ACCEPT_ONLY) {
		for (i = 0; i < SRV_MAX_MSGS + 1; i++) {
			enum ppcp_msg_type t;
			char id[PPCP_ID_MAX + 1];
			char *p = NULL;
			int ret = ppcp_session_recv(s, RECV_TIMEOUT_MS, &t, id, &p);

			if (ret < 0) {
				v->end_ret = ret;
				break;
			}
			if (v->nmsgs == SRV_MAX_MSGS) {
				free(p);
				v->end_ret = 1; /* too many */
				break;
			}
			v->types[v->nmsgs] = t;
			memcpy(v->ids[v->nmsgs], id, sizeof(id));
			v->payloads[v->nmsgs] = p;
			v->nmsgs++;
			/* An answer carries the id of its request (§7). */
			if (v->script == SRV_ECHO && v->send_ret == 0)
				v->send_ret = ppcp_session_reply(s, PPCP_MSG_RESPONSE, id, p);
		}
		v->after_ret = ppcp_session_recv(s, 100, NULL, NULL, NULL);
	}
	ppcp_session_free(s);
	v->done = 1;
	return NULL;
}

static void srv_start(struct srv *v, int fd, const uint8_t *psk, enum srv_script script)
{
	memset(v, 0, sizeof(*v));
	v->fd = fd;
	v->psk = psk;
	v->script = script;
	v->timeout_ms = HS_TIMEOUT_MS;
	v->end_ret = 12345;
	assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
}

/* Payloads stay until srv_free, after the checks. */
static void srv_join(struct srv *v)
{
	assert_int_equal(pthread_join(v->th, NULL), 0);
}

static void srv_free(struct srv *v)
{
	size_t i;

	for (i = 0; i < v->nmsgs; i++)
		free(v->payloads[i]);
	v->nmsgs = 0;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static ppcp_session *client(int fd, const uint8_t *psk, int *ret)
{
	ppcp_session_options opt = { .server_id = "srv-test", .client_id = "cli-test",
				     .timeout_ms = HS_TIMEOUT_MS };
	ppcp_session *s = NULL;

	*ret = ppcp_client_connect(fd, psk, 32, &opt, &s);
	return s;
}

/* ---- sessions ----------------------------------------------------------- */

static void test_io_round_trip_then_bye_gives_closed(void **state)
{
	struct srv v;
	ppcp_session *c;
	enum ppcp_msg_type t;
	char id[PPCP_ID_MAX + 1], rid[PPCP_ID_MAX + 1];
	char *p = NULL;
	int sv[2], ret;
	const char *cmd = "{\"args\":{\"text\":\"hello\"},\"name\":\"echo\"}";
	uint64_t t0;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_ECHO);
	c = client(sv[1], psk_a, &ret);
	assert_int_equal(ret, 0);
	assert_non_null(c);
	assert_string_equal(ppcp_session_peer_id(c), "srv-test");
	assert_int_equal(ppcp_conn_state(ppcp_session_conn(c)), PPCP_ST_ESTABLISHED);

	/* Nothing to receive yet: a recv timeout does not fail the session. */
	t0 = now_ms();
	assert_int_equal(ppcp_session_recv(c, 100, &t, rid, &p), PPCP_ERR_AGAIN);
	assert_null(p);
	assert_true(now_ms() - t0 >= 90);
	assert_int_equal(ppcp_conn_error(ppcp_session_conn(c)), 0);

	/* Queued on the engine with our own id; recv writes it out. */
	assert_int_equal(ppcp_conn_send_json(ppcp_session_conn(c), PPCP_MSG_COMMAND, "cmd-42",
					     cmd, id), 0);
	assert_string_equal(id, "cmd-42");
	assert_int_equal(ppcp_session_recv(c, RECV_TIMEOUT_MS, &t, rid, &p), 0);
	assert_string_equal(rid, "cmd-42");
	assert_int_equal(t, PPCP_MSG_RESPONSE);
	assert_non_null(p);
	assert_string_equal(p, cmd);
	free(p);
	p = NULL;

	/* ppcp_session_send writes at once; once the answer is in the
	 * socket, a zero timeout still gets it. */
	assert_int_equal(ppcp_session_send(c, PPCP_MSG_COMMAND, cmd, id), 0);
	assert_string_not_equal(id, "cmd-42");
	{
		struct pollfd pfd = { .fd = sv[1], .events = POLLIN };
		assert_int_equal(poll(&pfd, 1, RECV_TIMEOUT_MS), 1);
	}
	assert_int_equal(ppcp_session_recv(c, 0, &t, rid, &p), 0);
	assert_string_equal(rid, id);
	assert_int_equal(t, PPCP_MSG_RESPONSE);
	assert_string_equal(p, cmd);
	free(p);

	assert_int_equal(ppcp_session_close(c), 0);
	assert_int_equal(ppcp_conn_state(ppcp_session_conn(c)), PPCP_ST_CLOSED);
	assert_true(ppcp_session_send(c, PPCP_MSG_COMMAND, cmd, NULL) < 0);
	srv_join(&v);
	ppcp_session_free(c);
	close(sv[1]);
	close(sv[0]);

	assert_int_equal(v.accept_ret, 0);
	assert_string_equal(v.peer, "cli-test");
	assert_int_equal(v.nmsgs, 2);
	assert_int_equal(v.types[0], PPCP_MSG_COMMAND);
	assert_string_equal(v.ids[0], "cmd-42");
	assert_string_equal(v.ids[1], id);
	assert_string_equal(v.payloads[0], cmd);
	assert_string_equal(v.payloads[1], cmd);
	assert_int_equal(v.send_ret, 0);
	assert_int_equal(v.end_ret, PPCP_ERR_CLOSED);
	assert_int_equal(v.after_ret, PPCP_ERR_CLOSED); /* and it stays so */
	srv_free(&v);
}

static void test_io_wrong_psk_fails_on_both_sides(void **state)
{
	struct srv v;
	ppcp_session *c;
	int sv[2], ret;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_ACCEPT_ONLY);
	c = client(sv[1], psk_b, &ret);
	/* The client closes without a word when s_confirm fails (§4). */
	close(sv[1]);
	srv_join(&v);
	close(sv[0]);
	assert_null(c);
	assert_int_equal(ret, PPCP_ERR_SERVER_AUTH);
	assert_int_equal(v.accept_ret, PPCP_ERR_PEER_ABORTED);
}

static void test_io_wrong_server_id_is_refused(void **state)
{
	struct srv v;
	ppcp_session_options opt = { .server_id = "someone-else", .timeout_ms = HS_TIMEOUT_MS };
	ppcp_session *c = NULL;
	int sv[2], ret;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_ACCEPT_ONLY);
	ret = ppcp_client_connect(sv[1], psk_a, 32, &opt, &c);
	close(sv[1]);
	srv_join(&v);
	close(sv[0]);
	assert_null(c);
	assert_int_equal(ret, PPCP_ERR_WRONG_SERVER);
	assert_true(v.accept_ret < 0);
}

static void test_io_half_client_hello_then_close_is_an_error_not_a_hang(void **state)
{
	struct srv v;
	uint8_t frame[4 + 50];
	int sv[2];
	uint64_t t0;

	(void)state;
	pair(sv);
	memset(frame, 0xaa, sizeof(frame));
	ppcp__store_be32(frame, PPCP_CLIENT_HELLO_LEN);
	memcpy(frame + 4, "PPCP\x01\x01\x01\x00\x41\x04", 10);
	t0 = now_ms();
	srv_start(&v, sv[0], psk_a, SRV_ACCEPT_ONLY);
	assert_int_equal(write(sv[1], frame, sizeof(frame)), (ssize_t)sizeof(frame));
	close(sv[1]);
	srv_join(&v);
	close(sv[0]);
	print_message("server: %s\n", ppcp_err_name(v.accept_ret));
	assert_int_equal(v.accept_ret, PPCP_ERR_TRUNCATED);
	assert_true(now_ms() - t0 < 2000);
}

static void test_io_handshake_times_out_when_the_peer_is_silent(void **state)
{
	ppcp_session_options opt = { .timeout_ms = 300 };
	ppcp_session *c = NULL;
	int sv[2], ret;
	uint64_t t0, dt;

	(void)state;
	pair(sv);
	t0 = now_ms();
	ret = ppcp_client_connect(sv[1], psk_a, 32, &opt, &c);
	dt = now_ms() - t0;
	close(sv[0]);
	close(sv[1]);
	assert_null(c);
	assert_int_equal(ret, PPCP_ERR_HANDSHAKE_TIMEOUT);
	assert_true(dt >= 250 && dt < 2000);
}

static void test_io_many_messages_arrive_in_order_through_the_bounded_queue(void **state)
{
	enum { N = 40 };
	struct srv v;
	ppcp_session *c;
	char ids[N][PPCP_ID_MAX + 1];
	char buf[64];
	int sv[2], ret, i;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_DRAIN);
	v.delay_ms = 200; /* read by the thread only after the handshake */
	c = client(sv[1], psk_a, &ret);
	assert_int_equal(ret, 0);
	/* All of them, then BYE, then EOF, land before the server reads:
	 * the queue fills, the rest waits in the read buffer, and the EOF is
	 * seen only after the BYE, so the end is clean, not truncated. */
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "{\"args\":{\"n\":%d},\"name\":\"seq\"}", i);
		assert_int_equal(ppcp_session_send(c, PPCP_MSG_COMMAND, buf, ids[i]), 0);
	}
	assert_int_equal(ppcp_session_close(c), 0);
	ppcp_session_free(c);
	close(sv[1]);
	srv_join(&v);
	close(sv[0]);

	assert_int_equal(v.accept_ret, 0);
	assert_int_equal(v.nmsgs, N);
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "{\"args\":{\"n\":%d},\"name\":\"seq\"}", i);
		assert_int_equal(v.types[i], PPCP_MSG_COMMAND);
		assert_string_equal(v.ids[i], ids[i]);
		assert_string_equal(v.payloads[i], buf);
	}
	assert_int_equal(v.end_ret, PPCP_ERR_CLOSED);
	srv_free(&v);
}

static void test_io_eof_is_reported_only_after_the_bytes_before_it(void **state)
{
	enum { N = 20 };
	struct srv v;
	ppcp_session *c;
	uint8_t sink[65536];
	uint64_t t0;
	int sv[2], ret, i;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_SEND_FIRST);
	v.delay_ms = 200;
	c = client(sv[1], psk_a, &ret);
	assert_int_equal(ret, 0);
	for (i = 0; i < N; i++)
		assert_int_equal(ppcp_session_send(c, PPCP_MSG_COMMAND,
						   "{\"args\":{},\"name\":\"x\"}", NULL), 0);
	assert_int_equal(ppcp_session_close(c), 0);
	ppcp_session_free(c);
	/* Our half closes: the server reads N messages, BYE and EOF while it
	 * is still writing its large message, with its queue full.  The EOF
	 * must wait for the BYE before it, or the end would be "truncated". */
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	t0 = now_ms();
	while (!v.done && now_ms() - t0 < 10000) {
		struct pollfd pfd = { .fd = sv[1], .events = POLLIN };

		if (poll(&pfd, 1, 100) == 1 && read(sv[1], sink, sizeof(sink)) <= 0)
			sleep_ms(10);
	}
	srv_join(&v);
	close(sv[1]);
	close(sv[0]);
	assert_int_equal(v.accept_ret, 0);
	assert_int_equal(v.send_ret, 0);
	assert_int_equal(v.nmsgs, N);
	assert_int_equal(v.end_ret, PPCP_ERR_CLOSED);
	srv_free(&v);
}

static void test_io_eof_without_bye_is_truncated(void **state)
{
	struct srv v;
	ppcp_session *c;
	int sv[2], ret;

	(void)state;
	pair(sv);
	srv_start(&v, sv[0], psk_a, SRV_DRAIN);
	c = client(sv[1], psk_a, &ret);
	assert_int_equal(ret, 0);
	assert_int_equal(ppcp_session_send(c, PPCP_MSG_COMMAND, "{\"args\":{},\"name\":\"x\"}", NULL), 0);
	ppcp_session_free(c); /* no BYE */
	close(sv[1]);
	srv_join(&v);
	close(sv[0]);
	assert_int_equal(v.nmsgs, 1); /* what came before the EOF is delivered */
	assert_int_equal(v.end_ret, PPCP_ERR_TRUNCATED);
	assert_int_equal(v.after_ret, PPCP_ERR_TRUNCATED);
	srv_free(&v);
}

/* ---- loopback TCP ------------------------------------------------------ */

static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		assert_int_equal(poll(&pfd, 1, 5000), 1);
		r = read(fd, p + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static void test_io_tcp_connect_gives_a_blocking_nodelay_cloexec_socket(void **state)
{
	uint16_t port;
	int lfd = tcp_listener(&port), fd, one = 0, fl;
	socklen_t ol = sizeof(one);

	(void)state;
	fd = ppcp_tcp_connect("127.0.0.1", port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &ol), 0);
	assert_int_not_equal(one, 0);
	fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	assert_int_equal(fl & O_NONBLOCK, 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(lfd);
}

static void test_io_tcp_connect_reports_refusal_and_bad_addresses(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)state;
	/* A port that is bound but not listening refuses connections. */
	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(ppcp_tcp_connect("127.0.0.1", ntohs(sin.sin_port), 2000),
			 PPCP_ERR_CONNECT);
	close(fd);

	/* Names are never resolved: numeric addresses only. */
	assert_int_equal(ppcp_tcp_connect("localhost", 9, 500), PPCP_ERR_ADDR);
	assert_int_equal(ppcp_tcp_connect("", 9, 500), PPCP_ERR_ADDR);
	assert_int_equal(ppcp_tcp_connect("127.0.0.1.5", 9, 500), PPCP_ERR_ADDR);
	assert_int_equal(ppcp_tcp_connect(NULL, 9, 500), PPCP_ERR_ADDR);
	assert_int_equal(ppcp_tcp_connect("127.0.0.1", 0, 500), PPCP_ERR_ADDR);
}

static void test_io_server_answers_a_tcp_ping_before_the_hello(void **state)
{
	struct srv v;
	ppcp_ping ping;
	ppcp_pong pong;
	ppcp_session *c;
	uint8_t frame[4 + PPCP_PING_MAX], body[PPCP_PING_MAX];
	size_t len;
	uint32_t plen;
	uint16_t port;
	int lfd = tcp_listener(&port), cfd, sfd, ret;

	(void)state;
	cfd = ppcp_tcp_connect("127.0.0.1", port, 2000);
	assert_true(cfd >= 0);
	sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sfd >= 0);
	srv_start(&v, sfd, psk_a, SRV_ACCEPT_ONLY);

	/* PROTOCOL.md §10.4: a PING as the first frame gets a PONG frame. */
	memset(&ping, 0, sizeof(ping));
	snprintf(ping.id, sizeof(ping.id), "tcp-ping-1");
	snprintf(ping.client_id, sizeof(ping.client_id), "cli-test");
	snprintf(ping.hostname, sizeof(ping.hostname), "cli-host");
	snprintf(ping.version, sizeof(ping.version), "%s", PPCP_VERSION_STRING);
	assert_int_equal(ppcp_ping_encode(&ping, frame + 4, sizeof(frame) - 4, &len), 0);
	ppcp__store_be32(frame, (uint32_t)len);
	assert_int_equal(write(cfd, frame, 4 + len), (ssize_t)(4 + len));
	read_full(cfd, frame, 4);
	plen = ppcp__load_be32(frame);
	assert_true(plen > 0 && plen <= len);
	read_full(cfd, body, plen);
	assert_int_equal(ppcp_pong_decode(body, plen, &pong), 0);
	assert_string_equal(pong.id, "tcp-ping-1");
	assert_string_equal(pong.server_id, "srv-test");
	assert_int_equal(pong.port, port);

	/* The same connection then carries the handshake. */
	c = client(cfd, psk_a, &ret);
	assert_int_equal(ret, 0);
	assert_string_equal(ppcp_session_peer_id(c), "srv-test");
	srv_join(&v);
	assert_int_equal(v.accept_ret, 0);
	ppcp_session_free(c);
	close(cfd);
	close(sfd);
	close(lfd);
}

/* ---- discovery ----------------------------------------------------------- */

struct pong_spec {
	const char *server_id;
	int wrong_id; /* answer with an "i" that is not the PING's */
};

struct responder {
	int fd;
	uint16_t port;
	const struct pong_spec *pongs;
	size_t npongs;
	pthread_t th;
	/* results */
	int got_ping;
	ppcp_ping ping;
	size_t ping_len;
};

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	uint8_t in[PPCP_PING_MAX + 1], out[PPCP_PING_MAX];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	ssize_t n;
	size_t i, len;

	if (poll(&pfd, 1, 5000) != 1)
		return NULL;
	n = recvfrom(r->fd, in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
	if (n <= 0 || ppcp_ping_decode(in, (size_t)n, &r->ping) != 0)
		return NULL;
	r->got_ping = 1;
	r->ping_len = (size_t)n;
	for (i = 0; i < r->npongs; i++) {
		ppcp_pong pong;

		memset(&pong, 0, sizeof(pong));
		snprintf(pong.id, sizeof(pong.id), "%s", r->pongs[i].wrong_id ? "not-yours" :
										r->ping.id);
		snprintf(pong.server_id, sizeof(pong.server_id), "%s", r->pongs[i].server_id);
		snprintf(pong.hostname, sizeof(pong.hostname), "host-%s", r->pongs[i].server_id);
		pong.port = 4242;
		pong.capabilities = PPCP_EXT_ALL;
		pong.ts = 1700000000;
		if (ppcp_pong_encode(&pong, out, (size_t)n, &len) != 0)
			return NULL;
		sendto(r->fd, out, len, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

/* Bind a UDP socket on the loopback of family; 0, or -1 if the host has no
 * such loopback (IPv6 may be disabled). */
static int udp_loopback(int family, int *fd_out, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sl = sizeof(*sin6);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					  ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fd_out = fd;
	return 0;
}

static void responder_start(struct responder *r, int family, const struct pong_spec *pongs,
			    size_t npongs)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(udp_loopback(family, &r->fd, &r->port), 0);
	r->pongs = pongs;
	r->npongs = npongs;
	assert_int_equal(pthread_create(&r->th, NULL, responder_main, r), 0);
}

static void responder_join(struct responder *r)
{
	assert_int_equal(pthread_join(r->th, NULL), 0);
	close(r->fd);
}

static void test_find_server_collects_our_pongs_once_per_server(void **state)
{
	static const struct pong_spec pongs[] = {
		{ "decoy", 1 }, { "srv-a", 0 }, { "srv-a", 0 }, { "srv-b", 0 },
	};
	const char *addrs[] = { "127.0.0.1" };
	ppcp_find_options fo = { .addrs = addrs, .naddrs = 1, .timeout_ms = 500 };
	ppcp_server_info out[4];
	struct responder r;
	size_t n = 99;

	(void)state;
	responder_start(&r, AF_INET, pongs, 4);
	assert_int_equal(ppcp_find_server(r.port, &fo, out, 4, &n), 0);
	responder_join(&r);

	assert_true(r.got_ping);
	assert_true(r.ping_len >= PPCP_PING_MIN && r.ping_len <= PPCP_PING_MAX);
	assert_string_equal(r.ping.version, PPCP_VERSION_STRING);
	assert_string_equal(r.ping.target, "");
	assert_true(ppcp__valid_ident(r.ping.client_id));
	assert_true(ppcp__valid_ident(r.ping.hostname));
	assert_true(strlen(r.ping.id) >= 8);
	/* The id says which kind of PING it was; the answer reports the path. */
	assert_string_equal(r.ping.id + strlen(r.ping.id) - 2, ".u");
	assert_string_equal(out[0].path, "unicast");

	assert_int_equal(n, 2); /* the decoy ignored, srv-a once */
	assert_string_equal(out[0].pong.server_id, "srv-a");
	assert_string_equal(out[0].pong.hostname, "host-srv-a");
	assert_string_equal(out[1].pong.server_id, "srv-b");
	assert_string_equal(out[0].address, "127.0.0.1");
	assert_int_equal(out[0].port, 4242);
	assert_string_equal(out[0].pong.id, r.ping.id);
	assert_true(out[0].rtt_us < 500000);
}

static void test_find_server_returns_at_the_first_pong_of_its_target(void **state)
{
	static const struct pong_spec pongs[] = { { "srv-a", 0 }, { "srv-b", 0 } };
	const char *addrs[] = { "127.0.0.1" };
	ppcp_find_options fo = {
		.addrs = addrs, .naddrs = 1, .target = "srv-b", .timeout_ms = 3000
	};
	ppcp_server_info out[4];
	struct responder r;
	size_t n = 0;
	uint64_t t0;

	(void)state;
	responder_start(&r, AF_INET, pongs, 2);
	t0 = now_ms();
	assert_int_equal(ppcp_find_server(r.port, &fo, out, 4, &n), 0);
	assert_true(now_ms() - t0 < 1500);
	responder_join(&r);
	assert_string_equal(r.ping.target, "srv-b");
	assert_true(n >= 1);
	assert_string_equal(out[n - 1].pong.server_id, "srv-b");
}

static void test_find_server_uses_PPCP_DISCOVER_ADDR(void **state)
{
	static const struct pong_spec pongs[] = { { "srv-env", 0 } };
	ppcp_find_options fo = { .timeout_ms = 2000 }; /* addrs NULL */
	ppcp_server_info out[1];
	struct responder r;
	size_t n = 0;
	int ret;

	(void)state;
	responder_start(&r, AF_INET, pongs, 1);
	assert_int_equal(setenv("PPCP_DISCOVER_ADDR", " 127.0.0.1 ,", 1), 0);
	ret = ppcp_find_server(r.port, &fo, out, 1, &n);
	env_loopback();
	responder_join(&r);
	assert_int_equal(ret, 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].pong.server_id, "srv-env");
}

static void test_find_server_over_ipv6_loopback(void **state)
{
	static const struct pong_spec pongs[] = { { "srv-v6", 0 } };
	const char *addrs[] = { "[::1]" };
	ppcp_find_options fo = { .addrs = addrs, .naddrs = 1, .timeout_ms = 2000 };
	ppcp_server_info out[1];
	struct responder r;
	size_t n = 0;
	int fd;
	uint16_t port;

	(void)state;
	if (udp_loopback(AF_INET6, &fd, &port) != 0) {
		print_message("no IPv6 loopback on this host\n");
		skip();
	}
	close(fd);
	responder_start(&r, AF_INET6, pongs, 1);
	assert_int_equal(ppcp_find_server(r.port, &fo, out, 1, &n), 0);
	responder_join(&r);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].address, "::1");
	assert_string_equal(out[0].pong.server_id, "srv-v6");
}

static void test_find_server_times_out_with_nobody_listening(void **state)
{
	const char *addrs[] = { "127.0.0.1" };
	ppcp_find_options fo = { .addrs = addrs, .naddrs = 1, .timeout_ms = 200 };
	ppcp_server_info out[1];
	size_t n = 7;
	uint16_t port;
	uint64_t t0, dt;
	int fd;

	(void)state;
	/* Our own silent socket holds the port, so nothing else can answer. */
	assert_int_equal(udp_loopback(AF_INET, &fd, &port), 0);
	t0 = now_ms();
	assert_int_equal(ppcp_find_server(port, &fo, out, 1, &n), PPCP_ERR_NOT_FOUND);
	dt = now_ms() - t0;
	close(fd);
	assert_int_equal(n, 0);
	assert_true(dt >= 190 && dt < 2000);
}

static void test_find_server_rejects_bad_addresses_instead_of_broadcasting(void **state)
{
	const char *bad[] = { "not-an-address" };
	const char *mixed[] = { "127.0.0.1", "300.1.1.1" };
	ppcp_find_options fo = { .addrs = bad, .naddrs = 1, .timeout_ms = 100 };
	ppcp_find_options env = { .timeout_ms = 100 };
	ppcp_server_info out[1];
	size_t n = 0;

	(void)state;
	assert_int_equal(ppcp_find_server(9, &fo, out, 1, &n), PPCP_ERR_ADDR);
	fo.addrs = mixed;
	fo.naddrs = 2;
	assert_int_equal(ppcp_find_server(9, &fo, out, 1, &n), PPCP_ERR_ADDR);
	fo.naddrs = 0; /* an empty list is an error, not "broadcast" */
	assert_int_equal(ppcp_find_server(9, &fo, out, 1, &n), PPCP_ERR_ADDR);

	/* A PPCP_DISCOVER_ADDR that holds no valid address fails too. */
	assert_int_equal(setenv("PPCP_DISCOVER_ADDR", "bogus", 1), 0);
	assert_int_equal(ppcp_find_server(9, &env, out, 1, &n), PPCP_ERR_ADDR);
	assert_int_equal(setenv("PPCP_DISCOVER_ADDR", " , ,", 1), 0);
	assert_int_equal(ppcp_find_server(9, &env, out, 1, &n), PPCP_ERR_ADDR);
	/* Set but empty is a mistake, never a reason to broadcast. */
	assert_int_equal(setenv("PPCP_DISCOVER_ADDR", "", 1), 0);
	assert_int_equal(ppcp_find_server(9, &env, out, 1, &n), PPCP_ERR_ADDR);
	env_loopback();

	fo.addrs = bad;
	fo.naddrs = 1;
	assert_int_equal(ppcp_find_server(9, &fo, NULL, 1, &n), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_find_server(0, &fo, out, 1, &n), PPCP_ERR_INVAL);
}

static void test_io_rejects_invalid_arguments(void **state)
{
	ppcp_session *s = (ppcp_session *)1;
	ppcp_session_options none = { 0 };

	(void)state;
	/* A server must have an id. */
	assert_int_equal(ppcp_server_accept(0, psk_a, 32, NULL, &s), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_server_accept(0, psk_a, 32, &none, &s), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_client_connect(-1, psk_a, 32, NULL, &s), PPCP_ERR_INVAL);
	assert_null(s);
	assert_int_equal(ppcp_session_send(NULL, PPCP_MSG_COMMAND, NULL, NULL), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_session_recv(NULL, 0, NULL, NULL, NULL), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_session_close(NULL), PPCP_ERR_INVAL);
	assert_string_equal(ppcp_session_peer_id(NULL), "");
	assert_null(ppcp_session_conn(NULL));
	ppcp_session_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_round_trip_then_bye_gives_closed),
		cmocka_unit_test(test_io_wrong_psk_fails_on_both_sides),
		cmocka_unit_test(test_io_wrong_server_id_is_refused),
		cmocka_unit_test(test_io_half_client_hello_then_close_is_an_error_not_a_hang),
		cmocka_unit_test(test_io_handshake_times_out_when_the_peer_is_silent),
		cmocka_unit_test(test_io_many_messages_arrive_in_order_through_the_bounded_queue),
		cmocka_unit_test(test_io_eof_is_reported_only_after_the_bytes_before_it),
		cmocka_unit_test(test_io_eof_without_bye_is_truncated),
		cmocka_unit_test(test_io_tcp_connect_gives_a_blocking_nodelay_cloexec_socket),
		cmocka_unit_test(test_io_tcp_connect_reports_refusal_and_bad_addresses),
		cmocka_unit_test(test_io_server_answers_a_tcp_ping_before_the_hello),
		cmocka_unit_test(test_find_server_collects_our_pongs_once_per_server),
		cmocka_unit_test(test_find_server_returns_at_the_first_pong_of_its_target),
		cmocka_unit_test(test_find_server_uses_PPCP_DISCOVER_ADDR),
		cmocka_unit_test(test_find_server_over_ipv6_loopback),
		cmocka_unit_test(test_find_server_times_out_with_nobody_listening),
		cmocka_unit_test(test_find_server_rejects_bad_addresses_instead_of_broadcasting),
		cmocka_unit_test(test_io_rejects_invalid_arguments),
	};

	/* Safety net: no test here may hang. */
	alarm(120);
	/* Never broadcast, even if a test forgot its addresses. */
	env_loopback();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
