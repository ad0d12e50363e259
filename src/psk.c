/*
 * psk.c - PSK files (PROTOCOL.md §14): ppcp_psk_load and ppcp_psk_generate.
 *
 * Implementation notes:
 *  - The file is opened once, with O_NOFOLLOW (a symlink as the last path
 *    component fails with ELOOP) and O_NONBLOCK (opening a FIFO must not
 *    wait for a writer); every later check uses fstat on that descriptor,
 *    so nothing can be swapped between the check and the read.
 *  - Checks run in the order the error table lists them: open, type,
 *    permissions, then content.  The content is read into a fixed buffer of
 *    PSK_READ_MAX bytes; a valid file has at most 66, so any longer file
 *    fails on its length without being read to the end.
 *  - Hex digits are decoded without branches or table lookups on the key
 *    characters, and the all-zero test is an OR over the whole key.  Every
 *    buffer that held key material (file text, decoded bytes) is wiped with
 *    ppcp_wipe on every path.
 *  - On PPCP_ERR_PSK_OPEN errno is the one of the failing system call, so a
 *    program can print strerror(errno): close(), unlink() and the wipes that
 *    run afterwards never leave their own errno behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum {
	PSK_HEX_LEN = 2 * PPCP_PSK_FILE_BYTES, /* 64 hex characters */
	PSK_READ_MAX = 130,		       /* more than any valid file (66) */
};

/* Value of one hex digit (either case), 0..15, or a negative number when c
 * is not one.  Branch-free, so the time taken does not depend on the key. */
static int psk_hex_digit(uint8_t c)
{
	int d = (int)c - '0';	       /* '0'..'9' -> 0..9 */
	int l = (int)(c | 0x20) - 'a'; /* 'a'..'f', 'A'..'F' -> 0..5 */
	/* (x | (k - x)) is non-negative exactly when 0 <= x <= k. */
	unsigned is_d = ((unsigned)(d | (9 - d)) >> 31) ^ 1u;
	unsigned is_l = ((unsigned)(l | (5 - l)) >> 31) ^ 1u;
	unsigned v = ((unsigned)d & (0u - is_d)) | ((unsigned)(l + 10) & (0u - is_l));

	return (int)v - 256 * (int)(1u ^ (is_d | is_l));
}

/* Decode PSK_HEX_LEN hex characters into out.  0, or PPCP_ERR_PSK_FORMAT
 * (after looking at every character; out is then garbage to be wiped). */
static int psk_decode_hex(uint8_t out[PPCP_PSK_FILE_BYTES], const uint8_t *hex)
{
	int bad = 0;

	for (size_t k = 0; k < PPCP_PSK_FILE_BYTES; k++) {
		int hi = psk_hex_digit(hex[2 * k]);
		int lo = psk_hex_digit(hex[2 * k + 1]);

		bad |= hi | lo; /* negative as soon as one digit is invalid */
		out[k] = (uint8_t)(((hi & 0xf) << 4) | (lo & 0xf));
	}
	return bad < 0 ? PPCP_ERR_PSK_FORMAT : 0;
}

/* Read up to cap bytes until end of file.  Returns the count, or -1 with
 * errno set. */
