#!/usr/bin/env bash
# t_interop_python_client.sh - interoperability of the C servers with an
# independent Python client (tests/interop/ppcp_client.py, written from
# docs/PROTOCOL.md only).
#
# Loopback only: every socket is on 127.0.0.1, nothing is broadcast.  Every
# process is bounded by `timeout`, everything lives in a temporary directory,
# and the servers started here are killed (by pid) on exit.
#
# Part 1 runs against $PPCP_EXAMPLE_SERVER; part 2 against $PPCPD when it is
# set and exists.  The test prints SKIP and exits 0 only when /usr/bin/python3
# lacks the `cryptography` package.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENT_PY=$HERE/../interop/ppcp_client.py
PY=/usr/bin/python3

if ! [ -x "$PY" ] || ! "$PY" -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null; then
	echo "SKIP: $PY lacks the 'cryptography' package (Debian: python3-cryptography)"
	exit 0
fi
if [ -z "${PPCP_EXAMPLE_SERVER:-}" ] || ! [ -x "$PPCP_EXAMPLE_SERVER" ]; then
	echo "FAIL: PPCP_EXAMPLE_SERVER is not set to an executable (run through ctest)"
	exit 1
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
		fi
	done
	sleep 0.2
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

# newpsk FILE: 64 hex characters and a newline, mode 0600.
newpsk() {
	(umask 077 && { head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; } >"$1")
	chmod 600 "$1"
}

