/*
 * disco.c - discovery for the CLI on top of the library's ppcp_find_server()
 * (src/io.c), which PINGs one set of addresses and collects PONGs.
 *
 * Where PINGs go (design.md §3, §5):
 *   - with --discover-addr / $PPCP_DISCOVER_ADDR: only those addresses (and
 *     the cached addresses of the server looked for), by unicast;
 *   - without: the library's broadcast (255.255.255.255 and every IPv4
 *     interface's directed broadcast), multicast (ppcpd's groups:
 *     239.255.80.67, and ff02::5050 on every interface that has IPv6), and
 *     the cached addresses by unicast.
 *
 * Normally one ppcp_find_server() call PINGs every destination at once
 * (unicast addresses, and with PPCP_FIND_BROADCAST | PPCP_FIND_MULTICAST the
 * broadcast and multicast ones) and reports the path of each answer, so a
 * targeted search returns at the target's first PONG from any path; an
 * answer from a cached address is then called "cached".  After a failed
 * handshake (per_address) every unicast address gets a call of its own in a
 * thread, since one call keeps one answer per server_id: the next candidate
 * must not hide behind an impostor that answered first.  The TCP scan
 * (scan.c) runs meanwhile in the calling thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

enum { DISCO_MAX_ADDRS = 64 }; /* what one ppcp_find_server call accepts */

struct disco_call {
	const char *kind;                 /* path of its answers; NULL: as reported */
	unsigned flags;                   /* PPCP_FIND_* */
	const char *addrs[DISCO_MAX_ADDRS]; /* NULL list: broadcast */
	size_t naddrs;
	int broadcast;
	const char *target;
	int timeout_ms;
	uint16_t port;
	ppcp_server_info res[CLI_MAX_FOUND];
	size_t n;
	int ret;
	pthread_t th;
	int started;
};

/* Path preference: which answer to use first for one server. */
static int path_rank(const char *path)
{
	static const char *const order[] = { "cached", "unicast", "broadcast", "tcp", "multicast" };
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (strcmp(path, order[i]) == 0)
			return (int)i;
	return 99;
}

/* Canonical numeric text of an address, for comparisons; the input itself
 * when it does not parse. */
static void addr_norm(const char *in, char *out, size_t len)
{
	struct addrinfo hints, *ai = NULL;
	char host[CLI_ADDR_MAX + 2];
	size_t l = strlen(in);

	snprintf(out, len, "%s", in);
	if (l >= 2 && in[0] == '[' && in[l - 1] == ']' && l - 2 < sizeof(host)) {
		memcpy(host, in + 1, l - 2);
		host[l - 2] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", in);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL)
		return;
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, out, (socklen_t)len, NULL, 0,
			NI_NUMERICHOST) != 0)
		snprintf(out, len, "%s", in);
	freeaddrinfo(ai);
}

static int addr_in(const char *addr, const char *const *list, size_t n)
{
	char a[CLI_ADDR_MAX + 8], b[CLI_ADDR_MAX + 8];
	size_t i;

	addr_norm(addr, a, sizeof(a));
	for (i = 0; i < n; i++) {
		addr_norm(list[i], b, sizeof(b));
		if (strcmp(a, b) == 0)
			return 1;
	}
	return 0;
}

static void *disco_thread(void *arg)
{
	struct disco_call *c = arg;
	ppcp_find_options fo;
	sigset_t all;

	/* Signals are for the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	memset(&fo, 0, sizeof(fo));
	fo.addrs = c->broadcast || c->naddrs == 0 ? NULL : c->addrs;
	fo.naddrs = c->broadcast ? 0 : c->naddrs;
	fo.flags = c->flags;
	fo.target = c->target;
	fo.timeout_ms = c->timeout_ms;
	c->ret = ppcp_find_server(c->port, &fo, c->res, CLI_MAX_FOUND, &c->n);
	return NULL;
}

/* The discovery multicast groups ppcpd joins on its wildcard listeners
 * (tools/ppcpd/disco.c): one IPv4 administratively scoped group, sent
 * where the routing table says (the default route's interface), and the
 * IPv6 link-local group on every interface that is up, multicast-capable,
 * not loopback and has an IPv6 address (the scope names the interface). */
#define DISCO_MCAST4 "239.255.80.67"
#define DISCO_MCAST6 "ff02::5050"

static size_t multicast_addrs(char out[][CLI_ADDR_MAX], size_t max)
{
	struct ifaddrs *ifa = NULL, *i;
	size_t n = 0, k;

	if (max == 0)
		return 0;
	snprintf(out[n++], CLI_ADDR_MAX, "%s", DISCO_MCAST4);
	if (getifaddrs(&ifa) != 0)
		return n;
	for (i = ifa; i != NULL && n < max; i = i->ifa_next) {
		char a[CLI_ADDR_MAX];
		int dup = 0;

		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET6 ||
		    !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_MULTICAST) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		snprintf(a, sizeof(a), "%s%%%s", DISCO_MCAST6, i->ifa_name);
		for (k = 0; k < n; k++)
			if (strcmp(out[k], a) == 0)
				dup = 1;
		if (!dup)
			snprintf(out[n++], CLI_ADDR_MAX, "%s", a);
	}
	freeifaddrs(ifa);
	return n;
}

