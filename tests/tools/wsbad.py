#!/usr/bin/env python3
"""wsbad.py: a raw WebSocket client for the browser console's bad-input tests (t97).

Unlike wsrfb.py (python3-websocket, which always masks and always frames
correctly) it writes every byte itself, so it can send what a browser never
would.  HOSTPORT is 127.0.0.1:PORT of web_port, CA the test CA, ORIGIN the
Origin header (https://HOST:PORT), VM the console's name in /vnc/VM.

usage:
  wsbad.py hold HOSTPORT CA ORIGIN VM USER PASS
      Log in as noVNC 1.3 does (VeNCrypt 0.2, Plain, the credentials as three
      messages), SetEncodings [Raw], then every 0.5 s a non-incremental
      FramebufferUpdateRequest for a 64x64 corner, read to its end.  Prints
      "ok W H NAME" once, then "update N ms=LATENCY" per update (flushed).
      SIGTERM: sends close 1000, prints "closed CODE" for the server's answer,
      exit 0.  Anything else that ends it prints "error ..." and exits 1.
  wsbad.py slow HOSTPORT CA SECONDS_PER_BYTE [kept]
      TLS, then a request head trickled a byte at a time that never ends
      (an endless X-Pad header).  Prints "closed after S.Ss, sent N bytes,
      answer: FIRST-LINE|none".  With kept: first GET /vnc.html over
      HTTP/1.1 (its answer must keep the connection alive), then the
      trickle on the kept-alive connection.
  wsbad.py frame HOSTPORT CA ORIGIN VM KIND
      A correct upgrade, the server's RFB version read, then one bad frame:
        unmasked  a binary frame without the mask bit
        text      a masked text frame
        len63     a binary frame header with a 64-bit length of 2^63
        len62     a binary frame header with a 64-bit length of 2^62 (over the frame limit)
        reserved  a binary frame with RSV1 set
        bigping   a ping with a 126-byte payload (control frames are <= 125)
      Prints "close CODE REASON" for the server's close frame (then "eof"
      when the TLS stream ended after it), or "eof without close", or
      "timeout".
  wsbad.py pingflood HOSTPORT CA ORIGIN VM USER PASS N
      Log in, then send N pings (125-byte payloads) without reading a byte.
      Then read for up to 10 s and print "sent S pongs P close CODE|none
      other B" (B: bytes of other frames); with no close, one more
      non-incremental update request must be answered: "alive" or "dead".
Exit 0 when an outcome was printed, 1 on a surprise.
"""
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import time

import wsrfb                    # the same directory: the RFB handshake

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def tls(hostport, ca, timeout=20):
    host, port = hostport.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    return ctx.wrap_socket(s, server_hostname=host)


