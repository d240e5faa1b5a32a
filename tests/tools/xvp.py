#!/usr/bin/env python3
"""XVP (RFB power control) client and QMP event watcher for vmgate's tests.

  xvp.py session HOST PORT CAFILE USER PASS STEP...
      log in through vmgate's VeNCrypt/TLS port (rawrfb.py's handshake),
      send ClientInit, then run the steps; prints key=value lines:
        enc:309 | enc:none      SetEncodings [Raw, -309] or [Raw]
        wait:SECONDS            read server messages for that long
        init:SECONDS            read until an XVP_INIT came (or the time is up)
        fail:SECONDS            read until a new XVP_FAIL came (or the time is up)
        xvp:VER:CODE            one XVP message (250, 0, VER, CODE)
        flood:N:CODE            N XVP messages (version 1) in one write
        raw:HEX                 these bytes as they are
        fbu                     FramebufferUpdateRequest (full, not incremental),
                                read until the update is whole: fbu=yes|no
        sleep:SECONDS           pause (still reading)
        closed:SECONDS          expect the server to close: closed=yes|no
      At the end: inits=N fails=N updates=N closed=yes|no.
  xvp.py events SOCKET OUTFILE
      connect to a QMP monitor, write every event (one JSON per line) to
      OUTFILE until killed, and the run state ({"status": "paused"}) each
      time it changes (query-status every ~0.1 s: QEMU serves one client per
      monitor, so this one answers for the test).
  xvp.py fakeqga SOCKET OUTFILE
      a fake guest agent on a unix socket: answers guest-sync-delimited and
      guest-set-time ({"return": {}}), writes every command it gets to OUTFILE (one JSON per line).
"""
import json
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawrfb  # noqa: E402


def out(k, v):
    print("%s=%s" % (k, v), flush=True)


class Reader:
    """Parses the server's messages (Raw rects only, as announced)."""

    def __init__(self, t, bpp):
        self.t = t
        self.bpp = bpp
        self.buf = b""
        self.inits = self.fails = self.updates = 0
        self.closed = False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.t.settimeout(min(left, 0.2))
        try:
            d = self.t.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                return False
        return True

    def one(self, deadline):
        """Parse one message; False if none came in time."""
        if not self._need(1, deadline):
            return False
        t = self.buf[0]
        if t == 250:
            if not self._need(4, deadline):
                return False
            code = self.buf[3]
            if self.buf[2] == 1 and code == 1:
                self.inits += 1
            elif self.buf[2] == 1 and code == 0:
                self.fails += 1
            self.buf = self.buf[4:]
            return True
        if t == 0:
            if not self._need(4, deadline):
                return False
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
            for _ in range(n):
                if not self._need(off + 12, deadline):
                    return False
                x, y, w, h, enc = struct.unpack(">HHHHi", self.buf[off:off + 12])
                off += 12
                if enc != 0:
                    raise SystemExit("unexpected encoding %d" % enc)
                off += w * h * self.bpp
                if not self._need(off, deadline):
                    return False
            self.buf = self.buf[off:]
            self.updates += 1
            return True
        if t == 2:
            self.buf = self.buf[1:]
            return True
        if t == 3:
            if not self._need(8, deadline):
                return False
            n = struct.unpack(">I", self.buf[4:8])[0]
            if not self._need(8 + n, deadline):
                return False
            self.buf = self.buf[8 + n:]
            return True
        raise SystemExit("unexpected server message %d" % t)

    def until(self, secs, pred):
        deadline = time.monotonic() + secs
        while not pred():
            if not self.one(deadline):
                return pred()
        return True


