#!/usr/bin/env bash
# t_cli_storm.sh - ppcp against a server that holds the PSK and answers with
# random, mostly wrong messages (tests/e2e/evil_server.py): exec, status,
# get, get -r and put, over many seeds.  Whatever the server sends, ppcp
# ends on its own (no hang: the server closes within about 2 s), is never
# killed by a signal, reports a failure with a "ppcp:" line and exit 255, has
# no sanitizer report, writes nothing outside the directory it was asked to
# write to (listings offer "../evil", an absolute path, "a/b"), and never
# serves the server's own requests for the client's files or commands.
# Bounded: STORM_RUNS seeds (default 12) of 5 commands.  Loopback only.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "SKIP: python3 lacks the cryptography package (the evil server needs it)"
	finish
	exit $?
fi

newpsk "$TMP/psk"
echo "client secret" >"$TMP/secret"
head -c 5000 /dev/urandom >"$TMP/up"
mkdir -p "$TMP/w"
: >"$TMP/leaks"
SEED=${STORM_SEED:-1}
echo "    evil server seed $SEED (STORM_SEED; one more per connection)"
ABS=$TMP/abs-canary
: >"$TMP/msgs"
python3 "$HERE/evil_server.py" "$TMP/psk" "$SEED" "$TMP/leaks" "$ABS" >"$TMP/evil.log" 2>&1 &
EPID=$!
PIDS+=("$EPID")
for _ in $(seq 1 100); do
	grep -q "listening on" "$TMP/evil.log" && break
	sleep 0.05
done
PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/evil.log")
[ -n "$PORT" ] || { cat "$TMP/evil.log"; fail "the evil server did not start"; finish; exit 1; }
T=127.0.0.1:$PORT

# sig CMD... - run CMD (bounded); "exit N" or "signal N" in $TMP/how.
sig() {
	set +e
	python3 -c '
import subprocess, sys
try:
    p = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=open(sys.argv[1] + ".out", "wb"),
                       stderr=open(sys.argv[1] + ".err", "wb"), timeout=30)
    print("signal %d" % -p.returncode if p.returncode < 0 else "exit %d" % p.returncode)
except subprocess.TimeoutExpired:
    print("hang")
' "$TMP/run" "$@" >"$TMP/how"
	set -e
	cp "$TMP/run.out" "$TMP/out"
	cp "$TMP/run.err" "$TMP/err"
}

runs=0 bad=0 failures=0
RUNS=${STORM_RUNS:-12}
for round in $(seq 1 "$RUNS"); do
	for cmd in exec status get getr put; do
		rm -rf "$TMP/w"/* "$TMP/w"/.[!.]* 2>/dev/null || true
		case $cmd in
		exec) sig "$PPCP" --psk-file "$TMP/psk" --discover-addr 127.0.0.1 exec "$T" -- echo hi ;;
		status) sig "$PPCP" --psk-file "$TMP/psk" --discover-addr 127.0.0.1 status "$T" ;;
		get) sig "$PPCP" --psk-file "$TMP/psk" --discover-addr 127.0.0.1 get "$T:f" "$TMP/w/" ;;
		getr) sig "$PPCP" --psk-file "$TMP/psk" --discover-addr 127.0.0.1 get -r "$T:d" "$TMP/w/d" ;;
		put) sig "$PPCP" --psk-file "$TMP/psk" --discover-addr 127.0.0.1 put "$TMP/up" "$T:u" ;;
		esac
		runs=$((runs + 1))
		how=$(cat "$TMP/how")
		case $how in
		"exit 255")
			# (the server never claims 255 as a remote exit status)
			failures=$((failures + 1))
			grep '^ppcp: ' "$TMP/err" | head -1 | sed "s/127\.0\.0\.1:[0-9]*/T/g; s|$TMP|TMP|g" >>"$TMP/msgs" || true
			grep -q '^ppcp: ' "$TMP/err" || { fail "$cmd round $round: exit 255 without a 'ppcp:' line"; show "$TMP/err"; bad=1; } ;;
		exit*) ;;
		*) fail "$cmd round $round: $how"; show "$TMP/err"; bad=1 ;;
		esac
		if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/err"; then
			fail "$cmd round $round: sanitizer report"
			show "$TMP/err"
			bad=1
		fi
		# Nothing outside the target: get writes f (or f.part and its
		# sidecar) in $TMP/w, get -r only beneath $TMP/w/d; the listing's
		# "../evil" would land in $TMP/w/evil, the absolute name in $ABS.
		stray=$(ls -A "$TMP/w" | grep -Ev '^(f|f\.part|f\.part\.ppcp|d)$' || true)
		if [ -n "$stray" ] || [ -e "$ABS" ] || [ -e "$TMP/evil" ]; then
			fail "$cmd round $round: a file outside the target: ${stray:-} $(ls -d "$ABS" "$TMP/evil" 2>/dev/null || true)"
			rm -f "$ABS" "$TMP/evil"
			bad=1
		fi
	done
done
[ "$bad" -eq 0 ] && ok "$runs runs against the evil server: each ended on its own with an exit status, $failures of them exit 255 with a 'ppcp:' line; no signal, no hang, no sanitizer report, nothing written outside the target"
if [ -s "$TMP/leaks" ]; then
	fail "ppcp served the server's own requests"
	show "$TMP/leaks"
else
	ok "ppcp never served the server's requests for its files or commands"
fi
echo "    the errors ppcp reported, by kind:"
sed 's/[0-9][0-9]*/N/g' "$TMP/msgs" | cut -c1-150 | sort | uniq -c | sort -rn | head -25 | sed 's/^/    /'
# The storm reached ppcp's handlers: most runs got past the handshake.
authed=$(grep -c "^session authenticated" "$TMP/evil.log" || true)
if [ "$authed" -ge $((runs / 2)) ]; then
	ok "$authed of $runs runs completed the handshake with the evil server"
else
	fail "only $authed of $runs runs completed the handshake: the storm did not reach ppcp's handlers"
	show "$TMP/evil.log"
fi
kill "$EPID" 2>/dev/null || true
finish
