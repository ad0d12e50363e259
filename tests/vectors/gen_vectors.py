#!/usr/bin/python3
"""gen_vectors.py - independent test vectors for the PPCP handshake.

This script implements docs/PROTOCOL.md (§3 hellos, §4 key schedule, §5
records, §6 AUTH phase, §7 JSON encoding, §8 session messages) from the text
alone.  It never loads libppcp: P-256 and AES-256-GCM come from Python's
`cryptography` package, SHA-256 and HMAC from the standard library, and HKDF
is written out below from RFC 5869.  The C tests (tests/test_keysched.c and
the engine tests) compare libppcp against the file this script writes.

Usage:
    /usr/bin/python3 tests/vectors/gen_vectors.py [--out DIR] [--markdown FILE]
                                                  [--check] [--quiet]

It writes DIR/handshake.json and DIR/handshake.md (DIR defaults to the
directory of this script) and prints the Markdown rendering on stdout.
With --markdown FILE it also replaces the text between the lines
"<!-- vectors:begin -->" and "<!-- vectors:end -->" in FILE.  With --check
it writes nothing and exits 1 if the files on disk differ from what it would
write.  The output is a pure function of the fixed inputs below: running the
script twice gives byte-identical files.

Fixed inputs (all documented in the output too):
    PSK      = bytes 0x00..0x1f (32 bytes)
    d_c      = int(SHA-256("ppcp test client key")) mod n, as 32 bytes
    d_s      = int(SHA-256("ppcp test server key")) mod n, as 32 bytes
               (n is the order of P-256; both are checked to be in [1, n-1])
    nonce_c  = bytes 0x40..0x5f      nonce_s = bytes 0x60..0x7f
    server_id = "srv-test"           client_id = "cli-test"
    s (wall clock) = 1700000000 in every message
    ext = ["key-update", "binary-data"] on both sides, max_record = 1048576
A side under test draws its randomness as d (32 bytes) then nonce (32
bytes); the "rng" fields give that 64-byte stream for each side.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ---------------------------------------------------------------------------
# Primitives (PROTOCOL.md §1 conventions)

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def H(data):
    return hashlib.sha256(data).digest()


def HMAC(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def hkdf_extract(salt, ikm):
    """RFC 5869 §2.2.  An empty salt means HashLen zero bytes."""
    if not salt:
        salt = bytes(32)
    return HMAC(salt, ikm)


def hkdf_expand(prk, info, length):
    """RFC 5869 §2.3: T(i) = HMAC(PRK, T(i-1) | info | i)."""
    if length > 255 * 32:
        raise ValueError("HKDF-Expand: L too large")
    okm = b""
    t = b""
    i = 1
    while len(okm) < length:
        t = HMAC(prk, t + info + bytes([i]))
        okm += t
        i += 1
    return okm[:length]


def u8(x):
    return x.to_bytes(1, "big")


def u16(x):
    return x.to_bytes(2, "big")


def u32(x):
    return x.to_bytes(4, "big")


def u64(x):
    return x.to_bytes(8, "big")


def self_test_hkdf():
    """RFC 5869 Appendix A.1 and A.3, so a bug in the HKDF above cannot
    silently become the reference."""
    ikm = bytes([0x0B]) * 22
    salt = bytes(range(0x00, 0x0D))
    info = bytes(range(0xF0, 0xFA))
    prk = hkdf_extract(salt, ikm)
    assert prk.hex() == ("077709362c2e32df0ddc3f0dc47bba63"
                         "90b6c73bb50f9c3122ec844ad7c2b3e5"), "RFC 5869 A.1 PRK"
    okm = hkdf_expand(prk, info, 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a"
                         "2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865"), "RFC 5869 A.1 OKM"
    prk = hkdf_extract(b"", ikm)
    assert prk.hex() == ("19ef24a32c717b167f33a91d6f648bdf"
                         "96596776afdb6377ac434c1c293ccb04"), "RFC 5869 A.3 PRK"
    okm = hkdf_expand(prk, b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31"
                         "b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8"), "RFC 5869 A.3 OKM"


# ---------------------------------------------------------------------------
# §4 key schedule

LABEL_PREFIX = b"ppcp1 "


def label_info(label, ctx, length):
    """info = u16(L) ‖ u8(6 + |label|) ‖ "ppcp1 " ‖ label ‖ u8(|ctx|) ‖ ctx"""
    full = LABEL_PREFIX + label.encode("ascii")
    assert len(full) <= 255 and len(ctx) <= 255
    return u16(length) + u8(len(full)) + full + u8(len(ctx)) + ctx


def expand_label(secret, label, ctx, length):
    return hkdf_expand(secret, label_info(label, ctx, length), length)


def derive(secret, label, th):
    return expand_label(secret, label, th, 32)


def traffic(secret):
    return expand_label(secret, "key", b"", 32), expand_label(secret, "iv", b"", 12)


# ---------------------------------------------------------------------------
# §3 hellos

def hdr(msg_type):
    # "PPCP" ‖ version 0x01 ‖ type ‖ suite 0x01 ‖ reserved 0x00
    return b"PPCP" + u8(1) + u8(msg_type) + u8(1) + u8(0)


def frame(body):
    return u32(len(body)) + body


def scalar_from_label(text):
    d = int.from_bytes(H(text.encode("ascii")), "big") % P256_N
    assert 1 <= d < P256_N
    return d.to_bytes(32, "big")


def p256_key(d):
    return ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())


def sec1_uncompressed(priv):
    return priv.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)


# ---------------------------------------------------------------------------
# §5 records, §7 JSON

def canonical_json(obj):
    """§7: compact, keys sorted, non-ASCII escaped (all our strings are ASCII)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def envelope(msg_type, payload, msg_id, wall):
    return {"v": 1, "t": msg_type, "p": payload, "i": msg_id, "s": wall}


