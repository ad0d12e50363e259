#!/usr/bin/env bash
# t_log_hygiene.sh - secrets and payloads stay out of the logs (adversarial
# T47, second half).  With a KNOWN test PSK, ppcpd at --log-level debug and
# ppcp with -v -v go through handshakes, exec, status, a failed handshake
# with a wrong PSK (a known one too) and a file transfer both ways (a
# download and an upload); then every log (the daemon's output, the
# clients' stderr, the clients' stdout where it is not the payload itself,
# the daemon's state directory) is scanned for the PSK and the wrong PSK
# (hex in both cases, every 8-byte window of it in hex, the raw bytes,
# base64), for every secret, key and IV of a session of the independent
# Python client (its --keylog; the same keys ppcpd held), for the files'
# contents and for the command's output.  The
# output must of course reach the client's stdout.
#
# Core dumps (the other half of "never in a core file"): RLIMIT_CORE 0 is
# checked in t_daemon_config.sh (not repeated here).  Its "not dumpable"
# check reads the owner of /proc/PID/environ, which proves nothing when the
# tests run as root (every process of root shows root there); so here, when
# we are root, a ppcpd run as nobody must show root-owned /proc files
# (a positive control first: a dumpable process of nobody shows nobody),
# and a ppcpd killed with SIGSEGV under `ulimit -c unlimited` leaves no core
# file and no core-dumped flag (a positive control first: `sleep` does).
#
# Network safety: loopback only, ppcp always with --discover-addr 127.0.0.1.
source "$(dirname "$0")/daemon_lib.sh"
: "${PPCP:?set PPCP to the ppcp binary}"

PSK_HEX=8f3c2a91d4e6b7058a1f93c6e2d4b7a90c5e8f1a3b6d9c2e4f7a0b3c6d9e1f24
WRONG_HEX=41d27c9e05b38fa6e1c4d7029b5a83f6d0e9c2b7a4f1385e6c0d9b2a7f4e1c83
(umask 077 && printf '%s\n' "$PSK_HEX" >"$TMP/psk" && printf '%s\n' "$WRONG_HEX" >"$TMP/wrong")

R=$RANDOM$RANDOM
FILE_MARK=FILE-CONTENT-MARKER-$R
UP_MARK=UPLOAD-CONTENT-MARKER-$R
OUT_A=CMD-OUTPUT-
OUT_B=MARKER-$R
OUT_MARK=$OUT_A$OUT_B # the output of printf '%s%s\n' A B; neither argument is it

ROOT=$TMP/root
mkdir -p "$ROOT" "$TMP/w" "$TMP/logs"
{
	for _ in $(seq 1 200); do echo "$FILE_MARK"; done
	head -c 300000 /dev/urandom
	echo "$FILE_MARK"
} >"$ROOT/secret.txt"
for _ in $(seq 1 200); do echo "$UP_MARK"; done >"$TMP/w/up.txt"

start_daemon hygiene --allow-exec 'printf,true' --file-root "$ROOT" --allow-put
T=127.0.0.1:$PORT
n=0
# pcv NAME PSKFILE ARGS... - ppcp -v -v from $TMP/w; stdout and stderr
# kept as $TMP/logs/NAME.out and NAME.err; status in RC.
pcv() {
	local name=$1 psk=$2
	shift 2
	set +e
	(cd "$TMP/w" && timeout 60 "$PPCP" -v -v --psk-file "$psk" --port "$PORT" \
		--discover-addr 127.0.0.1 "$@") </dev/null >"$TMP/logs/$name.out" 2>"$TMP/logs/$name.err"
	RC=$?
	set -e
	cp "$TMP/logs/$name.out" "$TMP/out"
	cp "$TMP/logs/$name.err" "$TMP/err"
}

