#!/usr/bin/env bash
# t_authed_storm.sh - an authenticated but hostile client (tests/e2e/storm.py,
# on the independent Python implementation) sends ppcpd a bounded storm of
# random session messages: requests with wrong types and out-of-range
# numbers, hostile paths (.., absolute, symbolic links out of the root, a
# FIFO, /proc), unknown commands and ids, stray FILE_CHUNKs, ERRORs and
# binary records, bad envelopes, broken JSON, KEY_UPDATEs (good and bad) and
# BYEs; it reconnects whenever the daemon ends a session.  Afterwards:
# ppcpd is alive and serves a real client, nothing outside the file root was
# created or changed, every descriptor and child is released, memory stayed
# bounded, and there is no sanitizer report.  Several seeds; each run is
# bounded in messages and in time.  Loopback only.
. "$(dirname "$0")/daemon_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "SKIP: python3 lacks the cryptography package (tests/interop/ppcp_client.py needs it)"
	exit 0
fi

# The root lies three levels below a jail full of canaries, so that every
# ".." the storm tries lands on a file of the test, never on the system's.
JAIL=$TMP/jail
ROOT=$JAIL/a/b/root
OUT=$JAIL/outside
mkdir -p "$ROOT/sub" "$ROOT/dir" "$OUT"
head -c 3000 /dev/urandom >"$ROOT/f"
head -c 100 /dev/urandom >"$ROOT/sub/g"
head -c 5000 /dev/urandom >"$ROOT/control"
mkfifo "$ROOT/fifo"
echo "outside secret" >"$OUT/secret"
for d in "$JAIL" "$JAIL/a" "$JAIL/a/b"; do echo canary >"$d/canary"; done
ln -s ../../../outside "$ROOT/link_out"
ln -s ../../../outside/secret "$ROOT/link_file"
jail_state() { find "$JAIL" -path "$ROOT" -prune -o -printf '%p %s %T@ %m\n' | sort | sha256sum; }
OUTSUM=$(jail_state)
CTLSUM=$(sha256sum <"$ROOT/control")

start_daemon storm --file-root "$ROOT" --allow-put --allow-exec 'echo,true,false,cat,sleep' \
	--max-commands 4 --command-timeout 3 --max-transfers 4
sleep 0.2
FD0=$(fd_count "$DPID")

SEEDS=${STORM_SEEDS:-"1 2 3"}
COUNT=${STORM_COUNT:-1500}
for seed in $SEEDS; do
	run timeout 120 python3 "$HERE/storm.py" "$HERE/../interop" "$PORT" "$TMP/psk" "$seed" "$COUNT" 40 \
		"$JAIL/canary"
	sed 's/^/    /' "$TMP/out" "$TMP/err" | head -20
	expect_rc "storm seed $seed: the daemon kept accepting and completing handshakes" 0
	check "storm seed $seed: the daemon is alive" kill -0 "$DPID"
	# The messages reached the handlers: the daemon answered with several
	# kinds of ERROR (not only "invalid-message").
	kinds=$(grep -c '^storm: ERROR ' "$TMP/out" || true)
	check "storm seed $seed: $kinds kinds of ERROR came back (at least 4)" test "$kinds" -ge 4
	# File data did flow (gets of files in the root), and none of it was
	# a canary's.
	check "storm seed $seed: file data came back, none from outside the root (canaries)" \
		grep -Eq ' records back, [1-9][0-9]* with file data, 0 leaks$' "$TMP/out"
done

# A real client is served, byte for byte.
run tc get control "$TMP/control.copy"
check "a real client still gets a file, byte-identical" test "$(sha256sum <"$TMP/control.copy")" = "$CTLSUM"
run tc exec echo still-here
expect_in "a real client still runs a command" "still-here" "$TMP/out"

# Nothing outside the root was created or changed.
check "nothing outside the root was created or changed (the jail around it, canaries included)" \
	test "$(jail_state)" = "$OUTSUM"
extra=$(cd "$ROOT" && find . -mindepth 1 ! -name '.*' -printf '%P\n' | grep -Ev '^(f|sub|sub/g|dir|control|fifo|link_out|link_file|up1|sub/new|sub/new/up2|été)$' || true)
check "no unexpected name in the root (only the storm's put targets): ${extra:-none}" test -z "$extra"

# Every descriptor and every child is released (commands time out in 3 s).
ok_fd=0
for _ in $(seq 1 100); do
	if [ "$(fd_count "$DPID")" -le "$FD0" ] && [ -z "$(children "$DPID")" ]; then
		ok_fd=1
		break
	fi
	sleep 0.1
done
check "descriptors back to $FD0 (now $(fd_count "$DPID")) and no child left" test "$ok_fd" -eq 1
check "no zombie" test "$(zombies "$DPID")" -eq 0
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
echo "    VmHWM ${hwm} kB"
if grep -q asan "/proc/$DPID/maps" 2>/dev/null; then
	echo "    (sanitizer build: the memory bound is not asserted)"
else
	check "memory stayed bounded: VmHWM ${hwm} kB < 200 MiB" test "$hwm" -lt 204800
fi

stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
expect_not_in "no sanitizer report in the daemon's log" \
	"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$LOG"
finish
