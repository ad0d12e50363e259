#!/usr/bin/python3
"""evil_server.py - a server that holds the PSK and answers `ppcp` with random,
mostly wrong messages (tests/e2e/t_cli_storm.sh).

A server that authenticates is not trustworthy either: everything it sends
after AUTH_OK is input for the CLI.  The handshake and record layer come from
tests/e2e/fake_owner.py and tests/interop (written from PROTOCOL.md, not from
libppcp).  Each request of the client gets a random sequence of answers drawn
from a grammar of PROTOCOL.md §8-§9: RESPONSEs with bad streams, bad base64
and odd exit statuses, heads with wrong sizes, hashes, offsets and streams,
chunks out of order, binary records on unknown streams, listings with names
such as "../x", "/abs" and "a/b", ERRORs, HEARTBEATs, KEY_UPDATEs good and bad,
requests of its own (COMMAND, and FILE_REQUESTs for the client's files),
broken JSON and BYE.  Now and then it serves a request correctly.  It closes
every connection within about 2 s, so no client waits for its idle timeout.

It records in LEAK_LOG every sign that the client served one of its own
requests (a FILE_CHUNK head, FILE_CHUNK data or binary data toward it, or a
RESPONSE with output): a client must never do that.

usage: evil_server.py PSK_FILE SEED LEAK_LOG ABS_CANARY
Prints "listening on 127.0.0.1:PORT", then serves connections until killed,
the seed advancing by one per connection, and prints "session
authenticated" for each completed handshake.  Listings may name ABS_CANARY,
an absolute path that must never be created.  Loopback only.
"""
import base64
import hashlib
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_owner as fo  # noqa: E402
import ppcp_client as pc  # noqa: E402  (fake_owner put tests/interop on the path)

NAMES = ["ok", "ok2", "../evil", "ABS", "a/b", ".", "..", "", "x" * 300, 7, None,
         "sub", "..\\x", "ok\n", ".hidden"]  # ABS: the absolute canary path of the command line


ABS = None


def rint(R):
    return R.choice([0, 1, -1, 5, 100, 2**31, 2**53, 2**63 - 1, -2**63, 1.5, "3", None, True])


