#!/usr/bin/env bash
# t_daemon_exec.sh - COMMAND exec/shell/status/stdin/cancel against the real
# ppcpd (PROTOCOL.md §8.4, §8.6; adversarial T33, T40): output, exit status,
# signals, stdin, spawn failures, every refusal and its message.
source "$(dirname "$0")/daemon_lib.sh"

printf '#!/bin/sh\necho never\n' >"$TMP/noexec"
chmod 644 "$TMP/noexec"
start_daemon exec --allow-exec "echo,sh,cat,sleep,true,/bin/false,nonexistent-prog-xyz,$TMP/noexec" \
	--max-commands 2

# -- output and status ----------------------------------------------------
run tc exec -- echo hello world
expect_rc "exec echo" 0
expect_in "stdout arrives" '^hello world$' "$TMP/out"

run tc --result "$TMP/res" exec -- sh -c 'echo to-out; echo to-err >&2; exit 7'
expect_rc "exit status 7 comes back" 7
expect_in "stdout kept apart" '^to-out$' "$TMP/out"
expect_in "stderr kept apart" '^to-err$' "$TMP/err"
expect_in "final RESPONSE" '"done":true,"exit":7,"signal":null,"timed_out":false,"truncated":false' "$TMP/res"

run tc --result "$TMP/res" exec -- sh -c 'kill -KILL $$'
expect_rc "killed by a signal: 128+9" 137
expect_in "final RESPONSE names the signal" '"exit":null,"signal":9' "$TMP/res"

run tc exec -- /bin/false
expect_rc "an absolute path on the allow-list" 1

# Output larger than one RESPONSE comes in chunks of at most 64 KiB (the
# client checks each chunk), all of it, in order.
run tc exec -- sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $i of the output"; i=$((i+1)); done'
expect_rc "long output" 0
check "every line arrived in order" test "$(sed -n '3000p' "$TMP/out")" = "line 2999 of the output"

# -- stdin ----------------------------------------------------------------
head -c 300000 /dev/urandom >"$TMP/in.bin"
RUN_IN=$TMP/in.bin run tc exec --stdin -- cat
RUN_IN=
expect_rc "stdin through cat" 0
check "300000 bytes of stdin came back unchanged" cmp -s "$TMP/in.bin" "$TMP/out"

run tc exec -- cat
expect_rc "without stdin: /dev/null, cat ends at once" 0
check "nothing read" test ! -s "$TMP/out"

# -- status -----------------------------------------------------------------
run tc status
expect_rc "status" 0
expect_in "status shape" '"done":true,"status":\{"hostname":"[A-Za-z0-9._-]+","load":\[[0-9.e+-]+,[0-9.e+-]+,[0-9.e+-]+\],"server_id":"[A-Za-z0-9._-]+","uptime":[0-9]+,"version":"[0-9.]+"\}' "$TMP/out"

# -- refusals (nothing runs) ------------------------------------------------
run tc exec -- rm -rf "$TMP/never"
expect_rc "exec of a program not on the list is refused" 100
expect_in "the refusal names the program and the option" "ERROR unauthorized: exec of 'rm' is not allowed \(allow-exec\)" "$TMP/err"

run tc exec -- "echo hi; touch $TMP/pwned"
expect_rc "shell metacharacters in argv[0] are not a shell (T40)" 100
check "no shell ran" test ! -e "$TMP/pwned"

run tc exec -- echo "a; touch $TMP/pwned2"
expect_rc "metacharacters in arguments are plain text" 0
expect_in "echo printed them" "^a; touch" "$TMP/out"
check "no shell ran for arguments" test ! -e "$TMP/pwned2"

run tc exec -- /tmp/echo
expect_rc "a path ending in an allowed bare name is refused (PROTOCOL.md §8.6)" 100

run tc sh 'echo from a shell'
expect_rc "shell without allow-shell is refused" 100
expect_in "the refusal names allow-shell" 'ERROR unauthorized: .*\(allow-shell\)' "$TMP/err"

# -- spawn failures: as a shell would ---------------------------------------
run tc --result "$TMP/res" exec -- nonexistent-prog-xyz
expect_rc "a program that does not exist: 127" 127
expect_in "one stderr line says so" "nonexistent-prog-xyz: command not found" "$TMP/err"
expect_in "exit 127 in the final RESPONSE" '"done":true,"exit":127,"signal":null' "$TMP/res"
run tc exec -- "$TMP/noexec"
expect_rc "a file that is not executable: 126" 126
expect_in "one stderr line says why" "noexec: cannot execute: permission denied" "$TMP/err"

# -- protocol-level checks ----------------------------------------------------
run tc send COMMAND '{"name":"frobnicate","args":{}}'
expect_in "unknown command name" '^ERROR same-id \{"code":"unknown-command"' "$TMP/out"

run tc send COMMAND '{"name":"exec","args":{"argv":[]}}'
expect_in "empty argv" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send COMMAND '{"name":"exec","args":{"argv":["echo"],"timeout":0}}'
expect_in "timeout 0" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send COMMAND '{"name":"exec","args":{"argv":["echo",7]}}'
expect_in "a number in argv" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send COMMAND '{"name":"exec","args":{"argv":["echo"],"stdin":"yes"}}'
expect_in "stdin not a boolean" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send COMMAND '{"name":"stdin","args":{"of":"nope","data":"aGk=","eof":true}}'
expect_in "stdin for no running command" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send COMMAND '{"name":"cancel","args":{"of":"nope"}}'
expect_in "cancel of no running command" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"

run tc send FILE_REQUEST '{"path":"/etc/passwd","offset":0}'
expect_in "file transfer is not enabled" '^ERROR same-id \{"code":"unauthorized","message":"file transfer is not enabled on this server \(file-root\)"\}' "$TMP/out"

run tc send RESPONSE '{"done":true}'
expect_in "an unsolicited RESPONSE (T33)" '^ERROR same-id \{"code":"unauthorized"' "$TMP/out"

run tc send FILE_CHUNK '{"offset":0,"data":""}'
expect_in "an unsolicited FILE_CHUNK (T33)" '^ERROR same-id \{"code":"unauthorized"' "$TMP/out"

# -- cancel -------------------------------------------------------------------
run tc --result "$TMP/res" exec --cancel-after 300 -- sleep 30
expect_rc "cancel kills the command (SIGTERM)" 143
expect_in "final RESPONSE after cancel" '"signal":15' "$TMP/res"

# -- max-commands (2 here): a third command at once is rate-limited ----------
run tc parallel 3 -- sleep 1
expect_in "two run, the third is refused" '^parallel: 3 sent, 2 exited 0, 1 rate-limited$' "$TMP/out"
expect_in "the refusal names max-commands" 'ERROR rate-limited: .*\(max-commands\)' "$TMP/err"
run tc parallel 2 -- sleep 0.2
expect_in "the slots are free again afterwards" '^parallel: 2 sent, 2 exited 0, 0 rate-limited$' "$TMP/out"

check "the daemon is alive" kill -0 "$DPID"
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
expect_not_in "no secret in the log" "$(cat "$TMP/psk")" "$LOG"
finish
