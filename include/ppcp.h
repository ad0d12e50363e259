/*
 * ppcp.h - the public interface of libppcp, the Ping-Pong Communication
 * Protocol library.  This header is also the API reference.
 *
 * Layers (docs/PROTOCOL.md is the wire specification):
 *   - codecs:  discovery PING/PONG (plain JSON), PSK files;
 *   - engine:  ppcp_conn, a sans-I/O connection for either role.  It never
 *              touches a socket, a clock or a process: the caller feeds the
 *              bytes it read, drains the bytes to write, passes the current
 *              monotonic time in milliseconds, and asks for the next deadline;
 *   - adapter: a small blocking socket API (ppcp_server_accept,
 *              ppcp_client_connect, ppcp_find_server) built on the engine.
 *
 * Conventions: functions return 0 on success and a negative PPCP_ERR_* code
 * on failure.  The library never prints, never exits and never aborts on bad
 * input.  Ownership of memory is stated on every function that takes or
 * returns it.  Strings are NUL-terminated UTF-8.
 */
#ifndef PPCP_H
#define PPCP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PPCP_VERSION_STRING "0.1.0"

/* jansson's JSON value; only a pointer is ever exchanged. */
struct json_t;

/* ------------------------------------------------------------------------
 * Sizes and limits (docs/PROTOCOL.md "Limits").
 */
enum {
	PPCP_PROTOCOL_VERSION = 1,
	PPCP_SUITE_P256_AES256GCM = 1,

	PPCP_LEN_PREFIX = 4,        /* frame length prefix */
	PPCP_HELLO_HDR = 8,         /* "PPCP" version type suite reserved */
	PPCP_POINT_LEN = 65,        /* SEC1 uncompressed P-256 point */
	PPCP_NONCE_LEN = 32,        /* hello nonces */
	PPCP_HASH_LEN = 32,         /* SHA-256 / HMAC-SHA256 output */
	PPCP_CLIENT_HELLO_LEN = 106, /* 8 + 1 + 65 + 32 */
	PPCP_SERVER_HELLO_LEN = 170, /* 8 + 1 + 65 + 32 + 32 + 32 */

	PPCP_REC_NONCE = 12,        /* record nonce on the wire */
	PPCP_REC_TAG = 16,          /* AES-GCM tag */
	PPCP_REC_OVERHEAD = 28,     /* nonce + tag */
	PPCP_KEY_LEN = 32,

	PPCP_MAX_PREAUTH_FRAME = 1024,          /* largest frame body before keys */
	PPCP_MAX_HANDSHAKE_RECORD = 4096,       /* largest AUTH/AUTH_OK/AUTH_FAIL plaintext */
	PPCP_DEFAULT_MAX_RECORD = 1024 * 1024,  /* plaintext cap after AUTH */
	PPCP_MAX_RECORD_LIMIT = 16 * 1024 * 1024, /* largest value max_record may take */
	PPCP_MAX_JSON_DEPTH = 16,

	PPCP_PSK_MIN = 16,          /* raw PSK bytes accepted by the engine */
	PPCP_PSK_MAX = 64,
	PPCP_PSK_FILE_BYTES = 32,   /* what a PSK file holds (as 64 hex chars) */

	PPCP_ID_MAX = 64,           /* message id, server_id, client_id, hostname */

	PPCP_PING_MIN = 512,        /* a PING is padded to at least this */
	PPCP_PING_MAX = 1024,       /* and never larger than this */

	PPCP_DEFAULT_PORT = 9000,
};

/* Default timers, in milliseconds. */
#define PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define PPCP_DEFAULT_HEARTBEAT_MS 15000u
#define PPCP_DEFAULT_IDLE_TIMEOUT_MS 45000u
/* Rekey before this many records or bytes under one key. */
#define PPCP_DEFAULT_REKEY_RECORDS (UINT64_C(1) << 24)
#define PPCP_DEFAULT_REKEY_BYTES (UINT64_C(1) << 36)

/* ------------------------------------------------------------------------
 * Errors.  One table produces the codes, ppcp_strerror() and
 * ppcp_err_name().  Each message says what failed; programs add what to do.
 */
