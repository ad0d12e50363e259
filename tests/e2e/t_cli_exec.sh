#!/usr/bin/env bash
# t_cli_exec.sh - `ppcp exec`, `sh`, `status`, `ping` against a real ppcpd
# on 127.0.0.1: output streamed to the right descriptor, the remote exit
# status (and 128+N for a signal) as ours, stdin forwarded from a pipe or a
# file but not with -n, a refused program and a refused shell (255 with a
# message), a wrong PSK (255, the message names the PSK), Ctrl-C (COMMAND
# cancel: the remote program dies, we exit 130), and a server that dies
# in the middle of a command (255, reported).
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
need_ppcpd

newpsk "$TMP/psk"
newpsk "$TMP/other"
for _ in 1 2 3 4 5; do
	PORT=$(random_port)
	if start_ppcpd e2e-exec 127.0.0.1 "$PORT" \
		--allow-exec 'sh,cat,true,false,echo,sleep,head,wc,sha256sum' --state-dir "$TMP/pd-state"; then
		break
	fi
	stop_ppcpd e2e-exec KILL
done

run pc exec e2e-exec -- sh -c 'echo out; echo err >&2; exit 7'
expect_rc "exec returns the remote exit status" 7
if [ "$(cat "$TMP/out")" = out ]; then ok "stdout carries exactly the remote stdout"; else fail "stdout: $(cat "$TMP/out")"; show "$TMP/err"; fi
if [ "$(cat "$TMP/err")" = err ]; then ok "stderr carries exactly the remote stderr"; else fail "stderr: $(cat "$TMP/err")"; fi

run pc exec e2e-exec -- sh -c 'kill -9 $$'
expect_rc "a remote program killed by SIGKILL gives 128+9" 137
run pc exec e2e-exec -- sh -c 'kill -TERM $$'
expect_rc "killed by SIGTERM gives 128+15" 143

echo hi >"$TMP/hi"
run -i "$TMP/hi" pc exec e2e-exec -- cat
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = hi ]; then ok "stdin from a file is forwarded"; else fail "stdin from a file: rc $RC, out '$(cat "$TMP/out")'"; show "$TMP/err"; fi
set +e
out=$(echo hi | timeout 30 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" exec e2e-exec -- cat)
rc=$?
set -e
if [ "$rc" -eq 0 ] && [ "$out" = hi ]; then ok "echo hi | ppcp exec ID -- cat prints hi"; else fail "stdin from a pipe: rc $rc, out '$out'"; fi
run -i "$TMP/hi" pc exec -n e2e-exec -- cat
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/out" ]; then ok "-n does not forward stdin"; else fail "-n: rc $RC out '$(cat "$TMP/out")'"; fi
run pc exec e2e-exec -- cat
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/out" ]; then ok "stdin /dev/null (a character device) is not forwarded"; else fail "/dev/null stdin: rc $RC"; fi

head -c 3000000 /dev/urandom >"$TMP/big"
want=$(sha256sum <"$TMP/big" | cut -d' ' -f1)
run -i "$TMP/big" pc exec e2e-exec -- sha256sum
got=$(cut -d' ' -f1 <"$TMP/out")
if [ "$RC" -eq 0 ] && [ "$got" = "$want" ]; then ok "3 MB of stdin arrive intact"; else fail "big stdin: rc $RC, $got vs $want"; show "$TMP/err"; fi
run pc exec e2e-exec -- head -c 2000000 /dev/zero
if [ "$RC" -eq 0 ] && [ "$(wc -c <"$TMP/out")" -eq 2000000 ]; then ok "2 MB of output arrive intact"; else fail "big output: rc $RC, $(wc -c <"$TMP/out") bytes"; fi
run -i "$TMP/big" pc exec e2e-exec -- head -c 10
if [ "$RC" -eq 0 ] && [ "$(wc -c <"$TMP/out")" -eq 10 ]; then ok "a program that stops reading stdin early ends cleanly"; else fail "early stdin close: rc $RC"; show "$TMP/err"; fi

run pc exec e2e-exec -- ls /
expect_rc "a program the policy does not allow is refused" 255
expect_in "with a message that says so" "refused the command:.*(not allowed|allow-exec)" err
run pc sh e2e-exec 'echo from-shell'
expect_rc "sh is refused where the server has no shell" 255
expect_in "with a message" "refused the command" err
run pc exec e2e-exec -- /nonexistent/program
expect_rc "a program that does not exist" 255

run "$PPCP" --psk-file "$TMP/other" --port "$PORT" --discover-addr "$DISCOVER" exec e2e-exec -- true
expect_rc "a wrong PSK exits 255" 255
expect_in "and the message names the PSK" "PSK" err
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then ok "in one line"; else fail "more than one line on stderr"; show "$TMP/err"; fi
run "$PPCP" --psk-file "$TMP/other" --port "$PORT" exec "127.0.0.1:$PORT" -- true
expect_rc "a wrong PSK with a literal address" 255
expect_in "names the PSK too" "PSK" err

run pc exec "127.0.0.1:$PORT" -- echo literal
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = literal ]; then ok "a literal IPv4:PORT target"; else fail "literal target: rc $RC"; show "$TMP/err"; fi
run pc exec nosuchserver -- true
expect_rc "an unknown name" 255
expect_in "says nothing answered" "cannot find 'nosuchserver'" err

