#!/usr/bin/env bash
# t_files_daemon.sh - ppcpd's side of file transfer (PROTOCOL.md §9), with
# ppcpd_testclient (both encodings: base64 FILE_CHUNKs and binary-data
# records) and, when it is built, ppcp get/put.
#
#   - no file-root: every FILE_REQUEST is refused, naming the option;
#   - downloads of 0 B, 1 B and sizes around every chunk boundary and the
#     read batch, byte-identical in both encodings; 64 MiB timed; a small
#     peer max_record; binary asked without the extension; ranges and a
#     valid tail read; bad offsets and lengths (T36);
#   - paths (T34, T35): '..', absolute paths, symlinks out of the root
#     (to a file, a directory, /dev/zero, /proc/self/mem), symlinks that stay
#     inside; a directory, a FIFO (no hang), a device node; not found;
#   - listings, in several chunks; max-transfers; cancel; a file that grows
#     or shrinks during a get (ERROR changed); the checksum cache (only
#     settled files, a rewrite at the same size and mtime is hashed again);
#     heartbeats during a slow get;
#   - uploads refused without allow-put; uploads of every size, 64 MiB timed,
#     modes, mkdir, escapes, targets that are not regular files,
#     max-file-size, a wrong sha256; bad data in JSON (ERROR, the session
#     goes on) and in binary records (fatal); an interrupted upload resumes
#     from what the server holds; stale temporary files removed at startup;
#   - a get, a put and an exec at once in one session;
#   - a reader that never reads (T43): bounded memory, closed at the write
#     deadline;
#   - a full disk (a 1 MiB tmpfs in a private mount namespace, as root):
#     ERROR no-space and nothing left; permission denied (privileges
#     dropped to nobody when run as root);
#   - no descriptor left behind in the daemon.
set -euo pipefail
. "$(dirname "$0")/daemon_lib.sh"

MiB=1048576
ROOT=$TMP/root
ROOT2=$TMP/root2
mkdir -p "$ROOT/sub" "$ROOT2"

mkrand() { head -c "$2" /dev/urandom >"$1"; }

# Sizes around the chunk sizes: base64 192 KiB (196608), binary 256 KiB
# (262144), a read batch of 4 chunks, the 4 MiB window.
SIZES="0 1 2 3 4095 4096 196607 196608 196609 262143 262144 262145 786431 786432 786433 1048575 1048576 1048577 4194305"
for s in $SIZES; do mkrand "$ROOT/s$s" "$s"; done
mkrand "$ROOT/big" $((64 * MiB))
echo "inside" >"$ROOT/sub/small"
ln -s /etc/passwd "$ROOT/esc"
ln -s /etc "$ROOT/escdir"
ln -s /dev/zero "$ROOT/zero"
ln -s /proc/self/mem "$ROOT/procmem"
ln -s sub/small "$ROOT/inlink"
ln -s ../s1 "$ROOT/sub/up"
mkfifo "$ROOT/fifo"
mkdir "$ROOT/many"
(cd "$ROOT/many" && for i in $(seq 1 2500); do : >"f$i"; done)
if [ "$(id -u)" -eq 0 ]; then
	mknod "$ROOT/null" c 1 3
fi

