#!/usr/bin/env bash
# t_daemon_config.sh - ppcpd's options and configuration file: every error
# is one line that names the flag or key and says what to do, with exit 2;
# PSK problems exit 1 naming the file (adversarial T46); flags win over the
# file; the server_id is generated once and kept; core dumps are off
# (adversarial T47).
source "$(dirname "$0")/daemon_lib.sh"

# bad CONFIG-FILE-TEXT-or-- PATTERN ARGS... : ppcpd must refuse to start
# with exactly one line on stderr matching PATTERN, and exit 2.
bad() {
	local desc=$1 text=$2 pattern=$3
	shift 3
	local args=(--psk-file "$TMP/psk" --listen 127.0.0.1:0 --state-dir "$TMP/st")
	if [ "$text" != "-" ]; then
		printf '%s\n' "$text" >"$TMP/bad.conf"
		args+=(--config "$TMP/bad.conf")
	fi
	set +e
	timeout 10 "$PPCPD" "${args[@]}" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	RC=$?
	set -e
	if [ "$RC" -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -Eq -- "$pattern" "$TMP/err" &&
		[ ! -s "$TMP/out" ]; then
		ok "$desc: $(cat "$TMP/err")"
	else
		fail "$desc: exit $RC (wanted 2), stderr:"
		show "$TMP/err" "$TMP/out"
	fi
}

bad "unknown flag" - "^ppcpd: --frobnicate: unknown option: see ppcpd --help$" --frobnicate
bad "an argument that is not an option" - "^ppcpd: stray: unexpected argument" stray
bad "a PSK on the command line" - "^ppcpd: --psk: a PSK is never taken from the command line" --psk=00112233
bad "flag without its value" - "^ppcpd: --max-commands: needs a value" --max-commands
bad "not a number" - "^ppcpd: --max-commands: 'lots' is not a whole number: give a whole number from 1 to 1024" --max-commands lots
bad "out of range" - "^ppcpd: --command-timeout: '0' is out of range: give a whole number from 1 to 86400 \(seconds\)" --command-timeout 0
bad "negative" - "^ppcpd: --max-sessions: '-5' is not a whole number" --max-sessions -5
bad "bad size" - "^ppcpd: --max-output: '12Q' is not a size" --max-output 12Q
bad "bad log level" - "^ppcpd: --log-level: 'loud' is not a log level: use error, warn, info or debug" --log-level loud
bad "bad boolean" - "^ppcpd: --allow-shell: 'maybe' is not a boolean: use true or false" --allow-shell=maybe
bad "listen without port" - "^ppcpd: --listen: '127.0.0.1' has no port" --listen 127.0.0.1
bad "listen with a host name" - "^ppcpd: --listen: 'localhost:9000' has no valid IPv4 address" --listen localhost:9000
bad "IPv6 without brackets" - "^ppcpd: --listen: '::1:9000' is an IPv6 address without brackets" --listen ::1:9000
bad "port out of range" - "^ppcpd: --listen: '127.0.0.1:70000' has no valid port" --listen 127.0.0.1:70000
bad "listen twice" - "is listed twice" --listen 127.0.0.1:9 --listen 127.0.0.1:9
bad "bad server id" - "^ppcpd: --server-id: 'bad id!' is not a valid server id: use 1 to 64 characters" --server-id 'bad id!'
bad "'*' mixed with names" - "^ppcpd: --allow-exec: .*mixes '\*' with program names" --allow-exec 'ls,*'
bad "empty program name" - "^ppcpd: --allow-exec: 'ls,,cat' has an empty program name" --allow-exec 'ls,,cat'
bad "heartbeat not below idle-timeout" - "^ppcpd: heartbeat: 20000 ms is not shorter than idle-timeout \(15000 ms\)" --heartbeat 20000 --idle-timeout 15000
bad "file-root that does not exist" - "^ppcpd: file-root: '$TMP/nope' is not a directory" --file-root "$TMP/nope"
bad "allow-put without file-root" - "^ppcpd: allow-put: uploads need a directory: set file-root too" --allow-put
bad "missing config file" - "^ppcpd: --config $TMP/none.conf: cannot open the file \(No such file or directory\)" --config "$TMP/none.conf"
bad "a flag given twice" - "^ppcpd: --max-commands: given twice: keep one" --max-commands 3 --max-commands 4

bad "unknown key" $'# comment\nmax-commands = 4\nfrobnicate = 1' "^ppcpd: $TMP/bad.conf:3: unknown key 'frobnicate': see ppcpd.conf\(5\)"
bad "bad value in the file" $'max-output = lots' "^ppcpd: $TMP/bad.conf:1: max-output: 'lots' is not a size"
bad "unknown section" $'[server]\nlisten = 127.0.0.1:1' "^ppcpd: $TMP/bad.conf:2: listen: section \[server\] is not known"
bad "not key = value" $'just-a-word' "^ppcpd: $TMP/bad.conf:1: not a 'key = value' line"
bad "a PSK in the file" $'psk = 0011' "^ppcpd: $TMP/bad.conf:1: psk: a PSK is never written in the configuration"
bad "a key twice in the file" $'max-commands = 3\nmax-commands = 4' "^ppcpd: $TMP/bad.conf:2: max-commands: given twice: keep one"

# -- help and version --------------------------------------------------------
run timeout 10 "$PPCPD" --help
expect_rc "--help" 0
expect_in "--help lists the options" "--allow-exec" "$TMP/out"
run timeout 10 "$PPCPD" --version
expect_rc "--version" 0
expect_in "--version" '^ppcpd [0-9]+\.[0-9]+\.[0-9]+' "$TMP/out"

# -- PSK files: exit 1, one line naming the file and the fix -------------------
psk_bad() { # psk_bad DESCRIPTION PATTERN FILE
	run timeout 10 "$PPCPD" --psk-file "$3" --listen 127.0.0.1:0 --state-dir "$TMP/st"
	if [ "$RC" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -Eq -- "$2" "$TMP/err"; then
		ok "$1: $(cat "$TMP/err")"
	else
		fail "$1: exit $RC"
		show "$TMP/err"
	fi
}
psk_bad "no PSK file" "^ppcpd: cannot use the PSK file $TMP/none: cannot open the PSK file: No such file or directory: create one with 'ppcp keygen FILE'" "$TMP/none"
cp "$TMP/psk" "$TMP/psk644"
chmod 644 "$TMP/psk644"
psk_bad "PSK readable by others" "^ppcpd: cannot use the PSK file $TMP/psk644: PSK file is readable or writable by group or others" "$TMP/psk644"
(umask 077 && printf '0011' >"$TMP/pskshort")
psk_bad "PSK too short" "^ppcpd: cannot use the PSK file $TMP/pskshort: PSK file must hold exactly 64 hex characters" "$TMP/pskshort"
(umask 077 && printf '%064d' 0 >"$TMP/pskzero")
psk_bad "PSK all zeros" "PSK is all zeros" "$TMP/pskzero"
ln -s "$TMP/psk" "$TMP/psklink"
psk_bad "PSK through a symlink" "PSK file is a symlink or not a regular file" "$TMP/psklink"
run env PPCP_PSK_FILE="$TMP/none-env" timeout 10 "$PPCPD" --listen 127.0.0.1:0 --state-dir "$TMP/st"
expect_in "without --psk-file: \$PPCP_PSK_FILE" "PSK file $TMP/none-env:" "$TMP/err"

# -- the configuration file, and flags over it ----------------------------------
cat >"$TMP/good.conf" <<EOF
# ppcpd.conf for this test
[ppcpd]
psk-file = $TMP/psk
listen = 127.0.0.1:0
server-id = from-file
state-dir = $TMP/st-good
allow-exec = echo, true
max-commands = 3
log-level = debug
EOF
LOG=$TMP/good.log
: >"$LOG"
timeout 60 "$PPCPD" --config "$TMP/good.conf" --allow-exec sh --server-id from-flag >"$LOG" 2>&1 &
TPID=$!
PIDS+=("$TPID")
# The policy lines come last (after "listening on" and "started").
wait_log "policy: (file transfer off|file-root )" 10 || true
PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
DPID=$(children "$TPID" | head -n1)
check "started from the file" test -n "$PORT"
expect_in "the flag's server-id wins" "server_id 'from-flag'" "$LOG"
expect_in "the flag's allow-exec replaces the file's list" "allow-exec 'sh'," "$LOG"
expect_in "the file's max-commands is kept" "max-commands 3," "$LOG"
run tc exec -- echo hi
expect_rc "echo is no longer allowed" 100
run tc exec -- sh -c 'echo ok'
expect_rc "sh is" 0

# -- the example configuration is valid (its listen list replaced: loopback only) --
ex="$(dirname "$0")/../../contrib/ppcpd.conf.example"
run timeout 3 "$PPCPD" --config "$ex" --psk-file "$TMP/psk" --listen 127.0.0.1:0 --state-dir "$TMP/st-ex"
expect_in "contrib/ppcpd.conf.example is accepted" "info policy: allow-exec 'uptime,df,free,journalctl'" "$TMP/err"

# -- core dumps off (T47) ----------------------------------------------------------
check "RLIMIT_CORE is 0" grep -Eq '^Max core file size +0 +0 ' "/proc/$DPID/limits"
check "the process is not dumpable (its /proc files belong to root)" \
	test "$(stat -c %u "/proc/$DPID/environ")" = 0
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0

# -- server_id generated once, kept in the state directory ------------------------
start_daemon gen
id1=$(sed -n "s/.*server_id '\([^']*\)'.*/\1/p" "$LOG" | head -n1)
check "a server_id was generated: '$id1'" grep -Eq '^[A-Za-z0-9._-]{1,57}-[0-9a-f]{6}$' <<<"$id1"
check "and stored" test "$(cat "$TMP/state-gen/server-id")" = "$id1"
stop_daemon TERM
start_daemon gen
id2=$(sed -n "s/.*server_id '\([^']*\)'.*/\1/p" "$LOG" | head -n1)
check "the next start reuses it" test "$id2" = "$id1"
run tc status
expect_in "status reports it" "\"server_id\":\"$id1\"" "$TMP/out"
stop_daemon TERM

mkdir -p "$TMP/ro"
printf 'bad id with spaces\n' >"$TMP/ro/server-id"
run timeout 10 "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 --state-dir "$TMP/ro"
expect_rc "an invalid stored server id" 1
expect_in "says what to do" "does not hold a valid server id .*: delete it to get a new one, or pass --server-id ID" "$TMP/err"

# -- listening on a port in use: one line, exit 1 -----------------------------------
start_daemon busy
run timeout 10 "$PPCPD" --psk-file "$TMP/psk" --listen "127.0.0.1:$PORT" --state-dir "$TMP/st2"
expect_rc "a port in use" 1
expect_in "names the address and the fix" "cannot listen on 127.0.0.1:$PORT: address already in use: another program \(another ppcpd\?\) uses this port" "$TMP/err"
stop_daemon TERM

finish
