/*
 * ppcp.c - the ppcp command: the subcommand table (as in wireguard-tools'
 * wg.c), the common options and the helpers every subcommand uses to talk
 * to the user.
 *
 * Options may come before or after the subcommand's operands, except for
 * exec, whose operands after TARGET belong to the remote program.  The
 * common options are parsed here, together with each subcommand's own, so
 * `ppcp --psk-file F exec ID -- cmd` and `ppcp exec --psk-file F ID -- cmd`
 * mean the same.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_signal;

static const struct {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "keygen", cmd_keygen, "write a new PSK file (never overwrites)" },
	{ "discover", cmd_discover, "list the servers that answer a discovery PING" },
	{ "exec", cmd_exec, "run a program on a server (or --all), streaming its output" },
	{ "sh", cmd_sh, "run a shell command line on a server" },
	{ "get", cmd_get, "download a file (-r: a directory), resuming a partial copy" },
	{ "put", cmd_put, "upload a file (-r: a directory) where the server allows it" },
	{ "ping", cmd_ping, "HEARTBEAT round trips to a server" },
	{ "status", cmd_status, "show a server's status" },
	{ "doctor", cmd_doctor, "say which step of finding and using a server fails" },
	{ "agent", cmd_agent, "find a controller, stay connected, run what it asks under a local policy" },
	{ "agents", cmd_agents, "on a controller: list the connected agents (exec @ID, @all)" },
};

static void show_usage(FILE *f, const char *prog)
{
	size_t i;

	fprintf(f, "usage: %s [COMMON OPTIONS] COMMAND [ARGS]\n\ncommands:\n", prog);
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-9s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "\ncommon options:\n"
		   "  --psk-file FILE      PSK file (else $PPCP_PSK_FILE, else ~/.config/ppcp/psk)\n"
		   "  --port N             UDP and TCP port of the servers (default 9000)\n"
		   "  --discover-addr ADDR send PINGs only to ADDR (repeatable; else\n"
		   "                       $PPCP_DISCOVER_ADDR, comma-separated; else broadcast)\n"
		   "  --timeout S          how long discovery waits for answers (default 1)\n"
		   "  -v, --verbose        say more (twice: even more)\n"
		   "  -q, --quiet          say only errors\n"
		   "\nTARGET is a server_id, a hostname, IPv4[:PORT] or [IPv6]:PORT.\n"
		   "See ppcp(1).\n");
}

/* ---- messages ------------------------------------------------------------ */

static void cli_vprint(const struct cli *cli, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* One write, so lines of parallel sessions never interleave. */
	fprintf(stderr, "%s: %s\n", cli->prog, line);
}

void cli_err(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vprint(cli, fmt, ap);
	va_end(ap);
}

void cli_warn(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	if (cli->verbose < 0)
		return;
	va_start(ap, fmt);
	cli_vprint(cli, fmt, ap);
	va_end(ap);
}

void cli_info(const struct cli *cli, int level, const char *fmt, ...)
{
	va_list ap;

	if (cli->verbose < level)
		return;
	va_start(ap, fmt);
	cli_vprint(cli, fmt, ap);
	va_end(ap);
}

int cli_usage(const struct cli *cli, const char *synopsis)
{
	fprintf(stderr, "usage: %s %s\n(see %s --help or ppcp(1))\n", cli->prog, synopsis,
		cli->prog);
	return CLI_EXIT_FAIL;
}

const char *cli_advice(int err)
{
	switch (err) {
	case PPCP_ERR_IO:
		return "check this machine's network, then run the command again; `ppcp doctor` "
		       "shows which step fails";
	case PPCP_ERR_SERVER_AUTH:
		return "the server does not hold our PSK (wrong PSK file?), or it is not a PPCP "
		       "server: check that --psk-file / $PPCP_PSK_FILE is the file the server uses";
	case PPCP_ERR_AUTH_REJECTED:
	case PPCP_ERR_PEER_ABORTED:
		return "the server refused our PSK: use the same PSK file as the server";
	case PPCP_ERR_WRONG_SERVER:
		return "another server holding the same PSK answered at that address";
	case PPCP_ERR_CONNECT:
		return "is ppcpd running there, and is its TCP port open?";
	case PPCP_ERR_HANDSHAKE_TIMEOUT:
		return "the server did not finish the handshake in time: is it overloaded, or "
		       "is something else listening on that port?";
	case PPCP_ERR_TRUNCATED:
		return "the connection was cut without a goodbye: the server restarted or the "
		       "network failed; run the command again";
	case PPCP_ERR_TIMEOUT:
		return "the server stopped answering: check the network, then run it again";
	case PPCP_ERR_CLOSED:
		return "the server ended the session (it may be shutting down)";
	case PPCP_ERR_BAD_MESSAGE:
	case PPCP_ERR_UNEXPECTED:
		return "the server broke the protocol (a bug in the server, or not a PPCP server "
		       "there): report it";
	default:
		break;
	}
	return "run `ppcp doctor` to see which step fails";
}

