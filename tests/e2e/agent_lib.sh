# agent_lib.sh - sourced after cli_lib.sh by the tests of agent mode that
# run one controller for the whole test (t_agent_put.sh, t_agent_files.sh,
# t_agent_relay_backpressure.sh).  Network safety: the controller listens
# on 127.0.0.1 only and the agents PING 127.0.0.1 only (--discover-addr).

# start_controller SERVER_ID [PPCPD OPTIONS...] - ppcpd --accept-agents on
# 127.0.0.1 (a free port), the test's PSK in $TMP/psk, its control socket
# $TMP/ctl/control.sock, its log $TMP/d.log.  Sets CTL, PORT, TPID (the
# `timeout` around it), DPID (ppcpd) and CTL_SERVER_ID; exits the test
# when it does not start.
start_controller() {
	CTL_SERVER_ID=$1
	shift
	CTL=$TMP/ctl/control.sock
	mkdir -m 700 "$TMP/ctl"
	timeout 300 "$PPCPD" --psk-file "$TMP/psk" --listen 127.0.0.1:0 --server-id "$CTL_SERVER_ID" \
		--state-dir "$TMP" --accept-agents --control "$CTL" "$@" >"$TMP/d.log" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	for _ in $(seq 1 300); do grep -q 'control socket' "$TMP/d.log" && break; sleep 0.1; done
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$TMP/d.log" | head -1)
	[ -n "$PORT" ] || { echo "controller did not start"; show "$TMP/d.log"; exit 1; }
	DPID=$(pgrep -P "$TPID" | head -1)
	PIDS+=("$DPID")
}

# start_agent ID ROOT LOG [OPTIONS...] - `ppcp agent` for the controller,
# client_id ID, file root ROOT, output in LOG: sets APID.
start_agent() {
	local id=$1 root=$2 log=$3
	shift 3
	"$PPCP" agent --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 \
		--server-id "$CTL_SERVER_ID" --client-id "$id" --file-root "$root" "$@" >"$log" 2>&1 &
	APID=$!
	PIDS+=("$APID")
}

# wait_agent ID SECONDS - until `ppcp agents` lists ID (1 if it does not).
wait_agent() {
	for _ in $(seq 1 $(($2 * 5))); do
		"$PPCP" agents --json --control "$CTL" 2>/dev/null | grep -q "\"$1\"" && return 0
		sleep 0.2
	done
	return 1
}
