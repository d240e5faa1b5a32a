#!/usr/bin/env python3
"""tests/fuzz/gen_corpus.py - (re)write the seed corpora in tests/fuzz/corpus/.

Seeds are small, valid inputs for each target in the layout described at
the top of its fuzz_*.c file.  Deterministic: running it twice gives the
same files.  Usage: tests/fuzz/gen_corpus.py [CORPUS_DIR]
"""
import os
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")

# Order of fuzz_encs[] in fuzz_common.h
ENCS = ["raw", "copyrect", "hextile", "zlib", "tight", "zrle", "zywrle", "tightpng",
        "desktopsize", "lastrect", "pointerpos", "cursor", "xcursor", "qemupointer",
        "qemukey", "qemuaudio", "led", "extdesktop", "alphacursor", "extclip", "xvp",
        "fence", "cu", "wmvi", "extmouse", "rre", "trle", "quality", "compress",
        "desktopname", "vmwarecursor", "gii"]
ALL_DELIMITABLE = (1 << 23) - 1          # raw .. cu


def u8(v): return struct.pack(">B", v & 0xff)
def u16(v): return struct.pack(">H", v & 0xffff)
def u32(v): return struct.pack(">I", v & 0xffffffff)
def s32(v): return struct.pack(">i", v)


class Rnd:
    def __init__(self, seed): self.s = seed
    def bytes(self, n):
        out = bytearray()
        for _ in range(n):
            self.s = (self.s * 1103515245 + 12345) & 0xffffffff
            out.append((self.s >> 16) & 0xff)
        return bytes(out)


R = Rnd(7)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ s2c

def s2c_cfg(pf=0, filt=False, flags=0, mask=ALL_DELIMITABLE, seed=3, inject_at=None, inject_pf=3):
    b0 = (pf & 7) | (8 if filt else 0) | ((flags & 15) << 4)
    cfg = u8(b0) + struct.pack("<I", mask) + u8(seed)
    if inject_at is None:
        cfg += u16(0) + u8(0x80)
    else:
        cfg += struct.pack("<H", inject_at) + u8(inject_pf & 7)
    return cfg


def fbu(rects):
    return u8(0) + u8(0) + u16(len(rects)) + b"".join(rects)


def rect(x, y, w, h, enc, body=b""):
    return u16(x) + u16(y) + u16(w) + u16(h) + s32(enc) + body


def compact(v):
    if v < 128:
        return u8(v)
    if v < 16384:
        return u8(0x80 | (v & 0x7f)) + u8(v >> 7)
    return u8(0x80 | (v & 0x7f)) + u8(0x80 | ((v >> 7) & 0x7f)) + u8(v >> 14)


def hextile(w, h, bpp):
    out = b""
    v = 0
    for ty in range(0, h, 16):
        for tx in range(0, w, 16):
            tw, th = min(16, w - tx), min(16, h - ty)
            k = v % 5
            v += 1
            if k == 0:
                out += u8(1) + R.bytes(tw * th * bpp)
            elif k == 1:
                out += u8(2) + R.bytes(bpp)
            elif k == 2:
                out += u8(2 | 4 | 8) + R.bytes(2 * bpp) + u8(1) + u8(0) + u8(((tw - 1) << 4) | (th - 1))
            elif k == 3:
                out += u8(8 | 16) + u8(2) + R.bytes(bpp) + u8(0) + u8(0) + R.bytes(bpp) + u8(0x11) + u8(0)
            else:
                out += u8(0)
    return out


def tight_rects(tp, png=False):
    enc = -260 if png else 7
    rs = [
        rect(0, 0, 8, 8, enc, u8(0x80) + R.bytes(tp)),
        rect(0, 0, 8, 8, enc, u8(0x90) + compact(20) + R.bytes(20)),
        rect(0, 0, 1, 3, enc, u8(0x00) + R.bytes(3 * tp) if 3 * tp < 12 else u8(0) + compact(5) + R.bytes(5)),
        rect(0, 0, 20, 10, enc, u8(0x41) + u8(0) + compact(30) + R.bytes(30)),
        rect(0, 0, 8, 8, enc, u8(0x50) + u8(1) + u8(1) + R.bytes(2 * tp) + R.bytes(8)),
        rect(0, 0, 16, 16, enc, u8(0x60) + u8(1) + u8(4) + R.bytes(5 * tp) + compact(40) + R.bytes(40)),
        rect(0, 0, 10, 10, enc, u8(0x70) + u8(2) + compact(33) + R.bytes(33)),
    ]
    if png:
        rs.append(rect(0, 0, 30, 30, enc, u8(0xa0) + compact(200) + R.bytes(200)))
    return rs


