/*
 * test_conn.c - the engine, two connections pumping bytes in memory under a
 * fake clock and fixed randomness (adversarial.md A and B, T38).
 *
 * The randomness of each side comes from tests/vectors/handshake.json
 * (private scalar, then nonce), so the first session reproduces the
 * independent generator's bytes exactly.  Other sessions use other fixed
 * streams derived from a counter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "internal.h"
#include "testutil.h"

/* ---- fixture ---------------------------------------------------------- */

typedef struct side {
	uint8_t rng[256];
	size_t rng_len, rng_off;
	int rng_fail;
	int established;
	int messages;
	int binaries;
	enum ppcp_msg_type last_type;
	char last_id[PPCP_ID_MAX + 1];
	char last_payload[512];
	uint8_t last_bin[64];
	size_t last_bin_len;
} side;

static int side_rng(void *user, uint8_t *out, size_t len)
{
	side *s = user;
	if (s->rng_fail || s->rng_off + len > s->rng_len)
		return -1;
	memcpy(out, s->rng + s->rng_off, len);
	s->rng_off += len;
	return 0;
}

static int64_t fixed_time(void *user)
{
	(void)user;
	return 1700000000;
}

static void on_established(ppcp_conn *c, void *user)
{
	(void)c;
	((side *)user)->established++;
}

static void on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	side *s = user;
	char *txt;
	(void)c;
	s->messages++;
	s->last_type = m->type;
	snprintf(s->last_id, sizeof(s->last_id), "%s", m->id);
	txt = ppcp__json_dump(m->payload, NULL);
	snprintf(s->last_payload, sizeof(s->last_payload), "%s", txt ? txt : "");
	free(txt);
}

static void on_binary(ppcp_conn *c, const uint8_t *d, size_t n, void *user)
{
	side *s = user;
	(void)c;
	s->binaries++;
	s->last_bin_len = n;
	memcpy(s->last_bin, d, n < sizeof(s->last_bin) ? n : sizeof(s->last_bin));
}

static json_t *V; /* handshake.json */
/* PPCP_TEST_QUICK (the valgrind run): sweeps take every STEP-th case. */
static size_t STEP = 1;
static uint64_t RECORDS = 100000;
static uint8_t PSK[32];

static void rng_from_counter(side *s, unsigned seed)
{
	/* A different valid stream per seed: the vector stream with its
	 * scalar's last byte changed stays far below n. */
	s->rng_len = tu_hex(tu_vec(V, "inputs.rng_client"), s->rng, sizeof(s->rng));
	s->rng[31] ^= (uint8_t)(seed * 7 + 1);
	s->rng[40] ^= (uint8_t)seed;
	s->rng_off = 0;
}

typedef struct pair {
	ppcp_conn *c, *s;
	side cs, ss;
	uint64_t now;
} pair;

static void make_conn(ppcp_conn **out, side *sd, enum ppcp_role role, const uint8_t *psk,
		      const char *sid, uint32_t ext, uint64_t now)
{
	ppcp_config cfg;
	ppcp_config_init(&cfg, role);
	cfg.psk = psk;
	cfg.psk_len = 32;
	cfg.server_id = sid;
	cfg.client_id = role == PPCP_ROLE_CLIENT ? "cli-test" : NULL;
	cfg.rng = side_rng;
	cfg.unix_time = fixed_time;
	cfg.extensions = ext;
	cfg.cb.on_established = on_established;
	cfg.cb.on_message = on_message;
	cfg.cb.on_binary = on_binary;
	cfg.user = sd;
	assert_int_equal(ppcp_conn_new(out, &cfg, now), 0);
}

/* Client and server with the vector streams (vectors == 1) or others. */
static void pair_init(pair *p, int vectors, unsigned seed)
{
	memset(p, 0, sizeof(*p));
	p->now = 1000;
	if (vectors) {
		p->cs.rng_len = tu_hex(tu_vec(V, "inputs.rng_client"), p->cs.rng, sizeof(p->cs.rng));
		p->ss.rng_len = tu_hex(tu_vec(V, "inputs.rng_server"), p->ss.rng, sizeof(p->ss.rng));
	} else {
		rng_from_counter(&p->cs, seed);
		rng_from_counter(&p->ss, seed + 100);
	}
	make_conn(&p->s, &p->ss, PPCP_ROLE_SERVER, PSK, "srv-test", PPCP_EXT_ALL, p->now);
	make_conn(&p->c, &p->cs, PPCP_ROLE_CLIENT, PSK, "srv-test", PPCP_EXT_ALL, p->now);
}

static void pair_free(pair *p)
{
	ppcp_conn_free(p->c);
	ppcp_conn_free(p->s);
}

/* Move everything pending from a to b, step bytes at a time (0 = all). */
static int pump1(ppcp_conn *a, ppcp_conn *b, size_t step, uint64_t now)
{
	const uint8_t *d;
	size_t n = ppcp_conn_out(a, &d);
	uint8_t *copy;
	int ret = 0;

	if (n == 0)
		return 0;
	copy = malloc(n);
	memcpy(copy, d, n);
	ppcp_conn_out_ack(a, n);
	for (size_t off = 0; off < n && ret == 0;) {
		size_t k = step == 0 ? n - off : (n - off < step ? n - off : step);
		ret = ppcp_conn_feed(b, copy + off, k, now);
		off += k;
	}
	free(copy);
	return ret;
}

static void pair_handshake(pair *p, size_t step)
{
	assert_int_equal(pump1(p->c, p->s, step, p->now), 0); /* CH */
	assert_int_equal(ppcp_conn_state(p->s), PPCP_ST_SERVER_EXPECT_AUTH);
	assert_int_equal(pump1(p->s, p->c, step, p->now), 0); /* SH */
	assert_int_equal(ppcp_conn_state(p->c), PPCP_ST_CLIENT_EXPECT_AUTH_OK);
	assert_int_equal(pump1(p->c, p->s, step, p->now), 0); /* AUTH */
	assert_int_equal(ppcp_conn_state(p->s), PPCP_ST_ESTABLISHED);
	assert_int_equal(pump1(p->s, p->c, step, p->now), 0); /* AUTH_OK */
	assert_int_equal(ppcp_conn_state(p->c), PPCP_ST_ESTABLISHED);
	assert_int_equal(p->cs.established, 1);
	assert_int_equal(p->ss.established, 1);
}

/* Take a copy of the pending output of a (and consume it). */
static size_t take(ppcp_conn *a, uint8_t *buf, size_t cap)
{
	const uint8_t *d;
	size_t n = ppcp_conn_out(a, &d);
	assert_true(n <= cap);
	memcpy(buf, d, n);
	ppcp_conn_out_ack(a, n);
	return n;
}

static size_t pending(ppcp_conn *a)
{
	const uint8_t *d;
	return ppcp_conn_out(a, &d);
}

/* Expect the pending output of a to equal the vector's hex. */
static void expect_out(ppcp_conn *a, const char *path)
{
	uint8_t want[2048], got[2048];
	size_t wn = tu_hex(tu_vec(V, path), want, sizeof(want));
	size_t gn = take(a, got, sizeof(got));
	tu_expect_bytes(path, want, wn, got, gn);
}

/* The frame of the n-th record called name (n from 0). */
static const char *record_frame_n(const char *name, int nth)
{
	json_t *recs = json_object_get(V, "records");
	size_t i;
	json_t *r;
	json_array_foreach(recs, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0 && nth-- == 0)
			return json_string_value(json_object_get(r, "frame"));
	}
	fail_msg("no record %s in handshake.json", name);
	return NULL;
}

static const char *record_frame(const char *name)
{
	return record_frame_n(name, 0);
}

static void expect_record_n(ppcp_conn *a, const char *name, int nth)
{
	uint8_t want[2048], got[2048];
	size_t wn = tu_hex(record_frame_n(name, nth), want, sizeof(want));
	size_t gn = take(a, got, sizeof(got));
	tu_expect_bytes(name, want, wn, got, gn);
}

static void expect_record(ppcp_conn *a, const char *name)
{
	uint8_t want[2048], got[2048];
	size_t wn = tu_hex(record_frame(name), want, sizeof(want));
	size_t gn = take(a, got, sizeof(got));
	tu_expect_bytes(name, want, wn, got, gn);
}

