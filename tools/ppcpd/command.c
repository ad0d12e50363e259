/*
 * command.c - COMMAND dispatch (PROTOCOL.md §8.4, policy §8.6).
 *
 * Order of judgement for exec and shell: the arguments' shape and limits
 * (invalid-message), then the policy (unauthorized, naming the option that
 * would allow it), then the session's command count (rate-limited), then
 * the start.  Nothing runs unless the configuration allows it; status is
 * always allowed.  Refusals are logged at info with the program's name
 * only: arguments, shell command lines and stdin data may hold secrets and
 * are never logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include <jansson.h>

#include "internal.h" /* ppcp__b64_decode, ppcp__b64_encode */
#include "ppcpd.h"

enum {
	ARGV_MAX = 1024,
	ARG_MAX_BYTES = 65536,
	ARGV_TOTAL_MAX = 256 * 1024,
	STDIN_CHUNK_MAX = 256 * 1024,
};

#define INVALID "invalid-message"

/* Optional boolean member: 0 (absent = dflt) or -1 when of the wrong type. */
static int get_opt_bool(const json_t *o, const char *key, int dflt, int *out)
{
	const json_t *v = json_object_get(o, key);

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

/* PROTOCOL.md §8.6: argv[0] exactly as listed; '*' allows everything.
 * A bare name ("ls") allows the program found through the daemon's PATH,
 * never a path that merely ends in that name ("/tmp/x/ls"). */
static int policy_allows_exec(const struct pd_config *cfg, const char *prog)
{
	if (cfg->exec_all)
		return 1;
	for (size_t i = 0; i < cfg->nexec_allow; i++)
		if (strcmp(cfg->exec_allow[i], prog) == 0)
			return 1;
	return 0;
}

/* A program that cannot be started ends as a shell would: one stderr
 * line, then exit 127 (not found) or 126 (not executable). */
static void answer_spawn_failure(struct pd_session *s, const char *id, const char *prog, int code,
				 const char *why)
{
	char line[512], *b64;
	json_t *p;
	int n;

	n = snprintf(line, sizeof(line), "ppcpd: %s: %s\n", prog, why);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	b64 = pd_xmalloc(4 * (((size_t)n + 2) / 3) + 1);
	ppcp__b64_encode(b64, (const uint8_t *)line, (size_t)n);
	p = json_pack("{s:s,s:s}", "stream", "stderr", "data", b64);
	free(b64);
	if (p != NULL) {
		(void)pd_session_send(s, PPCP_MSG_RESPONSE, id, p);
		json_decref(p);
	}
	p = json_pack("{s:b,s:i,s:n,s:b,s:b}", "done", 1, "exit", code, "signal", "timed_out", 0,
		      "truncated", 0);
	if (p != NULL) {
		(void)pd_session_send(s, PPCP_MSG_RESPONSE, id, p);
		json_decref(p);
	}
}

static void cmd_exec(struct pd_session *s, const ppcp_msg *m, const json_t *args, int shell)
{
	struct pd_daemon *d = pd_session_daemon(s);
	const struct pd_config *cfg = d->cfg;
	struct pd_spawn sp;
	struct pd_cmd *c;
	const json_t *v, *e;
	char **argv = NULL;
	char prog[80];
	size_t n = 0, total = 0, i;
	int want_stdin, r;
	json_int_t timeout = cfg->command_timeout_s;

	if (get_opt_bool(args, "stdin", 0, &want_stdin) != 0) {
		pd_session_send_error(s, m->id, INVALID, "\"stdin\" must be true or false");
		return;
	}
	v = json_object_get(args, "timeout");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > PD_MAX_COMMAND_TIMEOUT_S) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"timeout\" must be a whole number of seconds from 1 to %d",
					      PD_MAX_COMMAND_TIMEOUT_S);
			return;
		}
		if (json_integer_value(v) < timeout)
			timeout = json_integer_value(v);
	}

	if (shell) {
		v = json_object_get(args, "command");
		if (!json_is_string(v) || json_string_length(v) < 1 ||
		    json_string_length(v) > ARG_MAX_BYTES ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"command\" must be a string of 1 to %d bytes",
					      ARG_MAX_BYTES);
			return;
		}
		n = 3;
	} else {
		v = json_object_get(args, "argv");
		if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > ARGV_MAX) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"argv\" must be an array of 1 to %d strings", ARGV_MAX);
			return;
		}
		json_array_foreach(v, i, e)
		{
			size_t len = json_string_length(e);

			if (!json_is_string(e) || len < 1 || len > ARG_MAX_BYTES ||
			    strlen(json_string_value(e)) != len) {
				pd_session_send_error(s, m->id, INVALID,
						      "argv[%zu] must be a string of 1 to %d bytes without NUL",
						      i, ARG_MAX_BYTES);
				return;
			}
			total += len;
		}
		if (total > ARGV_TOTAL_MAX) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"argv\" holds more than %d bytes in all", ARGV_TOTAL_MAX);
			return;
		}
		n = json_array_size(v);
	}

	if (pd_exec_find(s, m->id) != NULL) {
		pd_session_send_error(s, m->id, INVALID,
				      "a command with this id is still running in this session");
		return;
	}

	/* Policy (PROTOCOL.md §8.6). */
	if (shell && !cfg->allow_shell) {
		pd_info("session %s: refused a shell command (allow-shell is off)", pd_session_name(s));
		pd_session_send_error(s, m->id, "unauthorized",
				      "shell commands are not allowed on this server (allow-shell)");
		return;
	}
	if (!shell) {
		const char *a0 = json_string_value(json_array_get(v, 0));

		pd_log_safe(prog, sizeof(prog), a0);
		if (!policy_allows_exec(cfg, a0)) {
			pd_info("session %s: refused exec of '%s' (not in allow-exec)",
				pd_session_name(s), prog);
			pd_session_send_error(s, m->id, "unauthorized",
					      "exec of '%.200s' is not allowed (allow-exec)", a0);
			return;
		}
	} else {
		snprintf(prog, sizeof(prog), "/bin/sh");
	}
	if (pd_exec_count(s) >= cfg->max_commands) {
		pd_info("session %s: refused a command: %u already running (max-commands)",
			pd_session_name(s), cfg->max_commands);
		pd_session_send_error(s, m->id, "rate-limited",
				      "this session already runs %u commands (max-commands)",
				      cfg->max_commands);
		return;
	}

	argv = pd_xcalloc(n + 1, sizeof(char *));
	if (shell) {
		argv[0] = (char *)"/bin/sh";
		argv[1] = (char *)"-c";
		argv[2] = (char *)json_string_value(v);
	} else {
		json_array_foreach(v, i, e)
			argv[i] = (char *)json_string_value(e);
	}
	sp.id = m->id;
	sp.argv = argv;
	sp.want_stdin = want_stdin;
	sp.timeout_s = (uint32_t)timeout;
	pd_info("session %s: %s '%s' as command %s (%zu argument%s, timeout %u s%s)",
		pd_session_name(s), shell ? "shell" : "exec", prog, m->id, n - 1, n == 2 ? "" : "s",
		sp.timeout_s, want_stdin ? ", stdin" : "");
	r = pd_exec_start(s, &sp, &c);
	free(argv);
	if (r == 0)
		return;
	pd_info("command %s ('%s'): cannot start: %s", m->id, prog, uv_strerror(r));
	if (r == UV_ENOENT)
		answer_spawn_failure(s, m->id, prog, 127, "command not found");
	else if (r == UV_EACCES || r == -ENOEXEC || r == UV_EISDIR || r == UV_EPERM)
		answer_spawn_failure(s, m->id, prog, 126,
				     r == -ENOEXEC ? "cannot execute: exec format error"
						     : "cannot execute: permission denied");
	else
		pd_session_send_error(s, m->id, "internal-error", "cannot start '%s': %s", prog,
				      uv_strerror(r));
}