def frame(op, payload=b"", mask=True, fin=True, rsv=0, length=None):
    """A client frame; length overrides the header's length (payload not sent then)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    m = 0x80 if mask else 0
    if n < 126:
        h = struct.pack(">BB", b0, m | n)
    elif n <= 0xFFFF:
        h = struct.pack(">BBH", b0, m | 126, n)
    else:
        h = struct.pack(">BBQ", b0, m | 127, n)
    if not mask:
        return h + payload
    key = os.urandom(4)
    return h + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


class Conn:
    """A WebSocket over TLS: upgrade, then server frames read one by one."""

    def __init__(self, hostport, ca, origin, vm):
        self.t = tls(hostport, ca)
        self.buf = b""
        host = hostport
        req = ("GET /vnc/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nOrigin: %s\r\n"
               "Sec-WebSocket-Protocol: binary\r\n\r\n" % (vm, host, origin))
        self.t.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101 "):
            raise ValueError("upgrade refused: %r" % head.split(b"\r\n")[0])
        self.data = b""             # binary payload not yet taken by read()
        self.pongs = 0
        self.other = 0

    def _more(self):
        chunk = self.t.recv(65536)
        if not chunk:
            raise EOFError("eof")
        self.buf += chunk

    def next_frame(self):
        """(opcode, payload) of the next server frame."""
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                if b1 & 0x80:
                    raise ValueError("masked server frame")
                n, h = b1 & 0x7F, 2
                if n == 126:
                    h = 4
                elif n == 127:
                    h = 10
                if len(self.buf) >= h:
                    if h == 4:
                        n = struct.unpack(">H", self.buf[2:4])[0]
                    elif h == 10:
                        n = struct.unpack(">Q", self.buf[2:10])[0]
                    if len(self.buf) >= h + n:
                        p = self.buf[h:h + n]
                        self.buf = self.buf[h + n:]
                        return b0 & 0x0F, p
            self._more()

    def read(self, n):
        """n bytes of the binary stream (RFB); pongs are counted, a close raises."""
        while len(self.data) < n:
            op, p = self.next_frame()
            if op in (OP_BIN, OP_CONT):
                self.data += p
            elif op == OP_PONG:
                self.pongs += 1
            elif op == OP_CLOSE:
                code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
                raise EOFError("close %d %s" % (code, p[2:].decode(errors="replace")))
            else:
                raise ValueError("unexpected frame op %d" % op)
        out, self.data = self.data[:n], self.data[n:]
        return out

    def send(self, payload):
        self.t.sendall(frame(OP_BIN, payload))

    def u8(self):
        return self.read(1)[0]

    def u16(self):
        return struct.unpack(">H", self.read(2))[0]

    def u32(self):
        return struct.unpack(">I", self.read(4))[0]


def login(c, user, password):
    """noVNC 1.3's handshake (wsrfb.handshake); returns (w, h, bpp, name) or raises."""
    r = wsrfb.handshake(c, c.send, user, password)
    if r[0] == "refused":
        raise ValueError("refused: %s" % r[1])
    _, w, h, pf, name = r
    c.send(struct.pack(">BBH", 2, 0, 1) + struct.pack(">i", 0))      # SetEncodings [Raw]
    return w, h, pf[0], name


