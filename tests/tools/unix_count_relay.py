#!/usr/bin/env python3
"""A counting unix-socket relay, to see which connections reach a backend.

  unix_count_relay.py LISTEN_PATH TARGET_PATH COUNT_FILE

Listens on LISTEN_PATH; each accepted connection is relayed byte for byte to
a new connection to TARGET_PATH.  COUNT_FILE always holds the number of
connections accepted so far (rewritten on each accept, so a test can read it
at any time).  Runs until killed.
"""
import os
import selectors
import socket
import sys


def main(argv):
    listen, target, count_file = argv[1], argv[2], argv[3]
    try:
        os.unlink(listen)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(listen)
    ls.listen(64)
    count = 0

    def write_count():
        tmp = count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % count)
        os.replace(tmp, count_file)

    write_count()
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    peer = {}
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is ls:
                c, _ = ls.accept()
                count += 1
                write_count()
                b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    b.connect(target)
                except OSError:
                    c.close()
                    b.close()
                    continue
                peer[c], peer[b] = b, c
                sel.register(c, selectors.EVENT_READ, None)
                sel.register(b, selectors.EVENT_READ, None)
                continue
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            other = peer.get(s)
            if d and other is not None:
                try:
                    other.sendall(d)
                    continue
                except OSError:
                    pass
            for x in (s, other):
                if x is not None and x in peer:
                    sel.unregister(x)
                    del peer[x]
                    x.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
