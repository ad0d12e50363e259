/*
 * hsload.c - load generator for the PPCP benchmarks (bench/run).
 *
 * It drives the library's sans-I/O engine (ppcp_conn) over non-blocking
 * sockets, so the load costs one process and no thread per connection.
 * Only ever pointed at 127.0.0.1 or at a network namespace made by
 * bench/run; every mode is bounded in time and in count.
 *
 *   hsload hs   [-c N] [-d SECONDS] ADDR PORT
 *       N connections in parallel (poll(2)); each does a full handshake
 *       (CLIENT_HELLO .. AUTH_OK), sends BYE and closes, and its slot
 *       starts the next one, for SECONDS.  Prints handshakes/s and the
 *       latency of one handshake (connect to ESTABLISHED), p50 and p99.
 *
 *   hsload idle [-n N] [-c RAMP] [-d SECONDS] [--heartbeat MS] ADDR PORT
 *       opens N sessions (at most RAMP handshakes in flight), prints
 *       "established N failed F" when they are all up, keeps them for
 *       SECONDS answering and sending heartbeats (epoll(7): poll(2) is
 *       O(N) per wake-up), prints "alive N lost L" and closes them all
 *       with BYE.
 *
 *   hsload ping [--target ID] ADDR PORT
 *       one discovery PING (ppcp_find_server) and its PONG: the floor of
 *       `ppcp discover --target` without the CLI around it.
 *
 * Common: --psk-file FILE (else $PPCP_PSK_FILE), --server-id ID (the id
 * the server must prove; default: any holder of the PSK), --max-time S
 * (hard stop, default 300).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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

#include <ppcp.h>

enum { RBUF = 65536 };

static uint8_t g_psk[PPCP_PSK_FILE_BYTES];
static const char *g_server_id;
static struct sockaddr_in g_addr;
static uint32_t g_heartbeat_ms = 15000, g_idle_ms = 45000;
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

/* ---- one client connection ---------------------------------------------- */

enum slot_state { SL_FREE, SL_CONNECTING, SL_HANDSHAKE, SL_ESTABLISHED };

struct slot {
	int fd;
	enum slot_state st;
	ppcp_conn *conn;
	uint64_t t0_us;
	int established; /* set by the callback */
};

static void cb_established(ppcp_conn *c, void *user)
{
	(void)c;
	((struct slot *)user)->established = 1;
}

static void cb_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	(void)c;
	(void)m;
	(void)user; /* HEARTBEAT is answered by the engine itself */
}

