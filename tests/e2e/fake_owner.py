#!/usr/bin/python3
"""A minimal PPCP file owner (server side of PROTOCOL.md §9), for the CLI tests.

It serves downloads, listings and uploads of one directory, one connection at
a time, and can break the protocol on purpose (--fault) so that the tests can
check that `ppcp get`/`put` refuse what a broken owner sends.  The handshake
and record layer come from tests/interop/ppcp_client.py (written from
PROTOCOL.md alone, not from libppcp).

Usage: fake_owner.py --psk-file F --root DIR [--server-id ID] [--fault F]
Prints "listening on 127.0.0.1:PORT" once it listens (port 0 = any free).

Faults (downloads unless said): wrong-offset, unknown-stream, past-range,
odd-stream, early-last, bad-hash, changed-error, json-wrong-offset,
drop-after-1m (close the connection after 1 MiB of data), stall (send
nothing after the head), put-odd-stream (upload head with stream 3),
put-done-wrong-size, list-bad-name.
"""

import argparse
import base64
import hashlib
import os
import socket
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
import ppcp_client as pc  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

CHUNK_BIN = 256 * 1024
CHUNK_JSON = 48 * 1024


class Session:
    def __init__(self, sock, psk, server_id, root, fault):
        self.t = pc.Transport(sock)
        self.sock = sock
        self.psk = psk
        self.server_id = server_id
        self.root = root
        self.fault = fault
        self.next_id = 1
        self.uploads = {}  # request id -> state

    def new_id(self):
        i = "%08x" % self.next_id
        self.next_id += 1
        return i

    def handshake(self):
        ln = self.t.recv_len()
        CH = self.t.recv_body(ln)
        if len(CH) != 106 or CH[:8] != b"PPCP\x01\x01\x01\x00":
            raise pc.PPCPError("hello", "not a CLIENT_HELLO")
        X_c = CH[9:74]
        priv = ec.generate_private_key(ec.SECP256R1())
        X_s = pc.pub_bytes(priv)
        nonce_s = os.urandom(32)
        sid_hash = pc.H(self.server_id.encode())
        Z = pc.ecdh_z(priv, X_c)
        ES = pc.hkdf_extract(bytes(32), self.psk)
        HS = pc.hkdf_extract(pc.derive(ES, "derived", pc.E_EMPTY), Z)
        sh0 = b"PPCP\x01\x02\x01\x00\x41" + X_s + nonce_s + sid_hash
        TH1 = pc.H(CH + sh0)
        c_hs = pc.derive(HS, "c hs", TH1)
        s_hs = pc.derive(HS, "s hs", TH1)
        SH = sh0 + pc.HMAC(pc.expand_label(s_hs, "finished", b"", 32), TH1)
        self.t.send_frame(SH)
        TH2 = pc.H(CH + SH)
        c_confirm = pc.HMAC(pc.expand_label(c_hs, "finished", b"", 32), TH2)
        TH3 = pc.H(CH + SH + c_confirm)
        s_ack = pc.HMAC(pc.expand_label(s_hs, "ack", b"", 32), TH3)
        MS = pc.hkdf_extract(pc.derive(HS, "derived", pc.E_EMPTY), bytes(32))
        rx, tx = pc.Direction(c_hs), pc.Direction(s_hs)
        ln = self.t.recv_len()
        m = pc.json_parse(rx.open(ln, self.t.recv_body(ln), "auth"))
        if m["t"] != "AUTH" or base64.b64decode(m["p"]["proof"]) != c_confirm:
            raise pc.PPCPError("auth", "bad AUTH")
        ext = [e for e in pc.KNOWN_EXT if e in m["p"]["ext"]]
        self.binary_ok = "binary-data" in ext
        self.peer_max = m["p"]["max_record"]
        p = {"proof": base64.b64encode(s_ack).decode(), "server_id": self.server_id,
             "ext": ext, "max_record": 1 << 20}
        self.tx = tx
        self.send("AUTH_OK", p, self.new_id())
        self.rx = pc.Direction(pc.derive(MS, "c ap", TH3))
        self.tx = pc.Direction(pc.derive(MS, "s ap", TH3))

    def send(self, t, p, i):
        pt = pc.json_encode({"v": 1, "t": t, "p": p, "i": i, "s": 0}).encode("ascii")
        self.t.send_frame(self.tx.seal(pt))

    def send_bin(self, stream, off, last, data):
        pt = b"\x01" + stream.to_bytes(4, "big") + off.to_bytes(8, "big") + \
            bytes([1 if last else 0]) + data
        self.t.send_frame(self.tx.seal(pt))

    def error(self, i, code, msg):
        self.send("ERROR", {"code": code, "message": msg}, i)

    def recv(self):
        ln = self.t.recv_len()
        pt = self.rx.open(ln, self.t.recv_body(ln), "session")
        if pt[:1] == b"\x01":
            return "bin", pt[1:]
        return "json", pc.json_parse(pt)

    def resolve(self, path):
        full = os.path.realpath(os.path.join(self.root, path))
        if path.startswith("/") or not (full == self.root or full.startswith(self.root + "/")):
            return None
        return full

    def serve(self):
        self.handshake()
        while True:
            kind, m = self.recv()
            if kind == "bin":
                self.on_bin(m)
                continue
            t, i, p = m["t"], m["i"], m["p"]
            if t == "HEARTBEAT":
                self.send("HEARTBEAT_ACK", {"ts": p["ts"]}, i)
            elif t == "BYE":
                return
            elif t == "FILE_REQUEST":
                op = p.get("op")
                if op == "list":
                    self.do_list(i, p)
                elif op == "put":
                    self.do_put(i, p)
                else:
                    self.do_get(i, p)
            elif t == "FILE_CHUNK" and i in self.uploads:
                self.on_chunk(i, p)

    def do_get(self, i, p):
        full = self.resolve(p["path"])
        if full is None:
            return self.error(i, "unauthorized", "path outside the file root")
        if not os.path.exists(full):
            return self.error(i, "not-found", "no such file")
        if not stat.S_ISREG(os.stat(full).st_mode):
            return self.error(i, "not-regular", "not a regular file")
        data = open(full, "rb").read()
        st = os.stat(full)
        size = len(data)
        off = p.get("offset", 0)
        length = p.get("length", size - off)
        binary = bool(p.get("binary")) and self.binary_ok
        sha = hashlib.sha256(data).hexdigest()
        if self.fault == "bad-hash":
            sha = hashlib.sha256(b"other").hexdigest()
        stream = 3 if self.fault == "odd-stream" else 2
        head = {"size": size, "sha256": sha, "mtime": int(st.st_mtime), "offset": off,
                "length": length, "binary": binary}
        if binary:
            head["stream"] = stream
        self.send("FILE_CHUNK", head, i)
        if length == 0 or self.fault == "stall":
            return
        end, pos, sent = off + length, off, 0
        chunk = CHUNK_BIN if binary else CHUNK_JSON
        while pos < end:
            n = min(chunk, end - pos)
            last = pos + n == end
            if self.fault == "changed-error" and last:
                return self.error(i, "changed", "the file changed during the transfer")
            wpos, wstream, wlast = pos, stream, last
            if sent > 0 and self.fault in ("wrong-offset", "json-wrong-offset"):
                wpos = pos + 1
            if sent > 0 and self.fault == "unknown-stream":
                wstream = stream + 2
            if sent == 0 and self.fault == "early-last" and not last:
                wlast = True
            piece = data[pos:pos + n]
            if last and self.fault == "past-range":
                piece += b"x"  # one byte more than announced
            if binary:
                self.send_bin(wstream, wpos, wlast, piece)
            else:
                self.send("FILE_CHUNK", {"offset": wpos, "last": wlast,
                                         "data": base64.b64encode(piece).decode()}, i)
            pos += n
            sent += n
            if self.fault == "drop-after-1m" and sent >= 1 << 20:
                self.sock.close()
                raise pc.Truncated("dropped on purpose")

    def do_list(self, i, p):
        full = self.resolve(p["path"])
        if full is None:
            return self.error(i, "unauthorized", "path outside the file root")
        if not os.path.isdir(full):
            return self.error(i, "not-found", "no such directory")
        entries = []
        for name in sorted(os.listdir(full)):
            st = os.lstat(os.path.join(full, name))
            if stat.S_ISREG(st.st_mode):
                entries.append({"name": name, "type": "file", "size": st.st_size,
                                "mtime": int(st.st_mtime)})
            elif stat.S_ISDIR(st.st_mode):
                entries.append({"name": name, "type": "dir"})
            else:
                entries.append({"name": name, "type": "other"})
        if self.fault == "list-bad-name":
            entries.append({"name": "../escape", "type": "file", "size": 1, "mtime": 0})
        self.send("FILE_CHUNK", {"entries": entries, "last": True}, i)

    def do_put(self, i, p):
        full = self.resolve(os.path.dirname(p["path"]) or ".")
        if full is None:
            return self.error(i, "unauthorized", "path outside the file root")
        if p.get("mkdir"):
            os.makedirs(full, exist_ok=True)
        if not os.path.isdir(full):
            return self.error(i, "not-found", "no such directory")
        dest = os.path.join(full, os.path.basename(p["path"]))
        binary = bool(p.get("binary")) and self.binary_ok
        stream = 3 if self.fault == "put-odd-stream" else 2
        self.uploads[i] = {"dest": dest, "size": p["size"], "sha": p["sha256"],
                           "mode": p.get("mode", 0o644), "data": bytearray(), "stream": stream}
        self.streams = {stream: i}
        head = {"offset": 0, "binary": binary}
        if binary:
            head["stream"] = stream
        self.send("FILE_CHUNK", head, i)
        if p["size"] == 0:  # nothing follows the head
            self.take(i, 0, b"", True)

    def on_bin(self, rec):
        stream = int.from_bytes(rec[0:4], "big")
        off = int.from_bytes(rec[4:12], "big")
        i = self.streams.get(stream)
        if i is None:
            raise pc.PPCPError("bin", "unknown stream")
        self.take(i, off, rec[13:], rec[12] & 1)

    def on_chunk(self, i, p):
        self.take(i, p["offset"], base64.b64decode(p.get("data", "")), p.get("last", False))

    def take(self, i, off, data, last):
        u = self.uploads[i]
        if off != len(u["data"]):
            raise pc.PPCPError("put", "out of order")
        u["data"] += data
        if not last:
            return
        if hashlib.sha256(u["data"]).hexdigest() != u["sha"]:
            return self.error(i, "changed", "the uploaded bytes do not match sha256")
        with open(u["dest"], "wb") as f:
            f.write(u["data"])
        os.chmod(u["dest"], u["mode"] & 0o777)
        size = len(u["data"]) + (1 if self.fault == "put-done-wrong-size" else 0)
        self.send("FILE_CHUNK", {"done": True, "size": size}, i)
        del self.uploads[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--psk-file", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--server-id", default="fake-owner")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fault", default="")
    a = ap.parse_args()
    psk = pc.read_psk_file(a.psk_file)
    root = os.path.realpath(a.root)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(4)
    print("listening on 127.0.0.1:%d" % ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        conn.settimeout(60)
        try:
            Session(conn, psk, a.server_id, root, a.fault).serve()
        except (pc.PPCPError, pc.Truncated, OSError, KeyError, ValueError) as e:
            print("session ended: %s" % e, flush=True)
        finally:
            conn.close()


if __name__ == "__main__":
    main()
