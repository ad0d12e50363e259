/*
 * agents.c - the CLI on a controller: `ppcp agent` (runs the agent, the
 * daemon's code in tools/ppcpd/agent.c), `ppcp agents [--json]` and the
 * control socket client that `exec @CLIENT_ID` / `exec @all` use
 * (docs/CONTROL.md).
 *
 * The control socket: --control PATH, else $PPCP_CONTROL, else the
 * default of the controller on --port (pd_control_default_path: the same
 * function ppcpd uses).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ppcpd.h"

int cmd_agent(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	return pd_agent_main(argc, argv);
}

static const char *ctl_path_opt;

void ctl_set_path(const char *path)
{
	ctl_path_opt = path;
}

int ctl_open(const struct cli *cli, const json_t *req, FILE **out)
{
	struct sockaddr_un sa;
	char path[sizeof(sa.sun_path)];
	const char *env = getenv("PPCP_CONTROL");
	char *text;
	int fd;

	if (req == NULL) {
		/* json_pack refused a string of the command line. */
		cli_err(cli, "a @CLIENT_ID or a path on the command line is not valid UTF-8: check it");
		return -1;
	}
	if (ctl_path_opt != NULL)
		snprintf(path, sizeof(path), "%s", ctl_path_opt);
	else if (env != NULL && env[0] != '\0')
		snprintf(path, sizeof(path), "%s", env);
	else
		pd_control_default_path(cli->port, path, sizeof(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		cli_err(cli, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		cli_err(cli, "cannot reach the controller's control socket %s: %s; %s", path,
			strerror(e),
			e == ENOENT || e == ECONNREFUSED
				? "is ppcpd running with --accept-agents on this port (--port, or --control PATH)?"
			: e == EACCES ? "only the user that runs ppcpd (or root) may use it"
				      : "check the path (--control PATH)");
		close(fd);
		return -1;
	}
	text = json_dumps(req, JSON_COMPACT);
	/* MSG_NOSIGNAL: a controller that refused us may have closed already;
	 * its answer is still there to read. */
	if (text == NULL || send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text) ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		if (text != NULL && errno == EPIPE) {
			free(text);
			*out = fdopen(fd, "r");
			return *out != NULL ? 0 : -1;
		}
		cli_err(cli, "cannot write to the control socket %s: %s", path, strerror(errno));
		free(text);
		close(fd);
		return -1;
	}
	free(text);
	*out = fdopen(fd, "r");
	if (*out == NULL) {
		close(fd);
		return -1;
	}
	return 0;
}

/* The next JSON line, or NULL at EOF (or a line that is not JSON). */
json_t *ctl_read(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	json_t *j;

	do {
		errno = 0;
		n = getline(&line, &cap, f);
	} while (n < 0 && errno == EINTR && cli_signal == 0);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	j = json_loadb(line, (size_t)n, 0, NULL);
	free(line);
	return j;
}

static void fmt_age(int64_t t, int64_t now, char *buf, size_t len)
{
	int64_t d = now - t;

	if (t <= 0)
		snprintf(buf, len, "-");
	else if (d < 120)
		snprintf(buf, len, "%llds ago", (long long)(d < 0 ? 0 : d));
	else if (d < 7200)
		snprintf(buf, len, "%lldm ago", (long long)(d / 60));
	else
		snprintf(buf, len, "%lldh ago", (long long)(d / 3600));
}

static int agents_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	(void)user;
	switch (opt) {
	case 'j':
		cli->json = 1;
		return 0;
	case 'C':
		ctl_set_path(arg);
		return 0;
	}
	return -1;
}

static const struct option agents_longopts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "control", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 },
};

int cmd_agents(struct cli *cli, int argc, char **argv)
{
	struct cli_opts o = { "", agents_longopts, agents_opt, NULL, 0 };
	json_t *req, *j, *list = NULL;
	FILE *f;
	int i;

	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || i != argc)
		return cli_usage(cli, "agents [--json] [--control PATH]");
	req = json_pack("{s:s}", "op", "list");
	if (ctl_open(cli, req, &f) != 0) {
		json_decref(req);
		return CLI_EXIT_FAIL;
	}
	json_decref(req);
	while ((j = ctl_read(f)) != NULL) {
		const char *err = json_string_value(json_object_get(j, "error"));

		if (err != NULL) {
			cli_err(cli, "the controller refused: %s", err);
			json_decref(j);
			json_decref(list);
			fclose(f);
			return CLI_EXIT_FAIL;
		}
		if (json_object_get(j, "agents") != NULL && list == NULL)
			list = json_incref(json_object_get(j, "agents"));
		json_decref(j);
	}
	fclose(f);
	if (!json_is_array(list)) {
		json_decref(list);
		cli_err(cli, "the controller closed the control socket without an answer");
		return CLI_EXIT_FAIL;
	}
	if (cli->json) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		printf("\n");
	} else {
		int64_t now = (int64_t)time(NULL);
		size_t k;
		json_t *a;

		printf("%-24s %-24s %-24s %-12s %s\n", "CLIENT_ID", "HOSTNAME", "ADDRESS",
		       "CONNECTED", "LAST_HEARD");
		json_array_foreach(list, k, a)
		{
			char since[32], heard[32];

			fmt_age(json_integer_value(json_object_get(a, "connected_since")), now, since,
				sizeof(since));
			fmt_age(json_integer_value(json_object_get(a, "last_heard")), now, heard,
				sizeof(heard));
			printf("%-24s %-24s %-24s %-12s %s\n",
			       json_string_value(json_object_get(a, "client_id")),
			       json_string_value(json_object_get(a, "hostname"))[0] != '\0'
				       ? json_string_value(json_object_get(a, "hostname"))
				       : "-",
			       json_string_value(json_object_get(a, "address")), since, heard);
		}
	}
	json_decref(list);
	return 0;
}