#define PPCP_ERRNO_MAP(X)                                                              \
	X(NOMEM, -1, "out of memory")                                                      \
	X(INVAL, -2, "invalid argument")                                                   \
	X(CRYPTO, -3, "cryptographic library failure")                                    \
	X(RNG, -4, "random number generator failed")                                      \
	X(STATE, -5, "operation not allowed in the connection's current state")           \
	X(FRAME_TOO_LARGE, -10, "frame length exceeds the limit")                         \
	X(FRAME_TOO_SHORT, -11, "frame length below the minimum")                         \
	X(BAD_MAGIC, -12, "not a PPCP hello (no \"PPCP\" magic): peer speaks another protocol or version") \
	X(BAD_VERSION, -13, "unsupported PPCP protocol version")                          \
	X(BAD_SUITE, -14, "unsupported cipher suite")                                     \
	X(BAD_HELLO, -15, "malformed hello")                                               \
	X(BAD_POINT, -16, "invalid P-256 public key in hello")                             \
	X(REFLECTED, -17, "peer reflected our own key share")                             \
	X(SERVER_AUTH, -20, "server not authenticated: wrong PSK, or not a PPCP server")  \
	X(WRONG_SERVER, -21, "authenticated server has a different server_id: wrong server") \
	X(CLIENT_AUTH, -22, "client proof invalid: client does not hold our PSK")         \
	X(AUTH_REJECTED, -23, "server rejected our authentication (AUTH_FAIL)")           \
	X(PEER_ABORTED, -24, "peer closed during the handshake: most likely the PSKs differ") \
	X(DECRYPT, -30, "record failed authentication: tampered, replayed, reordered or wrong key") \
	X(SEQUENCE, -31, "record sequence error: replayed, reordered or dropped record")   \
	X(BAD_MESSAGE, -32, "malformed message")                                           \
	X(UNEXPECTED, -33, "message not allowed in this state")                           \
	X(BAD_MSG_VERSION, -34, "unsupported message version")                            \
	X(KEY_EXHAUSTED, -35, "key usage limit reached without KEY_UPDATE")               \
	X(TOO_BIG, -36, "message larger than the size limit")                             \
	X(TRUNCATED, -40, "connection closed without BYE: session truncated")             \
	X(TIMEOUT, -41, "peer stopped answering (heartbeat timeout)")                      \
	X(HANDSHAKE_TIMEOUT, -42, "handshake did not complete in time")                   \
	X(CLOSED, -43, "session closed by BYE")                                           \
	X(REFUSED, -45, "server closed the connection before answering: it is busy (connection limits) or refused our hello") \
	X(AGAIN, -44, "no message arrived within the wait (the session goes on)")        \
	X(IO, -50, "socket I/O error")                                                     \
	X(NOT_FOUND, -51, "no PPCP server answered the discovery PING")                   \
	X(CONNECT, -52, "TCP connection failed")                                           \
	X(ADDR, -53, "invalid address")                                                    \
	X(PSK_OPEN, -60, "cannot open the PSK file")                                       \
	X(PSK_PERMS, -61, "PSK file is readable or writable by group or others (chmod 600 it)") \
	X(PSK_FORMAT, -62, "PSK file must hold exactly 64 hex characters (32 bytes)")     \
	X(PSK_ZERO, -63, "PSK is all zeros")                                               \
	X(PSK_NOT_REGULAR, -64, "PSK file is a symlink or not a regular file")            \
	X(EXISTS, -65, "file already exists: refusing to overwrite")                      \
	X(PSK_OWNER, -66, "PSK file belongs to another user (chown it to the user who runs ppcp)")

enum ppcp_err {
	PPCP_OK = 0,
#define PPCP_ERR_ENUM_(name, code, msg) PPCP_ERR_##name = (code),
	PPCP_ERRNO_MAP(PPCP_ERR_ENUM_)
#undef PPCP_ERR_ENUM_
};

/* ppcp_strerror - a one-line English description of an error code.
 * Returns a static string; unknown codes give "unknown error". */
const char *ppcp_strerror(int err);
/* ppcp_err_name - the symbolic name ("PPCP_ERR_DECRYPT"), static string. */
const char *ppcp_err_name(int err);

/* ------------------------------------------------------------------------
 * Message types (docs/PROTOCOL.md "Message types").
 */
