"""Scale-out: three ``broadcast serve`` instances on one real Redis.

A subscriber on each instance receives every message of a publisher on any, in one
order; each instance holds one Redis subscription per channel its own clients use,
and drops it when the last of them leaves; killing an instance leaves the others
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli.backends.redis import redis_keys
from tests.conftest import Delivery, scaled
from tests.integration.conftest import ServerProcess

pytestmark = pytest.mark.redis

MESSAGES = 300


async def subscribed(url: str, stack: contextlib.AsyncExitStack) -> ClientConnection:
    ws = await stack.enter_async_context(connect(url))
    await ws.send('{"subscribe": ["orders"], "id": 1}')
    assert orjson.loads(await ws.recv())["type"] == "ack"
    return ws


async def read(ws: ClientConnection, delivery: Delivery, count: int) -> None:
    while len(delivery) < count:
        delivery.append(orjson.loads(await ws.recv(decode=False))["seq"])


async def redis_subscribers(client: aioredis.Redis, count: int) -> None:
    """Wait until *count* instances subscribe to ``orders`` in Redis."""
    _, _, name = redis_keys("broadcast", "orders")
    deadline = asyncio.get_running_loop().time() + scaled(15)
    while (found := dict(await client.pubsub_numsub(name))[name.encode()]) != count:
        assert asyncio.get_running_loop().time() < deadline, f"{found} Redis subscriptions, not {count}"
        await asyncio.sleep(0.02)


async def test_three_instances_share_channels_through_redis(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    instances = [start_server("--redis-url", redis_url) for _ in range(3)]
    client = aioredis.Redis.from_url(redis_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(client.aclose)
        sockets = [await subscribed(instance.ws_url, stack) for instance in instances]
        await redis_subscribers(client, 3)
        https = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=i.http_url, timeout=scaled(10)))
            for i in instances
        ]
        deliveries = [Delivery(f"subscriber on instance {n}") for n in range(3)]
        reading = [asyncio.ensure_future(read(ws, d, MESSAGES)) for ws, d in zip(sockets, deliveries, strict=True)]
        for n in range(MESSAGES):  # round-robin over the instances
            response = await https[n % 3].post("/publish", json={"channel": "orders", "event": "e", "payload": n})
            response.raise_for_status()
        await asyncio.wait_for(asyncio.gather(*reading), scaled(30))
        for delivery in deliveries:
            delivery.check(range(1, MESSAGES + 1))

        # The last local subscriber of instance 2 leaves: its Redis subscription goes.
        await sockets[2].send('{"unsubscribe": ["orders"], "id": 2}')
        await redis_subscribers(client, 2)

        # Instance 1 crashes; 0 and 2 keep serving.
        instances[1].kill()
        await redis_subscribers(client, 1)
        for n in range(MESSAGES, MESSAGES + 50):
            response = await https[n % 2 * 2].post("/publish", json={"channel": "orders", "event": "e", "payload": n})
            response.raise_for_status()
        await asyncio.wait_for(read(sockets[0], deliveries[0], MESSAGES + 50), scaled(30))
        deliveries[0].check(range(1, MESSAGES + 51))
