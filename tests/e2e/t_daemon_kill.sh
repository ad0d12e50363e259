#!/usr/bin/env bash
# t_daemon_kill.sh - what ppcpd does to its children (PROTOCOL.md §8.4;
# adversarial T39): the per-command timeout kills the whole process group,
# grandchildren included, SIGTERM then SIGKILL; the output cap truncates
# and kills; a child inherits no descriptor of the daemon and gets
# /dev/null as stdin; a session that ends takes its commands with it;
# every child is reaped.
source "$(dirname "$0")/daemon_lib.sh"

# A descriptor the daemon inherits without close-on-exec (as from a careless
# parent); it must not reach the commands.
exec 7</dev/null

start_daemon kill --allow-exec 'sh,sleep,yes,head,cat' --max-output 100000

# Unique markers: other tests may run sleeps at the same time.
M1=$((31000 + RANDOM % 1000))
M2=$((32000 + RANDOM % 1000))
M3=$((33000 + RANDOM % 1000))

# -- timeout: SIGTERM to the group, grandchild included -------------------------
t0=$(date +%s%N)
run tc --result "$TMP/res" exec --timeout 1 -- sh -c "sleep $M1 & sleep $M1; echo never"
t1=$(date +%s%N)
expect_rc "timeout: killed by SIGTERM" 143
expect_in "timed_out in the final RESPONSE" '"signal":15,"timed_out":true' "$TMP/res"
check "killed after about 1 s" test $(((t1 - t0) / 1000000)) -lt 4000
check "the grandchild sleep died with its group" eventually 5 no_proc "sleep $M1"

# -- a group that ignores SIGTERM gets SIGKILL 2 s later --------------------------
t0=$(date +%s%N)
run tc --result "$TMP/res" exec --timeout 1 -- sh -c "trap '' TERM; sleep $M2 & trap '' TERM; sleep $M2"
t1=$(date +%s%N)
expect_rc "SIGTERM ignored: SIGKILL" 137
expect_in "timed_out, signal 9" '"signal":9,"timed_out":true' "$TMP/res"
ms=$(((t1 - t0) / 1000000))
check "SIGKILL came 2 s after SIGTERM (${ms} ms in all)" test "$ms" -ge 2900 -a "$ms" -lt 6000
check "no sleep of that group survived" eventually 5 no_proc "sleep $M2"

# -- output cap (100000 bytes here): truncated, killed ----------------------------
run tc --result "$TMP/res" exec -- yes flood
expect_in "truncated in the final RESPONSE" '"truncated":true' "$TMP/res"
check "exactly max-output bytes arrived ($(wc -c <"$TMP/out"))" test "$(wc -c <"$TMP/out")" -eq 100000
expect_in "the log says why" "output passed max-output" "$LOG"

run tc --result "$TMP/res" exec -- head -c 100000 /dev/zero
expect_rc "output of exactly max-output is not truncated" 0
expect_in "not truncated" '"truncated":false' "$TMP/res"

# -- a child inherits nothing of the daemon -----------------------------------------
"$TC" --psk-file "$TMP/psk" --port "$PORT" exec -- sleep 5 >/dev/null 2>&1 &
client=$!
PIDS+=("$client")
child=
# Its command line must be "sleep 5" itself: between fork and exec the child
# is a copy of ppcpd, with ppcpd's descriptors and ppcpd's command line
# (whose --allow-exec names sleep too).
for _ in $(seq 1 100); do
	child=$(children "$DPID" | head -n1)
	[ -n "$child" ] && [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$child/cmdline")" = "sleep 5 " ] && break
	child=
	sleep 0.05
done
if [ -n "$child" ]; then
	ls -l "/proc/$child/fd" >"$TMP/fds" 2>&1 || true
	# The test harness may leave descriptors open in ppcpd's environment
	# too (inherited, not close-on-exec): ppcpd must not pass them on.
	check "the child has exactly descriptors 0 1 2 ($(ls "/proc/$child/fd" | sort -n | tr '\n' ' '))" \
		test "$(ls "/proc/$child/fd" | sort -n | tr '\n' ' ')" = "0 1 2 "
	check "its stdin is /dev/null" test "$(readlink "/proc/$child/fd/0")" = /dev/null
	check "the child leads its own process group" \
		test "$(awk '{print $5}' "/proc/$child/stat")" = "$child"
else
	fail "the child sleep did not show up"
fi
kill "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true

# -- a session that ends kills its commands ----------------------------------------
"$TC" --psk-file "$TMP/psk" --port "$PORT" exec -- sh -c "sleep $M3 & sleep $M3" >/dev/null 2>&1 &
client=$!
PIDS+=("$client")
# "^sleep": the sleep itself; the client's own command line holds "sleep
# $M3" from its start, before its session (killed then, it would prove
# nothing and log no "ended without BYE").
for _ in $(seq 1 100); do
	[ -n "$(procs_matching "^sleep $M3 ")" ] && break
	sleep 0.05
done
check "the command runs" test -n "$(procs_matching "^sleep $M3 ")"
kill -KILL "$client"
wait "$client" 2>/dev/null || true
for _ in $(seq 1 60); do
	[ -z "$(procs_matching "sleep $M3")" ] && break
	sleep 0.1
done
check "the client died: its command's group died too" test -z "$(procs_matching "sleep $M3")"
expect_in "the log says the session ended without BYE" "ended without BYE" "$LOG"

check "no zombie children" eventually 10 no_zombies "$DPID"
check "no children left" eventually 10 no_children "$DPID"

stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
finish
