/*
 * test_crypto.c - the OpenSSL wrapper (src/crypto.c) against Project
 * Wycheproof and a few fixed answers (FIPS 180-2, SEC 2).
 *
 * The Wycheproof files are read from $PPCP_VECTORS_DIR/wycheproof/ (see
 * tests/vectors/wycheproof/README.md).  A missing or unreadable file fails
 * the test, and every vector test asserts how many vectors it ran, so a
 * suite that reads nothing cannot pass.
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

/* ---- helpers ----------------------------------------------------------- */

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
	printf("    %-6s (%zu) ", label, n);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

/* Fail with both values in hex when got[n] != want[n]. */
static void expect_bytes(const char *what, long tcid, const uint8_t *got, size_t glen,
			 const uint8_t *want, size_t wlen)
{
	if (glen == wlen && (glen == 0 || memcmp(got, want, glen) == 0))
		return;
	printf("  mismatch: %s, tcId %ld\n", what, tcid);
	print_hex("got", got, glen);
	print_hex("want", want, wlen);
	fail_msg("%s: tcId %ld does not match", what, tcid);
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Load $PPCP_VECTORS_DIR/wycheproof/<name>; any problem fails the test. */
static json_t *load_vectors(const char *name)
{
	const char *dir = getenv("PPCP_VECTORS_DIR");
	char path[4096];
	json_error_t err;
	json_t *root;

	if (dir == NULL || dir[0] == '\0')
		fail_msg("PPCP_VECTORS_DIR is not set: cannot find %s", name);
	if (snprintf(path, sizeof(path), "%s/wycheproof/%s", dir, name) >= (int)sizeof(path))
		fail_msg("vector path too long");
	root = json_load_file(path, 0, &err);
	if (root == NULL)
		fail_msg("cannot read vector file %s: %s (line %d)", path, err.text, err.line);
	if (!json_is_array(json_object_get(root, "testGroups")))
		fail_msg("%s: no testGroups array", path);
	return root;
}

static size_t ngroups(const json_t *root)
{
	return json_array_size(json_object_get(root, "testGroups"));
}

static const json_t *group_at(const json_t *root, size_t i)
{
	return json_array_get(json_object_get(root, "testGroups"), i);
}

static size_t ntests(const json_t *g)
{
	const json_t *tests = json_object_get(g, "tests");

	if (!json_is_array(tests))
		fail_msg("test group without a tests array");
	return json_array_size(tests);
}

static const json_t *test_at(const json_t *g, size_t i)
{
	return json_array_get(json_object_get(g, "tests"), i);
}

static const char *get_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL)
		fail_msg("vector field \"%s\" missing or not a string", key);
	return s;
}

static long get_int(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		fail_msg("vector field \"%s\" missing or not an integer", key);
	return (long)json_integer_value(v);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode the hex field obj[key] into a malloc'd buffer (never NULL, so an
 * empty field still gives a valid pointer).  The caller frees it. */
