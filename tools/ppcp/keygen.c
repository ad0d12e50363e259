/*
 * keygen.c - `ppcp keygen FILE`: a new PSK, 32 random bytes as 64 hex
 * characters, in a new file of mode 0600 (ppcp_psk_generate: O_EXCL, so an
 * existing file, or a symlink, is never overwritten).  Missing parent
 * directories are created with mode 0700, so `ppcp keygen
 * ~/.config/ppcp/psk` works on a fresh account.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* mkdir -p of path's directory, each new level with mode 0700. */
static void make_parent(const char *path)
{
	char dir[4096];
	char *p;

	if (strlen(path) >= sizeof(dir))
		return;
	snprintf(dir, sizeof(dir), "%s", path);
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(dir, 0700); /* EEXIST is fine; other errors show at create */
		*p = '/';
	}
}

int cmd_keygen(struct cli *cli, int argc, char **argv)
{
	int i, ret;

	i = cli_parse(cli, argc, argv, NULL);
	if (i < 0 || argc - i != 1)
		return cli_usage(cli, "keygen FILE");
	make_parent(argv[i]);
	ret = ppcp_psk_generate(argv[i]);
	if (ret == PPCP_ERR_EXISTS) {
		cli_err(cli, "%s already exists: refusing to overwrite it (a PSK in use would be "
			     "lost); choose another name, or remove the file first",
			argv[i]);
		return CLI_EXIT_FAIL;
	}
	if (ret < 0) {
		cli_err(cli, "cannot create %s: %s%s%s", argv[i], ppcp_strerror(ret),
			ret == PPCP_ERR_PSK_OPEN ? ": " : "",
			ret == PPCP_ERR_PSK_OPEN ? strerror(errno) : "");
		return CLI_EXIT_FAIL;
	}
	cli_info(cli, 0, "wrote a new PSK to %s (mode 0600); give the same file to ppcpd "
			 "(--psk-file) and to ppcp (--psk-file or PPCP_PSK_FILE)",
		 argv[i]);
	return 0;
}
