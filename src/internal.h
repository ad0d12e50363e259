/*
 * internal.h - private helpers shared by the library's source files and its
 * tests: big-endian load/store, the crypto wrapper (crypto.c is the only
 * file that includes OpenSSL), the codecs and the engine's test hooks.
 */
#ifndef PPCP_INTERNAL_H
#define PPCP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ppcp.h"

/* ---- constant-time analysis ------------------------------------------- */
/* ppcp__declassify marks bytes that derive from secrets but are public by
 * design (a MAC verdict, a nonce on the wire, authenticated plaintext) as
 * defined for valgrind's memcheck, so that the ctgrind test (tests/ct/)
 * reports every branch on a secret in our code and nothing else.  Outside
 * valgrind it is a handful of no-op instructions. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define ppcp__declassify(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#endif
#endif
#ifndef ppcp__declassify
#define ppcp__declassify(p, n) ((void)(p), (void)(n))
#endif

/* ---- big-endian ------------------------------------------------------- */
static inline uint32_t ppcp__load_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void ppcp__store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void ppcp__store_be64(uint8_t *p, uint64_t v)
{
	ppcp__store_be32(p, (uint32_t)(v >> 32));
	ppcp__store_be32(p + 4, (uint32_t)v);
}

/* ---- crypto.c: the OpenSSL 3 wrapper ---------------------------------- */

/* Fill out[len] from the system CSPRNG. 0 or PPCP_ERR_RNG. */
int ppcp__rand(uint8_t *out, size_t len);
/* 1 if a[n] == b[n], in time independent of the contents. */
int ppcp__ct_equal(const void *a, const void *b, size_t n);

typedef struct ppcp__iov {
	const void *p;
	size_t n;
} ppcp__iov;

/* SHA-256 of the concatenation of n pieces. 0 or PPCP_ERR_CRYPTO. */
int ppcp__sha256(uint8_t out[32], const ppcp__iov *v, size_t n);
/* HMAC-SHA256(key, msg). 0 or PPCP_ERR_CRYPTO. */
int ppcp__hmac_sha256(uint8_t out[32], const uint8_t *key, size_t klen, const uint8_t *msg,
		      size_t mlen);
/* HKDF-Extract(salt, ikm) (RFC 5869; an empty salt means 32 zero bytes). */
int ppcp__hkdf_extract(uint8_t prk[32], const uint8_t *salt, size_t slen, const uint8_t *ikm,
		       size_t ilen);
/* HKDF-Expand(prk, info, olen).  olen > 255*32 gives PPCP_ERR_INVAL and
 * writes nothing. */
int ppcp__hkdf_expand(uint8_t *out, size_t olen, const uint8_t *prk, size_t prklen,
		      const uint8_t *info, size_t ilen);

/* P-256 ephemeral key pair.  pub is the SEC1 uncompressed encoding. */
typedef struct ppcp__p256 {
	void *priv; /* BIGNUM *, secure heap, BN_FLG_CONSTTIME */
	uint8_t pub[PPCP_POINT_LEN];
} ppcp__p256;

/* Our own strict check of a peer's point, before OpenSSL sees it: exactly
 * 65 bytes, first byte 0x04, 0 <= x,y < p, y^2 == x^3 - 3x + b (mod p).
 * Returns 0 or PPCP_ERR_BAD_POINT. */
int ppcp__p256_check_point(const uint8_t *pt, size_t len);
/* Build a key pair from a 32-byte big-endian scalar d (1 <= d < n, else
 * PPCP_ERR_INVAL).  The engine draws d from its RNG. */
int ppcp__p256_from_private(ppcp__p256 *kp, const uint8_t d[32]);
/* Z = x-coordinate of d * peer.  Calls ppcp__p256_check_point first. */
int ppcp__p256_ecdh(uint8_t z[32], const ppcp__p256 *kp, const uint8_t *peer, size_t peer_len);
/* Free and wipe; safe on a zeroed struct. */
void ppcp__p256_free(ppcp__p256 *kp);

