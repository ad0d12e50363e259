/*
 * test_faults.c - fault injection (adversarial.md T45): every allocation of
 * a whole session (libc allocations of the library through --wrap, jansson's
 * through json_set_alloc_funcs, OpenSSL's through CRYPTO_set_mem_functions),
 * every call the library makes into OpenSSL that can fail (each wrapped at
 * link time with --wrap, so only the library's own call sites are hit, not
 * OpenSSL's internal calls), and every draw of the RNG (the configured one
 * and getrandom()) is made to fail in turn.  Each run must end in a clean
 * error or a clean success: no crash, no sanitizer report, nothing leaked
 * (LeakSanitizer in the sanitizer build, valgrind in the valgrind label),
 * and never a session that goes on after a failure it did not report.
 *
 * The same wrappers measure two more rows: a malformed CLIENT_HELLO costs
 * the server no ECDH (T2, EC_POINT_mul is counted), and no secret of the
 * session (the PSK, every secret of the key schedule, every traffic key
 * before and after KEY_UPDATE, the ephemeral scalars) is ever left in heap
 * memory that is freed or reallocated (T26, T47): free() and realloc() are
 * wrapped and search every block they release.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <malloc.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sys/random.h>
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) 0
#endif

#include "internal.h"
#include "testutil.h"

/* One source, two programs: test_faults runs the sweeps with the test's
 * own OpenSSL allocators; test_secrets (PPCP_TEST_SECRETS) runs the search
 * for secrets with OpenSSL's heap configured as ppcpd and ppcp do it. */
#define SWEEP __attribute__((unused))

/* ---- failing allocators ----------------------------------------------- */

static unsigned long alloc_count, fail_at; /* fail_at == 0: never fail */
/* When set, session() checks that the client's sending keys are those of
 * the vectors (c_ap after the handshake, c_ap_1 after KEY_UPDATE), so that
 * the secrets watched in memory are the ones the session really uses. */
static int check_vector_keys;

static int alloc_should_fail(void)
{
	alloc_count++;
	return fail_at != 0 && alloc_count == fail_at;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return alloc_should_fail() ? NULL : __real_calloc(n, m);
}

/* ---- secrets in released heap memory (T26, T47) ----------------------
 * While `watching`, every block handed back by free() or moved by realloc()
 * is searched for each watched value before it is released.  Since the
 * sessions under test leak nothing, every heap block that ever held a
 * secret is released by the end of the session, so a secret that was not
 * wiped is found at the latest when its block goes. */
#define WATCH_MAX 48
static struct {
	const char *name;
	uint8_t v[32];
	size_t len;
} watch[WATCH_MAX];
static int n_watch, watching;
static char watch_found[512];
static unsigned long watch_blocks;

void __real_free(void *p);
void __wrap_free(void *p);

static void watch_scan(const void *p, size_t n)
{
	if (!watching || p == NULL || n == 0)
		return;
	/* memcheck: a block may hold bytes never written; searching them is
	 * not a use of undefined data by the library. */
	(void)VALGRIND_MAKE_MEM_DEFINED(p, n);
	watch_blocks++;
	for (int i = 0; i < n_watch; i++) {
		if (memmem(p, n, watch[i].v, watch[i].len) != NULL &&
		    strstr(watch_found, watch[i].name) == NULL) {
			/* To see who releases it: run under gdb with this set. */
			if (getenv("PPCP_WATCH_TRAP") != NULL && check_vector_keys)
				__builtin_trap();
			size_t used = strlen(watch_found);
			snprintf(watch_found + used, sizeof(watch_found) - used, "%s%s (a block of %zu)",
				 used ? ", " : "", watch[i].name, n);
		}
	}
}

void __wrap_free(void *p)
{
	if (watching && p != NULL)
		watch_scan(p, malloc_usable_size(p));
	__real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (alloc_should_fail())
		return NULL;
	if (watching && p != NULL && n == 0) {
		__wrap_free(p); /* realloc(p, 0) frees p: search it first */
		return NULL;
	}
	if (!watching || p == NULL)
		return __real_realloc(p, n);
	/* Move by hand so that the old block is searched before it goes. */
	size_t old = malloc_usable_size(p);
	void *q = __real_malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	__wrap_free(p);
	return q;
}

