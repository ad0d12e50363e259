/*
 * disco.c - UDP discovery (PROTOCOL.md §10): a PING in, a PONG out.
 *
 * One UDP socket per listener, bound to the listener's address and port:
 * it receives unicast PINGs, broadcast PINGs (only when bound to a
 * wildcard address: Linux delivers broadcasts to sockets bound to the
 * wildcard, not to a unicast address; SO_BROADCAST is needed to send them,
 * not to receive them) and, on a wildcard address only, the discovery
 * multicast groups: 239.255.80.67 (IPv4, administratively scoped) and
 * ff02::5050 (IPv6, link-local), joined on every interface and re-joined
 * every minute so interfaces that appear later are covered.
 *
 * Answers are unicast to the PING's source, never broadcast or multicast.
 * No amplification: a PONG is at most as large as its PING
 * (ppcp_pong_encode with cap = the PING's size; too small a PING gets no
 * answer).  A PING that names another target gets no answer.  PONGs are
 * rate-limited per source address (token bucket, RATE_PER_S per second,
 * RATE_BURST at once, in a fixed table of RATE_SLOTS entries where a new
 * address takes over the slot it hashes to) and in total (GLOBAL_PER_S),
 * so spoofed sources cannot turn the daemon into a flood.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppcpd.h"

#define PD_MCAST4 "239.255.80.67"
#define PD_MCAST6 "ff02::5050"

enum {
	RATE_SLOTS = 4096,
	RATE_PER_S = 20,
	RATE_BURST = 40,
	GLOBAL_PER_S = 1000,
	GLOBAL_BURST = 2000,
	REJOIN_MS = 60000,
	DROP_LOG_MS = 10000,
};

struct pd_udp {
	uv_udp_t udp;
	struct pd_daemon *d;
	struct pd_udp *next;
	int family;
	int wildcard;
	uint16_t port;
	char name[80];
};

struct rate_slot {
	int family;
	uint8_t addr[16];
	double tokens;
	uint64_t last_ms;
};

struct pd_disco {
	struct pd_udp *socks;
	struct rate_slot slots[RATE_SLOTS];
	double global_tokens;
	uint64_t global_last;
	uv_timer_t rejoin;
	int rejoin_on;
	uint64_t dropped, drop_log_at;
};

/* ---- rate limit ----------------------------------------------------------- */

static void rate_refill(double *tokens, uint64_t *last, uint64_t now, double per_s, double burst)
{
	if (now > *last) {
		*tokens += (double)(now - *last) * per_s / 1000.0;
		if (*tokens > burst)
			*tokens = burst;
	}
	*last = now;
}

