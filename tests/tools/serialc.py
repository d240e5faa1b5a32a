#!/usr/bin/env python3
"""Client of vmgate's serial console socket (socket_dir/VM.serial) for the
tests.  Prints "key=value" lines (values repr()-quoted where they are text);
the shell test judges.

usage: serialc.py MODE SOCK [ARGS...]
  run SOCK STEP...   one session; STEP is wait:TEXT (up to 15 s; only in what
                     came after the last mark), mark, send:TEXT, sleep:SECS,
                     or drain:SECS (read for SECS); then prints
                     out=, closed=, elapsed=; exit 1 if a wait timed out
  two SOCK           session A attaches, then B: A gets the takeover line,
                     A's typing is not delivered, B's is echoed to both
  flood SOCK N SECS [seq]  N connections at once (seq: each after the
                     previous one's first line), held SECS: how many were closed
                     with nothing (capped=), refused with a line (refused=),
                     attached (attached=), still silent (silent=)
  slow SOCK FILE     attach, read nothing until FILE exists, then read for 2 s:
                     got=, marker= (a "[vmgate: N bytes dropped" line came)
  spicelink SOCK     a SPICE main-channel link with an empty ticket on
                     NAME.spice: reply_error=, result= (0 ok, 7 refused)
  burst SOCK         attach, send '!' (the guest prints 512 KiB), read it all:
                     got=, banners=, complete=, elapsed=
"""
import os
import socket
import sys
import time


class Sess:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.setblocking(False)
        self.out = b""
        self.closed = False
        self.mark = 0

    def pump(self, secs):
        end = time.time() + secs
        first = True
        while (first or time.time() < end) and not self.closed:
            first = False
            try:
                d = self.s.recv(65536)
                if not d:
                    self.closed = True
                    self.s.close()        # as a client does: vmgate's linger ends
                    break
                self.out += d
                if os.environ.get("SERIALC_TRACE"):
                    sys.stderr.write("%.3f recv %r\n" % (time.time(), d[:80]))
            except BlockingIOError:
                if time.time() < end:
                    time.sleep(0.02)
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True

    def wait(self, text, secs=15.0):
        end = time.time() + secs
        t = text.encode() if isinstance(text, str) else text
        while time.time() < end:
            if t in self.out[self.mark:]:
                return True
            if self.closed:
                return False
            self.pump(0.05)
        return t in self.out[self.mark:]

    def send(self, text):
        try:
            self.s.sendall(os.fsencode(text))     # argv bytes as given
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True


def q(b):
    return repr(b.decode("latin-1"))


def run(path, steps):
    t0 = time.time()
    s = Sess(path)
    ok = True
    for st in steps:
        kind, _, arg = st.partition(":")
        if kind == "wait":
            if not s.wait(arg):
                print("timeout=" + repr(arg))
                ok = False
                break
        elif kind == "send":
            s.send(arg.replace("\\r", "\r").replace("\\n", "\n"))
        elif kind == "mark":
            s.mark = len(s.out)
        elif kind == "sleep":
            time.sleep(float(arg))
        elif kind == "drain":
            s.pump(float(arg))
    s.pump(0.3)
    print("out=" + q(s.out))
    print("closed=" + ("yes" if s.closed else "no"))
    print("elapsed=%.2f" % (time.time() - t0))
    return 0 if ok else 1


def two(path):
    a = Sess(path)
    if not a.wait("has the keyboard"):
        print("a_greeting=no")
        return 1
    b = Sess(path)
    if not b.wait("has the keyboard"):
        print("b_greeting=no")
        return 1
    print("a_saw_takeover=" + ("yes" if a.wait("took the keyboard", 5) else "no"))
    a.send("AAA-typed")
    time.sleep(1.0)
    b.send("BBB-typed")
    ok_a = a.wait("BBB-typed", 10)
    ok_b = b.wait("BBB-typed", 10)
    a.pump(1.0)
    b.pump(0.5)
    print("a_sees_b=" + ("yes" if ok_a else "no"))
    print("b_sees_b=" + ("yes" if ok_b else "no"))
    print("a_typing_delivered=" + ("yes" if b"AAA-typed" in a.out + b.out else "no"))
    # B leaves: A gets the keyboard back and its typing is delivered
    b.s.close()
    got = a.wait("you have the keyboard", 5)
    print("a_got_keyboard_back=" + ("yes" if got else "no"))
    a.send("CCC-typed")
    print("a_typing_after=" + ("yes" if a.wait("CCC-typed", 10) else "no"))
    print("a_out=" + q(a.out))
    print("b_out=" + q(b.out))
    return 0