/* ---- failing OpenSSL calls ---------------------------------------------
 * Every OpenSSL function that src/crypto.c calls and that can fail, other
 * than the allocating constructors (the allocation sweep covers those) and
 * the one-time algorithm fetches.  Call number `ossl_fail_at` fails; its
 * name is kept for the report. */
static unsigned long ossl_count, ossl_fail_at;
static const char *ossl_failed_name;
static unsigned long ec_point_mul_calls;

static int ossl_should_fail(const char *name)
{
	ossl_count++;
	if (ossl_fail_at != 0 && ossl_count == ossl_fail_at) {
		ossl_failed_name = name;
		return 1;
	}
	return 0;
}

/* WRAP(ret, name, failure value, (params), (args)) */
#define WRAP(R, NAME, FAILV, PARAMS, ARGS)                                                         \
	R __real_##NAME PARAMS;                                                                    \
	R __wrap_##NAME PARAMS;                                                                    \
	R __wrap_##NAME PARAMS                                                                     \
	{                                                                                          \
		return ossl_should_fail(#NAME) ? (FAILV) : __real_##NAME ARGS;                     \
	}
/* clang-format off */
WRAP(int, EVP_CIPHER_CTX_ctrl, 0, (EVP_CIPHER_CTX *c, int t, int a, void *p), (c, t, a, p))
WRAP(int, EVP_CipherInit_ex, 0, (EVP_CIPHER_CTX *c, const EVP_CIPHER *ci, ENGINE *e,
     const unsigned char *k, const unsigned char *iv, int enc), (c, ci, e, k, iv, enc))
WRAP(int, EVP_EncryptInit_ex, 0, (EVP_CIPHER_CTX *c, const EVP_CIPHER *ci, ENGINE *e,
     const unsigned char *k, const unsigned char *iv), (c, ci, e, k, iv))
WRAP(int, EVP_CipherUpdate, 0, (EVP_CIPHER_CTX *c, unsigned char *o, int *ol,
     const unsigned char *i, int il), (c, o, ol, i, il))
WRAP(int, EVP_CipherFinal_ex, 0, (EVP_CIPHER_CTX *c, unsigned char *o, int *ol), (c, o, ol))
WRAP(int, EVP_DigestInit_ex, 0, (EVP_MD_CTX *c, const EVP_MD *t, ENGINE *e), (c, t, e))
WRAP(int, EVP_DigestUpdate, 0, (EVP_MD_CTX *c, const void *d, size_t n), (c, d, n))
WRAP(int, EVP_DigestFinal_ex, 0, (EVP_MD_CTX *c, unsigned char *md, unsigned int *n), (c, md, n))
WRAP(int, EVP_MAC_init, 0, (EVP_MAC_CTX *c, const unsigned char *k, size_t kl,
     const OSSL_PARAM p[]), (c, k, kl, p))
WRAP(int, EVP_MAC_update, 0, (EVP_MAC_CTX *c, const unsigned char *d, size_t n), (c, d, n))
WRAP(int, EVP_MAC_final, 0, (EVP_MAC_CTX *c, unsigned char *o, size_t *ol, size_t os),
     (c, o, ol, os))
WRAP(int, BN_mod_add, 0, (BIGNUM *r, const BIGNUM *a, const BIGNUM *b, const BIGNUM *m,
     BN_CTX *x), (r, a, b, m, x))
WRAP(int, BN_mod_sub, 0, (BIGNUM *r, const BIGNUM *a, const BIGNUM *b, const BIGNUM *m,
     BN_CTX *x), (r, a, b, m, x))
WRAP(int, BN_mod_mul, 0, (BIGNUM *r, const BIGNUM *a, const BIGNUM *b, const BIGNUM *m,
     BN_CTX *x), (r, a, b, m, x))
WRAP(int, BN_mod_sqr, 0, (BIGNUM *r, const BIGNUM *a, const BIGNUM *m, BN_CTX *x), (r, a, m, x))
WRAP(int, BN_mod_lshift1, 0, (BIGNUM *r, const BIGNUM *a, const BIGNUM *m, BN_CTX *x),
     (r, a, m, x))
WRAP(BIGNUM *, BN_bin2bn, NULL, (const unsigned char *s, int l, BIGNUM *r), (s, l, r))
WRAP(int, BN_bn2binpad, -1, (const BIGNUM *a, unsigned char *t, int l), (a, t, l))
WRAP(BIGNUM *, BN_CTX_get, NULL, (BN_CTX *x), (x))
WRAP(int, EC_POINT_oct2point, 0, (const EC_GROUP *g, EC_POINT *p, const unsigned char *b,
     size_t l, BN_CTX *x), (g, p, b, l, x))
WRAP(size_t, EC_POINT_point2oct, 0, (const EC_GROUP *g, const EC_POINT *p,
     point_conversion_form_t f, unsigned char *b, size_t l, BN_CTX *x), (g, p, f, b, l, x))
WRAP(int, EC_POINT_get_affine_coordinates, 0, (const EC_GROUP *g, const EC_POINT *p, BIGNUM *x,
     BIGNUM *y, BN_CTX *c), (g, p, x, y, c))
/* clang-format on */

int __real_EC_POINT_mul(const EC_GROUP *g, EC_POINT *r, const BIGNUM *n, const EC_POINT *q,
			const BIGNUM *m, BN_CTX *x);
int __wrap_EC_POINT_mul(const EC_GROUP *g, EC_POINT *r, const BIGNUM *n, const EC_POINT *q,
			const BIGNUM *m, BN_CTX *x);
int __wrap_EC_POINT_mul(const EC_GROUP *g, EC_POINT *r, const BIGNUM *n, const EC_POINT *q,
			const BIGNUM *m, BN_CTX *x)
{
	ec_point_mul_calls++;
	return ossl_should_fail("EC_POINT_mul") ? 0 : __real_EC_POINT_mul(g, r, n, q, m, x);
}

/* getrandom(): the library's default RNG (ppcp__rand). */
static int getrandom_fail;
ssize_t __real_getrandom(void *b, size_t n, unsigned int f);
ssize_t __wrap_getrandom(void *b, size_t n, unsigned int f);
ssize_t __wrap_getrandom(void *b, size_t n, unsigned int f)
{
	if (getrandom_fail) {
		errno = getrandom_fail;
		return -1;
	}
	return __real_getrandom(b, n, f);
}

static void *json_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : __real_malloc(n);
}

