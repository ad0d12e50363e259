#!/usr/bin/env bash
# t_faults_io.sh - read and write system calls failing inside the real
# programs (adversarial.md T45), through tests/e2e/failio.c preloaded into
# one program at a time (PPCP_FAILIO_PROG).  For each scenario the N-th call
# fails, for N = 1, 2, 3, ... until the call is no longer reached (the
# library logs each fault that fires, so a sweep cannot pass without
# faults).  Whatever call fails, the program must either succeed with the
# right result (the failed call was one it can do without, such as the
# address cache) or stop with exit 255 and one line on stderr that says what
# failed, and leave no file under the final name.  Nothing crashes, no
# sanitizer reports, and the daemon keeps serving.
#
#   ppcp:  get with the local file's writes failing (EIO, ENOSPC, and a disk
#          that stays full), its fsync, rename and open failing; put with
#          the local file's reads and opens failing; exec with socket reads
#          and writes failing, socket() and connect() failing; get with
#          the local file's close failing and connect() failing.
#   ppcpd: socket reads, socket writes, file reads (get), file writes (put,
#          and a disk that stays full), fsync and rename (put), open (get,
#          put, exec), openat2 (get, put), accept, close (get, put), and
#          socketpair, pipe2 and fork (exec), one daemon per N; socket() at
#          start-up.  Faults fire in the program itself, not in its forks.
#
# Environment: PPCP, PPCPD, FAILIO (the preload library).  Loopback only.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
need_ppcpd
if [ -z "${FAILIO:-}" ] || [ ! -f "$FAILIO" ]; then
	echo "SKIP: FAILIO (tests/e2e/failio.c built as failio.so) is not set"
	exit 0
fi
# The sanitizer runtime need not come first when a library is preloaded.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

MAXN=${FAILIO_MAXN:-40} # a bound on every sweep
LAST_ERR=
newpsk "$TMP/psk"
ROOT=$TMP/root
mkdir -p "$ROOT" "$TMP/w"
head -c 700000 /dev/urandom >"$ROOT/f"
head -c 500000 /dev/urandom >"$TMP/up"

sanitizer_clean() { # sanitizer_clean FILE... - no sanitizer report in them
	! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$@" 2>/dev/null
}

# one_line_error WHAT - the last run failed as it should: exit 255, and one
# line of ppcp's own on stderr, starting with "ppcp:" (lines that start with
# "ppcpd:" are the remote command's stderr, relayed: ppcpd's own account of
# a failure on its side).
one_line_error() {
	local lines
	lines=$(grep -vc '^ppcpd: ' "$TMP/err" || true)
	LAST_ERR=$(grep -v '^ppcpd: ' "$TMP/err" || true)
	if [ "$RC" -eq 255 ] && [ "$lines" -eq 1 ] && grep -q '^ppcp: ' "$TMP/err"; then
		return 0
	fi
	fail "$1: exit $RC with $lines line(s) on stderr"
	show "$TMP/err"
	return 1
}

# faulty CMD... - run CMD (ppcp with the test's PSK and port) with the fault
# $SPEC in ppcp only.  Sets RC; stdout/stderr in $TMP/out, $TMP/err.
faulty() {
	run env LD_PRELOAD="$FAILIO" PPCP_FAILIO_PROG=ppcp PPCP_FAILIO="$SPEC" \
		PPCP_FAILIO_LOG="$TMP/fired" "$PPCP" --psk-file "$TMP/psk" --port "$PORT" \
		--discover-addr "$DISCOVER" "$@"
}

# fired - did the fault of the last run fire?  (and forget it)
fired() {
	if [ -s "$TMP/fired" ]; then
		rm -f "$TMP/fired"
		return 0
	fi
	return 1
}

# ---- ppcp, against a healthy daemon -------------------------------------
for _ in 1 2 3 4 5; do
	PORT=$(random_port)
	if start_ppcpd io-ok 127.0.0.1 "$PORT" --file-root "$ROOT" --allow-put \
		--allow-exec echo --state-dir "$TMP/pd-state"; then
		break
	fi
	stop_ppcpd io-ok KILL
done
T=127.0.0.1:$PORT

