/*
 * msg.c - JSON messages (PROTOCOL.md §7): strict parsing, canonical output,
 * the envelope {v, t, p, i, s} and the payload shapes of each type.
 *
 * Notes:
 *  - Nesting depth is checked by a byte scan before jansson sees the text,
 *    so a hostile 10^5-deep array costs one pass and no recursion.
 *  - jansson rejects invalid UTF-8, \u0000 (without JSON_ALLOW_NUL),
 *    integers that overflow json_int_t (long long) and reals that overflow;
 *    JSON_REJECT_DUPLICATES rejects duplicate keys.
 *  - Output is compact, keys sorted, ASCII only: reproducible bytes, which
 *    the test vectors rely on.  Nothing is ever MACed over JSON.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Depth of [ and { outside strings; returns 0 if within the limit. */
static int msg_depth_ok(const uint8_t *in, size_t len)
{
	int depth = 0;
	int in_str = 0, esc = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t ch = in[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (ch == '\\')
				esc = 1;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		if (ch == '"') {
			in_str = 1;
		} else if (ch == '[' || ch == '{') {
			if (++depth > PPCP_MAX_JSON_DEPTH)
				return -1;
		} else if (ch == ']' || ch == '}') {
			depth--;
		}
	}
	return 0;
}

int ppcp__json_parse(const uint8_t *in, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (in == NULL || len == 0 || msg_depth_ok(in, len) != 0)
		return PPCP_ERR_BAD_MESSAGE;
	/* jansson does not set the error code on every failure path. */
	memset(&jerr, 0, sizeof(jerr));
	v = json_loadb((const char *)in, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return json_error_code(&jerr) == json_error_out_of_memory ? PPCP_ERR_NOMEM
									  : PPCP_ERR_BAD_MESSAGE;
	if (!json_is_object(v)) {
		json_decref(v);
		return PPCP_ERR_BAD_MESSAGE;
	}
	*out = v;
	return 0;
}

char *ppcp__json_dump(const json_t *v, size_t *len)
{
	/* 15 significant digits: 0.15 stays 0.15, not 0.14999999999999999. */
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY |
					JSON_REAL_PRECISION(15));
	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}

int ppcp__valid_ident(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 c == '.' || c == '_' || c == '-';
		if (!ok || n >= PPCP_ID_MAX)
			return 0;
	}
	return n >= 1;
}

/* Message ids: 1..64 printable ASCII characters, no space (PROTOCOL.md §7). */
static int msg_valid_id(const char *s, size_t n)
{
	if (n < 1 || n > PPCP_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int ppcp__json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t x;

	if (v == NULL || !json_is_integer(v))
		return PPCP_ERR_BAD_MESSAGE;
	x = json_integer_value(v);
	if (x < min || x > max)
		return PPCP_ERR_BAD_MESSAGE;
	*out = (int64_t)x;
	return 0;
}

int ppcp__json_get_str(const json_t *obj, const char *key, size_t maxlen, const char **out)
{
	const json_t *v = json_object_get(obj, key);

	if (v == NULL || !json_is_string(v) || json_string_length(v) > maxlen)
		return PPCP_ERR_BAD_MESSAGE;
	/* An embedded NUL cannot occur: parsing refuses \u0000. */
	*out = json_string_value(v);
	return 0;
}

/* "ext": an array of at most 16 strings, each at most 64 bytes. */
static int msg_check_ext(const json_t *p)
{
	const json_t *a = json_object_get(p, "ext");
	size_t i;
	const json_t *e;

	if (a == NULL || !json_is_array(a) || json_array_size(a) > 16)
		return PPCP_ERR_BAD_MESSAGE;
	json_array_foreach(a, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) > PPCP_ID_MAX)
			return PPCP_ERR_BAD_MESSAGE;
	}
	return 0;
}

