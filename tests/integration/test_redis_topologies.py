"""The Redis backend in every topology, against real processes: sharded pub/sub on a
single Redis, Redis Sentinel (with a failover), and a Redis Cluster of three primaries.

In each: fan-out in one order across instances, recovery from another instance,
one Redis subscription per instance and channel with local subscribers (and none
left after the last one leaves), and catching up after a lost subscription.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from broadcast_cli.backends.redis import RedisBackend, redis_keys
from broadcast_cli.exceptions import BackendUnavailable, InvalidRequest
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message, PublishRequest
from broadcast_cli.protocol import SubscribeItem
from tests.conftest import scaled, wait_until
from tests.integration.conftest import (
    Collector,
    RedisClusterNodes,
    SentinelGroup,
    check_recovery_across_instances,
    cluster_nodes,
    free_port,
)

pytestmark = pytest.mark.redis


async def until(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll a (blocking, quick) check from async code until it holds; Redis errors count as not yet."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            if predicate():
                return
        except Exception:  # e.g. a node that is restarting
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


async def publish_until_accepted(hub: Hub, channel: str, payload: int, timeout: float = 30.0) -> Message:
    """Publish, retrying while the backend is unavailable (a failover or a restart under way)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            return await hub.publish(channel, "e", payload)
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


Hubs = Callable[[str], Awaitable[Hub]]


def shard_channel(channel: str) -> str:
    return redis_keys("broadcast", channel)[2]


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    """``await hubs(url)`` starts a hub on *url*; every hub is stopped afterwards."""
    started: list[Hub] = []

    async def start(url: str) -> Hub:
        hub = Hub(RedisBackend(url))
        await hub.start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        await stopped_in_time(hub)


async def stopped_in_time(hub: Hub) -> None:
    """Stop *hub*; fail with every task's stack if that takes longer than it may (a hang, not a slow machine)."""
    stopping = asyncio.ensure_future(hub.stop())
    done, _ = await asyncio.wait({stopping}, timeout=scaled(30))
    if stopping in done:
        stopping.result()
        return
    stacks = io.StringIO()
    for task in asyncio.all_tasks():
        print(task, file=stacks)
        task.print_stack(file=stacks)
    stopping.cancel()
    pytest.fail(f"the hub on {hub.backend.url} did not stop within {scaled(30):.0f} s; its tasks:\n{stacks.getvalue()}")


# -- sharded pub/sub on a single Redis ------------------------------------------------


async def shard_numsub(client: aioredis.Redis, name: str) -> int:
    reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", name)
    return int(reply[1])


async def test_sharded_pub_sub_fans_out_in_one_order(redis_url: str, hubs: Hubs) -> None:
    url = f"{redis_url}?sharded=true"
    a, b = await hubs(url), await hubs(url)
    assert a.backend.sharded and a.backend.topology == "single"
    on_a, on_b = Collector(), Collector()
    await a.subscribe(on_a, [SubscribeItem("orders")])
    await b.subscribe(on_b, [SubscribeItem("orders")])
    client = aioredis.Redis.from_url(redis_url)
    try:
        name = shard_channel("orders")
        assert await shard_numsub(client, name) == 2
        assert await client.pubsub_numsub(name) == [(name.encode(), 0)]  # nothing on classic pub/sub
        await asyncio.gather(*(hub.publish("orders", "e", n) for n in range(100) for hub in (a, b)))
        batch = await a.publish_many([PublishRequest("orders", "batch", n) for n in range(10)])
        assert [m.seq for m in batch] == list(range(201, 211))
        # Another service publishes with the sharded function.
        meta, stream, _ = redis_keys("broadcast", "orders")
        reply = await client.fcall("broadcast_spublish", 2, meta, stream, "orders", "external", '{"n": 1}')
        assert reply[0] == 211
    finally:
        await client.aclose()
    await wait_until(lambda: len(on_a.messages) == len(on_b.messages) == 211, what="211 messages on each")
    assert on_a.seqs() == on_b.seqs() == list(range(1, 212))
    assert [m.payload for m in on_a.messages] == [m.payload for m in on_b.messages]
    assert on_b.messages[-1].event == "external"