#define PPCP_MSG_TYPE_MAP(X)                                                           \
	X(PING, "PING")                                                                    \
	X(PONG, "PONG")                                                                    \
	X(CLIENT_HELLO, "CLIENT_HELLO")                                                    \
	X(SERVER_HELLO, "SERVER_HELLO")                                                    \
	X(AUTH, "AUTH")                                                                    \
	X(AUTH_OK, "AUTH_OK")                                                              \
	X(AUTH_FAIL, "AUTH_FAIL")                                                          \
	X(HEARTBEAT, "HEARTBEAT")                                                          \
	X(HEARTBEAT_ACK, "HEARTBEAT_ACK")                                                  \
	X(COMMAND, "COMMAND")                                                              \
	X(RESPONSE, "RESPONSE")                                                            \
	X(FILE_REQUEST, "FILE_REQUEST")                                                    \
	X(FILE_CHUNK, "FILE_CHUNK")                                                        \
	X(ERROR, "ERROR")                                                                  \
	X(BYE, "BYE")                                                                      \
	X(KEY_UPDATE, "KEY_UPDATE")

enum ppcp_msg_type {
	PPCP_MSG_UNKNOWN = 0,
#define PPCP_MSG_ENUM_(name, str) PPCP_MSG_##name,
	PPCP_MSG_TYPE_MAP(PPCP_MSG_ENUM_)
#undef PPCP_MSG_ENUM_
	PPCP_MSG__COUNT
};

/* ppcp_msg_type_name - wire name of a type ("COMMAND"); NULL if unknown. */
const char *ppcp_msg_type_name(enum ppcp_msg_type t);
/* ppcp_msg_type_from_name - the type for a wire name; PPCP_MSG_UNKNOWN if none. */
enum ppcp_msg_type ppcp_msg_type_from_name(const char *name);

/* Extensions, advertised in PONG and confirmed in AUTH / AUTH_OK. */
enum ppcp_ext {
	PPCP_EXT_KEY_UPDATE = 1u << 0,  /* "key-update" */
	PPCP_EXT_BINARY_DATA = 1u << 1, /* "binary-data" */
	/* "agent": a client offers to take commands from the server (the seed
	 * diagram's direction, PROTOCOL.md §11); a server that acts as a
	 * controller accepts it.  Not in PPCP_EXT_ALL: only agents offer it. */
	PPCP_EXT_AGENT = 1u << 2,
	PPCP_EXT_ALL = PPCP_EXT_KEY_UPDATE | PPCP_EXT_BINARY_DATA,
	PPCP_EXT_KNOWN = PPCP_EXT_ALL | PPCP_EXT_AGENT,
};

/* A decoded application message, valid only during the callback that
 * receives it.  All pointers are borrowed from the connection. */
typedef struct ppcp_msg {
	enum ppcp_msg_type type;      /* PPCP_MSG_UNKNOWN is never delivered */
	const char *type_name;        /* wire spelling of the type */
	const char *id;               /* the "i" field */
	int64_t ts;                   /* the "s" field, Unix seconds */
	const struct json_t *payload; /* the "p" field (jansson value; may be JSON null) */
} ppcp_msg;

/* ------------------------------------------------------------------------
 * The sans-I/O connection engine.
 */
enum ppcp_role { PPCP_ROLE_CLIENT = 1, PPCP_ROLE_SERVER = 2 };

/* States are named for what they wait for (docs/PROTOCOL.md "State machine"). */
enum ppcp_state {
	PPCP_ST_CLIENT_EXPECT_SERVER_HELLO = 1,
	PPCP_ST_CLIENT_EXPECT_AUTH_OK,
	PPCP_ST_SERVER_EXPECT_CLIENT_HELLO,
	PPCP_ST_SERVER_EXPECT_AUTH,
	PPCP_ST_ESTABLISHED,
	PPCP_ST_CLOSED, /* BYE sent or received: terminated cleanly */
	PPCP_ST_FAILED, /* terminated by a fatal error; ppcp_conn_error() says which */
};

typedef struct ppcp_conn ppcp_conn;

/* Callbacks.  Each may call ppcp_conn_send*() and ppcp_conn_close() on the
 * connection it is given; none may free it. */