/* ---- known answers ---------------------------------------------------- */

static void test_handshake_reproduces_independent_vectors(void **state)
{
	pair p;
	uint8_t buf[2048];
	size_t n;
	(void)state;

	pair_init(&p, 1, 0);
	expect_out(p.c, "hello.client_hello_frame");
	/* Feed the vector's CH to the server, compare its SH. */
	n = tu_hex(tu_vec(V, "hello.client_hello_frame"), buf, sizeof(buf));
	assert_int_equal(ppcp_conn_feed(p.s, buf, n, p.now), 0);
	expect_out(p.s, "hello.server_hello_frame");
	n = tu_hex(tu_vec(V, "hello.server_hello_frame"), buf, sizeof(buf));
	assert_int_equal(ppcp_conn_feed(p.c, buf, n, p.now), 0);
	expect_record(p.c, "AUTH");
	n = tu_hex(record_frame("AUTH"), buf, sizeof(buf));
	assert_int_equal(ppcp_conn_feed(p.s, buf, n, p.now), 0);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_ESTABLISHED);
	assert_string_equal(ppcp_conn_peer_id(p.s), "cli-test");
	expect_record(p.s, "AUTH_OK");
	n = tu_hex(record_frame("AUTH_OK"), buf, sizeof(buf));
	assert_int_equal(ppcp_conn_feed(p.c, buf, n, p.now), 0);
	assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_ESTABLISHED);
	assert_string_equal(ppcp_conn_peer_id(p.c), "srv-test");
	assert_int_equal(ppcp_conn_extensions(p.c), PPCP_EXT_ALL);
	assert_int_equal(ppcp_conn_peer_max_record(p.c), 1048576);
	assert_int_equal(ppcp_conn_peer_max_record(p.s), 1048576);

	/* First application records. */
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":1000}", NULL), 0);
	expect_record(p.c, "HEARTBEAT");
	n = tu_hex(record_frame("HEARTBEAT"), buf, sizeof(buf));
	assert_int_equal(ppcp_conn_feed(p.s, buf, n, p.now), 0);
	assert_int_equal(p.ss.last_type, PPCP_MSG_HEARTBEAT);
	expect_record(p.s, "HEARTBEAT_ACK");
	assert_int_equal(ppcp__conn_key_update(p.c), 0);
	expect_record(p.c, "KEY_UPDATE");
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":2000}", NULL), 0);
	expect_record_n(p.c, "HEARTBEAT", 1);
	pair_free(&p);
}

static void test_handshake_byte_at_a_time_matches_all_at_once(void **state)
{
	pair a, b;
	(void)state;
	pair_init(&a, 0, 3);
	pair_init(&b, 0, 3);
	pair_handshake(&a, 0);
	pair_handshake(&b, 1);
	/* Same randomness, same transcript: the same peers and a message
	 * goes through byte by byte. */
	assert_int_equal(ppcp_conn_send_json(b.c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"status\",\"args\":{}}", NULL),
			 0);
	assert_int_equal(pump1(b.c, b.s, 1, b.now), 0);
	assert_int_equal(b.ss.last_type, PPCP_MSG_COMMAND);
	assert_string_equal(b.ss.last_payload, "{\"args\":{},\"name\":\"status\"}");
	pair_free(&a);
	pair_free(&b);
}

/* ---- A. handshake input ----------------------------------------------- */

/* A server that closes before answering (busy, refusing) is told apart
 * from a cut in the middle of a SERVER_HELLO. */
static void test_client_tells_a_refusing_server_from_a_cut(void **state)
{
	pair p;
	uint8_t sh[200];
	(void)state;
	pair_init(&p, 0, 90);
	assert_int_equal(ppcp_conn_eof(p.c), PPCP_ERR_REFUSED);
	assert_non_null(strstr(ppcp_strerror(PPCP_ERR_REFUSED), "busy"));
	pair_free(&p);
	pair_init(&p, 0, 91);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	size_t n = take(p.s, sh, sizeof(sh));
	assert_int_equal(ppcp_conn_feed(p.c, sh, n - 10, p.now), 0);
	assert_int_equal(ppcp_conn_eof(p.c), PPCP_ERR_TRUNCATED);
	pair_free(&p);
}

/* T1 */
static void test_truncated_client_hello_then_eof_gets_no_server_hello(void **state)
{
	uint8_t ch[PPCP_LEN_PREFIX + PPCP_CLIENT_HELLO_LEN];
	(void)state;
	for (size_t cut = 0; cut < sizeof(ch); cut++) {
		pair p;
		pair_init(&p, 0, 1);
		assert_int_equal(take(p.c, ch, sizeof(ch)), sizeof(ch));
		assert_int_equal(ppcp_conn_feed(p.s, ch, cut, p.now), 0);
		assert_int_equal(ppcp_conn_eof(p.s), PPCP_ERR_TRUNCATED);
		assert_int_equal(pending(p.s), 0);
		pair_free(&p);
	}
}

static int feed_modified_ch(size_t off, uint8_t val, size_t *out_pending)
{
	pair p;
	uint8_t ch[PPCP_LEN_PREFIX + PPCP_CLIENT_HELLO_LEN];
	int ret;
	pair_init(&p, 0, 2);
	take(p.c, ch, sizeof(ch));
	ch[off] = val;
	ret = ppcp_conn_feed(p.s, ch, sizeof(ch), p.now);
	*out_pending = pending(p.s);
	pair_free(&p);
	return ret;
}

/* T2 */
static void test_client_hello_header_bytes_fail_closed(void **state)
{
	size_t pend;
	(void)state;
	/* Offsets are in the frame: 4 bytes of length come first. */
	assert_int_equal(feed_modified_ch(4, 'X', &pend), PPCP_ERR_BAD_MAGIC);
	assert_int_equal(pend, 0);
	assert_int_equal(feed_modified_ch(7, 'Q', &pend), PPCP_ERR_BAD_MAGIC);
	assert_int_equal(feed_modified_ch(8, 2, &pend), PPCP_ERR_BAD_VERSION);
	assert_int_equal(pend, 0);
	assert_int_equal(feed_modified_ch(9, 2, &pend), PPCP_ERR_BAD_HELLO);
	assert_int_equal(feed_modified_ch(10, 2, &pend), PPCP_ERR_BAD_SUITE);
	assert_int_equal(feed_modified_ch(11, 1, &pend), PPCP_ERR_BAD_HELLO);
	assert_int_equal(pend, 0);
	/* The seed's unversioned hello starts with pub_len 0x41. */
	assert_int_equal(feed_modified_ch(4, 0x41, &pend), PPCP_ERR_BAD_MAGIC);
}

/* T3 */
static void test_client_hello_pub_len_other_than_65_is_rejected(void **state)
{
	static const uint8_t lens[] = { 0, 1, 32, 33, 64, 66, 255 };
	size_t pend;
	(void)state;
	for (size_t i = 0; i < sizeof(lens); i++) {
		assert_int_equal(feed_modified_ch(12, lens[i], &pend), PPCP_ERR_BAD_HELLO);
		assert_int_equal(pend, 0);
	}
}

/* T4/T5 at the engine: a point off the curve, compressed, infinity. */
static void test_client_hello_with_invalid_point_gets_no_server_hello(void **state)
{
	size_t pend;
	(void)state;
	assert_int_equal(feed_modified_ch(13, 0x02, &pend), PPCP_ERR_BAD_POINT);
	assert_int_equal(pend, 0);
	assert_int_equal(feed_modified_ch(13, 0x06, &pend), PPCP_ERR_BAD_POINT);
	assert_int_equal(feed_modified_ch(13, 0x00, &pend), PPCP_ERR_BAD_POINT);
	assert_int_equal(feed_modified_ch(40, 0x5a, &pend), PPCP_ERR_BAD_POINT); /* off curve */
	assert_int_equal(pend, 0);
}