async def test_sharded_subscriptions_follow_local_subscribers(redis_url: str, hubs: Hubs) -> None:
    url = f"{redis_url}?sharded=true"
    a, b = await hubs(url), await hubs(url)
    client = aioredis.Redis.from_url(redis_url)
    name = shard_channel("orders")

    async def subscribers() -> int:
        return await shard_numsub(client, name)

    try:
        assert await subscribers() == 0
        first, second, third = Collector(), Collector(), Collector()
        await a.subscribe(first, [SubscribeItem("orders")])
        await a.subscribe(second, [SubscribeItem("orders")])  # the same instance: one Redis subscription
        assert await subscribers() == 1
        await b.subscribe(third, [SubscribeItem("orders")])
        assert await subscribers() == 2
        assert await client.execute_command("PUBSUB", "SHARDCHANNELS") == [name.encode()]
        a.unsubscribe_all(first)
        await b.publish("orders", "e", 1)
        await wait_until(lambda: len(second.messages) == 1, what="the message on a")
        assert await subscribers() == 2  # a still has a local subscriber
        a.unsubscribe_all(second)
        deadline = time.monotonic() + scaled(10)
        while await subscribers() != 1:
            assert time.monotonic() < deadline, "a kept its Redis subscription"
            await asyncio.sleep(0.01)
        b.unsubscribe_all(third)
        while await subscribers() != 0:
            assert time.monotonic() < deadline, "b kept its Redis subscription"
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_sharded_recovery_across_instances(redis_url: str, hubs: Hubs) -> None:
    url = f"{redis_url}?sharded=true"
    await check_recovery_across_instances(await hubs(url), await hubs(url))


async def test_sharded_catch_up_after_the_connection_is_killed(redis_url: str, hubs: Hubs) -> None:
    url = f"{redis_url}?sharded=true"
    publisher, listener = await hubs(url), await hubs(url)
    sink = Collector()
    await listener.subscribe(sink, [SubscribeItem("orders")])
    client = aioredis.Redis.from_url(redis_url)
    try:
        # A restored subscription is caught up from history even when nothing reveals a gap.
        assert await client.client_kill_filter(_type="pubsub") == 1
        await until(lambda: listener.stats.catch_ups >= 1, "a catch-up of the restored channel")
        for n in range(300):
            await publisher.publish("orders", "e", n)
            if n in (50, 150):
                assert await client.client_kill_filter(_type="pubsub") >= 1
                # The subscription comes back by itself before the next kill.
                await until(lambda: listener.backend.connected, "the pub/sub connection to be back")
                deadline = time.monotonic() + scaled(10)
                while await shard_numsub(client, shard_channel("orders")) != 1:
                    assert time.monotonic() < deadline, "the subscription was not restored"
                    await asyncio.sleep(0.01)
    finally:
        await client.aclose()
    await wait_until(lambda: len(sink.messages) >= 300, timeout=20, what="every message after the reconnects")
    assert sink.seqs() == list(range(1, 301))


async def test_patterns_are_refused_with_sharded_pub_sub(redis_url: str, hubs: Hubs) -> None:
    hub = await hubs(f"{redis_url}?sharded=true")
    sink = Collector()
    with pytest.raises(InvalidRequest, match="not available with sharded Redis pub/sub") as raised:
        await hub.subscribe(sink, [SubscribeItem("orders"), SubscribeItem("orders.*")])
    assert raised.value.code == "patterns_unavailable"
    # Nothing of the request is left: neither the channel nor the pattern.
    await wait_until(lambda: not hub.channels() and not hub.patterns(), what="the hub to forget the request")
    await hub.subscribe(sink, [SubscribeItem("orders")])  # channels by name still work
    await hub.publish("orders", "e", 1)
    await wait_until(lambda: sink.seqs() == [1])


# -- Redis Sentinel -----------------------------------------------------------------


@pytest.mark.parametrize("sharded", [False, True], ids=["pubsub", "sharded"])
async def test_sentinel_finds_the_master(redis_sentinel: SentinelGroup, hubs: Hubs, sharded: bool) -> None:
    # A sentinel that does not answer comes first: the next one is asked.
    live = redis_sentinel.sentinels[0].address
    url = f"redis+sentinel://127.0.0.1:{free_port()},{live}/{redis_sentinel.service}/0?sharded={str(sharded).lower()}"
    a, b = await hubs(url), await hubs(url)
    assert a.backend.topology == "sentinel" and a.backend.sharded is sharded
    on_a, on_b = Collector(), Collector()
    epoch = (await a.subscribe(on_a, [SubscribeItem("orders")]))["orders"].position.epoch
    await b.subscribe(on_b, [SubscribeItem("orders")])
    await asyncio.gather(*(hub.publish("orders", "e", n) for n in range(25) for hub in (a, b)))
    await wait_until(lambda: len(on_a.messages) == len(on_b.messages) == 50, what="50 messages on each")
    assert on_a.seqs() == on_b.seqs() == list(range(1, 51))
    with redis_sentinel.master.client() as master:
        assert master.exists(redis_keys("broadcast", "orders")[0]) == 1
    late = Collector()
    results = await b.subscribe(late, [SubscribeItem("orders", since=40, epoch=epoch)])
    assert results["orders"].recovered is True
    await wait_until(lambda: late.seqs() == list(range(41, 51)), what="the recovered messages")