def s2c_seeds():
    # (pf index, bytes per pixel, tight pixel)
    for pf, bpp, tp in [(0, 4, 3), (1, 4, 3), (2, 4, 4), (3, 2, 2), (4, 1, 1), (5, 1, 1)]:
        write("rfbmsg_s2c", f"raw-pf{pf}", s2c_cfg(pf) + fbu([rect(0, 0, 4, 3, 0, R.bytes(12 * bpp)),
                                                               rect(1, 1, 2, 2, 1, u16(0) + u16(0))]))
        write("rfbmsg_s2c", f"hextile-pf{pf}", s2c_cfg(pf) + fbu([rect(0, 0, 33, 18, 5, hextile(33, 18, bpp))]))
        write("rfbmsg_s2c", f"tight-pf{pf}", s2c_cfg(pf) + fbu(tight_rects(tp)))
        write("rfbmsg_s2c", f"tightpng-pf{pf}", s2c_cfg(pf) + fbu(tight_rects(tp, png=True)))
        write("rfbmsg_s2c", f"cursor-pf{pf}", s2c_cfg(pf) + fbu([rect(2, 2, 9, 4, -239, R.bytes(9 * 4 * bpp + 2 * 4))]))
    write("rfbmsg_s2c", "zlib-zrle-zywrle", s2c_cfg() + fbu([
        rect(0, 0, 8, 8, 6, u32(17) + R.bytes(17)),
        rect(0, 0, 64, 64, 16, u32(40) + R.bytes(40)),
        rect(0, 0, 64, 64, 17, u32(0))]))
    write("rfbmsg_s2c", "pseudo", s2c_cfg() + fbu([
        rect(0, 0, 1024, 768, -223), rect(5, 5, 0, 0, -232), rect(1, 0, 0, 0, -257),
        rect(0, 0, 0, 0, -258), rect(0, 0, 0, 0, -259), rect(0, 0, 0, 0, -261, u8(4)),
        rect(0, 0, 9, 2, -240, R.bytes(6 + 2 * 2 * 2)),
        rect(0, 0, 800, 600, -308, u8(1) + b"\0\0\0" + R.bytes(16)),
        rect(3, 3, 4, 4, -314, s32(0) + R.bytes(64))]))
    write("rfbmsg_s2c", "lastrect", s2c_cfg() + u8(0) + u8(0) + u16(0xffff) +
          rect(0, 0, 1, 1, 0, R.bytes(4)) + rect(0, 0, 0, 0, -224) + fbu([]))
    write("rfbmsg_s2c", "messages", s2c_cfg() +
          u8(1) + u8(0) + u16(0) + u16(3) + R.bytes(18) +        # colour map
          u8(2) +                                                 # bell
          u8(3) + b"\0\0\0" + u32(5) + b"hello" +                 # legacy cut text
          u8(3) + b"\0\0\0" + s32(-8) + u32(0x1b000001) + u32(0) +  # QEMU caps
          u8(3) + b"\0\0\0" + s32(-4) + u32(0x08000001) +         # notify
          u8(255) + u8(1) + u16(1) + u8(255) + u8(1) + u16(2) + u32(6) + R.bytes(6) +
          u8(255) + u8(1) + u16(0) +
          u8(250) + u8(0) + u8(1) + u8(1) + u8(150) +
          u8(248) + b"\0\0\0" + u32(0) + u8(2) + b"ab")
    # a SetPixelFormat (to 16 bpp) injected while an update is in progress
    write("rfbmsg_s2c", "pf-switch", s2c_cfg(0, inject_at=20, inject_pf=3) +
          fbu([rect(0, 0, 2, 2, 0, R.bytes(16)), rect(0, 0, 2, 2, 0, R.bytes(16))]) +
          fbu([rect(0, 0, 2, 2, 0, R.bytes(8)), rect(0, 0, 4, 4, 7, u8(0x80) + R.bytes(2))]))
    write("rfbmsg_s2c", "filtered", s2c_cfg(0, filt=True, flags=1) +
          fbu([rect(0, 0, 4, 4, 7, u8(0x80) + R.bytes(3))]) + u8(3) + b"\0\0\0" + s32(-4) + u32(0x08000000))
    write("rfbmsg_s2c", "bad-tight", s2c_cfg() + fbu([rect(0, 0, 4, 4, 7, u8(0xb0))]))


