#!/usr/bin/env python3
"""RFB client with security None for vmgate's local ways in (socket_dir,
`vmgate console`).  Prints one "key=value" per line; the shell test judges.

usage: localrfb.py MODE TARGET [ARG]
  TARGET  unix:PATH | HOST:PORT | exec:COMMAND (spoken over the command's
          stdin/stdout, e.g. "exec:ssh host vmgate console dev0")
  MODE    login [VER]   VER 003.008 (default), 003.007 or 003.003: the whole
                        handshake; result=ok width= height= name=, or
                        result=refused reason=..., or result=closed
          garbage       12 bytes of junk instead of a version; closed= elapsed=
          silent [version]  send nothing (or just the version) and wait for the
                        close; closed= elapsed=
          flood N SECS  (unix: only) N connections at once that never speak,
                        watched for SECS: capped= (closed, or the connect
                        refused, without the server's version), held= (got
                        the version, still open), closed_later= (got the
                        version, then closed)
"""
import os
import socket
import struct
import subprocess
import sys
import time

TIMEOUT = 40


class Conn:
    def __init__(self, target):
        self.proc = None
        if target.startswith("unix:"):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(target[5:])
        elif target.startswith("exec:"):
            self.proc = subprocess.Popen(target[5:], shell=True, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, bufsize=0)
            self.s = None
        else:
            host, port = target.rsplit(":", 1)
            self.s = socket.create_connection((host, int(port)))
        if self.s:
            self.s.settimeout(TIMEOUT)

    def send(self, b):
        if self.s:
            self.s.sendall(b)
        else:
            self.proc.stdin.write(b)
            self.proc.stdin.flush()

    def recv_some(self):
        if self.s:
            return self.s.recv(65536)
        return os.read(self.proc.stdout.fileno(), 65536)

    def recv(self, n):
        out = b""
        while len(out) < n:
            d = self.recv_some() if n - len(out) > 0 else b""
            if not d:
                raise EOFError(out)
            out += d
        self.extra = out[n:]
        return out[:n]

    def close(self):
        if self.s:
            self.s.close()
        else:
            self.proc.stdin.close()
            try:
                print("exit=%d" % self.proc.wait(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                print("exit=killed")


class Reader:
    """Exact reads over Conn, keeping what came beyond."""
    def __init__(self, c):
        self.c, self.buf = c, b""

    def get(self, n):
        while len(self.buf) < n:
            d = self.c.recv_some()
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def wait_close(c, r):
    t0 = time.monotonic()
    try:
        while True:
            d = c.recv_some()
            if not d:
                break
    except (ConnectionResetError, socket.timeout):
        pass
    print("closed=yes")
    print("elapsed=%.2f" % (time.monotonic() - t0))


def login(c, ver):
    r = Reader(c)
    v = r.get(12)
    print("version=%r" % v)
    c.send(("RFB %s\n" % ver).encode())
    if ver == "003.003":
        t = struct.unpack(">I", r.get(4))[0]
        if t == 0:
            n = struct.unpack(">I", r.get(4))[0]
            print("result=refused")
            print("reason=" + r.get(n).decode(errors="replace"))
            return
        print("sectype=%d" % t)
    else:
        n = r.get(1)[0]
        if n == 0:
            ln = struct.unpack(">I", r.get(4))[0]
            print("result=refused")
            print("reason=" + r.get(ln).decode(errors="replace"))
            return
        types = list(r.get(n))
        print("sectypes=%s" % ",".join(map(str, types)))
        c.send(b"\x01")
        if ver == "003.008":
            st = struct.unpack(">I", r.get(4))[0]
            print("secresult=%d" % st)
            if st:
                ln = struct.unpack(">I", r.get(4))[0]
                print("result=refused")
                print("reason=" + r.get(ln).decode(errors="replace"))
                return
    c.send(b"\x01")                       # ClientInit, shared
    w, h = struct.unpack(">HH", r.get(4))
    r.get(16)
    ln = struct.unpack(">I", r.get(4))[0]
    name = r.get(ln).decode(errors="replace")
    print("result=ok")
    print("width=%d" % w)
    print("height=%d" % h)
    print("name=" + name)


def flood(path, n, secs):
    conns, capped = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            capped += 1
            s.close()
            continue
        s.setblocking(False)
        conns.append([s, b"", False])      # socket, what came, closed
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for c in conns:
            if c[2]:
                continue
            try:
                d = c[0].recv(4096)
                if not d:
                    c[2] = True
                c[1] += d
            except BlockingIOError:
                pass
            except OSError:
                c[2] = True
        time.sleep(0.05)
    held = later = 0
    for s, got, closed in conns:
        if len(got) < 12:
            if closed:
                capped += 1
            else:
                held += 1      # open, no version yet: counts as holding a slot
        elif closed:
            later += 1
        else:
            held += 1
        s.close()
    print("capped=%d" % capped)
    print("held=%d" % held)
    print("closed_later=%d" % later)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    mode, target = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    if mode == "flood":
        if not target.startswith("unix:") or len(sys.argv) != 5:
            sys.exit(__doc__)
        flood(target[5:], int(sys.argv[3]), float(sys.argv[4]))
        return
    c = Conn(target)
    try:
        if mode == "login":
            login(c, arg or "003.008")
        elif mode == "garbage":
            r = Reader(c)
            print("version=%r" % r.get(12))
            c.send(b"GET / HTTP/1.0\r\n\r\n"[:12])
            wait_close(c, r)
        elif mode == "silent":
            r = Reader(c)
            print("version=%r" % r.get(12))
            if arg == "version":
                c.send(b"RFB 003.008\n")
            wait_close(c, r)
        else:
            sys.exit("unknown mode " + mode)
    except EOFError:
        print("result=closed")
    except (ConnectionResetError, BrokenPipeError):
        print("result=closed")
    c.close()


if __name__ == "__main__":
    main()
