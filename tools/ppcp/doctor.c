/*
 * doctor.c - `ppcp doctor [TARGET]`: walk the steps from "this machine is on
 * a network" to "the server runs a program for us", and say which one
 * fails, with what to do.  The steps, each printed as one line:
 *
 *   PSK          the PSK file loads (format, mode, owner)
 *   interfaces   where PINGs go: the --discover-addr list, or the
 *                interfaces that are up (broadcast / multicast)
 *   cache        what we remember about TARGET (a name)
 *   PING sent    at least one PING left
 *   PONG back    who answered, from where, by which path
 *   TCP connect  the server's TCP port accepts us
 *   handshake    both sides prove the PSK (refused: wrong PSK or server)
 *   status       COMMAND status, which every server answers
 *   policy       COMMAND exec of `true`: refused means the server's policy,
 *                not the network or the PSK
 *
 * Without TARGET every server that answers is checked (at most 8).  Exit
 * status 0 when every step passed, 255 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"

enum { DOCTOR_MAX_SERVERS = 8 };

static int failures;

static void step(const char *mark, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void step(const char *mark, const char *name, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("[%s]%*s %-12s %s\n", mark, (int)(4 - strlen(mark)), "", name, line);
	fflush(stdout);
	if (strcmp(mark, "FAIL") == 0)
		failures++;
}

static int check_interfaces(const struct cli *cli)
{
	struct ifaddrs *ifa = NULL, *i;
	char list[768] = "";
	size_t used = 0;
	int n = 0;

	if (cli->ndiscover > 0) {
		char where[512];

		disco_describe(cli, where, sizeof(where));
		step("ok", "interfaces", "PINGs go only to %s", where);
		return 0;
	}
	if (getifaddrs(&ifa) != 0) {
		step("FAIL", "interfaces", "cannot list the network interfaces: %s",
		     strerror(errno));
		return -1;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		char a[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];

		if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		if (i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_BROADCAST) &&
		    i->ifa_broadaddr != NULL) {
			char b[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
				  sizeof(a));
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr, b,
				  sizeof(b));
			if (used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used,
							 "%s%s %s (broadcast %s)", n ? ", " : "",
							 i->ifa_name, a, b);
			n++;
		} else if (i->ifa_addr->sa_family == AF_INET6 && (i->ifa_flags & IFF_MULTICAST)) {
			if (getnameinfo(i->ifa_addr, sizeof(struct sockaddr_in6), a, sizeof(a),
					NULL, 0, NI_NUMERICHOST) != 0)
				continue;
			if (used < sizeof(list))
				used += (size_t)snprintf(list + used, sizeof(list) - used,
							 "%s%s %s (multicast)", n ? ", " : "",
							 i->ifa_name, a);
			n++;
		}
	}
	freeifaddrs(ifa);
	if (n == 0) {
		step("FAIL", "interfaces",
		     "no interface is up with an IPv4 broadcast or IPv6 address: connect to the "
		     "network, or use --discover-addr ADDR");
		return -1;
	}
	step("ok", "interfaces", "%s", list);
	return 0;
}

/* Everything from TCP connect on, for one server. */
static void check_server(struct cli *cli, const char *id, const char *address, uint16_t port,
			 const char *path)
{
	struct sess s;
	json_t *p, *reply = NULL;
	const char *v6 = strchr(address, ':');
	int ret;

	memset(&s, 0, sizeof(s));
	s.fd = -1;
	ret = sess_open(&s, cli, address, port, id, CLI_CONNECT_TIMEOUT_MS);
	if (ret < 0) {
		step("FAIL", "TCP connect", "%s%s%s port %u: %s: %s; the server %s but its TCP "
			     "port does not accept us: a firewall, or ppcpd listens elsewhere",
		     v6 ? "[" : "", address, v6 ? "]" : "", (unsigned)port, ppcp_strerror(ret),
		     strerror(errno), path ? "answered the PING" : "is known");
		return;
	}
	step("ok", "TCP connect", "%s%s%s port %u", v6 ? "[" : "", address, v6 ? "]" : "",
	     (unsigned)port);
	ret = sess_handshake(&s);
	if (ret < 0) {
		if (ret == PPCP_ERR_SERVER_AUTH || ret == PPCP_ERR_AUTH_REJECTED ||
		    ret == PPCP_ERR_PEER_ABORTED)
			step("FAIL", "handshake", "refused: %s; our PSK is %s (%s): wrong PSK, or "
						  "a wrong server at that address",
			     ppcp_strerror(ret), cli->psk_path, cli->psk_from);
		else
			step("FAIL", "handshake", "%s; %s", ppcp_strerror(ret), cli_advice(ret));
		sess_free(&s);
		return;
	}
	step("ok", "handshake", "authenticated %s: both sides hold the PSK", s.server_id);
	snprintf(s.path, sizeof(s.path), "%s", path ? path : "cached");
	resolve_success(cli, &s);

	p = json_pack("{s:s,s:{}}", "name", "status", "args");
	ret = sess_command(&s, p, &reply, 10000);
	json_decref(p);
	if (ret < 0) {
		step("FAIL", "status", "%s; %s", ppcp_strerror(ret), cli_advice(ret));
		goto out;
	}
	if (ret == 1) {
		const char *m = json_string_value(json_object_get(reply, "message"));
		step("FAIL", "status", "refused: %s", m ? m : "no reason given");
	} else {
		json_t *st = json_object_get(reply, "status");
		const char *ver = json_string_value(json_object_get(st, "version"));
		step("ok", "status", "%s answers (version %s, up %lld s)", s.server_id,
		     ver ? ver : "?", (long long)json_integer_value(json_object_get(st, "uptime")));
	}
	json_decref(reply);
	reply = NULL;

	p = json_pack("{s:s,s:{s:[s],s:b}}", "name", "exec", "args", "argv", "true", "stdin", 0);
	ret = sess_command(&s, p, &reply, 15000);
	json_decref(p);
	if (ret < 0) {
		step("FAIL", "policy", "exec of 'true': %s; %s", ppcp_strerror(ret),
		     cli_advice(ret));
	} else if (ret == 1) {
		const char *m = json_string_value(json_object_get(reply, "message"));
		const char *c = json_string_value(json_object_get(reply, "code"));
		if (c != NULL && strcmp(c, "unknown-command") == 0)
			step("FAIL", "policy",
			     "the server does not know COMMAND exec: %s; it is a PPCP server but "
			     "not ppcpd, or an older one",
			     m ? m : "no reason given");
		else
			step("FAIL", "policy",
			     "the server refuses exec of 'true': %s (%s); the network and the PSK "
			     "are fine: allow programs on the server (ppcpd --allow-exec)",
			     m ? m : "no reason given", c ? c : "error");
	} else {
		json_t *e = json_object_get(reply, "exit");
		if (json_is_integer(e) && json_integer_value(e) == 0)
			step("ok", "policy", "exec of 'true' allowed and ran (exit 0)");
		else
			step("FAIL", "policy", "exec of 'true' ran but did not exit 0 (exit %s): is "
					       "`true` on the server's PATH?",
			     json_is_integer(e) ? "non-zero" : "none");
	}
	sess_bye(&s);
out:
	json_decref(reply);
	sess_free(&s);
}

