"""Scale-out on a Redis Cluster: two ``broadcast serve`` processes on three real primaries.

Channels hash to different shards; each message travels over sharded pub/sub on
its channel's shard only. A subscriber on either instance gets every message of
each channel in one order; a client moves from one instance to the other without
losing a message; each instance holds one shard subscription per channel its own
clients use, on that channel's node, and drops it when the last of them leaves.
Pattern subscriptions are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli.backends.redis import redis_keys
from tests.conftest import Delivery, scaled
from tests.integration.conftest import RedisClusterNodes, ServerProcess, cluster_nodes

pytestmark = pytest.mark.redis

MESSAGES = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    nodes = cluster_nodes(Path(tmp_path_factory.mktemp("cluster")))
    try:
        nodes.create()
        yield nodes
    finally:
        nodes.stop()


def shard_channel(channel: str) -> str:
    return redis_keys("broadcast", channel)[2]


def channels_per_node(cluster: RedisClusterNodes) -> dict[int, str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < len(cluster.nodes):
        found.setdefault(cluster.node_for(shard_channel(f"room.{n}")).port, f"room.{n}")
        n += 1
    return found


async def request(ws: ClientConnection, frame: dict[str, object]) -> dict[str, object]:
    """Send a request with an ``id`` and return its answer (ack or error), keeping no event."""
    await ws.send(orjson.dumps(frame).decode())
    while True:
        reply: dict[str, object] = orjson.loads(await ws.recv())
        if reply.get("id") == frame["id"]:
            return reply


async def read(ws: ClientConnection, deliveries: dict[str, Delivery], count: int) -> None:
    """Read events into one :class:`Delivery` per channel until *count* arrived in all."""
    while sum(len(d) for d in deliveries.values()) < count:
        event = orjson.loads(await ws.recv(decode=False))
        deliveries[event["channel"]].append(event["seq"])


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + scaled(15)
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_instances_share_channels_on_every_shard(
    cluster: RedisClusterNodes, start_server: Callable[..., ServerProcess]
) -> None:
    instances = [start_server("--redis-url", cluster.url) for _ in range(2)]
    by_node = channels_per_node(cluster)
    channels = list(by_node.values())
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=i.http_url, timeout=scaled(10)))
            for i in instances
        ]
        assert (await https[0].get("/health")).json()["backend"] == cluster.url
        sockets = [await stack.enter_async_context(connect(i.ws_url)) for i in instances]
        acks = [await request(ws, {"subscribe": channels, "id": 1}) for ws in sockets]
        assert all(ack["type"] == "ack" for ack in acks)
        for port, channel in by_node.items():
            assert cluster.shard_subscribers(shard_channel(channel)) == {
                node.port: 2 if node.port == port else 0 for node in cluster.nodes
            }

        deliveries = [{c: Delivery(f"{c} on instance {n}") for c in channels} for n in range(2)]
        reading = [
            asyncio.ensure_future(read(ws, d, MESSAGES * len(channels)))
            for ws, d in zip(sockets, deliveries, strict=True)
        ]
        for n in range(MESSAGES // 2):  # one message per channel on each instance, then a batch of them
            for channel in channels:
                response = await https[n % 2].post("/publish", json={"channel": channel, "event": "e", "payload": n})
                response.raise_for_status()
            batch = [{"channel": channel, "event": "batch", "payload": n} for channel in channels]
            response = await https[(n + 1) % 2].post("/publish", json=batch)
            response.raise_for_status()
        await asyncio.wait_for(asyncio.gather(*reading), scaled(30))
        for per_channel in deliveries:
            for delivery in per_channel.values():
                delivery.check(range(1, MESSAGES + 1))

        # A client leaves instance 0 and comes back on instance 1, from where it was.
        epochs = {c: ack["channels"][c]["epoch"] for c, ack in ((c, acks[0]) for c in channels)}  # type: ignore[index]
        await sockets[0].close()
        for channel in channels:
            response = await https[0].post("/publish", json={"channel": channel, "event": "while.away"})
            response.raise_for_status()
        moved = await stack.enter_async_context(connect(instances[1].ws_url))
        items = [{"channel": c, "since": MESSAGES, "epoch": epochs[c]} for c in channels]
        ack = await request(moved, {"subscribe": items, "id": 2})
        assert all(ack["channels"][c]["recovered"] is True for c in channels)  # type: ignore[index]
        came_back = {c: Delivery(f"{c} after moving") for c in channels}
        await asyncio.wait_for(read(moved, came_back, len(channels)), scaled(30))
        for delivery in came_back.values():
            delivery.check([MESSAGES + 1])

        # Instance 0 lost its last local subscriber: its shard subscriptions went.
        for port, channel in by_node.items():
            await until(
                lambda port=port, channel=channel: cluster.shard_subscribers(shard_channel(channel))[port] == 1,
                f"instance 0 to unsubscribe from {channel}",
            )

        # Patterns have no sharded equivalent: refused, and the connection stays usable.
        refused = await request(sockets[1], {"subscribe": ["room.*"], "id": 3})
        assert refused["type"] == "error" and refused["code"] == "patterns_unavailable"
        assert "sharded Redis pub/sub" in str(refused["message"])
        assert (await request(sockets[1], {"unsubscribe": [channels[0]], "id": 4}))["type"] == "ack"
