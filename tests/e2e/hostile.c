/*
 * hostile.c - hostile clients for tests/e2e/t_hostile_load.sh (adversarial
 * T16, T18, T41, T42, T44 under load).  One process, one epoll loop, no
 * thread per connection; the legitimate handshakes it makes run on the
 * library's sans-I/O engine (ppcp_conn), as bench/hsload.c does.
 *
 * Network safety: every address it sends to or binds to must be in
 * 127.0.0.0/8 (refused otherwise); every mode is bounded in count and in
 * time (--max-time, default 60 s).
 *
 *   hostile [COMMON] attack [--halfopen N] [--slowloris N] [--garbage N]
 *           [--wrongpsk N] [--badauth N] [--oversize N] [--conc C] [--hold S]
 *       N connections of each kind, at most C open at once (default: all),
 *       each one kept until the server closes it or for at most S seconds
 *       (default 8).  Kinds:
 *         halfopen   connect and send nothing
 *         slowloris  a valid CLIENT_HELLO frame, one byte per second
 *         garbage    in turn: random bytes; a 106-byte body without the
 *                    magic; a malformed TCP PING; a CLIENT_HELLO with one
 *                    header byte changed; the seed's unversioned hello; a
 *                    valid CLIENT_HELLO followed by pipelined garbage
 *         wrongpsk   a full client handshake with a random PSK (fails at
 *                    the SERVER_HELLO check; the server sees the peer close)
 *         badauth    a valid CLIENT_HELLO, then a random record as AUTH
 *         oversize   a length prefix 0xFFFFFFFF: as the first frame, in
 *                    place of AUTH, and (with --psk-file) after AUTH_OK
 *         truncated  the first 1, 2, ... 109 bytes of a CLIENT_HELLO frame,
 *                    then EOF (shutdown of our sending side)
 *       Prints one line per kind, "KIND started N connect_failed N
 *       server_closed N we_closed N held N anomalies N close_ms_max N
 *       close_ms_p50 N", then "attack total N anomalies N held N".  An
 *       anomaly is the server sending what it must not (anything to a
 *       connection that never sent a valid CLIENT_HELLO, anything but
 *       SERVER_HELLO after one, AUTH_OK to a wrong proof).  "held" counts
 *       connections the server had not closed after S seconds.  Exit 0
 *       when there was no anomaly and nothing was held.
 *
 *   hostile [COMMON] cycles [--ok N] [--wrong N] [--badauth N] [--conc C]
 *           [--bytewise]
 *       handshake-and-BYE cycles with the PSK (--ok), handshakes with a
 *       random PSK (--wrong) and handshakes whose AUTH is a random record
 *       (--badauth), C in flight at once (default 16).  --bytewise: the
 *       engine's output goes one byte per send(), 1 ms apart (T15).  Prints "cycles ok
 *       N/N wrong_rejected N/N badauth_rejected N/N failed N anomalies N
 *       seconds S rate R/s hs_ms_p50 X hs_ms_p99 X hs_ms_max X".  Exit 0
 *       when every cycle ended as it must.
 *
 *   hostile [COMMON] udp [--count N] [--duration S]
 *       N discovery datagrams spread over S seconds (default 20000 over 4)
 *       from every source address, in turn: a valid padded PING, a valid
 *       PING too small for a PONG, an oversized PING (1025 bytes, 8 KiB,
 *       60000 bytes), random bytes, a truncated PING, a PING for another
 *       target, a PING with "v":2, deep nesting, an empty datagram.
 *       Checks that only the valid padded PINGs are answered, that no PONG
 *       is larger than its PING and that each source gets at most
 *       40 + 20/s PONGs (ppcpd's rate limit, PROTOCOL.md §10.2).  Prints
 *       "udp sent N pongs N largest_pong N smallest_answered_ping N
 *       max_per_source N bound N anomalies N"; exit 0 when all hold.
 *
 * COMMON: --addr A (default 127.0.0.1) --port P (required) --psk-file F
 *   (the real PSK: needed by cycles --ok and the third oversize form)
 *   --src-base K --src-count M (connect from 127.0.0.K .. 127.0.0.K+M-1 in
 *   turn; default: the kernel's choice) --max-time S (hard stop, 60)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <ppcp.h>

#define CH_FRAME 110u  /* u32(106) ‖ CLIENT_HELLO */
#define SH_FRAME 174u  /* u32(170) ‖ SERVER_HELLO */

enum kind { K_HALFOPEN, K_SLOWLORIS, K_GARBAGE, K_WRONGPSK, K_BADAUTH, K_OVERSIZE, K_TRUNC, K_OK, K_N };
static const char *const kind_name[K_N] = { "halfopen", "slowloris", "garbage",   "wrongpsk",
					     "badauth",  "oversize",  "truncated", "ok" };

enum end { E_SERVER_CLOSED, E_WE_CLOSED, E_HELD, E_CONNECT_FAILED };

