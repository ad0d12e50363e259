/*
 * test_adv.c - rows of tests/../adversarial.md that test_conn.c covers only
 * in part, on the engine in memory (see tests/README.md for the map):
 *
 *   T4/T5  every Wycheproof ecpoint vector that is not valid, and the
 *          compressed, hybrid and infinity encodings of a valid point, put
 *          into a CLIENT_HELLO toward the server AND into a SERVER_HELLO
 *          toward the client: refused as a bad point or a malformed hello,
 *          before any ECDH (a valid foreign point in the same place gets
 *          past the point check and fails later, at s_confirm), nothing
 *          sent back;
 *   T18    every length 0..28 and the limit + 1 in every state (before the
 *          hello on both sides, in the AUTH phase on both sides, after
 *          AUTH_OK with the default and with a configured max_record),
 *          refused on the 4-byte prefix alone; the limit itself accepted;
 *   T19    a record with any bit of its ciphertext or tag flipped leaves
 *          no plaintext in the caller's buffer (it is wiped), and one with
 *          a changed nonce is not decrypted at all;
 *   T22    a dropped request fails the session on both sides (NL);
 *   T38    the client's side of the state table (every type from the
 *          server once ESTABLISHED), frames of the wrong kind in each
 *          handshake state, and nothing delivered in CLOSED or FAILED.
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

static const uint8_t PSK[32] = { 0xad, 0x7e, 0x25, 0x11, 0x90, 0x3c, 0x6b, 0x01, 0x52, 0xe4, 0x8d,
				 0x17, 0xf0, 0x2a, 0xc3, 0x66, 0x09, 0xbe, 0x74, 0x38, 0xd1, 0x4f,
				 0x85, 0x2c, 0x9a, 0x60, 0x13, 0xe7, 0x5b, 0xc8, 0x0e, 0x99 };

typedef struct side {
	int established, messages;
	enum ppcp_msg_type last_type;
} side;

typedef struct pair {
	ppcp_conn *c, *s;
	side cs, ss;
	uint64_t now;
} pair;

static void on_established(ppcp_conn *c, void *user)
{
	(void)c;
	((side *)user)->established++;
}

static void on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	side *s = user;

	(void)c;
	s->messages++;
	s->last_type = m->type;
}

static void make(ppcp_conn **out, side *sd, enum ppcp_role role, uint32_t max_record, uint64_t now)
{
	ppcp_config cfg;

	ppcp_config_init(&cfg, role);
	cfg.psk = PSK;
	cfg.psk_len = sizeof(PSK);
	cfg.server_id = "srv-adv";
	cfg.max_record = max_record;
	cfg.cb.on_established = on_established;
	cfg.cb.on_message = on_message;
	cfg.user = sd;
	assert_int_equal(ppcp_conn_new(out, &cfg, now), 0);
}

static void pair_new(pair *p, uint32_t max_record)
{
	memset(p, 0, sizeof(*p));
	p->now = 1000;
	make(&p->s, &p->ss, PPCP_ROLE_SERVER, max_record, p->now);
	make(&p->c, &p->cs, PPCP_ROLE_CLIENT, max_record, p->now);
}

static void pair_free(pair *p)
{
	ppcp_conn_free(p->c);
	ppcp_conn_free(p->s);
}

static size_t pending(ppcp_conn *a)
{
	const uint8_t *d;

	return ppcp_conn_out(a, &d);
}

/* Take a's pending output into buf (and consume it). */
static size_t take(ppcp_conn *a, uint8_t *buf, size_t cap)
{
	const uint8_t *d;
	size_t n = ppcp_conn_out(a, &d);

	assert_true(n <= cap);
	memcpy(buf, d, n);
	ppcp_conn_out_ack(a, n);
	return n;
}

/* Move a's pending output to b. */
static int pump(ppcp_conn *a, ppcp_conn *b, uint64_t now)
{
	uint8_t buf[8192];
	size_t n = take(a, buf, sizeof(buf));

	return n == 0 ? 0 : ppcp_conn_feed(b, buf, n, now);
}

