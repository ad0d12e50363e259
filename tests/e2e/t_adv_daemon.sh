#!/usr/bin/env bash
# t_adv_daemon.sh - rows of adversarial.md that the engine tests cover in
# memory, checked again against the real ppcpd (tests/README.md has the map):
#
#   T1   a CLIENT_HELLO cut at every length 1..109, then EOF: closed without
#        a SERVER_HELLO, each logged as a failed handshake;
#   T2   hellos without the magic (the seed's unversioned hello among them),
#        with a header byte changed: closed, nothing sent, and the log says
#        "not a PPCP hello";
#   T13  rogue clients (no PSK): random records in place of AUTH, a
#        0xFFFFFFFF length in place of AUTH, garbage, wrong-PSK handshakes:
#        the daemon, traced with strace -f, opens no file and starts no
#        process for them (a positive control: a real exec shows up in the
#        same trace), and logs no exec or file request;
#   T15  a valid handshake delivered one byte per write, 1 ms apart:
#        succeeds;
#   T17  a CLIENT_HELLO with garbage pipelined after it: a SERVER_HELLO and
#        nothing more, logged as a bad client proof;
#   T34  a FILE_REQUEST whose path holds \u0000: refused (as invalid-message:
#        the JSON rules of PROTOCOL.md §7 refuse \u0000 anywhere, before the
#        path rules), and nothing opened (strace);
#   T41  (spread) a half-open flood from 9 addresses, 32 each (ppcpd's
#        default limits: 256 in all, 32 per address): a legitimate client
#        from a tenth address gets in within 2 s: with the slots full,
#        ppcpd closes the busiest address's oldest half-open connection
#        for it (asserted; CHECK_T41_SPREAD_FLOOD=0 only reports);
#   T42  (the valgrind half) ppcpd under valgrind's memcheck through
#        handshakes, wrong-PSK handshakes, bad AUTH records and a small
#        hostile mix: no memcheck error, no definite leak at exit.
#
# Network safety: loopback only (hostile refuses other addresses).
# Environment: PPCPD, HOSTILE; PPCP for the positive control.
source "$(dirname "$0")/daemon_lib.sh"
: "${HOSTILE:?set HOSTILE to tests/hostile (tests/e2e/hostile.c)}"

ASAN=0
grep -q __asan_init "$PPCPD" 2>/dev/null && ASAN=1

STRACE=$(command -v strace || true)
if [ -n "$STRACE" ] && ! "$STRACE" -f -qq -o /dev/null true 2>/dev/null; then
	echo "NOTE: strace cannot trace here: the T13 no-open/no-spawn check is skipped"
	STRACE=
fi

# LeakSanitizer cannot run under ptrace: under strace an ASan ppcpd runs
# without leak detection (t_hostile_load.sh has it with LSan on).
if [ -n "$STRACE" ] && [ "$ASAN" -eq 1 ]; then
	echo "NOTE: ASan build under strace: LeakSanitizer off for this daemon (it does not work under ptrace)"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi

mkdir -p "$TMP/root"
echo inside >"$TMP/root/a"

# Start ppcpd (under strace -f when there is one); DPID, PORT, LOG.
LOG=$TMP/adv.log
: >"$LOG"
if [ -n "$STRACE" ]; then
	timeout 300 "$STRACE" -f -qq -e trace=execve,execveat,open,openat,openat2,creat,clone,clone3,fork,vfork \
		-o "$TMP/strace.out" "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 \
		--state-dir "$TMP/state" --log-level debug --allow-exec 'true,echo' \
		--handshake-timeout 3000 --file-root "$TMP/root" >"$LOG" 2>&1 &
else
	timeout 300 "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 \
		--state-dir "$TMP/state" --log-level debug --allow-exec 'true,echo' \
		--handshake-timeout 3000 --file-root "$TMP/root" >"$LOG" 2>&1 &
fi
TPID=$!
PIDS+=("$TPID")
wait_log "listening on 127\.0\.0\.1:[0-9]+" 20 || { show "$LOG"; exit 1; }
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
DPID=$(children "$TPID" | head -n1)
[ -n "$STRACE" ] && DPID=$(children "$DPID" | head -n1)
PIDS+=("$DPID")
echo "ppcpd $DPID on 127.0.0.1:$PORT${STRACE:+ (under strace -f)}"

