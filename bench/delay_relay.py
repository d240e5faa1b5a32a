#!/usr/bin/env python3
"""bench/delay_relay.py — a user-space delayed link (the kernel here has no
netem): listens on LISTEN_PORT, connects each client to TARGET_HOST:PORT and
forwards both ways, holding every chunk DELAY_MS before it is written on.  Each
direction has a bounded queue (--queue bytes, default 4 MiB): while it is full
the relay stops reading, so TCP's own backpressure sets in, as on a link whose
bandwidth-delay product is that queue.

    delay_relay.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [--queue BYTES]

The round trip through it is 2 x DELAY_MS (plus loopback).  No bandwidth limit
other than the queue: queue / delay bytes per second at most."""
import asyncio
import collections
import sys
import time


async def pump(reader, writer, delay, cap):
    q = collections.deque()          # (due time, bytes)
    size = 0
    room = asyncio.Event()
    room.set()
    more = asyncio.Event()
    done = False

    async def rx():
        nonlocal size, done
        try:
            while True:
                await room.wait()
                d = await reader.read(65536)
                if not d:
                    break
                q.append((time.monotonic() + delay, d))
                size += len(d)
                if size >= cap:
                    room.clear()
                more.set()
        except (ConnectionError, OSError):
            pass
        done = True
        more.set()

    async def tx():
        nonlocal size
        try:
            while True:
                if not q:
                    if done:
                        break
                    more.clear()
                    await more.wait()
                    continue
                due, d = q[0]
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                q.popleft()
                size -= len(d)
                if size < cap:
                    room.set()
                writer.write(d)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    await asyncio.gather(rx(), tx())


async def main(argv):
    lport, thost, tport, delay = int(argv[1]), argv[2], int(argv[3]), float(argv[4]) / 1000
    cap = int(argv[argv.index("--queue") + 1]) if "--queue" in argv else 4 << 20

    async def client(cr, cw):
        try:
            br, bw = await asyncio.open_connection(thost, tport)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, bw, delay, cap), pump(br, cw, delay, cap))
        cw.close()
        bw.close()

    srv = await asyncio.start_server(client, "127.0.0.1", lport)
    print("delay_relay: 127.0.0.1:%d -> %s:%d, %.0f ms each way, queue %d bytes"
          % (lport, thost, tport, delay * 1000, cap), flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv))
    except KeyboardInterrupt:
        pass