static void cmd_status(struct pd_session *s, const ppcp_msg *m)
{
	struct pd_daemon *d = pd_session_daemon(s);
	struct sysinfo si;
	json_t *p;
	double load[3] = { 0, 0, 0 };
	json_int_t uptime = 0;

	if (sysinfo(&si) == 0) {
		uptime = (json_int_t)si.uptime;
		for (int i = 0; i < 3; i++)
			load[i] = (double)si.loads[i] / (double)(1 << SI_LOAD_SHIFT);
	}
	p = json_pack("{s:b,s:{s:s,s:s,s:s,s:I,s:[f,f,f]}}", "done", 1, "status", "hostname",
		      d->hostname, "server_id", d->server_id, "version", PPCP_VERSION_STRING,
		      "uptime", uptime, "load", load[0], load[1], load[2]);
	if (p == NULL) {
		pd_session_send_error(s, m->id, "internal-error", "out of memory");
		return;
	}
	(void)pd_session_send(s, PPCP_MSG_RESPONSE, m->id, p);
	json_decref(p);
}

/* stdin and cancel name a running command by "of". */
static struct pd_cmd *find_of(struct pd_session *s, const ppcp_msg *m, const json_t *args)
{
	const json_t *of = json_object_get(args, "of");
	struct pd_cmd *c;

