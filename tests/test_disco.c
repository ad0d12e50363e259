/*
 * test_disco.c - the discovery codecs (PROTOCOL.md §10, adversarial.md
 * T44): PING/PONG round trips, PING padding, targeted PINGs, malformed
 * input, and the no-amplification rule (a PONG never exceeds its PING).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

#define ID64 "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._"
#define ID65 ID64 "-"

static ppcp_ping make_ping(const char *id, const char *client_id, const char *hostname,
			   const char *version, const char *target, int64_t ts)
{
	ppcp_ping p;

	memset(&p, 0, sizeof p);
	snprintf(p.id, sizeof p.id, "%s", id);
	snprintf(p.client_id, sizeof p.client_id, "%s", client_id);
	snprintf(p.hostname, sizeof p.hostname, "%s", hostname);
	snprintf(p.version, sizeof p.version, "%s", version);
	snprintf(p.target, sizeof p.target, "%s", target);
	p.ts = ts;
	return p;
}

static ppcp_pong make_pong(const char *id, const char *server_id, const char *hostname,
			   uint16_t port, uint32_t caps, int64_t ts)
{
	ppcp_pong p;

	memset(&p, 0, sizeof p);
	snprintf(p.id, sizeof p.id, "%s", id);
	snprintf(p.server_id, sizeof p.server_id, "%s", server_id);
	snprintf(p.hostname, sizeof p.hostname, "%s", hostname);
	p.port = port;
	p.capabilities = caps;
	p.ts = ts;
	return p;
}

static void assert_ping_equal(const ppcp_ping *a, const ppcp_ping *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->client_id, b->client_id);
	assert_string_equal(a->hostname, b->hostname);
	assert_string_equal(a->version, b->version);
	assert_string_equal(a->target, b->target);
	assert_true(a->ts == b->ts);
}

static void assert_pong_equal(const ppcp_pong *a, const ppcp_pong *b)
{
	assert_string_equal(a->id, b->id);
	assert_string_equal(a->server_id, b->server_id);
	assert_string_equal(a->hostname, b->hostname);
	assert_int_equal(a->port, b->port);
	assert_int_equal(a->capabilities, b->capabilities);
	assert_true(a->ts == b->ts);
}

/* Decode text as a PING and expect err. */
static void expect_ping(const char *text, int err)
{
	ppcp_ping p;
	int r = ppcp_ping_decode((const uint8_t *)text, strlen(text), &p);

	if (r != err)
		fail_msg("PING %s: got %s, want %s", text, ppcp_err_name(r), ppcp_err_name(err));
}

static void expect_pong(const char *text, int err)
{
	ppcp_pong p;
	int r = ppcp_pong_decode((const uint8_t *)text, strlen(text), &p);

	if (r != err)
		fail_msg("PONG %s: got %s, want %s", text, ppcp_err_name(r), ppcp_err_name(err));
}

/* A PING text with p's members given as JSON text, inside a valid envelope. */
static void ping_with_payload(char *buf, size_t cap, const char *members)
{
	int n = snprintf(buf, cap, "{\"v\":1,\"t\":\"PING\",\"i\":\"00000001\",\"s\":5,\"p\":{%s}}",
			 members);

	assert_true(n > 0 && (size_t)n < cap);
}

#define GOOD_P "\"client_id\":\"laptop-7\",\"hostname\":\"laptop\",\"version\":\"0.1.0\""
#define GOOD_PONG_P                                                                             \
	"\"server_id\":\"srv-01\",\"hostname\":\"node-01\",\"capabilities\":[\"key-exchange\"," \
	"\"aes-gcm\"],\"public_info\":{\"port\":9000,\"protocol\":\"ppcp/1\"}"

static void pong_with_payload(char *buf, size_t cap, const char *members)
{
	int n = snprintf(buf, cap, "{\"v\":1,\"t\":\"PONG\",\"i\":\"00000001\",\"s\":5,\"p\":{%s}}",
			 members);

	assert_true(n > 0 && (size_t)n < cap);
}

/* ---- PING round trips and padding ------------------------------------- */

