/*
 * keysched.c - the key schedule of docs/PROTOCOL.md §4.
 *
 * Implementation notes:
 *   - Everything here is built on the crypto.c primitives (HKDF, HMAC,
 *     SHA-256); this file never includes OpenSSL.
 *   - The schedule runs in two halves because the server must compute
 *     s_confirm before the SERVER_HELLO that carries it exists:
 *     ppcp__ks_handshake needs only CH and the first 138 bytes of SH;
 *     ppcp__ks_finish needs the whole SH.
 *   - ES, the "derived" salts and the finished/ack keys live on the stack
 *     only and are wiped at the single exit of each function, on success
 *     and on failure alike.  On failure the outputs written so far are
 *     wiped too, so a caller never holds half a schedule.
 */
#include "internal.h"

/* "ppcp1 " prefixes every label (PROTOCOL.md §4). */
#define KS_LABEL_PREFIX "ppcp1 "
#define KS_LABEL_PREFIX_LEN 6
/* The longest info: u16 ‖ u8 ‖ 255 bytes of label ‖ u8 ‖ 255 bytes of ctx. */
#define KS_INFO_MAX (2 + 1 + 255 + 1 + 255)

int ppcp__expand_label(uint8_t *out, size_t L, const uint8_t S[32], const char *label,
		       const uint8_t *ctx, size_t ctxlen)
{
	uint8_t info[KS_INFO_MAX];
	size_t llen, n = 0;
	int ret;

	if (out == NULL || S == NULL || label == NULL || (ctx == NULL && ctxlen != 0))
		return PPCP_ERR_INVAL;
	llen = strlen(label);
	/* The length bytes are u16(L) and u8(6 + |label|), u8(|ctx|). */
	if (L == 0 || L > 255 * 32 || llen > 255 - KS_LABEL_PREFIX_LEN || ctxlen > 255)
		return PPCP_ERR_INVAL;

	/* PROTOCOL.md §4: info = u16(L) ‖ u8(6 + |label|) ‖ "ppcp1 " ‖ label
	 * ‖ u8(|ctx|) ‖ ctx */
	info[n++] = (uint8_t)(L >> 8);
	info[n++] = (uint8_t)L;
	info[n++] = (uint8_t)(KS_LABEL_PREFIX_LEN + llen);
	memcpy(info + n, KS_LABEL_PREFIX, KS_LABEL_PREFIX_LEN);
	n += KS_LABEL_PREFIX_LEN;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = (uint8_t)ctxlen;
	if (ctxlen != 0)
		memcpy(info + n, ctx, ctxlen);
	n += ctxlen;

	ret = ppcp__hkdf_expand(out, L, S, 32, info, n);
	/* The info holds a transcript hash at most, but wiping is cheap. */
	ppcp_wipe(info, sizeof(info));
	return ret;
}

/* Derive(S, label, th) = ExpandLabel(S, label, th, 32). */
static int ks_derive(uint8_t out[32], const uint8_t S[32], const char *label, const uint8_t th[32])
{
	return ppcp__expand_label(out, 32, S, label, th, 32);
}

int ppcp__ks_handshake(ppcp__keys *k, const uint8_t *psk, size_t psk_len, const uint8_t z[32],
		       const uint8_t *ch, const uint8_t *sh138)
{
	static const uint8_t zero32[32];
	static const ppcp__iov empty = {"", 0};
	uint8_t e[32], es[32], salt[32], fin_s[32];
	ppcp__iov th1[2];
	int ret;

	if (k == NULL || psk == NULL || psk_len == 0 || z == NULL || ch == NULL || sh138 == NULL)
		return PPCP_ERR_INVAL;

	/* §4: E = H(""), the context of both "derived" steps. */
	ret = ppcp__sha256(e, &empty, 1);
	if (ret != 0)
		goto out;
	/* §4: ES = HKDF-Extract(salt = 0^32, ikm = PSK) */
	ret = ppcp__hkdf_extract(es, zero32, sizeof(zero32), psk, psk_len);
	if (ret != 0)
		goto out;
	/* §4: HS = HKDF-Extract(salt = Derive(ES, "derived", E), ikm = Z) */
	ret = ks_derive(salt, es, "derived", e);
	if (ret != 0)
		goto out;
	ret = ppcp__hkdf_extract(k->hs, salt, sizeof(salt), z, 32);
	if (ret != 0)
		goto out;
	/* §4: TH1 = H(CH ‖ SH[0..138]), SERVER_HELLO without s_confirm */
	th1[0].p = ch;
	th1[0].n = PPCP_CLIENT_HELLO_LEN;
	th1[1].p = sh138;
	th1[1].n = PPCP_SERVER_HELLO_LEN - PPCP_HASH_LEN;
	ret = ppcp__sha256(k->th1, th1, 2);
	if (ret != 0)
		goto out;
	/* §4: c_hs = Derive(HS, "c hs", TH1), s_hs = Derive(HS, "s hs", TH1) */
	ret = ks_derive(k->c_hs, k->hs, "c hs", k->th1);
	if (ret != 0)
		goto out;
	ret = ks_derive(k->s_hs, k->hs, "s hs", k->th1);
	if (ret != 0)
		goto out;
	/* §4: s_confirm = HMAC(ExpandLabel(s_hs, "finished", "", 32), TH1) */
	ret = ppcp__expand_label(fin_s, 32, k->s_hs, "finished", NULL, 0);
	if (ret != 0)
		goto out;
	ret = ppcp__hmac_sha256(k->s_confirm, fin_s, sizeof(fin_s), k->th1, 32);
	if (ret != 0)
		goto out;
	/* §4: MS = HKDF-Extract(salt = Derive(HS, "derived", E), ikm = 0^32).
	 * MS depends on HS alone, so it is computed here and HS can be wiped
	 * by the caller as soon as the handshake secrets are no longer needed. */
	ret = ks_derive(salt, k->hs, "derived", e);
	if (ret != 0)
		goto out;
	ret = ppcp__hkdf_extract(k->ms, salt, sizeof(salt), zero32, sizeof(zero32));

out:
	if (ret != 0)
		ppcp_wipe(k, sizeof(*k));
	ppcp_wipe(es, sizeof(es));
	ppcp_wipe(salt, sizeof(salt));
	ppcp_wipe(fin_s, sizeof(fin_s));
	ppcp_wipe(e, sizeof(e));
	return ret;
}