hostile() { timeout 60 "$HOSTILE" --port "$PORT" --max-time 50 "$@"; }
# log_count PATTERN - lines of the daemon's log matching it.
log_count() { grep -Ec -- "$1" "$LOG" || true; }
# spawns_opens - execve/open*/clone/fork lines in the trace so far.
spawns_opens() { grep -Ec 'execve|open|creat|clone|fork' "$TMP/strace.out" || true; }

# Warm up (OpenSSL reads its configuration and opens /dev/urandom on the
# first handshake), then the baseline.
run hostile --psk-file "$TMP/psk" cycles --ok 2 --conc 1
expect_rc "a first handshake" 0
# hostile closes right after its BYE: the baseline once ppcpd has ended
# both sessions (slow under strace -f), each closed just after its line.
wait_log_more "ended by the peer \(BYE\)" 1 20 || true
sleep 0.3
base_fds=$(fd_count "$DPID")
[ -n "$STRACE" ] && base_trace=$(spawns_opens)

# -- T1: a CLIENT_HELLO cut at every length, then EOF -------------------------------------
n0=$(log_count "failed: the peer closed the connection in the middle of the handshake")
run hostile attack --truncated 109 --conc 20 --hold 10
expect_rc "T1: 109 truncated CLIENT_HELLOs, none answered" 0
expect_in "T1: each closed by the server, nothing sent back" \
	"^truncated started 109 connect_failed 0 server_closed 109 we_closed 0 held 0 anomalies 0 " "$TMP/out"
wait_log "\(1[0-9]{2} failed handshakes? from 127\.0\.0\.1\)" 5 || true
n1=$(log_count "failed: the peer closed the connection in the middle of the handshake")
check "T1: each is logged as a failed handshake ($((n1 - n0)) of 109)" test $((n1 - n0)) -eq 109

# -- T2 and T17: hellos without the magic, header bytes changed, pipelined garbage --------------
run hostile attack --garbage 60 --conc 20 --hold 10
expect_rc "T2/T17: 60 malformed hellos (6 kinds, 10 each), nothing answered but one SERVER_HELLO to a valid hello" 0
expect_in "T2/T17: each closed by the server" \
	"^garbage started 60 connect_failed 0 server_closed 60 we_closed 0 held 0 anomalies 0 " "$TMP/out"
expect_in "T2: the log says 'not a PPCP hello' for a hello without the magic" \
	"failed: not a PPCP hello \(no \"PPCP\" magic\)" "$LOG"
expect_in "T17: garbage after a valid CLIENT_HELLO is a bad AUTH" \
	"failed: client proof invalid: client does not hold our PSK" "$LOG"

# -- T13: rogue clients open nothing, spawn nothing ----------------------------------------
run hostile attack --badauth 30 --oversize 30 --wrongpsk 20 --truncated 10 --halfopen 10 --conc 50 --hold 10
expect_rc "T13: 100 rogue connections without the PSK" 0
expect_in "T13: none got anything but a SERVER_HELLO" "^attack total 100 anomalies 0 held 0 " "$TMP/out"
check "T13: no session was established for them" test "$(log_count ' established ')" -eq 2
expect_not_in "T13: no exec, no file request logged" "session [0-9.:]+: (exec '|FILE_REQUEST|get '|put ')" "$LOG"
for _ in $(seq 1 40); do
	[ "$(fd_count "$DPID")" -eq "$base_fds" ] && break
	sleep 0.1
done
check "every descriptor released ($(fd_count "$DPID"), at rest $base_fds)" test "$(fd_count "$DPID")" -eq "$base_fds"
if [ -n "$STRACE" ]; then
	now_trace=$(spawns_opens)
	if [ "$now_trace" -eq "$base_trace" ]; then
		ok "T13 (strace -f): no file opened, no process started for 269 rogue connections (T1, T2, T13 phases)"
	else
		fail "T13 (strace -f): the daemon opened or started something for rogue connections:"
		tail -n $((now_trace - base_trace)) "$TMP/strace.out" | head -20
	fi
	if [ -n "${PPCP:-}" ] && [ -x "${PPCP:-}" ]; then
		run timeout 30 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 \
			exec "127.0.0.1:$PORT" true
		expect_rc "control: a real exec" 0
		sleep 0.3
		check "control: the trace shows its process start (so it would show a rogue one)" \
			grep -Eq 'execve\(".*true"' "$TMP/strace.out"
	fi
