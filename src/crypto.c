/*
 * crypto.c - the OpenSSL 3 wrapper.  The only file of the project that
 * includes <openssl/...>; everything else sees the small interface of
 * internal.h.
 *
 * Implementation notes:
 *  - Every function returns 0 or a PPCP_ERR_* code and never prints or
 *    aborts.  OpenSSL failures become PPCP_ERR_CRYPTO, and whatever OpenSSL
 *    queued while failing is cleared from its error queue, so that a later
 *    unrelated caller on the thread does not find it there.
 *  - A peer's P-256 point passes our own check (ppcp__p256_check_point)
 *    before OpenSSL sees it: OpenSSL 3.0 imports compressed and hybrid
 *    encodings and the point at infinity, which PPCP's wire format forbids.
 *    The check is plain BIGNUM arithmetic on public data, so it need not be
 *    constant time.  P-256 has cofactor 1: a point on the curve is in the
 *    prime-order group, so no subgroup check is needed.  OpenSSL's own
 *    second validation is skipped (EVP_PKEY_derive_set_peer_ex, check 0).
 *  - Scalars are carried in BN_secure_new() numbers flagged
 *    BN_FLG_CONSTTIME, and every temporary secret (scalar bytes, Z, HMAC
 *    blocks) is wiped with OPENSSL_cleanse before it is released.
 *  - HKDF (RFC 5869) is written out on top of HMAC rather than through
 *    EVP_KDF "HKDF": the two are a few lines each, and this avoids the
 *    provider's cap on the info length (32 KiB in 3.0.19, less in earlier
 *    3.0 releases), so any info works.  An empty salt
 *    is replaced by 32 zero bytes (RFC 5869 §2.2); HMAC pads its key with
 *    zeros anyway, so this only makes the rule visible.
 *  - Outputs may alias inputs: HMAC and HKDF copy the key into the MAC
 *    context and read the message before writing, which keysched.c relies
 *    on to derive S' from S in place.
 *  - An AES-256-GCM context (ppcp__aead) holds one EVP_CIPHER_CTX whose key
 *    is expanded once in ppcp__aead_new; seal and open only install the
 *    IV and the direction per record.  In-place operation (out == pt, or
 *    out == in) is supported, as EVP allows it for GCM; a partial overlap
 *    is not.  open copies the tag before decrypting and wipes out on every
 *    failure, so no unauthenticated plaintext is ever left behind.
 *  - The interface takes size_t lengths; OpenSSL's EVP update calls take
 *    int, so anything above INT_MAX is refused with PPCP_ERR_INVAL.
 *  - OpenSSL's own heap is not ours to wipe, except through its allocator
 *    hooks: ppcp_crypto_wipe_freed installs crypto_wipe_malloc/realloc/free,
 *    which zero every block before it goes back to libc.  OpenSSL 3.0's
 *    P-256 code frees a copy of the ECDH scalar unwiped (tests/test_faults.c
 *    built as test_secrets shows it); programs call it first in main().
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "internal.h"

#define CRYPTO_HASH_LEN 32
#define CRYPTO_HKDF_MAX (255 * CRYPTO_HASH_LEN)
#define CRYPTO_GCM_IV_LEN 12
#define CRYPTO_GCM_TAG_LEN 16

/* SEC 2 v2 §2.4.2: secp256r1's field prime p and coefficient b (a = -3). */
/* clang-format off */
static const uint8_t p256_p[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};
static const uint8_t p256_b[32] = {
	0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7,
	0xb3, 0xeb, 0xbd, 0x55, 0x76, 0x98, 0x86, 0xbc,
	0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53, 0xb0, 0xf6,
	0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b,
};
/* clang-format on */

/* Every failure path ends here.  Drop whatever OpenSSL queued while
 * failing: the library never prints it, and a stale entry would confuse
 * the next caller of OpenSSL on this thread that does look. */
static int crypto_fail(int err)
{
	ERR_clear_error();
	return err;
}

void ppcp_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

/* ---- OpenSSL's heap, wiped on release (ppcp_crypto_wipe_freed) ---------
 * malloc_usable_size covers the whole block, slack included, so nothing
 * that was ever written to it survives the free. */
