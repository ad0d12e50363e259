/*
 * cache.c - the client's memory of where servers were: server_id -> its last
 * addresses, so that an address change costs one PING (design.md §3) and a
 * name resolves without any PING while the server stays where it was.
 *
 * The file is $XDG_STATE_HOME/ppcp/servers.json, else
 * ~/.local/state/ppcp/servers.json:
 *
 *   {"servers": {"srv-01": {"hostname": "node-01", "port": 9000,
 *                           "addresses": ["10.0.0.7", "fe80::1%eth0"],
 *                           "seen": 1700000000}}}
 *
 * Only authenticated facts go in: an address is remembered after a
 * handshake there proved the server_id, never from a PONG alone, so a
 * spoofed PONG cannot steer later connections.  Writes go to a temporary
 * file in the same directory (mode 0600) which is then renamed over the
 * old one, so a reader sees the old or the new file, never half of one.
 * Two ppcp processes writing at once may lose one update; it is a cache.
 * A cache that cannot be read or written is ignored with a warning: it
 * never stops a command.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum {
	CACHE_MAX_SERVERS = 256,
	CACHE_MAX_BYTES = 1024 * 1024,
};

int cache_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/ppcp/servers.json", xdg);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, len, "%s/.local/state/ppcp/servers.json", home);
	else
		return -1;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The cache as a JSON object; an empty one when there is no usable file. */
static json_t *cache_load(void)
{
	char path[4096];
	json_t *root = NULL;
	json_error_t jerr;
	struct stat st;
	int fd;

	if (cache_path(path, sizeof(path)) == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			/* One read of the whole file (json_loadfd reads a byte
			 * at a time). */
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			    st.st_size <= CACHE_MAX_BYTES) {
				char *buf = malloc((size_t)st.st_size + 1);
				ssize_t r = buf != NULL ? read(fd, buf, (size_t)st.st_size) : -1;
				if (r == st.st_size)
					root = json_loadb(buf, (size_t)r, JSON_REJECT_DUPLICATES,
							  &jerr);
				free(buf);
			}
			close(fd);
		}
	}
	if (root == NULL || !json_is_object(root) ||
	    !json_is_object(json_object_get(root, "servers"))) {
		json_decref(root);
		root = json_pack("{s:{}}", "servers");
	}
	return root;
}

static int cache_valid_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > PPCP_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void cache_fill(struct cache_entry *e, const char *id, json_t *v)
{
	json_t *a = json_object_get(v, "addresses"), *x;
	const char *h = json_string_value(json_object_get(v, "hostname"));
	json_int_t port = json_integer_value(json_object_get(v, "port"));
	size_t i;

	memset(e, 0, sizeof(*e));
	snprintf(e->server_id, sizeof(e->server_id), "%s", id);
	if (h != NULL && cache_valid_id(h))
		snprintf(e->hostname, sizeof(e->hostname), "%s", h);
	e->port = port >= 1 && port <= 65535 ? (uint16_t)port : 0;
	json_array_foreach(a, i, x)
	{
		const char *s = json_string_value(x);

		if (e->naddr == CLI_CACHE_ADDRS)
			break;
		if (s == NULL || strlen(s) >= CLI_ADDR_MAX || s[0] == '\0')
			continue;
		snprintf(e->addr[e->naddr++], CLI_ADDR_MAX, "%s", s);
	}
}

int cache_lookup(const char *name, struct cache_entry *e, char *ambiguous, size_t alen)
{
	json_t *root = cache_load(), *servers = json_object_get(root, "servers"), *v;
	const char *id;
	int found = 0;

	if (ambiguous != NULL && alen > 0)
		ambiguous[0] = '\0';
	v = json_object_get(servers, name);
	if (v != NULL && json_is_object(v)) {
		cache_fill(e, name, v);
		json_decref(root);
		return 1;
	}
	json_object_foreach(servers, id, v)
	{
		const char *h = json_string_value(json_object_get(v, "hostname"));

		if (h == NULL || strcmp(h, name) != 0 || !cache_valid_id(id))
			continue;
		if (found == 0)
			cache_fill(e, id, v);
		if (ambiguous != NULL) {
			size_t used = strlen(ambiguous);
			snprintf(ambiguous + used, alen - used, "%s%s", used ? ", " : "", id);
		}
		found++;
	}
	json_decref(root);
	if (found > 1)
		return -2;
	return found;
}

