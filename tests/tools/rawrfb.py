#!/usr/bin/env python3
"""Raw RFB / VeNCrypt client for vmgate's bad-input tests.

Each subcommand plays one (mis)behaving client against HOST PORT and prints,
one "key=value" per line, what the server did.  It does not judge: the shell
test asserts on the output.  Common output keys:
  version=...       the server's 12-byte version string (repr)
  answer=HEX        bytes the server sent after our bad input (hex, up to 256)
  reason=...        a failure reason string the server sent
  closed=yes|no     whether the server closed the connection
  elapsed=SECONDS   time from our last byte to the close / answer

Subcommands:
  version   HOST PORT                     read the version string only
  garbage   HOST PORT                     send 12 bytes of junk instead of a version
  oldver    HOST PORT VER                 answer with another version ("003.003", "003.007")
  sectype   HOST PORT N                   choose security type N instead of 19
  vencver   HOST PORT MAJ MIN             answer VeNCrypt version MAJ.MIN
  subtype   HOST PORT N                   choose VeNCrypt subtype N instead of 262
  hugeuser  HOST PORT CAFILE [ULEN [PLEN]]  TLS, then username length ULEN (default 0xFFFFFFFF)
                                          and password length PLEN (default 8)
  login     HOST PORT CAFILE USER PASS    full login; prints result=ok + ServerInit, or the failure
  silent    HOST PORT [AFTER [CAFILE]]    stop sending after AFTER (nothing|version|sectype|
                                          subtype|tls), wait for the close
  certfp    HOST PORT                     VeNCrypt up to TLS, print the served certificate's
                                          SHA-256 fingerprint (fp=AB:CD:...; not verified)
  tlshalf   HOST PORT                     send half a TLS ClientHello, then close
  tlsstall  HOST PORT                     send half a TLS ClientHello, then wait for the close
  idle      HOST PORT N [--source ADDR[,ADDR...]] [--hold SECONDS] [--speak]
            open N connections (round robin over the source addresses) that never
            speak (with --speak: that send the version, then nothing); after 2 s print how many are still open and got the version
            (held=), how many the server closed (refused=); then hold them open
            for SECONDS (default: until killed or stdin hits EOF) and print
            closed_later= when done.
  keys      TARGET SEQ...                 log in, then send key events; TARGET is either
                                          HOST PORT CAFILE USER PASS (through vmgate) or
                                          unix:PATH (straight at QEMU, security None).
                                          SEQ tokens: +K / -K  KeyEvent down / up, K a
                                          keysym name (Control_L, Alt_L, Meta_L, Shift_L,
                                          Control_R, Alt_R, Return), one character, or
                                          0xHEX; x+SC/KS, x-SC/KS  QEMU extended key event
                                          (255/0) with scancode SC and keysym KS (numbers);
                                          type:TEXT  down/up per character; sleep:SECONDS.
                                          Prints sent=N, then closed=yes|no after 1 s.
Options: --timeout SECONDS (default 15) for every wait; --source ADDR, first of
all arguments, binds every connection to ADDR (a client address of its own).
"""
import os
import select
import socket
import ssl
import struct
import sys
import time

TIMEOUT = 15.0
SOURCE = None


def out(k, v):
    print("%s=%s" % (k, v), flush=True)


def connect(host, port, source=None):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    source = source or SOURCE
    if source:
        s.bind((source, 0))
    s.settimeout(TIMEOUT)
    s.connect((host, int(port)))
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError(b)
        b += d
    return b


def drain(s, t0=None, limit=None):
    """Read until close or timeout; print answer/closed/elapsed."""
    t0 = t0 if t0 is not None else time.monotonic()
    limit = TIMEOUT if limit is None else limit
    data = b""
    closed = "no"
    s.settimeout(0.2)
    while time.monotonic() - t0 < limit:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            closed = "yes"
            break
        if not d:
            closed = "yes"
            break
        data += d
    out("answer", data[:256].hex())
    reason = parse_failure(data)
    if reason is not None:
        out("reason", reason)
    out("closed", closed)
    out("elapsed", "%.2f" % (time.monotonic() - t0))
    return data


