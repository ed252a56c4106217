"""The hub over the in-memory backend: fan-out, recovery and bookkeeping (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from broadcast_cli.backends.memory import MemoryBackend
from broadcast_cli.exceptions import InvalidChannel, InvalidPayload
from broadcast_cli.history import HistoryOptions
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message, Position, PublishRequest
from broadcast_cli.protocol import SubscribeItem, SubscribeResult
from tests.conftest import wait_until


class Collector:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def seqs(self, channel: str | None = None) -> list[int]:
        return [m.seq for m in self.messages if channel is None or m.channel == channel]


@pytest.fixture
async def hub() -> Hub:
    hub = Hub(MemoryBackend(HistoryOptions(size=100)))
    await hub.start()
    return hub


async def test_fan_out_encodes_once_and_reaches_every_subscriber(hub: Hub) -> None:
    sinks = [Collector() for _ in range(3)]
    for sink in sinks:
        await hub.subscribe(sink, [SubscribeItem("orders")])
    other = Collector()
    await hub.subscribe(other, [SubscribeItem("users")])
    message = await hub.publish("orders", "created", {"entity_id": "123"}, origin="tab-1")
    assert (message.seq, message.origin) == (1, "tab-1")
    for sink in sinks:
        assert sink.messages == [message]
        assert sink.messages[0].frame is message.frame
    assert other.messages == []
    assert hub.subscriber_count("orders") == 3


async def test_seq_is_per_channel_and_epoch_is_stable(hub: Hub) -> None:
    a1 = await hub.publish("a", "e")
    a2 = await hub.publish("a", "e")
    b1 = await hub.publish("b", "e")
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert a1.epoch == a2.epoch
    assert a1.id != a2.id


async def test_a_fresh_hub_has_a_new_epoch() -> None:
    first = await Hub(MemoryBackend()).publish("a", "e")
    second = await Hub(MemoryBackend()).publish("a", "e")
    assert first.epoch != second.epoch


async def test_invalid_input_is_refused_before_anything_is_published(hub: Hub) -> None:
    with pytest.raises(InvalidChannel):
        await hub.publish("not valid", "e")
    with pytest.raises(InvalidPayload):
        await hub.publish("a", "e", {"set": {1}})
    with pytest.raises(InvalidChannel):
        await hub.publish_many([PublishRequest("a", "e"), PublishRequest("b c", "e")])
    assert (await hub.history("a")).position.seq == 0
    small = Hub(MemoryBackend(), max_payload_bytes=10)
    with pytest.raises(InvalidPayload):
        await small.publish("a", "e", "x" * 20)


async def test_ack_comes_before_replay_and_replay_before_live(hub: Hub) -> None:
    for n in range(5):
        await hub.publish("orders", "created", n)
    epoch = (await hub.history("orders")).position.epoch
    sink = Collector()
    seen_at_ack: list[int] = []

    def on_ready(results: object) -> None:
        seen_at_ack.append(len(sink.messages))

    results = await hub.subscribe(sink, [SubscribeItem("orders", since=2, epoch=epoch)], on_ready=on_ready)
    assert results == {"orders": SubscribeResult(Position(5, epoch), True)}
    assert seen_at_ack == [0]
    await hub.publish("orders", "created", 5)
    assert sink.seqs() == [3, 4, 5, 6]


async def test_recovery_fails_explicitly_for_a_wrong_epoch_or_trimmed_history() -> None:
    hub = Hub(MemoryBackend(HistoryOptions(size=2)))
    for n in range(5):
        await hub.publish("orders", "e", n)
    epoch = (await hub.history("orders")).position.epoch
    sink = Collector()
    results = await hub.subscribe(sink, [SubscribeItem("orders", since=1, epoch=epoch)])
    assert results["orders"].recovered is False
    assert sink.messages == []
    other = Collector()
    results = await hub.subscribe(other, [SubscribeItem("orders", since=4, epoch="not-the-epoch")])
    assert results["orders"] == SubscribeResult(Position(5, epoch), False)
    await hub.publish("orders", "e", 5)
    assert sink.seqs() == other.seqs() == [6]


async def test_messages_published_while_history_is_read_are_neither_lost_nor_repeated() -> None:
    class SlowHistory(MemoryBackend):
        """History reads that let publishes happen while they run."""

        def __init__(self) -> None:
            super().__init__()
            self.reading = asyncio.Event()
            self.release = asyncio.Event()

        async def history(self, channel: str, since: int | None):  # type: ignore[no-untyped-def]
            result = await super().history(channel, since)
            if since is not None:
                self.reading.set()
                await self.release.wait()
            return result

    backend = SlowHistory()
    hub = Hub(backend)
    watcher = Collector()
    await hub.subscribe(watcher, [SubscribeItem("orders")])
    for n in range(3):
        await hub.publish("orders", "e", n)
    epoch = (await hub.history("orders")).position.epoch
    sink = Collector()
    subscribing = asyncio.ensure_future(hub.subscribe(sink, [SubscribeItem("orders", since=1, epoch=epoch)]))
    await backend.reading.wait()
    for n in range(3, 6):
        await hub.publish("orders", "e", n)
    backend.release.set()
    results = await subscribing
    assert results["orders"].recovered is True
    await hub.publish("orders", "e", 6)
    assert sink.seqs() == [2, 3, 4, 5, 6, 7]
    assert watcher.seqs() == [1, 2, 3, 4, 5, 6, 7]


async def test_unsubscribe_and_bookkeeping(hub: Hub) -> None:
    sink = Collector()
    await hub.subscribe(sink, [SubscribeItem("a"), SubscribeItem("b")])
    assert sorted(hub.subscriptions(sink)) == ["a", "b"]
    assert [(c.channel, c.subscribers) for c in hub.channels()] == [("a", 1), ("b", 1)]
    hub.unsubscribe(sink, ["a", "never-subscribed"])
    await hub.publish("a", "e")
    await hub.publish("b", "e")
    assert [m.channel for m in sink.messages] == ["b"]
    hub.unsubscribe_all(sink)
    assert hub.subscriber_count("b") == 0
    assert hub.subscriptions(sink) == []
    await wait_until(lambda: not hub._channels, what="the channel's deactivation")
    assert hub.channels() == []
    assert hub._subscriptions == {}


async def test_subscribing_twice_keeps_one_subscription(hub: Hub) -> None:
    sink = Collector()
    await hub.subscribe(sink, [SubscribeItem("a")])
    results = await hub.subscribe(sink, [SubscribeItem("a")])
    assert results["a"].position.seq == 0
    await hub.publish("a", "e")
    assert sink.seqs() == [1]
    assert hub.subscriber_count("a") == 1


async def test_publish_many_keeps_order(hub: Hub) -> None:
    sink = Collector()
    await hub.subscribe(sink, [SubscribeItem("a"), SubscribeItem("b")])
    messages = await hub.publish_many([PublishRequest("a", "e", n) for n in range(3)] + [PublishRequest("b", "e")])
    assert [(m.channel, m.seq) for m in messages] == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    assert [(m.channel, m.seq) for m in sink.messages] == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]


async def test_patterns_get_live_messages_of_matching_channels_once(hub: Hub) -> None:
    both, star, plain = Collector(), Collector(), Collector()
    results = await hub.subscribe(both, [SubscribeItem("orders.*"), SubscribeItem("orders.eu"), SubscribeItem("*")])
    assert results["orders.*"].pattern and results["*"].pattern and not results["orders.eu"].pattern
    await hub.subscribe(star, [SubscribeItem("*")])
    await hub.subscribe(plain, [SubscribeItem("orders.*")])
    await hub.publish("orders.eu", "e", 1)
    await hub.publish("orders.us", "e", 2)
    await hub.publish("users", "e", 3)
    assert [(m.channel, m.seq) for m in both.messages] == [("orders.eu", 1), ("orders.us", 1), ("users", 1)]
    assert [m.channel for m in star.messages] == ["orders.eu", "orders.us", "users"]
    assert [m.channel for m in plain.messages] == ["orders.eu", "orders.us"]
    assert hub.patterns() == {"*": 2, "orders.*": 2}
    for sink in (both, star, plain):
        hub.unsubscribe_all(sink)
    await wait_until(lambda: not hub._patterns and not hub._channels, what="patterns and channels to go")


async def test_last_replays_the_tail_of_history(hub: Hub) -> None:
    for n in range(10):
        await hub.publish("orders", "e", n)
    sink = Collector()
    results = await hub.subscribe(sink, [SubscribeItem("orders", last=3)])
    assert results["orders"].recovered is None and results["orders"].position.seq == 10
    await hub.publish("orders", "e", 10)
    assert sink.seqs() == [8, 9, 10, 11]
    more = Collector()
    await hub.subscribe(more, [SubscribeItem("orders", last=100)])
    assert more.seqs() == list(range(1, 12))


async def test_a_channel_first_seen_through_a_pattern_can_be_subscribed_and_left(hub: Hub) -> None:
    watcher, explicit = Collector(), Collector()
    await hub.subscribe(watcher, [SubscribeItem("orders.*")])
    await hub.publish("orders.eu", "e", 1)
    results = await hub.subscribe(explicit, [SubscribeItem("orders.eu")])
    assert results["orders.eu"].position.seq == 1
    await hub.publish("orders.eu", "e", 2)
    hub.unsubscribe_all(explicit)
    await wait_until(lambda: hub.subscriber_count("orders.eu") == 0, what="the explicit subscriber to go")
    await hub.publish("orders.eu", "e", 3)
    assert watcher.seqs() == [1, 2, 3]
    assert explicit.seqs() == [2]
