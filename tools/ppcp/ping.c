/*
 * ping.c - `ppcp ping TARGET [-c N] [-i S]`: HEARTBEAT round trips over an
 * authenticated session, printed like ping(8).  Each HEARTBEAT carries our
 * monotonic clock ("ts"); the HEARTBEAT_ACK with the same "i" ends the
 * round trip (PROTOCOL.md §8, §8.2).  Without -c it runs until Ctrl-C,
 * then prints the statistics.  Exit status: 0 when at least one reply
 * came, 1 when none did, 255 when ppcp fails (cannot find, connect,
 * authenticate, or the session dies).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
	PING_SLOTS = 64,        /* round trips in flight that we remember */
	PING_WAIT_LAST_MS = 5000, /* how long to wait for the last reply */
};

struct probe_slot {
	char id[PPCP_ID_MAX + 1];
	uint64_t t_us;
	unsigned seq;
	int open;
};

struct pingrun {
	struct cli *cli;
	struct sess *s;
	long count;
	int interval_ms;
	unsigned sent, received;
	uint64_t next_send, last_sent_ms, start_ms;
	struct probe_slot slot[PING_SLOTS];
	double min, max, sum, sumsq;
	int stop;
	int sig;
};

static void ping_send(struct pingrun *r, uint64_t now)
{
	struct probe_slot *p = &r->slot[r->sent % PING_SLOTS];
	json_t *pl = json_pack("{s:I}", "ts", (json_int_t)now);

	if (pl == NULL)
		return;
	if (sess_send(r->s, PPCP_MSG_HEARTBEAT, pl, p->id) == 0) {
		p->t_us = cli_now_us();
		p->seq = r->sent + 1;
		p->open = 1;
		r->sent++;
		r->last_sent_ms = now;
	}
	json_decref(pl);
}

static void ping_tick(struct sess_loop *L, uint64_t now)
{
	struct pingrun *r = L->user;

	if (r->count > 0 && r->sent >= (unsigned long)r->count) {
		if (r->received >= r->sent || now >= r->last_sent_ms + PING_WAIT_LAST_MS)
			r->stop = 1;
		L->wake = r->last_sent_ms + PING_WAIT_LAST_MS;
		return;
	}
	if (now >= r->next_send) {
		ping_send(r, now);
		r->next_send = now + (uint64_t)r->interval_ms;
	}
	L->wake = r->next_send;
}

static void ping_message(struct sess *s, const ppcp_msg *m)
{
	struct pingrun *r = s->user;
	size_t i;

	if (m->type != PPCP_MSG_HEARTBEAT_ACK || m->id == NULL)
		return;
	for (i = 0; i < PING_SLOTS; i++) {
		struct probe_slot *p = &r->slot[i];
		double ms;

		if (!p->open || strcmp(p->id, m->id) != 0)
			continue;
		p->open = 0;
		ms = (double)(cli_now_us() - p->t_us) / 1000.0;
		if (r->received == 0 || ms < r->min)
			r->min = ms;
		if (ms > r->max)
			r->max = ms;
		r->sum += ms;
		r->sumsq += ms * ms;
		r->received++;
		if (r->cli->verbose >= 0)
			printf("reply from %s: seq=%u time=%.3f ms\n", s->server_id, p->seq, ms);
		fflush(stdout);
		return;
	}
}

static int ping_stop(struct sess_loop *L)
{
	struct pingrun *r = L->user;

	return r->stop || r->sig || L->s[0]->over;
}

static void ping_signal(struct sess_loop *L, int sig)
{
	struct pingrun *r = L->user;

	r->sig = sig;
}

static int ping_opt(struct cli *cli, int opt, const char *arg, void *user)
{
	struct pingrun *r = user;
	char *end;

	switch (opt) {
	case 'c':
		r->count = strtol(arg, &end, 10);
		if (end == arg || *end != '\0' || r->count < 1 || r->count > 1000000) {
			cli_err(cli, "-c: '%s' is not a count (1-1000000)", arg);
			return -1;
		}
		return 0;
	case 'i':
		r->interval_ms = cli_parse_seconds(arg, 3600);
		if (r->interval_ms < 10) {
			cli_err(cli, "-i: '%s' is not an interval in seconds (at least 0.01)", arg);
			return -1;
		}
		return 0;
	}
	return -1;
}

static const struct option ping_longopts[] = {
	{ "count", required_argument, NULL, 'c' },
	{ "interval", required_argument, NULL, 'i' },
	{ NULL, 0, NULL, 0 },
};

int cmd_ping(struct cli *cli, int argc, char **argv)
{
	struct pingrun r;
	struct cli_opts o = { "c:i:", ping_longopts, ping_opt, NULL, 0 };
	struct sess s, *v[1] = { &s };
	struct sess_loop L;
	unsigned lost;
	int i;

	memset(&r, 0, sizeof(r));
	r.interval_ms = 1000;
	o.user = &r;
	i = cli_parse(cli, argc, argv, &o);
	if (i < 0 || argc - i != 1)
		return cli_usage(cli, "ping [-c N] [-i S] TARGET");
	cli_signals_catch();
	if (resolve_connect(cli, argv[i], &s) != 0)
		return CLI_EXIT_FAIL;
	r.cli = cli;
	r.s = &s;
	s.user = &r;
	s.on_message = ping_message;
	if (cli->verbose >= 0)
		printf("PING %s (%s port %u, %s): HEARTBEAT over an authenticated session\n",
		       s.server_id, s.address, (unsigned)s.port, s.path);
	r.start_ms = cli_now_ms();
	r.next_send = r.start_ms;
	memset(&L, 0, sizeof(L));
	L.s = v;
	L.n = 1;
	L.in_fd = -1;
	L.on_tick = ping_tick;
	L.stop = ping_stop;
	L.on_signal = ping_signal;
	L.deadline = UINT64_MAX;
	L.user = &r;
	(void)sess_loop_run(&L);

	lost = r.sent - r.received;
	printf("--- %s ping statistics ---\n%u sent, %u received, %.0f%% loss, time %llu ms\n",
	       s.server_id, r.sent, r.received, r.sent ? 100.0 * lost / r.sent : 0.0,
	       (unsigned long long)(cli_now_ms() - r.start_ms));
	if (r.received > 0) {
		double avg = r.sum / r.received;
		double var = r.sumsq / r.received - avg * avg;

		printf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", r.min, avg, r.max,
		       sqrt(var > 0 ? var : 0));
	}
	fflush(stdout);
	if (s.over && !r.stop && !r.sig) {
		cli_err(cli, "session with %s ended: %s; %s", s.server_id,
			ppcp_strerror(s.err ? s.err : PPCP_ERR_CLOSED),
			cli_advice(s.err ? s.err : PPCP_ERR_CLOSED));
		sess_free(&s);
		return CLI_EXIT_FAIL;
	}
	sess_bye(&s);
	sess_free(&s);
	return r.received > 0 ? 0 : 1;
}