/* Up to the state named by stop: 1 server expects AUTH, 2 client expects
 * AUTH_OK, 3 both ESTABLISHED. */
static void advance(pair *p, int stop)
{
	assert_int_equal(pump(p->c, p->s, p->now), 0); /* CH */
	if (stop == 1)
		return;
	assert_int_equal(pump(p->s, p->c, p->now), 0); /* SH */
	if (stop == 2)
		return;
	assert_int_equal(pump(p->c, p->s, p->now), 0); /* AUTH */
	assert_int_equal(pump(p->s, p->c, p->now), 0); /* AUTH_OK */
	assert_int_equal(ppcp_conn_state(p->c), PPCP_ST_ESTABLISHED);
	assert_int_equal(ppcp_conn_state(p->s), PPCP_ST_ESTABLISHED);
}

/* Seal plaintext pt as from's next record and feed it to to. */
static int inject(ppcp_conn *from, ppcp_conn *to, const char *pt, uint64_t now)
{
	ppcp__buf b = { 0 };
	int ret;

	assert_int_equal(ppcp__record_seal((ppcp__dir *)ppcp__conn_dir(from, 1), &b, (const uint8_t *)pt,
					   strlen(pt), NULL, 0),
			 0);
	ret = ppcp_conn_feed(to, b.p, b.len, now);
	ppcp__buf_free(&b);
	return ret;
}

/* ---- T4/T5: bad points in either hello --------------------------------- */

struct point_case {
	uint8_t pt[65];
	size_t len;     /* bytes of pt that are meaningful */
	char what[96];
};

/* Every ecpoint vector that is not valid, and encodings of a valid point
 * that PPCP refuses; *valid gets one valid vector point (not ours). */
static size_t bad_points(struct point_case *out, size_t cap, uint8_t valid[65])
{
	json_t *root = tu_load_vectors("wycheproof/ecdh_secp256r1_ecpoint_test.json");
	json_t *groups = json_object_get(root, "testGroups"), *g, *t;
	size_t gi, ti, n = 0;
	int have_valid = 0;

	json_array_foreach(groups, gi, g)
	{
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			const char *res = json_string_value(json_object_get(t, "result"));
			const char *hex = json_string_value(json_object_get(t, "public"));
			uint8_t buf[256];
			size_t len = tu_hex(hex, buf, sizeof(buf));

			if (strcmp(res, "valid") == 0) {
				if (!have_valid && len == 65) {
					memcpy(valid, buf, 65);
					have_valid = 1;
				}
				continue;
			}
			assert_true(n < cap && len <= 65);
			memset(&out[n], 0, sizeof(out[n]));
			memcpy(out[n].pt, buf, len);
			out[n].len = len;
			snprintf(out[n].what, sizeof(out[n].what), "wycheproof tcId %lld (%s, %zu bytes)",
				 (long long)json_integer_value(json_object_get(t, "tcId")),
				 json_string_value(json_object_get(t, "comment")), len);
			n++;
		}
	}
	assert_true(have_valid);
	/* The valid point re-encoded: compressed (both parities), hybrid
	 * (both parities), and the point at infinity. */
	static const uint8_t firsts[] = { 0x02, 0x03, 0x06, 0x07, 0x00 };
	for (size_t k = 0; k < sizeof(firsts); k++) {
		assert_true(n < cap);
		memcpy(out[n].pt, valid, 65);
		out[n].pt[0] = firsts[k];
		out[n].len = 65;
		snprintf(out[n].what, sizeof(out[n].what), "a valid point with first byte %02x", firsts[k]);
		n++;
	}
	assert_true(n < cap);
	memset(&out[n], 0, sizeof(out[n])); /* 00 then zeros: infinity in 65 bytes */
	out[n].len = 65;
	snprintf(out[n].what, sizeof(out[n].what), "65 zero bytes");
	n++;
	json_decref(root);
	return n;
}

/* Put a point into the hello of a frame (offset 4 + 8: pub_len, point).
 * A point shorter than 65 bytes goes in twice: once as the first bytes of
 * the 65-byte field (pub_len 0x41), once with pub_len = its length. */