def seal_record(key, iv, seq, plaintext):
    """§5: nonce = iv XOR (0^4 ‖ u64(seq)); AAD = u32(len) ‖ nonce;
    body = nonce ‖ ciphertext ‖ tag; len = 12 + |pt| + 16."""
    nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + u64(seq)))
    length = 12 + len(plaintext) + 16
    aad = u32(length) + nonce
    ct_tag = AESGCM(key).encrypt(nonce, plaintext, aad)
    assert AESGCM(key).decrypt(nonce, ct_tag, aad) == plaintext
    body = nonce + ct_tag
    assert len(body) == length
    return {
        "nonce": nonce,
        "aad": aad,
        "ciphertext": ct_tag[:-16],
        "tag": ct_tag[-16:],
        "frame": u32(length) + body,
    }


# ---------------------------------------------------------------------------
# The whole handshake and the first session records

def build():
    self_test_hkdf()
    # The example of §4 must come out of label_info as printed there.
    assert label_info("key", b"", 32) == bytes.fromhex(
        "00 20 09 70 70 63 70 31 20 6b 65 79 00"), "PROTOCOL.md §4 info example"

    psk = bytes(range(0x00, 0x20))
    d_c = scalar_from_label("ppcp test client key")
    d_s = scalar_from_label("ppcp test server key")
    nonce_c = bytes(range(0x40, 0x60))
    nonce_s = bytes(range(0x60, 0x80))
    server_id = "srv-test"
    client_id = "cli-test"
    wall = 1700000000
    ext = ["key-update", "binary-data"]
    max_record = 1048576

    # §3: ephemeral keys and hellos.
    priv_c = p256_key(d_c)
    priv_s = p256_key(d_s)
    x_c = sec1_uncompressed(priv_c)
    x_s = sec1_uncompressed(priv_s)
    assert len(x_c) == 65 and x_c[0] == 4 and x_c != x_s

    z = priv_c.exchange(ec.ECDH(), priv_s.public_key())
    assert z == priv_s.exchange(ec.ECDH(), priv_c.public_key()) and len(z) == 32

    ch = hdr(1) + u8(0x41) + x_c + nonce_c
    assert len(ch) == 106
    sid_hash = H(server_id.encode("utf-8"))
    sh138 = hdr(2) + u8(0x41) + x_s + nonce_s + sid_hash
    assert len(sh138) == 138

    # §4: key schedule.
    e = H(b"")
    es = hkdf_extract(bytes(32), psk)
    derived_es = derive(es, "derived", e)
    hs = hkdf_extract(derived_es, z)
    th1 = H(ch + sh138)
    c_hs = derive(hs, "c hs", th1)
    s_hs = derive(hs, "s hs", th1)
    fin_s = expand_label(s_hs, "finished", b"", 32)
    s_confirm = HMAC(fin_s, th1)
    sh = sh138 + s_confirm
    assert len(sh) == 170
    th2 = H(ch + sh)
    fin_c = expand_label(c_hs, "finished", b"", 32)
    c_confirm = HMAC(fin_c, th2)
    th3 = H(ch + sh + c_confirm)
    ack_key = expand_label(s_hs, "ack", b"", 32)
    s_ack = HMAC(ack_key, th3)
    derived_hs = derive(hs, "derived", e)
    ms = hkdf_extract(derived_hs, bytes(32))
    c_ap = derive(ms, "c ap", th3)
    s_ap = derive(ms, "s ap", th3)
    c_ap_1 = expand_label(c_ap, "upd", b"", 32)

    secrets = {"c_hs": c_hs, "s_hs": s_hs, "c_ap": c_ap, "s_ap": s_ap, "c_ap_1": c_ap_1}
    keys = {name: traffic(s) for name, s in secrets.items()}

    # ExpandLabel examples: each shape of info that the schedule uses.
    examples = []
    for secret_name, secret, label, ctx_name, ctx, length in [
        ("HS", hs, "c hs", "TH1", th1, 32),
        ("ES", es, "derived", "E", e, 32),
        ("c_ap", c_ap, "key", "", b"", 32),
        ("c_ap", c_ap, "iv", "", b"", 12),
        ("c_ap", c_ap, "upd", "", b"", 32),
        ("s_hs", s_hs, "finished", "", b"", 32),
        ("s_hs", s_hs, "ack", "", b"", 32),
        ("PSK", psk, "example", "ctx", bytes([0xAB, 0xCD]), 80),
    ]:
        examples.append({
            "secret_name": secret_name,
            "secret": secret.hex(),
            "label": label,
            "ctx_name": ctx_name,
            "ctx": ctx.hex(),
            "L": length,
            "info": label_info(label, ctx, length).hex(),
            "out": expand_label(secret, label, ctx, length).hex(),
        })

    # §6, §7, §8: the AUTH phase and the first session records.
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    auth = envelope("AUTH", {"client_id": client_id, "ext": ext, "max_record": max_record,
                             "proof": b64(c_confirm)}, "00000001", wall)
    auth_ok = envelope("AUTH_OK", {"ext": ext, "max_record": max_record,
                                   "proof": b64(s_ack), "server_id": server_id},
                       "00000001", wall)
    plan = [
        ("AUTH", "client", "c_hs", 0, auth),
        ("AUTH_OK", "server", "s_hs", 0, auth_ok),
        ("HEARTBEAT", "client", "c_ap", 0,
         envelope("HEARTBEAT", {"ts": 1000}, "00000002", wall)),
        ("HEARTBEAT_ACK", "server", "s_ap", 0,
         envelope("HEARTBEAT_ACK", {"ts": 1000}, "00000002", wall)),
        ("KEY_UPDATE", "client", "c_ap", 1,
         envelope("KEY_UPDATE", {}, "00000003", wall)),
        ("HEARTBEAT", "client", "c_ap_1", 0,
         envelope("HEARTBEAT", {"ts": 2000}, "00000004", wall)),
    ]
    records = []
    for name, sender, secret_name, seq, msg in plan:
        text = canonical_json(msg)
        key, iv = keys[secret_name]
        rec = seal_record(key, iv, seq, text.encode("ascii"))
        records.append({
            "name": name,
            "sender": sender,
            "secret": secret_name,
            "seq": seq,
            "key": key.hex(),
            "iv": iv.hex(),
            "plaintext": text,
            "plaintext_hex": text.encode("ascii").hex(),
            "nonce": rec["nonce"].hex(),
            "aad": rec["aad"].hex(),
            "ciphertext": rec["ciphertext"].hex(),
            "tag": rec["tag"].hex(),
            "frame": rec["frame"].hex(),
        })

    return {
        "description": "PPCP v1 handshake test vectors (docs/PROTOCOL.md §16). "
                       "Generated by tests/vectors/gen_vectors.py from the text of "
                       "docs/PROTOCOL.md with Python cryptography and hashlib/hmac; "
                       "never by libppcp. All byte strings are lowercase hex.",
        "inputs": {
            "psk": psk.hex(),
            "d_c": d_c.hex(),
            "d_c_derivation": 'int(SHA-256("ppcp test client key")) mod n',
            "d_s": d_s.hex(),
            "d_s_derivation": 'int(SHA-256("ppcp test server key")) mod n',
            "nonce_c": nonce_c.hex(),
            "nonce_s": nonce_s.hex(),
            "rng_client": (d_c + nonce_c).hex(),
            "rng_server": (d_s + nonce_s).hex(),
            "server_id": server_id,
            "client_id": client_id,
            "wall_clock": wall,
            "ext": ext,
            "max_record": max_record,
        },
        "hello": {
            "X_c": x_c.hex(),
            "X_s": x_s.hex(),
            "sid_hash": sid_hash.hex(),
            "client_hello": ch.hex(),
            "client_hello_frame": frame(ch).hex(),
            "server_hello": sh.hex(),
            "server_hello_frame": frame(sh).hex(),
        },
        "schedule": {
            "Z": z.hex(),
            "E": e.hex(),
            "ES": es.hex(),
            "derived_es": derived_es.hex(),
            "HS": hs.hex(),
            "TH1": th1.hex(),
            "c_hs": c_hs.hex(),
            "s_hs": s_hs.hex(),
            "finished_s": fin_s.hex(),
            "s_confirm": s_confirm.hex(),
            "TH2": th2.hex(),
            "finished_c": fin_c.hex(),
            "c_confirm": c_confirm.hex(),
            "TH3": th3.hex(),
            "ack_key": ack_key.hex(),
            "s_ack": s_ack.hex(),
            "derived_hs": derived_hs.hex(),
            "MS": ms.hex(),
            "c_ap": c_ap.hex(),
            "s_ap": s_ap.hex(),
        },
        "traffic": {
            name: {"secret": secrets[name].hex(), "key": k.hex(), "iv": iv.hex()}
            for name, (k, iv) in keys.items()
        },
        "key_update": {
            "from": "c_ap",
            "secret": c_ap.hex(),
            "next": c_ap_1.hex(),
            "next_key": keys["c_ap_1"][0].hex(),
            "next_iv": keys["c_ap_1"][1].hex(),
        },
        "expand_label": examples,
        "records": records,
    }


