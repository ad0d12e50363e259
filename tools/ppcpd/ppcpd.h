/*
 * ppcpd.h - declarations shared by the files of the daemon.
 *
 *   main.c    startup and shutdown: options, PSK, identity, signals, the loop
 *   config.c  command-line flags and the configuration file (inih)
 *   ident.c   server_id (given, or generated once and kept in the state
 *             directory) and the sanitised host name
 *   log.c     one line per event on stderr, with a level
 *   server.c  TCP listeners and sessions: one ppcp_conn per connection,
 *             write queue, timers, handshake limits
 *   command.c COMMAND dispatch: policy, argument checks, status, stdin, cancel
 *   exec.c    child processes: spawn, output pipes, timeouts, kills, reaping
 *   files.c   FILE_REQUEST get, put and list beneath file-root (threadpool)
 *   disco.c   UDP discovery: PING in, rate-limited PONG out
 *
 * libuv lives only in tools/ (docs/design.md §2); the protocol is libppcp's.
 */
#ifndef PPCPD_H
#define PPCPD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "ppcp.h"

/* ---- limits and defaults ------------------------------------------------ */
enum {
	PD_MAX_LISTEN = 16,
	PD_MAX_DISCOVER = 32,
	PD_DEFAULT_COMMAND_TIMEOUT_S = 600,
	PD_MAX_COMMAND_TIMEOUT_S = 86400,
	PD_DEFAULT_MAX_COMMANDS = 16,
	PD_DEFAULT_MAX_SESSIONS = 4096,
	PD_DEFAULT_MAX_HANDSHAKES = 256,
	PD_DEFAULT_MAX_HANDSHAKES_PER_IP = 32,
	PD_OUTPUT_CHUNK = 65536,          /* PROTOCOL.md §8.4: data of one RESPONSE */
	PD_DEFAULT_WRITE_TIMEOUT_MS = 60000, /* a peer that reads nothing this long is closed */
	PD_CLOSE_DEADLINE_MS = 5000,      /* flushing a BYE or AUTH_FAIL */
	PD_OUT_HIGH = 4 * 1024 * 1024,    /* stop reading child pipes above this */
	PD_OUT_LOW = 1024 * 1024,         /* and resume below this */
	PD_OUT_HARD = 8 * 1024 * 1024,    /* stop reading the peer above this */
	PD_STDIN_HIGH = 1024 * 1024,      /* stop reading the peer while a child's stdin lags */
	PD_KILL_GRACE_MS = 2000,          /* SIGTERM, then SIGKILL this much later */
	PD_DRAIN_GRACE_MS = 2000,         /* output still read after the program exited */
	PD_SHUTDOWN_GRACE_MS = 5000,      /* SIGTERM: time to flush BYEs and reap */
	PD_DEFAULT_MAX_TRANSFERS = 8,     /* file transfers at once in one session */
	PD_FILE_WINDOW = 4 * 1024 * 1024, /* downloads read while less waits for the peer */
	PD_FILE_WRITE_HIGH = 4 * 1024 * 1024, /* stop reading the peer while uploads lag */
	PD_CTL_RELAY_HIGH = 4 * 1024 * 1024,  /* stop reading an agent while a control client lags */
	PD_CTL_RELAY_GAP = 512 * 1024,        /* and read it again once this much was taken */
};
#define PD_DEFAULT_MAX_FILE_SIZE (UINT64_C(1) << 40) /* uploads: 1 TiB */
#define PD_MAX_FILE_SIZE_LIMIT (UINT64_C(1) << 53)   /* PROTOCOL.md §9.3: size < 2^53 */
#define PD_DEFAULT_MAX_OUTPUT (UINT64_C(64) * 1024 * 1024)
#define PD_DEFAULT_STATE_DIR "/var/lib/ppcpd"
#define PD_DEFAULT_PSK_FILE "/etc/ppcp/psk"

/* ---- log.c -------------------------------------------------------------- */
enum pd_log_level { PD_LOG_ERROR = 0, PD_LOG_WARN, PD_LOG_INFO, PD_LOG_DEBUG };

