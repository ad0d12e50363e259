/*
 * main.c - ppcpd's startup and shutdown.
 *
 *   1. core dumps off (RLIMIT_CORE 0, PR_SET_DUMPABLE 0) before any secret
 *      is in memory; SIGPIPE ignored (libuv resets it in children);
 *   2. options and configuration file (config.c; exit 2 on any error);
 *   3. PSK (ppcp_psk_load), host name and server_id (ident.c; exit 1);
 *   4. listeners and discovery (server.c, disco.c; exit 1);
 *   5. the loop, until SIGTERM or SIGINT: then BYE to every session, kill
 *      every command, flush, exit 0.  The signal handles are unreferenced,
 *      so the loop ends by itself once everything else has closed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <errno.h>

#include "ppcpd.h"

static void main_no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	/* Keys and the PSK must never reach a core file (adversarial T47). */
	if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "ppcpd: cannot disable core dumps: %s\n", strerror(errno));
		exit(1);
	}
}

/* Descriptors inherited from whoever started us (beyond 0, 1, 2) must not
 * reach the commands: libuv opens its own with O_CLOEXEC, these get the
 * flag here.  They stay open in the daemon, which never uses them. */
static void main_cloexec_inherited(void)
{
	DIR *dir;
	struct dirent *e;

	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return; /* Linux 5.11 and later */
	dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return;
	while ((e = readdir(dir)) != NULL) {
		int fd = atoi(e->d_name);

		if (fd > 2 && fd != dirfd(dir))
			(void)fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	}
	closedir(dir);
}

static const char *main_psk_hint(int err, int e)
{
	switch (err) {
	case PPCP_ERR_PSK_OPEN:
		if (e == EACCES || e == EPERM)
			return "run ppcpd as the user who owns it, or give that user read access";
		if (e != 0 && e != ENOENT && e != ENOTDIR)
			return "fix that, then start ppcpd again";
		return "create one with 'ppcp keygen FILE' and pass --psk-file FILE";
	case PPCP_ERR_PSK_PERMS:
		return "run chmod 600 on it";
	case PPCP_ERR_PSK_OWNER:
		return "chown it to the user that runs ppcpd";
	case PPCP_ERR_PSK_NOT_REGULAR:
		return "point --psk-file at the file itself, not a link";
	default:
		return "make a new one with 'ppcp keygen FILE' and copy it to every machine";
	}
}

static void main_on_signal(uv_signal_t *h, int signum)
{
	struct pd_daemon *d = h->data;

	const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";

	if (d->shutting_down) {
		pd_info("%s again: still shutting down", name);
		return;
	}
	pd_info("%s: shutting down", name);
	pd_files_shutdown(d);
	pd_server_shutdown(d);
}

static void main_on_sighup(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	pd_info("SIGHUP ignored: restart ppcpd to apply a new configuration");
}

static void main_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void main_policy_line(const struct pd_config *cfg)
{
	char list[512], safe[512];
	size_t o = 0;

	list[0] = '\0';
	if (cfg->exec_all)
		snprintf(list, sizeof(list), "*");
	for (size_t i = 0; i < cfg->nexec_allow && o < sizeof(list); i++) {
		int k = snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "", cfg->exec_allow[i]);
		if (k < 0)
			break;
		o += (size_t)k;
	}
	pd_info("policy: allow-exec '%s', allow-shell %s, max-commands %u, command-timeout %u s, max-output %llu bytes",
		list[0] != '\0' ? pd_log_safe(safe, sizeof(safe), list) : "(none)",
		cfg->allow_shell ? "on" : "off", cfg->max_commands, cfg->command_timeout_s,
		(unsigned long long)cfg->max_output);
	if (cfg->file_root == NULL)
		pd_info("policy: file transfer off (no file-root)");
	else
		pd_info("policy: file-root '%s', uploads %s, max-transfers %u, max-file-size %llu bytes",
			pd_log_safe(safe, sizeof(safe), cfg->file_root),
			cfg->allow_put ? "allowed (allow-put)" : "refused", cfg->max_transfers,
			(unsigned long long)cfg->max_file_size);
}

int main(int argc, char **argv)
{
	static struct pd_config cfg;
	static struct pd_daemon d;
	uv_loop_t loop;
	uv_signal_t sigs[3], *sig_term = &sigs[0], *sig_int = &sigs[1], *sig_hup = &sigs[2];
	int r, status = 0;

	/* Before anything uses OpenSSL (ppcp.h says why). */
	if (ppcp_crypto_wipe_freed() != 0)
		fprintf(stderr, "ppcpd: warning: OpenSSL's freed memory will not be wiped\n");
	main_no_core_dumps();
	main_cloexec_inherited();
	signal(SIGPIPE, SIG_IGN);
	pd_config_load(&cfg, argc, argv);
	pd_log_set_level(cfg.log_level);

	errno = 0;
	r = ppcp_psk_load(cfg.psk_file, d.psk);
	if (r != 0) {
		int e = errno;

		fprintf(stderr, "ppcpd: cannot use the PSK file %s: %s%s%s: %s\n", cfg.psk_file,
			ppcp_strerror(r), r == PPCP_ERR_PSK_OPEN && e != 0 ? ": " : "",
			r == PPCP_ERR_PSK_OPEN && e != 0 ? strerror(e) : "", main_psk_hint(r, e));
		pd_config_free(&cfg);
		return 1;
	}
	ppcp_hostname_ident(d.hostname);
	if (pd_server_id(&cfg, d.hostname, d.server_id) != 0) {
		ppcp_wipe(d.psk, sizeof(d.psk));
		pd_config_free(&cfg);
		return 1;
	}

	if (pd_loop_init(&loop, sigs, 3, "ppcpd") != 0) {
		ppcp_wipe(d.psk, sizeof(d.psk));
		pd_config_free(&cfg);
		return 1;
	}
	d.loop = &loop;
	d.cfg = &cfg;
	sig_term->data = sig_int->data = sig_hup->data = &d;
	uv_signal_start(sig_term, main_on_signal, SIGTERM);
	uv_signal_start(sig_int, main_on_signal, SIGINT);
	uv_signal_start(sig_hup, main_on_sighup, SIGHUP);
	uv_unref((uv_handle_t *)sig_term);
	uv_unref((uv_handle_t *)sig_int);
	uv_unref((uv_handle_t *)sig_hup);

	if (pd_files_init(&d) != 0) {
		status = 1;
	} else if (pd_server_start(&d) != 0 || pd_ctl_start(&d) != 0) {
		status = 1;
		pd_server_shutdown(&d);
	} else {
		/* Files named on the command line were read; commands run in /. */
		if (chdir("/") != 0)
			pd_warn("chdir /: %s", strerror(errno));
		pd_info("ppcpd %s started: server_id '%s', hostname '%s'", PPCP_VERSION_STRING,
			d.server_id, d.hostname);
		main_policy_line(&cfg);
	}
	uv_run(&loop, UV_RUN_DEFAULT);

	/* Close what is left (signal handles, an unfired shutdown timer). */
	uv_walk(&loop, main_close_walk, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		pd_warn("event loop closed with handles still open");
	pd_server_free(&d);
	pd_disco_free(&d);
	pd_files_free(&d);
	pd_ctl_free(&d);
	ppcp_wipe(d.psk, sizeof(d.psk));
	if (status == 0)
		pd_info("stopped");
	pd_config_free(&cfg);
	return status;
}
