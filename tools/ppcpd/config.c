/*
 * config.c - ppcpd's options: command-line flags and the configuration file.
 *
 * Every option is a flag (--name VALUE, --name=VALUE; booleans also bare
 * --name) and a key of the file (name = value, at the top or under
 * [ppcpd]; the file is read with inih).  Flags win: the file is applied
 * first, then the flags.  A list option (listen, allow-exec) given on the
 * command line replaces the file's list instead of adding to it.
 *
 * Any unknown flag or key, or a bad value, ends the program with exactly
 * one line on stderr, "ppcpd: WHERE: WHAT IS WRONG: WHAT TO DO", and exit
 * status 2.  WHERE is the flag, or FILE:LINE: key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "internal.h" /* ppcp__valid_ident: PROTOCOL.md §10.3 identifiers */
#include "ppcpd.h"

enum opt_kind {
	K_PATH,      /* a file or directory name */
	K_LISTEN,    /* ADDR:PORT, repeatable */
	K_SERVER_ID, /* an identifier of PROTOCOL.md §10.3 */
	K_EXEC,      /* '*' or a comma list, repeatable */
	K_BOOL,
	K_LEVEL,
	K_U32,  /* integer in [min, max] */
	K_SIZE, /* bytes, with an optional K/M/G/T (binary) suffix */
	K_ADDRS, /* numeric addresses, comma-separated, repeatable (agent) */
};

/* Which program takes an option: 0 both, else one of these. */
enum { SC_BOTH = 0, SC_DAEMON = 1, SC_AGENT = 2 };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off; /* of the field in struct pd_config */
	uint64_t min, max;
	const char *unit;
	int scope; /* SC_* */
};

#define OFF(f) offsetof(struct pd_config, f)

static const struct opt cfg_opts[] = {
	{ "psk-file", K_PATH, OFF(psk_file), 0, 0, NULL, SC_BOTH },
	{ "listen", K_LISTEN, 0, 0, 0, NULL, SC_DAEMON },
	{ "server-id", K_SERVER_ID, OFF(server_id), 0, 0, NULL, SC_BOTH },
	{ "state-dir", K_PATH, OFF(state_dir), 0, 0, NULL, SC_DAEMON },
	{ "allow-exec", K_EXEC, 0, 0, 0, NULL, SC_BOTH },
	{ "allow-shell", K_BOOL, OFF(allow_shell), 0, 0, NULL, SC_BOTH },
	{ "file-root", K_PATH, OFF(file_root), 0, 0, NULL, SC_BOTH },
	{ "allow-put", K_BOOL, OFF(allow_put), 0, 0, NULL, SC_BOTH },
	{ "log-level", K_LEVEL, OFF(log_level), 0, 0, NULL, SC_BOTH },
	{ "command-timeout", K_U32, OFF(command_timeout_s), 1, PD_MAX_COMMAND_TIMEOUT_S, "seconds", SC_BOTH },
	{ "max-output", K_SIZE, OFF(max_output), 1, UINT64_C(1) << 40, "bytes", SC_BOTH },
	{ "max-commands", K_U32, OFF(max_commands), 1, 1024, "commands", SC_BOTH },
	{ "max-transfers", K_U32, OFF(max_transfers), 1, 1024, "transfers", SC_BOTH },
	{ "max-file-size", K_SIZE, OFF(max_file_size), 0, PD_MAX_FILE_SIZE_LIMIT, "bytes", SC_BOTH },
	{ "max-sessions", K_U32, OFF(max_sessions), 1, 1000000, "sessions", SC_DAEMON },
	{ "max-handshakes", K_U32, OFF(max_handshakes), 1, 1000000, "connections", SC_DAEMON },
	{ "max-handshakes-per-ip", K_U32, OFF(max_handshakes_per_ip), 1, 1000000, "connections", SC_DAEMON },
	{ "handshake-timeout", K_U32, OFF(handshake_timeout_ms), 100, 600000, "milliseconds", SC_BOTH },
	{ "idle-timeout", K_U32, OFF(idle_timeout_ms), 1000, 86400000, "milliseconds", SC_BOTH },
	{ "heartbeat", K_U32, OFF(heartbeat_ms), 100, 3600000, "milliseconds", SC_BOTH },
	{ "write-timeout", K_U32, OFF(write_timeout_ms), 1000, 3600000, "milliseconds", SC_BOTH },
	{ "accept-agents", K_BOOL, OFF(accept_agents), 0, 0, NULL, SC_DAEMON },
	{ "control", K_PATH, OFF(control_path), 0, 0, NULL, SC_DAEMON },
	{ "client-id", K_SERVER_ID, OFF(client_id), 0, 0, NULL, SC_AGENT },
	{ "discover-addr", K_ADDRS, 0, 0, 0, NULL, SC_AGENT },
	{ "port", K_U32, OFF(port), 1, 65535, "port", SC_AGENT },
};

