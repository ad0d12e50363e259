/*
 * make_corpus.c - write the seed corpus of every fuzz target from real
 * in-memory traffic, plus the hostile cases of adversarial.md T1-T5,
 * T17-T19 and T31.
 *
 *   make_corpus CORPUS_DIR WYCHEPROOF_ECPOINT_JSON
 *
 * The pair of fuzz_common.h is deterministic (fixed RNG, PSK, clock), so
 * the records recorded here are the ones the targets' own handshakes
 * expect: a recorded client stream replays into fuzz_server, a recorded
 * server stream into fuzz_client, and records a peer sealed after the
 * handshake into the *_established targets.  Files are named for what they
 * hold; an existing file of the same name is overwritten, others (crash-*
 * inputs added by hand) are left alone.
 */
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fuzz_common.h"

/* ---- byte strings and files -------------------------------------------- */

typedef struct bytes {
	uint8_t *p;
	size_t n, cap;
} bytes;

static void b_add(bytes *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		FZ_CHECK(b->p != NULL, "realloc");
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void b_byte(bytes *b, uint8_t v)
{
	b_add(b, &v, 1);
}

static void b_str(bytes *b, const char *s)
{
	b_add(b, s, strlen(s));
}

static void b_be32(bytes *b, uint32_t v)
{
	uint8_t x[4];
	ppcp__store_be32(x, v);
	b_add(b, x, 4);
}

/* A frame: u32(len) ‖ body. */
static void b_frame(bytes *b, const void *body, size_t n)
{
	b_be32(b, (uint32_t)n);
	b_add(b, body, n);
}

static void b_free(bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const char *outdir;
static unsigned long files, total;

static void put(const char *target, const char *name, const void *d, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	files++;
	total += n;
}

static void put_b(const char *target, const char *name, const bytes *b)
{
	put(target, name, b->p, b->n);
}

/* ---- sealed-mode inputs (fuzz_common.h) -------------------------------- */

typedef struct sealed {
	bytes b;
	int chunks;
} sealed;

static void s_begin(sealed *s, uint8_t flags)
{
	memset(s, 0, sizeof(*s));
	b_byte(&s->b, flags | FZ_F_SEALED);
}

static void s_op(sealed *s, uint8_t op, const void *d, size_t n)
{
	if (s->chunks++ > 0)
		b_add(&s->b, FZ_SEP, sizeof(FZ_SEP));
	b_byte(&s->b, op);
	b_add(&s->b, d, n);
}

static void s_rec(sealed *s, const char *pt)
{
	s_op(s, 0, pt, strlen(pt));
}

/* A raw-mode input: flags, split seed, stream. */
static void put_raw(const char *target, const char *name, uint8_t flags, uint8_t seed,
		    const void *d, size_t n)
{
	bytes b = { 0 };
	b_byte(&b, flags & ~FZ_F_SEALED);
	b_byte(&b, seed);
	b_add(&b, d, n);
	put_b(target, name, &b);
	b_free(&b);
}

/* ---- JSON texts ----------------------------------------------------------- */

/* A message in the canonical form libppcp writes. */
static char *msg(const char *type, const char *id, const char *payload)
{
	char *s = malloc(strlen(payload) + strlen(type) + strlen(id) + 64);
	FZ_CHECK(s != NULL, "malloc");
	sprintf(s, "{\"i\":\"%s\",\"p\":%s,\"s\":%d,\"t\":\"%s\",\"v\":1}", id, payload,
		FZ_WALL_CLOCK, type);
	return s;
}

/* Every message of PROTOCOL.md §8 (type, payload). */
static const char *const session_msgs[][2] = {
	{ "HEARTBEAT", "{\"ts\":1000}" },
	{ "HEARTBEAT_ACK", "{\"ts\":1000}" },
	{ "COMMAND", "{\"args\":{\"argv\":[\"ls\",\"-l\",\"/tmp\"],\"stdin\":false,\"timeout\":10},"
		     "\"name\":\"exec\"}" },
	{ "COMMAND", "{\"args\":{\"command\":\"echo hi | wc -c\",\"stdin\":true,\"timeout\":5},"
		     "\"name\":\"shell\"}" },
	{ "COMMAND", "{\"args\":{},\"name\":\"status\"}" },
	{ "COMMAND", "{\"args\":{\"data\":\"aGVsbG8K\",\"eof\":true,\"of\":\"00000002\"},"
		     "\"name\":\"stdin\"}" },
	{ "COMMAND", "{\"args\":{\"of\":\"00000002\"},\"name\":\"cancel\"}" },
	{ "COMMAND", "{\"args\":{},\"name\":\"teleport\"}" },
	{ "RESPONSE", "{\"data\":\"aGVsbG8K\",\"stream\":\"stdout\"}" },
	{ "RESPONSE", "{\"data\":\"ZXJyb3IK\",\"stream\":\"stderr\"}" },
	{ "RESPONSE", "{\"done\":true,\"exit\":7,\"signal\":null,\"timed_out\":false,"
		      "\"truncated\":false}" },
	{ "RESPONSE", "{\"done\":true,\"exit\":null,\"signal\":9,\"timed_out\":true,"
		      "\"truncated\":false}" },
	{ "RESPONSE", "{\"done\":true,\"status\":{\"hostname\":\"node-01\",\"load\":[0.15,0.1,"
		      "0.05],\"server_id\":\"srv-01\",\"uptime\":12345,\"version\":\"0.1.0\"}}" },
	{ "FILE_REQUEST", "{\"length\":4096,\"offset\":0,\"path\":\"docs/readme.txt\"}" },
	{ "FILE_CHUNK", "{\"data\":\"AAECAw==\",\"eof\":true,\"offset\":0}" },
	{ "ERROR", "{\"code\":\"invalid-message\",\"message\":\"payload has the wrong shape\"}" },
	{ "ERROR", "{\"code\":\"unauthorized\",\"message\":\"exec of 'rm' is not allowed "
		   "(allow-exec)\"}" },
	{ "KEY_UPDATE", "{}" },
	{ "TELEPORT", "{\"to\":\"mars\"}" },
	{ "BYE", "{\"reason\":\"done\"}" },
	{ "BYE", "null" },
};

/* Messages of another phase: fatal inside a session (PROTOCOL.md §8.1). */
static const char *const other_phase[][2] = {
	{ "PING", "{\"client_id\":\"c\",\"hostname\":\"h\",\"version\":\"1\"}" },
	{ "PONG", "{}" },
	{ "CLIENT_HELLO", "{}" },
	{ "SERVER_HELLO", "{}" },
	{ "AUTH", "{\"ext\":[],\"max_record\":4096,\"proof\":\"AAAA\"}" },
	{ "AUTH_OK", "{\"ext\":[],\"max_record\":4096,\"proof\":\"AAAA\",\"server_id\":\"s\"}" },
	{ "AUTH_FAIL", "{\"reason\":\"authentication-failed\"}" },
};

/* adversarial.md T31: malformed JSON.  The deep nestings are built apart. */
static const char *const malformed[] = {
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\"",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMM\xff\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMM\xc3\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"\xed\xa0\x80\",\"v\":1}",
	"{\"i\":\"1\",\"p\":\"\\u0000\",\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\\u0000\",\"p\":{},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"\\ud800\",\"v\":1}",
	"{\"i\":\"1\",\"i\":\"2\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"a\":1,\"a\":2},\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":1e400,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"ts\":1e400},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"ts\":1.5},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"ts\":-9223372036854775808},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"ts\":9223372036854775808},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":99999999999999999999,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":\"0\",\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"args\":{},\"name\":5},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"args\":[],\"name\":\"status\"},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{\"code\":1,\"message\":\"m\"},\"s\":0,\"t\":\"ERROR\",\"v\":1}",
	"{\"i\":\"1\",\"p\":[],\"s\":0,\"t\":\"KEY_UPDATE\",\"v\":1}",
	"{\"i\":\"1\",\"p\":7,\"s\":0,\"t\":\"BYE\",\"v\":1}",
	"{\"i\":\"\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
	"{\"i\":\"a b\",\"p\":{},\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	("{\"i\":\"0123456789012345678901234567890123456789012345678901234567890123X\",\"p\":{},"
	 "\"s\":0,\"t\":\"RESPONSE\",\"v\":1}"),
	"{\"i\":1,\"p\":{},\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	"{\"p\":{},\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	"{\"i\":\"1\",\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"t\":\"RESPONSE\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"\",\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":7,\"v\":1}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"RESPONSE\"}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":2}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":0}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1.0}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":\"1\"}",
	"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1} trailing",
	"[1,2,3]",
	"{}",
	"{\"i\":\"1\",\"p\":{\"s\":\"]]]]]]]]]]]]]]]]]]]]\\\"[[[[\"},\"s\":0,\"t\":\"RESPONSE\",\"v\":1}",
	"{ \"v\" : 1 , \"t\" : \"HEARTBEAT\" , \"i\" : \"x\" , \"s\" : 0 , \"p\" : { \"ts\" : 0 } }",
};

/* {"i":"1","p":<depth brackets>,...}: depth 17 is one past the limit. */
static char *deep(size_t depth)
{
	bytes b = { 0 };
	b_str(&b, "{\"i\":\"1\",\"p\":");
	for (size_t i = 0; i < depth; i++)
		b_byte(&b, '[');
	for (size_t i = 0; i < depth; i++)
		b_byte(&b, ']');
	b_str(&b, ",\"s\":0,\"t\":\"RESPONSE\",\"v\":1}");
	b_byte(&b, 0);
	return (char *)b.p;
}

/* ---- recording real traffic ------------------------------------------------ */

/* Open one record frame with a direction built from a secret. */
static char *open_record(const uint8_t secret[32], uint64_t seq, const uint8_t *frame, size_t n)
{
	ppcp__dir d;
	uint8_t *pt;
	int ret;

	memset(&d, 0, sizeof(d));
	FZ_CHECK(n > 4 + PPCP_REC_OVERHEAD, "short record");
	ret = ppcp__dir_set(&d, secret);
	FZ_CHECK(ret == 0, "dir_set");
	d.seq = seq;
	pt = malloc(n - 4 - PPCP_REC_OVERHEAD + 1);
	FZ_CHECK(pt != NULL, "malloc");
	ret = ppcp__record_open(&d, frame + 4, (uint32_t)(n - 4), pt);
	FZ_CHECK(ret == 0, "open: %s", ppcp_err_name(ret));
	pt[n - 4 - PPCP_REC_OVERHEAD] = '\0';
	ppcp__dir_clear(&d);
	return (char *)pt;
}

/* The real handshake of the fuzz pair and a session, both directions. */
typedef struct transcript {
	bytes c2s, s2c;    /* from the client's first byte, from the server's */
	bytes ping, pong;  /* the TCP PING frame and its PONG frame */
	bytes ch, sh;      /* the hello frames */
	bytes auth, authok;
	bytes c_session, s_session; /* records after AUTH_OK */
	char *auth_pt, *authok_pt;
} transcript;

static void take_into(ppcp_conn *a, bytes *x, bytes *y)
{
	size_t n;
	uint8_t *d = fz_take(a, &n);
	if (x != NULL)
		b_add(x, d, n);
	if (y != NULL)
		b_add(y, d, n);
	free(d);
}

/* Move a's output to b, recording it. */
static void hop(ppcp_conn *a, ppcp_conn *b, bytes *rec, bytes *part, uint64_t now)
{
	size_t n;
	uint8_t *d = fz_take(a, &n);
	int ret;

	b_add(rec, d, n);
	if (part != NULL)
		b_add(part, d, n);
	ret = ppcp_conn_feed(b, d, n, now);
	FZ_CHECK(ret == 0, "hop: %s", ppcp_err_name(ret));
	free(d);
}

static void send_json(ppcp_conn *c, enum ppcp_msg_type t, const char *id, const char *payload)
{
	int ret = ppcp_conn_send_json(c, t, id, payload, NULL);
	FZ_CHECK(ret == 0, "send %s: %s", ppcp_msg_type_name(t), ppcp_err_name(ret));
}

static void record_transcript(transcript *t)
{
	fz_pair p;
	ppcp_ping ping;
	uint8_t buf[PPCP_PING_MAX];
	size_t n;
	int ret;

	memset(t, 0, sizeof(*t));
	fz_init();

	/* The plaintexts of AUTH and AUTH_OK, decrypted with the keys the
	 * real ends hold: the server's c_hs and s_hs. */
	fz_pair_init(&p, PPCP_ROLE_CLIENT, FZ_STAGE_AUTH, 0);
	{
		uint8_t s_hs[32];
		memcpy(s_hs, ppcp__conn_dir(p.s, 1)->secret, 32);
		t->auth_pt = open_record(ppcp__conn_dir(p.s, 0)->secret, 0, p.held_auth,
					 p.held_len);
		ret = ppcp_conn_feed(p.s, p.held_auth, p.held_len, p.now);
		FZ_CHECK(ret == 0, "AUTH");
		take_into(p.s, &t->authok, NULL);
		t->authok_pt = open_record(s_hs, 0, t->authok.p, t->authok.n);
		b_free(&t->authok);
	}
	fz_pair_free(&p);

	/* The whole conversation, PING first. */
	memset(&p, 0, sizeof(p));
	p.now = FZ_NOW0;
	p.s = fz_conn_new(&p.ss, PPCP_ROLE_SERVER, 1, p.now);
	p.c = fz_conn_new(&p.cs, PPCP_ROLE_CLIENT, 0, p.now);

	memset(&ping, 0, sizeof(ping));
	strcpy(ping.id, "1b2c3d4e");
	strcpy(ping.client_id, FZ_CLIENT_ID);
	strcpy(ping.hostname, "laptop");
	strcpy(ping.version, PPCP_VERSION_STRING);
	ping.ts = FZ_WALL_CLOCK;
	ret = ppcp_ping_encode(&ping, buf, sizeof(buf), &n);
	FZ_CHECK(ret == 0, "ping_encode");
	b_frame(&t->ping, buf, n);
	b_add(&t->c2s, t->ping.p, t->ping.n);
	ret = ppcp_conn_feed(p.s, t->ping.p, t->ping.n, p.now);
	FZ_CHECK(ret == 0, "PING");
	take_into(p.s, &t->pong, &t->s2c);
	FZ_CHECK(t->pong.n > 4, "no PONG");

	hop(p.c, p.s, &t->c2s, &t->ch, p.now);    /* CLIENT_HELLO */
	hop(p.s, p.c, &t->s2c, &t->sh, p.now);    /* SERVER_HELLO */
	hop(p.c, p.s, &t->c2s, &t->auth, p.now);  /* AUTH */
	hop(p.s, p.c, &t->s2c, &t->authok, p.now); /* AUTH_OK */
	FZ_CHECK(ppcp_conn_state(p.c) == PPCP_ST_ESTABLISHED &&
			 ppcp_conn_state(p.s) == PPCP_ST_ESTABLISHED,
		 "not established");

	/* A session: every message type both ways, a binary record, both
	 * directions rekeyed, a timer-driven HEARTBEAT, then BYE. */
	for (size_t i = 0; i < sizeof(session_msgs) / sizeof(session_msgs[0]); i++) {
		enum ppcp_msg_type ty = ppcp_msg_type_from_name(session_msgs[i][0]);
		if (ty == PPCP_MSG_KEY_UPDATE || ty == PPCP_MSG_BYE || ty == PPCP_MSG_UNKNOWN)
			continue;
		send_json(p.c, ty, NULL, session_msgs[i][1]);
		hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
		hop(p.s, p.c, &t->s2c, &t->s_session, p.now); /* HEARTBEAT_ACK, if any */
		send_json(p.s, ty, NULL, session_msgs[i][1]);
		hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
		hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	}
	ret = ppcp_conn_send_binary(p.c, (const uint8_t *)"\x00\x01\x02\xff", 4);
	FZ_CHECK(ret == 0, "binary");
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	ret = ppcp_conn_send_binary(p.s, (const uint8_t *)"bin", 3);
	FZ_CHECK(ret == 0, "binary");
	hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
	FZ_CHECK(ppcp__conn_key_update(p.c) == 0 && ppcp__conn_key_update(p.s) == 0, "rekey");
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
	p.now += PPCP_DEFAULT_HEARTBEAT_MS;
	FZ_CHECK(ppcp_conn_on_timeout(p.c, p.now) == 0, "timer");
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
	FZ_CHECK(ppcp_conn_on_timeout(p.s, p.now) == 0, "timer");
	hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	send_json(p.c, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":5}");
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	hop(p.s, p.c, &t->s2c, &t->s_session, p.now);
	FZ_CHECK(ppcp_conn_close(p.c, "done") == 0, "close");
	hop(p.c, p.s, &t->c2s, &t->c_session, p.now);
	FZ_CHECK(ppcp_conn_state(p.s) == PPCP_ST_CLOSED, "BYE not seen");
	fz_pair_free(&p);
}

/* What a peer of the ESTABLISHED fuzz pair seals, as the target expects. */
static void established_records(enum ppcp_role target, int which, bytes *out)
{
	fz_pair p;
	int ret;

	fz_pair_init(&p, target, FZ_STAGE_ESTABLISHED, 0);
	switch (which) {
	case 0: /* every application message */
		for (size_t i = 0; i < sizeof(session_msgs) / sizeof(session_msgs[0]); i++) {
			enum ppcp_msg_type ty = ppcp_msg_type_from_name(session_msgs[i][0]);
			if (ty == PPCP_MSG_KEY_UPDATE || ty == PPCP_MSG_BYE || ty == PPCP_MSG_UNKNOWN)
				continue;
			send_json(p.peer, ty, NULL, session_msgs[i][1]);
		}
		break;
	case 1: /* HEARTBEAT */
		send_json(p.peer, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":1000}");
		break;
	case 2: /* KEY_UPDATE, then a message under the new key */
		ret = ppcp__conn_key_update(p.peer);
		FZ_CHECK(ret == 0, "rekey");
		send_json(p.peer, PPCP_MSG_COMMAND, NULL, "{\"args\":{},\"name\":\"status\"}");
		break;
	case 3: /* binary record */
		ret = ppcp_conn_send_binary(p.peer, (const uint8_t *)"\x00\xff", 2);
		FZ_CHECK(ret == 0, "binary");
		break;
	default: /* BYE */
		ret = ppcp_conn_close(p.peer, "bye");
		FZ_CHECK(ret == 0, "close");
		break;
	}
	take_into(p.peer, out, NULL);
	fz_pair_free(&p);
}

/* ---- hellos and points ------------------------------------------------------ */

/* A CLIENT_HELLO (type 1) or SERVER_HELLO body built around a point of any
 * length; tail = sid_hash ‖ s_confirm for a SERVER_HELLO. */
static void hello_with_point(bytes *b, uint8_t type, uint8_t pub_len, const uint8_t *pt,
			     size_t ptlen, const uint8_t *nonce, const uint8_t *tail)
{
	b_add(b, "PPCP\x01", 5);
	b_byte(b, type);
	b_add(b, "\x01\x00", 2);
	b_byte(b, pub_len);
	b_add(b, pt, ptlen);
	b_add(b, nonce, 32);
	if (type == 2)
		b_add(b, tail, 64);
}

/* Write a hostile point into hellos for fuzz_hello, fuzz_server and
 * fuzz_client, both fitted into the 65-byte slot and with its own length. */
static void put_point(const transcript *t, const char *name, const uint8_t *pt, size_t n)
{
	const uint8_t *ch = t->ch.p + 4, *sh = t->sh.p + 4;
	uint8_t slot[65] = { 0 };
	char fname[256];

	memcpy(slot, pt, n < 65 ? n : 65);
	for (int variant = 0; variant < 2; variant++) {
		const uint8_t *p = variant == 0 ? slot : pt;
		size_t len = variant == 0 ? 65 : n;
		uint8_t pub_len = variant == 0 ? 0x41 : (uint8_t)n;
		bytes c = { 0 }, s = { 0 }, f = { 0 };

		if (variant == 1 && n == 65)
			break;
		hello_with_point(&c, 1, pub_len, p, len, ch + 74, NULL);
		hello_with_point(&s, 2, pub_len, p, len, sh + 74, sh + 106);
		snprintf(fname, sizeof(fname), "%s-%s-ch", name, variant == 0 ? "slot" : "len");
		put_b("hello", fname, &c);
		snprintf(fname, sizeof(fname), "%s-%s-sh", name, variant == 0 ? "slot" : "len");
		put_b("hello", fname, &s);
		b_frame(&f, c.p, c.n);
		snprintf(fname, sizeof(fname), "%s-%s", name, variant == 0 ? "slot" : "len");
		put_raw("server", fname, FZ_F_EOF, 0, f.p, f.n);
		f.n = 0;
		b_frame(&f, s.p, s.n);
		put_raw("client", fname, FZ_F_EOF, 0, f.p, f.n);
		b_free(&c);
		b_free(&s);
		b_free(&f);
	}
}

static int hexval(int c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* adversarial.md T4 (Wycheproof's invalid and acceptable points) and T5. */
static void hostile_points(const transcript *t, const char *wycheproof)
{
	json_error_t err;
	json_t *w = json_load_file(wycheproof, 0, &err), *groups, *g, *tests, *tc;
	const uint8_t *xc = t->ch.p + 4 + 9;
	uint8_t pt[66];
	size_t gi, ti;

	if (w == NULL) {
		fprintf(stderr, "make_corpus: cannot read %s: %s\n", wycheproof, err.text);
		exit(1);
	}
	groups = json_object_get(w, "testGroups");
	json_array_foreach(groups, gi, g)
	{
		tests = json_object_get(g, "tests");
		json_array_foreach(tests, ti, tc)
		{
			const char *res = json_string_value(json_object_get(tc, "result"));
			const char *hex = json_string_value(json_object_get(tc, "public"));
			uint8_t raw[80];
			size_t n = strlen(hex) / 2;
			char name[64];

			if (strcmp(res, "valid") == 0 || n > sizeof(raw))
				continue;
			for (size_t i = 0; i < n; i++)
				raw[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
			snprintf(name, sizeof(name), "t4-wycheproof-%d",
				 (int)json_integer_value(json_object_get(tc, "tcId")));
			put_point(t, name, raw, n);
		}
	}
	json_decref(w);

	/* T5: the client's valid point in the encodings PPCP refuses. */
	pt[0] = 0x02 | (xc[64] & 1);
	memcpy(pt + 1, xc + 1, 32);
	put_point(t, "t5-compressed", pt, 33);
	pt[0] ^= 1;
	put_point(t, "t5-compressed-wrong-parity", pt, 33);
	memcpy(pt, xc, 65);
	pt[0] = 0x06 | (xc[64] & 1);
	put_point(t, "t5-hybrid", pt, 65);
	pt[0] ^= 1;
	put_point(t, "t5-hybrid-wrong-parity", pt, 65);
	pt[0] = 0x00;
	put_point(t, "t5-infinity", pt, 1);
	memset(pt, 0, 65);
	put_point(t, "t5-zero", pt, 65);
	put_point(t, "t5-truncated-64", xc, 64);
	memcpy(pt, xc, 65);
	pt[65] = 0;
	put_point(t, "t5-extended-66", pt, 66);
	/* x + p is congruent to x: a non-canonical coordinate. */
	memcpy(pt, xc, 65);
	memset(pt + 1, 0xff, 32);
	put_point(t, "t5-x-ff", pt, 65);
	memcpy(pt, xc, 65);
	pt[64] ^= 1;
	put_point(t, "t5-off-curve", pt, 65);
}

/* T1, T2, T3, T17, T18 before keys: fuzz_server and fuzz_hello. */
static void hostile_hellos(const transcript *t)
{
	const uint8_t *ch = t->ch.p + 4, *sh = t->sh.p + 4;
	static const uint8_t pub_lens[] = { 0, 1, 32, 33, 64, 66, 255 };
	static const struct {
		int off;
		uint8_t val;
		const char *name;
	} hdr[] = {
		{ 0, 'Q', "magic0" }, { 1, 'p', "magic1" },   { 2, 0, "magic2" },
		{ 3, 'X', "magic3" }, { 4, 0, "version0" },   { 4, 2, "version2" },
		{ 4, 0xff, "versionff" }, { 5, 0, "type0" },  { 5, 2, "type2" },
		{ 5, 3, "type3" },    { 6, 0, "suite0" },     { 6, 2, "suite2" },
		{ 7, 1, "reserved1" },
	};
	char name[64];
	bytes b = { 0 };

	put("hello", "ch-valid", ch, PPCP_CLIENT_HELLO_LEN);
	put("hello", "sh-valid", sh, PPCP_SERVER_HELLO_LEN);

	/* T1: CH truncated at every length, framed at that length (a short
	 * hello) or at 106 (a stream cut short), then EOF. */
	for (size_t len = 0; len < PPCP_CLIENT_HELLO_LEN; len++) {
		b.n = 0;
		b_frame(&b, ch, len);
		snprintf(name, sizeof(name), "t1-ch-short-frame-%03zu", len);
		put_raw("server", name, FZ_F_EOF, 0, b.p, b.n);
		b.n = 0;
		b_be32(&b, PPCP_CLIENT_HELLO_LEN);
		b_add(&b, ch, len);
		snprintf(name, sizeof(name), "t1-ch-cut-%03zu", len);
		put_raw("server", name, FZ_F_EOF, 0, b.p, b.n);
		if (len % 8 == 0 || len < 10) {
			snprintf(name, sizeof(name), "t1-ch-trunc-%03zu", len);
			put("hello", name, ch, len);
		}
	}
	for (size_t len = 0; len < PPCP_SERVER_HELLO_LEN; len += 17) {
		snprintf(name, sizeof(name), "t1-sh-trunc-%03zu", len);
		put("hello", name, sh, len);
		b.n = 0;
		b_frame(&b, sh, len);
		snprintf(name, sizeof(name), "t1-sh-short-frame-%03zu", len);
		put_raw("client", name, FZ_F_EOF, 0, b.p, b.n);
	}

	/* T2: one header byte changed. */
	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		uint8_t body[PPCP_SERVER_HELLO_LEN];
		memcpy(body, ch, PPCP_CLIENT_HELLO_LEN);
		body[hdr[i].off] = hdr[i].val;
		snprintf(name, sizeof(name), "t2-ch-%s", hdr[i].name);
		put("hello", name, body, PPCP_CLIENT_HELLO_LEN);
		b.n = 0;
		b_frame(&b, body, PPCP_CLIENT_HELLO_LEN);
		put_raw("server", name, FZ_F_EOF, 0, b.p, b.n);
		memcpy(body, sh, PPCP_SERVER_HELLO_LEN);
		body[hdr[i].off] = hdr[i].val;
		snprintf(name, sizeof(name), "t2-sh-%s", hdr[i].name);
		put("hello", name, body, PPCP_SERVER_HELLO_LEN);
		b.n = 0;
		b_frame(&b, body, PPCP_SERVER_HELLO_LEN);
		put_raw("client", name, FZ_F_EOF, 0, b.p, b.n);
	}
	/* T2: the seed's unversioned hello: pub_len ‖ point ‖ nonce. */
	b.n = 0;
	b_add(&b, ch + 8, PPCP_CLIENT_HELLO_LEN - 8);
	put("hello", "t2-unversioned-seed-hello", b.p, b.n);
	{
		bytes f = { 0 };
		b_frame(&f, b.p, b.n);
		put_raw("server", "t2-unversioned-seed-hello", FZ_F_EOF, 0, f.p, f.n);
		b_free(&f);
	}

	/* T3: pub_len ∈ {0, 1, 32, 33, 64, 66, 255}, the size kept at 106. */
	for (size_t i = 0; i < sizeof(pub_lens); i++) {
		uint8_t body[PPCP_SERVER_HELLO_LEN];
		memcpy(body, ch, PPCP_CLIENT_HELLO_LEN);
		body[8] = pub_lens[i];
		snprintf(name, sizeof(name), "t3-ch-pub-len-%u", pub_lens[i]);
		put("hello", name, body, PPCP_CLIENT_HELLO_LEN);
		b.n = 0;
		b_frame(&b, body, PPCP_CLIENT_HELLO_LEN);
		put_raw("server", name, FZ_F_EOF, 0, b.p, b.n);
		memcpy(body, sh, PPCP_SERVER_HELLO_LEN);
		body[8] = pub_lens[i];
		snprintf(name, sizeof(name), "t3-sh-pub-len-%u", pub_lens[i]);
		put("hello", name, body, PPCP_SERVER_HELLO_LEN);
		b.n = 0;
		b_frame(&b, body, PPCP_SERVER_HELLO_LEN);
		put_raw("client", name, FZ_F_EOF, 0, b.p, b.n);
	}

	/* T7 (a few bytes of SH flipped) and T10 (X_s = X_c) toward the client. */
	for (size_t i = 0; i < PPCP_SERVER_HELLO_LEN; i += 13) {
		uint8_t body[PPCP_SERVER_HELLO_LEN];
		memcpy(body, sh, sizeof(body));
		body[i] ^= 0x01;
		b.n = 0;
		b_frame(&b, body, sizeof(body));
		snprintf(name, sizeof(name), "t7-sh-flip-%03zu", i);
		put_raw("client", name, 0, 0, b.p, b.n);
	}
	{
		uint8_t body[PPCP_SERVER_HELLO_LEN];
		memcpy(body, sh, sizeof(body));
		memcpy(body + 9, ch + 9, 65);
		b.n = 0;
		b_frame(&b, body, sizeof(body));
		put_raw("client", "t10-reflected-point", 0, 0, b.p, b.n);
		put("hello", "t10-reflected-point-sh", body, sizeof(body));
	}

	/* T17: pipelined garbage after CH: read as a bad AUTH record. */
	b.n = 0;
	b_add(&b, t->ch.p, t->ch.n);
	for (int i = 0; i < 64; i++)
		b_byte(&b, (uint8_t)('A' + i % 26));
	put_raw("server", "t17-ch-then-garbage", FZ_F_EOF, 0, b.p, b.n);
	b.n = 0;
	b_add(&b, t->ch.p, t->ch.n);
	b_add(&b, t->ch.p, t->ch.n);
	put_raw("server", "t17-ch-twice", FZ_F_EOF, 0, b.p, b.n);
	b.n = 0;
	b_add(&b, t->ch.p, t->ch.n);
	b_be32(&b, 40);
	for (int i = 0; i < 40; i++)
		b_byte(&b, (uint8_t)i);
	put_raw("server", "t17-ch-then-fake-record", FZ_F_EOF, 0, b.p, b.n);

	/* T18 before keys: lengths refused before allocation. */
	{
		static const uint32_t lens[] = { 0xffffffffu, 12 + (1u << 17) + 17, 0, 1025,
						 1024, 105, 107, 171 };
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			b.n = 0;
			b_be32(&b, lens[i]);
			b_str(&b, "PPCP");
			snprintf(name, sizeof(name), "t18-preauth-len-%u", lens[i]);
			put_raw("server", name, FZ_F_EOF, 0, b.p, b.n);
			put_raw("client", name, FZ_F_EOF, 0, b.p, b.n);
		}
	}
	b_free(&b);
}

/* ---- the targets ---------------------------------------------------------- */

static void corpus_frame(const transcript *t)
{
	static const struct {
		uint32_t min, max;
		const char *name;
	} lim[] = {
		{ 1, PPCP_MAX_PREAUTH_FRAME, "preauth" },
		{ PPCP_REC_OVERHEAD + 1, PPCP_REC_OVERHEAD + PPCP_MAX_HANDSHAKE_RECORD, "auth" },
		{ PPCP_REC_OVERHEAD + 1, PPCP_REC_OVERHEAD + PPCP_DEFAULT_MAX_RECORD, "session" },
		{ 0, 0, "zero" },
		{ 0, PPCP_REC_OVERHEAD + PPCP_MAX_RECORD_LIMIT, "widest" },
		{ 200, 100, "min-above-max" },
	};
	static const uint8_t seeds[] = { 0, 1, 5 };
	static const uint32_t t18[] = { 0xffffffffu, 12 + (1u << 17) + 17, 0, 1, 12, 27, 28, 29 };
	char name[96];

	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		for (size_t k = 0; k < sizeof(seeds); k++) {
			for (int dir = 0; dir < 2; dir++) {
				const bytes *st = dir == 0 ? &t->c2s : &t->s2c;
				bytes b = { 0 };
				size_t cut = st->n < 3000 ? st->n : 3000;
				b_be32(&b, lim[i].min);
				b_be32(&b, lim[i].max);
				b_byte(&b, seeds[k]);
				b_add(&b, st->p, cut);
				snprintf(name, sizeof(name), "%s-%s-split%u", dir ? "s2c" : "c2s",
					 lim[i].name, seeds[k]);
				put_b("frame", name, &b);
				b_free(&b);
			}
		}
	}
	for (size_t i = 0; i < sizeof(t18) / sizeof(t18[0]); i++) {
		bytes b = { 0 };
		b_be32(&b, PPCP_REC_OVERHEAD + 1);
		b_be32(&b, PPCP_REC_OVERHEAD + PPCP_DEFAULT_MAX_RECORD);
		b_byte(&b, 0);
		b_be32(&b, t18[i]);
		b_str(&b, "0123456789abcdef0123456789abcdef");
		snprintf(name, sizeof(name), "t18-len-%u", t18[i]);
		put_b("frame", name, &b);
		b_free(&b);
	}
	{
		bytes b = { 0 };
		b_be32(&b, 0);
		b_be32(&b, 16);
		b_byte(&b, 1);
		for (int i = 0; i < 4; i++)
			b_be32(&b, 0);
		b_frame(&b, "abc", 3);
		b_be32(&b, 16);
		b_str(&b, "partial");
		put_b("frame", "empty-frames-then-partial", &b);
		b_free(&b);
	}
}

static void corpus_msg(const transcript *t)
{
	char name[64];
	char *s;

	put("msg", "auth", t->auth_pt, strlen(t->auth_pt));
	put("msg", "auth-ok", t->authok_pt, strlen(t->authok_pt));
	for (size_t i = 0; i < sizeof(session_msgs) / sizeof(session_msgs[0]); i++) {
		s = msg(session_msgs[i][0], "00000002", session_msgs[i][1]);
		snprintf(name, sizeof(name), "session-%02zu-%s", i, session_msgs[i][0]);
		put("msg", name, s, strlen(s));
		free(s);
	}
	for (size_t i = 0; i < sizeof(other_phase) / sizeof(other_phase[0]); i++) {
		s = msg(other_phase[i][0], "00000003", other_phase[i][1]);
		snprintf(name, sizeof(name), "phase-%s", other_phase[i][0]);
		put("msg", name, s, strlen(s));
		free(s);
	}
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		snprintf(name, sizeof(name), "t31-malformed-%02zu", i);
		put("msg", name, malformed[i], strlen(malformed[i]));
	}
	s = deep(PPCP_MAX_JSON_DEPTH);
	put("msg", "t31-depth-16", s, strlen(s));
	free(s);
	s = deep(PPCP_MAX_JSON_DEPTH + 1);
	put("msg", "t31-depth-17", s, strlen(s));
	free(s);
	s = deep(100000);
	put("msg", "t31-depth-100000", s, strlen(s));
	free(s);
	/* base64: canonical, padded, and the forms the decoder refuses. */
	{
		static const char *const b64[] = {
			"I1qKXkPFJbqyQiM52FZ9p0gbtLNr588oxi/iEpZvtTg=", "AA==", "AAA=", "AAAA",
			"AB==", "AAB=", "A===", "====", "AA=A", "AA\nA", " AAA", "AAAAA", "-_-_",
		};
		for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
			snprintf(name, sizeof(name), "b64-%02zu", i);
			put("msg", name, b64[i], strlen(b64[i]));
		}
	}
}

static void corpus_disco(const transcript *t)
{
	static const char *const pings[] = {
		"{\"i\":\"1b2c3d4e\",\"p\":{\"client_id\":\"laptop-7\",\"hostname\":\"laptop\","
		"\"target\":\"srv-01\",\"version\":\"0.1.0\"},\"s\":1700000000,\"t\":\"PING\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\",\"pad\":7,"
		"\"version\":\"x\"},\"s\":0,\"t\":\"PING\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\",\"target\":\"\","
		"\"version\":\"x\"},\"s\":0,\"t\":\"PING\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c d\",\"hostname\":\"h\",\"version\":\"x\"},"
		"\"s\":0,\"t\":\"PING\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\",\"version\":\"a\\tb\"},"
		"\"s\":0,\"t\":\"PING\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\",\"version\":\"0.1 beta\"},"
		"\"s\":0,\"t\":\"PING\",\"v\":2}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\"},\"s\":0,\"t\":\"PING\","
		"\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"client_id\":\"c\",\"hostname\":\"h\",\"version\":\"x\"},"
		"\"s\":0,\"t\":\"PONG\",\"v\":1}",
	};
	static const char *const pongs[] = {
		"{\"i\":\"1b2c3d4e\",\"p\":{\"capabilities\":[\"key-exchange\",\"aes-gcm\","
		"\"key-update\",\"binary-data\"],\"hostname\":\"node-01\",\"public_info\":"
		"{\"port\":9000,\"protocol\":\"ppcp/1\"},\"server_id\":\"srv-01\"},\"s\":1700000001,"
		"\"t\":\"PONG\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"capabilities\":[\"warp\",\"key-update\"],\"hostname\":\"h\","
		"\"public_info\":{\"port\":65535,\"protocol\":\"ppcp/1\"},\"server_id\":\"s\"},"
		"\"s\":0,\"t\":\"PONG\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"capabilities\":[],\"hostname\":\"h\",\"public_info\":"
		"{\"port\":0,\"protocol\":\"ppcp/1\"},\"server_id\":\"s\"},\"s\":0,\"t\":\"PONG\","
		"\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"capabilities\":[],\"hostname\":\"h\",\"public_info\":"
		"{\"port\":65536,\"protocol\":\"ppcp/1\"},\"server_id\":\"s\"},\"s\":0,\"t\":\"PONG\","
		"\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"capabilities\":[],\"hostname\":\"h\",\"public_info\":"
		"{\"port\":1,\"protocol\":\"ppcp/2\"},\"server_id\":\"s\"},\"s\":0,\"t\":\"PONG\","
		"\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"capabilities\":[1],\"hostname\":\"h\",\"public_info\":"
		"{\"port\":1,\"protocol\":\"ppcp/1\"},\"server_id\":\"s\"},\"s\":0,\"t\":\"PONG\","
		"\"v\":1}",
	};
	char name[64];
	ppcp_ping ping;
	ppcp_pong pong;
	uint8_t buf[2 * PPCP_PING_MAX];
	size_t n;

	/* What the encoders write, and what the server answered on TCP. */
	put("disco", "ping-tcp", t->ping.p + 4, t->ping.n - 4);
	put("disco", "pong-tcp", t->pong.p + 4, t->pong.n - 4);
	memset(&ping, 0, sizeof(ping));
	strcpy(ping.id, "0123456789012345678901234567890123456789012345678901234567890123");
	memset(ping.client_id, 'c', PPCP_ID_MAX);
	memset(ping.hostname, 'h', PPCP_ID_MAX);
	memset(ping.version, '~', PPCP_ID_MAX);
	memset(ping.target, 't', PPCP_ID_MAX);
	ping.ts = INT64_MIN;
	FZ_CHECK(ppcp_ping_encode(&ping, buf, sizeof(buf), &n) == 0, "ping_encode");
	put("disco", "ping-longest-fields", buf, n);
	memset(&pong, 0, sizeof(pong));
	strcpy(pong.id, "~");
	strcpy(pong.server_id, "s");
	strcpy(pong.hostname, "h");
	pong.port = 1;
	pong.ts = INT64_MAX;
	for (uint32_t caps = 0; caps <= PPCP_EXT_ALL; caps++) {
		pong.capabilities = caps;
		FZ_CHECK(ppcp_pong_encode(&pong, buf, sizeof(buf), &n) == 0, "pong_encode");
		snprintf(name, sizeof(name), "pong-caps-%u", caps);
		put("disco", name, buf, n);
	}
	for (size_t i = 0; i < sizeof(pings) / sizeof(pings[0]); i++) {
		snprintf(name, sizeof(name), "ping-%02zu", i);
		put("disco", name, pings[i], strlen(pings[i]));
	}
	for (size_t i = 0; i < sizeof(pongs) / sizeof(pongs[0]); i++) {
		snprintf(name, sizeof(name), "pong-%02zu", i);
		put("disco", name, pongs[i], strlen(pongs[i]));
	}
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		snprintf(name, sizeof(name), "t31-malformed-%02zu", i);
		put("disco", name, malformed[i], strlen(malformed[i]));
	}
	{
		char *s = deep(1000);
		put("disco", "t31-depth-1000", s, strlen(s));
		free(s);
	}
	/* A PING one byte over the limit. */
	{
		bytes b = { 0 };
		b_add(&b, t->ping.p + 4, t->ping.n - 4);
		while (b.n < PPCP_PING_MAX + 1)
			b_byte(&b, ' ');
		put_b("disco", "ping-1025-bytes", &b);
		b_free(&b);
	}
}