/* 1 if a PONG may go to this source now (and take its token). */
static int rate_allow(struct pd_disco *ds, const struct sockaddr *sa, uint64_t now)
{
	uint8_t addr[16] = { 0 };
	uint32_t h = 2166136261u;
	struct rate_slot *s;

	if (sa->sa_family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	else
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	h ^= (uint32_t)sa->sa_family;
	for (int i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 16777619u;
	s = &ds->slots[h % RATE_SLOTS];
	if (s->family != sa->sa_family || memcmp(s->addr, addr, 16) != 0) {
		s->family = sa->sa_family;
		memcpy(s->addr, addr, 16);
		s->tokens = RATE_BURST;
		s->last_ms = now;
	}
	rate_refill(&s->tokens, &s->last_ms, now, RATE_PER_S, RATE_BURST);
	rate_refill(&ds->global_tokens, &ds->global_last, now, GLOBAL_PER_S, GLOBAL_BURST);
	if (s->tokens < 1.0 || ds->global_tokens < 1.0)
		return 0;
	s->tokens -= 1.0;
	ds->global_tokens -= 1.0;
	return 1;
}

/* ---- receive and answer --------------------------------------------------- */

static void disco_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	/* Larger than any valid PING, so an oversized one is seen as such. */
	static char rbuf[PPCP_PING_MAX * 2];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void disco_on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
			  unsigned flags)
{
	struct pd_udp *u = h->data;
	struct pd_daemon *d = u->d;
	struct pd_disco *ds = d->disco;
	uint8_t out[PPCP_PING_MAX];
	char from[80], cid[PPCP_ID_MAX * 4 + 1], tgt[PPCP_ID_MAX * 4 + 1];
	ppcp_ping ping;
	ppcp_pong pong;
	size_t len;
	uv_buf_t b;
	int r;

	if (n <= 0 || addr == NULL)
		return;
	pd_addr_str(addr, from, sizeof(from));
	if ((flags & UV_UDP_PARTIAL) || n > PPCP_PING_MAX) {
		pd_debug("discovery: dropped an oversized datagram from %s", from);
		return;
	}
	if ((addr->sa_family == AF_INET && ((const struct sockaddr_in *)addr)->sin_port == 0) ||
	    (addr->sa_family == AF_INET6 && ((const struct sockaddr_in6 *)addr)->sin6_port == 0))
		return;
	r = ppcp_ping_decode((const uint8_t *)buf->base, (size_t)n, &ping);
	if (r != 0) {
		pd_debug("discovery: not a PING from %s: %s", from, ppcp_strerror(r));
		return;
	}
	pd_log_safe(cid, sizeof(cid), ping.client_id);
	if (!ppcp_ping_wants(&ping, d->server_id)) {
		pd_debug("discovery: PING from %s ('%s') is for '%s', not us", from, cid,
			 pd_log_safe(tgt, sizeof(tgt), ping.target));
		return;
	}
	if (!rate_allow(ds, addr, uv_now(d->loop))) {
		uint64_t now = uv_now(d->loop);

		ds->dropped++;
		pd_debug("discovery: PONG to %s withheld (rate limit)", from);
		if (now >= ds->drop_log_at) {
			pd_warn("discovery: PONG rate limit reached (%llu PINGs unanswered since the last report)",
				(unsigned long long)ds->dropped);
			ds->dropped = 0;
			ds->drop_log_at = now + DROP_LOG_MS;
		}
		return;
	}
	memset(&pong, 0, sizeof(pong));
	memcpy(pong.id, ping.id, sizeof(pong.id));
	snprintf(pong.server_id, sizeof(pong.server_id), "%s", d->server_id);
	snprintf(pong.hostname, sizeof(pong.hostname), "%s", d->hostname);
	pong.port = u->port;
	pong.capabilities = PPCP_EXT_ALL | (d->cfg->accept_agents ? PPCP_EXT_AGENT : 0);
	pong.ts = (int64_t)time(NULL);
	/* PROTOCOL.md §10.2: never larger than the PING. */
	r = ppcp_pong_encode(&pong, out, (size_t)n, &len);
	if (r != 0) {
		pd_debug("discovery: PING from %s ('%s') is %zd bytes, too small for our PONG: no answer",
			 from, cid, n);
		return;
	}
	b = uv_buf_init((char *)out, (unsigned)len);
	r = uv_udp_try_send(h, &b, 1, addr);
	if (r < 0)
		pd_debug("discovery: PONG to %s: %s", from, uv_strerror(r));
	else
		pd_debug("discovery: PONG to %s ('%s'), %zu bytes for a %zd-byte PING", from, cid,
			 len, n);
}

/* ---- multicast groups (wildcard listeners only) ---------------------------- */

static void disco_join(struct pd_udp *u)
{
	uv_interface_address_t *ifs;
	char seen[64][IF_NAMESIZE + 1];
	int n, nseen = 0;

	if (uv_interface_addresses(&ifs, &n) != 0)
		return;
	for (int i = 0; i < n; i++) {
		char iface[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
		int dup = 0, r;

		if (ifs[i].address.address4.sin_family != u->family)
			continue;
		for (int k = 0; k < nseen; k++)
			dup |= strcmp(seen[k], ifs[i].name) == 0;
		if (dup || nseen >= 64)
			continue;
		snprintf(seen[nseen++], IF_NAMESIZE + 1, "%s", ifs[i].name);
		if (u->family == AF_INET) {
			inet_ntop(AF_INET, &ifs[i].address.address4.sin_addr, iface, sizeof(iface));
			r = uv_udp_set_membership(&u->udp, PD_MCAST4, iface, UV_JOIN_GROUP);
		} else {
			/* libuv takes the interface from the zone of the address. */
			snprintf(iface, sizeof(iface), "::%%%s", ifs[i].name);
			r = uv_udp_set_membership(&u->udp, PD_MCAST6, iface, UV_JOIN_GROUP);
		}
		if (r == 0)
			pd_debug("discovery: joined %s on %s", u->family == AF_INET ? PD_MCAST4 : PD_MCAST6,
				 ifs[i].name);
		else if (r != UV_EADDRINUSE)
			pd_debug("discovery: cannot join %s on %s: %s",
				 u->family == AF_INET ? PD_MCAST4 : PD_MCAST6, ifs[i].name,
				 uv_strerror(r));
	}
	uv_free_interface_addresses(ifs, n);
}

static void disco_on_rejoin(uv_timer_t *t)
{
	struct pd_daemon *d = t->data;

	for (struct pd_udp *u = d->disco->socks; u != NULL; u = u->next)
		if (u->wildcard)
			disco_join(u);
}

/* ---- setup and teardown ----------------------------------------------------- */

static void disco_sock_closed(uv_handle_t *h)
{
	free(h->data);
}

int pd_disco_add(struct pd_daemon *d, const struct sockaddr *addr, int wildcard, uint16_t port)
{
	struct pd_disco *ds = d->disco;
	struct pd_udp *u;
	int r;

	if (ds == NULL) {
		ds = d->disco = pd_xcalloc(1, sizeof(*ds));
		ds->global_tokens = GLOBAL_BURST;
		ds->global_last = uv_now(d->loop);
	}
	u = pd_xcalloc(1, sizeof(*u));
	u->d = d;
	u->family = addr->sa_family;
	u->wildcard = wildcard;
	u->port = port;
	pd_addr_str(addr, u->name, sizeof(u->name));
	uv_udp_init(d->loop, &u->udp);
	u->udp.data = u;
	r = uv_udp_bind(&u->udp, addr, addr->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
	if (r == 0)
		r = uv_udp_recv_start(&u->udp, disco_alloc, disco_on_recv);
	if (r != 0) {
		uv_close((uv_handle_t *)&u->udp, disco_sock_closed);
		return r;
	}
	u->next = ds->socks;
	ds->socks = u;
	if (wildcard) {
		disco_join(u);
		if (!ds->rejoin_on) {
			uv_timer_init(d->loop, &ds->rejoin);
			ds->rejoin.data = d;
			uv_timer_start(&ds->rejoin, disco_on_rejoin, REJOIN_MS, REJOIN_MS);
			ds->rejoin_on = 1;
		}
	}
	return 0;
}

void pd_disco_close(struct pd_daemon *d)
{
	struct pd_disco *ds = d->disco;

	if (ds == NULL)
		return;
	while (ds->socks != NULL) {
		struct pd_udp *u = ds->socks;

		ds->socks = u->next;
		uv_close((uv_handle_t *)&u->udp, disco_sock_closed);
	}
	if (ds->rejoin_on) {
		uv_close((uv_handle_t *)&ds->rejoin, NULL);
		ds->rejoin_on = 0;
	}
}

void pd_disco_free(struct pd_daemon *d)
{
	free(d->disco);
	d->disco = NULL;
}