struct kstat {
	uint64_t started, connect_failed, server_closed, we_closed, held, anomalies;
	uint64_t established, rejected; /* cycles */
	uint64_t *close_ms;             /* server_closed: ms after connect */
	size_t nclose, capclose;
};

struct slot {
	int fd;
	int busy, connecting;
	enum kind kind;
	int variant;
	ppcp_conn *conn;   /* engine kinds, while the engine drives the socket */
	int established;
	uint8_t out[8192]; /* raw bytes to send */
	size_t out_len, out_off;
	size_t drip;       /* slowloris: how many bytes of out may be sent by now */
	uint64_t t0_ms, t0_us, next_drip_ms;
	int stage2_sent;
	size_t rx;
	size_t rx_allowed; /* more than this from the server is an anomaly */
	int after_sh;      /* append stage2 once the SERVER_HELLO (174 bytes) is in */
	uint8_t stage2[160];
	size_t stage2_len;
	int oversize_after_ok; /* engine kind: send 0xFFFFFFFF once established */
	int shut_after;        /* shutdown(SHUT_WR) once out is sent */
};

static struct kstat g_st[K_N];
static uint8_t g_psk[PPCP_PSK_FILE_BYTES];
static int g_have_psk;
static struct sockaddr_in g_dst;
static int g_src_base, g_src_count;
static uint64_t g_src_next;
static uint64_t g_hold_ms = 8000;
static int g_bytewise; /* engine output one byte per send(), 1 ms apart */
static uint64_t g_hard_end;
static uint64_t *g_hs_lat; /* cycles: handshake latencies (ms * 1000) */
static size_t g_nlat, g_caplat;
static volatile sig_atomic_t g_stop;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "hostile: %s\n", what);
	exit(2);
}

static void rnd(void *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		die("RAND_bytes failed");
}

static int is_loopback(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 24) == 127;
}

static void push_u64(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		uint64_t *nv = realloc(*v, nc * sizeof(**v));

		if (nv == NULL)
			die("out of memory");
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)((double)n * p);
	return v[i >= n ? n - 1 : i];
}

/* A socket from the next source address, connecting (non-blocking). */
static int open_socket(int type)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	if (g_src_count > 0) {
		struct sockaddr_in src = { .sin_family = AF_INET };

		src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(g_src_base + (int)(g_src_next++ % (uint64_t)g_src_count)));
		if (type == SOCK_STREAM)
			(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			close(fd);
			return -1;
		}
	}
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* ---- connections ----------------------------------------------------------- */

static void cb_established(ppcp_conn *c, void *user)
{
	(void)c;
	((struct slot *)user)->established = 1;
}

static void cb_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	(void)c;
	(void)m;
	(void)user;
}

static int engine_new(struct slot *s, const uint8_t *psk)
{
	ppcp_config cfg;

	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = psk;
	cfg.psk_len = PPCP_PSK_FILE_BYTES;
	cfg.client_id = "hostile";
	cfg.handshake_timeout_ms = 20000;
	cfg.cb.on_established = cb_established;
	cfg.cb.on_message = cb_message;
	cfg.user = s;
	return ppcp_conn_new(&s->conn, &cfg, now_ms());
}

