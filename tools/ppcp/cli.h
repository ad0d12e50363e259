/*
 * cli.h - what the files of the ppcp command-line tool share: the common
 * options, messages, the session loop (session.c), target resolution
 * (resolve.c), discovery (disco.c, scan.c) and the address cache (cache.c).
 *
 * Every subcommand lives in its own file and is reached through the table
 * in ppcp.c.  A subcommand returns the process exit status: the remote
 * program's status for exec and sh, 0 for success, CLI_EXIT_FAIL (255) when
 * ppcp itself fails, after one line on stderr that says which step failed
 * and what to do.
 */
#ifndef PPCP_CLI_H
#define PPCP_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ppcp.h"

enum {
	CLI_EXIT_FAIL = 255,
	CLI_MAX_DISCOVER = 32,   /* --discover-addr values */
	CLI_MAX_FOUND = 128,     /* servers one discovery reports */
	CLI_ADDR_MAX = 64,       /* numeric address, with %scope for link-local */
	CLI_CACHE_ADDRS = 4,     /* last addresses remembered per server */
	CLI_DEFAULT_TIMEOUT_MS = 1000, /* discovery */
	CLI_CONNECT_TIMEOUT_MS = 5000, /* TCP connect to a known address */
	CLI_HANDSHAKE_TIMEOUT_MS = 10000,
};

/* Options every subcommand understands, and what they resolve to. */
struct cli {
	const char *prog;        /* "ppcp" */
	const char *sub;         /* the subcommand's name */
	char psk_path[4096];     /* --psk-file, $PPCP_PSK_FILE or ~/.config/ppcp/psk */
	const char *psk_from;    /* which of the three, for messages */
	uint16_t port;           /* --port, default 9000 */
	char *discover[CLI_MAX_DISCOVER]; /* --discover-addr or $PPCP_DISCOVER_ADDR */
	size_t ndiscover;
	const char *discover_from;
	int verbose;             /* -v counts up, -q sets -1 */
	int timeout_ms;          /* --timeout: discovery wait */
	int timeout_set;
	int json;                /* --json, where the subcommand prints a table */
	char client_id[PPCP_ID_MAX + 1]; /* sanitized hostname, sent in PING and AUTH */
	uint8_t psk[PPCP_PSK_FILE_BYTES];
	int have_psk;
	uint32_t max_record;     /* the record size we accept (AUTH); 0: the default */
};

/* A subcommand's own options: getopt_long entries (the common ones are
 * added), and a handler for them that returns 0 or -1 (usage error). */
struct cli_opts {
	const char *shortopts;
	const struct option *longopts; /* terminated by a zero entry; may be NULL */
	int (*handle)(struct cli *cli, int opt, const char *arg, void *user);
	void *user;
	int stop_at_operand; /* stop at the first operand (exec: TARGET -- PROG) */
};

/* ---- ppcp.c ----------------------------------------------------------- */
/* Parse argv (argv[0] is the subcommand) and settle the defaults.  Returns
 * the index of the first operand, or -1 after printing a usage error. */
int cli_parse(struct cli *cli, int argc, char **argv, const struct cli_opts *own);
/* Load the PSK file once; prints the error and returns -1 on failure. */
int cli_load_psk(struct cli *cli);
/* Messages: cli_err always prints "ppcp: ..." on stderr; cli_info only at
 * verbosity >= level (1 = -v); cli_warn unless -q. */
