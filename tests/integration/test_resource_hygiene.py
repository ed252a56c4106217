"""Reliability 8: 10,000 connect/subscribe/disconnect cycles leave nothing behind.

Clients come and go every way they can — a clean close, an unsubscribe first,
an abrupt disconnect without a close frame, a disconnect in the middle of a
subscribe — on a Redis-backed server. Afterwards the hub tracks no channel or
pattern, no task is left over, and the instance holds no Redis subscription.
"""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from tests.conftest import scaled, wait_until
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.redis

CYCLES = 10_000
CONCURRENCY = 50
CHANNELS = [f"room.{n}" for n in range(20)]
PATTERNS = ["room.*", "*"]


async def cycle(server: LiveServer, rng: random.Random) -> None:
    """One client: connect, subscribe, maybe receive, leave one of four ways."""
    names = rng.sample(CHANNELS, rng.randint(1, 3)) + rng.sample(PATTERNS, rng.randint(0, 1))
    way = rng.choice(["close", "unsubscribe", "abort", "mid-subscribe"])
    async with connect(server.ws_url, open_timeout=scaled(30)) as ws:
        await ws.send(orjson.dumps({"subscribe": names, "id": 1}).decode())
        if way == "mid-subscribe":
            ws.transport.abort()
            return
        while orjson.loads(await ws.recv()).get("type") != "ack":
            pass  # events of a pattern may come before the ack
        if way == "unsubscribe":
            await ws.send(orjson.dumps({"unsubscribe": names, "id": 2}).decode())
            while orjson.loads(await ws.recv()).get("id") != 2:
                pass
        elif way == "abort":
            ws.transport.abort()


async def test_ten_thousand_cycles_leave_nothing_behind(live_redis_server: LiveServer, redis_url: str) -> None:
    server = live_redis_server
    baseline = len(asyncio.all_tasks())
    rng = random.Random(12)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(CYCLES):
        queue.put_nowait(n)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            await cycle(server, rng)

    async def publisher() -> None:
        # Traffic on the channels while clients come and go.
        for n in range(200):
            await server.hub.publish(rng.choice(CHANNELS), "e", n)
            await asyncio.sleep(0.01)  # pacing

    await asyncio.wait_for(asyncio.gather(publisher(), *(worker() for _ in range(CONCURRENCY))), scaled(300))

    await wait_until(lambda: server.endpoint.connections() == 0, timeout=30, what="every connection to end")
    await wait_until(
        lambda: not server.hub.channels() and not server.hub.patterns(), timeout=30, what="the hub to forget everything"
    )
    await wait_until(lambda: len(asyncio.all_tasks()) <= baseline, timeout=30, what="the tasks to end")
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def redis_subscriptions() -> tuple[list[bytes], int]:
            return await client.pubsub_channels(), await client.pubsub_numpat()

        deadline = asyncio.get_running_loop().time() + scaled(30)
        while (left := await redis_subscriptions()) != ([], 0):
            assert asyncio.get_running_loop().time() < deadline, f"Redis subscriptions left: {left}"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