/* AES-256-GCM with a 96-bit IV and a 128-bit tag, one context per key.
 * Any other key or IV size is refused with PPCP_ERR_INVAL. */
typedef struct ppcp__aead ppcp__aead;
int ppcp__aead_new(ppcp__aead **out, const uint8_t *key, size_t klen);
void ppcp__aead_free(ppcp__aead *a); /* wipes; NULL is a no-op */
/* out gets ptlen bytes of ciphertext followed by the 16-byte tag. */
int ppcp__aead_seal(ppcp__aead *a, const uint8_t *iv, size_t ivlen, const uint8_t *aad,
		    size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t *out);
/* in holds inlen >= 16 bytes: ciphertext then tag; out gets inlen - 16
 * bytes.  On failure out is wiped and PPCP_ERR_DECRYPT returned. */
int ppcp__aead_open(ppcp__aead *a, const uint8_t *iv, size_t ivlen, const uint8_t *aad,
		    size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out);

/* ---- keysched.c: docs/PROTOCOL.md §4 ---------------------------------- */

/* ExpandLabel(S, label, ctx, L) with the "ppcp1 " prefix.  L <= 255*32. */
int ppcp__expand_label(uint8_t *out, size_t L, const uint8_t S[32], const char *label,
		       const uint8_t *ctx, size_t ctxlen);

/* Every value of the key schedule.  Wiped with ppcp_wipe by the owner. */
typedef struct ppcp__keys {
	uint8_t th1[32], th2[32], th3[32];
	uint8_t hs[32], ms[32];
	uint8_t c_hs[32], s_hs[32];
	uint8_t s_confirm[32], c_confirm[32], s_ack[32];
	uint8_t c_ap[32], s_ap[32];
} ppcp__keys;

/* First half, run as soon as Z and the hello bytes without s_confirm are
 * known: ES, HS, TH1, c_hs, s_hs, s_confirm, MS.  ch is the 106-byte
 * CLIENT_HELLO body, sh138 the first 138 bytes of the SERVER_HELLO body. */
int ppcp__ks_handshake(ppcp__keys *k, const uint8_t *psk, size_t psk_len, const uint8_t z[32],
		       const uint8_t *ch, const uint8_t *sh138);
/* Second half, once the whole 170-byte SERVER_HELLO body is known: TH2,
 * c_confirm, TH3, s_ack, c_ap, s_ap. */
int ppcp__ks_finish(ppcp__keys *k, const uint8_t *ch, const uint8_t *sh);
/* key(S) and iv(S). */
int ppcp__ks_traffic(uint8_t key[32], uint8_t iv[12], const uint8_t secret[32]);
/* S' = ExpandLabel(S, "upd", "", 32); next may alias secret. */
int ppcp__ks_update(uint8_t next[32], const uint8_t secret[32]);

/* ---- msg.c: JSON with the checks of PROTOCOL.md §7 -------------------- */
struct json_t;
/* Parse in[len] as one JSON object: valid UTF-8, no \u0000, no duplicate
 * key, nesting <= PPCP_MAX_JSON_DEPTH (checked before jansson runs).
 * Returns 0 and a new reference in *out, PPCP_ERR_BAD_MESSAGE, or
 * PPCP_ERR_NOMEM when jansson ran out of memory. */
int ppcp__json_parse(const uint8_t *in, size_t len, struct json_t **out);
/* Canonical compact encoding (sorted keys, ASCII).  Returns a malloc'd
 * string (free()) and its length, or NULL on allocation failure. */
char *ppcp__json_dump(const struct json_t *v, size_t *len);
/* 1 if s is 1..64 bytes of [A-Za-z0-9._-] (PROTOCOL.md §10.3). */
int ppcp__valid_ident(const char *s);
/* Fetch an integer member: 0, or PPCP_ERR_BAD_MESSAGE when absent, not an
 * integer, or outside [min, max]. */