static int msg_check_auth(const json_t *p, int is_ok)
{
	const char *s;
	int64_t n;

	if (!json_is_object(p) || ppcp__json_get_str(p, "proof", 64, &s) != 0 ||
	    msg_check_ext(p) != 0 ||
	    ppcp__json_get_int(p, "max_record", PPCP_MAX_HANDSHAKE_RECORD, PPCP_MAX_RECORD_LIMIT,
			       &n) != 0)
		return PPCP_ERR_BAD_MESSAGE;
	if (is_ok) {
		if (ppcp__json_get_str(p, "server_id", PPCP_ID_MAX, &s) != 0 ||
		    !ppcp__valid_ident(s))
			return PPCP_ERR_BAD_MESSAGE;
	} else if (json_object_get(p, "client_id") != NULL) {
		if (ppcp__json_get_str(p, "client_id", PPCP_ID_MAX, &s) != 0 ||
		    !ppcp__valid_ident(s))
			return PPCP_ERR_BAD_MESSAGE;
	}
	return 0;
}

static int msg_check_optional_str(const json_t *p, const char *key)
{
	const json_t *v = json_object_get(p, key);
	return (v == NULL || json_is_string(v)) ? 0 : PPCP_ERR_BAD_MESSAGE;
}

int ppcp__msg_check_payload(enum ppcp_msg_type t, const json_t *p)
{
	const char *s;
	int64_t n;

	switch (t) {
	case PPCP_MSG_AUTH:
		return msg_check_auth(p, 0);
	case PPCP_MSG_AUTH_OK:
		return msg_check_auth(p, 1);
	case PPCP_MSG_AUTH_FAIL:
		return json_is_object(p) ? msg_check_optional_str(p, "reason") : PPCP_ERR_BAD_MESSAGE;
	case PPCP_MSG_HEARTBEAT:
	case PPCP_MSG_HEARTBEAT_ACK:
		if (!json_is_object(p))
			return PPCP_ERR_BAD_MESSAGE;
		return ppcp__json_get_int(p, "ts", INT64_MIN, INT64_MAX, &n);
	case PPCP_MSG_COMMAND:
		if (!json_is_object(p) || ppcp__json_get_str(p, "name", 256, &s) != 0 ||
		    !json_is_object(json_object_get(p, "args")))
			return PPCP_ERR_BAD_MESSAGE;
		return 0;
	case PPCP_MSG_ERROR:
		if (!json_is_object(p) || ppcp__json_get_str(p, "code", PPCP_ID_MAX, &s) != 0 ||
		    ppcp__json_get_str(p, "message", 4096, &s) != 0)
			return PPCP_ERR_BAD_MESSAGE;
		return 0;
	case PPCP_MSG_BYE:
		if (json_is_null(p))
			return 0;
		return json_is_object(p) ? msg_check_optional_str(p, "reason") : PPCP_ERR_BAD_MESSAGE;
	case PPCP_MSG_RESPONSE:
	case PPCP_MSG_FILE_REQUEST:
	case PPCP_MSG_FILE_CHUNK:
	case PPCP_MSG_KEY_UPDATE:
	case PPCP_MSG_PING:
	case PPCP_MSG_PONG:
		return json_is_object(p) ? 0 : PPCP_ERR_BAD_MESSAGE;
	default:
		/* Unknown and raw types: any payload, the engine decides. */
		return 0;
	}
}

void ppcp__msg_release(ppcp__envelope *env)
{
	if (env->root != NULL)
		json_decref(env->root);
	memset(env, 0, sizeof(*env));
}