# ---------------------------------------------------------------------------
# Output

def wrap_hex(h, width=64, indent=""):
    """Hex in lines of `width` digits; continuation lines indented."""
    if len(h) <= width:
        return h
    parts = [h[i:i + width] for i in range(0, len(h), width)]
    return ("\n" + indent).join(parts)


def md_block(pairs):
    """A fenced block of `name = value` lines with wrapped hex."""
    w = max(len(k) for k, _ in pairs)
    lines = []
    for k, v in pairs:
        pad = " " * (w + 3)
        if isinstance(v, str) and all(c in "0123456789abcdef" for c in v) and v:
            lines.append(f"{k.ljust(w)} = {wrap_hex(v, 64, pad)}")
        else:
            lines.append(f"{k.ljust(w)} = {v}")
    return "```\n" + "\n".join(lines) + "\n```\n"


def render_markdown(v):
    i, hl, s = v["inputs"], v["hello"], v["schedule"]
    out = []
    out.append("Generated by `tests/vectors/gen_vectors.py` (also in "
               "`tests/vectors/handshake.json`). All byte strings are hex; long values are "
               "wrapped at 32 bytes per line.\n")
    out.append("### 16.1 Inputs\n")
    out.append("`d_c` = int(SHA-256(\"ppcp test client key\")) mod n and `d_s` = "
               "int(SHA-256(\"ppcp test server key\")) mod n, as 32 bytes (n is the order of "
               "P-256). An engine under test draws its private scalar and then its hello nonce "
               "from its RNG: `rng_client` = `d_c ‖ nonce_c`, `rng_server` = `d_s ‖ nonce_s`. "
               "Every message has `s` = %d; both sides offer `ext` = %s and `max_record` = %d.\n"
               % (i["wall_clock"], json.dumps(i["ext"]), i["max_record"]))
    out.append(md_block([
        ("PSK", i["psk"]), ("d_c", i["d_c"]), ("d_s", i["d_s"]),
        ("nonce_c", i["nonce_c"]), ("nonce_s", i["nonce_s"]),
        ("server_id", '"%s"' % i["server_id"]), ("client_id", '"%s"' % i["client_id"]),
    ]))
    out.append("### 16.2 Hellos (§3)\n")
    out.append(md_block([
        ("X_c", hl["X_c"]), ("X_s", hl["X_s"]), ("sid_hash", hl["sid_hash"]),
        ("CLIENT_HELLO frame", hl["client_hello_frame"]),
        ("SERVER_HELLO frame", hl["server_hello_frame"]),
    ]))
    out.append("### 16.3 Key schedule (§4)\n")
    out.append("`finished_s` = ExpandLabel(s_hs, \"finished\", \"\", 32), `finished_c` = "
               "ExpandLabel(c_hs, \"finished\", \"\", 32), `ack_key` = ExpandLabel(s_hs, \"ack\", "
               "\"\", 32), `derived_es` = Derive(ES, \"derived\", E), `derived_hs` = "
               "Derive(HS, \"derived\", E).\n")
    out.append(md_block([(k, s[k]) for k in [
        "Z", "E", "ES", "derived_es", "HS", "TH1", "c_hs", "s_hs", "finished_s", "s_confirm",
        "TH2", "finished_c", "c_confirm", "TH3", "ack_key", "s_ack", "derived_hs", "MS",
        "c_ap", "s_ap"]]))
    out.append("### 16.4 Traffic keys and KEY_UPDATE (§4, §8.3)\n")
    out.append("`c_ap_1` = ExpandLabel(c_ap, \"upd\", \"\", 32), the client's sending secret "
               "after one KEY_UPDATE.\n")
    pairs = []
    for name, t in v["traffic"].items():
        if name == "c_ap_1":
            pairs.append(("c_ap_1", t["secret"]))
        pairs.append(("key(%s)" % name, t["key"]))
        pairs.append(("iv(%s)" % name, t["iv"]))
    out.append(md_block(pairs))
    out.append("### 16.5 ExpandLabel examples\n")
    for ex in v["expand_label"]:
        out.append("ExpandLabel(%s, \"%s\", %s, %d):\n" % (
            ex["secret_name"], ex["label"], ex["ctx_name"] or '""', ex["L"]))
        pairs = [("S", ex["secret"])]
        if ex["ctx"]:
            pairs.append(("ctx", ex["ctx"]))
        pairs += [("info", ex["info"]), ("out", ex["out"])]
        out.append(md_block(pairs))
    out.append("### 16.6 Records (§5, §6, §8)\n")
    out.append("Each record: the JSON plaintext exactly as sent, then `nonce` = iv XOR "
               "(0^4 ‖ u64(seq)), the AAD, and the whole frame `u32(len) ‖ nonce ‖ "
               "ciphertext ‖ tag`.\n")
    for n, r in enumerate(v["records"], 1):
        out.append("%d. %s, %s → %s, under `%s`, seq %d:\n" % (
            n, r["name"], r["sender"], "server" if r["sender"] == "client" else "client",
            r["secret"], r["seq"]))
        out.append("```json\n" + r["plaintext"] + "\n```\n")
        out.append(md_block([("nonce", r["nonce"]), ("AAD", r["aad"]),
                             ("frame", r["frame"])]))
    return "\n".join(out)


