#!/usr/bin/env bash
# t_cli_files.sh - `ppcp get` and `ppcp put` against a real ppcpd on
# 127.0.0.1 (PROTOCOL.md §9): files of 0 B, 1 B and around every chunk size
# and the checkpoint interval, byte-identical both ways in both encodings; a
# 64 MiB file both ways in both encodings (timed); resume after the daemon
# is killed with SIGKILL, after the client is, after Ctrl-C, for an upload
# too; bytes fetched twice bounded by one checkpoint interval; a source that
# changed between two runs (start over) and during a transfer (detected, no
# file left); paths outside the root, an escaping symlink, a directory and a
# FIFO refused with nothing created locally; uploads refused without
# --allow-put; permission denied on the server (a daemon run as nobody); a full local disk and a full server disk (private tmpfs
# mounts, when this system allows them); --limit-rate; -r both ways;
# progress bar absent on a pipe, present on a terminal; and, against
# tests/e2e/fake_owner.py, an owner that breaks the protocol on purpose.
set -euo pipefail
. "$(dirname "$0")/cli_lib.sh"
need_ppcpd

HERE=$(cd "$(dirname "$0")" && pwd)
MiB=$((1024 * 1024))
CKPT=$((8 * MiB)) # XFER_CHECKPOINT in tools/ppcp/cli.h

newpsk "$TMP/psk"
ROOT=$TMP/root
mkdir -p "$ROOT" "$TMP/w"

# Daemon and client, bounded; the daemon's pid is $PID_e2e_files.
for _ in 1 2 3 4 5; do
	PORT=$(random_port)
	if start_ppcpd e2e-files 127.0.0.1 "$PORT" --file-root "$ROOT" --allow-put \
		--state-dir "$TMP/pd-state"; then
		break
	fi
	stop_ppcpd e2e-files KILL
done
T=127.0.0.1:$PORT