int ppcp__json_get_int(const struct json_t *obj, const char *key, int64_t min, int64_t max,
		       int64_t *out);
/* Fetch a string member (borrowed): 0 or PPCP_ERR_BAD_MESSAGE when absent,
 * not a string, or longer than maxlen bytes. */
int ppcp__json_get_str(const struct json_t *obj, const char *key, size_t maxlen,
		       const char **out);

/* A decoded envelope.  Every pointer is borrowed from root, which the
 * envelope owns (ppcp__msg_release). */
typedef struct ppcp__envelope {
	enum ppcp_msg_type type; /* PPCP_MSG_UNKNOWN for a type we do not know */
	const char *type_name;
	const char *id; /* NULL when unreadable */
	int64_t ts;
	struct json_t *payload;
	struct json_t *root;
} ppcp__envelope;

/* Decode one JSON message: strict parse, envelope, payload shape of known
 * types.  Returns 0, PPCP_ERR_BAD_MESSAGE, PPCP_ERR_BAD_MSG_VERSION or
 * PPCP_ERR_NOMEM; on
 * error env may still hold what could be read (id) and must be released. */
int ppcp__msg_decode(const uint8_t *in, size_t len, ppcp__envelope *env);
void ppcp__msg_release(ppcp__envelope *env);
/* Check the payload shape of type t (PROTOCOL.md §6, §8). */
int ppcp__msg_check_payload(enum ppcp_msg_type t, const struct json_t *p);
/* Encode the envelope canonically; payload NULL = JSON null.  Returns a
 * malloc'd string (free()) and its length, or NULL on allocation failure. */
char *ppcp__msg_encode(const char *type_name, const char *id, int64_t ts,
		       const struct json_t *payload, size_t *len);

/* ---- frame.c: length prefix and records (PROTOCOL.md §2, §5) ---------- */

/* A growable output buffer: bytes [off, len) are pending. */
typedef struct ppcp__buf {
	uint8_t *p;
	size_t off, len, cap;
} ppcp__buf;
/* Make room for extra more bytes at p + len. 0 or PPCP_ERR_NOMEM. */
int ppcp__buf_reserve(ppcp__buf *b, size_t extra);
void ppcp__buf_free(ppcp__buf *b); /* wipes */

typedef struct ppcp__frame_reader {
	uint8_t hdr[PPCP_LEN_PREFIX];
	size_t hdr_have;
	uint32_t body_len;
	size_t body_have;
	uint8_t *body;
	size_t body_cap;
} ppcp__frame_reader;
/* Consume from (*in, *len) until one frame is complete.  Returns 1 with the
 * body in (*body, *blen) (borrowed: valid until the next call), 0 when more
 * input is needed, or PPCP_ERR_FRAME_TOO_LARGE / PPCP_ERR_FRAME_TOO_SHORT
 * when the length is outside [min, max], judged before allocation. */
int ppcp__frame_read(ppcp__frame_reader *r, const uint8_t **in, size_t *len, uint32_t min,
		     uint32_t max, const uint8_t **body, uint32_t *blen);
/* 1 if part of a frame has been read. */
int ppcp__frame_reader_partial(const ppcp__frame_reader *r);
void ppcp__frame_reader_free(ppcp__frame_reader *r);

/* One direction of traffic. */
typedef struct ppcp__dir {
	ppcp__aead *aead;
	uint8_t secret[32];
	uint8_t iv[12];
	uint64_t seq;
	uint64_t bytes;
} ppcp__dir;
/* Install a traffic secret: key, iv, seq = 0.  Wipes the previous key. */
int ppcp__dir_set(ppcp__dir *d, const uint8_t secret[32]);
/* KEY_UPDATE: S' = ExpandLabel(S, "upd", "", 32), then as ppcp__dir_set. */
int ppcp__dir_update(ppcp__dir *d);
void ppcp__dir_clear(ppcp__dir *d);
/* Append one record (len ‖ nonce ‖ ct ‖ tag) holding p1 ‖ p2 to out. */
int ppcp__record_seal(ppcp__dir *d, ppcp__buf *out, const uint8_t *p1, size_t n1,
		      const uint8_t *p2, size_t n2);