/* "ppcpd", or "ppcp agent" (pd_config_load_agent). */
static const char *cfg_prog = "ppcpd";
static int cfg_scope = SC_DAEMON;
#define NOPTS (sizeof(cfg_opts) / sizeof(cfg_opts[0]))

/* Where a value came from: list options are reset when the source changes
 * (flags replace the file's list); scalars may be set once per source. */
enum { SRC_NONE = 0, SRC_FILE = 1, SRC_FLAG = 2 };

struct cfg_state {
	struct pd_config *cfg;
	int src[NOPTS];
	/* The first error in the configuration file. */
	char file_err[512];
};

static void usage_agent(FILE *f)
{
	fprintf(f,
		"usage: ppcp agent [--config FILE] [--psk-file FILE] [--server-id ID]\n"
		"                  [--client-id ID] [--port N] [--discover-addr ADDR[,ADDR...]]...\n"
		"                  [--allow-exec '*'|PROG[,PROG...]] [--allow-shell] [--file-root DIR]\n"
		"                  [--allow-put] [--log-level error|warn|info|debug]\n"
		"                  [--command-timeout S] [--max-output BYTES] [--max-commands N]\n"
		"                  [--max-transfers N] [--max-file-size BYTES]\n"
		"                  [--handshake-timeout MS] [--idle-timeout MS] [--heartbeat MS]\n"
		"                  [--write-timeout MS]\n"
		"\n"
		"The seed diagram's direction: find a controller (a ppcpd with --accept-agents) by\n"
		"discovery, keep one session open to it, reconnect by itself, and run what the\n"
		"controller asks under this local policy (the options of ppcpd).  --server-id\n"
		"names the controller to find; --client-id is this agent's id (default: the host\n"
		"name).  PSK: --psk-file, else $PPCP_PSK_FILE, else ~/.config/ppcp/psk.\n"
		"See ppcp(1).\n");
}

static void usage(FILE *f)
{
	if (cfg_scope == SC_AGENT) {
		usage_agent(f);
		return;
	}
	fprintf(f,
		"usage: ppcpd [--config FILE] [--psk-file FILE] [--listen ADDR:PORT]...\n"
		"             [--server-id ID] [--state-dir DIR]\n"
		"             [--allow-exec '*'|PROG[,PROG...]] [--allow-shell] [--file-root DIR]\n"
		"             [--allow-put] [--log-level error|warn|info|debug]\n"
		"             [--command-timeout S] [--max-output BYTES] [--max-commands N]\n"
		"             [--max-transfers N] [--max-file-size BYTES]\n"
		"             [--max-sessions N] [--max-handshakes N] [--max-handshakes-per-ip N]\n"
		"             [--handshake-timeout MS] [--idle-timeout MS] [--heartbeat MS]\n"
		"             [--write-timeout MS] [--accept-agents] [--control PATH]\n"
		"       ppcpd --help | --version\n"
		"\n"
		"The PPCP server: answers discovery on UDP, accepts PSK-authenticated sessions on\n"
		"TCP and runs the commands its policy allows.  Every option is also a key of the\n"
		"configuration file (see ppcpd.conf(5)); options on the command line win.\n"
		"PSK: --psk-file, else psk-file in the file, else $PPCP_PSK_FILE, else %s.\n"
		"Listens on 0.0.0.0:9000 and [::]:9000 unless --listen is given.  See ppcpd(8).\n",
		PD_DEFAULT_PSK_FILE);
}

static void cfg_die(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void cfg_die(const char *where, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s: %s\n", cfg_prog, where, msg);
	exit(2);
}

static const struct opt *cfg_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(cfg_opts[i].name) == len && strncmp(cfg_opts[i].name, name, len) == 0 &&
		    (cfg_opts[i].scope == SC_BOTH || cfg_opts[i].scope == cfg_scope))
			return &cfg_opts[i];
	return NULL;
}

/* ---- value parsers: each returns NULL, or what is wrong and what to do -- */

static const char *parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return "is not a whole number";
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return "is too large";
	*out = n;
	return *end == '\0' ? NULL : "is not a whole number";
}

