/*
 * memprobe.c - heap held by one established, idle server-side ppcp_conn,
 * in memory (no sockets): N client/server pairs are joined by copying bytes
 * between them, exchange a heartbeat, optionally one large COMMAND (--big
 * BYTES: what a session keeps after it once received a large record), and
 * the clients are freed.  Prints malloc's in-use bytes per server
 * connection (mallinfo2 uordblks delta / N), the warm-up pair's one-time
 * allocations excluded.  Used by bench/RESULTS.md.
 *
 *   cc -O2 -Iinclude bench/memprobe.c BUILD/libppcp.a -lcrypto -ljansson -o memprobe
 *   ./memprobe [N] [--big BYTES]
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ppcp.h>

static int established;

static void on_established(ppcp_conn *c, void *user)
{
	(void)c;
	(void)user;
	established++;
}

/* Move bytes both ways until neither side has anything to send. */
static void pump(ppcp_conn *a, ppcp_conn *b)
{
	for (int moved = 1; moved;) {
		const uint8_t *d;
		size_t n;

		moved = 0;
		if ((n = ppcp_conn_out(a, &d)) > 0) {
			(void)ppcp_conn_feed(b, d, n, 0);
			ppcp_conn_out_ack(a, n);
			moved = 1;
		}
		if ((n = ppcp_conn_out(b, &d)) > 0) {
			(void)ppcp_conn_feed(a, d, n, 0);
			ppcp_conn_out_ack(b, n);
			moved = 1;
		}
	}
}

int main(int argc, char **argv)
{
	int n = 1000;
	size_t big = 0;
	uint8_t psk[32];
	ppcp_config sc, cc;
	ppcp_conn **srv, *a, *b;
	struct mallinfo2 m0, m1;
	char *cmd = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--big") == 0 && i + 1 < argc)
			big = (size_t)strtoul(argv[++i], NULL, 10);
		else
			n = atoi(argv[i]);
	}
	if (n < 1)
		return 2;
	memset(psk, 7, sizeof(psk));
	srv = calloc((size_t)n, sizeof(*srv));
	ppcp_config_init(&sc, PPCP_ROLE_SERVER);
	sc.psk = psk;
	sc.psk_len = sizeof(psk);
	sc.server_id = "probe";
	sc.cb.on_established = on_established;
	ppcp_config_init(&cc, PPCP_ROLE_CLIENT);
	cc.psk = psk;
	cc.psk_len = sizeof(psk);
	if (big > 0) {
		cmd = malloc(big + 64);
		memcpy(cmd, "{\"name\":\"echo\",\"args\":{\"text\":\"", 31);
		memset(cmd + 31, 'A', big);
		strcpy(cmd + 31 + big, "\"}}");
	}
	/* One warm-up pair: one-time allocations stay out of the figure. */
	ppcp_conn_new(&b, &sc, 0);
	ppcp_conn_new(&a, &cc, 0);
	pump(a, b);
	ppcp_conn_free(a);
	ppcp_conn_free(b);
	established = 0;

	m0 = mallinfo2();
	for (int i = 0; i < n; i++) {
		if (ppcp_conn_new(&srv[i], &sc, 0) != 0 || ppcp_conn_new(&a, &cc, 0) != 0)
			return 1;
		pump(a, srv[i]);
		(void)ppcp_conn_send_json(a, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":1}", NULL);
		pump(a, srv[i]);
		if (cmd != NULL) {
			int r = ppcp_conn_send_json(a, PPCP_MSG_COMMAND, NULL, cmd, NULL);
			if (r != 0) {
				fprintf(stderr, "memprobe: %s\n", ppcp_strerror(r));
				return 1;
			}
			pump(a, srv[i]);
		}
		ppcp_conn_free(a);
	}
	m1 = mallinfo2();
	printf("%d of %d established; heap in use per idle server ppcp_conn%s: %.0f bytes\n",
	       established, n, cmd != NULL ? " after one large COMMAND" : "",
	       (double)(m1.uordblks - m0.uordblks) / n);
	for (int i = 0; i < n; i++)
		ppcp_conn_free(srv[i]);
	free(srv);
	free(cmd);
	return 0;
}
