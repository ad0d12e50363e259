/*
 * test_faults.c - fault injection (adversarial.md T45): every allocation of
 * a whole session (libc allocations of the library through --wrap, jansson's
 * through json_set_alloc_funcs, OpenSSL's through CRYPTO_set_mem_functions)
 * and every draw of the RNG is made to fail in turn.  Each run must end in
 * a clean error or a clean success: no crash, no sanitizer report, nothing
 * leaked (LeakSanitizer in the sanitizer build, valgrind in the valgrind
 * label), and never a session that goes on after a failure it did not report.
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
#include <openssl/crypto.h>

#include "internal.h"
#include "testutil.h"

/* ---- failing allocators ----------------------------------------------- */

static unsigned long alloc_count, fail_at; /* fail_at == 0: never fail */

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

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

static void *json_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : __real_malloc(n);
}

static void json_free(void *p)
{
	free(p);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return alloc_should_fail() ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

/* ---- a session driven in memory, tolerant of failure ------------------ */

static json_t *V;
static uint8_t PSK[32];

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

static void test_every_allocation_failing_in_turn_fails_cleanly(void **state)
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

static void test_every_rng_draw_failing_in_turn_fails_cleanly(void **state)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_allocation_failing_in_turn_fails_cleanly),
		cmocka_unit_test(test_every_rng_draw_failing_in_turn_fails_cleanly),
	};
	/* Before OpenSSL allocates anything. */
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
		fprintf(stderr, "FAIL: cannot install OpenSSL allocators\n");
		return 1;
	}
	json_set_alloc_funcs(json_malloc, json_free);
	V = tu_load_vectors("handshake.json");
	tu_hex(tu_vec(V, "inputs.psk"), PSK, sizeof(PSK));
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(V);
	return r;
}