else
	echo "SKIP: T13 strace check (no usable strace)"
fi

# -- T15: a handshake one byte per write ----------------------------------------------------
run hostile --psk-file "$TMP/psk" cycles --ok 3 --bytewise --conc 1
expect_rc "T15: 3 handshakes delivered one byte per write (1 ms apart)" 0
expect_in "T15: all established" "^cycles ok 3/3 " "$TMP/out"
sed 's/^/    /' "$TMP/out"

# -- T34: a NUL in a path ----------------------------------------------------------------
# libppcp refuses to send such JSON, so the raw record comes from the
# independent Python client (tests/interop/ppcp_client.py) used as a module.
if python3 -c 'import cryptography' 2>/dev/null; then
	[ -n "$STRACE" ] && t0_trace=$(grep -Ec 'open' "$TMP/strace.out" || true)
	python3 - "$(dirname "$0")/../interop" "$PORT" "$TMP/psk" >"$TMP/nul.out" 2>&1 <<'PY' || true
import socket, sys
sys.path.insert(0, sys.argv[1])
import ppcp_client as pc

port, psk = int(sys.argv[2]), pc.read_psk_file(sys.argv[3])
for path in ("a\\u0000/../../etc/passwd", "\\u0000", "a\\u0000", "../../etc/passwd\\u0000"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    c = pc.Client(pc.Transport(sock), psk)
    c.handshake()
    raw = '{"i":"00000077","p":{"offset":0,"path":"%s"},"s":0,"t":"FILE_REQUEST","v":1}' % path
    c.t.send_frame(c.send_dir.seal(raw.encode()))
    ln = c._read_len("answer")
    print("%s -> %s" % (path, c.recv_dir.open(ln, c._read_body(ln, "answer"), "answer").decode()))
    sock.close()
PY
	sed 's/^/    /' "$TMP/nul.out"
	check "T34: 4 FILE_REQUESTs with \\u0000 in the path: each an ERROR invalid-message" \
		test "$(grep -c '"t":"ERROR"' "$TMP/nul.out")" -eq 4 -a "$(grep -c '"code":"invalid-message"' "$TMP/nul.out")" -eq 4
	run tc get a "$TMP/a.out"
	check "control: a plain get in the same root works" cmp -s "$TMP/root/a" "$TMP/a.out"
	if [ -n "$STRACE" ]; then
		sleep 0.3
		opens=$(grep -E 'open' "$TMP/strace.out" | tail -n +$((t0_trace + 1)))
		if grep -q '"a"' <<<"$opens" && ! grep -q 'passwd' <<<"$opens"; then
			ok "T34 (strace): only the control's file was opened"
		else
			fail "T34 (strace): unexpected opens"
			echo "$opens" | head
		fi
	fi
else
	echo "SKIP: T34 \\u0000 path (python3 lacks the cryptography package for tests/interop/ppcp_client.py)"
fi

check "the daemon is alive" kill -0 "$DPID"
kill -TERM "$DPID" 2>/dev/null || true
for _ in $(seq 1 100); do
	kill -0 "$TPID" 2>/dev/null || break
	sleep 0.1
done
set +e
wait "$TPID" 2>/dev/null
DRC=$?
set -e
check "SIGTERM: exit 0" test "$DRC" -eq 0
expect_not_in "no sanitizer report in the daemon's log" "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$LOG"

# -- T41 with the flood spread over addresses -----------------------------------------------
# Default limits.  9 addresses x 32 half-open connections fill all 256
# slots without sending a byte; the per-address limit never triggers.  When
# the slots are full, ppcpd closes the oldest half-open connection of the
# busiest address for a newcomer from a less busy one, so the legitimate
# client must get in.  CHECK_T41_SPREAD_FLOOD=0 only reports.
CHECK_T41_SPREAD_FLOOD=${CHECK_T41_SPREAD_FLOOD:-1}
start_daemon spread
timeout 30 "$HOSTILE" --port "$PORT" --src-base 2 --src-count 9 --max-time 20 \
	attack --halfopen 288 --hold 4 >"$TMP/spread.out" 2>&1 &
FLOODER=$!
PIDS+=("$FLOODER")
wait_log "\(2[0-9]{2} open, 2[0-9]{2} handshaking\)" 5 || true
sleep 0.5
t0=$(date +%s%N)
spread_ok=0
tries=0
while [ $((($(date +%s%N) - t0) / 1000000)) -lt 2000 ]; do
	tries=$((tries + 1))
	if timeout 10 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --max-time 5 cycles --ok 1 --conc 1 \
		>"$TMP/spread-legit.out" 2>&1; then
		spread_ok=1
		break
	fi
	sleep 0.2
done
spread_ms=$((($(date +%s%N) - t0) / 1000000))
refused=$(grep -c 'refusing connections: 256 handshakes in progress (max-handshakes)' "$LOG" || true)
if [ "$spread_ok" -eq 1 ]; then
	ok "T41 (spread): a legitimate client got in during a flood from 9 addresses (${spread_ms} ms, $tries tries)"
elif [ "$CHECK_T41_SPREAD_FLOOD" = 1 ]; then
	fail "T41 (spread): a flood of 288 half-open connections from 9 addresses locks a legitimate client out ($tries tries in ${spread_ms} ms, all refused: max-handshakes)"
else
	echo "KNOWN ISSUE (not asserted; CHECK_T41_SPREAD_FLOOD=1 asserts it): 288 half-open connections from 9 addresses (32 each, nothing sent) fill ppcpd's 256 handshake slots; a legitimate client from another address was refused $tries times in ${spread_ms} ms (log: 'refusing connections: 256 handshakes in progress (max-handshakes)' x$refused) and is locked out until the slots expire at the handshake deadline"
fi
wait "$FLOODER" 2>/dev/null || true
run hostile --psk-file "$TMP/psk" cycles --ok 1 --conc 1
expect_rc "T41 (spread): once the flood is gone, the legitimate client gets in" 0
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0

# -- T42 under valgrind -------------------------------------------------------------------------
VALGRIND=$(command -v valgrind || true)
if [ -z "$VALGRIND" ]; then
	echo "SKIP: T42 under valgrind (valgrind is not installed)"
elif [ "$ASAN" -eq 1 ]; then
	echo "SKIP: T42 under valgrind (this ppcpd is built with AddressSanitizer; LeakSanitizer covers it in t_hostile_load.sh)"
else
	LOG=$TMP/vg-ppcpd.log
	: >"$LOG"
	timeout 300 "$VALGRIND" -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
		--log-file="$TMP/valgrind.log" "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 \
		--state-dir "$TMP/state-vg" --log-level info --allow-exec 'true,echo' >"$LOG" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	if wait_log "listening on 127\.0\.0\.1:[0-9]+" 60; then
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
		DPID=$(children "$TPID" | head -n1)
		PIDS+=("$DPID")
		run hostile --psk-file "$TMP/psk" cycles --ok 2 --conc 1 # memcheck warms up
		t0=$(date +%s%N)
		run hostile --psk-file "$TMP/psk" cycles --ok 150 --wrong 150 --badauth 50 --conc 4
		expect_rc "T42 under memcheck: 150 handshakes, 150 wrong-PSK, 50 bad AUTH ($((($(date +%s%N) - t0) / 1000000)) ms)" 0
		sed 's/^/    /' "$TMP/out"
		run hostile --psk-file "$TMP/psk" attack --truncated 20 --garbage 12 --badauth 10 --oversize 30 \
			--wrongpsk 10 --halfopen 5 --conc 30 --hold 20
		expect_rc "and a hostile mix (87 connections, the 0xFFFFFFFF prefix after AUTH_OK among them)" 0
		kill -TERM "$DPID" 2>/dev/null || true
		for _ in $(seq 1 300); do
			kill -0 "$TPID" 2>/dev/null || break
			sleep 0.1
		done
		set +e
		wait "$TPID" 2>/dev/null
		VRC=$?
		set -e
		if [ "$VRC" -eq 0 ] && ! grep -q 'definitely lost\|Invalid \|uninitialised' "$TMP/valgrind.log"; then
			ok "memcheck: no error and no definite leak in ppcpd (exit $VRC)"
		else
			fail "memcheck: exit $VRC"
			head -60 "$TMP/valgrind.log"
		fi
	else
		fail "ppcpd did not start under valgrind"
		show "$LOG"
	fi
fi
finish