# ------------------------------------------------------------------ c2s

def c2s_cfg(flags=0, filt=True, mask=ALL_DELIMITABLE, confirm=3, seed=5):
    return u8((flags & 15) | (0x10 if filt else 0)) + struct.pack("<I", mask) + u8(confirm) + u8(seed)


def setenc(encs):
    return u8(2) + u8(0) + u16(len(encs)) + b"".join(s32(e) for e in encs)


def c2s_seeds():
    novnc = [1, 7, -260, 5, 2, 0, -26, -254, -224, -223, -308, -309, -312, -313, -307,
             -1063131698, -239, 0x574D5664, -258, -261, -257]
    tiger = [7, 1, 16, 5, 2, 0, -314, 0x574D5664, -239, -240, 0x574D5666, -223, -308, -261,
             0x574D5668, -307, -224, -1063131698, -313, -312, -258, -254, -24]
    gtk = [7, 16, 5, 2, 1, 0, -309, -258, -261, -308, -223, -307, -224, 0x574D5669, -259,
           -314, -239, -240, -257]
    for i, (name, e) in enumerate([("novnc", novnc), ("tigervnc", tiger), ("gtkvnc", gtk)]):
        write("rfbmsg_c2s", f"setenc-{name}", c2s_cfg(flags=i * 5) + setenc(e))
    pf16 = bytes([16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0])
    write("rfbmsg_c2s", "all-messages", c2s_cfg() +
          u8(0) + b"\0\0\0" + pf16 +
          setenc([7, 16, 0, -1063131698, -308, -309, -259, -258]) +
          u8(3) + u8(1) + u16(0) + u16(0) + u16(800) + u16(600) +
          u8(4) + u8(1) + u16(0) + u32(0x61) +
          u8(5) + u8(1) + u16(10) + u16(20) +
          u8(6) + b"\0\0\0" + u32(5) + b"hello" +
          u8(6) + b"\0\0\0" + s32(-4) + u32(0x08000001) +
          u8(255) + u8(0) + u16(1) + u32(0x61) + u32(0x1e) +
          u8(255) + u8(1) + u16(0) +
          u8(255) + u8(1) + u16(2) + u8(3) + u8(2) + u32(44100) +
          u8(250) + u8(0) + u8(1) + u8(2) +
          u8(251) + u8(0) + u16(1024) + u16(768) + u8(1) + u8(0) + R.bytes(16) +
          u8(150) + u8(1) + u16(0) + u16(0) + u16(10) + u16(10) +
          u8(248) + b"\0\0\0" + u32(1) + u8(3) + b"abc")
    cut = zlib.compress(u32(6) + "héllo".encode() + b"\0")
    write("rfbmsg_c2s", "ext-provide", c2s_cfg(filt=False) +
          u8(6) + b"\0\0\0" + s32(-(4 + len(cut))) + u32(0x10000001) + cut)
    write("rfbmsg_c2s", "unknown-type", c2s_cfg() + u8(7) + b"\0" * 7)


# ------------------------------------------------------------------ clip

def clip_msgs(*payloads, maxv=0x4000):
    return u8(0) + u16(maxv) + b"".join(u16(len(p)) + p for p in payloads)


def text_plain(s):
    b = s.encode() if isinstance(s, str) else s
    return u32(len(b) + 1) + b + b"\0"


def zfinish(data):
    return zlib.compress(data)


