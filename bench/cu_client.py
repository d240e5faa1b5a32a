#!/usr/bin/env python3
"""bench/cu_client.py — counts framebuffer updates per second the way
TigerVNC's viewer asks for them, for bench/cu.sh.

    cu_client.py direct HOST PORT SECONDS W H
    cu_client.py vmgate HOST PORT SECONDS W H CAFILE USER PASS [nofence]

direct: plain RFB 3.8 with security None; the viewer's request/update loop
(the next incremental request goes out when an update starts).  vmgate:
VeNCrypt X509Plain; it announces ContinuousUpdates and Fence and, as
TigerVNC does, enables continuous updates for W x H once the server has sent
EndOfContinuousUpdates, and echoes every fence request ("nofence": it
announces ContinuousUpdates only, so vmgate paces by the kernel's queue).  Both count the
updates completed after a 1 s warm-up; Raw only.  Prints
"updates_per_s=N mbytes_per_s=M"."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import rawrfb  # noqa: E402


class Stream:
    def __init__(self, s):
        self.s, self.buf = s, bytearray()

    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("closed")
            self.buf += d

    def take(self, n):
        self.need(n)
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def skip(self, n):
        while n:
            if not self.buf:
                self.need(1)
            k = min(n, len(self.buf))
            del self.buf[:k]
            n -= k


def main(argv):
    path, host, port, secs, w, h = argv[1], argv[2], int(argv[3]), float(argv[4]), int(argv[5]), int(argv[6])
    if path == "direct":
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.recv(12)
        s.sendall(b"RFB 003.008\n")
        n = s.recv(1)[0]
        types = s.recv(n)
        assert 1 in types, types
        s.sendall(b"\x01")
        assert s.recv(4) == b"\0\0\0\0"
        t = s
        cu = False
    else:
        s = rawrfb.connect(host, port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = rawrfb.to_tls(s, argv[7])
        user, pw = argv[8].encode(), argv[9].encode()
        t.sendall(struct.pack(">II", len(user), len(pw)) + user + pw)
        assert rawrfb.recv_exact(t, 4) == b"\0\0\0\0", "login failed"
        cu = True
    st = Stream(t)
    t.sendall(b"\x01")
    si = st.take(24)
    st.take(struct.unpack(">I", si[20:24])[0])
    bypp = si[4] // 8
    nofence = len(argv) > 10 and argv[10] == "nofence"
    encs = [0] + ([-313] if cu else []) + ([-312] if cu and not nofence else [])
    t.sendall(struct.pack(">BBH", 2, 0, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
    t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    cu_on = False
    t0 = time.monotonic()
    start = t0 + 1.0
    count = 0
    nbytes = 0
    while True:
        now = time.monotonic()
        if now >= start + secs:
            break
        typ = st.take(1)[0]
        if typ == 0:
            nrects = struct.unpack(">xH", st.take(3))[0]
            if not cu_on:   # TigerVNC without continuous updates: ask when an update starts
                t.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
            size = 4
            for _ in range(nrects):
                x, y, rw, rh, enc = struct.unpack(">HHHHi", st.take(12))
                if enc == 0:
                    st.skip(rw * rh * bypp)
                    size += 12 + rw * rh * bypp
                elif enc != -224:
                    raise SystemExit("unexpected encoding %d" % enc)
            if time.monotonic() >= start:
                count += 1
                nbytes += size
        elif typ == 150:
            if cu and not cu_on:
                cu_on = True
                t.sendall(struct.pack(">BBHHHH", 150, 1, 0, 0, w, h))
        elif typ == 248:
            hdr = st.take(8)
            flags = struct.unpack(">xxxIB", hdr)[0]
            plen = hdr[7]
            payload = st.take(plen)
            if flags & 0x80000000:
                t.sendall(struct.pack(">BxxxIB", 248, 0, plen) + payload)
        elif typ == 2:
            pass
        elif typ == 3:
            n = struct.unpack(">xxxi", st.take(7))[0]
            st.skip(abs(n))
        else:
            raise SystemExit("unexpected server message %d" % typ)
    print("updates_per_s=%.1f mbytes_per_s=%.2f continuous=%d" % (count / secs, nbytes / secs / 1e6, cu_on))
    t.close()


if __name__ == "__main__":
    main(sys.argv)