restart_daemon() {
	local i
	for i in $(seq 1 20); do
		start_ppcpd e2e-files 127.0.0.1 "$PORT" --file-root "$ROOT" --allow-put \
			--state-dir "$TMP/pd-state" >/dev/null && return 0
		sleep 0.25
	done
	echo "ppcpd did not restart on port $PORT"
	return 1
}

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# wait_size FILE BYTES SECONDS - until FILE holds at least BYTES.
wait_size() {
	local n=$(($3 * 20))
	for _ in $(seq 1 "$n"); do
		[ "$(size_of "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_upload NAME BYTES SECONDS - until ppcpd's temporary file of an upload
# to NAME (.NAME.ppcp-<hash>.part in the root) holds at least BYTES.
wait_upload() {
	local n=$(($3 * 20)) f
	for _ in $(seq 1 "$n"); do
		for f in "$ROOT/.$1".ppcp-*.part; do
			[ -e "$f" ] && [ "$(size_of "$f")" -ge "$2" ] && return 0
		done
		sleep 0.05
	done
	return 1
}

# bg_client DIR ARGS... - ppcp in the background, in DIR; its pid in BGPID,
# its stderr in $TMP/bg.err.
bg_client() {
	local dir=$1
	shift
	(cd "$dir" && exec "$PPCP" --psk-file "$TMP/psk" --port "$PORT" \
		--discover-addr "$DISCOVER" "$@" </dev/null >"$TMP/bg.out" 2>"$TMP/bg.err") &
	BGPID=$!
	PIDS+=("$BGPID")
}

# wait_bg SECONDS - wait for the background client; its status in BGRC
# (killed after SECONDS: 999).
wait_bg() {
	local n=$(($1 * 10))
	for _ in $(seq 1 "$n"); do
		kill -0 "$BGPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BGPID" 2>/dev/null; then
		kill -KILL "$BGPID" 2>/dev/null || true
		wait "$BGPID" 2>/dev/null || true
		BGRC=999
		return
	fi
	set +e
	wait "$BGPID"
	BGRC=$?
	set -e
}

# in_w CMD... - run in the work directory $TMP/w (run's rules).
in_w() {
	local rc
	set +e
	(cd "$TMP/w" && timeout 120 "$PPCP" --psk-file "$TMP/psk" --port "$PORT" \
		--discover-addr "$DISCOVER" "$@" </dev/null >"$TMP/out" 2>"$TMP/err")
	rc=$?
	set -e
	RC=$rc
}

same() { # same DESCRIPTION A B
	if cmp -s "$2" "$3"; then ok "$1"; else fail "$1: $2 and $3 differ"; show "$TMP/err"; fi
}
absent() { # absent DESCRIPTION FILE...
	local d=$1 f bad=
	shift
	for f in "$@"; do
		[ -e "$f" ] || [ -L "$f" ] && bad="$bad $f"
	done
	if [ -z "$bad" ]; then ok "$d"; else fail "$d:$bad exist"; fi
}

# ---- sizes around every boundary, both encodings, both directions ------------

sizes="0 1 2 3 4 $((192 * 1024 - 1)) $((192 * 1024)) $((192 * 1024 + 1)) \
$((256 * 1024 - 14)) $((256 * 1024 - 1)) $((256 * 1024)) $((256 * 1024 + 1)) \
$((MiB - 1)) $MiB $((MiB + 1)) $((CKPT - 1)) $CKPT $((CKPT + 1))"
for n in $sizes; do
	head -c "$n" /dev/urandom >"$ROOT/s$n"
done
bad=0
for n in $sizes; do
	for enc in "" --no-binary; do
		rm -f "$TMP/w/s$n"
		in_w get $enc "$T:s$n"
		if [ "$RC" -ne 0 ] || ! cmp -s "$ROOT/s$n" "$TMP/w/s$n"; then
			fail "get ${enc:-binary} of $n bytes: rc $RC"
			show "$TMP/err"
			bad=1
		fi
		rm -f "$ROOT/u$n"
		in_w put $enc "s$n" "$T:u$n"
		if [ "$RC" -ne 0 ] || ! cmp -s "$ROOT/s$n" "$ROOT/u$n"; then
			fail "put ${enc:-binary} of $n bytes: rc $RC"
			show "$TMP/err"
			bad=1
		fi
	done
done
[ "$bad" -eq 0 ] && ok "get and put of $(echo $sizes | wc -w) sizes (0 B to 8 MiB+1, chunk and checkpoint boundaries), binary and base64: byte-identical"
if ls -A "$TMP/w" | grep -q '\.part'; then fail "a .part file was left behind"; else ok "no .part left after complete downloads"; fi
rm -f "$ROOT"/s* "$ROOT"/u* "$TMP"/w/*

# ---- 64 MiB both ways, both encodings ---------------------------------------------

head -c $((64 * MiB)) /dev/urandom >"$ROOT/big"
for enc in "" --no-binary; do
	name=${enc:+base64}
	name=${name:-binary}
	rm -f "$TMP/w/big"
	t0=$(date +%s.%N)
	in_w get $enc "$T:big"
	t1=$(date +%s.%N)
	if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$TMP/w/big"; then
		ok "get of 64 MiB ($name) is byte-identical ($(echo "$t0 $t1" | awk '{printf "%.2f s", $2 - $1}'))"
	else
		fail "get of 64 MiB ($name): rc $RC"
		show "$TMP/err"
	fi
	rm -f "$ROOT/big-up"
	t0=$(date +%s.%N)
	in_w put $enc big "$T:big-up"
	t1=$(date +%s.%N)
	if [ "$RC" -eq 0 ] && cmp -s "$ROOT/big" "$ROOT/big-up"; then
		ok "put of 64 MiB ($name) is byte-identical ($(echo "$t0 $t1" | awk '{printf "%.2f s", $2 - $1}'), hashing included)"
	else
		fail "put of 64 MiB ($name): rc $RC"
		show "$TMP/err"
	fi
done
rm -f "$ROOT/big-up"

# ---- resume after the daemon is killed ---------------------------------------------

rm -f "$TMP"/w/big*
bg_client "$TMP/w" get --limit-rate 16M "$T:big"
if wait_size "$TMP/w/big.part" $((12 * MiB)) 30; then
	kill -KILL "$PID_e2e_files"
	wait_bg 30
	p1=$(size_of "$TMP/w/big.part")
	if [ "$BGRC" -eq 255 ] && grep -q "run the same command again to resume" "$TMP/bg.err" &&
		[ ! -e "$TMP/w/big" ]; then
		ok "daemon killed during get: exit 255, says how to resume, no file under the final name"
	else
		fail "daemon killed during get: rc $BGRC"
		show "$TMP/bg.err"
	fi
	[ -s "$TMP/w/big.part.ppcp" ] && ok "the sidecar is there" || fail "no sidecar"
	restart_daemon
	in_w -v get "$T:big"
	n=$(sed -n 's/.*resuming at \([0-9]*\) bytes.*/\1/p' "$TMP/err" | head -1)
	if [ "$RC" -eq 0 ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt $((64 * MiB)) ]; then
		ok "the second get resumes at $n bytes (of $((64 * MiB)))"
	else
		fail "no resume: rc $RC, n '${n:-}'"
		show "$TMP/err"
	fi
	if [ -n "$n" ] && [ $((p1 - n)) -ge 0 ] && [ $((p1 - n)) -le "$CKPT" ]; then
		ok "bytes fetched twice: $((p1 - n)) (at most one checkpoint interval)"
	else
		fail "bytes fetched twice: .part held $p1, resumed at ${n:-?}"
	fi
	same "the resumed file is byte-identical" "$ROOT/big" "$TMP/w/big"
	absent "no .part nor sidecar after the resumed get" "$TMP/w/big.part" "$TMP/w/big.part.ppcp"
else
	fail "big.part did not grow"
	show "$TMP/bg.err"
	kill -KILL "$BGPID" 2>/dev/null || true
fi

# ---- resume after the client itself is killed (only checkpoints count) -------------

rm -f "$TMP"/w/big*
bg_client "$TMP/w" get --limit-rate 16M "$T:big"
if wait_size "$TMP/w/big.part" $((20 * MiB)) 30; then
	kill -KILL "$BGPID"
	wait_bg 10
	p1=$(size_of "$TMP/w/big.part")
	in_w -v get "$T:big"
	n=$(sed -n 's/.*resuming at \([0-9]*\) bytes.*/\1/p' "$TMP/err" | head -1)
	if [ "$RC" -eq 0 ] && [ -n "$n" ] && [ "$n" -ge "$CKPT" ] && [ $((p1 - n)) -le "$CKPT" ]; then
		ok "client killed with SIGKILL: resumes at the last checkpoint ($n bytes; $((p1 - n)) fetched twice)"
	else
		fail "client SIGKILL resume: rc $RC, .part $p1, resumed at ${n:-?}"
		show "$TMP/err"
	fi
	same "and the result is byte-identical" "$ROOT/big" "$TMP/w/big"
else
	fail "big.part did not grow (client kill)"
	kill -KILL "$BGPID" 2>/dev/null || true
fi

# ---- Ctrl-C, then the source changes: start over ----------------------------------

rm -f "$TMP"/w/big*
bg_client "$TMP/w" get --limit-rate 16M "$T:big"
if wait_size "$TMP/w/big.part" $((4 * MiB)) 30; then
	kill -INT "$BGPID"
	wait_bg 10
	if [ "$BGRC" -eq 130 ] && [ -s "$TMP/w/big.part" ] && [ -s "$TMP/w/big.part.ppcp" ] &&
		grep -q "resume" "$TMP/bg.err"; then
		ok "Ctrl-C during get: exit 130, .part and sidecar kept for a resume"
	else
		fail "Ctrl-C during get: rc $BGRC"
		show "$TMP/bg.err"
	fi
	head -c $((64 * MiB)) /dev/urandom >"$ROOT/big.new"
	mv "$ROOT/big.new" "$ROOT/big"
	in_w -v get "$T:big"
	if [ "$RC" -eq 0 ] && grep -q "changed on the server since the partial download" "$TMP/err" &&
		! grep -q "resuming at" "$TMP/err"; then
		ok "a source rewritten between two runs is detected: it starts over"
	else
		fail "source changed between runs: rc $RC"
		show "$TMP/err"
	fi
	same "and the new content arrives" "$ROOT/big" "$TMP/w/big"
else
	fail "big.part did not grow (Ctrl-C)"
	kill -KILL "$BGPID" 2>/dev/null || true
fi

# ---- the source changes during the transfer ------------------------------------------

# 32 MiB at 8 MiB/s, written to near its end after 4 MiB arrived: the
# daemon cannot have read that far yet (socket buffers hold a few MiB).
head -c $((32 * MiB)) /dev/urandom >"$ROOT/moving"
touch -d '2020-01-01 00:00:00' "$ROOT/moving"
bg_client "$TMP/w" get --limit-rate 8M "$T:moving"
if wait_size "$TMP/w/moving.part" $((4 * MiB)) 30; then
	head -c 4096 /dev/urandom | dd of="$ROOT/moving" bs=4096 seek=$((32 * MiB / 4096 - 1)) \
		conv=notrunc 2>/dev/null
	wait_bg 30
	if [ "$BGRC" -eq 255 ] && grep -q "changed during the transfer" "$TMP/bg.err"; then
		ok "a file written to during the get: exit 255, 'changed during the transfer'"
	else
		fail "file changed during get: rc $BGRC"
		show "$TMP/bg.err"
	fi
	absent "and no file, .part nor sidecar is left" "$TMP/w/moving" "$TMP/w/moving.part" \
		"$TMP/w/moving.part.ppcp"
else
	fail "moving.part did not grow"
	kill -KILL "$BGPID" 2>/dev/null || true
fi
rm -f "$ROOT/moving"

# ---- put: Ctrl-C, then resume; a local file that changes ---------------------------

rm -f "$ROOT/big-up"
bg_client "$TMP/w" put --limit-rate 16M big "$T:big-up"
# Once the server holds part of it (a fixed 2.5 s could end before a slow
# start sent anything, and there would be nothing to resume).
wait_upload big-up $((8 * MiB)) 30 || true
kill -INT "$BGPID" 2>/dev/null || true
wait_bg 10
if [ "$BGRC" -eq 130 ] && [ ! -e "$ROOT/big-up" ]; then
	ok "Ctrl-C during put: exit 130, nothing under the final name on the server"
else
	fail "Ctrl-C during put: rc $BGRC"
	show "$TMP/bg.err"
fi
in_w -v put big "$T:big-up"
n=$(sed -n 's/.*resuming at \([0-9]*\) bytes.*/\1/p' "$TMP/err" | head -1)
if [ "$RC" -eq 0 ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
	ok "the second put resumes at $n bytes"
else
	fail "put resume: rc $RC, n '${n:-}'"
	show "$TMP/err"
fi
same "the resumed upload is byte-identical" "$TMP/w/big" "$ROOT/big-up"
rm -f "$ROOT/big-up"

head -c $((8 * MiB)) /dev/urandom >"$TMP/w/moving"
bg_client "$TMP/w" put --limit-rate 4M moving "$T:moving-up"
# Once the upload is under way (after a fixed 1 s a slow start could still
# be before the client looked at the file: a plain upload of the new bytes).
wait_upload moving-up $MiB 30 || true
# Near the end: bytes not sent yet (what was sent already is what was hashed).
head -c 4096 /dev/urandom | dd of="$TMP/w/moving" bs=4096 seek=$((8 * MiB / 4096 - 1)) conv=notrunc 2>/dev/null
wait_bg 30
if [ "$BGRC" -eq 255 ] && grep -q "changed during the transfer" "$TMP/bg.err" &&
	[ ! -e "$ROOT/moving-up" ]; then
	ok "a local file written to during the put: exit 255, 'changed', nothing on the server"
else
	fail "local file changed during put: rc $BGRC"
	show "$TMP/bg.err"
fi
rm -f "$TMP/w/moving" "$TMP/w/big"

# ---- refusals: nothing is created locally ------------------------------------------

echo secret-outside >"$TMP/outside"
ln -s "$TMP/outside" "$ROOT/escape"
mkdir -p "$ROOT/adir"
mkfifo "$ROOT/fifo"
(cd "$TMP/w" && rm -rf ./*)
in_w get e2e-files:../../etc/passwd
expect_rc "get ID:../../etc/passwd is refused" 255
expect_in "with a message naming the file root" "outside|file root|unauthorized" err
if [ "$(wc -l <"$TMP/err")" -eq 1 ]; then ok "in one line"; else fail "more than one line"; show "$TMP/err"; fi
absent "and neither passwd nor passwd.part is created" "$TMP/w/passwd" "$TMP/w/passwd.part" \
	"$TMP/w/passwd.part.ppcp"
in_w get "$T:/etc/passwd"
expect_rc "an absolute path is refused" 255
absent "nothing created" "$TMP/w/passwd" "$TMP/w/passwd.part"
in_w get "$T:escape"
expect_rc "a symlink pointing out of the root is refused" 255
expect_in "clearly" "refused" err
absent "nothing created" "$TMP/w/escape" "$TMP/w/escape.part" "$TMP/w/escape.part.ppcp"
in_w get "$T:adir"
expect_rc "a directory without -r" 255
expect_in "is not a regular file, and -r is suggested" "not.regular.*-r" err
in_w get "$T:fifo"
expect_rc "a FIFO is refused (no hang)" 255
expect_in "as not a regular file" "not.regular" err
absent "nothing created for them" "$TMP/w/adir" "$TMP/w/fifo" "$TMP/w/fifo.part"
in_w get "$T:no-such-file"
expect_rc "a missing file" 255
expect_in "not found" "not-found|no such" err
rm -f "$ROOT/fifo"

# A daemon without --allow-put.
for _ in 1 2 3 4 5; do
	PORT2=$(random_port)
	start_ppcpd e2e-ro 127.0.0.1 "$PORT2" --file-root "$ROOT" --state-dir "$TMP/pd-ro" && break
	stop_ppcpd e2e-ro KILL
done
echo up >"$TMP/w/up"
run "$PPCP" --psk-file "$TMP/psk" --port "$PORT2" put "$TMP/w/up" "127.0.0.1:$PORT2:up"
expect_rc "put to a daemon without --allow-put is refused" 255
expect_in "the message names allow-put" "allow-put" err
[ ! -e "$ROOT/up" ] && ok "nothing written on the server" || fail "up written"
stop_ppcpd e2e-ro

# ---- permission denied on the server (a daemon run as nobody, when we are root) ----

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
	NB=$(mktemp -d /tmp/ppcp-files-nobody.XXXXXX)
	EXTRA_CLEANUP="rm -rf $NB"
	chmod 755 "$NB"
	mkdir -p "$NB/root" "$NB/state"
	echo secret >"$NB/root/private"
	chmod 600 "$NB/root/private"
	cp "$TMP/psk" "$NB/psk"
	chown 65534:65534 "$NB/psk" "$NB/state"
	chmod 755 "$NB/root"
	PORT4=$(random_port)
	timeout 120 setpriv --reuid=65534 --regid=65534 --clear-groups "$PPCPD" --psk-file "$NB/psk" \
		--listen "127.0.0.1:$PORT4" --server-id e2e-nobody --file-root "$NB/root" --allow-put \
		--state-dir "$NB/state" --log-level info >"$TMP/ppcpd-nobody.log" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 1 300); do
		grep -q listening "$TMP/ppcpd-nobody.log" && break
		sleep 0.1
	done
	run "$PPCP" --psk-file "$TMP/psk" --port "$PORT4" get "127.0.0.1:$PORT4:private" "$TMP/w/private"
	expect_rc "get of a file the server may not read" 255
	expect_in "says the server's system refused access" "permission-denied" err
	absent "nothing created" "$TMP/w/private" "$TMP/w/private.part"
	echo up >"$TMP/w/up"
	run "$PPCP" --psk-file "$TMP/psk" --port "$PORT4" put "$TMP/w/up" "127.0.0.1:$PORT4:up"
	expect_rc "put into a directory the server may not write" 255
	expect_in "says so" "permission-denied" err
	rm -f "$TMP/w/up"
else
	echo "SKIP: not root (or no setpriv): the permission-denied cases are not run"
fi

# ---- --limit-rate -------------------------------------------------------------------

head -c $MiB /dev/urandom >"$ROOT/r1"
t0=$(date +%s%N)
in_w get --limit-rate 512K "$T:r1"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$RC" -eq 0 ] && [ "$ms" -ge 1000 ] && cmp -s "$ROOT/r1" "$TMP/w/r1"; then
	ok "get --limit-rate 512K of 1 MiB takes ${ms} ms (>= half of 2 s)"
else
	fail "get --limit-rate: rc $RC in $ms ms"
	show "$TMP/err"
fi
t0=$(date +%s%N)
in_w put --limit-rate 512K r1 "$T:r1-up"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
if [ "$RC" -eq 0 ] && [ "$ms" -ge 1000 ] && cmp -s "$ROOT/r1" "$ROOT/r1-up"; then
	ok "put --limit-rate 512K of 1 MiB takes ${ms} ms (>= half of 2 s)"
else
	fail "put --limit-rate: rc $RC in $ms ms"
	show "$TMP/err"
fi
in_w get --limit-rate 5X "$T:r1"
expect_rc "a malformed rate is a usage error" 255

# ---- -r both ways ------------------------------------------------------------------

mkdir -p "$ROOT/tree/a/b" "$ROOT/tree/empty"
echo one >"$ROOT/tree/one"
head -c 300000 /dev/urandom >"$ROOT/tree/a/two"
: >"$ROOT/tree/a/b/zero"
ln -s one "$ROOT/tree/link"
in_w get -r "$T:tree"
if [ "$RC" -eq 0 ] && diff -r "$ROOT/tree" "$TMP/w/tree" 2>&1 | grep -v "^Only in $ROOT/tree: link" |
	grep -q .; then
	fail "get -r: trees differ"
	diff -r "$ROOT/tree" "$TMP/w/tree" || true
elif [ "$RC" -eq 0 ]; then
	ok "get -r copies the tree (files, subdirectories, an empty one)"
else
	fail "get -r: rc $RC"
	show "$TMP/err"
fi
expect_in "the symlink is skipped with a warning" "link: .*skipped" err
[ ! -e "$TMP/w/tree/link" ] && ok "and not created" || fail "link created"
mkdir -p "$TMP/w/dest"
in_w get -r "$T:tree" dest
[ "$RC" -eq 0 ] && [ -f "$TMP/w/dest/tree/a/two" ] && ok "get -r into an existing directory goes inside it" ||
	fail "get -r into dest: rc $RC"
rm -rf "$ROOT/tree-up"
in_w put -r tree "$T:tree-up"
if [ "$RC" -eq 0 ] && cmp -s "$ROOT/tree/a/two" "$ROOT/tree-up/a/two" &&
	cmp -s "$ROOT/tree/one" "$ROOT/tree-up/one" && [ -f "$ROOT/tree-up/a/b/zero" ]; then
	ok "put -r copies the tree back"
else
	fail "put -r: rc $RC"
	show "$TMP/err"
fi
in_w put -r tree "$T:tree-up2/"
[ "$RC" -eq 0 ] && [ -f "$ROOT/tree-up2/tree/a/two" ] && ok "put -r DIR ID:DEST/ goes inside DEST" ||
	{ fail "put -r into DEST/: rc $RC"; show "$TMP/err"; }
in_w put tree/one "$T:nodir/one"
expect_rc "put into a missing directory without -p" 255
expect_in "suggests -p" "-p" err
in_w put -p tree/one "$T:nodir/one"
expect_rc "with -p the directory is created" 0

# ---- progress bar ---------------------------------------------------------------------

rm -f "$TMP/w/r1"
in_w get "$T:r1"
if [ "$RC" -eq 0 ] && [ ! -s "$TMP/err" ]; then ok "no progress bar (nothing at all) on a pipe"; else fail "stderr on a pipe"; show "$TMP/err"; fi
if command -v script >/dev/null 2>&1; then
	rm -f "$TMP/w/r1"
	(cd "$TMP/w" && timeout 60 script -qec "'$PPCP' --psk-file '$TMP/psk' --port $PORT get '$T:r1'" \
		/dev/null >"$TMP/tty.out" 2>&1) || true
	if grep -q "100%" "$TMP/tty.out" && cmp -s "$ROOT/r1" "$TMP/w/r1"; then
		ok "a progress bar on a terminal"
	else
		fail "no progress bar on a terminal"
		show "$TMP/tty.out"
	fi
	rm -f "$TMP/w/r1"
	(cd "$TMP/w" && timeout 60 script -qec "'$PPCP' -q --psk-file '$TMP/psk' --port $PORT get '$T:r1'" \
		/dev/null >"$TMP/tty.out" 2>&1) || true
	if ! grep -q "%" "$TMP/tty.out"; then ok "-q hides it"; else fail "-q shows a bar"; fi
fi

# ---- full disks (private tmpfs mounts, when allowed) -------------------------------------

if unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs "$1"' sh "$TMP/w" 2>/dev/null; then
	head -c $((8 * MiB)) /dev/urandom >"$ROOT/eight"
	set +e
	unshare -m sh -c 'mount -t tmpfs -o size=4m tmpfs "$1" && cd "$1" &&
		"$2" --psk-file "$3" --port "$4" get "$5" 2>"$6"; rc=$?
		echo "rc=$rc part=$(stat -c %s eight.part 2>/dev/null) final=$(ls eight 2>/dev/null)"' \
		sh "$TMP/w" "$PPCP" "$TMP/psk" "$PORT" "$T:eight" "$TMP/err" >"$TMP/out"
	set -e
	if grep -q "rc=255 part=[0-9]" "$TMP/out" && grep -q "final=$" "$TMP/out" &&
		grep -q "local disk full" "$TMP/err" && grep -q "resume" "$TMP/err"; then
		ok "a full local disk: exit 255, 'local disk full', .part kept for a resume, no final file"
	else
		fail "full local disk"
		show "$TMP/out" "$TMP/err"
	fi
	# The server's disk full: a daemon whose root is a small private tmpfs.
	SROOT=$TMP/sroot
	mkdir -p "$SROOT"
	PORT3=$(random_port)
	timeout 120 unshare -m sh -c 'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"' \
		sh "$SROOT" "$PPCPD" --psk-file "$TMP/psk" --listen "127.0.0.1:$PORT3" \
		--server-id e2e-full --file-root "$SROOT" --allow-put --state-dir "$TMP/pd-full" \
		--log-level info >"$TMP/ppcpd-full.log" 2>&1 &
	PIDS+=("$!")
	# Under a loaded machine (CI runs tests in parallel) the start may be
	# slow: wait up to 30 s, and say so if it never came up.
	for _ in $(seq 1 300); do
		grep -q listening "$TMP/ppcpd-full.log" && break
		sleep 0.1
	done
	grep -q listening "$TMP/ppcpd-full.log" || { fail "the tmpfs daemon did not start"; show "$TMP/ppcpd-full.log"; }
	run "$PPCP" --psk-file "$TMP/psk" --port "$PORT3" put "$ROOT/eight" "127.0.0.1:$PORT3:eight"
	expect_rc "put to a server whose disk is full" 255
	expect_in "says the server's disk is full" "no-space|disk is full" err
	rm -f "$ROOT/eight"
else
	echo "SKIP: no private tmpfs mounts here (unshare -m): full-disk cases not run"
fi

# ---- an owner that breaks the protocol (tests/e2e/fake_owner.py) ------------------------

if python3 -c 'import cryptography' 2>/dev/null; then
	mkdir -p "$TMP/froot" "$TMP/f"
	head -c 3000000 /dev/urandom >"$TMP/froot/a.bin"
	fake() { # fake FAULT - start the fake owner; FPORT, FPID
		rm -f "$TMP/fake.log" # not the last one's port
		python3 "$HERE/fake_owner.py" --psk-file "$TMP/psk" --root "$TMP/froot" \
			--fault "$1" >"$TMP/fake.log" 2>&1 &
		FPID=$!
		PIDS+=("$FPID")
		FPORT=
		for _ in $(seq 1 100); do
			FPORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/fake.log" \
				2>/dev/null || true)
			[ -n "$FPORT" ] && return 0
			sleep 0.05
		done
		echo "fake_owner did not start"
		show "$TMP/fake.log"
		return 1
	}
	fget() { # fget ARGS... - ppcp get from the fake owner, in $TMP/f
		set +e
		(cd "$TMP/f" && timeout 30 "$PPCP" --psk-file "$TMP/psk" get "$@" \
			</dev/null >"$TMP/out" 2>"$TMP/err")
		RC=$?
		set -e
	}
	for fault in wrong-offset unknown-stream past-range early-last odd-stream json-wrong-offset; do
		fake "$fault"
		rm -rf "${TMP:?}/f/"*
		enc=
		[ "$fault" = json-wrong-offset ] && enc=--no-binary
		fget $enc "127.0.0.1:$FPORT:a.bin"
		if [ "$RC" -eq 255 ] && grep -q "broke the protocol" "$TMP/err" && [ ! -e "$TMP/f/a.bin" ]; then
			ok "an owner that sends $fault: refused, the session closed, no final file"
		else
			fail "fault $fault: rc $RC"
			show "$TMP/err"
		fi
		kill "$FPID" 2>/dev/null || true
		wait "$FPID" 2>/dev/null || true
	done
	for fault in bad-hash changed-error; do
		fake "$fault"
		rm -rf "${TMP:?}/f/"*
		fget "127.0.0.1:$FPORT:a.bin"
		if [ "$RC" -eq 255 ] && grep -q "changed during the transfer" "$TMP/err" &&
			[ -z "$(ls -A "$TMP/f")" ]; then
			ok "$fault: 'changed during the transfer', nothing left locally"
		else
			fail "fault $fault: rc $RC"
			show "$TMP/err"
			ls -A "$TMP/f"
		fi
		kill "$FPID" 2>/dev/null || true
		wait "$FPID" 2>/dev/null || true
	done
	fake list-bad-name
	rm -rf "${TMP:?}/f/"*
	mkdir -p "$TMP/froot/d"
	echo x >"$TMP/froot/d/x"
	fget -r "127.0.0.1:$FPORT:d"
	if [ "$RC" -eq 255 ] && [ -f "$TMP/f/d/x" ] && [ ! -e "$TMP/escape" ] && [ ! -e "$TMP/f/escape" ]; then
		ok "a listing with '../escape' in it: that entry is refused, the others copied"
	else
		fail "list-bad-name: rc $RC"
		show "$TMP/err"
	fi
	kill "$FPID" 2>/dev/null || true
	wait "$FPID" 2>/dev/null || true
	fake put-odd-stream
	run "$PPCP" --psk-file "$TMP/psk" put "$TMP/froot/a.bin" "127.0.0.1:$FPORT:b.bin"
	expect_rc "an upload head with an odd stream is refused" 255
	expect_in "as a protocol violation" "broke the protocol" err
	kill "$FPID" 2>/dev/null || true
	wait "$FPID" 2>/dev/null || true
	fake put-done-wrong-size
	run "$PPCP" --psk-file "$TMP/psk" put "$TMP/froot/a.bin" "127.0.0.1:$FPORT:b.bin"
	expect_rc "a final answer with another size is refused" 255
	kill "$FPID" 2>/dev/null || true
	wait "$FPID" 2>/dev/null || true
else
	echo "SKIP: python3-cryptography missing: the fake owner cases are not run"
fi

grep -q "AddressSanitizer\|runtime error" "$TMP"/ppcpd-*.log && fail "sanitizer report in the daemon log" || true
finish