static uint8_t *get_hex(const json_t *obj, const char *key, size_t *len)
{
	const char *s = get_str(obj, key);
	size_t n = strlen(s);
	uint8_t *out;

	if (n % 2 != 0)
		fail_msg("vector field \"%s\" has odd hex length", key);
	out = malloc(n / 2 + 1);
	assert_non_null(out);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			fail_msg("vector field \"%s\" is not hex", key);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

enum result {
	RES_VALID,
	RES_ACCEPTABLE,
	RES_INVALID
};

static enum result get_result(const json_t *t)
{
	const char *r = get_str(t, "result");

	if (strcmp(r, "valid") == 0)
		return RES_VALID;
	if (strcmp(r, "acceptable") == 0)
		return RES_ACCEPTABLE;
	if (strcmp(r, "invalid") == 0)
		return RES_INVALID;
	fail_msg("unknown result \"%s\"", r);
	return RES_INVALID;
}

/* 32-byte big-endian arithmetic, enough to build test points. */
static int be32_add(uint8_t r[32], const uint8_t a[32], const uint8_t b[32])
{
	unsigned carry = 0;

	for (int i = 31; i >= 0; i--) {
		unsigned s = (unsigned)a[i] + b[i] + carry;

		r[i] = (uint8_t)s;
		carry = s >> 8;
	}
	return (int)carry;
}

static void be32_sub(uint8_t r[32], const uint8_t a[32], const uint8_t b[32])
{
	int borrow = 0;

	for (int i = 31; i >= 0; i--) {
		int d = (int)a[i] - b[i] - borrow;

		borrow = d < 0;
		r[i] = (uint8_t)(d + (borrow ? 256 : 0));
	}
}

/* SEC 2 v2 §2.4.2, secp256r1: p, n and G uncompressed. */
/* clang-format off */
static const uint8_t P256_P[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
static const uint8_t P256_N[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};
static const uint8_t P256_G[65] = {
	0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42,
	0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
	0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33,
	0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
	0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f,
	0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
	0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e,
	0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
	0xf5,
};
/* clang-format on */

/* ---- ecdh_secp256r1_ecpoint_test.json ---------------------------------- */

#define ECPOINT_FILE "ecdh_secp256r1_ecpoint_test.json"

/* Wycheproof's private is a big-endian integer of 1 to 33 bytes (a leading
 * 00 is a sign byte): parse it as an integer and left-pad to 32 bytes. */
static void get_scalar(const json_t *t, uint8_t d[32])
{
	size_t n, off = 0;
	uint8_t *raw = get_hex(t, "private", &n);

	while (off < n && raw[off] == 0)
		off++;
	if (n - off > 32)
		fail_msg("tcId %ld: private scalar longer than 32 bytes", get_int(t, "tcId"));
	memset(d, 0, 32);
	memcpy(d + 32 - (n - off), raw + off, n - off);
	free(raw);
}

/* The point must be refused by our check, and by ECDH before any
 * derivation: the error is BAD_POINT (not CRYPTO) and z comes back wiped. */
static void expect_point_rejected(const ppcp__p256 *kp, const uint8_t *pt, size_t len,
				  const char *what, long tcid)
{
	uint8_t z[32];
	int ret;

	ret = ppcp__p256_check_point(pt, len);
	if (ret != PPCP_ERR_BAD_POINT) {
		printf("  %s (tcId %ld, %zu bytes) not rejected by check_point: %d\n", what, tcid,
		       len, ret);
		fail();
	}
	memset(z, 0xa5, sizeof(z));
	ret = ppcp__p256_ecdh(z, kp, pt, len);
	if (ret != PPCP_ERR_BAD_POINT) {
		printf("  %s (tcId %ld, %zu bytes) not rejected by ecdh: %d\n", what, tcid, len,
		       ret);
		fail();
	}
	assert_true(all_zero(z, sizeof(z)));
}

/* A key pair that ECDH can use as "ours" when a test only feeds bad points. */
static void some_keypair(ppcp__p256 *kp)
{
	uint8_t d[32] = {0};

	d[31] = 7;
	assert_int_equal(ppcp__p256_from_private(kp, d), 0);
}

static void test_ecpoint_vectors_valid_accepted_with_shared_others_rejected(void **state)
{
	json_t *root = load_vectors(ECPOINT_FILE);
	size_t counts[3] = {0};

	(void)state;
	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);

		assert_string_equal(get_str(g, "curve"), "secp256r1");
		assert_string_equal(get_str(g, "encoding"), "ecpoint");
		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			long tcid = get_int(t, "tcId");
			enum result res = get_result(t);
			size_t plen, slen;
			uint8_t *pub = get_hex(t, "public", &plen);
			uint8_t *shared = get_hex(t, "shared", &slen);
			uint8_t d[32], z[32];
			ppcp__p256 kp = {0};

			get_scalar(t, d);
			assert_int_equal(ppcp__p256_from_private(&kp, d), 0);
			if (res == RES_VALID) {
				int ret = ppcp__p256_check_point(pub, plen);

				if (ret != 0) {
					print_hex("public", pub, plen);
					fail_msg("tcId %ld: valid point rejected (%d)", tcid, ret);
				}
				assert_int_equal(ppcp__p256_ecdh(z, &kp, pub, plen), 0);
				expect_bytes("ECDH Z", tcid, z, sizeof(z), shared, slen);
			} else {
				/* acceptable (a compressed point) and invalid alike:
				 * PPCP takes only 65-byte uncompressed points. */
				expect_point_rejected(&kp, pub, plen, get_str(t, "comment"), tcid);
			}
			counts[res]++;
			ppcp__p256_free(&kp);
			ppcp_wipe(d, sizeof(d));
			free(pub);
			free(shared);
		}
	}
	json_decref(root);
	printf("%s: %zu vectors ran: %zu valid accepted with Z == shared, %zu acceptable "
	       "(compressed) and %zu invalid rejected before ECDH\n",
	       ECPOINT_FILE, counts[0] + counts[1] + counts[2], counts[RES_VALID],
	       counts[RES_ACCEPTABLE], counts[RES_INVALID]);
	assert_int_equal(counts[RES_VALID], 330);
	assert_int_equal(counts[RES_ACCEPTABLE], 1);
	assert_int_equal(counts[RES_INVALID], 24);
}

/* The public point of the ecpoint vector tcId, which must be valid. */
static void ecpoint_vector(long want, uint8_t pt[65])
{
	json_t *root = load_vectors(ECPOINT_FILE);
	int found = 0;

	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);

		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			size_t n;
			uint8_t *pub;

			if (get_int(t, "tcId") != want)
				continue;
			assert_int_equal(get_result(t), RES_VALID);
			pub = get_hex(t, "public", &n);
			assert_int_equal(n, 65);
			memcpy(pt, pub, 65);
			free(pub);
			found = 1;
		}
	}
	json_decref(root);
	if (!found)
		fail_msg("%s: tcId %ld not found", ECPOINT_FILE, want);
	assert_int_equal(ppcp__p256_check_point(pt, 65), 0);
}

