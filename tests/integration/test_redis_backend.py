"""The Redis backend against a real redis-server: atomic positions, shared history,
cross-instance fan-out, and catching up after a lost pub/sub connection."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from broadcast_cli import Broadcaster, RedisBroadcastBackend
from broadcast_cli.backends.redis import RedisBackend, redis_keys
from broadcast_cli.exceptions import BackendUnavailable
from broadcast_cli.history import HistoryOptions
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message
from broadcast_cli.protocol import SubscribeItem
from broadcast_cli.server.config import ServerConfig
from tests.conftest import scaled, wait_until
from tests.integration.conftest import Collector, RedisProcess, check_recovery_across_instances, run_live_server

pytestmark = pytest.mark.redis


async def make_hub(url: str, **options: object) -> Hub:
    hub = Hub(RedisBackend(url, options=HistoryOptions(**options)))  # type: ignore[arg-type]
    await hub.start()
    return hub


@pytest.fixture
async def two_hubs(redis_url: str) -> AsyncIterator[tuple[Hub, Hub]]:
    a, b = await make_hub(redis_url), await make_hub(redis_url)
    yield a, b
    await a.stop()
    await b.stop()


async def test_positions_are_atomic_and_shared(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    results = await asyncio.gather(*(hub.publish("orders", "e", n) for n in range(50) for hub in (a, b)))
    assert sorted(m.seq for m in results) == list(range(1, 101))
    assert len({m.epoch for m in results}) == 1
    history = await b.history("orders", since=0)
    assert [m.seq for m in history.messages] == list(range(1, 101))
    assert history.recovered is True


async def test_cross_instance_fan_out_in_one_order(two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    on_a, on_b = Collector(), Collector()
    await a.subscribe(on_a, [SubscribeItem("orders")])
    await b.subscribe(on_b, [SubscribeItem("orders")])
    await asyncio.gather(*(hub.publish("orders", "e", n) for n in range(100) for hub in (a, b)))
    await wait_until(lambda: len(on_a.messages) == 200 and len(on_b.messages) == 200, what="200 messages on each")
    assert on_a.seqs() == on_b.seqs() == list(range(1, 201))
    assert [m.payload for m in on_a.messages] == [m.payload for m in on_b.messages]


async def test_instances_subscribe_in_redis_only_for_local_subscribers(
    redis_url: str, two_hubs: tuple[Hub, Hub]
) -> None:
    a, _ = two_hubs
    client = aioredis.Redis.from_url(redis_url)
    _, _, name = redis_keys("broadcast", "orders")
    assert await client.pubsub_channels() == []
    sink = Collector()
    await a.subscribe(sink, [SubscribeItem("orders")])
    assert await client.pubsub_channels() == [name.encode()]
    a.unsubscribe_all(sink)
    deadline = asyncio.get_running_loop().time() + scaled(10)
    while await client.pubsub_channels():
        assert asyncio.get_running_loop().time() < deadline, "the Redis subscription was not dropped"
        await asyncio.sleep(0.01)
    await client.aclose()


async def test_recovery_across_instances(two_hubs: tuple[Hub, Hub]) -> None:
    await check_recovery_across_instances(*two_hubs)


async def test_a_redis_that_lost_its_data_starts_a_new_epoch(redis_url: str, two_hubs: tuple[Hub, Hub]) -> None:
    a, b = two_hubs
    first = await a.publish("orders", "e", 1)
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    after = await a.publish("orders", "e", 2)
    assert (after.seq, after.epoch != first.epoch) == (1, True)
    sink = Collector()
    results = await b.subscribe(sink, [SubscribeItem("orders", since=first.seq, epoch=first.epoch)])
    assert results["orders"].recovered is False
    assert results["orders"].position.epoch == after.epoch


async def test_catch_up_after_the_pubsub_connection_is_killed(redis_url: str, two_hubs: tuple[Hub, Hub]) -> None:
    publisher, listener = two_hubs
    sink = Collector()
    await listener.subscribe(sink, [SubscribeItem("orders")])
    client = aioredis.Redis.from_url(redis_url)
    for n in range(300):
        await publisher.publish("orders", "e", n)
        if n in (50, 150):
            killed = await client.client_kill_filter(_type="pubsub")
            assert killed >= 1
    await client.aclose()
    await wait_until(lambda: len(sink.messages) >= 300, timeout=20, what="every message after the reconnects")
    assert sink.seqs() == list(range(1, 301))


async def test_history_is_bounded_and_expires(redis_url: str) -> None:
    hub = await make_hub(redis_url, size=3, ttl=1.0, meta_ttl=60)
    for n in range(5):
        await hub.publish("orders", "e", n)
    assert [m.seq for m in (await hub.backend.history("orders", 0)).messages] == [3, 4, 5]
    assert (await hub.history("orders", since=1)).recovered is False
    assert (await hub.history("orders", since=2)).recovered is True

    async def expired() -> bool:
        return not (await hub.backend.history("orders", 0)).messages

    deadline = asyncio.get_running_loop().time() + scaled(10)
    while not await expired():
        assert asyncio.get_running_loop().time() < deadline, "history did not expire"
        await asyncio.sleep(0.05)
    await hub.stop()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
async def test_a_non_python_service_publishes_with_redis_cli(redis_server: RedisProcess, redis_url: str) -> None:
    hub = await make_hub(redis_url)
    sink = Collector()
    await hub.subscribe(sink, [SubscribeItem("orders")])
    meta, stream, _ = redis_keys("broadcast", "orders")
    output = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "FCALL", "broadcast_publish", "2", meta, stream,
         "orders", "order.created", '{"entity_id": "123"}', "billing-service"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert output[0] == "1"
    await wait_until(lambda: len(sink.messages) == 1, what="the redis-cli publish")
    event = orjson.loads(sink.messages[0].frame)
    assert event["channel"] == "orders" and event["event"] == "order.created"
    assert event["payload"] == {"entity_id": "123"} and event["origin"] == "billing-service"
    assert event["seq"] == 1 and event["epoch"] == output[1]
    python = await hub.publish("orders", "order.created", {"entity_id": "124"}, origin="api")
    assert python.seq == 2
    assert set(orjson.loads(python.frame)) == set(event)
    refused = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "FCALL", "broadcast_publish", "2", meta, stream,
         "orders", "e", "{not json"],
        capture_output=True, text=True,
    )
    assert "ERR broadcast: the payload is not JSON text" in refused.stdout + refused.stderr
    await hub.stop()


async def test_redis_down_means_503_and_no_false_acknowledgement(own_redis: RedisProcess) -> None:
    async with (
        run_live_server(ServerConfig(redis_url=own_redis.url)) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=scaled(30)) as http,
    ):
        ok = await http.post("/publish", json={"channel": "a", "event": "e"})
        assert ok.status_code == 200
        own_redis.stop()
        down = await http.post("/publish", json={"channel": "a", "event": "e"})
        assert down.status_code == 503
        assert down.json()["code"] == "backend_unavailable"
        with pytest.raises(BackendUnavailable):
            await server.hub.publish("a", "e")
        own_redis.start()
        again = await http.post("/publish", json={"channel": "a", "event": "e"})
        assert again.status_code == 200


async def test_broadcaster_handlers_run_in_order(redis_url: str) -> None:
    async with Broadcaster(redis_url) as one, Broadcaster(redis_url) as other:
        got: list[int] = []
        done = asyncio.Event()

        async def handler(message: Message) -> None:
            got.append(message.payload)
            if len(got) == 20:
                done.set()

        subscription = await one.subscribe("orders", handler)
        for n in range(20):
            await other.publish("orders", "e", n)
        await asyncio.wait_for(done.wait(), scaled(10))
        assert got == list(range(20))
        await subscription.unsubscribe()


async def test_seed_redis_api_without_sleeps(redis_url: str) -> None:
    backend = RedisBroadcastBackend(redis_url=redis_url, channel_prefix="test_integration")
    received: list[tuple[str, object]] = []
    arrived = asyncio.Event()

    async def handler(event_type: str, payload: object) -> None:
        received.append((event_type, payload))
        arrived.set()

    await backend.subscribe("orders", handler)  # returns once Redis confirmed it
    other = RedisBroadcastBackend(redis_url=redis_url, channel_prefix="test_integration")
    message = await other.broadcast(channel="orders", event_type="created", payload={"entity_id": "123"})
    await asyncio.wait_for(arrived.wait(), scaled(10))
    assert received == [("created", {"entity_id": "123"})]
    assert message.seq == 1
    await other.close()
    await backend.close()


async def test_a_cancelled_subscribe_leaves_no_redis_subscription(redis_url: str) -> None:
    hub = await make_hub(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    for attempt in range(20):
        sink = Collector()
        task = asyncio.ensure_future(hub.subscribe(sink, [SubscribeItem(f"c{attempt}")]))
        for _ in range(attempt % 5):
            await asyncio.sleep(0)  # cancel at different points of the subscribe
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        hub.unsubscribe_all(sink)
    deadline = asyncio.get_running_loop().time() + scaled(10)
    while await client.pubsub_channels() or hub._channels:
        assert asyncio.get_running_loop().time() < deadline, "a Redis subscription was left behind"
        await asyncio.sleep(0.01)
    await client.aclose()
    await hub.stop()


async def test_patterns_across_instances_in_order_without_duplicates(redis_url: str, two_hubs: tuple[Hub, Hub]) -> None:
    publisher, listener = two_hubs
    sink = Collector()
    results = await listener.subscribe(sink, [SubscribeItem("orders.*")])
    assert results["orders.*"].pattern
    client = aioredis.Redis.from_url(redis_url)
    assert await client.pubsub_numpat() == 1
    for n in range(30):
        await publisher.publish("orders.eu" if n % 2 else "orders.us", "e", n)
        await listener.publish("users", "e", n)  # not matched
        await listener.publish("orders.eu", "e", n)  # published on the listening instance too
    await wait_until(lambda: len(sink.messages) == 60, what="60 matching messages")
    eu = [m.seq for m in sink.messages if m.channel == "orders.eu"]
    us = [m.seq for m in sink.messages if m.channel == "orders.us"]
    assert eu == list(range(1, 46)) and us == list(range(1, 16))
    listener.unsubscribe_all(sink)
    deadline = asyncio.get_running_loop().time() + scaled(10)
    while await client.pubsub_numpat():
        assert asyncio.get_running_loop().time() < deadline, "the pattern subscription was not dropped"
        await asyncio.sleep(0.01)
    await client.aclose()