def zflushed(chunks):
    """One stream, flushed after each chunk: a list of per-message bytes."""
    z = zlib.compressobj()
    return [z.compress(c) + z.flush(zlib.Z_SYNC_FLUSH) for c in chunks]


def clip_seeds():
    P = 0x10000000
    write("clip", "caps-qemu", clip_msgs(u32(0x1b000001) + u32(0)))
    write("clip", "caps-multi", clip_msgs(u32(0x1f000015) + u32(256) + u32(512) + u32(768)))
    write("clip", "notify-request-peek", clip_msgs(u32(0x08000001), u32(0x08000000),
                                                   u32(0x02000001), u32(0x04000000)))
    write("clip", "provide-qemu", clip_msgs(u32(P | 1) + zfinish(text_plain("héllo from A"))))
    fresh = []
    for t in ["one", "", "two\r\nlines", "€ 5"]:
        fresh.append(u32(P | 1) + zflushed([text_plain(t)])[0])
    write("clip", "provide-tigervnc", clip_msgs(*fresh))
    kept = [u32(P | 1) + c for c in zflushed([text_plain("first"), text_plain("second"), text_plain("x" * 300)])]
    write("clip", "provide-one-stream", clip_msgs(*kept))
    write("clip", "provide-formats", clip_msgs(
        u32(P | 7) + zfinish(text_plain("txt") + text_plain("{\\rtf1 x}") + text_plain("<p>x</p>"))))
    write("clip", "provide-toobig", clip_msgs(u32(P | 1) + zfinish(text_plain("y" * 2000)), maxv=10))
    write("clip", "latin1-text", u8(0) + u16(100) + "café\nnaïve\r\n©".encode("latin-1"))
    write("clip", "utf8-text", u8(0) + u16(100) + "h\u00e9llo \u20ac \U0001F600\r\n".encode())
    write("clip", "bad-utf8", u8(0) + u16(100) + b"\xc0\xaf\xe0\x80\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82")


# ------------------------------------------------------------- handshake

def handshake_seeds():
    for v in [b"RFB 003.008\n", b"RFB 003.007\n", b"RFB 003.003\n", b"RFB 003.889\n", b"RFB 004.000\n"]:
        write("handshake", "version-" + v[4:11].decode(), v)
    write("handshake", "vencrypt", b"\x00\x02")
    write("handshake", "creds", u32(5) + u32(6) + b"alicesecret")
    write("handshake", "sectypes", b"\x02\x01\x13")
    write("handshake", "sectypes-refused", b"\x00" + u32(9) + b"too many!")
    write("handshake", "sec33", u32(0) + u32(4) + b"nope")
    write("handshake", "result-fail", u32(1) + u32(21) + b"Authentication failed")
    write("handshake", "u32", u32(262))


# ------------------------------------------------------------- auth helper protocol

def authp_str(b): return u16(len(b)) + b


def authp_seeds():
    hdr = lambda t, i: u8(2) + u8(t) + u16(0) + u32(i)   # AUTHP_VERSION 2
    write("authp", "req-login", hdr(1, 7) + authp_str(b"web1") + authp_str(b"alice") +
          authp_str(b"s3cret pass") + authp_str(b"192.0.2.10"))
    write("authp", "req-empty", hdr(1, 0) + authp_str(b"") * 4)
    write("authp", "req-long", hdr(1, 0xffffffff) + authp_str(b"v" * 63) + authp_str(b"u" * 255) +
          authp_str(b"p" * 1024) + authp_str(b"2001:db8::1"))
    for r in range(6):
        write("authp", f"resp-{r}", hdr(2, 9) + u8(r) + authp_str(b"pam: detail %d" % r))
    write("authp", "resp-long", hdr(2, 1) + u8(0) + authp_str(b"d" * 127))
    # config reload (AUTHP_VERSION 2): request, an answer with two listeners, an error
    hdr2 = lambda t, i: u8(2) + u8(t) + u16(0) + u32(i)
    write("authp", "reload-req", hdr2(10, 5) + u8(1))
    text = b"[gateway]\ncert = /c\nkey = /k\n[vm a]\nvnc = 127.0.0.1:1\nvnc_port = 7001\n"
    write("authp", "reload-resp", hdr2(11, 5) + u8(0) + u32(3) + authp_str(b"") + u32(len(text)) +
          text + u8(2) + u8(0) + u16(7001) + authp_str(b"a") + u8(3) + u16(0) + authp_str(b"a"))
    write("authp", "reload-err", hdr2(11, 6) + u8(5) + u32(2) +
          authp_str(b"/etc/vmgate/vmgate.conf:12: unknown key") + u32(0) + u8(0))
    write("authp", "req-vms", hdr2(12, 8) + authp_str(b"") + authp_str(b"alice") +
          authp_str(b"s3cret pass") + authp_str(b"192.0.2.10"))
    write("authp", "resp-vms", hdr2(13, 8) + u8(0) + authp_str(b"alice") + u8(0) + u16(2) +
          authp_str(b"dev0") + authp_str(b"web.1"))
    write("authp", "resp-vms-empty", hdr2(13, 3) + u8(0) + authp_str(b"") + u8(1) + u16(0))