int ppcp__msg_decode(const uint8_t *in, size_t len, ppcp__envelope *env)
{
	const json_t *v, *t, *i;
	int64_t s;
	int ret;

	memset(env, 0, sizeof(*env));
	ret = ppcp__json_parse(in, len, &env->root);
	if (ret != 0)
		return ret;

	/* Read the id first, so an ERROR answer can name the message. */
	i = json_object_get(env->root, "i");
	if (i != NULL && json_is_string(i) && msg_valid_id(json_string_value(i), json_string_length(i)))
		env->id = json_string_value(i);

	v = json_object_get(env->root, "v");
	if (v == NULL || !json_is_integer(v))
		return PPCP_ERR_BAD_MESSAGE;
	if (json_integer_value(v) != PPCP_PROTOCOL_VERSION)
		return PPCP_ERR_BAD_MSG_VERSION;

	t = json_object_get(env->root, "t");
	if (t == NULL || !json_is_string(t) || json_string_length(t) < 1 ||
	    json_string_length(t) > PPCP_ID_MAX)
		return PPCP_ERR_BAD_MESSAGE;
	env->type_name = json_string_value(t);
	env->type = ppcp_msg_type_from_name(env->type_name);

	if (env->id == NULL)
		return PPCP_ERR_BAD_MESSAGE;
	if (ppcp__json_get_int(env->root, "s", INT64_MIN, INT64_MAX, &s) != 0)
		return PPCP_ERR_BAD_MESSAGE;
	env->ts = s;

	env->payload = json_object_get(env->root, "p");
	if (env->payload == NULL)
		return PPCP_ERR_BAD_MESSAGE;
	return ppcp__msg_check_payload(env->type, env->payload);
}

char *ppcp__msg_encode(const char *type_name, const char *id, int64_t ts, const json_t *payload,
		       size_t *len)
{
	json_t *o = json_object();
	char *s = NULL;

	if (o == NULL)
		return NULL;
	/* json_object_set_new steals the new reference; a NULL value fails it. */
	if (json_object_set_new(o, "v", json_integer(PPCP_PROTOCOL_VERSION)) != 0 ||
	    json_object_set_new(o, "t", json_string(type_name)) != 0 ||
	    json_object_set_new(o, "i", json_string(id)) != 0 ||
	    json_object_set_new(o, "s", json_integer(ts)) != 0 ||
	    json_object_set(o, "p", payload != NULL ? (json_t *)payload : json_null()) != 0)
		goto out;
	s = ppcp__json_dump(o, len);
out:
	json_decref(o);
	return s;
}

/* ---- base64 (RFC 4648 §4, padded) --------------------------------------
 * Hand-written rather than OpenSSL's EVP_DecodeBlock, which accepts
 * whitespace and non-canonical padding; proofs and file chunks must have
 * exactly one encoding. */
static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ppcp__b64_encode(char *out, const uint8_t *in, size_t len)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* 0x80 marks a byte outside the alphabet. */
static const uint8_t b64_rev[256] = {
#define X 0x80
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,  X,  63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,
	X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  X,
	X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
	X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};

long ppcp__b64_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
	const uint8_t *u = (const uint8_t *)in;
	size_t full, o = 0, i;
	int pad = 0;

	if (len % 4 != 0)
		return -1;
	if (len == 0)
		return 0;
	pad = (u[len - 1] == '=') + (u[len - 2] == '=');
	if (len / 4 * 3 - (size_t)pad > cap)
		return -1;
	/* Every quad but the last has no padding: four table lookups, one
	 * test for a byte outside the alphabet. */
	full = len - 4;
	for (i = 0; i < full; i += 4) {
		uint32_t a = b64_rev[u[i]], b = b64_rev[u[i + 1]], c = b64_rev[u[i + 2]],
			 d = b64_rev[u[i + 3]];
		if ((a | b | c | d) & 0x80)
			return -1;
		uint32_t w = (a << 18) | (b << 12) | (c << 6) | d;
		out[o] = (uint8_t)(w >> 16);
		out[o + 1] = (uint8_t)(w >> 8);
		out[o + 2] = (uint8_t)w;
		o += 3;
	}
	/* The last quad: "xx==", "xxx=" or "xxxx"; '=' nowhere else. */
	uint32_t a = b64_rev[u[i]], b = b64_rev[u[i + 1]];
	uint32_t c = pad >= 2 ? 0 : b64_rev[u[i + 2]];
	uint32_t d = pad >= 1 ? 0 : b64_rev[u[i + 3]];
	if ((a | b | c | d) & 0x80 || (pad == 1 && u[i + 2] == '='))
		return -1;
	uint32_t w = (a << 18) | (b << 12) | (c << 6) | d;
	/* Canonical: the bits under the padding are zero. */
	if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
		return -1;
	out[o++] = (uint8_t)(w >> 16);
	if (pad < 2)
		out[o++] = (uint8_t)(w >> 8);
	if (pad < 1)
		out[o++] = (uint8_t)w;
	return (long)o;
}

