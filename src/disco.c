/*
 * disco.c - the discovery codecs (PROTOCOL.md §10): PING and PONG, plain
 * JSON messages with the envelope of §7.
 *
 * Implementation notes:
 *  - Decoding checks the size first (PPCP_PING_MAX, before any parsing),
 *    then decodes with ppcp__msg_decode (strict parse: UTF-8, \u0000,
 *    duplicate keys, nesting; then the envelope, "v" before the rest so a
 *    future version is reported as such), then the type and the payload.
 *    The result is built in a local struct and copied to the caller only
 *    when every check passed.
 *  - Encoding validates every field against the rules the decoder applies,
 *    so what we write we would also accept.  Output is the canonical form
 *    of ppcp__msg_encode (compact, sorted keys, ASCII).
 *  - PING padding (PROTOCOL.md §10.1): the PING is dumped once without
 *    "pad"; if it is shorter than PPCP_PING_MIN, a member
 *    "pad":"000..." is added.  The member costs its characters plus
 *    PING_PAD_OVERHEAD (the key, the quotes, the colon and one comma; "p"
 *    always has other members, so there is exactly one more comma), and
 *    '0' is never escaped, so the padded size is exact; it is checked.
 *  - A PONG is at most cap bytes: a server passes the size of the PING it
 *    answers, so discovery never amplifies traffic.
 */
#include <jansson.h>
#include <stdlib.h>

#include "internal.h"

/* Bytes added by ,"pad":"" around the padding characters. */
#define PING_PAD_OVERHEAD (sizeof(",\"pad\":\"\"") - 1)

/* PROTOCOL.md §10.2: what every PONG lists, then the extensions of §11. */
static const char *const disco_base_caps[] = {"key-exchange", "aes-gcm"};

/* Length of s if it is NUL-terminated within a PPCP_ID_MAX + 1 array,
 * else PPCP_ID_MAX + 1. */
static size_t disco_field_len(const char *s)
{
	return strnlen(s, PPCP_ID_MAX + 1);
}

/* PROTOCOL.md §7: a message id is 1..64 printable ASCII characters. */
static int disco_valid_msg_id(const char *s)
{
	size_t n = disco_field_len(s);

	if (n == 0 || n > PPCP_ID_MAX)
		return 0;
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)s[k];

		if (c < 0x21 || c > 0x7e)
			return 0;
	}
	return 1;
}

/* Copy a checked string (at most PPCP_ID_MAX bytes) into a field. */
static void disco_copy(char dst[PPCP_ID_MAX + 1], const char *src)
{
	size_t n = strlen(src);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Set obj[key] to a new string.  Callers validated val (identifiers and
 * ASCII constants), so a failure can only be an allocation failure. */
static int disco_set_str(json_t *obj, const char *key, const char *val)
{
	return json_object_set_new(obj, key, json_string(val)) == 0 ? 0 : PPCP_ERR_NOMEM;
}

/* Encode the envelope around payload pl and copy it into out[cap].  0,
 * PPCP_ERR_NOMEM, or too_big when it does not fit.  *len gets the size. */
static int disco_encode_into(const char *type, const char *id, int64_t ts, const json_t *pl,
			     uint8_t *out, size_t cap, size_t *len, int too_big)
{
	size_t n;
	char *s = ppcp__msg_encode(type, id, ts, pl, &n);

	if (s == NULL)
		return PPCP_ERR_NOMEM;
	if (n > cap) {
		free(s);
		return too_big;
	}
	memcpy(out, s, n);
	*len = n;
	free(s);
	return 0;
}

/*
 * Checks shared by PING and PONG: the size, then ppcp__msg_decode (strict
 * parse and the envelope of PROTOCOL.md §7: v, t, i, s, p), then the type.
 * On success env holds the message and id and *ts are filled.  env is to
 * be released with ppcp__msg_release in every case.
 */
static int disco_decode_envelope(const uint8_t *in, size_t len, enum ppcp_msg_type type,
				 ppcp__envelope *env, char id[PPCP_ID_MAX + 1], int64_t *ts)
{
	int ret;

	memset(env, 0, sizeof *env);
	if (in == NULL && len != 0)
		return PPCP_ERR_INVAL;
	/* PROTOCOL.md §13: a PING is at most 1024 bytes, and a PONG never
	 * larger than its PING.  Checked before the parser sees anything. */
	if (len > PPCP_PING_MAX)
		return PPCP_ERR_TOO_BIG;

	ret = ppcp__msg_decode(in, len, env);
	if (ret != 0)
		return ret; /* PPCP_ERR_BAD_MESSAGE or PPCP_ERR_BAD_MSG_VERSION */
	/* t: the expected type; p: an object for both */
	if (env->type != type || !json_is_object(env->payload))
		return PPCP_ERR_BAD_MESSAGE;
	/* i: ppcp__msg_decode leaves it NULL unless 1..64 printable ASCII */
	if (env->id == NULL || !disco_valid_msg_id(env->id))
		return PPCP_ERR_BAD_MESSAGE;
	disco_copy(id, env->id);
	*ts = env->ts;
	return 0;
}

/* Fetch an identifier member (PROTOCOL.md §10.3) into dst. */
static int disco_get_ident(const json_t *obj, const char *key, char dst[PPCP_ID_MAX + 1])
{
	const char *s;

	if (ppcp__json_get_str(obj, key, PPCP_ID_MAX, &s) != 0 || !ppcp__valid_ident(s))
		return PPCP_ERR_BAD_MESSAGE;
	disco_copy(dst, s);
	return 0;
}

/* 1 if s is 1..64 characters of printable ASCII (0x20-0x7E). */
static int disco_printable(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= PPCP_ID_MAX)
			return 0;
	return n >= 1;
}