static const char *parse_size(const char *v, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = { { "", 0 },     { "K", 10 },   { "k", 10 },   { "KiB", 10 },
		      { "M", 20 },   { "MiB", 20 }, { "G", 30 },   { "GiB", 30 },
		      { "T", 40 },   { "TiB", 40 } };
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return "is not a size";
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0)
		return "is too large";
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			if (n > (UINT64_MAX >> units[i].shift))
				return "is too large";
			*out = (uint64_t)n << units[i].shift;
			return NULL;
		}
	}
	return "is not a size";
}

static const char *parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return NULL;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return NULL;
		}
	}
	return "is not a boolean";
}

/* ADDR:PORT with a numeric IPv4 address, or [IPv6]:PORT. */
static const char *parse_listen(const char *v, struct pd_listen *l)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs, *he;
	uint64_t port;

	memset(l, 0, sizeof(*l));
	if (v[0] == '[') {
		hs = v + 1;
		he = strchr(v, ']');
		if (he == NULL || he[1] != ':')
			return "is not [IPv6]:PORT";
		colon = he + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return "has no port";
		hs = v;
		he = colon;
		if (memchr(hs, ':', (size_t)(he - hs)) != NULL)
			return "is an IPv6 address without brackets";
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs)
		return "has no valid address";
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (colon[1] == '\0' || parse_u64(colon + 1, &port) != NULL || port > 65535)
		return "has no valid port (0-65535)";
	if (v[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&l->addr;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return "has no valid IPv6 address";
		l->wildcard = IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&l->addr;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return "has no valid IPv4 address (numeric addresses only)";
		l->wildcard = a->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	snprintf(l->text, sizeof(l->text), "%s", v);
	return NULL;
}

static void exec_list_clear(struct pd_config *c)
{
	for (size_t i = 0; i < c->nexec_allow; i++)
		free(c->exec_allow[i]);
	free(c->exec_allow);
	c->exec_allow = NULL;
	c->nexec_allow = 0;
	c->exec_all = 0;
}

static const char *parse_exec(struct pd_config *c, const char *v)
{
	const char *p = v;

	if (strcmp(v, "*") == 0) {
		if (c->nexec_allow > 0)
			return "mixes '*' with program names";
		c->exec_all = 1;
		return NULL;
	}
	if (c->exec_all)
		return "mixes '*' with program names";
	for (;;) {
		const char *e = strchr(p, ',');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		char *name;

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			return "has an empty program name";
		if (n == 1 && p[0] == '*')
			return "mixes '*' with program names";
		name = pd_xmalloc(n + 1);
		memcpy(name, p, n);
		name[n] = '\0';
		c->exec_allow = realloc(c->exec_allow, (c->nexec_allow + 2) * sizeof(char *));
		if (c->exec_allow == NULL) {
			fprintf(stderr, "ppcpd: out of memory\n");
			exit(1);
		}
		c->exec_allow[c->nexec_allow++] = name;
		c->exec_allow[c->nexec_allow] = NULL;
		if (e == NULL)
			return NULL;
		p = e + 1;
	}
}

static const char *opt_hint(const struct opt *o, char *buf, size_t cap)
{
	switch (o->kind) {
	case K_PATH:
		return "give a path";
	case K_LISTEN:
		return "write ADDR:PORT with a numeric address, e.g. 0.0.0.0:9000 or [::]:9000";
	case K_SERVER_ID:
		return "use 1 to 64 characters of A-Z a-z 0-9 . _ -";
	case K_EXEC:
		return "give '*' or a comma-separated list of program names or paths";
	case K_BOOL:
		return "use true or false";
	case K_LEVEL:
		return "use error, warn, info or debug";
	case K_U32:
		snprintf(buf, cap, "give a whole number from %llu to %llu (%s)",
			 (unsigned long long)o->min, (unsigned long long)o->max, o->unit);
		return buf;
	case K_ADDRS:
		return "give numeric addresses, comma-separated (e.g. 127.0.0.1)";
	case K_SIZE:
		snprintf(buf, cap, "give a number of bytes from %llu to %lluT, with an optional K, M, G or T suffix",
			 (unsigned long long)o->min, (unsigned long long)(o->max >> 40));
		return buf;
	}
	return "";
}

/* Set one option.  Returns 0, or -1 with what is wrong and what to do in
 * err (the caller adds where: the flag, or the file, line and key). */
static int opt_set(struct cfg_state *st, const struct opt *o, const char *v, int src, char *err,
		   size_t errlen)
{
	struct pd_config *c = st->cfg;
	size_t idx = (size_t)(o - cfg_opts);
	char hint[160], safe[200];
	const char *bad = NULL;
	uint64_t n;

	pd_log_safe(safe, sizeof(safe), v);
	if (st->src[idx] != src) {
		/* Flags replace the file's list. */
		if (o->kind == K_LISTEN)
			c->nlisten = 0;
		if (o->kind == K_EXEC)
			exec_list_clear(c);
		if (o->kind == K_ADDRS)
			c->ndiscover = 0;
	} else if (o->kind != K_LISTEN && o->kind != K_EXEC && o->kind != K_ADDRS) {
		snprintf(err, errlen, "given twice: keep one");
		return -1;
	}
	st->src[idx] = src;

	switch (o->kind) {
	case K_PATH:
		if (v[0] == '\0')
			bad = "is empty";
		else {
			char **f = (char **)((char *)c + o->off);
			free(*f);
			*f = pd_xstrdup(v);
		}
		break;
	case K_SERVER_ID:
		if (!ppcp__valid_ident(v))
			bad = "is not a valid server id";
		else {
			char **f = (char **)((char *)c + o->off);
			free(*f);
			*f = pd_xstrdup(v);
		}
		break;
	case K_LISTEN:
		if (c->nlisten >= PD_MAX_LISTEN) {
			snprintf(err, errlen, "more than %d addresses: listen on a wildcard address instead",
				 PD_MAX_LISTEN);
			return -1;
		}
		bad = parse_listen(v, &c->listen[c->nlisten]);
		if (bad == NULL) {
			for (size_t i = 0; i < c->nlisten; i++) {
				if (strcmp(c->listen[i].text, c->listen[c->nlisten].text) == 0) {
					snprintf(err, errlen, "'%s' is listed twice: keep one", safe);
					return -1;
				}
			}
			c->nlisten++;
		}
		break;
	case K_EXEC:
		bad = parse_exec(c, v);
		break;
	case K_ADDRS: {
		char *copy = pd_xstrdup(v), *save = NULL;

		for (char *a = strtok_r(copy, ",", &save); a != NULL; a = strtok_r(NULL, ",", &save)) {
			if (c->ndiscover >= PD_MAX_DISCOVER) {
				bad = "lists too many addresses";
				break;
			}
			snprintf(c->discover[c->ndiscover++], sizeof(c->discover[0]), "%s", a);
		}
		free(copy);
		if (bad == NULL && c->ndiscover == 0)
			bad = "is empty";
		break;
	}
	case K_BOOL:
		bad = parse_bool(v, (int *)((char *)c + o->off));
		break;
	case K_LEVEL: {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		bad = "is not a log level";
		for (int i = 0; i < 4; i++) {
			if (strcmp(v, names[i]) == 0) {
				c->log_level = (enum pd_log_level)i;
				bad = NULL;
			}
		}
		break;
	}
	case K_U32:
		bad = parse_u64(v, &n);
		if (bad == NULL && (n < o->min || n > o->max))
			bad = "is out of range";
		if (bad == NULL)
			*(uint32_t *)((char *)c + o->off) = (uint32_t)n;
		break;
	case K_SIZE:
		bad = parse_size(v, &n);
		if (bad == NULL && (n < o->min || n > o->max))
			bad = "is out of range";
		if (bad == NULL)
			*(uint64_t *)((char *)c + o->off) = n;
		break;
	}
	if (bad == NULL)
		return 0;
	snprintf(err, errlen, "'%s' %s: %s", safe, bad, opt_hint(o, hint, sizeof(hint)));
	return -1;
}

/* ---- the configuration file ------------------------------------------- */

static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_state *st = user;
	const struct opt *o;
	char sname[100], ssec[100], err[400];

	/* inih gives the handler no line number: the first error's text is
	 * kept, and printed with the line that ini_parse() returns. */
	if (st->file_err[0] != '\0')
		return 0;
	pd_log_safe(sname, sizeof(sname), name);
	if (section[0] != '\0' && strcmp(section, "ppcpd") != 0 &&
	    !(cfg_scope == SC_AGENT && strcmp(section, "agent") == 0)) {
		snprintf(st->file_err, sizeof(st->file_err),
			 "%s: section [%s] is not known: put keys at the top or under [ppcpd]", sname,
			 pd_log_safe(ssec, sizeof(ssec), section));
		return 0;
	}
	if (strcmp(name, "psk") == 0) {
		snprintf(st->file_err, sizeof(st->file_err),
			 "psk: a PSK is never written in the configuration: put it in a file (ppcp keygen FILE) and set psk-file");
		return 0;
	}
	o = cfg_find(name, strlen(name));
	if (o == NULL) {
		snprintf(st->file_err, sizeof(st->file_err),
			 "unknown key '%s': see ppcpd.conf(5) for the keys", sname);
		return 0;
	}
	if (opt_set(st, o, value, SRC_FILE, err, sizeof(err)) != 0) {
		snprintf(st->file_err, sizeof(st->file_err), "%s: %s", o->name, err);
		return 0;
	}
	return 1;
}