typedef struct ppcp_callbacks {
	/* The handshake finished: both sides proved the PSK. */
	void (*on_established)(ppcp_conn *c, void *user);
	/* An application message arrived: COMMAND, RESPONSE, FILE_REQUEST,
	 * FILE_CHUNK, ERROR, HEARTBEAT, HEARTBEAT_ACK or BYE.  HEARTBEAT is
	 * answered by the engine itself; it is reported for information. */
	void (*on_message)(ppcp_conn *c, const ppcp_msg *m, void *user);
	/* A binary-data record (docs/PROTOCOL.md "binary-data"); data excludes
	 * the leading type byte.  Only after the extension was negotiated. */
	void (*on_binary)(ppcp_conn *c, const uint8_t *data, size_t len, void *user);
} ppcp_callbacks;

/* What a server answers to a PING (UDP, or TCP before CLIENT_HELLO). */
typedef struct ppcp_pong_info {
	const char *server_id;
	const char *hostname;
	uint16_t port;
	uint32_t capabilities; /* PPCP_EXT_* bits */
} ppcp_pong_info;

typedef struct ppcp_config {
	enum ppcp_role role;
	const uint8_t *psk; /* PPCP_PSK_MIN..PPCP_PSK_MAX bytes; copied by ppcp_conn_new */
	size_t psk_len;
	/* server: its own id (required).  client: the id the server must prove
	 * (its SHA-256 is checked against sid_hash), or NULL to accept any
	 * server that holds the PSK. */
	const char *server_id;
	const char *client_id;  /* client: sent in AUTH (optional) */
	uint32_t max_record;    /* plaintext cap after AUTH; 0 = PPCP_DEFAULT_MAX_RECORD */
	uint32_t handshake_timeout_ms; /* 0 = default */
	uint32_t heartbeat_ms;         /* send HEARTBEAT after this much send silence; 0 = default */
	uint32_t idle_timeout_ms;      /* fail after this much receive silence; 0 = default */
	uint64_t rekey_records;        /* 0 = PPCP_DEFAULT_REKEY_RECORDS */
	uint64_t rekey_bytes;          /* 0 = PPCP_DEFAULT_REKEY_BYTES */
	uint32_t extensions;           /* PPCP_EXT_* offered; ppcp_config_init sets PPCP_EXT_ALL */
	/* Randomness: fill out[len] and return 0, or return non-zero on
	 * failure.  NULL = the system CSPRNG (OpenSSL RAND_bytes).  Tests
	 * inject a fixed stream to replay a handshake byte for byte. */
	int (*rng)(void *user, uint8_t *out, size_t len);
	/* Wall clock for the "s" field, Unix seconds.  NULL writes 0. */
	int64_t (*unix_time)(void *user);
	const ppcp_pong_info *pong; /* server: answer TCP PINGs (optional; copied) */
	ppcp_callbacks cb;
	void *user;                 /* passed to every callback and to rng/unix_time */
} ppcp_config;

/* ppcp_config_init - zero cfg, set role and the defaults (all extensions). */
void ppcp_config_init(ppcp_config *cfg, enum ppcp_role role);

/* ppcp_conn_new - create a connection.  A client queues its CLIENT_HELLO at
 * once (drain it with ppcp_conn_out).  now: monotonic milliseconds.
 * The PSK and every string of cfg are copied; cfg may be freed afterwards.
 * Returns 0 and *out (free with ppcp_conn_free), or PPCP_ERR_INVAL,
 * PPCP_ERR_NOMEM, PPCP_ERR_RNG, PPCP_ERR_CRYPTO. */
int ppcp_conn_new(ppcp_conn **out, const ppcp_config *cfg, uint64_t now);

/* ppcp_conn_free - wipe every secret and free.  NULL is a no-op. */
void ppcp_conn_free(ppcp_conn *c);

/* ppcp_conn_feed - consume bytes read from the peer, in any split.  Calls the
 * callbacks for what completes.  Returns 0, or the connection's sticky fatal
 * error: after a failure the connection accepts nothing more, and the output
 * holds at most a final AUTH_FAIL to flush before closing. */
