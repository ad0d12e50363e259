#!/usr/bin/env bash
# t_cli_all.sh - fleet mode and discovery on loopback: three ppcpd on
# 127.0.0.1, .2 and .3 with one port (one UDP port per address, as on three
# hosts), PINGed by unicast with --discover-addr for each.  `discover`
# prints a table and --json; `exec --all` runs on the three in parallel,
# prefixes every line with "server_id: ", prints "N ok, N failed" on
# stderr and exits 0 only when all exit 0.  `sh` where a shell is allowed
# and where it is not.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
need_ppcpd

newpsk "$TMP/psk"
started=0
for _ in 1 2 3 4 5; do
	PORT=$(random_port)
	if start_ppcpd fleet-a 127.0.0.1 "$PORT" --allow-exec '*' --allow-shell --state-dir "$TMP/a" &&
		start_ppcpd fleet-b 127.0.0.2 "$PORT" --allow-exec '*' --state-dir "$TMP/b" &&
		start_ppcpd fleet-c 127.0.0.3 "$PORT" --allow-exec 'echo,true' --state-dir "$TMP/c"; then
		started=1
		break
	fi
	stop_ppcpd fleet-a KILL
	stop_ppcpd fleet-b KILL
	stop_ppcpd fleet-c KILL
done
[ "$started" = 1 ] || { fail "could not start three daemons"; finish; }
DISCOVER=127.0.0.1,127.0.0.2,127.0.0.3

run pc discover
expect_rc "discover finds servers" 0
for s in fleet-a fleet-b fleet-c; do
	expect_in "discover lists $s with address, port and path" "^$s +[^ ]+ +127\.0\.0\.[123] +$PORT +[a-z,-]+ +[0-9.]+ms +unicast$" out
done
expect_in "the table has a header" "^SERVER_ID +HOSTNAME +ADDRESS +PORT +CAPABILITIES +RTT +PATH" out
run pc discover --json
if python3 - "$TMP/out" <<'PY'; then ok "discover --json: one object per server, every column"; else fail "discover --json"; show "$TMP/out"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(x["server_id"] for x in d) == ["fleet-a", "fleet-b", "fleet-c"], d
for x in d:
    assert set(x) >= {"server_id", "hostname", "address", "port", "capabilities", "rtt_ms", "path"}, x
    assert x["path"] == "unicast" and isinstance(x["port"], int)
PY
run pc discover --target fleet-b
if [ "$RC" -eq 0 ] && grep -q '^fleet-b ' "$TMP/out" && ! grep -Eq '^fleet-(a|c) ' "$TMP/out"; then
	ok "discover --target: only that server answers"
else
	fail "discover --target"
	show "$TMP/out" "$TMP/err"
fi
start=$(date +%s%N)
run pc --timeout 5 discover --target fleet-b
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$RC" -eq 0 ] && [ "$ms" -lt 3000 ]; then ok "discover --target returns at the first PONG (${ms} ms with --timeout 5)"; else fail "discover --target took ${ms} ms"; fi
run pc discover --target nobody --timeout 0.5
expect_rc "discover --target of an absent server" 255

run pc exec --all -- sh -c 'echo line1; echo line2; echo oops >&2'
expect_rc "exec --all: a refusal on one server is our failure" 255
run pc exec --all -- echo hello
expect_rc "exec --all exits 0 when every server exits 0" 0
for s in fleet-a fleet-b fleet-c; do
	expect_in "$s's output is prefixed" "^$s: hello$" out
done
if [ "$(wc -l <"$TMP/out")" -eq 3 ]; then ok "one line per server"; else fail "exec --all output"; show "$TMP/out"; fi
expect_in "summary on stderr" "^3 ok, 0 failed$" err

run pc sh fleet-a 'echo $((1 + 2)); echo e >&2; exit 4'
if [ "$RC" -eq 4 ] && [ "$(cat "$TMP/out")" = 3 ] && [ "$(cat "$TMP/err")" = e ]; then
	ok "sh runs a command line where the server allows a shell"
else
	fail "sh: rc $RC"
	show "$TMP/out" "$TMP/err"
fi
run pc sh fleet-b 'true'
expect_rc "sh where the server has no shell" 255
expect_in "is refused with the server's reason" "refused the command: .*allow-shell" err

stop_ppcpd fleet-c
run pc exec --all -- sh -c 'echo out-$$; echo err >&2; exit 3'
expect_rc "exec --all exits 1 when a remote command fails" 1
expect_in "stderr lines are prefixed too" "^fleet-a: err$" err
expect_in "multi-line output is prefixed line by line" "^fleet-b: out-[0-9]+$" out
expect_in "summary" "^0 ok, 2 failed$" err
run pc exec --all -- sh -c 'printf "no newline"'
expect_in "a last line without newline is still prefixed and ended" "^fleet-a: no newline$" out

finish