static void test_ping_round_trips_every_field(void **state)
{
	static const int64_t ts[] = {0, 1700000000, -1, INT64_MAX, INT64_MIN};
	uint8_t buf[PPCP_PING_MAX];
	ppcp_ping in, out;
	size_t len;

	(void)state;
	for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
		in = make_ping("1b2c3d4e", "laptop-7", "laptop", "0.1.0", k % 2 ? "srv-01" : "",
			       ts[k]);
		assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
		memset(&out, 0x55, sizeof out);
		assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
		assert_ping_equal(&in, &out);
	}
	/* Message ids may use any printable ASCII, JSON-escaped characters too. */
	in = make_ping("!\"#\\/~{}", "a", "b", "version with spaces \"quoted\" \\", "", 7);
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
	assert_ping_equal(&in, &out);
}

static void test_ping_encoding_is_the_canonical_form_of_the_spec(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	char want[PPCP_PING_MAX + 1];
	ppcp_ping in = make_ping("1b2c3d4e", "laptop-7", "laptop", "0.1.0", "srv-01", 1700000000);
	size_t len, pad;
	int head;

	(void)state;
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	/* PROTOCOL.md §10.1 example, with exactly enough '0' for 512 bytes. */
	head = snprintf(want, sizeof want,
			"{\"i\":\"1b2c3d4e\",\"p\":{\"client_id\":\"laptop-7\",\"hostname\":"
			"\"laptop\",\"pad\":\"");
	pad = PPCP_PING_MIN - strlen("{\"i\":\"1b2c3d4e\",\"p\":{\"client_id\":\"laptop-7\","
				     "\"hostname\":\"laptop\",\"pad\":\"\",\"target\":\"srv-01\","
				     "\"version\":\"0.1.0\"},\"s\":1700000000,\"t\":\"PING\","
				     "\"v\":1}");
	memset(want + head, '0', pad);
	snprintf(want + head + pad, sizeof want - head - pad,
		 "\",\"target\":\"srv-01\",\"version\":\"0.1.0\"},\"s\":1700000000,\"t\":"
		 "\"PING\",\"v\":1}");
	assert_int_equal(len, PPCP_PING_MIN);
	assert_int_equal(strlen(want), PPCP_PING_MIN);
	assert_memory_equal(buf, want, len);
}

/* Every combination of shortest and longest fields: the PING is padded to
 * exactly PPCP_PING_MIN whenever it would be shorter, never above max. */
static void test_ping_size_is_512_for_shortest_and_longest_fields(void **state)
{
	static const char *const ids[] = {"1", ID64};
	static const char *const names[] = {"a", ID64};
	static const char *const targets[] = {"", "s", ID64};
	static const int64_t ts[] = {0, INT64_MIN};
	uint8_t buf[PPCP_PING_MAX];
	ppcp_ping in, out;
	size_t len, count = 0;

	(void)state;
	/* Every combination: 2 ids x 2 x 2 x 2 names x 3 targets x 2 ts. */
	for (size_t c = 0; c < 96; c++) {
		in = make_ping(ids[c % 2], names[c / 2 % 2], names[c / 4 % 2], names[c / 8 % 2],
			       targets[c / 16 % 3], ts[c / 48]);
		assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
		assert_int_equal(len, PPCP_PING_MIN);
		assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
		assert_ping_equal(&in, &out);
		count++;
	}
	assert_int_equal(count, 96);
}

/* Fields whose escaped form is large push the unpadded PING across 512:
 * the size is then max(512, natural size), or natural + an empty "pad" in
 * the few bytes where a pad member cannot be made to fit exactly; never
 * more than 1024.  The pad is always minimal. */
static void test_ping_padding_is_minimal_across_the_512_boundary(void **state)
{
	uint8_t buf[PPCP_PING_MAX + 1];
	ppcp_ping in, out;
	size_t len, unpadded_seen = 0, empty_pad_seen = 0;

	(void)state;
	for (size_t ctl = 0; ctl <= 64; ctl++) {
		for (size_t plain = 0; ctl + plain <= 64; plain++) {
			char version[65];
			const char *pad;

			if (ctl + plain == 0)
				continue;
			/* Quotes are written as \": two bytes each. */
			memset(version, '"', ctl);
			memset(version + ctl, 'v', plain);
			version[ctl + plain] = '\0';
			in = make_ping(
				"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
				ID64, ID64, version, ID64, INT64_MIN);
			assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
			assert_true(len >= PPCP_PING_MIN);
			assert_true(len <= PPCP_PING_MAX);
			assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
			assert_ping_equal(&in, &out);
			buf[len] = '\0';
			pad = strstr((const char *)buf, "\"pad\":\"");
			if (pad == NULL) {
				unpadded_seen++;
				continue;
			}
			if (len > PPCP_PING_MIN) {
				/* Only an empty pad can overshoot, by less than its own cost. */
				assert_memory_equal(pad, "\"pad\":\"\"", 8);
				assert_true(len < PPCP_PING_MIN + 9);
				empty_pad_seen++;
			}
		}
	}
	/* The sweep did cross the boundary both ways. */
	assert_true(unpadded_seen > 0);
	assert_true(empty_pad_seen > 0);
}

