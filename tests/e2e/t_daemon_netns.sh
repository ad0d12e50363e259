#!/usr/bin/env bash
# t_daemon_netns.sh - ppcpd on wildcard addresses (its defaults, 0.0.0.0:9000
# and [::]:9000) answers broadcast PINGs and joins the discovery multicast
# groups 239.255.80.67 and ff02::5050 on every interface; on a unicast
# address it joins nothing.
#
# Network safety: wildcard listeners join multicast groups, and the PINGs
# here are broadcast and multicast, so everything runs in a network namespace
# of its own (unshare -n) whose only interfaces are lo and a veth pair with
# both ends inside: nothing can leave.  Without the privilege to create one
# the test says SKIP.
set -euo pipefail

if [ -z "${PPCPD_IN_NETNS:-}" ]; then
	if ! unshare -n true 2>/dev/null; then
		echo "SKIP: cannot create a network namespace (unshare -n needs root)"
		exit 0
	fi
	PPCPD_IN_NETNS=1 exec unshare -n -- bash "$0" "$@"
fi

source "$(dirname "$0")/daemon_lib.sh"

# The namespace: lo, and v0 <-> v1 with IPv6 link-local addresses only.
ip link set lo up
ip link set lo multicast on
# No duplicate address detection: link-local addresses at once.
echo 0 >/proc/sys/net/ipv6/conf/all/accept_dad
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
ip link add v0 type veth peer name v1
ip link set v0 up
ip link set v1 up
for _ in $(seq 1 300); do
	[ "$(ip -6 addr show scope link | grep -c 'inet6 fe80')" -ge 2 ] && break
	sleep 0.1
done
check "the namespace has only lo, v0 and v1" \
	test "$(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')" = "lo v0 v1 "

# mping DEST PORT - one padded PING to DEST (IPv4 unicast, broadcast or
# multicast from lo; or IPv6 multicast ADDR%IFACE); prints "PONG <id>" or
# "no PONG".
mping() {
	timeout 10 python3 - "$1" "$2" <<'EOF'
import json, socket, sys
dest, port = sys.argv[1], int(sys.argv[2])
p = {"i": "ns000001", "p": {"client_id": "t", "hostname": "t", "pad": "", "version": "1"},
     "s": 0, "t": "PING", "v": 1}
n = len(json.dumps(p, separators=(",", ":")))
p["p"]["pad"] = "0" * (512 - n)
ping = json.dumps(p, separators=(",", ":")).encode()
if "%" in dest:
    addr, _, ifname = dest.partition("%")
    idx = socket.if_nametoindex(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
    s.sendto(ping, (addr, port, 0, idx))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.sendto(ping, (dest, port))
s.settimeout(1.0)
try:
    data, src = s.recvfrom(2048)
    print("PONG", json.loads(data)["p"]["server_id"])
except socket.timeout:
    print("no PONG")
EOF
}

# -- the defaults: wildcard addresses, port 9000 ---------------------------------
LOG=$TMP/wild.log
: >"$LOG"
timeout 120 "$PPCPD" --psk-file "$TMP/psk" --state-dir "$TMP/st" --server-id ns-wild \
	--log-level debug >"$LOG" 2>&1 &
TPID=$!
PIDS+=("$TPID")
check "listening on 0.0.0.0:9000" wait_log "listening on 0\.0\.0\.0:9000 " 10
check "and on [::]:9000" wait_log "listening on \[::\]:9000 " 10
DPID=$(children "$TPID" | head -n1)
expect_in "joined 239.255.80.67" "joined 239\.255\.80\.67 on lo" "$LOG"
expect_in "joined ff02::5050 on v0" "joined ff02::5050 on v0" "$LOG"
expect_in "joined ff02::5050 on v1" "joined ff02::5050 on v1" "$LOG"

check "a unicast PING is answered" test "$(mping 127.0.0.1 9000)" = "PONG ns-wild"
check "a broadcast PING (127.255.255.255) is answered" test "$(mping 127.255.255.255 9000)" = "PONG ns-wild"
check "a PING to 239.255.80.67 is answered" test "$(mping 239.255.80.67 9000)" = "PONG ns-wild"
check "a PING to ff02::5050 on v0 is answered" test "$(mping ff02::5050%v0 9000)" = "PONG ns-wild"
check "a PING to ff02::5050 on v1 is answered" test "$(mping ff02::5050%v1 9000)" = "PONG ns-wild"
PORT=9000
run tc handshake
expect_rc "a session through the wildcard listener" 0
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0

# -- a unicast address: no group joined, no broadcast or multicast answered -------
start_daemon uni --server-id ns-uni
expect_not_in "no group joined on a unicast address" "joined" "$LOG"
check "a unicast PING is answered" test "$(mping 127.0.0.1 "$PORT")" = "PONG ns-uni"
check "a PING to 239.255.80.67 is not" test "$(mping 239.255.80.67 "$PORT")" = "no PONG"
stop_daemon TERM
finish
