"""A TCP proxy on loopback that makes a local S3 server feel like a region: a round trip per request, an optional bandwidth cap.

Only the benchmark's own connections go through it (the clients are pointed at its port), so
the machine's other loopback services keep their speed: no `tc netem` on `lo`.

    python bench/latency_proxy.py --upstream 127.0.0.1:8333 --latency-ms 20 [--bandwidth-mib 50]

Prints ``LISTENING <port>`` on its first line. On SIGUSR1 it prints one JSON line of counters
(connections, requests by method, delays paid, bytes each way, its own CPU seconds); the harness
takes the difference around each contender. It listens on 127.0.0.1 only, refuses an upstream
that is not a loopback address, closes connections idle for ``--idle-timeout`` seconds, and exits
after ``--max-seconds`` or when its parent process is gone.

Where the delay goes (per request, not per TCP segment). Each connection alternates between
"the client speaks" and "the server speaks". The first bytes the client sends after the server
has spoken (or on a fresh connection) start a new request: they, and everything the client
sends behind them, are held for the whole round trip (``--latency-ms``) before they go
upstream; bytes that continue the same request are not delayed again. A keep-alive connection
carrying many requests therefore pays the delay once per request, however many segments each
request or response takes. Why the request side and not the response side: the client's next
request cannot start before its previous response arrived anyway, so holding either costs the
client the same one round trip per request, but the request side needs no HTTP parsing of
responses (chunked encoding, HEAD's bodiless responses, 1xx interim answers): the direction
switch is the boundary. HTTP/1.1 clients of S3 (botocore, Go's net/http in s5cmd) do not pipeline.
An ``Expect: 100-continue`` upload waits for the server's ``100 Continue`` before its body, so it
pays two round trips, as it does against a real region. Not modelled: the TCP (and TLS) handshake
of a new connection unless ``--connect-rtts`` asks for it (TCP 1, TLS 1.3 one more), so by
default clients that open many connections are not penalised for it.

Bandwidth cap: one token bucket per direction, shared by all connections (the link to the region).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import sys
import time

CHUNK = 256 * 1024
METHODS = (b"GET", b"PUT", b"POST", b"HEAD", b"DELETE")


class Link:
    """The shared state: counters and the per-direction bandwidth schedules."""

    def __init__(self, latency: float, bandwidth: float | None, connect_rtts: float = 0):
        self.latency = latency
        self.connect_rtts = connect_rtts
        self.bandwidth = bandwidth  # bytes per second, None for no cap
        self.next_free = {"up": 0.0, "down": 0.0}
        self.stats = {"connections": 0, "delays": 0, "requests": {}, "bytes_up": 0, "bytes_down": 0}

    async def throttle(self, direction: str, size: int) -> None:
        if self.bandwidth is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next_free[direction])
        self.next_free[direction] = start + size / self.bandwidth
        wait = self.next_free[direction] - now
        if wait > 0.0005:
            await asyncio.sleep(wait)

    def snapshot(self) -> dict:
        t = os.times()
        return {**self.stats, "requests": dict(self.stats["requests"]), "cpu_s": t.user + t.system}


async def pipe_up(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turn: dict, idle: float) -> None:
    while True:
        data = await asyncio.wait_for(reader.read(CHUNK), idle)
        if not data:
            break
        if not turn["client"]:  # the first bytes of a new request: one round trip, then forward
            turn["client"] = True
            link.stats["delays"] += 1
            method = data.split(b" ", 1)[0]
            if method in METHODS:
                name = method.decode()
                link.stats["requests"][name] = link.stats["requests"].get(name, 0) + 1
            if link.latency > 0:
                await asyncio.sleep(link.latency)
        link.stats["bytes_up"] += len(data)
        await link.throttle("up", len(data))
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def pipe_down(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, turn: dict, idle: float) -> None:
    while True:
        data = await asyncio.wait_for(reader.read(CHUNK), idle)
        if not data:
            break
        turn["client"] = False  # the server has spoken: the client's next bytes are a new request
        link.stats["bytes_down"] += len(data)
        await link.throttle("down", len(data))
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def handle(link: Link, upstream: tuple[str, int], idle: float, creader, cwriter) -> None:
    link.stats["connections"] += 1
    uwriter = None
    try:
        if link.connect_rtts and link.latency > 0:  # the new connection's handshakes (TCP, TLS), when asked for
            await asyncio.sleep(link.connect_rtts * link.latency)
        ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(*upstream), 10)
        turn = {"client": False}
        tasks = [
            asyncio.create_task(pipe_up(link, creader, uwriter, turn, idle)),
            asyncio.create_task(pipe_down(link, ureader, cwriter, turn, idle)),
        ]
        # Either side closing ends the exchange once the other side has nothing left to say;
        # an error or the idle timeout on either ends both.
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
    except (OSError, asyncio.TimeoutError, asyncio.CancelledError):  # cancelled: the proxy is stopping
        pass
    finally:
        for w in (cwriter, uwriter):
            if w is not None:
                w.close()


async def main_async(args) -> None:
    host, _, port = args.upstream.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"upstream {host} is not a loopback address: refused")
    link = Link(args.latency_ms / 1000, args.bandwidth_mib * (1 << 20) if args.bandwidth_mib else None, args.connect_rtts)
    server = await asyncio.start_server(
        lambda r, w: handle(link, (host, int(port)), args.idle_timeout, r, w), "127.0.0.1", args.port, backlog=1024, limit=CHUNK
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps(link.snapshot()), flush=True))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    parent, deadline = os.getppid(), time.monotonic() + args.max_seconds
    async with server:
        while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server, loopback only")
    parser.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (0: any free one)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="round trip paid once per request")
    parser.add_argument("--bandwidth-mib", type=float, default=0.0, help="MiB/s cap per direction, shared (0: none)")
    parser.add_argument(
        "--connect-rtts",
        type=float,
        default=0.0,
        help="round trips a new connection pays before its first request (TCP 1, TLS 1.3 +1; default 0: not modelled)",
    )
    parser.add_argument("--idle-timeout", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()


if __name__ == "__main__":
    main()