/* A valid CLIENT_HELLO frame (from a throwaway engine) into out. */
static void client_hello(uint8_t out[CH_FRAME])
{
	uint8_t psk[PPCP_PSK_FILE_BYTES];
	struct slot tmp;
	const uint8_t *d;
	size_t n;

	memset(&tmp, 0, sizeof(tmp));
	rnd(psk, sizeof(psk));
	psk[0] |= 1;
	if (engine_new(&tmp, psk) != 0)
		die("cannot create an engine");
	n = ppcp_conn_out(tmp.conn, &d);
	if (n != CH_FRAME)
		die("the engine's first output is not a CLIENT_HELLO frame");
	memcpy(out, d, CH_FRAME);
	ppcp_conn_free(tmp.conn);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Prepare what a connection of this kind sends.  0, or -1 for an engine
 * failure. */
static int slot_script(struct slot *s)
{
	uint8_t ch[CH_FRAME], wrong[PPCP_PSK_FILE_BYTES];
	uint16_t r16;

	switch (s->kind) {
	case K_HALFOPEN:
		break;
	case K_SLOWLORIS:
		client_hello(s->out);
		s->out_len = CH_FRAME;
		s->drip = 1;
		s->next_drip_ms = now_ms() + 1000;
		break;
	case K_GARBAGE:
		switch (s->variant % 6) {
		case 0: /* random bytes; a random first u32 is a huge length */
			rnd(&r16, sizeof(r16));
			s->out_len = 16 + r16 % 4000;
			rnd(s->out, s->out_len);
			s->out[0] |= 0x01; /* len >= 2^24: refused on the length */
			break;
		case 1: /* a CLIENT_HELLO-sized body without the magic */
			put_u32(s->out, 106);
			rnd(s->out + 4, 106);
			s->out[4] = 'X';
			s->out_len = CH_FRAME;
			break;
		case 2: /* a malformed TCP PING */
			s->out_len = 4 + 600;
			put_u32(s->out, 600);
			memset(s->out + 4, '[', 600);
			memcpy(s->out + 4, "{\"v\":1,\"t\":\"PING\",\"p\":", 22);
			break;
		case 3: /* a CLIENT_HELLO with one header byte changed (T2) */
			client_hello(s->out);
			rnd(&r16, sizeof(r16));
			s->out[4 + r16 % 8] ^= (uint8_t)(1 + (r16 >> 8) % 255);
			s->out_len = CH_FRAME;
			break;
		case 4: /* the seed's unversioned hello: pub_len 0x41 first */
			put_u32(s->out, 97);
			s->out[4] = 0x41;
			rnd(s->out + 5, 96);
			s->out[5] = 0x04;
			s->out_len = 4 + 97;
			break;
		default: /* a valid CLIENT_HELLO, then pipelined garbage (T17) */
			client_hello(s->out);
			rnd(s->out + CH_FRAME, 200);
			put_u32(s->out + CH_FRAME, 180);
			s->out_len = CH_FRAME + 200;
			s->rx_allowed = SH_FRAME;
			break;
		}
		break;
	case K_WRONGPSK:
		rnd(wrong, sizeof(wrong));
		wrong[0] |= 1;
		if (engine_new(s, wrong) != 0)
			return -1;
		s->rx_allowed = SH_FRAME;
		break;
	case K_BADAUTH:
		client_hello(s->out);
		s->out_len = CH_FRAME;
		s->after_sh = 1;
		put_u32(s->stage2, 12 + 80 + 16);
		rnd(s->stage2 + 4, 108);
		s->stage2_len = 4 + 108;
		s->rx_allowed = SH_FRAME;
		break;
	case K_OVERSIZE:
		switch (s->variant % (g_have_psk ? 3 : 2)) {
		case 0: /* the first frame */
			put_u32(s->out, 0xFFFFFFFFu);
			rnd(s->out + 4, 60);
			s->out_len = 64;
			break;
		case 1: /* in place of AUTH */
			client_hello(ch);
			memcpy(s->out, ch, CH_FRAME);
			s->out_len = CH_FRAME;
			s->after_sh = 1;
			put_u32(s->stage2, 0xFFFFFFFFu);
			rnd(s->stage2 + 4, 60);
			s->stage2_len = 64;
			s->rx_allowed = SH_FRAME;
			break;
		default: /* after AUTH_OK, with the PSK (an authenticated peer) */
			if (engine_new(s, g_psk) != 0)
				return -1;
			s->oversize_after_ok = 1;
			s->rx_allowed = (size_t)-1;
			break;
		}
		break;
	case K_TRUNC: /* the first 1..109 bytes of a CLIENT_HELLO frame, then EOF (T1) */
		client_hello(s->out);
		s->out_len = 1 + (size_t)s->variant % (CH_FRAME - 1);
		s->shut_after = 1;
		break;
	case K_OK:
		if (engine_new(s, g_psk) != 0)
			return -1;
		s->rx_allowed = (size_t)-1;
		break;
	default:
		break;
	}
	return 0;
}

static void slot_end(struct slot *s, enum end how, uint64_t now)
{
	struct kstat *k = &g_st[s->kind];

	switch (how) {
	case E_SERVER_CLOSED:
		k->server_closed++;
		if (s->kind == K_BADAUTH && s->stage2_sent)
			k->rejected++; /* closed after our bad AUTH, without AUTH_OK */
		push_u64(&k->close_ms, &k->nclose, &k->capclose, now - s->t0_ms);
		break;
	case E_WE_CLOSED:
		k->we_closed++;
		break;
	case E_HELD:
		k->held++;
		break;
	case E_CONNECT_FAILED:
		k->connect_failed++;
		break;
	}
	if (s->fd >= 0) {
		if (how != E_WE_CLOSED) {
			/* Abort: no TIME_WAIT left behind for the next cycles. */
			struct linger lg = { 1, 0 };

			(void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(s->fd);
	}
	ppcp_conn_free(s->conn);
	s->conn = NULL;
	s->fd = -1;
	s->busy = 0;
}

static int ep_mod(int ep, struct slot *s, int op, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = s };

	return epoll_ctl(ep, op, s->fd, &e);
}

static int slot_start(int ep, struct slot *s, enum kind kind, int variant)
{
	int fd;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->kind = kind;
	s->variant = variant;
	s->busy = 1;
	s->t0_ms = now_ms();
	s->t0_us = now_us();
	g_st[kind].started++;
	if (slot_script(s) != 0) {
		slot_end(s, E_CONNECT_FAILED, now_ms());
		return -1;
	}
	fd = open_socket(SOCK_STREAM);
	if (fd < 0) {
		slot_end(s, E_CONNECT_FAILED, now_ms());
		return -1;
	}
	s->fd = fd;
	if (connect(fd, (struct sockaddr *)&g_dst, sizeof(g_dst)) != 0 && errno != EINPROGRESS) {
		slot_end(s, E_CONNECT_FAILED, now_ms());
		return -1;
	}
	s->connecting = 1;
	if (ep_mod(ep, s, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT) != 0) {
		slot_end(s, E_CONNECT_FAILED, now_ms());
		return -1;
	}
	return 0;
}

/* Send what may be sent now.  0, or -1 when the socket is broken. */
static int slot_flush(struct slot *s, int *blocked)
{
	*blocked = 0;
	if (s->conn != NULL) {
		const uint8_t *d;
		size_t n;

		while ((n = ppcp_conn_out(s->conn, &d)) > 0) {
			ssize_t w;

			if (g_bytewise) {
				n = 1;
				usleep(1000);
			}
			w = send(s->fd, d, n, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					*blocked = 1;
					return 0;
				}
				return -1;
			}
			ppcp_conn_out_ack(s->conn, (size_t)w);
		}
		return 0;
	}
	size_t lim = s->kind == K_SLOWLORIS ? (s->drip < s->out_len ? s->drip : s->out_len) : s->out_len;
	while (s->out_off < lim) {
		ssize_t w = send(s->fd, s->out + s->out_off, lim - s->out_off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				*blocked = 1;
				return 0;
			}
			return -1;
		}
		s->out_off += (size_t)w;
	}
	if (s->shut_after && s->out_off == s->out_len) {
		s->shut_after = 0;
		(void)shutdown(s->fd, SHUT_WR);
	}
	return 0;
}

