/*
 * resolve.c - from a TARGET on the command line to an authenticated session
 * (design.md §5: server_id | hostname | IPv4[:PORT] | [IPv6]:PORT).
 *
 * A literal address is connected to directly, accepting any server that
 * holds the PSK.  A name goes through, in order, until a handshake succeeds:
 *
 *   1. the cache (cache.c): the server_id's last addresses (or, when the
 *      name is a hostname the cache knows, that server's), connected to
 *      directly; the handshake expects the server_id, so a stale address
 *      now held by another server is simply passed over;
 *   2. a targeted PING (target = the server_id) to the discovery addresses
 *      and, by unicast, the cached addresses; the answers are tried in
 *      order of path (disco.c), each handshake again expecting the id, so
 *      a spoofed PONG costs a failed handshake, not a wrong server; after
 *      such a failure each unicast address is asked on its own, so an
 *      impostor that answered first does not hide the real server (the
 *      library keeps one answer per server_id and PING);
 *   3. an untargeted PING, matching the name against the PONGs' hostnames;
 *      two servers with that hostname are an error that lists their ids.
 *
 * Every success updates the cache.  Nothing is printed on the way unless
 * -v: a server that moved is found again silently.  A failure prints one
 * line: the most telling error met (a refused handshake says more than a
 * refused connection, which says more than silence), and what to do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

enum { RESOLVE_CACHED_CONNECT_MS = 1500 };

/* What went wrong so far, the most telling first. */
struct attempt {
	int err;
	int saved_errno;
	char address[CLI_ADDR_MAX];
	uint16_t port;
	char path[16];
	int tried;
};

static int err_rank(int err)
{
	switch (err) {
	case 0:
		return 0;
	case PPCP_ERR_CONNECT:
	case PPCP_ERR_IO:
		return 2;
	case PPCP_ERR_WRONG_SERVER:
		return 1; /* an old address now used by another server: expected */
	default:
		return 3; /* handshake failures: the PSK, a timeout, ... */
	}
}

static void note(struct attempt *a, int err, int saved_errno, const char *address, uint16_t port,
		 const char *path)
{
	a->tried++;
	if (err_rank(err) <= err_rank(a->err))
		return;
	a->err = err;
	a->saved_errno = saved_errno;
	snprintf(a->address, sizeof(a->address), "%s", address);
	a->port = port;
	snprintf(a->path, sizeof(a->path), "%s", path);
}

int resolve_literal(const char *target, uint16_t defport, char *addr, size_t alen, uint16_t *port)
{
	const char *colon, *host = target, *portstr = NULL;
	char buf[CLI_ADDR_MAX];
	struct addrinfo hints, *ai = NULL;
	size_t hlen;
	int colons = 0, family = AF_INET;

	for (colon = target; *colon != '\0'; colon++)
		colons += *colon == ':';
	if (target[0] == '[') {
		const char *close = strchr(target, ']');

		if (close == NULL)
			return -1;
		host = target + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			portstr = close + 2;
		else if (close[1] != '\0')
			return -1;
		family = AF_INET6;
	} else if (colons >= 2) {
		hlen = strlen(target); /* a bare IPv6 address: no port */
		family = AF_INET6;
	} else if (colons == 1) {
		colon = strchr(target, ':');
		hlen = (size_t)(colon - target);
		portstr = colon + 1;
	} else {
		struct in_addr a4;

		if (inet_pton(AF_INET, target, &a4) != 1)
			return 0; /* a name */
		hlen = strlen(target);
	}
	if (hlen == 0 || hlen >= sizeof(buf) || hlen >= alen)
		return -1;
	memcpy(buf, host, hlen);
	buf[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(buf, NULL, &hints, &ai) != 0 || ai == NULL)
		return -1;
	freeaddrinfo(ai);
	*port = defport;
	if (portstr != NULL) {
		char *end;
		long p = strtol(portstr, &end, 10);

		if (end == portstr || *end != '\0' || p < 1 || p > 65535)
			return -1;
		*port = (uint16_t)p;
	}
	snprintf(addr, alen, "%s", buf);
	return 1;
}

static int valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > PPCP_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* One connection and handshake; 0 with s established, or the error (s
 * freed). */
static int try_one(struct cli *cli, struct sess *s, const char *address, uint16_t port,
		   const char *expect, const char *path, const char *hostname, int connect_ms,
		   struct attempt *a)
{
	int ret, saved;

