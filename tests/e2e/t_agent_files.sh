#!/bin/bash
# t_agent_files.sh - `ppcp get @CLIENT_ID:PATH` on a controller
# (docs/CONTROL.md, op "file"): the controller relays the FILE_REQUEST to
# the agent and its head, FILE_CHUNKs and binary-data records back over the
# control socket; the CLI keeps the guarantees of a direct get (.part,
# sidecar, resume, SHA-256, rename only on a match, exit 255 and one line).
#
#  1. an 8 MiB random file, byte-identical (binary-data records), and again
#     with --no-binary (base64 FILE_CHUNKs); no .part or sidecar left
#  2. a path outside the agent's file root: refused, a message, no file
#  3. no such agent: exit 255, one line
#  4. the agent is killed (SIGKILL) in the middle of a 64 MiB file: .part
#     and sidecar stay; restarted, the same get resumes at a nonzero offset
#     and the result is byte-identical
#  5. Ctrl-C: exit 130, .part kept, the controller cancels the agent's
#     transfer; the source then changes: the next get starts over
#
# Network safety: the controller listens on 127.0.0.1 only and the agents
# PING 127.0.0.1 only (--discover-addr); everything is killed on exit.
set -euo pipefail
: "${PPCPD:?set PPCPD}" "${PPCP:?set PPCP}"

# TMP, PIDS (killed on exit), ok, fail, show
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/agent_lib.sh" # start_controller, start_agent, wait_agent

cd "$TMP"
"$PPCP" keygen "$TMP/psk" >/dev/null
mkdir -m 700 "$TMP/root" "$TMP/dl"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/root/file"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$TMP/root/big"
echo secret >"$TMP/outside"

start_controller ctl-files --log-level debug
g() { timeout 120 "$PPCP" get --control "$CTL" "$@"; }

start_agent fa1 "$TMP/root" "$TMP/a1.log"
wait_agent fa1 10 || { echo "the agent did not connect"; show "$TMP/d.log" "$TMP/a1.log"; exit 1; }

# 1. 8 MiB, binary-data records, then base64
g @fa1:file dl/file >out 2>err && rc=0 || rc=$?
if [ "$rc" = 0 ] && cmp -s root/file dl/file && [ ! -e dl/file.part ] && [ ! -e dl/file.part.ppcp ]; then
	ok "get @fa1:file: 8 MiB byte-identical, no .part left"; else fail "get @fa1:file (rc $rc)"; cat out err; fi
grep -q "binary" a1.log && ok "the agent sent binary-data records" || fail "no binary transfer in the agent's log"
g --no-binary -v @fa1:file dl/file64 >out 2>err && rc=0 || rc=$?
if [ "$rc" = 0 ] && cmp -s root/file dl/file64 && grep -q 'sha256' err; then
	ok "get --no-binary @fa1:file: base64 FILE_CHUNKs, byte-identical"; else fail "get --no-binary (rc $rc)"; cat out err; fi
# into a directory, the base name
g @fa1:file dl/ >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && cmp -s root/file dl/file && ok "get @fa1:file DIR/" || { fail "get into a directory (rc $rc)"; cat err; }

# 2. outside the root
g @fa1:../outside dl/outside >out 2>err && rc=0 || rc=$?
if [ "$rc" = 255 ] && [ "$(wc -l <err)" = 1 ] && grep -q 'the agent refused' err && grep -q 'unauthorized' err &&
	[ ! -e dl/outside ] && [ ! -e dl/outside.part ] && [ ! -e dl/outside.part.ppcp ]; then
	ok "get @fa1:../outside: refused with one line, no local file"; else
	fail "outside the root (rc $rc)"; cat out err; ls dl; fi
g @fa1:"$TMP/outside" dl/outside2 >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && [ ! -e dl/outside2 ] && [ ! -e dl/outside2.part ] && ok "get @fa1:/absolute: refused, no file" || {
	fail "absolute path outside (rc $rc)"; cat err; }
g @fa1:nosuchfile dl/x >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q 'not-found' err && [ ! -e dl/x ] && ok "get @fa1:nosuchfile: not-found" || { fail "not-found (rc $rc)"; cat err; }