static void test_ping_encode_refuses_bad_fields_and_small_buffers(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_ping p;
	size_t len;

	(void)state;
	p = make_ping("", "a", "b", "1", "", 0); /* empty id */
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("a b", "a", "b", "1", "", 0); /* space in id */
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a/b", "b", "1", "", 0);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "", "1", "", 0);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "", "", 0);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "1", "x y", 0);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "\xff\xfe", "", 0); /* version not UTF-8 */
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	/* Fields with no terminator inside their array are too long. */
	p = make_ping("1", "a", "b", "1", "", 0);
	memset(p.client_id, 'c', sizeof p.client_id);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "1", "", 0);
	memset(p.version, 'v', sizeof p.version);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "1", "", 0);
	memset(p.target, 't', sizeof p.target);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_ping("1", "a", "b", "1", "", 0);
	memset(p.id, 'i', sizeof p.id);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	/* The buffer must hold the padded PING. */
	p = make_ping("1", "a", "b", "1", "", 0);
	assert_int_equal(ppcp_ping_encode(&p, buf, PPCP_PING_MIN - 1, &len), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_ping_encode(&p, buf, PPCP_PING_MIN, &len), 0);
	assert_int_equal(len, PPCP_PING_MIN);
	assert_int_equal(ppcp_ping_encode(NULL, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_ping_encode(&p, NULL, sizeof buf, &len), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_ping_encode(&p, buf, sizeof buf, NULL), PPCP_ERR_INVAL);
}

/* ---- targeted PING ---------------------------------------------------- */

static void test_ping_target_selects_the_one_server(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_ping in, out;
	size_t len;

	(void)state;
	in = make_ping("1", "laptop", "laptop", "0.1.0", "srv-01", 0);
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
	assert_string_equal(out.target, "srv-01");
	assert_int_equal(ppcp_ping_wants(&out, "srv-01"), 1);
	assert_int_equal(ppcp_ping_wants(&out, "srv-02"), 0);
	assert_int_equal(ppcp_ping_wants(&out, "srv-0"), 0);
	assert_int_equal(ppcp_ping_wants(&out, "srv-011"), 0);
	assert_int_equal(ppcp_ping_wants(&out, "SRV-01"), 0);
	assert_int_equal(ppcp_ping_wants(&out, ""), 0);
	assert_int_equal(ppcp_ping_wants(&out, NULL), 0);

	/* Without a target every server answers, and no "target" is sent. */
	in = make_ping("1", "laptop", "laptop", "0.1.0", "", 0);
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	assert_null(memmem(buf, len, "target", 6));
	assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
	assert_string_equal(out.target, "");
	assert_int_equal(ppcp_ping_wants(&out, "srv-01"), 1);
	assert_int_equal(ppcp_ping_wants(&out, "anything"), 1);
	assert_int_equal(ppcp_ping_wants(NULL, "srv-01"), 0);
}

/* ---- malformed PINGs -------------------------------------------------- */

static void test_ping_decode_rejects_every_truncation(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_ping in = make_ping("1b2c3d4e", "laptop-7", "laptop", "0.1.0", "srv-01", 17);
	ppcp_ping out;
	size_t len;

	(void)state;
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	for (size_t n = 0; n < len; n++) {
		/* A copy of exactly n bytes, so ASan sees any read past the end. */
		uint8_t *cut = malloc(n ? n : 1);
		int r;

		assert_non_null(cut);
		memcpy(cut, buf, n);
		r = ppcp_ping_decode(cut, n, &out);
		free(cut);
		if (r != PPCP_ERR_BAD_MESSAGE)
			fail_msg("truncated at %zu: got %s", n, ppcp_err_name(r));
	}
	assert_int_equal(ppcp_ping_decode(buf, len, &out), 0);
}

