#!/usr/bin/env python3
"""A timed VeNCrypt/Plain RFB login through vmgate, for wake on connect.

  wakerfb.py HOST PORT CAFILE USER PASS [--hold SECONDS]

Connects, logs in (VeNCrypt 0.2, subtype Plain inside TLS = 262), sends
ClientInit, asks for a full framebuffer update and waits for its header.
Prints key=value lines, times as time.time() epoch seconds:
  t_connect=  TCP connect started      t_result=  SecurityResult read
  t_init=     ServerInit read          t_frame=   first FramebufferUpdate header read
  result=ok|failed   login_to_frame_ms=  (t_frame - t_connect)
  login_answer_ms=  (t_result - t_connect: TLS, the check, and a wake if any)
Then holds the session SECONDS (default 0, reading what comes) and closes.
Exit 0 when a frame arrived, 1 otherwise.
"""
import socket
import ssl
import struct
import sys
import time


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += d
    return b


def out(k, v):
    print("%s=%s" % (k, v), flush=True)


def main(argv):
    hold = 0.0
    if "--hold" in argv:
        i = argv.index("--hold")
        hold = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    host, port, cafile, user, pw = argv[1:6]
    t_connect = time.time()
    s = socket.create_connection((host, int(port)), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv_exact(s, 12)
    s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]
    types = recv_exact(s, n)
    if 19 not in types:
        out("result", "failed")
        return 1
    s.sendall(b"\x13")
    recv_exact(s, 2)
    s.sendall(b"\x00\x02")
    recv_exact(s, 1)
    n = recv_exact(s, 1)[0]
    recv_exact(s, 4 * n)
    s.sendall(struct.pack(">I", 262))
    recv_exact(s, 1)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    t = ctx.wrap_socket(s, server_hostname="localhost")
    u, p = user.encode(), pw.encode()
    t.sendall(struct.pack(">II", len(u), len(p)) + u + p)
    st = struct.unpack(">I", recv_exact(t, 4))[0]
    t_result = time.time()
    out("t_result", "%.6f" % t_result)
    if st != 0:
        out("result", "failed")
        return 1
    t.sendall(b"\x01")
    w, h = struct.unpack(">HH", recv_exact(t, 4))
    recv_exact(t, 16)
    n = struct.unpack(">I", recv_exact(t, 4))[0]
    recv_exact(t, n)
    t_init = time.time()
    out("t_init", "%.6f" % t_init)
    out("result", "ok")
    t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    while True:
        mtype = recv_exact(t, 1)[0]
        if mtype == 0:
            break
        if mtype == 2:           # Bell
            continue
        if mtype == 3:           # ServerCutText
            recv_exact(t, 3)
            n = struct.unpack(">I", recv_exact(t, 4))[0]
            recv_exact(t, n)
            continue
        out("unexpected_message", mtype)
        return 1
    t_frame = time.time()
    out("t_connect", "%.6f" % t_connect)
    out("t_frame", "%.6f" % t_frame)
    out("login_answer_ms", "%.1f" % ((t_result - t_connect) * 1000))
    out("login_to_frame_ms", "%.1f" % ((t_frame - t_connect) * 1000))
    if hold > 0:
        t.settimeout(0.2)
        end = time.time() + hold
        while time.time() < end:
            try:
                if not t.recv(65536):
                    break
            except (socket.timeout, ssl.SSLError):
                pass
    t.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
