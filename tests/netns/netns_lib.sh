# netns_lib.sh - sourced by the tests of tests/netns: network namespaces
# that the test creates itself and deletes on exit, a bridge in a namespace
# of its own, and endpoints attached to it by veth pairs whose both ends are
# created inside namespaces (nothing appears in the root namespace).
#
#   netns_require           SKIP (exit 0) unless root, ip(8), PPCP, PPCPD and
#                           a namespace can be created; sets P, a name prefix
#   mkns NAME               a namespace with lo up and no IPv6 DAD
#   netns_bridge NAME       a namespace holding the bridge br0 (no snooping)
#   netns_attach NS BR N    eth0 in NS, its peer vN on BR's br0, both up
#   netns_cleanup           kill what runs in them, delete them all
#
# After sourcing tests/e2e/cli_lib.sh set EXTRA_CLEANUP=netns_cleanup (its
# exit trap then calls it).

NSES=()

skip() {
	echo "SKIP: $*"
	exit 0
}

netns_require() {
	[ "$(id -u)" -eq 0 ] || skip "not root: network namespaces need root"
	command -v ip >/dev/null 2>&1 || skip "ip(8) (iproute2) is not installed"
	[ -n "${PPCP:-}" ] && [ -x "${PPCP:-}" ] || skip "ppcp is not built (PPCP unset)"
	[ -n "${PPCPD:-}" ] && [ -x "${PPCPD:-}" ] || skip "ppcpd is not built (PPCPD unset)"
	P=${P:-ppt$$}
	if ! ip netns add "${P}probe" 2>/dev/null; then
		skip "cannot create a network namespace here (ip netns add failed)"
	fi
	ip netns del "${P}probe"
}

netns_cleanup() {
	local ns pid
	for ns in "${NSES[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
	done
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

mkns() {
	ip netns add "$1"
	NSES+=("$1")
	ip -n "$1" link set lo up
	# No duplicate address detection: link-local addresses are usable at
	# once.
	ip netns exec "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_dad=0
}

netns_bridge() {
	mkns "$1"
	ip -n "$1" link add br0 type bridge
	ip -n "$1" link set br0 type bridge mcast_snooping 0
	ip -n "$1" link set br0 up
}

netns_attach() { # netns_attach NS BRIDGE_NS N
	# Both ends are created inside namespaces: nothing appears in ours.
	ip link add eth0 netns "$1" type veth peer name "v$3" netns "$2"
	ip -n "$2" link set "v$3" master br0
	ip -n "$2" link set "v$3" up
}
