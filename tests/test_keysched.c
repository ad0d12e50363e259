/*
 * test_keysched.c - the key schedule (src/keysched.c) and the record
 * protection it feeds, against the independent vectors of
 * tests/vectors/handshake.json (written by tests/vectors/gen_vectors.py with
 * Python's cryptography package, never by libppcp).
 *
 * The vector file is read from $PPCP_VECTORS_DIR; a missing or unreadable
 * file fails the whole group, it never skips.  Every comparison goes through
 * check_bytes(), which prints both values in hex on a mismatch and counts
 * the values checked; the count is printed at the end.
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

static json_t *g_vec;	   /* the parsed handshake.json */
static unsigned g_checked; /* values compared against the vectors */

/* ---- helpers ------------------------------------------------------------ */

static void print_hex(const char *tag, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %-6s (%zu bytes) ", tag, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x", p[i]);
	fputc('\n', stderr);
}

/* Compare and count; on a mismatch print both values in hex and fail. */
static void check_bytes(const char *what, const uint8_t *got, size_t got_len, const uint8_t *want,
			size_t want_len)
{
	g_checked++;
	if (got_len == want_len && memcmp(got, want, got_len) == 0)
		return;
	fprintf(stderr, "MISMATCH: %s\n", what);
	print_hex("got", got, got_len);
	print_hex("want", want, want_len);
	fail_msg("%s differs from the vector", what);
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Member `name` of obj as a hex string decoded into a new buffer
 * (free() it).  Fails the test if absent or not hex. */
static uint8_t *hex_member(const json_t *obj, const char *name, size_t *len)
{
	const json_t *v = json_object_get(obj, name);
	const char *s;
	size_t n;
	uint8_t *out;

	if (!json_is_string(v))
		fail_msg("vector member \"%s\" missing or not a string", name);
	s = json_string_value(v);
	n = strlen(s);
	if (n % 2 != 0)
		fail_msg("vector member \"%s\": odd hex length", name);
	out = malloc(n / 2 + 1);
	assert_non_null(out);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			fail_msg("vector member \"%s\": not hex", name);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

/* Member `name` of obj, which must decode to exactly len bytes, into out. */
static void hex_fixed(const json_t *obj, const char *name, uint8_t *out, size_t len)
{
	size_t n;
	uint8_t *b = hex_member(obj, name, &n);

	if (n != len) {
		free(b);
		fail_msg("vector member \"%s\" is %zu bytes, expected %zu", name, n, len);
	}
	memcpy(out, b, len);
	free(b);
}

static const json_t *section(const char *name)
{
	const json_t *s = json_object_get(g_vec, name);

	if (s == NULL)
		fail_msg("handshake.json has no \"%s\" section", name);
	return s;
}

/* Compare got[len] with the hex member `name` of obj; `what` names the
 * value in a mismatch report (NULL: the member's name). */
static void check_member_as(const json_t *obj, const char *name, const char *what,
			    const uint8_t *got, size_t len)
{
	size_t n;
	uint8_t *want = hex_member(obj, name, &n);

	check_bytes(what != NULL ? what : name, got, len, want, n);
	free(want);
}

static void check_member(const json_t *obj, const char *name, const uint8_t *got, size_t len)
{
	check_member_as(obj, name, NULL, got, len);
}

/* RFC 4648 base64 with padding, to compare the proofs inside the JSON. */
static void base64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* The fixed inputs and the hellos, as the schedule consumes them. */
struct hs_inputs {
	uint8_t psk[64];
	size_t psk_len;
	uint8_t d_c[32], d_s[32];
	uint8_t x_c[PPCP_POINT_LEN], x_s[PPCP_POINT_LEN];
	uint8_t z[32];
	uint8_t ch[PPCP_CLIENT_HELLO_LEN], sh[PPCP_SERVER_HELLO_LEN];
};

static void load_inputs(struct hs_inputs *in)
{
	const json_t *inputs = section("inputs"), *hello = section("hello");
	uint8_t *psk = hex_member(inputs, "psk", &in->psk_len);

	assert_in_range(in->psk_len, PPCP_PSK_MIN, PPCP_PSK_MAX);
	memcpy(in->psk, psk, in->psk_len);
	free(psk);
	hex_fixed(inputs, "d_c", in->d_c, 32);
	hex_fixed(inputs, "d_s", in->d_s, 32);
	hex_fixed(hello, "X_c", in->x_c, sizeof(in->x_c));
	hex_fixed(hello, "X_s", in->x_s, sizeof(in->x_s));
	hex_fixed(section("schedule"), "Z", in->z, 32);
	hex_fixed(hello, "client_hello", in->ch, sizeof(in->ch));
	hex_fixed(hello, "server_hello", in->sh, sizeof(in->sh));
}

/* Compare every field of a full schedule with the "schedule" section. */
static void check_schedule(const ppcp__keys *k, int finished)
{
	const json_t *s = section("schedule");

	check_member(s, "HS", k->hs, 32);
	check_member(s, "TH1", k->th1, 32);
	check_member(s, "c_hs", k->c_hs, 32);
	check_member(s, "s_hs", k->s_hs, 32);
	check_member(s, "s_confirm", k->s_confirm, 32);
	check_member(s, "MS", k->ms, 32);
	if (!finished)
		return;
	check_member(s, "TH2", k->th2, 32);
	check_member(s, "c_confirm", k->c_confirm, 32);
	check_member(s, "TH3", k->th3, 32);
	check_member(s, "s_ack", k->s_ack, 32);
	check_member(s, "c_ap", k->c_ap, 32);
	check_member(s, "s_ap", k->s_ap, 32);
}

/* ---- group setup: the vector file must be there ------------------------- */

static int load_vectors(void **state)
{
	const char *dir = getenv("PPCP_VECTORS_DIR");
	char path[4096];
	json_error_t err;

	(void)state;
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr, "FAIL: PPCP_VECTORS_DIR is not set (run through ctest, or set it "
				"to tests/vectors)\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/handshake.json", dir);
	g_vec = json_load_file(path, 0, &err);
	if (g_vec == NULL) {
		fprintf(stderr,
			"FAIL: cannot load %s: %s (line %d); regenerate it with "
			"tests/vectors/gen_vectors.py\n",
			path, err.text, err.line);
		return -1;
	}
	return 0;
}

static int free_vectors(void **state)
{
	(void)state;
	json_decref(g_vec);
	g_vec = NULL;
	printf("keysched: %u values checked against handshake.json\n", g_checked);
	return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_expand_label_matches_every_example(void **state)
{
	const json_t *ex = json_object_get(g_vec, "expand_label"), *e;
	size_t i;

	(void)state;
	assert_true(json_is_array(ex));
	assert_true(json_array_size(ex) >= 5);
	json_array_foreach(ex, i, e)
	{
		uint8_t S[32], out[255 * 32];
		size_t ctxlen, infolen, wantlen;
		uint8_t *ctx = hex_member(e, "ctx", &ctxlen);
		uint8_t *info = hex_member(e, "info", &infolen);
		uint8_t *want = hex_member(e, "out", &wantlen);
		const char *label = json_string_value(json_object_get(e, "label"));
		json_int_t L = json_integer_value(json_object_get(e, "L"));
		char what[96];

		assert_non_null(label);
		assert_int_equal((size_t)L, wantlen);
		hex_fixed(e, "secret", S, sizeof(S));

		/* The info bytes of the vector, fed to plain HKDF-Expand, give
		 * the same output: the vector is self-consistent. */
		assert_int_equal(ppcp__hkdf_expand(out, wantlen, S, 32, info, infolen), 0);
		snprintf(what, sizeof(what), "HKDF-Expand(info of \"%s\")", label);
		check_bytes(what, out, wantlen, want, wantlen);

		/* And ExpandLabel builds that info from the label and ctx. */
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(
			ppcp__expand_label(out, wantlen, S, label, ctxlen ? ctx : NULL, ctxlen), 0);
		snprintf(what, sizeof(what), "ExpandLabel(\"%s\", L=%zu)", label, wantlen);
		check_bytes(what, out, wantlen, want, wantlen);
		free(ctx);
		free(info);
		free(want);
	}
}

static void test_expand_label_refuses_unencodable_lengths(void **state)
{
	uint8_t S[32] = {1}, out[32], ctx[256] = {0};
	char label[251];

	(void)state;
	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	/* 6 + 250 does not fit in the u8 length byte. */
	assert_int_equal(ppcp__expand_label(out, 32, S, label, NULL, 0), PPCP_ERR_INVAL);
	/* 6 + 249 = 255 does. */
	label[249] = '\0';
	assert_int_equal(ppcp__expand_label(out, 32, S, label, NULL, 0), 0);
	assert_int_equal(ppcp__expand_label(out, 32, S, "x", ctx, 256), PPCP_ERR_INVAL);
	assert_int_equal(ppcp__expand_label(out, 32, S, "x", ctx, 255), 0);
	assert_int_equal(ppcp__expand_label(out, 255 * 32 + 1, S, "x", NULL, 0), PPCP_ERR_INVAL);
}

static void test_p256_scalars_give_the_vector_keys_and_z(void **state)
{
	struct hs_inputs in;
	ppcp__p256 kc, ks;
	uint8_t z1[32], z2[32];

	(void)state;
	memset(&kc, 0, sizeof(kc));
	memset(&ks, 0, sizeof(ks));
	load_inputs(&in);
	assert_int_equal(ppcp__p256_from_private(&kc, in.d_c), 0);
	assert_int_equal(ppcp__p256_from_private(&ks, in.d_s), 0);
	check_bytes("X_c from d_c", kc.pub, sizeof(kc.pub), in.x_c, sizeof(in.x_c));
	check_bytes("X_s from d_s", ks.pub, sizeof(ks.pub), in.x_s, sizeof(in.x_s));
	assert_int_equal(ppcp__p256_ecdh(z1, &kc, in.x_s, sizeof(in.x_s)), 0);
	assert_int_equal(ppcp__p256_ecdh(z2, &ks, in.x_c, sizeof(in.x_c)), 0);
	check_bytes("Z (client side)", z1, 32, in.z, 32);
	check_bytes("Z (server side)", z2, 32, in.z, 32);
	ppcp__p256_free(&kc);
	ppcp__p256_free(&ks);
}

static void test_hellos_are_laid_out_as_the_vectors_say(void **state)
{
	const json_t *hello = section("hello"), *inputs = section("inputs");
	struct hs_inputs in;
	uint8_t sid[32], frame[4 + PPCP_SERVER_HELLO_LEN];
	const char *server_id = json_string_value(json_object_get(inputs, "server_id"));
	ppcp__iov v;

	(void)state;
	load_inputs(&in);
	assert_non_null(server_id);
	/* sid_hash = H(server_id), and it sits at offset 106 of SH. */
	v.p = server_id;
	v.n = strlen(server_id);
	assert_int_equal(ppcp__sha256(sid, &v, 1), 0);
	check_member(hello, "sid_hash", sid, 32);
	check_bytes("SH[106..138] (sid_hash)", in.sh + 106, 32, sid, 32);
	/* The keys sit at offset 9 of each hello. */
	check_bytes("CH[9..74] (X_c)", in.ch + 9, PPCP_POINT_LEN, in.x_c, PPCP_POINT_LEN);
	check_bytes("SH[9..74] (X_s)", in.sh + 9, PPCP_POINT_LEN, in.x_s, PPCP_POINT_LEN);
	/* Frames are u32(len) ‖ body. */
	ppcp__store_be32(frame, PPCP_CLIENT_HELLO_LEN);
	memcpy(frame + 4, in.ch, PPCP_CLIENT_HELLO_LEN);
	check_member(hello, "client_hello_frame", frame, 4 + PPCP_CLIENT_HELLO_LEN);
	ppcp__store_be32(frame, PPCP_SERVER_HELLO_LEN);
	memcpy(frame + 4, in.sh, PPCP_SERVER_HELLO_LEN);
	check_member(hello, "server_hello_frame", frame, 4 + PPCP_SERVER_HELLO_LEN);
}

/* The intermediates that ppcp__keys does not keep, recomputed step by step
 * from the primitives and ExpandLabel. */
static void test_schedule_intermediates_match(void **state)
{
	static const uint8_t zero32[32];
	const json_t *s = section("schedule");
	struct hs_inputs in;
	uint8_t e[32], es[32], salt[32], hs[32], c_hs[32], s_hs[32], fin[32];
	ppcp__iov empty = {"", 0};

	(void)state;
	load_inputs(&in);
	assert_int_equal(ppcp__sha256(e, &empty, 1), 0);
	check_member(s, "E", e, 32);
	assert_int_equal(ppcp__hkdf_extract(es, zero32, 32, in.psk, in.psk_len), 0);
	check_member(s, "ES", es, 32);
	assert_int_equal(ppcp__expand_label(salt, 32, es, "derived", e, 32), 0);
	check_member(s, "derived_es", salt, 32);
	assert_int_equal(ppcp__hkdf_extract(hs, salt, 32, in.z, 32), 0);
	check_member(s, "HS", hs, 32);
	assert_int_equal(ppcp__expand_label(salt, 32, hs, "derived", e, 32), 0);
	check_member(s, "derived_hs", salt, 32);

	hex_fixed(s, "c_hs", c_hs, 32);
	hex_fixed(s, "s_hs", s_hs, 32);
	assert_int_equal(ppcp__expand_label(fin, 32, s_hs, "finished", NULL, 0), 0);
	check_member(s, "finished_s", fin, 32);
	assert_int_equal(ppcp__expand_label(fin, 32, c_hs, "finished", NULL, 0), 0);
	check_member(s, "finished_c", fin, 32);
	assert_int_equal(ppcp__expand_label(fin, 32, s_hs, "ack", NULL, 0), 0);
	check_member(s, "ack_key", fin, 32);
}

static void test_ks_handshake_and_finish_match_given_z(void **state)
{
	struct hs_inputs in;
	ppcp__keys k;

	(void)state;
	load_inputs(&in);
	memset(&k, 0, sizeof(k));
	assert_int_equal(ppcp__ks_handshake(&k, in.psk, in.psk_len, in.z, in.ch, in.sh), 0);
	check_schedule(&k, 0);
	/* The last 32 bytes of the vector's SERVER_HELLO are s_confirm. */
	check_bytes("SH[138..170] (s_confirm)", in.sh + 138, 32, k.s_confirm, 32);
	assert_int_equal(ppcp__ks_finish(&k, in.ch, in.sh), 0);
	check_schedule(&k, 1);
	ppcp_wipe(&k, sizeof(k));
}

/* PROTOCOL.md §3: HDR(type) ‖ pub_len ‖ X ‖ nonce. */
static void hello_prefix(uint8_t *out, uint8_t type, const uint8_t *x, const uint8_t *nonce)
{
	memcpy(out, "PPCP", 4);
	out[4] = 0x01; /* version */
	out[5] = type;
	out[6] = 0x01; /* suite */
	out[7] = 0x00; /* reserved */
	out[8] = PPCP_POINT_LEN;
	memcpy(out + 9, x, PPCP_POINT_LEN);
	memcpy(out + 74, nonce, PPCP_NONCE_LEN);
}

/* The whole chain from the fixed inputs alone: the key pairs from the
 * scalars, both hellos, ECDH on each side, the first half of the schedule,
 * the SERVER_HELLO completed with our s_confirm, the second half. */
static void test_whole_chain_from_scalars(void **state)
{
	const json_t *inputs = section("inputs");
	const char *server_id = json_string_value(json_object_get(inputs, "server_id"));
	struct hs_inputs in;
	ppcp__p256 kc, ks;
	uint8_t nonce_c[32], nonce_s[32], zc[32], zs[32];
	uint8_t ch[PPCP_CLIENT_HELLO_LEN], sh[PPCP_SERVER_HELLO_LEN];
	ppcp__keys client, server;
	ppcp__iov v;

	(void)state;
	memset(&kc, 0, sizeof(kc));
	memset(&ks, 0, sizeof(ks));
	load_inputs(&in);
	assert_non_null(server_id);
	hex_fixed(inputs, "nonce_c", nonce_c, 32);
	hex_fixed(inputs, "nonce_s", nonce_s, 32);
	assert_int_equal(ppcp__p256_from_private(&kc, in.d_c), 0);
	assert_int_equal(ppcp__p256_from_private(&ks, in.d_s), 0);

	hello_prefix(ch, 0x01, kc.pub, nonce_c);
	check_bytes("CLIENT_HELLO built from d_c, nonce_c", ch, sizeof(ch), in.ch, sizeof(in.ch));
	assert_int_equal(ppcp__p256_ecdh(zs, &ks, ch + 9, PPCP_POINT_LEN), 0);

	/* Server: SH without s_confirm, then s_confirm from the schedule. */
	hello_prefix(sh, 0x02, ks.pub, nonce_s);
	v.p = server_id;
	v.n = strlen(server_id);
	assert_int_equal(ppcp__sha256(sh + 106, &v, 1), 0);
	assert_int_equal(ppcp__ks_handshake(&server, in.psk, in.psk_len, zs, ch, sh), 0);
	memcpy(sh + 138, server.s_confirm, 32);
	check_bytes("SERVER_HELLO built from d_s, nonce_s, server_id", sh, sizeof(sh), in.sh,
		    sizeof(in.sh));
	assert_int_equal(ppcp__ks_finish(&server, ch, sh), 0);
	check_schedule(&server, 1);

	/* Client: its own Z from the received SH. */
	assert_int_equal(ppcp__p256_ecdh(zc, &kc, sh + 9, PPCP_POINT_LEN), 0);
	check_bytes("Z (client side, from the hello)", zc, 32, zs, 32);
	assert_int_equal(ppcp__ks_handshake(&client, in.psk, in.psk_len, zc, ch, sh), 0);
	assert_int_equal(ppcp__ks_finish(&client, ch, sh), 0);
	check_schedule(&client, 1);
	check_bytes("client schedule vs server schedule", (const uint8_t *)&client, sizeof(client),
		    (const uint8_t *)&server, sizeof(server));

	ppcp_wipe(&client, sizeof(client));
	ppcp_wipe(&server, sizeof(server));
	ppcp__p256_free(&kc);
	ppcp__p256_free(&ks);
}

static void test_schedule_depends_on_psk_and_transcript(void **state)
{
	struct hs_inputs in;
	ppcp__keys a, b;
	uint8_t sh[PPCP_SERVER_HELLO_LEN];

	(void)state;
	load_inputs(&in);
	assert_int_equal(ppcp__ks_handshake(&a, in.psk, in.psk_len, in.z, in.ch, in.sh), 0);
	in.psk[in.psk_len - 1] ^= 1;
	assert_int_equal(ppcp__ks_handshake(&b, in.psk, in.psk_len, in.z, in.ch, in.sh), 0);
	assert_memory_not_equal(a.s_confirm, b.s_confirm, 32);
	in.psk[in.psk_len - 1] ^= 1;
	/* One bit of nonce_c changes TH1 and so s_confirm. */
	in.ch[PPCP_CLIENT_HELLO_LEN - 1] ^= 1;
	assert_int_equal(ppcp__ks_handshake(&b, in.psk, in.psk_len, in.z, in.ch, in.sh), 0);
	assert_memory_not_equal(a.s_confirm, b.s_confirm, 32);
	in.ch[PPCP_CLIENT_HELLO_LEN - 1] ^= 1;
	/* s_confirm is not part of TH1, but it is part of TH2. */
	memcpy(sh, in.sh, sizeof(sh));
	sh[PPCP_SERVER_HELLO_LEN - 1] ^= 1;
	assert_int_equal(ppcp__ks_handshake(&b, in.psk, in.psk_len, in.z, in.ch, sh), 0);
	assert_memory_equal(a.s_confirm, b.s_confirm, 32);
	assert_int_equal(ppcp__ks_finish(&a, in.ch, in.sh), 0);
	assert_int_equal(ppcp__ks_finish(&b, in.ch, sh), 0);
	assert_memory_not_equal(a.c_confirm, b.c_confirm, 32);
	ppcp_wipe(&a, sizeof(a));
	ppcp_wipe(&b, sizeof(b));
}

static void test_ks_traffic_matches_every_secret(void **state)
{
	const json_t *t = section("traffic"), *e;
	const char *name;
	size_t n = 0;

	(void)state;
	json_object_foreach((json_t *)t, name, e)
	{
		uint8_t secret[32], key[32], iv[12];
		char what[64];

		hex_fixed(e, "secret", secret, 32);
		assert_int_equal(ppcp__ks_traffic(key, iv, secret), 0);
		snprintf(what, sizeof(what), "key(%s)", name);
		check_member_as(e, "key", what, key, 32);
		snprintf(what, sizeof(what), "iv(%s)", name);
		check_member_as(e, "iv", what, iv, 12);
		n++;
	}
	/* c_hs, s_hs, c_ap, s_ap and the updated c_ap at least. */
	assert_true(n >= 5);
}

static void test_ks_update_matches_and_may_work_in_place(void **state)
{
	const json_t *u = section("key_update");
	uint8_t s[32], next[32], key[32], iv[12];

	(void)state;
	hex_fixed(u, "secret", s, 32);
	check_member(section("schedule"), "c_ap", s, 32);
	assert_int_equal(ppcp__ks_update(next, s), 0);
	check_member(u, "next", next, 32);
	assert_int_equal(ppcp__ks_traffic(key, iv, next), 0);
	check_member(u, "next_key", key, 32);
	check_member(u, "next_iv", iv, 12);
	/* next may alias secret. */
	assert_int_equal(ppcp__ks_update(s, s), 0);
	check_bytes("in-place update", s, 32, next, 32);
}

/* Look up the traffic secret a record was sealed under, derive its key and
 * IV with ppcp__ks_traffic. */
static void record_keys(const json_t *rec, uint8_t key[32], uint8_t iv[12])
{
	const char *name = json_string_value(json_object_get(rec, "secret"));
	const json_t *t;
	uint8_t secret[32];

	assert_non_null(name);
	t = json_object_get(section("traffic"), name);
	if (t == NULL)
		fail_msg("record secret \"%s\" not in the traffic section", name);
	hex_fixed(t, "secret", secret, 32);
	assert_int_equal(ppcp__ks_traffic(key, iv, secret), 0);
	check_member(rec, "key", key, 32);
	check_member(rec, "iv", iv, 12);
}

static void test_records_open_and_reseal_byte_identically(void **state)
{
	const json_t *recs = json_object_get(g_vec, "records"), *r;
	const json_t *s = section("schedule");
	size_t i;

	(void)state;
	assert_true(json_is_array(recs));
	assert_int_equal(json_array_size(recs), 6);
	json_array_foreach(recs, i, r)
	{
		const char *name = json_string_value(json_object_get(r, "name"));
		const char *text = json_string_value(json_object_get(r, "plaintext"));
		json_int_t seq = json_integer_value(json_object_get(r, "seq"));
		uint8_t key[32], iv[12], nonce[12], aad[16], seqbe[8];
		size_t flen, ptlen, clen;
		uint8_t *frame = hex_member(r, "frame", &flen);
		uint8_t *pt, *out;
		ppcp__aead *a = NULL;
		char what[96];

		assert_non_null(name);
		assert_non_null(text);
		record_keys(r, key, iv);

		/* PROTOCOL.md §5: nonce = iv XOR (0^4 ‖ u64(seq)). */
		ppcp__store_be64(seqbe, (uint64_t)seq);
		memcpy(nonce, iv, 12);
		for (int j = 0; j < 8; j++)
			nonce[4 + j] ^= seqbe[j];
		check_member(r, "nonce", nonce, 12);

		/* Frame: u32(len) ‖ nonce ‖ ct ‖ tag; AAD = u32(len) ‖ nonce. */
		assert_true(flen >= 4 + 12 + 1 + 16);
		assert_int_equal(ppcp__load_be32(frame), flen - 4);
		snprintf(what, sizeof(what), "%s #%zu: nonce on the wire", name, i);
		check_bytes(what, frame + 4, 12, nonce, 12);
		ppcp__store_be32(aad, (uint32_t)(flen - 4));
		memcpy(aad + 4, nonce, 12);
		check_member(r, "aad", aad, 16);

		clen = flen - 16; /* ciphertext ‖ tag */
		ptlen = clen - 16;
		pt = malloc(ptlen);
		out = malloc(clen);
		assert_non_null(pt);
		assert_non_null(out);
		assert_int_equal(ppcp__aead_new(&a, key, 32), 0);
		assert_int_equal(ppcp__aead_open(a, nonce, 12, aad, 16, frame + 16, clen, pt), 0);
		snprintf(what, sizeof(what), "%s #%zu: decrypted plaintext", name, i);
		check_bytes(what, pt, ptlen, (const uint8_t *)text, strlen(text));
		check_member(r, "plaintext_hex", pt, ptlen);

		assert_int_equal(ppcp__aead_seal(a, nonce, 12, aad, 16, pt, ptlen, out), 0);
		snprintf(what, sizeof(what), "%s #%zu: resealed ciphertext and tag", name, i);
		check_bytes(what, out, clen, frame + 16, clen);

		/* One flipped bit of the tag: refused, and the output wiped. */
		frame[flen - 1] ^= 0x80;
		memset(pt, 0x5a, ptlen);
		assert_int_equal(ppcp__aead_open(a, nonce, 12, aad, 16, frame + 16, clen, pt),
				 PPCP_ERR_DECRYPT);
		for (size_t j = 0; j < ptlen; j++)
			assert_int_equal(pt[j], 0);

		/* The proofs inside AUTH and AUTH_OK are base64 of the schedule's
		 * c_confirm and s_ack. */
		if (strcmp(name, "AUTH") == 0 || strcmp(name, "AUTH_OK") == 0) {
			json_t *msg = json_loads(text, 0, NULL);
			const char *proof;
			uint8_t mac[32];
			char b64[45];

			assert_non_null(msg);
			proof = json_string_value(
				json_object_get(json_object_get(msg, "p"), "proof"));
			assert_non_null(proof);
			hex_fixed(s, strcmp(name, "AUTH") == 0 ? "c_confirm" : "s_ack", mac, 32);
			base64_encode(mac, 32, b64);
			snprintf(what, sizeof(what), "%s proof", name);
			check_bytes(what, (const uint8_t *)proof, strlen(proof),
				    (const uint8_t *)b64, strlen(b64));
			json_decref(msg);
		}

		ppcp__aead_free(a);
		free(pt);
		free(out);
		free(frame);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_label_matches_every_example),
		cmocka_unit_test(test_expand_label_refuses_unencodable_lengths),
		cmocka_unit_test(test_p256_scalars_give_the_vector_keys_and_z),
		cmocka_unit_test(test_hellos_are_laid_out_as_the_vectors_say),
		cmocka_unit_test(test_schedule_intermediates_match),
		cmocka_unit_test(test_ks_handshake_and_finish_match_given_z),
		cmocka_unit_test(test_whole_chain_from_scalars),
		cmocka_unit_test(test_schedule_depends_on_psk_and_transcript),
		cmocka_unit_test(test_ks_traffic_matches_every_secret),
		cmocka_unit_test(test_ks_update_matches_and_may_work_in_place),
		cmocka_unit_test(test_records_open_and_reseal_byte_identically),
	};

	return cmocka_run_group_tests_name("keysched", tests, load_vectors, free_vectors);
}
