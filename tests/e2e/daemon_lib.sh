# daemon_lib.sh - sourced by ppcpd's end-to-end tests (tests/e2e/t_daemon_*.sh).
#
# Each test gets its own temporary directory, PSK and state directory; the
# daemon listens on 127.0.0.1 with port 0 (a free port, read from its log),
# so tests can run in parallel.  Everything started is bounded by `timeout`
# and killed on exit.  Network safety: only 127.0.0.0/8 is ever a target;
# ppcpd is never started on a wildcard address here (that would join the
# discovery multicast groups on the real interfaces).
#
# Environment: PPCPD (the daemon, required); ppcpd_testclient is taken from
# the same directory; PPCP (the CLI) when built.  Tools: coreutils, awk,
# python3, and iproute2 + util-linux for the namespace test; not procps.

set -euo pipefail

: "${PPCPD:?set PPCPD to the ppcpd binary}"
TC=${PPCPD_TESTCLIENT:-$(dirname "$PPCPD")/ppcpd_testclient}
[ -x "$TC" ] || { echo "FAIL: $TC is not built"; exit 1; }

TMP=$(mktemp -d /tmp/ppcpd-test.XXXXXX)
PIDS=()
passes=0
fails=0
DPID=
PORT=
LOG=

. "$(dirname "${BASH_SOURCE[0]}")/proc_lib.sh" # ours, stop_ours

cleanup() {
	stop_ours 0.3
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() {
	echo "ok: $1"
	passes=$((passes + 1))
}
fail() {
	echo "FAIL: $1"
	fails=$((fails + 1))
}
show() { # show FILE... - print files after a failure
	local f
	for f in "$@"; do
		echo "--- $f"
		tail -n 40 "$f" 2>/dev/null | sed 's/^/    /' || true
	done
}
finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
}

# check DESCRIPTION CMD... - ok if CMD succeeds.
check() {
	local d=$1
	shift
	if "$@"; then
		ok "$d"
	else
		fail "$d"
		# Not "[ -n "$LOG" ] && show": false without a LOG, it made the
		# failed check abort the test under set -e.
		if [ -n "$LOG" ]; then show "$LOG"; fi
	fi
}

newpsk() { # newpsk FILE - 32 random bytes as 64 hex characters, mode 0600
	(umask 077 && head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
}
newpsk "$TMP/psk"

# start_daemon NAME [OPTIONS...] - start ppcpd on 127.0.0.1, port 0, with
# the test's PSK and a state directory of its own; sets DPID (ppcpd's pid),
# TPID (the pid of the `timeout` around it), PORT and LOG.  Returns once
# the last start-up line (the policy) is logged: "listening on" comes
# before the control socket, the "started: server_id" line and the policy.
start_daemon() {
	local name=$1
	shift
	LOG=$TMP/$name.log
	: >"$LOG"
	timeout 600 "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 \
		--state-dir "$TMP/state-$name" --log-level debug "$@" >"$LOG" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	PORT=
	DPID=
	for _ in $(seq 1 600); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
		if [ -n "$PORT" ] && grep -Eq "policy: (file transfer off|file-root )" "$LOG"; then
			DPID=$(children "$TPID" | head -n1)
			PIDS+=("$DPID")
			return 0
		fi
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "ppcpd $name did not start:"
	show "$LOG"
	return 1
}

# stop_daemon [SIGNAL] - signal the daemon, wait for it (at most 10 s); its
# exit status in DRC.
stop_daemon() {
	DRC=
	kill "-${1:-TERM}" "$DPID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$TPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null || true
	fi
	set +e
	wait "$TPID" 2>/dev/null
	DRC=$?
	set -e
}

# tc ARGS... - the test client against the daemon, bounded.  To run one
# in the background whose pid is the client's own, use "$TC" $TCARGS.
tc() {
	timeout 120 "$TC" --psk-file "$TMP/psk" --port "$PORT" "$@"
}

# run CMD... - run CMD with stdout and stderr in $TMP/out and $TMP/err; its
# exit status in RC.  Standard input is /dev/null unless RUN_IN names a file.
run() {
	set +e
	"$@" <"${RUN_IN:-/dev/null}" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
}

expect_rc() { # expect_rc DESCRIPTION WANT
	if [ "$RC" -eq "$2" ]; then
		ok "$1 (exit $RC)"
	else
		fail "$1: exit $RC, wanted $2"
		show "$TMP/out" "$TMP/err" "$LOG"
	fi
}
expect_in() { # expect_in DESCRIPTION PATTERN FILE - grep -E in a file
	if grep -Eq -- "$2" "$3"; then
		ok "$1"
	else
		fail "$1: no /$2/ in $3"
		show "$3"
	fi
}
expect_not_in() {
	if grep -Eq -- "$2" "$3"; then
		fail "$1: /$2/ found in $3"
		show "$3"
	else
		ok "$1"
	fi
}

# wait_log PATTERN [SECONDS] - wait until the daemon's log matches.
wait_log() {
	local n=$((${2:-10} * 20))
	for _ in $(seq 1 "$n"); do
		grep -Eq -- "$1" "$LOG" && return 0
		sleep 0.05
	done
	return 1
}

# wait_log_more PATTERN N [SECONDS] - wait until more than N lines of the
# daemon's log match: N is the count before the event, for a pattern that
# lines of earlier events match too.
wait_log_more() {
	local n=$((${3:-10} * 20))
	for _ in $(seq 1 "$n"); do
		[ "$(grep -Ec -- "$1" "$LOG" || true)" -gt "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# eventually SECONDS CMD... - CMD, tried again every 0.05 s until it
# succeeds or SECONDS have passed.  For what must follow an event soon (a
# killed process gone, a child reaped, a descriptor closed): one look after
# a fixed sleep can come too early on a loaded machine or under ASan.
eventually() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# Conditions for eventually.
no_proc() { [ -z "$(procs_matching "$1")" ]; }  # no_proc TEXT
no_children() { [ -z "$(children "$1")" ]; }    # no_children PID
no_zombies() { [ "$(zombies "$1")" -eq 0 ]; }   # no_zombies PID
fds_are() { [ "$(fd_count "$1")" -eq "$2" ]; }  # fds_are PID N

# fd_count PID - number of open descriptors of a process.
fd_count() { ls "/proc/$1/fd" | wc -l; }

# children PID - the direct children of a process.
children() {
	local d
	for d in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$d/stat" 2>/dev/null)" = "$1" ] && basename "$d"
	done
	return 0
}

# zombies PID - how many of its children are zombies.
zombies() {
	local n=0 c
	for c in $(children "$1"); do
		[ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" = "Z" ] && n=$((n + 1))
	done
	echo "$n"
}

# procs_matching TEXT - pids whose command line contains TEXT (as pgrep -f,
# without needing procps).  ^TEXT: whose command line starts with TEXT (the
# command itself, not a client whose arguments quote it: the client of
# `exec -- sleep N` holds "sleep N" too, from before its session exists).
procs_matching() {
	local d cmd
	for d in /proc/[0-9]*; do
		[ "${d#/proc/}" = "$BASHPID" ] && continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		case "$1" in
		^*) case "$cmd" in "${1#^}"*) echo "${d#/proc/}" ;; esac ;;
		*) case "$cmd" in *"$1"*) echo "${d#/proc/}" ;; esac ;;
		esac
	done
	return 0
}