static void json_free(void *p)
{
	free(p);
}

SWEEP static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return alloc_should_fail() ? NULL : __real_malloc(n);
}

SWEEP static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

SWEEP static void ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

/* ---- a session driven in memory, tolerant of failure ------------------ */

static json_t *V;
static uint8_t PSK[32];

static void expect_secret(const ppcp__dir *d, const char *path)
{
	uint8_t want[32];
	tu_hex(tu_vec(V, path), want, sizeof(want));
	assert_memory_equal(d->secret, want, sizeof(want));
}

typedef struct side {
	uint8_t rng[64];
	size_t rng_off;
	unsigned long draws, fail_draw;
	int messages;
	char types[8];
} side;

static int side_rng(void *user, uint8_t *out, size_t len)
{
	side *s = user;
	s->draws++;
	if (s->fail_draw != 0 && s->draws == s->fail_draw)
		return -1;
	if (s->rng_off + len > sizeof(s->rng))
		return -1;
	memcpy(out, s->rng + s->rng_off, len);
	s->rng_off += len;
	return 0;
}

static void on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	(void)c;
	side *sd = user;
	if (sd->messages < 7)
		sd->types[sd->messages] = m->type_name[0];
	sd->messages++;
}

static int make(ppcp_conn **c, side *sd, enum ppcp_role role)
{
	ppcp_config cfg;
	ppcp_config_init(&cfg, role);
	cfg.psk = PSK;
	cfg.psk_len = sizeof(PSK);
	cfg.server_id = "srv-test";
	cfg.client_id = "cli-test";
	cfg.rng = side_rng;
	cfg.cb.on_message = on_message;
	cfg.user = sd;
	return ppcp_conn_new(c, &cfg, 0);
}

