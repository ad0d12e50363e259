#!/usr/bin/env bash
# t_discovery.sh - discovery and name resolution of ppcp across network
# namespaces, with the CLI's real defaults (broadcast and multicast, port
# 9000, no --discover-addr): that is only ever done here, inside
# namespaces this test creates, never in the root namespace.
#
# Topology (10.77.0.0/24 exists only inside the namespaces):
#
#   <p>br  a namespace of its own holding the bridge br0 (no snooping)
#   <p>c   the client,  eth0 10.77.0.10/24, IPv6 link-local
#   <p>s1  ns-one,      eth0 10.77.0.11/24, ppcpd on 0.0.0.0:9000
#   <p>s2  ns-two,      eth0 10.77.0.12/24, ppcpd on 0.0.0.0:9000
#   <p>s6  ns-six,      eth0 IPv6 link-local only, ppcpd on [::]:9000
#   <p>s4  ns-four,     eth0 10.77.0.14/24, broadcast and multicast dropped
#                       (an nftables or iptables rule in the namespace; else
#                       ppcpd listens on its unicast address, to which Linux
#                       delivers no broadcast)
#
# Each endpoint has a veth pair created directly in its namespace and the
# bridge's.  Checks: discovery by real broadcast lists ns-one and ns-two
# (path broadcast) and ns-six (path multicast), not ns-four; a targeted
# PING; exec, doctor, exec --all; ns-one's address changes (ip addr del/add,
# ppcpd restarted) and `ppcp exec ns-one` still reaches it silently; the
# IPv6-only host by link-local multicast, then from the cache; ns-four
# found only by `discover --scan 10.77.0.0/24`, then used through a literal
# address and the cache.  Every namespace (and so every veth and the
# bridge) is deleted on exit, failure or not.
#
# Needs root and `ip netns`; otherwise prints "SKIP: <reason>" and passes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

. "$HERE/netns_lib.sh"
netns_require

. "$HERE/../e2e/cli_lib.sh"
EXTRA_CLEANUP=netns_cleanup

BR=${P}br
C=${P}c
S1=${P}s1
S2=${P}s2
S6=${P}s6
S4=${P}s4
netns_bridge "$BR"
n=0
for ns in "$C" "$S1" "$S2" "$S6" "$S4"; do
	mkns "$ns"
	n=$((n + 1))
	netns_attach "$ns" "$BR" "$n"
done
# No default route anywhere: broadcast reaches the servers through the
# directed broadcast address 10.77.0.255 of the client's interface.
ip -n "$C" addr add 10.77.0.10/24 brd + dev eth0
ip -n "$S1" addr add 10.77.0.11/24 brd + dev eth0
ip -n "$S2" addr add 10.77.0.12/24 brd + dev eth0
ip -n "$S4" addr add 10.77.0.14/24 brd + dev eth0
for ns in "$C" "$S1" "$S2" "$S6" "$S4"; do
	ip -n "$ns" link set eth0 up
done
for _ in $(seq 1 300); do
	if ip -n "$S6" -6 addr show dev eth0 scope link | grep -q fe80 &&
		ip -n "$C" -6 addr show dev eth0 scope link | grep -q fe80; then
		break
	fi
	sleep 0.1
done

# Broadcast (and multicast) dropped in ns-four.
S4_LISTEN=0.0.0.0:9000
# PPCP_TEST_FIREWALL=none tries the last fallback even where nft exists.
if [ "${PPCP_TEST_FIREWALL:-}" != none ] && command -v nft >/dev/null 2>&1 &&
	ip netns exec "$S4" nft -f - <<'EOF' 2>/dev/null; then
table inet ppcptest {
	chain input {
		type filter hook input priority 0; policy accept;
		meta pkttype { broadcast, multicast } udp dport 9000 drop
	}
}
EOF
	DROP="an nftables rule in its namespace"
elif [ "${PPCP_TEST_FIREWALL:-}" != none ] && command -v iptables >/dev/null 2>&1 &&
	ip netns exec "$S4" iptables -A INPUT -p udp --dport 9000 -m pkttype --pkt-type broadcast -j DROP 2>/dev/null &&
	ip netns exec "$S4" iptables -A INPUT -p udp --dport 9000 -m pkttype --pkt-type multicast -j DROP 2>/dev/null; then
	DROP="an iptables rule in its namespace"
else
	S4_LISTEN=10.77.0.14:9000
	DROP="ppcpd bound to its unicast address (no usable nftables or iptables)"
fi
echo "ns-four drops broadcast: $DROP"

newpsk "$TMP/psk"

# ns_ppcpd NS NAME LISTEN [OPTIONS...] - ppcpd inside NS.
ns_ppcpd() {
	local ns=$1 name=$2 listen=$3 log pid dpid=
	shift 3
	log=$TMP/ppcpd-$name.log
	: >"$log"
	ip netns exec "$ns" timeout 300 "$PPCPD" --psk-file "$TMP/psk" --listen "$listen" \
		--server-id "$name" --allow-exec '*' --state-dir "$TMP/state-$name" \
		--log-level debug "$@" >"$log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	for _ in $(seq 1 300); do
		dpid=$(pgrep -P "$pid" | head -1 || true)
		if [ -n "$dpid" ] && grep -q listening "$log"; then
			PIDS+=("$dpid")
			eval "PID_${name//-/_}=$dpid"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "ppcpd $name did not start in $ns:"
	sed 's/^/    /' "$log"
	return 1
}
ns_ppcpd "$S1" ns-one 0.0.0.0:9000
ns_ppcpd "$S2" ns-two 0.0.0.0:9000
ns_ppcpd "$S6" ns-six '[::]:9000'
ns_ppcpd "$S4" ns-four "$S4_LISTEN"
sleep 0.3 # multicast joins

