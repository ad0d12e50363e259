#!/usr/bin/env bash
# examples.sh SERVER_BIN CLIENT_BIN - end-to-end test of the example programs
# on loopback only: discovery by unicast PING to 127.0.0.1, handshake, echo,
# BYE; then a client with another PSK must fail on both sides with a message
# that names the PSK.  Every process is bounded with `timeout` and killed on
# exit.
set -euo pipefail

SERVER=${1:?usage: examples.sh SERVER_BIN CLIENT_BIN}
CLIENT=${2:?usage: examples.sh SERVER_BIN CLIENT_BIN}

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		sleep 0.2
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

fails=0
check() { # check DESCRIPTION COMMAND...
	if "${@:2}"; then
		echo "ok: $1"
	else
		echo "FAIL: $1"
		fails=$((fails + 1))
	fi
}
show() {
	for f in "$@"; do
		echo "--- $(basename "$f")"
		cat "$f" 2>/dev/null || true
	done
}

newpsk() { (umask 077 && head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1") && chmod 600 "$1"; }
newpsk "$TMP/psk"
newpsk "$TMP/other"

# Start the server on a random high port; retry a few times if it is taken.
started=0
for _ in 1 2 3 4 5; do
	PORT=$((30000 + RANDOM % 30000))
	: >"$TMP/server.out"
	: >"$TMP/server.err"
	timeout 60 "$SERVER" --listen 127.0.0.1 --port "$PORT" --psk-file "$TMP/psk" \
		--server-id e2e-server --count 2 >"$TMP/server.out" 2>"$TMP/server.err" &
	SERVER_PID=$!
	for _ in $(seq 1 300); do
		grep -q listening "$TMP/server.out" && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q listening "$TMP/server.out"; then
		started=1
		break
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
done
if [ "$started" -ne 1 ]; then
	echo "FAIL: the example server did not start"
	show "$TMP/server.out" "$TMP/server.err"
	exit 1
fi

# 1. A client with the same PSK: discovery, handshake, echo, status, BYE.
rc=0
PPCP_DISCOVER_ADDR=127.0.0.1 timeout 20 "$CLIENT" --psk-file "$TMP/psk" --port "$PORT" \
	--server-id e2e-server >"$TMP/c1.out" 2>"$TMP/c1.err" || rc=$?
check "client with the right PSK exits 0" [ "$rc" -eq 0 ]
check "client prints the echo" grep -q 'echo: hello from client' "$TMP/c1.out"
check "client prints the status" grep -q '"server_id":"e2e-server"' "$TMP/c1.out"

# 2. A client with another PSK fails with exit 1 and names the PSK.
rc=0
PPCP_DISCOVER_ADDR=127.0.0.1 timeout 20 "$CLIENT" --psk-file "$TMP/other" --port "$PORT" \
	>"$TMP/c2.out" 2>"$TMP/c2.err" || rc=$?
check "client with a wrong PSK exits 1" [ "$rc" -eq 1 ]
check "its message names the PSK" grep -q 'PSK' "$TMP/c2.err"
check "its message is one line" [ "$(wc -l <"$TMP/c2.err")" -eq 1 ]

# 3. Without an address the example client refuses instead of broadcasting.
rc=0
env -u PPCP_DISCOVER_ADDR timeout 5 "$CLIENT" --psk-file "$TMP/psk" --port "$PORT" \
	>"$TMP/c3.out" 2>"$TMP/c3.err" || rc=$?
check "client without PPCP_DISCOVER_ADDR or --addr exits 1" [ "$rc" -eq 1 ]
check "and says to set PPCP_DISCOVER_ADDR" grep -q 'PPCP_DISCOVER_ADDR=127.0.0.1' "$TMP/c3.err"

# The server served its two connections and exits by itself.
rc=0
for _ in $(seq 1 100); do
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
	echo "FAIL: the server is still running after its two connections"
	fails=$((fails + 1))
	kill -TERM "$SERVER_PID" 2>/dev/null || true
fi
wait "$SERVER_PID" || rc=$?
SERVER_PID=
check "server exits 0 after --count 2" [ "$rc" -eq 0 ]
check "server reports the connected client" grep -q '^Connected to ' "$TMP/server.out"
check "server saw the BYE" grep -q 'closed (BYE)' "$TMP/server.out"
check "server reports the failed handshake naming the PSK" grep -q 'PSK' "$TMP/server.err"

if [ "$fails" -ne 0 ]; then
	show "$TMP/server.out" "$TMP/server.err" "$TMP/c1.out" "$TMP/c1.err" "$TMP/c2.out" \
		"$TMP/c2.err" "$TMP/c3.err"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
