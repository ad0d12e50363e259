/*
 * client.c - example PPCP client on the blocking adapter: the seed's
 * quick-start client.
 *
 *   ppcp_example_client --psk-file FILE [--port N] [--server-id ID] [--addr ADDR]
 *
 * It finds a server with a discovery PING (unicast to --addr, else to the
 * addresses in $PPCP_DISCOVER_ADDR; this example never broadcasts), connects
 * over TCP, runs the handshake, sends COMMAND "echo" and COMMAND "status",
 * prints both RESPONSEs and says BYE.  Any failure prints one line and
 * exits 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ppcp.h"

static const char *prog = "ppcp_example_client";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s --psk-file FILE [--port N] [--server-id ID] [--addr ADDR]\n"
		"  (set PPCP_DISCOVER_ADDR=127.0.0.1 or pass --addr to say where to look)\n",
		prog);
	exit(1);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, ppcp_strerror(err));
	return 1;
}

/* Send one COMMAND and wait for the answer that carries its id.  Returns 0
 * and the RESPONSE payload (malloc'd JSON text), 1 and the payload of an
 * ERROR answer, or a negative error. */
static int command(ppcp_session *s, const char *cmd_json, char **reply)
{
	char id[PPCP_ID_MAX + 1], rid[PPCP_ID_MAX + 1];
	enum ppcp_msg_type type;
	int ret, i;

	*reply = NULL;
	ret = ppcp_session_send(s, PPCP_MSG_COMMAND, cmd_json, id);
	if (ret < 0)
		return ret;
	/* Skip anything that does not answer this COMMAND; bounded. */
	for (i = 0; i < 16; i++) {
		char *payload = NULL;

		ret = ppcp_session_recv(s, 10000, &type, rid, &payload);
		if (ret < 0)
			return ret;
		if (strcmp(rid, id) == 0 && type == PPCP_MSG_RESPONSE) {
			*reply = payload;
			return 0;
		}
		if (strcmp(rid, id) == 0 && type == PPCP_MSG_ERROR) {
			*reply = payload;
			return 1;
		}
		free(payload);
	}
	return PPCP_ERR_UNEXPECTED;
}

/* The one line for a command that failed (ret < 0) or was refused with an
 * ERROR (ret == 1, payload in reply). */
static int refused(const char *what, int ret, const char *reply)
{
	if (ret < 0)
		return fail(what, ret);
	fprintf(stderr, "%s: %s: the server answered ERROR %s\n", prog, what, reply);
	return 1;
}

int main(int argc, char **argv)
{
	const char *psk_file = NULL, *server_id = NULL, *addr = NULL, *env;
	uint8_t psk[PPCP_PSK_FILE_BYTES];
	long port = PPCP_DEFAULT_PORT;
	ppcp_find_options fo;
	ppcp_server_info info;
	ppcp_session_options so;
	ppcp_session *s = NULL;
	size_t n = 0;
	char what[160];
	char *reply = NULL;
	int fd = -1, ret, i, status = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (i + 1 >= argc)
			usage();
		if (strcmp(a, "--psk-file") == 0) {
			psk_file = argv[++i];
		} else if (strcmp(a, "--port") == 0) {
			port = strtol(argv[++i], &end, 10);
			if (*end != '\0' || port < 1 || port > 65535)
				usage();
		} else if (strcmp(a, "--server-id") == 0) {
			server_id = argv[++i];
		} else if (strcmp(a, "--addr") == 0) {
			addr = argv[++i];
		} else {
			usage();
		}
	}
	if (psk_file == NULL)
		usage();
	env = getenv("PPCP_DISCOVER_ADDR");
	if (addr == NULL && (env == NULL || env[0] == '\0')) {
		/* ppcp_find_server() would broadcast; an example does not. */
		fprintf(stderr,
			"%s: no address to look for a server: set PPCP_DISCOVER_ADDR=127.0.0.1 "
			"or pass --addr ADDR\n",
			prog);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	ret = ppcp_psk_load(psk_file, psk);
	if (ret < 0) {
		snprintf(what, sizeof(what), "cannot load the PSK from %s", psk_file);
		return fail(what, ret);
	}

	/* 1. Find the server by a discovery PING (addrs NULL: the library
	 *    reads PPCP_DISCOVER_ADDR). */
	memset(&fo, 0, sizeof(fo));
	fo.addrs = addr != NULL ? &addr : NULL;
	fo.naddrs = addr != NULL ? 1 : 0;
	fo.target = server_id;
	fo.timeout_ms = 2000;
	ret = ppcp_find_server((uint16_t)port, &fo, &info, 1, &n);
	if (ret < 0) {
		snprintf(what, sizeof(what), "discovery on port %ld", port);
		status = fail(what, ret);
		goto out;
	}
	printf("Found %s (host %s) at %s port %u, rtt %u us\n", info.pong.server_id,
	       info.pong.hostname, info.address, (unsigned)info.port, (unsigned)info.rtt_us);

	/* 2. Connect and run the full handshake. */
	fd = ppcp_tcp_connect(info.address, info.port, 5000);
	if (fd < 0) {
		snprintf(what, sizeof(what), "connecting to %s port %u", info.address,
			 (unsigned)info.port);
		status = fail(what, fd);
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.server_id = server_id;
	ret = ppcp_client_connect(fd, psk, sizeof(psk), &so, &s);
	if (ret < 0) {
		snprintf(what, sizeof(what), "handshake with %s", info.address);
		status = fail(what, ret);
		goto out;
	}
	printf("Connected to %s\n", ppcp_session_peer_id(s));

	/* 3. Encrypted commands. */
	ret = command(s, "{\"name\":\"echo\",\"args\":{\"text\":\"hello from client\"}}", &reply);
	if (ret != 0) {
		status = refused("COMMAND echo", ret, reply);
		goto out;
	}
	{
		json_t *j = json_loads(reply, 0, NULL);
		const char *o = json_string_value(json_object_get(j, "output"));

		printf("echo: %s\n", o != NULL ? o : reply);
		json_decref(j);
	}
	free(reply);
	reply = NULL;

	ret = command(s, "{\"name\":\"status\",\"args\":{}}", &reply);
	if (ret != 0) {
		status = refused("COMMAND status", ret, reply);
		goto out;
	}
	printf("status: %s\n", reply);

	/* 4. Say goodbye. */
	ret = ppcp_session_close(s);
	if (ret < 0) {
		status = fail("BYE", ret);
		goto out;
	}
	printf("Closed\n");
	status = 0;
out:
	free(reply);
	ppcp_session_free(s);
	if (fd >= 0)
		close(fd);
	ppcp_wipe(psk, sizeof(psk));
	return status;
}