/* Move a's output to b.  Returns b's feed result. */
static int move(ppcp_conn *a, ppcp_conn *b)
{
	const uint8_t *d;
	size_t n = ppcp_conn_out(a, &d);
	uint8_t *copy;
	int ret;

	if (n == 0)
		return 0;
	copy = __real_malloc(n);
	if (copy == NULL)
		return PPCP_ERR_NOMEM;
	memcpy(copy, d, n);
	ppcp_conn_out_ack(a, n);
	ret = ppcp_conn_feed(b, copy, n, 0);
	free(copy);
	return ret;
}

/* A whole session: handshake, a COMMAND each way, a heartbeat, a key
 * update, BYE.  Returns 0 when every step worked, else the first error.
 * Whatever happens, both engines are consistent with what they returned:
 * an engine that reported no error is never FAILED, and one that failed
 * never reaches ESTABLISHED afterwards. */
static int session(side *cs, side *ss)
{
	ppcp_conn *c = NULL, *s = NULL;
	int ret;

	ret = make(&s, ss, PPCP_ROLE_SERVER);
	if (ret == 0)
		ret = make(&c, cs, PPCP_ROLE_CLIENT);
	if (ret != 0)
		goto out;
	for (int hop = 0; hop < 4 && ret == 0; hop++)
		ret = hop % 2 == 0 ? move(c, s) : move(s, c);
	if (ret != 0)
		goto out;
	if (ppcp_conn_state(c) != PPCP_ST_ESTABLISHED || ppcp_conn_state(s) != PPCP_ST_ESTABLISHED) {
		/* Only an error may stop the handshake. */
		ret = ppcp_conn_error(c) ? ppcp_conn_error(c) : ppcp_conn_error(s);
		assert_true(ret < 0);
		goto out;
	}
	if (check_vector_keys)
		expect_secret(ppcp__conn_dir(c, 1), "traffic.c_ap.secret");
	ret = ppcp_conn_send_json(c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"status\",\"args\":{}}",
				  NULL);
	if (ret == 0)
		ret = move(c, s);
	if (ret == 0)
		ret = ppcp_conn_send_json(s, PPCP_MSG_RESPONSE, "00000002",
					  "{\"done\":true,\"status\":{}}", NULL);
	if (ret == 0)
		ret = move(s, c);
	if (ret == 0)
		ret = ppcp_conn_on_timeout(c, PPCP_DEFAULT_HEARTBEAT_MS);
	if (ret == 0)
		ret = move(c, s);
	if (ret == 0)
		ret = move(s, c);
	if (ret == 0)
		ret = ppcp__conn_key_update(c);
	if (ret == 0 && check_vector_keys)
		expect_secret(ppcp__conn_dir(c, 1), "traffic.c_ap_1.secret");
	if (ret == 0)
		ret = ppcp_conn_send_json(c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"x\",\"args\":{}}",
					  NULL);
	if (ret == 0)
		ret = move(c, s);
	if (ret == 0)
		ret = move(s, c); /* an ERROR, if the server could not parse it */
	if (ret == 0)
		ret = ppcp_conn_close(c, "bye");
	if (ret == 0)
		ret = move(c, s);
	if (ret == 0 && ppcp_conn_state(s) != PPCP_ST_CLOSED) {
		/* The server could not parse the BYE: when the client hangs
		 * up, it reports a truncated session, not a clean end. */
		assert_int_equal(ppcp_conn_eof(s), PPCP_ERR_TRUNCATED);
		ret = PPCP_ERR_TRUNCATED;
	}
	if (ret == 0) {
		assert_int_equal(ppcp_conn_eof(s), 0);
		/* Nothing is lost silently: the server got COMMAND, HEARTBEAT,
		 * COMMAND and BYE and the client RESPONSE and HEARTBEAT_ACK, or
		 * a side could not parse one (jansson reports some allocation
		 * failures as malformed input) and told its peer with an ERROR. */
		int complete = ss->messages == 4 && cs->messages == 2;
		int reported = memchr(cs->types, 'E', sizeof(cs->types)) != NULL ||
			       memchr(ss->types, 'E', sizeof(ss->types)) != NULL;
		if (!complete && !reported)
			fail_msg("allocation %lu failing: server got %d messages (%.7s), client %d (%.7s)",
				 fail_at, ss->messages, ss->types, cs->messages, cs->types);
	}
out:
	if (c != NULL && ppcp_conn_error(c) == 0)
		assert_int_not_equal(ppcp_conn_state(c), PPCP_ST_FAILED);
	if (s != NULL && ppcp_conn_error(s) == 0)
		assert_int_not_equal(ppcp_conn_state(s), PPCP_ST_FAILED);
	ppcp_conn_free(c);
	ppcp_conn_free(s);
	return ret;
}