static void test_ping_decode_survives_every_bit_flip(void **state)
{
	uint8_t buf[PPCP_PING_MAX], flip[PPCP_PING_MAX];
	ppcp_ping in = make_ping("1b2c3d4e", "laptop-7", "laptop", "0.1.0", "srv-01", 17);
	ppcp_ping out;
	size_t len, accepted = 0;

	(void)state;
	assert_int_equal(ppcp_ping_encode(&in, buf, sizeof buf, &len), 0);
	for (size_t bit = 0; bit < 8 * len; bit++) {
		int r;

		memcpy(flip, buf, len);
		flip[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = ppcp_ping_decode(flip, len, &out);
		if (r == 0)
			accepted++;
		else if (r != PPCP_ERR_BAD_MESSAGE && r != PPCP_ERR_BAD_MSG_VERSION)
			fail_msg("bit %zu: unexpected %s", bit, ppcp_err_name(r));
	}
	/* Flips inside the pad (or case flips in the hostname) stay valid;
	 * flips in the structure do not.  Both must happen. */
	assert_true(accepted > 0);
	assert_true(accepted < 8 * len);
}

static void test_ping_decode_rejects_invalid_utf8_and_nul(void **state)
{
	char buf[512];

	(void)state;
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\xff\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	/* Overlong encoding of '/'. */
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\xc0\xaf\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	/* A lone surrogate, encoded directly. */
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\xed\xa0\x80\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	/* Invalid UTF-8 in an ignored member is still invalid JSON text. */
	ping_with_payload(buf, sizeof buf, GOOD_P ",\"pad\":\"\xfe\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"1\\u0000\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	/* Version is printable ASCII only: valid UTF-8 beyond it is refused too,
	 * and so are control characters (it ends up in logs). */
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\xc3\xa9\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\\u001b[2J\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
}

static void test_ping_decode_rejects_duplicate_keys(void **state)
{
	char buf[512];

	(void)state;
	expect_ping("{\"v\":1,\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		    PPCP_ERR_BAD_MESSAGE);
	expect_ping("{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"i\":\"2\",\"s\":5,\"p\":{" GOOD_P "}}",
		    PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf, GOOD_P ",\"client_id\":\"other\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf, GOOD_P ",\"x\":{\"a\":1,\"a\":2}");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
}

static void test_ping_decode_limits_nesting_to_16(void **state)
{
	char members[600], buf[1024];
	ppcp_ping out;

	(void)state;
	/* The envelope is depth 1 and "p" depth 2; "x" adds the rest. */
	for (int depth = 3; depth <= 40; depth++) {
		int n = depth - 2, off;

		off = snprintf(members, sizeof members, GOOD_P ",\"x\":");
		memset(members + off, '[', (size_t)n);
		memset(members + off + n, ']', (size_t)n);
		members[off + 2 * n] = '\0';
		ping_with_payload(buf, sizeof buf, members);
		assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, strlen(buf), &out),
				 depth <= PPCP_MAX_JSON_DEPTH ? 0 : PPCP_ERR_BAD_MESSAGE);
	}
	/* As deep as fits in a datagram, unbalanced. */
	memset(buf, '[', PPCP_PING_MAX);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, PPCP_PING_MAX, &out),
			 PPCP_ERR_BAD_MESSAGE);
	memset(buf, '{', PPCP_PING_MAX);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, PPCP_PING_MAX, &out),
			 PPCP_ERR_BAD_MESSAGE);
}

static void test_ping_decode_rejects_wrong_types_and_missing_members(void **state)
{
	static const char *const envelopes[] = {
		/* missing members */
		"{\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5}",
		/* wrong types */
		"{\"v\":\"1\",\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1.0,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":true,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":1,\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":1,\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":\"5\",\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5.5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":9223372036854775808,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":null}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":[]}",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":\"x\"}",
		/* not a PING */
		"{\"v\":1,\"t\":\"PONG\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"ping\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		"{\"v\":1,\"t\":\"COMMAND\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		/* not an object, or not JSON at all */
		"[1]",
		"\"PING\"",
		"",
		"PPCP",
		"{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}{}",
	};
	static const char *const payloads[] = {
		"\"hostname\":\"b\",\"version\":\"1\"",
		"\"client_id\":\"a\",\"version\":\"1\"",
		"\"client_id\":\"a\",\"hostname\":\"b\"",
		"\"client_id\":1,\"hostname\":\"b\",\"version\":\"1\"",
		"\"client_id\":\"a\",\"hostname\":null,\"version\":\"1\"",
		"\"client_id\":\"a\",\"hostname\":\"b\",\"version\":1",
		"\"client_id\":\"a\",\"hostname\":\"b\",\"version\":[\"1\"]",
		GOOD_P ",\"target\":5",
		GOOD_P ",\"target\":null",
		GOOD_P ",\"pad\":0",
		GOOD_P ",\"pad\":[]",
	};
	char buf[512];

	(void)state;
	for (size_t k = 0; k < sizeof envelopes / sizeof envelopes[0]; k++)
		expect_ping(envelopes[k], PPCP_ERR_BAD_MESSAGE);
	for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
		ping_with_payload(buf, sizeof buf, payloads[k]);
		expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	}
	/* Unknown members are ignored, in the envelope and in "p". */
	expect_ping("{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"x\":[1],\"p\":{" GOOD_P
		    ",\"future\":{\"a\":[]}}}",
		    0);
	/* Any JSON layout is accepted, not only ours. */
	expect_ping(" {\n \"p\" : { " GOOD_P " } , \"s\" : -5 , \"i\" : \"1\" , \"t\" : \"PING\" ,"
		    " \"v\" : 1 }\n",
		    0);
}

