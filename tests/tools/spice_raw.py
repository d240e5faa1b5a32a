#!/usr/bin/env python3
"""A raw SPICE link client over TLS, for exact-byte tests of vmgate's SPICE
listener (reference: docs/spice.md).

  spice_raw.py HOST PORT CA ACTION [ARGS]

ACTION:
  login USER PASS [TYPE [CONN_ID]]   link (channel TYPE, default 1 = main),
        SASL PLAIN; prints link_error=N, then sasl_result=N and
        link_result=N (what the gateway answered), session=0x... for a
        main channel that got INIT; with HOLD (a 5th argument) the
        channel stays open HOLD seconds after the link result
  magic                  garbage instead of "REDQ"
  major N                a link header with major version N
  size N                 a link header announcing N bytes
  caps                   capability counts that overflow 32 bits
  sasl-long N            a SASL start of N bytes
  mech NAME              SASL mechanism NAME
  ticket                 choose SPICE ticket auth instead of SASL
  stall                  TLS, then half a link header, then silence
  link TYPE CONN_ID HOLD  only the link message (channel TYPE, CONN_ID),
        no credentials: prints the link reply, then keeps the connection
        open HOLD seconds (or until the gateway closes it)
Prints key=value lines; "closed=1" when the gateway closed the connection,
"elapsed=SECONDS" since the last thing we sent.  Exit 0 unless the
connection itself failed (exit 1).
"""
import socket
import ssl
import struct
import sys
import time


def recv_exact(s, n, timeout=15):
    s.settimeout(timeout)
    out = b""
    while len(out) < n:
        try:
            d = s.recv(n - len(out))
        except (ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            d = b""
        if not d:
            return None if not out else out
        out += d
    return out


def wait_closed(s, timeout=60):
    t0 = time.time()
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
    except (ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
        pass
    return time.time() - t0


def link_msg(ctype=1, conn_id=0, common=0x0D, chan=(0,), major=2, size=None, ncommon=None,
             nchan=None):
    caps = struct.pack("<I", common) + b"".join(struct.pack("<I", c) for c in chan)
    mess = struct.pack("<IBBIII", conn_id, ctype, 0,
                       1 if ncommon is None else ncommon,
                       len(chan) if nchan is None else nchan, 18) + caps
    hdr = b"REDQ" + struct.pack("<III", major, 2, len(mess) if size is None else size)
    return hdr + mess


def read_reply(s):
    h = recv_exact(s, 16)
    if not h or len(h) < 16:
        print("closed=1")
        return None
    size = struct.unpack("<I", h[12:16])[0]
    body = recv_exact(s, size)
    if not body or len(body) < 178:
        print("closed=1")
        return None
    err = struct.unpack("<I", body[:4])[0]
    print("link_error=%d" % err)
    if err == 0:
        nc, nch, off = struct.unpack("<III", body[166:178])
        common = struct.unpack("<I", body[off:off + 4])[0] if nc else 0
        print("reply_common_caps=0x%x" % common)
        print("reply_channel_caps=%d" % nch)
    return err


def main(argv):
    host, port, ca, action = argv[1], int(argv[2]), argv[3], argv[4]
    args = argv[5:]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    raw = socket.create_connection((host, port), 10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    if action == "magic":
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        read_reply(s)
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    if action == "major":
        s.sendall(link_msg(major=int(args[0])))
        read_reply(s)
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    if action == "size":
        m = link_msg(size=int(args[0]))
        s.sendall(m[:16])
        read_reply(s)
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    if action == "caps":
        s.sendall(link_msg(ncommon=0x40000000, nchan=0xC0000001))
        read_reply(s)
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    if action == "stall":
        s.sendall(link_msg()[:10])
        print("elapsed=%.2f" % wait_closed(s, 120))
        print("closed=1")
        return 0
    if action == "link":
        s.sendall(link_msg(ctype=int(args[0]), conn_id=int(args[1], 0)))
        read_reply(s)
        sys.stdout.flush()
        print("elapsed=%.2f" % wait_closed(s, float(args[2]) if len(args) > 2 else 60))
        return 0
    ctype = int(args[2]) if action == "login" and len(args) > 2 else 1
    conn_id = int(args[3], 0) if action == "login" and len(args) > 3 else 0
    s.sendall(link_msg(ctype=ctype, conn_id=conn_id))
    if read_reply(s) != 0:
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    if action == "ticket":
        s.sendall(struct.pack("<I", 1) + b"\0" * 128)
        r = recv_exact(s, 4)
        if r:
            print("link_result=%d" % struct.unpack("<I", r)[0])
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    s.sendall(struct.pack("<I", 2))
    h = recv_exact(s, 4)
    if not h:
        print("closed=1")
        return 0
    ml = struct.unpack("<I", h)[0]
    print("mechlist=%s" % recv_exact(s, ml).decode("ascii", "replace"))
    mech = args[0].encode() if action == "mech" else b"PLAIN"
    s.sendall(struct.pack("<I", len(mech)) + mech)
    if action == "sasl-long":
        n = int(args[0])
        s.sendall(struct.pack("<I", n) + b"x" * min(n, 65536))
    elif action == "mech":
        s.sendall(struct.pack("<I", 0))
    else:
        user, pw = args[0].encode(), args[1].encode()
        data = user + b"\0" + user + b"\0" + pw + b"\0"
        s.sendall(struct.pack("<I", len(data)) + data)
    t0 = time.time()
    r = recv_exact(s, 5)
    if not r or len(r) < 5:
        print("closed=1")
        return 0
    sl, complete = struct.unpack("<IB", r)
    if sl:
        recv_exact(s, sl)
    r = recv_exact(s, 4)
    if not r:
        print("closed=1")
        return 0
    sasl = struct.unpack("<I", r)[0]
    print("sasl_complete=%d" % complete)
    print("sasl_result=%d" % sasl)
    print("auth_elapsed=%.2f" % (time.time() - t0))
    if sasl != 0:
        print("elapsed=%.2f" % wait_closed(s))
        return 0
    r = recv_exact(s, 4)
    if not r:
        print("closed=1")
        return 0
    lr = struct.unpack("<I", r)[0]
    print("link_result=%d" % lr)
    if lr == 0 and ctype == 1:
        # read main channel messages until INIT (103)
        for _ in range(20):
            h = recv_exact(s, 6, 5)
            if not h or len(h) < 6:
                break
            t, sz = struct.unpack("<HI", h)
            body = recv_exact(s, sz, 5) if sz else b""
            if t == 103 and body:
                print("session=0x%08x" % struct.unpack("<I", body[:4])[0])
                break
    sys.stdout.flush()
    if lr == 0 and len(args) > 4:
        time.sleep(float(args[4]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (ConnectionRefusedError, ssl.SSLError) as e:
        print("error=%s" % e)
        sys.exit(1)