/* ---- FILE_CHUNK fast path (PROTOCOL.md §9.2) ---------------------------
 * File data in the RFC form is the one large JSON message.  Its canonical
 * encoding is written here directly (base64 straight into the buffer), and
 * a received message that is exactly in that form is read without the
 * general parser; anything else, even valid JSON with the same meaning,
 * takes the general path.  Both paths give the same envelope. */

static const char chunk_a[] = "{\"i\":\"";
static const char chunk_b[] = "\",\"p\":{\"data\":\"";
static const char chunk_c[] = "\",\"last\":";
static const char chunk_d[] = ",\"offset\":";
static const char chunk_e[] = "},\"s\":";
static const char chunk_f[] = ",\"t\":\"FILE_CHUNK\",\"v\":1}";

size_t ppcp__msg_chunk_size(size_t idlen, size_t datalen)
{
	/* literals + id + base64 + "false" + two 20-digit numbers */
	return sizeof(chunk_a) + sizeof(chunk_b) + sizeof(chunk_c) + sizeof(chunk_d) +
	       sizeof(chunk_e) + sizeof(chunk_f) + idlen + (datalen + 2) / 3 * 4 + 5 + 2 * 21;
}

static int chunk_id_ok(const char *id, size_t n)
{
	/* Printable ASCII that needs no escape in JSON. */
	if (n < 1 || n > PPCP_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e || id[i] == '"' ||
		    id[i] == '\\')
			return 0;
	return 1;
}

long ppcp__msg_encode_chunk(char *out, size_t cap, const char *id, int64_t ts, uint64_t offset,
			    int last, const uint8_t *data, size_t len)
{
	size_t idlen = strlen(id), o = 0;
	int n;

	if (!chunk_id_ok(id, idlen) || cap < ppcp__msg_chunk_size(idlen, len) ||
	    offset > PPCP__MAX_SAFE_INT)
		return PPCP_ERR_INVAL;
#define CHUNK_PUT(s, l)                                                                            \
	do {                                                                                       \
		memcpy(out + o, (s), (l));                                                          \
		o += (l);                                                                          \
	} while (0)
	CHUNK_PUT(chunk_a, sizeof(chunk_a) - 1);
	CHUNK_PUT(id, idlen);
	CHUNK_PUT(chunk_b, sizeof(chunk_b) - 1);
	o += ppcp__b64_encode(out + o, data, len);
	CHUNK_PUT(chunk_c, sizeof(chunk_c) - 1);
	if (last)
		CHUNK_PUT("true", 4);
	else
		CHUNK_PUT("false", 5);
	CHUNK_PUT(chunk_d, sizeof(chunk_d) - 1);
	n = snprintf(out + o, cap - o, "%llu", (unsigned long long)offset);
	o += (size_t)n;
	CHUNK_PUT(chunk_e, sizeof(chunk_e) - 1);
	n = snprintf(out + o, cap - o, "%lld", (long long)ts);
	o += (size_t)n;
	CHUNK_PUT(chunk_f, sizeof(chunk_f) - 1);
#undef CHUNK_PUT
	return (long)o;
}

/* Match the literal s at *p; advance past it. */
static int chunk_lit(const uint8_t **p, const uint8_t *end, const char *s, size_t n)
{
	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return 0;
	*p += n;
	return 1;
}

