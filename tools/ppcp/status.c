/*
 * status.c - `ppcp status TARGET [--json]`: COMMAND "status" (PROTOCOL.md
 * §8.4), which every server answers, printed as "key value" lines (the
 * known keys first, then any others), or with --json as the status object
 * itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int status_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	(void)arg;
	(void)user;
	if (opt == 'j') {
		cli->json = 1;
		return 0;
	}
	return -1;
}

static const struct option status_longopts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};

static void print_value(const char *key, json_t *v)
{
	char *text;

	if (strcmp(key, "uptime") == 0 && json_is_integer(v)) {
		long long u = (long long)json_integer_value(v);
		printf("%-10s %lldd %02lldh %02lldm %02llds (%lld s)\n", key, u / 86400,
		       u % 86400 / 3600, u % 3600 / 60, u % 60, u);
		return;
	}
	if (json_is_string(v)) {
		printf("%-10s %s\n", key, json_string_value(v));
		return;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *x;

		printf("%-10s", key);
		json_array_foreach(v, i, x)
		{
			if (json_is_number(x))
				printf(" %.2f", json_number_value(x));
			else {
				text = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
				printf(" %s", text ? text : "?");
				free(text);
			}
		}
		printf("\n");
		return;
	}
	text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	printf("%-10s %s\n", key, text ? text : "?");
	free(text);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	static const char *const known[] = { "server_id", "hostname", "version", "uptime",
					     "load" };
	struct cli_opts o = { "", status_longopts, status_opt, NULL, 0 };
	struct sess s;
	json_t *p, *reply = NULL, *st, *v;
	const char *key;
	size_t k;
	int i, ret, code = CLI_EXIT_FAIL;

	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || argc - i != 1)
		return cli_usage(cli, "status [--json] TARGET");
	if (resolve_connect(cli, argv[i], &s) != 0)
		return CLI_EXIT_FAIL;
	p = json_pack("{s:s,s:{}}", "name", "status", "args");
	ret = sess_command(&s, p, &reply, 10000);
	json_decref(p);
	if (ret < 0) {
		cli_err(cli, "status of %s: %s; %s", s.server_id, ppcp_strerror(ret),
			cli_advice(ret));
		goto out;
	}
	if (ret == 1) {
		cli_err(cli, "%s refused the status command: %s", s.server_id,
			json_string_value(json_object_get(reply, "message")) ?
				json_string_value(json_object_get(reply, "message")) :
				"no reason given");
		goto out;
	}
	st = json_object_get(reply, "status");
	if (!json_is_object(st)) {
		cli_err(cli, "%s answered status without a status object (a bug in the server: report "
			     "it)",
			s.server_id);
		goto out;
	}
	if (cli->json) {
		char *text = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text != NULL)
			printf("%s\n", text);
		free(text);
	} else {
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if ((v = json_object_get(st, known[k])) != NULL)
				print_value(known[k], v);
		json_object_foreach(st, key, v)
		{
			int is_known = 0;
			for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
				is_known |= strcmp(key, known[k]) == 0;
			if (!is_known)
				print_value(key, v);
		}
		printf("%-10s %s port %u (%s)\n", "address", s.address, (unsigned)s.port, s.path);
	}
	code = 0;
	sess_bye(&s);
out:
	json_decref(reply);
	sess_free(&s);
	return code;
}