static void cfg_load_file(struct cfg_state *st, const char *path)
{
	char where[PATH_MAX + 32];
	int line;

	errno = 0;
	line = ini_parse(path, cfg_ini_handler, st);
	if (line == -1) {
		snprintf(where, sizeof(where), "--config %s", path);
		cfg_die(where, "cannot open the file (%s): check the path",
			errno != 0 ? strerror(errno) : "unknown error");
	}
	if (line == -2) {
		fprintf(stderr, "ppcpd: out of memory\n");
		exit(1);
	}
	if (line > 0) {
		snprintf(where, sizeof(where), "%s:%d", path, line);
		if (st->file_err[0] != '\0')
			cfg_die(where, "%s", st->file_err);
		cfg_die(where, "not a 'key = value' line: see ppcpd.conf(5)");
	}
}

/* ---- flags -------------------------------------------------------------- */

struct flag {
	const struct opt *o;
	const char *value;
};

static void cfg_defaults(struct pd_config *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = PD_LOG_INFO;
	c->command_timeout_s = PD_DEFAULT_COMMAND_TIMEOUT_S;
	c->max_output = PD_DEFAULT_MAX_OUTPUT;
	c->max_commands = PD_DEFAULT_MAX_COMMANDS;
	c->max_transfers = PD_DEFAULT_MAX_TRANSFERS;
	c->max_file_size = PD_DEFAULT_MAX_FILE_SIZE;
	c->max_sessions = PD_DEFAULT_MAX_SESSIONS;
	c->max_handshakes = PD_DEFAULT_MAX_HANDSHAKES;
	c->max_handshakes_per_ip = PD_DEFAULT_MAX_HANDSHAKES_PER_IP;
	c->handshake_timeout_ms = PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	c->idle_timeout_ms = PPCP_DEFAULT_IDLE_TIMEOUT_MS;
	c->heartbeat_ms = PPCP_DEFAULT_HEARTBEAT_MS;
	c->write_timeout_ms = PD_DEFAULT_WRITE_TIMEOUT_MS;
}