/* Create the directories of path (mode 0700) up to its last component. */
static int cache_mkdirs(char *path)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int cache_save(json_t *root)
{
	char path[4096], tmp[4200];
	char *text = NULL;
	size_t len, off = 0;
	int fd = -1, ret = -1;

	if (cache_path(path, sizeof(path)) != 0 || cache_mkdirs(path) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (text == NULL)
		return -1;
	len = strlen(text);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (fchmod(fd, 0600) != 0)
		goto out_unlink;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out_unlink;
		off += (size_t)w;
	}
	/* No fsync: the rename keeps the file whole, and a cache that loses
	 * its last update in a crash costs one discovery. */
	if (write(fd, "\n", 1) != 1)
		goto out_unlink;
	if (close(fd) != 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out_unlink;
	ret = 0;
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return ret;
}

/* Drop the least recently seen servers beyond the limit. */
static void cache_trim(json_t *servers)
{
	while (json_object_size(servers) > CACHE_MAX_SERVERS) {
		const char *id, *oldest = NULL;
		json_int_t oldest_seen = 0;
		json_t *v;

		json_object_foreach(servers, id, v)
		{
			json_int_t seen = json_integer_value(json_object_get(v, "seen"));
			if (oldest == NULL || seen < oldest_seen) {
				oldest = id;
				oldest_seen = seen;
			}
		}
		if (oldest == NULL)
			break;
		json_object_del(servers, oldest);
	}
}

void cache_remember(const struct cli *cli, const char *server_id, const char *hostname,
		    const char *address, uint16_t port)
{
	json_t *root, *servers, *v, *addrs, *na;
	size_t i;

	if (server_id == NULL || !cache_valid_id(server_id) || address == NULL ||
	    address[0] == '\0' || strlen(address) >= CLI_ADDR_MAX)
		return;
	root = cache_load();
	servers = json_object_get(root, "servers");
	v = json_object_get(servers, server_id);
	if (v != NULL && json_is_object(v)) {
		/* Nothing new and seen within the hour: leave the file alone
		 * (every exec would otherwise rewrite it). */
		const char *first = json_string_value(json_array_get(json_object_get(v, "addresses"), 0));
		const char *host = json_string_value(json_object_get(v, "hostname"));
		json_int_t seen = json_integer_value(json_object_get(v, "seen"));
		if (first != NULL && strcmp(first, address) == 0 &&
		    json_integer_value(json_object_get(v, "port")) == port &&
		    (hostname == NULL || hostname[0] == '\0' ||
		     (host != NULL && strcmp(host, hostname) == 0)) &&
		    (json_int_t)time(NULL) - seen < 3600 && (json_int_t)time(NULL) >= seen) {
			json_decref(root);
			return;
		}
	}
	if (v == NULL || !json_is_object(v)) {
		v = json_object();
		json_object_set_new(servers, server_id, v);
	}
	if (hostname != NULL && hostname[0] != '\0' && cache_valid_id(hostname))
		json_object_set_new(v, "hostname", json_string(hostname));
	if (port != 0)
		json_object_set_new(v, "port", json_integer(port));
	json_object_set_new(v, "seen", json_integer((json_int_t)time(NULL)));

	/* The new address first, then the old ones, at most CLI_CACHE_ADDRS. */
	na = json_array();
	json_array_append_new(na, json_string(address));
	addrs = json_object_get(v, "addresses");
	for (i = 0; i < json_array_size(addrs) && json_array_size(na) < CLI_CACHE_ADDRS; i++) {
		const char *a = json_string_value(json_array_get(addrs, i));
		if (a != NULL && strcmp(a, address) != 0 && strlen(a) < CLI_ADDR_MAX)
			json_array_append_new(na, json_string(a));
	}
	json_object_set_new(v, "addresses", na);
	cache_trim(servers);

	if (cache_save(root) != 0) {
		char path[4096];

		if (cache_path(path, sizeof(path)) != 0)
			snprintf(path, sizeof(path), "(no $HOME)");
		cli_info(cli, 1, "cannot update the server cache %s: %s", path, strerror(errno));
	}
	json_decref(root);
}