async def test_sentinel_failover_loses_nothing_in_history(redis_sentinel: SentinelGroup, hubs: Hubs) -> None:
    url = redis_sentinel.url
    publisher, listener = await hubs(url), await hubs(url)
    sink = Collector()
    epoch = (await listener.subscribe(sink, [SubscribeItem("orders")]))["orders"].position.epoch
    for n in range(20):
        await publisher.publish("orders", "e", n)
    await wait_until(lambda: len(sink.messages) == 20, what="the first 20 messages")
    with redis_sentinel.master.client() as master:
        assert master.wait(1, int(scaled(10) * 1000)) == 1  # the replica has every message

    redis_sentinel.master.kill()
    replica = redis_sentinel.replica.port
    await until(lambda: redis_sentinel.master_port() == replica, "the sentinel to promote the replica", timeout=60)

    for n in range(20, 40):
        await publish_until_accepted(publisher, "orders", n)
    await wait_until(lambda: len(sink.messages) >= 40, timeout=30, what="the messages after the failover")
    assert sink.seqs() == list(range(1, 41))
    assert {m.epoch for m in sink.messages} == {epoch}
    with redis_sentinel.replica.client() as promoted:
        await until(
            lambda: promoted.pubsub_numsub(shard_channel("orders")) == [(shard_channel("orders").encode(), 1)],
            "the listener to subscribe on the new master",
        )
    late = Collector()
    other = await hubs(url)
    results = await other.subscribe(late, [SubscribeItem("orders", since=10, epoch=epoch)])
    assert results["orders"].recovered is True
    await wait_until(lambda: late.seqs() == list(range(11, 41)), what="recovery from the new master")


# -- Redis Cluster ------------------------------------------------------------------