/* Sealed-mode seeds shared by the established targets and the AUTH-stage
 * ones: every message, the malformed ones, and a session using every op. */
static void sealed_session_seeds(const char *target, const char *prefix, const char *first)
{
	char name[96];
	sealed s;
	char *m;

	for (size_t i = 0; i < sizeof(session_msgs) / sizeof(session_msgs[0]); i++) {
		s_begin(&s, FZ_F_REPLY);
		if (first != NULL)
			s_rec(&s, first);
		m = msg(session_msgs[i][0], "00000002", session_msgs[i][1]);
		s_rec(&s, m);
		free(m);
		snprintf(name, sizeof(name), "%ssealed-%02zu-%s", prefix, i, session_msgs[i][0]);
		put_b(target, name, &s.b);
		b_free(&s.b);
	}
	if (first != NULL)
		return; /* the rest once, in the established targets */
	for (size_t i = 0; i < sizeof(other_phase) / sizeof(other_phase[0]); i++) {
		s_begin(&s, 0);
		m = msg(other_phase[i][0], "00000003", other_phase[i][1]);
		s_rec(&s, m);
		free(m);
		snprintf(name, sizeof(name), "sealed-phase-%s", other_phase[i][0]);
		put_b(target, name, &s.b);
		b_free(&s.b);
	}
	/* T31: every malformed text, each answered by ERROR, in one session,
	 * and each alone. */
	s_begin(&s, 0);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		sealed one;
		s_rec(&s, malformed[i]);
		s_begin(&one, 0);
		s_rec(&one, malformed[i]);
		snprintf(name, sizeof(name), "t31-sealed-malformed-%02zu", i);
		put_b(target, name, &one.b);
		b_free(&one.b);
	}
	m = deep(1000);
	s_rec(&s, m);
	free(m);
	put_b(target, "t31-sealed-all-malformed", &s.b);
	b_free(&s.b);
	/* 10^5 nested arrays (200 kB) are in fuzz_msg's corpus only: a seed
	 * that large slows every mutation here (tests/test_conn.c sends it
	 * through a session). */
	/* Binary records and bad first bytes. */
	s_begin(&s, FZ_F_REPLY);
	s_op(&s, 0, "\x01\x00\x01\x02", 4);
	s_op(&s, 0, "\x01", 1);
	put_b(target, "sealed-binary", &s.b);
	b_free(&s.b);
	s_begin(&s, 0);
	s_op(&s, 0, "\x02{}", 3);
	put_b(target, "sealed-bad-first-byte", &s.b);
	b_free(&s.b);
	/* T19 after valid records: a raw, unsealed record. */
	s_begin(&s, 0);
	m = msg("HEARTBEAT", "00000009", "{\"ts\":1}");
	s_rec(&s, m);
	s_op(&s, 1 | (3 << 3), "\x00\x00\x00\x30garbage-garbage-garbage-garbage-garbage-garbage!",
	     52);
	free(m);
	put_b(target, "t19-sealed-then-raw", &s.b);
	b_free(&s.b);
}