static void sides(side *cs, side *ss)
{
	memset(cs, 0, sizeof(*cs));
	memset(ss, 0, sizeof(*ss));
	tu_hex(tu_vec(V, "inputs.rng_client"), cs->rng, sizeof(cs->rng));
	tu_hex(tu_vec(V, "inputs.rng_server"), ss->rng, sizeof(ss->rng));
}


SWEEP static void test_every_allocation_failing_in_turn_fails_cleanly(void **state)
{
	side cs, ss;
	unsigned long total, failed = 0, nomem = 0;
	(void)state;

	/* A clean run counts the allocations. */
	sides(&cs, &ss);
	fail_at = 0;
	alloc_count = 0;
	assert_int_equal(session(&cs, &ss), 0);
	total = alloc_count;
	assert_true(total > 10);

	/* PPCP_TEST_QUICK (the valgrind run): every 97th allocation. */
	unsigned long step = getenv("PPCP_TEST_QUICK") != NULL ? 97 : 1;
	for (unsigned long k = 1; k <= total + 5; k += step) {
		int ret;
		sides(&cs, &ss);
		alloc_count = 0;
		fail_at = k;
		ret = session(&cs, &ss);
		fail_at = 0;
		if (ret != 0)
			failed++;
		/* A failed allocation surfaces as an error, or was one the
		 * code could do without (a cache); never as a crash, a leak or
		 * a session that goes on after it.  jansson reports some of its
		 * allocation failures as malformed input, so the side that
		 * could not parse fails closed with a protocol error (refusing
		 * the message, the AUTH or the proof) rather than NOMEM. */
		assert_true(ret <= 0);
		if (ret == PPCP_ERR_NOMEM)
			nomem++;
	}
	printf("fault injection: %lu allocations per session; %lu runs ended in a clean error, "
	       "%lu of them PPCP_ERR_NOMEM\n",
	       total, failed, nomem);
	assert_true(failed > 0 && nomem > 0);
	/* And a normal session still works afterwards. */
	sides(&cs, &ss);
	assert_int_equal(session(&cs, &ss), 0);
}

SWEEP static void test_every_rng_draw_failing_in_turn_fails_cleanly(void **state)
{
	side cs, ss;
	(void)state;
	for (int who = 0; who < 2; who++) {
		for (unsigned long k = 1; k <= 3; k++) {
			sides(&cs, &ss);
			(who ? &ss : &cs)->fail_draw = k;
			int ret = session(&cs, &ss);
			if ((who ? ss.draws : cs.draws) >= k)
				assert_int_equal(ret, PPCP_ERR_RNG);
		}
	}
}

