/*
 * xfer.c - what `ppcp get` (get.c) and `ppcp put` (put.c) share: the
 * TARGET:PATH operand, --limit-rate, the pacing that enforces it, the
 * progress bar, hashing a local file while the session stays alive, the
 * head checks, and the words for the owner's error codes (PROTOCOL.md §9).
 *
 *  - Pacing: the bytes moved since the start may not exceed rate × elapsed
 *    plus a small burst (a tenth of a second, at least 16 KiB).  get pauses
 *    reading the socket, so TCP slows the sender; put stops queueing.
 *  - The progress bar is drawn on stderr only when it is a terminal and
 *    not -q, at most XFER_PROGRESS_HZ times a second, with "\r" so that it
 *    overwrites itself; the last state stays on screen.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum {
	XFER_PROGRESS_MS = 100, /* at most ten updates a second */
	XFER_HASH_BLOCK = 1024 * 1024,
	XFER_PUMP_MS = 200,     /* hashing lets the session breathe this often */
	XFER_MIN_BURST = 16 * 1024,
};

/* ---- operands and options ---------------------------------------------- */

static int all_digits(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 5)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

static int ipv4_literal(const char *p, size_t n)
{
	size_t i, dots = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '.')
			dots++;
		else if (p[i] < '0' || p[i] > '9')
			return 0;
	}
	return dots == 3;
}

int xfer_split_remote(const char *arg, char *target, size_t tlen, const char **path)
{
	const char *colon, *end;
	size_t n;

	if (arg[0] == '[') {
		/* [IPv6]:PORT:PATH or [IPv6]:PATH */
		end = strchr(arg, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		colon = end + 1;
		const char *next = strchr(colon + 1, ':');
		if (next != NULL && all_digits(colon + 1, (size_t)(next - colon - 1)))
			colon = next;
	} else {
		colon = strchr(arg, ':');
		if (colon == NULL)
			return -1;
		/* IPv4:PORT:PATH; a name never holds ':' (PROTOCOL.md §10.3). */
		const char *next = strchr(colon + 1, ':');
		if (next != NULL && ipv4_literal(arg, (size_t)(colon - arg)) &&
		    all_digits(colon + 1, (size_t)(next - colon - 1)))
			colon = next;
	}
	n = (size_t)(colon - arg);
	if (n == 0 || n >= tlen || colon[1] == '\0')
		return -1;
	memcpy(target, arg, n);
	target[n] = '\0';
	*path = colon + 1;
	return 0;
}

int xfer_opt_rate(const struct cli *cli, const char *arg, uint64_t *bps)
{
	if (xfer_parse_rate(arg, bps) == 0)
		return 0;
	cli_err(cli, "--limit-rate: '%s' is not a rate (bytes per second, with an "
		     "optional K, M or G: 500K, 10M)",
		arg);
	return -1;
}

int xfer_parse_rate(const char *s, uint64_t *bps)
{
	char *end;
	double v, mult = 1;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(v) || v <= 0)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1024.0;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1024.0 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1024.0 * 1024 * 1024;
		end++;
		break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	v *= mult;
	if (v < 1 || v > 1e15)
		return -1;
	*bps = (uint64_t)v;
	return 0;
}

const char *xfer_base_name(const char *path, char *buf, size_t len)
{
	size_t n = strlen(path);
	const char *b;

	while (n > 1 && path[n - 1] == '/')
		n--;
	b = path + n;
	while (b > path && b[-1] != '/')
		b--;
	snprintf(buf, len, "%.*s", (int)(path + n - b), b);
	return buf;
}

/* ---- pacing --------------------------------------------------------------- */

void pace_start(struct pace *p, uint64_t rate, uint64_t now)
{
	p->rate = rate;
	p->t0 = now;
	p->burst = rate / 10 > XFER_MIN_BURST ? rate / 10 : XFER_MIN_BURST;
}

