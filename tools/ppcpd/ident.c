/*
 * ident.c - who this server says it is.
 *
 * hostname:  gethostname() reduced to PROTOCOL.md §10.3 characters
 *            ([A-Za-z0-9._-], 1 to 64): every other byte becomes '-'.
 * server_id: --server-id / server-id when given; else the content of
 *            STATE_DIR/server-id; else a new one, HOSTNAME-xxxxxx (six hex
 *            digits from the kernel's RNG), written there atomically (a
 *            temporary file, fsync, rename) so every later start reuses it
 *            and clients that remember it keep finding this machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h" /* ppcp__valid_ident */
#include "ppcpd.h"

/* Read STATE_DIR/server-id: 1 if it held a valid id, 0 if it does not
 * exist, -1 (after a message) if it cannot be read or is not valid. */
static int ident_read(const char *path, char out[PPCP_ID_MAX + 1])
{
	char buf[PPCP_ID_MAX + 4];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "ppcpd: cannot read the server id from %s: %s: fix the file or pass --server-id ID\n",
			path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "ppcpd: cannot read the server id from %s: %s: fix the file or pass --server-id ID\n",
			path, strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (!ppcp__valid_ident(buf)) {
		fprintf(stderr, "ppcpd: %s does not hold a valid server id (1 to 64 of A-Z a-z 0-9 . _ -): delete it to get a new one, or pass --server-id ID\n",
			path);
		return -1;
	}
	memcpy(out, buf, (size_t)n + 1);
	return 1;
}

static int ident_write(const char *dir, const char *path, const char *id)
{
	char tmp[4096 + 32];
	size_t len = strlen(id);
	int fd, ok;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "ppcpd: cannot create the state directory %s: %s: create it, pass --state-dir DIR, or pass --server-id ID\n",
			dir, strerror(errno));
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		fprintf(stderr, "ppcpd: cannot store the server id in %s: %s: make the directory writable, pass --state-dir DIR, or pass --server-id ID\n",
			path, strerror(errno));
		return -1;
	}
	ok = write(fd, id, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		fprintf(stderr, "ppcpd: cannot store the server id in %s: %s: make the directory writable, pass --state-dir DIR, or pass --server-id ID\n",
			path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int pd_server_id(const struct pd_config *cfg, const char *hostname, char out[PPCP_ID_MAX + 1])
{
	char path[4096];
	uint8_t r[3];
	size_t hl;
	int ret;

	if (cfg->server_id != NULL) {
		snprintf(out, PPCP_ID_MAX + 1, "%s", cfg->server_id);
		return 0;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/server-id", cfg->state_dir) >= sizeof(path)) {
		fprintf(stderr, "ppcpd: --state-dir is too long: choose a shorter path\n");
		return -1;
	}
	ret = ident_read(path, out);
	if (ret != 0)
		return ret > 0 ? 0 : -1;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		fprintf(stderr, "ppcpd: the kernel's random number generator failed: %s\n",
			strerror(errno));
		return -1;
	}
	/* HOSTNAME-xxxxxx within 64 bytes. */
	hl = strlen(hostname);
	if (hl > PPCP_ID_MAX - 7)
		hl = PPCP_ID_MAX - 7;
	snprintf(out, PPCP_ID_MAX + 1, "%.*s-%02x%02x%02x", (int)hl, hostname, r[0], r[1], r[2]);
	if (ident_write(cfg->state_dir, path, out) != 0)
		return -1;
	return 0;
}