static void put_point(uint8_t *frame, const struct point_case *pc, int with_len)
{
	frame[12] = with_len ? (uint8_t)pc->len : 0x41;
	memset(frame + 13, 0, 65);
	memcpy(frame + 13, pc->pt, pc->len);
}

static void test_t4_t5_bad_points_in_client_hello_get_no_server_hello(void **state)
{
	struct point_case pcs[64];
	uint8_t valid[65];
	size_t n = bad_points(pcs, 64, valid), runs = 0;
	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (int with_len = 0; with_len < 2; with_len++) {
			uint8_t ch[PPCP_LEN_PREFIX + PPCP_CLIENT_HELLO_LEN];
			pair p;
			int ret;

			if (with_len && pcs[i].len == 65)
				continue;
			pair_new(&p, 0);
			assert_int_equal(take(p.c, ch, sizeof(ch)), sizeof(ch));
			put_point(ch, &pcs[i], with_len);
			ret = ppcp_conn_feed(p.s, ch, sizeof(ch), p.now);
			if (ret != (with_len ? PPCP_ERR_BAD_HELLO : PPCP_ERR_BAD_POINT))
				fail_msg("CLIENT_HELLO with %s (pub_len %s): %s", pcs[i].what,
					 with_len ? "its length" : "0x41", ppcp_err_name(ret));
			assert_int_equal(pending(p.s), 0); /* no SERVER_HELLO */
			assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_FAILED);
			pair_free(&p);
			runs++;
		}
	}
	printf("T4/T5: %zu bad points, %zu CLIENT_HELLOs refused without a SERVER_HELLO\n", n, runs);
	assert_int_equal(n, 24 + 1 + 6);
}

static void test_t4_t5_bad_points_in_server_hello_get_no_auth(void **state)
{
	struct point_case pcs[64];
	uint8_t valid[65];
	size_t n = bad_points(pcs, 64, valid), runs = 0;
	(void)state;
	for (size_t i = 0; i < n; i++) {
		for (int with_len = 0; with_len < 2; with_len++) {
			uint8_t sh[PPCP_LEN_PREFIX + PPCP_SERVER_HELLO_LEN];
			pair p;
			int ret;

			if (with_len && pcs[i].len == 65)
				continue;
			pair_new(&p, 0);
			advance(&p, 1);
			assert_int_equal(take(p.s, sh, sizeof(sh)), sizeof(sh));
			put_point(sh, &pcs[i], with_len);
			ret = ppcp_conn_feed(p.c, sh, sizeof(sh), p.now);
			/* BAD_POINT, not SERVER_AUTH: refused before any ECDH
			 * and before s_confirm is looked at. */
			if (ret != (with_len ? PPCP_ERR_BAD_HELLO : PPCP_ERR_BAD_POINT))
				fail_msg("SERVER_HELLO with %s (pub_len %s): %s", pcs[i].what,
					 with_len ? "its length" : "0x41", ppcp_err_name(ret));
			assert_int_equal(pending(p.c), 0); /* no AUTH */
			assert_int_equal(p.cs.established, 0);
			pair_free(&p);
			runs++;
		}
	}
	/* Control: a valid point that is not the server's passes the point
	 * check, so the client computes ECDH and fails at s_confirm. */
	uint8_t sh[PPCP_LEN_PREFIX + PPCP_SERVER_HELLO_LEN];
	struct point_case ok = { .len = 65 };
	pair p;
	memcpy(ok.pt, valid, 65);
	pair_new(&p, 0);
	advance(&p, 1);
	take(p.s, sh, sizeof(sh));
	put_point(sh, &ok, 0);
	assert_int_equal(ppcp_conn_feed(p.c, sh, sizeof(sh), p.now), PPCP_ERR_SERVER_AUTH);
	assert_int_equal(pending(p.c), 0);
	pair_free(&p);
	printf("T4/T5: %zu SERVER_HELLOs with a bad point refused without an AUTH\n", runs);
}

/* ---- T18: lengths in every state ------------------------------------------ */