static void test_client_hello_of_wrong_length_is_rejected(void **state)
{
	pair p;
	uint8_t ch[PPCP_LEN_PREFIX + PPCP_CLIENT_HELLO_LEN + 1];
	(void)state;
	pair_init(&p, 0, 2);
	take(p.c, ch, sizeof(ch));
	ppcp__store_be32(ch, PPCP_CLIENT_HELLO_LEN + 1);
	ch[sizeof(ch) - 1] = 0;
	assert_int_equal(ppcp_conn_feed(p.s, ch, sizeof(ch), p.now), PPCP_ERR_BAD_HELLO);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);
	/* Too large before keys: refused on the length alone. */
	pair_init(&p, 0, 2);
	ppcp__store_be32(ch, PPCP_MAX_PREAUTH_FRAME + 1);
	assert_int_equal(ppcp_conn_feed(p.s, ch, 4, p.now), PPCP_ERR_FRAME_TOO_LARGE);
	pair_free(&p);
}

/* T7: every bit of SERVER_HELLO flipped in turn. */
static void test_server_hello_any_bit_flip_aborts_client_before_auth(void **state)
{
	uint8_t sh[PPCP_LEN_PREFIX + PPCP_SERVER_HELLO_LEN];
	pair base;
	(void)state;
	pair_init(&base, 0, 4);
	assert_int_equal(pump1(base.c, base.s, 0, base.now), 0);
	take(base.s, sh, sizeof(sh));
	for (size_t bit = PPCP_LEN_PREFIX * 8; bit < sizeof(sh) * 8; bit += STEP) {
		pair p;
		uint8_t m[sizeof(sh)];
		pair_init(&p, 0, 4);
		uint8_t ch[200];
		take(p.c, ch, sizeof(ch));
		memcpy(m, sh, sizeof(sh));
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = ppcp_conn_feed(p.c, m, sizeof(m), p.now);
		assert_true(ret < 0);
		assert_int_equal(pending(p.c), 0); /* no AUTH */
		assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_FAILED);
		pair_free(&p);
	}
	pair_free(&base);
}

/* Every bit of CLIENT_HELLO flipped in transit: the server refuses it, or
 * the client refuses the SERVER_HELLO bound to the altered transcript. */
