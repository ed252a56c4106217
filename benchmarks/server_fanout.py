"""End-to-end fan-out through ``broadcast serve`` (the ASGI path, uvicorn, in memory).

Starts a server process (pinned to core 0 when ``taskset`` exists), connects N
WebSocket subscribers from this process (pinned to core 1), publishes M messages
through the HTTP API in batches, and measures how long until every subscriber has
every message. Subscribers count frames and check only the last ``seq``, so the
generator stays light; its CPU time is reported so a reader can tell whether it was
the bottleneck.

    python benchmarks/server_fanout.py [--subscribers 200] [--messages 1000] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time

import httpx
import orjson
from processes import PINNED, start_server, stop
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli import __version__


async def subscriber(ws: ClientConnection, expected: int, counts: list[int]) -> None:
    count = 0
    last = b""
    async for frame in ws:
        count += 1
        last = frame if isinstance(frame, bytes) else frame.encode()
        if count == expected:
            break
    counts.append(count)
    assert orjson.loads(last)["seq"] == expected


async def run(subscribers: int, messages: int, batch: int) -> None:
    if PINNED:
        os.sched_setaffinity(0, {1})
    process, http_url, ws_url = start_server()
    try:
        connections = []
        started = time.perf_counter()
        for _ in range(subscribers):
            ws = await connect(ws_url, compression=None, max_queue=None)
            await ws.send('{"id": 1, "subscribe": ["bench"]}')
            await ws.recv()
            connections.append(ws)
        connect_time = time.perf_counter() - started
        counts: list[int] = []
        readers = [asyncio.ensure_future(subscriber(ws, messages, counts)) for ws in connections]
        payload = {"data": "x" * 89}
        cpu = time.process_time()
        start = time.perf_counter()
        async with httpx.AsyncClient(base_url=http_url, timeout=60) as http:
            for offset in range(0, messages, batch):
                body = [{"channel": "bench", "event": "tick", "payload": payload}] * min(batch, messages - offset)
                (await http.post("/publish", json=body)).raise_for_status()
            published = time.perf_counter() - start
            await asyncio.wait_for(asyncio.gather(*readers), 300)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        for ws in connections:
            await ws.close()
        deliveries = subscribers * messages
        assert counts == [messages] * subscribers
        print(f"broadcast-cli {__version__}, Python {platform.python_version()}, {platform.machine()}, "
              f"{os.cpu_count()} cores; server on core 0, generator on core 1")
        print(f"{subscribers} subscribers x {messages} messages (~100 B): {deliveries} deliveries, 0 lost")
        print(f"connect {connect_time:.2f} s; published in {published:.2f} s; all delivered in {elapsed:.2f} s")
        print(f"{deliveries / elapsed:,.0f} deliveries/s; generator CPU {cpu / elapsed:.0%} of its core")
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, args.messages, args.batch))


if __name__ == "__main__":
    main()