# ------------------------------------------------------------- /api/vms

def webapi_seeds():
    import base64
    for name, cred in (("alice", b"alice:s3cret pass"), ("colons", b"a:b:c"), ("empty-pw", b"bob:"),
                       ("utf8", "zo\u00eb:\u043f\u0430\u0440\u043e\u043b\u044c".encode())):
        write("webapi", name, b"Basic " + base64.b64encode(cred))
    write("webapi", "lower", b"basic YWxpY2U6cHc=")
    write("webapi", "nocolon", b"Basic YWxpY2U=")
    write("webapi", "long", b"Basic " + base64.b64encode(b"u" * 255 + b":" + b"p" * 1024))


# ------------------------------------------------------------- QMP

def qmp_seeds():
    greet = (b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},'
             b' "capabilities": ["oob"]}}\r\n')
    write("qmp", "session", u8(40) + greet + b'{"return": {}}\r\n' +
          b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "VNC_CONNECTED", "data": {}}\r\n' +
          b'{"return": {}}\r\n')
    write("qmp", "error", u8(63) + b'{"error": {"class": "GenericError", "desc": "No file descriptor'
          b' supplied via SCM_RIGHTS"}}\r\n')
    write("qmp", "error-short-desc", u8(3) + b'{"id": 1, "error": {"desc": "\x01\x7fx"}}\n')
    write("qmp", "event-first", u8(0) + b'{"event": "STOP", "timestamp": {}}\n{"return"')


# ------------------------------------------------------------- firewall

def fwjson_seeds():
    # the captured listings the unit tests use
    fwdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firewall")
    for name in sorted(os.listdir(fwdir)):
        if name.endswith(".json"):
            with open(os.path.join(fwdir, name), "rb") as f:
                write("fwjson", name[:-5], f.read())
    write("fwjson", "nft-table", (
        b'{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5",'
        b' "json_schema_version": 1}}, {"table": {"family": "inet", "name": "vmgate", "handle": 3,'
        b' "comment": "vmgate schema 1"}}, {"set": {"family": "inet", "name": "ban4", "table": "vmgate",'
        b' "type": "ipv4_addr", "handle": 4, "flags": ["interval", "timeout"], "elem": [{"elem":'
        b' {"val": {"prefix": {"addr": "192.0.2.0", "len": 24}}, "timeout": 600, "expires": 598}},'
        b' {"range": ["10.0.0.1", "10.0.0.9"]}]}}, {"rule": {"family": "inet", "table": "vmgate",'
        b' "chain": "input", "handle": 7, "comment": "vmgate: drop banned", "expr": [{"match":'
        b' {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right":'
        b' {"set": [{"range": [5900, 6100]}]}}}, {"drop": null}]}}]}\n'))
    write("fwjson", "escapes", b'["a\\"\\\\\\/\\b\\f\\n\\r\\t", "\\u00e9\\ud83d\\ude00\\udc00",'
          b' -0, 12345678901234, 1.5, -2e3, true, false, null, {}, []]')