def update(c, bpp, w=64, h=64):
    """One non-incremental update request for the w x h corner, read to its end."""
    c.send(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    while True:
        t = c.u8()
        if t == 0:                                  # FramebufferUpdate
            c.read(1)
            for _ in range(c.u16()):
                _x, _y, rw, rh, enc = struct.unpack(">HHHHi", c.read(12))
                if enc == 0:
                    c.read(rw * rh * bpp // 8)
                elif enc in (-223, -224):           # DesktopSize / LastRect: no data
                    pass
                else:
                    raise ValueError("unexpected encoding %d" % enc)
            return
        if t == 1:                                  # SetColourMapEntries
            c.read(3)
            c.read(6 * c.u16())
        elif t == 2:                                # Bell
            pass
        elif t == 3:                                # ServerCutText
            c.read(3)
            c.read(c.u32())
        else:
            raise ValueError("unexpected server message %d" % t)


def hold(hostport, ca, origin, vm, user, password):
    c = Conn(hostport, ca, origin, vm)
    w, h, bpp, name = login(c, user, password)
    print("ok %d %d %s" % (w, h, name), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    n = 0
    while not stop:
        t0 = time.monotonic()
        update(c, bpp)
        n += 1
        print("update %d ms=%d" % (n, (time.monotonic() - t0) * 1000), flush=True)
        end = time.monotonic() + 0.5
        while not stop and time.monotonic() < end:
            time.sleep(0.05)
    c.t.sendall(frame(OP_CLOSE, struct.pack(">H", 1000)))
    try:
        while True:
            op, p = c.next_frame()
            if op == OP_CLOSE:
                print("closed %d" % (struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005))
                return 0
    except EOFError:
        print("error eof without a close answer")
        return 1


def slow(hostport, ca, per_byte, kept=None):
    t = tls(hostport, ca, timeout=120)
    if kept:
        t.sendall(b"GET /vnc.html HTTP/1.1\r\nHost: %s\r\n\r\n" % hostport.encode())
        data = b""
        while True:
            chunk = t.recv(65536)
            if not chunk:
                raise EOFError("closed after the first request")
            data += chunk
            h, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"\r\ncontent-length: *(\d+)", h, re.I) if sep else None
            if m and len(body) >= int(m.group(1)):
                break
        if b"\r\nConnection: keep-alive" not in h:
            raise ValueError("the first answer does not keep the connection: %r" % h)
    head = b"GET /vnc/d HTTP/1.1\r\nHost: x\r\nX-Pad: "
    sent, answer, t0 = 0, b"", time.monotonic()
    t.setblocking(False)
    while True:
        b = head[sent:sent + 1] or b"a"
        if sent and sent % 60 == 0:
            b = b"\r\nX-Pad: "                      # new lines: no header line grows too long
        try:
            t.send(b)
            sent += len(b)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            break
        except ssl.SSLWantWriteError:
            pass
        r, _, _ = select.select([t], [], [], float(per_byte))
        if r or t.pending():
            try:
                chunk = t.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except (ConnectionResetError, ssl.SSLError, OSError):
                break
            if not chunk:
                break
            answer += chunk
        if time.monotonic() - t0 > 110:
            print("still open after %.1fs, sent %d bytes" % (time.monotonic() - t0, sent))
            return 0
    first = answer.split(b"\r\n")[0].decode(errors="replace") if answer else "none"
    print("closed after %.1fs, sent %d bytes, answer: %s" % (time.monotonic() - t0, sent, first))
    return 0


BAD = {
    "unmasked": lambda: frame(OP_BIN, b"RFB 003.008\n", mask=False),
    "text": lambda: frame(OP_TEXT, b"RFB 003.008\n"),
    "len63": lambda: frame(OP_BIN, length=1 << 63),
    "len62": lambda: frame(OP_BIN, length=1 << 62),
    "reserved": lambda: frame(OP_BIN, b"RFB 003.008\n", rsv=4),
    "bigping": lambda: frame(OP_PING, b"p" * 126),
}


def bad_frame(hostport, ca, origin, vm, kind):
    c = Conn(hostport, ca, origin, vm)
    c.t.settimeout(10)
    if c.read(12) != b"RFB 003.008\n":
        raise ValueError("no RFB version")
    c.t.sendall(BAD[kind]())
    try:
        while True:
            op, p = c.next_frame()
            if op == OP_CLOSE:
                code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
                print("close %d %s" % (code, p[2:].decode(errors="replace")))
                break
    except EOFError:
        print("eof without close")
        return 0
    except socket.timeout:
        print("timeout")
        return 0
    try:
        while c.t.recv(4096):
            pass
        print("eof")
    except socket.timeout:
        print("open after the close")
    except (ConnectionResetError, ssl.SSLError):
        print("eof")
    return 0


def pingflood(hostport, ca, origin, vm, user, password, n):
    c = Conn(hostport, ca, origin, vm)
    _w, _h, bpp, _name = login(c, user, password)
    ping = frame(OP_PING, b"p" * 125)
    c.t.settimeout(10)
    sent = 0
    try:
        for _ in range(int(n)):
            c.t.sendall(ping)
            sent += 1
    except socket.timeout:
        pass                                        # vmgate stopped reading: that's an outcome too
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
        send_err = "%s: %s" % (type(e).__name__, e)
    else:
        send_err = ""
    c.t.settimeout(2)
    code = "none"
    end = time.monotonic() + 10
    try:
        while time.monotonic() < end:
            op, p = c.next_frame()
            if op == OP_PONG:
                c.pongs += 1
            elif op == OP_CLOSE:
                code = str(struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005)
                break
            else:
                c.other += len(p)
    except (socket.timeout, EOFError, ConnectionResetError, ssl.SSLError) as e:
        read_err = "%s: %s" % (type(e).__name__, e)
    else:
        read_err = ""
    print("sent %d pongs %d close %s other %d" % (sent, c.pongs, code, c.other), flush=True)
    if send_err or read_err:
        print("send error [%s] read error [%s]" % (send_err, read_err), flush=True)
    if code == "none":
        c.t.settimeout(10)
        c.data = b""
        try:
            update(c, bpp)
            print("alive")
        except (EOFError, OSError, ValueError) as e:
            print("dead (%s)" % e)
    return 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "hold" and len(argv) == 8:
        return hold(*argv[2:8])
    if cmd == "slow" and (len(argv) == 5 or (len(argv) == 6 and argv[5] == "kept")):
        return slow(*argv[2:])
    if cmd == "frame" and len(argv) == 7 and argv[6] in BAD:
        return bad_frame(*argv[2:7])
    if cmd == "pingflood" and len(argv) == 9:
        return pingflood(*argv[2:9])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ValueError, EOFError, OSError) as e:
        print("error %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)
