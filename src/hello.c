/*
 * hello.c - the raw, fixed-size CLIENT_HELLO and SERVER_HELLO
 * (PROTOCOL.md §3).  Parsing checks, in order: magic, header, exact
 * length, pub_len, then the point on the curve with our own check, so
 * that no ECDH ever runs on a point we did not validate.
 */
#include <string.h>

#include "internal.h"

static const uint8_t hello_magic[4] = { 'P', 'P', 'C', 'P' };

void ppcp__hello_write(uint8_t *out, uint8_t type, const uint8_t point[65],
		       const uint8_t nonce[32])
{
	/* HDR(type) = "PPCP" ‖ version ‖ type ‖ suite ‖ reserved */
	memcpy(out, hello_magic, 4);
	out[4] = PPCP_PROTOCOL_VERSION;
	out[5] = type;
	out[6] = PPCP_SUITE_P256_AES256GCM;
	out[7] = 0;
	out[8] = PPCP_POINT_LEN; /* pub_len */
	memcpy(out + 9, point, PPCP_POINT_LEN); /* X */
	memcpy(out + 74, nonce, PPCP_NONCE_LEN); /* nonce */
}

int ppcp__hello_parse(const uint8_t *body, size_t len, uint8_t type, ppcp__hello *h)
{
	size_t want = type == 1 ? PPCP_CLIENT_HELLO_LEN : PPCP_SERVER_HELLO_LEN;
	int ret;

	memset(h, 0, sizeof(*h));
	if (len < 4 || memcmp(body, hello_magic, 4) != 0)
		return PPCP_ERR_BAD_MAGIC;
	if (len < PPCP_HELLO_HDR)
		return PPCP_ERR_BAD_HELLO;
	if (body[4] != PPCP_PROTOCOL_VERSION)
		return PPCP_ERR_BAD_VERSION;
	if (body[5] != type)
		return PPCP_ERR_BAD_HELLO;
	if (body[6] != PPCP_SUITE_P256_AES256GCM)
		return PPCP_ERR_BAD_SUITE;
	if (body[7] != 0)
		return PPCP_ERR_BAD_HELLO;
	if (len != want)
		return PPCP_ERR_BAD_HELLO;
	if (body[8] != PPCP_POINT_LEN)
		return PPCP_ERR_BAD_HELLO;
	/* PPCP_ERR_BAD_POINT, or an allocation failure reported as such. */
	ret = ppcp__p256_check_point(body + 9, PPCP_POINT_LEN);
	if (ret != 0)
		return ret;
	h->point = body + 9;
	h->nonce = body + 74;
	if (type == 2) {
		h->sid_hash = body + 106;
		h->confirm = body + 138;
	}
	return 0;
}