/* Handle readable data.  Returns 1 when the slot ended. */
static int slot_read(struct slot *s, uint64_t now)
{
	uint8_t buf[16384];

	for (;;) {
		ssize_t r = recv(s->fd, buf, sizeof(buf), 0);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			slot_end(s, E_SERVER_CLOSED, now);
			return 1;
		}
		if (r < 0)
			return 0;
		s->rx += (size_t)r;
		if (s->rx > s->rx_allowed) {
			g_st[s->kind].anomalies++;
			fprintf(stderr, "hostile: %s (variant %d): the server sent %zu bytes, at most %zu expected\n",
				kind_name[s->kind], s->variant, s->rx, s->rx_allowed);
			slot_end(s, E_WE_CLOSED, now);
			return 1;
		}
		if (s->conn != NULL) {
			int err = ppcp_conn_feed(s->conn, buf, (size_t)r, now);

			if (s->established) {
				g_st[s->kind].established++;
				if (s->kind == K_WRONGPSK) {
					g_st[s->kind].anomalies++;
					slot_end(s, E_WE_CLOSED, now);
					return 1;
				}
				if (s->kind == K_OK) {
					push_u64(&g_hs_lat, &g_nlat, &g_caplat, now_us() - s->t0_us);
					(void)ppcp_conn_close(s->conn, NULL);
					int blocked;
					(void)slot_flush(s, &blocked);
					slot_end(s, E_WE_CLOSED, now);
					return 1;
				}
				if (s->oversize_after_ok) {
					int blocked;

					(void)slot_flush(s, &blocked);
					ppcp_conn_free(s->conn);
					s->conn = NULL;
					put_u32(s->out, 0xFFFFFFFFu);
					rnd(s->out + 4, 60);
					s->out_len = 64;
					s->out_off = 0;
					if (slot_flush(s, &blocked) != 0) {
						slot_end(s, E_SERVER_CLOSED, now);
						return 1;
					}
				}
			} else if (err != 0) {
				if (s->kind == K_WRONGPSK) {
					/* The expected end: our engine refused the
					 * SERVER_HELLO (the PSKs differ). */
					if (err == PPCP_ERR_SERVER_AUTH)
						g_st[s->kind].rejected++;
					else
						g_st[s->kind].anomalies++;
				} else {
					g_st[s->kind].anomalies++;
					fprintf(stderr, "hostile: %s: %s\n", kind_name[s->kind], ppcp_strerror(err));
				}
				slot_end(s, E_WE_CLOSED, now);
				return 1;
			}
		}
		if (s->after_sh && s->rx >= SH_FRAME) {
			int blocked;

			s->after_sh = 0;
			s->stage2_sent = 1;
			memcpy(s->out, s->stage2, s->stage2_len);
			s->out_len = s->stage2_len;
			s->out_off = 0;
			if (slot_flush(s, &blocked) != 0) {
				slot_end(s, E_SERVER_CLOSED, now);
				return 1;
			}
		}
	}
}

static void slot_event(int ep, struct slot *s, uint32_t ev, uint64_t now)
{
	int blocked = 0;

	if (s->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			slot_end(s, E_CONNECT_FAILED, now);
			return;
		}
		s->connecting = 0;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
		if (slot_read(s, now))
			return;
	}
	if (slot_flush(s, &blocked) != 0) {
		slot_end(s, E_SERVER_CLOSED, now);
		return;
	}
	(void)ep_mod(ep, s, EPOLL_CTL_MOD, EPOLLIN | (blocked ? EPOLLOUT : 0));
}

