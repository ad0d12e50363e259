/*
 * util.c - exit-on-OOM allocation (tools only, never the library),
 * address formatting and the event loop's start.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppcpd.h"

static void util_oom(void)
{
	static const char msg[] = "ppcpd: out of memory\n";

	(void)!fwrite(msg, 1, sizeof(msg) - 1, stderr);
	abort();
}

void *pd_xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		util_oom();
	return p;
}

void *pd_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n != 0 ? n : 1, m != 0 ? m : 1);

	if (p == NULL)
		util_oom();
	return p;
}

static void util_close_noop(uv_handle_t *h)
{
	(void)h;
}

int pd_loop_init(uv_loop_t *loop, uv_signal_t *sigs, size_t nsigs, const char *prog)
{
	size_t i = 0;
	int r = uv_loop_init(loop);

	if (r == 0) {
		for (i = 0; i < nsigs; i++) {
			r = uv_signal_init(loop, &sigs[i]);
			if (r != 0)
				break;
		}
		if (r != 0) {
			while (i-- > 0)
				uv_close((uv_handle_t *)&sigs[i], util_close_noop);
			uv_run(loop, UV_RUN_DEFAULT);
			(void)uv_loop_close(loop);
		}
	}
	if (r != 0)
		fprintf(stderr,
			"%s: cannot start the event loop: %s; raise the open-file limit (ulimit -n) or free memory, then start it again\n",
			prog, uv_strerror(r));
	return r == 0 ? 0 : -1;
}

char *pd_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		util_oom();
	return p;
}

void pd_addr_str(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, cap, "(unknown address)");
	}
}