static void cfg_finish(struct pd_config *c)
{
	const char *env;
	struct stat sb;
	char safe[200];

	if (c->nlisten == 0 && cfg_scope == SC_DAEMON) {
		const char *defaults[] = { "0.0.0.0:9000", "[::]:9000" };
		for (int i = 0; i < 2; i++)
			(void)parse_listen(defaults[i], &c->listen[i]);
		c->nlisten = 2;
		c->listen_is_default = 1;
	}
	if (c->state_dir == NULL)
		c->state_dir = pd_xstrdup(PD_DEFAULT_STATE_DIR);
	if (c->psk_file == NULL) {
		env = getenv("PPCP_PSK_FILE");
		if (env != NULL && env[0] != '\0') {
			c->psk_file = pd_xstrdup(env);
		} else if (cfg_scope == SC_AGENT) {
			/* The CLI's default: ~/.config/ppcp/psk. */
			const char *home = getenv("HOME");
			char path[4096];

			snprintf(path, sizeof(path), "%s/.config/ppcp/psk",
				 home != NULL && home[0] != '\0' ? home : "/");
			c->psk_file = pd_xstrdup(path);
		} else {
			c->psk_file = pd_xstrdup(PD_DEFAULT_PSK_FILE);
		}
	}
	if (cfg_scope == SC_AGENT) {
		if (c->port == 0)
			c->port = 9000;
		if (c->ndiscover == 0 && (env = getenv("PPCP_DISCOVER_ADDR")) != NULL) {
			char *copy = pd_xstrdup(env), *save = NULL;

			if (env[0] == '\0')
				cfg_die("PPCP_DISCOVER_ADDR", "is set but empty: unset it to broadcast");
			for (char *a = strtok_r(copy, ",", &save); a != NULL && c->ndiscover < PD_MAX_DISCOVER;
			     a = strtok_r(NULL, ",", &save))
				snprintf(c->discover[c->ndiscover++], sizeof(c->discover[0]), "%s", a);
			free(copy);
		}
	}
	if (c->heartbeat_ms >= c->idle_timeout_ms)
		cfg_die("heartbeat",
			"%u ms is not shorter than idle-timeout (%u ms): lower heartbeat or raise idle-timeout",
			c->heartbeat_ms, c->idle_timeout_ms);
	if (c->file_root != NULL) {
		char *real;

		pd_log_safe(safe, sizeof(safe), c->file_root);
		if (stat(c->file_root, &sb) != 0 || !S_ISDIR(sb.st_mode))
			cfg_die("file-root", "'%s' is not a directory: create it or fix the path", safe);
		real = realpath(c->file_root, NULL);
		if (real == NULL)
			cfg_die("file-root", "'%s': %s: fix the path", safe, strerror(errno));
		free(c->file_root);
		c->file_root = real;
	}
	if (c->allow_put && c->file_root == NULL)
		cfg_die("allow-put", "uploads need a directory: set file-root too");
}