pcv exec "$TMP/psk" exec "$T" printf '%s%s\n' "$OUT_A" "$OUT_B"
expect_rc "exec through a handshake" 0
check "the command's output reaches the client's stdout" test "$(cat "$TMP/logs/exec.out")" = "$OUT_MARK"
mv "$TMP/logs/exec.out" "$TMP/payload-exec.out" # the payload itself: not a log
expect_in "the client logged (-v -v)" "connected to" "$TMP/logs/exec.err"
pcv status "$TMP/psk" status "$T"
expect_rc "status" 0
pcv discover "$TMP/psk" discover
expect_rc "discover" 0
pcv wrong "$TMP/wrong" exec "$T" printf '%s%s\n' "$OUT_A" "$OUT_B"
check "a client with a wrong PSK fails (exit $RC)" test "$RC" -ne 0
check "and runs nothing" test ! -s "$TMP/logs/wrong.out"
# The client closes first: ppcpd logs the failure when it reads the close,
# which can come after the client has exited.
check "the daemon logged the failed handshake" wait_log "handshake with 127\.0\.0\.1:[0-9]+ failed" 10
pcv get "$TMP/psk" get "$T:secret.txt"
expect_rc "get" 0
check "the download is byte-identical" cmp -s "$ROOT/secret.txt" "$TMP/w/secret.txt"
pcv get-base64 "$TMP/psk" get --no-binary "$T:secret.txt" secret64.txt
expect_rc "get in base64" 0
check "byte-identical" cmp -s "$ROOT/secret.txt" "$TMP/w/secret64.txt"
pcv put "$TMP/psk" put up.txt "$T:up.txt"
expect_rc "put" 0
check "the upload is byte-identical" cmp -s "$TMP/w/up.txt" "$ROOT/up.txt"
pcv put-base64 "$TMP/psk" put --no-binary up.txt "$T:up64.txt"
expect_rc "put in base64" 0
# A testclient session too: a wrong-PSK handshake from the library's
# blocking API, and the daemon's debug lines for it.
run timeout 30 "$TC" --psk-file "$TMP/wrong" --port "$PORT" handshake
check "the test client's wrong-PSK handshake fails" test "$RC" -ne 0
cp "$TMP/out" "$TMP/logs/tc-wrong.out"
cp "$TMP/err" "$TMP/logs/tc-wrong.err"
# The independent Python client knows every key of its session, and
# ppcpd holds the same ones: one session with a KEY_UPDATE and a command,
# at debug level, and its keys (--keylog, written outside the scanned
# directory) are looked for in every log below as well.
PY=/usr/bin/python3
KEYLOG=$TMP/keylog
: >"$KEYLOG"
if [ -x "$PY" ] && "$PY" -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null; then
	run timeout 30 "$PY" "$(dirname "$0")/../interop/ppcp_client.py" --port "$PORT" \
		--psk-file "$TMP/psk" --key-update --keylog "$KEYLOG" \
		--command-json "{\"name\":\"exec\",\"args\":{\"argv\":[\"printf\",\"%s%s\\\\n\",\"$OUT_A\",\"$OUT_B\"]}}"
	expect_rc "a session of the Python client with a KEY_UPDATE and an exec" 0
	check "its command ran (the output reached it)" grep -q "$OUT_MARK" "$TMP/out"
	cp "$TMP/err" "$TMP/logs/py.err"
	nkeys=$(grep -c . "$KEYLOG" || true)
	check "its key log holds the session's secrets, keys and IVs, the updated ones too ($nkeys)" \
		test "$nkeys" -ge 24 -a "$(grep -c '^send_secret_1 ' "$KEYLOG")" -eq 1
else
	echo "SKIP: $PY lacks the 'cryptography' package: the session keys are not looked for (the PSK still is)"
fi
stop_daemon TERM
check "SIGTERM: exit 0" test "$DRC" -eq 0
cp "$LOG" "$TMP/logs/ppcpd.log"
cp -r "$TMP/state-hygiene" "$TMP/logs/state"
echo "scanning $(find "$TMP/logs" -type f | wc -l) files, $(cat "$TMP"/logs/*.log "$TMP"/logs/*.err | wc -l) log lines"

# scan DIR - every secret and payload form, in every file under DIR
# (found ones are printed); 0 when nothing is found.
cat >"$TMP/scan.py" <<'EOF'
import base64, binascii, os, sys

top, keylog, psk, wrong, *marks = sys.argv[1:]
keys = [("PSK", psk), ("wrong PSK", wrong)]
keys += [tuple(l.split()) for l in open(keylog) if l.strip()]  # the Python client's session
needles = []
for name, hx in keys:
    raw = binascii.unhexlify(hx)
    needles += [(name + " hex", hx.encode()), (name + " HEX", hx.upper().encode()),
                (name + " raw bytes", raw), (name + " base64", base64.b64encode(raw)),
                (name + " base64 (unpadded)", base64.b64encode(raw).rstrip(b"="))]
    for i in range(0, len(raw) - 8 + 1):  # every 8-byte window, hex both cases
        w = hx[2 * i:2 * i + 16]
        needles += [("%s bytes %d-%d (hex)" % (name, i, i + 7), w.encode()),
                    ("%s bytes %d-%d (HEX)" % (name, i, i + 7), w.upper().encode())]
