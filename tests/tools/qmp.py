#!/usr/bin/env python3
"""Send one QMP command to a QEMU monitor socket and print the reply.

  qmp.py SOCKET COMMAND [JSON-ARGUMENTS]
  qmp.py SOCKET screendump FILE.png        shorthand for screendump format=png
  qmp.py SOCKET send-key KEY...            shorthand for send-key with qcodes (esc, ret, a, ...)

Exit 0 when QEMU answered {"return": ...}, 1 on {"error": ...} or no answer.
"""
import json
import socket
import sys
import time


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, cmd = argv[1], argv[2]
    if cmd == "screendump":
        args = {"filename": argv[3], "format": "png"}
    elif cmd == "send-key":
        args = {"keys": [{"type": "qcode", "data": k} for k in argv[3:]]}
    else:
        args = json.loads(argv[3]) if len(argv) > 3 else None
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(15)
    for _ in range(50):
        try:
            s.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.1)
    else:
        print("qmp: cannot connect to %s" % path, file=sys.stderr)
        return 1
    f = s.makefile("rw")

    def reply():
        while True:
            line = f.readline()
            if not line:
                return None
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    f.readline()  # greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    reply()
    req = {"execute": cmd}
    if args is not None:
        req["arguments"] = args
    f.write(json.dumps(req) + "\n")
    f.flush()
    msg = reply()
    print(json.dumps(msg))
    return 0 if msg is not None and "return" in msg else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