uint64_t pace_allowed(const struct pace *p, uint64_t now, uint64_t done)
{
	double may;

	if (p->rate == 0)
		return UINT64_MAX;
	may = (double)p->rate * (double)(now - p->t0) / 1000.0 + (double)p->burst;
	if (may <= (double)done)
		return 0;
	if (may - (double)done > 1e18)
		return UINT64_MAX;
	return (uint64_t)(may - (double)done);
}

uint64_t pace_when(const struct pace *p, uint64_t done)
{
	double ms;

	if (p->rate == 0 || done < p->burst)
		return 0;
	ms = (double)(done - p->burst + 1) * 1000.0 / (double)p->rate;
	return p->t0 + (uint64_t)ceil(ms);
}

/* ---- progress -------------------------------------------------------------- */

static void human(char *buf, size_t len, double v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

void progress_start(struct progress *pr, const struct cli *cli, const char *label,
		    uint64_t total, uint64_t done)
{
	memset(pr, 0, sizeof(*pr));
	pr->on = cli->verbose >= 0 && isatty(STDERR_FILENO);
	snprintf(pr->label, sizeof(pr->label), "%s", label);
	pr->total = total;
	pr->first = done;
	pr->done = done;
	pr->t0 = cli_now_ms();
}

static void progress_draw(struct progress *pr, uint64_t now)
{
	char line[256], d[32], t[32], r[32], eta[32];
	double secs = (double)(now - pr->t0) / 1000.0;
	double rate = secs > 0 ? (double)(pr->done - pr->first) / secs : 0;
	int pct = pr->total > 0 ? (int)(pr->done * 100 / pr->total) : 100;
	int n;

	human(d, sizeof(d), (double)pr->done);
	human(t, sizeof(t), (double)pr->total);
	human(r, sizeof(r), rate);
	if (rate > 0 && pr->done < pr->total) {
		unsigned long left = (unsigned long)((double)(pr->total - pr->done) / rate + 0.5);
		snprintf(eta, sizeof(eta), "ETA %lu:%02lu:%02lu", left / 3600, left / 60 % 60,
			 left % 60);
	} else if (pr->done >= pr->total) {
		snprintf(eta, sizeof(eta), "%.1f s", secs);
	} else {
		snprintf(eta, sizeof(eta), "ETA --:--:--");
	}
	n = snprintf(line, sizeof(line), "%-24.24s %3d%% %10s / %-10s %10s/s  %s", pr->label,
		     pct, d, t, r, eta);
	if (n < 0)
		return;
	/* Pad over what a longer previous line left behind. */
	fprintf(stderr, "\r%s%*s", line, pr->width > n ? pr->width - n : 0, "");
	if (n > pr->width)
		pr->width = n;
	fflush(stderr);
	pr->drawn = now;
	pr->shown = 1;
}

void progress_update(struct progress *pr, uint64_t done)
{
	uint64_t now;

	pr->done = done;
	if (!pr->on)
		return;
	now = cli_now_ms();
	if (pr->shown && now - pr->drawn < XFER_PROGRESS_MS)
		return;
	progress_draw(pr, now);
}

void progress_end(struct progress *pr, int complete)
{
	if (!pr->on)
		return;
	if (complete || pr->shown)
		progress_draw(pr, cli_now_ms());
	fputc('\n', stderr);
	fflush(stderr);
	pr->on = 0;
}

/* ---- hashing ------------------------------------------------------------------ */

int xfer_hash_fd(const struct cli *cli, int fd, uint64_t len, ppcp_sha256 *h, struct sess *s,
		 const char *label)
{
	uint8_t *buf = malloc(XFER_HASH_BLOCK);
	struct progress pr;
	uint64_t off = 0, pumped = cli_now_ms();
	int ret = 0;

	if (buf == NULL)
		return -ENOMEM;
	progress_start(&pr, cli, label, len, 0);
	while (off < len) {
		size_t want = len - off < XFER_HASH_BLOCK ? (size_t)(len - off) : XFER_HASH_BLOCK;
		ssize_t r = pread(fd, buf, want, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			break;
		}
		if (r == 0) {
			ret = -ENODATA; /* shorter than it said */
			break;
		}
		if (ppcp_sha256_update(h, buf, (size_t)r) != 0) {
			ret = -ENOMEM;
			break;
		}
		off += (uint64_t)r;
		progress_update(&pr, off);
		if (cli_signal != 0) {
			ret = -EINTR;
			break;
		}
		if (s != NULL && cli_now_ms() - pumped >= XFER_PUMP_MS) {
			sess_pump(s);
			pumped = cli_now_ms();
		}
	}
	if (pr.shown)
		progress_end(&pr, ret == 0);
	free(buf);
	return ret;
}

void xfer_hex(const uint8_t d[32], char out[65])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[64] = '\0';
}