static void *crypto_wipe_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void crypto_wipe_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static void *crypto_wipe_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		crypto_wipe_free(p, file, line);
		return NULL;
	}
	/* Never let realloc move the old contents and free them unwiped. */
	old = malloc_usable_size(p);
	q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	crypto_wipe_free(p, file, line);
	return q;
}

int ppcp_crypto_wipe_freed(void)
{
	CRYPTO_malloc_fn m;
	CRYPTO_realloc_fn r;
	CRYPTO_free_fn f;

	/* Already ours: nothing to do (OpenSSL 3.0 would accept them again
	 * while custom functions are in place). */
	CRYPTO_get_mem_functions(&m, &r, &f);
	if (m == crypto_wipe_malloc && r == crypto_wipe_realloc && f == crypto_wipe_free)
		return 0;
	if (!CRYPTO_set_mem_functions(crypto_wipe_malloc, crypto_wipe_realloc, crypto_wipe_free))
		return PPCP_ERR_CRYPTO;
	return 0;
}

/* ---- algorithms, fetched once ------------------------------------------
 * OpenSSL 3 looks an algorithm up in its provider on every use of the
 * legacy EVP_sha256()-style getters and of EVP_MAC_fetch(); fetching each
 * once per process removes that cost from every handshake (bench/RESULTS.md
 * R3).  The objects live until the process ends. */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_MD *crypto_sha256_md;
static EVP_MAC *crypto_hmac;
static EVP_CIPHER *crypto_aes_gcm;

static void crypto_fetch(void)
{
	crypto_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	crypto_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	crypto_aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

/* NULL when the fetch failed (then every use fails cleanly). */
static const EVP_MD *crypto_sha256(void)
{
	pthread_once(&crypto_once, crypto_fetch);
	return crypto_sha256_md;
}

/* ---- randomness and comparison ---------------------------------------- */

/* The kernel's CSPRNG directly: the same source OpenSSL seeds from, without
 * the cost of instantiating OpenSSL's DRBG in every short-lived process
 * (8 million instructions for the first RAND_bytes; bench/RESULTS.md R4). */
int ppcp__rand(uint8_t *out, size_t len)
{
	while (len > 0) {
		ssize_t n = getrandom(out, len > 256 ? 256 : len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return PPCP_ERR_RNG;
		out += n;
		len -= (size_t)n;
	}
	return 0;
}

int ppcp__ct_equal(const void *a, const void *b, size_t n)
{
	int equal = CRYPTO_memcmp(a, b, n) == 0;

	/* The verdict is public; the bytes compared are not. */
	ppcp__declassify(&equal, sizeof(equal));
	return equal;
}

/* ---- SHA-256, HMAC, HKDF ---------------------------------------------- */

int ppcp__sha256(uint8_t out[32], const ppcp__iov *v, size_t n)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int olen = 0;
	int ret = PPCP_ERR_CRYPTO;

	if (md == NULL)
		return crypto_fail(PPCP_ERR_NOMEM);
	if (EVP_DigestInit_ex(md, crypto_sha256(), NULL) != 1)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (v[i].n > 0 && EVP_DigestUpdate(md, v[i].p, v[i].n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, out, &olen) != 1 || olen != CRYPTO_HASH_LEN)
		goto out;
	ret = 0;
out:
	EVP_MD_CTX_free(md);
	return ret == 0 ? 0 : crypto_fail(ret);
}

/* ---- incremental SHA-256 (public: files are hashed as they stream) ---- */

struct ppcp_sha256 {
	EVP_MD_CTX *md;
};

int ppcp_sha256_new(ppcp_sha256 **out)
{
	ppcp_sha256 *h;

	*out = NULL;
	h = OPENSSL_zalloc(sizeof(*h));
	if (h == NULL)
		return PPCP_ERR_NOMEM;
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL || EVP_DigestInit_ex(h->md, crypto_sha256(), NULL) != 1) {
		ppcp_sha256_free(h);
		return crypto_fail(PPCP_ERR_CRYPTO);
	}
	*out = h;
	return 0;
}

int ppcp_sha256_update(ppcp_sha256 *h, const void *data, size_t len)
{
	if (len > 0 && EVP_DigestUpdate(h->md, data, len) != 1)
		return crypto_fail(PPCP_ERR_CRYPTO);
	return 0;
}