# freeport: a TCP port that is free on 127.0.0.1 right now.
freeport() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listen PORT PID: wait (at most 10 s) until something listens on
# 127.0.0.1:PORT, without connecting to it (the example server is sequential
# and counts connections).
wait_listen() {
	local hex i
	hex=$(printf '%04X' "$1")
	for i in $(seq 1 100); do
		if grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_on_free_port OUT ERR CMD... - CMD under timeout in the background,
# every "@PORT@" in its arguments replaced by a free port, until it listens:
# sets PORT and SPID, 1 after 5 ports.  A port freeport found can be taken
# by any connection on the machine before the server binds it: the server
# then exits, and another port is tried.
start_on_free_port() {
	local out=$1 err=$2 a cmd
	shift 2
	for _ in 1 2 3 4 5; do
		PORT=$(freeport)
		cmd=()
		for a in "$@"; do cmd+=("${a//@PORT@/$PORT}"); done
		timeout 120 "${cmd[@]}" >"$out" 2>"$err" &
		SPID=$!
		PIDS+=("$SPID")
		wait_listen "$PORT" "$SPID" && return 0
		kill -TERM "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
		unset 'PIDS[-1]'
	done
	return 1
}

# wait_grep PATTERN FILE: wait (at most 5 s) until FILE holds PATTERN.
wait_grep() {
	local i
	for i in $(seq 1 300); do
		grep -q -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# client NAME ARGS...: run the Python client, output in $TMP/NAME.{out,err}, sets rc.
client() {
	local name=$1
	shift
	timeout 30 "$PY" "$CLIENT_PY" --host 127.0.0.1 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
}

show() { sed 's/^/    /' "$@" 2>/dev/null || true; }

# The client's own reading of the document must reproduce the vectors.
if "$PY" "$CLIENT_PY" --selftest >"$TMP/selftest.out" 2>&1; then
	ok "python client reproduces tests/vectors/handshake.json ($(tail -1 "$TMP/selftest.out"))"
else
	bad "python client --selftest"
	show "$TMP/selftest.out"
fi

newpsk "$TMP/psk"
newpsk "$TMP/other"
SID=srv-interop

# run_common LABEL PORT SERVER_ERR [EXTRA_CLIENT_ARGS...]: the checks shared by both servers.
run_common() {
	local label=$1 port=$2 serr=$3
	shift 3

	client "$label-hb" --port "$port" --psk-file "$TMP/psk" --server-id "$SID" "$@"
	if [ "$rc" -eq 0 ] && grep -q '^HEARTBEAT_ACK ok' "$TMP/$label-hb.out"; then
		ok "$label: handshake + HEARTBEAT + BYE"
	else
		bad "$label: handshake + HEARTBEAT + BYE (rc=$rc)"
		show "$TMP/$label-hb.out" "$TMP/$label-hb.err"
	fi

	client "$label-ping" --port "$port" --psk-file "$TMP/psk" --server-id "$SID" --tcp-ping --key-update "$@"
	if [ "$rc" -eq 0 ] && grep -q '^PONG ' "$TMP/$label-ping.out" && grep -q '^HEARTBEAT_ACK ok' "$TMP/$label-ping.out"; then
		ok "$label: TCP PING/PONG, then handshake + HEARTBEAT (+ KEY_UPDATE when agreed) on the same connection"
	else
		bad "$label: TCP PING variant (rc=$rc)"
		show "$TMP/$label-ping.out" "$TMP/$label-ping.err"
	fi

	local before
	before=$(grep -c PSK "$serr" 2>/dev/null)
	client "$label-psk" --port "$port" --psk-file "$TMP/other" --server-id "$SID"
	if [ "$rc" -eq 1 ] && grep -q 'PSK' "$TMP/$label-psk.err" && [ "$(wc -l <"$TMP/$label-psk.err")" -eq 1 ]; then
		ok "$label: a client with another PSK exits 1 with one line naming the PSK"
	else
		bad "$label: a client with another PSK must exit 1 naming the PSK (rc=$rc)"
		show "$TMP/$label-psk.out" "$TMP/$label-psk.err"
	fi
	local i now
	for i in $(seq 1 300); do
		now=$(grep -c PSK "$serr" 2>/dev/null)
		[ "${now:-0}" -gt "${before:-0}" ] && break
		sleep 0.1
	done
	if [ "${now:-0}" -gt "${before:-0}" ]; then
		ok "$label: the server reports the PSK failure: $(grep PSK "$serr" | tail -1)"
	else
		bad "$label: the server's stderr does not name the PSK after the failed handshake"
		show "$serr"
	fi

	client "$label-sid" --port "$port" --psk-file "$TMP/psk" --server-id "not-$SID"
	if [ "$rc" -eq 1 ] && grep -q 'wrong server' "$TMP/$label-sid.err"; then
		ok "$label: an unexpected server_id is refused (sid_hash)"
	else
		bad "$label: an unexpected server_id must fail with 'wrong server' (rc=$rc)"
		show "$TMP/$label-sid.out" "$TMP/$label-sid.err"
	fi
}

# ---------------------------------------------------------------------------
# Part 1: the example server
# ---------------------------------------------------------------------------
echo "== part 1: $PPCP_EXAMPLE_SERVER"
timeout 5 "$PPCP_EXAMPLE_SERVER" --help >"$TMP/ex-help" 2>&1
grep -q -- '--psk-file' "$TMP/ex-help" || { bad "example server --help does not show --psk-file"; show "$TMP/ex-help"; }

EXPID=
if start_on_free_port "$TMP/ex.out" "$TMP/ex.err" "$PPCP_EXAMPLE_SERVER" --listen 127.0.0.1 --port @PORT@ \
	--psk-file "$TMP/psk" --server-id "$SID" --count 100; then
	EXPID=$SPID
	ok "example server listens on 127.0.0.1:$PORT"
	run_common example "$PORT" "$TMP/ex.err"
else
	bad "example server did not start"
	show "$TMP/ex.out" "$TMP/ex.err"
fi
[ -z "$EXPID" ] || kill -TERM "$EXPID" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Part 2: ppcpd
# ---------------------------------------------------------------------------
if [ -n "${PPCPD:-}" ] && [ -x "$PPCPD" ]; then
	echo "== part 2: $PPCPD"
	timeout 5 "$PPCPD" --help >"$TMP/d-help" 2>&1
	show "$TMP/d-help" | head -60
	if ! grep -q -- '--listen' "$TMP/d-help" || ! grep -q -- '--psk-file' "$TMP/d-help"; then
		bad "ppcpd --help shows no --listen or --psk-file; cannot start it on loopback only"
	else
		args=(--listen "127.0.0.1:@PORT@" --psk-file "$TMP/psk")
		grep -q -- '--server-id' "$TMP/d-help" && args+=(--server-id "$SID")
		grep -q -- '--foreground' "$TMP/d-help" && args+=(--foreground)
		# Never read the system configuration from a test.
		if grep -q -- '--config' "$TMP/d-help"; then
			: >"$TMP/ppcpd.conf"
			args+=(--config "$TMP/ppcpd.conf")
		fi
		grep -q -- '--log-stderr' "$TMP/d-help" && args+=(--log-stderr)
		# Discovery must stay on loopback as well (network safety).
		if grep -q -- '--no-discovery' "$TMP/d-help"; then
			args+=(--no-discovery)
		elif grep -q -- '--discovery-listen' "$TMP/d-help"; then
			args+=(--discovery-listen "127.0.0.1:@PORT@")
		fi
		echo "    starting: ppcpd ${args[*]}"
		DPID=
		if start_on_free_port "$TMP/d.out" "$TMP/d.err" "$PPCPD" "${args[@]}"; then
			DPID=$SPID
			ok "ppcpd listens on 127.0.0.1:$PORT"
			# If ppcpd has no --server-id, learn its id from a PONG is not
			# possible without trusting it; use the handshake's AUTH_OK instead.
			if ! grep -q -- '--server-id' "$TMP/d-help"; then
				client d-id --port "$PORT" --psk-file "$TMP/psk"
				SID=$(sed -n 's/^ESTABLISHED server_id=\([^ ]*\).*/\1/p' "$TMP/d-id.out")
				echo "    ppcpd's server_id: ${SID:-?}"
			fi
			run_common ppcpd "$PORT" "$TMP/d.err"
			client d-status --port "$PORT" --psk-file "$TMP/psk" --server-id "$SID" \
				--command-json '{"name":"status","args":{}}'
			if [ "$rc" -eq 0 ] && grep -q '^RESPONSE .* final: .*"done":true' "$TMP/d-status.out"; then
				ok "ppcpd: status COMMAND answered by one final RESPONSE of the §8.4 form"
				show "$TMP/d-status.out"
			else
				bad "ppcpd: status COMMAND (rc=$rc)"
				show "$TMP/d-status.out" "$TMP/d-status.err"
			fi
		else
			bad "ppcpd did not start"
			show "$TMP/d.out" "$TMP/d.err"
		fi
		[ -z "$DPID" ] || kill -TERM "$DPID" 2>/dev/null || true
	fi
else
	echo "== part 2 not run: PPCPD is not set or not executable"
fi

if [ "$fails" -ne 0 ]; then
	echo "---- example server stderr"
	show "$TMP/ex.err"
	[ -f "$TMP/d.err" ] && { echo "---- ppcpd stderr"; show "$TMP/d.err"; }
	echo "$fails check(s) failed"
	exit 1
fi
echo "all interop checks passed"
exit 0