SWEEP static void test_every_openssl_call_failing_in_turn_fails_cleanly(void **state)
{
	side cs, ss;
	unsigned long total;
	(void)state;

	sides(&cs, &ss);
	ossl_count = 0;
	ossl_fail_at = 0;
	assert_int_equal(session(&cs, &ss), 0);
	total = ossl_count;
	assert_true(total > 20);

	/* Which function failed, how often, and the errors it gave. */
	struct {
		const char *name;
		unsigned long runs;
		char errs[96];
	} seen[32];
	int n_seen = 0;
	unsigned long step = getenv("PPCP_TEST_QUICK") != NULL ? 13 : 1, runs = 0;
	for (unsigned long k = 1; k <= total; k += step) {
		sides(&cs, &ss);
		ossl_count = 0;
		ossl_fail_at = k;
		ossl_failed_name = NULL;
		int ret = session(&cs, &ss);
		ossl_fail_at = 0;
		runs++;
		/* The session makes the same calls as the clean run up to the
		 * failure, so call k is always reached. */
		assert_non_null(ossl_failed_name);
		/* Every one of these calls is needed: its failure must end
		 * the session with an error, never be ignored. */
		if (ret >= 0)
			fail_msg("OpenSSL call %lu (%s) failed and the session still ended in %d", k,
				 ossl_failed_name, ret);
		int i;
		for (i = 0; i < n_seen && strcmp(seen[i].name, ossl_failed_name) != 0; i++)
			;
		if (i == n_seen && n_seen < 32) {
			seen[n_seen].name = ossl_failed_name;
			seen[n_seen].runs = 0;
			seen[n_seen].errs[0] = 0;
			n_seen++;
		}
		if (i < n_seen) {
			seen[i].runs++;
			char e[16];
			snprintf(e, sizeof(e), " %d", ret);
			if (strstr(seen[i].errs, e) == NULL &&
			    strlen(seen[i].errs) + strlen(e) < sizeof(seen[i].errs))
				strcat(seen[i].errs, e);
		}
	}
	printf("OpenSSL fault injection: %lu wrapped calls per session, %lu runs, each one an error\n",
	       total, runs);
	for (int i = 0; i < n_seen; i++)
		printf("  %-32s failed in %3lu runs; errors:%s\n", seen[i].name, seen[i].runs,
		       seen[i].errs);
	assert_true(n_seen >= 10);
	sides(&cs, &ss);
	assert_int_equal(session(&cs, &ss), 0);
}

SWEEP static void test_getrandom_failing_is_an_rng_error(void **state)
{
	uint8_t b[32];
	ppcp_conn *c = NULL;
	ppcp_config cfg;
	(void)state;

	getrandom_fail = EIO;
	assert_int_equal(ppcp__rand(b, sizeof(b)), PPCP_ERR_RNG);
	/* A connection on the default RNG: the client's first draw is its
	 * ephemeral key, at ppcp_conn_new or at its first output. */
	ppcp_config_init(&cfg, PPCP_ROLE_CLIENT);
	cfg.psk = PSK;
	cfg.psk_len = sizeof(PSK);
	cfg.server_id = "srv-test";
	int ret = ppcp_conn_new(&c, &cfg, 0);
	if (ret == 0) {
		const uint8_t *d;
		assert_int_equal(ppcp_conn_out(c, &d), 0);
		assert_int_equal(ppcp_conn_error(c), PPCP_ERR_RNG);
		ppcp_conn_free(c);
	} else {
		assert_int_equal(ret, PPCP_ERR_RNG);
	}
	getrandom_fail = 0;
	assert_int_equal(ppcp__rand(b, sizeof(b)), 0);
}

/* T2: a CLIENT_HELLO that is malformed in any header field or in its point
 * is refused before the server does any point multiplication. */
SWEEP static void test_t2_malformed_client_hello_costs_no_ecdh(void **state)
{
	static const struct {
		const char *what;
		size_t off;
		uint8_t xor;
	} bad[] = {
		{"magic", 4, 0x01},	    {"version", 8, 0x02},  {"type", 9, 0x03},
		{"suite", 10, 0x04},	    {"reserved", 11, 0x80}, {"pub_len", 12, 0x01},
		{"point form", 13, 0x01}, {"point not on the curve", 77, 0x01},
	};
	uint8_t frame[110];
	side cs, ss;
	(void)state;

	tu_hex(tu_vec(V, "hello.client_hello_frame"), frame, sizeof(frame));
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		ppcp_conn *s = NULL;
		uint8_t f[110];
		const uint8_t *d;

		sides(&cs, &ss);
		assert_int_equal(make(&s, &ss, PPCP_ROLE_SERVER), 0);
		memcpy(f, frame, sizeof(f));
		if (i < sizeof(bad) / sizeof(bad[0]))
			f[bad[i].off] ^= bad[i].xor;
		ec_point_mul_calls = 0;
		int ret = ppcp_conn_feed(s, f, sizeof(f), 0);
		size_t out = ppcp_conn_out(s, &d);
		if (i < sizeof(bad) / sizeof(bad[0])) {
			if (ret >= 0 || out != 0 || ec_point_mul_calls != 0)
				fail_msg("bad %s: ret %d, %zu bytes out, %lu point multiplications",
					 bad[i].what, ret, out, ec_point_mul_calls);
		} else {
			/* Control: the genuine hello gets a SERVER_HELLO, and the
			 * counter does see the server's multiplications. */
			assert_int_equal(ret, 0);
			assert_int_equal(out, 4 + 170);
			/* Its ephemeral key (d * G) and the ECDH (d * X_c). */
			assert_int_equal(ec_point_mul_calls, 2);
			printf("T2: a valid CLIENT_HELLO costs the server %lu point multiplications, "
			       "each of %zu malformed ones 0\n",
			       ec_point_mul_calls, sizeof(bad) / sizeof(bad[0]));
		}
		ppcp_conn_free(s);
	}
}

