#!/usr/bin/python3
"""Independent PPCP v1 client, written from docs/PROTOCOL.md only.

It exists to check that the specification is complete enough to interoperate
with libppcp, and that the C implementation follows the document.  It uses
only the Python standard library and the `cryptography` package (ECDH on
P-256 and AES-256-GCM); HKDF, HMAC, the key schedule, framing, records and the
JSON rules are implemented here from the text.

Usage:
  ppcp_client.py --host 127.0.0.1 --port N --psk-file FILE [--server-id ID]
                 [--tcp-ping] [--key-update]
                 [--command-json '{"name":"status","args":{}}'] [--keylog FILE]
  ppcp_client.py --selftest [--vectors tests/vectors/handshake.json]

Exit status 0 on success; on failure one line "ppcp_client: FAILED at <step>:
<reason>" on stderr and exit status 1.

--keylog FILE writes every secret of the session to FILE, for tests that
look for them where they must not be (t_log_hygiene.sh); never use it on a
session that matters.

Section numbers (§n) refer to docs/PROTOCOL.md.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import socket
import stat
import sys
import time

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.exceptions import InvalidTag
    HAVE_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by main()
    HAVE_CRYPTOGRAPHY = False

VERSION = "0.1.0-pyinterop"

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class PPCPError(Exception):
    """A fatal protocol error (§1 "Fatal"): `step` says where it happened."""

    def __init__(self, step, reason):
        super().__init__("%s: %s" % (step, reason))
        self.step = step
        self.reason = reason


class Truncated(Exception):
    """EOF in the middle of the conversation."""


# --------------------------------------------------------------------------
# Primitives (§1, §4)
# --------------------------------------------------------------------------


def H(data):
    return hashlib.sha256(data).digest()


def HMAC(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_extract(salt, ikm):
    return HMAC(salt, ikm)


def hkdf_expand(prk, info, length):
    if length > 255 * 32:
        raise ValueError("HKDF-Expand: L too large")
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = HMAC(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:length]


def u8(x):
    return x.to_bytes(1, "big")


def u16(x):
    return x.to_bytes(2, "big")


def u32(x):
    return x.to_bytes(4, "big")


def u64(x):
    return x.to_bytes(8, "big")


def expand_label_info(label, ctx, length):
    lab = b"ppcp1 " + label.encode("ascii")
    if len(lab) > 255 or len(ctx) > 255:
        raise ValueError("label or context too long")
    return u16(length) + u8(len(lab)) + lab + u8(len(ctx)) + ctx


def expand_label(secret, label, ctx, length):
    return hkdf_expand(secret, expand_label_info(label, ctx, length), length)


def derive(secret, label, th):
    return expand_label(secret, label, th, 32)


def traffic_key(secret):
    return expand_label(secret, "key", b"", 32)


def traffic_iv(secret):
    return expand_label(secret, "iv", b"", 12)


def next_secret(secret):
    return expand_label(secret, "upd", b"", 32)


E_EMPTY = H(b"")

# --------------------------------------------------------------------------
# P-256 point checks (§3 rule 4), done here by hand so that the library's
# own leniency (compressed/hybrid points) cannot hide a non-conforming peer.
# --------------------------------------------------------------------------

P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def check_point(pt):
    """Return None when `pt` is a valid SEC1 uncompressed P-256 point, else a reason."""
    if len(pt) != 65:
        return "point is not 65 bytes"
    if pt[0] != 0x04:
        return "point encoding 0x%02x is not uncompressed (0x04)" % pt[0]
    x = int.from_bytes(pt[1:33], "big")
    y = int.from_bytes(pt[33:65], "big")
    if x >= P256_P or y >= P256_P:
        return "point coordinate not below p"
    if (y * y - (x * x * x - 3 * x + P256_B)) % P256_P != 0:
        return "point is not on the curve"
    return None


def pub_bytes(priv):
    n = priv.public_key().public_numbers()
    return b"\x04" + n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")


def ecdh_z(priv, peer_pt):
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer_pt)
    z = priv.exchange(ec.ECDH(), peer)
    # §4: the x-coordinate, 32 bytes big-endian, left-padded, never shortened.
    return z.rjust(32, b"\x00")


# --------------------------------------------------------------------------
# Strict JSON (§7)
# --------------------------------------------------------------------------

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 16
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # §10.3


class JSONInvalid(Exception):
    pass


def _no_dup_pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise JSONInvalid("duplicate key %r" % k)
        obj[k] = v
    return obj


def _bad_constant(name):
    raise JSONInvalid("not JSON: %s" % name)


def _json_depth(text):
    """Maximum nesting of arrays/objects, computed before parsing (§13)."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _check_strings(v):
    if isinstance(v, str):
        if "\x00" in v:
            raise JSONInvalid("string holds \\u0000")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONInvalid("string holds a lone surrogate")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_strings(k)
            _check_strings(x)
    elif isinstance(v, list):
        for x in v:
            _check_strings(x)