/* Timers: slowloris drips, holds, engine deadlines. */
static void slot_tick(int ep, struct slot *s, uint64_t now, int cycles)
{
	int blocked;

	if (!s->busy || s->connecting)
		return;
	if (s->kind == K_SLOWLORIS && now >= s->next_drip_ms && s->drip < s->out_len) {
		s->drip++;
		s->next_drip_ms += 1000;
		if (slot_flush(s, &blocked) != 0) {
			slot_end(s, E_SERVER_CLOSED, now);
			return;
		}
	}
	if (s->conn != NULL && ppcp_conn_next_deadline(s->conn) <= now) {
		if (ppcp_conn_on_timeout(s->conn, now) != 0) {
			g_st[s->kind].anomalies++;
			fprintf(stderr, "hostile: %s: our engine timed out\n", kind_name[s->kind]);
			slot_end(s, E_WE_CLOSED, now);
			return;
		}
	}
	if (!cycles && now - s->t0_ms >= g_hold_ms) {
		slot_end(s, E_HELD, now);
		return;
	}
	(void)ep;
}

/* Run the connections of plan[] (kind counts), conc at a time. */
static int run_conns(const uint64_t plan[K_N], size_t conc, int cycles)
{
	uint64_t total = 0, next_k[K_N] = { 0 }, started = 0, last_tick = 0;
	struct epoll_event evs[512];
	struct slot *sl;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int kind = 0;

	for (int k = 0; k < K_N; k++)
		total += plan[k];
	if (conc == 0 || conc > total)
		conc = total ? total : 1;
	sl = calloc(conc, sizeof(*sl));
	if (sl == NULL || ep < 0)
		die("out of memory");
	for (size_t i = 0; i < conc; i++)
		sl[i].fd = -1;
	while (!g_stop && now_ms() < g_hard_end) {
		uint64_t now;
		size_t busy = 0;
		int n;

		/* Fill free slots, taking the kinds in turn. */
		for (size_t i = 0; i < conc && started < total; i++) {
			if (sl[i].busy)
				continue;
			for (int t = 0; t < K_N; t++, kind = (kind + 1) % K_N)
				if (next_k[kind] < plan[kind])
					break;
			int v = (int)next_k[kind]++;
			started++;
			(void)slot_start(ep, &sl[i], (enum kind)kind, v);
			kind = (kind + 1) % K_N;
		}
		for (size_t i = 0; i < conc; i++)
			busy += sl[i].busy;
		if (busy == 0 && started >= total)
			break;
		n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 20);
		if (n < 0 && errno != EINTR)
			break;
		now = now_ms();
		for (int j = 0; j < n; j++) {
			struct slot *s = evs[j].data.ptr;

			if (s->busy)
				slot_event(ep, s, evs[j].events, now);
		}
		if (now - last_tick >= 20) {
			last_tick = now;
			for (size_t i = 0; i < conc; i++)
				slot_tick(ep, &sl[i], now, cycles);
		}
	}
	/* Hard stop or signal: whatever is still open counts as held. */
	for (size_t i = 0; i < conc; i++)
		if (sl[i].busy)
			slot_end(&sl[i], E_HELD, now_ms());
	close(ep);
	free(sl);
	return 0;
}

/* ---- attack and cycles ------------------------------------------------------ */

static int run_attack(const uint64_t plan[K_N], size_t conc)
{
	uint64_t tot = 0, anom = 0, held = 0, t0 = now_ms();

	run_conns(plan, conc, 0);
	for (int k = 0; k < K_N; k++) {
		struct kstat *s = &g_st[k];

		if (plan[k] == 0)
			continue;
		printf("%s started %llu connect_failed %llu server_closed %llu we_closed %llu held %llu "
		       "anomalies %llu close_ms_max %llu close_ms_p50 %llu\n",
		       kind_name[k], (unsigned long long)s->started, (unsigned long long)s->connect_failed,
		       (unsigned long long)s->server_closed, (unsigned long long)s->we_closed,
		       (unsigned long long)s->held, (unsigned long long)s->anomalies,
		       (unsigned long long)pct(s->close_ms, s->nclose, 1.0),
		       (unsigned long long)pct(s->close_ms, s->nclose, 0.5));
		tot += s->started;
		anom += s->anomalies;
		held += s->held + s->connect_failed;
	}
	printf("attack total %llu anomalies %llu held %llu seconds %.1f\n", (unsigned long long)tot,
	       (unsigned long long)anom, (unsigned long long)held, (double)(now_ms() - t0) / 1000.0);
	return anom == 0 && held == 0 ? 0 : 1;
}

