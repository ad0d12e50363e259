/*
 * scan.c - the opt-in TCP scan of the seed diagram (`discover --scan CIDR`):
 * for networks that drop broadcast and multicast, PING over TCP each
 * address of a small IPv4 subnet (PROTOCOL.md §10.4: a PING as the first
 * frame of a TCP connection is answered with a PONG frame).
 *
 * All connections run at once, non-blocking, under one poll() and one
 * deadline.  A subnet larger than a /24 is refused: this is a fallback for
 * one LAN segment, not a port scanner.  Each connection is closed after its
 * PONG (or at the deadline); the session itself is opened afterwards by
 * the caller, like after any discovery.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum {
	SCAN_MAX_HOSTS = 256,
	SCAN_MIN_PREFIX = 24,
};

struct probe {
	int fd;
	uint32_t ip;      /* host byte order */
	int state;        /* 0 connecting, 1 waiting for the PONG, 2 done */
	size_t sent;
	uint8_t in[PPCP_LEN_PREFIX + PPCP_PING_MAX];
	size_t got;
};

static int scan_parse(const char *cidr, uint32_t *base, int *prefix)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	struct in_addr a;
	char *end;
	long p;

	if (slash == NULL) {
		p = 32;
		slash = cidr + strlen(cidr);
	} else {
		p = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end != '\0' || p < 0 || p > 32)
			return -1;
	}
	if ((size_t)(slash - cidr) >= sizeof(ip))
		return -1;
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -1;
	*prefix = (int)p;
	*base = ntohl(a.s_addr);
	if (p < 32)
		*base &= ~((UINT32_C(1) << (32 - p)) - 1);
	return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int scan_run(const struct cli *cli, const char *cidr, const char *target, int timeout_ms,
	     struct found *out, size_t max, size_t *n)
{
	struct probe *pr = NULL;
	struct pollfd *pfd = NULL;
	uint8_t frame[PPCP_LEN_PREFIX + PPCP_PING_MAX];
	size_t flen, nprobe = 0, i;
	uint32_t base, count, first, last;
	int prefix, ret = 0;
	ppcp_ping ping;
	uint8_t rnd[8];
	uint64_t t0, deadline;

	if (scan_parse(cidr, &base, &prefix) < 0) {
		cli_err(cli, "--scan: '%s' is not an IPv4 subnet (like 10.0.0.0/24)", cidr);
		return -1;
	}
	if (prefix < SCAN_MIN_PREFIX) {
		cli_err(cli, "--scan: %s is larger than a /%d; scan one /%d at a time", cidr,
			SCAN_MIN_PREFIX, SCAN_MIN_PREFIX);
		return -1;
	}
	count = UINT32_C(1) << (32 - prefix);
	first = base;
	last = base + count - 1;
	if (prefix <= 30) {
		first++; /* not the network address */
		last--;  /* nor the broadcast address */
	}

	memset(&ping, 0, sizeof(ping));
	if (getentropy(rnd, sizeof(rnd)) != 0) {
		cli_err(cli, "--scan: no randomness for the PING id");
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(ping.id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(ping.client_id, sizeof(ping.client_id), "%s", cli->client_id);
	snprintf(ping.hostname, sizeof(ping.hostname), "%s", cli->client_id);
	snprintf(ping.version, sizeof(ping.version), "%s", PPCP_VERSION_STRING);
	if (target != NULL)
		snprintf(ping.target, sizeof(ping.target), "%s", target);
	ping.ts = (int64_t)time(NULL);
	/* PROTOCOL.md §2: u32(len) ‖ PING */
	if (ppcp_ping_encode(&ping, frame + PPCP_LEN_PREFIX, sizeof(frame) - PPCP_LEN_PREFIX,
			     &flen) < 0) {
		cli_err(cli, "--scan: cannot encode the PING");
		return -1;
	}
	put_be32(frame, (uint32_t)flen);
	flen += PPCP_LEN_PREFIX;

	pr = calloc(SCAN_MAX_HOSTS, sizeof(*pr));
	pfd = calloc(SCAN_MAX_HOSTS, sizeof(*pfd));
	if (pr == NULL || pfd == NULL) {
		cli_err(cli, "out of memory");
		ret = -1;
		goto out;
	}
	t0 = cli_now_us();
	for (uint64_t ip = first; ip <= last && nprobe < SCAN_MAX_HOSTS; ip++) {
		struct sockaddr_in sin;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			cli_err(cli, "--scan: socket: %s", strerror(errno));
			ret = -1;
			goto out;
		}
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(cli->port);
		sin.sin_addr.s_addr = htonl((uint32_t)ip);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 &&
		    errno != EINPROGRESS) {
			close(fd); /* unreachable at once: nothing there */
			continue;
		}
		pr[nprobe].fd = fd;
		pr[nprobe].ip = (uint32_t)ip;
		nprobe++;
	}
	cli_info(cli, 1, "scanning %s: %zu addresses, TCP port %u", cidr, nprobe,
		 (unsigned)cli->port);

