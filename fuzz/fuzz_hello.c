/*
 * fuzz_hello.c - ppcp__hello_parse on arbitrary bodies, as CLIENT_HELLO
 * and as SERVER_HELLO (PROTOCOL.md §3).
 *
 * Checks: a hello that parses has exactly the size of its type, its
 * pointers lie at the offsets of §3, and its point is one OpenSSL also
 * accepts, so ECDH with it succeeds.  The point check itself is compared
 * with OpenSSL's (EC_POINT_oct2point + EC_POINT_is_on_curve) on every
 * 65-byte uncompressed candidate: our check refuses encodings OpenSSL takes
 * (compressed, hybrid, infinity), but on 0x04 points the two must agree.
 */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ppcp__p256 kp;
static EC_GROUP *group;
static EC_POINT *point;
static BN_CTX *bnctx;

static void hello_init(void)
{
	int ret;

	if (group != NULL)
		return;
	fz_init();
	ret = ppcp__p256_from_private(&kp, FZ_RNG_SERVER); /* d_s */
	FZ_CHECK(ret == 0, "keypair: %s", ppcp_err_name(ret));
	group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	point = EC_POINT_new(group);
	bnctx = BN_CTX_new();
	FZ_CHECK(group != NULL && point != NULL && bnctx != NULL, "OpenSSL setup");
}

/* OpenSSL's view: a 65-byte 0x04 encoding of a point on the curve. */
static int openssl_accepts(const uint8_t *pt)
{
	int ok = EC_POINT_oct2point(group, point, pt, PPCP_POINT_LEN, bnctx) == 1 &&
		 EC_POINT_is_on_curve(group, point, bnctx) == 1 &&
		 EC_POINT_is_at_infinity(group, point) == 0;
	ERR_clear_error();
	return ok;
}

static void check_type(const uint8_t *data, size_t size, uint8_t type)
{
	size_t want = type == 1 ? PPCP_CLIENT_HELLO_LEN : PPCP_SERVER_HELLO_LEN;
	ppcp__hello h;
	uint8_t z[32];
	int ret = ppcp__hello_parse(data, size, type, &h);

	if (ret != 0) {
		FZ_CHECK(h.point == NULL && h.nonce == NULL, "pointers set on failure");
		return;
	}
	FZ_CHECK(size == want, "type %u parsed with %zu bytes", type, size);
	FZ_CHECK(memcmp(data, "PPCP\x01", 5) == 0 && data[5] == type && data[6] == 1 &&
			 data[7] == 0 && data[8] == PPCP_POINT_LEN,
		 "header not checked");
	FZ_CHECK(h.point == data + 9 && h.nonce == data + 74, "offsets");
	FZ_CHECK(type == 1 ? h.sid_hash == NULL && h.confirm == NULL
			   : h.sid_hash == data + 106 && h.confirm == data + 138,
		 "SERVER_HELLO offsets");
	ret = ppcp__p256_ecdh(z, &kp, h.point, PPCP_POINT_LEN);
	FZ_CHECK(ret == 0, "parsed point refused by ECDH: %s", ppcp_err_name(ret));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hello_init();
	check_type(data, size, 1);
	check_type(data, size, 2);

	/* The point check against OpenSSL, on the point slot of a hello and
	 * on the first 65 bytes of the input. */
	for (size_t off = 0; off <= 9; off += 9) {
		const uint8_t *pt = data + off;
		int ours, theirs;

		if (size < off + PPCP_POINT_LEN || pt[0] != 0x04)
			continue;
		ours = ppcp__p256_check_point(pt, PPCP_POINT_LEN) == 0;
		theirs = openssl_accepts(pt);
		FZ_CHECK(ours == theirs, "point check %d, OpenSSL %d", ours, theirs);
	}
	return 0;
}