static int run_cycles(uint64_t ok, uint64_t wrong, uint64_t badauth, size_t conc)
{
	uint64_t plan[K_N] = { 0 };
	uint64_t t0 = now_us(), failed;
	double secs;

	plan[K_OK] = ok;
	plan[K_WRONGPSK] = wrong;
	plan[K_BADAUTH] = badauth;
	run_conns(plan, conc, 1);
	secs = (double)(now_us() - t0) / 1e6;
	/* badauth: rejected = closed by the server after our bad AUTH
	 * (anything more than the SERVER_HELLO is an anomaly already). */
	failed = (ok - g_st[K_OK].established) + (wrong - g_st[K_WRONGPSK].rejected) +
		 (badauth - g_st[K_BADAUTH].rejected);
	uint64_t anom = g_st[K_OK].anomalies + g_st[K_WRONGPSK].anomalies + g_st[K_BADAUTH].anomalies;
	printf("cycles ok %llu/%llu wrong_rejected %llu/%llu badauth_rejected %llu/%llu failed %llu "
	       "anomalies %llu seconds %.2f rate %.0f/s hs_ms_p50 %.2f hs_ms_p99 %.2f hs_ms_max %.2f\n",
	       (unsigned long long)g_st[K_OK].established, (unsigned long long)ok,
	       (unsigned long long)g_st[K_WRONGPSK].rejected, (unsigned long long)wrong,
	       (unsigned long long)g_st[K_BADAUTH].rejected, (unsigned long long)badauth,
	       (unsigned long long)failed, (unsigned long long)anom, secs,
	       (double)(ok + wrong + badauth) / (secs > 0 ? secs : 1), (double)pct(g_hs_lat, g_nlat, 0.5) / 1000.0,
	       (double)pct(g_hs_lat, g_nlat, 0.99) / 1000.0, (double)pct(g_hs_lat, g_nlat, 1.0) / 1000.0);
	return failed == 0 && anom == 0 ? 0 : 1;
}

/* ---- UDP flood ----------------------------------------------------------------- */

enum { U_VALID, U_SMALL, U_OVER1025, U_OVER8K, U_OVER60K, U_RANDOM, U_TRUNC, U_TARGET, U_V2, U_DEEP,
       U_EMPTY, U_N };
static const char *const utype_name[U_N] = { "valid",  "small",     "over1025", "over8k",
					     "over60k", "random",   "truncated", "target",
					     "v2",      "deep",     "empty" };

static size_t ping_json(uint8_t *out, size_t cap, uint32_t id, const char *target, int v, size_t pad)
{
	char padding[1100];
	int n;

	if (pad >= sizeof(padding))
		pad = sizeof(padding) - 1;
	memset(padding, '0', pad);
	padding[pad] = '\0';
	n = snprintf((char *)out, cap,
		     "{\"i\":\"%08x\",\"p\":{\"client_id\":\"hostile\",\"hostname\":\"hostile\",%s%s%s"
		     "\"pad\":\"%s\",\"version\":\"0.1.0\"},\"s\":0,\"t\":\"PING\",\"v\":%d}",
		     id, target ? "\"target\":\"" : "", target ? target : "", target ? "\"," : "", padding, v);
	return n < 0 ? 0 : (size_t)n;
}

