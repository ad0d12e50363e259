#!/bin/bash
# t_agent_put.sh - `ppcp put LOCAL @CLIENT_ID:PATH` on a controller
# (docs/CONTROL.md, op "file" with "op":"put"): the controller relays the
# FILE_REQUEST to the agent, the agent's head back, and the data lines the
# CLI sends as FILE_CHUNKs; the guarantees of a direct put hold (hash first,
# resume, the agent's SHA-256 check and rename only on a match, exit 255 and
# one line on failure).
#
#  1. 8 MiB, byte-identical; again (nothing left: the same file is sent
#     whole again and replaces it); -p creates missing directories
#  2. outside the agent's root, an agent without --allow-put, no such
#     agent, @all: refused, one line; put -r of a tree (a link skipped), to
#     a new name, to an agent that refuses, to no agent (stops at once)
#  3. the agent stopped (SIGSTOP) in the middle of a 96 MiB upload: the
#     controller stops reading the CLI instead of queueing the file (its
#     VmHWM grows by less than 64 MiB); SIGCONT, the upload completes
#  4. the agent killed (SIGKILL) in the middle: exit 255 and a hint to
#     resume, no file under the final name; restarted, the same put resumes
#     at a nonzero offset and the result is byte-identical
#  5. Ctrl-C: exit 130 and a hint to resume
#
# Network safety: the controller listens on 127.0.0.1 only and the agents
# PING 127.0.0.1 only (--discover-addr); everything is killed on exit.
set -euo pipefail
: "${PPCPD:?set PPCPD}" "${PPCP:?set PPCP}"
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/agent_lib.sh" # start_controller, start_agent, wait_agent

cd "$TMP"
"$PPCP" keygen "$TMP/psk" >/dev/null
mkdir -m 700 "$TMP/root" "$TMP/ro"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$TMP/small"
head -c $((96 * 1024 * 1024)) /dev/urandom >"$TMP/big"

start_controller ctl-put --log-level info
p() { timeout 120 "$PPCP" put --control "$CTL" "$@"; }
# bg_put MIN [OPTIONS...] - `put [OPTIONS...] big @pu1:big` in the
# background (BPID; output in $TMP/b.out and $TMP/b.err), returning once
# the agent's temporary file is larger than MIN (find -size: +4M), or
# after 15 s.
bg_put() {
	local min=$1
	shift
	timeout 120 "$PPCP" put --control "$CTL" "$@" big @pu1:big >"$TMP/b.out" 2>"$TMP/b.err" &
	BPID=$!
	PIDS+=("$BPID")
	for _ in $(seq 1 750); do
		[ -n "$(find root -maxdepth 1 -name '.big.ppcp-*.part' -size "$min" 2>/dev/null)" ] && break
		sleep 0.02
	done
}
# reap_put - wait for the put of bg_put: its exit status in rc.
reap_put() {
	set +e
	wait "$BPID"
	rc=$?
	set -e
}

start_agent pu1 "$TMP/root" "$TMP/a1.log" --allow-put
A1=$APID
start_agent ro1 "$TMP/ro" "$TMP/ro.log"
wait_agent pu1 10 && wait_agent ro1 10 ||
	{ fail "the agents did not connect"; show "$TMP/d.log" "$TMP/a1.log"; finish; exit 1; }

# 1.
p small @pu1:small >out 2>err && rc=0 || rc=$?
if [ "$rc" = 0 ] && cmp -s small root/small && [ -z "$(ls -A root | grep -v '^small$')" ]; then
	ok "put small @pu1:small: 8 MiB byte-identical, nothing else in the root"
else
	fail "put @pu1 (rc $rc)"
	show err "$TMP/d.log"
fi
p small @pu1:small >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && cmp -s small root/small && ok "put again: replaced, byte-identical" || { fail "put again (rc $rc)"; show err; }
p -p small @pu1:a/b/c >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && cmp -s small root/a/b/c && ok "put -p creates a/b/ on the agent" || { fail "put -p (rc $rc)"; show err; }

# 2.
refused() { # refused DESCRIPTION PATTERN ARGS...
	local what=$1 pat=$2
	shift 2
	p "$@" >out 2>err && rc=0 || rc=$?
	if [ "$rc" = 255 ] && [ "$(wc -l <err)" = 1 ] && grep -Eq "$pat" err; then
		ok "$what: exit 255, one line"
	else
		fail "$what (rc $rc)"
		show err
	fi
}
refused "outside the agent's root" "agent refused.*unauthorized.*ppcp agent --file-root" small @pu1:../escape
[ ! -e "$TMP/escape" ] && ok "and nothing was written outside the root" || fail "a file outside the root"
refused "an agent without --allow-put" "agent refused.*allow-put" small @ro1:x
[ -z "$(ls -A ro)" ] && ok "and nothing was written there" || fail "a file in a read-only agent's root"
refused "no such agent" "no agent 'nobody' is connected" small @nobody:x
refused "@all" "does not name one agent" small @all:x
refused "an agent id that is not UTF-8" "not valid UTF-8" small @$'\xff':x
# put -r through the controller: one request per file, the tree's shape
# kept, a symbolic link skipped (and said), the rest byte-identical.
mkdir -p tree/sub/deeper
head -c 300000 /dev/urandom >tree/one
: >tree/empty
head -c 70000 /dev/urandom >tree/sub/two
head -c 5 /dev/urandom >tree/sub/deeper/three
ln -s one tree/link
p -r tree @pu1:copies/ >out 2>err && rc=0 || rc=$?
same=1
for f in one empty sub/two sub/deeper/three; do cmp -s "tree/$f" "root/copies/tree/$f" || same=0; done
if [ "$rc" = 0 ] && [ "$same" = 1 ] && [ ! -e root/copies/tree/link ] &&
	grep -q "tree/link is not a regular file" err && grep -q "4 files copied, 0 failed, 1 skipped" err; then
	ok "put -r tree @pu1:copies/: 4 files byte-identical under copies/tree, the symbolic link skipped and counted (exit 0, as a direct put -r)"
