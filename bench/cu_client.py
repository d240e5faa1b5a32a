#!/usr/bin/env python3
"""bench/cu_client.py — counts framebuffer updates per second the way
TigerVNC's viewer asks for them, and how old the screen it shows is, for
bench/cu.sh.

    cu_client.py PATH HOST PORT SECONDS [--rect WxH] [--ca FILE --user U --pass P]
                 [--nofence] [--qmp SOCKET]

PATH direct: plain RFB 3.8 with security None (QEMU, `vncbench serve`);
relay: the same inside TLS (haproxy terminating TLS in front of it);
vmgate: VeNCrypt X509Plain with --ca/--user/--pass.  direct and relay run
the viewer's request/update loop (the next incremental request goes out when
an update starts).  vmgate: the client announces ContinuousUpdates and Fence
and, as TigerVNC does, enables continuous updates once the server has sent
EndOfContinuousUpdates, and echoes every fence request ("--nofence": it
announces ContinuousUpdates only, so vmgate paces by the kernel's queue);
through a VM with continuous_updates = off it falls back to the loop.
--rect: the area asked for (default: the whole screen).  Raw only.

--qmp SOCKET: the server is QEMU running bench/redraw_boot.S, which stamps
every frame with its TSC in rows 0 and 1.  The client maps guest TSC to its
own clock (QMP `xp` of the stamp's copy in guest RAM, polled for 0.4 s before
and after the run, a least-squares line through the moments each new stamp
appeared) and reports the age of what it shows: for each update, the moment
the next whole stamp arrives minus the time the shown one was drawn (the
oldest the screen got while showing it).

Counts after a warm-up (--warmup, default 1 s).  Prints one line of key=value: updates_per_s,
mbytes_per_s (framebuffer update bytes, headers included), continuous (0/1),
and with --qmp: stamps, torn, age_p50_ms, age_p95_ms, age_max_ms,
fresh_p50_ms, fresh_p95_ms, fresh_max_ms (age of a frame when it has
arrived whole: the screen just updated), frames_per_s (distinct stamps
shown per second)."""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import rawrfb  # noqa: E402

STAMP_BITS = 64


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


