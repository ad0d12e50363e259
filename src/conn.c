/*
 * conn.c - the sans-I/O connection engine: handshake state machine and
 * established session, for both roles (PROTOCOL.md §3-§8, §12).
 *
 * States move only forward:
 *   client: CLIENT_EXPECT_SERVER_HELLO -> CLIENT_EXPECT_AUTH_OK -> ESTABLISHED
 *   server: SERVER_EXPECT_CLIENT_HELLO -> SERVER_EXPECT_AUTH   -> ESTABLISHED
 *   then ESTABLISHED -> CLOSED (BYE) and any state -> FAILED (sticky error).
 *
 * Invariants:
 *  - The engine never reads a clock: `now` comes with every call that can
 *    start a timer, and is kept in c->now for the sends it causes.
 *  - Handshake secrets (ppcp__keys, the ephemeral key, the PSK copy) are
 *    wiped as soon as the application secrets are installed, and all of
 *    them again in ppcp_conn_free.
 *  - A received record is decrypted into c->pt only after its nonce is the
 *    expected one; nothing of a record that fails reaches a callback.
 *  - The first fatal error sticks: every later call returns it and the
 *    engine neither reads nor writes another record.  The only bytes that
 *    may be queued by a failure are an AUTH_FAIL (PROTOCOL.md §6).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct ppcp_conn {
	enum ppcp_role role;
	enum ppcp_state state;
	int err;
	uint64_t now;

	/* Configuration, with copies of every string and the PSK. */
	uint8_t psk[PPCP_PSK_MAX];
	size_t psk_len;
	char server_id[PPCP_ID_MAX + 1]; /* server: own; client: expected or "" */
	char client_id[PPCP_ID_MAX + 1];
	char peer_id[PPCP_ID_MAX + 1];
	ppcp_pong_info pong;
	char pong_sid[PPCP_ID_MAX + 1], pong_host[PPCP_ID_MAX + 1];
	int have_pong, got_ping;
	uint32_t max_record, peer_max_record;
	uint64_t hs_timeout, hb_interval, idle_timeout;
	uint64_t rekey_records, rekey_bytes;
	uint32_t ext_offer, ext;
	int (*rng)(void *, uint8_t *, size_t);
	int64_t (*unix_time)(void *);
	ppcp_callbacks cb;
	void *user;

	/* Handshake. */
	ppcp__p256 kp;
	uint8_t ch[PPCP_CLIENT_HELLO_LEN];
	uint8_t sh[PPCP_SERVER_HELLO_LEN];
	ppcp__keys keys;

	/* Records. */
	ppcp__dir tx, rx;
	uint64_t next_id;
	ppcp__frame_reader rd;
	ppcp__buf out;
	uint8_t *pt;
	size_t pt_cap;
	char *txs; /* scratch for FILE_CHUNK text (never c->pt: a callback may hold it) */
	size_t txs_cap;

	/* Timers (monotonic ms). */
	uint64_t hs_deadline, last_tx, last_rx;
	/* What exactly went wrong, for ppcp_conn_error_detail ("" if no more
	 * than the error code can say).  Never holds peer data verbatim. */
	char why[96];
};

/* ---- small helpers ---------------------------------------------------- */

/* Say why the next failure happens (the first reason given sticks). */
static int conn_why(ppcp_conn *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int conn_why(ppcp_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err == 0 && c->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	}
	return err;
}

static int conn_fail(ppcp_conn *c, int err)
{
	if (c->err == 0) {
		c->err = err;
		c->state = PPCP_ST_FAILED;
		/* Nothing secret is needed any more. */
		ppcp__p256_free(&c->kp);
		ppcp_wipe(&c->keys, sizeof(c->keys));
		ppcp_wipe(c->psk, sizeof(c->psk));
		ppcp__dir_clear(&c->tx);
		ppcp__dir_clear(&c->rx);
		if (c->pt != NULL)
			ppcp_wipe(c->pt, c->pt_cap);
	}
	return c->err;
}

static int conn_random(ppcp_conn *c, uint8_t *out, size_t len)
{
	if (c->rng != NULL)
		return c->rng(c->user, out, len) == 0 ? 0 : PPCP_ERR_RNG;
	return ppcp__rand(out, len);
}

/* Draw a private scalar from the RNG until it is in [1, n-1]; the chance of
 * a retry is below 2^-32 with a real RNG. */
static int conn_keygen(ppcp_conn *c)
{
	uint8_t d[32];
	int ret = PPCP_ERR_RNG;

	for (int tries = 0; tries < 8; tries++) {
		ret = conn_random(c, d, sizeof(d));
		if (ret != 0)
			break;
		ret = ppcp__p256_from_private(&c->kp, d);
		if (ret != PPCP_ERR_INVAL)
			break;
	}
	ppcp_wipe(d, sizeof(d));
	return ret;
}

static int64_t conn_wall(ppcp_conn *c)
{
	return c->unix_time != NULL ? c->unix_time(c->user) : 0;
}

static void conn_new_id(ppcp_conn *c, char id[PPCP_ID_MAX + 1])
{
	snprintf(id, PPCP_ID_MAX + 1, "%08" PRIx64, c->next_id++);
}

static int conn_pt_reserve(ppcp_conn *c, size_t n)
{
	uint8_t *p;

	if (n <= c->pt_cap)
		return 0;
	p = malloc(n);
	if (p == NULL)
		return PPCP_ERR_NOMEM;
	if (c->pt != NULL) {
		ppcp_wipe(c->pt, c->pt_cap);
		free(c->pt);
	}
	c->pt = p;
	c->pt_cap = n;
	return 0;
}

/* Queue a raw frame (hellos, PONG). */
static int conn_queue_frame(ppcp_conn *c, const uint8_t *body, size_t len)
{
	int ret = ppcp__buf_reserve(&c->out, PPCP_LEN_PREFIX + len);
	if (ret != 0)
		return ret;
	ppcp__store_be32(c->out.p + c->out.len, (uint32_t)len);
	memcpy(c->out.p + c->out.len + PPCP_LEN_PREFIX, body, len);
	c->out.len += PPCP_LEN_PREFIX + len;
	return 0;
}

static int conn_seal(ppcp_conn *c, const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2)
{
	int ret = ppcp__record_seal(&c->tx, &c->out, p1, n1, p2, n2);
	if (ret == 0)
		c->last_tx = c->now;
	return ret;
}