/* Check the nonce, decrypt body[blen] into pt (blen - 28 bytes).  Returns
 * 0, PPCP_ERR_SEQUENCE (unexpected nonce) or PPCP_ERR_DECRYPT (pt wiped). */
int ppcp__record_open(ppcp__dir *d, const uint8_t *body, uint32_t blen, uint8_t *pt);

/* ---- hello.c: raw hellos (PROTOCOL.md §3) ---------------------------- */
typedef struct ppcp__hello {
	const uint8_t *point; /* 65 bytes, checked on the curve */
	const uint8_t *nonce; /* 32 bytes */
	const uint8_t *sid_hash; /* SERVER_HELLO only */
	const uint8_t *confirm;  /* SERVER_HELLO only */
} ppcp__hello;
/* Write HDR(type) ‖ 0x41 ‖ point ‖ nonce into out (106 bytes; the caller
 * appends sid_hash and s_confirm for a SERVER_HELLO). */
void ppcp__hello_write(uint8_t *out, uint8_t type, const uint8_t point[65],
		       const uint8_t nonce[32]);
/* Parse a hello body of the given type (1 or 2); pointers into body. */
int ppcp__hello_parse(const uint8_t *body, size_t len, uint8_t type, ppcp__hello *h);

/* ---- extension names (errors.c), in the order of PROTOCOL.md §11 ------- */
typedef struct ppcp__ext_name {
	uint32_t bit;
	const char *name;
} ppcp__ext_name;
extern const ppcp__ext_name ppcp__ext_names[];
extern const size_t ppcp__ext_count;

/* ---- FILE_CHUNK fast path (msg.c) ------------------------------------ */
#define PPCP__MAX_SAFE_INT ((UINT64_C(1) << 53) - 1)
/* Room ppcp__msg_encode_chunk needs for an id and datalen bytes. */
size_t ppcp__msg_chunk_size(size_t idlen, size_t datalen);
/* The canonical FILE_CHUNK data message {"data","last","offset"}; returns
 * its length, or PPCP_ERR_INVAL (bad id, cap too small, offset >= 2^53). */
long ppcp__msg_encode_chunk(char *out, size_t cap, const char *id, int64_t ts, uint64_t offset,
			    int last, const uint8_t *data, size_t len);
/* 1 and env filled when in[len] is exactly that canonical form, 0 when it
 * is not (use ppcp__msg_decode), or PPCP_ERR_NOMEM. */
int ppcp__msg_decode_chunk(const uint8_t *in, size_t len, ppcp__envelope *env);

/* ---- base64 (msg.c), RFC 4648 with padding, strict ------------------- */
size_t ppcp__b64_encode(char *out, const uint8_t *in, size_t len); /* out: 4*ceil(len/3)+1 */
/* Decode exactly; returns the length, or -1 on any non-canonical input or
 * if the result would exceed cap. */
long ppcp__b64_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* ---- conn.c test hooks ------------------------------------------------ */
/* Set the next sequence number of the sending (tx=1) or receiving side. */
void ppcp__conn_test_set_seq(ppcp_conn *c, int tx, uint64_t seq);
/* Send KEY_UPDATE now (the extension must be in force). */
int ppcp__conn_key_update(ppcp_conn *c);
const ppcp__dir *ppcp__conn_dir(const ppcp_conn *c, int tx);
/* Bytes of buffer the connection holds (capacity, not content). */
size_t ppcp__conn_buffered(const ppcp_conn *c);

#endif /* PPCP_INTERNAL_H */