int ppcp_conn_feed(ppcp_conn *c, const uint8_t *in, size_t len, uint64_t now);

/* ppcp_conn_eof - the peer closed its side.  Returns 0 if the session had
 * ended cleanly (BYE), else the error it now fails with: PPCP_ERR_TRUNCATED,
 * PPCP_ERR_PEER_ABORTED (server: the client left after SERVER_HELLO), or
 * PPCP_ERR_REFUSED (client: the server closed before SERVER_HELLO). */
int ppcp_conn_eof(ppcp_conn *c);

/* ppcp_conn_out - bytes waiting to be written; *data is borrowed and valid
 * until the next call on c.  Returns how many. */
size_t ppcp_conn_out(ppcp_conn *c, const uint8_t **data);
/* ppcp_conn_out_ack - n bytes of ppcp_conn_out() were written. */
void ppcp_conn_out_ack(ppcp_conn *c, size_t n);

/* ppcp_conn_next_deadline - monotonic ms of the next timer, UINT64_MAX if none. */
uint64_t ppcp_conn_next_deadline(const ppcp_conn *c);
/* ppcp_conn_on_timeout - run due timers: send a HEARTBEAT, or fail with
 * PPCP_ERR_HANDSHAKE_TIMEOUT / PPCP_ERR_TIMEOUT.  Returns 0 or the error. */
int ppcp_conn_on_timeout(ppcp_conn *c, uint64_t now);

/* ppcp_conn_send - queue an application message (ESTABLISHED only).
 * payload: borrowed jansson value, or NULL for JSON null.  id: the "i"
 * field, or NULL for the next automatic id; the id used is copied into
 * id_out (PPCP_ID_MAX + 1 bytes) when id_out is not NULL.  Rekeys first
 * when a limit is reached.  Returns 0, PPCP_ERR_STATE, PPCP_ERR_TOO_BIG,
 * PPCP_ERR_INVAL, PPCP_ERR_NOMEM or a sticky error. */
int ppcp_conn_send(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
		   const struct json_t *payload, char *id_out);
/* ppcp_conn_send_json - as ppcp_conn_send, the payload given as JSON text
 * (parsed with the same checks as received messages). */
int ppcp_conn_send_json(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
			const char *payload_json, char *id_out);
/* ppcp_conn_send_binary - queue a binary-data record (data excludes the type
 * byte).  PPCP_ERR_STATE unless the extension was negotiated. */
int ppcp_conn_send_binary(ppcp_conn *c, const uint8_t *data, size_t len);
/* File data in a binary-data record (PROTOCOL.md §9.5):
 * 0x01 ‖ u32 stream ‖ u64 offset ‖ u8 flags ‖ data. */
enum { PPCP_FILE_DATA_HDR = 14, PPCP_FILE_DATA_LAST = 0x01 };
/* ppcp_conn_send_file_data - queue one file-data record.  len may be 0
 * (only with last).  PPCP_ERR_STATE unless binary-data is in force,
 * PPCP_ERR_TOO_BIG if it exceeds the peer's max_record. */
int ppcp_conn_send_file_data(ppcp_conn *c, uint32_t stream, uint64_t offset, int last,
			     const uint8_t *data, size_t len);
/* ppcp_conn_send_file_chunk - queue a FILE_CHUNK data message in the RFC
 * form, {"data": base64, "last": bool, "offset": n} with the request's id,
 * written directly (no JSON library on this path; the receiver's engine
 * reads the same canonical form back without its general parser).
 * PPCP_ERR_TOO_BIG if it exceeds the peer's max_record (base64 grows data
 * by 4/3), PPCP_ERR_INVAL for an id that needs escaping or offset >= 2^53. */
int ppcp_conn_send_file_chunk(ppcp_conn *c, const char *id, uint64_t offset, int last,
			      const uint8_t *data, size_t len);
/* ppcp_file_data_parse - split what on_binary delivered (the bytes after
 * 0x01) into its fields; *data points into rec.  PPCP_ERR_BAD_MESSAGE when
 * shorter than the header or a flag other than LAST is set. */
int ppcp_file_data_parse(const uint8_t *rec, size_t len, uint32_t *stream, uint64_t *offset,
			 int *last, const uint8_t **data, size_t *dlen);

