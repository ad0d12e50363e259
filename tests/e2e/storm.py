#!/usr/bin/env python3
"""storm.py - an authenticated client that sends ppcpd a bounded storm of
random, mostly malformed session messages (tests/e2e/t_authed_storm.sh).

Holding the PSK makes a client authenticated, not trustworthy: every field
of every message after AUTH_OK is still input.  This client completes real
handshakes with the independent implementation of tests/interop, then sends
messages drawn from a grammar of PROTOCOL.md §7-§9 that mixes valid requests
with wrong types, out-of-range numbers, hostile paths, unknown names and
ids, stray FILE_CHUNKs and binary records, bad envelopes and broken JSON.
It reads what comes back as it goes.  When the daemon ends a session (as it
must for a malformed KEY_UPDATE or BYE, or a binary record out of order),
it reconnects and goes on.

usage: storm.py INTEROP_DIR PORT PSK_FILE SEED COUNT SECONDS ABS_CANARY

ABS_CANARY is an absolute path (a file outside the daemon's root) that the
storm names in requests; it must never be read out, created or changed.

Runs until COUNT messages are sent or SECONDS have passed.  Prints one
summary line and the ERROR codes it received; exits 1 when the daemon
stops accepting connections (it died), 0 otherwise.  The seed makes a run
reproducible (same messages; timing may differ).  Loopback only.
"""
import base64
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, sys.argv[1])
import ppcp_client as pc  # noqa: E402

PORT, PSK = int(sys.argv[2]), pc.read_psk_file(sys.argv[3])
SEED, COUNT, SECONDS = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
ABS = sys.argv[7]
R = random.Random(SEED)

# Every hostile path points at a canary of the test's own (t_authed_storm.sh
# puts the root three levels below its jail): never at a system file, so
# that a broken confinement would be seen, and would harm nothing.
PATHS = ["f", "sub/g", "sub", ".", "", "../canary", "../../canary", "../../../canary",
         "sub/../../canary", "../../etc/shadow", "link_out/x", "link_out/secret", "link_out",
         "link_file", "nonexistent", "a" * 300, "x/" * 40 + "y", "sub/./g", "fifo", "up1",
         "sub/new/up2", "dir/", "\u00e9t\u00e9", "..", "./f", "sub\\g", "f\n", " f",
         "ABS", "ABS/../canary"]
INTS = [0, 1, -1, 7, 100, 4096, 65536, 2**31, 2**53 - 1, 2**53, 2**62, -2**63, 2**63 - 1]
NAMES = ["exec", "shell", "status", "stdin", "cancel", "echo", "EXEC", "", "x" * 100, "list"]
PROGS = ["echo", "true", "cat", "false", "sleep", "/bin/echo", "nonexistent", "sh", "", "../bin/echo"]
CODES = ["cancelled", "invalid-message", "unauthorized", "io-error", "x", "", "changed"]


def rint():
    r = R.random()
    if r < 0.6:
        return R.choice(INTS)
    if r < 0.75:
        return R.choice([1.5, -0.0, 1e300, "7", None, True, [], {}])
    return R.randrange(-10, 1 << 20)


def rstr(n=20):
    alphabet = "abc/._-\u00e9\u2603 \t\"\\"
    return "".join(R.choice(alphabet) for _ in range(R.randrange(n)))


def rval(depth=0):
    r = R.random()
    if depth > 3 or r < 0.3:
        return rint()
    if r < 0.5:
        return rstr()
    if r < 0.7:
        return [rval(depth + 1) for _ in range(R.randrange(4))]
    return {rstr(6): rval(depth + 1) for _ in range(R.randrange(4))}


def b64(n):
    return base64.b64encode(os.urandom(n)).decode()