/* Start a connection in slot s.  0, or -1 (counted as a failure). */
static int slot_start(struct slot *s)
{
	ppcp_config cfg;
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->t0_us = now_us();
	if (connect(s->fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0 && errno != EINPROGRESS) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = g_psk;
	cfg.psk_len = sizeof(g_psk);
	cfg.server_id = g_server_id;
	cfg.client_id = "hsload";
	cfg.heartbeat_ms = g_heartbeat_ms;
	cfg.idle_timeout_ms = g_idle_ms;
	cfg.cb.on_established = cb_established;
	cfg.cb.on_message = cb_message;
	cfg.user = s;
	if (ppcp_conn_new(&s->conn, &cfg, now_ms()) != 0) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	s->st = SL_CONNECTING;
	return 0;
}

static void slot_free(struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	ppcp_conn_free(s->conn);
	s->conn = NULL;
	s->fd = -1;
	s->st = SL_FREE;
}

/* Write what the engine queued.  0, or -1 on a broken connection.  Sets
 * *blocked when the socket is full. */
static int slot_flush(struct slot *s, int *blocked)
{
	const uint8_t *data;
	size_t n;

	*blocked = 0;
	while ((n = ppcp_conn_out(s->conn, &data)) > 0) {
		ssize_t w = send(s->fd, data, n, MSG_NOSIGNAL);

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

/* Read and feed what arrived.  0, or -1 when the connection ended or
 * failed. */
static int slot_read(struct slot *s)
{
	static uint8_t buf[RBUF];

	for (;;) {
		ssize_t r = recv(s->fd, buf, sizeof(buf), 0);

		if (r > 0) {
			if (ppcp_conn_feed(s->conn, buf, (size_t)r, now_ms()) != 0)
				return -1;
			if ((size_t)r < sizeof(buf))
				return 0;
			continue;
		}
		if (r == 0)
			return -1;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		return -1;
	}
}

/* The connect finished: any error? */
static int slot_connected(struct slot *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
		return -1;
	s->st = SL_HANDSHAKE;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- hs mode: handshakes per second -------------------------------------- */

static int run_hs(int conc, double secs, int max_time)
{
	struct slot *sl = calloc((size_t)conc, sizeof(*sl));
	struct pollfd *pf = calloc((size_t)conc, sizeof(*pf));
	size_t lat_cap = 1 << 20, nlat = 0;
	uint64_t *lat = malloc(lat_cap * sizeof(*lat));
	uint64_t t_start, t_end, hard_end, done = 0, failed = 0, t_last = 0;
	int active;

	if (sl == NULL || pf == NULL || lat == NULL)
		return 2;
	for (int i = 0; i < conc; i++)
		sl[i].fd = -1;
	t_start = now_us();
	t_end = t_start + (uint64_t)(secs * 1e6);
	hard_end = t_start + (uint64_t)max_time * 1000000u;
	for (int i = 0; i < conc; i++)
		if (slot_start(&sl[i]) != 0)
			failed++;
	for (;;) {
		uint64_t t = now_us();
		const uint8_t *pending;
		int timeout;

		active = 0;
		for (int i = 0; i < conc; i++) {
			pf[i].fd = sl[i].st == SL_FREE ? -1 : sl[i].fd;
			pf[i].events = POLLIN;
			pf[i].revents = 0;
			if (sl[i].st == SL_CONNECTING ||
			    (sl[i].conn != NULL && ppcp_conn_out(sl[i].conn, &pending) > 0))
				pf[i].events |= POLLOUT;
			active += sl[i].st != SL_FREE;
		}
		if (active == 0 || t >= hard_end || g_stop)
			break;
		timeout = t >= t_end ? 0 : (int)((t_end - t) / 1000) + 1;
		if (t >= t_end) {
			/* Past the window: let the ones in flight finish, no new ones. */
			timeout = 100;
		}
		if (poll(pf, (nfds_t)conc, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < conc; i++) {
			struct slot *s = &sl[i];
			int blocked, bad = 0;

			if (s->st == SL_FREE || pf[i].revents == 0)
				continue;
			if (s->st == SL_CONNECTING) {
				if (!(pf[i].revents & (POLLOUT | POLLERR | POLLHUP)))
					continue;
				if (slot_connected(s) != 0)
					bad = 1;
			}
			if (!bad && (pf[i].revents & (POLLIN | POLLERR | POLLHUP)))
				bad = slot_read(s) != 0 && !s->established;
			if (!bad && s->established) {
				uint64_t t1 = now_us();

				if (t1 <= t_end) {
					done++;
					t_last = t1;
					if (nlat < lat_cap)
						lat[nlat++] = t1 - s->t0_us;
				}
				(void)ppcp_conn_close(s->conn, NULL);
				(void)slot_flush(s, &blocked);
				slot_free(s);
				if (t1 < t_end && slot_start(s) != 0)
					failed++;
				continue;
			}
			if (!bad && slot_flush(s, &blocked) != 0)
				bad = 1;
			if (bad) {
				failed++;
				slot_free(s);
				if (now_us() < t_end && slot_start(s) != 0)
					failed++;
			}
		}
	}
	for (int i = 0; i < conc; i++)
		if (sl[i].st != SL_FREE)
			slot_free(&sl[i]);
	(void)t_last;
	double window = (double)(t_end - t_start) / 1e6;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("handshakes %llu failed %llu seconds %.3f rate %.1f conc %d p50_ms %.3f p99_ms %.3f\n",
	       (unsigned long long)done, (unsigned long long)failed, window, (double)done / window, conc,
	       nlat ? (double)lat[nlat / 2] / 1000.0 : 0.0,
	       nlat ? (double)lat[(size_t)((double)nlat * 0.99)] / 1000.0 : 0.0);
	free(sl);
	free(pf);
	free(lat);
	return done > 0 ? 0 : 1;
}

/* ---- idle mode: many sessions held with heartbeats ----------------------- */

static int ep_set(int ep, struct slot *s, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	return epoll_ctl(ep, op, s->fd, &ev);
}

static int run_idle(int n, int ramp, double hold, int max_time)
{
	struct slot *sl = calloc((size_t)n, sizeof(*sl));
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int next = 0, inflight = 0, est = 0, failed = 0, lost = 0, phase = 0;
	uint64_t hard_end = now_ms() + (uint64_t)max_time * 1000u, hold_end = 0, last_scan = 0;
	uint64_t t_ramp0 = now_ms();

	if (sl == NULL || ep < 0)
		return 2;
	for (int i = 0; i < n; i++)
		sl[i].fd = -1;
	while (!g_stop && now_ms() < hard_end) {
		uint64_t t;
		int k;

		/* Ramp: keep RAMP handshakes in flight until N were tried. */
		while (phase == 0 && inflight < ramp && next < n) {
			struct slot *s = &sl[next++];

			if (slot_start(s) != 0 || ep_set(ep, s, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT) != 0) {
				failed++;
				slot_free(s);
				continue;
			}
			inflight++;
		}
		if (phase == 0 && inflight == 0 && next >= n) {
			phase = 1;
			hold_end = now_ms() + (uint64_t)(hold * 1000.0);
			printf("established %d failed %d ramp_s %.2f\n", est, failed,
			       (double)(now_ms() - t_ramp0) / 1000.0);
			fflush(stdout);
		}
		if (phase == 1 && now_ms() >= hold_end)
			break;
		k = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 50);
		if (k < 0 && errno != EINTR)
			break;
		for (int j = 0; j < k; j++) {
			struct slot *s = evs[j].data.ptr;
			int blocked, bad = 0, was_est = s->st == SL_ESTABLISHED;

			if (s->st == SL_FREE)
				continue;
			if (s->st == SL_CONNECTING) {
				if (!(evs[j].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
					continue;
				bad = slot_connected(s) != 0;
			}
			if (!bad && (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				bad = slot_read(s) != 0;
			if (!bad)
				bad = slot_flush(s, &blocked) != 0;
			if (!bad && s->established && s->st != SL_ESTABLISHED) {
				s->st = SL_ESTABLISHED;
				est++;
				inflight--;
			}
			if (!bad)
				(void)ep_set(ep, s, EPOLL_CTL_MOD, EPOLLIN | (blocked ? EPOLLOUT : 0));
			if (bad) {
				if (was_est) {
					lost++;
					est--;
				} else {
					failed++;
					inflight--;
				}
				slot_free(s);
			}
		}
		/* Timers (heartbeats, deadlines), scanned at most every 50 ms. */
		t = now_ms();
		if (t - last_scan >= 50) {
			last_scan = t;
			for (int i = 0; i < next; i++) {
				struct slot *s = &sl[i];
				int blocked;

				if (s->st == SL_FREE || ppcp_conn_next_deadline(s->conn) > t)
					continue;
				if (ppcp_conn_on_timeout(s->conn, t) != 0 || slot_flush(s, &blocked) != 0) {
					if (s->st == SL_ESTABLISHED) {
						lost++;
						est--;
					} else {
						failed++;
						inflight--;
					}
					slot_free(s);
				} else if (blocked) {
					(void)ep_set(ep, s, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
				}
			}
		}
	}
	printf("alive %d lost %d\n", est, lost);
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		int blocked;

		if (sl[i].st == SL_ESTABLISHED) {
			(void)ppcp_conn_close(sl[i].conn, NULL);
			(void)slot_flush(&sl[i], &blocked);
		}
		if (sl[i].st != SL_FREE)
			slot_free(&sl[i]);
	}
	close(ep);
	free(sl);
	return phase == 1 && lost == 0 ? 0 : 1;
}

/* ---- ping mode: the discovery floor -------------------------------------- */

static int run_ping(const char *addr, uint16_t port, const char *target)
{
	const char *addrs[1] = { addr };
	ppcp_find_options fo = { .addrs = addrs, .naddrs = 1, .target = target, .timeout_ms = 2000 };
	ppcp_server_info srv;
	size_t n = 0;
	int err = ppcp_find_server(port, &fo, &srv, 1, &n);

	if (err != 0) {
		fprintf(stderr, "hsload ping: %s\n", ppcp_strerror(err));
		return 1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: hsload hs|idle|ping [-c N] [-n N] [-d SECONDS] [--heartbeat MS]\n"
			"              [--psk-file FILE] [--server-id ID] [--target ID] [--max-time S] ADDR PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "psk-file", required_argument, NULL, 'k' }, { "server-id", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },   { "heartbeat", required_argument, NULL, 'H' },
		{ "max-time", required_argument, NULL, 'M' }, { NULL, 0, NULL, 0 },
	};
	const char *mode, *psk_file = getenv("PPCP_PSK_FILE"), *target = NULL;
	int conc = 16, n = 100, max_time = 300, opt, err;
	double secs = 5.0;
	uint16_t port;
	struct rlimit rl;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "c:n:d:", lo, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conc = atoi(optarg);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'k':
			psk_file = optarg;
			break;
		case 's':
			g_server_id = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'H':
			g_heartbeat_ms = (uint32_t)atoi(optarg);
			g_idle_ms = 3 * g_heartbeat_ms;
			break;
		case 'M':
			max_time = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || conc < 1 || n < 1 || secs <= 0 || max_time < 1)
		usage();
	port = (uint16_t)atoi(argv[optind + 1]);
	memset(&g_addr, 0, sizeof(g_addr));
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons(port);
	if (inet_pton(AF_INET, argv[optind], &g_addr.sin_addr) != 1) {
		fprintf(stderr, "hsload: ADDR must be a numeric IPv4 address\n");
		return 2;
	}
	if (strcmp(mode, "ping") == 0)
		return run_ping(argv[optind], port, target);
	if (psk_file == NULL) {
		fprintf(stderr, "hsload: --psk-file or $PPCP_PSK_FILE\n");
		return 2;
	}
	err = ppcp_psk_load(psk_file, g_psk);
	if (err != 0) {
		fprintf(stderr, "hsload: %s: %s\n", psk_file, ppcp_strerror(err));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (strcmp(mode, "hs") == 0)
		return run_hs(conc, secs, max_time);
	if (strcmp(mode, "idle") == 0)
		return run_idle(n, conc, secs, max_time);
	usage();
	return 2;
}
