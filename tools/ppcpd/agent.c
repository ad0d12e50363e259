/*
 * agent.c - `ppcp agent`: the seed diagram's direction (PROTOCOL.md §11
 * "agent").  The machine whose address changes runs the CLIENT: it finds
 * a controller (a ppcpd with accept-agents) by discovery, keeps one
 * session open to it, and runs what the controller sends (COMMAND,
 * FILE_REQUEST) under its own local policy, with the daemon's own code:
 * server.c runs the session in the client role, command.c, exec.c and
 * files.c do the rest exactly as in ppcpd.
 *
 *   discovery  ppcp_find_server in the threadpool (a blocking call kept off
 *              the loop): a PING to --discover-addr (else $PPCP_DISCOVER_ADDR,
 *              else broadcast) on --port; only PONGs that list "agent".
 *              --server-id names the controller; else the one found first,
 *              and the same one again after a reconnect when it answers.
 *   session    client role, extensions PPCP_EXT_ALL | PPCP_EXT_AGENT, the
 *              controller's server_id expected (the handshake proves it),
 *              client_id = --client-id or the host name.  Heartbeats both
 *              ways are the engine's.
 *   reconnect  after a failed attempt or a session that ended: 0.5 s,
 *              doubling to 10 s, each delay drawn in [d/2, d] (jitter); a
 *              session that was established resets it.  Discovery runs
 *              again every time, so a controller that moved is found at
 *              its new address.
 *   network    every 2 s the session's local address must still be on an
 *              interface; when it is gone (DHCP renew, another network)
 *              the session is dropped and the agent reconnects at once
 *              instead of waiting for the idle timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ppcpd.h"

enum {
	AG_BACKOFF_MIN_MS = 500,
	AG_BACKOFF_MAX_MS = 10000,
	AG_DISCOVER_MS = 1000,
	AG_NETCHECK_MS = 2000,
	AG_MAX_FOUND = 32,
};

struct pd_agent {
	struct pd_daemon *d;
	uv_timer_t retry;
	uv_timer_t netcheck;
	uv_work_t work;
	int discovering;
	struct pd_session *s;
	int established;
	unsigned failures;
	char known_id[PPCP_ID_MAX + 1]; /* the controller of the last session */
	unsigned targeted_misses;
	/* discovery, filled in the threadpool */
	const char *addrs[PD_MAX_DISCOVER];
	char target[PPCP_ID_MAX + 1];
	ppcp_server_info found[AG_MAX_FOUND];
	size_t nfound;
	int find_err;
};

static void ag_schedule(struct pd_agent *a);

static uint64_t ag_backoff(struct pd_agent *a)
{
	uint64_t d = AG_BACKOFF_MIN_MS;

	for (unsigned i = 0; i < a->failures && d < AG_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > AG_BACKOFF_MAX_MS)
		d = AG_BACKOFF_MAX_MS;
	return d / 2 + (uint64_t)(random() % (long)(d / 2 + 1));
}

/* ---- discovery (threadpool) ------------------------------------------------ */

static void ag_find_work(uv_work_t *w)
{
	struct pd_agent *a = w->data;
	const struct pd_config *cfg = a->d->cfg;
	ppcp_find_options fo;

	memset(&fo, 0, sizeof(fo));
	if (cfg->ndiscover > 0) {
		fo.addrs = a->addrs;
		fo.naddrs = cfg->ndiscover;
	}
	fo.target = a->target[0] != '\0' ? a->target : NULL;
	fo.timeout_ms = AG_DISCOVER_MS;
	a->nfound = 0;
	a->find_err = ppcp_find_server((uint16_t)cfg->port, &fo, a->found, AG_MAX_FOUND, &a->nfound);
}