/* A session that uses every op of fuzz_common.h. */
static void sealed_all_ops(const char *target, const char *name, const char *first)
{
	sealed s;
	char *m;
	char send[256];

	s_begin(&s, FZ_F_REPLY | FZ_F_EOF);
	if (first != NULL)
		s_rec(&s, first);
	m = msg("COMMAND", "00000002", session_msgs[2][1]);
	s_rec(&s, m);
	free(m);
	m = msg("KEY_UPDATE", "00000003", "{}");
	s_rec(&s, m);
	free(m);
	m = msg("HEARTBEAT", "00000004", "{\"ts\":77}");
	s_rec(&s, m);
	free(m);
	s_op(&s, 2, "\x00\xf0", 2); /* 15.36 s: a HEARTBEAT is due */
	send[0] = PPCP_MSG_COMMAND;
	strcpy(send + 1, "{\"args\":{},\"name\":\"status\"}");
	s_op(&s, 3, send, strlen(send + 1) + 1);
	s_op(&s, 4, "\x00\x01\x02", 3);
	s_op(&s, 5, NULL, 0);
	m = msg("HEARTBEAT", "00000005", "{\"ts\":78}");
	s_rec(&s, m);
	free(m);
	s_op(&s, 6, NULL, 0);
	s_op(&s, 0, "\x01\xfe", 2);
	s_op(&s, 2, "\x02\xc0", 2); /* 45 s: idle timeout */
	s_op(&s, 7, "\x00", 1);
	put_b(target, name, &s.b);
	b_free(&s.b);

	s_begin(&s, 0);
	if (first != NULL)
		s_rec(&s, first);
	s_op(&s, 7, "\x01", 1); /* the peer says BYE */
	put_b(target, "sealed-peer-bye", &s.b);
	b_free(&s.b);
	s_begin(&s, 0);
	if (first != NULL)
		s_rec(&s, first);
	s_op(&s, 7, "\x02", 1);
	put_b(target, "sealed-eof", &s.b);
	b_free(&s.b);
}