static void watch_add(const char *name, const char *path, int reversed)
{
	assert_true(n_watch < WATCH_MAX);
	const char *hex = tu_vec(V, path);
	size_t len = strlen(hex) / 2;
	assert_true(len <= 32);
	uint8_t v[32];
	tu_hex(hex, v, len);
	watch[n_watch].name = name;
	watch[n_watch].len = len;
	for (size_t i = 0; i < len; i++)
		watch[n_watch].v[i] = reversed ? v[len - 1 - i] : v[i];
	n_watch++;
}

/* T26 and T47: no secret outlives its use in heap memory.  Every block
 * that the session frees or reallocates is searched for the PSK, each
 * secret of the key schedule, each traffic secret and key (including the
 * client's c_ap, replaced by KEY_UPDATE), and the ephemeral private
 * scalars and Z both as bytes and as OpenSSL holds a BIGNUM on this
 * machine (little-endian limbs, so the bytes reversed). */
static void watch_all_secrets(void)
{
	static const char *schedule[] = {"Z",  "ES",	     "derived_es", "HS",	 "c_hs",
					 "s_hs", "finished_s", "finished_c", "ack_key", "derived_hs",
					 "MS", "c_ap",	     "s_ap"};
	static const char *traffic[] = {"c_hs", "s_hs", "c_ap", "s_ap", "c_ap_1"};
	static char paths[40][48];
	int np = 0;

	n_watch = 0;
	watch_add("psk", "inputs.psk", 0);
	for (size_t i = 0; i < sizeof(schedule) / sizeof(schedule[0]); i++) {
		snprintf(paths[np], sizeof(paths[np]), "schedule.%s", schedule[i]);
		watch_add(schedule[i], paths[np++], 0);
	}
	for (size_t i = 0; i < sizeof(traffic) / sizeof(traffic[0]); i++) {
		snprintf(paths[np], sizeof(paths[np]), "traffic.%s.key", traffic[i]);
		watch_add(traffic[i], paths[np++], 0);
	}
	watch_add("c_ap_1 secret", "traffic.c_ap_1.secret", 0);
	watch_add("d_c", "inputs.d_c", 0);
	watch_add("d_s", "inputs.d_s", 0);
	watch_add("d_c as a BIGNUM", "inputs.d_c", 1);
	watch_add("d_s as a BIGNUM", "inputs.d_s", 1);
	watch_add("Z as a BIGNUM", "schedule.Z", 1);
}

/* One session (handshake, commands, KEY_UPDATE, BYE) with every released
 * block searched; the number of blocks searched is returned. */
static unsigned long watched_session(void)
{
	side cs, ss;

	watch_all_secrets();
	watching = 1;
	watch_found[0] = 0;
	watch_blocks = 0;
	check_vector_keys = 1;
	sides(&cs, &ss);
	int ret = session(&cs, &ss);
	check_vector_keys = 0;
	watching = 0;
	assert_int_equal(ret, 0);
	return watch_blocks;
}

/* Blocks searched in the control session, with OpenSSL on the test's
 * pass-through allocator (so every OpenSSL block is searched too). */
static unsigned long control_blocks;

/* Controls first, with OpenSSL's heap on the test's allocator, which frees
 * without wiping: the search finds a secret freed unwiped (a block of our
 * own), and reaches OpenSSL's blocks (whatever OpenSSL leaves in them is
 * reported). */