	cli_info(cli, 2, "trying %s%s%s:%u (%s)%s%s", strchr(address, ':') ? "[" : "", address,
		 strchr(address, ':') ? "]" : "", (unsigned)port, path, expect ? " expecting " : "",
		 expect ? expect : "");
	ret = sess_open(s, cli, address, port, expect, connect_ms);
	if (ret == 0)
		ret = sess_handshake(s);
	if (ret == 0) {
		snprintf(s->path, sizeof(s->path), "%s", path);
		snprintf(s->hostname, sizeof(s->hostname), "%s", hostname ? hostname : "");
		return 0;
	}
	saved = errno;
	cli_info(cli, 1, "%s:%u (%s): %s", address, (unsigned)port, path, ppcp_strerror(ret));
	sess_free(s);
	note(a, ret, saved, address, port, path);
	return ret;
}

static void report(struct cli *cli, const char *target, const struct attempt *a)
{
	char where[512], hp[CLI_ADDR_MAX + 16];
	const char *v6 = strchr(a->address, ':');

	snprintf(hp, sizeof(hp), "%s%s%s:%u", v6 ? "[" : "", a->address, v6 ? "]" : "",
		 (unsigned)a->port);
	switch (a->err) {
	case 0:
	case PPCP_ERR_WRONG_SERVER:
		disco_describe(cli, where, sizeof(where));
		cli_err(cli, "cannot find '%s': no server answered a PING to %s on UDP port "
				     "%u within %.1f s; is ppcpd running there with --port %u, or "
				     "does the network drop broadcast (try --discover-addr ADDR)? "
				     "`ppcp doctor %s` shows which step fails",
				target, where, (unsigned)cli->port, cli->timeout_ms / 1000.0,
				(unsigned)cli->port, target);
		break;
	case PPCP_ERR_CONNECT:
	case PPCP_ERR_IO:
		cli_err(cli, "cannot connect to '%s' at %s (%s): %s; is ppcpd running there, and "
			     "is its TCP port open?",
			target, hp, a->path, a->saved_errno ? strerror(a->saved_errno) : "failed");
		break;
	case PPCP_ERR_SERVER_AUTH:
	case PPCP_ERR_AUTH_REJECTED:
	case PPCP_ERR_PEER_ABORTED:
		cli_err(cli, "handshake with '%s' at %s failed: %s; the PSK in %s (%s) is not the "
			     "server's: use the same PSK file as the server",
			target, hp, ppcp_strerror(a->err), cli->psk_path, cli->psk_from);
		break;
	default:
		cli_err(cli, "handshake with '%s' at %s failed: %s; %s", target, hp,
			ppcp_strerror(a->err), cli_advice(a->err));
		break;
	}
}

void resolve_success(struct cli *cli, struct sess *s)
{
	struct cache_entry ce;
	int moved = 0;

	if (cache_lookup(s->server_id, &ce, NULL, 0) == 1 && ce.naddr > 0 &&
	    strcmp(ce.addr[0], s->address) != 0 && strcmp(s->path, "direct") != 0)
		moved = 1;
	if (moved)
		cli_info(cli, 1, "%s moved: was at %s, found at %s (%s)", s->server_id, ce.addr[0],
			 s->address, s->path);
	else
		cli_info(cli, 1, "connected to %s at %s port %u (%s)", s->server_id, s->address,
			 (unsigned)s->port, s->path);
	cache_remember(cli, s->server_id, s->hostname, s->address, s->port);
}

/* Try the discovered candidates of server_id in order. */
static int try_found(struct cli *cli, struct sess *s, const struct found *f, size_t n,
		     const char *id, struct attempt *a)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(f[i].si.pong.server_id, id) != 0)
			continue;
		if (try_one(cli, s, f[i].si.address, f[i].si.port, id, f[i].path,
			    f[i].si.pong.hostname, CLI_CONNECT_TIMEOUT_MS, a) == 0)
			return 0;
	}
	return -1;
}