static void test_ping_decode_reports_other_versions(void **state)
{
	(void)state;
	expect_ping("{\"v\":2,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		    PPCP_ERR_BAD_MSG_VERSION);
	expect_ping("{\"v\":0,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		    PPCP_ERR_BAD_MSG_VERSION);
	expect_ping("{\"v\":-1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_P "}}",
		    PPCP_ERR_BAD_MSG_VERSION);
	/* A future version may change the rest of the envelope. */
	expect_ping("{\"v\":2,\"t\":\"PING2\"}", PPCP_ERR_BAD_MSG_VERSION);
}

static void test_ping_decode_refuses_more_than_1024_bytes_before_parsing(void **state)
{
	char buf[PPCP_PING_MAX + 2];
	char members[PPCP_PING_MAX + 2];
	ppcp_ping out;
	size_t base, padlen;
	int off;

	(void)state;
	/* A valid PING of exactly 1024 bytes is accepted, 1025 is not. */
	ping_with_payload(buf, sizeof buf, GOOD_P ",\"pad\":\"\"");
	base = strlen(buf);
	padlen = PPCP_PING_MAX - base;
	off = snprintf(members, sizeof members, GOOD_P ",\"pad\":\"");
	memset(members + off, '0', padlen + 1);
	members[off + padlen + 1] = '"';
	members[off + padlen + 2] = '\0';
	ping_with_payload(buf, sizeof buf, members);
	assert_int_equal(strlen(buf), PPCP_PING_MAX + 1);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, PPCP_PING_MAX + 1, &out),
			 PPCP_ERR_TOO_BIG);
	members[off + padlen] = '"';
	members[off + padlen + 1] = '\0';
	ping_with_payload(buf, sizeof buf, members);
	assert_int_equal(strlen(buf), PPCP_PING_MAX);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, PPCP_PING_MAX, &out), 0);

	/* The size is checked first: even bytes that are not JSON. */
	memset(buf, 0xff, sizeof buf);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, PPCP_PING_MAX + 1, &out),
			 PPCP_ERR_TOO_BIG);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, SIZE_MAX, &out), PPCP_ERR_TOO_BIG);
	assert_int_equal(ppcp_ping_decode(NULL, 0, &out), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp_ping_decode(NULL, 5, &out), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_ping_decode((const uint8_t *)buf, 5, NULL), PPCP_ERR_INVAL);
}

static void test_ping_decode_rejects_bad_identifiers(void **state)
{
	static const char *const bad_ident[] = {
		"",	      "a/b", "a b", " a",     "a\\tb", ID65,
		"caf\\u00e9", "a:b", "a@b", "..\\/x", "a\\nb",
	};
	static const char *const bad_msg_id[] = {
		"", "a b", ID65, "caf\\u00e9", "\\t", "a\\u007fb", " ",
	};
	char members[400], buf[1024];

	(void)state;
	for (size_t k = 0; k < sizeof bad_ident / sizeof bad_ident[0]; k++) {
		snprintf(members, sizeof members,
			 "\"client_id\":\"%s\",\"hostname\":\"b\",\"version\":\"1\"", bad_ident[k]);
		ping_with_payload(buf, sizeof buf, members);
		expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
		snprintf(members, sizeof members,
			 "\"client_id\":\"a\",\"hostname\":\"%s\",\"version\":\"1\"", bad_ident[k]);
		ping_with_payload(buf, sizeof buf, members);
		expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
		snprintf(members, sizeof members, GOOD_P ",\"target\":\"%s\"", bad_ident[k]);
		ping_with_payload(buf, sizeof buf, members);
		expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	}
	for (size_t k = 0; k < sizeof bad_msg_id / sizeof bad_msg_id[0]; k++) {
		snprintf(buf, sizeof buf,
			 "{\"v\":1,\"t\":\"PING\",\"i\":\"%s\",\"s\":5,\"p\":{" GOOD_P "}}",
			 bad_msg_id[k]);
		expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	}
	/* version: 1..64 bytes, content free. */
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"" ID65 "\"");
	expect_ping(buf, PPCP_ERR_BAD_MESSAGE);
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"a\",\"hostname\":\"b\",\"version\":\"" ID64 "\"");
	expect_ping(buf, 0);
	/* 64-byte identifiers are the longest accepted. */
	ping_with_payload(buf, sizeof buf,
			  "\"client_id\":\"" ID64 "\",\"hostname\":\"" ID64
			  "\",\"version\":\"1\",\"target\":\"" ID64 "\"");
	expect_ping(buf, 0);
}