# 3. no such agent, and @all
g @nosuch:file dl/y >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && [ "$(wc -l <err)" = 1 ] && grep -q "no agent 'nosuch'" err && [ ! -e dl/y ] &&
	ok "get @nosuch: exit 255, one line" || { fail "@nosuch (rc $rc)"; cat err; }
g @all:file dl/z >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q 'one agent' err && ok "get @all: refused" || { fail "@all (rc $rc)"; cat err; }

# The transfer on loopback takes a second or two: the agent is stopped
# (SIGSTOP) as soon as some data arrived, to act in the middle for sure.
stop_agent_midway() { # stop_agent_midway PART
	local i
	for i in $(seq 1 2000); do
		[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 0 ] && break
		sleep 0.005
	done
	kill -STOP "$APID"
	sleep 0.5 # the CLI writes what the controller already had
}

# 4. kill the agent in the middle of 64 MiB, restart it, resume
timeout 120 "$PPCP" get --control "$CTL" -v @fa1:big dl/big >out 2>err &
GPID=$!
PIDS+=("$GPID")
stop_agent_midway dl/big.part
kill -KILL "$APID"
wait "$APID" 2>/dev/null || true
wait "$GPID" && rc=0 || rc=$?
verified=$(sed -n 's/.*"verified":\([0-9]*\).*/\1/p' dl/big.part.ppcp 2>/dev/null || echo 0)
if [ "$rc" = 255 ] && [ -e dl/big.part ] && [ ! -e dl/big ] && [ "${verified:-0}" -gt 0 ] &&
	grep -q 'lost its session' err && grep -q 'run the same command again to resume' err; then
	ok "agent killed mid-transfer: exit 255, .part kept, the sidecar says ${verified} bytes verified"; else
	fail "agent killed mid-transfer (rc $rc, verified ${verified:-})"; cat out err; ls -l dl; fi
start_agent fa1 "$TMP/root" "$TMP/a2.log"
wait_agent fa1 15 || { fail "the agent did not come back"; show "$TMP/d.log" "$TMP/a2.log"; }
g -v @fa1:big dl/big >out 2>err && rc=0 || rc=$?
off=$(sed -n 's/.*resuming at \([0-9]*\) bytes.*/\1/p' err | head -1)
if [ "$rc" = 0 ] && [ -n "$off" ] && [ "$off" -gt 0 ] && [ "$off" = "${verified:-}" ] && cmp -s root/big dl/big &&
	[ ! -e dl/big.part ] && [ ! -e dl/big.part.ppcp ] && grep -q "from offset $off" a2.log; then
	ok "restarted: resumed at $off bytes, 64 MiB byte-identical"; else
	fail "resume (rc $rc, offset '${off:-}')"; cat out err; ls -l dl; show a2.log; fi

# 5. Ctrl-C keeps .part and cancels the agent's transfer; then the source
# changes: not resumed, started over
rm -f dl/big
timeout 120 "$PPCP" get --control "$CTL" @fa1:big dl/big >out 2>err &
GPID=$!
PIDS+=("$GPID")
stop_agent_midway dl/big.part
kill -INT "$GPID"
wait "$GPID" && rc=0 || rc=$?
kill -CONT "$APID"
if [ "$rc" = 130 ] && [ -e dl/big.part ] && [ -e dl/big.part.ppcp ] && [ ! -e dl/big ] && grep -q interrupted err; then
	ok "Ctrl-C: exit 130, .part and sidecar kept"; else fail "Ctrl-C (rc $rc)"; cat err; ls -l dl; fi
for _ in $(seq 1 50); do grep -q "ended by the peer: ERROR cancelled" a2.log && break; sleep 0.1; done
grep -q "ended by the peer: ERROR cancelled" a2.log && ok "Ctrl-C: the controller cancelled the agent's transfer" ||
	{ fail "no cancel reached the agent"; show a2.log; }
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/root/big"
g -v @fa1:big dl/big >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && grep -q 'changed on the server' err && cmp -s root/big dl/big && [ ! -e dl/big.part ] &&
	ok "the source changed: started over, byte-identical" || { fail "changed source (rc $rc)"; cat err; }
"$PPCP" exec --control "$CTL" @fa1 -- true >/dev/null 2>&1 || true
grep -q 'a binary-data record .* no upload\|malformed' d.log a2.log && fail "late records were not dropped quietly" ||
	ok "late records of the cancelled transfer were dropped quietly"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