static void test_client_hello_any_bit_flip_never_completes_a_handshake(void **state)
{
	uint8_t ch[PPCP_LEN_PREFIX + PPCP_CLIENT_HELLO_LEN];
	(void)state;
	for (size_t bit = 0; bit < sizeof(ch) * 8; bit += STEP) {
		pair p;
		pair_init(&p, 0, 33);
		take(p.c, ch, sizeof(ch));
		ch[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = ppcp_conn_feed(p.s, ch, sizeof(ch), p.now);
		if (ret == 0 && ppcp_conn_state(p.s) == PPCP_ST_SERVER_EXPECT_CLIENT_HELLO)
			ret = ppcp_conn_eof(p.s); /* a longer length waits for more */
		if (ret == 0) {
			/* Accepted as a different hello: the client must refuse. */
			assert_int_equal(pump1(p.s, p.c, 0, p.now), PPCP_ERR_SERVER_AUTH);
			assert_int_equal(pending(p.c), 0);
		} else {
			assert_int_equal(pending(p.s), 0);
		}
		assert_int_equal(p.cs.established + p.ss.established, 0);
		pair_free(&p);
	}
}

/* T8: a SERVER_HELLO recorded from one session, replayed to another. */
static void test_replayed_server_hello_is_rejected(void **state)
{
	pair a, b;
	uint8_t sh[512];
	size_t n;
	(void)state;
	pair_init(&a, 0, 5);
	assert_int_equal(pump1(a.c, a.s, 0, a.now), 0);
	n = take(a.s, sh, sizeof(sh));
	pair_init(&b, 0, 6);
	assert_int_equal(ppcp_conn_feed(b.c, sh, n, b.now), PPCP_ERR_SERVER_AUTH);
	assert_int_equal(pending(b.c), 106 + 4 /* only its own CH */);
	pair_free(&a);
	pair_free(&b);
}

/* T9 */
static void test_server_with_other_id_is_wrong_server(void **state)
{
	pair p;
	side cs = { 0 };
	(void)state;
	pair_init(&p, 0, 7);
	ppcp_conn_free(p.c);
	rng_from_counter(&cs, 7);
	p.cs = cs;
	make_conn(&p.c, &p.cs, PPCP_ROLE_CLIENT, PSK, "srv-other", PPCP_EXT_ALL, p.now);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(pump1(p.s, p.c, 0, p.now), PPCP_ERR_WRONG_SERVER);
	pair_free(&p);
}

/* T10: the server "answers" with the client's own key. */
static void test_reflected_client_key_is_rejected(void **state)
{
	pair p;
	uint8_t ch[200], sh[200];
	(void)state;
	pair_init(&p, 0, 8);
	size_t cn = take(p.c, ch, sizeof(ch));
	assert_int_equal(ppcp_conn_feed(p.s, ch, cn, p.now), 0);
	size_t sn = take(p.s, sh, sizeof(sh));
	assert_int_equal(sn, 174);
	memcpy(sh + 4 + 9, ch + 4 + 9, 65);
	assert_int_equal(ppcp_conn_feed(p.c, sh, sn, p.now), PPCP_ERR_REFLECTED);
	pair_free(&p);
}

/* T11: AUTH with any bit flipped. */
static void test_auth_any_bit_flip_gets_no_auth_ok(void **state)
{
	uint8_t auth[1024];
	size_t an;
	(void)state;
	for (size_t bit = 0;; bit += STEP) {
		pair p;
		pair_init(&p, 0, 9);
		assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
		assert_int_equal(pump1(p.s, p.c, 0, p.now), 0);
		an = take(p.c, auth, sizeof(auth));
		if (bit >= an * 8) {
			pair_free(&p);
			break;
		}
		auth[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = ppcp_conn_feed(p.s, auth, an, p.now);
		if (ret == 0)
			ret = ppcp_conn_eof(p.s); /* a longer length waits for more */
		assert_true(ret < 0);
		assert_int_not_equal(ppcp_conn_state(p.s), PPCP_ST_ESTABLISHED);
		assert_int_equal(p.ss.established, 0);
		pair_free(&p);
	}
}

/* T11: AUTH replayed from another session. */
static void test_auth_from_another_session_is_rejected(void **state)
{
	pair a, b;
	uint8_t auth[1024];
	size_t an;
	(void)state;
	pair_init(&a, 0, 10);
	assert_int_equal(pump1(a.c, a.s, 0, a.now), 0);
	assert_int_equal(pump1(a.s, a.c, 0, a.now), 0);
	an = take(a.c, auth, sizeof(auth));
	pair_init(&b, 0, 11);
	assert_int_equal(pump1(b.c, b.s, 0, b.now), 0);
	assert_int_equal(ppcp_conn_feed(b.s, auth, an, b.now), PPCP_ERR_CLIENT_AUTH);
	assert_int_equal(pending(b.s), 174); /* its SH only, no AUTH_OK */
	pair_free(&a);
	pair_free(&b);
}

/* T11: AUTH sent before SERVER_HELLO arrived: it is not a hello. */
static void test_auth_before_server_hello_is_rejected(void **state)
{
	pair a, b;
	uint8_t auth[1024];
	size_t an;
	(void)state;
	pair_init(&a, 0, 12);
	assert_int_equal(pump1(a.c, a.s, 0, a.now), 0);
	assert_int_equal(pump1(a.s, a.c, 0, a.now), 0);
	an = take(a.c, auth, sizeof(auth));
	pair_init(&b, 0, 13);
	assert_true(ppcp_conn_feed(b.s, auth, an, b.now) < 0);
	assert_int_equal(pending(b.s), 0);
	pair_free(&a);
	pair_free(&b);
}

/* T12 */
static void test_different_psks_fail_cleanly_on_both_sides(void **state)
{
	pair p;
	uint8_t other[32];
	(void)state;
	pair_init(&p, 0, 14);
	ppcp_conn_free(p.c);
	memcpy(other, PSK, 32);
	other[0] ^= 1;
	rng_from_counter(&p.cs, 14);
	make_conn(&p.c, &p.cs, PPCP_ROLE_CLIENT, other, "srv-test", PPCP_EXT_ALL, p.now);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(pump1(p.s, p.c, 0, p.now), PPCP_ERR_SERVER_AUTH);
	assert_int_equal(pending(p.c), 0);
	assert_non_null(strstr(ppcp_strerror(PPCP_ERR_SERVER_AUTH), "PSK"));
	/* The client hangs up; the server names the likely cause. */
	assert_int_equal(ppcp_conn_eof(p.s), PPCP_ERR_PEER_ABORTED);
	assert_non_null(strstr(ppcp_strerror(PPCP_ERR_PEER_ABORTED), "PSK"));
	pair_free(&p);
}

/* Seal an arbitrary plaintext under a direction of our own making. */
static size_t seal_with(const uint8_t secret[32], uint64_t seq, const char *pt, uint8_t *out,
			size_t cap)
{
	ppcp__dir d;
	ppcp__buf b = { 0 };
	size_t n;
	memset(&d, 0, sizeof(d));
	assert_int_equal(ppcp__dir_set(&d, secret), 0);
	d.seq = seq;
	assert_int_equal(ppcp__record_seal(&d, &b, (const uint8_t *)pt, strlen(pt), NULL, 0), 0);
	n = b.len;
	assert_true(n <= cap);
	memcpy(out, b.p, n);
	ppcp__buf_free(&b);
	ppcp__dir_clear(&d);
	return n;
}

/* T13: no PSK, encrypted COMMAND frames instead of AUTH. */
static void test_rogue_client_frames_instead_of_auth_open_nothing(void **state)
{
	pair p;
	uint8_t rec[512], key[32];
	size_t n;
	(void)state;
	pair_init(&p, 0, 15);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	memset(key, 0x33, sizeof(key));
	n = seal_with(key, 0,
		      "{\"i\":\"1\",\"p\":{\"name\":\"exec\",\"args\":{}},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		      rec, sizeof(rec));
	assert_int_equal(ppcp_conn_feed(p.s, rec, n, p.now), PPCP_ERR_CLIENT_AUTH);
	assert_int_equal(p.ss.messages, 0);
	assert_int_equal(p.ss.established, 0);
	pair_free(&p);
}

/* T14: AUTH_OK with a bit flipped, and an unauthenticated AUTH_FAIL. */
static void test_client_rejects_tampered_auth_ok_and_forged_auth_fail(void **state)
{
	uint8_t ok[1024];
	size_t n;
	(void)state;
	for (size_t bit = 0; bit < 1024 * 8; bit += STEP) {
		pair p;
		pair_init(&p, 0, 16);
		assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
		assert_int_equal(pump1(p.s, p.c, 0, p.now), 0);
		assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
		n = take(p.s, ok, sizeof(ok));
		if (bit / 8 >= n) {
			pair_free(&p);
			break;
		}
		ok[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = ppcp_conn_feed(p.c, ok, n, p.now);
		if (ret == 0)
			ret = ppcp_conn_eof(p.c);
		assert_true(ret < 0);
		assert_int_equal(p.cs.established, 0);
		assert_int_equal(p.cs.messages, 0);
		pair_free(&p);
	}
	/* A plaintext AUTH_FAIL frame is no record at all. */
	pair p;
	pair_init(&p, 0, 17);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(pump1(p.s, p.c, 0, p.now), 0);
	const char *fail = "{\"i\":\"1\",\"p\":{\"reason\":\"x\"},\"s\":0,\"t\":\"AUTH_FAIL\",\"v\":1}";
	uint8_t f[256];
	ppcp__store_be32(f, (uint32_t)strlen(fail));
	memcpy(f + 4, fail, strlen(fail));
	assert_true(ppcp_conn_feed(p.c, f, 4 + strlen(fail), p.now) < 0);
	assert_int_equal(p.cs.established, 0);
	pair_free(&p);
}

/* A genuine AUTH_FAIL from a server that refused the proof. */
static void test_server_answers_invalid_auth_with_auth_fail(void **state)
{
	pair p;
	uint8_t c_hs[32], rec[512];
	ppcp__keys k;
	size_t n;
	(void)state;
	(void)k;
	pair_init(&p, 1, 0);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(pump1(p.s, p.c, 0, p.now), 0);
	take(p.c, rec, sizeof(rec)); /* drop the real AUTH */
	tu_hex(tu_vec(V, "schedule.c_hs"), c_hs, sizeof(c_hs));
	n = seal_with(c_hs, 0,
		      "{\"i\":\"00000001\",\"p\":{\"ext\":[],\"max_record\":4096,\"proof\":"
		      "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"},\"s\":0,\"t\":\"AUTH\",\"v\":1}",
		      rec, sizeof(rec));
	assert_int_equal(ppcp_conn_feed(p.s, rec, n, p.now), PPCP_ERR_CLIENT_AUTH);
	assert_true(pending(p.s) > 0); /* the AUTH_FAIL */
	assert_int_equal(pump1(p.s, p.c, 0, p.now), PPCP_ERR_AUTH_REJECTED);
	assert_int_equal(p.cs.established, 0);
	pair_free(&p);
}

/* T16: handshake deadline. */
static void test_handshake_deadline_fails_a_slow_peer(void **state)
{
	pair p;
	uint8_t ch[200];
	(void)state;
	pair_init(&p, 0, 18);
	size_t n = take(p.c, ch, sizeof(ch));
	for (size_t i = 0; i < 5; i++) {
		p.now += 1000;
		assert_int_equal(ppcp_conn_feed(p.s, ch + i, 1, p.now), 0);
		assert_int_equal(ppcp_conn_on_timeout(p.s, p.now), 0);
	}
	assert_int_equal(ppcp_conn_next_deadline(p.s), 1000 + PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS);
	assert_int_equal(ppcp_conn_on_timeout(p.s, 1000 + PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS),
			 PPCP_ERR_HANDSHAKE_TIMEOUT);
	assert_int_equal(ppcp_conn_next_deadline(p.s), UINT64_MAX);
	(void)n;
	pair_free(&p);
}

/* T17: garbage pipelined after CLIENT_HELLO is read as a bad AUTH. */
static void test_garbage_after_client_hello_is_a_bad_auth(void **state)
{
	pair p;
	uint8_t buf[400];
	(void)state;
	pair_init(&p, 0, 19);
	size_t n = take(p.c, buf, sizeof(buf));
	ppcp__store_be32(buf + n, 40);
	memset(buf + n + 4, 0xee, 40);
	assert_int_equal(ppcp_conn_feed(p.s, buf, n + 44, p.now), PPCP_ERR_CLIENT_AUTH);
	assert_int_equal(pending(p.s), 174); /* SH went out, nothing after */
	assert_int_equal(p.ss.established, 0);
	pair_free(&p);
}

/* ---- B. record layer -------------------------------------------------- */

static void established(pair *p, unsigned seed)
{
	pair_init(p, 0, seed);
	pair_handshake(p, 0);
}

static size_t command_record(pair *p, uint8_t *buf, size_t cap)
{
	assert_int_equal(ppcp_conn_send_json(p->c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"status\",\"args\":{}}", NULL),
			 0);
	return take(p->c, buf, cap);
}

/* T18 */
static void test_record_lengths_out_of_bounds_fail_before_allocation(void **state)
{
	static const uint32_t bad[] = { 0xffffffffu, 12 + (1u << 20) + 17, 0, 1, 12, 28 };
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair p;
		uint8_t h[4];
		established(&p, 20);
		ppcp__store_be32(h, bad[i]);
		int ret = ppcp_conn_feed(p.s, h, 4, p.now);
		assert_true(ret == PPCP_ERR_FRAME_TOO_LARGE || ret == PPCP_ERR_FRAME_TOO_SHORT);
		pair_free(&p);
	}
}

/* T19: flip one bit in the length, the nonce, the ciphertext or the tag. */
static void test_record_any_bit_flip_is_fatal_and_delivers_nothing(void **state)
{
	uint8_t rec[512];
	size_t n;
	(void)state;
	for (size_t bit = 0;; bit += 3 * STEP) {
		pair p;
		established(&p, 21);
		n = command_record(&p, rec, sizeof(rec));
		if (bit >= n * 8) {
			pair_free(&p);
			break;
		}
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int ret = ppcp_conn_feed(p.s, rec, n, p.now);
		if (ret == 0)
			ret = ppcp_conn_eof(p.s);
		assert_true(ret < 0);
		assert_int_equal(p.ss.messages, 0);
		pair_free(&p);
	}
}

/* T20 */
static void test_replayed_record_is_a_sequence_error_and_runs_once(void **state)
{
	pair p;
	uint8_t rec[512];
	(void)state;
	established(&p, 22);
	size_t n = command_record(&p, rec, sizeof(rec));
	assert_int_equal(ppcp_conn_feed(p.s, rec, n, p.now), 0);
	assert_int_equal(p.ss.messages, 1);
	assert_int_equal(ppcp_conn_feed(p.s, rec, n, p.now), PPCP_ERR_SEQUENCE);
	assert_int_equal(p.ss.messages, 1);
	pair_free(&p);
}

/* T21, T22 */
static void test_reordered_or_dropped_record_is_fatal(void **state)
{
	pair p;
	uint8_t r0[512], r1[512];
	(void)state;
	established(&p, 23);
	size_t n0 = command_record(&p, r0, sizeof(r0));
	size_t n1 = command_record(&p, r1, sizeof(r1));
	assert_int_equal(ppcp_conn_feed(p.s, r1, n1, p.now), PPCP_ERR_SEQUENCE);
	assert_int_equal(p.ss.messages, 0);
	(void)n0;
	pair_free(&p);
}

/* T23 */
static void test_reflected_record_is_fatal(void **state)
{
	pair p;
	uint8_t rec[512];
	(void)state;
	established(&p, 24);
	size_t n = command_record(&p, rec, sizeof(rec));
	assert_true(ppcp_conn_feed(p.c, rec, n, p.now) < 0);
	assert_int_equal(p.cs.messages, 0);
	pair_free(&p);
}

/* T24 */
static void test_eof_mid_record_or_without_bye_is_truncation(void **state)
{
	pair p;
	uint8_t rec[512];
	(void)state;
	established(&p, 25);
	size_t n = command_record(&p, rec, sizeof(rec));
	assert_int_equal(ppcp_conn_feed(p.s, rec, n - 5, p.now), 0);
	assert_int_equal(ppcp_conn_eof(p.s), PPCP_ERR_TRUNCATED);
	assert_int_equal(p.ss.messages, 0);
	pair_free(&p);

	established(&p, 26);
	assert_int_equal(ppcp_conn_eof(p.c), PPCP_ERR_TRUNCATED);
	pair_free(&p);

	/* After BYE the end is clean on both sides. */
	established(&p, 27);
	assert_int_equal(ppcp_conn_close(p.c, "done"), 0);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(p.ss.last_type, PPCP_MSG_BYE);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_CLOSED);
	assert_int_equal(ppcp_conn_eof(p.s), 0);
	assert_int_equal(ppcp_conn_eof(p.c), 0);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"x\",\"args\":{}}", NULL),
			 PPCP_ERR_STATE);
	pair_free(&p);
}