int ppcp_sha256_final(ppcp_sha256 *h, uint8_t out[32])
{
	unsigned int olen = 0;

	if (EVP_DigestFinal_ex(h->md, out, &olen) != 1 || olen != CRYPTO_HASH_LEN ||
	    EVP_DigestInit_ex(h->md, crypto_sha256(), NULL) != 1)
		return crypto_fail(PPCP_ERR_CRYPTO);
	return 0;
}

void ppcp_sha256_free(ppcp_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->md);
	OPENSSL_free(h);
}

/* A keyed HMAC-SHA256 context; key == NULL with klen == 0 is the empty key. */
static int crypto_hmac_new(EVP_MAC_CTX **out, const uint8_t *key, size_t klen)
{
	static const uint8_t empty[1];
	char digest[] = "SHA256";
	OSSL_PARAM params[2];
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	int ret = PPCP_ERR_CRYPTO;

	*out = NULL;
	pthread_once(&crypto_once, crypto_fetch);
	mac = crypto_hmac;
	if (mac == NULL)
		goto out;
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL) {
		ret = PPCP_ERR_NOMEM;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	/* A NULL key would mean "reuse the previous key"; pass a real one. */
	if (EVP_MAC_init(ctx, klen > 0 ? key : empty, klen, params) != 1)
		goto out;
	*out = ctx;
	ctx = NULL;
	ret = 0;
out:
	EVP_MAC_CTX_free(ctx); /* mac is the shared fetched one: not freed */
	return ret;
}

/* One HMAC over the concatenation of n pieces, on a keyed context.  The
 * context is re-initialised with its key first, so it can be reused. */
static int crypto_hmac_iov(EVP_MAC_CTX *ctx, uint8_t out[32], const ppcp__iov *v, size_t n)
{
	size_t olen = 0;

	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1)
		return PPCP_ERR_CRYPTO;
	for (size_t i = 0; i < n; i++) {
		if (v[i].n > 0 && EVP_MAC_update(ctx, v[i].p, v[i].n) != 1)
			return PPCP_ERR_CRYPTO;
	}
	if (EVP_MAC_final(ctx, out, &olen, CRYPTO_HASH_LEN) != 1 || olen != CRYPTO_HASH_LEN)
		return PPCP_ERR_CRYPTO;
	return 0;
}

int ppcp__hmac_sha256(uint8_t out[32], const uint8_t *key, size_t klen, const uint8_t *msg,
		      size_t mlen)
{
	ppcp__iov v = {msg, mlen};
	EVP_MAC_CTX *ctx;
	int ret;

	ret = crypto_hmac_new(&ctx, key, klen);
	if (ret == 0) {
		ret = crypto_hmac_iov(ctx, out, &v, 1);
		EVP_MAC_CTX_free(ctx);
	}
	return ret == 0 ? 0 : crypto_fail(ret);
}

/* RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM). */
int ppcp__hkdf_extract(uint8_t prk[32], const uint8_t *salt, size_t slen, const uint8_t *ikm,
		       size_t ilen)
{
	static const uint8_t zeros[CRYPTO_HASH_LEN];

	if (slen == 0) {
		salt = zeros;
		slen = sizeof(zeros);
	}
	return ppcp__hmac_sha256(prk, salt, slen, ikm, ilen);
}

/* RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = T(1) | T(2) | ... */
int ppcp__hkdf_expand(uint8_t *out, size_t olen, const uint8_t *prk, size_t prklen,
		      const uint8_t *info, size_t ilen)
{
	uint8_t t[CRYPTO_HASH_LEN];
	uint8_t counter = 0;
	ppcp__iov v[3];
	EVP_MAC_CTX *ctx = NULL;
	size_t done = 0;
	int ret;

	if (olen > CRYPTO_HKDF_MAX)
		return PPCP_ERR_INVAL;
	ret = crypto_hmac_new(&ctx, prk, prklen);
	if (ret != 0)
		goto out;
	while (done < olen) {
		size_t take = olen - done < sizeof(t) ? olen - done : sizeof(t);

		counter++;
		/* T(0) is the empty string. */
		v[0] = (ppcp__iov){t, counter == 1 ? 0 : sizeof(t)};
		v[1] = (ppcp__iov){info, ilen};
		v[2] = (ppcp__iov){&counter, 1};
		ret = crypto_hmac_iov(ctx, t, v, 3);
		if (ret != 0)
			goto out;
		memcpy(out + done, t, take);
		done += take;
	}
out:
	OPENSSL_cleanse(t, sizeof(t));
	EVP_MAC_CTX_free(ctx);
	if (ret != 0) {
		ppcp_wipe(out, olen);
		return crypto_fail(ret);
	}
	return 0;
}