# nsrun ARGS... - ppcp in the client namespace with its defaults: no
# --discover-addr, no PPCP_DISCOVER_ADDR, port 9000.
nsrun() {
	set +e
	ip netns exec "$C" env -u PPCP_DISCOVER_ADDR PPCP_PSK_FILE="$TMP/psk" HOME="$HOME" \
		XDG_STATE_HOME="$XDG_STATE_HOME" timeout 60 "$PPCP" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	RC=$?
	set -e
}
CACHE=$XDG_STATE_HOME/ppcp/servers.json
cache_first() { # cache_first ID - the first cached address of ID
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][sys.argv[2]]["addresses"][0])' "$CACHE" "$1" 2>/dev/null || true
}

nsrun discover
expect_rc "discover by real broadcast and multicast" 0
expect_in "ns-one answers the broadcast" "^ns-one +[^ ]+ +10\.77\.0\.11 +9000 .* broadcast$" out
expect_in "ns-two answers the broadcast" "^ns-two +[^ ]+ +10\.77\.0\.12 +9000 .* broadcast$" out
expect_in "the IPv6-only ns-six answers the link-local multicast" "^ns-six +[^ ]+ +fe80:[0-9a-f:]+%eth0 +9000 .* multicast$" out
if ! grep -q '^ns-four ' "$TMP/out"; then ok "ns-four, which drops broadcast, does not answer"; else fail "ns-four answered a broadcast"; show "$TMP/out"; fi
nsrun discover --json
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); ids=sorted(x["server_id"] for x in d); assert ids==["ns-one","ns-six","ns-two"], ids' "$TMP/out"; then
	ok "discover --json lists the two servers with different ids and the IPv6 one"
else
	fail "discover --json"
	show "$TMP/out"
fi

nsrun discover --target ns-two
if [ "$RC" -eq 0 ] && grep -q '^ns-two ' "$TMP/out" && [ "$(grep -c '^ns-' "$TMP/out")" -eq 1 ]; then
	ok "a targeted PING: only ns-two answers"
else
	fail "targeted PING"
	show "$TMP/out" "$TMP/err"
fi

nsrun exec ns-one -- echo hello
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = hello ]; then ok "exec ns-one by broadcast"; else fail "exec ns-one: rc $RC"; show "$TMP/err"; fi
[ "$(cache_first ns-one)" = 10.77.0.11 ] && ok "the cache remembers 10.77.0.11" || fail "cache: $(cache_first ns-one)"
nsrun doctor ns-one
expect_rc "doctor ns-one" 0
expect_in "doctor walks every step" "^\[ok\] +policy" out
nsrun exec --all -- echo fleet
expect_rc "exec --all over the namespaces" 0
expect_in "summary" "^3 ok, 0 failed$" err

# ns-one's address changes.
# ppcpd is timeout's child, not ours (`wait` returned at once): until it is
# gone, it holds 0.0.0.0:9000 and the restart below could not bind.
stop_ppcpd ns-one TERM
ip -n "$S1" addr del 10.77.0.11/24 dev eth0
ip -n "$S1" addr add 10.77.0.21/24 brd + dev eth0
ns_ppcpd "$S1" ns-one 0.0.0.0:9000
start=$(date +%s%N)
nsrun exec ns-one -- echo moved
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = moved ]; then ok "after its address changed, exec ns-one still works (${ms} ms)"; else fail "exec after the move: rc $RC"; show "$TMP/out" "$TMP/err"; fi
expect_empty "and says nothing about it" err
[ "$(cache_first ns-one)" = 10.77.0.21 ] && ok "the cache now says 10.77.0.21" || fail "cache after the move: $(cache_first ns-one)"
nsrun -v exec ns-one -- true
expect_in "the next exec goes straight to the cached address" "connected to ns-one at 10\.77\.0\.21 .*\(cached\)" err

# The IPv6-only host.
nsrun exec ns-six -- echo six
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = six ]; then ok "exec on the IPv6-only host (link-local multicast)"; else fail "exec ns-six: rc $RC"; show "$TMP/err"; fi
case "$(cache_first ns-six)" in
fe80:*%eth0) ok "its link-local address (with scope) is cached" ;;
*) fail "ns-six cache: $(cache_first ns-six)" ;;
esac
nsrun -v exec ns-six -- true
expect_in "and used next time" "connected to ns-six at fe80:.*\(cached\)" err

# Broadcast dropped: found by the TCP scan only.
nsrun discover --target ns-four --timeout 0.5
expect_rc "ns-four does not answer a broadcast PING" 255
nsrun discover --scan 10.77.0.0/24 --timeout 3
expect_in "discover --scan finds ns-four over TCP" "^ns-four +[^ ]+ +10\.77\.0\.14 +9000 .* tcp$" out
nsrun discover --scan 10.0.0.0/16
expect_rc "a scan larger than a /24 is refused" 255
nsrun exec 10.77.0.14 -- echo four
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = four ]; then ok "exec on ns-four through its literal address"; else fail "exec 10.77.0.14: rc $RC"; show "$TMP/err"; fi
nsrun exec ns-four -- echo four-by-name
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/out")" = four-by-name ]; then ok "then by its server_id, from the cache"; else fail "exec ns-four: rc $RC"; show "$TMP/err"; fi
nsrun --discover-addr 10.77.0.14 discover
expect_in "a unicast PING still reaches ns-four" "^ns-four .* unicast$" out

finish