int resolve_connect(struct cli *cli, const char *target, struct sess *s)
{
	char addr[CLI_ADDR_MAX], amb[512];
	const char *cached[CLI_CACHE_ADDRS], *id;
	struct cache_entry ce;
	struct attempt a;
	struct disco_req req;
	struct found *f = NULL;
	size_t n = 0, i;
	uint16_t port;
	int lit, r, ret = CLI_EXIT_FAIL;

	memset(&a, 0, sizeof(a));
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (cli_load_psk(cli) < 0)
		return CLI_EXIT_FAIL;
	lit = resolve_literal(target, cli->port, addr, sizeof(addr), &port);
	if (lit < 0 || (lit == 0 && !valid_name(target))) {
		cli_err(cli, "'%s' is not a server_id, hostname, IPv4[:PORT] or [IPv6]:PORT", target);
		return CLI_EXIT_FAIL;
	}
	if (lit == 1) {
		if (try_one(cli, s, addr, port, NULL, "direct", NULL, CLI_CONNECT_TIMEOUT_MS, &a) ==
		    0) {
			resolve_success(cli, s);
			return 0;
		}
		report(cli, target, &a);
		return CLI_EXIT_FAIL;
	}

	/* 1. The cache. */
	memset(&ce, 0, sizeof(ce));
	r = cache_lookup(target, &ce, amb, sizeof(amb));
	if (r == -2) {
		cli_err(cli, "'%s' is the hostname of several servers: %s; name one by its "
			     "server_id",
			target, amb);
		return CLI_EXIT_FAIL;
	}
	id = r == 1 ? ce.server_id : target;
	for (i = 0; r == 1 && i < ce.naddr; i++) {
		cached[i] = ce.addr[i];
		if (try_one(cli, s, ce.addr[i], ce.port ? ce.port : cli->port, id, "cached",
			    ce.hostname, RESOLVE_CACHED_CONNECT_MS, &a) == 0) {
			resolve_success(cli, s);
			return 0;
		}
	}

	f = calloc(CLI_MAX_FOUND, sizeof(*f));
	if (f == NULL) {
		cli_err(cli, "out of memory");
		return CLI_EXIT_FAIL;
	}
	/* 2. A targeted PING. */
	memset(&req, 0, sizeof(req));
	req.target = id;
	req.cached = cached;
	req.ncached = r == 1 ? ce.naddr : 0;
	req.timeout_ms = cli->timeout_ms;
	if (disco_run(cli, &req, f, CLI_MAX_FOUND, &n) < 0)
		goto out;
	if (try_found(cli, s, f, n, id, &a) == 0)
		goto ok;
	if (a.tried > 0 && err_rank(a.err) == 3) {
		/* Something answered for id but failed the handshake: maybe
		 * an impostor that answered first (a PONG is only a hint).
		 * Ask each unicast address on its own and try the others. */
		struct found *g = calloc(CLI_MAX_FOUND, sizeof(*g));
		size_t ng = 0, j, m = 0;

		if (g != NULL) {
			req.per_address = 1;
			if (disco_run(cli, &req, g, CLI_MAX_FOUND, &ng) == 0) {
				for (i = 0; i < ng; i++) {
					for (j = 0; j < n; j++)
						if (strcmp(f[j].si.address, g[i].si.address) == 0)
							break;
					if (j == n)
						g[m++] = g[i];
				}
				if (try_found(cli, s, g, m, id, &a) == 0) {
					free(g);
					goto ok;
				}
			}
			req.per_address = 0;
			free(g);
		}
	}

	/* 3. The name as a hostname. */
	req.target = NULL;
	if (disco_run(cli, &req, f, CLI_MAX_FOUND, &n) < 0)
		goto out;
	{
		char ids[512] = "";
		const char *match = NULL;
		size_t nmatch = 0, used = 0;

		for (i = 0; i < n; i++) {
			if (strcmp(f[i].si.pong.hostname, target) != 0 &&
			    strcmp(f[i].si.pong.server_id, target) != 0)
				continue;
			if (match != NULL && strcmp(match, f[i].si.pong.server_id) == 0)
				continue;
			if (match == NULL || strstr(ids, f[i].si.pong.server_id) == NULL) {
				if (used < sizeof(ids))
					used += (size_t)snprintf(ids + used, sizeof(ids) - used,
								 "%s%s", nmatch ? ", " : "",
								 f[i].si.pong.server_id);
				nmatch++;
			}
			if (match == NULL)
				match = f[i].si.pong.server_id;
		}
		if (nmatch > 1) {
			cli_err(cli, "'%s' is the hostname of several servers: %s; name one by its "
				     "server_id",
				target, ids);
			goto out;
		}
		if (match != NULL) {
			char mid[PPCP_ID_MAX + 1];

			snprintf(mid, sizeof(mid), "%s", match);
			if (try_found(cli, s, f, n, mid, &a) == 0)
				goto ok;
		}
		report(cli, target, &a);
	}
	goto out;
ok:
	resolve_success(cli, s);
	ret = 0;
out:
	free(f);
	return ret;
}
