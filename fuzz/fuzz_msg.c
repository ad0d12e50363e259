/*
 * fuzz_msg.c - the JSON layer of PROTOCOL.md §7 and the strict base64 of
 * msg.c, each input run through all of:
 *
 *  - ppcp__json_parse: what parses dumps (canonically) to a text that
 *    parses again and dumps to the same text, ASCII only.  The values are
 *    equal except for reals, which the canonical form writes with 15
 *    significant digits (PROTOCOL.md §7);
 *  - ppcp__msg_decode: what decodes re-encodes with ppcp__msg_encode to a
 *    message that decodes to the same type, id, time and (canonically
 *    dumped) payload; what fails leaves at most a valid id;
 *  - ppcp__b64_decode: what decodes re-encodes to exactly the input (one
 *    encoding per value), and does not fit a buffer one byte smaller; and
 *    the input, encoded, decodes back to itself.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const uint8_t *data, size_t size)
{
	json_t *v = NULL, *w = NULL;
	char *t1, *t2;
	size_t n1 = 0, n2 = 0;
	int ret;

	if (ppcp__json_parse(data, size, &v) != 0) {
		FZ_CHECK(v == NULL, "value left on failure");
		return;
	}
	FZ_CHECK(json_is_object(v), "not an object");
	t1 = ppcp__json_dump(v, &n1);
	FZ_CHECK(t1 != NULL, "dump");
	ret = ppcp__json_parse((const uint8_t *)t1, n1, &w);
	FZ_CHECK(ret == 0, "canonical dump does not parse: %s", t1);
	t2 = ppcp__json_dump(w, &n2);
	FZ_CHECK(t2 != NULL && n1 == n2 && memcmp(t1, t2, n1) == 0, "dump not stable: %s", t1);
	/* ASCII only.  jansson's JSON_ENSURE_ASCII escapes controls and
	 * non-ASCII but writes DEL (0x7F) as it is, so that one byte outside
	 * printable ASCII can appear (corpus msg/dump-raw-del-0x7f). */
	for (size_t i = 0; i < n1; i++)
		FZ_CHECK((unsigned char)t1[i] >= 0x20 && (unsigned char)t1[i] <= 0x7f,
			 "non-ASCII byte in canonical output");
	free(t1);
	free(t2);
	json_decref(v);
	json_decref(w);
}

static void check_msg(const uint8_t *data, size_t size)
{
	ppcp__envelope env, env2;
	char *txt, *p1, *p2;
	size_t n = 0;
	int ret = ppcp__msg_decode(data, size, &env);

	if (env.id != NULL) {
		size_t k = strlen(env.id);
		FZ_CHECK(k >= 1 && k <= PPCP_ID_MAX, "id of %zu bytes", k);
	}
	if (ret != 0) {
		FZ_CHECK(ret == PPCP_ERR_BAD_MESSAGE || ret == PPCP_ERR_BAD_MSG_VERSION, "error %s",
			 ppcp_err_name(ret));
		ppcp__msg_release(&env);
		return;
	}
	FZ_CHECK(env.type_name != NULL && env.id != NULL && env.payload != NULL, "null member");
	FZ_CHECK(env.type == ppcp_msg_type_from_name(env.type_name), "type");
	txt = ppcp__msg_encode(env.type_name, env.id, env.ts, env.payload, &n);
	FZ_CHECK(txt != NULL, "encode");
	ret = ppcp__msg_decode((const uint8_t *)txt, n, &env2);
	FZ_CHECK(ret == 0, "re-encoded message refused (%s): %s", ppcp_err_name(ret), txt);
	p1 = ppcp__json_dump(env.payload, NULL);
	p2 = ppcp__json_dump(env2.payload, NULL);
	FZ_CHECK(p1 != NULL && p2 != NULL, "dump");
	FZ_CHECK(env2.type == env.type && strcmp(env2.type_name, env.type_name) == 0 &&
			 strcmp(env2.id, env.id) == 0 && env2.ts == env.ts && strcmp(p1, p2) == 0,
		 "round trip changed the message: %s", txt);
	free(p1);
	free(p2);
	free(txt);
	ppcp__msg_release(&env2);
	ppcp__msg_release(&env);
}

static void check_b64(const uint8_t *data, size_t size)
{
	size_t cap = size; /* decoding never grows */
	uint8_t *out = malloc(cap + 1);
	char *enc = malloc(4 * (size / 3 + 1) + 1);
	long n;
	size_t m;

	FZ_CHECK(out != NULL && enc != NULL, "malloc");
	n = ppcp__b64_decode(out, cap, (const char *)data, size);
	if (n >= 0) {
		FZ_CHECK((size_t)n == size / 4 * 3 - (size_t)(size > 0 && data[size - 1] == '=') -
					      (size_t)(size > 1 && data[size - 2] == '='),
			 "decoded length %ld of %zu characters", n, size);
		m = ppcp__b64_encode(enc, out, (size_t)n);
		FZ_CHECK(m == size && memcmp(enc, data, size) == 0,
			 "accepted a non-canonical encoding");
		if (n > 0)
			FZ_CHECK(ppcp__b64_decode(out, (size_t)n - 1, (const char *)data, size) ==
					 -1,
				 "decoded past cap");
	}
	/* Encode the raw input, decode it back. */
	m = ppcp__b64_encode(enc, data, size);
	FZ_CHECK(m == 4 * ((size + 2) / 3) && enc[m] == '\0', "encoded length");
	free(out);
	out = malloc(size + 1);
	FZ_CHECK(out != NULL, "malloc");
	n = ppcp__b64_decode(out, size, enc, m);
	FZ_CHECK(n == (long)size && memcmp(out, data, size) == 0, "round trip");
	free(out);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_init();
	check_json(data, size);
	check_msg(data, size);
	check_b64(data, size);
	return 0;
}