static int run_udp(uint64_t count, double duration)
{
	int nsock = g_src_count > 0 ? g_src_count : 1;
	int *fds = calloc((size_t)nsock, sizeof(int));
	uint32_t *sizes = calloc(count, sizeof(uint32_t));
	uint8_t *types = calloc(count, 1);
	uint64_t *per_src = calloc((size_t)nsock, sizeof(uint64_t));
	uint64_t sent_type[U_N] = { 0 }, pongs = 0, anomalies = 0, max_src = 0;
	size_t largest_pong = 0, smallest_ping = (size_t)-1;
	static uint8_t buf[65536];
	struct pollfd *pf = calloc((size_t)nsock, sizeof(*pf));
	uint64_t t0 = now_ms(), end_send = t0 + (uint64_t)(duration * 1000.0), i = 0;

	if (fds == NULL || sizes == NULL || types == NULL || per_src == NULL || pf == NULL)
		die("out of memory");
	for (int k = 0; k < nsock; k++) {
		fds[k] = open_socket(SOCK_DGRAM);
		if (fds[k] < 0)
			die("cannot open a UDP socket");
		pf[k].fd = fds[k];
		pf[k].events = POLLIN;
	}
	for (;;) {
		uint64_t now = now_ms();

		if (g_stop || now >= g_hard_end)
			break;
		/* Send what is due by now (evenly over the duration). */
		uint64_t due = now >= end_send ? count
			       : (uint64_t)((double)count * (double)(now - t0) / (duration * 1000.0));
		for (; i < due && i < count; i++) {
			int t = (int)(i % U_N), k = (int)(i % (uint64_t)nsock);
			size_t len = 0;

			switch (t) {
			case U_VALID:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 420);
				break;
			case U_SMALL:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 0);
				break;
			case U_OVER1025:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 0);
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 1025 - len);
				break;
			case U_OVER8K:
				len = 8192;
				rnd(buf, len);
				memcpy(buf, "{\"i\":\"", 6);
				break;
			case U_OVER60K:
				len = 60000;
				memset(buf, ' ', len);
				ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 500);
				buf[strlen((char *)buf)] = ' ';
				break;
			case U_RANDOM:
				len = 1 + (i * 7919) % 1024;
				rnd(buf, len);
				break;
			case U_TRUNC:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 1, 600) / 2;
				break;
			case U_TARGET:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, "not-this-server", 1, 420);
				break;
			case U_V2:
				len = ping_json(buf, sizeof(buf), (uint32_t)i, NULL, 2, 420);
				break;
			case U_DEEP:
				len = 1000;
				memset(buf, '[', len);
				memcpy(buf, "{\"i\":\"00000000\",\"p\":", strlen("{\"i\":\"00000000\",\"p\":"));
				break;
			default:
				len = 0;
				break;
			}
			sizes[i] = (uint32_t)len;
			types[i] = (uint8_t)t;
			sent_type[t]++;
			(void)sendto(fds[k], buf, len, MSG_DONTWAIT, (struct sockaddr *)&g_dst, sizeof(g_dst));
		}
		if (i >= count && now >= end_send + 1000)
			break; /* a second to drain the PONGs */
		if (poll(pf, (nfds_t)nsock, 5) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < nsock; k++) {
			if (!(pf[k].revents & POLLIN))
				continue;
			for (;;) {
				ssize_t r = recv(fds[k], buf, sizeof(buf), MSG_DONTWAIT);
				ppcp_pong pong;
				unsigned long id;
				char *end;

				if (r < 0)
					break;
				pongs++;
				per_src[k]++;
				if ((size_t)r > largest_pong)
					largest_pong = (size_t)r;
				if (ppcp_pong_decode(buf, (size_t)r, &pong) != 0) {
					anomalies++;
					fprintf(stderr, "hostile udp: an answer that is not a PONG (%zd bytes)\n", r);
					continue;
				}
				id = strtoul(pong.id, &end, 16);
				if (*end != '\0' || id >= count || id >= i) {
					anomalies++;
					fprintf(stderr, "hostile udp: a PONG for an id never sent: %s\n", pong.id);
					continue;
				}
				if (types[id] != U_VALID) {
					anomalies++;
					fprintf(stderr, "hostile udp: a PONG to a %s PING (%u bytes)\n",
						utype_name[types[id]], sizes[id]);
				}
				if ((size_t)r > sizes[id]) {
					anomalies++;
					fprintf(stderr, "hostile udp: a %zd-byte PONG for a %u-byte PING\n", r, sizes[id]);
				}
				if (sizes[id] < smallest_ping)
					smallest_ping = sizes[id];
			}
		}
	}
	double secs = (double)(now_ms() - t0) / 1000.0;
	/* ppcpd: bursts of 40, then 20 per second per source (and 1000/s
	 * in all, with bursts of 2000). */
	uint64_t bound = 40 + (uint64_t)(20.0 * secs) + 2;
	for (int k = 0; k < nsock; k++)
		if (per_src[k] > max_src)
			max_src = per_src[k];
	if (max_src > bound) {
		anomalies++;
		fprintf(stderr, "hostile udp: %llu PONGs to one source in %.1f s: the rate limit allows %llu\n",
			(unsigned long long)max_src, secs, (unsigned long long)bound);
	}
	printf("udp sent %llu (", (unsigned long long)i);
	for (int t = 0; t < U_N; t++)
		printf("%s%s %llu", t ? ", " : "", utype_name[t], (unsigned long long)sent_type[t]);
	printf(") from %d sources in %.1f s pongs %llu largest_pong %zu smallest_answered_ping %zu "
	       "max_per_source %llu bound %llu anomalies %llu\n",
	       nsock, secs, (unsigned long long)pongs, largest_pong, smallest_ping == (size_t)-1 ? 0 : smallest_ping,
	       (unsigned long long)max_src, (unsigned long long)bound, (unsigned long long)anomalies);
	for (int k = 0; k < nsock; k++)
		close(fds[k]);
	free(fds);
	free(sizes);
	free(types);
	free(per_src);
	free(pf);
	return anomalies == 0 && pongs > 0 ? 0 : 1;
}