def parse_failure(data):
    """U32 status(1) U32 len reason  -or-  U8 0 U32 len reason (no security types)."""
    if len(data) >= 8 and data[:4] == b"\0\0\0\1":
        n = struct.unpack(">I", data[4:8])[0]
        if 8 + n <= len(data):
            return data[8:8 + n].decode("latin-1").rstrip("\0")
    if len(data) >= 5 and data[0] == 0:
        n = struct.unpack(">I", data[1:5])[0]
        if 5 + n <= len(data):
            return data[5:5 + n].decode("latin-1").rstrip("\0")
    return None


def hello(s, ver=b"RFB 003.008\n"):
    v = recv_exact(s, 12)
    out("version", repr(v.decode("latin-1")))
    s.sendall(ver)


def to_sectypes(s):
    hello(s)
    n = recv_exact(s, 1)[0]
    types = list(recv_exact(s, n)) if n else []
    out("sectypes", ",".join(map(str, types)))
    return types


def to_subtypes(s):
    to_sectypes(s)
    s.sendall(b"\x13")
    ver = recv_exact(s, 2)
    out("vencrypt_version", "%d.%d" % (ver[0], ver[1]))
    s.sendall(b"\x00\x02")
    ack = recv_exact(s, 1)[0]
    out("vencrypt_ack", ack)
    n = recv_exact(s, 1)[0]
    subs = [struct.unpack(">I", recv_exact(s, 4))[0] for _ in range(n)]
    out("subtypes", ",".join(map(str, subs)))
    return subs


def to_tls(s, cafile):
    to_subtypes(s)
    s.sendall(struct.pack(">I", 262))
    go = recv_exact(s, 1)[0]
    out("subtype_ack", go)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    t = ctx.wrap_socket(s, server_hostname="localhost")
    out("tls", t.version())
    return t


def client_hello_bytes():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def cmd_version(a):
    s = connect(a[0], a[1])
    v = recv_exact(s, 12)
    out("version", repr(v.decode("latin-1")))
    s.close()


def cmd_garbage(a):
    s = connect(a[0], a[1])
    v = recv_exact(s, 12)
    out("version", repr(v.decode("latin-1")))
    s.sendall(b"GET / HTTP/1")
    drain(s)


def cmd_oldver(a):
    s = connect(a[0], a[1])
    hello(s, ("RFB %s\n" % a[2]).encode())
    drain(s)


def cmd_sectype(a):
    s = connect(a[0], a[1])
    to_sectypes(s)
    s.sendall(bytes([int(a[2])]))
    drain(s)


def cmd_vencver(a):
    s = connect(a[0], a[1])
    to_sectypes(s)
    s.sendall(b"\x13")
    ver = recv_exact(s, 2)
    out("vencrypt_version", "%d.%d" % (ver[0], ver[1]))
    s.sendall(bytes([int(a[2]), int(a[3])]))
    drain(s)


def cmd_subtype(a):
    s = connect(a[0], a[1])
    to_subtypes(s)
    s.sendall(struct.pack(">I", int(a[2])))
    drain(s)


def cmd_hugeuser(a):
    s = connect(a[0], a[1])
    t = to_tls(s, a[2])
    ulen = int(a[3], 0) if len(a) > 3 else 0xFFFFFFFF
    plen = int(a[4], 0) if len(a) > 4 else 8
    t.sendall(struct.pack(">II", ulen, plen) + b"A" * 64)
    drain(t)


def cmd_login(a):
    s = connect(a[0], a[1])
    t = to_tls(s, a[2])
    user, pw = a[3].encode(), a[4].encode()
    t.sendall(struct.pack(">II", len(user), len(pw)) + user + pw)
    t0 = time.monotonic()
    st = struct.unpack(">I", recv_exact(t, 4))[0]
    out("auth_elapsed", "%.2f" % (time.monotonic() - t0))
    if st != 0:
        n = struct.unpack(">I", recv_exact(t, 4))[0]
        out("result", "failed")
        out("reason", recv_exact(t, n).decode("latin-1").rstrip("\0"))
        return
    out("result", "ok")
    t.sendall(b"\x01")  # ClientInit shared
    w, h = struct.unpack(">HH", recv_exact(t, 4))
    recv_exact(t, 16)
    n = struct.unpack(">I", recv_exact(t, 4))[0]
    name = recv_exact(t, n).decode("utf-8", "replace")
    out("size", "%dx%d" % (w, h))
    out("name", name)
    # ask for one full update and count what comes back
    t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    t.settimeout(5)
    got = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 3 and got < 1024:
            d = t.recv(65536)
            if not d:
                break
            got += len(d)
    except (socket.timeout, ssl.SSLError):
        pass
    out("update_bytes", got)
    t.close()