# sweep_client NAME CHECK ARGS... - for N = 1.. run `ppcp ARGS` with the
# fault $OP:N:$ERR:$KIND and call CHECK after each run that fired.
sweep_client() {
	local name=$1 check=$2 n hits=0 bad=0
	shift 2
	LAST_ERR=
	for n in $(seq 1 "$MAXN"); do
		SPEC="$OP:$n:$ERR:$KIND${STICKY:+:sticky}"
		PRE_RUN
		faulty "$@"
		fired || break
		hits=$((hits + 1))
		sanitizer_clean "$TMP/err" || { fail "$name N=$n: sanitizer report"; show "$TMP/err"; bad=1; }
		$check "$name N=$n" || bad=1
	done
	if [ "$hits" -ge "$MAXN" ]; then
		fail "$name: still failing calls at N=$MAXN: raise FAILIO_MAXN"
	elif [ "$hits" -ge 1 ] && [ "$bad" -eq 0 ]; then
		ok "$name: $hits faults, each a clean success or one clean error${LAST_ERR:+; the last: $LAST_ERR}"
	elif [ "$hits" -eq 0 ]; then
		fail "$name: the fault never fired ($SPEC)"
	fi
	HITS=$hits
}

PRE_RUN() { rm -rf "$TMP/w"/* "$TMP/w"/.[!.]* 2>/dev/null || true; }

# get: the local file's writes fail.  A failed get leaves nothing under
# the final name; a get that reports success has the right bytes.
check_get() {
	if [ "$RC" -eq 0 ]; then
		cmp -s "$ROOT/f" "$TMP/w/f" && return 0
		fail "$1: exit 0 but the file differs"
		return 1
	fi
	one_line_error "$1" || return 1
	if [ -e "$TMP/w/f" ]; then
		fail "$1: a file under the final name after a failed get"
		return 1
	fi
}
OP=write KIND=file
for ERR in EIO ENOSPC; do
	sweep_client "get, local write $ERR" check_get get "$T:f" "$TMP/w/"
done
ERR=ENOSPC STICKY=1
sweep_client "get, local disk full from write N on" check_get get "$T:f" "$TMP/w/"
STICKY=
case $LAST_ERR in
*"disk full"*) ok "a full disk is named as such: $LAST_ERR" ;;
*) fail "a full disk is not named: $LAST_ERR" ;;
esac

# get: syncing, renaming (the sidecar, then the final name) and opening fail.
OP=sync KIND=file ERR=EIO
sweep_client "get, local fsync EIO" check_get get "$T:f" "$TMP/w/"
OP=rename KIND=any ERR=EIO
sweep_client "get, local rename EIO" check_get get "$T:f" "$TMP/w/"
OP=open KIND=any ERR=EMFILE
sweep_client "get, local open EMFILE" check_get get "$T:f" "$TMP/w/"
# Closing the local file fails (on NFS, say, close reports a write that
# failed): an error like any other write error, nothing under the final name.
OP=close KIND=file ERR=EIO
sweep_client "get, local close EIO" check_get get "$T:f" "$TMP/w/"

# put: the local file's reads fail.  Nothing under the final name on the
# server unless the put succeeded, and then the bytes are right.
PRE_RUN() { rm -f "$ROOT/up"; }
check_put() {
	if [ "$RC" -eq 0 ]; then
		cmp -s "$TMP/up" "$ROOT/up" && return 0
		fail "$1: exit 0 but the uploaded file differs"
		return 1
	fi
	one_line_error "$1" || return 1
	if [ -e "$ROOT/up" ]; then
		fail "$1: a file under the final name on the server after a failed put"
		return 1
	fi
}
OP=read KIND=file ERR=EIO
sweep_client "put, local read EIO" check_put put "$TMP/up" "$T:up"
OP=open KIND=any ERR=EMFILE
sweep_client "put, local open EMFILE" check_put put "$TMP/up" "$T:up"

# exec: the socket's reads or writes fail.
PRE_RUN() { :; }
check_exec() {
	if [ "$RC" -eq 0 ]; then
		[ "$(cat "$TMP/out")" = "hi" ] && return 0
		fail "$1: exit 0 but the output is '$(cat "$TMP/out")'"
		return 1
	fi
	# ppcpd could not read the command's output: it stops the command
	# (128 + SIGTERM) and says so; ppcp warns that the output is
	# incomplete.  Never a 0.
	if [ "$RC" -gt 128 ] && [ "$RC" -lt 255 ] &&
		grep -q '^ppcpd: reading the command' "$TMP/err" &&
		[ "$(grep -c '^ppcp: .*output is incomplete' "$TMP/err")" -eq 1 ]; then
		return 0
	fi
	one_line_error "$1"
}
KIND=sock
for OP in read write; do
	for ERR in EIO ECONNRESET ENOMEM; do
		sweep_client "exec, socket $OP $ERR" check_exec exec "$T" -- echo hi
	done
done
# exec and get: creating the socket or connecting fails.
OP=socket KIND=any ERR=EMFILE
sweep_client "exec, socket() EMFILE" check_exec exec "$T" -- echo hi
OP=connect KIND=sock
for ERR in ECONNREFUSED ENETUNREACH ETIMEDOUT; do
	sweep_client "exec, connect $ERR" check_exec exec "$T" -- echo hi
done
PRE_RUN() { rm -rf "$TMP/w"/* "$TMP/w"/.[!.]* 2>/dev/null || true; }
OP=connect KIND=sock ERR=ECONNREFUSED
sweep_client "get, connect ECONNREFUSED" check_get get "$T:f" "$TMP/w/"
stop_ppcpd io-ok

# ---- ppcpd, one daemon per fault --------------------------------------
# start_faulty SPEC - ppcpd with the fault, its stderr through a pipe (so
# that its log lines are not file writes); 0 when it listens, 1 when it
# exited (then $TMP/pd.log says why), 2 when it neither listened nor exited.
start_faulty() {
	local try st
	for try in 1 2 3 4 5; do
		st=0
		start_faulty_once "$1" || st=$?
		# A random port that is taken: another one.
		if [ "$st" -eq 1 ] && grep -q "address already in use" "$TMP/pd.log"; then
			reap_faulty
			continue
		fi
		return "$st"
	done
	return "$st"
}
start_faulty_once() {
	rm -f "$TMP/fired" "$TMP/pd.fifo"
	: >"$TMP/pd.log"
	# Its stderr through a FIFO (its log lines are then not file writes),
	# read by a cat that reap_faulty waits for: pd.log is complete then.
	mkfifo "$TMP/pd.fifo"
	cat "$TMP/pd.fifo" >>"$TMP/pd.log" &
	CATPID=$!
	PORT=$(random_port)
	timeout 120 env LD_PRELOAD="$FAILIO" PPCP_FAILIO_PROG=ppcpd PPCP_FAILIO="$1" \
		PPCP_FAILIO_LOG="$TMP/fired" "$PPCPD" --psk-file "$TMP/psk" \
		--listen "127.0.0.1:$PORT" --server-id io-faulty --log-level info --file-root "$ROOT" \
		--allow-put --allow-exec echo --state-dir "$TMP/pd-state" \
		2>"$TMP/pd.fifo" >/dev/null &
	DPID=$! # killed by stop_faulty, or at exit by EXTRA_CLEANUP (not kept in PIDS)
	for _ in $(seq 1 100); do
		grep -q "listening" "$TMP/pd.log" && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 2
}
# reap_faulty - wait for the daemon (which has exited or been signalled):
# its exit status in RC_D; then for the cat that copies its stderr.
reap_faulty() {
	RC_D=0
	if [ -n "${DPID:-}" ]; then
		wait "$DPID" 2>/dev/null || RC_D=$?
	fi
	DPID=
	if [ -n "${CATPID:-}" ]; then
		wait "$CATPID" 2>/dev/null || true
	fi
	CATPID=
}
stop_faulty() {
	if [ -n "${DPID:-}" ]; then
		kill -TERM "$DPID" 2>/dev/null || true
	fi
	reap_faulty
}
EXTRA_CLEANUP=stop_faulty

# sweep_daemon NAME SPEC-PREFIX ACTION CHECK - for N = 1.., a daemon with
# the fault PREFIX:N...; ACTION runs the client work, CHECK judges it; then
# a healthy request must still be served by the same daemon.
sweep_daemon() {
	local name=$1 op=$2 kind=$3 err=$4 action=$5 check=$6 n hits=0 bad=0 st
	LAST_ERR=
	for n in $(seq "${FIRST_N:-1}" "$MAXN"); do
		st=0
		start_faulty "$op:$n:$err:$kind${STICKY:+:sticky}" || st=$?
		if [ "$st" -eq 2 ]; then
			fail "$name N=$n: ppcpd neither listened nor exited"
			bad=1
			stop_faulty
			continue
		fi
		if [ "$st" -eq 1 ]; then
			# It failed at start-up (reading its PSK file, say): that
			# must be one clear line and exit 1.
			local rc
			reap_faulty
			rc=$RC_D
			# Before its log is set up ppcpd prints a bare line;
			# after, one error line (and "shutting down" at info).
			# A sanitizer report also exits 1: none may be there.
			if fired && [ "$rc" -eq 1 ] && sanitizer_clean "$TMP/pd.log" &&
				{ [ "$(grep -c . "$TMP/pd.log")" -eq 1 ] ||
					[ "$(grep -Ec ' (error|warn) ' "$TMP/pd.log")" -eq 1 ]; }; then
				continue
			fi
			fail "$name N=$n: ppcpd exited $rc at start-up"
			show "$TMP/pd.log"
			bad=1
			continue
		fi
		T=127.0.0.1:$PORT
		$action
		if ! fired; then
			# Call N is beyond what the request makes: the sweep is over.
			stop_faulty
			break
		fi
		hits=$((hits + 1))
		sanitizer_clean "$TMP/err" || { fail "$name N=$n: sanitizer report in ppcp"; bad=1; }
		$check "$name N=$n" || bad=1
		# The daemon goes on serving, whatever failed.
		if ! kill -0 "$DPID" 2>/dev/null; then
			fail "$name N=$n: ppcpd died"
			show "$TMP/pd.log"
			bad=1
		else
			run pc exec "$T" -- echo again
			if [ "$RC" -ne 0 ] || [ "$(cat "$TMP/out")" != again ]; then
				fail "$name N=$n: ppcpd does not serve after the fault (exit $RC)"
				show "$TMP/err" "$TMP/pd.log"
				bad=1
			fi
		fi
		stop_faulty
		sanitizer_clean "$TMP/pd.log" || { fail "$name N=$n: sanitizer report in ppcpd"; show "$TMP/pd.log"; bad=1; }
	done
	if [ "$n" -ge "$MAXN" ]; then
		fail "$name: the sweep reached N=$MAXN without running out of calls: raise FAILIO_MAXN"
	elif [ "$hits" -ge 1 ] && [ "$bad" -eq 0 ]; then
		ok "$name: $hits faults; every request ended in a clean success or one clean error, and ppcpd went on${LAST_ERR:+; the last: $LAST_ERR}"
	elif [ "$hits" -eq 0 ] && [ "$bad" -eq 0 ]; then
		fail "$name: the fault never fired during the requests"
	fi
}

act_exec() { run pc exec "$T" -- echo hi; }
act_get() { rm -rf "$TMP/w"/* "$TMP/w"/.[!.]* 2>/dev/null || true; run pc get "$T:f" "$TMP/w/"; }
act_put() { rm -f "$ROOT/up"; run pc put "$TMP/up" "$T:up"; }

for OP in read write; do
	sweep_daemon "ppcpd socket $OP EIO (exec)" $OP sock EIO act_exec check_exec
done
sweep_daemon "ppcpd file read EIO (get)" read file EIO act_get check_get
sweep_daemon "ppcpd file write EIO (put)" write file EIO act_put check_put
sweep_daemon "ppcpd fsync EIO (put)" sync file EIO act_put check_put
sweep_daemon "ppcpd rename EIO (put)" rename any EIO act_put check_put
sweep_daemon "ppcpd open EMFILE (get)" open any EMFILE act_get check_get
sweep_daemon "ppcpd open EMFILE (put)" open any EMFILE act_put check_put
sweep_daemon "ppcpd open EMFILE (exec)" open any EMFILE act_exec check_exec
sweep_daemon "ppcpd accept EMFILE (exec)" accept any EMFILE act_exec check_exec
# What uv_spawn needs to start a command: its pipes and the fork.
sweep_daemon "ppcpd socketpair EMFILE (exec)" socketpair any EMFILE act_exec check_exec
# The first pipe2 of all is libuv's own one-time set-up of its signal
# handling, which calls abort() when it fails (libuv's choice, before any
# code of ours runs): checked to be that, then the sweep starts at call 2.
st=0
start_faulty "pipe2:1:EMFILE:any" || st=$?
rc=0
if [ "$st" -eq 1 ]; then
	reap_faulty
	rc=$RC_D
fi
if [ "$st" -eq 1 ] && fired && [ "$rc" -eq 134 ]; then
	ok "ppcpd pipe2 EMFILE N=1: libuv's one-time signal set-up aborts (exit 134), as libuv does; not ours to change"
else
	fail "ppcpd pipe2 EMFILE N=1: expected libuv's abort at start-up, got start status $st, exit $rc"
	show "$TMP/pd.log"
	stop_faulty
fi
FIRST_N=2 sweep_daemon "ppcpd pipe2 EMFILE (start-up, exec)" pipe2 any EMFILE act_exec check_exec
sweep_daemon "ppcpd fork EAGAIN (exec)" fork any EAGAIN act_exec check_exec
# openat2 resolves every path under the root (its first call, at
# start-up, checks that it works).
sweep_daemon "ppcpd openat2 EMFILE (get)" openat2 any EMFILE act_get check_get
sweep_daemon "ppcpd openat2 EACCES (put)" openat2 any EACCES act_put check_put
# close: ppcpd closes a download's file after reading it and an upload's
# after fsync and rename, so an error there loses nothing and is not
# reported; these sweeps show that a failed close is no crash, no double
# close and no lost descriptor (the daemon serves on).
sweep_daemon "ppcpd close EIO (get)" close file EIO act_get check_get
sweep_daemon "ppcpd close EIO (put)" close file EIO act_put check_put

# socket() fails while ppcpd starts (its listeners, its discovery socket):
# one line and exit 1, or, if it can do without that socket, it serves.
hits=0 bad=0
for n in $(seq 1 "$MAXN"); do
	st=0
	start_faulty "socket:$n:EMFILE:any" || st=$?
	if [ "$st" -eq 1 ]; then
		reap_faulty
		rc=$RC_D
		# One error line (then the usual "shutting down" at info level),
		# and no sanitizer report (which exits 1 too).
		if fired && [ "$rc" -eq 1 ] && sanitizer_clean "$TMP/pd.log" &&
			[ "$(grep -Ec ' (error|warn) ' "$TMP/pd.log")" -eq 1 ] &&
			! grep -q "ip addr" "$TMP/pd.log"; then
			hits=$((hits + 1))
			LAST_ERR=$(grep -E ' error ' "$TMP/pd.log")
			continue
		fi
		fail "ppcpd socket() EMFILE N=$n: exit $rc at start-up"
		show "$TMP/pd.log"
		bad=1
		continue
	fi
	if [ "$st" -eq 2 ]; then
		fail "ppcpd socket() EMFILE N=$n: ppcpd neither listened nor exited"
		bad=1
		stop_faulty
		continue
	fi
	T=127.0.0.1:$PORT
	run pc exec "$T" -- echo hi
	if ! fired; then
		stop_faulty
		break
	fi
	hits=$((hits + 1))
	if [ "$RC" -ne 0 ] || [ "$(cat "$TMP/out")" != hi ]; then
		fail "ppcpd socket() EMFILE N=$n: it listens but does not serve (exit $RC)"
		show "$TMP/err" "$TMP/pd.log"
		bad=1
	fi
	stop_faulty
	sanitizer_clean "$TMP/pd.log" || { fail "ppcpd socket() EMFILE N=$n: sanitizer report"; bad=1; }
done
if [ "$hits" -ge 1 ] && [ "$bad" -eq 0 ] && [ "$n" -lt "$MAXN" ]; then
	ok "ppcpd socket() EMFILE at start-up: $hits faults, each one line and exit 1 or a daemon that serves${LAST_ERR:+; the last: $LAST_ERR}"
elif [ "$bad" -eq 0 ]; then
	fail "ppcpd socket() EMFILE at start-up: $hits faults over N=1..$n"
fi
STICKY=1
sweep_daemon "ppcpd disk full from write N on (put)" write file ENOSPC act_put check_put
STICKY=
case $LAST_ERR in
*"disk full"* | *"space"*) ok "the client hears that the server's disk is full: $LAST_ERR" ;;
*) fail "the client is not told that the server's disk is full: $LAST_ERR" ;;
esac
# No temporary file of a failed upload is left under a name a user sees
# (the last put of the last sweep, past the faults, succeeded).
cmp -s "$TMP/up" "$ROOT/up" && rm -f "$ROOT/up"
left=$(ls -A "$ROOT")
visible=$(grep -v '^f$' <<<"$left" | grep -v '^\.' || true)
if [ -n "$visible" ]; then
	fail "files left in the root: $(tr '\n' ' ' <<<"$left")"
else
	ok "nothing but hidden resumable temp files in the root: $(tr '\n' ' ' <<<"$left")"
fi

finish