/* ppcp_conn_close - queue BYE (optional reason, may be NULL) and end the
 * session cleanly.  Returns 0 or PPCP_ERR_STATE if not established. */
int ppcp_conn_close(ppcp_conn *c, const char *reason);

/* ppcp_conn_abort - fail the connection with err (a negative PPCP_ERR_*
 * code, e.g. PPCP_ERR_BAD_MESSAGE when a callback finds the peer's data
 * broken, PROTOCOL.md §9.5).  Sticky like any fatal error; nothing more is
 * read or sent.  Returns the connection's error (the first one wins). */
int ppcp_conn_abort(ppcp_conn *c, int err);

enum ppcp_state ppcp_conn_state(const ppcp_conn *c);
/* ppcp_conn_error - the sticky fatal error, 0 if none. */
int ppcp_conn_error(const ppcp_conn *c);
/* ppcp_conn_error_detail - once the connection failed, what exactly went
 * wrong when the code alone does not say it (e.g. which message was
 * malformed), as a short phrase without peer data; "" otherwise.  Valid
 * as long as the connection. */
const char *ppcp_conn_error_detail(const ppcp_conn *c);
/* ppcp_conn_peer_id - server: the client_id from AUTH; client: the
 * server_id from AUTH_OK.  "" until known.  Borrowed. */
const char *ppcp_conn_peer_id(const ppcp_conn *c);
/* ppcp_conn_extensions - PPCP_EXT_* bits both sides agreed on. */
uint32_t ppcp_conn_extensions(const ppcp_conn *c);
/* ppcp_conn_max_record - the plaintext cap in force for what we receive. */
uint32_t ppcp_conn_max_record(const ppcp_conn *c);
/* ppcp_conn_peer_max_record - the largest record plaintext the peer accepts
 * (from AUTH / AUTH_OK); size outgoing chunks by it. */
uint32_t ppcp_conn_peer_max_record(const ppcp_conn *c);

/* ------------------------------------------------------------------------
 * Discovery codecs: PING and PONG are plain JSON (UDP datagrams, or TCP
 * frames before CLIENT_HELLO).  Fixed-size strings, no allocation visible.
 */
typedef struct ppcp_ping {
	char id[PPCP_ID_MAX + 1];        /* "i" */
	char client_id[PPCP_ID_MAX + 1];
	char hostname[PPCP_ID_MAX + 1];
	char version[PPCP_ID_MAX + 1];
	char target[PPCP_ID_MAX + 1];    /* "" = any server answers */
	int64_t ts;
} ppcp_ping;

typedef struct ppcp_pong {
	char id[PPCP_ID_MAX + 1]; /* copies the PING's id */
	char server_id[PPCP_ID_MAX + 1];
	char hostname[PPCP_ID_MAX + 1];
	uint16_t port;
	uint32_t capabilities;    /* PPCP_EXT_* bits recognised */
	int64_t ts;
} ppcp_pong;

/* ppcp_ping_encode - write a PING, padded to PPCP_PING_MIN bytes, into
 * out[cap].  *len gets its size.  PPCP_ERR_INVAL if a field is too long or
 * cap is too small. */
int ppcp_ping_encode(const ppcp_ping *p, uint8_t *out, size_t cap, size_t *len);
/* ppcp_ping_decode - parse a PING of at most PPCP_PING_MAX bytes.
 * PPCP_ERR_BAD_MESSAGE, PPCP_ERR_TOO_BIG, PPCP_ERR_BAD_MSG_VERSION. */
int ppcp_ping_decode(const uint8_t *in, size_t len, ppcp_ping *p);
/* ppcp_pong_encode - write a PONG into out[cap]; PPCP_ERR_TOO_BIG when
 * it would not fit (a server then stays silent: a PONG is never larger
 * than the PING it answers). */
int ppcp_pong_encode(const ppcp_pong *p, uint8_t *out, size_t cap, size_t *len);
int ppcp_pong_decode(const uint8_t *in, size_t len, ppcp_pong *p);
/* ppcp_ping_wants - 1 if a server with this id should answer p. */
int ppcp_ping_wants(const ppcp_ping *p, const char *server_id);

