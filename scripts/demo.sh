#!/usr/bin/env bash
# demo.sh - install the dependencies, build (Release) and run the main job.
# For now that is the examples: a PPCP server on 127.0.0.1 with a fresh PSK,
# and a client that finds it by unicast discovery (PPCP_DISCOVER_ADDR, never
# broadcast), authenticates, runs "echo" and "status", and says BYE.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf 'demo: %s\n' "$*"; }

bash "$ROOT/scripts/install-deps.sh"

step "building Release in build/"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build" --target ppcp_example_server ppcp_example_client

SERVER="$ROOT/build/ppcp_example_server"
CLIENT="$ROOT/build/ppcp_example_client"
PORT=${PPCP_DEMO_PORT:-$((20000 + RANDOM % 20000))}

TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

step "generating a fresh PSK in $TMP/psk"
(umask 077 && head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/psk")
chmod 600 "$TMP/psk"

step "starting the server on 127.0.0.1:$PORT"
timeout 60 "$SERVER" --listen 127.0.0.1 --port "$PORT" --psk-file "$TMP/psk" \
	--server-id demo-server --count 1 >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 1 50); do
	grep -q 'listening' "$TMP/server.out" 2>/dev/null && break
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q 'listening' "$TMP/server.out" 2>/dev/null; then
	step "the server did not start:"
	cat "$TMP/server.out" "$TMP/server.err" >&2
	exit 1
fi
sed 's/^/  server| /' "$TMP/server.out"

step "running the client (PPCP_DISCOVER_ADDR=127.0.0.1)"
rc=0
PPCP_DISCOVER_ADDR=127.0.0.1 timeout 30 "$CLIENT" --psk-file "$TMP/psk" --port "$PORT" \
	--server-id demo-server >"$TMP/client.out" 2>&1 || rc=$?
sed 's/^/  client| /' "$TMP/client.out"

step "stopping the server"
for _ in $(seq 1 50); do
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
kill -TERM "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
sed 's/^/  server| /' "$TMP/server.out" | tail -n +2
sed 's/^/  server| /' "$TMP/server.err"

if [ "$rc" -ne 0 ]; then
	step "the client failed"
	exit 1
fi
step "done"