def replace_between_markers(path, text):
    begin, end = "<!-- vectors:begin -->", "<!-- vectors:end -->"
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        b = lines.index(begin)
        e = lines.index(end, b + 1)
    except ValueError:
        sys.exit("%s: no '%s' ... '%s' lines" % (path, begin, end))
    new = lines[:b + 1] + [text.rstrip("\n")] + lines[e:]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(new))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here, help="directory for handshake.json/.md")
    ap.add_argument("--markdown", metavar="FILE",
                    help="replace the vectors:begin/end section of FILE")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if the files differ from the output")
    ap.add_argument("--quiet", action="store_true", help="do not print the Markdown")
    args = ap.parse_args()

    v = build()
    js = json.dumps(v, indent=2, ensure_ascii=False) + "\n"
    md = render_markdown(v)
    outputs = {os.path.join(args.out, "handshake.json"): js,
               os.path.join(args.out, "handshake.md"): md}

    if args.check:
        bad = 0
        for path, text in outputs.items():
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                print("%s: differs from the generator's output" % path, file=sys.stderr)
                bad = 1
        sys.exit(bad)

    for path, text in outputs.items():
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if args.markdown:
        replace_between_markers(args.markdown, md)
    if not args.quiet:
        sys.stdout.write(md)


if __name__ == "__main__":
    main()
