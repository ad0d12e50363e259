/*
 * errors.c - ppcp_strerror() and ppcp_err_name(), generated from the one
 * error table in ppcp.h (PPCP_ERRNO_MAP), and the message type names from
 * PPCP_MSG_TYPE_MAP.  Nothing here allocates.
 */
#include <string.h>

#include "internal.h"

const char *ppcp_strerror(int err)
{
	switch (err) {
	case PPCP_OK:
		return "success";
#define PPCP_ERR_STR_(name, code, msg)                                                             \
	case PPCP_ERR_##name:                                                                       \
		return msg;
		PPCP_ERRNO_MAP(PPCP_ERR_STR_)
#undef PPCP_ERR_STR_
	default:
		return "unknown error";
	}
}

const char *ppcp_err_name(int err)
{
	switch (err) {
	case PPCP_OK:
		return "PPCP_OK";
#define PPCP_ERR_NAME_(name, code, msg)                                                            \
	case PPCP_ERR_##name:                                                                       \
		return "PPCP_ERR_" #name;
		PPCP_ERRNO_MAP(PPCP_ERR_NAME_)
#undef PPCP_ERR_NAME_
	default:
		return "PPCP_ERR_UNKNOWN";
	}
}

static const char *const msg_type_names[PPCP_MSG__COUNT] = {
	[PPCP_MSG_UNKNOWN] = NULL,
#define PPCP_MSG_STR_(name, str) [PPCP_MSG_##name] = str,
	PPCP_MSG_TYPE_MAP(PPCP_MSG_STR_)
#undef PPCP_MSG_STR_
};

const char *ppcp_msg_type_name(enum ppcp_msg_type t)
{
	if ((unsigned)t >= PPCP_MSG__COUNT)
		return NULL;
	return msg_type_names[t];
}

enum ppcp_msg_type ppcp_msg_type_from_name(const char *name)
{
	if (name == NULL)
		return PPCP_MSG_UNKNOWN;
	for (int t = 1; t < PPCP_MSG__COUNT; t++)
		if (strcmp(msg_type_names[t], name) == 0)
			return (enum ppcp_msg_type)t;
	return PPCP_MSG_UNKNOWN;
}

const ppcp__ext_name ppcp__ext_names[] = {
	{ PPCP_EXT_KEY_UPDATE, "key-update" },
	{ PPCP_EXT_BINARY_DATA, "binary-data" },
	{ PPCP_EXT_AGENT, "agent" },
};
const size_t ppcp__ext_count = sizeof(ppcp__ext_names) / sizeof(ppcp__ext_names[0]);