/* Feed only a length prefix; the result. */
static int feed_len(ppcp_conn *c, uint32_t len, uint64_t now)
{
	uint8_t h[4];

	ppcp__store_be32(h, len);
	return ppcp_conn_feed(c, h, 4, now);
}

/* Bring a fresh pair to the state where `who` waits, and return it. */
static ppcp_conn *at_state(pair *p, int st, uint32_t max_record)
{
	pair_new(p, max_record);
	switch (st) {
	case 0: /* server before CLIENT_HELLO */
		return p->s;
	case 1: /* client waiting for SERVER_HELLO (its CH is sent) */
		take(p->c, (uint8_t[256]){ 0 }, 256);
		return p->c;
	case 2: /* server expecting AUTH (its SERVER_HELLO taken) */
		advance(p, 1);
		take(p->s, (uint8_t[256]){ 0 }, 256);
		return p->s;
	case 3: /* client expecting AUTH_OK */
		advance(p, 2);
		take(p->c, (uint8_t[1024]){ 0 }, 1024); /* its AUTH, not delivered */
		return p->c;
	default: /* both ESTABLISHED */
		advance(p, 3);
		return p->s;
	}
}

static void test_t18_every_bad_length_in_every_state_fails_on_the_prefix(void **state)
{
	static const char *names[] = { "server before CLIENT_HELLO", "client waiting for SERVER_HELLO",
				       "server expecting AUTH", "client expecting AUTH_OK",
				       "ESTABLISHED (max_record 1 MiB)", "ESTABLISHED (max_record 4096)" };
	size_t checked = 0;
	(void)state;
	for (int st = 0; st < 6; st++) {
		uint32_t mr = st == 5 ? 4096 : 0;
		uint32_t lo, hi; /* the accepted range of len */

		if (st < 2) {
			lo = 1;
			hi = PPCP_MAX_PREAUTH_FRAME;
		} else if (st < 4) {
			lo = PPCP_REC_OVERHEAD + 1;
			hi = PPCP_REC_OVERHEAD + PPCP_MAX_HANDSHAKE_RECORD;
		} else {
			lo = PPCP_REC_OVERHEAD + 1;
			hi = PPCP_REC_OVERHEAD + (mr ? mr : PPCP_DEFAULT_MAX_RECORD);
		}
		uint32_t bad[40];
		size_t nb = 0;
		for (uint32_t l = 0; l < lo; l++)
			bad[nb++] = l;
		bad[nb++] = hi + 1;
		bad[nb++] = hi + 2;
		bad[nb++] = 12u + (1u << 17) + 17u > hi ? 12u + (1u << 17) + 17u : hi + 100;
		bad[nb++] = 0x7fffffffu;
		bad[nb++] = 0x80000000u;
		bad[nb++] = 0xfffffffeu;
		bad[nb++] = 0xffffffffu;
		for (size_t k = 0; k < nb; k++) {
			pair p;
			ppcp_conn *c = at_state(&p, st, mr);
			side *sd = c == p.s ? &p.ss : &p.cs;
			int want = bad[k] < lo ? PPCP_ERR_FRAME_TOO_SHORT : PPCP_ERR_FRAME_TOO_LARGE;
			int ret = feed_len(c, bad[k], p.now);

			if (ret != want)
				fail_msg("%s: len %u: %s, wanted %s", names[st], bad[k], ppcp_err_name(ret),
					 ppcp_err_name(want));
			assert_int_equal(ppcp_conn_state(c), PPCP_ST_FAILED);
			assert_int_equal(pending(c), 0);
			assert_int_equal(sd->messages, 0);
			pair_free(&p);
			checked++;
		}
		/* The bounds themselves are read as frames (more input awaited). */
		uint32_t good[2] = { lo, hi };
		for (int k = 0; k < 2; k++) {
			pair p;
			ppcp_conn *c = at_state(&p, st, mr);

			assert_int_equal(feed_len(c, good[k], p.now), 0);
			assert_int_not_equal(ppcp_conn_state(c), PPCP_ST_FAILED);
			pair_free(&p);
		}
	}
	printf("T18: %zu bad lengths refused on the 4-byte prefix in 6 states\n", checked);
}