/* ---- time and numbers ------------------------------------------------------ */

uint64_t cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cli_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cli_parse_seconds(const char *s, double max_s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > max_s)
		return -1;
	if (v * 1000.0 < 1.0)
		return 1;
	return (int)(v * 1000.0);
}

static void on_signal(int sig)
{
	cli_signal = sig;
}

void cli_signals_catch(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- options --------------------------------------------------------------- */

enum {
	OPT_PSK_FILE = 0x1000,
	OPT_PORT,
	OPT_DISCOVER_ADDR,
	OPT_TIMEOUT,
	OPT_HELP,
};

static const struct option common_longopts[] = {
	{ "psk-file", required_argument, NULL, OPT_PSK_FILE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "discover-addr", required_argument, NULL, OPT_DISCOVER_ADDR },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, OPT_HELP },
};
enum { NCOMMON = sizeof(common_longopts) / sizeof(common_longopts[0]) };

static int add_discover(struct cli *cli, const char *list)
{
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		char *item;

		if (len > 0) {
			if (cli->ndiscover == CLI_MAX_DISCOVER) {
				cli_err(cli, "too many discovery addresses (at most %d)",
					CLI_MAX_DISCOVER);
				return -1;
			}
			item = strndup(p, len);
			if (item == NULL) {
				cli_err(cli, "out of memory");
				return -1;
			}
			cli->discover[cli->ndiscover++] = item;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int cli_parse(struct cli *cli, int argc, char **argv, const struct cli_opts *own)
{
	struct option opts[NCOMMON + 16];
	char shortopts[64];
	size_t n = 0, i;
	const char *env;
	int c;

	memcpy(opts, common_longopts, sizeof(common_longopts));
	n = NCOMMON;
	if (own != NULL && own->longopts != NULL)
		for (i = 0; own->longopts[i].name != NULL && n < NCOMMON + 15; i++)
			opts[n++] = own->longopts[i];
	memset(&opts[n], 0, sizeof(opts[n]));
	snprintf(shortopts, sizeof(shortopts), "%s%svq",
		 own != NULL && own->stop_at_operand ? "+" : "",
		 own != NULL && own->shortopts != NULL ? own->shortopts : "");

	optind = 0; /* glibc: a full re-initialisation (exec parses twice) */
	opterr = 1;
	while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (c) {
		case OPT_PSK_FILE:
			if (strlen(optarg) >= sizeof(cli->psk_path)) {
				cli_err(cli, "--psk-file: path too long");
				return -1;
			}
			snprintf(cli->psk_path, sizeof(cli->psk_path), "%s", optarg);
			cli->psk_from = "--psk-file";
			break;
		case OPT_PORT: {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || v < 1 || v > 65535) {
				cli_err(cli, "--port: '%s' is not a port number (1-65535)", optarg);
				return -1;
			}
			cli->port = (uint16_t)v;
			break;
		}
		case OPT_DISCOVER_ADDR:
			if (add_discover(cli, optarg) < 0)
				return -1;
			cli->discover_from = "--discover-addr";
			break;
		case OPT_TIMEOUT:
			cli->timeout_ms = cli_parse_seconds(optarg, 3600);
			if (cli->timeout_ms < 0) {
				cli_err(cli, "--timeout: '%s' is not a number of seconds (0-3600]",
					optarg);
				return -1;
			}
			cli->timeout_set = 1;
			break;
		case 'v':
			if (cli->verbose >= 0)
				cli->verbose++;
			break;
		case 'q':
			cli->verbose = -1;
			break;
		case OPT_HELP:
			show_usage(stdout, cli->prog);
			exit(0);
		case '?':
			return -1;
		default:
			if (own == NULL || own->handle == NULL ||
			    own->handle(cli, c, optarg, own->user) < 0)
				return -1;
			break;
		}
	}

	/* Defaults, in the order of design.md §5. */
	if (cli->psk_path[0] == '\0') {
		env = getenv("PPCP_PSK_FILE");
		if (env != NULL && env[0] != '\0') {
			snprintf(cli->psk_path, sizeof(cli->psk_path), "%s", env);
			cli->psk_from = "$PPCP_PSK_FILE";
		} else {
			env = getenv("HOME");
			snprintf(cli->psk_path, sizeof(cli->psk_path), "%s/.config/ppcp/psk",
				 env != NULL && env[0] != '\0' ? env : ".");
			cli->psk_from = "the default";
		}
	}
	if (cli->ndiscover == 0) {
		env = getenv("PPCP_DISCOVER_ADDR");
		if (env != NULL && env[0] != '\0') {
			if (add_discover(cli, env) < 0)
				return -1;
			cli->discover_from = "$PPCP_DISCOVER_ADDR";
		}
	}
	/* The library reads $PPCP_DISCOVER_ADDR when it is given no address;
	 * we always decide ourselves (cli->discover), so it must not. */
	unsetenv("PPCP_DISCOVER_ADDR");
	if (!cli->timeout_set)
		cli->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	return optind;
}