void cli_err(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_warn(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_info(const struct cli *cli, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Usage error for the current subcommand: prints and returns CLI_EXIT_FAIL. */
int cli_usage(const struct cli *cli, const char *synopsis);
/* Seconds ("1", "0.5") to milliseconds; -1 when not a number in (0, max_s]. */
int cli_parse_seconds(const char *s, double max_s);
uint64_t cli_now_ms(void);
uint64_t cli_now_us(void);
/* What a failure means and what to do about it, for an error code met at
 * a step ("handshake", "connect"...).  Static string. */
const char *cli_advice(int err);


/* Signals: SIGINT, SIGTERM and SIGHUP set cli_signal (the number) instead of
 * killing us, once cli_signals_catch() was called. */
extern volatile sig_atomic_t cli_signal;
void cli_signals_catch(void);

/* ---- session.c: the one engine loop ------------------------------------ */
struct sess {
	int fd;
	ppcp_conn *conn;
	int err;          /* the first error, 0 if none */
	char why[96];     /* the engine's detail of err (ppcp_conn_error_detail), or "" */
	int io_errno;     /* errno of a failed recv or send (err PPCP_ERR_IO), or 0 */
	int established;  /* handshake done */
	int over;         /* nothing more will happen: closed and flushed, or failed */
	int peer_bye;     /* the server said BYE */
	int eof;          /* the server closed its side */
	char server_id[PPCP_ID_MAX + 1]; /* expected, then the authenticated one */
	char address[CLI_ADDR_MAX];
	uint16_t port;
	char path[16];    /* how it was found: unicast, cached, broadcast, ... */
	char hostname[PPCP_ID_MAX + 1]; /* from the PONG, when there was one */
	int rx_paused;    /* do not read the socket for now (rate limit) */
	size_t rx_max;    /* read at most this much per wake; 0: no limit */
	uint64_t rx_bytes; /* bytes read from the socket */
	void (*on_established)(struct sess *s);
	void (*on_message)(struct sess *s, const ppcp_msg *m);
	/* A binary-data record (the bytes after 0x01); NULL: any is fatal. */
	void (*on_binary)(struct sess *s, const uint8_t *data, size_t len);
	void *user;
};

/* sess_open - TCP connect to address:port (timeout_ms) and start the client
 * handshake; expect_id NULL accepts any server holding the PSK.  Returns 0,
 * or the connect error (s is then closed; s->err holds it). */
int sess_open(struct sess *s, const struct cli *cli, const char *address, uint16_t port,
	      const char *expect_id, int timeout_ms);
/* sess_free - close the socket and free the engine; s may be reused. */
void sess_free(struct sess *s);
/* sess_send - queue a message (payload borrowed); id_out as ppcp_conn_send.
 * A failure sticks to the session and ends it. */
int sess_send(struct sess *s, enum ppcp_msg_type t, json_t *payload, char *id_out);
/* sess_reply - queue a message that carries a given id (a FILE_CHUNK of an
 * upload, an ERROR "cancelled" for a request of ours). */
int sess_reply(struct sess *s, enum ppcp_msg_type t, const char *id, json_t *payload);
/* sess_send_file_chunk - queue a FILE_CHUNK data message in the RFC form
 * (PROTOCOL.md §9.2), written by the library without a JSON tree. */
int sess_send_file_chunk(struct sess *s, const char *id, uint64_t offset, int last,
			 const uint8_t *data, size_t len);
/* sess_send_file_data - queue a binary-data record (PROTOCOL.md §9.5). */
int sess_send_file_data(struct sess *s, uint32_t stream, uint64_t offset, int last,
			const uint8_t *data, size_t len);
/* sess_strerror - err (s->err when 0) in words, with the engine's detail
 * when it has one; a static buffer. */
const char *sess_strerror(const struct sess *s, int err);
/* sess_abort - the peer broke the protocol (or we give up): end the
 * session at once with err, without BYE. */
void sess_abort(struct sess *s, int err);
/* sess_pump - one non-blocking round of reads, writes and timers. */
void sess_pump(struct sess *s);
/* sess_close - queue BYE; the loop flushes it and ends the session. */
void sess_close(struct sess *s);
/* sess_outq - bytes the engine still has to write. */
size_t sess_outq(struct sess *s);
/* sess_command - send COMMAND payload (borrowed) and run the loop until its
 * final RESPONSE (0) or an ERROR for it (1), *reply then holding that
 * payload (caller decrefs); or a negative error when the session ends or
 * timeout_ms passes first. */
int sess_command(struct sess *s, json_t *payload, json_t **reply, int timeout_ms);
/* sess_bye - say BYE and wait (at most a second) until it is written. */
void sess_bye(struct sess *s);

struct sess_loop {
	struct sess **s;
	size_t n;
	int in_fd;                               /* polled for input when want_in says so */
	int (*want_in)(struct sess_loop *L);
	void (*on_in)(struct sess_loop *L);      /* in_fd is readable (or at EOF) */
	int (*stop)(struct sess_loop *L);        /* 1: return now */
	void (*on_signal)(struct sess_loop *L, int sig); /* NULL: exit 128+sig */
	void (*on_tick)(struct sess_loop *L, uint64_t now); /* before every poll */
	uint64_t wake;                           /* on_tick wants to run by then */
	uint64_t deadline;                       /* UINT64_MAX: none */
	void *user;
};
/* sess_loop_run - drive every session until all are over, stop() says so
 * (0), or the deadline passes (1). */
int sess_loop_run(struct sess_loop *L);
/* sess_handshake - run one opened session until established (0) or over
 * (its error). */
int sess_handshake(struct sess *s);

/* ---- disco.c / scan.c: discovery ----------------------------------------- */
struct found {
	ppcp_server_info si;
	char path[16]; /* unicast, cached, broadcast, multicast, tcp */
};
struct disco_req {
	const char *target;          /* targeted PING, or NULL */
	const char *const *cached;   /* unicast addresses remembered for it */
	size_t ncached;
	const char *const *scan;     /* CIDRs for a TCP scan (opt-in) */
	size_t nscan;
	int timeout_ms;
	int per_address;             /* one PING call per unicast address (see disco.c) */
	int send_failed;             /* out: no PING could be sent on some path */
};
/* disco_run - PING where the options say (the --discover-addr list, else
 * broadcast and IPv6 link-local multicast on every interface), plus the
 * cached addresses by unicast, plus the TCP scan; fills out (one entry per
 * server_id and address) and *n.  Returns 0 (even when nothing answered) or
 * an error after printing it. */
int disco_run(const struct cli *cli, struct disco_req *req, struct found *out, size_t max,
	      size_t *n);
/* disco_sent_to - a one-line description of where disco_run sends PINGs. */
void disco_describe(const struct cli *cli, char *buf, size_t len);
/* scan_run - PING over TCP to every address of cidr (an IPv4 /24 or
 * smaller); appends to out.  0 or -1 (message printed). */
int scan_run(const struct cli *cli, const char *cidr, const char *target, int timeout_ms,
	     struct found *out, size_t max, size_t *n);
/* capabilities as text: "key-update,binary-data" or "-" */
void cli_caps_text(uint32_t caps, char *buf, size_t len);
json_t *cli_caps_json(uint32_t caps);

/* ---- cache.c: server_id -> last addresses ------------------------------ */
struct cache_entry {
	char server_id[PPCP_ID_MAX + 1];
	char hostname[PPCP_ID_MAX + 1];
	uint16_t port;
	char addr[CLI_CACHE_ADDRS][CLI_ADDR_MAX];
	size_t naddr;
};
/* cache_lookup - the entry of server_id, or of the one server whose
 * hostname is name.  Returns 1 found, 0 none, -2 the hostname is ambiguous
 * (ids listed in ambiguous, comma-separated). */
int cache_lookup(const char *name, struct cache_entry *e, char *ambiguous, size_t alen);
/* cache_remember - put address first in server_id's list (hostname and port
 * updated when given) and save atomically.  Failures are only warned. */
void cache_remember(const struct cli *cli, const char *server_id, const char *hostname,
		    const char *address, uint16_t port);
/* cache_path - where the cache lives ($XDG_STATE_HOME/ppcp/servers.json,
 * else ~/.local/state/ppcp/servers.json); 0 or -1. */
int cache_path(char *buf, size_t len);

/* ---- resolve.c: TARGET -> authenticated session ------------------------- */
/* resolve_connect - parse TARGET (server_id | hostname | IPv4[:PORT] |
 * [IPv6]:PORT), find it (cache, then targeted PING, then hostname match),
 * connect and authenticate.  Returns 0 with s established, or
 * CLI_EXIT_FAIL after printing one line. */
int resolve_connect(struct cli *cli, const char *target, struct sess *s);
/* Parse a literal address target; 1 literal (addr, port filled), 0 a name,
 * -1 malformed. */
int resolve_literal(const char *target, uint16_t defport, char *addr, size_t alen,
		    uint16_t *port);
/* After any success: remember the address, say so when it moved (-v). */
void resolve_success(struct cli *cli, struct sess *s);

/* ---- subcommands --------------------------------------------------------- */
int cmd_keygen(struct cli *cli, int argc, char **argv);
int cmd_discover(struct cli *cli, int argc, char **argv);
int cmd_exec(struct cli *cli, int argc, char **argv);
int cmd_sh(struct cli *cli, int argc, char **argv);
int cmd_ping(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_doctor(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_put(struct cli *cli, int argc, char **argv);
int cmd_agent(struct cli *cli, int argc, char **argv);
int cmd_agents(struct cli *cli, int argc, char **argv);

/* ---- agents.c: the controller's control socket (docs/CONTROL.md) -------- */
/* --control PATH (else $PPCP_CONTROL, else the default for --port). */
void ctl_set_path(const char *path);
/* Connect and send one request; *out reads the answer.  0, or -1 after
 * printing why (req NULL: a json_pack of command-line strings failed). */
int ctl_open(const struct cli *cli, const json_t *req, FILE **out);
/* The next JSON line of the answer, NULL at its end. */
json_t *ctl_read(FILE *f);

/* ---- xfer.c: what get and put share (PROTOCOL.md §9) ------------------------- */
enum {
	XFER_MAX_PATH = 4096,               /* PROTOCOL.md §9.1 */
	XFER_CHECKPOINT = 8 * 1024 * 1024,  /* get: fsync and sidecar this often */
	XFER_MAX_DEPTH = 64,                /* -r: directory levels */
};
/* xfer_split_remote - TARGET:PATH into target (tlen bytes) and *path (into
 * arg).  IPv4:PORT:PATH and [IPv6]:PORT:PATH name a port.  0, or -1 when
 * there is no ':' or either part is empty. */
int xfer_split_remote(const char *arg, char *target, size_t tlen, const char **path);
/* xfer_parse_rate - "500K", "10M", "1G", "2000" (bytes per second, K =
 * 1024 as curl).  0 or -1. */
int xfer_parse_rate(const char *s, uint64_t *bps);
/* xfer_opt_rate - the --limit-rate option of get and put: 0, or -1 after
 * saying what is wrong. */
int xfer_opt_rate(const struct cli *cli, const char *arg, uint64_t *bps);
/* xfer_base_name - the last component of path, trailing '/' ignored. */
const char *xfer_base_name(const char *path, char *buf, size_t len);

struct pace {
	uint64_t rate;  /* bytes per second; 0: no limit */
	uint64_t t0;    /* ms */
	uint64_t burst; /* bytes allowed ahead of the schedule */
};
void pace_start(struct pace *p, uint64_t rate, uint64_t now);
/* pace_allowed - how many more bytes may move now, after done (UINT64_MAX
 * without a limit). */
uint64_t pace_allowed(const struct pace *p, uint64_t now, uint64_t done);
/* pace_when - the time (ms) at which more than done bytes may have moved. */
uint64_t pace_when(const struct pace *p, uint64_t done);

struct progress {
	int on, shown, width;
	char label[64];
	uint64_t total, done, first, t0, drawn;
};
/* progress_start - a bar on stderr if it is a terminal and not -q. */
void progress_start(struct progress *pr, const struct cli *cli, const char *label,
		    uint64_t total, uint64_t done);
void progress_update(struct progress *pr, uint64_t done);
/* progress_end - draw the last state and end the line (if a bar is shown). */
void progress_end(struct progress *pr, int complete);

/* xfer_hash_fd - feed bytes [0, len) of fd to h, with a progress bar
 * labelled label; s (may be NULL) is pumped meanwhile.  0, -errno, or
 * -EINTR after a signal. */
int xfer_hash_fd(const struct cli *cli, int fd, uint64_t len, ppcp_sha256 *h, struct sess *s,
		 const char *label);
void xfer_hex(const uint8_t d[32], char out[65]);
int xfer_is_sha256_hex(const char *s);
/* xfer_get_u53 - an integer member in [0, 2^53); 0 or -1. */
int xfer_get_u53(const json_t *obj, const char *key, uint64_t *out);
/* xfer_check_stream - the head's "stream": an even number from 2 when the
 * owner is the TCP server, odd from 1 when it is the TCP client (an agent
 * relayed by its controller) (PROTOCOL.md §9.5); 0 or -1. */
int xfer_check_stream(const json_t *head, uint32_t *stream, int owner_is_client);
/* xfer_advice - what to do about an owner's ERROR code (§9.6), for a
 * server or (agent) an agent reached through the controller. */
const char *xfer_advice(const char *code, int put, int agent);

/* exec.c, shared with sh.c: run argv (or a shell command line when shell is
 * not NULL) on target; the exit status of ppcp. */
struct exec_req {
	const char *target; /* NULL with all */
	int all;
	char **argv;
	int argc;
	const char *shell;
	int stdin_mode;     /* -1 never (-n), 0 auto, 1 always (-i) */
	int cmd_timeout_s;  /* 0: the server's default */
};
int exec_run(struct cli *cli, const struct exec_req *req);

#endif /* PPCP_CLI_H */
