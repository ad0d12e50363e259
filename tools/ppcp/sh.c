/*
 * sh.c - `ppcp sh TARGET 'COMMAND LINE'`: COMMAND "shell" (PROTOCOL.md §8.4),
 * which the server runs as /bin/sh -c 'COMMAND LINE' only when it enables a
 * shell (ppcpd --allow-shell).  Everything else is exec's: streaming,
 * stdin, Ctrl-C, exit status (exec.c).
 */
#include <string.h>

#include "cli.h"

static int sh_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct exec_req *req = user;

	(void)cli;
	switch (opt) {
	case 'i':
		req->stdin_mode = 1;
		return 0;
	case 'n':
		req->stdin_mode = -1;
		return 0;
	case 'T':
		req->cmd_timeout_s = cli_parse_seconds(arg, 86400);
		if (req->cmd_timeout_s < 1000)
			return -1;
		req->cmd_timeout_s /= 1000;
		return 0;
	}
	return -1;
}

static const struct option sh_longopts[] = {
	{ "stdin", no_argument, NULL, 'i' },
	{ "no-stdin", no_argument, NULL, 'n' },
	{ "command-timeout", required_argument, NULL, 'T' },
	{ NULL, 0, NULL, 0 },
};

int cmd_sh(struct cli *cli, int argc, char **argv)
{
	static const char synopsis[] = "sh [-i|-n] [--command-timeout S] TARGET 'COMMAND LINE'";
	struct exec_req req;
	struct cli_opts o = { "in", sh_longopts, sh_opt, NULL, 0 };
	int i;

	memset(&req, 0, sizeof(req));
	o.user = &req;
	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || argc - i != 2 || argv[i + 1][0] == '\0')
		return cli_usage(cli, synopsis);
	req.target = argv[i];
	req.shell = argv[i + 1];
	return exec_run(cli, &req);
}
