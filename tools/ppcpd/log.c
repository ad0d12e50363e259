/*
 * log.c - the daemon's log: one line per event on stderr,
 *
 *   2024-05-01T12:00:00.123Z info session 127.0.0.1:40000 established
 *
 * (UTC time, level, message).  Each line is written with one write(2) so
 * lines from one process never interleave.  What may be logged: addresses,
 * ids, program names (argv[0]), error texts, sizes.  What never is: a PSK,
 * a key, a proof, a command's arguments, input or output.  Strings that
 * come from a peer go through pd_log_safe first, so a peer cannot forge
 * log lines.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ppcpd.h"

static enum pd_log_level log_level = PD_LOG_INFO;

static const char *const log_names[] = { "error", "warn", "info", "debug" };

void pd_log_set_level(enum pd_log_level level)
{
	log_level = level;
}

void pd_log(enum pd_log_level level, const char *fmt, ...)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int k;
	va_list ap;

	if (level > log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", (long)(tv.tv_usec / 1000),
		     log_names[level]);
	if (k > 0)
		n += (size_t)k;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	/* A message cut at the buffer's end still ends its line. */
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* Nothing useful can be done if stderr is gone. */
	(void)!write(STDERR_FILENO, line, n);
}

const char *pd_log_safe(char *buf, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return buf;
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= cap)
				break;
			buf[o++] = (char)c;
		} else {
			if (o + 4 >= cap)
				break;
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}
