#!/usr/bin/env python3
"""Hold one VNC session through vmgate and show that it keeps relaying.

usage: holdrfb.py [--timeout S] HOST PORT CAFILE USER PASS

Logs in (VeNCrypt X509Plain, as rawrfb.py's login), then every 0.2 s asks
for a full (non-incremental) update of the top-left 32x32 pixels and reads
what comes.  Prints result=ok|failed once, then rx=BYTES (bytes received
since the login, growing while the session relays) after each answer, and
closed=yes when the server ends the session.  Runs until killed.
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawrfb  # noqa: E402


def main(argv):
    args = argv[1:]
    if args[:1] == ["--timeout"]:
        rawrfb.TIMEOUT = float(args[1])
        args = args[2:]
    host, port, ca, user, pw = args
    s = rawrfb.connect(host, port)
    t = rawrfb.to_tls(s, ca)
    t.sendall(struct.pack(">II", len(user), len(pw)) + user.encode() + pw.encode())
    if struct.unpack(">I", rawrfb.recv_exact(t, 4))[0] != 0:
        rawrfb.out("result", "failed")
        return 1
    rawrfb.out("result", "ok")
    t.sendall(b"\x01")
    rawrfb.recv_exact(t, 20)
    n = struct.unpack(">I", rawrfb.recv_exact(t, 4))[0]
    rawrfb.recv_exact(t, n)
    t.settimeout(0.2)
    rx = 0
    while True:
        try:
            t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, 32, 32))
        except OSError:
            rawrfb.out("closed", "yes")
            return 0
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            try:
                d = t.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                break
            except (OSError, ssl.SSLError):
                d = b""
            if not d:
                rawrfb.out("closed", "yes")
                return 0
            rx += len(d)
        rawrfb.out("rx", rx)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
