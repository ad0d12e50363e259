/*
 * test_msg.c - msg.c on its own: strict base64, the JSON rules of
 * PROTOCOL.md §7 (depth, duplicates, numbers, NUL) and the canonical output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "internal.h"

static void test_base64_matches_rfc4648_vectors(void **state)
{
	static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
				      "Zm9vYmFy" };
	char enc[16];
	uint8_t dec[16];
	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(in[i]);
		assert_int_equal(ppcp__b64_encode(enc, (const uint8_t *)in[i], n), strlen(want[i]));
		assert_string_equal(enc, want[i]);
		assert_int_equal(ppcp__b64_decode(dec, sizeof(dec), want[i], strlen(want[i])), n);
		assert_memory_equal(dec, in[i], n);
	}
}

static void test_base64_round_trips_every_length_and_byte(void **state)
{
	uint8_t data[600], back[600];
	char enc[820];
	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 151 + 7);
	for (size_t n = 0; n <= sizeof(data); n++) {
		size_t e = ppcp__b64_encode(enc, data, n);
		assert_int_equal(e, (n + 2) / 3 * 4);
		assert_int_equal(ppcp__b64_decode(back, n, enc, e), n);
		assert_memory_equal(back, data, n);
		/* One byte of room less is refused, not overrun. */
		if (n > 0)
			assert_int_equal(ppcp__b64_decode(back, n - 1, enc, e), -1);
	}
}

static void test_base64_refuses_every_noncanonical_form(void **state)
{
	static const char *bad[] = {
		"Zg",       /* no padding */
		"Zg=",      /* short padding */
		"Zh==",     /* bits under the padding */
		"Zm9=",     /* bits under the padding */
		"Zg==Zg==", /* padding in the middle */
		"Z===",     /* too much padding */
		"=Zg=",     /* padding first */
		"Zm 9v",    /* whitespace */
		"Zm9v\n",   /* newline */
		"Zm9-",     /* URL-safe alphabet */
		"Zm9_",
		"Zm9\x80",  /* non-ASCII */
		"Zg=x",     /* data after '=' */
	};
	uint8_t out[16];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ppcp__b64_decode(out, sizeof(out), bad[i], strlen(bad[i])) != -1)
			fail_msg("accepted non-canonical base64 \"%s\"", bad[i]);
}

static int parse(const char *s)
{
	json_t *v = NULL;
	int ret = ppcp__json_parse((const uint8_t *)s, strlen(s), &v);
	json_decref(v);
	return ret;
}

static void test_json_depth_16_is_accepted_17_is_not(void **state)
{
	char buf[128];
	(void)state;
	/* The top-level object is level 1. */
	strcpy(buf, "{\"a\":");
	for (int i = 0; i < 15; i++)
		strcat(buf, "[");
	for (int i = 0; i < 15; i++)
		strcat(buf, "]");
	strcat(buf, "}");
	assert_int_equal(parse(buf), 0);
	strcpy(buf, "{\"a\":");
	for (int i = 0; i < 16; i++)
		strcat(buf, "[");
	for (int i = 0; i < 16; i++)
		strcat(buf, "]");
	strcat(buf, "}");
	assert_int_equal(parse(buf), PPCP_ERR_BAD_MESSAGE);
	/* Brackets inside strings do not count. */
	assert_int_equal(parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"}"), 0);
}

static void test_json_rules_of_section_7(void **state)
{
	(void)state;
	assert_int_equal(parse("{\"a\":1,\"a\":2}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":\"x\\u0000y\"}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":1e400}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":99999999999999999999}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":\"\\ud800\"}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":\"\xc3\"}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("[1]"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{} {}"), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(parse("{\"a\":9223372036854775807}"), 0);
	assert_int_equal(parse("{\"a\":-9223372036854775808}"), 0);
}

static void test_integer_fields_refuse_reals_and_ranges(void **state)
{
	json_t *o = json_pack("{s:f,s:I,s:s}", "r", 1.0, "i", (json_int_t)5, "s", "5");
	int64_t v;
	(void)state;
	assert_int_equal(ppcp__json_get_int(o, "r", 0, 10, &v), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp__json_get_int(o, "s", 0, 10, &v), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp__json_get_int(o, "missing", 0, 10, &v), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp__json_get_int(o, "i", 6, 10, &v), PPCP_ERR_BAD_MESSAGE);
	assert_int_equal(ppcp__json_get_int(o, "i", 0, 5, &v), 0);
	assert_int_equal(v, 5);
	json_decref(o);
}

static void test_encoding_is_canonical(void **state)
{
	json_t *p = json_pack("{s:s,s:[i,f],s:s}", "z", "a\"b\\c/\n\x01\xc3\xa9", "a", 1, 0.15,
			      "m", "x");
	size_t n;
	char *s = ppcp__msg_encode("COMMAND", "00000001", 5, p, &n);
	(void)state;
	assert_non_null(s);
	assert_string_equal(s, "{\"i\":\"00000001\",\"p\":{\"a\":[1,0.15],\"m\":\"x\",\"z\":"
			       "\"a\\\"b\\\\c/\\n\\u0001\\u00E9\"},\"s\":5,\"t\":\"COMMAND\",\"v\":1}");
	assert_int_equal(n, strlen(s));
	free(s);
	json_decref(p);
}