	deadline = cli_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = cli_now_ms();
		size_t live = 0;
		int r;

		for (i = 0; i < nprobe; i++) {
			pfd[i].fd = pr[i].state == 2 ? -1 : pr[i].fd;
			pfd[i].events = pr[i].state == 0 ? POLLOUT : POLLIN;
			pfd[i].revents = 0;
			if (pr[i].state != 2)
				live++;
		}
		if (live == 0 || now >= deadline)
			break;
		r = poll(pfd, nprobe, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		for (i = 0; i < nprobe; i++) {
			struct probe *p = &pr[i];

			if (pfd[i].revents == 0 || p->state == 2)
				continue;
			if (p->state == 0) {
				int soerr = 0;
				socklen_t sl = sizeof(soerr);
				ssize_t w;

				if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
				    soerr != 0) {
					p->state = 2;
					continue;
				}
				w = send(p->fd, frame + p->sent, flen - p->sent,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w < 0 && errno != EAGAIN && errno != EINTR) {
					p->state = 2;
					continue;
				}
				if (w > 0)
					p->sent += (size_t)w;
				if (p->sent == flen)
					p->state = 1;
				continue;
			}
			/* Reading the PONG frame. */
			ssize_t r2 = recv(p->fd, p->in + p->got, sizeof(p->in) - p->got,
					  MSG_DONTWAIT);
			if (r2 < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r2 <= 0) {
				p->state = 2;
				continue;
			}
			p->got += (size_t)r2;
			if (p->got < PPCP_LEN_PREFIX)
				continue;
			uint32_t blen = ((uint32_t)p->in[0] << 24) | ((uint32_t)p->in[1] << 16) |
					((uint32_t)p->in[2] << 8) | p->in[3];
			if (blen == 0 || blen > PPCP_PING_MAX) {
				p->state = 2;
				continue;
			}
			if (p->got < PPCP_LEN_PREFIX + blen)
				continue;
			p->state = 2;
			ppcp_pong pong;
			if (ppcp_pong_decode(p->in + PPCP_LEN_PREFIX, blen, &pong) != 0 ||
			    strcmp(pong.id, ping.id) != 0)
				continue;
			if (target != NULL && strcmp(pong.server_id, target) != 0)
				continue;
			if (*n < max) {
				struct found *f = &out[*n];
				struct in_addr a;
				uint64_t rtt = cli_now_us() - t0;

				memset(f, 0, sizeof(*f));
				a.s_addr = htonl(p->ip);
				inet_ntop(AF_INET, &a, f->si.address, sizeof(f->si.address));
				f->si.port = pong.port;
				f->si.pong = pong;
				f->si.rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
				snprintf(f->path, sizeof(f->path), "tcp");
				(*n)++;
			}
		}
	}
out:
	if (pr != NULL)
		for (i = 0; i < nprobe; i++)
			close(pr[i].fd);
	free(pr);
	free(pfd);
	return ret;
}