KEYSYMS = {"Control_L": 0xffe3, "Control_R": 0xffe4, "Shift_L": 0xffe1, "Alt_L": 0xffe9,
           "Alt_R": 0xffea, "Meta_L": 0xffe7, "Return": 0xff0d}


def keysym(name):
    if name in KEYSYMS:
        return KEYSYMS[name]
    if len(name) == 1:
        return ord(name)
    return int(name, 0)


def key_msgs(seq):
    """The bytes of the keys tokens (see keys in the help), as (bytes, pause) items."""
    items = []
    for tok in seq:
        if tok.startswith("sleep:"):
            items.append((b"", float(tok[6:])))
        elif tok.startswith("type:"):
            for ch in tok[5:]:
                ks = keysym(ch)
                items.append((struct.pack(">BBHI", 4, 1, 0, ks) + struct.pack(">BBHI", 4, 0, 0, ks), 0.05))
        elif tok.startswith("x+") or tok.startswith("x-"):
            sc, ks = tok[2:].split("/")
            items.append((struct.pack(">BBHII", 255, 0, tok[1] == "+", int(ks, 0), int(sc, 0)), 0.05))
        elif tok[0] in "+-":
            items.append((struct.pack(">BBHI", 4, tok[0] == "+", 0, keysym(tok[1:])), 0.05))
        else:
            raise SystemExit("bad key token %r" % tok)
    return items


def cmd_keys(a):
    if a[0].startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(a[0][5:])
        types = to_sectypes(s)
        if 1 not in types:
            raise SystemExit("the server does not offer security None: %r" % types)
        s.sendall(b"\x01")
        st = struct.unpack(">I", recv_exact(s, 4))[0]
        out("result", "ok" if st == 0 else "failed")
        t, seq = s, a[1:]
    else:
        s = connect(a[0], a[1])
        t = to_tls(s, a[2])
        user, pw = a[3].encode(), a[4].encode()
        t.sendall(struct.pack(">II", len(user), len(pw)) + user + pw)
        st = struct.unpack(">I", recv_exact(t, 4))[0]
        out("result", "ok" if st == 0 else "failed")
        seq = a[5:]
    if st != 0:
        return
    t.sendall(b"\x01")  # ClientInit shared
    recv_exact(t, 20)
    n = struct.unpack(">I", recv_exact(t, 4))[0]
    recv_exact(t, n)
    sent = 0
    for data, pause in key_msgs(seq):
        if data:
            t.sendall(data)
            sent += len(data)
        time.sleep(pause)
    out("sent", sent)
    drain(t, limit=1.0)


def cmd_certfp(a):
    import hashlib
    s = connect(a[0], a[1])
    to_subtypes(s)
    s.sendall(struct.pack(">I", 262))
    out("subtype_ack", recv_exact(s, 1)[0])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s, server_hostname="localhost")
    der = t.getpeercert(binary_form=True)
    out("fp", ":".join("%02X" % b for b in hashlib.sha256(der).digest()))
    t.close()


def cmd_silent(a):
    s = connect(a[0], a[1])
    after = a[2] if len(a) > 2 else "version"
    if after == "nothing":
        pass
    elif after == "version":
        hello(s)
    elif after == "sectype":
        to_sectypes(s)
        s.sendall(b"\x13")
    elif after == "subtype":
        to_subtypes(s)
    elif after == "tls":
        s = to_tls(s, a[3])
    t0 = time.monotonic()
    drain(s, t0, limit=max(TIMEOUT, 60))


