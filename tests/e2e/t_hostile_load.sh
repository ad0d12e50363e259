#!/usr/bin/env bash
# t_hostile_load.sh - one ppcpd under a hostile load while a legitimate ppcp
# client works (adversarial T16, T18, T41, T42, T44 together):
#
#  * 1,000 hostile TCP connections at once from 127.0.0.2-127.0.0.11
#    (tests/e2e/hostile.c "attack": half-open, slowloris at 1 byte/s,
#    garbage, wrong-PSK handshakes, random AUTH records, 0xFFFFFFFF length
#    prefixes before the hello, in place of AUTH and after AUTH_OK), plus
#    1,000 half-open connections from the single address 127.0.0.12 (T41),
#    plus a UDP flood of 20,000 PINGs (valid, too small, oversized up to
#    60,000 bytes, random, truncated, for another target, v:2, deeply
#    nested, empty) to the daemon's port;
#  * meanwhile, from 127.0.0.1: handshakes (timed: T41 wants < 2 s; asserted
#    < 5 s, the figure printed), ppcp exec with its output checked, ppcp
#    discover, ppcp get and ppcp put of 8 MiB (cmp byte-identical);
#  * the daemon's VmRSS, sampled every 0.1 s, and its VmHWM stay under
#    RSS_BOUND_MIB (64; measured 11-13) and VmRSS returns near its
#    baseline; VmPeak shows no 4 GiB allocation for a 0xFFFFFFFF prefix
#    (T18); every descriptor comes back; no child, no zombie;
#  * the attack sees no anomaly (nothing sent to a peer that did not earn
#    it), and every slowloris and half-open connection is closed by the
#    handshake deadline (3 s here: T16);
#  * T42: 10^4 handshake+BYE cycles, 10^4 handshakes with a wrong PSK and
#    2,000 whose AUTH is a random record; fd count and RSS back to baseline.
#
# Network safety: every address is in 127.0.0.0/8 (hostile refuses any
# other), ppcp always gets --discover-addr 127.0.0.1; every load is bounded
# in count and in time; everything started is killed on exit.
# Environment: PPCPD, PPCP, HOSTILE (set by tests/CMakeLists.txt).
source "$(dirname "$0")/daemon_lib.sh"
: "${PPCP:?set PPCP to the ppcp binary}"
: "${HOSTILE:?set HOSTILE to tests/hostile (tests/e2e/hostile.c)}"

T_START=$(date +%s%N)
MiB=$((1024 * 1024))
HS_TIMEOUT_MS=3000
# How much later than the deadline a slowloris or half-open connection may
# be closed, counted from its connect(): ppcpd's loop lags behind the whole
# attack (2,000 connections, 20,000 PINGs logged at debug level).  Measured
# at most 0.06 s without sanitizers; 1.03 s in an ASan build, 2-5 times
# slower, which gets twice the slack (a deadline not enforced shows as the
# attack's 8 s hold, or as "held").
CLOSE_SLACK_MS=1500
# Bounds on the daemon's memory.  Measured without sanitizers (2 cores):
# about 7 MiB at rest, 11-13 MiB at the peak of the attack (about 440
# handshakes held at once), 9 MiB afterwards; the bounds leave a wide margin
# over that and still catch a per-connection or per-length-prefix blow-up.
RSS_BOUND_MIB=${RSS_BOUND_MIB:-64}
RSS_BACK_MIB=${RSS_BACK_MIB:-20}
# A 0xFFFFFFFF length prefix that were allocated would show in VmPeak (the
# virtual size: malloc maps 4 GiB even if it is never touched).
VMPEAK_GROWTH_MIB=${VMPEAK_GROWTH_MIB:-1024}
T42_N=${T42_N:-10000}

# The daemon and the attackers need a few thousand descriptors.
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "ulimit -n: $(ulimit -n)"

