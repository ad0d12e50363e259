#!/usr/bin/env bash
# demo.sh - install the dependencies, build (Release) and run the main job on
# loopback: ppcpd with a fresh PSK and a sample policy, then ppcp finds it by
# discovery (unicast to 127.0.0.1 only: PPCP_DISCOVER_ADDR, never broadcast),
# runs commands on it, moves a file both ways when file transfer is built, and
# ppcpd is stopped cleanly (SIGTERM: BYE to every session).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

step() { printf '\ndemo: %s\n' "$*"; }
show() {
	printf '  $'
	printf ' %q' "$@"
	printf '\n'
}

bash "$ROOT/scripts/install-deps.sh"

step "building Release in build/"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build" --target ppcpd ppcp >/dev/null

PPCPD="$ROOT/build/tools/ppcpd/ppcpd"
PPCP="$ROOT/build/tools/ppcp/ppcp"
PORT=${PPCP_DEMO_PORT:-$((20000 + RANDOM % 20000))}

TMP=$(mktemp -d)
DAEMON_PID=
cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Every ppcp call of this demo: our PSK, the daemon's port, and discovery
# by unicast to 127.0.0.1 only.
export PPCP_PSK_FILE="$TMP/psk" PPCP_DISCOVER_ADDR=127.0.0.1
export XDG_STATE_HOME="$TMP/state"
ppcp() {
	show ppcp "$@"
	timeout 30 "$PPCP" --port "$PORT" "$@"
}

step "a fresh PSK (32 random bytes, mode 0600)"
ppcp keygen "$TMP/psk"

mkdir -p "$TMP/files" "$TMP/ppcpd-state"
printf 'hello from the server side\n' >"$TMP/files/motd.txt"
cat >"$TMP/ppcpd.conf" <<EOF
# A sample policy: a few programs, no shell, files under one directory.
psk-file = $TMP/psk
listen = 127.0.0.1:$PORT
server-id = demo-server
state-dir = $TMP/ppcpd-state
allow-exec = uname,uptime,sh,ls
file-root = $TMP/files
allow-put = true
log-level = info
EOF

step "starting ppcpd on 127.0.0.1:$PORT (config: $TMP/ppcpd.conf)"
timeout 120 "$PPCPD" --config "$TMP/ppcpd.conf" 2>"$TMP/ppcpd.log" &
DAEMON_PID=$!
for _ in $(seq 1 50); do
	grep -q 'listening' "$TMP/ppcpd.log" 2>/dev/null && break
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q 'listening' "$TMP/ppcpd.log" 2>/dev/null; then
	echo "demo: ppcpd did not start:" >&2
	cat "$TMP/ppcpd.log" >&2
	exit 1
fi

step "discovery (a PING to 127.0.0.1; on a LAN it is broadcast)"
ppcp discover

step "run commands on the server, found by its server_id"
ppcp exec demo-server -- uname -a
ppcp exec demo-server -- sh -c 'echo "to stdout"; echo "to stderr" >&2; exit 3' || echo "  (exit status $? came back from the remote program)"
ppcp status demo-server

step "the policy refuses what it does not allow"
ppcp exec demo-server -- rm -rf /tmp/nothing || echo "  (ppcp exited $?: refused)"

if "$PPCP" --help 2>&1 | grep -q '^  get'; then
	step "file transfer, verified by SHA-256 both ways"
	ppcp get demo-server:motd.txt "$TMP/motd.txt"
	show cat "$TMP/motd.txt"
	cat "$TMP/motd.txt"
	head -c 1048576 /dev/urandom >"$TMP/upload.bin"
	ppcp put "$TMP/upload.bin" demo-server:upload.bin
	cmp "$TMP/upload.bin" "$TMP/files/upload.bin" && echo "  upload.bin arrived byte-identical"
fi

step "stopping ppcpd (SIGTERM)"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
sed 's/^/  ppcpd| /' "$TMP/ppcpd.log"

step "done"