def json_parse(raw):
    """Parse a JSON text with the receiver rules of §7; raise JSONInvalid."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONInvalid("not valid UTF-8")
    if _json_depth(text) > MAX_DEPTH:
        raise JSONInvalid("nesting deeper than %d" % MAX_DEPTH)
    try:
        v = json.loads(text, object_pairs_hook=_no_dup_pairs, parse_constant=_bad_constant)
    except JSONInvalid:
        raise
    except (ValueError, RecursionError) as e:
        raise JSONInvalid("not JSON: %s" % e)
    _check_strings(v)
    return v


def is_int(v):
    return type(v) is int and INT64_MIN <= v <= INT64_MAX


def is_msg_id(v):
    return isinstance(v, str) and 1 <= len(v) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in v)


def json_encode(obj):
    """Compact JSON, keys sorted by byte value, non-printable-ASCII escaped as
    \\uXXXX with upper-case hex digits (§7 "Encoding")."""
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if type(obj) is int:
        return str(obj)
    if isinstance(obj, float):
        return json.dumps(obj)
    if isinstance(obj, str):
        out = ['"']
        for ch in obj:
            c = ord(ch)
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif 0x20 <= c <= 0x7E:
                out.append(ch)
            elif c > 0xFFFF:
                c -= 0x10000
                out.append("\\u%04X\\u%04X" % (0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF)))
            else:
                out.append("\\u%04X" % c)
        out.append('"')
        return "".join(out)
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(json_encode(x) for x in obj) + "]"
    if isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(json_encode(k) + ":" + json_encode(obj[k]) for k in keys) + "}"
    raise TypeError("cannot encode %r" % (obj,))


def b64_strict(s, nbytes=None):
    """Decode standard base64 with padding, no whitespace, canonical (§1, §6)."""
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", s) or len(s) % 4:
        return None
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != s:
        return None  # non-zero unused bits
    if nbytes is not None and len(raw) != nbytes:
        return None
    return raw


# --------------------------------------------------------------------------
# PSK file (§14)
# --------------------------------------------------------------------------


def read_psk_file(path):
    try:
        st = os.lstat(path)
    except OSError as e:
        raise PPCPError("psk", "cannot read PSK file %s: %s" % (path, e.strerror))
    if stat.S_ISLNK(st.st_mode):
        raise PPCPError("psk", "PSK file %s is a symbolic link" % path)
    if not stat.S_ISREG(st.st_mode):
        raise PPCPError("psk", "PSK file %s is not a regular file" % path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PPCPError("psk", "PSK file %s is not a regular file" % path)
        if st.st_mode & 0o077:
            raise PPCPError("psk", "PSK file %s is accessible by group or others (mode %03o)"
                            % (path, st.st_mode & 0o777))
        if st.st_uid != os.geteuid():
            raise PPCPError("psk", "PSK file %s is owned by another user" % path)
        data = os.read(fd, 100)
    finally:
        os.close(fd)
    m = re.fullmatch(rb"([0-9A-Fa-f]{64})(\n|\r\n)?", data)
    if not m:
        raise PPCPError("psk", "PSK file %s: not 64 hex characters and an optional line end" % path)
    psk = bytes.fromhex(m.group(1).decode("ascii"))
    if psk == bytes(32):
        raise PPCPError("psk", "PSK file %s holds an all-zero key" % path)
    return psk


# --------------------------------------------------------------------------
# Framing (§2) and records (§5)
# --------------------------------------------------------------------------


class Transport:
    """Blocking frame I/O over a socket-like object (sendall/recv)."""

    def __init__(self, sock):
        self.sock = sock

    def send_frame(self, body):
        self.sock.sendall(u32(len(body)) + body)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))  # never past the frame end
            if not chunk:
                raise Truncated("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv_len(self):
        return int.from_bytes(self._recv_exact(4), "big")

    def recv_body(self, n):
        return self._recv_exact(n)


AUTH_PHASE_LIMIT = 4096
SEND_RECORD_LIMIT = 1 << 24
SEND_BYTES_LIMIT = 1 << 36


class Direction:
    """One direction of the record layer: key, IV, seq (§5)."""

    def __init__(self, secret):
        self.history = []  # every (secret, key, iv) held, for --keylog
        self.set_secret(secret)

    def set_secret(self, secret):
        self.secret = secret
        self.history.append((secret, traffic_key(secret), traffic_iv(secret)))
        self.key = traffic_key(secret)
        self.iv = traffic_iv(secret)
        self.aead = AESGCM(self.key)
        self.seq = 0
        self.bytes = 0

    def nonce(self):
        s = int.from_bytes(self.iv, "big") ^ self.seq
        return s.to_bytes(12, "big")

    def rekey(self):
        self.set_secret(next_secret(self.secret))

    def seal(self, plaintext):
        if not plaintext:
            raise ValueError("empty plaintext is never sent")
        if self.seq >= 2**64 - 1:
            raise PPCPError("record", "sequence number exhausted")
        ln = 12 + len(plaintext) + 16
        nonce = self.nonce()
        ct = self.aead.encrypt(nonce, plaintext, u32(ln) + nonce)
        self.seq += 1
        self.bytes += len(plaintext)
        return nonce + ct

    def open(self, ln, body, step):
        nonce = body[:12]
        if not hmac.compare_digest(nonce, self.nonce()):
            raise PPCPError(step, "sequence error: record nonce %s, expected %s (seq %d)"
                            % (nonce.hex(), self.nonce().hex(), self.seq))
        try:
            pt = self.aead.decrypt(nonce, body[12:], u32(ln) + nonce)
        except InvalidTag:
            raise PPCPError(step, "record failed authentication")
        self.seq += 1
        self.bytes += len(pt)
        if self.seq > 2 * SEND_RECORD_LIMIT or self.bytes > 2 * SEND_BYTES_LIMIT:
            raise PPCPError(step, "key usage limit reached")
        return pt


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------

PING_PAD_TO = 512
KNOWN_EXT = ["key-update", "binary-data"]  # table order of §11
PHASE_TYPES = {"PING", "PONG", "CLIENT_HELLO", "SERVER_HELLO", "AUTH", "AUTH_OK", "AUTH_FAIL"}
SESSION_TYPES = {"HEARTBEAT", "HEARTBEAT_ACK", "COMMAND", "RESPONSE", "FILE_REQUEST",
                 "FILE_CHUNK", "ERROR", "BYE", "KEY_UPDATE"}


def sanitize_identifier(name, fallback):
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:64]
    return name if name else fallback


class Client:
    def __init__(self, transport, psk, *, rng=os.urandom, wall=lambda: int(time.time()),
                 mono_ms=lambda: int(time.monotonic() * 1000), client_id="py-interop",
                 hostname=None, expect_server_id=None, ext=None, max_record=1 << 20,
                 log=None):
        self.t = transport
        self.psk = psk
        self.rng = rng
        self.wall = wall
        self.mono_ms = mono_ms
        self.client_id = client_id
        self.hostname = hostname or sanitize_identifier(socket.gethostname().split(".")[0], "localhost")
        self.expect_server_id = expect_server_id
        self.ext_offer = list(KNOWN_EXT if ext is None else ext)
        self.max_record = max_record
        self.log = log or (lambda msg: None)
        self.next_id = 1
        self.state = "START"
        self.violations = []     # non-fatal deviations by the server (reported at the end)
        self.pending = {}        # i -> kind of request we originated and await answers for
        self.peer_closed = False

    # ---- helpers -------------------------------------------------------

    def _new_id(self):
        i = "%08x" % self.next_id
        self.next_id += 1
        return i

    def _envelope(self, t, p, i):
        return {"v": 1, "t": t, "p": p, "i": i, "s": self.wall()}

    def _read_len(self, step):
        try:
            return self.t.recv_len()
        except Truncated:
            raise PPCPError(step, "truncated: connection closed by the server")
        except socket.timeout:
            raise PPCPError(step, "timed out waiting for the server")

    def _read_body(self, n, step):
        try:
            return self.t.recv_body(n)
        except Truncated as e:
            raise PPCPError(step, "truncated: %s" % e)
        except socket.timeout:
            raise PPCPError(step, "timed out waiting for the server")

    @staticmethod
    def check_envelope(m):
        """Return (ok, code, reason, readable_i) for a parsed JSON message (§7)."""
        if not isinstance(m, dict):
            return False, "invalid-message", "not a JSON object", None
        i = m.get("i")
        readable_i = i if is_msg_id(i) else None
        for k in ("v", "t", "p", "i", "s"):
            if k not in m:
                return False, "invalid-message", "envelope misses %r" % k, readable_i
        if not is_int(m["v"]):
            return False, "invalid-message", "'v' is not an integer", readable_i
        if not isinstance(m["t"], str):
            return False, "invalid-message", "'t' is not a string", readable_i
        if not is_msg_id(i):
            return False, "invalid-message", "'i' is not 1-64 printable ASCII", None
        if not is_int(m["s"]):
            return False, "invalid-message", "'s' is not an integer", readable_i
        if m["v"] != 1:
            return False, "unsupported-version", "v = %r" % (m["v"],), readable_i
        return True, None, None, readable_i

    # ---- discovery over TCP (§10.4) -------------------------------------

    def tcp_ping(self, target=None):
        step = "tcp-ping"
        i = binascii.hexlify(self.rng(4)).decode("ascii")
        p = {"client_id": self.client_id, "hostname": self.hostname, "version": VERSION}
        if target is not None:
            p["target"] = target
        msg = self._envelope("PING", p, i)
        body = json_encode(msg).encode("ascii")
        if len(body) < PING_PAD_TO:
            p["pad"] = ""
            base = len(json_encode(msg))
            p["pad"] = "0" * max(0, PING_PAD_TO - base)
            body = json_encode(msg).encode("ascii")
        if len(body) > 1024:
            raise PPCPError(step, "our PING would exceed 1024 bytes")
        self.t.send_frame(body)
        self.log("sent PING (%d bytes, i=%s)" % (len(body), i))
        ln = self._read_len(step)
        if ln == 0 or ln > len(body):
            raise PPCPError(step, "PONG frame length %d: must be 1..%d (never larger than the PING)"
                            % (ln, len(body)))
        raw = self._read_body(ln, step)
        if raw[:1] != b"{":
            raise PPCPError(step, "PONG frame does not start with '{'")
        try:
            m = json_parse(raw)
        except JSONInvalid as e:
            raise PPCPError(step, "PONG is not valid JSON: %s" % e)
        ok, code, reason, _ = self.check_envelope(m)
        if not ok:
            raise PPCPError(step, "PONG: %s (%s)" % (reason, code))
        if m["t"] != "PONG":
            raise PPCPError(step, "expected PONG, got %r" % m["t"])
        if m["i"] != i:
            raise PPCPError(step, "PONG i %r is not the PING's i %r" % (m["i"], i))
        pp = m["p"]
        if not isinstance(pp, dict):
            raise PPCPError(step, "PONG p is not an object")
        for f in ("server_id", "hostname"):
            if not isinstance(pp.get(f), str) or not ID_RE.match(pp[f]):
                raise PPCPError(step, "PONG %s missing or not an identifier (§10.3)" % f)
        caps = pp.get("capabilities")
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise PPCPError(step, "PONG capabilities is not an array of strings")
        for c in ("key-exchange", "aes-gcm"):
            if c not in caps:
                raise PPCPError(step, "PONG capabilities lack %r" % c)
        pi = pp.get("public_info")
        if not isinstance(pi, dict):
            raise PPCPError(step, "PONG public_info is not an object")
        if not is_int(pi.get("port")) or not 1 <= pi["port"] <= 65535:
            raise PPCPError(step, "PONG public_info.port is not an integer 1-65535")
        if pi.get("protocol") != "ppcp/1":
            raise PPCPError(step, "PONG public_info.protocol is %r, not 'ppcp/1'" % (pi.get("protocol"),))
        if target is not None and pp["server_id"] != target:
            raise PPCPError(step, "PONG from server_id %r answers a PING targeted at %r"
                            % (pp["server_id"], target))
        self.pong = m
        self.log("PONG: server_id=%s hostname=%s port=%d capabilities=%s (%d bytes)"
                 % (pp["server_id"], pp["hostname"], pi["port"], ",".join(caps), ln))
        return m

    # ---- handshake (§3, §4, §6) ----------------------------------------

    def _draw_private_key(self):
        while True:  # assumption: a draw of 0 or >= n is discarded and drawn again
            d = int.from_bytes(self.rng(32), "big")
            if 1 <= d < P256_N:
                self.eph_scalar = d.to_bytes(32, "big")  # for --keylog only
                return ec.derive_private_key(d, ec.SECP256R1())

    def send_client_hello(self):
        self.priv = self._draw_private_key()
        self.X_c = pub_bytes(self.priv)
        self.nonce_c = self.rng(32)
        self.CH = b"PPCP" + bytes([1, 1, 1, 0]) + b"\x41" + self.X_c + self.nonce_c
        assert len(self.CH) == 106
        self.t.send_frame(self.CH)
        self.state = "CLIENT_EXPECT_SERVER_HELLO"
        self.log("sent CLIENT_HELLO")

    def recv_server_hello(self):
        step = "server-hello"
        ln = self._read_len(step)
        # §2: "A client waiting for SERVER_HELLO applies the same length bound
        # and then the rules of §3" (a len of 0 or above 1024 is refused).
        if ln == 0 or ln > 1024:
            raise PPCPError(step, "frame length %d refused before SERVER_HELLO" % ln)
        SH = self._read_body(ln, step)
        if SH[:4] != b"PPCP":
            raise PPCPError(step, "not a PPCP hello")
        if SH[4:5] != b"\x01":
            raise PPCPError(step, "unsupported version")
        if SH[5:6] != b"\x02":
            raise PPCPError(step, "malformed hello (type %s)" % SH[5:6].hex())
        if SH[6:7] != b"\x01":
            raise PPCPError(step, "unsupported suite")
        if SH[7:8] != b"\x00":
            raise PPCPError(step, "malformed hello (reserved byte)")
        if len(SH) != 170:
            raise PPCPError(step, "malformed hello (length %d, not 170)" % len(SH))
        if SH[8] != 0x41:
            raise PPCPError(step, "malformed hello (pub_len 0x%02x)" % SH[8])
        X_s = SH[9:74]
        bad = check_point(X_s)
        if bad:
            raise PPCPError(step, "invalid server key: %s" % bad)
        if X_s == self.X_c:
            raise PPCPError(step, "SERVER_HELLO reflects our own public key")
        nonce_s = SH[74:106]
        sid_hash = SH[106:138]
        s_confirm = SH[138:170]

        Z = ecdh_z(self.priv, X_s)
        self.priv = None
        ES = hkdf_extract(bytes(32), self.psk)
        HS = hkdf_extract(derive(ES, "derived", E_EMPTY), Z)
        TH1 = H(self.CH + SH[:138])
        c_hs = derive(HS, "c hs", TH1)
        s_hs = derive(HS, "s hs", TH1)
        expect = HMAC(expand_label(s_hs, "finished", b"", 32), TH1)
        if not hmac.compare_digest(expect, s_confirm):
            raise PPCPError(step, "server not authenticated: wrong PSK, or not a PPCP server "
                                  "(s_confirm does not verify; most likely the PSKs differ)")
        if self.expect_server_id is not None and not hmac.compare_digest(
                sid_hash, H(self.expect_server_id.encode("utf-8"))):
            raise PPCPError(step, "wrong server (sid_hash is not H(%r))" % self.expect_server_id)
        TH2 = H(self.CH + SH)
        self.c_confirm = HMAC(expand_label(c_hs, "finished", b"", 32), TH2)
        TH3 = H(self.CH + SH + self.c_confirm)
        self.s_ack = HMAC(expand_label(s_hs, "ack", b"", 32), TH3)
        MS = hkdf_extract(derive(HS, "derived", E_EMPTY), bytes(32))
        self.c_ap = derive(MS, "c ap", TH3)
        self.s_ap = derive(MS, "s ap", TH3)
        self.send_dir = Direction(c_hs)
        self.recv_dir = Direction(s_hs)
        self.sid_hash = sid_hash
        self.nonce_s = nonce_s
        self.SH = SH
        # kept for --selftest's comparison and --keylog only
        self.schedule = dict(Z=Z, ES=ES, HS=HS, TH1=TH1, c_hs=c_hs, s_hs=s_hs, TH2=TH2,
                             c_confirm=self.c_confirm, TH3=TH3, s_ack=self.s_ack, MS=MS,
                             c_ap=self.c_ap, s_ap=self.s_ap)
        self.log("SERVER_HELLO verified (s_confirm ok%s)"
                 % (", sid_hash ok" if self.expect_server_id else ""))

    def secrets(self):
        """Every secret of this session as (name, bytes): the ephemeral
        scalar, the schedule, each direction's secrets, keys and IVs (after
        KEY_UPDATE too).  For tests that look for them where they must not
        be (--keylog); never for anything else."""
        out = [("client ephemeral scalar", self.eph_scalar)] if hasattr(self, "eph_scalar") else []
        for k, v in getattr(self, "schedule", {}).items():
            if not k.startswith("TH"):  # transcript hashes are public
                out.append((k, v))
            if k in ("c_hs", "s_hs"):  # the handshake records' keys
                out += [(k + " key", traffic_key(v)), (k + " iv", traffic_iv(v))]
        for name, d in (("send", getattr(self, "send_dir", None)),
                        ("recv", getattr(self, "recv_dir", None))):
            for i, (sec, key, iv) in enumerate(d.history if d is not None else []):
                out += [("%s secret %d" % (name, i), sec), ("%s key %d" % (name, i), key),
                        ("%s iv %d" % (name, i), iv)]
        return out

    def send_auth(self):
        p = {"proof": base64.b64encode(self.c_confirm).decode("ascii"),
             "ext": self.ext_offer, "max_record": self.max_record}
        if self.client_id is not None:
            p["client_id"] = self.client_id
        self.auth_id = self._new_id()
        pt = json_encode(self._envelope("AUTH", p, self.auth_id)).encode("ascii")
        assert len(pt) <= AUTH_PHASE_LIMIT
        self.t.send_frame(self.send_dir.seal(pt))
        self.state = "CLIENT_EXPECT_AUTH_OK"
        self.log("sent AUTH")

    def recv_auth_ok(self):
        step = "auth-ok"
        ln = self._read_len(step)
        if ln < 29 or ln > 28 + AUTH_PHASE_LIMIT:
            raise PPCPError(step, "record length %d outside 29..%d" % (ln, 28 + AUTH_PHASE_LIMIT))
        body = self._read_body(ln, step)
        pt = self.recv_dir.open(ln, body, step)
        if pt[:1] != b"{":
            raise PPCPError(step, "malformed message (first byte 0x%02x)" % pt[0])
        try:
            m = json_parse(pt)
        except JSONInvalid as e:
            raise PPCPError(step, "AUTH_OK record is not valid JSON: %s" % e)
        ok, code, reason, _ = self.check_envelope(m)
        if not ok:
            raise PPCPError(step, "AUTH_OK envelope: %s (%s)" % (reason, code))
        if m["t"] == "AUTH_FAIL":
            raise PPCPError(step, "server rejected our authentication (AUTH_FAIL %s)"
                            % json_encode(m["p"]))
        if m["t"] != "AUTH_OK":
            raise PPCPError(step, "message not allowed in this state: %r" % m["t"])
        p = m["p"]
        if not isinstance(p, dict):
            raise PPCPError(step, "AUTH_OK p is not an object")
        proof = b64_strict(p.get("proof"), 32)
        if proof is None:
            raise PPCPError(step, "AUTH_OK proof is not strict base64 of 32 bytes")
        if not hmac.compare_digest(proof, self.s_ack):
            raise PPCPError(step, "AUTH_OK proof does not verify")
        sid = p.get("server_id")
        if not isinstance(sid, str):
            raise PPCPError(step, "AUTH_OK server_id missing or not a string")
        if not hmac.compare_digest(H(sid.encode("utf-8")), self.sid_hash):
            raise PPCPError(step, "AUTH_OK server_id %r does not hash to sid_hash" % sid)
        if not ID_RE.match(sid):
            raise PPCPError(step, "AUTH_OK server_id %r is not an identifier (§10.3)" % sid)
        ext = p.get("ext")
        if not isinstance(ext, list) or not all(isinstance(x, str) for x in ext):
            raise PPCPError(step, "AUTH_OK ext is not an array of strings")
        if len(set(ext)) != len(ext):
            raise PPCPError(step, "AUTH_OK ext lists an extension twice: %r" % ext)
        extra = [x for x in ext if x not in self.ext_offer]
        if extra:
            raise PPCPError(step, "AUTH_OK ext %r is not a subset of what we offered %r (%r)"
                            % (ext, self.ext_offer, extra))
        order = [x for x in KNOWN_EXT if x in ext]
        if ext != order:
            raise PPCPError(step, "AUTH_OK ext %r is not in the order of the table of §11" % ext)
        mr = p.get("max_record")
        if not is_int(mr) or not 4096 <= mr <= 16777216:
            raise PPCPError(step, "AUTH_OK max_record %r outside 4096..16777216" % (mr,))
        self.server_id = sid
        self.ext = ext
        self.peer_max_record = mr
        self.auth_ok = m
        self.send_dir = Direction(self.c_ap)
        self.recv_dir = Direction(self.s_ap)
        self.c_confirm = self.s_ack = self.c_ap = self.s_ap = None
        self.state = "ESTABLISHED"
        self.log("AUTH_OK verified: server_id=%s ext=%s max_record=%d" % (sid, ext, mr))

    def handshake(self):
        self.send_client_hello()
        self.recv_server_hello()
        self.send_auth()
        self.recv_auth_ok()

    # ---- session (§7, §8) ---------------------------------------------

    def send_msg(self, t, p, i=None):
        if self.state != "ESTABLISHED":
            raise PPCPError("send", "cannot send %s in state %s" % (t, self.state))
        if i is None:
            i = self._new_id()
        pt = json_encode(self._envelope(t, p, i)).encode("ascii")
        if len(pt) > self.peer_max_record:
            raise PPCPError("send", "%s of %d bytes exceeds the server's max_record" % (t, len(pt)))
        self.t.send_frame(self.send_dir.seal(pt))
        if self.send_dir.seq >= SEND_RECORD_LIMIT - 1 or self.send_dir.bytes >= SEND_BYTES_LIMIT // 2:
            if "key-update" in self.ext:
                self.key_update()
        return i

    def key_update(self):
        if "key-update" not in self.ext:
            raise PPCPError("key-update", "the key-update extension is not in force")
        i = self.send_msg("KEY_UPDATE", {})
        self.send_dir.rekey()
        self.log("sent KEY_UPDATE (i=%s); sending key updated" % i)
        return i

    def _violation(self, what):
        self.violations.append(what)
        self.log("server violation: " + what)

    def recv_one(self, step):
        """Read one record in ESTABLISHED and handle it.  Returns the message
        (dict), ("binary", bytes), or None for a record handled internally."""
        ln = self._read_len(step)
        if ln < 29 or ln > 28 + self.max_record:
            raise PPCPError(step, "record length %d outside 29..%d" % (ln, 28 + self.max_record))
        body = self._read_body(ln, step)
        pt = self.recv_dir.open(ln, body, step)
        if pt[:1] == b"\x01":
            if "binary-data" not in self.ext:
                raise PPCPError(step, "binary record without the binary-data extension")
            self._violation("unsolicited binary-data record (%d bytes)" % len(pt))
            return ("binary", pt)
        if pt[:1] != b"{":
            raise PPCPError(step, "malformed message (first byte 0x%02x)" % pt[0])
        try:
            m = json_parse(pt)
        except JSONInvalid as e:
            self._violation("invalid JSON record: %s" % e)
            self.send_msg("ERROR", {"code": "invalid-message", "message": str(e)[:200]})
            return None
        ok, code, reason, ri = self.check_envelope(m)
        if not ok:
            self._violation("%s: %s" % (code, reason))
            self.send_msg("ERROR", {"code": code, "message": reason[:200]}, ri)
            return None
        t, p, i = m["t"], m["p"], m["i"]
        if t in PHASE_TYPES:
            raise PPCPError(step, "message not allowed in this state: %s after AUTH_OK" % t)
        if t not in SESSION_TYPES:
            self._violation("unknown message type %r" % t)
            self.send_msg("ERROR", {"code": "unknown-type", "message": "unknown type %r" % t[:64]}, i)
            return None
        if t == "HEARTBEAT":
            if not isinstance(p, dict) or not is_int(p.get("ts")):
                self._violation("HEARTBEAT with a bad payload")
                self.send_msg("ERROR", {"code": "invalid-message", "message": "HEARTBEAT p.ts"}, i)
                return None
            self.send_msg("HEARTBEAT_ACK", {"ts": p["ts"]}, i)
            self.log("answered the server's HEARTBEAT i=%s" % i)
            return None
        if t == "KEY_UPDATE":
            if "key-update" not in self.ext:
                raise PPCPError(step, "KEY_UPDATE without the key-update extension")
            if not isinstance(p, dict):
                # §8.1 says a wrong-shaped payload gets ERROR invalid-message and
                # the session goes on; whether the key still changes is not said.
                # We follow the transition table (§12) and rekey anyway.
                self._violation("KEY_UPDATE p is %r, not an object" % (p,))
            self.recv_dir.rekey()
            self.log("server KEY_UPDATE: receiving key updated")
            return None
        if t == "BYE":
            if not (p is None or (isinstance(p, dict) and isinstance(p.get("reason", ""), str))):
                self._violation("BYE with a bad payload %r" % (p,))
                self.send_msg("ERROR", {"code": "invalid-message", "message": "BYE payload"}, i)
                return None
            self.state = "CLOSED"
            self.peer_closed = True
            return m
        if t in ("HEARTBEAT_ACK",):
            if not isinstance(p, dict) or not is_int(p.get("ts")):
                self._violation("HEARTBEAT_ACK with a bad payload %r" % (p,))
                self.send_msg("ERROR", {"code": "invalid-message", "message": "HEARTBEAT_ACK p.ts"}, i)
                return None
        if t == "ERROR":
            if not (isinstance(p, dict) and isinstance(p.get("code"), str)
                    and isinstance(p.get("message"), str)):
                self._violation("ERROR with a bad payload %r" % (p,))
        if t in ("COMMAND", "FILE_REQUEST"):
            # We serve nothing: policy refuses (§8.6).
            self._violation("server sent us a %s" % t)
            self.send_msg("ERROR", {"code": "unauthorized",
                                    "message": "this client runs nothing"}, i)
            return None
        return m

    def heartbeat(self, ts=None, wait_ack=True):
        step = "heartbeat"
        ts = self.mono_ms() if ts is None else ts
        i = self.send_msg("HEARTBEAT", {"ts": ts})
        self.log("sent HEARTBEAT i=%s ts=%d" % (i, ts))
        if not wait_ack:
            return i
        while True:
            m = self.recv_one(step)
            if m is None:
                continue
            if isinstance(m, tuple):
                continue
            t = m["t"]
            if t == "HEARTBEAT_ACK":
                if m["i"] != i:
                    raise PPCPError(step, "HEARTBEAT_ACK with i %r, expected %r" % (m["i"], i))
                if m["p"].get("ts") != ts:
                    raise PPCPError(step, "HEARTBEAT_ACK ts %r, expected %r" % (m["p"].get("ts"), ts))
                self.log("HEARTBEAT_ACK ok (i=%s ts=%d)" % (i, ts))
                return m
            if t == "BYE":
                raise PPCPError(step, "server said BYE before HEARTBEAT_ACK: %s" % json_encode(m["p"]))
            if t == "ERROR":
                raise PPCPError(step, "server answered ERROR %s" % json_encode(m["p"]))
            self._violation("unexpected %s while waiting for HEARTBEAT_ACK" % t)

    def command(self, name, args, out=None):
        """Send a COMMAND (§8.4) and collect its RESPONSEs until the final one."""
        step = "command"
        out = out or (lambda s: None)
        i = self.send_msg("COMMAND", {"name": name, "args": args})
        self.log("sent COMMAND i=%s name=%s" % (i, name))
        responses = []
        while True:
            m = self.recv_one(step)
            if m is None or isinstance(m, tuple):
                continue
            t = m["t"]
            if t == "BYE":
                raise PPCPError(step, "server said BYE before the final RESPONSE: %s" % json_encode(m["p"]))
            if t == "ERROR":
                if m["i"] == i:
                    raise PPCPError(step, "COMMAND refused: ERROR %s" % json_encode(m["p"]))
                raise PPCPError(step, "server sent ERROR %s" % json_encode(m["p"]))
            if t != "RESPONSE":
                self._violation("unexpected %s while waiting for RESPONSE" % t)
                continue
            if m["i"] != i:
                self._violation("RESPONSE with i %r for no COMMAND of ours" % m["i"])
                continue
            p = m["p"]
            if not isinstance(p, dict):
                raise PPCPError(step, "RESPONSE p is not an object")
            responses.append(p)
            if "stream" in p:
                if p["stream"] not in ("stdout", "stderr"):
                    raise PPCPError(step, "RESPONSE stream %r" % (p["stream"],))
                data = b64_strict(p.get("data"))
                if data is None or len(data) > 65536:
                    raise PPCPError(step, "RESPONSE data is not strict base64 of at most 65536 bytes")
                out("RESPONSE %s %s: %s" % (i, p["stream"], data.decode("utf-8", "replace").rstrip("\n")))
                continue
            if p.get("done") is not True:
                raise PPCPError(step, "RESPONSE neither a stream chunk nor final: %s" % json_encode(p))
            out("RESPONSE %s final: %s" % (i, json_encode(p)))
            if name == "status":
                self._check_status(p, step)
            elif name in ("exec", "shell"):
                for f in ("exit", "signal"):
                    if not (p.get(f) is None or is_int(p.get(f))):
                        raise PPCPError(step, "final RESPONSE %s is %r" % (f, p.get(f)))
                for f in ("timed_out", "truncated"):
                    if not isinstance(p.get(f), bool):
                        raise PPCPError(step, "final RESPONSE %s is not a boolean" % f)
            return responses

    def _check_status(self, p, step):
        st = p.get("status")
        if not isinstance(st, dict):
            raise PPCPError(step, "status RESPONSE without a 'status' object")
        for f in ("hostname", "server_id"):
            if not isinstance(st.get(f), str) or not ID_RE.match(st[f]):
                raise PPCPError(step, "status.%s missing or not an identifier" % f)
        if st["server_id"] != self.server_id:
            raise PPCPError(step, "status.server_id %r differs from AUTH_OK server_id %r"
                            % (st["server_id"], self.server_id))
        if not isinstance(st.get("version"), str):
            raise PPCPError(step, "status.version missing")
        if not is_int(st.get("uptime")) or st["uptime"] < 0:
            raise PPCPError(step, "status.uptime is not a non-negative integer")
        load = st.get("load")
        if not (isinstance(load, list) and len(load) == 3
                and all(type(x) in (int, float) for x in load)):
            raise PPCPError(step, "status.load is not 3 numbers")

    def bye(self, reason="done", wait_close=2.0):
        self.send_msg("BYE", {"reason": reason})
        self.state = "CLOSED"
        self.log("sent BYE")
        # §8.5: the server sends nothing more after receiving BYE and closes.
        if wait_close and hasattr(self.t.sock, "settimeout"):
            self.t.sock.settimeout(wait_close)
            try:
                extra = self.t.sock.recv(1)
                if extra:
                    self._violation("server sent data after our BYE")
                else:
                    self.log("server closed the connection after BYE")
            except socket.timeout:
                self.log("server did not close within %.1f s after BYE" % wait_close)
            except OSError:
                pass


# --------------------------------------------------------------------------
# Self-test against tests/vectors/handshake.json
# --------------------------------------------------------------------------


class ScriptedSock:
    """A fake socket: recv from the given server bytes, record what is sent."""

    def __init__(self, incoming):
        self.incoming = bytearray(incoming)
        self.sent = bytearray()

    def sendall(self, b):
        self.sent += b

    def recv(self, n):
        chunk = bytes(self.incoming[:min(n, 1)])  # one byte at a time (§2)
        del self.incoming[:len(chunk)]
        return chunk


class ByteRNG:
    def __init__(self, data):
        self.data = bytearray(data)

    def __call__(self, n):
        if len(self.data) < n:
            raise AssertionError("vector RNG exhausted")
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


def selftest(vectors_path):
    V = json.load(open(vectors_path))
    inp = V["inputs"]
    x = bytes.fromhex
    fails = []
    count = [0]

    def check(name, got, want):
        count[0] += 1
        if got != want:
            fails.append(name)
            print("FAIL %s\n  got  %s\n  want %s" % (name, got.hex() if isinstance(got, bytes) else got,
                                                      want.hex() if isinstance(want, bytes) else want))

    # ExpandLabel examples (§16.5)
    for ex in V["expand_label"]:
        info = expand_label_info(ex["label"], x(ex["ctx"]), ex["L"])
        check("ExpandLabel info %s/%s" % (ex["secret_name"], ex["label"]), info, x(ex["info"]))
        check("ExpandLabel out %s/%s" % (ex["secret_name"], ex["label"]),
              expand_label(x(ex["secret"]), ex["label"], x(ex["ctx"]), ex["L"]), x(ex["out"]))

    # d_c / d_s derivations as documented
    check("d_c", (int.from_bytes(H(b"ppcp test client key"), "big") % P256_N).to_bytes(32, "big"), x(inp["d_c"]))
    check("d_s", (int.from_bytes(H(b"ppcp test server key"), "big") % P256_N).to_bytes(32, "big"), x(inp["d_s"]))

    psk = x(inp["psk"])
    recs = {r["name"] + ("#%d" % n): r for n, r in enumerate(V["records"])}
    rec = V["records"]
    server_bytes = (x(V["hello"]["server_hello_frame"]) + x(rec[1]["frame"]) + x(rec[3]["frame"]))
    sock = ScriptedSock(server_bytes)
    c = Client(Transport(sock), psk, rng=ByteRNG(x(inp["rng_client"])),
               wall=lambda: inp["wall_clock"], client_id=inp["client_id"],
               expect_server_id=inp["server_id"], ext=inp["ext"], max_record=inp["max_record"])
    del recs
    c.send_client_hello()
    check("CLIENT_HELLO frame", bytes(sock.sent), x(V["hello"]["client_hello_frame"]))
    check("X_c", c.X_c, x(V["hello"]["X_c"]))
    c.recv_server_hello()
    for k, v in c.schedule.items():
        check("schedule %s" % k, v, x(V["schedule"][k]))
    check("sid_hash", c.sid_hash, x(V["hello"]["sid_hash"]))
    for name in ("c_hs", "s_hs"):
        sec = c.schedule[name]
        check("key(%s)" % name, traffic_key(sec), x(V["traffic"][name]["key"]))
        check("iv(%s)" % name, traffic_iv(sec), x(V["traffic"][name]["iv"]))
    mark = len(sock.sent)
    c.send_auth()
    check("AUTH record frame", bytes(sock.sent[mark:]), x(rec[0]["frame"]))
    c.recv_auth_ok()
    check("AUTH_OK server_id", c.server_id, inp["server_id"])
    check("AUTH_OK ext", c.ext, inp["ext"])
    check("key(c_ap)", c.send_dir.key, x(V["traffic"]["c_ap"]["key"]))
    check("iv(s_ap)", c.recv_dir.iv, x(V["traffic"]["s_ap"]["iv"]))
    mark = len(sock.sent)
    c.heartbeat(ts=1000)   # sends record 3 and verifies record 4 (HEARTBEAT_ACK)
    check("HEARTBEAT record frame", bytes(sock.sent[mark:]), x(rec[2]["frame"]))
    mark = len(sock.sent)
    c.key_update()
    check("KEY_UPDATE record frame", bytes(sock.sent[mark:]), x(rec[4]["frame"]))
    check("c_ap_1", c.send_dir.secret, x(V["traffic"]["c_ap_1"]["secret"]))
    mark = len(sock.sent)
    c.heartbeat(ts=2000, wait_ack=False)
    check("HEARTBEAT under c_ap_1 frame", bytes(sock.sent[mark:]), x(rec[5]["frame"]))
    check("no violations", c.violations, [])
    check("server bytes all consumed", bytes(sock.incoming), b"")

    # Negative cases: the client must refuse each of these.
    SHf = x(V["hello"]["server_hello_frame"])

    def expect_fail(name, sh_frame, more=b"", psk_=psk, sid=inp["server_id"], ext=None, want=""):
        count[0] += 1
        s = ScriptedSock(sh_frame + more)
        cl = Client(Transport(s), psk_, rng=ByteRNG(x(inp["rng_client"])),
                    wall=lambda: inp["wall_clock"], client_id=inp["client_id"],
                    expect_server_id=sid, ext=inp["ext"] if ext is None else ext,
                    max_record=inp["max_record"])
        try:
            cl.handshake()
            cl.heartbeat(ts=1000)
        except PPCPError as e:
            if want and want not in str(e):
                fails.append(name)
                print("FAIL %s: wrong error %s" % (name, e))
            return
        fails.append(name)
        print("FAIL %s: accepted" % name)

    def flip(frame, off, bit=1):
        b = bytearray(frame)
        b[off] ^= bit
        return bytes(b)

    after = x(rec[1]["frame"]) + x(rec[3]["frame"])
    expect_fail("wrong PSK", SHf, after, psk_=bytes(range(1, 33)), want="wrong PSK")
    expect_fail("s_confirm bit flip", flip(SHf, 4 + 169), after, want="wrong PSK")
    expect_fail("nonce_s bit flip", flip(SHf, 4 + 80), after, want="wrong PSK")
    expect_fail("wrong server_id", SHf, after, sid="srv-other", want="wrong server")
    expect_fail("bad magic", flip(SHf, 4), after, want="not a PPCP hello")
    expect_fail("bad version", flip(SHf, 8, 2), after, want="unsupported version")
    expect_fail("type CLIENT_HELLO", flip(SHf, 9, 3), after, want="malformed hello")
    expect_fail("bad suite", flip(SHf, 10, 2), after, want="unsupported suite")
    expect_fail("reserved", flip(SHf, 11), after, want="malformed hello")
    expect_fail("pub_len", flip(SHf, 12), after, want="malformed hello")
    expect_fail("short SH", u32(169) + SHf[4:173], want="malformed hello")
    expect_fail("compressed point", flip(SHf, 13, 0x06), after, want="invalid server key")
    expect_fail("point off curve", flip(SHf, 13 + 64), after, want="invalid server key")
    xp = bytearray(SHf)
    xp[14:46] = P256_P.to_bytes(32, "big")
    expect_fail("x = p", bytes(xp), after, want="invalid server key")
    refl = bytearray(SHf)
    refl[13:78] = x(V["hello"]["X_c"])
    expect_fail("reflected X_c", bytes(refl), after, want="reflects")
    expect_fail("AUTH_OK tag flip", SHf, flip(x(rec[1]["frame"]), 40) + x(rec[3]["frame"]),
                want="record failed authentication")
    expect_fail("AUTH_OK nonce flip", SHf, flip(x(rec[1]["frame"]), 15) + x(rec[3]["frame"]),
                want="sequence error")
    expect_fail("AUTH_OK len", SHf, flip(x(rec[1]["frame"]), 3) + x(rec[3]["frame"]))
    expect_fail("AUTH_OK ext not offered", SHf, after, ext=["key-update"], want="subset")
    expect_fail("AUTH_OK replayed as HEARTBEAT_ACK", SHf, x(rec[1]["frame"]) + x(rec[1]["frame"]),
                want="sequence error")
    expect_fail("client record reflected", SHf, x(rec[0]["frame"]), want="sequence error")
    expect_fail("EOF after SERVER_HELLO", SHf, b"", want="truncated")

    # Strict JSON and base64 rules (§6, §7)
    for bad in [b'{"a":1,"a":2}', b'{"a":"\\u0000"}', b'\xff{}', b'{"a":NaN}',
                b'[' * 17 + b']' * 17, b'{"a":"\\ud800"}']:
        count[0] += 1
        try:
            json_parse(bad)
            fails.append("json %r" % bad)
            print("FAIL json accepted %r" % bad)
        except JSONInvalid:
            pass
    count[0] += 1
    if json_parse(b'[' * 16 + b']' * 16) is None:
        fails.append("json depth 16")
    proof = "I1qKXkPFJbqyQiM52FZ9p0gbtLNr588oxi/iEpZvtTg="
    check("b64 strict ok", b64_strict(proof, 32), x(V["schedule"]["c_confirm"]))
    check("b64 unused bits", b64_strict(proof[:42] + "h=", 32), None)
    check("b64 no pad", b64_strict(proof[:43], 32), None)
    check("b64 whitespace", b64_strict(proof[:20] + "\n" + proof[20:], 32), None)
    check("json_encode escapes", json_encode({"b": "é\n\"\\/", "a": [1, None, True]}),
          '{"a":[1,null,true],"b":"\\u00E9\\u000A\\"\\\\/"}')

    print("selftest: %d checks, %d failed" % (count[0], len(fails)))
    return 0 if not fails else 1


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def fail(step, reason):
    print("ppcp_client: FAILED at %s: %s" % (step, reason), file=sys.stderr)
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Independent PPCP v1 client (from docs/PROTOCOL.md)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--psk-file")
    ap.add_argument("--server-id", help="expected server_id (checked against sid_hash)")
    ap.add_argument("--client-id", default="py-interop")
    ap.add_argument("--tcp-ping", action="store_true", help="send a PING as the first TCP frame")
    ap.add_argument("--key-update", action="store_true",
                    help="after the HEARTBEAT, send KEY_UPDATE and a second HEARTBEAT")
    ap.add_argument("--ext", default="key-update,binary-data",
                    help="comma-separated extensions to offer (default: key-update,binary-data)")
    ap.add_argument("--command-json", help='a COMMAND payload, e.g. {"name":"status","args":{}}')
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per network wait")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--keylog", metavar="FILE",
                    help="TESTS ONLY: write every secret of the session to FILE (mode 600), "
                         "one 'name hex' per line, so a test can look for them in logs")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--vectors", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "..", "vectors", "handshake.json"))
    a = ap.parse_args(argv)

    if not HAVE_CRYPTOGRAPHY:
        return fail("setup", "the Python 'cryptography' package is not installed")
    if a.selftest:
        return selftest(a.vectors)
    if a.port is None or a.psk_file is None:
        ap.error("--port and --psk-file are required (or --selftest)")

    log = (lambda m: print("ppcp_client: " + m, flush=True)) if a.verbose else None
    step = "setup"
    try:
        command = None
        if a.command_json:
            try:
                command = json.loads(a.command_json)
            except ValueError as e:
                return fail("setup", "--command-json is not JSON: %s" % e)
            if not (isinstance(command, dict) and isinstance(command.get("name"), str)
                    and isinstance(command.get("args", {}), dict)):
                return fail("setup", '--command-json must be {"name": string, "args": object}')
        psk = read_psk_file(a.psk_file)
        ext = [e for e in a.ext.split(",") if e]
        step = "connect"
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
        sock.settimeout(a.timeout)
        try:
            c = Client(Transport(sock), psk, client_id=a.client_id,
                       expect_server_id=a.server_id, ext=ext, log=log)
            if a.tcp_ping:
                step = "tcp-ping"
                pong = c.tcp_ping(target=a.server_id)
                print("PONG %s" % json_encode(pong["p"]))
                if pong["p"]["public_info"]["port"] != a.port:
                    print("note: PONG public_info.port %d is not the port we reached (%d)"
                          % (pong["p"]["public_info"]["port"], a.port))
            step = "handshake"
            c.handshake()
            print("ESTABLISHED server_id=%s ext=%s max_record=%d"
                  % (c.server_id, ",".join(c.ext) or "-", c.peer_max_record))
            step = "heartbeat"
            c.heartbeat()
            print("HEARTBEAT_ACK ok")
            if a.key_update:
                step = "key-update"
                if "key-update" in c.ext:
                    c.key_update()
                    c.heartbeat()
                    print("KEY_UPDATE ok (HEARTBEAT_ACK under the new key)")
                else:
                    print("KEY_UPDATE skipped: extension not in force")
            if command is not None:
                step = "command"
                c.command(command["name"], command.get("args", {}), out=print)
            step = "bye"
            if c.state == "ESTABLISHED":
                c.bye()
            if a.keylog:
                fd = os.open(a.keylog, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    for name, v in c.secrets():
                        f.write("%s %s\n" % (name.replace(" ", "_"), v.hex()))
            if c.violations:
                return fail("session", "server deviated from the protocol: " + "; ".join(c.violations))
            print("OK")
            return 0
        finally:
            sock.close()
    except PPCPError as e:
        return fail(e.step, e.reason)
    except (OSError, socket.timeout) as e:
        return fail(step, "%s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    sys.exit(main())