static void test_identifiers(void **state)
{
	char long_id[80];
	(void)state;
	assert_true(ppcp__valid_ident("srv-01.lan_x"));
	assert_false(ppcp__valid_ident(""));
	assert_false(ppcp__valid_ident("a b"));
	assert_false(ppcp__valid_ident("a/b"));
	assert_false(ppcp__valid_ident(NULL));
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	assert_true(ppcp__valid_ident(long_id));
	long_id[64] = 'a';
	long_id[65] = '\0';
	assert_false(ppcp__valid_ident(long_id));
}

/* The direct encoder writes exactly what the general encoder writes. */
static void test_file_chunk_fast_encoding_equals_the_general_one(void **state)
{
	uint8_t data[700];
	char fast[2048];
	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 5);
	for (size_t n = 0; n <= sizeof(data); n += 37) {
		char b64[1000];
		ppcp__b64_encode(b64, data, n);
		for (int last = 0; last < 2; last++) {
			json_t *p = json_pack("{s:s,s:b,s:I}", "data", b64, "last", last, "offset",
					      (json_int_t)(n * 1000003));
			size_t gl;
			char *general = ppcp__msg_encode("FILE_CHUNK", "0000002a", -7, p, &gl);
			long fl = ppcp__msg_encode_chunk(fast, sizeof(fast), "0000002a", -7,
							 n * 1000003, last, data, n);
			assert_true(fl > 0);
			assert_int_equal((size_t)fl, gl);
			assert_memory_equal(fast, general, gl);
			free(general);
			json_decref(p);
		}
	}
	/* What it refuses. */
	assert_int_equal(ppcp__msg_encode_chunk(fast, sizeof(fast), "a\"b", 0, 0, 0, data, 1),
			 PPCP_ERR_INVAL);
	assert_int_equal(ppcp__msg_encode_chunk(fast, sizeof(fast), "1", 0, UINT64_C(1) << 53, 0,
						data, 1),
			 PPCP_ERR_INVAL);
	assert_int_equal(ppcp__msg_encode_chunk(fast, 10, "1", 0, 0, 0, data, 1), PPCP_ERR_INVAL);
}

/* The fast reader accepts exactly the canonical form, with the same result
 * as the general reader; anything else falls back to the general reader. */
static void test_file_chunk_fast_decoding_only_takes_the_canonical_form(void **state)
{
	static const char *other[] = {
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1} ",
		"{\"i\":\"1\", \"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"i\":\"1\",\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QU\\u004aD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":00},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":0,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":2}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":-1},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0,\"x\":1},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"1\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1",
		"{\"i\":\"1\",\"p\":{\"data\":\"QU\tJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
		"{\"i\":\"\",\"p\":{\"data\":\"QUJD\",\"last\":false,\"offset\":0},\"s\":0,\"t\":\"FILE_CHUNK\",\"v\":1}",
	};
	const char *canon = "{\"i\":\"7\",\"p\":{\"data\":\"QUJD\",\"last\":true,\"offset\":"
			    "9007199254740991},\"s\":-3,\"t\":\"FILE_CHUNK\",\"v\":1}";
	ppcp__envelope a, b;
	(void)state;
	assert_int_equal(ppcp__msg_decode_chunk((const uint8_t *)canon, strlen(canon), &a), 1);
	assert_int_equal(ppcp__msg_decode((const uint8_t *)canon, strlen(canon), &b), 0);
	char *ja = ppcp__json_dump(a.root, NULL), *jb = ppcp__json_dump(b.root, NULL);
	assert_string_equal(ja, jb);
	assert_string_equal(a.id, "7");
	assert_int_equal(a.type, PPCP_MSG_FILE_CHUNK);
	assert_int_equal(a.ts, -3);
	free(ja);
	free(jb);
	ppcp__msg_release(&a);
	ppcp__msg_release(&b);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ppcp__envelope e;
		if (ppcp__msg_decode_chunk((const uint8_t *)other[i], strlen(other[i]), &e) != 0)
			fail_msg("the fast path took a non-canonical text: %s", other[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_matches_rfc4648_vectors),
		cmocka_unit_test(test_base64_round_trips_every_length_and_byte),
		cmocka_unit_test(test_base64_refuses_every_noncanonical_form),
		cmocka_unit_test(test_json_depth_16_is_accepted_17_is_not),
		cmocka_unit_test(test_json_rules_of_section_7),
		cmocka_unit_test(test_integer_fields_refuse_reals_and_ranges),
		cmocka_unit_test(test_encoding_is_canonical),
		cmocka_unit_test(test_identifiers),
		cmocka_unit_test(test_file_chunk_fast_encoding_equals_the_general_one),
		cmocka_unit_test(test_file_chunk_fast_decoding_only_takes_the_canonical_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