run pc status e2e-exec
expect_rc "status" 0
expect_in "status shows the server_id" "^server_id +e2e-exec" out
run pc status --json e2e-exec
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["server_id"]=="e2e-exec"; assert "uptime" in d' "$TMP/out"; then ok "status --json is the status object"; else fail "status --json"; show "$TMP/out"; fi
run pc ping -c 3 -i 0.1 e2e-exec
expect_rc "ping -c 3" 0
if [ "$(grep -c '^reply from e2e-exec: seq=' "$TMP/out")" -eq 3 ]; then ok "three replies with seq and time"; else fail "ping output"; show "$TMP/out"; fi
expect_in "and statistics" "3 sent, 3 received, 0% loss" out

# Ctrl-C: COMMAND cancel, exit 130, the remote program gone.
marker=$((100 + RANDOM % 800)).$$
"$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" \
	exec e2e-exec -- sleep "$marker" >"$TMP/c.out" 2>"$TMP/c.err" </dev/null &
cpid=$!
for _ in $(seq 1 300); do pgrep -f "^sleep $marker" >/dev/null && break; sleep 0.1; done
kill -INT "$cpid"
set +e
timeout 10 tail --pid="$cpid" -f /dev/null
wait "$cpid"
rc=$?
set -e
if [ "$rc" -eq 130 ]; then ok "Ctrl-C exits 130"; else fail "Ctrl-C: exit $rc"; show "$TMP/c.err"; fi
gone=0
for _ in $(seq 1 30); do
	if ! pgrep -f "^sleep $marker" >/dev/null; then gone=1; break; fi
	sleep 0.1
done
if [ "$gone" = 1 ]; then ok "and the remote program was cancelled"; else fail "the remote sleep still runs"; fi

# The server dies in the middle of a command.
"$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" \
	exec e2e-exec -- sh -c 'echo started; exec sleep 20.$$' >"$TMP/d.out" 2>"$TMP/d.err" </dev/null &
cpid=$!
for _ in $(seq 1 300); do grep -q started "$TMP/d.out" && break; sleep 0.1; done
orphans=$(pgrep -P "$PID_e2e_exec" || true) # the remote sleep outlives a SIGKILLed daemon
stop_ppcpd e2e-exec KILL
for p in $orphans; do kill -KILL "$p" 2>/dev/null || true; done
set +e
timeout 10 tail --pid="$cpid" -f /dev/null
wait "$cpid"
rc=$?
set -e
if [ "$rc" -eq 255 ]; then ok "a server killed mid-command: exit 255"; else fail "server killed: exit $rc"; fi
if grep -Eq "lost before the command finished|ended the session before the command finished" "$TMP/d.err"; then
	ok "and it is reported"
else
	fail "server killed: message"
	show "$TMP/d.err"
fi

# A restarted server is found again; a server stopping with SIGTERM is reported.
start_ppcpd e2e-exec 127.0.0.1 "$PORT" --allow-exec 'sh,true' --state-dir "$TMP/pd-state"
run pc exec e2e-exec -- true
expect_rc "after the restart the server is reached again" 0
# Files of their own: the previous case's d.out already says "started", and
# the loop below could read it before this command's redirection empties it.
"$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" \
	exec e2e-exec -- sh -c 'echo started; exec sleep 20.$$' >"$TMP/t.out" 2>"$TMP/t.err" </dev/null &
cpid=$!
for _ in $(seq 1 300); do grep -q started "$TMP/t.out" 2>/dev/null && break; sleep 0.1; done
stop_ppcpd e2e-exec TERM
set +e
timeout 10 tail --pid="$cpid" -f /dev/null
wait "$cpid"
rc=$?
set -e
if [ "$rc" -ne 0 ] && grep -Eq "before the command finished|was killed|exit" "$TMP/t.err"; then
	ok "a server stopped mid-command (SIGTERM) is reported (exit $rc)"
else
	fail "server stopped: exit $rc"
	show "$TMP/t.err"
fi

finish
