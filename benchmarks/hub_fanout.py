"""Hub fan-out cost, without any transport: how many deliveries per second can the
hub hand to subscribers that only queue (the upper bound for any server built on it).

    python benchmarks/hub_fanout.py [--subscribers 1000] [--messages 2000] [--payload 100]

Scenario S1's shape (1,000 subscribers on one channel, 2,000 messages of ~100 B),
with the in-memory backend and history on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections import deque

from broadcast_cli import __version__
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message
from broadcast_cli.protocol import SubscribeItem


class QueueSink:
    """What a connection's outbox does on delivery: queue the frame."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: deque[bytes] = deque()

    def deliver(self, message: Message) -> None:
        self.queue.append(message.frame)


async def run(subscribers: int, messages: int, payload_size: int) -> None:
    hub = Hub()
    await hub.start()
    sinks = [QueueSink() for _ in range(subscribers)]
    for sink in sinks:
        await hub.subscribe(sink, [SubscribeItem("bench")])
    payload = {"data": "x" * max(payload_size - 11, 0)}
    start = time.perf_counter()
    cpu = time.process_time()
    for _ in range(messages):
        await hub.publish("bench", "tick", payload)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    deliveries = subscribers * messages
    assert all(len(sink.queue) == messages for sink in sinks)
    python = platform.python_version()
    print(f"broadcast-cli {__version__}, Python {python}, {platform.machine()}, {os.cpu_count()} cores")
    print(f"{subscribers} subscribers x {messages} messages of ~{payload_size} B: {deliveries} deliveries")
    print(f"wall {elapsed:.3f} s, cpu {cpu:.3f} s")
    print(f"{deliveries / elapsed:,.0f} deliveries/s; {elapsed / deliveries * 1e9:.0f} ns per delivery; "
          f"{messages / elapsed:,.0f} publishes/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.subscribers, args.messages, args.payload))


if __name__ == "__main__":
    main()
