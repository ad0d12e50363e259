/*
 * discover.c - `ppcp discover [--target ID] [--timeout S] [--json]
 * [--scan CIDR]...`: PING (disco.c) and list who answered, one row per
 * server: server_id, hostname, address, port, capabilities, rtt, path.
 *
 * A PONG is a hint, not an identity (PROTOCOL.md §10.2): nothing here is
 * authenticated, so nothing found here goes into the address cache.  With
 * --target only that server answers, and discovery returns at its first
 * PONG (on the unicast path; the broadcast and multicast calls of disco.c
 * run to --timeout).  Exit status 0 when a server answered, 255 when none
 * did (with one line on stderr; --json still prints []).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { DISCOVER_MAX_SCAN = 8 };

struct discover_opts {
	const char *target;
	const char *scan[DISCOVER_MAX_SCAN];
	size_t nscan;
};

static int discover_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct discover_opts *o = user;

	switch (opt) {
	case 't':
		o->target = arg;
		return 0;
	case 'j':
		cli->json = 1;
		return 0;
	case 's':
		if (o->nscan == DISCOVER_MAX_SCAN) {
			cli_err(cli, "--scan: at most %d subnets", DISCOVER_MAX_SCAN);
			return -1;
		}
		o->scan[o->nscan++] = arg;
		return 0;
	}
	return -1;
}

static const struct option discover_longopts[] = {
	{ "target", required_argument, NULL, 't' },
	{ "json", no_argument, NULL, 'j' },
	{ "scan", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};

static void print_json(const struct found *f, size_t n)
{
	json_t *a = json_array();
	char *text;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(
			a, json_pack("{s:s,s:s,s:s,s:i,s:o,s:f,s:s}", "server_id",
				     f[i].si.pong.server_id, "hostname", f[i].si.pong.hostname,
				     "address", f[i].si.address, "port", (int)f[i].si.port,
				     "capabilities", cli_caps_json(f[i].si.pong.capabilities),
				     "rtt_ms", f[i].si.rtt_us / 1000.0, "path", f[i].path));
	text = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text != NULL)
		printf("%s\n", text);
	free(text);
	json_decref(a);
}

static void print_table(const struct found *f, size_t n)
{
	static const char *const head[7] = { "SERVER_ID", "HOSTNAME", "ADDRESS", "PORT",
					     "CAPABILITIES", "RTT", "PATH" };
	char cell[7][128];
	int w[7];
	size_t i, k;

	for (k = 0; k < 7; k++)
		w[k] = (int)strlen(head[k]);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], head[0], w[1],
			       head[1], w[2], head[2], w[3], head[3], w[4], head[4], w[5], head[5],
			       head[6]);
		for (i = 0; i < n; i++) {
			snprintf(cell[0], sizeof(cell[0]), "%s", f[i].si.pong.server_id);
			snprintf(cell[1], sizeof(cell[1]), "%s", f[i].si.pong.hostname);
			snprintf(cell[2], sizeof(cell[2]), "%s", f[i].si.address);
			snprintf(cell[3], sizeof(cell[3]), "%u", (unsigned)f[i].si.port);
			cli_caps_text(f[i].si.pong.capabilities, cell[4], sizeof(cell[4]));
			snprintf(cell[5], sizeof(cell[5]), "%.1fms", f[i].si.rtt_us / 1000.0);
			snprintf(cell[6], sizeof(cell[6]), "%s", f[i].path);
			if (pass == 0) {
				for (k = 0; k < 7; k++)
					if ((int)strlen(cell[k]) > w[k])
						w[k] = (int)strlen(cell[k]);
				continue;
			}
			printf("%-*s  %-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], cell[0], w[1],
			       cell[1], w[2], cell[2], w[3], cell[3], w[4], cell[4], w[5], cell[5],
			       cell[6]);
		}
	}
}

int cmd_discover(struct cli *cli, int argc, char **argv)
{
	static const char synopsis[] =
		"discover [--target ID] [--timeout S] [--json] [--scan CIDR]...";
	struct discover_opts o;
	struct cli_opts co = { "", discover_longopts, discover_opt, NULL, 0 };
	const char *cached[CLI_CACHE_ADDRS];
	struct cache_entry ce;
	struct disco_req req;
	struct found *f;
	size_t n = 0, i, k;
	int ret;

	memset(&o, 0, sizeof(o));
	co.user = &o;
	i = (size_t)cli_parse(cli, argc, argv, &co);
	if ((int)i < 0 || (int)i != argc)
		return cli_usage(cli, synopsis);
	f = calloc(CLI_MAX_FOUND, sizeof(*f));
	if (f == NULL)
		return CLI_EXIT_FAIL;
	memset(&req, 0, sizeof(req));
	req.target = o.target;
	req.scan = o.scan;
	req.nscan = o.nscan;
	req.timeout_ms = cli->timeout_ms;
	if (o.target != NULL && cache_lookup(o.target, &ce, NULL, 0) == 1 &&
	    strcmp(ce.server_id, o.target) == 0) {
		for (k = 0; k < ce.naddr; k++)
			cached[k] = ce.addr[k];
		req.cached = cached;
		req.ncached = ce.naddr;
	}
	ret = disco_run(cli, &req, f, CLI_MAX_FOUND, &n);
	/* One row per server: the first of each is its preferred path. */
	for (i = k = 0; i < n; i++)
		if (k == 0 || strcmp(f[k - 1].si.pong.server_id, f[i].si.pong.server_id) != 0)
			f[k++] = f[i];
	n = k;
	if (cli->json)
		print_json(f, n);
	else if (n > 0)
		print_table(f, n);
	free(f);
	if (ret < 0)
		return CLI_EXIT_FAIL;
	if (n == 0) {
		char where[512];

		disco_describe(cli, where, sizeof(where));
		cli_err(cli, "no server%s%s answered a PING to %s on UDP port %u within %.1f s; "
			     "is ppcpd running, with the same --port?%s",
			o.target ? " " : "", o.target ? o.target : "", where, (unsigned)cli->port,
			cli->timeout_ms / 1000.0,
			cli->ndiscover == 0 && o.nscan == 0 ?
				" If the network drops broadcast, try --scan SUBNET/24" :
				"");
		return CLI_EXIT_FAIL;
	}
	return 0;
}