static ssize_t psk_read_all(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int ppcp_psk_load(const char *path, uint8_t psk[PPCP_PSK_FILE_BYTES])
{
	uint8_t text[PSK_READ_MAX];
	uint8_t key[PPCP_PSK_FILE_BYTES];
	struct stat st;
	size_t n;
	ssize_t r;
	uint8_t acc = 0;
	int fd = -1, saved_errno = 0, ret;

	if (path == NULL || psk == NULL)
		return PPCP_ERR_INVAL;

	/* PROTOCOL.md §14: never follow a symlink.  O_NONBLOCK keeps a FIFO
	 * from blocking the open; the fstat below then refuses it. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		saved_errno = errno;
		/* ELOOP: the last component is a symlink.  ENXIO: a socket or
		 * a device without a driver; neither is a regular file. */
		if (errno == ELOOP || errno == ENXIO)
			ret = PPCP_ERR_PSK_NOT_REGULAR;
		else
			ret = PPCP_ERR_PSK_OPEN;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		saved_errno = errno;
		ret = PPCP_ERR_PSK_OPEN;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = PPCP_ERR_PSK_NOT_REGULAR;
		goto out;
	}
	/* Another user's key file is refused, as ssh does. */
	if (st.st_uid != geteuid()) {
		ret = PPCP_ERR_PSK_OWNER;
		goto out;
	}
	/* No bit for group or others, read, write or execute. */
	if ((st.st_mode & 077) != 0) {
		ret = PPCP_ERR_PSK_PERMS;
		goto out;
	}

	r = psk_read_all(fd, text, sizeof text);
	if (r < 0) {
		saved_errno = errno;
		ret = PPCP_ERR_PSK_OPEN;
		goto out;
	}
	n = (size_t)r;

	/* Exactly 64 hex characters, then nothing, "\n" or "\r\n". */
	if (n == PSK_HEX_LEN + 1 && text[PSK_HEX_LEN] == '\n')
		n = PSK_HEX_LEN;
	else if (n == PSK_HEX_LEN + 2 && text[PSK_HEX_LEN] == '\r' && text[PSK_HEX_LEN + 1] == '\n')
		n = PSK_HEX_LEN;
	if (n != PSK_HEX_LEN) {
		ret = PPCP_ERR_PSK_FORMAT;
		goto out;
	}
	ret = psk_decode_hex(key, text);
	if (ret != 0)
		goto out;

	for (size_t k = 0; k < sizeof key; k++)
		acc |= key[k];
	if (acc == 0) {
		ret = PPCP_ERR_PSK_ZERO;
		goto out;
	}

	memcpy(psk, key, sizeof key);
	ret = 0;
out:
	ppcp_wipe(text, sizeof text);
	ppcp_wipe(key, sizeof key);
	if (fd >= 0)
		close(fd);
	if (saved_errno != 0)
		errno = saved_errno;
	return ret;
}

int ppcp_psk_generate(const char *path)
{
	static const char hexdig[] = "0123456789abcdef";
	uint8_t key[PPCP_PSK_FILE_BYTES];
	uint8_t text[PSK_HEX_LEN + 1];
	int fd = -1, created = 0, saved_errno = 0, ret;
	size_t off = 0;

	if (path == NULL)
		return PPCP_ERR_INVAL;

	/* Draw the key first: an RNG failure leaves no file behind. */
	ret = ppcp__rand(key, sizeof key);
	if (ret != 0) {
		ret = PPCP_ERR_RNG;
		goto out;
	}
	for (size_t k = 0; k < sizeof key; k++) {
		text[2 * k] = (uint8_t)hexdig[key[k] >> 4];
		text[2 * k + 1] = (uint8_t)hexdig[key[k] & 0xf];
	}
	text[PSK_HEX_LEN] = '\n';

	/* O_EXCL: never overwrite, and never write through a symlink (with
	 * O_CREAT|O_EXCL an existing symlink, even a dangling one, is EEXIST). */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		saved_errno = errno;
		ret = errno == EEXIST ? PPCP_ERR_EXISTS : PPCP_ERR_PSK_OPEN;
		goto out;
	}
	created = 1;
	/* The umask may only remove bits, but a default ACL on the directory
	 * can add some back: set the mode explicitly. */
	if (fchmod(fd, 0600) != 0)
		goto fail_io;
	while (off < sizeof text) {
		ssize_t w = write(fd, text + off, sizeof text - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail_io;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail_io;
	if (close(fd) != 0) {
		fd = -1;
		goto fail_io;
	}
	fd = -1;
	ret = 0;
	goto out;

fail_io:
	saved_errno = errno;
	ret = PPCP_ERR_PSK_OPEN;
out:
	ppcp_wipe(key, sizeof key);
	ppcp_wipe(text, sizeof text);
	if (fd >= 0)
		close(fd);
	/* A partial or unsynced key file must not be mistaken for a good one. */
	if (ret != 0 && created)
		unlink(path);
	if (saved_errno != 0)
		errno = saved_errno;
	return ret;
}