static void ag_find_done(uv_work_t *w, int status)
{
	struct pd_agent *a = w->data;
	struct pd_daemon *d = a->d;
	const ppcp_server_info *pick = NULL;
	struct sockaddr_storage ss;
	char safe[PPCP_ID_MAX * 4 + 1];
	int r;

	a->discovering = 0;
	if (d->shutting_down || status != 0)
		return;
	for (size_t i = 0; i < a->nfound; i++) {
		const ppcp_server_info *si = &a->found[i];

		if (!(si->pong.capabilities & PPCP_EXT_AGENT))
			continue;
		if (pick == NULL || strcmp(si->pong.server_id, a->known_id) == 0)
			pick = si;
	}
	if (pick == NULL) {
		if (a->target[0] != '\0' && d->cfg->server_id == NULL)
			a->targeted_misses++;
		if (a->find_err != 0 && a->find_err != PPCP_ERR_NOT_FOUND)
			pd_warn("discovery failed: %s", ppcp_strerror(a->find_err));
		else if (a->nfound > 0)
			pd_info("no controller found: %zu server%s answered, none accepts agents "
				"(start the controller with --accept-agents)",
				a->nfound, a->nfound == 1 ? "" : "s");
		else
			pd_info("no controller %s%s%sanswered on port %u",
				a->target[0] != '\0' ? "'" : "",
				a->target[0] != '\0' ? pd_log_safe(safe, sizeof(safe), a->target) : "",
				a->target[0] != '\0' ? "' " : "", (unsigned)d->cfg->port);
		a->failures++;
		ag_schedule(a);
		return;
	}
	a->targeted_misses = 0;
	memset(&ss, 0, sizeof(ss));
	if (strchr(pick->address, ':') != NULL)
		r = uv_ip6_addr(pick->address, pick->port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(pick->address, pick->port, (struct sockaddr_in *)&ss);
	if (r != 0) {
		pd_warn("controller '%s' answered from an unusable address %s",
			pd_log_safe(safe, sizeof(safe), pick->pong.server_id), pick->address);
		a->failures++;
		ag_schedule(a);
		return;
	}
	pd_info("controller '%s' found at %s port %u (rtt %u us): connecting",
		pd_log_safe(safe, sizeof(safe), pick->pong.server_id), pick->address,
		(unsigned)pick->port, (unsigned)pick->rtt_us);
	a->established = 0;
	/* The handshake proves it is the server that answered (sid_hash). */
	r = pd_session_connect(d, (struct sockaddr *)&ss, pick->pong.server_id, d->server_id, &a->s);
	if (r != 0) {
		a->s = NULL;
		a->failures++;
		ag_schedule(a);
	}
}

static void ag_discover(uv_timer_t *t)
{
	struct pd_agent *a = t->data;
	const struct pd_config *cfg = a->d->cfg;

	if (a->d->shutting_down || a->discovering || a->s != NULL)
		return;
	if (cfg->server_id != NULL)
		snprintf(a->target, sizeof(a->target), "%s", cfg->server_id);
	else if (a->known_id[0] != '\0' && a->targeted_misses < 2)
		snprintf(a->target, sizeof(a->target), "%s", a->known_id);
	else
		a->target[0] = '\0';
	a->discovering = 1;
	a->work.data = a;
	if (uv_queue_work(a->d->loop, &a->work, ag_find_work, ag_find_done) != 0) {
		a->discovering = 0;
		a->failures++;
		ag_schedule(a);
	}
}

static void ag_schedule(struct pd_agent *a)
{
	uint64_t delay;

	if (a->d->shutting_down)
		return;
	delay = ag_backoff(a);
	pd_debug("next attempt in %llu ms", (unsigned long long)delay);
	uv_timer_start(&a->retry, ag_discover, delay, 0);
}

/* ---- the session ------------------------------------------------------------- */

void pd_agent_on_established(struct pd_session *s)
{
	struct pd_agent *a = pd_session_daemon(s)->agent;
	ppcp_conn *c = pd_session_conn(s);
	char safe[PPCP_ID_MAX * 4 + 1];

	if (a == NULL || a->s != s)
		return;
	pd_log_safe(safe, sizeof(safe), ppcp_conn_peer_id(c));
	if (!(ppcp_conn_extensions(c) & PPCP_EXT_AGENT)) {
		pd_warn("server '%s' does not accept agents (start it with --accept-agents)", safe);
		a->failures++;
		pd_session_drop(s, "the server does not accept agents");
		return;
	}
	a->established = 1;
	a->failures = 0;
	snprintf(a->known_id, sizeof(a->known_id), "%s", ppcp_conn_peer_id(c));
	pd_info("connected to controller '%s' at %s as '%s'", safe, pd_session_name(s),
		a->d->server_id);
}

void pd_agent_on_closed(struct pd_session *s)
{
	struct pd_agent *a = pd_session_daemon(s)->agent;

	if (a == NULL || a->s != s)
		return;
	a->s = NULL;
	if (a->d->shutting_down)
		return;
	if (a->established)
		pd_info("session with the controller ended: reconnecting");
	else
		a->failures++;
	a->established = 0;
	ag_schedule(a);
}

/* Is the session's local address still on an interface? */
static void ag_netcheck(uv_timer_t *t)
{
	struct pd_agent *a = t->data;
	struct sockaddr_storage local;
	uv_interface_address_t *ifs;
	int nifs, found = 0;
	char name[80];

	if (a->s == NULL || !a->established || a->d->shutting_down)
		return;
	if (pd_session_sockname(a->s, &local) != 0)
		return;
	if (uv_interface_addresses(&ifs, &nifs) != 0)
		return;
	for (int i = 0; i < nifs && !found; i++) {
		const struct sockaddr *ia = (const struct sockaddr *)&ifs[i].address;

		if (ia->sa_family != local.ss_family)
			continue;
		if (ia->sa_family == AF_INET)
			found = memcmp(&((const struct sockaddr_in *)ia)->sin_addr,
				       &((const struct sockaddr_in *)&local)->sin_addr, 4) == 0;
		else if (ia->sa_family == AF_INET6)
			found = memcmp(&((const struct sockaddr_in6 *)ia)->sin6_addr,
				       &((const struct sockaddr_in6 *)&local)->sin6_addr, 16) == 0;
	}
	uv_free_interface_addresses(ifs, nifs);
	if (found)
		return;
	pd_addr_str((struct sockaddr *)&local, name, sizeof(name));
	pd_info("network change: our address %s is gone", name);
	a->failures = 0;
	pd_session_drop(a->s, "network change");
}

/* ---- the program --------------------------------------------------------- */

static void ag_on_signal(uv_signal_t *h, int signum)
{
	struct pd_daemon *d = h->data;
	struct pd_agent *a = d->agent;

	if (d->shutting_down)
		return;
	pd_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	uv_timer_stop(&a->retry);
	uv_timer_stop(&a->netcheck);
	uv_unref((uv_handle_t *)&a->retry);
	uv_unref((uv_handle_t *)&a->netcheck);
	pd_files_shutdown(d);
	pd_server_shutdown(d);
}

static void ag_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int pd_agent_main(int argc, char **argv)
{
	static struct pd_config cfg;
	static struct pd_daemon d;
	static struct pd_agent a;
	struct rlimit rl = { 0, 0 };
	uv_loop_t loop;
	uv_signal_t sigs[2], *sig_term = &sigs[0], *sig_int = &sigs[1];
	char safe[PPCP_ID_MAX * 4 + 1];
	int r, status = 0;

	/* Keys and the PSK must never reach a core file. */
	if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "ppcp agent: cannot disable core dumps: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	pd_config_load_agent(&cfg, argc, argv);
	pd_log_set_level(cfg.log_level);

	errno = 0;
	r = ppcp_psk_load(cfg.psk_file, d.psk);
	if (r != 0) {
		fprintf(stderr, "ppcp agent: cannot use the PSK file %s: %s%s%s: pass --psk-file FILE (made by 'ppcp keygen FILE', mode 600)\n",
			cfg.psk_file, ppcp_strerror(r), r == PPCP_ERR_PSK_OPEN && errno != 0 ? ": " : "",
			r == PPCP_ERR_PSK_OPEN && errno != 0 ? strerror(errno) : "");
		pd_config_free(&cfg);
		return 1;
	}
	ppcp_hostname_ident(d.hostname);
	/* What the controller lists us as, and what status answers. */
	snprintf(d.server_id, sizeof(d.server_id), "%s",
		 cfg.client_id != NULL ? cfg.client_id : d.hostname);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	if (pd_loop_init(&loop, sigs, 2, "ppcp agent") != 0) {
		ppcp_wipe(d.psk, sizeof(d.psk));
		pd_config_free(&cfg);
		return 1;
	}
	d.loop = &loop;
	d.cfg = &cfg;
	d.agent = &a;
	a.d = &d;
	for (size_t i = 0; i < cfg.ndiscover; i++)
		a.addrs[i] = cfg.discover[i];
	uv_timer_init(&loop, &a.retry);
	uv_timer_init(&loop, &a.netcheck);
	a.retry.data = a.netcheck.data = &a;
	sig_term->data = sig_int->data = &d;
	uv_signal_start(sig_term, ag_on_signal, SIGTERM);
	uv_signal_start(sig_int, ag_on_signal, SIGINT);
	uv_unref((uv_handle_t *)sig_term);
	uv_unref((uv_handle_t *)sig_int);
	pd_server_init(&d);

	if (pd_files_init(&d) != 0) {
		status = 1;
	} else {
		if (chdir("/") != 0)
			pd_warn("chdir /: %s", strerror(errno));
		pd_info("ppcp agent %s started: client_id '%s', looking for %s%s%s on port %u",
			PPCP_VERSION_STRING, pd_log_safe(safe, sizeof(safe), d.server_id),
			cfg.server_id != NULL ? "controller '" : "a controller",
			cfg.server_id != NULL ? cfg.server_id : "", cfg.server_id != NULL ? "'" : "",
			(unsigned)cfg.port);
		uv_timer_start(&a.netcheck, ag_netcheck, AG_NETCHECK_MS, AG_NETCHECK_MS);
		uv_timer_start(&a.retry, ag_discover, 0, 0);
		uv_run(&loop, UV_RUN_DEFAULT);
	}

	uv_walk(&loop, ag_close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		pd_warn("event loop closed with handles still open");
	pd_server_free(&d);
	pd_files_free(&d);
	ppcp_wipe(d.psk, sizeof(d.psk));
	if (status == 0)
		pd_info("stopped");
	pd_config_free(&cfg);
	return status;
}