/* T25: near the end of the sequence space the sender rekeys, never wraps. */
static void test_sequence_near_wrap_rekeys_instead_of_wrapping(void **state)
{
	pair p;
	(void)state;
	established(&p, 28);
	uint8_t iv[12], want[12], s8[8];
	const uint8_t *out;
	memcpy(iv, ppcp__conn_dir(p.c, 1)->iv, 12);
	ppcp__conn_test_set_seq(p.c, 1, UINT64_MAX - 1);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"x\",\"args\":{}}", NULL),
			 0);
	/* KEY_UPDATE took the last sequence number the old key may use; the
	 * COMMAND went out as seq 0 under the new key. */
	ppcp__store_be64(s8, UINT64_MAX - 1);
	memcpy(want, iv, 12);
	for (int k = 0; k < 8; k++)
		want[4 + k] ^= s8[k];
	size_t n = ppcp_conn_out(p.c, &out);
	assert_true(n > 8);
	assert_memory_equal(out + 4, want, 12);
	assert_int_equal(ppcp__conn_dir(p.c, 1)->seq, 1);
	assert_memory_not_equal(ppcp__conn_dir(p.c, 1)->iv, iv, 12);
	pair_free(&p);

	/* Without the extension the sender closes instead. */
	pair_init(&p, 0, 29);
	ppcp_conn_free(p.c);
	rng_from_counter(&p.cs, 29);
	make_conn(&p.c, &p.cs, PPCP_ROLE_CLIENT, PSK, "srv-test", PPCP_EXT_BINARY_DATA, p.now);
	pair_handshake(&p, 0);
	assert_int_equal(ppcp_conn_extensions(p.c), PPCP_EXT_BINARY_DATA);
	ppcp__conn_test_set_seq(p.c, 1, UINT64_MAX - 1);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"x\",\"args\":{}}", NULL),
			 PPCP_ERR_KEY_EXHAUSTED);
	pair_free(&p);
}

static void make_conn_rekey(ppcp_conn **out, side *sd, enum ppcp_role role, uint64_t recs,
			    uint64_t now)
{
	ppcp_config cfg;
	ppcp_config_init(&cfg, role);
	cfg.psk = PSK;
	cfg.psk_len = 32;
	cfg.server_id = "srv-test";
	cfg.rng = side_rng;
	cfg.unix_time = fixed_time;
	cfg.rekey_records = recs;
	cfg.cb.on_established = on_established;
	cfg.cb.on_message = on_message;
	cfg.user = sd;
	assert_int_equal(ppcp_conn_new(out, &cfg, now), 0);
}

/* T26: KEY_UPDATE after 16 records; traffic goes on; old records fail. */
static void test_key_update_after_16_records_continues_and_old_records_fail(void **state)
{
	pair p;
	uint8_t old[512];
	size_t on = 0;
	(void)state;
	memset(&p, 0, sizeof(p));
	p.now = 1000;
	rng_from_counter(&p.cs, 30);
	rng_from_counter(&p.ss, 130);
	make_conn_rekey(&p.s, &p.ss, PPCP_ROLE_SERVER, 16, p.now);
	make_conn_rekey(&p.c, &p.cs, PPCP_ROLE_CLIENT, 16, p.now);
	pair_handshake(&p, 0);
	for (int i = 0; i < 40; i++) {
		size_t n = command_record(&p, old, sizeof(old));
		if (i == 3)
			on = n;
		uint8_t keep[512];
		memcpy(keep, old, n);
		assert_int_equal(ppcp_conn_feed(p.s, keep, n, p.now), 0);
		if (i == 3)
			memcpy(old, keep, n);
	}
	assert_int_equal(p.ss.messages, 40);
	assert_true(ppcp__conn_dir(p.c, 1)->seq < 16);
	/* Replaying a record from before the updates fails. */
	uint8_t again[512];
	pair q;
	(void)q;
	memcpy(again, old, on);
	assert_true(ppcp_conn_feed(p.s, again, on, p.now) < 0);
	pair_free(&p);
}

/* T27: a peer that does not rekey is failed past twice the limit. */
static void test_peer_past_twice_the_limit_is_failed(void **state)
{
	pair p;
	uint8_t rec[512];
	int ret = 0, sent = 0;
	(void)state;
	memset(&p, 0, sizeof(p));
	p.now = 1000;
	rng_from_counter(&p.cs, 31);
	rng_from_counter(&p.ss, 131);
	make_conn_rekey(&p.s, &p.ss, PPCP_ROLE_SERVER, 8, p.now);
	make_conn_rekey(&p.c, &p.cs, PPCP_ROLE_CLIENT, 1000, p.now);
	pair_handshake(&p, 0);
	while (ret == 0 && sent < 40) {
		size_t n = command_record(&p, rec, sizeof(rec));
		ret = ppcp_conn_feed(p.s, rec, n, p.now);
		sent++;
	}
	assert_int_equal(ret, PPCP_ERR_KEY_EXHAUSTED);
	assert_int_equal(sent, 17);
	pair_free(&p);
}

/* T28: 10^5 records each way; nonce == iv XOR seq, all distinct. */
static void test_100k_records_use_counter_nonces(void **state)
{
	pair p;
	(void)state;
	established(&p, 32);
	for (int dir = 0; dir < 2; dir++) {
		ppcp_conn *a = dir ? p.s : p.c;
		ppcp_conn *b = dir ? p.c : p.s;
		const ppcp__dir *d = ppcp__conn_dir(a, 1);
		uint8_t iv[12];
		memcpy(iv, d->iv, 12);
		for (uint64_t seq = 0; seq < RECORDS; seq++) {
			const uint8_t *out;
			assert_int_equal(ppcp_conn_send_json(a, PPCP_MSG_HEARTBEAT_ACK, "x",
							     "{\"ts\":1}", NULL),
					 0);
			size_t n = ppcp_conn_out(a, &out);
			uint8_t want[12], s8[8];
			ppcp__store_be64(s8, seq);
			memcpy(want, iv, 12);
			for (int k = 0; k < 8; k++)
				want[4 + k] ^= s8[k];
			if (memcmp(out + 4, want, 12) != 0)
				fail_msg("record %llu: nonce is not iv XOR seq",
					 (unsigned long long)seq);
			assert_int_equal(ppcp_conn_feed(b, out, n, p.now), 0);
			ppcp_conn_out_ack(a, n);
		}
	}
	pair_free(&p);
}

