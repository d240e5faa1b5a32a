#!/usr/bin/env python3
"""bench/delay_relay.py — a user-space delayed link (the kernel here has no
netem): listens on LISTEN_PORT, connects each client to TARGET_HOST:PORT and
forwards both ways, holding every chunk DELAY_MS before it is written on.  Each
direction has a bounded queue (--queue bytes, default 4 MiB): while it is full
the relay stops reading, so TCP's own backpressure sets in, as on a link whose
bandwidth-delay product is that queue.

    delay_relay.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS [--queue BYTES]
                   [--rate MBIT] [--settle SECONDS]

The round trip through it is 2 x DELAY_MS (plus loopback).  Without --rate no
bandwidth limit other than the queue: queue / delay bytes per second at most.
With --rate each direction sends at MBIT megabits a second, one chunk after the
other (a router's output port), and the queue is the backlog waiting for the
port: bytes read from the sender and not yet sent on (the delay comes after).

When a connection ends it prints one line per direction, "link up|down
bytes=N max_queue=N max_inflight=N" (queue: waiting for the port; in flight:
read and not yet written, the queue plus the bytes on the wire); "down" is
target -> client.  --settle: the maxima count only from SECONDS after the
connection began (the login and the first full-screen update are not the
steady state)."""
import asyncio
import collections
import sys
import time


async def pump(reader, writer, delay, cap, rate, name, settle):
    q = collections.deque()          # (due time, bytes)
    size = 0
    st = {"bytes": 0, "max_queue": 0, "max_inflight": 0}
    port_free = 0.0                  # with a rate: when the port has sent all it took
    t_stats = time.monotonic() + settle
    room = asyncio.Event()
    room.set()
    more = asyncio.Event()
    done = False

    async def rx():
        nonlocal size, done, port_free
        try:
            while True:
                await room.wait()
                d = await reader.read(16384 if rate else 65536)
                if not d:
                    break
                now = time.monotonic()
                if rate:
                    port_free = max(now, port_free) + len(d) / rate
                    q.append((port_free + delay, d))
                    backlog = (port_free - now) * rate
                else:
                    q.append((now + delay, d))
                    backlog = size + len(d)
                size += len(d)
                st["bytes"] += len(d)
                if now >= t_stats:
                    st["max_queue"] = max(st["max_queue"], int(backlog))
                    st["max_inflight"] = max(st["max_inflight"], size)
                more.set()
                if rate and backlog >= cap:
                    # the port's queue is full: read again when it has room
                    await asyncio.sleep((backlog - cap) / rate)
                elif not rate and size >= cap:
                    room.clear()
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
                if rate or size < cap:
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
    print("link %s bytes=%d max_queue=%d max_inflight=%d"
          % (name, st["bytes"], st["max_queue"], st["max_inflight"]), flush=True)


async def main(argv):
    lport, thost, tport, delay = int(argv[1]), argv[2], int(argv[3]), float(argv[4]) / 1000
    cap = int(argv[argv.index("--queue") + 1]) if "--queue" in argv else 4 << 20
    rate = float(argv[argv.index("--rate") + 1]) * 1e6 / 8 if "--rate" in argv else 0.0
    settle = float(argv[argv.index("--settle") + 1]) if "--settle" in argv else 0.0

    async def client(cr, cw):
        try:
            br, bw = await asyncio.open_connection(thost, tport)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, bw, delay, cap, rate, "up", settle),
                             pump(br, cw, delay, cap, rate, "down", settle))
        cw.close()
        bw.close()

    srv = await asyncio.start_server(client, "127.0.0.1", lport)
    print("delay_relay: 127.0.0.1:%d -> %s:%d, %.0f ms each way, queue %d bytes%s"
          % (lport, thost, tport, delay * 1000, cap,
             ", %.1f Mbit/s" % (rate * 8 / 1e6) if rate else ""), flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv))
    except KeyboardInterrupt:
        pass
