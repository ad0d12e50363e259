/*
 * test_psk.c - PSK files (PROTOCOL.md §14, adversarial.md T46):
 * ppcp_psk_generate and ppcp_psk_load.  Every test works in its own
 * mkdtemp directory, removed afterwards.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "ppcp.h"

/* A valid key: bytes 0x00, 0x11, ... as lowercase hex. */
static const char key_hex[] = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";
static const uint8_t key_bin[32] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
	0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
	0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};

struct dir {
	char path[64];
};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof *d);

	if (d == NULL)
		return -1;
	strcpy(d->path, "/tmp/ppcp-test-psk-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;
	int r = nftw(d->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(d);
	return r;
}

/* dir/name into buf. */
static const char *in_dir(void **state, const char *name, char buf[PATH_MAX])
{
	struct dir *d = *state;

	snprintf(buf, PATH_MAX, "%s/%s", d->path, name);
	return buf;
}

/* Create name in the test directory with content[len] and the given mode. */
static const char *write_file(void **state, const char *name, const void *content, size_t len,
			      mode_t mode, char buf[PATH_MAX])
{
	int fd;

	in_dir(state, name, buf);
	fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return buf;
}

static const char *write_str(void **state, const char *name, const char *content, mode_t mode,
			     char buf[PATH_MAX])
{
	return write_file(state, name, content, strlen(content), mode, buf);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

/* Load path and expect err. */
static void expect_load(const char *path, int err)
{
	uint8_t psk[32];
	int r = ppcp_psk_load(path, psk);

	if (r != err)
		fail_msg("%s: got %s, want %s", path, ppcp_err_name(r), ppcp_err_name(err));
}

/* ---- generate ----------------------------------------------------------- */

static void test_psk_generate_then_load_round_trips(void **state)
{
	char path[PATH_MAX], text[200];
	uint8_t psk[32], want[32];
	size_t n;

	in_dir(state, "psk", path);
	assert_int_equal(ppcp_psk_generate(path), 0);

	/* 64 lowercase hex characters and one newline, decoded independently. */
	n = read_file(path, text, sizeof text - 1);
	text[n] = '\0';
	assert_int_equal(n, 65);
	assert_int_equal(text[64], '\n');
	for (size_t k = 0; k < 64; k++)
		assert_non_null(strchr("0123456789abcdef", text[k]));
	for (size_t k = 0; k < 32; k++) {
		unsigned v;

		assert_int_equal(sscanf(text + 2 * k, "%2x", &v), 1);
		want[k] = (uint8_t)v;
	}
	assert_int_equal(ppcp_psk_load(path, psk), 0);
	assert_memory_equal(psk, want, 32);
}

static void test_psk_generate_twice_gives_different_keys_each_mode_0600(void **state)
{
	char a[PATH_MAX], b[PATH_MAX];
	uint8_t ka[32], kb[32];
	struct stat st;
	mode_t old = umask(0); /* the mode must not depend on the caller's umask */

	in_dir(state, "a", a);
	in_dir(state, "b", b);
	assert_int_equal(ppcp_psk_generate(a), 0);
	assert_int_equal(ppcp_psk_generate(b), 0);
	umask(old);

	assert_int_equal(ppcp_psk_load(a, ka), 0);
	assert_int_equal(ppcp_psk_load(b, kb), 0);
	assert_memory_not_equal(ka, kb, 32);
	assert_int_equal(lstat(a, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(lstat(b, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_psk_generate_refuses_existing_file_and_leaves_it_unchanged(void **state)
{
	char path[PATH_MAX], text[200];
	struct stat st;

	write_str(state, "psk", "precious\n", 0644, path);
	assert_int_equal(ppcp_psk_generate(path), PPCP_ERR_EXISTS);
	assert_int_equal(read_file(path, text, sizeof text), 9);
	assert_memory_equal(text, "precious\n", 9);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* Running keygen twice on one path: the second run refuses. */
	in_dir(state, "fresh", path);
	assert_int_equal(ppcp_psk_generate(path), 0);
	assert_int_equal(read_file(path, text, sizeof text), 65);
	{
		char again[200];

		assert_int_equal(ppcp_psk_generate(path), PPCP_ERR_EXISTS);
		assert_int_equal(read_file(path, again, sizeof again), 65);
		assert_memory_equal(text, again, 65);
	}
}

static void test_psk_generate_does_not_write_through_a_symlink(void **state)
{
	char link[PATH_MAX], target[PATH_MAX];
	struct stat st;

	/* A dangling symlink: following it would create target. */
	in_dir(state, "target", target);
	in_dir(state, "link", link);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(ppcp_psk_generate(link), PPCP_ERR_EXISTS);
	assert_int_equal(lstat(target, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_psk_generate_in_missing_directory_is_open_error_with_errno(void **state)
{
	char path[PATH_MAX];

	in_dir(state, "no/such/psk", path);
	errno = 0;
	assert_int_equal(ppcp_psk_generate(path), PPCP_ERR_PSK_OPEN);
	assert_int_equal(errno, ENOENT);
}

/* ---- load: content ----------------------------------------------------- */

static void test_psk_load_accepts_64_hex_with_and_without_newline(void **state)
{
	static const char *const ok[] = {"", "\n", "\r\n"};
	char path[PATH_MAX], name[16], text[80];
	uint8_t psk[32];

	for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
		snprintf(name, sizeof name, "ok%zu", k);
		snprintf(text, sizeof text, "%s%s", key_hex, ok[k]);
		write_str(state, name, text, 0600, path);
		memset(psk, 0xa5, sizeof psk);
		assert_int_equal(ppcp_psk_load(path, psk), 0);
		assert_memory_equal(psk, key_bin, 32);
	}
}

static void test_psk_load_accepts_uppercase_and_mixed_case(void **state)
{
	char path[PATH_MAX], text[80];
	uint8_t psk[32];

	for (size_t k = 0; k < 64; k++)
		text[k] = (char)toupper((unsigned char)key_hex[k]);
	text[64] = '\n';
	text[65] = '\0';
	write_str(state, "upper", text, 0600, path);
	assert_int_equal(ppcp_psk_load(path, psk), 0);
	assert_memory_equal(psk, key_bin, 32);

	for (size_t k = 0; k < 64; k += 2)
		text[k] = key_hex[k];
	write_str(state, "mixed", text, 0400, path);
	assert_int_equal(ppcp_psk_load(path, psk), 0);
	assert_memory_equal(psk, key_bin, 32);
}

static void test_psk_load_refuses_wrong_lengths_and_extra_content(void **state)
{
	static const struct {
		const char *name, *prefix, *suffix;
		size_t hex; /* how many characters of key_hex */
	} bad[] = {
		{"empty", "", "", 0},
		{"nl-only", "", "\n", 0},
		{"hex63", "", "", 63},
		{"hex63nl", "", "\n", 63},
		{"hex65", "", "0", 64},
		{"hex65nl", "", "0\n", 64},
		{"hex66", "", "00", 64},
		{"two-newlines", "", "\n\n", 64},
		{"cr-only", "", "\r", 64},
		{"lf-cr", "", "\n\r", 64},
		{"crlf-crlf", "", "\r\n\r\n", 64},
		{"garbage", "", "\nkey=x", 64},
		{"trailing-space", "", " ", 64},
		{"trailing-space-nl", "", " \n", 64},
		{"leading-space", " ", "", 64},
		{"leading-nl", "\n", "", 64},
		{"bom", "\xef\xbb\xbf", "\n", 64},
		{"0x-prefix", "0x", "", 64},
		{"tab", "", "\t", 64},
		{"nul", "", "\0", 64}, /* written with an explicit length below */
	};
	char path[PATH_MAX], text[200];

	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		size_t plen = strlen(bad[k].prefix);
		size_t slen = strcmp(bad[k].name, "nul") == 0 ? 1 : strlen(bad[k].suffix);

		memcpy(text, bad[k].prefix, plen);
		memcpy(text + plen, key_hex, bad[k].hex);
		memcpy(text + plen + bad[k].hex, bad[k].suffix, slen);
		write_file(state, bad[k].name, text, plen + bad[k].hex + slen, 0600, path);
		expect_load(path, PPCP_ERR_PSK_FORMAT);
	}
}

static void test_psk_load_refuses_long_files(void **state)
{
	char path[PATH_MAX];
	static char big[1 << 16];

	memset(big, 'a', sizeof big);
	write_file(state, "big", big, sizeof big, 0600, path);
	expect_load(path, PPCP_ERR_PSK_FORMAT);
	/* 128 hex characters: a 64-byte key is not a PSK file either. */
	write_file(state, "hex128", big, 128, 0600, path);
	expect_load(path, PPCP_ERR_PSK_FORMAT);
}

/* Every byte value in every position class: only [0-9a-fA-F] decodes, and
 * to the right value. */
static void test_psk_load_decodes_exactly_the_hex_digits(void **state)
{
	char path[PATH_MAX], name[16], text[65];
	uint8_t psk[32];

	for (int c = 0; c < 256; c++) {
		int want;

		if (c >= '0' && c <= '9')
			want = c - '0';
		else if (c >= 'a' && c <= 'f')
			want = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			want = c - 'A' + 10;
		else
			want = -1;
		/* c as the high nibble of byte 0 and the low nibble of byte 31;
		 * byte 1 is 0x01, so the key is never all zero. */
		memset(text, '0', 64);
		text[0] = (char)c;
		text[3] = '1';
		text[63] = (char)c;
		text[64] = '\n';
		snprintf(name, sizeof name, "c%03d", c);
		write_file(state, name, text, 65, 0600, path);
		memset(psk, 0, sizeof psk);
		if (want < 0) {
			expect_load(path, PPCP_ERR_PSK_FORMAT);
			continue;
		}
		if (ppcp_psk_load(path, psk) != 0)
			fail_msg("byte 0x%02x is a hex digit but was refused", c);
		assert_int_equal(psk[0], want << 4);
		assert_int_equal(psk[1], 0x01);
		assert_int_equal(psk[31], want);
		assert_int_equal(unlink(path), 0);
	}
}

static void test_psk_load_refuses_all_zero_key(void **state)
{
	char path[PATH_MAX], text[66];

	memset(text, '0', 64);
	text[64] = '\n';
	write_file(state, "zero", text, 65, 0600, path);
	expect_load(path, PPCP_ERR_PSK_ZERO);

	/* One bit set anywhere is a key. */
	text[63] = '1';
	write_file(state, "one", text, 65, 0600, path);
	expect_load(path, 0);
}

/* ---- load: file type and permissions ----------------------------------- */

static void test_psk_load_refuses_group_or_other_permission_bits(void **state)
{
	static const mode_t bad[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0660, 0666, 0777};
	static const mode_t good[] = {0600, 0400, 0700};
	char path[PATH_MAX], name[16], text[80];

	snprintf(text, sizeof text, "%s\n", key_hex);
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		snprintf(name, sizeof name, "bad%04o", (unsigned)bad[k]);
		write_str(state, name, text, bad[k], path);
		expect_load(path, PPCP_ERR_PSK_PERMS);
	}
	for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
		snprintf(name, sizeof name, "good%04o", (unsigned)good[k]);
		write_str(state, name, text, good[k], path);
		expect_load(path, 0);
	}
}

static void test_psk_load_refuses_another_users_file(void **state)
{
	char path[PATH_MAX], text[80];

	if (geteuid() != 0) {
		printf("SKIP: changing a file's owner needs root\n");
		skip();
	}
	snprintf(text, sizeof text, "%s\n", key_hex);
	write_str(state, "other", text, 0600, path);
	assert_int_equal(chown(path, 65534, 65534), 0);
	expect_load(path, PPCP_ERR_PSK_OWNER);
}

static void test_psk_load_refuses_symlink_even_to_a_good_file(void **state)
{
	char path[PATH_MAX], link[PATH_MAX], text[80];

	snprintf(text, sizeof text, "%s\n", key_hex);
	write_str(state, "real", text, 0600, path);
	expect_load(path, 0);
	in_dir(state, "link", link);
	assert_int_equal(symlink(path, link), 0);
	expect_load(link, PPCP_ERR_PSK_NOT_REGULAR);
	/* A dangling symlink too: it is still a symlink. */
	in_dir(state, "dangling", link);
	assert_int_equal(symlink("/nonexistent/ppcp-psk", link), 0);
	expect_load(link, PPCP_ERR_PSK_NOT_REGULAR);
}

static void test_psk_load_refuses_directory(void **state)
{
	char path[PATH_MAX];

	in_dir(state, "d", path);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_load(path, PPCP_ERR_PSK_NOT_REGULAR);
}

static void test_psk_load_refuses_fifo_without_blocking(void **state)
{
	char path[PATH_MAX];

	in_dir(state, "fifo", path);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* No writer ever opens it: a blocking open would hang here, and the
	 * alarm would kill the test instead of letting it pass. */
	alarm(10);
	expect_load(path, PPCP_ERR_PSK_NOT_REGULAR);
	alarm(0);
}

static void test_psk_load_refuses_dev_null(void **state)
{
	(void)state;
	expect_load("/dev/null", PPCP_ERR_PSK_NOT_REGULAR);
}

static void test_psk_load_of_missing_file_is_open_error_with_errno(void **state)
{
	char path[PATH_MAX];

	in_dir(state, "missing", path);
	errno = 0;
	expect_load(path, PPCP_ERR_PSK_OPEN);
	assert_int_equal(errno, ENOENT);
}

static void test_psk_refuses_null_arguments(void **state)
{
	uint8_t psk[32];

	(void)state;
	assert_int_equal(ppcp_psk_load(NULL, psk), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_psk_load("/dev/null", NULL), PPCP_ERR_INVAL);
	assert_int_equal(ppcp_psk_generate(NULL), PPCP_ERR_INVAL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_psk_generate_then_load_round_trips),
		T(test_psk_generate_twice_gives_different_keys_each_mode_0600),
		T(test_psk_generate_refuses_existing_file_and_leaves_it_unchanged),
		T(test_psk_generate_does_not_write_through_a_symlink),
		T(test_psk_generate_in_missing_directory_is_open_error_with_errno),
		T(test_psk_load_accepts_64_hex_with_and_without_newline),
		T(test_psk_load_accepts_uppercase_and_mixed_case),
		T(test_psk_load_refuses_wrong_lengths_and_extra_content),
		T(test_psk_load_refuses_long_files),
		T(test_psk_load_decodes_exactly_the_hex_digits),
		T(test_psk_load_refuses_all_zero_key),
		T(test_psk_load_refuses_group_or_other_permission_bits),
		T(test_psk_load_refuses_another_users_file),
		T(test_psk_load_refuses_symlink_even_to_a_good_file),
		T(test_psk_load_refuses_directory),
		T(test_psk_load_refuses_fifo_without_blocking),
		T(test_psk_load_refuses_dev_null),
		T(test_psk_load_of_missing_file_is_open_error_with_errno),
		T(test_psk_refuses_null_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