SWEEP static void test_control_the_search_sees_unwiped_blocks(void **state)
{
	(void)state;
	watch_all_secrets();
	watching = 1;
	watch_found[0] = 0;
	uint8_t *blk = malloc(100);
	assert_non_null(blk);
	memset(blk, 0, 100);
	memcpy(blk + 33, watch[12].v, 32); /* c_ap */
	void (*volatile release)(void *) = free; /* keeps the stores before it */
	release(blk);
	watching = 0;
	assert_non_null(strstr(watch_found, "c_ap"));

	/* The first session of a process also releases OpenSSL's one-time
	 * set-up; the second is the steady state the others compare with. */
	unsigned long first = watched_session();
	control_blocks = watched_session();
	printf("control (OpenSSL's heap not wiped): %lu and %lu released blocks searched; %s%s\n",
	       first, control_blocks, watch_found[0] ? "found: " : "nothing found",
	       watch_found[0] ? watch_found : "");
	assert_true(control_blocks > 500);
}

/* T26 and T47: no secret outlives its use in heap memory.  Every block
 * that the session frees or reallocates is searched for the PSK, each
 * secret of the key schedule, each traffic secret and key (including the
 * client's c_ap, replaced by KEY_UPDATE), and the ephemeral private
 * scalars and Z both as bytes and as OpenSSL holds a BIGNUM on this
 * machine (little-endian limbs, so the bytes reversed).  OpenSSL's heap is
 * set up as ppcpd and ppcp set it up (ppcp_crypto_wipe_freed). */
SWEEP static void test_no_secret_left_in_released_memory(void **state)
{
	(void)state;
	/* The control ran on the test's allocator; from here on OpenSSL's
	 * (malloc-compatible) blocks go through the wiping one. */
	assert_int_equal(ppcp_crypto_wipe_freed(), 0);
	unsigned long blocks = watched_session();
	printf("secrets: %d values searched for in %lu released blocks\n", n_watch, blocks);
	/* OpenSSL's blocks are still searched: as many blocks as in the
	 * control (give or take OpenSSL's caches filled once). */
	assert_true(blocks * 10 >= control_blocks * 9);
	if (watch_found[0] != 0)
		fail_msg("released heap memory still held: %s", watch_found);
}

SWEEP static void test_wipe_freed_twice_changes_nothing(void **state)
{
	(void)state;
	/* A second call keeps the wiping functions in place. */
	assert_int_equal(ppcp_crypto_wipe_freed(), 0);
	test_no_secret_left_in_released_memory(state);
}

int main(void)
{
#ifndef PPCP_TEST_SECRETS
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_failing_in_turn_fails_cleanly),
		cmocka_unit_test(test_every_rng_draw_failing_in_turn_fails_cleanly),
		cmocka_unit_test(test_every_openssl_call_failing_in_turn_fails_cleanly),
		cmocka_unit_test(test_getrandom_failing_is_an_rng_error),
		cmocka_unit_test(test_t2_malformed_client_hello_costs_no_ecdh),
	};
	/* Before OpenSSL allocates anything. */
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
		fprintf(stderr, "FAIL: cannot install OpenSSL allocators\n");
		return 1;
	}
	json_set_alloc_funcs(json_malloc, json_free);
#else
	/* test_secrets: the same source; the search of released blocks, first
	 * as a control on the test's allocator, then with OpenSSL's heap as
	 * ppcpd and ppcp configure it (ppcp_crypto_wipe_freed), whose free()
	 * still goes through the wrapper above, so every block OpenSSL releases
	 * is searched after OpenSSL and the library wiped what they wipe. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_the_search_sees_unwiped_blocks),
		cmocka_unit_test(test_no_secret_left_in_released_memory),
		cmocka_unit_test(test_wipe_freed_twice_changes_nothing),
	};
	/* The controls run on the test's own OpenSSL allocator (it wipes
	 * nothing); then test_no_secret_left_in_released_memory switches to
	 * ppcp_crypto_wipe_freed's.  Both allocate with malloc. */
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
		fprintf(stderr, "FAIL: cannot install OpenSSL allocators\n");
		return 1;
	}
	json_set_alloc_funcs(json_malloc, json_free);
#endif
	V = tu_load_vectors("handshake.json");
	tu_hex(tu_vec(V, "inputs.psk"), PSK, sizeof(PSK));
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(V);
	return r;
}