/* A canonical JSON integer: "0" or no leading zero, at most 18 digits. */
static int chunk_int(const uint8_t **p, const uint8_t *end, int allow_neg, int64_t *v)
{
	int neg = 0, digits = 0;
	int64_t x = 0;

	if (allow_neg && *p < end && **p == '-') {
		neg = 1;
		(*p)++;
	}
	while (*p < end && **p >= '0' && **p <= '9') {
		if (digits == 1 && x == 0)
			return 0; /* leading zero */
		if (++digits > 18)
			return 0;
		x = x * 10 + (**p - '0');
		(*p)++;
	}
	if (digits == 0 || (neg && x == 0))
		return 0;
	*v = neg ? -x : x;
	return 1;
}

int ppcp__msg_decode_chunk(const uint8_t *in, size_t len, ppcp__envelope *env)
{
	const uint8_t *p = in, *end = in + len, *id, *data;
	size_t idlen, datalen;
	int64_t offset, ts;
	int last;
	json_t *root = NULL, *pl = NULL;

	/* {"i":"ID","p":{"data":"B64","last":BOOL,"offset":N},"s":N,"t":"FILE_CHUNK","v":1} */
	if (!chunk_lit(&p, end, chunk_a, sizeof(chunk_a) - 1))
		return 0;
	id = p;
	while (p < end && *p != '"' && *p != '\\')
		p++;
	idlen = (size_t)(p - id);
	if (!chunk_id_ok((const char *)id, idlen) || !chunk_lit(&p, end, chunk_b, sizeof(chunk_b) - 1))
		return 0;
	data = p;
	while (p < end && *p != '"' && *p != '\\')
		p++;
	datalen = (size_t)(p - data);
	if (!chunk_lit(&p, end, chunk_c, sizeof(chunk_c) - 1))
		return 0;
	if (chunk_lit(&p, end, "true", 4))
		last = 1;
	else if (chunk_lit(&p, end, "false", 5))
		last = 0;
	else
		return 0;
	if (!chunk_lit(&p, end, chunk_d, sizeof(chunk_d) - 1) || !chunk_int(&p, end, 0, &offset) ||
	    !chunk_lit(&p, end, chunk_e, sizeof(chunk_e) - 1) || !chunk_int(&p, end, 1, &ts) ||
	    !chunk_lit(&p, end, chunk_f, sizeof(chunk_f) - 1) || p != end)
		return 0;
	/* The data string holds only characters that need no escape; the
	 * base64 alphabet itself is checked when it is decoded. */
	for (size_t i = 0; i < datalen; i++)
		if (data[i] < 0x20 || data[i] > 0x7e)
			return 0;

	memset(env, 0, sizeof(*env));
	root = json_object();
	pl = json_object();
	if (root == NULL || pl == NULL ||
	    json_object_set_new(pl, "data", json_stringn_nocheck((const char *)data, datalen)) != 0 ||
	    json_object_set_new(pl, "last", json_boolean(last)) != 0 ||
	    json_object_set_new(pl, "offset", json_integer(offset)) != 0 ||
	    json_object_set_new(root, "v", json_integer(PPCP_PROTOCOL_VERSION)) != 0 ||
	    json_object_set_new(root, "t", json_string("FILE_CHUNK")) != 0 ||
	    json_object_set_new(root, "i", json_stringn_nocheck((const char *)id, idlen)) != 0 ||
	    json_object_set_new(root, "s", json_integer(ts)) != 0 ||
	    json_object_set(root, "p", pl) != 0) {
		json_decref(pl);
		json_decref(root);
		return PPCP_ERR_NOMEM;
	}
	json_decref(pl); /* root holds it */
	env->root = root;
	env->type = PPCP_MSG_FILE_CHUNK;
	env->type_name = json_string_value(json_object_get(root, "t"));
	env->id = json_string_value(json_object_get(root, "i"));
	env->ts = ts;
	env->payload = json_object_get(root, "p");
	return 1;
}