class Storm:
    def __init__(self):
        self.sent = 0
        self.sessions = 0
        self.received = 0
        self.ended = 0
        self.codes = {}
        self.ids = []          # ids of requests we sent (for stdin, cancel, chunks, errors)
        self.leaks = 0
        self.data = 0          # records that carried file data
        self.c = None
        self.sock = None

    # ---- connection ----
    def connect(self):
        deadline = time.time() + 5
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=5)
                self.c = pc.Client(pc.Transport(self.sock), PSK)
                self.c.handshake()
                self.sessions += 1
                return
            except ConnectionRefusedError:
                print("storm: the daemon refuses connections (dead?)")
                sys.exit(1)
            except (pc.PPCPError, OSError) as e:
                self.close()
                if time.time() > deadline:
                    print("storm: cannot complete a handshake for 5 s: %s" % e)
                    sys.exit(1)
                time.sleep(0.05)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.c = None

    def lost(self):
        self.ended += 1
        self.close()

    # ---- sending ----
    def raw(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8", "surrogatepass")
        self.c.t.send_frame(self.c.send_dir.seal(text))

    def msg(self, t, p, i=None, env=None):
        i = i if i is not None else self.c._new_id()
        e = {"v": 1, "t": t, "p": p, "i": i, "s": int(time.time())}
        if env:
            env(e)
        self.raw(json.dumps(e, separators=(",", ":")))
        return i

    def request(self, t, p):
        i = self.msg(t, p)
        self.ids = (self.ids + [i])[-20:]
        return i

    def some_id(self):
        if self.ids and R.random() < 0.8:
            return R.choice(self.ids)
        return R.choice(["00000001", "ffffffff", "x", "0" * 64, rstr(8) or "q"])

    # ---- the grammar ----
    def one(self):
        k = R.random()
        if k < 0.22:
            name = R.choice(NAMES)
            if name == "exec":
                argv = [R.choice(PROGS)] + [rstr(10) for _ in range(R.randrange(3))]
                if R.random() < 0.1:
                    argv = R.choice([[], [1], "echo", None, ["a" * 70000], ["a\u0000b"]])
                args = {"argv": argv}
                if R.random() < 0.5:
                    args["stdin"] = R.choice([True, False, 1, "yes"])
                if R.random() < 0.5:
                    args["timeout"] = R.choice([1, 2, 0, -1, 86401, 1.5, "5", None])
            elif name == "stdin":
                args = {"of": self.some_id(), "data": R.choice([b64(R.randrange(100)), "!!", "", 7]),
                        "eof": R.choice([True, False, None])}
            elif name == "cancel":
                args = {"of": self.some_id()}
            elif name == "shell":
                args = {"command": R.choice(["echo hi", "", 7])}
            else:
                args = rval() if R.random() < 0.5 else {}
            if R.random() < 0.1:
                args = R.choice([None, [], "args", 3])
            self.request("COMMAND", {"name": name, "args": args})
        elif k < 0.42:
            op = R.choice([None, None, "put", "list", "get", "delete", 3])
            p = {"path": R.choice(PATHS).replace("ABS", ABS)}
            if op is not None:
                p["op"] = op
            if op == "put":
                p["size"] = R.choice([0, 1, 10, 1000, rint()])
                p["sha256"] = R.choice(["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                                        "0" * 64, "zz", "", os.urandom(32).hex(), 5])
                if R.random() < 0.5:
                    p["mode"] = R.choice([0o644, 0o7777, -1, 0o777, "644", 1 << 40])
                if R.random() < 0.3:
                    p["mkdir"] = R.choice([True, False, "y"])
            elif op is None or op == "get":
                if R.random() < 0.7:
                    p["offset"] = rint()
                if R.random() < 0.5:
                    p["length"] = rint()
            if R.random() < 0.5:
                p["binary"] = R.choice([True, False, 0])
            if R.random() < 0.05:
                p = R.choice([None, [], "f"])
            self.request("FILE_REQUEST", p)
        elif k < 0.55:
            p = R.choice([
                {"offset": rint(), "data": b64(R.randrange(200)), "last": R.choice([True, False])},
                {"offset": 0, "data": "not base64!", "last": True},
                {"done": True, "size": rint()},
                rval(),
            ])
            self.msg("FILE_CHUNK", p, self.some_id())
        elif k < 0.59:
            # A binary-data record: stream, offset, flags, data.
            rec = b"\x01" + struct.pack(">IQB", R.choice([0, 1, 2, 3, 4, 0xFFFFFFFF]),
                                        R.choice([0, 1, 1 << 40]), R.randrange(4)) + os.urandom(R.randrange(64))
            if R.random() < 0.2:
                rec = rec[:R.randrange(1, 14)]
            self.raw(rec)
        elif k < 0.67:
            self.msg("ERROR", {"code": R.choice(CODES), "message": rstr(30)}, self.some_id())
        elif k < 0.72:
            self.msg("RESPONSE", rval(), self.some_id())
        elif k < 0.78:
            t = R.choice(["HEARTBEAT", "HEARTBEAT_ACK"])
            self.msg(t, R.choice([{"ts": rint()}, None, {}, rval()]))
        elif k < 0.80:
            if R.random() < 0.85:
                self.msg("KEY_UPDATE", {})
                self.c.send_dir.rekey()
            else:
                self.msg("KEY_UPDATE", rval())  # malformed: fatal
        elif k < 0.81:
            self.msg("BYE", R.choice([{"reason": "storm"}, None, 5]))
        elif k < 0.86:
            # Envelope trouble: version, missing or mistyped members, unknown type.
            def env(e):
                r = R.randrange(6)
                if r == 0:
                    e["v"] = R.choice([2, 0, "1", 1.0])
                elif r == 1:
                    del e[R.choice(["v", "t", "p", "i", "s"])]
                elif r == 2:
                    e["i"] = R.choice(["", "a" * 65, "\u00e9", 5, "a b"])
                elif r == 3:
                    e["t"] = R.choice(["NOPE", "AUTH", "PING", "CLIENT_HELLO", 7, ""])
                elif r == 4:
                    e["s"] = R.choice([1.5, "now", 2**70])
                else:
                    e["extra"] = rval()
            self.msg(R.choice(["COMMAND", "FILE_REQUEST", "HEARTBEAT"]), {"name": "status", "args": {}},
                     env=env)
        else:
            # Broken JSON.
            self.raw(R.choice([
                '{"v":1,"t":"COMMAND"',
                '{"v":1,"v":1,"t":"HEARTBEAT","p":null,"i":"1","s":0}',
                "[" * 100000,
                '{"v":1,"t":"COMMAND","p":{"name":"status","args":{}},"i":"\\u0000","s":0}',
                '{"v":1e400,"t":"x","p":null,"i":"1","s":0}',
                b'{"v":1,"t":"\xff\xfe","p":null,"i":"1","s":0}',
                '{"v":1,"t":"HEARTBEAT","p":null,"i":"1","s":0,"x":"\\ud800"}',
                os.urandom(R.randrange(1, 100)),
                "{}",
            ]))
        self.sent += 1

    # ---- reading ----
    def drain(self, wait=0.0):
        """Read every record that is there now (or within `wait` s)."""
        while self.c is not None:
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                return
            wait = 0.0
            try:
                m = self.c.recv_one("storm")
            except (pc.PPCPError, OSError, ValueError):
                self.lost()
                return
            self.received += 1
            self.check_leak(m)
            if isinstance(m, dict) and m.get("t") == "ERROR" and isinstance(m.get("p"), dict):
                code = str(m["p"].get("code"))
                self.codes[code] = self.codes.get(code, 0) + 1
            if self.c is not None and self.c.peer_closed:
                self.lost()
                return

    def check_leak(self, m):
        """File data that holds a canary's content came from outside the root."""
        data = b""
        if isinstance(m, tuple) and m[0] == "binary":
            data = m[1]
        elif isinstance(m, dict) and isinstance(m.get("p"), dict) and isinstance(m["p"].get("data"), str):
            try:
                data = base64.b64decode(m["p"]["data"])
            except ValueError:
                data = b""
        if data:
            self.data += 1
        if b"canary" in data or b"outside secret" in data:
            self.leaks += 1
            print("storm: LEAK: a canary's content came back: %r" % data[:60])

    def run(self):
        end = time.time() + SECONDS
        while self.sent < COUNT and time.time() < end:
            if self.c is None:
                self.connect()
            try:
                self.one()
            except (OSError, pc.PPCPError):
                self.lost()
                continue
            # A moment for the answers, so that they are read before a
            # fatal message ends the session.
            self.drain(0.002)
        if self.c is not None:
            self.drain(0.5)
            self.close()
        print("storm: seed %d: %d messages in %d sessions (%d ended by the daemon), %d records back, "
              "%d with file data, %d leaks" % (SEED, self.sent, self.sessions, self.ended, self.received,
                                                self.data, self.leaks))
        for code in sorted(self.codes):
            print("storm: ERROR %s x%d" % (code, self.codes[code]))


Storm().run()