for m in marks:
    needles.append(("payload marker " + m, m.encode()))
    needles.append(("payload marker (base64 of a line) " + m, base64.b64encode((m + "\n").encode())[:24]))
bad = 0
for d, _, files in os.walk(top):
    for f in files:
        p = os.path.join(d, f)
        data = open(p, "rb").read()
        for what, n in needles:
            if n in data:
                print("FOUND %s in %s" % (what, p))
                bad += 1
sys.exit(1 if bad else 0)
EOF
scan() { python3 "$TMP/scan.py" "$1" "$KEYLOG" "$PSK_HEX" "$WRONG_HEX" "$FILE_MARK" "$UP_MARK" "$OUT_MARK"; }
if [ -s "$KEYLOG" ]; then
	keys_said="no key of the Python client's session ($(grep -c . "$KEYLOG") secrets, keys and IVs)"
else
	keys_said="(the session keys NOT looked for: see the SKIP above)"
fi
if scan "$TMP/logs"; then
	ok "no PSK, $keys_said, in any form (hex either case, any 8-byte window, raw, base64); no file content, no command output in any log"
else
	fail "a secret or a payload in the logs (above)"
fi
check "the scan would see the PSK (control: it is in the PSK file)" grep -q "$PSK_HEX" "$TMP/psk"
check "the scan would see the output (control: it is on the exec's stdout)" grep -q "$OUT_MARK" "$TMP/payload-exec.out"
if [ -s "$KEYLOG" ]; then
	c_ap=$(sed -n 's/^c_ap //p' "$KEYLOG")
	check "control: the key log's c_ap is the secret the client's data records were first sealed under" \
		test "$(sed -n 's/^send_secret_0 //p' "$KEYLOG")" = "$c_ap" -a -n "$c_ap"
	# Control: a log line with a key in base64, and one with 8 bytes of
	# an IV in upper-case hex, are found.
	mkdir -p "$TMP/control"
	sk=$(sed -n 's/^s_hs_key //p' "$KEYLOG")
	iv=$(sed -n 's/^recv_iv_0 //p' "$KEYLOG")
	printf 'debug key %s\n' "$(python3 -c 'import base64, sys; print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())' "$sk")" >"$TMP/control/a.log"
	printf 'debug nonce %s\n' "$(printf '%s' "${iv:4:16}" | tr a-f A-F)" >"$TMP/control/b.log"
	scan "$TMP/control" >"$TMP/control.out" || true
	check "control: the scan finds a handshake key in base64" \
		grep -q "^FOUND s_hs_key base64 in .*/a\.log$" "$TMP/control.out"
	check "control: the scan finds 8 bytes of an IV in upper-case hex" \
		grep -q "^FOUND recv_iv_0 bytes 2-9 (HEX) in .*/b\.log$" "$TMP/control.out"
fi

# -- core dumps: not dumpable, no core file --------------------------------------------
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: the not-dumpable and no-core checks need root, setpriv and python3 (RLIMIT_CORE 0: t_daemon_config.sh)"
	finish
	exit $?
fi
NB=$TMP/nobody
mkdir -p "$NB/state" "$NB/cwd"
chmod 755 "$TMP" "$NB"
cp "$TMP/psk" "$NB/psk"
chown 65534:65534 "$NB/psk" "$NB/state" "$NB/cwd"

timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups sleep 15 &
STPID=$!
PIDS+=("$STPID")
# Until setpriv has exec'd sleep: before, the child is timeout's fork or
# setpriv itself, whose /proc files belong to root.
SPID=
for _ in $(seq 1 200); do
	SPID=$(children "$STPID" | head -n1)
	[ -n "$SPID" ] && [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$SPID/cmdline")" = "sleep 15 " ] && break
	sleep 0.05
done
check "control: a dumpable process of nobody (sleep, pid $SPID) has its /proc files owned by nobody" \
	test -n "$SPID" -a "$(stat -c %u "/proc/$SPID/environ" 2>/dev/null)" = 65534
kill "$STPID" 2>/dev/null || true
wait "$STPID" 2>/dev/null || true

: >"$NB/ppcpd.log"
timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups "$PPCPD" --psk-file "$NB/psk" \
	--listen 127.0.0.1:0 --state-dir "$NB/state" --log-level debug >"$NB/ppcpd.log" 2>&1 &
NTPID=$!
PIDS+=("$NTPID")
for _ in $(seq 1 100); do
	grep -q "listening on" "$NB/ppcpd.log" && break
	sleep 0.05
