#!/usr/bin/env python3
"""Run a command on a fresh pty and answer its prompts.

  ptyrun.py [-t SECONDS] 'PROMPT=ANSWER' ... -- COMMAND [ARG...]

Each PROMPT=ANSWER pair is used once, in order: when the command's output
(since the previous answer) contains PROMPT, ANSWER plus a newline is typed.
Everything the command prints is copied to our stdout.  Exit status is the
command's (128+N if killed by signal N, 124 on timeout).  Needed for
gvnccapture, whose password read insists on a tty.
"""
import os
import pty
import select
import signal
import sys
import time


def main(argv):
    timeout = 60.0
    args = argv[1:]
    if args[:1] == ["-t"]:
        timeout = float(args[1])
        args = args[2:]
    if "--" not in args:
        print(__doc__, file=sys.stderr)
        return 2
    i = args.index("--")
    pairs = []
    for a in args[:i]:
        p, _, ans = a.partition("=")
        pairs.append((p.encode(), ans.encode()))
    cmd = args[i + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            os.write(2, ("ptyrun: %s: %s\n" % (cmd[0], e)).encode())
        os._exit(127)
    buf = b""
    deadline = time.monotonic() + timeout
    status = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sys.stdout.write("\nptyrun: timeout after %gs\n" % timeout)
            return 124
        try:
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
        except InterruptedError:
            continue
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the slave side is closed
                data = b""
            if not data:
                break
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            buf += data
            while pairs and pairs[0][0] in buf:
                prompt, ans = pairs.pop(0)
                buf = buf[buf.index(prompt) + len(prompt):]
                time.sleep(0.1)  # let it switch echo off / flush input first
                os.write(fd, ans + b"\n")
        else:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = st
                break
    if status is None:
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