int cmd_doctor(struct cli *cli, int argc, char **argv)
{
	const char *target = NULL, *cached[CLI_CACHE_ADDRS], *id = NULL;
	char addr[CLI_ADDR_MAX], where[512];
	struct cache_entry ce;
	struct disco_req req;
	struct found *f;
	size_t n = 0, i, k, checked = 0;
	uint16_t port;
	int i0, lit = 0, r = 0;

	i0 = cli_parse(cli, argc, argv, NULL);
	if (i0 < 0 || argc - i0 > 1)
		return cli_usage(cli, "doctor [TARGET]");
	if (argc - i0 == 1)
		target = argv[i0];
	failures = 0;

	if (cli_load_psk(cli) < 0) {
		step("FAIL", "PSK", "%s (%s) does not load: see the line above", cli->psk_path,
		     cli->psk_from);
		return CLI_EXIT_FAIL;
	}
	step("ok", "PSK", "%s (%s)", cli->psk_path, cli->psk_from);
	if (target != NULL) {
		lit = resolve_literal(target, cli->port, addr, sizeof(addr), &port);
		if (lit < 0) {
			step("FAIL", "target", "'%s' is not a server_id, hostname, IPv4[:PORT] or "
					       "[IPv6]:PORT",
			     target);
			return CLI_EXIT_FAIL;
		}
	}
	if (lit == 1) {
		step("skip", "interfaces", "a literal address: no discovery needed");
		check_server(cli, NULL, addr, port, NULL);
		return failures ? CLI_EXIT_FAIL : 0;
	}
	if (check_interfaces(cli) < 0)
		return CLI_EXIT_FAIL;

	memset(&req, 0, sizeof(req));
	memset(&ce, 0, sizeof(ce));
	if (target != NULL) {
		r = cache_lookup(target, &ce, where, sizeof(where));
		if (r == 1) {
			for (k = 0; k < ce.naddr; k++)
				cached[k] = ce.addr[k];
			req.cached = cached;
			req.ncached = ce.naddr;
			id = ce.server_id;
			step("ok", "cache", "%s last seen at %s%s", ce.server_id,
			     ce.naddr ? ce.addr[0] : "(no address)", ce.naddr > 1 ? " (and older)" : "");
		} else if (r == -2) {
			step("FAIL", "cache", "'%s' is the hostname of several servers: %s; name one "
					      "by its server_id",
			     target, where);
			return CLI_EXIT_FAIL;
		} else {
			step("info", "cache", "nothing remembered about '%s'", target);
			id = target;
		}
	}
	f = calloc(CLI_MAX_FOUND, sizeof(*f));
	if (f == NULL)
		return CLI_EXIT_FAIL;
	req.target = id;
	req.timeout_ms = cli->timeout_ms;
	disco_describe(cli, where, sizeof(where));
	(void)disco_run(cli, &req, f, CLI_MAX_FOUND, &n);
	if (n == 0 && id != NULL) {
		/* Maybe the name is a hostname: ask everyone. */
		req.target = NULL;
		(void)disco_run(cli, &req, f, CLI_MAX_FOUND, &n);
		for (i = k = 0; i < n; i++)
			if (strcmp(f[i].si.pong.hostname, target) == 0)
				f[k++] = f[i];
		n = k;
	}
	if (req.send_failed && n == 0) {
		step("FAIL", "PING sent", "no PING could be sent to %s on UDP port %u: no route? "
					  "(run with -v for the error)",
		     where, (unsigned)cli->port);
		free(f);
		return CLI_EXIT_FAIL;
	}
	step("ok", "PING sent", "to %s%s, UDP port %u%s%s", where,
	     req.ncached ? " and the cached addresses" : "", (unsigned)cli->port,
	     id ? ", target " : "", id ? id : "");
	if (n == 0) {
		step("FAIL", "PONG back",
		     "no answer within %.1f s: is ppcpd running with --port %u? Does a firewall "
		     "drop UDP port %u? If the network drops broadcast, use --discover-addr ADDR "
		     "or `ppcp discover --scan SUBNET/24`",
		     cli->timeout_ms / 1000.0, (unsigned)cli->port, (unsigned)cli->port);
		/* A cached address may still take a TCP connection. */
		if (r == 1 && ce.naddr > 0)
			check_server(cli, ce.server_id, ce.addr[0], ce.port ? ce.port : cli->port,
				     NULL);
		free(f);
		return CLI_EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		char caps[64];

		if (i > 0 && strcmp(f[i].si.pong.server_id, f[i - 1].si.pong.server_id) == 0)
			continue;
		cli_caps_text(f[i].si.pong.capabilities, caps, sizeof(caps));
		step("ok", "PONG back", "%s (%s) from %s, TCP port %u, %.1f ms, by %s", f[i].si.pong.server_id,
		     f[i].si.pong.hostname, f[i].si.address, (unsigned)f[i].si.port,
		     f[i].si.rtt_us / 1000.0, f[i].path);
	}
	for (i = 0; i < n && checked < DOCTOR_MAX_SERVERS; i++) {
		if (i > 0 && strcmp(f[i].si.pong.server_id, f[i - 1].si.pong.server_id) == 0)
			continue;
		printf("-- %s\n", f[i].si.pong.server_id);
		check_server(cli, f[i].si.pong.server_id, f[i].si.address, f[i].si.port,
			     f[i].path);
		checked++;
	}
	free(f);
	if (failures == 0)
		printf("all steps passed\n");
	return failures ? CLI_EXIT_FAIL : 0;
}