/* ---- P-256 ------------------------------------------------------------- */

int ppcp__p256_check_point(const uint8_t *pt, size_t len)
{
	BN_CTX *bn;
	BIGNUM *p, *b, *x, *y, *lhs, *rhs, *t;
	int ret = PPCP_ERR_BAD_POINT;

	/* PROTOCOL.md: the key share is the 65-byte uncompressed SEC1 point
	 * 0x04 || X || Y; every other length and prefix is refused here. */
	if (pt == NULL || len != PPCP_POINT_LEN || pt[0] != 0x04)
		return PPCP_ERR_BAD_POINT;

	bn = BN_CTX_new();
	if (bn == NULL)
		return crypto_fail(PPCP_ERR_NOMEM);
	BN_CTX_start(bn);
	p = BN_CTX_get(bn);
	b = BN_CTX_get(bn);
	x = BN_CTX_get(bn);
	y = BN_CTX_get(bn);
	lhs = BN_CTX_get(bn);
	rhs = BN_CTX_get(bn);
	t = BN_CTX_get(bn);
	/* OpenSSL fails every BN_CTX_get after a first failure, so checking
	 * the last would do; checking each does not depend on that. */
	if (p == NULL || b == NULL || x == NULL || y == NULL || lhs == NULL || rhs == NULL ||
	    t == NULL) {
		ret = PPCP_ERR_NOMEM;
		goto out;
	}
	ret = PPCP_ERR_CRYPTO;
	if (BN_bin2bn(p256_p, 32, p) == NULL || BN_bin2bn(p256_b, 32, b) == NULL ||
	    BN_bin2bn(pt + 1, 32, x) == NULL || BN_bin2bn(pt + 33, 32, y) == NULL)
		goto out;

	/* Canonical coordinates only: x + p would satisfy the equation too. */
	if (BN_cmp(x, p) >= 0 || BN_cmp(y, p) >= 0) {
		ret = PPCP_ERR_BAD_POINT;
		goto out;
	}

	/* lhs = y^2, rhs = x^3 - 3x + b, both mod p. */
	if (!BN_mod_sqr(lhs, y, p, bn) || !BN_mod_sqr(t, x, p, bn) ||
	    !BN_mod_mul(rhs, t, x, p, bn) || !BN_mod_lshift1(t, x, p, bn) ||
	    !BN_mod_add(t, t, x, p, bn) || !BN_mod_sub(rhs, rhs, t, p, bn) ||
	    !BN_mod_add(rhs, rhs, b, p, bn))
		goto out;
	ret = BN_cmp(lhs, rhs) == 0 ? 0 : PPCP_ERR_BAD_POINT;
out:
	BN_CTX_end(bn);
	BN_CTX_free(bn);
	return ret == 0 ? 0 : crypto_fail(ret);
}

/* The P-256 group, built once (bench R2: a new EC_GROUP, an EVP_PKEY import
 * and an EVP derive per handshake were half of a server's instructions). */
static pthread_once_t p256_once = PTHREAD_ONCE_INIT;
static EC_GROUP *p256_group;

