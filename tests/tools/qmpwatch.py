#!/usr/bin/env python3
"""QMP helpers for the wake-on-connect tests (t95, t96) and bench/wake.sh.

  qmpwatch.py watch SOCKET OUT     connect, write one line per QMP event to OUT:
                                   "EPOCH_SECONDS EVENT" (QEMU's own timestamp of
                                   the event, i.e. when QEMU emitted it; time.time()
                                   when read if it has none), flushed at once;
                                   runs until killed
  qmpwatch.py hold SOCKET SECONDS  connect and hold the monitor SECONDS (QEMU serves
                                   one client per monitor socket: everyone else waits);
                                   prints "held" once QEMU greeted us
"""
import json
import socket
import sys
import time


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.1)
    sys.exit("qmpwatch: cannot connect to %s" % path)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    mode, path = argv[1], argv[2]
    s = connect(path)
    f = s.makefile("rw")
    f.readline()  # greeting
    if mode == "hold":
        print("held", flush=True)
        time.sleep(float(argv[3]))
        return 0
    f.write('{"execute":"qmp_capabilities"}\n')
    f.flush()
    with open(argv[3], "a") as out:
        while True:
            line = f.readline()
            if not line:
                return 0
            t = time.time()
            msg = json.loads(line)
            # QEMU's timestamp, not the read time: on a loaded machine this
            # reader can be scheduled tens of ms after QEMU sent the event,
            # later than the client that the event's cause let through
            ts = msg.get("timestamp") or {}
            if isinstance(ts.get("seconds"), int) and ts["seconds"] > 0:
                t = ts["seconds"] + ts.get("microseconds", 0) / 1e6
            if "event" in msg:
                out.write("%.6f %s\n" % (t, msg["event"]))
                out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