/* ---- main -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: hostile --port P [--addr 127.0.0.1] [--psk-file F] [--src-base K --src-count M]\n"
		"               [--max-time S] attack|cycles|udp [MODE OPTIONS]\n"
		"  attack [--halfopen N] [--slowloris N] [--garbage N] [--wrongpsk N] [--badauth N]\n"
		"         [--oversize N] [--truncated N] [--conc C] [--hold S]\n"
		"  cycles [--ok N] [--wrong N] [--badauth N] [--conc C] [--bytewise]\n"
		"  udp [--count N] [--duration S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	enum { O_ADDR = 256, O_PORT, O_PSK, O_SRCB, O_SRCC, O_MAXT, O_HALF, O_SLOW, O_GARB, O_WRONG,
	       O_BADAUTH, O_OVER, O_CONC, O_HOLD, O_OK, O_COUNT, O_DUR, O_TRUNCATED, O_BYTEWISE };
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, O_ADDR },	    { "port", required_argument, NULL, O_PORT },
		{ "psk-file", required_argument, NULL, O_PSK },	    { "src-base", required_argument, NULL, O_SRCB },
		{ "src-count", required_argument, NULL, O_SRCC },   { "max-time", required_argument, NULL, O_MAXT },
		{ "halfopen", required_argument, NULL, O_HALF },    { "slowloris", required_argument, NULL, O_SLOW },
		{ "garbage", required_argument, NULL, O_GARB },	    { "wrongpsk", required_argument, NULL, O_WRONG },
		{ "wrong", required_argument, NULL, O_WRONG },	    { "badauth", required_argument, NULL, O_BADAUTH },
		{ "oversize", required_argument, NULL, O_OVER },    { "conc", required_argument, NULL, O_CONC },
		{ "hold", required_argument, NULL, O_HOLD },	    { "ok", required_argument, NULL, O_OK },
		{ "count", required_argument, NULL, O_COUNT },	    { "duration", required_argument, NULL, O_DUR },
		{ "truncated", required_argument, NULL, O_TRUNCATED },  { "bytewise", no_argument, NULL, O_BYTEWISE },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t plan[K_N] = { 0 }, count = 20000;
	const char *addr = "127.0.0.1", *psk_file = NULL, *mode;
	long port = -1, max_time = 60;
	size_t conc = 0;
	double duration = 4.0;
	struct rlimit rl;
	int opt;

	while ((opt = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (opt) {
		case O_ADDR: addr = optarg; break;
		case O_PORT: port = strtol(optarg, NULL, 10); break;
		case O_PSK: psk_file = optarg; break;
		case O_SRCB: g_src_base = atoi(optarg); break;
		case O_SRCC: g_src_count = atoi(optarg); break;
		case O_MAXT: max_time = strtol(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	mode = argv[optind];
	optind++;
	while ((opt = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
		switch (opt) {
		case O_HALF: plan[K_HALFOPEN] = strtoull(optarg, NULL, 10); break;
		case O_SLOW: plan[K_SLOWLORIS] = strtoull(optarg, NULL, 10); break;
		case O_GARB: plan[K_GARBAGE] = strtoull(optarg, NULL, 10); break;
		case O_WRONG: plan[K_WRONGPSK] = strtoull(optarg, NULL, 10); break;
		case O_BADAUTH: plan[K_BADAUTH] = strtoull(optarg, NULL, 10); break;
		case O_OVER: plan[K_OVERSIZE] = strtoull(optarg, NULL, 10); break;
		case O_OK: plan[K_OK] = strtoull(optarg, NULL, 10); break;
		case O_TRUNCATED: plan[K_TRUNC] = strtoull(optarg, NULL, 10); break;
		case O_BYTEWISE: g_bytewise = 1; break;
		case O_CONC: conc = strtoull(optarg, NULL, 10); break;
		case O_HOLD: g_hold_ms = (uint64_t)(atof(optarg) * 1000.0); break;
		case O_COUNT: count = strtoull(optarg, NULL, 10); break;
		case O_DUR: duration = atof(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || port < 1 || port > 65535 || max_time < 1 || max_time > 600 ||
	    g_src_count < 0 || g_src_count > 250 || (g_src_count > 0 && (g_src_base < 1 || g_src_base + g_src_count > 255)) ||
	    count > 10000000 || duration <= 0 || duration > 300)
		usage();
	memset(&g_dst, 0, sizeof(g_dst));
	g_dst.sin_family = AF_INET;
	g_dst.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &g_dst.sin_addr) != 1 || !is_loopback(g_dst.sin_addr))
		die("--addr must be an IPv4 address in 127.0.0.0/8 (this program only attacks loopback)");
	if (psk_file != NULL) {
		int err = ppcp_psk_load(psk_file, g_psk);

		if (err != 0) {
			fprintf(stderr, "hostile: %s: %s\n", psk_file, ppcp_strerror(err));
			return 2;
		}
		g_have_psk = 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	g_hard_end = now_ms() + (uint64_t)max_time * 1000u;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "attack") == 0) {
		if (plan[K_OK] != 0)
			usage();
		return run_attack(plan, conc);
	}
	if (strcmp(mode, "cycles") == 0) {
		if ((plan[K_OK] != 0 && !g_have_psk) || plan[K_OK] + plan[K_WRONGPSK] + plan[K_BADAUTH] == 0)
			usage();
		return run_cycles(plan[K_OK], plan[K_WRONGPSK], plan[K_BADAUTH], conc ? conc : 16);
	}
	if (strcmp(mode, "udp") == 0)
		return run_udp(count, duration);
	usage();
	return 2;
}