static void corpus_established(const char *target, enum ppcp_role role)
{
	static const uint8_t seeds[] = { 0, 1, 3, 7 };
	char name[64];
	bytes r = { 0 };

	for (int which = 0; which < 5; which++) {
		static const char *const what[] = { "all-messages", "heartbeat", "key-update",
						    "binary", "bye" };
		r.n = 0;
		established_records(role, which, &r);
		for (size_t k = 0; k < (which == 0 ? sizeof(seeds) : 1); k++) {
			snprintf(name, sizeof(name), "raw-%s-split%u", what[which], seeds[k]);
			put_raw(target, name, which == 0 ? FZ_F_EOF : 0, seeds[k], r.p, r.n);
		}
	}
	/* T19: the HEARTBEAT record with one bit flipped in each field. */
	r.n = 0;
	established_records(role, 1, &r);
	{
		static const struct {
			size_t off;
			const char *name;
		} flips[] = { { 3, "len" }, { 4, "nonce" }, { 15, "nonce-last" },
			      { 16, "ciphertext" }, { 0, "tag" } };
		for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
			uint8_t *c = malloc(r.n);
			size_t off = flips[i].off ? flips[i].off : r.n - 1;
			memcpy(c, r.p, r.n);
			c[off] ^= 0x01;
			snprintf(name, sizeof(name), "t19-flip-%s", flips[i].name);
			put_raw(target, name, 0, 0, c, r.n);
			free(c);
		}
		/* T20: the same record twice (a replay). */
		bytes two = { 0 };
		b_add(&two, r.p, r.n);
		b_add(&two, r.p, r.n);
		put_raw(target, "t20-replay", 0, 0, two.p, two.n);
		b_free(&two);
	}
	/* T18: lengths refused before allocation. */
	{
		static const uint32_t lens[] = { 0xffffffffu, 12 + (1u << 17) + 17,
						 PPCP_REC_OVERHEAD + PPCP_DEFAULT_MAX_RECORD + 1,
						 0, 1, 12, 27, 28, 29 };
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			bytes b = { 0 };
			b_be32(&b, lens[i]);
			b_str(&b, "0123456789abcdef0123456789abcdef");
			snprintf(name, sizeof(name), "t18-len-%u", lens[i]);
			put_raw(target, name, FZ_F_EOF, 0, b.p, b.n);
			b_free(&b);
		}
	}
	b_free(&r);
	sealed_session_seeds(target, "", NULL);
	sealed_all_ops(target, "sealed-all-ops", NULL);
}

