/*
 * server.c - example PPCP server on the blocking adapter: the seed's
 * quick-start server.
 *
 *   ppcp_example_server [--listen ADDR] [--port N] --psk-file FILE
 *                       [--server-id ID] [--count N]
 *
 * It listens on TCP ADDR:N and answers discovery PINGs on UDP ADDR:N, then
 * serves one session at a time: COMMAND "echo" ({"name":"echo","args":
 * {"text":...}}) is answered with a RESPONSE {"output": text}, COMMAND
 * "status" with a RESPONSE naming this host, until the client says BYE.
 * It exits after --count connections (default: never) or on SIGTERM/SIGINT.
 * ADDR defaults to 127.0.0.1; pass --listen 0.0.0.0 to serve the LAN.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/sysinfo.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ppcp.h"

static const char *prog = "ppcp_example_server";
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [--listen ADDR] [--port N] --psk-file FILE [--server-id ID] "
		"[--count N]\n",
		prog);
	exit(1);
}

/* This host's name as a PPCP identifier: [A-Za-z0-9._-], at most 64 bytes. */
static void host_ident(char *out, size_t cap)
{
	char host[256] = "";
	size_t i, n = 0;

	gethostname(host, sizeof(host) - 1);
	for (i = 0; host[i] != '\0' && n + 1 < cap && n < PPCP_ID_MAX; i++) {
		char c = host[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		out[n++] = ok ? c : '-';
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, cap, "localhost");
}

/* A socket of the given type bound to addr:port, or -1 after a message. */
static int bind_socket(const char *addr, uint16_t port, int type)
{
	struct addrinfo hints, *ai = NULL;
	char serv[8];
	int fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = type;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	if (getaddrinfo(addr, serv, &hints, &ai) != 0) {
		fprintf(stderr, "%s: --listen %s: not a numeric IPv4 or IPv6 address\n", prog,
			addr);
		return -1;
	}
	fd = socket(ai->ai_family, type | SOCK_CLOEXEC, 0);
	if (fd >= 0 && type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 16) != 0)) {
		fprintf(stderr, "%s: cannot listen on %s %s:%u: %s\n", prog,
			type == SOCK_STREAM ? "TCP" : "UDP", addr, (unsigned)port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Answer one discovery PING read from the UDP socket (PROTOCOL.md §10). */
static void answer_ping(int udp, const char *server_id, const char *host, uint16_t port)
{
	uint8_t in[PPCP_PING_MAX + 1], out[PPCP_PING_MAX];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ppcp_ping ping;
	ppcp_pong pong;
	size_t len;
	ssize_t r;

	r = recvfrom(udp, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from,
		     &fl);
	if (r <= 0 || (size_t)r > PPCP_PING_MAX)
		return;
	if (ppcp_ping_decode(in, (size_t)r, &ping) != 0 || !ppcp_ping_wants(&ping, server_id))
		return;
	memset(&pong, 0, sizeof(pong));
	snprintf(pong.id, sizeof(pong.id), "%s", ping.id);
	snprintf(pong.server_id, sizeof(pong.server_id), "%s", server_id);
	snprintf(pong.hostname, sizeof(pong.hostname), "%s", host);
	pong.port = port;
	pong.capabilities = PPCP_EXT_ALL;
	pong.ts = (int64_t)time(NULL);
	/* Never answer with more bytes than the PING had: cap = its size. */
	if (ppcp_pong_encode(&pong, out, (size_t)r, &len) != 0)
		return;
	sendto(udp, out, len, MSG_NOSIGNAL, (struct sockaddr *)&from, fl);
}

/* The answer to one COMMAND: a RESPONSE or an ERROR, as JSON text (malloc'd). */
static char *run_command(const char *payload, const char *server_id, const char *host,
			 enum ppcp_msg_type *type)
{
	json_t *cmd = json_loads(payload, 0, NULL), *reply;
	const char *name = json_string_value(json_object_get(cmd, "name"));
	char *text;

	*type = PPCP_MSG_RESPONSE;
	if (name != NULL && strcmp(name, "echo") == 0) {
		json_t *args = json_object_get(cmd, "args");
		const char *t = json_string_value(json_object_get(args, "text"));
		reply = json_pack("{s:s}", "output", t != NULL ? t : "");
	} else if (name != NULL && strcmp(name, "status") == 0) {
		/* PROTOCOL.md §8.4: the status RESPONSE. */
		double load[3] = { 0, 0, 0 };
		struct sysinfo si;
		long uptime = 0;
		if (sysinfo(&si) == 0) {
			uptime = si.uptime;
			for (int k = 0; k < 3; k++)
				load[k] = si.loads[k] / (double)(1 << SI_LOAD_SHIFT);
		}
		reply = json_pack("{s:b, s:{s:s, s:s, s:s, s:I, s:[f,f,f]}}", "done", 1, "status",
				  "hostname", host, "server_id", server_id, "version",
				  PPCP_VERSION_STRING, "uptime", (json_int_t)uptime, "load", load[0],
				  load[1], load[2]);
	} else {
		/* "echo" is this example's own command; anything else is unknown. */
		*type = PPCP_MSG_ERROR;
		reply = json_pack("{s:s, s:s}", "code", "unknown-command", "message",
				  "this example server only knows the commands echo and status");
	}
	text = reply != NULL ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	json_decref(cmd);
	return text;
}

/* Serve one accepted connection until BYE, failure or a signal. */
static void serve(int fd, const uint8_t *psk, const char *server_id, const char *host,
		  const char *peer)
{
	ppcp_session_options opt = { .server_id = server_id };
	ppcp_session *s = NULL;
	int ret;

	ret = ppcp_server_accept(fd, psk, PPCP_PSK_FILE_BYTES, &opt, &s);
	if (ret < 0) {
		fprintf(stderr, "%s: handshake with %s failed: %s\n", prog, peer,
			ppcp_strerror(ret));
		return;
	}
	printf("Connected to %s\n", ppcp_session_peer_id(s));
	fflush(stdout);

	while (!stop) {
		enum ppcp_msg_type type, rtype;
		char id[PPCP_ID_MAX + 1];
		char *payload = NULL, *reply;

		/* A short timeout lets a signal stop the loop. */
		ret = ppcp_session_recv(s, 1000, &type, id, &payload);
		if (ret == PPCP_ERR_AGAIN)
			continue;
		if (ret == PPCP_ERR_CLOSED) {
			printf("Session with %s closed (BYE)\n", ppcp_session_peer_id(s));
			break;
		}
		if (ret < 0) {
			fprintf(stderr, "%s: session with %s failed: %s\n", prog,
				ppcp_session_peer_id(s), ppcp_strerror(ret));
			break;
		}
		if (type != PPCP_MSG_COMMAND) {
			free(payload);
			continue;
		}
		reply = run_command(payload, server_id, host, &rtype);
		free(payload);
		if (reply == NULL) {
			fprintf(stderr, "%s: out of memory\n", prog);
			break;
		}
		/* A RESPONSE carries the id of its COMMAND (PROTOCOL.md §7). */
		ret = ppcp_session_reply(s, rtype, id, reply);
		free(reply);
		if (ret < 0) {
			fprintf(stderr, "%s: cannot answer %s: %s\n", prog, id, ppcp_strerror(ret));
			break;
		}
	}
	if (stop && ppcp_conn_state(ppcp_session_conn(s)) == PPCP_ST_ESTABLISHED)
		ppcp_session_close(s);
	fflush(stdout);
	ppcp_session_free(s);
}

int main(int argc, char **argv)
{
	const char *listen_addr = "127.0.0.1", *psk_file = NULL, *server_id = NULL;
	char host[PPCP_ID_MAX + 1], sid[PPCP_ID_MAX + 1];
	uint8_t psk[PPCP_PSK_FILE_BYTES];
	long port = PPCP_DEFAULT_PORT, count = -1, served = 0;
	int tcp = -1, udp = -1, i, ret;
	struct sigaction sa;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (i + 1 >= argc)
			usage();
		if (strcmp(a, "--listen") == 0) {
			listen_addr = argv[++i];
		} else if (strcmp(a, "--port") == 0) {
			port = strtol(argv[++i], &end, 10);
			if (*end != '\0' || port < 1 || port > 65535)
				usage();
		} else if (strcmp(a, "--psk-file") == 0) {
			psk_file = argv[++i];
		} else if (strcmp(a, "--server-id") == 0) {
			server_id = argv[++i];
		} else if (strcmp(a, "--count") == 0) {
			count = strtol(argv[++i], &end, 10);
			if (*end != '\0' || count < 1)
				usage();
		} else {
			usage();
		}
	}
	if (psk_file == NULL)
		usage();

	ret = ppcp_psk_load(psk_file, psk);
	if (ret < 0) {
		fprintf(stderr, "%s: cannot load the PSK from %s: %s\n", prog, psk_file,
			ppcp_strerror(ret));
		return 1;
	}
	host_ident(host, sizeof(host));
	if (server_id == NULL) {
		snprintf(sid, sizeof(sid), "%s", host);
		server_id = sid;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	tcp = bind_socket(listen_addr, (uint16_t)port, SOCK_STREAM);
	udp = tcp >= 0 ? bind_socket(listen_addr, (uint16_t)port, SOCK_DGRAM) : -1;
	if (tcp < 0 || udp < 0) {
		ret = 1;
		goto out;
	}
	printf("%s: listening on %s port %ld (TCP and UDP discovery), server_id %s\n", prog,
	       listen_addr, port, server_id);
	fflush(stdout);

	ret = 0;
	while (!stop && (count < 0 || served < count)) {
		struct pollfd pfd[2] = { { .fd = tcp, .events = POLLIN },
					 { .fd = udp, .events = POLLIN } };
		int r = poll(pfd, 2, 1000);

		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
			ret = 1;
			break;
		}
		if (r <= 0)
			continue;
		if (pfd[1].revents & POLLIN)
			answer_ping(udp, server_id, host, (uint16_t)port);
		if (pfd[0].revents & POLLIN) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			char peer[NI_MAXHOST] = "?";
			int one = 1;
			int fd = accept4(tcp, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

			if (fd < 0)
				continue;
			getnameinfo((struct sockaddr *)&ss, sl, peer, sizeof(peer), NULL, 0,
				    NI_NUMERICHOST);
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			serve(fd, psk, server_id, host, peer);
			close(fd);
			served++;
		}
	}
out:
	ppcp_wipe(psk, sizeof(psk));
	if (tcp >= 0)
		close(tcp);
	if (udp >= 0)
		close(udp);
	return ret;
}
