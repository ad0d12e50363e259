/*
 * test_ct.c - constant-time check in the ctgrind manner (adversarial.md
 * T47).  Run under valgrind's memcheck by tests/ct/run.sh: the PSK is marked
 * undefined, so every value derived from it (ES, HS, the handshake secrets,
 * s_confirm, c_confirm, s_ack, the traffic keys) is undefined too; a whole
 * handshake then runs, then records are sealed and opened, and confirm
 * values are compared directly.  memcheck reports each branch or memory
 * index that depends on undefined data; run.sh fails if any report points
 * into PPCP's own code.  What is public by design is declassified in the
 * library (ppcp__declassify): MAC verdicts, nonces, authenticated plaintext,
 * proofs once sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/memcheck.h>

#include "internal.h"

static uint8_t rng_stream[2][64];
static size_t rng_off[2];

static int rng(void *user, uint8_t *out, size_t len)
{
	int who = *(int *)user;
	if (rng_off[who] + len > sizeof(rng_stream[who]))
		return -1;
	memcpy(out, rng_stream[who] + rng_off[who], len);
	rng_off[who] += len;
	return 0;
}

static int move(ppcp_conn *a, ppcp_conn *b)
{
	const uint8_t *d;
	size_t n = ppcp_conn_out(a, &d);
	uint8_t buf[65536];
	if (n > sizeof(buf))
		return -1;
	memcpy(buf, d, n);
	ppcp_conn_out_ack(a, n);
	return ppcp_conn_feed(b, buf, n, 0);
}

static int make(ppcp_conn **c, enum ppcp_role role, const uint8_t *psk, int *who)
{
	ppcp_config cfg;
	ppcp_config_init(&cfg, role);
	cfg.psk = psk;
	cfg.psk_len = 32;
	cfg.server_id = "srv-test";
	cfg.rng = rng;
	cfg.user = who;
	return ppcp_conn_new(c, &cfg, 0);
}

int main(void)
{
	static int who_c = 0, who_s = 1;
	uint8_t psk[32], a[32], b[32];
	ppcp_conn *c = NULL, *s = NULL;
	int ret = 0;

	if (!RUNNING_ON_VALGRIND)
		printf("note: not under valgrind; run tests/ct/run.sh for the check itself\n");
	for (int i = 0; i < 32; i++) {
		psk[i] = (uint8_t)(i * 7 + 3);
		/* Fixed, valid scalars (far below n) and nonces. */
		rng_stream[0][i] = (uint8_t)(0x10 + i);
		rng_stream[1][i] = (uint8_t)(0x30 + i);
		rng_stream[0][32 + i] = (uint8_t)(0x50 + i);
		rng_stream[1][32 + i] = (uint8_t)(0x70 + i);
	}
	VALGRIND_MAKE_MEM_UNDEFINED(psk, sizeof(psk));

	if (make(&s, PPCP_ROLE_SERVER, psk, &who_s) != 0 ||
	    make(&c, PPCP_ROLE_CLIENT, psk, &who_c) != 0) {
		fprintf(stderr, "FAIL: cannot create connections\n");
		return 1;
	}
	/* CH, SH (s_confirm verified), AUTH (c_confirm), AUTH_OK (s_ack). */
	for (int hop = 0; hop < 4 && ret == 0; hop++)
		ret = hop % 2 == 0 ? move(c, s) : move(s, c);
	if (ret != 0 || ppcp_conn_state(c) != PPCP_ST_ESTABLISHED) {
		fprintf(stderr, "FAIL: handshake: %s\n", ppcp_strerror(ret));
		return 1;
	}
	/* Records under keys derived from the PSK, both ways, and a rekey. */
	for (int i = 0; i < 8 && ret == 0; i++) {
		ret = ppcp_conn_send_json(c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"x\",\"args\":{}}",
					  NULL);
		if (ret == 0)
			ret = move(c, s);
		if (ret == 0 && i == 4)
			ret = ppcp__conn_key_update(c);
		if (ret == 0)
			ret = ppcp_conn_send_json(s, PPCP_MSG_HEARTBEAT, NULL, "{\"ts\":1}", NULL);
		if (ret == 0)
			ret = move(s, c) == 0 ? move(c, s) : -1;
	}
	if (ret != 0) {
		fprintf(stderr, "FAIL: records: %s\n", ppcp_strerror(ret));
		return 1;
	}
	/* A record that fails authentication goes down the same path. */
	{
		const uint8_t *d;
		uint8_t rec[256];
		ret = ppcp_conn_send_json(c, PPCP_MSG_COMMAND, NULL, "{\"name\":\"y\",\"args\":{}}",
					  NULL);
		size_t n = ppcp_conn_out(c, &d);
		if (ret != 0 || n > sizeof(rec))
			return 1;
		memcpy(rec, d, n);
		ppcp_conn_out_ack(c, n);
		rec[n - 1] ^= 1;
		if (ppcp_conn_feed(s, rec, n, 0) != PPCP_ERR_DECRYPT) {
			fprintf(stderr, "FAIL: a tampered record was accepted\n");
			return 1;
		}
	}
	/* The comparison itself, on secret bytes. */
	memcpy(a, psk, 32);
	memcpy(b, psk, 32);
	b[31] ^= 1;
	if (ppcp__ct_equal(a, b, 32) || !ppcp__ct_equal(a, a, 32)) {
		fprintf(stderr, "FAIL: ppcp__ct_equal\n");
		return 1;
	}
	ppcp_conn_free(c);
	ppcp_conn_free(s);
	printf("ctgrind: handshake, 16 records, a key update and a tampered record ran with the "
	       "PSK undefined\n");
	return 0;
}