static void p256_init(void)
{
	p256_group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

static const EC_GROUP *p256(void)
{
	pthread_once(&p256_once, p256_init);
	return p256_group;
}

int ppcp__p256_from_private(ppcp__p256 *kp, const uint8_t d[32])
{
	const EC_GROUP *group = p256();
	EC_POINT *pub = NULL;
	BN_CTX *bn = NULL;
	BIGNUM *k = NULL;
	int ret = PPCP_ERR_NOMEM;

	memset(kp, 0, sizeof(*kp));
	if (group == NULL)
		return crypto_fail(PPCP_ERR_CRYPTO);
	bn = BN_CTX_secure_new();
	k = BN_secure_new();
	if (bn == NULL || k == NULL)
		goto out;
	BN_set_flags(k, BN_FLG_CONSTTIME);
	ret = PPCP_ERR_CRYPTO;
	if (BN_bin2bn(d, 32, k) == NULL)
		goto out;

	/* 1 <= d < n.  This comparison is not constant time; it only tells
	 * whether the RNG produced an out-of-range draw, which is rejected. */
	if (BN_is_zero(k) || BN_cmp(k, EC_GROUP_get0_order(group)) >= 0) {
		ret = PPCP_ERR_INVAL;
		goto out;
	}

	pub = EC_POINT_new(group);
	if (pub == NULL) {
		ret = PPCP_ERR_NOMEM;
		goto out;
	}
	/* X = d * G (OpenSSL's P-256 code multiplies in constant time). */
	if (EC_POINT_mul(group, pub, k, NULL, NULL, bn) != 1 ||
	    EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, kp->pub, sizeof(kp->pub),
			       bn) != sizeof(kp->pub))
		goto out;
	kp->priv = k;
	k = NULL;
	ret = 0;
out:
	EC_POINT_free(pub);
	BN_clear_free(k);
	BN_CTX_free(bn);
	if (ret != 0) {
		OPENSSL_cleanse(kp, sizeof(*kp));
		return crypto_fail(ret);
	}
	return 0;
}

int ppcp__p256_ecdh(uint8_t z[32], const ppcp__p256 *kp, const uint8_t *peer, size_t peer_len)
{
	const EC_GROUP *group = p256();
	EC_POINT *P = NULL, *R = NULL;
	BN_CTX *bn = NULL;
	BIGNUM *x;
	int ret;

	if (kp == NULL || kp->priv == NULL || group == NULL) {
		ret = PPCP_ERR_INVAL;
		goto out;
	}
	/* Our own check first: on the curve, canonical coordinates,
	 * uncompressed; P-256 has cofactor 1, so no subgroup check. */
	ret = ppcp__p256_check_point(peer, peer_len);
	if (ret != 0)
		goto out;
	ret = PPCP_ERR_NOMEM;
	bn = BN_CTX_secure_new();
	if (bn == NULL)
		goto out;
	BN_CTX_start(bn); /* ended at out: whenever bn exists */
	P = EC_POINT_new(group);
	R = EC_POINT_new(group);
	if (P == NULL || R == NULL)
		goto out;
	x = BN_CTX_get(bn);
	if (x == NULL)
		goto out;
	ret = PPCP_ERR_CRYPTO;
	/* Z = x-coordinate of d * P, 32 bytes big-endian (PROTOCOL.md §4). */
	if (EC_POINT_oct2point(group, P, peer, PPCP_POINT_LEN, bn) != 1 ||
	    EC_POINT_mul(group, R, NULL, P, (const BIGNUM *)kp->priv, bn) != 1 ||
	    EC_POINT_is_at_infinity(group, R) ||
	    EC_POINT_get_affine_coordinates(group, R, x, NULL, bn) != 1 ||
	    BN_bn2binpad(x, z, 32) != 32)
		goto out;
	ret = 0;
out:
	if (bn != NULL) {
		BN_CTX_end(bn);
		BN_CTX_free(bn);
	}
	EC_POINT_clear_free(R);
	EC_POINT_free(P);
	if (ret != 0) {
		OPENSSL_cleanse(z, 32);
		return crypto_fail(ret);
	}
	return 0;
}

void ppcp__p256_free(ppcp__p256 *kp)
{
	if (kp == NULL)
		return;
	BN_clear_free(kp->priv);
	OPENSSL_cleanse(kp, sizeof(*kp));
}

/* ---- AES-256-GCM ------------------------------------------------------- */

struct ppcp__aead {
	EVP_CIPHER_CTX *ctx; /* key expanded once; IV and direction set per call */
};