class Evil(fo.Session):
    def __init__(self, sock, psk, seed, leak_log):
        super().__init__(sock, psk, "evil", "/nonexistent", "")
        self.R = random.Random(seed)
        self.leak_log = leak_log
        self.mine = set()  # ids of requests this server sent to the client

    def leak(self, what):
        with open(self.leak_log, "a") as f:
            f.write("LEAK: %s\n" % what)

    def raw(self, pt):
        self.t.send_frame(self.tx.seal(pt))

    def rb64(self, n):
        return base64.b64encode(os.urandom(n)).decode()

    def junk(self, i, other):
        """One random message that is not specific to the request."""
        R = self.R
        k = R.randrange(12)
        if k == 0:
            self.send("HEARTBEAT", {"ts": rint(R)}, self.new_id())
        elif k == 1:
            self.send("HEARTBEAT_ACK", R.choice([{"ts": 1}, None]), R.choice([i, other]))
        elif k == 2:
            if R.random() < 0.8:
                self.send("KEY_UPDATE", {}, self.new_id())
                self.tx.rekey()
            else:
                self.send("KEY_UPDATE", {"x": 1}, self.new_id())
        elif k == 3:
            self.send("ERROR", {"code": R.choice(["cancelled", "io-error", "x", ""]),
                                "message": "evil \x1b[31m" + "m" * R.randrange(300)}, R.choice([i, other]))
        elif k == 4:
            j = self.new_id()
            self.mine.add(j)
            self.send("COMMAND", {"name": R.choice(["exec", "shell", "status"]),
                                  "args": {"argv": ["id"], "command": "id"}}, j)
        elif k == 5:
            j = self.new_id()
            self.mine.add(j)
            self.send("FILE_REQUEST", {"path": R.choice(["/etc/passwd", "secret", "../secret", "."]),
                                       "op": R.choice([None, "list", "put"]), "size": 3,
                                       "sha256": "0" * 64}, j)
        elif k == 6:
            self.raw(R.choice([b"{", b'{"v":1}', os.urandom(R.randrange(1, 40)), b"[" * 1000,
                               b'{"v":2,"t":"HEARTBEAT","p":null,"i":"1","s":0}']))
        elif k == 7:
            self.raw(b"\x01" + R.randrange(1 << 32).to_bytes(4, "big") + bytes(8) + b"\x00" + b"x")
        elif k == 8:
            self.send(R.choice(["AUTH_OK", "PING", "NOPE", "SERVER_HELLO"]), {}, self.new_id())
        elif k == 9:
            self.send("RESPONSE", {"stream": "stdout", "data": self.rb64(10)}, other)
        elif k == 10:
            self.send("FILE_CHUNK", {"offset": 0, "data": self.rb64(5), "last": True}, other)
        else:
            self.send("BYE", R.choice([{"reason": "evil"}, None, 3]), self.new_id())

    def answer_exec(self, i):
        R = self.R
        for _ in range(R.randrange(6)):
            if R.random() < 0.5:
                self.send("RESPONSE", {"stream": R.choice(["stdout", "stderr", "stdin", 1]),
                                       "data": R.choice([self.rb64(R.randrange(100)), "!!", "", None])}, i)
            else:
                self.junk(i, "ffff0000")
        if R.random() < 0.7:
            self.send("RESPONSE", {"done": R.choice([True, True, False, 1]),
                                   "exit": R.choice([0, 7, 254, 256, -1, None, 1.5, "0"]),
                                   "signal": R.choice([None, 9, 0, 65, -1, "x"]),
                                   "timed_out": R.choice([False, True, None]),
                                   "truncated": R.choice([False, True, 3])}, i)

    def head_for(self, data, p):
        R = self.R
        if R.random() < 0.3:  # a correct head
            h = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mtime": 1700000000,
                 "offset": 0, "length": len(data), "binary": bool(p.get("binary")) and self.binary_ok}
            if h["binary"]:
                h["stream"] = 2
            return h
        h = {"size": R.choice([len(data), rint(R)]),
             "sha256": R.choice([hashlib.sha256(data).hexdigest(), "0" * 64, "zz", 5]),
             "mtime": rint(R), "offset": R.choice([0, rint(R)]), "length": R.choice([len(data), rint(R)]),
             "binary": R.choice([True, False, "y"])}
        if R.random() < 0.7:
            h["stream"] = R.choice([2, 3, 0, 1 << 33, "2"])
        for k in list(h):
            if R.random() < 0.1:
                del h[k]
        return h

    def answer_get(self, i, p):
        R = self.R
        data = os.urandom(R.choice([0, 1, 10, 70000]))
        if R.random() < 0.15:
            return self.error(i, R.choice(["not-found", "unauthorized", "io-error", "weird"]), "no")
        h = self.head_for(data, p)
        self.send("FILE_CHUNK", h, i)
        pos = 0
        for _ in range(R.randrange(1, 6)):
            n = min(len(data) - pos, R.choice([1, 100, 65536]))
            last = pos + n >= len(data)
            if R.random() < 0.7 and h.get("binary") is True and isinstance(h.get("stream"), int) \
                    and 0 <= h["stream"] < 1 << 32:
                self.send_bin(h["stream"], R.choice([pos, pos, pos + 1, 0]), R.choice([last, last, not last]),
                              data[pos:pos + n])
            elif R.random() < 0.8:
                self.send("FILE_CHUNK", {"offset": R.choice([pos, pos, pos + 5, -1]),
                                         "data": base64.b64encode(data[pos:pos + n]).decode(),
                                         "last": R.choice([last, last, not last])}, i)
            else:
                self.junk(i, "ffff0000")
            pos += n
            if last:
                break

    def answer_list(self, i):
        R = self.R
        entries = []
        for _ in range(R.randrange(5)):
            name = R.choice(NAMES)
            e = {"name": ABS if name == "ABS" else name,
                 "type": R.choice(["file", "dir", "other", "link", 3])}
            if R.random() < 0.7:
                e["size"] = R.choice([10, 0, rint(R)])
                e["mtime"] = rint(R)
            entries.append(e)
        self.send("FILE_CHUNK", R.choice([{"entries": entries, "last": R.choice([True, False])},
                                          {"entries": "x", "last": True}, {"last": True}]), i)

    def answer_put(self, i, p):
        R = self.R
        h = {"offset": R.choice([0, 0, p.get("size", 0), rint(R)]), "binary": R.choice([True, False])}
        if R.random() < 0.7:
            h["stream"] = R.choice([2, 3, 4, "x"])
        self.send("FILE_CHUNK", h, i)
        if R.random() < 0.5:
            self.send("FILE_CHUNK", {"done": R.choice([True, False]),
                                     "size": R.choice([p.get("size", 0), rint(R)])}, i)

    def serve(self):
        self.handshake()
        print("session authenticated", flush=True)
        self.sock.settimeout(0.5)
        end = time.time() + 2.0
        while time.time() < end:
            try:
                kind, m = self.recv()
            except socket.timeout:
                if self.R.random() < 0.5:
                    self.junk("ffff0001", "ffff0002")
                continue
            if kind == "bin":
                if not self.uploads_expected():
                    self.leak("binary data toward the server (%d bytes) while it asked for no upload"
                              % len(m))
                continue
            t, i, p = m.get("t"), m.get("i"), m.get("p")
            if t == "KEY_UPDATE":
                self.rx.rekey()
                continue
            if i in self.mine and t in ("FILE_CHUNK", "RESPONSE"):
                if t == "FILE_CHUNK" and isinstance(p, dict) and ("size" in p or "data" in p or "entries" in p):
                    self.leak("the client answered our FILE_REQUEST: %r" % (p,))
                if t == "RESPONSE" and isinstance(p, dict) and ("data" in p or "exit" in p or "status" in p):
                    self.leak("the client answered our COMMAND: %r" % (p,))
            if t == "COMMAND":
                name = p.get("name") if isinstance(p, dict) else None
                if name in ("exec", "shell"):
                    self.answer_exec(i)
                else:
                    self.send("RESPONSE", {"done": True, "status": self.R.choice([{}, 3, {"hostname": 7}])}, i)
            elif t == "FILE_REQUEST" and isinstance(p, dict):
                op = p.get("op")
                self.put_i = i if op == "put" else None
                if op == "list":
                    self.answer_list(i)
                elif op == "put":
                    self.answer_put(i, p)
                else:
                    self.answer_get(i, p)
            elif t == "HEARTBEAT":
                self.send("HEARTBEAT_ACK", {"ts": p.get("ts", 0) if isinstance(p, dict) else 0}, i)
            elif t == "BYE":
                return
            if self.R.random() < 0.3:
                return

    def uploads_expected(self):
        return getattr(self, "put_i", None) is not None


def main():
    global ABS
    psk = pc.read_psk_file(sys.argv[1])
    seed = int(sys.argv[2])
    leak_log = sys.argv[3]
    ABS = sys.argv[4]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    print("listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        conn.settimeout(5)
        try:
            Evil(conn, psk, seed, leak_log).serve()
        except (pc.PPCPError, pc.Truncated, OSError, KeyError, ValueError, TypeError,
                AttributeError) as e:
            print("session %d ended: %s" % (seed, e), flush=True)
        finally:
            conn.close()
        seed += 1


if __name__ == "__main__":
    main()