/* ---- PONG --------------------------------------------------------------- */

static void test_pong_round_trips_every_capability_set(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_pong in, out;
	size_t len;

	(void)state;
	for (uint32_t caps = 0; caps <= PPCP_EXT_ALL; caps++) {
		in = make_pong("1b2c3d4e", "srv-01", "node-01", caps & 1 ? 1 : 65535, caps,
			       caps & 2 ? INT64_MIN : 1700000001);
		assert_int_equal(ppcp_pong_encode(&in, buf, sizeof buf, &len), 0);
		memset(&out, 0x55, sizeof out);
		assert_int_equal(ppcp_pong_decode(buf, len, &out), 0);
		assert_pong_equal(&in, &out);
	}
}

static void test_pong_encoding_is_the_canonical_form_of_the_spec(void **state)
{
	static const char want[] =
		"{\"i\":\"1b2c3d4e\",\"p\":{\"capabilities\":[\"key-exchange\",\"aes-gcm\","
		"\"key-update\",\"binary-data\"],\"hostname\":\"node-01\",\"public_info\":{"
		"\"port\":"
		"9000,\"protocol\":\"ppcp/1\"},\"server_id\":\"srv-01\"},\"s\":1700000001,\"t\":"
		"\"PONG\",\"v\":1}";
	static const char want_none[] =
		"{\"i\":\"1\",\"p\":{\"capabilities\":[\"key-exchange\",\"aes-gcm\"],\"hostname\":"
		"\"h\",\"public_info\":{\"port\":1,\"protocol\":\"ppcp/1\"},\"server_id\":\"s\"},"
		"\"s\":0,\"t\":\"PONG\",\"v\":1}";
	uint8_t buf[PPCP_PING_MAX];
	ppcp_pong in = make_pong("1b2c3d4e", "srv-01", "node-01", 9000, PPCP_EXT_ALL, 1700000001);
	size_t len;

	(void)state;
	/* PROTOCOL.md §10.2 example, byte for byte. */
	assert_int_equal(ppcp_pong_encode(&in, buf, sizeof buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	in = make_pong("1", "s", "h", 1, 0, 0);
	assert_int_equal(ppcp_pong_encode(&in, buf, sizeof buf, &len), 0);
	assert_int_equal(len, strlen(want_none));
	assert_memory_equal(buf, want_none, len);
}

static void test_pong_encode_refuses_when_cap_is_smaller_than_needed(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_pong in = make_pong("1b2c3d4e", "srv-01", "node-01", 9000, PPCP_EXT_ALL, 1700000001);
	size_t len, need;

	(void)state;
	assert_int_equal(ppcp_pong_encode(&in, buf, sizeof buf, &len), 0);
	need = len;
	for (size_t cap = 0; cap < need; cap++) {
		len = 12345;
		assert_int_equal(ppcp_pong_encode(&in, buf, cap, &len), PPCP_ERR_TOO_BIG);
		assert_int_equal(len, 12345);
	}
	assert_int_equal(ppcp_pong_encode(&in, buf, need, &len), 0);
	assert_int_equal(len, need);
}

static void test_pong_encode_refuses_bad_fields(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_pong p;
	size_t len;

	(void)state;
	p = make_pong("1", "srv", "h", 0, 0, 0); /* port 0 */
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_pong("1", "srv", "h", 1, 1u << 7, 0); /* unknown extension bit */
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_pong("", "srv", "h", 1, 0, 0);
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_pong("1", "s/v", "h", 1, 0, 0);
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_pong("1", "srv", "h h", 1, 0, 0);
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	p = make_pong("1", "srv", "h", 1, 0, 0);
	memset(p.server_id, 's', sizeof p.server_id);
	assert_int_equal(ppcp_pong_encode(&p, buf, sizeof buf, &len), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_pong_encode(NULL, buf, sizeof buf, &len), PPCP_ERR_INVAL);
}

static void test_pong_decode_ignores_unknown_capabilities(void **state)
{
	char buf[1024];
	ppcp_pong out;

	(void)state;
	pong_with_payload(buf, sizeof buf,
			  "\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[\"x-future\","
			  "\"binary-data\",\"KEY-UPDATE\",\"binary-data\"],\"public_info\":{"
			  "\"port\":9000,\"protocol\":\"ppcp/1\",\"extra\":1}");
	assert_int_equal(ppcp_pong_decode((const uint8_t *)buf, strlen(buf), &out), 0);
	assert_int_equal(out.capabilities, PPCP_EXT_BINARY_DATA);
	pong_with_payload(buf, sizeof buf,
			  "\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],"
			  "\"public_info\":{\"port\":1,\"protocol\":\"ppcp/1\"}");
	assert_int_equal(ppcp_pong_decode((const uint8_t *)buf, strlen(buf), &out), 0);
	assert_int_equal(out.capabilities, 0);
	assert_int_equal(out.port, 1);
}

static void test_pong_decode_rejects_malformed_payloads(void **state)
{
	static const char *const payloads[] = {
		"\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{\"port\":1,\"protocol\":"
		"\"ppcp/1\"}",
		"\"server_id\":\"s\",\"capabilities\":[],\"public_info\":{\"port\":1,\"protocol\":"
		"\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"public_info\":{\"port\":1,\"protocol\":"
		"\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[]",
		"\"server_id\":\"s/"
		"x\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{\"port\":1,"
		"\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"" ID65 "\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":"
					"{\"port\":1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h "
		"h\",\"capabilities\":[],\"public_info\":{\"port\":1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":\"aes-gcm\",\"public_"
		"info\":{\"port\":1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[\"aes-gcm\",1],\"public_"
		"info\":{\"port\":1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[[]],\"public_info\":{"
		"\"port\":1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":[]",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":0,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":65536,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":-1,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":\"9000\",\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":9000.0,\"protocol\":\"ppcp/1\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":1}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":1,\"protocol\":\"ppcp/2\"}",
		"\"server_id\":\"s\",\"hostname\":\"h\",\"capabilities\":[],\"public_info\":{"
		"\"port\":1,\"protocol\":1}",
	};
	char buf[1024];

	(void)state;
	pong_with_payload(buf, sizeof buf, GOOD_PONG_P);
	expect_pong(buf, 0);
	for (size_t k = 0; k < sizeof payloads / sizeof payloads[0]; k++) {
		pong_with_payload(buf, sizeof buf, payloads[k]);
		expect_pong(buf, PPCP_ERR_BAD_MESSAGE);
	}
	expect_pong("{\"v\":1,\"t\":\"PING\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_PONG_P "}}",
		    PPCP_ERR_BAD_MESSAGE);
	expect_pong("{\"v\":2,\"t\":\"PONG\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_PONG_P "}}",
		    PPCP_ERR_BAD_MSG_VERSION);
	expect_pong("{\"v\":1,\"t\":\"PONG\",\"i\":\"a b\",\"s\":5,\"p\":{" GOOD_PONG_P "}}",
		    PPCP_ERR_BAD_MESSAGE);
	expect_pong("{\"v\":1,\"t\":\"PONG\",\"i\":\"1\",\"s\":5,\"p\":{" GOOD_PONG_P
		    ",\"server_id\":\"t\"}}",
		    PPCP_ERR_BAD_MESSAGE);
	memset(buf, ' ', sizeof buf);
	assert_int_equal(ppcp_pong_decode((const uint8_t *)buf, PPCP_PING_MAX + 1, NULL),
			 PPCP_ERR_INVAL);
	{
		ppcp_pong out;

		assert_int_equal(ppcp_pong_decode((const uint8_t *)buf, PPCP_PING_MAX + 1, &out),
				 PPCP_ERR_TOO_BIG);
	}
}

