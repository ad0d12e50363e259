/*
 * frame.c - the length prefix and AEAD records (PROTOCOL.md §2, §5).
 *
 * Notes:
 *  - The frame reader accepts any split of the byte stream.  The limits of
 *    the caller's state are applied to the 4-byte length as soon as it is
 *    complete, before a byte of body is stored or any memory allocated.
 *    A frame that lies wholly inside the caller's input is returned in
 *    place (no copy); only a frame split across calls is assembled in the
 *    reader's buffer, which grows to the largest frame seen and stays.
 *  - A direction (ppcp__dir) holds the traffic secret, its AEAD context and
 *    IV, the sequence number and the bytes sent under the key.  The nonce
 *    is always iv XOR seq; the receiver compares the wire nonce with the
 *    one it expects before decrypting, and advances seq only after the tag
 *    verified.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- output buffer ---------------------------------------------------- */

int ppcp__buf_reserve(ppcp__buf *b, size_t extra)
{
	size_t need, ncap;
	uint8_t *p;

	if (b->off > 0 && (b->off == b->len || b->cap - b->len < extra)) {
		/* Move the unsent tail to the front before growing. */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (extra > SIZE_MAX - b->len)
		return PPCP_ERR_NOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = realloc(b->p, ncap);
	if (p == NULL)
		return PPCP_ERR_NOMEM;
	b->p = p;
	b->cap = ncap;
	return 0;
}

void ppcp__buf_free(ppcp__buf *b)
{
	if (b->p != NULL) {
		ppcp_wipe(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* ---- frame reader ----------------------------------------------------- */

int ppcp__frame_read(ppcp__frame_reader *r, const uint8_t **in, size_t *len, uint32_t min,
		     uint32_t max, const uint8_t **body, uint32_t *blen)
{
	while (r->hdr_have < PPCP_LEN_PREFIX) {
		if (*len == 0)
			return 0;
		r->hdr[r->hdr_have++] = **in;
		(*in)++;
		(*len)--;
		if (r->hdr_have == PPCP_LEN_PREFIX) {
			r->body_len = ppcp__load_be32(r->hdr);
			r->body_have = 0;
			/* PROTOCOL.md §13: the length is judged before allocation. */
			if (r->body_len > max)
				return PPCP_ERR_FRAME_TOO_LARGE;
			if (r->body_len < min)
				return PPCP_ERR_FRAME_TOO_SHORT;
		}
	}

	/* Whole body present in the input and nothing buffered: no copy. */
	if (r->body_have == 0 && *len >= r->body_len) {
		*body = *in;
		*blen = r->body_len;
		*in += r->body_len;
		*len -= r->body_len;
		r->hdr_have = 0;
		return 1;
	}

	if (r->body_cap < r->body_len) {
		uint8_t *p = malloc(r->body_len);
		if (p == NULL)
			return PPCP_ERR_NOMEM;
		if (r->body != NULL) {
			memcpy(p, r->body, r->body_have);
			ppcp_wipe(r->body, r->body_cap);
			free(r->body);
		}
		r->body = p;
		r->body_cap = r->body_len;
	}
	size_t take = r->body_len - r->body_have;
	if (take > *len)
		take = *len;
	memcpy(r->body + r->body_have, *in, take);
	r->body_have += take;
	*in += take;
	*len -= take;
	if (r->body_have < r->body_len)
		return 0;
	*body = r->body;
	*blen = r->body_len;
	r->hdr_have = 0;
	r->body_have = 0;
	return 1;
}

int ppcp__frame_reader_partial(const ppcp__frame_reader *r)
{
	return r->hdr_have != 0 || r->body_have != 0;
}

void ppcp__frame_reader_free(ppcp__frame_reader *r)
{
	if (r->body != NULL) {
		ppcp_wipe(r->body, r->body_cap);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- directions and records ------------------------------------------- */

int ppcp__dir_set(ppcp__dir *d, const uint8_t secret[32])
{
	uint8_t key[32];
	ppcp__aead *a = NULL;
	int ret;

	ret = ppcp__ks_traffic(key, d->iv, secret);
	if (ret != 0)
		goto out;
	ret = ppcp__aead_new(&a, key, sizeof(key));
	if (ret != 0)
		goto out;
	ppcp__aead_free(d->aead); /* wipes the old key schedule */
	d->aead = a;
	if (d->secret != secret)
		memcpy(d->secret, secret, 32);
	d->seq = 0;
	d->bytes = 0;
out:
	ppcp_wipe(key, sizeof(key));
	return ret;
}

int ppcp__dir_update(ppcp__dir *d)
{
	int ret = ppcp__ks_update(d->secret, d->secret);
	if (ret != 0)
		return ret;
	return ppcp__dir_set(d, d->secret);
}

void ppcp__dir_clear(ppcp__dir *d)
{
	ppcp__aead_free(d->aead);
	ppcp_wipe(d, sizeof(*d));
}

static void dir_nonce(const ppcp__dir *d, uint8_t nonce[PPCP_REC_NONCE])
{
	uint8_t s[8];

	/* PROTOCOL.md §5: nonce = iv XOR (0^4 ‖ u64(seq)) */
	ppcp__store_be64(s, d->seq);
	memcpy(nonce, d->iv, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = d->iv[4 + i] ^ s[i];
	/* Derived from a secret, but written on the wire. */
	ppcp__declassify(nonce, PPCP_REC_NONCE);
}

int ppcp__record_seal(ppcp__dir *d, ppcp__buf *out, const uint8_t *p1, size_t n1,
		      const uint8_t *p2, size_t n2)
{
	size_t plen = n1 + n2;
	uint8_t *f;
	int ret;

	if (d->aead == NULL)
		return PPCP_ERR_STATE;
	if (d->seq == UINT64_MAX)
		return PPCP_ERR_KEY_EXHAUSTED;
	if (plen == 0 || plen > UINT32_MAX - PPCP_REC_OVERHEAD)
		return PPCP_ERR_TOO_BIG;
	ret = ppcp__buf_reserve(out, PPCP_LEN_PREFIX + PPCP_REC_OVERHEAD + plen);
	if (ret != 0)
		return ret;
	f = out->p + out->len;
	/* len ‖ nonce ‖ ciphertext ‖ tag; the AAD is len ‖ nonce. */
	ppcp__store_be32(f, (uint32_t)(PPCP_REC_OVERHEAD + plen));
	dir_nonce(d, f + PPCP_LEN_PREFIX);
	if (n1 > 0)
		memcpy(f + 16, p1, n1);
	if (n2 > 0)
		memcpy(f + 16 + n1, p2, n2);
	ret = ppcp__aead_seal(d->aead, f + PPCP_LEN_PREFIX, PPCP_REC_NONCE, f, 16, f + 16, plen,
			      f + 16);
	if (ret != 0) {
		ppcp_wipe(f + 16, plen);
		return ret;
	}
	out->len += PPCP_LEN_PREFIX + PPCP_REC_OVERHEAD + plen;
	d->seq++;
	d->bytes += plen;
	return 0;
}

int ppcp__record_open(ppcp__dir *d, const uint8_t *body, uint32_t blen, uint8_t *pt)
{
	uint8_t nonce[PPCP_REC_NONCE];
	uint8_t aad[PPCP_LEN_PREFIX + PPCP_REC_NONCE];
	int ret;

	if (d->aead == NULL)
		return PPCP_ERR_STATE;
	if (blen <= PPCP_REC_OVERHEAD)
		return PPCP_ERR_FRAME_TOO_SHORT;
	dir_nonce(d, nonce);
	/* PROTOCOL.md §5: the wire nonce must be the expected one. */
	if (!ppcp__ct_equal(nonce, body, PPCP_REC_NONCE))
		return PPCP_ERR_SEQUENCE;
	ppcp__store_be32(aad, blen);
	memcpy(aad + PPCP_LEN_PREFIX, nonce, PPCP_REC_NONCE);
	ret = ppcp__aead_open(d->aead, nonce, PPCP_REC_NONCE, aad, sizeof(aad),
			      body + PPCP_REC_NONCE, blen - PPCP_REC_NONCE, pt);
	if (ret != 0)
		return PPCP_ERR_DECRYPT;
	/* Authenticated plaintext is the application's to read. */
	ppcp__declassify(pt, blen - PPCP_REC_OVERHEAD);
	d->seq++;
	d->bytes += blen - PPCP_REC_OVERHEAD;
	return 0;
}