static void test_ecpoint_rejects_hybrid_encoding(void **state)
{
	uint8_t pt[65];
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	ecpoint_vector(1, pt);
	/* 06 = hybrid with even y, 07 = odd y; OpenSSL 3.0 imports the one
	 * whose parity matches, so test both. */
	pt[0] = 0x06;
	expect_point_rejected(&kp, pt, sizeof(pt), "hybrid 06", 1);
	pt[0] = 0x07;
	expect_point_rejected(&kp, pt, sizeof(pt), "hybrid 07", 1);
	/* Also the generator, whose y is odd, as 07 (the matching parity). */
	memcpy(pt, P256_G, sizeof(pt));
	assert_int_equal(P256_G[64] & 1, 1);
	pt[0] = 0x07;
	expect_point_rejected(&kp, pt, sizeof(pt), "hybrid 07 G", 0);
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_compressed_encoding_of_a_valid_point(void **state)
{
	uint8_t pt[65];
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	memcpy(pt, P256_G, sizeof(pt));
	pt[0] = 0x02 | (P256_G[64] & 1);
	expect_point_rejected(&kp, pt, 33, "compressed G", 0);
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_point_at_infinity(void **state)
{
	static const uint8_t inf[1] = {0x00};
	uint8_t zeros[65] = {0x04};
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	expect_point_rejected(&kp, inf, sizeof(inf), "00 (infinity)", 0);
	/* (0, 0) is not on the curve either: b != 0. */
	expect_point_rejected(&kp, zeros, sizeof(zeros), "04 || 0 || 0", 0);
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_trailing_byte_and_truncation(void **state)
{
	uint8_t pt[66];
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	ecpoint_vector(1, pt);
	pt[65] = 0x00;
	expect_point_rejected(&kp, pt, 66, "valid point + 1 byte", 1);
	expect_point_rejected(&kp, pt, 64, "first 64 bytes", 1);
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_every_length_but_65(void **state)
{
	static const size_t listed[] = {0, 1, 32, 33, 64, 66, 255};
	uint8_t buf[300];
	ppcp__p256 kp;
	size_t listed_seen = 0;

	(void)state;
	some_keypair(&kp);
	/* A valid point at the front, so only the length is wrong. */
	memset(buf, 0x5a, sizeof(buf));
	ecpoint_vector(1, buf);
	for (size_t len = 0; len < sizeof(buf); len++) {
		if (len == 65)
			continue;
		expect_point_rejected(&kp, buf, len, "wrong length", 1);
		for (size_t i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
			listed_seen += listed[i] == len;
	}
	assert_int_equal(listed_seen, sizeof(listed) / sizeof(listed[0]));
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_coordinate_plus_p(void **state)
{
	uint8_t pt[65], alt[65];
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	/* tcId 199 has x = 0: x + p still satisfies the curve equation mod p,
	 * so only the range check x < p can refuse it. */
	ecpoint_vector(199, pt);
	memcpy(alt, pt, sizeof(alt));
	assert_int_equal(be32_add(alt + 1, pt + 1, P256_P), 0);
	expect_point_rejected(&kp, alt, sizeof(alt), "x + p", 199);
	/* tcId 228 has y = 1: the same with y + p. */
	ecpoint_vector(228, pt);
	memcpy(alt, pt, sizeof(alt));
	assert_int_equal(be32_add(alt + 33, pt + 33, P256_P), 0);
	expect_point_rejected(&kp, alt, sizeof(alt), "y + p", 228);
	ppcp__p256_free(&kp);
}

static void test_ecpoint_rejects_every_single_bit_flip_of_a_valid_point(void **state)
{
	uint8_t pt[65];
	ppcp__p256 kp;

	(void)state;
	some_keypair(&kp);
	ecpoint_vector(1, pt);
	/* A flip in the prefix gives another encoding; a flip in X or Y keeps
	 * the other coordinate, and the only other y for a given x is p - y,
	 * never one bit away from y.  So every flip must be refused. */
	for (size_t bit = 0; bit < sizeof(pt) * 8; bit++) {
		pt[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
		expect_point_rejected(&kp, pt, sizeof(pt), "flipped bit", (long)bit);
		pt[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
	}
	assert_int_equal(ppcp__p256_check_point(pt, sizeof(pt)), 0);
	ppcp__p256_free(&kp);
}

/* ---- P-256 key pairs ---------------------------------------------------- */

static void test_p256_from_private_rejects_zero_and_order(void **state)
{
	uint8_t d[32];
	ppcp__p256 kp;

	(void)state;
	memset(d, 0, sizeof(d));
	memset(&kp, 0x5a, sizeof(kp));
	assert_int_equal(ppcp__p256_from_private(&kp, d), PPCP_ERR_INVAL);
	assert_null(kp.priv);
	ppcp__p256_free(&kp);

	memcpy(d, P256_N, sizeof(d));
	assert_int_equal(ppcp__p256_from_private(&kp, d), PPCP_ERR_INVAL);
	assert_null(kp.priv);

	d[31]++; /* n + 1 */
	assert_int_equal(ppcp__p256_from_private(&kp, d), PPCP_ERR_INVAL);
	memset(d, 0xff, sizeof(d));
	assert_int_equal(ppcp__p256_from_private(&kp, d), PPCP_ERR_INVAL);
	ppcp__p256_free(&kp);
}

static void test_p256_from_private_accepts_one_and_order_minus_one(void **state)
{
	uint8_t d[32] = {0}, want[65];
	ppcp__p256 kp;

	(void)state;
	/* 1 * G = G. */
	d[31] = 1;
	assert_int_equal(ppcp__p256_from_private(&kp, d), 0);
	assert_non_null(kp.priv);
	expect_bytes("1*G", 0, kp.pub, sizeof(kp.pub), P256_G, sizeof(P256_G));
	ppcp__p256_free(&kp);

	/* (n - 1) * G = -G = (Gx, p - Gy). */
	memcpy(d, P256_N, sizeof(d));
	d[31]--;
	assert_int_equal(ppcp__p256_from_private(&kp, d), 0);
	memcpy(want, P256_G, 33);
	be32_sub(want + 33, P256_P, P256_G + 33);
	expect_bytes("(n-1)*G", 0, kp.pub, sizeof(kp.pub), want, sizeof(want));
	assert_int_equal(ppcp__p256_check_point(kp.pub, sizeof(kp.pub)), 0);
	ppcp__p256_free(&kp);
}

static void random_scalar(uint8_t d[32])
{
	/* A draw >= n has probability about 2^-32; the top byte is cleared
	 * so the test never depends on it. */
	assert_int_equal(ppcp__rand(d, 32), 0);
	d[0] &= 0x7f;
	d[31] |= 1;
}

static void test_p256_same_scalar_gives_same_pub(void **state)
{
	uint8_t d[32];
	ppcp__p256 a, b;

	(void)state;
	random_scalar(d);
	assert_int_equal(ppcp__p256_from_private(&a, d), 0);
	assert_int_equal(ppcp__p256_from_private(&b, d), 0);
	expect_bytes("pub", 0, a.pub, sizeof(a.pub), b.pub, sizeof(b.pub));
	assert_int_equal(a.pub[0], 0x04);
	assert_int_equal(ppcp__p256_check_point(a.pub, sizeof(a.pub)), 0);
	ppcp__p256_free(&a);
	ppcp__p256_free(&b);
}

static void test_p256_ecdh_agrees_in_both_directions(void **state)
{
	uint8_t da[32], db[32], zab[32], zba[32];
	ppcp__p256 a, b;

	(void)state;
	random_scalar(da);
	random_scalar(db);
	assert_int_equal(ppcp__p256_from_private(&a, da), 0);
	assert_int_equal(ppcp__p256_from_private(&b, db), 0);
	assert_int_equal(ppcp__p256_ecdh(zab, &a, b.pub, sizeof(b.pub)), 0);
	assert_int_equal(ppcp__p256_ecdh(zba, &b, a.pub, sizeof(a.pub)), 0);
	expect_bytes("Z", 0, zab, sizeof(zab), zba, sizeof(zba));
	assert_false(all_zero(zab, sizeof(zab)));
	ppcp__p256_free(&a);
	ppcp__p256_free(&b);
}

static void test_p256_ecdh_refuses_key_pair_without_key(void **state)
{
	ppcp__p256 kp = {0};
	uint8_t z[32];

	(void)state;
	memset(z, 0xa5, sizeof(z));
	assert_int_equal(ppcp__p256_ecdh(z, &kp, P256_G, sizeof(P256_G)), PPCP_ERR_INVAL);
	assert_true(all_zero(z, sizeof(z)));
}

static void test_p256_free_is_safe_on_zeroed_struct_and_wipes(void **state)
{
	ppcp__p256 kp = {0};
	uint8_t d[32] = {0};

	(void)state;
	ppcp__p256_free(&kp);
	ppcp__p256_free(NULL);
	d[31] = 3;
	assert_int_equal(ppcp__p256_from_private(&kp, d), 0);
	ppcp__p256_free(&kp);
	assert_null(kp.priv);
	assert_true(all_zero(kp.pub, sizeof(kp.pub)));
	ppcp__p256_free(&kp); /* twice is fine */
}

/* ---- aes_gcm_test.json --------------------------------------------------- */

#define GCM_FILE "aes_gcm_test.json"

static void test_aead_gcm_vectors_256_96_128_match_and_modified_tags_fail(void **state)
{
	json_t *root = load_vectors(GCM_FILE);
	size_t valid = 0, invalid = 0, groups_seen = 0;

	(void)state;
	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);

		if (get_int(g, "keySize") != 256 || get_int(g, "ivSize") != 96 ||
		    get_int(g, "tagSize") != 128)
			continue;
		groups_seen++;
		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			long tcid = get_int(t, "tcId");
			size_t klen, ivlen, alen, mlen, clen, tlen;
			uint8_t *key = get_hex(t, "key", &klen);
			uint8_t *iv = get_hex(t, "iv", &ivlen);
			uint8_t *aad = get_hex(t, "aad", &alen);
			uint8_t *msg = get_hex(t, "msg", &mlen);
			uint8_t *ct = get_hex(t, "ct", &clen);
			uint8_t *tag = get_hex(t, "tag", &tlen);
			uint8_t *in = malloc(clen + tlen + 1);
			uint8_t *out = malloc(clen + tlen + 1);
			ppcp__aead *a = NULL;
			int ret;

			assert_non_null(in);
			assert_non_null(out);
			assert_int_equal(mlen, clen);
			assert_int_equal(tlen, PPCP_REC_TAG);
			memcpy(in, ct, clen);
			memcpy(in + clen, tag, tlen);
			assert_int_equal(ppcp__aead_new(&a, key, klen), 0);
			if (get_result(t) == RES_VALID) {
				assert_int_equal(
					ppcp__aead_seal(a, iv, ivlen, aad, alen, msg, mlen, out),
					0);
				expect_bytes("GCM ct||tag", tcid, out, mlen + PPCP_REC_TAG, in,
					     clen + tlen);
				memset(out, 0xa5, clen + tlen);
				assert_int_equal(ppcp__aead_open(a, iv, ivlen, aad, alen, in,
								 clen + tlen, out),
						 0);
				expect_bytes("GCM decrypt", tcid, out, clen, msg, mlen);
				valid++;
			} else {
				assert_int_equal(get_result(t), RES_INVALID);
				memset(out, 0xa5, clen + tlen);
				ret = ppcp__aead_open(a, iv, ivlen, aad, alen, in, clen + tlen,
						      out);
				if (ret != PPCP_ERR_DECRYPT)
					fail_msg("tcId %ld: modified tag not rejected (%d)", tcid,
						 ret);
				/* No plaintext reaches the caller: the buffer holds
				 * zeros, neither the plaintext nor the old 0xa5. */
				assert_true(clen > 0);
				if (!all_zero(out, clen)) {
					print_hex("out", out, clen);
					fail_msg("tcId %ld: output not wiped", tcid);
				}
				invalid++;
			}
			ppcp__aead_free(a);
			free(key);
			free(iv);
			free(aad);
			free(msg);
			free(ct);
			free(tag);
			free(in);
			free(out);
		}
	}
	json_decref(root);
	printf("%s (keySize=256 ivSize=96 tagSize=128): %zu vectors ran: %zu valid encrypt and "
	       "decrypt match, %zu modified tags rejected with the output wiped\n",
	       GCM_FILE, valid + invalid, valid, invalid);
	assert_int_equal(groups_seen, 1);
	assert_int_equal(valid, 39);
	assert_int_equal(invalid, 27);
}

/* A non-NULL pointer that no ppcp__aead_new returns. */
static ppcp__aead *aead_sentinel(void)
{
	static uint64_t dummy;

	return (ppcp__aead *)(void *)&dummy;
}

static void test_aead_refuses_parameters_of_every_other_gcm_group(void **state)
{
	json_t *root = load_vectors(GCM_FILE);
	size_t by_key = 0, by_iv = 0;

	(void)state;
	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);
		long ks = get_int(g, "keySize"), ivs = get_int(g, "ivSize");

		if (ks == 256 && ivs == 96)
			continue;
		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			long tcid = get_int(t, "tcId");
			size_t klen, ivlen, alen, mlen, clen, tlen;
			uint8_t *key = get_hex(t, "key", &klen);
			uint8_t *iv = get_hex(t, "iv", &ivlen);
			uint8_t *aad = get_hex(t, "aad", &alen);
			uint8_t *msg = get_hex(t, "msg", &mlen);
			uint8_t *ct = get_hex(t, "ct", &clen);
			uint8_t *tag = get_hex(t, "tag", &tlen);
			uint8_t *in = malloc(clen + tlen + 1);
			uint8_t *out = malloc(clen + tlen + 1);
			ppcp__aead *a = aead_sentinel(); /* must come back NULL */

			assert_non_null(in);
			assert_non_null(out);
			memcpy(in, ct, clen);
			memcpy(in + clen, tag, tlen);
			assert_int_equal((long)klen * 8, ks);
			assert_int_equal((long)ivlen * 8, ivs);
			if (ks != 256) {
				if (ppcp__aead_new(&a, key, klen) != PPCP_ERR_INVAL)
					fail_msg("tcId %ld: %ld-bit key accepted", tcid, ks);
				assert_null(a);
				by_key++;
			} else {
				assert_int_equal(ppcp__aead_new(&a, key, klen), 0);
				memset(out, 0xa5, clen + tlen);
				if (ppcp__aead_seal(a, iv, ivlen, aad, alen, msg, mlen, out) !=
				    PPCP_ERR_INVAL)
					fail_msg("tcId %ld: seal with a %zu-byte IV accepted", tcid,
						 ivlen);
				if (ppcp__aead_open(a, iv, ivlen, aad, alen, in, clen + tlen,
						    out) != PPCP_ERR_INVAL)
					fail_msg("tcId %ld: open with a %zu-byte IV accepted", tcid,
						 ivlen);
				ppcp__aead_free(a);
				by_iv++;
			}
			free(key);
			free(iv);
			free(aad);
			free(msg);
			free(ct);
			free(tag);
			free(in);
			free(out);
		}
	}
	json_decref(root);
	printf("%s (every other group): %zu vectors ran: %zu refused by ppcp__aead_new "
	       "(128/192-bit key), %zu refused by seal and open (256-bit key, IV != 12 bytes)\n",
	       GCM_FILE, by_key + by_iv, by_key, by_iv);
	assert_int_equal(by_key, 211);
	assert_int_equal(by_iv, 39);
}

static void test_aead_new_refuses_key_length_other_than_32(void **state)
{
	static const size_t lens[] = {0, 1, 16, 24, 31, 33, 64};
	uint8_t key[64] = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		ppcp__aead *a = NULL;

		assert_int_equal(ppcp__aead_new(&a, key, lens[i]), PPCP_ERR_INVAL);
		assert_null(a);
	}
	ppcp__aead_free(NULL);
}

static void test_aead_seal_and_open_work_in_place(void **state)
{
	uint8_t key[32], iv[12], aad[16], msg[100], buf[100 + 16], ref[100 + 16];
	ppcp__aead *a;

	(void)state;
	assert_int_equal(ppcp__rand(key, sizeof(key)), 0);
	assert_int_equal(ppcp__rand(iv, sizeof(iv)), 0);
	assert_int_equal(ppcp__rand(aad, sizeof(aad)), 0);
	assert_int_equal(ppcp__rand(msg, sizeof(msg)), 0);
	assert_int_equal(ppcp__aead_new(&a, key, sizeof(key)), 0);
	assert_int_equal(ppcp__aead_seal(a, iv, 12, aad, sizeof(aad), msg, sizeof(msg), ref), 0);
	memcpy(buf, msg, sizeof(msg));
	assert_int_equal(ppcp__aead_seal(a, iv, 12, aad, sizeof(aad), buf, sizeof(msg), buf), 0);
	expect_bytes("in-place seal", 0, buf, sizeof(buf), ref, sizeof(ref));
	assert_int_equal(ppcp__aead_open(a, iv, 12, aad, sizeof(aad), buf, sizeof(buf), buf), 0);
	expect_bytes("in-place open", 0, buf, sizeof(msg), msg, sizeof(msg));
	ppcp__aead_free(a);
}

/* The context keeps its key and only takes a new IV and direction per call:
 * interleaved seals and opens on one context equal fresh contexts. */
static void test_aead_reused_context_matches_fresh_context(void **state)
{
	uint8_t key[32], iv[12] = {0}, msg[37], out[37 + 16], ref[37 + 16], back[37];
	ppcp__aead *a, *fresh;

	(void)state;
	assert_int_equal(ppcp__rand(key, sizeof(key)), 0);
	assert_int_equal(ppcp__aead_new(&a, key, sizeof(key)), 0);
	for (unsigned seq = 0; seq < 50; seq++) {
		ppcp__store_be32(iv + 8, seq);
		memset(msg, (int)seq, sizeof(msg));
		assert_int_equal(ppcp__aead_new(&fresh, key, sizeof(key)), 0);
		assert_int_equal(ppcp__aead_seal(fresh, iv, 12, iv, 12, msg, sizeof(msg), ref), 0);
		ppcp__aead_free(fresh);
		assert_int_equal(ppcp__aead_seal(a, iv, 12, iv, 12, msg, sizeof(msg), out), 0);
		expect_bytes("reused seal", seq, out, sizeof(out), ref, sizeof(ref));
		if (seq % 3 == 0) {
			/* A failed open between two good ones must not disturb
			 * the context. */
			out[0] ^= 1;
			assert_int_equal(ppcp__aead_open(a, iv, 12, iv, 12, out, sizeof(out), back),
					 PPCP_ERR_DECRYPT);
			out[0] ^= 1;
		}
		assert_int_equal(ppcp__aead_open(a, iv, 12, iv, 12, out, sizeof(out), back), 0);
		expect_bytes("reused open", seq, back, sizeof(back), msg, sizeof(msg));
	}
	ppcp__aead_free(a);
}

static void test_aead_open_rejects_every_single_bit_flip(void **state)
{
	uint8_t key[32], iv[12], aad[16], msg[24], rec[24 + 16], out[24];
	ppcp__aead *a;
	size_t flips = 0;

	(void)state;
	assert_int_equal(ppcp__rand(key, sizeof(key)), 0);
	assert_int_equal(ppcp__rand(iv, sizeof(iv)), 0);
	assert_int_equal(ppcp__rand(aad, sizeof(aad)), 0);
	memset(msg, 'm', sizeof(msg));
	assert_int_equal(ppcp__aead_new(&a, key, sizeof(key)), 0);
	assert_int_equal(ppcp__aead_seal(a, iv, 12, aad, sizeof(aad), msg, sizeof(msg), rec), 0);
	for (size_t bit = 0; bit < sizeof(rec) * 8; bit++, flips++) {
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		memset(out, 0xa5, sizeof(out));
		assert_int_equal(
			ppcp__aead_open(a, iv, 12, aad, sizeof(aad), rec, sizeof(rec), out),
			PPCP_ERR_DECRYPT);
		assert_true(all_zero(out, sizeof(out)));
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < sizeof(aad) * 8; bit++, flips++) {
		aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(
			ppcp__aead_open(a, iv, 12, aad, sizeof(aad), rec, sizeof(rec), out),
			PPCP_ERR_DECRYPT);
		aad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < sizeof(iv) * 8; bit++, flips++) {
		iv[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(
			ppcp__aead_open(a, iv, 12, aad, sizeof(aad), rec, sizeof(rec), out),
			PPCP_ERR_DECRYPT);
		iv[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Truncated at every length, including below the tag size. */
	for (size_t len = 0; len < sizeof(rec); len++, flips++)
		assert_int_equal(ppcp__aead_open(a, iv, 12, aad, sizeof(aad), rec, len, out),
				 PPCP_ERR_DECRYPT);
	assert_int_equal(ppcp__aead_open(a, iv, 12, aad, sizeof(aad), rec, sizeof(rec), out), 0);
	expect_bytes("after flips", 0, out, sizeof(out), msg, sizeof(msg));
	printf("AEAD: %zu altered records rejected\n", flips);
	ppcp__aead_free(a);
}

/* ---- hkdf_sha256_test.json ---------------------------------------------- */

#define HKDF_FILE "hkdf_sha256_test.json"

static void test_hkdf_vectors_match_and_size_8161_fails(void **state)
{
	json_t *root = load_vectors(HKDF_FILE);
	size_t valid = 0, invalid = 0, empty_salt = 0;

	(void)state;
	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);

		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			long tcid = get_int(t, "tcId");
			size_t ilen, slen, nlen, olen;
			uint8_t *ikm = get_hex(t, "ikm", &ilen);
			uint8_t *salt = get_hex(t, "salt", &slen);
			uint8_t *info = get_hex(t, "info", &nlen);
			uint8_t *okm = get_hex(t, "okm", &olen);
			size_t size = (size_t)get_int(t, "size");
			uint8_t *out = malloc(size + 1);
			uint8_t prk[32];

			assert_non_null(out);
			empty_salt += slen == 0;
			assert_int_equal(ppcp__hkdf_extract(prk, salt, slen, ikm, ilen), 0);
			if (get_result(t) == RES_VALID) {
				assert_int_equal(ppcp__hkdf_expand(out, size, prk, 32, info, nlen),
						 0);
				expect_bytes("HKDF okm", tcid, out, size, okm, olen);
				valid++;
			} else {
				assert_int_equal(get_result(t), RES_INVALID);
				assert_int_equal(size, 255 * 32 + 1);
				memset(out, 0xa5, size);
				assert_int_equal(ppcp__hkdf_expand(out, size, prk, 32, info, nlen),
						 PPCP_ERR_INVAL);
				/* Nothing written. */
				for (size_t i = 0; i < size; i++)
					assert_int_equal(out[i], 0xa5);
				invalid++;
			}
			free(ikm);
			free(salt);
			free(info);
			free(okm);
			free(out);
		}
	}
	json_decref(root);
	printf("%s: %zu vectors ran: %zu valid match (%zu with an empty salt), %zu with size "
	       "8161 refused\n",
	       HKDF_FILE, valid + invalid, valid, empty_salt, invalid);
	assert_int_equal(valid, 83);
	assert_int_equal(invalid, 3);
	assert_int_equal(empty_salt, 23);
}

static void test_hkdf_expand_of_8160_bytes_extends_shorter_output(void **state)
{
	static const uint8_t prk[32] = {1, 2, 3};
	uint8_t *big = malloc(8160);
	uint8_t small[100];

	(void)state;
	assert_non_null(big);
	assert_int_equal(ppcp__hkdf_expand(big, 8160, prk, sizeof(prk), (const uint8_t *)"x", 1),
			 0);
	assert_int_equal(
		ppcp__hkdf_expand(small, sizeof(small), prk, sizeof(prk), (const uint8_t *)"x", 1),
		0);
	expect_bytes("prefix", 0, big, sizeof(small), small, sizeof(small));
	assert_int_equal(ppcp__hkdf_expand(small, 0, prk, sizeof(prk), NULL, 0), 0);
	free(big);
}

static void test_hkdf_extract_empty_salt_equals_32_zero_bytes(void **state)
{
	static const uint8_t zeros[32];
	static const uint8_t ikm[] = "input keying material";
	uint8_t a[32], b[32], c[32];

	(void)state;
	assert_int_equal(ppcp__hkdf_extract(a, NULL, 0, ikm, sizeof(ikm)), 0);
	assert_int_equal(ppcp__hkdf_extract(b, zeros, sizeof(zeros), ikm, sizeof(ikm)), 0);
	expect_bytes("empty salt", 0, a, sizeof(a), b, sizeof(b));
	/* And HMAC with an empty key is HMAC with zero bytes (block padding). */
	assert_int_equal(ppcp__hmac_sha256(c, NULL, 0, ikm, sizeof(ikm)), 0);
	expect_bytes("empty key", 0, c, sizeof(c), b, sizeof(b));
}

/* keysched.c derives S' from S in place (ppcp__ks_update); the wrapper
 * must read all of its input before it writes the output. */
static void test_hkdf_and_hmac_allow_output_to_alias_input(void **state)
{
	uint8_t key[64], buf[64], want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(ppcp__hkdf_expand(want, 64, key, 32, (const uint8_t *)"upd", 3), 0);
	memcpy(buf, key, sizeof(buf));
	assert_int_equal(ppcp__hkdf_expand(buf, 64, buf, 32, (const uint8_t *)"upd", 3), 0);
	expect_bytes("expand, out == prk", 0, buf, 64, want, 64);

	assert_int_equal(ppcp__hmac_sha256(want, key, 32, key + 32, 32), 0);
	memcpy(buf, key, sizeof(buf));
	assert_int_equal(ppcp__hmac_sha256(buf, buf, 32, buf + 32, 32), 0);
	expect_bytes("hmac, out == key", 0, buf, 32, want, 32);
	memcpy(buf, key, sizeof(buf));
	assert_int_equal(ppcp__hmac_sha256(buf + 32, buf, 32, buf + 32, 32), 0);
	expect_bytes("hmac, out == msg", 0, buf + 32, 32, want, 32);

	assert_int_equal(ppcp__hkdf_extract(want, key, 32, key + 32, 32), 0);
	memcpy(buf, key, sizeof(buf));
	assert_int_equal(ppcp__hkdf_extract(buf, buf, 32, buf + 32, 32), 0);
	expect_bytes("extract, prk == salt", 0, buf, 32, want, 32);
}

/* ---- hmac_sha256_test.json ---------------------------------------------- */

#define HMAC_FILE "hmac_sha256_test.json"

/* How PPCP verifies a confirmation MAC: full length, constant time. */
static int hmac_verify(const uint8_t *key, size_t klen, const uint8_t *msg, size_t mlen,
		       const uint8_t *tag, size_t tlen, size_t cmp_len)
{
	uint8_t mac[32];
	int ok;

	assert_int_equal(ppcp__hmac_sha256(mac, key, klen, msg, mlen), 0);
	ok = tlen == cmp_len && ppcp__ct_equal(mac, tag, cmp_len);
	ppcp_wipe(mac, sizeof(mac));
	return ok;
}

static void test_hmac_vectors_match_and_flipped_tags_fail(void **state)
{
	json_t *root = load_vectors(HMAC_FILE);
	size_t full[3] = {0}, trunc[3] = {0};

	(void)state;
	for (size_t gi = 0; gi < ngroups(root); gi++) {
		const json_t *g = group_at(root, gi);
		long tag_bits = get_int(g, "tagSize");
		size_t cmp_len = (size_t)tag_bits / 8;

		/* PPCP never truncates: tagSize=128 groups are checked on the
		 * first 16 bytes of the full MAC. */
		assert_true(tag_bits == 256 || tag_bits == 128);
		for (size_t ti = 0; ti < ntests(g); ti++) {
			const json_t *t = test_at(g, ti);
			long tcid = get_int(t, "tcId");
			enum result res = get_result(t);
			size_t klen, mlen, tlen;
			uint8_t *key = get_hex(t, "key", &klen);
			uint8_t *msg = get_hex(t, "msg", &mlen);
			uint8_t *tag = get_hex(t, "tag", &tlen);
			uint8_t mac[32];

			assert_int_equal((long)klen * 8, get_int(g, "keySize"));
			assert_int_equal(ppcp__hmac_sha256(mac, key, klen, msg, mlen), 0);
			if (res == RES_VALID) {
				expect_bytes("HMAC", tcid, mac, cmp_len, tag, tlen);
				assert_true(hmac_verify(key, klen, msg, mlen, tag, tlen, cmp_len));
			} else {
				assert_int_equal(res, RES_INVALID);
				if (hmac_verify(key, klen, msg, mlen, tag, tlen, cmp_len)) {
					print_hex("tag", tag, tlen);
					fail_msg("tcId %ld: modified tag verified", tcid);
				}
			}
			(tag_bits == 256 ? full : trunc)[res]++;
			free(key);
			free(msg);
			free(tag);
		}
	}
	json_decref(root);
	printf("%s: %zu vectors ran: tagSize=256 groups: %zu valid match, %zu modified tags fail "
	       "verification; tagSize=128 groups (%zu valid, %zu invalid) checked on the first "
	       "16 bytes of the full MAC, since PPCP never truncates\n",
	       HMAC_FILE, full[0] + full[2] + trunc[0] + trunc[2], full[RES_VALID],
	       full[RES_INVALID], trunc[RES_VALID], trunc[RES_INVALID]);
	assert_int_equal(full[RES_VALID], 33);
	assert_int_equal(full[RES_INVALID], 54);
	assert_int_equal(trunc[RES_VALID], 33);
	assert_int_equal(trunc[RES_INVALID], 54);
	assert_int_equal(full[RES_ACCEPTABLE] + trunc[RES_ACCEPTABLE], 0);
}

/* ---- SHA-256, comparison, randomness, wipe ------------------------------ */

static void test_sha256_of_empty_string_and_abc(void **state)
{
	/* FIPS 180-2 appendix B.1 and the well-known empty-string digest. */
	static const uint8_t empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
		0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
		0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	ppcp__iov none = {NULL, 0};
	ppcp__iov split[3] = {{"a", 1}, {"", 0}, {"bc", 2}};
	uint8_t h[32];

	(void)state;
	assert_int_equal(ppcp__sha256(h, NULL, 0), 0);
	expect_bytes("SHA-256(\"\")", 0, h, sizeof(h), empty, sizeof(empty));
	assert_int_equal(ppcp__sha256(h, &none, 1), 0);
	expect_bytes("SHA-256(\"\") one empty piece", 0, h, sizeof(h), empty, sizeof(empty));
	assert_int_equal(ppcp__sha256(h, split, 3), 0);
	expect_bytes("SHA-256(\"abc\") in pieces", 0, h, sizeof(h), abc, sizeof(abc));
}

static void test_ct_equal_detects_a_difference_at_every_position(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)i;
	memcpy(b, a, sizeof(b));
	assert_int_equal(ppcp__ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(ppcp__ct_equal(a, b, 0), 1);
	for (size_t i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x80;
		assert_int_equal(ppcp__ct_equal(a, b, sizeof(a)), 0);
		assert_int_equal(ppcp__ct_equal(a, b, i), 1);
		b[i] ^= 0x80;
	}
}

static void test_rand_fills_and_differs_between_calls(void **state)
{
	uint8_t a[64] = {0}, b[64] = {0};

	(void)state;
	assert_int_equal(ppcp__rand(a, 0), 0);
	assert_int_equal(ppcp__rand(a, sizeof(a)), 0);
	assert_int_equal(ppcp__rand(b, sizeof(b)), 0);
	assert_false(all_zero(a, sizeof(a)));
	assert_memory_not_equal(a, b, sizeof(a));
}

static void test_wipe_zeroes_and_accepts_null(void **state)
{
	uint8_t buf[33];

	(void)state;
	memset(buf, 0xff, sizeof(buf));
	ppcp_wipe(buf, sizeof(buf) - 1);
	assert_true(all_zero(buf, sizeof(buf) - 1));
	assert_int_equal(buf[sizeof(buf) - 1], 0xff);
	ppcp_wipe(NULL, 0);
}

static void test_incremental_sha256_matches_one_shot_at_every_split(void **state)
{
	uint8_t msg[300], a[32], b[32];
	ppcp__iov v = { msg, sizeof(msg) };
	ppcp_sha256 *h = NULL;
	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(ppcp__sha256(a, &v, 1), 0);
	assert_int_equal(ppcp_sha256_new(&h), 0);
	for (size_t cut = 0; cut <= sizeof(msg); cut += 7) {
		assert_int_equal(ppcp_sha256_update(h, msg, cut), 0);
		assert_int_equal(ppcp_sha256_update(h, msg + cut, sizeof(msg) - cut), 0);
		assert_int_equal(ppcp_sha256_final(h, b), 0); /* and starts afresh */
		assert_memory_equal(a, b, 32);
	}
	ppcp_sha256_free(h);
	ppcp_sha256_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incremental_sha256_matches_one_shot_at_every_split),
		cmocka_unit_test(test_ecpoint_vectors_valid_accepted_with_shared_others_rejected),
		cmocka_unit_test(test_ecpoint_rejects_hybrid_encoding),
		cmocka_unit_test(test_ecpoint_rejects_compressed_encoding_of_a_valid_point),
		cmocka_unit_test(test_ecpoint_rejects_point_at_infinity),
		cmocka_unit_test(test_ecpoint_rejects_trailing_byte_and_truncation),
		cmocka_unit_test(test_ecpoint_rejects_every_length_but_65),
		cmocka_unit_test(test_ecpoint_rejects_coordinate_plus_p),
		cmocka_unit_test(test_ecpoint_rejects_every_single_bit_flip_of_a_valid_point),
		cmocka_unit_test(test_p256_from_private_rejects_zero_and_order),
		cmocka_unit_test(test_p256_from_private_accepts_one_and_order_minus_one),
		cmocka_unit_test(test_p256_same_scalar_gives_same_pub),
		cmocka_unit_test(test_p256_ecdh_agrees_in_both_directions),
		cmocka_unit_test(test_p256_ecdh_refuses_key_pair_without_key),
		cmocka_unit_test(test_p256_free_is_safe_on_zeroed_struct_and_wipes),
		cmocka_unit_test(test_aead_gcm_vectors_256_96_128_match_and_modified_tags_fail),
		cmocka_unit_test(test_aead_refuses_parameters_of_every_other_gcm_group),
		cmocka_unit_test(test_aead_new_refuses_key_length_other_than_32),
		cmocka_unit_test(test_aead_seal_and_open_work_in_place),
		cmocka_unit_test(test_aead_reused_context_matches_fresh_context),
		cmocka_unit_test(test_aead_open_rejects_every_single_bit_flip),
		cmocka_unit_test(test_hkdf_vectors_match_and_size_8161_fails),
		cmocka_unit_test(test_hkdf_expand_of_8160_bytes_extends_shorter_output),
		cmocka_unit_test(test_hkdf_extract_empty_salt_equals_32_zero_bytes),
		cmocka_unit_test(test_hkdf_and_hmac_allow_output_to_alias_input),
		cmocka_unit_test(test_hmac_vectors_match_and_flipped_tags_fail),
		cmocka_unit_test(test_sha256_of_empty_string_and_abc),
		cmocka_unit_test(test_ct_equal_detects_a_difference_at_every_position),
		cmocka_unit_test(test_rand_fills_and_differs_between_calls),
		cmocka_unit_test(test_wipe_zeroes_and_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
