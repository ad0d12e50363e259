/*
 * fuzz_frame.c - the frame reader, ppcp__frame_read, against a model.
 *
 * Input: u32 min ‖ u32 max ‖ split seed ‖ stream.  max is reduced modulo
 * 28 + PPCP_MAX_RECORD_LIMIT + 1: the engine never passes more, and the
 * reader allocates up to max for a split frame, so a larger max would only
 * measure the allocator.  min is used as it is.  The stream is fed in the
 * chunks fz_split_next draws from the seed (0 = all at once), and every
 * result is compared with a model of PROTOCOL.md §2 run over the bytes fed
 * so far: the same frames with the same bytes, the same error at the same
 * place, no byte consumed past the end of a frame, and a partial frame
 * reported as such.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the model expects next at offset *off of s[n]: 1 and the body, 0
 * (needs more), or an error. */
static int model_next(const uint8_t *s, size_t n, size_t *off, uint32_t min, uint32_t max,
		      const uint8_t **body, uint32_t *blen)
{
	uint32_t len;

	if (n - *off < PPCP_LEN_PREFIX)
		return 0;
	len = ppcp__load_be32(s + *off);
	if (len > max)
		return PPCP_ERR_FRAME_TOO_LARGE;
	if (len < min)
		return PPCP_ERR_FRAME_TOO_SHORT;
	if (n - *off - PPCP_LEN_PREFIX < len)
		return 0;
	*body = s + *off + PPCP_LEN_PREFIX;
	*blen = len;
	*off += PPCP_LEN_PREFIX + len;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ppcp__frame_reader r;
	uint32_t min, max, st;
	uint8_t seed;
	const uint8_t *s;
	size_t n, fed = 0, moff = 0;
	int done = 0;

	if (size < 9)
		return 0;
	min = ppcp__load_be32(data);
	max = ppcp__load_be32(data + 4) % (PPCP_REC_OVERHEAD + PPCP_MAX_RECORD_LIMIT + 1u);
	seed = data[8];
	s = data + 9;
	n = size - 9;
	st = 0x9e3779b9u ^ seed;
	memset(&r, 0, sizeof(r));

	while (!done && fed < n) {
		size_t k = seed == 0 ? n - fed : fz_split_next(&st, seed);
		const uint8_t *in = s + fed;
		size_t len;

		if (k > n - fed)
			k = n - fed;
		len = k;
		fed += k;
		for (;;) {
			const uint8_t *body = NULL, *mbody = NULL;
			uint32_t blen = 0, mblen = 0;
			int ret = ppcp__frame_read(&r, &in, &len, min, max, &body, &blen);
			size_t consumed = fed - len;
			size_t before = moff;
			int want = model_next(s, fed, &moff, min, max, &mbody, &mblen);

			FZ_CHECK(ret == want, "reader %d, model %d, frame at %zu", ret, want,
				 before);
			if (ret == 0) {
				/* Needs more: all of this chunk was taken. */
				FZ_CHECK(len == 0, "returned 0 with %zu bytes left", len);
				break;
			}
			if (ret < 0) {
				done = 1;
				break;
			}
			FZ_CHECK(ret == 1 && want == 1, "frame returned, model says %d at %zu",
				 want, before);
			FZ_CHECK(blen == mblen && blen >= min && blen <= max, "length %u, model %u",
				 blen, mblen);
			FZ_CHECK(blen == 0 || memcmp(body, mbody, blen) == 0, "body differs");
			FZ_CHECK(consumed == moff, "consumed %zu, frame ends at %zu", consumed,
				 moff);
		}
	}
	if (!done) {
		/* Input exhausted: partial exactly when bytes are left over. */
		FZ_CHECK(ppcp__frame_reader_partial(&r) == (moff < n), "partial %d, left %zu",
			 ppcp__frame_reader_partial(&r), n - moff);
	}
	ppcp__frame_reader_free(&r);
	return 0;
}
