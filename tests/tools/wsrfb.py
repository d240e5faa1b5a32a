#!/usr/bin/env python3
"""wsrfb.py: RFB over wss:// as noVNC 1.3 speaks it, for vmgate's browser console tests.

usage: wsrfb.py login  URL CA ORIGIN USER PASS   -> "ok W H NAME" | "refused REASON"
       wsrfb.py status URL CA ORIGIN             -> the HTTP status of the upgrade ("101" or e.g. "403")
       wsrfb.py frames URL CA ORIGIN             -> checks ping -> pong, then a text frame -> close 1003
       wsrfb.py raw HOST:PORT CA REQUEST         -> sends REQUEST (Python escapes, e.g. \r\n) as is
                                                    over TLS; prints the response head, then
                                                    "body N" with the body's length

The RFB handshake: version, security type 19, VeNCrypt 0.2, subtype 256 (Plain),
then the credentials as noVNC sends them (lengths, user, password as separate
WebSocket messages), SecurityResult, ClientInit, ServerInit.  Exit 0 when the
outcome was read, 1 on a protocol surprise.
"""
import re
import socket
import ssl
import struct
import sys

import websocket


class Stream:
    def __init__(self, ws):
        self.ws, self.buf = ws, b""

    def read(self, n):
        while len(self.buf) < n:
            op, data = self.ws.recv_data(control_frame=False)
            if op == websocket.ABNF.OPCODE_CLOSE:
                raise EOFError("closed by server")
            if op != websocket.ABNF.OPCODE_BINARY:
                raise ValueError("non-binary frame %d" % op)
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def u8(self):
        return self.read(1)[0]

    def u32(self):
        return struct.unpack(">I", self.read(4))[0]


def connect(url, ca, origin):
    ctx = {"ca_certs": ca, "cert_reqs": ssl.CERT_REQUIRED}
    return websocket.create_connection(url, sslopt=ctx, origin=origin, timeout=20)


def handshake(s, send, user, password):
    """noVNC 1.3's RFB handshake over reader s (read, u8, u32) and send(bytes),
    one WebSocket message per send: version, security type 19, VeNCrypt 0.2,
    subtype 256, the credentials in three messages, SecurityResult, ClientInit
    (shared), ServerInit.  Returns ("refused", reason) or
    ("ok", w, h, pixel_format, name); raises ValueError on a protocol surprise."""
    ver = s.read(12)
    if ver != b"RFB 003.008\n":
        raise ValueError("version %r" % ver)
    send(ver)
    types = list(s.read(s.u8()))
    if types != [19]:
        raise ValueError("security types %r" % types)
    send(bytes([19]))
    if s.read(2) != b"\x00\x02":
        raise ValueError("VeNCrypt version")
    send(b"\x00\x02")
    if s.u8() != 0:
        raise ValueError("VeNCrypt version nak")
    subs = [s.u32() for _ in range(s.u8())]
    if subs != [256]:
        raise ValueError("subtypes %r" % subs)
    send(struct.pack(">I", 256))
    u, p = user.encode(), password.encode()
    send(struct.pack(">II", len(u), len(p)))
    send(u)
    send(p)
    if s.u32() != 0:
        return ("refused", s.read(s.u32()).decode(errors="replace"))
    send(b"\x01")
    w, h = struct.unpack(">HH", s.read(4))
    pf = s.read(16)
    name = s.read(s.u32()).decode(errors="replace")
    return ("ok", w, h, pf, name)


def login(url, ca, origin, user, password):
    ws = connect(url, ca, origin)
    s = Stream(ws)
    r = handshake(s, ws.send_binary, user, password)
    if r[0] == "refused":
        print("refused %s" % r[1])
        return 0
    _, w, h, _pf, name = r
    # one full update request, to see pixels flow
    ws.send_binary(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    t = s.u8()
    if t != 0:
        raise ValueError("first server message type %d" % t)
    print("ok %d %d %s" % (w, h, name))
    ws.close()
    return 0


def status(url, ca, origin):
    try:
        ws = connect(url, ca, origin)
    except websocket.WebSocketBadStatusException as e:
        print(e.status_code)
        return 0
    print(101)
    ws.close()
    return 0


def frames(url, ca, origin):
    ws = connect(url, ca, origin)
    s = Stream(ws)
    s.read(12)
    ws.ping(b"hello")
    op, data = ws.recv_data(control_frame=True)
    if op != websocket.ABNF.OPCODE_PONG or data != b"hello":
        raise ValueError("no pong for a ping: %d %r" % (op, data))
    ws.send("text is refused")
    op, data = ws.recv_data(control_frame=True)
    if op != websocket.ABNF.OPCODE_CLOSE or struct.unpack(">H", data[:2])[0] != 1003:
        raise ValueError("no close 1003 for a text frame: %d %r" % (op, data))
    print("ok pong close-1003")
    return 0


def raw(hostport, ca, request):
    host, port = hostport.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as t:
            t.sendall(request.encode().decode("unicode_escape").encode("latin-1"))
            data = b""
            while True:
                try:
                    chunk = t.recv(65536)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
                # a kept-alive answer ends at its Content-Length, not at EOF
                h, sep, b = data.partition(b"\r\n\r\n")
                m = re.search(rb"\r\ncontent-length: *(\d+)", h, re.I) if sep else None
                if m and len(b) >= int(m.group(1)):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    print(head.decode(errors="replace"))
    print("body %d" % len(body))
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "login":
        return login(*argv[2:7])
    if cmd == "status":
        return status(*argv[2:5])
    if cmd == "raw":
        return raw(*argv[2:5])
    if cmd == "frames":
        return frames(*argv[2:5])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ValueError, EOFError, OSError, websocket.WebSocketException) as e:
        print("error %s: %s" % (type(e).__name__, e))
        sys.exit(1)
