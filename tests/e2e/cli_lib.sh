# cli_lib.sh - sourced by the tests of the ppcp CLI (tests/e2e/t_cli_*.sh,
# tests/netns/t_*.sh): a temporary directory with its own HOME and
# XDG_STATE_HOME (so the address cache is the test's own), daemons started
# with `timeout` and killed on exit, and check helpers that count results.
#
# Network safety: on loopback every ppcp call goes through `pc`, which
# always passes --discover-addr (PPCP_DISCOVER_ADDR, 127.0.0.1 unless the
# test says otherwise), so no broadcast or multicast PING ever leaves.
#
# Environment: PPCP (the ppcp binary, required), PPCPD (the daemon; tests
# that need it print SKIP and pass when it is not built).

: "${PPCP:?set PPCP to the ppcp binary}"

TMP=$(mktemp -d /tmp/ppcp-cli.XXXXXX)
export HOME=$TMP/home XDG_STATE_HOME=$TMP/state
mkdir -p "$HOME"
unset PPCP_PSK_FILE
DISCOVER=${PPCP_DISCOVER_ADDR:-127.0.0.1}
unset PPCP_DISCOVER_ADDR
PIDS=()
passes=0
fails=0
EXTRA_CLEANUP=

. "$(dirname "${BASH_SOURCE[0]}")/proc_lib.sh" # ours, stop_ours

cleanup() {
	stop_ours 0.2
	if [ -n "$EXTRA_CLEANUP" ]; then
		$EXTRA_CLEANUP || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

need_ppcpd() {
	if [ -z "${PPCPD:-}" ] || [ ! -x "${PPCPD:-}" ]; then
		echo "SKIP: ppcpd is not built (PPCPD unset): nothing to test against"
		exit 0
	fi
}

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
		sed 's/^/    /' "$f" 2>/dev/null | head -40 || true
	done
}

# run [-i INPUT] CMD... - run CMD under `timeout` with stdout and stderr in
# $TMP/out and $TMP/err; its exit status in RC.  `run pc ARGS` is ppcp with
# the test's PSK, port and discovery address.
run() {
	local input=/dev/null
	if [ "$1" = "-i" ]; then
		input=$2
		shift 2
	fi
	if [ "$1" = "pc" ]; then
		shift
		set -- "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" "$@"
	fi
	set +e
	timeout 60 "$@" <"$input" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
}

# pc ARGS... - ppcp with the test's PSK and port, PINGing only $DISCOVER.
pc() {
	"$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr "$DISCOVER" "$@"
}

# expect DESCRIPTION RC - check the last run's exit status.
expect_rc() {
	if [ "$RC" -eq "$2" ]; then
		ok "$1 (exit $RC)"
	else
		fail "$1: exit $RC, wanted $2"
		show "$TMP/out" "$TMP/err"
	fi
}
# expect_out DESCRIPTION PATTERN FILE - grep -E PATTERN in out or err.
expect_in() {
	if grep -Eq -- "$2" "$TMP/$3"; then
		ok "$1"
	else
		fail "$1: no /$2/ in std$3"
		show "$TMP/out" "$TMP/err"
	fi
}
expect_empty() {
	if [ ! -s "$TMP/$2" ]; then
		ok "$1"
	else
		fail "$1: std$2 is not empty"
		show "$TMP/$2"
	fi
}

newpsk() { "$PPCP" -q keygen "$1"; }

# start_ppcpd NAME ADDR PORT [OPTIONS...] - run ppcpd (server_id NAME, or
# $SERVER_ID; PSK $SERVER_PSK, else the test's)
# listening on ADDR:PORT (TCP and UDP); waits until it listens.  Returns 1
# if it did not start (the port may be taken: the caller picks another).
start_ppcpd() {
	local name=$1 addr=$2 port=$3 log
	shift 3
	log=$TMP/ppcpd-$name.log
	: >"$log"
	timeout 300 "$PPCPD" --psk-file "${SERVER_PSK:-$TMP/psk}" --listen "$addr:$port" \
		--server-id "${SERVER_ID:-$name}" --log-level info "$@" >"$log" 2>&1 &
	local pid=$! dpid=
	PIDS+=("$pid")
	for _ in $(seq 1 300); do
		# The daemon itself is timeout's child: signals in the tests
		# (KILL especially) must reach it, not the wrapper.
		dpid=$(pgrep -P "$pid" | head -1 || true)
		if [ -n "$dpid" ] && grep -q "listening" "$log"; then
			PIDS+=("$dpid")
			eval "PID_${name//-/_}=$dpid"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "ppcpd $name did not start:"
	sed 's/^/    /' "$log"
	return 1
}

stop_ppcpd() { # stop_ppcpd NAME [SIGNAL]
	local v="PID_${1//-/_}"
	local pid=${!v:-}
	if [ -n "$pid" ]; then
		kill "-${2:-TERM}" "$pid" 2>/dev/null || true
		for _ in $(seq 1 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}

# random_port - a port for a daemon, below the kernel's ephemeral range when
# there is room: tests restart daemons on the same port, and a port of that
# range can be taken in between by any connection on the machine (and stays
# taken for a minute in TIME_WAIT, which blocks the bind even with
# SO_REUSEADDR).
random_port() {
	local lo=32768
	{ read -r lo _ </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || lo=32768
	if [ "$lo" -gt 21024 ]; then
		echo $((20000 + RANDOM % (lo - 20000)))
	else
		echo $((20000 + RANDOM % 40000))
	fi
}

finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
}
