#!/bin/bash
# t_agent_basic.sh - agent mode end to end on loopback (PROTOCOL.md §11
# "agent", docs/CONTROL.md): three `ppcp agent` processes find one ppcpd
# --accept-agents by discovery on 127.0.0.1; the controller lists them,
# runs a command on each and on all; an agent refuses what its policy does
# not allow; the control socket refuses another user (root only); the
# controller is killed and restarted and the agents are back within 10 s.
#
# Network safety: the daemon listens on 127.0.0.1 only and the agents
# PING 127.0.0.1 only (--discover-addr); everything is killed on exit.
set -euo pipefail
: "${PPCPD:?set PPCPD}" "${PPCP:?set PPCP}"

TMP=$(mktemp -d /tmp/ppcp-agent.XXXXXX)
PIDS=()
passes=0 fails=0
DPID=
cleanup() {
	local p
	# DPID: the controller now running (the ones killed before were waited
	# for, and their pids may belong to other programs by now).
	for p in "${PIDS[@]}" $DPID; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "${PIDS[@]}" $DPID; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
ok() { echo "ok: $1"; passes=$((passes + 1)); }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
show() { local f; for f in "$@"; do echo "--- $f"; tail -n 30 "$f" | sed 's/^/    /'; done; }

cd "$TMP"
"$PPCP" keygen "$TMP/psk" >/dev/null
CTL=$TMP/ctl/control.sock
mkdir -m 700 "$TMP/ctl"

start_controller() { # start_controller PORT LOG: 1 if it did not start
	# Not under timeout: the test kills this very process (SIGKILL); the
	# trap kills it at the end.
	"$PPCPD" --psk-file "$TMP/psk" --listen "127.0.0.1:$1" --server-id ctl-e2e \
		--state-dir "$TMP" --accept-agents --control "$CTL" --log-level debug >"$2" 2>&1 &
	DPID=$!
	for _ in $(seq 1 300); do
		grep -q 'control socket' "$2" && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$DPID" 2>/dev/null || true
	wait "$DPID" 2>/dev/null || true
	DPID=
	return 1
}

# The restarts reuse the first port: one below the kernel's ephemeral range
# (a port 0 gives is in that range, and between a kill and the restart any
# connection on the machine could take it).
lo=32768
{ read -r lo _ </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || lo=32768
[ "$lo" -gt 21024 ] || lo=60000
for _ in 1 2 3 4 5; do
	PORT=$((20000 + RANDOM % (lo - 20000)))
	start_controller "$PORT" "$TMP/d1.log" && break
	PORT=
done
[ -n "$PORT" ] || { echo "controller did not start"; show "$TMP/d1.log"; exit 1; }

start_agent() { # start_agent ID POLICY...
	local id=$1
	shift
	timeout 300 "$PPCP" agent --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 \
		--server-id ctl-e2e --client-id "$id" "$@" >"$TMP/$id.log" 2>&1 &
	PIDS+=("$!")
}
start_agent a1 --allow-exec hostname,echo,id
start_agent a2 --allow-exec hostname,echo,id
start_agent a3 --allow-exec hostname

count_agents() {
	"$PPCP" agents --json --control "$CTL" 2>/dev/null | grep -c '"client_id"' || true
}
wait_agents() { # wait_agents N SECONDS: prints the time it took (ms)
	local t0 n
	t0=$(date +%s%N)
	while :; do
		n=$(count_agents)
		[ "$n" = "$1" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return 0; }
		[ $(( ($(date +%s%N) - t0) / 1000000000 )) -ge "$2" ] && return 1
		sleep 0.2
	done
}

# 1. three agents find the controller
if ms=$(wait_agents 3 10); then ok "three agents listed after ${ms} ms"; else
	fail "three agents not listed within 10 s"; show d1.log a1.log; fi
out=$("$PPCP" agents --control "$CTL")
if echo "$out" | grep -q '^a1 ' && echo "$out" | grep -q '^a2 ' && echo "$out" | grep -q '^a3 ' &&
	echo "$out" | grep -q '127.0.0.1:'; then ok "ppcp agents: table with ids and addresses"; else
	fail "ppcp agents table"; echo "$out"; fi

# 2. a command on one agent, and on all
out=$("$PPCP" exec --control "$CTL" @a1 -- echo hello 2>&1) && rc=0 || rc=$?
[ "$rc" = 0 ] && [ "$out" = hello ] && ok "exec @a1 -- echo hello" || { fail "exec @a1 (rc $rc): $out"; show a1.log; }
"$PPCP" exec --control "$CTL" @all -- hostname >out 2>err && rc=0 || rc=$?
h=$(hostname)
if [ "$rc" = 0 ] && [ "$(wc -l <out)" = 3 ] && grep -qx "a1: $h" out && grep -qx "a2: $h" out &&
	grep -qx "a3: $h" out && grep -q '3 ok, 0 failed' err; then ok "exec @all -- hostname: one prefixed line from each"; else
	fail "exec @all (rc $rc)"; cat out err; fi
"$PPCP" exec --control "$CTL" @a2 -- sh -c 'exit 3' >/dev/null 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q "not allowed (allow-exec)" err && ok "a2 refuses sh: exit 255" || { fail "a2 sh (rc $rc)"; cat err; }

# 3. an agent refuses what its policy does not allow
"$PPCP" exec --control "$CTL" @a3 -- id >out 2>err && rc=0 || rc=$?
if [ "$rc" = 255 ] && grep -q "a3 refused the command: exec of 'id' is not allowed (allow-exec)" err; then
	ok "a3 refuses id: exit 255 with the message"; else fail "a3 refusal (rc $rc)"; cat out err; fi
"$PPCP" exec --control "$CTL" @all -- id >out 2>err && rc=0 || rc=$?
if [ "$rc" = 255 ] && [ "$(grep -c '^a[12]: uid=' out)" = 2 ] && grep -q '2 ok, 1 failed' err; then
	ok "exec @all -- id: two run it, a3 refuses, exit 255"; else fail "exec @all id (rc $rc)"; cat out err; fi
"$PPCP" exec --control "$CTL" @nosuch -- hostname >/dev/null 2>err && rc=0 || rc=$?
[ "$rc" = 255 ] && grep -q "no agent 'nosuch'" err && ok "exec @nosuch: exit 255" || { fail "exec @nosuch (rc $rc)"; cat err; }

# 4. the control socket refuses another user
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	as_nobody "$PPCP" agents --control "$CTL" >out 2>err && rc=0 || rc=$?
	[ "$rc" = 255 ] && grep -q 'Permission denied' err && ok "nobody: the directory keeps it out" || { fail "nobody (dir) rc $rc"; cat out err; }
	# Open the directory and the socket: SO_PEERCRED still refuses.
	chmod 755 "$TMP" "$TMP/ctl"
	chmod 777 "$CTL"
	as_nobody "$PPCP" agents --control "$CTL" >out 2>err && rc=0 || rc=$?
	as_nobody "$PPCP" exec --control "$CTL" @all -- hostname >out2 2>>err && rc2=0 || rc2=$?
	if [ "$rc" = 255 ] && [ "$rc2" = 255 ] && grep -q 'permission denied: uid' err && [ ! -s out2 ] &&
		grep -q 'control socket: refused uid' d1.log; then ok "nobody: SO_PEERCRED refuses list and exec"; else
		fail "nobody (SO_PEERCRED) rc $rc/$rc2"; cat out err; fi
	chmod 700 "$TMP" "$TMP/ctl"
	chmod 600 "$CTL"
else
	echo "SKIP: the control socket against another user needs root and setpriv (running as uid $(id -u))"
fi

# 5. kill the controller (SIGKILL) and restart it: back within 10 s
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null || true # gone, and its sockets with it
start_controller "$PORT" "$TMP/d2.log" || { echo "controller did not restart"; show "$TMP/d2.log"; exit 1; }
if ms=$(wait_agents 3 10); then ok "after SIGKILL and restart: three agents back in ${ms} ms"; else
	fail "agents not back within 10 s"; show d2.log a1.log; fi
"$PPCP" exec --control "$CTL" @all -- hostname >out 2>err && rc=0 || rc=$?
[ "$rc" = 0 ] && [ "$(wc -l <out)" = 3 ] && ok "exec @all after the restart" || { fail "exec @all after restart (rc $rc)"; cat out err; }

# 6. SIGTERM (BYE to every agent) and restart
kill -TERM "$DPID"
for _ in $(seq 1 200); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
start_controller "$PORT" "$TMP/d3.log" || { echo "controller did not restart"; show "$TMP/d3.log"; exit 1; }
if ms=$(wait_agents 3 10); then ok "after SIGTERM and restart: three agents back in ${ms} ms"; else
	fail "agents not back within 10 s after SIGTERM"; show d3.log a1.log; fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
