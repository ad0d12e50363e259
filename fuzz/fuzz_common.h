/*
 * fuzz_common.h - what the fuzz targets (and make_corpus) share: the fixed
 * inputs of tests/vectors/handshake.json, a deterministic client/server
 * pair pumped in memory, and the input format of the connection targets.
 *
 * Determinism: every connection draws its randomness from a fixed stream
 * (private scalar, then hello nonce, as in tests/test_conn.c), the clock is
 * a counter the input advances, the wall clock is a constant and jansson's
 * hash seed is fixed in fz_init().  So a session's keys and records are the
 * same in every run, and make_corpus can record real traffic that the
 * targets will accept byte for byte.
 *
 * Input format of the connection targets (fuzz_server, fuzz_client,
 * fuzz_server_established, fuzz_client_established):
 *
 *   byte 0    flags: FZ_F_SEALED, FZ_F_REPLY, FZ_F_EOF (other bits unused)
 *   raw mode (FZ_F_SEALED clear):
 *     byte 1  split seed: 0 feeds the rest at once, else a fixed sequence
 *             of chunk sizes derived from it (fz_split_next)
 *     rest    bytes fed to the target as they are
 *   sealed mode (FZ_F_SEALED set):
 *     rest    chunks separated by FZ_SEP; each chunk is an op byte and data:
 *       op&7 = 0  seal data as one record under the peer's real sending
 *                 key and sequence number, feed it to the target
 *              1  feed data raw, in pieces of (op>>3) bytes (0 = at once)
 *              2  advance the clock by u16(data) * 64 ms, or with op&8 to
 *                 the target's next deadline (ppcp_conn_next_deadline), and
 *                 run the target's timers
 *              3  the target sends data[1..] as JSON text, type data[0]
 *              4  (op>>3)&3 = 0: the target sends data as a binary-data
 *                 record; 1: as file data (ppcp_conn_send_file_data) with
 *                 stream u32(data[0..4]), offset u64(data[4..12]) and LAST
 *                 if op&32; 2: as a FILE_CHUNK data message
 *                 (ppcp_conn_send_file_chunk), offset u64(data[0..8]);
 *                 3: the target aborts (ppcp_conn_abort)
 *              5  the peer sends KEY_UPDATE (the real engine), fed on
 *              6  the target sends KEY_UPDATE
 *              7  data[0]&3: 0 target sends BYE, 1 peer sends BYE,
 *                 2 target sees EOF, 3 peer sees EOF
 *     Whatever the target writes is fed to the real peer, and what the peer
 *     answers is fed back, so the pair stays a real two-party session; the
 *     harness aborts when the correct peer refuses the target's output or
 *     when the two sides' keys diverge.
 */
#ifndef PPCP_FUZZ_COMMON_H
#define PPCP_FUZZ_COMMON_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FZ_F_SEALED 0x01u
#define FZ_F_REPLY 0x08u /* the target's callbacks answer (reentrant sends) */
#define FZ_F_EOF 0x10u   /* the target sees EOF after the input */

__attribute__((unused)) static const uint8_t FZ_SEP[2] = { 0xff, 0xff };

/* tests/vectors/handshake.json "inputs": the PSK, rng_client and
 * rng_server (d ‖ nonce), the ids and the wall clock. */