class Qmp:
    """The guest's last stamp, from its copy at 0x500, over QMP."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, args=None):
        m = {"execute": name}
        if args:
            m["arguments"] = args
        self.f.write(json.dumps(m) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r

    def stamp(self):
        r = self.cmd("human-monitor-command", {"command-line": "xp /2wx 0x500"})
        w = r["return"].split(":")[1].split()
        return int(w[1], 16) << 32 | int(w[0], 16)

    def sample(self, secs, pairs):
        """Poll for secs; append (host time, stamp) for each new stamp: the
        midpoint of the reads before and at its first sight."""
        end = time.monotonic() + secs
        last, prev_mid = None, None
        while time.monotonic() < end:
            t0 = time.monotonic()
            v = self.stamp()
            mid = (t0 + time.monotonic()) / 2
            if last is not None and v != last and prev_mid is not None:
                pairs.append(((prev_mid + mid) / 2, v))
            last, prev_mid = v, mid
            time.sleep(0.002)


def fit(pairs):
    """Least squares t = a + b * stamp; returns a function stamp -> host time."""
    n = len(pairs)
    if n < 4:
        raise SystemExit("calibration: only %d stamps seen (is the guest drawing?)" % n)
    s0 = pairs[0][1]
    xs = [float(v - s0) for _, v in pairs]
    ts = [t for t, _ in pairs]
    mx, mt = sum(xs) / n, sum(ts) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (t - mt) for x, t in zip(xs, ts)) / sxx
    a = mt - b * mx
    return lambda v: a + b * float(v - s0)


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def open_session(a):
    if a.path in ("direct", "relay"):
        s = socket.create_connection((a.host, a.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t = s
        if a.path == "relay":
            ctx = ssl.create_default_context(cafile=a.ca)
            t = ctx.wrap_socket(s, server_hostname="localhost")
        st = Stream(t)
        st.take(12)
        t.sendall(b"RFB 003.008\n")
        n = st.take(1)[0]
        types = st.take(n)
        assert 1 in types, types
        t.sendall(b"\x01")
        assert st.take(4) == b"\0\0\0\0"
        return t, st, False
    s = rawrfb.connect(a.host, a.port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = rawrfb.to_tls(s, a.ca)
    user, pw = a.user.encode(), a.password.encode()
    t.sendall(struct.pack(">II", len(user), len(pw)) + user + pw)
    assert rawrfb.recv_exact(t, 4) == b"\0\0\0\0", "login failed"
    return t, Stream(t), True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", choices=["direct", "relay", "vmgate"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--rect", default="0x0")
    ap.add_argument("--ca")
    ap.add_argument("--user", default="bench")
    ap.add_argument("--pass", dest="password", default="bench pw")
    ap.add_argument("--nofence", action="store_true")
    ap.add_argument("--qmp")
    ap.add_argument("--warmup", type=float, default=1.0)
    a = ap.parse_args()

    qmp = Qmp(a.qmp) if a.qmp else None
    pairs = []
    if qmp:
        qmp.sample(0.4, pairs)
    t, st, cu = open_session(a)
    t.sendall(b"\x01")
    si = st.take(24)
    st.take(struct.unpack(">I", si[20:24])[0])
    sw, sh = struct.unpack(">HH", si[:4])
    bypp = si[4] // 8
    w, h = (int(x) for x in a.rect.split("x"))
    if w == 0 or h == 0:
        w, h = sw, sh
    encs = [0] + ([-313] if cu else []) + ([-312] if cu and not a.nofence else [])
    t.sendall(struct.pack(">BBH", 2, 0, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))
    t.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    cu_on = False
    rows = [[0] * STAMP_BITS, [0] * STAMP_BITS]
    # QEMU shows mode 13h's 320x200 doubled (640x400): read each stamp
    # pixel at its middle
    sx, sy = max(1, sw // 320), max(1, sh // 200)
    sty = [r * sy + sy // 2 for r in (0, 1)]
    stx = [i * sx + sx // 2 for i in range(STAMP_BITS)]
    shown = []        # (arrival time, stamp) of each new whole stamp
    torn = 0
    start = time.monotonic() + a.warmup
    end = start + a.seconds
    count = nbytes = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        typ = st.take(1)[0]
        if typ == 0:
            nrects = struct.unpack(">xH", st.take(3))[0]
            if not cu_on:   # TigerVNC without continuous updates: ask when an update starts
                t.sendall(struct.pack(">BBHHHH", 3, 1, 0, 0, w, h))
            size = 4
            touched = False
            for _ in range(nrects):
                x, y, rw, rh, enc = struct.unpack(">HHHHi", st.take(12))
                if enc == 0:
                    n = rw * rh * bypp
                    size += 12 + n
                    if qmp and y <= sty[1] and x <= stx[-1]:
                        for ly in range(y, min(sty[1] + 1, y + rh)):
                            line = st.take(rw * bypp)
                            n -= rw * bypp
                            if ly not in sty:
                                continue
                            r = sty.index(ly)
                            for i, px in enumerate(stx):
                                if x <= px < x + rw:
                                    # colour 15 or 0: any channel byte tells
                                    rows[r][i] = 1 if line[(px - x) * bypp] >= 0x80 else 0
                            touched = True
                    st.skip(n)
                elif enc != -224:
                    raise SystemExit("unexpected encoding %d" % enc)
            now = time.monotonic()
            if now >= start:
                count += 1
                nbytes += size
            if touched:
                if rows[0] != rows[1]:
                    torn += 1
                else:
                    v = sum(b << i for i, b in enumerate(rows[0]))
                    if not shown or shown[-1][1] != v:
                        shown.append((now, v))
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
    t_end = time.monotonic()
    t.close()
    out = "updates_per_s=%.1f mbytes_per_s=%.3f continuous=%d" % (
        count / a.seconds, nbytes / a.seconds / 1e6, cu_on)
    if qmp:
        qmp.sample(0.4, pairs)
        g = fit(pairs)
        peak, fresh = [], []
        for k, (r, v) in enumerate(shown):
            nxt = shown[k + 1][0] if k + 1 < len(shown) else t_end
            if nxt < start:
                continue
            peak.append((nxt - g(v)) * 1000)
            if r >= start:
                fresh.append((r - g(v)) * 1000)
        frames = sum(1 for r, _ in shown if r >= start)
        out += (" stamps=%d torn=%d age_p50_ms=%.0f age_p95_ms=%.0f age_max_ms=%.0f"
                " fresh_p50_ms=%.0f fresh_p95_ms=%.0f fresh_max_ms=%.0f frames_per_s=%.1f" % (
                    len(peak), torn, pct(peak, 50), pct(peak, 95), max(peak, default=float("nan")),
                    pct(fresh, 50), pct(fresh, 95), max(fresh, default=float("nan")), frames / a.seconds))
    print(out, flush=True)


if __name__ == "__main__":
    main()