/* ---- C. messages in the session, T31, T32, T38 ------------------------ */

/* Inject a plaintext as the client's next record to the server. */
static int inject(pair *p, const char *pt)
{
	ppcp__dir *d = (ppcp__dir *)ppcp__conn_dir(p->c, 1);
	ppcp__buf b = { 0 };
	int ret;
	assert_int_equal(ppcp__record_seal(d, &b, (const uint8_t *)pt, strlen(pt), NULL, 0), 0);
	ret = ppcp_conn_feed(p->s, b.p, b.len, p->now);
	ppcp__buf_free(&b);
	return ret;
}

static void expect_error_reply(pair *p, const char *code)
{
	assert_int_equal(pump1(p->s, p->c, 0, p->now), 0);
	assert_int_equal(p->cs.last_type, PPCP_MSG_ERROR);
	assert_non_null(strstr(p->cs.last_payload, code));
}

static void test_malformed_json_gets_invalid_message_and_session_goes_on(void **state)
{
	static const char *bad[] = {
		"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\"",              /* truncated */
		"{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMM\xff\",\"v\":1}",    /* bad UTF-8 */
		"{\"i\":\"1\",\"p\":\"\\u0000\",\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"1\",\"i\":\"2\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{},\"s\":1e400,\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{},\"s\":\"0\",\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"name\":5,\"args\":{}},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{},\"s\":99999999999999999999,\"t\":\"COMMAND\",\"v\":1}",
	};
	pair p;
	(void)state;
	established(&p, 40);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(inject(&p, bad[i]), 0);
		expect_error_reply(&p, "invalid-message");
	}
	/* 10^5 nested arrays. */
	char *deep = malloc(200100);
	strcpy(deep, "{\"i\":\"1\",\"p\":");
	size_t k = strlen(deep);
	for (int i = 0; i < 100000; i++)
		deep[k++] = '[';
	deep[k] = '\0';
	assert_int_equal(inject(&p, deep), 0);
	expect_error_reply(&p, "invalid-message");
	free(deep);
	/* v != 1 */
	assert_int_equal(inject(&p, "{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"COMMAND\",\"v\":2}"), 0);
	expect_error_reply(&p, "unsupported-version");
	assert_int_equal(p.ss.messages, 0);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_ESTABLISHED);
	pair_free(&p);
}

/* T32 */
static void test_unknown_type_gets_unknown_type_and_session_goes_on(void **state)
{
	pair p;
	(void)state;
	established(&p, 41);
	assert_int_equal(inject(&p, "{\"i\":\"77\",\"p\":{},\"s\":0,\"t\":\"TELEPORT\",\"v\":1}"), 0);
	expect_error_reply(&p, "unknown-type");
	assert_string_equal(p.cs.last_id, "77");
	assert_int_equal(inject(&p, "{\"i\":\"78\",\"p\":{\"name\":\"a\",\"args\":{}},\"s\":0,"
				    "\"t\":\"COMMAND\",\"v\":1}"),
			 0);
	assert_int_equal(p.ss.last_type, PPCP_MSG_COMMAND);
	pair_free(&p);
}

/* T38: every type in the established state; only §12's transitions pass. */
static void test_every_type_in_established_state(void **state)
{
	static const struct {
		const char *t;
		const char *p;
		int fatal;
	} cases[] = {
		{ "PING", "{}", 1 },
		{ "PONG", "{}", 1 },
		{ "CLIENT_HELLO", "{}", 1 },
		{ "SERVER_HELLO", "{}", 1 },
		{ "AUTH", "{\"proof\":\"\",\"ext\":[],\"max_record\":4096}", 1 },
		{ "AUTH_OK", "{}", 1 },
		{ "AUTH_FAIL", "{}", 1 },
		{ "HEARTBEAT", "{\"ts\":5}", 0 },
		{ "HEARTBEAT_ACK", "{\"ts\":5}", 0 },
		{ "COMMAND", "{\"name\":\"a\",\"args\":{}}", 0 },
		{ "RESPONSE", "{}", 0 },
		{ "FILE_REQUEST", "{}", 0 },
		{ "FILE_CHUNK", "{}", 0 },
		{ "ERROR", "{\"code\":\"x\",\"message\":\"y\"}", 0 },
		{ "KEY_UPDATE", "{}", 0 },
		{ "BYE", "null", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pair p;
		char pt[512];
		established(&p, 50 + (unsigned)i);
		snprintf(pt, sizeof(pt), "{\"i\":\"9\",\"p\":%s,\"s\":0,\"t\":\"%s\",\"v\":1}",
			 cases[i].p, cases[i].t);
		int ret = inject(&p, pt);
		if (cases[i].fatal) {
			assert_int_equal(ret, PPCP_ERR_UNEXPECTED);
			assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_FAILED);
			assert_int_equal(p.ss.messages, 0);
		} else {
			assert_int_equal(ret, 0);
		}
		pair_free(&p);
	}
}

/* KEY_UPDATE and BYE change the session's state: a malformed one is fatal,
 * never answered with an ERROR and skipped. */
static void test_malformed_key_update_or_bye_is_fatal(void **state)
{
	static const struct {
		const char *pt;
		int err;
		const char *detail;
	} bad[] = {
		{ "{\"i\":\"9\",\"p\":null,\"s\":0,\"t\":\"KEY_UPDATE\",\"v\":1}", PPCP_ERR_BAD_MESSAGE,
		  "a KEY_UPDATE whose payload has the wrong shape" },
		{ "{\"i\":\"9\",\"p\":[],\"s\":0,\"t\":\"KEY_UPDATE\",\"v\":1}", PPCP_ERR_BAD_MESSAGE,
		  "a KEY_UPDATE whose payload has the wrong shape" },
		{ "{\"i\":\"9\",\"p\":5,\"s\":0,\"t\":\"BYE\",\"v\":1}", PPCP_ERR_BAD_MESSAGE,
		  "a BYE whose payload has the wrong shape" },
		{ "{\"i\":\"9\",\"p\":{\"reason\":7},\"s\":0,\"t\":\"BYE\",\"v\":1}", PPCP_ERR_BAD_MESSAGE,
		  "a BYE whose payload has the wrong shape" },
		/* And what ppcp_conn_error_detail says of the other fatal
		 * contents of an established session. */
		{ "\x02{}", PPCP_ERR_BAD_MESSAGE,
		  "a record whose plaintext starts with 0x02 (neither JSON nor binary data)" },
		{ "{\"i\":\"9\",\"p\":{},\"s\":0,\"t\":\"PING\",\"v\":1}", PPCP_ERR_UNEXPECTED,
		  "a PING message after the handshake" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair p;
		established(&p, 80 + (unsigned)i);
		assert_string_equal(ppcp_conn_error_detail(p.s), "");
		assert_int_equal(inject(&p, bad[i].pt), bad[i].err);
		assert_int_equal(pending(p.s), 0);
		assert_int_equal(p.ss.messages, 0);
		assert_int_equal(ppcp_conn_error(p.s), bad[i].err);
		assert_string_equal(ppcp_conn_error_detail(p.s), bad[i].detail);
		pair_free(&p);
	}
}

/* T38: in the AUTH phase, anything but AUTH / AUTH_OK is refused. */
static void test_every_type_in_auth_phase_is_refused(void **state)
{
	static const char *types[] = { "PING",  "COMMAND", "HEARTBEAT", "BYE",
				       "ERROR", "AUTH_OK", "KEY_UPDATE", "FILE_REQUEST" };
	uint8_t c_hs[32], s_hs[32], rec[512];
	(void)state;
	tu_hex(tu_vec(V, "schedule.c_hs"), c_hs, sizeof(c_hs));
	tu_hex(tu_vec(V, "schedule.s_hs"), s_hs, sizeof(s_hs));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		pair p;
		char pt[256];
		snprintf(pt, sizeof(pt), "{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"%s\",\"v\":1}", types[i]);
		/* server expecting AUTH */
		pair_init(&p, 1, 0);
		assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
		size_t n = seal_with(c_hs, 0, pt, rec, sizeof(rec));
		assert_true(ppcp_conn_feed(p.s, rec, n, p.now) < 0);
		assert_int_equal(p.ss.established + p.ss.messages, 0);
		pair_free(&p);
		/* client expecting AUTH_OK */
		pair_init(&p, 1, 0);
		assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
		assert_int_equal(pump1(p.s, p.c, 0, p.now), 0);
		n = seal_with(s_hs, 0, pt, rec, sizeof(rec));
		assert_true(ppcp_conn_feed(p.c, rec, n, p.now) < 0);
		assert_int_equal(p.cs.established + p.cs.messages, 0);
		pair_free(&p);
	}
}