/* ---- T19: no plaintext of a failed record is left in the buffer ------------- */

static void test_t19_failed_record_leaves_no_plaintext_in_the_buffer(void **state)
{
	static const char pt[] = "{\"i\":\"1\",\"p\":{\"name\":\"secret-command-name\",\"args\":{}},\"s\":0,"
				  "\"t\":\"COMMAND\",\"v\":1}";
	uint8_t secret[32], out[256];
	ppcp__buf b = { 0 };
	ppcp__dir tx, rx;
	size_t flips = 0;
	(void)state;
	memset(secret, 0x42, sizeof(secret));
	memset(&tx, 0, sizeof(tx));
	assert_int_equal(ppcp__dir_set(&tx, secret), 0);
	assert_int_equal(ppcp__record_seal(&tx, &b, (const uint8_t *)pt, strlen(pt), NULL, 0), 0);
	const uint8_t *body = b.p + PPCP_LEN_PREFIX;
	uint32_t blen = (uint32_t)(b.len - PPCP_LEN_PREFIX);
	assert_int_equal(blen, strlen(pt) + PPCP_REC_OVERHEAD);
	for (uint32_t bit = 0; bit < blen * 8; bit++) {
		uint8_t m[256];
		int ret;

		memcpy(m, body, blen);
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		memset(&rx, 0, sizeof(rx));
		assert_int_equal(ppcp__dir_set(&rx, secret), 0);
		memset(out, 0xaa, sizeof(out));
		ret = ppcp__record_open(&rx, m, blen, out);
		if (bit < PPCP_REC_NONCE * 8) {
			/* The nonce is checked first: nothing is decrypted. */
			assert_int_equal(ret, PPCP_ERR_SEQUENCE);
			for (size_t k = 0; k < blen - PPCP_REC_OVERHEAD; k++)
				assert_int_equal(out[k], 0xaa);
		} else {
			assert_int_equal(ret, PPCP_ERR_DECRYPT);
			for (size_t k = 0; k < blen - PPCP_REC_OVERHEAD; k++)
				if (out[k] != 0)
					fail_msg("bit %u flipped: byte %zu of the buffer is %02x, not wiped", bit, k,
						 out[k]);
		}
		assert_int_equal(rx.seq, 0);
		ppcp__dir_clear(&rx);
		flips++;
	}
	/* Control: the untouched record opens to the plaintext. */
	memset(&rx, 0, sizeof(rx));
	assert_int_equal(ppcp__dir_set(&rx, secret), 0);
	assert_int_equal(ppcp__record_open(&rx, body, blen, out), 0);
	assert_memory_equal(out, pt, strlen(pt));
	ppcp__dir_clear(&rx);
	ppcp__dir_clear(&tx);
	ppcp__buf_free(&b);
	printf("T19: %zu single-bit flips, no plaintext left behind\n", flips);
}

/* ---- T22: a dropped request is never silently lost -------------------------- */

static void test_t22_dropped_request_fails_the_session_on_both_sides(void **state)
{
	pair p;
	uint8_t a[1024], b[1024];
	size_t na, nb;
	(void)state;
	pair_new(&p, 0);
	advance(&p, 3);
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"a\",\"args\":{}}", NULL), 0);
	na = take(p.c, a, sizeof(a));
	assert_int_equal(ppcp_conn_send_json(p.c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"b\",\"args\":{}}", NULL), 0);
	nb = take(p.c, b, sizeof(b));
	(void)na;
	/* Request a is lost on the way: b fails, the server delivers neither
	 * and sends nothing more. */
	assert_int_equal(ppcp_conn_feed(p.s, b, nb, p.now), PPCP_ERR_SEQUENCE);
	assert_int_equal(p.ss.messages, 0);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_FAILED);
	assert_int_equal(pending(p.s), 0);
	/* The server closes; the client learns its session failed (both
	 * requests reported as failed, not as answered). */
	assert_int_equal(ppcp_conn_eof(p.c), PPCP_ERR_TRUNCATED);
	assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_FAILED);
	assert_int_equal(ppcp_conn_error(p.c), PPCP_ERR_TRUNCATED);
	assert_int_equal(p.cs.messages, 0);
	pair_free(&p);
}