def channels_per_node(cluster: RedisClusterNodes) -> dict[int, str]:
    """One channel name per node (by port), each hashing to a slot of that node."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < len(cluster.nodes):
        channel = f"orders.{n}"
        found.setdefault(cluster.node_for(shard_channel(channel)).port, channel)
        n += 1
    return found


def subscribed_on(cluster: RedisClusterNodes, channel: str) -> dict[int, int]:
    return cluster.shard_subscribers(shard_channel(channel))


async def ten_on_every_shard(
    cluster: RedisClusterNodes, channels: dict[int, str], hubs: Hubs
) -> tuple[Hub, Hub, Collector]:
    """A publisher and a listener on *cluster*; the listener has received messages 1–10 of each of *channels*."""
    publisher, listener = await hubs(cluster.url), await hubs(cluster.url)
    sink = Collector()
    await listener.subscribe(sink, [SubscribeItem(channel) for channel in channels.values()])
    for n in range(10):
        for channel in channels.values():
            await publisher.publish(channel, "e", n)
    await wait_until(lambda: len(sink.messages) == 10 * len(channels), what="ten messages on every shard")
    return publisher, listener, sink


async def test_cluster_channels_on_every_shard_fan_out_in_order(redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    channels = channels_per_node(redis_cluster)
    a, b = await hubs(redis_cluster.url), await hubs(redis_cluster.url)
    assert a.backend.topology == "cluster" and a.backend.sharded
    on_a, on_b = Collector(), Collector()
    items = [SubscribeItem(channel) for channel in channels.values()]
    await a.subscribe(on_a, items)
    await b.subscribe(on_b, items)
    for port, channel in channels.items():
        # Each channel is carried by its own node only, once per instance.
        assert subscribed_on(redis_cluster, channel) == {node.port: 2 if node.port == port else 0
                                                         for node in redis_cluster.nodes}
    await asyncio.gather(
        *(hub.publish(channel, "e", n) for n in range(40) for channel in channels.values() for hub in (a, b))
    )
    # A batch spans the three nodes: one pipeline per node.
    batch = await b.publish_many(
        [PublishRequest(channel, "batch", n) for n in range(5) for channel in channels.values()]
    )
    assert sorted(m.seq for m in batch) == sorted(list(range(81, 86)) * 3)
    total = 85 * len(channels)
    await wait_until(lambda: len(on_a.messages) == len(on_b.messages) == total, what=f"{total} messages on each")
    for channel in channels.values():
        assert on_a.seqs(channel) == on_b.seqs(channel) == list(range(1, 86))
    for node in redis_cluster.nodes:
        with node.client() as client:
            assert client.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "broadcast_cli")  # on every primary


async def test_cluster_subscriptions_follow_local_subscribers(redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    channels = channels_per_node(redis_cluster)
    a, b = await hubs(redis_cluster.url), await hubs(redis_cluster.url)
    port, channel = next(iter(channels.items()))
    other = next(c for p, c in channels.items() if p != port)

    def count() -> int:
        return subscribed_on(redis_cluster, channel)[port]

    assert count() == 0
    first, second = Collector(), Collector()
    await a.subscribe(first, [SubscribeItem(channel)])
    assert count() == 1
    assert sum(subscribed_on(redis_cluster, other).values()) == 0  # nobody asked for the other channel
    await b.subscribe(second, [SubscribeItem(channel), SubscribeItem(other)])
    assert count() == 2
    assert sum(subscribed_on(redis_cluster, other).values()) == 1
    a.unsubscribe_all(first)
    await until(lambda: count() == 1, "a to drop its subscription")
    b.unsubscribe_all(second)
    await until(lambda: count() == 0 and sum(subscribed_on(redis_cluster, other).values()) == 0,
                "b to drop its subscriptions")


async def test_cluster_recovery_across_instances(redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    channels = list(channels_per_node(redis_cluster).values())
    a, b = await hubs(redis_cluster.url), await hubs(redis_cluster.url)
    first = Collector()
    results = await a.subscribe(first, [SubscribeItem(channel) for channel in channels])
    for n in range(10):
        for channel in channels:
            await a.publish(channel, "e", n)
    await wait_until(lambda: len(first.messages) == 30)
    a.unsubscribe_all(first)
    moved = Collector()
    items = [SubscribeItem(channel, since=4, epoch=results[channel].position.epoch) for channel in channels]
    recovered = await b.subscribe(moved, items)
    assert all(recovered[channel].recovered for channel in channels)
    for channel in channels:
        await a.publish(channel, "e", 10)
    await wait_until(lambda: len(moved.messages) == 21)
    for channel in channels:
        assert moved.seqs(channel) == list(range(5, 12))


async def test_cluster_catch_up_after_shard_connections_die(redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    channels = list(channels_per_node(redis_cluster).values())
    publisher, listener = await hubs(redis_cluster.url), await hubs(redis_cluster.url)
    sink = Collector()
    await listener.subscribe(sink, [SubscribeItem(channel) for channel in channels])
    # A restored subscription is caught up from history even when nothing reveals a gap.
    for node in redis_cluster.nodes:
        with node.client() as client:
            assert client.client_kill_filter(_type="pubsub") == 1
    await until(lambda: listener.stats.catch_ups >= 3, "a catch-up per restored channel")
    for n in range(100):
        for channel in channels:
            await publisher.publish(channel, "e", n)
        if n in (20, 60):
            for node in redis_cluster.nodes:
                with node.client() as client:
                    assert client.client_kill_filter(_type="pubsub") == 1
            for channel in channels:
                await until(lambda channel=channel: sum(subscribed_on(redis_cluster, channel).values()) == 1,
                            f"{channel}'s subscription to be restored")
    await wait_until(lambda: len(sink.messages) >= 300, timeout=20, what="every message after the reconnects")
    for channel in channels:
        assert sink.seqs(channel) == list(range(1, 101))


async def test_patterns_are_refused_in_a_cluster(redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    hub = await hubs(redis_cluster.url)
    with pytest.raises(InvalidRequest) as raised:
        await hub.subscribe(Collector(), [SubscribeItem("*")])
    assert raised.value.code == "patterns_unavailable"
    await wait_until(lambda: not hub.patterns(), what="the hub to forget the pattern")


def migrate_slot(cluster: RedisClusterNodes, key: str, target_port: int) -> None:
    """Move *key*'s slot, with its keys, to the node on *target_port* (what ``redis-cli --cluster reshard`` does)."""
    source = cluster.node_for(key)
    target = next(node for node in cluster.nodes if node.port == target_port)
    with source.client() as src, target.client() as dst:
        slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
        source_id = src.execute_command("CLUSTER", "MYID").decode()
        target_id = dst.execute_command("CLUSTER", "MYID").decode()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for node in (target, source, *cluster.nodes):
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


