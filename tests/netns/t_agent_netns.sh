#!/usr/bin/env bash
# t_agent_netns.sh - agent mode with real broadcast discovery, across
# network namespaces this test creates (and deletes on exit): the agent
# runs without --discover-addr, so its PINGs are broadcast, which is only
# ever done here, inside the namespaces.
#
# Topology (10.78.0.0/24 exists only inside the namespaces):
#
#   <p>br  a namespace of its own holding the bridge br0
#   <p>c   the controller, eth0 10.78.0.1/24: ppcpd --accept-agents on
#          0.0.0.0:9000, control socket in the test's temporary directory
#   <p>a   the agent, eth0 10.78.0.20/24, then 10.78.0.21/24:
#          ppcp agent --client-id ag-ns --allow-exec hostname
#
# Checks: `ppcp agents` (in the controller's namespace, --control PATH)
# lists the agent from 10.78.0.20; exec @ag-ns -- hostname; the agent's
# address changes (ip addr del/add): within 15 s the controller lists it
# again, from 10.78.0.21 only, and exec @ag-ns -- hostname still works.
#
# Needs root and `ip netns`; otherwise prints "SKIP: <reason>" and passes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

. "$HERE/netns_lib.sh"
P=ppa$$
netns_require

. "$HERE/../e2e/cli_lib.sh"
EXTRA_CLEANUP=netns_cleanup

BR=${P}br
C=${P}c
A=${P}a
netns_bridge "$BR"
mkns "$C"
netns_attach "$C" "$BR" 1
mkns "$A"
netns_attach "$A" "$BR" 2
ip -n "$C" addr add 10.78.0.1/24 brd + dev eth0
ip -n "$A" addr add 10.78.0.20/24 brd + dev eth0
ip -n "$C" link set eth0 up
ip -n "$A" link set eth0 up

"$PPCP" -q keygen "$TMP/psk"
mkdir -m 700 "$TMP/ctl"
CTL=$TMP/ctl/control.sock
inc() { ip netns exec "$C" "$@"; }

# Everything under timeout; the trap kills what is left, and deleting the
# namespaces kills the rest (netns_cleanup).
inc timeout 120 "$PPCPD" --psk-file "$TMP/psk" --listen 0.0.0.0:9000 --server-id ctl-ns \
	--state-dir "$TMP" --accept-agents --control "$CTL" --log-level debug >"$TMP/c.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q 'control socket' "$TMP/c.log" && break; sleep 0.1; done
grep -q 'control socket' "$TMP/c.log" || { echo "the controller did not start"; show "$TMP/c.log"; exit 1; }

# No --discover-addr and no PPCP_DISCOVER_ADDR: real broadcast, in here.
ip netns exec "$A" env -u PPCP_DISCOVER_ADDR timeout 120 "$PPCP" agent --psk-file "$TMP/psk" \
	--client-id ag-ns --allow-exec hostname --log-level debug >"$TMP/a.log" 2>&1 &
PIDS+=("$!")

agents() { inc timeout 10 "$PPCP" agents --json --control "$CTL" 2>/dev/null || true; }
wait_listed() { # wait_listed ADDRESS SECONDS: the agent listed from ADDRESS only
	local t0=$SECONDS out
	while [ $((SECONDS - t0)) -lt "$2" ]; do
		out=$(agents)
		if echo "$out" | grep -q '"ag-ns"' && echo "$out" | grep -q "\"$1:" &&
			[ "$(echo "$out" | grep -c '"client_id"')" = 1 ]; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# 1. found by broadcast, listed
if wait_listed 10.78.0.20 15; then ok "the agent found the controller by broadcast: listed from 10.78.0.20"; else
	fail "the agent is not listed within 15 s"; agents; show "$TMP/c.log" "$TMP/a.log"; fi
out=$(inc timeout 10 "$PPCP" agents --control "$CTL" 2>&1) || true
echo "$out" | grep -q '^ag-ns .*10\.78\.0\.20:' && ok "ppcp agents: the table" || { fail "ppcp agents table"; echo "$out"; }
grep -q 'broadcast\|found at 10\.78\.0\.1' "$TMP/a.log" && ok "the agent's log: controller found at 10.78.0.1" ||
	{ fail "no discovery in the agent's log"; show "$TMP/a.log"; }
run ip netns exec "$C" "$PPCP" exec --control "$CTL" @ag-ns -- hostname
[ "$RC" = 0 ] && [ "$(cat "$TMP/out")" = "$(hostname)" ] && ok "exec @ag-ns -- hostname" ||
	{ fail "exec @ag-ns (rc $RC)"; show "$TMP/out" "$TMP/err"; }

# 2. the agent's address changes
ip -n "$A" addr del 10.78.0.20/24 dev eth0
ip -n "$A" addr add 10.78.0.21/24 brd + dev eth0
t0=$(date +%s%N)
if wait_listed 10.78.0.21 15; then
	ok "after the address change: listed again from 10.78.0.21 (only) in $((($(date +%s%N) - t0) / 1000000)) ms"; else
	fail "not listed from 10.78.0.21 within 15 s"; agents; show "$TMP/c.log" "$TMP/a.log"; fi
run ip netns exec "$C" "$PPCP" exec --control "$CTL" @ag-ns -- hostname
[ "$RC" = 0 ] && [ "$(cat "$TMP/out")" = "$(hostname)" ] && ok "exec @ag-ns -- hostname after the change" ||
	{ fail "exec @ag-ns after the change (rc $RC)"; show "$TMP/out" "$TMP/err" "$TMP/a.log"; }
run ip netns exec "$C" "$PPCP" exec --control "$CTL" @ag-ns -- id
[ "$RC" = 255 ] && grep -q "not allowed" "$TMP/err" && ok "the agent's policy still applies (id refused)" ||
	{ fail "policy (rc $RC)"; show "$TMP/err"; }

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