static int conn_send_env(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
			 const json_t *payload);

/* Send KEY_UPDATE: the last record under the old key (PROTOCOL.md §8.3). */
static int conn_send_key_update(ppcp_conn *c)
{
	char id[PPCP_ID_MAX + 1];
	json_t *empty = json_object();
	int ret;

	if (empty == NULL)
		return PPCP_ERR_NOMEM;
	conn_new_id(c, id);
	ret = conn_send_env(c, PPCP_MSG_KEY_UPDATE, id, empty);
	json_decref(empty);
	return ret;
}

/* Before a record of the session: rekey when a limit is reached, or fail
 * when the peer cannot rekey. */
static int conn_maybe_rekey(ppcp_conn *c)
{
	if (c->tx.seq < c->rekey_records && c->tx.bytes < c->rekey_bytes)
		return 0;
	if (!(c->ext & PPCP_EXT_KEY_UPDATE))
		return conn_fail(c, PPCP_ERR_KEY_EXHAUSTED);
	return conn_send_key_update(c);
}

/* Encode and seal one JSON message under the current sending key.  During
 * the session this first rekeys when a limit is near (PROTOCOL.md §8.3). */
static int conn_send_env(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
			 const json_t *payload)
{
	size_t len = 0;
	char *txt;
	int ret;

	if (c->state == PPCP_ST_ESTABLISHED && type != PPCP_MSG_KEY_UPDATE) {
		ret = conn_maybe_rekey(c);
		if (ret != 0)
			return ret;
	}

	txt = ppcp__msg_encode(ppcp_msg_type_name(type), id, conn_wall(c), payload, &len);
	if (txt == NULL)
		return PPCP_ERR_NOMEM;
	if (c->state == PPCP_ST_ESTABLISHED && len > c->peer_max_record) {
		ret = PPCP_ERR_TOO_BIG;
		goto out;
	}
	ret = conn_seal(c, (const uint8_t *)txt, len, NULL, 0);
	if (ret == PPCP_ERR_KEY_EXHAUSTED)
		ret = conn_fail(c, ret);
	else if (ret == 0 && type == PPCP_MSG_KEY_UPDATE) {
		/* KEY_UPDATE was the last record under the old key. */
		ret = ppcp__dir_update(&c->tx);
		if (ret != 0)
			ret = conn_fail(c, ret);
	}
out:
	ppcp_wipe(txt, len);
	free(txt);
	return ret;
}