/* ---- T38: the client's side, wrong frames in each state, CLOSED, FAILED ----- */

static void test_t38_every_type_from_the_server_once_established(void **state)
{
	static const struct {
		const char *t, *p;
		int fatal;
	} cases[] = {
		{ "PING", "{}", 1 },
		{ "PONG", "{}", 1 },
		{ "CLIENT_HELLO", "{}", 1 },
		{ "SERVER_HELLO", "{}", 1 },
		{ "AUTH", "{\"proof\":\"\",\"ext\":[],\"max_record\":4096}", 1 },
		{ "AUTH_OK", "{}", 1 },
		{ "AUTH_FAIL", "{\"reason\":\"authentication-failed\"}", 1 },
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
		int ret;

		pair_new(&p, 0);
		advance(&p, 3);
		snprintf(pt, sizeof(pt), "{\"i\":\"9\",\"p\":%s,\"s\":0,\"t\":\"%s\",\"v\":1}", cases[i].p,
			 cases[i].t);
		ret = inject(p.s, p.c, pt, p.now);
		if (cases[i].fatal) {
			if (ret != PPCP_ERR_UNEXPECTED)
				fail_msg("%s to the client: %s", cases[i].t, ppcp_err_name(ret));
			assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_FAILED);
			assert_int_equal(p.cs.messages, 0);
			assert_int_equal(pending(p.c), 0);
		} else {
			if (ret != 0)
				fail_msg("%s to the client: %s", cases[i].t, ppcp_err_name(ret));
			if (strcmp(cases[i].t, "BYE") == 0)
				assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_CLOSED);
			else
				assert_int_equal(ppcp_conn_state(p.c), PPCP_ST_ESTABLISHED);
		}
		pair_free(&p);
	}
}

static void test_t38_wrong_frames_in_each_handshake_state(void **state)
{
	uint8_t f[1200], ch[256], sh[256];
	size_t chn, shn;
	pair p, q;
	(void)state;

	/* Hellos of the other side, for the wrong places. */
	pair_new(&q, 0);
	chn = take(q.c, ch, sizeof(ch));
	assert_int_equal(ppcp_conn_feed(q.s, ch, chn, q.now), 0);
	shn = take(q.s, sh, sizeof(sh));
	pair_free(&q);

	/* Server before CLIENT_HELLO: a SERVER_HELLO; a record-like frame. */
	pair_new(&p, 0);
	assert_int_equal(ppcp_conn_feed(p.s, sh, shn, p.now), PPCP_ERR_BAD_HELLO);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);
	pair_new(&p, 0);
	ppcp__store_be32(f, 200);
	memset(f + 4, 0xa5, 200);
	assert_int_equal(ppcp_conn_feed(p.s, f, 204, p.now), PPCP_ERR_BAD_MAGIC);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);

	/* Client waiting for SERVER_HELLO: a CLIENT_HELLO; a PING or PONG
	 * frame (JSON); a second SERVER_HELLO after the first. */
	pair_new(&p, 0);
	take(p.c, f, sizeof(f));
	assert_int_equal(ppcp_conn_feed(p.c, ch, chn, p.now), PPCP_ERR_BAD_HELLO);
	assert_int_equal(pending(p.c), 0);
	pair_free(&p);
	pair_new(&p, 0);
	take(p.c, f, sizeof(f));
	const char *pong = "{\"i\":\"1\",\"p\":{},\"s\":0,\"t\":\"PONG\",\"v\":1}";
	ppcp__store_be32(f, (uint32_t)strlen(pong));
	memcpy(f + 4, pong, strlen(pong));
	assert_int_equal(ppcp_conn_feed(p.c, f, 4 + strlen(pong), p.now), PPCP_ERR_BAD_MAGIC);
	assert_int_equal(pending(p.c), 0);
	pair_free(&p);
	pair_new(&p, 0);
	advance(&p, 1);
	shn = take(p.s, sh, sizeof(sh));
	assert_int_equal(ppcp_conn_feed(p.c, sh, shn, p.now), 0);
	take(p.c, f, sizeof(f)); /* AUTH */
	assert_true(ppcp_conn_feed(p.c, sh, shn, p.now) < 0); /* a second SERVER_HELLO */
	assert_int_equal(pending(p.c), 0);
	assert_int_equal(p.cs.established, 0);
	pair_free(&p);

	/* Server expecting AUTH: a second CLIENT_HELLO, a PING frame. */
	pair_new(&p, 0);
	advance(&p, 1);
	take(p.s, f, sizeof(f));
	assert_true(ppcp_conn_feed(p.s, ch, chn, p.now) < 0);
	assert_int_equal(pending(p.s), 0);
	assert_int_equal(p.ss.established, 0);
	pair_free(&p);
	pair_new(&p, 0);
	advance(&p, 1);
	take(p.s, f, sizeof(f));
	const char *ping = "{\"i\":\"1\",\"p\":{\"client_id\":\"a\",\"hostname\":\"a\",\"version\":\"1\"},"
			   "\"s\":0,\"t\":\"PING\",\"v\":1}";
	ppcp__store_be32(f, (uint32_t)strlen(ping));
	memcpy(f + 4, ping, strlen(ping));
	assert_true(ppcp_conn_feed(p.s, f, 4 + strlen(ping), p.now) < 0);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);
}