def fwaddr_seeds():
    for i, (a, b) in enumerate([(b"192.0.2.7", b"192.0.2.0/24"), (b"10.0.0.0/8", b"10.1.2.3/31"),
                                (b"2001:db8::1", b"2001:db8::/32"), (b"::ffff:192.0.2.1", b"::ffff:0:0/96"),
                                (b"127.0.0.1", b"::1"), (b"0.0.0.0/0", b"::/0"), (b"fe80::1%eth0", b"1.2.3.4/033"),
                                (b"10.0.0.1/33", b"192.0.2.255/25")]):
        write("fwaddr", f"pair-{i}", u8(0x81) + a + b"\n" + b)


# ------------------------------------------------------------- config

def config_seeds():
    example = (b"[gateway]\naddress = 0.0.0.0   ; listen\ncert = /etc/vmgate/tls/server.crt\n"
               b"key  = /etc/vmgate/tls/server.key\nauth = pam\npam_service = vmgate\n"
               b"passwd_file = /etc/vmgate/passwd\nuser = vmgate\nlogin_timeout = 30s\n"
               b"clipboard = both\nclipboard_max = 256K\n\n[firewall]\nprotect = 5900-6100\n"
               b"allow =\nban_after = 5\nban_window = 10m\nban_time = 15m\n\n[vm dev0]\n"
               b"vnc = unix:/run/vmgate/dev0.vnc\nvnc_port = 5902\nspice = unix:/run/vmgate/dev0.spice\n"
               b"spice_port = 5932\nqmp = /run/vmgate/dev0.qmp\nusers = alice bob\ngroups = kvm\n"
               b"clipboard = both\nclipboard_max = 256K\n")
    write("config", "design-example", example)
    write("config", "gateway-keys", b"[gateway]\naddress = ::\nauth = file\npasswd_file = /srv/pw\n"
          b"pam_service = other-svc\nuser =\nlogin_timeout = 1h\nclipboard = from-vm\nclipboard_max = 1\n"
          b"max_unauth = 100000\nmax_unauth_per_source = 100000\nfail_delay = 0\nauth_workers = 64\n"
          b"processes = auto\n")
    write("config", "vms", b"# two VMs\n[vm a]\nvnc = 127.0.0.1:5901\nvnc_port = 6001\n"
          b"[vm b-2]\nvnc = [::1]:5902\nvnc_port = 6002\nspice = qmp:/run/b.qmp\nspice_port = 6003\n"
          b"clipboard = to-vm\nclipboard_max = 1G\n[firewall]\nprotect = 6000-6010\n"
          b"allow = 10.0.0.0/8 2001:db8::/32 192.0.2.7\nban_time = 1d\nban_window = 500ms\n")
    write("config", "values", b"1500ms\n256K\nlocalhost:5900\n[gateway]\n")
    write("config", "crlf-comments", b"[gateway]   ; c\r\n; x\r\n# y\r\naddress = 127.0.0.1 # z\r\n")


PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pp2_seeds():
    v4 = bytes([192, 0, 2, 7, 127, 0, 0, 1]) + u16(40000) + u16(5901)
    write("pp2", "tcp4", PP2_SIG + u8(0x21) + u8(0x11) + u16(len(v4)) + v4)
    v6 = bytes(15) + b"\x01" + bytes(15) + b"\x01" + u16(1) + u16(2)
    write("pp2", "tcp6", PP2_SIG + u8(0x21) + u8(0x21) + u16(len(v6)) + v6)
    write("pp2", "local", PP2_SIG + u8(0x20) + u8(0x00) + u16(0))
    tlv = u8(0x04) + u16(0) + u8(0xe0) + u16(3) + b"abc"
    write("pp2", "tcp4-tlv", PP2_SIG + u8(0x21) + u8(0x11) + u16(len(v4) + len(tlv)) + v4 + tlv)
    write("pp2", "v1", b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 5901\r\n")
    write("pp2", "then-rfb", PP2_SIG + u8(0x21) + u8(0x11) + u16(len(v4)) + v4 + b"RFB 003.008\n")


if __name__ == "__main__":
    s2c_seeds()
    c2s_seeds()
    clip_seeds()
    handshake_seeds()
    authp_seeds()
    webapi_seeds()
    qmp_seeds()
    fwjson_seeds()
    fwaddr_seeds()
    config_seeds()
    pp2_seeds()