int xfer_is_sha256_hex(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 64)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int xfer_get_u53(const json_t *obj, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (!json_is_integer(v))
		return -1;
	n = json_integer_value(v);
	if (n < 0 || n >= ((json_int_t)1 << 53))
		return -1;
	*out = (uint64_t)n;
	return 0;
}

int xfer_check_stream(const json_t *head, uint32_t *stream, int owner_is_client)
{
	const json_t *v = json_object_get(head, "stream");
	json_int_t n;

	/* PROTOCOL.md §9.5: the TCP server numbers its streams with even
	 * numbers from 2, the TCP client (an agent) with odd ones from 1. */
	if (!json_is_integer(v))
		return -1;
	n = json_integer_value(v);
	if (n < 1 || n > UINT32_MAX || n % 2 != (owner_is_client ? 1 : 0))
		return -1;
	*stream = (uint32_t)n;
	return 0;
}

/* ---- the owner's errors ----------------------------------------------------- */

static const char *xfer_advice_server(const char *code, int put);

const char *xfer_advice(const char *code, int put, int agent)
{
	static char buf[512];
	const char *a = xfer_advice_server(code, put);
	static const struct {
		const char *from, *to;
	} words[] = {
		{ "ppcpd --", "ppcp agent --" },
		{ "the server", "the agent" },
		{ "server's", "agent's" },
	};
	size_t o = 0;

	if (!agent)
		return a;
	/* An agent (ppcp agent) owns the file: name it and its options. */
	while (*a != '\0' && o + 16 < sizeof(buf)) {
		size_t i;

		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			size_t n = strlen(words[i].from);

			if (strncmp(a, words[i].from, n) == 0 &&
			    o + strlen(words[i].to) + 1 < sizeof(buf)) {
				memcpy(buf + o, words[i].to, strlen(words[i].to));
				o += strlen(words[i].to);
				a += n;
				break;
			}
		}
		if (i == sizeof(words) / sizeof(words[0]))
			buf[o++] = *a++;
	}
	buf[o] = '\0';
	return buf;
}

static const char *xfer_advice_server(const char *code, int put)
{
	if (code == NULL)
		return "run `ppcp doctor` to see which step fails";
	if (strcmp(code, "unauthorized") == 0)
		return put ? "the path must lie beneath the server's file root, and the server "
			     "must accept uploads (ppcpd --file-root DIR --allow-put)"
			   : "the path must lie beneath the server's file root (ppcpd --file-root), "
			     "without a symbolic link that leads out of it";
	if (strcmp(code, "not-found") == 0)
		return put ? "the directory does not exist on the server: add -p to create it"
			   : "check the path: it is relative to the server's file root";
	if (strcmp(code, "not-regular") == 0)
		return put ? "the destination is a directory or a special file: give a file name, "
			     "or end PATH with '/' to put the file inside a directory"
			   : "only regular files are copied; for a directory use -r";
	if (strcmp(code, "permission-denied") == 0)
		return "the server's operating system refused access: check the permissions "
		       "there";
	if (strcmp(code, "no-space") == 0)
		return "the server's disk is full: free space there, then run the same command "
		       "again to resume";
	if (strcmp(code, "io-error") == 0)
		return "the server met a disk error: look at its log, then run the same command "
		       "again to resume";
	if (strcmp(code, "rate-limited") == 0)
		return "the server runs too many transfers at once: try again shortly";
	if (strcmp(code, "invalid-message") == 0)
		return "the server found our request invalid (a bug in ppcp or the server)";
	return "see the server's log";
}
