#!/usr/bin/env bash
# t_daemon_session.sh - the life of a session in ppcpd: a wrong PSK is
# logged with the peer and the likely cause (adversarial T12); a slow
# handshake is closed at the deadline and its slot released (T16); a peer
# that stops answering is failed by the heartbeat timeout; a peer that reads
# nothing is closed at the write deadline while memory stays bounded (T43);
# SIGTERM sends BYE to every session, kills the commands and exits 0; a TCP
# PING is answered before the hello.
source "$(dirname "$0")/daemon_lib.sh"

start_daemon sess --allow-exec 'sleep,yes,echo,sh' --handshake-timeout 1000 \
	--heartbeat 300 --idle-timeout 1500 --write-timeout 2000

# -- a client with another PSK (T12) ----------------------------------------------
newpsk "$TMP/other"
run timeout 30 "$TC" --psk-file "$TMP/other" --port "$PORT" handshake
expect_rc "another PSK: the client fails" 1
expect_in "the client names the PSK" "server not authenticated: wrong PSK" "$TMP/out"
wait_log "handshake with 127.0.0.1:[0-9]+ failed" 5 || true
expect_in "the daemon logs the peer and the likely cause" \
	"info handshake with 127\.0\.0\.1:[0-9]+ failed: peer closed during the handshake: most likely the PSKs differ \(1 failed handshake from 127\.0\.0\.1\)" "$LOG"
run timeout 30 "$TC" --psk-file "$TMP/other" --port "$PORT" handshake
wait_log "\(2 failed handshakes from 127\.0\.0\.1\)" 5 || true
expect_in "failures are counted per address" "\(2 failed handshakes from 127\.0\.0\.1\)" "$LOG"
run tc handshake
expect_rc "the right PSK still works" 0

# -- slow handshake: closed at the deadline, slot released (T16) -------------------
run tc trickle 300
expect_in "a trickling hello is cut at the handshake deadline" "closed by the server after (9[0-9][0-9]|1[0-9]{3}) ms" "$TMP/out"
expect_in "and logged" "failed: handshake did not complete in time" "$LOG"
run tc hold 3 2 300
expect_in "idle connections are accepted" "hold: 3 connected, 0 closed" "$TMP/out"
sleep 0.2
# Counted before: the first connections of this daemon logged the same.
alone="connection from .* \(1 open, 1 handshaking\)"
n0=$(grep -Ec -- "$alone" "$LOG" || true)
run tc handshake
expect_rc "after the deadlines a new handshake works" 0
check "no half-open slot is left behind (this connection: 1 open, 1 handshaking)" \
	test "$(grep -Ec -- "$alone" "$LOG" || true)" -gt "$n0"

# -- a peer that stops answering: heartbeat timeout --------------------------------
run tc stall 4 -- sleep 20
expect_in "the stalled client's session is failed" "failed: peer stopped answering \(heartbeat timeout\)" "$LOG"
check "its command was killed" eventually 5 no_children "$DPID"

# -- TCP PING before the hello ------------------------------------------------------
run tc tcp-ping
expect_rc "TCP PING" 0
id=$(sed -n "s/.*server_id '\([^']*\)'.*/\1/p" "$LOG" | head -n1)
expect_in "answered with a PONG naming this server" "^PONG $id [A-Za-z0-9._-]+ $PORT" "$TMP/out"
run tc tcp-ping --target someone-else
expect_in "a TCP PING for another server: closed at once" "closed without a PONG" "$TMP/out"
expect_not_in "discovery by TCP is not a failed handshake" "failed handshakes? from .*\(3" "$LOG"

# -- a peer that reads nothing while output flows (T43) ----------------------------
# Another daemon, with the default heartbeat, so that the write deadline and
# not the idle timeout ends the session.
start_daemon slow --allow-exec yes --write-timeout 2000
"$TC" --psk-file "$TMP/psk" --port "$PORT" stall 30 -- yes slow-reader >"$TMP/stall.out" 2>&1 &
staller=$!
PIDS+=("$staller")
check "the reader stalls" wait_log "exec 'yes'" 5
check "the session is closed at the write deadline" wait_log "read nothing for 2000 ms \(write-timeout\): closing" 15
rss=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
check "memory stayed bounded (peak RSS ${rss} kB)" test "$rss" -lt 300000
check "its command was killed" eventually 5 no_children "$DPID"
kill "$staller" 2>/dev/null || true
wait "$staller" 2>/dev/null || true

stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0

# -- SIGTERM: BYE to every session, commands killed, exit 0 --------------------------
start_daemon term --allow-exec sleep
M=$((34000 + RANDOM % 1000))
"$TC" --psk-file "$TMP/psk" --port "$PORT" --wait 20000 wait-bye --ready "$TMP/ready" >"$TMP/bye.out" 2>&1 &
waiter=$!
"$TC" --psk-file "$TMP/psk" --port "$PORT" exec -- sleep "$M" >"$TMP/exec.out" 2>&1 &
execer=$!
PIDS+=("$waiter" "$execer")
# "^sleep": the command itself, not the client (its command line holds
# "sleep $M" before its session exists).
for _ in $(seq 1 100); do
	[ -e "$TMP/ready" ] && [ -n "$(procs_matching "^sleep $M ")" ] && break
	sleep 0.05
done
check "a session waits and a command runs" test -e "$TMP/ready" -a -n "$(procs_matching "^sleep $M ")"
t0=$(date +%s%N)
stop_daemon TERM
t1=$(date +%s%N)
check "SIGTERM: exit 0" test "$DRC" -eq 0
check "and quickly ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 4000
wait "$waiter" 2>/dev/null || true
expect_in "the waiting client got a BYE" "^BYE$" "$TMP/bye.out"
wait "$execer" 2>/dev/null || true
expect_in "the running command's client got a BYE too" "session closed by BYE" "$TMP/exec.out"
check "the running command was killed" eventually 5 no_proc "sleep $M"
expect_in "the log says so" "shutting down: [0-9]+ sessions open" "$LOG"
expect_in "and ends" "info stopped$" "$LOG"
expect_not_in "no secret in the log" "$(cat "$TMP/psk")" "$LOG"
finish
