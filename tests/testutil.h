/*
 * testutil.h - helpers shared by the tests: loading vector files from
 * $PPCP_VECTORS_DIR (a missing file fails, never skips), hex decoding and
 * byte comparisons that print both values on a mismatch.
 */
#ifndef PPCP_TESTUTIL_H
#define PPCP_TESTUTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Load $PPCP_VECTORS_DIR/name; exits the test program on failure. */
static inline json_t *tu_load_vectors(const char *name)
{
	const char *dir = getenv("PPCP_VECTORS_DIR");
	char path[4096];
	json_error_t err;
	json_t *v;

	if (dir == NULL) {
		fprintf(stderr, "FAIL: PPCP_VECTORS_DIR is not set\n");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	v = json_load_file(path, 0, &err);
	if (v == NULL) {
		fprintf(stderr, "FAIL: cannot read vector file %s: %s\n", path, err.text);
		exit(1);
	}
	return v;
}

/* The string at a dotted path ("schedule.c_hs"); exits if absent. */
static inline const char *tu_vec(const json_t *root, const char *path)
{
	char buf[256];
	const json_t *v = root;
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = strtok_r(buf, ".", &save); tok != NULL; tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	if (v == NULL || !json_is_string(v)) {
		fprintf(stderr, "FAIL: vector %s missing\n", path);
		exit(1);
	}
	return json_string_value(v);
}

/* Decode hex into out[cap]; returns the length; exits on bad hex. */
static inline size_t tu_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	if (strlen(hex) % 2 != 0 || n > cap) {
		fprintf(stderr, "FAIL: bad hex vector (%zu chars)\n", strlen(hex));
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "FAIL: bad hex vector\n");
			exit(1);
		}
		out[i] = (uint8_t)v;
	}
	return n;
}

static inline void tu_print_hex(const char *tag, const uint8_t *p, size_t n)
{
	fprintf(stderr, "  %s (%zu bytes): ", tag, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%02x", p[i]);
	fprintf(stderr, "\n");
}

/* Fail the running cmocka test, printing both values, unless equal. */
#define tu_expect_bytes(what, want, wn, got, gn)                                                   \
	do {                                                                                       \
		if ((wn) != (gn) || memcmp((want), (got), (wn)) != 0) {                            \
			fprintf(stderr, "mismatch: %s\n", (what));                                 \
			tu_print_hex("want", (want), (wn));                                        \
			tu_print_hex("got ", (got), (gn));                                         \
			fail_msg("%s differs from the vector", (what));                           \
		}                                                                                  \
	} while (0)

#endif
