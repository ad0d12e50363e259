/*
 * fuzz_disco.c - the discovery codecs of PROTOCOL.md §10 on arbitrary
 * bytes: ppcp_ping_decode and ppcp_pong_decode.
 *
 * What decodes is encoded again and must decode to the same fields: the
 * decoder accepts nothing the encoder refuses, and nothing is lost on the
 * way.  A re-encoded PING is padded to 512..1024 bytes; a PONG encoded
 * into a buffer the size of the input (as a server answers a PING of that
 * size) is either refused as too big or no larger.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ping_equal(const ppcp_ping *a, const ppcp_ping *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->client_id, b->client_id) == 0 &&
	       strcmp(a->hostname, b->hostname) == 0 && strcmp(a->version, b->version) == 0 &&
	       strcmp(a->target, b->target) == 0 && a->ts == b->ts;
}

static int pong_equal(const ppcp_pong *a, const ppcp_pong *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->server_id, b->server_id) == 0 &&
	       strcmp(a->hostname, b->hostname) == 0 && a->port == b->port &&
	       a->capabilities == b->capabilities && a->ts == b->ts;
}

static void check_ping(const uint8_t *data, size_t size)
{
	ppcp_ping p, q;
	uint8_t buf[2 * PPCP_PING_MAX];
	size_t n = 0;
	int ret = ppcp_ping_decode(data, size, &p);

	if (ret != 0) {
		FZ_CHECK(ret == PPCP_ERR_BAD_MESSAGE || ret == PPCP_ERR_TOO_BIG ||
				 ret == PPCP_ERR_BAD_MSG_VERSION,
			 "error %s", ppcp_err_name(ret));
		return;
	}
	FZ_CHECK(size <= PPCP_PING_MAX, "PING of %zu bytes accepted", size);
	FZ_CHECK(ppcp_ping_wants(&p, p.target[0] ? p.target : FZ_SERVER_ID) == 1, "wants");
	ret = ppcp_ping_encode(&p, buf, sizeof(buf), &n);
	FZ_CHECK(ret == 0, "a decoded PING does not encode: %s", ppcp_err_name(ret));
	FZ_CHECK(n >= PPCP_PING_MIN && n <= PPCP_PING_MAX, "PING of %zu bytes", n);
	ret = ppcp_ping_decode(buf, n, &q);
	FZ_CHECK(ret == 0, "a re-encoded PING does not decode: %s: %.*s", ppcp_err_name(ret),
		 (int)n, (const char *)buf);
	FZ_CHECK(ping_equal(&p, &q), "PING changed on the way: %.*s", (int)n, (const char *)buf);
}

static void check_pong(const uint8_t *data, size_t size)
{
	ppcp_pong p, q;
	uint8_t buf[2 * PPCP_PING_MAX];
	uint8_t *small;
	size_t n = 0;
	int ret = ppcp_pong_decode(data, size, &p);

	if (ret != 0) {
		FZ_CHECK(ret == PPCP_ERR_BAD_MESSAGE || ret == PPCP_ERR_TOO_BIG ||
				 ret == PPCP_ERR_BAD_MSG_VERSION,
			 "error %s", ppcp_err_name(ret));
		return;
	}
	ret = ppcp_pong_encode(&p, buf, sizeof(buf), &n);
	FZ_CHECK(ret == 0, "a decoded PONG does not encode: %s", ppcp_err_name(ret));
	ret = ppcp_pong_decode(buf, n, &q);
	FZ_CHECK(ret == 0, "a re-encoded PONG does not decode: %s: %.*s", ppcp_err_name(ret),
		 (int)n, (const char *)buf);
	FZ_CHECK(pong_equal(&p, &q), "PONG changed on the way: %.*s", (int)n, (const char *)buf);

	/* No amplification: exactly size bytes of room, on the heap so that
	 * ASan sees a write past it. */
	small = malloc(size);
	FZ_CHECK(small != NULL, "malloc");
	ret = ppcp_pong_encode(&p, small, size, &n);
	FZ_CHECK(ret == PPCP_ERR_TOO_BIG || (ret == 0 && n <= size), "cap %zu: %s, %zu", size,
		 ppcp_err_name(ret), n);
	free(small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_init();
	check_ping(data, size);
	check_pong(data, size);
	return 0;
}