int cli_load_psk(struct cli *cli)
{
	int ret;

	if (cli->have_psk)
		return 0;
	ret = ppcp_psk_load(cli->psk_path, cli->psk);
	if (ret < 0) {
		int e = errno;

		if (ret == PPCP_ERR_PSK_OPEN && (e == ENOENT || e == ENOTDIR))
			cli_err(cli, "cannot read the PSK file %s (%s): %s; make one with `ppcp "
				     "keygen FILE` and pass --psk-file FILE or set PPCP_PSK_FILE",
				cli->psk_path, cli->psk_from, strerror(e));
		else if (ret == PPCP_ERR_PSK_OPEN && (e == EACCES || e == EPERM))
			cli_err(cli, "cannot read the PSK file %s (%s): %s; run ppcp as the user who "
				     "owns it, or pass --psk-file with a PSK file of your own",
				cli->psk_path, cli->psk_from, strerror(e));
		else if (ret == PPCP_ERR_PSK_OPEN)
			cli_err(cli, "cannot read the PSK file %s (%s): %s; fix that, then run the "
				     "command again",
				cli->psk_path, cli->psk_from, strerror(e));
		else
			cli_err(cli, "PSK file %s: %s", cli->psk_path, ppcp_strerror(ret));
		return -1;
	}
	cli->have_psk = 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli;
	const char *name;
	size_t i;
	int ret;

	/* Before anything uses OpenSSL (ppcp.h says why). */
	if (ppcp_crypto_wipe_freed() != 0)
		fprintf(stderr, "ppcp: warning: OpenSSL's freed memory will not be wiped\n");
	/* No core file with the PSK or the session keys in it (T47; pipe core
	 * handlers such as systemd-coredump honour the limit too).  Unlike
	 * ppcpd, the process stays dumpable otherwise: its user can still
	 * trace it, and could read the PSK file anyway. */
	struct rlimit nocore = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &nocore) != 0)
		fprintf(stderr, "ppcp: warning: cannot disable core dumps: %s\n", strerror(errno));
	memset(&cli, 0, sizeof(cli));
	cli.prog = "ppcp";
	cli.port = PPCP_DEFAULT_PORT;
	ppcp_hostname_ident(cli.client_id);

	/* Common options may precede the subcommand: skip over them to find
	 * it, then hand the whole list to the subcommand's parser. */
	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i];
		size_t k;
		int takes_arg = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
			show_usage(stdout, cli.prog);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("ppcp %s\n", PPCP_VERSION_STRING);
			return 0;
		}
		if (a[0] != '-')
			break;
		for (k = 0; k < NCOMMON; k++) {
			size_t l = strlen(common_longopts[k].name);
			if (strncmp(a + 2, common_longopts[k].name, l) == 0 && a[2 + l] == '\0' &&
			    common_longopts[k].has_arg == required_argument)
				takes_arg = 1;
		}
		if (takes_arg)
			i++;
	}
	if (i >= (size_t)argc) {
		show_usage(stderr, cli.prog);
		return CLI_EXIT_FAIL;
	}
	name = argv[i];
	for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++) {
		if (strcmp(name, subcommands[k].name) != 0)
			continue;
		/* Move the subcommand to the front: argv[i] becomes argv[0]
		 * of the subcommand, the options before it follow it. */
		char *sub = argv[i];
		memmove(&argv[2], &argv[1], (i - 1) * sizeof(char *));
		argv[1] = sub;
		cli.sub = sub;
		ret = subcommands[k].fn(&cli, argc - 1, argv + 1);
		for (size_t d = 0; d < cli.ndiscover; d++)
			free(cli.discover[d]);
		ppcp_wipe(cli.psk, sizeof(cli.psk));
		fflush(stdout);
		return ret;
	}
	fprintf(stderr, "%s: unknown command '%s'\n", cli.prog, name);
	show_usage(stderr, cli.prog);
	return CLI_EXIT_FAIL;
}