/* ------------------------------------------------------------------------
 * PSK files (docs/PROTOCOL.md "PSK").  A PSK is never taken from argv.
 */
/* ppcp_psk_load - read a PSK file: a regular file (not a symlink), mode
 * without group/other bits, holding 64 hex characters and an optional
 * newline, not all zero.  psk gets 32 bytes.  Returns 0 or
 * PPCP_ERR_PSK_OPEN (errno kept), PPCP_ERR_PSK_NOT_REGULAR,
 * PPCP_ERR_PSK_OWNER (not owned by the effective user), PPCP_ERR_PSK_PERMS,
 * PPCP_ERR_PSK_FORMAT, PPCP_ERR_PSK_ZERO. */
int ppcp_psk_load(const char *path, uint8_t psk[PPCP_PSK_FILE_BYTES]);
/* ppcp_psk_generate - create path (O_EXCL, mode 0600) holding 32 fresh
 * random bytes as 64 hex characters and a newline.  PPCP_ERR_EXISTS if it
 * exists, PPCP_ERR_PSK_OPEN on other failures, PPCP_ERR_RNG. */
int ppcp_psk_generate(const char *path);

/* Incremental SHA-256, for files that stream (PROTOCOL.md §9).
 * ppcp_sha256_final writes the digest and starts the context afresh. */
typedef struct ppcp_sha256 ppcp_sha256;
int ppcp_sha256_new(ppcp_sha256 **out);           /* free with ppcp_sha256_free */
int ppcp_sha256_update(ppcp_sha256 *h, const void *data, size_t len);
int ppcp_sha256_final(ppcp_sha256 *h, uint8_t out[32]);
void ppcp_sha256_free(ppcp_sha256 *h);            /* NULL is a no-op */

/* ppcp_hostname_ident - this host's name reduced to the identifier
 * characters of PROTOCOL.md §10.3 (anything else becomes '-'), at most
 * PPCP_ID_MAX bytes, "localhost" when empty. */
void ppcp_hostname_ident(char out[PPCP_ID_MAX + 1]);

/* ppcp_wipe - overwrite n bytes at p with zeros, not optimised away. */
void ppcp_wipe(void *p, size_t n);

/* ppcp_crypto_wipe_freed - make OpenSSL zero every block of heap memory it
 * frees or moves, process-wide.  OpenSSL 3.0's P-256 code (ecp_nistz256)
 * copies the private scalar of an ECDH into a heap block that it frees
 * without wiping; libppcp wipes every secret of its own, but cannot reach
 * that copy.  Call this first thing in main(), before anything uses
 * OpenSSL: once OpenSSL has allocated with its own functions it refuses,
 * and this returns PPCP_ERR_CRYPTO (nothing changed).  Calling it again
 * after it worked returns 0 and changes nothing.  Not thread-safe: call it
 * before starting threads.  ppcpd and ppcp call it.  The cost is
 * one memset per freed OpenSSL block (tests/test_faults.c measures the
 * effect: no secret of a session in any released block). */
int ppcp_crypto_wipe_freed(void);

/* ------------------------------------------------------------------------
 * Blocking adapter: the seed's quick-start API on a connected socket.
 */
typedef struct ppcp_session ppcp_session;

typedef struct ppcp_session_options {
	const char *server_id; /* server: own id (required); client: expected id or NULL */
	const char *client_id; /* client: announced in AUTH; NULL = hostname */
	int timeout_ms;        /* handshake deadline; 0 = default */
	/* 0 = PPCP_EXT_KEY_UPDATE: the blocking API cannot return binary-data
	 * records, so it does not offer that extension unless asked. */
	uint32_t extensions;
} ppcp_session_options;

/* ppcp_server_accept - run the server handshake on fd (blocking; a TCP
 * PING before the hello is answered).  fd stays owned by the caller and
 * must outlive the session.  Returns 0 and *out, or the handshake error. */
int ppcp_server_accept(int fd, const uint8_t *psk, size_t psk_len,
		       const ppcp_session_options *opt, ppcp_session **out);
/* ppcp_client_connect - run the client handshake on a connected fd. */
int ppcp_client_connect(int fd, const uint8_t *psk, size_t psk_len,
			const ppcp_session_options *opt, ppcp_session **out);