	if (!json_is_string(of) || json_string_length(of) < 1 ||
	    json_string_length(of) > PPCP_ID_MAX) {
		pd_session_send_error(s, m->id, INVALID, "\"of\" must name a command id");
		return NULL;
	}
	c = pd_exec_find(s, json_string_value(of));
	if (c == NULL)
		pd_session_send_error(s, m->id, INVALID,
				      "no running command of this session has id '%s'",
				      json_string_value(of));
	return c;
}

static void cmd_stdin(struct pd_session *s, const ppcp_msg *m, const json_t *args)
{
	const json_t *data = json_object_get(args, "data");
	struct pd_cmd *c;
	uint8_t *buf = NULL;
	long n = 0;
	int eof;
	const char *why;

	if (get_opt_bool(args, "eof", 0, &eof) != 0) {
		pd_session_send_error(s, m->id, INVALID, "\"eof\" must be true or false");
		return;
	}
	if (data != NULL) {
		size_t len = json_string_length(data);

		if (!json_is_string(data) || len > 4 * ((STDIN_CHUNK_MAX + 2) / 3)) {
			pd_session_send_error(s, m->id, INVALID,
					      "\"data\" must be base64 of at most %d bytes",
					      STDIN_CHUNK_MAX);
			return;
		}
		buf = pd_xmalloc(len / 4 * 3 + 3);
		n = ppcp__b64_decode(buf, len / 4 * 3 + 3, json_string_value(data), len);
		if (n < 0) {
			free(buf);
			pd_session_send_error(s, m->id, INVALID,
					      "\"data\" is not canonical base64 (RFC 4648, padded)");
			return;
		}
	}
	c = find_of(s, m, args);
	if (c != NULL && pd_exec_stdin(c, buf, (size_t)n, eof, &why) != 0)
		pd_session_send_error(s, m->id, INVALID, "the command %s",
				      why);
	free(buf);
	pd_session_update_reading(s);
}

void pd_command_dispatch(struct pd_session *s, const ppcp_msg *m)
{
	/* The engine checked the shape: {"name": string, "args": object}. */
	const char *name = json_string_value(json_object_get(m->payload, "name"));
	const json_t *args = json_object_get(m->payload, "args");
	struct pd_cmd *c;
	char safe[80];

	if (strcmp(name, "exec") == 0) {
		cmd_exec(s, m, args, 0);
	} else if (strcmp(name, "shell") == 0) {
		cmd_exec(s, m, args, 1);
	} else if (strcmp(name, "status") == 0) {
		cmd_status(s, m);
	} else if (strcmp(name, "stdin") == 0) {
		cmd_stdin(s, m, args);
	} else if (strcmp(name, "cancel") == 0) {
		c = find_of(s, m, args);
		if (c != NULL)
			pd_exec_cancel(c);
	} else {
		pd_debug("session %s: unknown command '%s'", pd_session_name(s),
			 pd_log_safe(safe, sizeof(safe), name));
		pd_session_send_error(s, m->id, "unknown-command", "unknown command '%.64s'", name);
	}
}