void pd_log_set_level(enum pd_log_level level);
void pd_log(enum pd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pd_error(...) pd_log(PD_LOG_ERROR, __VA_ARGS__)
#define pd_warn(...) pd_log(PD_LOG_WARN, __VA_ARGS__)
#define pd_info(...) pd_log(PD_LOG_INFO, __VA_ARGS__)
#define pd_debug(...) pd_log(PD_LOG_DEBUG, __VA_ARGS__)
/* Copy an untrusted string (a peer's id, a program name) into buf[cap] with
 * every byte outside printable ASCII shown as \xNN, cut to fit.  Returns buf. */
const char *pd_log_safe(char *buf, size_t cap, const char *s);

/* ---- config.c ----------------------------------------------------------- */
struct pd_listen {
	struct sockaddr_storage addr; /* port 0: any free port (tests) */
	char text[80];                /* as given: "127.0.0.1:9000", "[::]:9000" */
	int wildcard;                 /* 0.0.0.0 or :: */
};

struct pd_config {
	char *config_file;
	char *psk_file;
	struct pd_listen listen[PD_MAX_LISTEN];
	size_t nlisten;
	int listen_is_default;
	char *server_id;
	char *state_dir;
	int exec_all;       /* allow-exec = * */
	char **exec_allow;  /* NULL-terminated list of names or paths */
	size_t nexec_allow;
	int allow_shell;
	char *file_root;
	int allow_put;
	uint32_t max_transfers;
	uint64_t max_file_size;
	enum pd_log_level log_level;
	uint32_t command_timeout_s;
	uint64_t max_output;
	uint32_t max_commands;
	uint32_t max_sessions;
	uint32_t max_handshakes;
	uint32_t max_handshakes_per_ip;
	uint32_t handshake_timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t heartbeat_ms;
	uint32_t write_timeout_ms;
	/* controller (PROTOCOL.md §11 "agent"): accept agents, control socket */
	int accept_agents;
	char *control_path; /* NULL: pd_control_default_path() */
	/* ppcp agent only */
	char *client_id;    /* announced in AUTH; NULL: the host name */
	char discover[PD_MAX_DISCOVER][64]; /* PING only these (else broadcast) */
	size_t ndiscover;
	uint32_t port;      /* the controller's port (default 9000) */
};

/* Parse argv and the configuration file into cfg (flags win).  On --help
 * or --version prints and exits 0; on any error prints one line and exits 2.
 * Nothing else is ever printed. */
void pd_config_load(struct pd_config *cfg, int argc, char **argv);
/* The same for `ppcp agent` (argv[0] "agent"): the policy options, and
 * --server-id (the controller to find), --client-id, --port,
 * --discover-addr instead of the listeners.  Messages say "ppcp agent". */
void pd_config_load_agent(struct pd_config *cfg, int argc, char **argv);
void pd_config_free(struct pd_config *cfg);

/* ---- ident.c ------------------------------------------------------------ */
/* The host name reduced to PROTOCOL.md §10.3 identifier characters. */
/* The server_id: cfg->server_id, else the one stored in state_dir, else a
 * new one stored there.  0, or -1 after printing one line on stderr. */
int pd_server_id(const struct pd_config *cfg, const char *hostname, char out[PPCP_ID_MAX + 1]);

/* ---- server.c ----------------------------------------------------------- */
struct pd_server;
struct pd_session;
struct pd_disco;
struct pd_cmd;
struct pd_files;
struct pd_sfiles;

/* Everything the running daemon shares. */
struct pd_daemon {
	uv_loop_t *loop;
	const struct pd_config *cfg;
	uint8_t psk[PPCP_PSK_FILE_BYTES];
	char server_id[PPCP_ID_MAX + 1];
	char hostname[PPCP_ID_MAX + 1];
	int shutting_down;
	struct pd_server *srv;
	struct pd_disco *disco;
	struct pd_cmd *cmds; /* every command alive, with or without a session (exec.c) */
	struct pd_files *files; /* NULL without file-root (files.c) */
	struct pd_ctl *ctl;     /* controller (accept-agents): agents, control socket */
	struct pd_agent *agent; /* ppcp agent: the outgoing session (agent.c) */
};

/* Bind every listener (TCP, and UDP on the same address and port).
 * 0, or -1 after logging what failed. */
int pd_server_start(struct pd_daemon *d);
/* The session table without listeners (ppcp agent); pd_server_start calls it. */
void pd_server_init(struct pd_daemon *d);
/* The TCP port of the first listener (after pd_server_start), else 0. */
uint16_t pd_server_port(const struct pd_daemon *d);
/* ppcp agent: connect to addr and run the client handshake (expect_id:
 * the controller's server_id, or NULL).  The session is in the table at
 * once; its end (also a failed connect) calls pd_agent_on_closed(). */
int pd_session_connect(struct pd_daemon *d, const struct sockaddr *addr, const char *expect_id,
		       const char *client_id, struct pd_session **out);
/* BYE when established, then close; else close at once. */
void pd_session_drop(struct pd_session *s, const char *why);
int pd_session_is_client(const struct pd_session *s);
/* Our side's address of the connection: 0 or a libuv error. */
int pd_session_sockname(struct pd_session *s, struct sockaddr_storage *out);
const struct sockaddr *pd_session_peer(const struct pd_session *s);
void **pd_session_ctl(struct pd_session *s);
int64_t pd_session_last_heard(const struct pd_session *s);
/* SIGTERM/SIGINT: stop listening, BYE to every established session, kill
 * every command; the loop ends once everything is flushed or after
 * PD_SHUTDOWN_GRACE_MS. */
void pd_server_shutdown(struct pd_daemon *d);
void pd_server_free(struct pd_daemon *d);

/* For command.c and exec.c. */
const char *pd_session_name(const struct pd_session *s);
/* Send one message (ppcp_conn_send); a failure of the connection closes
 * the session.  Returns the ppcp_conn_send result. */
int pd_session_send(struct pd_session *s, enum ppcp_msg_type type, const char *id,
		    const struct json_t *payload);
void pd_session_send_error(struct pd_session *s, const char *id, const char *code,
			   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Write what the engine queued, rearm the timer, close when it ended. */
void pd_session_flush(struct pd_session *s);
/* Reconsider reading from the peer (stdin backpressure changed). */
void pd_session_update_reading(struct pd_session *s);
struct pd_cmd **pd_session_cmds(struct pd_session *s);
struct pd_daemon *pd_session_daemon(struct pd_session *s);
/* For files.c: its per-session state, the engine (for the peer's
 * max_record and the extensions in force), the bytes waiting for the
 * peer, one binary-data record of file data (ppcp_conn_send_file_data). */
struct pd_sfiles **pd_session_files(struct pd_session *s);
ppcp_conn *pd_session_conn(struct pd_session *s);
size_t pd_session_out_pending(const struct pd_session *s);
int pd_session_send_file_data(struct pd_session *s, uint32_t stream, uint64_t offset, int last,
			      const uint8_t *data, size_t len);
/* A FILE_CHUNK data message in the RFC form (PROTOCOL.md §9.2). */
int pd_session_send_file_chunk(struct pd_session *s, const char *id, uint64_t offset, int last,
			       const uint8_t *data, size_t len);
/* A fatal protocol error the engine cannot see (PROTOCOL.md §9.5): log it
 * and close the connection at once, without BYE. */
void pd_session_fail(struct pd_session *s, const char *why);

/* ---- command.c ---------------------------------------------------------- */
/* A COMMAND (or stdin/cancel) arrived on an established session. */
void pd_command_dispatch(struct pd_session *s, const ppcp_msg *m);

/* ---- exec.c ------------------------------------------------------------- */
struct pd_cmd;

struct pd_spawn {
	const char *id;       /* the COMMAND's "i" */
	char **argv;          /* NULL-terminated; argv[0] is the program */
	int want_stdin;
	uint32_t timeout_s;
};

/* Start a program for session s.  Returns 0 (the command now runs and will
 * end with a final RESPONSE), or a libuv error after which nothing runs;
 * UV_ENOENT, UV_EACCES and -ENOEXEC are answered by the caller as a shell
 * would (a stderr line, exit 127 or 126). */
int pd_exec_start(struct pd_session *s, const struct pd_spawn *sp, struct pd_cmd **out);
/* The running command of s whose COMMAND had id, or NULL. */
struct pd_cmd *pd_exec_find(struct pd_session *s, const char *id);
/* stdin COMMAND: 0, or -1 with *why set (no stdin, already closed). */
int pd_exec_stdin(struct pd_cmd *c, const uint8_t *data, size_t len, int eof, const char **why);
/* cancel COMMAND: kill the process group (SIGTERM, then SIGKILL). */
void pd_exec_cancel(struct pd_cmd *c);
/* Number of commands of s still running. */
size_t pd_exec_count(struct pd_session *s);
/* The session ends: kill its commands, which finish on their own. */
void pd_exec_detach_all(struct pd_session *s);
/* Output backpressure: pause or resume reading the pipes of s. */
void pd_exec_pause(struct pd_session *s, int pause);
/* Bytes written to the child's stdin and not yet consumed, over all of s. */
size_t pd_exec_stdin_pending(struct pd_session *s);
/* Shutdown: kill every command of the daemon. */
void pd_exec_kill_all(struct pd_daemon *d);
/* Shutdown deadline passed: stop waiting for children. */
void pd_exec_abandon_all(struct pd_daemon *d);

/* ---- files.c ------------------------------------------------------------ */
/* Open file-root, check that openat2 works (else every request is refused)
 * and start the removal of stale temporary files.  0, or -1 after logging. */
int pd_files_init(struct pd_daemon *d);
/* Shutdown: long works (hashing, the cleanup) give up. */
void pd_files_shutdown(struct pd_daemon *d);
void pd_files_free(struct pd_daemon *d);
/* A FILE_REQUEST arrived: answered with a head and data, or an ERROR. */
void pd_files_request(struct pd_session *s, const ppcp_msg *m);
/* A FILE_CHUNK arrived: 1 when it belongs to an upload (or to one that
 * just ended), 0 when nothing asked for it. */
int pd_files_chunk(struct pd_session *s, const ppcp_msg *m);
/* A binary-data record arrived (data after the 0x01). */
void pd_files_binary(struct pd_session *s, const uint8_t *rec, size_t len);
/* An ERROR arrived: 1 when it named a transfer, which is now over. */
int pd_files_peer_error(struct pd_session *s, const ppcp_msg *m);
/* The peer drained output: downloads may read on. */
void pd_files_kick(struct pd_session *s);
/* Upload bytes of s received and not yet written. */
size_t pd_files_write_pending(struct pd_session *s);
/* The session ends: its transfers stop (temporary files are kept). */
void pd_files_detach_all(struct pd_session *s);

/* ---- disco.c ------------------------------------------------------------ */
struct pd_disco;
/* Answer PINGs on UDP at the address and port of the TCP listener. */
int pd_disco_add(struct pd_daemon *d, const struct sockaddr *addr, int wildcard, uint16_t port);
void pd_disco_close(struct pd_daemon *d);
void pd_disco_free(struct pd_daemon *d);

/* ---- control.c: the controller side of agents -------------------------- */
struct pd_ctl;
/* accept-agents: open the control socket (cfg->control_path, else the
 * default for the listening port).  0, or -1 after logging. */
int pd_ctl_start(struct pd_daemon *d);
void pd_ctl_close(struct pd_daemon *d);
void pd_ctl_free(struct pd_daemon *d);
/* The default control socket of a controller on port. */
void pd_control_default_path(uint16_t port, char *out, size_t cap);
/* An established session agreed on "agent" / it ends. */
void pd_ctl_agent_up(struct pd_session *s);
void pd_ctl_agent_down(struct pd_session *s);
/* A message / binary record of an agent: 1 when it answered the controller. */
int pd_ctl_on_message(struct pd_session *s, const ppcp_msg *m);
int pd_ctl_on_binary(struct pd_session *s, const uint8_t *data, size_t len);
/* Bytes relayed from this agent that its control clients have not read yet
 * (0 for any other session): the agent is not read above PD_CTL_RELAY_HIGH.
 * Near that mark it also starts the controller's watch of how long the
 * agent is held back (control.c, ctl_on_timer). */
size_t pd_ctl_relay_pending(struct pd_session *s);
/* This agent's session drained: read the control clients that upload
 * through it again (docs/CONTROL.md). */
void pd_ctl_kick(struct pd_session *s);

/* ---- agent.c: ppcp agent ------------------------------------------------- */
struct pd_agent;
/* `ppcp agent ...` (argv[0] "agent"): the process's exit status. */
int pd_agent_main(int argc, char **argv);
void pd_agent_on_established(struct pd_session *s);
void pd_agent_on_closed(struct pd_session *s);

/* ---- small helpers ------------------------------------------------------ */
void *pd_xmalloc(size_t n);
void *pd_xcalloc(size_t n, size_t m);
char *pd_xstrdup(const char *s);
/* "1.2.3.4:5" or "[::1]:5" for a socket address. */
void pd_addr_str(const struct sockaddr *sa, char *out, size_t cap);
/* uv_loop_init, then uv_signal_init of sigs[0..nsigs): 0, or -1 after one
 * line on stderr (PROG: ...) with nothing left open (out of descriptors). */
int pd_loop_init(uv_loop_t *loop, uv_signal_t *sigs, size_t nsigs, const char *prog);

#endif /* PPCPD_H */