static void test_t38_nothing_is_delivered_in_closed_or_failed(void **state)
{
	pair p;
	int ret;
	(void)state;

	/* CLOSED: after the peer's BYE, a further record is not delivered. */
	pair_new(&p, 0);
	advance(&p, 3);
	assert_int_equal(ppcp_conn_close(p.c, "done"), 0);
	assert_int_equal(pump(p.c, p.s, p.now), 0);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_CLOSED);
	int before = p.ss.messages;
	ret = inject(p.c, p.s, "{\"i\":\"9\",\"p\":{\"name\":\"a\",\"args\":{}},\"s\":0,\"t\":\"COMMAND\",\"v\":1}",
		     p.now);
	assert_true(ret <= 0);
	assert_int_equal(p.ss.messages, before);
	assert_int_equal(pending(p.s), 0);
	assert_int_equal(ppcp_conn_send_json(p.s, PPCP_MSG_COMMAND, NULL, "{\"name\":\"a\",\"args\":{}}", NULL),
			 PPCP_ERR_STATE);
	pair_free(&p);

	/* FAILED: once a record failed, a valid record is refused with the
	 * same error and not delivered. */
	pair_new(&p, 0);
	advance(&p, 3);
	uint8_t junk[64];
	ppcp__store_be32(junk, 60);
	memset(junk + 4, 0x5a, 60);
	ret = ppcp_conn_feed(p.s, junk, sizeof(junk), p.now);
	assert_true(ret < 0);
	assert_int_equal(ppcp_conn_state(p.s), PPCP_ST_FAILED);
	assert_int_equal(inject(p.c, p.s, "{\"i\":\"9\",\"p\":{\"ts\":1},\"s\":0,\"t\":\"HEARTBEAT\",\"v\":1}",
				p.now),
			 ret);
	assert_int_equal(p.ss.messages, 0);
	assert_int_equal(pending(p.s), 0);
	assert_int_equal(ppcp_conn_on_timeout(p.s, p.now + 100000000), ret);
	assert_int_equal(pending(p.s), 0);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_t4_t5_bad_points_in_client_hello_get_no_server_hello),
		cmocka_unit_test(test_t4_t5_bad_points_in_server_hello_get_no_auth),
		cmocka_unit_test(test_t18_every_bad_length_in_every_state_fails_on_the_prefix),
		cmocka_unit_test(test_t19_failed_record_leaves_no_plaintext_in_the_buffer),
		cmocka_unit_test(test_t22_dropped_request_fails_the_session_on_both_sides),
		cmocka_unit_test(test_t38_every_type_from_the_server_once_established),
		cmocka_unit_test(test_t38_wrong_frames_in_each_handshake_state),
		cmocka_unit_test(test_t38_nothing_is_delivered_in_closed_or_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