int ppcp__aead_new(ppcp__aead **out, const uint8_t *key, size_t klen)
{
	ppcp__aead *a;
	int ret = PPCP_ERR_NOMEM;

	*out = NULL;
	if (key == NULL || klen != PPCP_KEY_LEN)
		return PPCP_ERR_INVAL;
	a = OPENSSL_zalloc(sizeof(*a));
	if (a == NULL)
		goto out;
	a->ctx = EVP_CIPHER_CTX_new();
	if (a->ctx == NULL)
		goto out;
	/* The default GCM IV length is 12 bytes, the only one we use. */
	ret = PPCP_ERR_CRYPTO;
	pthread_once(&crypto_once, crypto_fetch);
	if (crypto_aes_gcm == NULL ||
	    EVP_EncryptInit_ex(a->ctx, crypto_aes_gcm, NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_get_iv_length(a->ctx) != CRYPTO_GCM_IV_LEN)
		goto out;
	*out = a;
	a = NULL;
	ret = 0;
out:
	ppcp__aead_free(a);
	return ret == 0 ? 0 : crypto_fail(ret);
}

void ppcp__aead_free(ppcp__aead *a)
{
	if (a == NULL)
		return;
	/* EVP_CIPHER_CTX_free clears the expanded key. */
	EVP_CIPHER_CTX_free(a->ctx);
	OPENSSL_clear_free(a, sizeof(*a));
}

static int aead_check(const ppcp__aead *a, size_t ivlen, size_t aadlen, size_t len)
{
	if (a == NULL || ivlen != CRYPTO_GCM_IV_LEN || aadlen > INT_MAX || len > INT_MAX)
		return PPCP_ERR_INVAL;
	return 0;
}

int ppcp__aead_seal(ppcp__aead *a, const uint8_t *iv, size_t ivlen, const uint8_t *aad,
		    size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	int n = 0;
	int ret;

	ret = aead_check(a, ivlen, aadlen, ptlen);
	if (ret != 0)
		return ret;
	ret = PPCP_ERR_CRYPTO;
	if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, iv, 1) != 1)
		goto out;
	if (aadlen > 0 && EVP_CipherUpdate(a->ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	if (ptlen > 0 &&
	    (EVP_CipherUpdate(a->ctx, out, &n, pt, (int)ptlen) != 1 || (size_t)n != ptlen))
		goto out;
	if (EVP_CipherFinal_ex(a->ctx, out + ptlen, &n) != 1 || n != 0)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_GCM_TAG_LEN, out + ptlen) != 1)
		goto out;
	ret = 0;
out:
	if (ret != 0) {
		ppcp_wipe(out, ptlen + CRYPTO_GCM_TAG_LEN);
		return crypto_fail(ret);
	}
	return 0;
}

int ppcp__aead_open(ppcp__aead *a, const uint8_t *iv, size_t ivlen, const uint8_t *aad,
		    size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out)
{
	uint8_t tag[CRYPTO_GCM_TAG_LEN];
	size_t ctlen;
	int n = 0;
	int ret;

	if (inlen < CRYPTO_GCM_TAG_LEN)
		return a == NULL || ivlen != CRYPTO_GCM_IV_LEN ? PPCP_ERR_INVAL : PPCP_ERR_DECRYPT;
	ctlen = inlen - CRYPTO_GCM_TAG_LEN;
	ret = aead_check(a, ivlen, aadlen, ctlen);
	if (ret != 0)
		return ret;
	/* Copy the tag first: with out == in, decryption never reaches it, but
	 * the copy keeps that reasoning out of the picture. */
	memcpy(tag, in + ctlen, sizeof(tag));
	ret = PPCP_ERR_DECRYPT;
	if (EVP_CipherInit_ex(a->ctx, NULL, NULL, NULL, iv, 0) != 1)
		goto out;
	if (aadlen > 0 && EVP_CipherUpdate(a->ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	if (ctlen > 0 &&
	    (EVP_CipherUpdate(a->ctx, out, &n, in, (int)ctlen) != 1 || (size_t)n != ctlen))
		goto out;
	if (EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1)
		goto out;
	/* The tag is compared in constant time inside EVP_CipherFinal_ex;
	 * whether it matched is public. */
	int ok = EVP_CipherFinal_ex(a->ctx, out + ctlen, &n);
	ppcp__declassify(&ok, sizeof(ok));
	if (ok != 1 || n != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0) {
		/* No unauthenticated plaintext reaches the caller. */
		ppcp_wipe(out, ctlen);
		return crypto_fail(ret);
	}
	return 0;
}