void pd_config_load(struct pd_config *cfg, int argc, char **argv)
{
	struct cfg_state st;
	struct flag *flags = pd_xcalloc((size_t)argc + 1, sizeof(*flags));
	size_t nflags = 0;
	const char *config = NULL;
	char where[160], safe[160];

	cfg_defaults(cfg);
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;

	/* Pass 1: recognise every flag; --help and --version act at once. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *name, *value = NULL;
		size_t nlen;
		const struct opt *o;

		pd_log_safe(safe, sizeof(safe), a);
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("%s %s (PPCP protocol version %d)\n", cfg_prog, PPCP_VERSION_STRING,
			       PPCP_PROTOCOL_VERSION);
			exit(0);
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
			cfg_die(safe, "unexpected argument: %s takes only options (see %s --help)", cfg_prog,
				cfg_prog);
		name = a + 2;
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (nlen == 3 && strncmp(name, "psk", 3) == 0)
			cfg_die("--psk", "a PSK is never taken from the command line: put it in a file (ppcp keygen FILE) and pass --psk-file FILE");
		if (nlen == 6 && strncmp(name, "config", 6) == 0) {
			if (eq != NULL)
				config = eq + 1;
			else if (i + 1 < argc)
				config = argv[++i];
			else
				cfg_die("--config", "needs a file name: --config FILE");
			if (config[0] == '\0')
				cfg_die("--config", "is empty: give the file's path");
			continue;
		}
		o = cfg_find(name, nlen);
		if (o == NULL) {
			snprintf(where, sizeof(where), "%.*s", (int)(nlen + 2 < 100 ? nlen + 2 : 100), a);
			pd_log_safe(safe, sizeof(safe), where);
			cfg_die(safe, "unknown option: see %s --help", cfg_prog);
		}
		if (eq != NULL)
			value = eq + 1;
		else if (o->kind == K_BOOL)
			value = "true";
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			snprintf(where, sizeof(where), "--%s", o->name);
			cfg_die(where, "needs a value: %s", opt_hint(o, safe, sizeof(safe)));
		}
		flags[nflags].o = o;
		flags[nflags].value = value;
		nflags++;
	}

	/* Pass 2: the file, then the flags over it. */
	if (config != NULL) {
		cfg->config_file = pd_xstrdup(config);
		cfg_load_file(&st, config);
	}
	for (size_t i = 0; i < nflags; i++) {
		char err[400];

		if (opt_set(&st, flags[i].o, flags[i].value, SRC_FLAG, err, sizeof(err)) != 0) {
			snprintf(where, sizeof(where), "--%s", flags[i].o->name);
			cfg_die(where, "%s", err);
		}
	}
	free(flags);
	cfg_finish(cfg);
}

void pd_config_load_agent(struct pd_config *cfg, int argc, char **argv)
{
	cfg_prog = "ppcp agent";
	cfg_scope = SC_AGENT;
	pd_config_load(cfg, argc, argv);
}

void pd_config_free(struct pd_config *c)
{
	free(c->control_path);
	free(c->client_id);
	free(c->config_file);
	free(c->psk_file);
	free(c->server_id);
	free(c->state_dir);
	free(c->file_root);
	exec_list_clear(c);
	memset(c, 0, sizeof(*c));
}