done
NPID=$(children "$NTPID" | head -n1)
PIDS+=("$NPID")
check "ppcpd run as nobody (pid $NPID) is not dumpable: its /proc files belong to root" \
	test -n "$NPID" -a "$(stat -c %u "/proc/$NPID/environ" 2>/dev/null)" = 0
check "and its core size limit is 0" grep -Eq '^Max core file size +0 +0 ' "/proc/$NPID/limits"
kill "$NPID" 2>/dev/null || true

# SIGSEGV under `ulimit -c unlimited` in a directory where core files land
# (core_pattern here: $(cat /proc/sys/kernel/core_pattern)).
python3 - "$PPCPD" "$TMP/psk" "$TMP/cores" "${PPCP:-}" >"$TMP/cores.out" 2>&1 <<'EOF' || true
import os, resource, signal, subprocess, sys, time

ppcpd, psk, d = sys.argv[1:4]
os.makedirs(d + "/control", exist_ok=True)
os.makedirs(d + "/ppcpd/state", exist_ok=True)
resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

# A sanitizer build catches SIGSEGV itself and exits: let the signal kill.
env = dict(os.environ)
env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":handle_segv=0").lstrip(":")
env["UBSAN_OPTIONS"] = (env.get("UBSAN_OPTIONS", "") + ":handle_segv=0").lstrip(":")

def crash(cmd, cwd, wait_for=None, ready=None):
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    t = time.time()
    if wait_for:
        out = b""
        while wait_for not in out and time.time() - t < 10:
            out += p.stdout.read1(4096)
    elif ready:
        ready()
    else:
        time.sleep(0.3)
    os.kill(p.pid, signal.SIGSEGV)
    _, st = os.waitpid(p.pid, 0)
    time.sleep(0.2)
    files = [f for f in os.listdir(cwd) if f.startswith("core")]
    # Only a process that was still running when SIGSEGV came proves
    # anything: the signal must be what ended it.
    if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSEGV):
        print("%s: ended before the signal (status %d)" % (cmd[0], st))
    return os.WCOREDUMP(st), files

cd, cf = crash(["sleep", "10"], d + "/control")
print("control sleep: core_dumped %d files %s" % (cd, cf))
pd, pf = crash([ppcpd, "--psk-file", psk, "--listen", "127.0.0.1:0", "--state-dir", d + "/ppcpd/state",
                "--log-level", "debug"], d + "/ppcpd", b"listening on")
print("ppcpd: core_dumped %d files %s" % (pd, pf))

# ppcp holds the PSK too: crash it while it waits for a SERVER_HELLO from a
# listener on 127.0.0.1 that never answers.
import socket
ppcp = sys.argv[4] if len(sys.argv) > 4 else None
if ppcp:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    os.makedirs(d + "/ppcp", exist_ok=True)
    port = str(ls.getsockname()[1])
    ls.settimeout(10)
    # SIGSEGV once it has connected: main() has set the core limit by then
    # (a SIGSEGV still in its start-up would dump a core).  The connection
    # is kept open: it must still be waiting.
    held = []
    cd2, cf2 = crash([ppcp, "--psk-file", psk, "--discover-addr", "127.0.0.1", "--port", port,
                      "exec", "127.0.0.1", "--", "true"], d + "/ppcp",
                     ready=lambda: held.append(ls.accept()))
    print("ppcp: core_dumped %d files %s" % (cd2, cf2))
EOF
sed 's/^/    /' "$TMP/cores.out"
if grep -q '^control sleep: core_dumped 1' "$TMP/cores.out"; then
	expect_in "ppcpd killed by SIGSEGV under ulimit -c unlimited: no core dumped, no core file" \
		"^ppcpd: core_dumped 0 files \[\]$" "$TMP/cores.out"
	if grep -q 'ended before the signal' "$TMP/cores.out"; then
		fail "a process ended before SIGSEGV reached it: the core checks prove nothing"
	fi
	if [ -n "${PPCP:-}" ]; then
		expect_in "ppcp killed by SIGSEGV under ulimit -c unlimited: no core dumped, no core file" \
			"^ppcp: core_dumped 0 files \[\]$" "$TMP/cores.out"
	fi
else
	echo "SKIP: this system writes no core for a plain process either (core_pattern $(cat /proc/sys/kernel/core_pattern)): the no-core check proves nothing here"
	expect_in "ppcpd: no core dumped" "^ppcpd: core_dumped 0 " "$TMP/cores.out"
fi
finish