def cmd_session(a):
    host, port, cafile, user, pw = a[:5]
    s = rawrfb.connect(host, port)
    t = rawrfb.to_tls(s, cafile)
    t.sendall(struct.pack(">II", len(user), len(pw)) + user.encode() + pw.encode())
    st = struct.unpack(">I", rawrfb.recv_exact(t, 4))[0]
    out("result", "ok" if st == 0 else "failed")
    if st != 0:
        return 1
    t.sendall(b"\x01")
    w, h = struct.unpack(">HH", rawrfb.recv_exact(t, 4))
    pf = rawrfb.recv_exact(t, 16)
    n = struct.unpack(">I", rawrfb.recv_exact(t, 4))[0]
    rawrfb.recv_exact(t, n)
    r = Reader(t, pf[0] // 8)
    for step in a[5:]:
        kind, _, arg = step.partition(":")
        if kind == "enc":
            encs = [0] + ([-309] if arg == "309" else [])
            t.sendall(struct.pack(">BBH", 2, 0, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
        elif kind == "wait":
            r.until(float(arg), lambda: False)
        elif kind == "sleep":
            r.until(float(arg), lambda: False)
        elif kind == "init":
            out("init", "yes" if r.until(float(arg), lambda: r.inits > 0) else "no")
        elif kind == "fail":
            want = r.fails + 1
            out("fail", "yes" if r.until(float(arg), lambda: r.fails >= want) else "no")
        elif kind == "xvp":
            ver, code = arg.split(":")
            t.sendall(bytes([250, 0, int(ver), int(code)]))
        elif kind == "flood":
            cnt, code = arg.split(":")
            t.sendall(bytes([250, 0, 1, int(code)]) * int(cnt))
        elif kind == "raw":
            t.sendall(bytes.fromhex(arg))
        elif kind == "fbu":
            want = r.updates + 1
            if not r.closed:
                try:
                    t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
                except OSError:
                    r.closed = True
            out("fbu", "yes" if r.until(10, lambda: r.updates >= want) else "no")
        elif kind == "closed":
            r.until(float(arg), lambda: r.closed)
            out("closed_now", "yes" if r.closed else "no")
        else:
            raise SystemExit("bad step %r" % step)
    out("inits", r.inits)
    out("fails", r.fails)
    out("updates", r.updates)
    out("closed", "yes" if r.closed else "no")
    return 0


def cmd_events(a):
    s = socket.socket(socket.AF_UNIX)
    s.connect(a[0])
    buf = b""

    def lines():
        nonlocal buf
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)

    while b"\n" not in buf:
        buf += s.recv(65536)
    buf = buf.split(b"\n", 1)[1]              # the greeting
    s.sendall(json.dumps({"execute": "qmp_capabilities"}).encode() + b"\n")
    last = None
    with open(a[1], "a") as o:
        o.write(json.dumps({"watching": True}) + "\n")
        o.flush()
        while True:
            # QEMU serves one client per monitor: this one also polls the run
            # state, written as {"status": ...} lines when it changes
            s.sendall(json.dumps({"execute": "query-status"}).encode() + b"\n")
            s.settimeout(0.1)
            try:
                d = s.recv(65536)
                if not d:
                    return 0
                buf += d
            except socket.timeout:
                pass
            for msg in lines():
                if "event" in msg:
                    o.write(json.dumps(msg) + "\n")
                elif isinstance(msg.get("return"), dict) and "status" in msg["return"]:
                    if msg["return"]["status"] != last:
                        last = msg["return"]["status"]
                        o.write(json.dumps({"status": last}) + "\n")
                o.flush()
            time.sleep(0.05)


def cmd_fakeqga(a):
    try:
        os.unlink(a[0])
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(a[0])
    ls.listen(4)
    with open(a[1], "a") as o:
        while True:
            c, _ = ls.accept()
            f = c.makefile("rwb")
            for line in f:
                line = line.lstrip(b"\xff").strip()
                if not line:
                    continue
                msg = json.loads(line)
                o.write(json.dumps(msg) + "\n")
                o.flush()
                if msg.get("execute") == "guest-sync-delimited":
                    f.write(b"\xff" + json.dumps({"return": msg["arguments"]["id"]}).encode() + b"\n")
                    f.flush()
                elif msg.get("execute") == "guest-set-time":
                    f.write(b'{"return": {}}\n')
                    f.flush()
            c.close()


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = {"session": cmd_session, "events": cmd_events, "fakeqga": cmd_fakeqga}.get(argv[1])
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    return cmd(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