def cmd_tlshalf(a, stall=False):
    s = connect(a[0], a[1])
    to_subtypes(s)
    s.sendall(struct.pack(">I", 262))
    go = recv_exact(s, 1)[0]
    out("subtype_ack", go)
    ch = client_hello_bytes()
    half = ch[: len(ch) // 2]
    s.sendall(half)
    out("sent_clienthello_bytes", "%d/%d" % (len(half), len(ch)))
    if not stall:
        s.close()
        out("closed_by", "client")
        return
    drain(s, time.monotonic(), limit=max(TIMEOUT, 60))


def cmd_idle(a):
    host, port, n = a[0], a[1], int(a[2])
    sources, hold, speak = [None], None, False
    rest = a[3:]
    while rest:
        if rest[0] == "--speak":
            speak = True
            rest = rest[1:]
        elif rest[0] == "--source":
            sources = rest[1].split(",")
            rest = rest[2:]
        elif rest[0] == "--hold":
            hold = float(rest[1])
            rest = rest[2:]
        else:
            raise SystemExit("idle: unknown option %s" % rest[0])
    socks = []
    failed_connect = 0
    for i in range(n):
        try:
            s = connect(host, port, sources[i % len(sources)])
            if speak:
                s.sendall(b"RFB 003.008\n")
            s.setblocking(False)
            socks.append([s, b"", False])
        except OSError:
            failed_connect += 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        poll_socks(socks, 0.2)
    held = sum(1 for x in socks if not x[2] and x[1].startswith(b"RFB "))
    refused = sum(1 for x in socks if x[2])
    out("connected", len(socks))
    out("connect_failed", failed_connect)
    out("held", held)
    out("refused", refused)
    out("refused_with_version", sum(1 for x in socks if x[2] and x[1].startswith(b"RFB ")))
    print("ready", flush=True)
    t0 = time.monotonic()
    while hold is None or time.monotonic() - t0 < hold:
        r = poll_socks(socks, 0.5, watch_stdin=hold is None)
        if r == "eof":
            break
        if all(x[2] for x in socks):
            break
    out("closed_later", sum(1 for x in socks if x[2]) - refused)
    out("elapsed", "%.2f" % (time.monotonic() - t0))


def poll_socks(socks, wait, watch_stdin=False):
    rl = [x[0] for x in socks if not x[2]]
    if watch_stdin:
        rl.append(sys.stdin)
    if not rl:
        time.sleep(wait)
        return None
    r, _, _ = select.select(rl, [], [], wait)
    for x in socks:
        if x[0] in r:
            try:
                d = x[0].recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if d:
                x[1] += d
            else:
                x[2] = True
                x[0].close()
    if watch_stdin and sys.stdin in r:
        if not os.read(sys.stdin.fileno(), 1):
            return "eof"
    return None


CMDS = {
    "version": cmd_version, "garbage": cmd_garbage, "oldver": cmd_oldver,
    "sectype": cmd_sectype, "vencver": cmd_vencver, "subtype": cmd_subtype,
    "hugeuser": cmd_hugeuser, "login": cmd_login, "silent": cmd_silent, "certfp": cmd_certfp,
    "tlshalf": cmd_tlshalf, "tlsstall": lambda a: cmd_tlshalf(a, stall=True),
    "idle": cmd_idle, "keys": cmd_keys,
}


def main(argv):
    global TIMEOUT, SOURCE
    args = argv[1:]
    if args[:1] == ["--source"]:        # before the subcommand (idle has its own)
        SOURCE = args[1]
        del args[:2]
    if "--timeout" in args:
        i = args.index("--timeout")
        TIMEOUT = float(args[i + 1])
        del args[i:i + 2]
    if not args or args[0] not in CMDS:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        CMDS[args[0]](args[1:])
    except EOFError as e:
        out("closed", "yes")
        out("eof_during_handshake", "yes")
        if e.args and e.args[0]:
            out("partial", e.args[0].hex())
        return 3
    except (ConnectionResetError, BrokenPipeError) as e:
        out("closed", "yes")
        out("reset", type(e).__name__)
        return 3
    except socket.timeout:
        out("timeout", "yes")
        return 4
    except ssl.SSLError as e:
        out("tls_error", str(e))
        return 5
    except OSError as e:
        out("error", str(e))
        return 6
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