int ppcp_ping_encode(const ppcp_ping *p, uint8_t *out, size_t cap, size_t *len)
{
	json_t *pl = NULL, *ver;
	char *s = NULL, *pad = NULL;
	size_t n, vlen, padlen;
	int ret;

	if (p == NULL || out == NULL || len == NULL)
		return PPCP_ERR_INVAL;
	vlen = disco_field_len(p->version);
	if (!disco_printable(p->version) || !disco_valid_msg_id(p->id) || !ppcp__valid_ident(p->client_id) ||
	    !ppcp__valid_ident(p->hostname) || vlen == 0 || vlen > PPCP_ID_MAX ||
	    disco_field_len(p->target) > PPCP_ID_MAX ||
	    (p->target[0] != '\0' && !ppcp__valid_ident(p->target)))
		return PPCP_ERR_INVAL;
	/* version is free text: json_string refuses invalid UTF-8 (it also
	 * returns NULL when out of memory, which cannot be told apart). */
	ver = json_string(p->version);
	if (ver == NULL)
		return PPCP_ERR_INVAL;

	ret = PPCP_ERR_NOMEM;
	pl = json_object();
	if (pl == NULL) {
		json_decref(ver);
		goto out;
	}
	if (json_object_set_new(pl, "version", ver) != 0 ||
	    disco_set_str(pl, "client_id", p->client_id) != 0 ||
	    disco_set_str(pl, "hostname", p->hostname) != 0)
		goto out;
	if (p->target[0] != '\0' && disco_set_str(pl, "target", p->target) != 0)
		goto out;

	/* PROTOCOL.md §10.1: "pad" makes the PING at least PPCP_PING_MIN
	 * bytes, more than any PONG, so answering it never amplifies.  Measure
	 * the PING without it, then add exactly what is missing. */
	s = ppcp__msg_encode("PING", p->id, p->ts, pl, &n);
	if (s == NULL)
		goto out;
	free(s);
	s = NULL;
	if (n < PPCP_PING_MIN) {
		padlen = PPCP_PING_MIN - n > PING_PAD_OVERHEAD
				 ? PPCP_PING_MIN - n - PING_PAD_OVERHEAD
				 : 0;
		pad = malloc(padlen + 1);
		if (pad == NULL)
			goto out;
		memset(pad, '0', padlen);
		pad[padlen] = '\0';
		if (disco_set_str(pl, "pad", pad) != 0)
			goto out;
		n += PING_PAD_OVERHEAD + padlen;
	}
	/* Fields are bounded, so even the worst escaping stays far below
	 * PPCP_PING_MAX; the check keeps that an invariant, not a hope. */
	if (n > PPCP_PING_MAX || n > cap) {
		ret = PPCP_ERR_INVAL;
		goto out;
	}
	ret = disco_encode_into("PING", p->id, p->ts, pl, out, cap, len, PPCP_ERR_INVAL);
	if (ret == 0 && *len != n)
		ret = PPCP_ERR_INVAL; /* the size computed above was wrong: a bug */
out:
	free(pad);
	json_decref(pl);
	return ret;
}

int ppcp_ping_decode(const uint8_t *in, size_t len, ppcp_ping *p)
{
	ppcp__envelope env;
	ppcp_ping r;
	json_t *pl, *v;
	const char *s;
	int ret;

	if (p == NULL)
		return PPCP_ERR_INVAL;
	memset(&r, 0, sizeof r);
	ret = disco_decode_envelope(in, len, PPCP_MSG_PING, &env, r.id, &r.ts);
	if (ret != 0)
		goto out;
	pl = env.payload;

	ret = PPCP_ERR_BAD_MESSAGE;
	if (disco_get_ident(pl, "client_id", r.client_id) != 0 ||
	    disco_get_ident(pl, "hostname", r.hostname) != 0)
		goto out;
	/* version: 1..64 printable ASCII characters (it ends up in logs) */
	if (ppcp__json_get_str(pl, "version", PPCP_ID_MAX, &s) != 0 || !disco_printable(s))
		goto out;
	disco_copy(r.version, s);
	/* target: optional; when present, a server_id */
	if (json_object_get(pl, "target") != NULL && disco_get_ident(pl, "target", r.target) != 0)
		goto out;
	/* pad: optional, ignored, but a string */
	v = json_object_get(pl, "pad");
	if (v != NULL && !json_is_string(v))
		goto out;

	*p = r;
	ret = 0;
out:
	ppcp__msg_release(&env);
	return ret;
}