static json_t *conn_ext_array(uint32_t bits)
{
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < ppcp__ext_count; i++) {
		if ((bits & ppcp__ext_names[i].bit) && json_array_append_new(a, json_string(ppcp__ext_names[i].name)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static uint32_t conn_ext_parse(const json_t *a)
{
	uint32_t bits = 0;
	size_t i;
	const json_t *e;

	json_array_foreach(a, i, e)
	{
		for (size_t k = 0; k < ppcp__ext_count; k++)
			if (strcmp(json_string_value(e), ppcp__ext_names[k].name) == 0)
				bits |= ppcp__ext_names[k].bit;
	}
	return bits;
}

/* Build the AUTH or AUTH_OK payload around a 32-byte proof. */
static json_t *conn_auth_payload(ppcp_conn *c, const uint8_t proof[32], uint32_t ext)
{
	char b64[48];
	uint8_t pub[32];
	json_t *p = json_object();

	if (p == NULL)
		return NULL;
	/* The proof goes to the peer: it is public from here on. */
	memcpy(pub, proof, sizeof(pub));
	ppcp__declassify(pub, sizeof(pub));
	ppcp__b64_encode(b64, pub, sizeof(pub));
	if (json_object_set_new(p, "proof", json_string(b64)) != 0 ||
	    json_object_set_new(p, "ext", conn_ext_array(ext)) != 0 ||
	    json_object_set_new(p, "max_record", json_integer(c->max_record)) != 0)
		goto fail;
	if (c->role == PPCP_ROLE_CLIENT && c->client_id[0] != '\0' &&
	    json_object_set_new(p, "client_id", json_string(c->client_id)) != 0)
		goto fail;
	if (c->role == PPCP_ROLE_SERVER &&
	    json_object_set_new(p, "server_id", json_string(c->server_id)) != 0)
		goto fail;
	ppcp_wipe(b64, sizeof(b64));
	return p;
fail:
	ppcp_wipe(b64, sizeof(b64));
	json_decref(p);
	return NULL;
}

/* Decode the "proof" of an AUTH/AUTH_OK payload and compare it in constant
 * time with the expected value. */
static int conn_proof_ok(const json_t *p, const uint8_t expect[32])
{
	uint8_t got[33];
	const char *s;
	long n;
	int ok;

	if (ppcp__json_get_str(p, "proof", 64, &s) != 0)
		return 0;
	n = ppcp__b64_decode(got, sizeof(got), s, strlen(s));
	ok = n == 32 && ppcp__ct_equal(got, expect, 32);
	ppcp_wipe(got, sizeof(got));
	return ok;
}

static void conn_copy_id(char dst[PPCP_ID_MAX + 1], const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;
	if (n > PPCP_ID_MAX)
		n = PPCP_ID_MAX;
	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

/* Install the application secrets and forget the handshake ones. */
static int conn_establish(ppcp_conn *c)
{
	int client = c->role == PPCP_ROLE_CLIENT;
	int ret;

	ret = ppcp__dir_set(&c->tx, client ? c->keys.c_ap : c->keys.s_ap);
	if (ret == 0)
		ret = ppcp__dir_set(&c->rx, client ? c->keys.s_ap : c->keys.c_ap);
	if (ret != 0)
		return conn_fail(c, ret);
	ppcp_wipe(&c->keys, sizeof(c->keys));
	ppcp_wipe(c->psk, sizeof(c->psk));
	ppcp__p256_free(&c->kp);
	c->state = PPCP_ST_ESTABLISHED;
	c->last_rx = c->now;
	c->last_tx = c->now;
	if (c->cb.on_established != NULL)
		c->cb.on_established(c, c->user);
	return 0;
}

/* ---- handshake -------------------------------------------------------- */

static int conn_client_start(ppcp_conn *c)
{
	uint8_t nonce[PPCP_NONCE_LEN];
	int ret;

	/* The RNG gives the private scalar first, then nonce_c. */
	ret = conn_keygen(c);
	if (ret == 0)
		ret = conn_random(c, nonce, sizeof(nonce));
	if (ret != 0)
		return ret;
	ppcp__hello_write(c->ch, 1, c->kp.pub, nonce);
	c->state = PPCP_ST_CLIENT_EXPECT_SERVER_HELLO;
	return conn_queue_frame(c, c->ch, sizeof(c->ch));
}

/* Server: answer one TCP PING with a PONG no larger than it. */
static int conn_server_ping(ppcp_conn *c, const uint8_t *body, uint32_t len)
{
	ppcp_ping ping;
	ppcp_pong pong;
	uint8_t buf[PPCP_MAX_PREAUTH_FRAME];
	size_t n;
	int ret;

	if (!c->have_pong || c->got_ping)
		return PPCP_ERR_UNEXPECTED;
	c->got_ping = 1;
	ret = ppcp_ping_decode(body, len, &ping);
	if (ret != 0)
		return ret;
	/* Over TCP a PING we do not answer ends the connection, so that the
	 * client does not wait for the handshake deadline (PROTOCOL.md §10.4). */
	if (!ppcp_ping_wants(&ping, c->pong.server_id))
		return PPCP_ERR_UNEXPECTED;
	memset(&pong, 0, sizeof(pong));
	conn_copy_id(pong.id, ping.id);
	conn_copy_id(pong.server_id, c->pong.server_id);
	conn_copy_id(pong.hostname, c->pong.hostname);
	pong.port = c->pong.port;
	pong.capabilities = c->pong.capabilities;
	pong.ts = conn_wall(c);
	ret = ppcp_pong_encode(&pong, buf, len < sizeof(buf) ? len : sizeof(buf), &n);
	if (ret == PPCP_ERR_TOO_BIG)
		return PPCP_ERR_TOO_BIG; /* never larger than the PING */
	if (ret != 0)
		return ret;
	return conn_queue_frame(c, buf, n);
}

static int conn_server_on_client_hello(ppcp_conn *c, const uint8_t *body, uint32_t len)
{
	ppcp__hello h;
	uint8_t nonce[PPCP_NONCE_LEN];
	uint8_t z[32];
	ppcp__iov sid = { c->server_id, strlen(c->server_id) };
	int ret;

	ret = ppcp__hello_parse(body, len, 1, &h);
	if (ret != 0)
		return ret;
	memcpy(c->ch, body, sizeof(c->ch));

	ret = conn_keygen(c);
	if (ret == 0)
		ret = conn_random(c, nonce, sizeof(nonce));
	if (ret != 0)
		goto out;
	ret = ppcp__p256_ecdh(z, &c->kp, c->ch + 9, PPCP_POINT_LEN);
	if (ret != 0)
		goto out;

	ppcp__hello_write(c->sh, 2, c->kp.pub, nonce);
	/* sid_hash = H(server_id) */
	ret = ppcp__sha256(c->sh + 106, &sid, 1);
	if (ret != 0)
		goto out;
	/* PROTOCOL.md §4: s_confirm over TH1 = H(CH ‖ SH[0..138]) */
	ret = ppcp__ks_handshake(&c->keys, c->psk, c->psk_len, z, c->ch, c->sh);
	if (ret != 0)
		goto out;
	memcpy(c->sh + 138, c->keys.s_confirm, 32);
	ret = ppcp__ks_finish(&c->keys, c->ch, c->sh);
	if (ret != 0)
		goto out;
	/* AUTH phase keys: c_hs inbound, s_hs outbound. */
	ret = ppcp__dir_set(&c->rx, c->keys.c_hs);
	if (ret == 0)
		ret = ppcp__dir_set(&c->tx, c->keys.s_hs);
	if (ret != 0)
		goto out;
	ret = conn_queue_frame(c, c->sh, sizeof(c->sh));
	if (ret != 0)
		goto out;
	c->last_tx = c->now;
	c->state = PPCP_ST_SERVER_EXPECT_AUTH;
out:
	ppcp_wipe(z, sizeof(z));
	ppcp_wipe(nonce, sizeof(nonce));
	return ret;
}

static int conn_client_on_server_hello(ppcp_conn *c, const uint8_t *body, uint32_t len)
{
	ppcp__hello h;
	uint8_t z[32];
	uint8_t want_sid[32];
	char id[PPCP_ID_MAX + 1];
	json_t *p = NULL;
	int ret;

	ret = ppcp__hello_parse(body, len, 2, &h);
	if (ret != 0)
		return ret;
	if (memcmp(h.point, c->kp.pub, PPCP_POINT_LEN) == 0)
		return PPCP_ERR_REFLECTED;
	memcpy(c->sh, body, sizeof(c->sh));

	ret = ppcp__p256_ecdh(z, &c->kp, c->sh + 9, PPCP_POINT_LEN);
	if (ret != 0)
		goto out;
	ret = ppcp__ks_handshake(&c->keys, c->psk, c->psk_len, z, c->ch, c->sh);
	if (ret != 0)
		goto out;
	/* The server proves the PSK first; we send nothing PSK-dependent
	 * before this check passes. */
	if (!ppcp__ct_equal(c->keys.s_confirm, c->sh + 138, 32)) {
		ret = PPCP_ERR_SERVER_AUTH;
		goto out;
	}
	if (c->server_id[0] != '\0') {
		ppcp__iov sid = { c->server_id, strlen(c->server_id) };
		ret = ppcp__sha256(want_sid, &sid, 1);
		if (ret != 0)
			goto out;
		if (!ppcp__ct_equal(want_sid, c->sh + 106, 32)) {
			ret = PPCP_ERR_WRONG_SERVER;
			goto out;
		}
	}
	ret = ppcp__ks_finish(&c->keys, c->ch, c->sh);
	if (ret == 0)
		ret = ppcp__dir_set(&c->tx, c->keys.c_hs);
	if (ret == 0)
		ret = ppcp__dir_set(&c->rx, c->keys.s_hs);
	if (ret != 0)
		goto out;

	p = conn_auth_payload(c, c->keys.c_confirm, c->ext_offer);
	if (p == NULL) {
		ret = PPCP_ERR_NOMEM;
		goto out;
	}
	conn_new_id(c, id);
	ret = conn_send_env(c, PPCP_MSG_AUTH, id, p);
	if (ret != 0)
		goto out;
	c->state = PPCP_ST_CLIENT_EXPECT_AUTH_OK;
out:
	json_decref(p);
	ppcp_wipe(z, sizeof(z));
	return ret;
}

/* Decrypt one record into c->pt; *plen gets the plaintext size. */
static int conn_open(ppcp_conn *c, const uint8_t *body, uint32_t blen, size_t *plen)
{
	int ret = conn_pt_reserve(c, blen - PPCP_REC_OVERHEAD);
	if (ret != 0)
		return ret;
	ret = ppcp__record_open(&c->rx, body, blen, c->pt);
	if (ret != 0)
		return ret;
	*plen = blen - PPCP_REC_OVERHEAD;
	return 0;
}

/* Server: AUTH failed after the record decrypted: answer AUTH_FAIL. */
static int conn_auth_fail(ppcp_conn *c, int err)
{
	char id[PPCP_ID_MAX + 1];
	json_t *p = json_pack("{s:s}", "reason", "authentication-failed");

	if (p != NULL) {
		conn_new_id(c, id);
		(void)conn_send_env(c, PPCP_MSG_AUTH_FAIL, id, p);
		json_decref(p);
	}
	return err;
}

static int conn_server_on_auth(ppcp_conn *c, const uint8_t *body, uint32_t blen)
{
	ppcp__envelope env;
	size_t plen;
	uint32_t ext;
	int64_t maxrec;
	const char *cid = NULL;
	char id[PPCP_ID_MAX + 1];
	json_t *p = NULL;
	int ret;

	ret = conn_open(c, body, blen, &plen);
	if (ret == PPCP_ERR_DECRYPT || ret == PPCP_ERR_SEQUENCE)
		return PPCP_ERR_CLIENT_AUTH; /* not under c_hs: close without a word */
	if (ret != 0)
		return ret;
	if (c->pt[0] != '{')
		return conn_auth_fail(c, conn_why(c, PPCP_ERR_BAD_MESSAGE,
						  "the AUTH record is not a JSON message"));
	ret = ppcp__msg_decode(c->pt, plen, &env);
	if (ret == 0 && env.type != PPCP_MSG_AUTH)
		ret = PPCP_ERR_UNEXPECTED;
	if (ret == PPCP_ERR_NOMEM) {
		ppcp__msg_release(&env);
		return ret; /* our failure, not the client's */
	}
	if (ret != 0) {
		ppcp__msg_release(&env);
		return conn_auth_fail(c, ret);
	}
	if (!conn_proof_ok(env.payload, c->keys.c_confirm)) {
		ppcp__msg_release(&env);
		return conn_auth_fail(c, PPCP_ERR_CLIENT_AUTH);
	}
	(void)ppcp__json_get_str(env.payload, "client_id", PPCP_ID_MAX, &cid);
	conn_copy_id(c->peer_id, cid);
	ext = conn_ext_parse(json_object_get(env.payload, "ext")) & c->ext_offer;
	(void)ppcp__json_get_int(env.payload, "max_record", PPCP_MAX_HANDSHAKE_RECORD,
				 PPCP_MAX_RECORD_LIMIT, &maxrec);
	ppcp__msg_release(&env);

	c->ext = ext;
	c->peer_max_record = (uint32_t)maxrec;
	p = conn_auth_payload(c, c->keys.s_ack, ext);
	if (p == NULL)
		return PPCP_ERR_NOMEM;
	conn_new_id(c, id);
	ret = conn_send_env(c, PPCP_MSG_AUTH_OK, id, p);
	json_decref(p);
	if (ret != 0)
		return ret;
	return conn_establish(c);
}

static int conn_client_on_auth_ok(ppcp_conn *c, const uint8_t *body, uint32_t blen)
{
	ppcp__envelope env;
	size_t plen;
	const char *sid;
	uint8_t h[32];
	uint32_t ext;
	int64_t maxrec;
	ppcp__iov v;
	int ret;

	ret = conn_open(c, body, blen, &plen);
	if (ret != 0)
		return ret;
	if (c->pt[0] != '{')
		return conn_why(c, PPCP_ERR_BAD_MESSAGE, "the AUTH_OK record is not a JSON message");
	ret = ppcp__msg_decode(c->pt, plen, &env);
	if (ret == 0 && env.type == PPCP_MSG_AUTH_FAIL)
		ret = PPCP_ERR_AUTH_REJECTED;
	else if (ret == 0 && env.type != PPCP_MSG_AUTH_OK)
		ret = PPCP_ERR_UNEXPECTED;
	if (ret != 0)
		goto out;
	if (!conn_proof_ok(env.payload, c->keys.s_ack)) {
		ret = PPCP_ERR_SERVER_AUTH;
		goto out;
	}
	/* The server_id it names must be the one sid_hash committed to. */
	(void)ppcp__json_get_str(env.payload, "server_id", PPCP_ID_MAX, &sid);
	v.p = sid;
	v.n = strlen(sid);
	ret = ppcp__sha256(h, &v, 1);
	if (ret != 0)
		goto out;
	if (!ppcp__ct_equal(h, c->sh + 106, 32)) {
		ret = PPCP_ERR_WRONG_SERVER;
		goto out;
	}
	ext = conn_ext_parse(json_object_get(env.payload, "ext"));
	if ((ext & ~c->ext_offer) != 0) {
		ret = conn_why(c, PPCP_ERR_BAD_MESSAGE, "AUTH_OK grants an extension we did not offer");
		goto out;
	}
	(void)ppcp__json_get_int(env.payload, "max_record", PPCP_MAX_HANDSHAKE_RECORD,
				 PPCP_MAX_RECORD_LIMIT, &maxrec);
	conn_copy_id(c->peer_id, sid);
	c->ext = ext;
	c->peer_max_record = (uint32_t)maxrec;
	ret = conn_establish(c);
out:
	ppcp__msg_release(&env);
	return ret;
}

/* ---- established session ---------------------------------------------- */

static int conn_send_error(ppcp_conn *c, const char *id, const char *code, const char *message)
{
	char fresh[PPCP_ID_MAX + 1];
	json_t *p = json_pack("{s:s,s:s}", "code", code, "message", message);
	int ret;

	if (p == NULL)
		return PPCP_ERR_NOMEM;
	if (id == NULL) {
		conn_new_id(c, fresh);
		id = fresh;
	}
	ret = conn_send_env(c, PPCP_MSG_ERROR, id, p);
	json_decref(p);
	return ret;
}

static int conn_on_json(ppcp_conn *c, size_t plen)
{
	ppcp__envelope env;
	ppcp_msg m;
	int ret;

	/* File data in the canonical form skips the general parser. */
	ret = ppcp__msg_decode_chunk(c->pt, plen, &env);
	if (ret == 1)
		ret = 0;
	else if (ret == 0)
		ret = ppcp__msg_decode(c->pt, plen, &env);
	if (ret == PPCP_ERR_NOMEM)
		goto out; /* fatal: we cannot tell what the peer sent */
	if (ret == PPCP_ERR_BAD_MSG_VERSION) {
		ret = conn_send_error(c, env.id, "unsupported-version", "only version 1 is supported");
		goto out;
	}
	if (ret != 0 && env.type == PPCP_MSG_UNKNOWN && env.type_name == NULL) {
		ret = conn_send_error(c, env.id, "invalid-message", "malformed JSON message");
		goto out;
	}
	if (env.type == PPCP_MSG_UNKNOWN) {
		ret = conn_send_error(c, env.id, "unknown-type", "unknown message type");
		goto out;
	}
	switch (env.type) {
	case PPCP_MSG_PING:
	case PPCP_MSG_PONG:
	case PPCP_MSG_CLIENT_HELLO:
	case PPCP_MSG_SERVER_HELLO:
	case PPCP_MSG_AUTH:
	case PPCP_MSG_AUTH_OK:
	case PPCP_MSG_AUTH_FAIL:
		/* Another phase's message: an invalid transition (§12). */
		ret = conn_why(c, PPCP_ERR_UNEXPECTED, "a %s message after the handshake",
			       env.type_name != NULL ? env.type_name : "handshake");
		goto out;
	default:
		break;
	}
	if (ret != 0 && (env.type == PPCP_MSG_KEY_UPDATE || env.type == PPCP_MSG_BYE)) {
		/* These change the session's state: a wrong one cannot be
		 * answered and skipped, the two sides would disagree. */
		ret = conn_why(c, PPCP_ERR_BAD_MESSAGE, "a %s whose payload has the wrong shape",
			       env.type == PPCP_MSG_BYE ? "BYE" : "KEY_UPDATE");
		goto out;
	}
	if (ret != 0) {
		ret = conn_send_error(c, env.id, "invalid-message", "payload has the wrong shape");
		goto out;
	}
	if (env.type == PPCP_MSG_KEY_UPDATE) {
		if (!(c->ext & PPCP_EXT_KEY_UPDATE)) {
			ret = PPCP_ERR_UNEXPECTED;
			goto out;
		}
		ret = ppcp__dir_update(&c->rx);
		goto out;
	}
	if (env.type == PPCP_MSG_HEARTBEAT) {
		json_t *p = json_pack("{s:O}", "ts", json_object_get(env.payload, "ts"));
		if (p == NULL) {
			ret = PPCP_ERR_NOMEM;
			goto out;
		}
		ret = conn_send_env(c, PPCP_MSG_HEARTBEAT_ACK, env.id, p);
		json_decref(p);
		if (ret != 0)
			goto out;
	}
	if (env.type == PPCP_MSG_BYE)
		c->state = PPCP_ST_CLOSED;
	m.type = env.type;
	m.type_name = env.type_name;
	m.id = env.id;
	m.ts = env.ts;
	m.payload = env.payload;
	if (c->cb.on_message != NULL)
		c->cb.on_message(c, &m, c->user);
	ret = 0;
out:
	ppcp__msg_release(&env);
	return ret;
}

static int conn_on_record(ppcp_conn *c, const uint8_t *body, uint32_t blen)
{
	size_t plen;
	int ret;

	/* PROTOCOL.md §8.3: a peer past twice the limits is failed. */
	if (c->rx.seq >= 2 * c->rekey_records || c->rx.bytes > 2 * c->rekey_bytes)
		return PPCP_ERR_KEY_EXHAUSTED;
	ret = conn_open(c, body, blen, &plen);
	if (ret != 0)
		return ret;
	c->last_rx = c->now;
	if (c->pt[0] == '{')
		return conn_on_json(c, plen);
	if (c->pt[0] == 0x01 && (c->ext & PPCP_EXT_BINARY_DATA)) {
		if (c->cb.on_binary != NULL)
			c->cb.on_binary(c, c->pt + 1, plen - 1, c->user);
		return 0;
	}
	if (c->pt[0] == 0x01)
		return conn_why(c, PPCP_ERR_BAD_MESSAGE,
				"a binary-data record, but that extension is not in force");
	return conn_why(c, PPCP_ERR_BAD_MESSAGE,
			"a record whose plaintext starts with 0x%02x (neither JSON nor binary data)",
			c->pt[0]);
}

/* ---- public API ------------------------------------------------------- */

void ppcp_config_init(ppcp_config *cfg, enum ppcp_role role)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->role = role;
	cfg->extensions = PPCP_EXT_ALL;
}

int ppcp_conn_new(ppcp_conn **out, const ppcp_config *cfg, uint64_t now)
{
	ppcp_conn *c;
	int ret;

	*out = NULL;
	if (cfg == NULL || (cfg->role != PPCP_ROLE_CLIENT && cfg->role != PPCP_ROLE_SERVER) ||
	    cfg->psk == NULL || cfg->psk_len < PPCP_PSK_MIN || cfg->psk_len > PPCP_PSK_MAX)
		return PPCP_ERR_INVAL;
	if (cfg->role == PPCP_ROLE_SERVER && !ppcp__valid_ident(cfg->server_id))
		return PPCP_ERR_INVAL;
	if (cfg->role == PPCP_ROLE_CLIENT && cfg->server_id != NULL &&
	    !ppcp__valid_ident(cfg->server_id))
		return PPCP_ERR_INVAL;
	if (cfg->client_id != NULL && cfg->client_id[0] != '\0' && !ppcp__valid_ident(cfg->client_id))
		return PPCP_ERR_INVAL;
	if (cfg->max_record != 0 &&
	    (cfg->max_record < PPCP_MAX_HANDSHAKE_RECORD || cfg->max_record > PPCP_MAX_RECORD_LIMIT))
		return PPCP_ERR_INVAL;
	if (cfg->pong != NULL &&
	    (!ppcp__valid_ident(cfg->pong->server_id) || !ppcp__valid_ident(cfg->pong->hostname)))
		return PPCP_ERR_INVAL;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return PPCP_ERR_NOMEM;
	c->role = cfg->role;
	c->now = now;
	memcpy(c->psk, cfg->psk, cfg->psk_len);
	c->psk_len = cfg->psk_len;
	conn_copy_id(c->server_id, cfg->server_id);
	conn_copy_id(c->client_id, cfg->client_id);
	if (cfg->pong != NULL) {
		conn_copy_id(c->pong_sid, cfg->pong->server_id);
		conn_copy_id(c->pong_host, cfg->pong->hostname);
		c->pong = *cfg->pong;
		c->pong.server_id = c->pong_sid;
		c->pong.hostname = c->pong_host;
		c->have_pong = 1;
	}
	c->max_record = cfg->max_record ? cfg->max_record : PPCP_DEFAULT_MAX_RECORD;
	c->peer_max_record = PPCP_MAX_HANDSHAKE_RECORD;
	c->hs_timeout = cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
						 : PPCP_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	c->hb_interval = cfg->heartbeat_ms ? cfg->heartbeat_ms : PPCP_DEFAULT_HEARTBEAT_MS;
	c->idle_timeout = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : PPCP_DEFAULT_IDLE_TIMEOUT_MS;
	c->rekey_records = cfg->rekey_records ? cfg->rekey_records : PPCP_DEFAULT_REKEY_RECORDS;
	c->rekey_bytes = cfg->rekey_bytes ? cfg->rekey_bytes : PPCP_DEFAULT_REKEY_BYTES;
	c->ext_offer = cfg->extensions & PPCP_EXT_KNOWN;
	c->rng = cfg->rng;
	c->unix_time = cfg->unix_time;
	c->cb = cfg->cb;
	c->user = cfg->user;
	c->next_id = 1;
	c->hs_deadline = now + c->hs_timeout;
	c->last_rx = c->last_tx = now;

	if (c->role == PPCP_ROLE_CLIENT) {
		ret = conn_client_start(c);
		if (ret != 0) {
			ppcp_conn_free(c);
			return ret;
		}
	} else {
		c->state = PPCP_ST_SERVER_EXPECT_CLIENT_HELLO;
	}
	*out = c;
	return 0;
}

void ppcp_conn_free(ppcp_conn *c)
{
	if (c == NULL)
		return;
	ppcp__p256_free(&c->kp);
	ppcp__dir_clear(&c->tx);
	ppcp__dir_clear(&c->rx);
	ppcp__frame_reader_free(&c->rd);
	ppcp__buf_free(&c->out);
	if (c->pt != NULL) {
		ppcp_wipe(c->pt, c->pt_cap);
		free(c->pt);
	}
	if (c->txs != NULL) {
		ppcp_wipe(c->txs, c->txs_cap);
		free(c->txs);
	}
	ppcp_wipe(c, sizeof(*c));
	free(c);
}

/* Frame length bounds of the current state (PROTOCOL.md §13). */
static void conn_limits(const ppcp_conn *c, uint32_t *min, uint32_t *max)
{
	switch (c->state) {
	case PPCP_ST_SERVER_EXPECT_CLIENT_HELLO:
	case PPCP_ST_CLIENT_EXPECT_SERVER_HELLO:
		*min = 1;
		*max = PPCP_MAX_PREAUTH_FRAME;
		break;
	case PPCP_ST_SERVER_EXPECT_AUTH:
	case PPCP_ST_CLIENT_EXPECT_AUTH_OK:
		*min = PPCP_REC_OVERHEAD + 1;
		*max = PPCP_REC_OVERHEAD + PPCP_MAX_HANDSHAKE_RECORD;
		break;
	default:
		*min = PPCP_REC_OVERHEAD + 1;
		*max = PPCP_REC_OVERHEAD + c->max_record;
		break;
	}
}

static int conn_on_frame(ppcp_conn *c, const uint8_t *body, uint32_t blen)
{
	switch (c->state) {
	case PPCP_ST_SERVER_EXPECT_CLIENT_HELLO:
		if (body[0] == '{')
			return conn_server_ping(c, body, blen);
		return conn_server_on_client_hello(c, body, blen);
	case PPCP_ST_CLIENT_EXPECT_SERVER_HELLO:
		return conn_client_on_server_hello(c, body, blen);
	case PPCP_ST_SERVER_EXPECT_AUTH:
		return conn_server_on_auth(c, body, blen);
	case PPCP_ST_CLIENT_EXPECT_AUTH_OK:
		return conn_client_on_auth_ok(c, body, blen);
	case PPCP_ST_ESTABLISHED:
		return conn_on_record(c, body, blen);
	default:
		return PPCP_ERR_STATE;
	}
}

int ppcp_conn_feed(ppcp_conn *c, const uint8_t *in, size_t len, uint64_t now)
{
	if (c->err != 0)
		return c->err;
	c->now = now;
	while (len > 0 && c->state != PPCP_ST_CLOSED) {
		uint32_t min, max, blen;
		const uint8_t *body;
		int ret;

		conn_limits(c, &min, &max);
		ret = ppcp__frame_read(&c->rd, &in, &len, min, max, &body, &blen);
		if (ret == 0)
			break;
		if (ret < 0)
			return conn_fail(c, ret);
		ret = conn_on_frame(c, body, blen);
		if (ret != 0)
			return conn_fail(c, ret);
		if (c->err != 0)
			return c->err; /* a callback's send failed the connection */
	}
	return 0;
}

int ppcp_conn_eof(ppcp_conn *c)
{
	if (c->err != 0)
		return c->err;
	if (c->state == PPCP_ST_CLOSED)
		return 0;
	if (c->state == PPCP_ST_SERVER_EXPECT_AUTH && !ppcp__frame_reader_partial(&c->rd))
		return conn_fail(c, PPCP_ERR_PEER_ABORTED);
	/* Nothing came back at all: a busy or refusing server, not a cut. */
	if (c->state == PPCP_ST_CLIENT_EXPECT_SERVER_HELLO && !ppcp__frame_reader_partial(&c->rd))
		return conn_fail(c, PPCP_ERR_REFUSED);
	return conn_fail(c, PPCP_ERR_TRUNCATED);
}

size_t ppcp_conn_out(ppcp_conn *c, const uint8_t **data)
{
	static const uint8_t none[1];

	/* Before the first byte is queued, or after conn_trim, there is no
	 * buffer at all: never do arithmetic on a null pointer. */
	if (c->out.p == NULL) {
		*data = none;
		return 0;
	}
	*data = c->out.p + c->out.off;
	return c->out.len - c->out.off;
}

void ppcp_conn_out_ack(ppcp_conn *c, size_t n)
{
	size_t pending = c->out.len - c->out.off;

	if (n > pending)
		n = pending;
	c->out.off += n;
	if (c->out.off == c->out.len)
		c->out.off = c->out.len = 0;
}

uint64_t ppcp_conn_next_deadline(const ppcp_conn *c)
{
	uint64_t hb, idle;

	switch (c->state) {
	case PPCP_ST_ESTABLISHED:
		hb = c->last_tx + c->hb_interval;
		idle = c->last_rx + c->idle_timeout;
		return hb < idle ? hb : idle;
	case PPCP_ST_CLOSED:
	case PPCP_ST_FAILED:
		return UINT64_MAX;
	default:
		return c->hs_deadline;
	}
}

/* Give back buffers a large record grew, once the session has been quiet
 * for a heartbeat interval: an idle session costs a few KiB, not the size
 * of the largest record it ever saw (bench R11). */
static void conn_trim(ppcp_conn *c)
{
	enum { KEEP = 64 * 1024 };

	if (c->pt_cap > KEEP) {
		ppcp_wipe(c->pt, c->pt_cap);
		free(c->pt);
		c->pt = NULL;
		c->pt_cap = 0;
	}
	if (c->txs_cap > KEEP) {
		ppcp_wipe(c->txs, c->txs_cap);
		free(c->txs);
		c->txs = NULL;
		c->txs_cap = 0;
	}
	if (c->rd.body_cap > KEEP && !ppcp__frame_reader_partial(&c->rd)) {
		ppcp_wipe(c->rd.body, c->rd.body_cap);
		free(c->rd.body);
		c->rd.body = NULL;
		c->rd.body_cap = 0;
	}
	if (c->out.cap > KEEP && c->out.len == c->out.off)
		ppcp__buf_free(&c->out);
}

int ppcp_conn_on_timeout(ppcp_conn *c, uint64_t now)
{
	if (c->err != 0)
		return c->err;
	c->now = now;
	switch (c->state) {
	case PPCP_ST_ESTABLISHED:
		if (now >= c->last_rx + c->idle_timeout)
			return conn_fail(c, PPCP_ERR_TIMEOUT);
		if (now >= c->last_tx + c->hb_interval) {
			char id[PPCP_ID_MAX + 1];
			json_t *p = json_pack("{s:I}", "ts", (json_int_t)now);
			int ret;

			if (p == NULL)
				return PPCP_ERR_NOMEM;
			conn_trim(c);
			conn_new_id(c, id);
			ret = conn_send_env(c, PPCP_MSG_HEARTBEAT, id, p);
			json_decref(p);
			return ret;
		}
		return 0;
	case PPCP_ST_CLOSED:
	case PPCP_ST_FAILED:
		return 0;
	default:
		if (now >= c->hs_deadline)
			return conn_fail(c, PPCP_ERR_HANDSHAKE_TIMEOUT);
		return 0;
	}
}

/* Types an application may send with ppcp_conn_send. */
static int conn_app_type(enum ppcp_msg_type t)
{
	switch (t) {
	case PPCP_MSG_HEARTBEAT:
	case PPCP_MSG_HEARTBEAT_ACK:
	case PPCP_MSG_COMMAND:
	case PPCP_MSG_RESPONSE:
	case PPCP_MSG_FILE_REQUEST:
	case PPCP_MSG_FILE_CHUNK:
	case PPCP_MSG_ERROR:
		return 1;
	default:
		return 0;
	}
}

int ppcp_conn_send(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
		   const struct json_t *payload, char *id_out)
{
	char auto_id[PPCP_ID_MAX + 1];
	int ret;

	if (c->err != 0)
		return c->err;
	if (c->state != PPCP_ST_ESTABLISHED)
		return PPCP_ERR_STATE;
	if (!conn_app_type(type))
		return PPCP_ERR_INVAL;
	if (ppcp__msg_check_payload(type, payload != NULL ? payload : json_null()) != 0)
		return PPCP_ERR_INVAL;
	if (id == NULL) {
		conn_new_id(c, auto_id);
		id = auto_id;
	} else {
		size_t n = strlen(id);
		if (n < 1 || n > PPCP_ID_MAX)
			return PPCP_ERR_INVAL;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
				return PPCP_ERR_INVAL;
	}
	ret = conn_send_env(c, type, id, payload);
	if (ret == 0 && id_out != NULL)
		conn_copy_id(id_out, id);
	return ret;
}

int ppcp_conn_send_json(ppcp_conn *c, enum ppcp_msg_type type, const char *id,
			const char *payload_json, char *id_out)
{
	json_t *p = NULL;
	json_error_t jerr;
	int ret;

	if (payload_json != NULL) {
		/* The same depth rule as received JSON, then jansson's checks. */
		if (payload_json[0] == '{') {
			ret = ppcp__json_parse((const uint8_t *)payload_json, strlen(payload_json), &p);
			if (ret != 0)
				return PPCP_ERR_INVAL;
		} else {
			p = json_loads(payload_json, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
			if (p == NULL)
				return PPCP_ERR_INVAL;
		}
	}
	ret = ppcp_conn_send(c, type, id, p, id_out);
	json_decref(p);
	return ret;
}

int ppcp_conn_send_binary(ppcp_conn *c, const uint8_t *data, size_t len)
{
	static const uint8_t tag = 0x01;
	int ret;

	if (c->err != 0)
		return c->err;
	if (c->state != PPCP_ST_ESTABLISHED || !(c->ext & PPCP_EXT_BINARY_DATA))
		return PPCP_ERR_STATE;
	if (len + 1 > c->peer_max_record)
		return PPCP_ERR_TOO_BIG;
	ret = conn_maybe_rekey(c);
	if (ret != 0)
		return ret;
	return conn_seal(c, &tag, 1, data, len);
}

int ppcp_conn_send_file_data(ppcp_conn *c, uint32_t stream, uint64_t offset, int last,
			     const uint8_t *data, size_t len)
{
	uint8_t hdr[PPCP_FILE_DATA_HDR];
	int ret;

	if (c->err != 0)
		return c->err;
	if (c->state != PPCP_ST_ESTABLISHED || !(c->ext & PPCP_EXT_BINARY_DATA))
		return PPCP_ERR_STATE;
	if (len > c->peer_max_record - PPCP_FILE_DATA_HDR)
		return PPCP_ERR_TOO_BIG;
	ret = conn_maybe_rekey(c);
	if (ret != 0)
		return ret;
	/* PROTOCOL.md §9.5: 0x01 ‖ stream ‖ offset ‖ flags ‖ data */
	hdr[0] = 0x01;
	ppcp__store_be32(hdr + 1, stream);
	ppcp__store_be64(hdr + 5, offset);
	hdr[13] = last ? PPCP_FILE_DATA_LAST : 0;
	return conn_seal(c, hdr, sizeof(hdr), data, len);
}

int ppcp_conn_send_file_chunk(ppcp_conn *c, const char *id, uint64_t offset, int last,
			      const uint8_t *data, size_t len)
{
	size_t need;
	long n;
	int ret;

	if (c->err != 0)
		return c->err;
	if (c->state != PPCP_ST_ESTABLISHED)
		return PPCP_ERR_STATE;
	if (id == NULL || (data == NULL && len > 0))
		return PPCP_ERR_INVAL;
	need = ppcp__msg_chunk_size(strlen(id), len);
	if (need > (size_t)c->peer_max_record + 64)
		return PPCP_ERR_TOO_BIG;
	if (need > c->txs_cap) {
		char *p = malloc(need);
		if (p == NULL)
			return PPCP_ERR_NOMEM;
		if (c->txs != NULL) {
			ppcp_wipe(c->txs, c->txs_cap);
			free(c->txs);
		}
		c->txs = p;
		c->txs_cap = need;
	}
	n = ppcp__msg_encode_chunk(c->txs, c->txs_cap, id, conn_wall(c), offset, last, data, len);
	if (n < 0)
		return (int)n;
	if ((size_t)n > c->peer_max_record)
		return PPCP_ERR_TOO_BIG;
	ret = conn_maybe_rekey(c);
	if (ret != 0)
		return ret;
	ret = conn_seal(c, (const uint8_t *)c->txs, (size_t)n, NULL, 0);
	ppcp_wipe(c->txs, (size_t)n);
	if (ret == PPCP_ERR_KEY_EXHAUSTED)
		ret = conn_fail(c, ret);
	return ret;
}

int ppcp_file_data_parse(const uint8_t *rec, size_t len, uint32_t *stream, uint64_t *offset,
			 int *last, const uint8_t **data, size_t *dlen)
{
	/* rec excludes the leading 0x01 */
	if (len < PPCP_FILE_DATA_HDR - 1 || (rec[12] & ~PPCP_FILE_DATA_LAST) != 0)
		return PPCP_ERR_BAD_MESSAGE;
	*stream = ppcp__load_be32(rec);
	*offset = ((uint64_t)ppcp__load_be32(rec + 4) << 32) | ppcp__load_be32(rec + 8);
	*last = rec[12] & PPCP_FILE_DATA_LAST;
	*data = rec + 13;
	*dlen = len - 13;
	return 0;
}

int ppcp_conn_close(ppcp_conn *c, const char *reason)
{
	char id[PPCP_ID_MAX + 1];
	json_t *p = NULL;
	int ret;

	if (c->err != 0)
		return c->err;
	if (c->state == PPCP_ST_CLOSED)
		return 0;
	if (c->state != PPCP_ST_ESTABLISHED)
		return PPCP_ERR_STATE;
	if (reason != NULL) {
		p = json_pack("{s:s}", "reason", reason);
		if (p == NULL)
			return PPCP_ERR_NOMEM;
	}
	conn_new_id(c, id);
	ret = conn_send_env(c, PPCP_MSG_BYE, id, p);
	json_decref(p);
	if (ret == 0)
		c->state = PPCP_ST_CLOSED;
	return ret;
}

int ppcp_conn_abort(ppcp_conn *c, int err)
{
	return conn_fail(c, err < 0 ? err : PPCP_ERR_INVAL);
}

enum ppcp_state ppcp_conn_state(const ppcp_conn *c)
{
	return c->state;
}

int ppcp_conn_error(const ppcp_conn *c)
{
	return c->err;
}

const char *ppcp_conn_error_detail(const ppcp_conn *c)
{
	return c->err != 0 ? c->why : "";
}

const char *ppcp_conn_peer_id(const ppcp_conn *c)
{
	return c->peer_id;
}

uint32_t ppcp_conn_extensions(const ppcp_conn *c)
{
	return c->ext;
}

uint32_t ppcp_conn_max_record(const ppcp_conn *c)
{
	return c->max_record;
}

uint32_t ppcp_conn_peer_max_record(const ppcp_conn *c)
{
	return c->peer_max_record;
}

/* ---- test hooks (internal.h) ------------------------------------------ */

void ppcp__conn_test_set_seq(ppcp_conn *c, int tx, uint64_t seq)
{
	if (tx)
		c->tx.seq = seq;
	else
		c->rx.seq = seq;
}

int ppcp__conn_key_update(ppcp_conn *c)
{
	if (c->state != PPCP_ST_ESTABLISHED || !(c->ext & PPCP_EXT_KEY_UPDATE))
		return PPCP_ERR_STATE;
	return conn_send_key_update(c);
}

size_t ppcp__conn_buffered(const ppcp_conn *c)
{
	return c->pt_cap + c->txs_cap + c->rd.body_cap + c->out.cap;
}

const ppcp__dir *ppcp__conn_dir(const ppcp_conn *c, int tx)
{
	return tx ? &c->tx : &c->rx;
}