def flood(path, n, secs, seq=False):
    conns = []
    capped = 0
    for _ in range(n):
        try:
            c = Sess(path)
            conns.append(c)
            if seq:                   # one at a time: its first line, then the next
                c.wait("\r\n", 10)
        except OSError:
            capped += 1
    end = time.time() + secs
    while time.time() < end:
        for c in conns:
            c.pump(0.0)
        time.sleep(0.05)
    refused = attached = silent = 0
    for c in conns:
        if b"has the keyboard" in c.out:
            attached += 1
        elif c.out.startswith(b"vmgate: "):
            refused += 1
        elif c.closed:
            capped += 1
        else:
            silent += 1
    reasons = sorted({c.out.split(b"\r\n")[0].decode("latin-1") for c in conns
                      if c.out.startswith(b"vmgate: ")})
    print("capped=%d" % capped)
    print("refused=%d" % refused)
    print("attached=%d" % attached)
    print("silent=%d" % silent)
    for r in reasons:
        print("reason=" + r)
    return 0


def slow(path, go):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    print("connected=yes", flush=True)
    while not os.path.exists(go):      # never reads until told
        time.sleep(0.1)
    out = b""
    s.settimeout(2.0)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    i = out.find(b"[vmgate: ")
    marks = [ln for ln in out.split(b"\r\n") if b"bytes dropped" in ln]
    print("got=%d" % len(out))
    print("marker=" + ("yes" if marks else "no"))
    for m in marks[:3]:
        print("mark=" + m.decode("latin-1"))
    return 0


def burst(path):
    """Attach (taking the keyboard), send '!': the guest prints its banner
    16384 times (512 KiB) then BURST-END; read all of it."""
    s = Sess(path)
    if not s.wait("has the keyboard"):
        print("greeting=no")
        return 1
    s.mark = len(s.out)
    t0 = time.time()
    s.send("!")
    ok = s.wait("BURST-END", 120)
    got = s.out[s.mark:]
    n = got.count(b"VMGATE-SERIAL-BANNER: guest up\r\n")
    print("got=%d" % len(got))
    print("banners=%d" % n)
    print("complete=" + ("yes" if ok and n == 16384 else "no"))
    print("elapsed=%.2f" % (time.time() - t0))
    return 0


def spicelink(path):
    """A SPICE main-channel link on socket_dir/NAME.spice with ticket auth
    and an all-zero ticket: prints result= (0 ok, 7 permission denied)."""
    import struct
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(15)
    caps = (1 << 0) | (1 << 1) | (1 << 3)      # auth selection, auth spice, mini header
    mess = struct.pack("<IBBIII", 0, 1, 0, 1, 0, 18) + struct.pack("<I", caps)
    s.sendall(b"REDQ" + struct.pack("<III", 2, 2, len(mess)) + mess)

    def readn(n):
        b = b""
        while len(b) < n:
            d = s.recv(n - len(b))
            if not d:
                raise EOFError("closed after %d of %d bytes" % (len(b), n))
            b += d
        return b
    hdr = readn(16)
    size = struct.unpack("<I", hdr[12:16])[0]
    body = readn(size)
    print("reply_error=%d" % struct.unpack("<I", body[:4])[0])
    s.sendall(struct.pack("<I", 1) + bytes(128))
    print("result=%d" % struct.unpack("<I", readn(4))[0])
    return 0


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "run":
        return run(path, sys.argv[3:])
    if mode == "two":
        return two(path)
    if mode == "flood":
        return flood(path, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:] == ["seq"])
    if mode == "slow":
        return slow(path, sys.argv[3])
    if mode == "spicelink":
        return spicelink(path)
    if mode == "burst":
        return burst(path)
    print("unknown mode", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