int ppcp_pong_encode(const ppcp_pong *p, uint8_t *out, size_t cap, size_t *len)
{
	json_t *pl = NULL, *caps = NULL, *pub = NULL;
	int ret = PPCP_ERR_NOMEM;

	if (p == NULL || out == NULL || len == NULL)
		return PPCP_ERR_INVAL;
	if (!disco_valid_msg_id(p->id) || !ppcp__valid_ident(p->server_id) ||
	    !ppcp__valid_ident(p->hostname) || p->port == 0 ||
	    (p->capabilities & ~(uint32_t)PPCP_EXT_KNOWN) != 0)
		return PPCP_ERR_INVAL;

	pl = json_object();
	if (pl == NULL)
		goto out;
	/* capabilities: the base pair always, then the extensions */
	caps = json_array();
	if (caps == NULL || json_object_set(pl, "capabilities", caps) != 0)
		goto out;
	for (size_t k = 0; k < sizeof disco_base_caps / sizeof disco_base_caps[0]; k++)
		if (json_array_append_new(caps, json_string(disco_base_caps[k])) != 0)
			goto out;
	for (size_t k = 0; k < ppcp__ext_count; k++)
		if ((p->capabilities & ppcp__ext_names[k].bit) != 0 &&
		    json_array_append_new(caps, json_string(ppcp__ext_names[k].name)) != 0)
			goto out;
	/* public_info: the TCP port and the protocol */
	pub = json_object();
	if (pub == NULL || json_object_set(pl, "public_info", pub) != 0 ||
	    json_object_set_new(pub, "port", json_integer(p->port)) != 0 ||
	    disco_set_str(pub, "protocol", "ppcp/1") != 0)
		goto out;
	/* server_id, hostname */
	if (disco_set_str(pl, "server_id", p->server_id) != 0 ||
	    disco_set_str(pl, "hostname", p->hostname) != 0)
		goto out;

	/* No amplification: refuse rather than exceed the PING's size. */
	ret = disco_encode_into("PONG", p->id, p->ts, pl, out, cap, len, PPCP_ERR_TOO_BIG);
out:
	json_decref(caps);
	json_decref(pub);
	json_decref(pl);
	return ret;
}

int ppcp_pong_decode(const uint8_t *in, size_t len, ppcp_pong *p)
{
	ppcp__envelope env;
	ppcp_pong r;
	json_t *pl, *caps, *pub, *v;
	const char *s;
	int64_t port;
	size_t k;
	int ret;

	if (p == NULL)
		return PPCP_ERR_INVAL;
	memset(&r, 0, sizeof r);
	ret = disco_decode_envelope(in, len, PPCP_MSG_PONG, &env, r.id, &r.ts);
	if (ret != 0)
		goto out;
	pl = env.payload;

	ret = PPCP_ERR_BAD_MESSAGE;
	if (disco_get_ident(pl, "server_id", r.server_id) != 0 ||
	    disco_get_ident(pl, "hostname", r.hostname) != 0)
		goto out;
	/* capabilities: array of strings; unknown ones are ignored */
	caps = json_object_get(pl, "capabilities");
	if (!json_is_array(caps))
		goto out;
	json_array_foreach(caps, k, v)
	{
		if (!json_is_string(v))
			goto out;
		for (size_t e = 0; e < ppcp__ext_count; e++)
			if (strcmp(json_string_value(v), ppcp__ext_names[e].name) == 0)
				r.capabilities |= ppcp__ext_names[e].bit;
	}
	/* public_info: {"port": 1..65535, "protocol": "ppcp/1"} */
	pub = json_object_get(pl, "public_info");
	if (!json_is_object(pub) || ppcp__json_get_int(pub, "port", 1, 65535, &port) != 0 ||
	    ppcp__json_get_str(pub, "protocol", PPCP_ID_MAX, &s) != 0 || strcmp(s, "ppcp/1") != 0)
		goto out;
	r.port = (uint16_t)port;

	*p = r;
	ret = 0;
out:
	ppcp__msg_release(&env);
	return ret;
}

int ppcp_ping_wants(const ppcp_ping *p, const char *server_id)
{
	size_t n;

	if (p == NULL)
		return 0;
	n = disco_field_len(p->target);
	if (n == 0)
		return 1;
	if (n > PPCP_ID_MAX || server_id == NULL)
		return 0;
	return strcmp(p->target, server_id) == 0;
}
