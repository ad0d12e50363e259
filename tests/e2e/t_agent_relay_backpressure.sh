#!/bin/bash
# t_agent_relay_backpressure.sh - a control client that stops reading
# (`ppcp get @ID` suspended with SIGSTOP in the middle of a 96 MiB file)
# must not make the controller queue the agent's file in memory: the
# controller stops reading the agent (TCP pushes back to the agent's file
# reader) while the control client's queue is above 4 MiB
# (PD_CTL_RELAY_HIGH), and reads it again as the queue drains.  Its VmHWM
# stays within 64 MiB of where it was before the transfer, and after
# SIGCONT the get completes, byte-identical.  A client stopped for longer
# than half the controller's idle timeout (6 s here) is closed instead, so
# that the agent, which the controller does not read meanwhile, does not
# die of it: the agent stays connected, the get ends with a hint to resume,
# and the next run completes.  Then --limit-rate, which works through the
# relay the same way (ppcp reads the control socket slowly), paces a get.
#
# Network safety: the controller listens on 127.0.0.1 only and the agent
# PINGs 127.0.0.1 only (--discover-addr); everything is killed on exit.
set -euo pipefail
: "${PPCPD:?set PPCPD}" "${PPCP:?set PPCP}"
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/agent_lib.sh" # start_controller, start_agent, wait_agent

cd "$TMP"
"$PPCP" keygen "$TMP/psk" >/dev/null
mkdir -m 700 "$TMP/root" "$TMP/dl"
SIZE=$((96 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$TMP/root/big"

start_controller ctl-bp --log-level info --idle-timeout 12000 --heartbeat 3000
start_agent bp1 "$TMP/root" "$TMP/a.log"
wait_agent bp1 10 || { fail "the agent did not connect"; show "$TMP/d.log" "$TMP/a.log"; finish; exit 1; }

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$DPID/status"; }
HWM0=$(hwm)

# bg_get ARGS... - ppcp get in the background (bounded by timeout): GPID is
# timeout's pid, CPID ppcp's own (the one to stop: SIGSTOP to timeout would
# leave ppcp reading).
bg_get() {
	timeout 120 "$PPCP" get --control "$CTL" "$@" >"$TMP/g.out" 2>"$TMP/g.err" &
	GPID=$!
	PIDS+=("$GPID")
	CPID=
	for _ in $(seq 1 100); do
		CPID=$(pgrep -P "$GPID" | head -1 || true)
		[ -n "$CPID" ] && break
		sleep 0.02
	done
}
# stop_when_started FILE - SIGSTOP ppcp once FILE holds 8 MiB.
stop_when_started() {
	for _ in $(seq 1 400); do
		[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge $((8 * 1024 * 1024)) ] && break
		sleep 0.02
	done
	kill -STOP "$CPID"
}

bg_get @bp1:big dl/big
stop_when_started dl/big.part
got=$(stat -c %s dl/big.part 2>/dev/null || echo 0)
sleep 3
HWM1=$(hwm)
held=$(stat -c %s dl/big.part 2>/dev/null || echo 0)
kill -CONT "$CPID"
set +e
wait "$GPID"
rc=$?
set -e
echo "    get stopped at $((got / 1048576)) MiB of $((SIZE / 1048576)) MiB; controller VmHWM ${HWM0} kB before, ${HWM1} kB while the client was stopped"

if [ "$got" -lt "$SIZE" ]; then
	ok "the client was stopped in the middle of the file ($((got / 1048576)) MiB)"
else
	fail "the file was complete before the client could be stopped: the test proves nothing"
fi
if grep -q asan "/proc/$DPID/maps" 2>/dev/null; then
	echo "    (sanitizer build: the memory bound is not asserted)"
elif [ $((HWM1 - HWM0)) -lt $((64 * 1024)) ]; then
	ok "the controller did not queue the file: VmHWM grew by $(((HWM1 - HWM0) / 1024)) MiB (< 64 MiB) while the client was stopped"
else
	fail "the controller queued the file in memory: VmHWM grew by $(((HWM1 - HWM0) / 1024)) MiB"
fi
if [ "$rc" = 0 ] && cmp -s root/big dl/big; then
	ok "after SIGCONT the get completed, byte-identical"
else
	fail "get after SIGCONT: exit $rc"
	show "$TMP/g.err" "$TMP/d.log"
fi
if [ "$held" = "$got" ]; then
	ok "nothing was written while ppcp was stopped (it really was)"
else
	fail "ppcp went on writing while stopped ($got -> $held bytes): the stop missed it"
fi
grep -q "agent 'bp1'.*disconnected" "$TMP/d.log" && fail "the agent's session was dropped" || ok "the agent stayed connected"

# A client stopped for longer than half the idle timeout is closed, not the agent.
rm -f dl/big dl/big.part dl/big.part.ppcp
bg_get @bp1:big dl/big
stop_when_started dl/big.part
for _ in $(seq 1 300); do
	grep -q "agent 'bp1': not read for .* closing those clients" "$TMP/d.log" && break
	sleep 0.1
done
kill -CONT "$CPID"
set +e
wait "$GPID"
rc=$?
set -e
if grep -q "agent 'bp1': not read for .* closing those clients" "$TMP/d.log" &&
	[ "$rc" = 255 ] && grep -q "run the same command again" "$TMP/g.err" && [ ! -e dl/big ]; then
	ok "a client stopped past half the idle timeout is closed: exit 255, a hint to resume, no file"
else
	fail "stalled client: exit $rc"
	show "$TMP/g.err" "$TMP/d.log"
fi
if grep -q "agent 'bp1'.*disconnected" "$TMP/d.log"; then
	fail "the agent's session was dropped instead"
else
	ok "the agent stayed connected"
fi
timeout 120 "$PPCP" get --control "$CTL" @bp1:big dl/big >"$TMP/g.out" 2>"$TMP/g.err" && rc=0 || rc=$?
[ "$rc" = 0 ] && cmp -s root/big dl/big && ok "the same get again completes, byte-identical" ||
	{ fail "get again: exit $rc"; show "$TMP/g.err"; }

# --limit-rate through the relay: 1 MiB at 512K (the base64 lines are a
# third larger than the data, so at least about 2.7 s; asserted >= 1 s).
head -c $((1024 * 1024)) /dev/urandom >"$TMP/root/r1"
t0=$(date +%s%N)
timeout 60 "$PPCP" get --control "$CTL" --limit-rate 512K @bp1:r1 dl/r1 >"$TMP/g.out" 2>"$TMP/g.err" && rc=0 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" = 0 ] && cmp -s root/r1 dl/r1 && [ "$ms" -ge 1000 ]; then
	ok "get --limit-rate 512K @bp1 of 1 MiB takes ${ms} ms (>= 1 s), byte-identical"
else
	fail "get --limit-rate @bp1: exit $rc in ${ms} ms"
	show "$TMP/g.err"
fi
finish