else
	fail "put -r through the controller (rc $rc)"
	show err "$TMP/d.log"
fi
rm tree/link
p -r tree @pu1:named >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && cmp -s tree/sub/deeper/three root/named/sub/deeper/three && [ ! -s err ] &&
	ok "put -r tree @pu1:named: the copy is named 'named', exit 0, nothing on stderr" ||
	{ fail "put -r to a new name (rc $rc)"; show err; }
# A tree to an agent that refuses uploads: every file refused and counted.
p -r tree @ro1:x >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q "0 files copied, 4 failed, 0 skipped" err && [ -z "$(ls -A ro)" ] &&
	ok "put -r to an agent without --allow-put: each file refused, counted, nothing written" ||
	{ fail "put -r refused (rc $rc)"; show err; }
# No such agent: the relay fails at the first file and the copy stops there.
p -r tree @nobody:x >out 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q "no agent 'nobody' is connected" err && grep -q "0 files copied, 1 failed" err &&
	ok "put -r to an agent that is not connected: stops after the first file ($(tail -n1 err))" ||
	{ fail "put -r to no agent (rc $rc)"; show err; }

# A data line of the wrong shape on the control socket: the controller
# answers {"error": ...} and ends the request; nothing appears at the agent.
python3 - "$CTL" >"$TMP/bad.out" 2>&1 <<'PY' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"op": "file", "target": "pu1", "p": {"op": "put", "path": "badline", "size": 3,
       "sha256": "0" * 64}}
s.sendall((json.dumps(req) + "\n").encode())
s.settimeout(10)
buf = b""
while b'"FILE_CHUNK"' not in buf:  # the agent's head
    d = s.recv(65536)
    if not d:
        break
    buf += d
s.sendall(b'{"offset":0,"data":"!!","last":true,"extra":1}\n')
while True:
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode())
PY
if grep -q '"error":"a data line is not' "$TMP/bad.out" && grep -q '"done"' "$TMP/bad.out" && [ ! -e root/badline ]; then
	ok "a data line of the wrong shape: the controller answers an error and ends the request, no file"
else
	fail "a malformed data line"
	show "$TMP/bad.out"
fi

# 3. The agent stops reading: the controller stops reading the CLI.
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$DPID/status"; }
HWM0=$(hwm)
bg_put +4M
kill -STOP "$A1"
sleep 3
HWM1=$(hwm)
kill -CONT "$A1"
reap_put
echo "    controller VmHWM ${HWM0} kB before, ${HWM1} kB while the agent was stopped"
if grep -q asan "/proc/$DPID/maps" 2>/dev/null; then
	echo "    (sanitizer build: the memory bound is not asserted)"
elif [ $((HWM1 - HWM0)) -lt $((64 * 1024)) ]; then
	ok "the controller did not queue the upload: VmHWM grew by $(((HWM1 - HWM0) / 1024)) MiB while the agent was stopped"
else
	fail "the controller queued the upload: VmHWM grew by $(((HWM1 - HWM0) / 1024)) MiB"
fi
[ "$rc" = 0 ] && cmp -s big root/big && ok "after SIGCONT the 96 MiB upload completed, byte-identical" ||
	{ fail "96 MiB put (rc $rc)"; show "$TMP/b.err"; }
rm -f root/big

# 4. The agent killed in the middle; restarted, the put resumes.
bg_put +20M --limit-rate 24M
kill -KILL "$A1"
reap_put
if [ "$rc" = 255 ] && grep -q "run the same command again to resume" "$TMP/b.err" && [ ! -e root/big ]; then
	ok "agent killed during put: exit 255, a hint to resume, no file under the final name"
else
	fail "agent killed during put (rc $rc)"
	show "$TMP/b.err"
fi
start_agent pu1 "$TMP/root" "$TMP/a2.log" --allow-put
wait_agent pu1 10 || { fail "the agent did not come back"; show "$TMP/a2.log"; }
p -v big @pu1:big >out 2>err && rc=0 || rc=$?
if [ "$rc" = 0 ] && cmp -s big root/big && grep -Eq "the agent holds [1-9][0-9]* bytes of an earlier attempt" err; then
	ok "restarted: the put resumed ($(grep -o 'holds [0-9]* bytes' err)), byte-identical"
else
	fail "resume (rc $rc)"
	show err
fi
rm -f root/big

# 5. Ctrl-C.
bg_put +4M --limit-rate 8M
kill -INT "$BPID"
reap_put
if [ "$rc" = 130 ] && grep -q "interrupted after .* run the same command again to resume" "$TMP/b.err" &&
	[ ! -e root/big ]; then
	ok "Ctrl-C: exit 130, a hint to resume, no file under the final name"
else
	fail "Ctrl-C (rc $rc)"
	show "$TMP/b.err"
fi
finish
