#!/usr/bin/env bash
# t_daemon_disco.sh - ppcpd's UDP discovery on loopback (PROTOCOL.md §10;
# adversarial T44): a PING gets a PONG that names this server and its port,
# never larger than the PING; a PING for another target, too small a PING,
# an oversized or malformed one get nothing; PONGs are rate-limited per
# source.  Every PING goes to 127.0.0.1 by unicast: nothing is broadcast.
source "$(dirname "$0")/daemon_lib.sh"

start_daemon disco --server-id disco-test
udp() { timeout 30 "$TC" --port "$PORT" udp-ping "$@"; }

run udp
expect_in "a PING gets one PONG" "^udp-ping: sent 1 PINGs of ([0-9]+) bytes, 1 PONGs" "$TMP/out"
ping=$(sed -n 's/.*PINGs of \([0-9]*\) bytes.*/\1/p' "$TMP/out")
pong=$(sed -n 's/.*largest PONG \([0-9]*\) bytes.*/\1/p' "$TMP/out")
check "the PONG ($pong bytes) is not larger than the PING ($ping bytes)" test "$pong" -le "$ping"

run udp --target disco-test
expect_in "a PING for this server_id is answered" ", 1 PONGs" "$TMP/out"
run udp --target someone-else
expect_in "a PING for another server_id is not" ", 0 PONGs" "$TMP/out"
run udp --small
expect_in "a PING smaller than the PONG gets nothing (no amplification)" ", 0 PONGs" "$TMP/out"
run udp --oversize
expect_in "an oversized PING gets nothing" ", 0 PONGs" "$TMP/out"
run udp --garbage
expect_in "a malformed PING gets nothing" ", 0 PONGs" "$TMP/out"
check "the daemon is alive" kill -0 "$DPID"

if [ -n "${PPCP:-}" ] && [ -x "${PPCP:-}" ]; then
	run timeout 30 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 discover --json
	expect_rc "ppcp discover" 0
	expect_in "ppcp discover finds it, with its port" "\"server_id\": ?\"disco-test\"" "$TMP/out"
	expect_in "and its port" "\"port\": ?$PORT" "$TMP/out"
fi

# Rate limit: 20 PONGs a second per source, 40 at once.  A burst of 200
# PINGs from one socket gets at most about 40 answers.
sleep 2.5
run udp --count 200
n=$(sed -n 's/.*, \([0-9]*\) PONGs.*/\1/p' "$TMP/out")
check "a burst of 200 PINGs gets between 20 and 50 PONGs ($n)" test "${n:-0}" -ge 20 -a "${n:-999}" -le 50
expect_in "the rate limit is logged" "PONG rate limit reached" "$LOG"
sleep 1.2
run udp
expect_in "a second later the source is answered again" ", 1 PONGs" "$TMP/out"

stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
finish