head_field() { # head_field FIELD FILE - an integer field of the "head" line
	sed -n "s/^.*head {.*\"$1\":\([0-9]*\).*/\1/p" "$2" | head -n1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ---- without file-root ---------------------------------------------------
start_daemon nofiles
run tc send FILE_REQUEST '{"path":"s1","offset":0}'
expect_in "no file-root: a get is refused" '^ERROR same-id \{"code":"unauthorized","message":"file transfer is not enabled on this server \(file-root\)"\}' "$TMP/out"
run tc send FILE_REQUEST '{"op":"list","path":"."}'
expect_in "no file-root: a listing is refused" '"code":"unauthorized".*\(file-root\)' "$TMP/out"
stop_daemon

# ---- downloads -------------------------------------------------------------
start_daemon get --file-root "$ROOT" --max-transfers 2 --heartbeat 200 --idle-timeout 5000
expect_in "the policy line names file-root" "policy: file-root '$ROOT', uploads refused, max-transfers 2" "$LOG"
# The baseline once the start-up sweep for stale temporary files is over:
# a worker thread walks the root (2,500 entries in many/) with directories
# open.
wait_log "file-root: (no stale temporary file|removed)" 10 || true
FD0=$(fd_count "$DPID")

for s in $SIZES; do
	for enc in base64 binary; do
		flag=
		[ "$enc" = binary ] && flag=--binary
		run tc get $flag "s$s" "$TMP/dl"
		if [ "$RC" -eq 0 ] && cmp -s "$ROOT/s$s" "$TMP/dl" && grep -q "sha256 ok\|head only" "$TMP/out"; then
			ok "get of $s bytes ($enc) is byte-identical"
		else
			fail "get of $s bytes ($enc): exit $RC"
			show "$TMP/out" "$TMP/err"
		fi
	done
done
run tc get --binary s1 "$TMP/dl"
expect_in "a binary get names stream 2 (the server's even numbers)" '"binary":true.*"stream":2' "$TMP/out"
run tc get s1 "$TMP/dl"
expect_not_in "a base64 get has no stream" '"stream"' "$TMP/out"

for enc in base64 binary; do
	flag=
	[ "$enc" = binary ] && flag=--binary
	run tc get $flag --max-record 4096 s262145 "$TMP/dl"
	if [ "$RC" -eq 0 ] && cmp -s "$ROOT/s262145" "$TMP/dl"; then
		ok "get with a peer max_record of 4096 ($enc): $(grep -o '[0-9]* records' "$TMP/out")"
	else
		fail "get with a peer max_record of 4096 ($enc)"
		show "$TMP/out" "$TMP/err"
	fi
done
run tc get --binary --no-ext s786433 "$TMP/dl"
if [ "$RC" -eq 0 ] && cmp -s "$ROOT/s786433" "$TMP/dl" && grep -q '"binary":false' "$TMP/out"; then
	ok "binary asked without the extension: base64 it is, and the head says so"
else
	fail "binary without the extension"
	show "$TMP/out" "$TMP/err"
fi

for enc in base64 binary; do
	flag=
	[ "$enc" = binary ] && flag=--binary
	run tc get $flag big "$TMP/dl"
	if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$TMP/dl"; then
		ok "64 MiB get ($enc): $(grep -o '[0-9.]* s, [0-9.]* MiB/s' "$TMP/out")"
	else
		fail "64 MiB get ($enc)"
		show "$TMP/out" "$TMP/err"
	fi
done
rm -f "$TMP/dl"

# Ranges (§9.2), and a valid tail read (T36).
run tc get --binary --offset 1000 --length 5000 s196609 "$TMP/part"
dd if="$ROOT/s196609" of="$TMP/want" bs=5000 skip=1000 count=5000 iflag=skip_bytes,count_bytes status=none
check "a range (offset 1000, length 5000) holds the right bytes" cmp -s "$TMP/want" "$TMP/part"
expect_in "the head of a range gives the whole file's size" '"length":5000,.*"offset":1000,.*"size":196609' "$TMP/out"
run tc get --offset 196000 s196609 "$TMP/part"
tail -c 609 "$ROOT/s196609" >"$TMP/want"
check "a tail read (offset 196000 to the end) holds the last 609 bytes" cmp -s "$TMP/want" "$TMP/part"
run tc get --binary --offset 196609 s196609 "$TMP/part"
expect_in "offset = size: a head alone, length 0" '"length":0,.*"offset":196609' "$TMP/out"
run tc send FILE_REQUEST '{"path":"s4096","offset":0,"length":0}'
expect_in "length 0: the head and nothing else" '^FILE_CHUNK same-id \{"binary":false,"length":0,"mtime":[0-9]+,"offset":0,"sha256":"[0-9a-f]{64}","size":4096\}' "$TMP/out"

t36() { # t36 DESCRIPTION PAYLOAD
	run tc send FILE_REQUEST "$2"
	expect_in "T36: $1: invalid-message" '^ERROR same-id \{"code":"invalid-message"' "$TMP/out"
}
t36 "offset -1" '{"path":"s4096","offset":-1}'
t36 "offset past the size" '{"path":"s4096","offset":4097}'
t36 "offset + length past the size" '{"path":"s4096","offset":100,"length":3997}'
t36 "offset + length = 2^63" '{"path":"s4096","offset":4611686018427387904,"length":4611686018427387904}'
t36 "offset 2^53" '{"path":"s4096","offset":9007199254740992}'
t36 "length 2^63 - 1 (beyond the maximum)" '{"path":"s4096","length":9223372036854775807}'
t36 "length -1" '{"path":"s4096","length":-1}'
t36 "offset 1.5" '{"path":"s4096","offset":1.5}'
t36 "binary not a boolean" '{"path":"s4096","binary":"yes"}'
t36 "an empty path" '{"path":""}'
t36 "no path" '{"offset":0}'
t36 "an unknown op" '{"op":"frob","path":"s1"}'

# Paths (T34).
refused() { # refused DESCRIPTION PATH
	run tc get --binary "$2" "$TMP/dl"
	if [ "$RC" -eq 100 ] && grep -q '^get: ERROR unauthorized' "$TMP/out" && [ ! -s "$TMP/dl" ]; then
		ok "T34: $1 is refused (unauthorized)"
	else
		fail "T34: $1: exit $RC"
		show "$TMP/out" "$TMP/err"
	fi
}
# T34 asks that no file outside the root be opened: watch the daemon's
# open calls (all its threads) while the escapes are tried.
SPID=
if command -v strace >/dev/null; then
	strace -f -qq -e trace=open,openat,openat2 -p "$DPID" -o "$TMP/strace.out" 2>/dev/null &
	SPID=$!
	# Until strace traces every thread (the worker threads open the files):
	# a fixed 0.5 s could end before the attach on a loaded machine, and
	# the opens would be missing from the trace.
	for _ in $(seq 1 200); do
		kill -0 "$SPID" 2>/dev/null || break
		traced=1
		for st in /proc/"$DPID"/task/*/status; do
			grep -q "^TracerPid:[[:space:]]*$SPID\$" "$st" 2>/dev/null || traced=0
		done
		[ "$traced" = 1 ] && break
		sleep 0.05
	done
fi
refused "../../etc/passwd" ../../etc/passwd
refused "an absolute path" /etc/passwd
refused "/proc/self/mem" /proc/self/mem
refused "sub/../../x (a '..' that leaves the root)" sub/../../etc/passwd
refused "a symlink to /etc/passwd" esc
refused "a path through a symlink to /etc" escdir/passwd
refused "a symlink to /dev/zero" zero
refused "a symlink to /proc/self/mem" procmem
if [ -n "$SPID" ]; then
	sleep 0.3
	kill "$SPID" 2>/dev/null || true
	wait "$SPID" 2>/dev/null || true
	if grep -q 'openat2(' "$TMP/strace.out" && ! grep -E '(passwd|zero|mem)".*= [0-9]+$' "$TMP/strace.out" >/dev/null &&
		! grep -E 'open(at)?\(.*"/(etc|dev|proc)/' "$TMP/strace.out" >/dev/null; then
		ok "T34 (strace): $(grep -c 'openat2(.*= -1 E' "$TMP/strace.out") openat2 calls failed in the kernel, no file outside the root was opened"
	else
		fail "T34 (strace): a file outside the root was opened"
		show "$TMP/strace.out"
	fi
else
	echo "SKIP: T34 strace check (no strace)"
fi
expect_in "the refusal is logged" "get 'esc' \(transfer [0-9a-f]+\) failed: unauthorized" "$LOG"
run tc get inlink "$TMP/dl"
check "a symlink that stays inside the root is served" cmp -s "$ROOT/sub/small" "$TMP/dl"
run tc get sub/up "$TMP/dl"
check "a relative symlink up to a file of the root is served" cmp -s "$ROOT/s1" "$TMP/dl"
run tc get sub/../s1 "$TMP/dl"
check "a '..' that stays inside is served" cmp -s "$ROOT/s1" "$TMP/dl"

# Not regular files (T35), not found.
notreg() { # notreg DESCRIPTION PATH
	local t0=$SECONDS
	run tc get "$2" "$TMP/dl"
	if [ "$RC" -eq 100 ] && grep -q '^get: ERROR not-regular' "$TMP/out" && [ $((SECONDS - t0)) -le 3 ]; then
		ok "T35: $1 is refused (not-regular): $(sed -n 's/^get: ERROR not-regular: //p' "$TMP/out")"
	else
		fail "T35: $1: exit $RC"
		show "$TMP/out" "$TMP/err"
	fi
}
notreg "a directory" sub
notreg "the root itself" .
notreg "a FIFO (without hanging)" fifo
if [ -e "$ROOT/null" ]; then
	notreg "a character device inside the root" null
else
	echo "SKIP: device node (mknod needs root)"
fi
run tc get nope "$TMP/dl"
expect_in "a missing file: not-found" '^get: ERROR not-found' "$TMP/out"
run tc get s1/x "$TMP/dl"
expect_in "a file used as a directory: not-found" '^get: ERROR not-found' "$TMP/out"

# Uploads are refused without allow-put.
run tc put --binary "$ROOT/s1" newfile
if [ "$RC" -eq 100 ] && grep -q '^put: ERROR unauthorized: uploads are not allowed on this server (allow-put)' "$TMP/out" &&
	[ -z "$(ls -A "$ROOT" | grep -e newfile -e '\.part$' || true)" ]; then
	ok "an upload without allow-put is refused and creates nothing"
else
	fail "an upload without allow-put: exit $RC"
	show "$TMP/out" "$TMP/err"
fi

# Listings (§9.4).
run tc list .
if [ "$RC" -eq 0 ] && grep -q '^entry s1 file 1$' "$TMP/out" && grep -q '^entry sub dir -1$' "$TMP/out" &&
	grep -q '^entry esc other -1$' "$TMP/out" && grep -q '^entry fifo other -1$' "$TMP/out"; then
	ok "list .: files with sizes, dirs, symlinks and FIFOs as other"
else
	fail "list ."
	show "$TMP/out" "$TMP/err"
fi
run tc list many
expect_in "list of 2500 entries: in chunks of at most 1000" '^list: 2500 entries in 3 chunks$' "$TMP/out"
run tc list --max-record 4096 many
expect_in "list of 2500 entries for a peer with max_record 4096: more chunks" '^list: 2500 entries in [0-9]{2,} chunks$' "$TMP/out"
run tc list s1
expect_in "list of a file: not-found (not a directory)" '^list: ERROR not-found' "$TMP/out"
run tc list ..
expect_in "list of ..: unauthorized" '^list: ERROR unauthorized' "$TMP/out"
run tc send FILE_REQUEST '{"op":"list","path":""}'
expect_in "list of an empty path: invalid-message" '"code":"invalid-message"' "$TMP/out"

# max-transfers (2 here): the third at once is refused.
run tc gets 3 big
expect_in "max-transfers: two run, the third is refused" '^gets: 3 sent, 2 ok, 1 rate-limited$' "$TMP/out"

# Cancel (§9.6): an ERROR cancelled with the request's id stops it.
run tc get --binary --rate 20000000 --cancel-after $MiB big "$TMP/dl"
if [ "$RC" -eq 0 ] && wait_log "get 'big' \(transfer [0-9a-f]+\) ended by the peer: ERROR cancelled" 5; then
	ok "a cancelled get stops ($(sed -n 's/^get: //p' "$TMP/out" | tail -n1))"
else
	fail "cancel"
	show "$TMP/out" "$TMP/err" "$LOG"
fi

# The file changes during a get (T37): ERROR changed instead of the last chunk.
for how in grows shrinks; do
	cp "$ROOT/big" "$ROOT/vary-$how"
	"$TC" --psk-file "$TMP/psk" --port "$PORT" get --binary --hold-ms 1500 "vary-$how" "$TMP/dl" >"$TMP/vary.out" 2>&1 &
	CPID=$!
	if wait_log "get 'vary-$how' \(transfer [0-9a-f]+\): 67108864 of" 10; then
		sleep 0.3
		if [ "$how" = grows ]; then
			echo "more" >>"$ROOT/vary-$how"
		else
			truncate -s $((60 * MiB)) "$ROOT/vary-$how"
		fi
	fi
	set +e
	wait "$CPID"
	RC=$?
	set -e
	if [ "$RC" -eq 100 ] && grep -q '^get: ERROR changed' "$TMP/vary.out"; then
		ok "a file that $how during a get: ERROR changed ($(sed -n 's/^get: ERROR changed: //p' "$TMP/vary.out" | cut -c1-60)...)"
	else
		fail "a file that $how during a get: exit $RC"
		show "$TMP/vary.out"
	fi
	rm -f "$ROOT/vary-$how"
done

# The checksum cache: a file's checksum is remembered only once its last
# change (ctime) is a second old, so that a rewrite in the same kernel tick
# cannot match a stale entry; a rewrite at the same size with its mtime put
# back changes the ctime and is hashed again: the download is right.
# cached_get HOW - a get of 'cached'; its bytes must be those of
# $TMP/cached.want and the daemon must log "checksum HOW" (a regex) for it;
# the log line's text in CACHED_HOW.
cached_get() {
	local n0 n1 re="get 'cached' \(transfer [0-9a-f]+\): checksum ($1)"
	n0=$(grep -Ec "$re" "$LOG" || true)
	run tc get cached "$TMP/dl"
	n1=$(grep -Ec "$re" "$LOG" || true)
	CACHED_HOW=$(grep -E "get 'cached' \(transfer [0-9a-f]+\): checksum " "$LOG" | tail -n1 | sed 's/.*: checksum //')
	check "checksum cache: a get, byte-identical, checksum $CACHED_HOW" \
		test "$RC" -eq 0 -a "$n1" -eq $((n0 + 1)) -a -f "$TMP/dl"
	cmp -s "$TMP/cached.want" "$TMP/dl" || fail "checksum cache: the download differs from the file"
}
# fresh_get - a get of a file changed just now (at FRESH_T0, taken before
# the change): not remembered, unless this machine was so slow that a
# second went by first (then said, not failed).
fresh_get() {
	cached_get "computed, (not remembered|and remembered)"
	if [ $((($(date +%s%N) - FRESH_T0) / 1000000)) -lt 900 ]; then
		check "checksum cache: a file changed less than a second ago is not remembered" \
			test "${CACHED_HOW#computed, not remembered}" != "$CACHED_HOW"
	else
		echo "NOTE: the get took a second or more: whether its checksum was remembered is not judged"
	fi
}
head -c 70000 /dev/urandom >"$TMP/cached.want"
FRESH_T0=$(date +%s%N)
cp "$TMP/cached.want" "$ROOT/cached"
fresh_get
# Until the last change is more than a second old (bounded: 5 s).
for _ in $(seq 1 50); do
	[ $(($(date +%s) - $(stat -c %Z "$ROOT/cached"))) -ge 2 ] && break
	sleep 0.1
done
cached_get "computed, and remembered|from the cache"
cached_get "from the cache"
mt=$(stat -c %y "$ROOT/cached")
head -c 70000 /dev/urandom >"$TMP/cached.want"
FRESH_T0=$(date +%s%N)
cp "$TMP/cached.want" "$ROOT/cached"
touch -d "$mt" "$ROOT/cached"
check "checksum cache: the rewritten file has the same size and mtime" \
	test "$(stat -c '%s %y' "$ROOT/cached")" = "70000 $mt"
fresh_get
rm -f "$ROOT/cached" "$TMP/cached.want"

# Heartbeats flow during a transfer (§8.2): ours are answered between chunks.
run tc get --binary --rate 24000000 --hb-ms 200 big "$TMP/dl"
acks=$(sed -n 's/.* \([0-9]*\) heartbeat acks$/\1/p' "$TMP/out")
if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$TMP/dl" && [ "${acks:-0}" -ge 5 ]; then
	ok "a slow get (about 3 s) is answered $acks HEARTBEAT_ACKs meanwhile"
else
	fail "heartbeats during a get: exit $RC, ${acks:-0} acks"
	show "$TMP/out" "$TMP/err"
fi

# A reader that goes away mid-transfer; then no descriptor is left.  It is
# killed once its transfer has begun (the daemon logged its head; earlier
# gets of big logged theirs), not after a fixed time.
head_re="get 'big' \(transfer [0-9a-f]+\): [0-9]+ of [0-9]+ bytes from offset"
heads=$(grep -Ec -- "$head_re" "$LOG" || true)
"$TC" --psk-file "$TMP/psk" --port "$PORT" get --binary --rate 4000000 big "$TMP/dl" >/dev/null 2>&1 &
CPID=$!
wait_log_more "$head_re" "$heads" 30 || true
sleep 0.3
kill -KILL "$CPID" 2>/dev/null || true
wait "$CPID" 2>/dev/null || true
check "a get whose reader died is logged as interrupted" wait_log "get 'big' \(transfer [0-9a-f]+\) interrupted" 5
eventually 10 fds_are "$DPID" "$FD0" || true
FD1=$(fd_count "$DPID")
check "no descriptor left after the downloads ($FD0 before, $FD1 after)" test "$FD0" -eq "$FD1"
stop_daemon
check "the daemon stopped cleanly" test "$DRC" -eq 0
rm -f "$TMP/dl" "$TMP/part"

# ---- uploads -----------------------------------------------------------------
# Temporary files of interrupted uploads: one older than 24 h, one fresh.
OLD=".old.ppcp-0123456789abcdef.part"
NEW=".new.ppcp-0123456789abcdef.part"
: >"$ROOT2/$OLD"
: >"$ROOT2/$NEW"
touch -d '2 days ago' "$ROOT2/$OLD"
mkdir "$ROOT2/adir" "$TMP/outside"
ln -s "$TMP/outside" "$ROOT2/out"
echo "keep" >"$ROOT2/target"
ln -s target "$ROOT2/lnk"
truncate -s $((65 * MiB + 1)) "$TMP/sparse"

start_daemon put --file-root "$ROOT2" --allow-put --allow-exec echo --max-file-size 65M
# The sweep first (its worker holds directories open), then the baseline.
if wait_log "removed 1 temporary files of uploads interrupted more than 24 h ago" 5 &&
	[ ! -e "$ROOT2/$OLD" ] && [ -e "$ROOT2/$NEW" ]; then
	ok "startup removes temporary files older than 24 h and keeps the others"
else
	fail "stale temporary files"
	show "$LOG"
fi
FD0=$(fd_count "$DPID")
rm -f "$ROOT2/$NEW"

for s in $SIZES; do
	for enc in base64 binary; do
		flag=
		[ "$enc" = binary ] && flag=--binary
		run tc put $flag "$ROOT/s$s" "p$s.$enc"
		if [ "$RC" -eq 0 ] && cmp -s "$ROOT/s$s" "$ROOT2/p$s.$enc" &&
			[ "$(stat -c %a "$ROOT2/p$s.$enc")" = 644 ]; then
			ok "put of $s bytes ($enc) is byte-identical, mode 644"
		else
			fail "put of $s bytes ($enc): exit $RC"
			show "$TMP/out" "$TMP/err"
		fi
	done
done
run tc put --binary "$ROOT/s1" pstream
expect_in "a binary put's head names an even stream and offset 0" '^put head \{"binary":true,"offset":0,"stream":[0-9]*[02468]\}$' "$TMP/out"
for enc in base64 binary; do
	flag=
	[ "$enc" = binary ] && flag=--binary
	run tc put $flag "$ROOT/big" "big.$enc"
	if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$ROOT2/big.$enc"; then
		ok "64 MiB put ($enc): $(sed -n 's/^put: .* in \([0-9.]* s\)$/\1/p' "$TMP/out")"
	else
		fail "64 MiB put ($enc)"
		show "$TMP/out" "$TMP/err"
	fi
done
check "no temporary file is left after the uploads" test -z "$(find "$ROOT2" -name '*.part')"

run tc put --mode 600 "$ROOT/s3" m600
check "mode 600 is applied" test "$(stat -c %a "$ROOT2/m600")" = 600
run tc put --mode 4755 "$ROOT/s3" m4755
check "set-user-id is never set (4755 gives 755)" test "$(stat -c %a "$ROOT2/m4755")" = 755
run tc put --mode 10000 "$ROOT/s3" mbad
expect_in "mode above 07777: invalid-message" '^put: ERROR invalid-message' "$TMP/out"
run tc put --binary "$ROOT/s4096" target
check "an existing file is replaced" cmp -s "$ROOT/s4096" "$ROOT2/target"

run tc put "$ROOT/s3" a/b/c
expect_in "a missing directory without mkdir: not-found" '^put: ERROR not-found: the directory of' "$TMP/out"
run tc put --mkdir --binary "$ROOT/s3" a/b/c
if [ "$RC" -eq 0 ] && cmp -s "$ROOT/s3" "$ROOT2/a/b/c" && [ "$(stat -c %a "$ROOT2/a/b")" = 755 ]; then
	ok "mkdir creates the missing directories (mode 0755)"
else
	fail "mkdir"
	show "$TMP/out" "$TMP/err"
fi
run tc put --mkdir "$ROOT/s3" a/../d/e
check "mkdir with a '..' that stays inside" cmp -s "$ROOT/s3" "$ROOT2/d/e"

put_refused() { # put_refused DESCRIPTION CODE PATH [OPTIONS]
	local d=$1 code=$2 path=$3
	shift 3
	run tc put "$@" "$ROOT/s3" "$path"
	if [ "$RC" -eq 100 ] && grep -q "^put: ERROR $code" "$TMP/out"; then
		ok "put to $d: $code"
	else
		fail "put to $d: exit $RC, wanted ERROR $code"
		show "$TMP/out" "$TMP/err"
	fi
}
put_refused "../x" unauthorized ../x
put_refused "an absolute path" unauthorized "$TMP/outside/abs"
put_refused "a symlinked directory outside the root" unauthorized out/x
put_refused "a symlinked directory outside the root, with mkdir" unauthorized out/y/z --mkdir
check "nothing was created outside the root" test -z "$(ls -A "$TMP/outside")"
put_refused "an existing directory" not-regular adir
put_refused "an existing symlink" not-regular lnk
check "the symlink and its target are untouched" test "$(readlink "$ROOT2/lnk")" = target -a "$(cat "$ROOT2/target" | wc -c)" = 4096
put_refused "a name reserved for temporary files" unauthorized ".x.ppcp-0123456789abcdef.part"
put_refused "a path ending in /" invalid-message "adir/"
put_refused "a path ending in .." invalid-message "adir/.."
run tc put "$TMP/sparse" toolarge
expect_in "an upload above max-file-size (65M): unauthorized" '^put: ERROR unauthorized: an upload of 68157441 bytes is larger than this server accepts \(max-file-size' "$TMP/out"

run tc put --binary --bad wrong-sha "$ROOT/s786433" wrongsha
if [ "$RC" -eq 100 ] && grep -q '^put: ERROR changed' "$TMP/out" && [ ! -e "$ROOT2/wrongsha" ] &&
	[ -z "$(find "$ROOT2" -name '*wrongsha*')" ]; then
	ok "a sha256 that does not match: ERROR changed, neither the file nor its temporary file is left"
else
	fail "wrong sha256: exit $RC"
	show "$TMP/out" "$TMP/err"
fi

# Bad data: in base64 the transfer ends with ERROR invalid-message (the
# session goes on); in binary records it is fatal for the session (§9.5).
for bad in out-of-order early-last past-end bad-base64; do
	run tc put --bad "$bad" "$ROOT/s786433" "bad-$bad"
	if [ "$RC" -eq 100 ] && grep -q '^put: ERROR invalid-message' "$TMP/out" && [ ! -e "$ROOT2/bad-$bad" ]; then
		ok "base64 upload, $bad: ERROR invalid-message ($(sed -n 's/^put: ERROR invalid-message: //p' "$TMP/out" | cut -c1-60))"
	else
		fail "base64 upload, $bad: exit $RC"
		show "$TMP/out" "$TMP/err"
	fi
done
for bad in out-of-order unknown-stream past-end early-last; do
	n0=$(grep -c 'failed: malformed message: ' "$LOG" || true)
	run tc put --binary --bad "$bad" "$ROOT/s786433" "badb-$bad"
	sleep 0.2
	n1=$(grep -c 'failed: malformed message: ' "$LOG" || true)
	if [ "$RC" -eq 3 ] && [ ! -e "$ROOT2/badb-$bad" ] && [ "$n1" -eq $((n0 + 1)) ]; then
		ok "binary upload, $bad: the session is closed ($(grep -o 'malformed message: .*' "$LOG" | tail -n1 | cut -c1-70))"
	else
		fail "binary upload, $bad: exit $RC"
		show "$TMP/out" "$TMP/err" "$LOG"
	fi
done

# An interrupted upload resumes from what the server holds (§9.3).
for enc in base64 binary; do
	flag=
	[ "$enc" = binary ] && flag=--binary
	run tc put $flag --stop-after $((20 * MiB)) "$ROOT/big" "resume.$enc"
	tmpf=$(find "$ROOT2" -name ".resume.$enc.ppcp-*.part")
	if [ "$RC" -eq 3 ] && [ -n "$tmpf" ] && [ ! -e "$ROOT2/resume.$enc" ]; then
		ok "an interrupted upload ($enc) leaves its temporary file ($(basename "$tmpf")), not the file"
	else
		fail "interrupted upload ($enc): exit $RC"
		show "$TMP/out" "$TMP/err"
	fi
	run tc list .
	expect_not_in "a listing does not show temporary files" 'ppcp-[0-9a-f]{16}\.part' "$TMP/out"
	run tc put $flag "$ROOT/big" "resume.$enc"
	off=$(sed -n 's/^put head {.*"offset":\([0-9]*\).*/\1/p' "$TMP/out")
	if [ "$RC" -eq 0 ] && [ "${off:-0}" -gt 0 ] && cmp -s "$ROOT/big" "$ROOT2/resume.$enc" &&
		[ -z "$(find "$ROOT2" -name ".resume.$enc.ppcp-*.part")" ]; then
		ok "the upload ($enc) resumes at offset $off of 67108864; the result is byte-identical"
	else
		fail "resumed upload ($enc): exit $RC, offset ${off:-none}"
		show "$TMP/out" "$TMP/err"
	fi
done

# A held temporary file with other content: the hash tells, nothing is kept.
run tc put --binary --stop-after $((2 * MiB)) "$ROOT/big" corrupt
tmpf=$(find "$ROOT2" -name '.corrupt.ppcp-*.part')
printf 'XXXX' | dd of="$tmpf" bs=1 seek=100 conv=notrunc status=none
run tc put --binary "$ROOT/big" corrupt
if [ "$RC" -eq 100 ] && grep -q '^put: ERROR changed' "$TMP/out" && [ ! -e "$ROOT2/corrupt" ] && [ ! -e "$tmpf" ]; then
	ok "a damaged temporary file is caught by the hash: ERROR changed, nothing left"
else
	fail "damaged temporary file: exit $RC"
	show "$TMP/out" "$TMP/err"
fi
run tc put --binary "$ROOT/big" corrupt
check "the next attempt starts over and succeeds" cmp -s "$ROOT/big" "$ROOT2/corrupt"

# Two transfers and a command at once in one session.
run tc mix big.binary "$TMP/mix" "$ROOT/s4194305" mixed -- echo hello
if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$TMP/mix" && cmp -s "$ROOT/s4194305" "$ROOT2/mixed"; then
	ok "a get, a put and an exec at once in one session"
else
	fail "get, put and exec at once: exit $RC"
	show "$TMP/out" "$TMP/err"
fi
rm -f "$TMP/mix"
expect_in "uploads are logged with path and size" "put 'big.binary' \(transfer [0-9a-f]+\): 67108864 bytes written" "$LOG"
eventually 10 fds_are "$DPID" "$FD0" || true
FD1=$(fd_count "$DPID")
check "no descriptor left after the uploads ($FD0 before, $FD1 after)" test "$FD0" -eq "$FD1"
stop_daemon
check "the daemon stopped cleanly" test "$DRC" -eq 0

# ---- a reader that never reads (T43) -------------------------------------
for enc in binary base64; do
	flag=
	[ "$enc" = binary ] && flag=--binary
	# Under AddressSanitizer, freed memory waits in a quarantine and RSS
	# would count it: measure what is live.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
		start_daemon "slow-$enc" --file-root "$ROOT" --write-timeout 3000
	rss0=$(rss_kb "$DPID")
	max=$rss0
	tc get $flag --stall 15 big /dev/null >"$TMP/stall.out" 2>&1 &
	CPID=$!
	closed=0
	for _ in $(seq 1 100); do
		r=$(rss_kb "$DPID")
		[ "$r" -gt "$max" ] && max=$r
		if grep -q "read nothing for 3000 ms (write-timeout): closing" "$LOG"; then
			closed=1
			break
		fi
		sleep 0.1
	done
	kill "$CPID" 2>/dev/null || true
	wait "$CPID" 2>/dev/null || true
	growth=$(((max - rss0) / 1024))
	if [ "$closed" -eq 1 ] && [ "$growth" -lt 64 ]; then
		ok "T43 ($enc): a reader that never reads is closed at the write deadline; RSS grew $growth MiB (< 64)"
	else
		fail "T43 ($enc): closed=$closed, RSS grew $growth MiB"
		show "$LOG"
	fi
	stop_daemon
done

# ---- a full disk -------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	FULL=$TMP/full
	mkdir -p "$FULL"
	LOG=$TMP/full.log
	: >"$LOG"
	# A private mount namespace: the 1 MiB tmpfs exists for ppcpd alone.
	timeout 300 unshare -m sh -c 'mount -t tmpfs -o size=1m none "$1" && exec "$2" --psk-file "$3" --listen 127.0.0.1:0 --state-dir "$4" --file-root "$1" --allow-put --log-level debug' \
		sh "$FULL" "$PPCPD" "$TMP/psk" "$TMP/state-full" >"$LOG" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	DPID=$(children "$TPID" | head -n1)
	if [ -z "$PORT" ] || [ -z "$DPID" ]; then
		echo "SKIP: no-space: ppcpd did not start in a private mount namespace"
		show "$LOG"
	else
		PIDS+=("$DPID")
		NSFULL=/proc/$DPID/root$FULL
		for enc in base64 binary; do
			flag=
			[ "$enc" = binary ] && flag=--binary
			run tc put $flag "$ROOT/s4194305" "full.$enc"
			if [ "$RC" -eq 100 ] && grep -q "^put: ERROR no-space: the server's disk is full" "$TMP/out" &&
				[ -z "$(ls -A "$NSFULL")" ]; then
				ok "a full disk ($enc): ERROR no-space, no file and no temporary file left"
			else
				fail "a full disk ($enc): exit $RC; left: $(ls -A "$NSFULL" | tr '\n' ' ')"
				show "$TMP/out" "$TMP/err" "$LOG"
			fi
		done
		run tc put --binary "$ROOT/s262145" fits
		check "the same disk takes a file that fits" cmp -s "$ROOT/s262145" "$NSFULL/fits"
		check "the tmpfs is not visible outside the namespace" test ! -e "$FULL/fits"
		stop_daemon
	fi
else
	echo "SKIP: no-space (needs root and unshare for a private tmpfs mount)"
fi

# ---- permission denied -----------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	# ppcpd as nobody (root reads any file): a file it may not read, a
	# directory it may not write.
	NOGROUP=$(id -gn nobody)
	PR=$TMP/perm
	mkdir -p "$PR/ro" "$TMP/state-perm"
	chmod 711 "$TMP"
	echo secret >"$PR/secret"
	echo open >"$PR/open"
	chown nobody "$PR" "$PR/secret" "$PR/open" "$TMP/state-perm"
	chmod 000 "$PR/secret"
	chmod 755 "$PR/ro"
	cp "$TMP/psk" "$TMP/psk-nobody"
	chown nobody "$TMP/psk-nobody"
	LOG=$TMP/perm.log
	: >"$LOG"
	timeout 120 setpriv --reuid=nobody --regid="$NOGROUP" --clear-groups "$PPCPD" \
		--psk-file "$TMP/psk-nobody" --listen 127.0.0.1:0 --state-dir "$TMP/state-perm" \
		--file-root "$PR" --allow-put --log-level debug >"$LOG" 2>&1 &
	TPID=$!
	PIDS+=("$TPID")
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG" | head -n1)
		[ -n "$PORT" ] && break
		sleep 0.05
	done
	DPID=$(children "$TPID" | head -n1)
	[ -n "$DPID" ] || DPID=$TPID
	if [ -z "$PORT" ]; then
		fail "ppcpd as nobody did not start"
		show "$LOG"
	else
		run tc get open "$TMP/dl"
		check "as nobody: a readable file is served" cmp -s "$PR/open" "$TMP/dl"
		run tc get secret "$TMP/dl"
		expect_in "a file the daemon may not read: permission-denied" "^get: ERROR permission-denied: the server's operating system refused opening 'secret'" "$TMP/out"
		run tc put "$ROOT/s3" ro/x
		expect_in "a directory the daemon may not write: permission-denied" '^put: ERROR permission-denied' "$TMP/out"
		check "nothing was created in it" test -z "$(ls -A "$PR/ro")"
		stop_daemon
	fi
	chmod 700 "$TMP"
elif [ "$(id -u)" -ne 0 ]; then
	PR=$TMP/perm
	mkdir -p "$PR/ro"
	echo secret >"$PR/secret"
	chmod 000 "$PR/secret"
	chmod 555 "$PR/ro"
	start_daemon perm --file-root "$PR" --allow-put
	run tc get secret "$TMP/dl"
	expect_in "a file the daemon may not read: permission-denied" '^get: ERROR permission-denied' "$TMP/out"
	run tc put "$ROOT/s3" ro/x
	expect_in "a directory the daemon may not write: permission-denied" '^put: ERROR permission-denied' "$TMP/out"
	stop_daemon
	chmod 755 "$PR/ro"
else
	echo "SKIP: permission-denied (running as root without setpriv to drop privileges)"
fi

# ---- ppcp get/put against the daemon, when the CLI has them -----------------
if [ -n "${PPCP:-}" ] && [ -x "$PPCP" ] && "$PPCP" --help 2>&1 | grep -q '^  get '; then
	rm -rf "$ROOT2/cli"
	start_daemon cli --file-root "$ROOT2" --allow-put
	pc() { timeout 120 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" --discover-addr 127.0.0.1 "$@"; }
	for enc in binary base64; do
		flag=
		[ "$enc" = base64 ] && flag=--no-binary
		run pc put $flag -p "$ROOT/big" "127.0.0.1:$PORT:cli/big.$enc"
		if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$ROOT2/cli/big.$enc"; then
			ok "ppcp put ($enc), 64 MiB: byte-identical"
		else
			fail "ppcp put ($enc): exit $RC"
			show "$TMP/out" "$TMP/err" "$LOG"
		fi
		rm -f "$TMP/cli.$enc"
		t0=$(date +%s.%N)
		run pc get $flag "127.0.0.1:$PORT:cli/big.$enc" "$TMP/cli.$enc"
		t1=$(date +%s.%N)
		if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$TMP/cli.$enc"; then
			ok "ppcp get ($enc), 64 MiB: byte-identical in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f s", b - a}')"
		else
			fail "ppcp get ($enc): exit $RC"
			show "$TMP/out" "$TMP/err" "$LOG"
		fi
		rm -f "$TMP/cli.$enc"
	done
	run pc get "127.0.0.1:$PORT:../etc/passwd" "$TMP/cli.esc"
	check "ppcp get of ../etc/passwd fails and leaves nothing" test "$RC" -ne 0 -a ! -e "$TMP/cli.esc"
	stop_daemon
else
	echo "SKIP: ppcp get/put (the CLI is not built with them)"
fi

# Sanitizer builds: no daemon may have reported anything.
reports=$(grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP"/*.log 2>/dev/null || true)
if [ -z "$reports" ]; then
	ok "no sanitizer report in any daemon log"
else
	fail "sanitizer reports in: $reports"
	show $reports
fi

finish