__attribute__((unused)) static const uint8_t FZ_PSK[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
__attribute__((unused)) static const uint8_t FZ_RNG_CLIENT[64] = {
	0xb4, 0x00, 0x0a, 0x0f, 0xa6, 0x76, 0x46, 0xaa, 0x98, 0x51, 0x19, 0x48, 0x8a, 0x49, 0x50, 0xb2,
	0x64, 0xe1, 0x0e, 0xbf, 0x57, 0x0e, 0xb9, 0x0c, 0x55, 0x15, 0x9e, 0xd2, 0x06, 0xf5, 0x1f, 0x24,
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
__attribute__((unused)) static const uint8_t FZ_RNG_SERVER[64] = {
	0xac, 0xa1, 0x2f, 0xec, 0x5d, 0x0c, 0x01, 0xbc, 0xa4, 0xf3, 0x66, 0x4e, 0x54, 0x1f, 0x78, 0xc6,
	0xf2, 0xda, 0x8d, 0xfd, 0x2b, 0x37, 0x14, 0x64, 0xe5, 0x3a, 0xb0, 0x59, 0xf9, 0x13, 0x74, 0x94,
	0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
};
#define FZ_SERVER_ID "srv-test"
#define FZ_CLIENT_ID "cli-test"
#define FZ_WALL_CLOCK 1700000000
#define FZ_NOW0 1000u

/* A harness bug or a broken invariant: print and abort, which libFuzzer
 * reports as a crash with the input that caused it. */
#define FZ_CHECK(cond, ...)                                                                      \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__,        \
				__LINE__, #cond);                                                \
			fprintf(stderr, __VA_ARGS__);                                            \
			fprintf(stderr, "\n");                                                   \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* Once per process, before any JSON object exists. */
static inline void fz_init(void)
{
	static int done;
	if (!done) {
		json_object_seed(0x5eed);
		done = 1;
	}
}

/* FZ_DEBUG=1 in the environment: print how each input ended. */
static inline int fz_debug(void)
{
	static int v = -1;
	if (v < 0)
		v = getenv("FZ_DEBUG") != NULL;
	return v;
}

/* ---- one side of the pair ---------------------------------------------- */

typedef struct fz_side {
	const uint8_t *rng;
	size_t rng_len, rng_off;
	int reply;       /* answer COMMANDs and echo binary records */
	int established; /* on_established calls */
	unsigned long messages, binaries, sum;
} fz_side;

static inline int fz_rng(void *user, uint8_t *out, size_t len)
{
	fz_side *s = user;
	if (s->rng_off + len > s->rng_len)
		return -1;
	memcpy(out, s->rng + s->rng_off, len);
	s->rng_off += len;
	return 0;
}

static inline int64_t fz_wall(void *user)
{
	(void)user;
	return FZ_WALL_CLOCK;
}

static inline void fz_on_established(ppcp_conn *c, void *user)
{
	(void)c;
	((fz_side *)user)->established++;
}

/* Touch everything a message hands out, so ASan sees any bad pointer. */
static inline void fz_on_message(ppcp_conn *c, const ppcp_msg *m, void *user)
{
	fz_side *s = user;
	size_t n = 0;
	char *txt;

	FZ_CHECK(m->type > PPCP_MSG_UNKNOWN && m->type < PPCP_MSG__COUNT, "type %d", (int)m->type);
	FZ_CHECK(m->id != NULL && m->type_name != NULL && m->payload != NULL, "null member");
	FZ_CHECK(strcmp(m->type_name, ppcp_msg_type_name(m->type)) == 0, "type name %s",
		 m->type_name);
	s->messages++;
	s->sum += strlen(m->id) + (unsigned long)m->ts;
	txt = ppcp__json_dump(m->payload, &n);
	if (txt != NULL) {
		s->sum += n;
		free(txt);
	}
	if (s->reply && m->type == PPCP_MSG_COMMAND) {
		/* An application answering from inside the callback. */
		json_t *p = json_pack("{s:b,s:i,s:n}", "done", 1, "exit", 0, "signal");
		if (p != NULL) {
			(void)ppcp_conn_send(c, PPCP_MSG_RESPONSE, m->id, p, NULL);
			json_decref(p);
		}
	}
}

static inline void fz_on_binary(ppcp_conn *c, const uint8_t *data, size_t len, void *user)
{
	fz_side *s = user;
	s->binaries++;
	for (size_t i = 0; i < len; i++)
		s->sum += data[i];
	if (s->reply)
		(void)ppcp_conn_send_binary(c, data, len);
}

static inline ppcp_conn *fz_conn_new(fz_side *sd, enum ppcp_role role, int with_pong, uint64_t now)
{
	static const ppcp_pong_info pong = {
		.server_id = FZ_SERVER_ID,
		.hostname = "fuzz-host",
		.port = 9000,
		.capabilities = PPCP_EXT_ALL,
	};
	ppcp_config cfg;
	ppcp_conn *c = NULL;
	int ret;

	ppcp_config_init(&cfg, role);
	cfg.psk = FZ_PSK;
	cfg.psk_len = sizeof(FZ_PSK);
	cfg.server_id = FZ_SERVER_ID;
	cfg.client_id = role == PPCP_ROLE_CLIENT ? FZ_CLIENT_ID : NULL;
	cfg.rng = fz_rng;
	cfg.unix_time = fz_wall;
	cfg.pong = with_pong ? &pong : NULL;
	cfg.cb.on_established = fz_on_established;
	cfg.cb.on_message = fz_on_message;
	cfg.cb.on_binary = fz_on_binary;
	cfg.user = sd;
	sd->rng = role == PPCP_ROLE_CLIENT ? FZ_RNG_CLIENT : FZ_RNG_SERVER;
	sd->rng_len = 64;
	ret = ppcp_conn_new(&c, &cfg, now);
	FZ_CHECK(ret == 0, "ppcp_conn_new: %s", ppcp_err_name(ret));
	return c;
}

/* ---- the pair ------------------------------------------------------------ */

/* Where the fuzzer takes over. */
enum fz_stage {
	FZ_STAGE_START = 0, /* the target has just been created */
	FZ_STAGE_AUTH = 1,  /* hellos done: the peer's handshake key seals */
	FZ_STAGE_ESTABLISHED = 2,
};

typedef struct fz_pair {
	ppcp_conn *c, *s;
	fz_side cs, ss;
	ppcp_conn *target, *peer;
	fz_side *tside;
	enum fz_stage stage;
	uint64_t now;
	/* Client target in the AUTH stage: the client's real AUTH, given to
	 * the server once the client is established, so that the server's
	 * application keys match the ones the client installed. */
	uint8_t *held_auth;
	size_t held_len;
	size_t fed;  /* bytes fed to the target so far */
	int sh_seen; /* START stage, server: SERVER_HELLO written, records follow */
} fz_pair;

/* Take (copy and acknowledge) all pending output of a. */
static inline uint8_t *fz_take(ppcp_conn *a, size_t *n)
{
	const uint8_t *d;
	uint8_t *copy = NULL;

	*n = ppcp_conn_out(a, &d);
	if (*n > 0) {
		copy = malloc(*n);
		FZ_CHECK(copy != NULL, "malloc");
		memcpy(copy, d, *n);
		ppcp_conn_out_ack(a, *n);
	}
	return copy;
}

/* Feed all of a's output to b; returns the feed's result (0 if none). */
static inline int fz_move(ppcp_conn *a, ppcp_conn *b, uint64_t now)
{
	size_t n;
	uint8_t *d = fz_take(a, &n);
	int ret = 0;

	if (n > 0)
		ret = ppcp_conn_feed(b, d, n, now);
	free(d);
	return ret;
}

static inline void fz_drop(ppcp_conn *a)
{
	size_t n;
	free(fz_take(a, &n));
}

static inline int fz_alive(ppcp_conn *c)
{
	return ppcp_conn_error(c) == 0 && ppcp_conn_state(c) != PPCP_ST_CLOSED;
}

/* Build the pair and run the real handshake up to stage. */
static inline void fz_pair_init(fz_pair *p, enum ppcp_role target_role, enum fz_stage stage, int reply)
{
	int ret;

	memset(p, 0, sizeof(*p));
	p->now = FZ_NOW0;
	p->stage = stage;
	p->s = fz_conn_new(&p->ss, PPCP_ROLE_SERVER, 1, p->now);
	p->c = fz_conn_new(&p->cs, PPCP_ROLE_CLIENT, 0, p->now);
	p->target = target_role == PPCP_ROLE_SERVER ? p->s : p->c;
	p->peer = target_role == PPCP_ROLE_SERVER ? p->c : p->s;
	p->tside = target_role == PPCP_ROLE_SERVER ? &p->ss : &p->cs;
	p->tside->reply = reply;

	if (stage == FZ_STAGE_START) {
		/* A client target: the input plays the server; its CH is dropped. */
		fz_drop(p->c);
		return;
	}
	ret = fz_move(p->c, p->s, p->now); /* CLIENT_HELLO */
	FZ_CHECK(ret == 0 && ppcp_conn_state(p->s) == PPCP_ST_SERVER_EXPECT_AUTH, "CH: %s",
		 ppcp_err_name(ret));
	ret = fz_move(p->s, p->c, p->now); /* SERVER_HELLO */
	FZ_CHECK(ret == 0 && ppcp_conn_state(p->c) == PPCP_ST_CLIENT_EXPECT_AUTH_OK, "SH: %s",
		 ppcp_err_name(ret));
	if (stage == FZ_STAGE_AUTH) {
		if (target_role == PPCP_ROLE_SERVER) {
			/* The input replaces the client's AUTH, sealed under c_hs
			 * from seq 0 again. */
			fz_drop(p->c);
			ppcp__conn_test_set_seq(p->c, 1, 0);
		} else {
			/* The input replaces AUTH_OK under s_hs (the server's tx,
			 * still at seq 0); the client's AUTH is held back. */
			p->held_auth = fz_take(p->c, &p->held_len);
		}
		return;
	}
	ret = fz_move(p->c, p->s, p->now); /* AUTH */
	FZ_CHECK(ret == 0 && ppcp_conn_state(p->s) == PPCP_ST_ESTABLISHED, "AUTH: %s",
		 ppcp_err_name(ret));
	ret = fz_move(p->s, p->c, p->now); /* AUTH_OK */
	FZ_CHECK(ret == 0 && ppcp_conn_state(p->c) == PPCP_ST_ESTABLISHED, "AUTH_OK: %s",
		 ppcp_err_name(ret));
}

static inline void fz_pair_free(fz_pair *p)
{
	ppcp_conn_free(p->c);
	ppcp_conn_free(p->s);
	free(p->held_auth);
	memset(p, 0, sizeof(*p));
}

/* Feed the target; in the START stage there is no peer to talk to. */
static inline int fz_feed_target(fz_pair *p, const uint8_t *d, size_t n)
{
	p->fed += n;
	return ppcp_conn_feed(p->target, d, n, p->now);
}

/* START stage: what the target writes before keys exist must be what a
 * correct peer parses: a server writes PONG frames no larger than what it
 * was fed, and a SERVER_HELLO; a client writes nothing more (its
 * CLIENT_HELLO was dropped before the input) until SERVER_HELLO, then
 * records. */
static inline void fz_check_start_output(fz_pair *p)
{
	size_t n, off = 0;
	uint8_t *d = fz_take(p->target, &n);

	while (p->target == p->s && !p->sh_seen && off + PPCP_LEN_PREFIX <= n) {
		uint32_t len = ppcp__load_be32(d + off);
		const uint8_t *body = d + off + PPCP_LEN_PREFIX;
		FZ_CHECK(len <= n - off - PPCP_LEN_PREFIX, "truncated frame in the output");
		if (len > 0 && body[0] == '{') {
			ppcp_pong pong;
			int ret = ppcp_pong_decode(body, len, &pong);
			FZ_CHECK(ret == 0, "the server wrote a PONG it cannot decode: %s",
				 ppcp_err_name(ret));
			FZ_CHECK(len + PPCP_LEN_PREFIX <= p->fed, "PONG of %u bytes after %zu fed",
				 (unsigned)len, p->fed);
		} else if (len > 0 && body[0] == 'P') {
			ppcp__hello h;
			int ret = ppcp__hello_parse(body, len, 2, &h);
			FZ_CHECK(ret == 0, "the server wrote a SERVER_HELLO that does not parse: %s",
				 ppcp_err_name(ret));
			p->sh_seen = 1;
		}
		off += PPCP_LEN_PREFIX + len;
	}
	free(d);
}

/* Settle the pair after the target consumed something: hand the held AUTH
 * over, exchange output until quiet, and check that the peer accepts what
 * the target wrote and that both sides agree on the keys. */
static inline void fz_settle(fz_pair *p)
{
	int ret;

	if (p->stage == FZ_STAGE_START) {
		fz_check_start_output(p);
		return;
	}
	if (p->held_auth != NULL && ppcp_conn_state(p->target) == PPCP_ST_ESTABLISHED) {
		/* The client target took a (fuzzed) AUTH_OK: now let the real
		 * server see the real AUTH, and drop its real AUTH_OK. */
		ret = ppcp_conn_feed(p->s, p->held_auth, p->held_len, p->now);
		FZ_CHECK(ret == 0 && ppcp_conn_state(p->s) == PPCP_ST_ESTABLISHED,
			 "held AUTH refused: %s", ppcp_err_name(ret));
		fz_drop(p->s);
		free(p->held_auth);
		p->held_auth = NULL;
	}
	for (int round = 0; round < 16; round++) {
		const uint8_t *d;
		int moved = 0;

		if (ppcp_conn_out(p->target, &d) > 0) {
			moved = 1;
			if (p->held_auth != NULL || !fz_alive(p->peer)) {
				fz_drop(p->target);
			} else {
				ret = fz_move(p->target, p->peer, p->now);
				/* A correct peer accepts everything a correct target
				 * writes.  Exceptions: AUTH_FAIL is meant to fail it,
				 * and a fuzzed AUTH may announce a max_record larger
				 * than the real client's. */
				FZ_CHECK(ret == 0 || ret == PPCP_ERR_AUTH_REJECTED ||
						 ret == PPCP_ERR_FRAME_TOO_LARGE,
					 "the peer refused the target's output: %s",
					 ppcp_err_name(ret));
			}
		}
		if (ppcp_conn_out(p->peer, &d) > 0) {
			moved = 1;
			if (p->held_auth != NULL || !fz_alive(p->target))
				fz_drop(p->peer);
			else
				(void)fz_move(p->peer, p->target, p->now);
		}
		if (!moved)
			break;
	}
	/* A server target that sent AUTH_OK has a client that accepted it. */
	if (p->target == p->s && ppcp_conn_state(p->s) == PPCP_ST_ESTABLISHED &&
	    ppcp_conn_error(p->c) == 0)
		FZ_CHECK(ppcp_conn_state(p->c) == PPCP_ST_ESTABLISHED ||
				 ppcp_conn_state(p->c) == PPCP_ST_CLOSED,
			 "server established, client in state %d", (int)ppcp_conn_state(p->c));
}

/* Seal data as one record under the peer's sending key and feed it; when
 * there is no such key (START stage, or a peer that failed) feed it raw. */
static inline void fz_seal_feed(fz_pair *p, const uint8_t *d, size_t n)
{
	ppcp__dir *tx = p->stage == FZ_STAGE_START ? NULL : (ppcp__dir *)ppcp__conn_dir(p->peer, 1);
	const ppcp__dir *rx = ppcp__conn_dir(p->target, 0);
	uint8_t before[32];
	ppcp__buf b = { 0 };
	int ret;

	if (n == 0)
		return;
	if (tx == NULL || tx->aead == NULL || ppcp__record_seal(tx, &b, d, n, NULL, 0) != 0) {
		(void)fz_feed_target(p, d, n);
		return;
	}
	memcpy(before, rx->secret, 32);
	(void)fz_feed_target(p, b.p, b.len);
	ppcp__buf_free(&b);
	/* If the target's receive key moved on, this record was a KEY_UPDATE
	 * that decrypted under the peer's key: the peer's sending key follows
	 * (as the real peer does after sending one), and the two must then be
	 * the same secret at seq 0.  The AUTH record and AUTH_OK change keys
	 * too; fz_settle brings the peer over for those. */
	if (ppcp_conn_state(p->target) == PPCP_ST_ESTABLISHED &&
	    ppcp_conn_state(p->peer) == PPCP_ST_ESTABLISHED &&
	    memcmp(before, rx->secret, 32) != 0) {
		ret = ppcp__dir_update(tx);
		FZ_CHECK(ret == 0, "dir_update: %s", ppcp_err_name(ret));
		FZ_CHECK(memcmp(tx->secret, rx->secret, 32) == 0 && tx->seq == 0 && rx->seq == 0,
			 "receive key diverged from the sender's after KEY_UPDATE");
	}
}

/* A fixed sequence of chunk sizes from an 8-bit seed: xorshift32, sizes
 * 1..2^(seed%8+1). */
static inline size_t fz_split_next(uint32_t *state, uint8_t seed)
{
	uint32_t x = *state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return 1 + (x & ((2u << (seed % 8)) - 1));
}

static inline void fz_feed_split(fz_pair *p, const uint8_t *d, size_t n, uint8_t seed)
{
	uint32_t st = 0x9e3779b9u ^ seed;

	while (n > 0 && fz_alive(p->target)) {
		size_t k = seed == 0 ? n : fz_split_next(&st, seed);
		if (k > n)
			k = n;
		(void)fz_feed_target(p, d, k);
		fz_settle(p);
		d += k;
		n -= k;
	}
}

static inline void fz_op(fz_pair *p, uint8_t op, const uint8_t *d, size_t n)
{
	switch (op & 7) {
	case 0:
		fz_seal_feed(p, d, n);
		break;
	case 1: {
		size_t step = op >> 3;
		for (size_t off = 0; off < n;) {
			size_t k = step == 0 || n - off < step ? n - off : step;
			(void)fz_feed_target(p, d + off, k);
			off += k;
		}
		break;
	}
	case 2:
		if (op & 8) {
			uint64_t dl = ppcp_conn_next_deadline(p->target);
			if (dl != UINT64_MAX && dl > p->now)
				p->now = dl;
		} else {
			p->now += 64u * (n >= 2 ? ((uint32_t)d[0] << 8 | d[1]) : n == 1 ? d[0] : 1);
		}
		(void)ppcp_conn_on_timeout(p->target, p->now);
		break;
	case 3: {
		char *txt;
		if (n == 0)
			break;
		txt = malloc(n);
		FZ_CHECK(txt != NULL, "malloc");
		memcpy(txt, d + 1, n - 1);
		txt[n - 1] = '\0';
		(void)ppcp_conn_send_json(p->target, (enum ppcp_msg_type)(d[0] % PPCP_MSG__COUNT),
					  NULL, n > 1 ? txt : NULL, NULL);
		free(txt);
		break;
	}
	case 4: {
		uint64_t off = 0;
		switch ((op >> 3) & 3) {
		case 0:
			(void)ppcp_conn_send_binary(p->target, d, n);
			break;
		case 1:
			if (n < 12)
				break;
			for (int i = 4; i < 12; i++)
				off = off << 8 | d[i];
			(void)ppcp_conn_send_file_data(p->target, (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
								  (uint32_t)d[2] << 8 | d[3],
						       off, (op & 32) != 0, d + 12, n - 12);
			break;
		case 2:
			if (n < 8)
				break;
			for (int i = 0; i < 8; i++)
				off = off << 8 | d[i];
			(void)ppcp_conn_send_file_chunk(p->target, "0000fz01", off, (op & 32) != 0, d + 8,
							n - 8);
			break;
		default:
			(void)ppcp_conn_abort(p->target, PPCP_ERR_BAD_MESSAGE);
			break;
		}
		break;
	}
	case 5:
		if (p->stage != FZ_STAGE_START && p->held_auth == NULL)
			(void)ppcp__conn_key_update(p->peer);
		break;
	case 6:
		(void)ppcp__conn_key_update(p->target);
		break;
	default:
		switch (n > 0 ? d[0] & 3 : 0) {
		case 0:
			(void)ppcp_conn_close(p->target, n > 1 ? "fuzz" : NULL);
			break;
		case 1:
			if (p->stage != FZ_STAGE_START && p->held_auth == NULL)
				(void)ppcp_conn_close(p->peer, NULL);
			break;
		case 2:
			(void)ppcp_conn_eof(p->target);
			break;
		default:
			if (p->stage != FZ_STAGE_START && p->held_auth == NULL)
				(void)ppcp_conn_eof(p->peer);
			break;
		}
		break;
	}
	fz_settle(p);
}

/* Find the next separator at or after d[0..n); returns its offset or n. */
static inline size_t fz_find_sep(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i + sizeof(FZ_SEP) <= n; i++)
		if (memcmp(d + i, FZ_SEP, sizeof(FZ_SEP)) == 0)
			return i;
	return n;
}

/* Run one input against a target of this role, taken over at stage
 * (sealed inputs) or at raw_stage (raw inputs). */
static inline void fz_run(const uint8_t *data, size_t size, enum ppcp_role role, enum fz_stage raw_stage,
		   enum fz_stage sealed_stage)
{
	fz_pair p;
	uint8_t flags;

	fz_init();
	if (size < 1)
		return;
	flags = data[0];
	data++;
	size--;
	fz_pair_init(&p, role, (flags & FZ_F_SEALED) ? sealed_stage : raw_stage,
		     (flags & FZ_F_REPLY) != 0);

	if (!(flags & FZ_F_SEALED)) {
		uint8_t seed = 0;
		if (size > 0) {
			seed = data[0];
			data++;
			size--;
		}
		fz_feed_split(&p, data, size, seed);
	} else {
		while (size > 0 && fz_alive(p.target)) {
			size_t k = fz_find_sep(data, size);
			if (k > 0)
				fz_op(&p, data[0], data + 1, k - 1);
			if (k == size)
				break;
			data += k + sizeof(FZ_SEP);
			size -= k + sizeof(FZ_SEP);
		}
	}
	if (flags & FZ_F_EOF) {
		(void)ppcp_conn_eof(p.target);
		fz_settle(&p);
	}
	if (fz_debug())
		fprintf(stderr, "fuzz: target state %d error %s, peer state %d error %s, %lu messages\n",
			(int)ppcp_conn_state(p.target), ppcp_err_name(ppcp_conn_error(p.target)),
			(int)ppcp_conn_state(p.peer), ppcp_err_name(ppcp_conn_error(p.peer)),
			p.tside->messages);
	/* The sticky error is a valid code with a name. */
	if (ppcp_conn_error(p.target) != 0)
		FZ_CHECK(strncmp(ppcp_err_name(ppcp_conn_error(p.target)), "PPCP_ERR_", 9) == 0,
			 "unnamed error %d", ppcp_conn_error(p.target));
	fz_pair_free(&p);
}

#endif /* PPCP_FUZZ_COMMON_H */