static void test_api_refuses_sends_before_established(void **state)
{
	pair p;
	(void)state;
	pair_init(&p, 0, 60);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL,
					     "{\"name\":\"a\",\"args\":{}}", NULL),
			 PPCP_ERR_STATE);
	assert_int_equal(ppcp_conn_close(p.c, NULL), PPCP_ERR_STATE);
	assert_int_equal(ppcp_conn_send_binary(p.c, (const uint8_t *)"x", 1), PPCP_ERR_STATE);
	pair_handshake(&p, 0);
	/* Malformed payloads and handshake types are not sent. */
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL, "{\"args\":{}}", NULL),
			 PPCP_ERR_INVAL);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_AUTH, NULL, "{}", NULL), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, "bad id",
					     "{\"name\":\"a\",\"args\":{}}", NULL),
			 PPCP_ERR_INVAL);
	assert_int_equal(pending(p.c), 0);
	pair_free(&p);
}

static void test_heartbeats_are_sent_answered_and_silence_fails(void **state)
{
	pair p;
	(void)state;
	established(&p, 61);
	uint64_t dl = ppcp_conn_next_deadline(p.c);
	assert_int_equal(dl, p.now + PPCP_DEFAULT_HEARTBEAT_MS);
	assert_int_equal(ppcp_conn_on_timeout(p.c, dl), 0);
	assert_true(pending(p.c) > 0);
	assert_int_equal(pump1(p.c, p.s, 0, dl), 0);
	assert_int_equal(p.ss.last_type, PPCP_MSG_HEARTBEAT);
	assert_int_equal(pump1(p.s, p.c, 0, dl), 0);
	assert_int_equal(p.cs.last_type, PPCP_MSG_HEARTBEAT_ACK);
	assert_string_equal(p.cs.last_payload, "{\"ts\":16000}");
	/* A large record grows the receive buffer; a quiet heartbeat interval
	 * gives it back. */
	{
		char *big = malloc(300000);
		memset(big, 'a', 299990);
		memcpy(big, "{\"x\":\"", 6);
		strcpy(big + 299990, "\"}");
		assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_RESPONSE, "1", big, NULL), 0);
		free(big);
		assert_int_equal(pump1(p.c, p.s, 0, dl), 0);
		assert_true(ppcp__conn_buffered(p.s) > 300000);
		assert_int_equal(ppcp_conn_on_timeout(p.s, dl + PPCP_DEFAULT_HEARTBEAT_MS), 0);
		assert_true(ppcp__conn_buffered(p.s) < 64 * 1024);
		assert_int_equal(pump1(p.s, p.c, 0, dl + PPCP_DEFAULT_HEARTBEAT_MS), 0);
		assert_int_equal(pump1(p.c, p.s, 0, dl + PPCP_DEFAULT_HEARTBEAT_MS), 0);
		dl += PPCP_DEFAULT_HEARTBEAT_MS;
	}
	/* The server then hears nothing for the idle timeout. */
	uint64_t end = dl + PPCP_DEFAULT_IDLE_TIMEOUT_MS;
	assert_int_equal(ppcp_conn_on_timeout(p.s, end - 1), 0);
	assert_int_equal(ppcp_conn_on_timeout(p.s, end), PPCP_ERR_TIMEOUT);
	assert_int_equal(ppcp_conn_feed(p.s, (const uint8_t *)"x", 1, end), PPCP_ERR_TIMEOUT);
	pair_free(&p);
}

static void test_binary_records_only_after_negotiation(void **state)
{
	pair p;
	(void)state;
	established(&p, 62);
	assert_int_equal(ppcp_conn_send_binary(p.c, (const uint8_t *)"\x00\xff\x7b", 3), 0);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(p.ss.binaries, 1);
	assert_int_equal(p.ss.last_bin_len, 3);
	assert_memory_equal(p.ss.last_bin, "\x00\xff\x7b", 3);
	pair_free(&p);

	pair_init(&p, 0, 63);
	ppcp_conn_free(p.c);
	rng_from_counter(&p.cs, 63);
	make_conn(&p.c, &p.cs, PPCP_ROLE_CLIENT, PSK, "srv-test", PPCP_EXT_KEY_UPDATE, p.now);
	pair_handshake(&p, 0);
	assert_int_equal(ppcp_conn_send_binary(p.c, (const uint8_t *)"a", 1), PPCP_ERR_STATE);
	/* A binary record forced onto the wire is fatal. */
	assert_int_equal(inject(&p, "\x01" "abc"), PPCP_ERR_BAD_MESSAGE);
	pair_free(&p);
}

static void test_file_data_records_round_trip(void **state)
{
	pair p;
	uint32_t stream;
	uint64_t off;
	int last;
	const uint8_t *d;
	size_t dn;
	(void)state;
	established(&p, 64);
	assert_int_equal(ppcp_conn_send_file_data(p.c, 7, (UINT64_C(1) << 40) + 3, 1,
						  (const uint8_t *)"xyz", 3),
			 0);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(p.ss.binaries, 1);
	assert_int_equal(ppcp_file_data_parse(p.ss.last_bin, p.ss.last_bin_len, &stream, &off,
					      &last, &d, &dn),
			 0);
	assert_int_equal(stream, 7);
	assert_true(off == (UINT64_C(1) << 40) + 3);
	assert_int_equal(last, 1);
	assert_int_equal(dn, 3);
	assert_memory_equal(d, "xyz", 3);
	/* The RFC form through the direct encoder arrives as a FILE_CHUNK. */
	assert_int_equal(ppcp_conn_send_file_chunk(p.c, "00000009", 12, 1, (const uint8_t *)"hello", 5),
			 0);
	assert_int_equal(pump1(p.c, p.s, 0, p.now), 0);
	assert_int_equal(p.ss.last_type, PPCP_MSG_FILE_CHUNK);
	assert_string_equal(p.ss.last_id, "00000009");
	assert_string_equal(p.ss.last_payload, "{\"data\":\"aGVsbG8=\",\"last\":true,\"offset\":12}");
	/* A callback that finds the data broken fails the connection. */
	assert_int_equal(ppcp_conn_abort(p.s, PPCP_ERR_BAD_MESSAGE), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_FAILED);
	assert_int_equal(ppcp_conn_abort(p.s, PPCP_ERR_TIMEOUT), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp_conn_feed(p.s, (const uint8_t *)"x", 1, p.now), PPCP_ERR_BAD_MESSAGE);
	/* Too short, unknown flag. */
	assert_int_equal(ppcp_file_data_parse(p.ss.last_bin, 12, &stream, &off, &last, &d, &dn),
			 PPCP_ERR_BAD_MESSAGE);
	p.ss.last_bin[12] |= 0x80;
	assert_int_equal(ppcp_file_data_parse(p.ss.last_bin, p.ss.last_bin_len, &stream, &off,
					      &last, &d, &dn),
			 PPCP_ERR_BAD_MESSAGE);
	/* Larger than the peer accepts. */
	uint8_t *big = calloc(1, PPCP_DEFAULT_MAX_RECORD);
	assert_int_equal(ppcp_conn_send_file_data(p.c, 1, 0, 0, big, PPCP_DEFAULT_MAX_RECORD - 14),
			 0);
	assert_int_equal(ppcp_conn_send_file_data(p.c, 1, 0, 0, big, PPCP_DEFAULT_MAX_RECORD - 13),
			 PPCP_ERR_TOO_BIG);
	free(big);
	pair_free(&p);
}