/* Rewrite one member of an AUTH/AUTH_OK plaintext (NULL value deletes). */
static char *auth_variant(const char *pt, const char *key, const char *json_value, int in_p)
{
	json_t *root = json_loads(pt, 0, NULL), *obj;
	char *s;

	FZ_CHECK(root != NULL, "auth plaintext");
	obj = in_p ? json_object_get(root, "p") : root;
	if (json_value == NULL)
		json_object_del(obj, key);
	else
		json_object_set_new(obj, key, json_loads(json_value, JSON_DECODE_ANY, NULL));
	s = ppcp__json_dump(root, NULL);
	json_decref(root);
	return s;
}

static void corpus_auth_stage(const char *target, const char *valid, int server)
{
	const struct {
		const char *key, *value;
		int in_p;
		const char *name;
	} var[] = {
		{ "ext", "[]", 1, "ext-empty" },
		{ "ext", "[\"binary-data\",\"warp\",\"key-update\"]", 1, "ext-unknown" },
		{ "ext", "[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
			 "\"a\",\"a\",\"a\",\"a\",\"a\"]",
		  1, "ext-17" },
		{ "ext", "[1]", 1, "ext-not-string" },
		{ "ext", NULL, 1, "ext-missing" },
		{ "max_record", "4095", 1, "max-record-4095" },
		{ "max_record", "4096", 1, "max-record-4096" },
		{ "max_record", "16777216", 1, "max-record-16m" },
		{ "max_record", "16777217", 1, "max-record-16m-plus-1" },
		{ "max_record", NULL, 1, "max-record-missing" },
		{ "proof", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"", 1, "proof-wrong" },
		{ "proof", "\"AAAA\"", 1, "proof-short" },
		{ "proof", NULL, 1, "proof-missing" },
		{ "client_id", "\"a b\"", 1, "client-id-invalid" },
		{ "client_id", NULL, 1, "client-id-missing" },
		{ "server_id", "\"srv-other\"", 1, "server-id-other" },
		{ "server_id", NULL, 1, "server-id-missing" },
		{ "v", "2", 0, "v2" },
		{ "t", "\"HEARTBEAT\"", 0, "type-heartbeat" },
		{ "t", server ? "\"AUTH_OK\"" : "\"AUTH\"", 0, "type-other-auth" },
		{ "i", "\"\"", 0, "id-empty" },
	};
	char name[96];
	sealed s;

	s_begin(&s, 0);
	s_rec(&s, valid);
	put_b(target, "auth-valid", &s.b);
	b_free(&s.b);
	for (size_t i = 0; i < sizeof(var) / sizeof(var[0]); i++) {
		char *m = auth_variant(valid, var[i].key, var[i].value, var[i].in_p);
		s_begin(&s, FZ_F_EOF);
		s_rec(&s, m);
		free(m);
		snprintf(name, sizeof(name), "auth-%s", var[i].name);
		put_b(target, name, &s.b);
		b_free(&s.b);
	}
	/* T13: an application message instead of AUTH; AUTH_FAIL; binary. */
	{
		char *m = msg("COMMAND", "00000001", session_msgs[2][1]);
		s_begin(&s, 0);
		s_rec(&s, m);
		free(m);
		put_b(target, "t13-command-instead-of-auth", &s.b);
		b_free(&s.b);
		m = msg("AUTH_FAIL", "00000001", "{\"reason\":\"authentication-failed\"}");
		s_begin(&s, 0);
		s_rec(&s, m);
		free(m);
		put_b(target, "auth-fail", &s.b);
		b_free(&s.b);
		s_begin(&s, 0);
		s_op(&s, 0, "\x01\x02", 2);
		put_b(target, "auth-binary", &s.b);
		b_free(&s.b);
		s_begin(&s, 0);
		s_rec(&s, malformed[0]);
		put_b(target, "auth-malformed", &s.b);
		b_free(&s.b);
	}
	sealed_session_seeds(target, "auth-then-", valid);
	sealed_all_ops(target, "auth-then-all-ops", valid);
}