# Under AddressSanitizer the memory figures mean something else (shadow
# memory, quarantine): the RSS bounds are not asserted, and said so.
ASAN=0
if grep -q __asan_init "$PPCPD" 2>/dev/null; then
	ASAN=1
	echo "NOTE: ppcpd is built with AddressSanitizer: RSS is measured and printed, the RSS bounds are NOT asserted"
	T42_N=${T42_N_ASAN:-$T42_N}
	CLOSE_SLACK_MS=3000
fi

ROOT=$TMP/root
mkdir -p "$ROOT" "$TMP/w"
head -c $((8 * MiB)) /dev/urandom >"$ROOT/big"
head -c $((8 * MiB)) /dev/urandom >"$TMP/w/up"

start_daemon hostile --allow-exec 'echo,true' --file-root "$ROOT" --allow-put \
	--handshake-timeout "$HS_TIMEOUT_MS" --max-handshakes 512 --max-handshakes-per-ip 40
T=127.0.0.1:$PORT

# pc ARGS... - the legitimate client, from 127.0.0.1, PINGs to 127.0.0.1 only.
pc() {
	timeout 60 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 "$@"
}
# in_w CMD... - run's rules, in the work directory $TMP/w.
in_w() {
	set +e
	(cd "$TMP/w" && "$@") </dev/null >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$DPID/status"; }
status_kib() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$DPID/status"; } # status_kib VmPeak
# listen_overflows - the kernel's count of connections dropped because an
# accept queue was full (TcpExt ListenOverflows, for the whole network
# namespace): a connection whose ACK was dropped waits for the SYN-ACK's
# retransmission (1, 3, 7 s), which shows as "held" below.
listen_overflows() {
	awk '$1 == "TcpExt:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") c = i; n = 1 } else print $c }' \
		/proc/net/netstat 2>/dev/null || echo 0
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# wait_fds N SECONDS - until the daemon holds N descriptors.
wait_fds() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ "$(fd_count "$DPID")" -eq "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# -- warm up, then the baseline ------------------------------------------------------
run pc exec "$T" echo warm-up
expect_rc "a first exec" 0
run pc get "$T:big" "$TMP/w/warm"
expect_rc "a first get" 0
run timeout 60 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --max-time 30 cycles --ok 50 --wrong 50 --badauth 50
expect_rc "a first 150 handshakes" 0
rm -f "$TMP/w/warm"
# hostile does not wait for ppcpd to close the sessions it ended: the
# baseline is a count that stays the same for 0.5 s.
base_fds=-1
for _ in $(seq 1 40); do
	sleep 0.5
	n=$(fd_count "$DPID")
	[ "$n" -eq "$base_fds" ] && break
	base_fds=$n
done
base_rss=$(rss_kib)
base_vmpeak=$(status_kib VmPeak)
echo "ppcpd $DPID at rest: $base_fds descriptors, VmRSS $(mib "$base_rss") MiB, VmPeak $(mib "$base_vmpeak") MiB"

# -- RSS sampler: every 0.1 s, at most 120 s, until $TMP/sampling goes ------------
: >"$TMP/sampling"
(
	for _ in $(seq 1 1200); do
		[ -e "$TMP/sampling" ] || break
		awk '/^VmRSS:/ {print $2}' "/proc/$DPID/status" 2>/dev/null || break
		sleep 0.1
	done
) >"$TMP/rss.samples" &
SAMPLER=$!
PIDS+=("$SAMPLER")

# -- the attack ------------------------------------------------------------------------
t_attack=$(date +%s%N)
overflows0=$(listen_overflows)
timeout 60 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --src-base 2 --src-count 10 --max-time 40 \
	attack --halfopen 300 --slowloris 100 --garbage 200 --wrongpsk 150 --badauth 100 --oversize 150 \
	--conc 400 --hold 8 >"$TMP/attack.out" 2>"$TMP/attack.err" &
ATTACK=$!
PIDS+=("$ATTACK")
timeout 60 "$HOSTILE" --port "$PORT" --src-base 12 --src-count 1 --max-time 40 \
	attack --halfopen 1000 --hold 8 >"$TMP/flood1.out" 2>"$TMP/flood1.err" &
FLOOD1=$!
PIDS+=("$FLOOD1")
timeout 60 "$HOSTILE" --port "$PORT" --src-base 2 --src-count 10 --max-time 30 \
	udp --count 20000 --duration 5 >"$TMP/udp.out" 2>"$TMP/udp.err" &
UDP=$!
PIDS+=("$UDP")
# Let the attack fill its slots: until ppcpd holds 100 descriptors more
# than at rest (a fixed 0.5 s could end before a slow start of the
# attackers, and the legitimate work would not run under attack).
for _ in $(seq 1 100); do
	[ "$(fd_count "$DPID")" -gt $((base_fds + 100)) ] && break
	sleep 0.1
done
# The attack is on: count what the daemon holds now, before the legitimate
# work (measured afterwards, a slow sanitizer build saw the attack ending).
fds_during=$(fd_count "$DPID")

# -- the legitimate client, from 127.0.0.1, during the attack ---------------------------
run timeout 30 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --max-time 20 cycles --ok 10 --conc 1
expect_rc "10 legitimate handshakes from 127.0.0.1 during the attack" 0
hs_max=$(sed -n 's/.* hs_ms_max \([0-9.]*\).*/\1/p' "$TMP/out")
hs_p50=$(sed -n 's/.* hs_ms_p50 \([0-9.]*\).*/\1/p' "$TMP/out")
echo "T41: legitimate handshake during the attack: p50 ${hs_p50:-?} ms, max ${hs_max:-?} ms (target < 2000 ms)"
check "the legitimate handshake completes in under 5 s (max ${hs_max:-?} ms)" \
	awk -v m="${hs_max:-99999}" 'BEGIN {exit !(m < 5000)}'
[ -n "$hs_max" ] && awk -v m="$hs_max" 'BEGIN {exit !(m >= 2000)}' &&
	echo "NOTE: over T41's 2 s target (${hs_max} ms), under the 5 s assertion"

marker=legit-$RANDOM-$RANDOM
t0=$(date +%s%N)
run pc exec "$T" echo "$marker"
exec_ms=$(ms_since "$t0")
expect_rc "ppcp exec during the attack ($exec_ms ms, connect to exit)" 0
check "its output is the marker" test "$(cat "$TMP/out")" = "$marker"
# Discovery is best effort under a flood: the daemon's UDP receive queue
# may overflow (the kernel drops datagrams, ours among them), so up to 3
# tries; the drops are printed after the flood.
for try in 1 2 3; do
	run pc --timeout 2 discover --json
	[ "$RC" -eq 0 ] && break
done
expect_rc "ppcp discover during the PING flood (try $try of 3)" 0
expect_in "it finds the daemon on its port" "\"port\": ?$PORT" "$TMP/out"
t0=$(date +%s%N)
in_w pc get "$T:big"
expect_rc "ppcp get of 8 MiB during the attack ($(ms_since "$t0") ms)" 0
check "byte-identical" cmp -s "$ROOT/big" "$TMP/w/big"
t0=$(date +%s%N)
in_w pc put up "$T:up"
expect_rc "ppcp put of 8 MiB during the attack ($(ms_since "$t0") ms)" 0
check "byte-identical" cmp -s "$TMP/w/up" "$ROOT/up"
fds_now=$(fd_count "$DPID")
[ "$fds_now" -gt "$fds_during" ] && fds_during=$fds_now
# More legitimate work for as long as the attack goes on (at most 40 rounds).
rounds=0
rounds_ok=0
for _ in $(seq 1 40); do
	kill -0 "$ATTACK" 2>/dev/null || break
	rounds=$((rounds + 1))
	run pc exec "$T" echo "$marker-$rounds"
	[ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = "$marker-$rounds" ] && rounds_ok=$((rounds_ok + 1))
	sleep 0.1
done
check "the legitimate work ran while the attack was under way (the daemon held $fds_during descriptors, $base_fds at rest; $rounds_ok of $rounds more exec rounds ok)" \
	test "$fds_during" -gt $((base_fds + 100)) -a "$rounds_ok" -eq "$rounds"

# -- the attackers' own reports --------------------------------------------------------
set +e
wait "$ATTACK"
arc=$?
wait "$FLOOD1"
frc=$?
wait "$UDP"
urc=$?
set -e
attack_s=$(($(ms_since "$t_attack") / 1000))
sed 's/^/    /' "$TMP/attack.out" "$TMP/flood1.out" "$TMP/udp.out"
echo "accept queue overflows during the attack (the kernel's counter, all listeners): $(($(listen_overflows) - ${overflows0:-0}))"
check "1,000 mixed hostile connections: no anomaly, none held past the deadline (exit $arc)" \
	grep -Eq '^attack total 1000 anomalies 0 held 0 ' "$TMP/attack.out"
[ "$arc" -eq 0 ] || show "$TMP/attack.err"
slow_max=$(sed -n 's/^slowloris .* close_ms_max \([0-9]*\).*/\1/p' "$TMP/attack.out")
half_max=$(sed -n 's/^halfopen .* close_ms_max \([0-9]*\).*/\1/p' "$TMP/attack.out")
check "slowloris (1 byte/s) closed at the handshake deadline: at most ${slow_max:-?} ms (deadline $HS_TIMEOUT_MS ms)" \
	test "${slow_max:-99999}" -le $((HS_TIMEOUT_MS + CLOSE_SLACK_MS))
check "half-open connections closed by the deadline: at most ${half_max:-?} ms" \
	test "${half_max:-99999}" -le $((HS_TIMEOUT_MS + CLOSE_SLACK_MS))
check "1,000 half-open connections from one address: all closed by the server (exit $frc)" \
	grep -Eq '^halfopen started 1000 connect_failed 0 server_closed 1000 .* held 0 anomalies 0 ' "$TMP/flood1.out"
expect_in "the per-address limit was applied to the flood" \
	"refusing connections: 40 handshakes in progress from one address \(max-handshakes-per-ip\)" "$LOG"
check "UDP flood: only valid padded PINGs answered, no PONG larger than its PING, rate limited per source (exit $urc)" \
	grep -Eq '^udp sent 20000 .* anomalies 0$' "$TMP/udp.out"
[ "$urc" -eq 0 ] || show "$TMP/udp.err"
expect_in "the PONG rate limit is logged" "PONG rate limit reached" "$LOG"
drops=$(awk -v p="$(printf ':%04X' "$PORT")" '$2 == "0100007F" p {print $NF}' "/proc/$DPID/net/udp")
echo "datagrams the kernel dropped on the daemon's UDP socket (receive queue full): ${drops:-?}"
expect_not_in "no hostile connection ran a command or asked for a file (T13)" \
	"session 127\.0\.0\.([2-9]|1[0-2]):[0-9]+: (exec '|FILE_REQUEST|get '|put ')" "$LOG"

# -- afterwards: descriptors, memory, children ----------------------------------------------
wait_fds "$base_fds" 15 || true
fds=$(fd_count "$DPID")
check "after the attack every descriptor is released: $fds (at rest: $base_fds)" test "$fds" -eq "$base_fds"
check "no child process left" test -z "$(children "$DPID")"
check "no zombie" test "$(zombies "$DPID")" -eq 0
sleep 0.5
rm -f "$TMP/sampling"
wait "$SAMPLER" 2>/dev/null || true
peak=$(sort -n "$TMP/rss.samples" | tail -n1)
nsamples=$(wc -l <"$TMP/rss.samples")
after=$(rss_kib)
hwm=$(status_kib VmHWM)
vmpeak=$(status_kib VmPeak)
echo "VmRSS: at rest $(mib "$base_rss") MiB, peak sampled during the attack $(mib "${peak:-0}") MiB ($nsamples samples over ${attack_s}s), VmHWM $(mib "$hwm") MiB, after $(mib "$after") MiB"
echo "VmPeak (virtual): at rest $(mib "$base_vmpeak") MiB, after the attack $(mib "$vmpeak") MiB"
if [ "$ASAN" -eq 0 ]; then
	check "VmRSS peak during the attack (sampled $(mib "${peak:-0}") MiB, VmHWM $(mib "$hwm") MiB) < $RSS_BOUND_MIB MiB" \
		test "${peak:-999999999}" -lt $((RSS_BOUND_MIB * 1024)) -a "$hwm" -lt $((RSS_BOUND_MIB * 1024))
	check "no 4 GiB allocation for the 0xFFFFFFFF prefixes: VmPeak grew by $(mib $((vmpeak - base_vmpeak))) MiB (< $VMPEAK_GROWTH_MIB MiB)" \
		test $((vmpeak - base_vmpeak)) -lt $((VMPEAK_GROWTH_MIB * 1024))
	check "VmRSS after the attack $(mib "$after") MiB is within $RSS_BACK_MIB MiB of the baseline $(mib "$base_rss") MiB" \
		test "$after" -le $((base_rss + RSS_BACK_MIB * 1024))
else
	echo "NOTE: ASan build: RSS bounds ($RSS_BOUND_MIB MiB peak, +$RSS_BACK_MIB MiB after) and the VmPeak bound not asserted (shadow memory and quarantine); ASan itself fails any 4 GiB allocation loudly"
fi

# -- the legitimate client once more ---------------------------------------------------------
run pc exec "$T" echo "$marker-after"
expect_rc "ppcp exec after the attack" 0
check "its output" test "$(cat "$TMP/out")" = "$marker-after"

# -- T42: 10^4 handshakes, 10^4 wrong-PSK handshakes, 2,000 bad AUTH records -------------------------
rss0=$(rss_kib)
t0=$(date +%s%N)
run timeout 120 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --src-base 2 --src-count 10 --max-time 110 \
	cycles --ok "$T42_N" --conc 16
expect_rc "T42: $T42_N handshake+BYE cycles ($(ms_since "$t0") ms)" 0
sed 's/^/    /' "$TMP/out"
t0=$(date +%s%N)
# The attack logged such lines already: count those of T42.
counted="failed handshakes from 127\.0\.0\.[0-9]+\)"
n0=$(grep -Ec -- "$counted" "$LOG" || true)
run timeout 120 "$HOSTILE" --port "$PORT" --psk-file "$TMP/psk" --src-base 2 --src-count 10 --max-time 110 \
	cycles --wrong "$T42_N" --badauth 2000 --conc 16
expect_rc "T42: $T42_N wrong-PSK handshakes and 2,000 bad AUTH records, all refused ($(ms_since "$t0") ms)" 0
sed 's/^/    /' "$TMP/out"
check "every failure is counted against its address" \
	test "$(grep -Ec -- "$counted" "$LOG" || true)" -gt "$n0"
wait_fds "$base_fds" 10 || true
fds=$(fd_count "$DPID")
check "after T42 every descriptor is released: $fds (at rest: $base_fds)" test "$fds" -eq "$base_fds"
check "no child, no zombie" test -z "$(children "$DPID")"
rss1=$(rss_kib)
echo "VmRSS around T42: before $(mib "$rss0") MiB, after $(mib "$rss1") MiB (at rest at the start: $(mib "$base_rss") MiB)"
if [ "$ASAN" -eq 0 ]; then
	check "VmRSS after T42 $(mib "$rss1") MiB is within $RSS_BACK_MIB MiB of the baseline" \
		test "$rss1" -le $((base_rss + RSS_BACK_MIB * 1024))
else
	echo "NOTE: ASan build: the RSS bound after T42 is not asserted"
fi

check "the daemon is alive" kill -0 "$DPID"
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
if grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$LOG"; then
	fail "a sanitizer report in the daemon's log"
	grep -E -A20 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$LOG" | head -60
else
	ok "no sanitizer report in the daemon's log"
fi
echo "whole test: $(($(ms_since "$T_START") / 1000)) s"
finish