void disco_describe(const struct cli *cli, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	if (cli->ndiscover > 0) {
		for (i = 0; i < cli->ndiscover && used < len; i++)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
						 cli->discover[i]);
		if (used < len)
			snprintf(buf + used, len - used, " (from %s)", cli->discover_from);
	} else {
		snprintf(buf, len, "broadcast and multicast on every interface");
	}
}

static void add_found(struct found *out, size_t max, size_t *n, const ppcp_server_info *si,
		      const char *path)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(out[i].si.pong.server_id, si->pong.server_id) == 0 &&
		    strcmp(out[i].si.address, si->address) == 0) {
			if (path_rank(path) < path_rank(out[i].path))
				snprintf(out[i].path, sizeof(out[i].path), "%s", path);
			return;
		}
	}
	if (*n == max)
		return;
	out[*n].si = *si;
	snprintf(out[*n].path, sizeof(out[*n].path), "%s", path);
	(*n)++;
}

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;
	int r = strcmp(x->si.pong.server_id, y->si.pong.server_id);

	if (r != 0)
		return r;
	return path_rank(x->path) - path_rank(y->path);
}

int disco_run(const struct cli *cli, struct disco_req *req, struct found *out, size_t max,
	      size_t *n)
{
	struct disco_call *calls[DISCO_MAX_ADDRS + 2] = { NULL };
	char mc[16][CLI_ADDR_MAX];
	size_t nmc = 0, i, k, nc = 0;
	int ret = 0;

	*n = 0;
	if (!req->per_address) {
		/* Everything in one call (one poll): the first answer of the
		 * target ends the search, whatever path it came by. */
		struct disco_call *c = calloc(1, sizeof(*c));
		if (c == NULL)
			goto nomem;
		for (i = 0; i < cli->ndiscover && c->naddrs < DISCO_MAX_ADDRS; i++)
			c->addrs[c->naddrs++] = cli->discover[i];
		for (i = 0; i < req->ncached && c->naddrs < DISCO_MAX_ADDRS; i++)
			if (!addr_in(req->cached[i], c->addrs, c->naddrs))
				c->addrs[c->naddrs++] = req->cached[i];
		if (cli->ndiscover == 0)
			c->flags = PPCP_FIND_BROADCAST | PPCP_FIND_MULTICAST;
		calls[nc++] = c;
		goto start;
	}
	if (cli->ndiscover > 0 || req->ncached > 0) {
		struct disco_call *c = calloc(1, sizeof(*c));
		if (c == NULL)
			goto nomem;
		c->kind = cli->ndiscover > 0 ? "unicast" : "multicast";
		for (i = 0; i < cli->ndiscover && c->naddrs < DISCO_MAX_ADDRS; i++)
			c->addrs[c->naddrs++] = cli->discover[i];
		for (i = 0; i < req->ncached && c->naddrs < DISCO_MAX_ADDRS; i++)
			if (!addr_in(req->cached[i], c->addrs, c->naddrs))
				c->addrs[c->naddrs++] = req->cached[i];
		calls[nc++] = c;
	}
	if (cli->ndiscover == 0) {
		/* Default: broadcast in one call, link-local multicast (with
		 * the cached addresses) in the other. */
		struct disco_call *c = calloc(1, sizeof(*c));
		if (c == NULL)
			goto nomem;
		c->kind = "broadcast";
		c->broadcast = 1;
		calls[nc++] = c;
		nmc = multicast_addrs(mc, sizeof(mc) / sizeof(mc[0]));
		if (nmc > 0 && nc == 1) {
			c = calloc(1, sizeof(*c));
			if (c == NULL)
				goto nomem;
			c->kind = "multicast";
			calls[nc++] = c;
		}
		for (i = 0; i < nc; i++)
			if (strcmp(calls[i]->kind, "multicast") == 0)
				for (k = 0; k < nmc && calls[i]->naddrs < DISCO_MAX_ADDRS; k++)
					calls[i]->addrs[calls[i]->naddrs++] = mc[k];
	}
	if (req->per_address) {
		/* One call per unicast address, so that every address's
		 * answer is kept (ppcp_find_server keeps one per server_id):
		 * after a failed handshake, the next candidate. */
		size_t nc0 = nc;

		for (i = 0; i < nc0; i++) {
			struct disco_call *c = calls[i];

			while (c->naddrs > 1 && nc < sizeof(calls) / sizeof(calls[0])) {
				struct disco_call *d = calloc(1, sizeof(*d));
				if (d == NULL)
					goto nomem;
				d->kind = c->kind;
				d->addrs[0] = c->addrs[--c->naddrs];
				d->naddrs = 1;
				calls[nc++] = d;
			}
		}
	}
start:
	for (i = 0; i < nc; i++) {
		struct disco_call *c = calls[i];

		if (!c->broadcast && c->naddrs == 0 && c->flags == 0) {
			c->ret = PPCP_ERR_NOT_FOUND;
			continue;
		}
		c->port = cli->port;
		c->target = req->target;
		c->timeout_ms = req->timeout_ms;
		if (pthread_create(&c->th, NULL, disco_thread, c) != 0) {
			cli_err(cli, "discovery: cannot start a thread: %s", strerror(errno));
			ret = -1;
			goto out;
		}
		c->started = 1;
	}
	for (i = 0; i < req->nscan; i++)
		if (scan_run(cli, req->scan[i], req->target, req->timeout_ms, out, max, n) < 0)
			ret = -1;
out:
	for (i = 0; i < nc; i++) {
		struct disco_call *c = calls[i];

		if (!c->started)
			continue;
		pthread_join(c->th, NULL);
		c->started = 0;
		if (c->ret == PPCP_ERR_IO)
			req->send_failed = 1;
		if (c->ret < 0 && c->ret != PPCP_ERR_NOT_FOUND) {
			/* Not fatal while another path may answer. */
			if (c->ret == PPCP_ERR_ADDR)
				cli_err(cli, "discovery: an address to PING is not a numeric IPv4 or "
					     "IPv6 address: check --discover-addr / "
					     "$PPCP_DISCOVER_ADDR");
			else
				cli_info(cli, 1, "discovery by %s: %s",
					 c->kind != NULL ? c->kind : "PING", ppcp_strerror(c->ret));
			if (c->ret == PPCP_ERR_ADDR)
				ret = -1;
			continue;
		}
		for (k = 0; k < c->n; k++) {
			const char *path = c->kind != NULL ? c->kind : c->res[k].path;

			if (req->ncached > 0 && addr_in(c->res[k].address, req->cached, req->ncached) &&
			    !(cli->ndiscover > 0 &&
			      addr_in(c->res[k].address, (const char *const *)cli->discover,
				      cli->ndiscover)))
				path = "cached";
			add_found(out, max, n, &c->res[k], path);
		}
	}
	for (i = 0; i < nc; i++)
		free(calls[i]);
	if (req->target != NULL) {
		/* A targeted PING may still draw other answers (a server that
		 * ignores "target"); keep only the target's. */
		for (i = k = 0; i < *n; i++)
			if (strcmp(out[i].si.pong.server_id, req->target) == 0)
				out[k++] = out[i];
		*n = k;
	}
	qsort(out, *n, sizeof(*out), found_cmp);
	return ret;
nomem:
	cli_err(cli, "out of memory");
	for (i = 0; i < nc; i++)
		free(calls[i]);
	return -1;
}

void cli_caps_text(uint32_t caps, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", (caps & PPCP_EXT_KEY_UPDATE) ? "key-update" : "",
		 (caps & PPCP_EXT_KEY_UPDATE) && (caps & PPCP_EXT_BINARY_DATA) ? "," : "",
		 (caps & PPCP_EXT_BINARY_DATA) ? "binary-data" : "");
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
}

json_t *cli_caps_json(uint32_t caps)
{
	json_t *a = json_array();

	if (caps & PPCP_EXT_KEY_UPDATE)
		json_array_append_new(a, json_string("key-update"));
	if (caps & PPCP_EXT_BINARY_DATA)
		json_array_append_new(a, json_string("binary-data"));
	return a;
}