async def test_a_channel_follows_its_slot_to_another_node(own_redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    cluster = own_redis_cluster
    channels = channels_per_node(cluster)
    source_port, channel = next(iter(channels.items()))
    target_port = next(port for port in channels if port != source_port)
    publisher, listener = await hubs(cluster.url), await hubs(cluster.url)
    sink = Collector()
    await listener.subscribe(sink, [SubscribeItem(channel)])
    for n in range(20):
        await publisher.publish(channel, "e", n)
    migrate_slot(cluster, shard_channel(channel), target_port)
    # The node that lost the slot told the listener, which subscribes on the new one.
    await until(lambda: subscribed_on(cluster, channel)[target_port] == 1, "the subscription on the new node")
    assert subscribed_on(cluster, channel)[source_port] == 0
    for n in range(20, 40):
        await publisher.publish(channel, "e", n)  # the publisher follows MOVED
    await wait_until(lambda: len(sink.messages) >= 40, what="every message across the migration")
    assert sink.seqs() == list(range(1, 41))
    late = Collector()
    results = await publisher.subscribe(late, [SubscribeItem(channel, since=30, epoch=sink.messages[0].epoch)])
    assert results[channel].recovered is True
    await wait_until(lambda: late.seqs() == list(range(31, 41)), what="recovery from the new node")


async def test_a_restarted_node_gets_its_subscriptions_back(own_redis_cluster: RedisClusterNodes, hubs: Hubs) -> None:
    cluster = own_redis_cluster
    channels = channels_per_node(cluster)
    publisher, listener, sink = await ten_on_every_shard(cluster, channels, hubs)
    victim_port, victim_channel = next(iter(channels.items()))
    victim = next(node for node in cluster.nodes if node.port == victim_port)
    victim.stop()
    await until(lambda: not listener.backend.connected, "the listener to notice the lost node")
    with pytest.raises(BackendUnavailable):
        await publisher.publish(victim_channel, "e", 10)
    for channel in channels.values():  # the other shards keep working
        if channel != victim_channel:
            for n in range(10, 20):
                await publish_until_accepted(publisher, channel, n)
    victim.start()
    cluster.wait_ok()
    for n in range(10, 20):
        await publish_until_accepted(publisher, victim_channel, n)
    await wait_until(lambda: len(sink.messages) >= 60, timeout=30, what="every message after the restart")
    for channel in channels.values():
        assert sink.seqs(channel) == list(range(1, 21)), channel
    await until(lambda: subscribed_on(cluster, victim_channel)[victim_port] == 1, "the restored subscription")
    await until(lambda: listener.backend.connected, "the listener to be connected again")


async def test_a_failover_moves_subscriptions_to_the_promoted_replica(tmp_path: Path, hubs: Hubs) -> None:
    cluster = cluster_nodes(tmp_path, 3, "--cluster-node-timeout", "2000")  # fail over within seconds
    try:
        cluster.create()
        channels = channels_per_node(cluster)
        victim = cluster.nodes[1]
        victim_channel = channels[victim.port]
        replica = cluster.add_replica(victim)
        publisher, listener, sink = await ten_on_every_shard(cluster, channels, hubs)
        with victim.client() as client:
            assert client.wait(1, int(scaled(10) * 1000)) == 1  # the replica has every message

        victim.kill()
        await until(
            lambda: cluster.node_for(shard_channel(victim_channel)).port == replica.port,
            "the replica to take over", timeout=60,
        )
        for n in range(10, 20):
            for channel in channels.values():
                await publish_until_accepted(publisher, channel, n)
        await wait_until(lambda: len(sink.messages) >= 60, timeout=30, what="every message after the failover")
        for channel in channels.values():
            assert sink.seqs(channel) == list(range(1, 21)), channel
        await until(lambda: subscribed_on(cluster, victim_channel)[replica.port] == 1, "the listener on the new one")
        await until(lambda: listener.backend.connected, "the listener to let go of the lost node")
    finally:
        cluster.stop()