int main(int argc, char **argv)
{
	transcript t;

	if (argc != 3) {
		fprintf(stderr, "usage: %s CORPUS_DIR WYCHEPROOF_ECPOINT_JSON\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	record_transcript(&t);

	/* fuzz_server: the real client's stream, whole and in parts. */
	{
		bytes b = { 0 };
		put_raw("server", "real-session", 0, 0, t.c2s.p, t.c2s.n);
		put_raw("server", "real-session-split1", FZ_F_EOF, 1, t.c2s.p, t.c2s.n);
		put_raw("server", "real-session-split4", 0, 4, t.c2s.p, t.c2s.n);
		put_raw("server", "real-ping", FZ_F_EOF, 0, t.ping.p, t.ping.n);
		b_add(&b, t.ch.p, t.ch.n);
		put_raw("server", "real-ch-eof", FZ_F_EOF, 0, b.p, b.n);
		b_add(&b, t.auth.p, t.auth.n);
		put_raw("server", "real-ch-auth", 0, 0, b.p, b.n);
		b_add(&b, t.auth.p, t.auth.n);
		put_raw("server", "t11-auth-replayed", 0, 0, b.p, b.n);
		b.n = 0;
		b_add(&b, t.ping.p, t.ping.n);
		b_add(&b, t.ping.p, t.ping.n);
		put_raw("server", "ping-twice", 0, 0, b.p, b.n);
		b.n = 0;
		b_add(&b, t.ch.p, t.ch.n);
		b_add(&b, t.auth.p, t.auth.n);
		b.p[b.n - 1] ^= 0x80;
		put_raw("server", "t11-auth-flipped", 0, 0, b.p, b.n);
		b.n = 0;
		b_add(&b, t.ch.p, t.ch.n);
		b_add(&b, t.auth.p, t.auth.n);
		b_add(&b, t.c_session.p, t.c_session.n > 400 ? 400 : t.c_session.n);
		put_raw("server", "real-session-cut", FZ_F_EOF, 0, b.p, b.n);
		/* T31 as TCP PINGs. */
		for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i += 3) {
			char name[64];
			b.n = 0;
			b_frame(&b, malformed[i], strlen(malformed[i]));
			b_add(&b, t.ch.p, t.ch.n);
			snprintf(name, sizeof(name), "t31-ping-malformed-%02zu", i);
			put_raw("server", name, 0, 0, b.p, b.n);
		}
		b_free(&b);
	}
	/* fuzz_client: the real server's stream (without the PONG). */
	{
		bytes b = { 0 };
		b_add(&b, t.sh.p, t.sh.n);
		b_add(&b, t.authok.p, t.authok.n);
		b_add(&b, t.s_session.p, t.s_session.n);
		put_raw("client", "real-session", 0, 0, b.p, b.n);
		put_raw("client", "real-session-split2", FZ_F_EOF, 2, b.p, b.n);
		put_raw("client", "real-sh-authok", 0, 0, b.p, t.sh.n + t.authok.n);
		put_raw("client", "real-sh-eof", FZ_F_EOF, 0, b.p, t.sh.n);
		b.n = 0;
		b_add(&b, t.pong.p, t.pong.n);
		b_add(&b, t.sh.p, t.sh.n);
		put_raw("client", "pong-before-sh", 0, 0, b.p, b.n);
		b_free(&b);
	}
	hostile_hellos(&t);
	hostile_points(&t, argv[2]);
	corpus_frame(&t);
	corpus_msg(&t);
	corpus_disco(&t);
	corpus_auth_stage("server", t.auth_pt, 1);
	corpus_auth_stage("client", t.authok_pt, 0);
	corpus_established("server_established", PPCP_ROLE_SERVER);
	corpus_established("client_established", PPCP_ROLE_CLIENT);

	printf("make_corpus: %lu files, %lu bytes in %s\n", files, total, outdir);
	b_free(&t.c2s);
	b_free(&t.s2c);
	b_free(&t.ping);
	b_free(&t.pong);
	b_free(&t.ch);
	b_free(&t.sh);
	b_free(&t.auth);
	b_free(&t.authok);
	b_free(&t.c_session);
	b_free(&t.s_session);
	free(t.auth_pt);
	free(t.authok_pt);
	return 0;
}
