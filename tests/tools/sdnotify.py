#!/usr/bin/env python3
"""A stand-in for systemd's notify socket, for vmgate's sd_notify test.

    sdnotify.py SOCKET [PORT...]

Binds a unix datagram socket at SOCKET (mode 0777, like /run/systemd/notify,
so a process that dropped root can still send), asks the kernel for the
sender's credentials (SO_PASSCRED, as systemd does: that is how NotifyAccess
knows who sent a message), and prints one line per datagram, flushed:

    pid=PID uid=UID msg=READY=1|STATUS=... listening=yes|no|-

The message's newlines become "|".  For a message with READY=1, listening=
says whether every PORT on 127.0.0.1 accepted a TCP connection at that
moment (READY=1 must come after the ports listen), else "-".  Runs until
SIGTERM.  It judges nothing: the shell test asserts on its output."""
import os
import signal
import socket
import struct
import sys


def ports_listen(ports):
    for p in ports:
        try:
            socket.create_connection(("127.0.0.1", p), 1).close()
        except OSError:
            return False
    return True


def main():
    path = sys.argv[1]
    ports = [int(p) for p in sys.argv[2:]]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    os.chmod(path, 0o777)
    cred_len = struct.calcsize("3i")
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(cred_len))
        pid = uid = -1
        for level, kind, body in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("3i", body[:cred_len])
        msg = data.decode("utf-8", "replace").strip("\n")
        ready = "READY=1" in msg.split("\n")
        listening = ("yes" if ports_listen(ports) else "no") if ready else "-"
        print("pid=%d uid=%d msg=%s listening=%s" % (pid, uid, msg.replace("\n", "|"), listening),
              flush=True)


if __name__ == "__main__":
    main()