static void test_tcp_ping_before_hello_gets_one_pong(void **state)
{
	ppcp_config cfg;
	ppcp_conn *s;
	side ss = { 0 };
	ppcp_pong_info info = { "srv-test", "host-a", 9000, PPCP_EXT_ALL };
	ppcp_ping ping = { 0 };
	uint8_t f[PPCP_PING_MAX + 4];
	size_t n;
	ppcp_pong pong;
	const uint8_t *out;
	(void)state;
	ppcp_config_init(&cfg, PPCP_ROLE_SERVER);
	cfg.psk = PSK;
	cfg.psk_len = 32;
	cfg.server_id = "srv-test";
	cfg.pong = &info;
	cfg.rng = side_rng;
	cfg.user = &ss;
	assert_int_equal(ppcp_conn_new(&s, &cfg, 0), 0);
	strcpy(ping.id, "abc");
	strcpy(ping.client_id, "cli-test");
	strcpy(ping.hostname, "laptop");
	strcpy(ping.version, "0.1.0");
	assert_int_equal(ppcp_ping_encode(&ping, f + 4, sizeof(f) - 4, &n), 0);
	ppcp__store_be32(f, (uint32_t)n);
	assert_int_equal(ppcp_conn_feed(s, f, n + 4, 0), 0);
	size_t on = ppcp_conn_out(s, &out);
	assert_true(on > 4 && on - 4 <= n);
	assert_int_equal(ppcp_pong_decode(out + 4, on - 4, &pong), 0);
	assert_string_equal(pong.server_id, "srv-test");
	assert_string_equal(pong.id, "abc");
	assert_int_equal(pong.port, 9000);
	ppcp_conn_out_ack(s, on);
	/* A second PING on the same connection is refused. */
	assert_int_equal(ppcp_conn_feed(s, f, n + 4, 0), PPCP_ERR_UNEXPECTED);
	ppcp_conn_free(s);

	/* A PING for another server ends the connection at once, silently. */
	assert_int_equal(ppcp_conn_new(&s, &cfg, 0), 0);
	strcpy(ping.target, "srv-other");
	assert_int_equal(ppcp_ping_encode(&ping, f + 4, sizeof(f) - 4, &n), 0);
	ppcp__store_be32(f, (uint32_t)n);
	assert_int_equal(ppcp_conn_feed(s, f, n + 4, 0), PPCP_ERR_UNEXPECTED);
	assert_int_equal(ppcp_conn_out(s, &out), 0);
	ppcp_conn_free(s);
}

/* T45 (engine part): the RNG failing at each draw. */
static void test_rng_failure_is_reported_not_used(void **state)
{
	ppcp_config cfg;
	ppcp_conn *c = NULL;
	side sd = { 0 };
	(void)state;
	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = PSK;
	cfg.psk_len = 32;
	cfg.rng = side_rng;
	cfg.user = &sd;
	sd.rng_fail = 1;
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_RNG);
	assert_null(c);
	/* Enough for the scalar, not for the nonce. */
	sd.rng_fail = 0;
	sd.rng_len = tu_hex(tu_vec(V, "inputs.rng_client"), sd.rng, sizeof(sd.rng)) - 1;
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_RNG);
	/* Server: RNG dies when the CLIENT_HELLO comes. */
	pair p;
	pair_init(&p, 0, 70);
	p.ss.rng_fail = 1;
	assert_int_equal(pump1(p.c, p.s, 0, p.now), PPCP_ERR_RNG);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);
}

static void test_config_is_validated(void **state)
{
	ppcp_config cfg;
	ppcp_conn *c;
	(void)state;
	ppcp_config_init(&cfg, PPCP_ROLE_SERVER);
	cfg.psk = PSK;
	cfg.psk_len = 32;
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_INVAL); /* no server_id */
	cfg.server_id = "bad id";
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_INVAL);
	cfg.server_id = "ok";
	cfg.psk_len = 15;
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_INVAL);
	cfg.psk_len = 32;
	cfg.max_record = 100;
	assert_int_equal(ppcp_conn_new(&c, &cfg, 0), PPCP_ERR_INVAL);
	ppcp_conn_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_reproduces_independent_vectors),
		cmocka_unit_test(test_handshake_byte_at_a_time_matches_all_at_once),
		cmocka_unit_test(test_client_tells_a_refusing_server_from_a_cut),
		cmocka_unit_test(test_truncated_client_hello_then_eof_gets_no_server_hello),
		cmocka_unit_test(test_client_hello_header_bytes_fail_closed),
		cmocka_unit_test(test_client_hello_pub_len_other_than_65_is_rejected),
		cmocka_unit_test(test_client_hello_with_invalid_point_gets_no_server_hello),
		cmocka_unit_test(test_client_hello_of_wrong_length_is_rejected),
		cmocka_unit_test(test_client_hello_any_bit_flip_never_completes_a_handshake),
		cmocka_unit_test(test_server_hello_any_bit_flip_aborts_client_before_auth),
		cmocka_unit_test(test_replayed_server_hello_is_rejected),
		cmocka_unit_test(test_server_with_other_id_is_wrong_server),
		cmocka_unit_test(test_reflected_client_key_is_rejected),
		cmocka_unit_test(test_auth_any_bit_flip_gets_no_auth_ok),
		cmocka_unit_test(test_auth_from_another_session_is_rejected),
		cmocka_unit_test(test_auth_before_server_hello_is_rejected),
		cmocka_unit_test(test_different_psks_fail_cleanly_on_both_sides),
		cmocka_unit_test(test_rogue_client_frames_instead_of_auth_open_nothing),
		cmocka_unit_test(test_client_rejects_tampered_auth_ok_and_forged_auth_fail),
		cmocka_unit_test(test_server_answers_invalid_auth_with_auth_fail),
		cmocka_unit_test(test_handshake_deadline_fails_a_slow_peer),
		cmocka_unit_test(test_garbage_after_client_hello_is_a_bad_auth),
		cmocka_unit_test(test_record_lengths_out_of_bounds_fail_before_allocation),
		cmocka_unit_test(test_record_any_bit_flip_is_fatal_and_delivers_nothing),
		cmocka_unit_test(test_replayed_record_is_a_sequence_error_and_runs_once),
		cmocka_unit_test(test_reordered_or_dropped_record_is_fatal),
		cmocka_unit_test(test_reflected_record_is_fatal),
		cmocka_unit_test(test_eof_mid_record_or_without_bye_is_truncation),
		cmocka_unit_test(test_sequence_near_wrap_rekeys_instead_of_wrapping),
		cmocka_unit_test(test_key_update_after_16_records_continues_and_old_records_fail),
		cmocka_unit_test(test_peer_past_twice_the_limit_is_failed),
		cmocka_unit_test(test_100k_records_use_counter_nonces),
		cmocka_unit_test(test_malformed_json_gets_invalid_message_and_session_goes_on),
		cmocka_unit_test(test_unknown_type_gets_unknown_type_and_session_goes_on),
		cmocka_unit_test(test_every_type_in_established_state),
		cmocka_unit_test(test_malformed_key_update_or_bye_is_fatal),
		cmocka_unit_test(test_every_type_in_auth_phase_is_refused),
		cmocka_unit_test(test_api_refuses_sends_before_established),
		cmocka_unit_test(test_heartbeats_are_sent_answered_and_silence_fails),
		cmocka_unit_test(test_binary_records_only_after_negotiation),
		cmocka_unit_test(test_file_data_records_round_trip),
		cmocka_unit_test(test_tcp_ping_before_hello_gets_one_pong),
		cmocka_unit_test(test_rng_failure_is_reported_not_used),
		cmocka_unit_test(test_config_is_validated),
	};
	if (getenv("PPCP_TEST_QUICK") != NULL) {
		STEP = 17;
		RECORDS = 2000;
		printf("PPCP_TEST_QUICK: bit sweeps take every %zu-th bit, %llu records\n", STEP,
		       (unsigned long long)RECORDS);
	}
	V = tu_load_vectors("handshake.json");
	tu_hex(tu_vec(V, "inputs.psk"), PSK, sizeof(PSK));
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(V);
	return r;
}