static void test_pong_decode_rejects_every_truncation(void **state)
{
	uint8_t buf[PPCP_PING_MAX];
	ppcp_pong in = make_pong("1b2c3d4e", "srv-01", "node-01", 9000, PPCP_EXT_ALL, 1);
	ppcp_pong out;
	size_t len;

	(void)state;
	assert_int_equal(ppcp_pong_encode(&in, buf, sizeof buf, &len), 0);
	for (size_t n = 0; n < len; n++) {
		uint8_t *cut = malloc(n ? n : 1);
		int r;

		assert_non_null(cut);
		memcpy(cut, buf, n);
		r = ppcp_pong_decode(cut, n, &out);
		free(cut);
		if (r != PPCP_ERR_BAD_MESSAGE)
			fail_msg("truncated at %zu: got %s", n, ppcp_err_name(r));
	}
}

/* ---- no amplification --------------------------------------------------- */

/* The smallest PING ppcp_ping_encode makes is PPCP_PING_MIN bytes.  The
 * largest PONG for realistic fields (64-character ids, every capability,
 * the longest port and timestamp) must fit in it, so a server that answers
 * with cap = PING size always can. */
static void test_pong_never_larger_than_the_smallest_ping(void **state)
{
	/* Message ids that JSON escapes cost two bytes a character: also test
	 * the worst id a PING may carry (32 '"' then 32 '\\'). */
	char worst[PPCP_ID_MAX + 1];
	const char *const ids[] = {ID64, worst};
	uint8_t ping[PPCP_PING_MAX], pong[PPCP_PING_MAX];
	size_t ping_len, pong_len;

	(void)state;
	memset(worst, '"', 32);
	memset(worst + 32, '\\', 32);
	worst[64] = '\0';
	for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
		ppcp_ping pi = make_ping(ids[k], "a", "b", "1", "", 0);
		ppcp_ping got;
		ppcp_pong po;

		assert_int_equal(ppcp_ping_encode(&pi, ping, sizeof ping, &ping_len), 0);
		assert_int_equal(ping_len, PPCP_PING_MIN);

		/* The server's side: decode, decide, answer within the PING's size. */
		assert_int_equal(ppcp_ping_decode(ping, ping_len, &got), 0);
		assert_int_equal(ppcp_ping_wants(&got, ID64), 1);
		po = make_pong(got.id, ID64, ID64, 65535, PPCP_EXT_ALL, INT64_MIN);
		assert_int_equal(ppcp_pong_encode(&po, pong, ping_len, &pong_len), 0);
		assert_true(pong_len <= ping_len);
		print_message("id %zu: PING %zu bytes, largest PONG %zu bytes\n", k, ping_len,
			      pong_len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_round_trips_every_field),
		cmocka_unit_test(test_ping_encoding_is_the_canonical_form_of_the_spec),
		cmocka_unit_test(test_ping_size_is_512_for_shortest_and_longest_fields),
		cmocka_unit_test(test_ping_padding_is_minimal_across_the_512_boundary),
		cmocka_unit_test(test_ping_encode_refuses_bad_fields_and_small_buffers),
		cmocka_unit_test(test_ping_target_selects_the_one_server),
		cmocka_unit_test(test_ping_decode_rejects_every_truncation),
		cmocka_unit_test(test_ping_decode_survives_every_bit_flip),
		cmocka_unit_test(test_ping_decode_rejects_invalid_utf8_and_nul),
		cmocka_unit_test(test_ping_decode_rejects_duplicate_keys),
		cmocka_unit_test(test_ping_decode_limits_nesting_to_16),
		cmocka_unit_test(test_ping_decode_rejects_wrong_types_and_missing_members),
		cmocka_unit_test(test_ping_decode_reports_other_versions),
		cmocka_unit_test(test_ping_decode_refuses_more_than_1024_bytes_before_parsing),
		cmocka_unit_test(test_ping_decode_rejects_bad_identifiers),
		cmocka_unit_test(test_pong_round_trips_every_capability_set),
		cmocka_unit_test(test_pong_encoding_is_the_canonical_form_of_the_spec),
		cmocka_unit_test(test_pong_encode_refuses_when_cap_is_smaller_than_needed),
		cmocka_unit_test(test_pong_encode_refuses_bad_fields),
		cmocka_unit_test(test_pong_decode_ignores_unknown_capabilities),
		cmocka_unit_test(test_pong_decode_rejects_malformed_payloads),
		cmocka_unit_test(test_pong_decode_rejects_every_truncation),
		cmocka_unit_test(test_pong_never_larger_than_the_smallest_ping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