int ppcp__ks_finish(ppcp__keys *k, const uint8_t *ch, const uint8_t *sh)
{
	uint8_t fin_c[32], ack[32];
	ppcp__iov tr[3];
	int ret;

	if (k == NULL || ch == NULL || sh == NULL)
		return PPCP_ERR_INVAL;

	tr[0].p = ch;
	tr[0].n = PPCP_CLIENT_HELLO_LEN;
	tr[1].p = sh;
	tr[1].n = PPCP_SERVER_HELLO_LEN;
	tr[2].p = k->c_confirm;
	tr[2].n = PPCP_HASH_LEN;

	/* §4: TH2 = H(CH ‖ SH), the whole 170-byte SERVER_HELLO */
	ret = ppcp__sha256(k->th2, tr, 2);
	if (ret != 0)
		goto out;
	/* §4: c_confirm = HMAC(ExpandLabel(c_hs, "finished", "", 32), TH2) */
	ret = ppcp__expand_label(fin_c, 32, k->c_hs, "finished", NULL, 0);
	if (ret != 0)
		goto out;
	ret = ppcp__hmac_sha256(k->c_confirm, fin_c, sizeof(fin_c), k->th2, 32);
	if (ret != 0)
		goto out;
	/* §4: TH3 = H(CH ‖ SH ‖ c_confirm) */
	ret = ppcp__sha256(k->th3, tr, 3);
	if (ret != 0)
		goto out;
	/* §4: s_ack = HMAC(ExpandLabel(s_hs, "ack", "", 32), TH3) */
	ret = ppcp__expand_label(ack, 32, k->s_hs, "ack", NULL, 0);
	if (ret != 0)
		goto out;
	ret = ppcp__hmac_sha256(k->s_ack, ack, sizeof(ack), k->th3, 32);
	if (ret != 0)
		goto out;
	/* §4: c_ap = Derive(MS, "c ap", TH3), s_ap = Derive(MS, "s ap", TH3) */
	ret = ks_derive(k->c_ap, k->ms, "c ap", k->th3);
	if (ret != 0)
		goto out;
	ret = ks_derive(k->s_ap, k->ms, "s ap", k->th3);

out:
	if (ret != 0)
		ppcp_wipe(k, sizeof(*k));
	ppcp_wipe(fin_c, sizeof(fin_c));
	ppcp_wipe(ack, sizeof(ack));
	return ret;
}

int ppcp__ks_traffic(uint8_t key[32], uint8_t iv[12], const uint8_t secret[32])
{
	int ret;

	if (key == NULL || iv == NULL || secret == NULL)
		return PPCP_ERR_INVAL;
	/* §4: key(S) = ExpandLabel(S, "key", "", 32) */
	ret = ppcp__expand_label(key, PPCP_KEY_LEN, secret, "key", NULL, 0);
	if (ret != 0)
		goto out;
	/* §4: iv(S) = ExpandLabel(S, "iv", "", 12) */
	ret = ppcp__expand_label(iv, PPCP_REC_NONCE, secret, "iv", NULL, 0);

out:
	if (ret != 0) {
		ppcp_wipe(key, PPCP_KEY_LEN);
		ppcp_wipe(iv, PPCP_REC_NONCE);
	}
	return ret;
}

int ppcp__ks_update(uint8_t next[32], const uint8_t secret[32])
{
	uint8_t tmp[32];
	int ret;

	if (next == NULL || secret == NULL)
		return PPCP_ERR_INVAL;
	/* §4, §8.3: S' = ExpandLabel(S, "upd", "", 32).  Computed into a
	 * temporary because next may alias secret. */
	ret = ppcp__expand_label(tmp, sizeof(tmp), secret, "upd", NULL, 0);
	if (ret != 0)
		goto out;
	memcpy(next, tmp, sizeof(tmp));

out:
	ppcp_wipe(tmp, sizeof(tmp));
	return ret;
}