/* ppcp_session_send - send one message with the next automatic id;
 * payload_json may be NULL (JSON null).  id_out (PPCP_ID_MAX + 1 bytes, may
 * be NULL) gets the id used. */
int ppcp_session_send(ppcp_session *s, enum ppcp_msg_type type,
		      const char *payload_json, char *id_out);
/* ppcp_session_reply - send a message that answers another: it carries the
 * given id (a RESPONSE, FILE_CHUNK, ERROR or HEARTBEAT_ACK with the "i" of
 * its request, PROTOCOL.md §7). */
int ppcp_session_reply(ppcp_session *s, enum ppcp_msg_type type, const char *id,
		       const char *payload_json);
/* ppcp_session_recv - wait up to timeout_ms (-1 = forever, 0 = only what
 * already arrived) for the next application message.  HEARTBEATs are
 * answered meanwhile and not returned.  *type (if not NULL) gets its type,
 * id_out (if not NULL, PPCP_ID_MAX + 1 bytes) its id, and *payload_json
 * (if not NULL) a malloc'd compact JSON text of "p" that the caller frees.
 * Returns 0; PPCP_ERR_AGAIN when nothing arrived in time (the session goes
 * on); PPCP_ERR_CLOSED after a BYE; or the session's sticky error
 * (PPCP_ERR_TIMEOUT means the peer stopped answering). */
int ppcp_session_recv(ppcp_session *s, int timeout_ms, enum ppcp_msg_type *type,
		      char *id_out, char **payload_json);
/* ppcp_session_close - send BYE and flush it.  The fd is not closed. */
int ppcp_session_close(ppcp_session *s);
/* ppcp_session_peer_id - see ppcp_conn_peer_id.  Borrowed. */
const char *ppcp_session_peer_id(const ppcp_session *s);
ppcp_conn *ppcp_session_conn(ppcp_session *s);
/* ppcp_session_free - wipe and free; does not close the fd.  NULL no-op. */
void ppcp_session_free(ppcp_session *s);

/* What discovery found. */
typedef struct ppcp_server_info {
	char address[64];   /* numeric address the PONG came from */
	uint16_t port;      /* TCP port from the PONG */
	ppcp_pong pong;
	uint32_t rtt_us;    /* PING to PONG */
	char path[12];      /* which PING it answered: "unicast", "broadcast", "multicast" */
} ppcp_server_info;

/* ppcp_find_options.flags: PING these too, in the same call (a targeted
 * search then ends at the first answer from any of them). */
enum {
	PPCP_FIND_BROADCAST = 1u << 0, /* 255.255.255.255 and each interface's broadcast */
	PPCP_FIND_MULTICAST = 1u << 1, /* 239.255.80.67 and ff02::5050 on each interface */
};

typedef struct ppcp_find_options {
	/* Unicast addresses to PING instead of broadcasting.  NULL: use
	 * $PPCP_DISCOVER_ADDR (comma-separated) if set (set but empty is
	 * PPCP_ERR_ADDR, never a broadcast), else the broadcast address of
	 * every IPv4 interface and 255.255.255.255. */
	const char *const *addrs;
	size_t naddrs;
	const char *target; /* only this server_id answers; NULL = any */
	int timeout_ms;     /* 0 = 1000 */
	unsigned flags;     /* PPCP_FIND_*: also broadcast / multicast, with addrs */
} ppcp_find_options;

/* ppcp_find_server - send PINGs to UDP port and collect PONGs until the
 * timeout (or the first PONG from target).  Fills up to max entries of
 * out, one per server_id, and *n.  Returns 0 when at least one answered,
 * PPCP_ERR_NOT_FOUND when none did, PPCP_ERR_IO / PPCP_ERR_ADDR. */
int ppcp_find_server(uint16_t port, const ppcp_find_options *opt,
		     ppcp_server_info *out, size_t max, size_t *n);
/* ppcp_tcp_connect - connect to address:port (numeric IPv4 or IPv6) with
 * a timeout (timeout_ms <= 0 means 10 s); returns a blocking fd with
 * TCP_NODELAY and close-on-exec, or a negative error. */
int ppcp_tcp_connect(const char *address, uint16_t port, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* PPCP_H */
