"""The embeddable Broadcaster over the in-memory backend: handlers, order, overflow, recovery (no sockets).

Also the parts of the seed's RedisBroadcastBackend that need no Redis: its
configuration, and its ``handler(event_type, payload)`` adapter over an
in-memory backend. Its Redis behaviour is in ``tests/integration``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broadcast_cli import Broadcaster, RedisBroadcastBackend, WebSocketBroadcastBackend
from broadcast_cli import broadcaster as broadcaster_module
from broadcast_cli.backends.memory import MemoryBackend
from broadcast_cli.backends.redis import RedisBackend
from broadcast_cli.broadcaster import HandlerSubscription
from broadcast_cli.exceptions import InvalidChannel
from broadcast_cli.history import HistoryOptions
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message, Position
from tests.conftest import wait_until
from tests.unit.asgi import AsgiLifespan, AsgiWebSocket

LOGGER = "broadcast_cli.broadcaster"


class Recorder:
    """A plain function handler that keeps the messages it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def seqs(self) -> list[int]:
        return [m.seq for m in self.messages]


class Held:
    """A coroutine handler that holds each message until the test releases it.

    It counts how many of its calls run at once: handlers are awaited one message at a time.
    """

    def __init__(self) -> None:
        self.started: list[Message] = []
        self.finished: list[Message] = []
        self.running = 0
        self.most_running = 0
        self._permits = asyncio.Semaphore(0)

    async def __call__(self, message: Message) -> None:
        self.started.append(message)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self._permits.acquire()
        finally:
            self.running -= 1
        self.finished.append(message)

    def release(self, count: int = 1) -> None:
        """Let *count* held (or future) messages finish."""
        for _ in range(count):
            self._permits.release()


@pytest.fixture
async def broadcaster() -> AsyncIterator[Broadcaster]:
    broadcaster = Broadcaster(backend=MemoryBackend(HistoryOptions(size=100)))
    yield broadcaster
    await broadcaster.close()


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == LOGGER and record.levelno >= logging.ERROR]


# -- handlers ------------------------------------------------------------------------


async def test_a_handler_gets_every_message_of_its_channel_once_in_order(broadcaster: Broadcaster) -> None:
    handler = Recorder()
    await broadcaster.subscribe("orders", handler)
    published = []
    for n in range(5):
        published.append(await broadcaster.publish("orders", "created", {"n": n}))
        await broadcaster.publish("users", "created", {"n": n})
    await wait_until(lambda: len(handler.messages) == 5, what="five messages")
    assert handler.messages == published  # the very messages publish returned
    assert handler.seqs() == [1, 2, 3, 4, 5]
    assert [m.payload for m in handler.messages] == [{"n": n} for n in range(5)]


async def test_publish_returns_the_message_with_its_position_origin_and_id(broadcaster: Broadcaster) -> None:
    handler = Recorder()
    await broadcaster.subscribe("orders", handler)
    first = await broadcaster.publish("orders", "order.created", {"entity_id": "123"}, origin="tab-1", id="m-1")
    second = await broadcaster.publish("orders", "order.updated")
    assert (first.channel, first.event, first.payload) == ("orders", "order.created", {"entity_id": "123"})
    assert (first.seq, first.origin, first.id) == (1, "tab-1", "m-1")
    assert (second.seq, second.epoch, second.payload, second.origin) == (2, first.epoch, None, None)
    assert second.id != first.id
    await wait_until(lambda: len(handler.messages) == 2, what="both messages")
    assert handler.messages == [first, second]


async def test_an_async_handler_is_awaited_for_one_message_at_a_time_in_order(broadcaster: Broadcaster) -> None:
    handler = Held()
    await broadcaster.subscribe("orders", handler)
    published = [await broadcaster.publish("orders", "e", n) for n in range(3)]
    await wait_until(lambda: len(handler.started) == 1, what="the first call")
    handler.release(3)
    await wait_until(lambda: len(handler.finished) == 3, what="every call to finish")
    assert handler.started == handler.finished == published
    assert handler.most_running == 1


async def test_every_handler_on_a_channel_gets_every_message(broadcaster: Broadcaster) -> None:
    plain, coroutine = Recorder(), Held()
    await broadcaster.subscribe("orders", plain)
    await broadcaster.subscribe("orders", coroutine)
    assert broadcaster.hub.subscriber_count("orders") == 2
    coroutine.release(4)
    published = [await broadcaster.publish("orders", "e", n) for n in range(4)]
    await wait_until(lambda: len(plain.messages) == len(coroutine.finished) == 4, what="both handlers")
    assert plain.messages == coroutine.finished == published


async def test_subscribe_returns_once_active_at_the_channels_position(broadcaster: Broadcaster) -> None:
    earlier = [await broadcaster.publish("orders", "e", n) for n in range(2)]
    handler = Recorder()
    subscription = await broadcaster.subscribe("orders", handler)
    assert isinstance(subscription, HandlerSubscription)
    assert (subscription.channel, subscription.handler) == ("orders", handler)
    assert subscription.position == Position(2, earlier[0].epoch)
    assert subscription.recovered is None  # no recovery was asked for
    later = await broadcaster.publish("orders", "e", 2)  # right after subscribe returned: not missed
    await wait_until(lambda: len(handler.messages) == 1, what="the message published after subscribing")
    assert handler.messages == [later]
    assert subscription.position == Position(3, later.epoch)


async def test_the_position_is_that_of_the_last_message_handed_to_the_handler(broadcaster: Broadcaster) -> None:
    handler = Held()
    subscription = await broadcaster.subscribe("orders", handler)
    assert subscription.position is not None
    epoch = subscription.position.epoch
    assert subscription.position == Position(0, epoch)
    await broadcaster.publish("orders", "e", 0)
    await broadcaster.publish("orders", "e", 1)
    await wait_until(lambda: len(handler.started) == 1, what="the first call")
    assert subscription.position == Position(0, epoch)  # the first message is still being handled
    handler.release(1)
    await wait_until(lambda: len(handler.started) == 2, what="the second call")
    assert subscription.position == Position(1, epoch)
    handler.release(1)
    await wait_until(lambda: subscription.position == Position(2, epoch), what="the second message's position")


# -- unsubscribing -------------------------------------------------------------------


async def test_an_unsubscribed_handler_gets_nothing_more(broadcaster: Broadcaster) -> None:
    handler, witness = Recorder(), Recorder()
    subscription = await broadcaster.subscribe("orders", handler)
    await broadcaster.subscribe("orders", witness)
    first = await broadcaster.publish("orders", "e", 0)
    await wait_until(lambda: len(handler.messages) == 1, what="the first message")
    await subscription()  # calling the subscription ends it, like the client's sub()
    assert broadcaster.hub.subscriber_count("orders") == 1
    await broadcaster.publish("orders", "e", 1)
    await wait_until(lambda: len(witness.messages) == 2, what="the witness to get the second message")
    assert handler.messages == [first]
    await subscription.unsubscribe()  # a second time changes nothing
    assert broadcaster.hub.subscriber_count("orders") == 1


async def test_unsubscribing_discards_the_messages_still_queued(broadcaster: Broadcaster) -> None:
    handler, witness = Held(), Recorder()
    subscription = await broadcaster.subscribe("orders", handler)
    await broadcaster.subscribe("orders", witness)
    published = [await broadcaster.publish("orders", "e", n) for n in range(3)]
    await wait_until(lambda: len(handler.started) == 1, what="the first call")
    await subscription.unsubscribe()
    handler.release(3)
    last = await broadcaster.publish("orders", "e", 3)
    await wait_until(lambda: len(witness.messages) == 4, what="the witness to get every message")
    assert witness.messages == [*published, last]
    assert handler.started == published[:1]
    assert handler.finished == []  # the call in progress was cancelled
    assert broadcaster.hub.subscriber_count("orders") == 1


async def test_a_handler_can_unsubscribe_itself_and_then_gets_nothing_more(broadcaster: Broadcaster) -> None:
    received: list[Message] = []
    subscription: HandlerSubscription | None = None

    async def handler(message: Message) -> None:
        received.append(message)
        if message.seq == 2:
            assert subscription is not None
            await subscription.unsubscribe()

    witness = Recorder()
    subscription = await broadcaster.subscribe("orders", handler)
    await broadcaster.subscribe("orders", witness)
    published = [await broadcaster.publish("orders", "e", n) for n in range(4)]
    await wait_until(lambda: broadcaster.hub.subscriber_count("orders") == 1, what="the handler to leave")
    await wait_until(lambda: len(witness.messages) == 4, what="the witness to get every message")
    assert received == published[:2]


async def test_a_broadcaster_lets_go_of_a_subscription_once_it_ended(broadcaster: Broadcaster) -> None:
    def handler(message: Message) -> None:
        pass

    handler_ref = weakref.ref(handler)
    subscription = await broadcaster.subscribe("orders", handler)
    await subscription()
    del handler, subscription

    def collected() -> bool:
        gc.collect()
        return handler_ref() is None

    # (The cancelled handler task lets go of it a turn of the loop later: wait for that, not longer.)
    await wait_until(collected, timeout=1.0, what="the ended subscription's handler to be garbage-collected")


# -- falling behind and failing ------------------------------------------------------


async def test_a_handler_more_than_max_pending_behind_loses_the_overflow_counted_and_logged_once(
    broadcaster: Broadcaster, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Held()
    assert (await broadcaster.subscribe("elsewhere", Held())).max_pending == 10_000  # the default
    subscription = await broadcaster.subscribe("orders", handler, max_pending=3)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        first = await broadcaster.publish("orders", "e", 0)
        await wait_until(lambda: len(handler.started) == 1, what="the first call")
        queued = [await broadcaster.publish("orders", "e", n) for n in range(1, 4)]
        assert (subscription.dropped, error_records(caplog)) == (0, [])  # three behind: within the bound
        await broadcaster.publish("orders", "e", 4)
        await broadcaster.publish("orders", "e", 5)
        assert subscription.dropped == 2
        handler.release(4)
        await wait_until(lambda: len(handler.finished) == 4, what="the queued messages")
        assert handler.finished == [first, *queued]
        assert subscription.position == queued[-1].position
        handler.release(1)
        later = await broadcaster.publish("orders", "e", 6)  # caught up: nothing is dropped any more
        await wait_until(lambda: len(handler.finished) == 5, what="the message published after catching up")
    assert handler.finished[-1] is later
    assert subscription.dropped == 2
    (record,) = error_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "handler for channel 'orders' is more than 3 messages behind: dropping messages"


async def test_a_failing_handler_is_logged_and_the_next_messages_still_arrive(
    broadcaster: Broadcaster, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[int] = []

    def handler(message: Message) -> None:
        if message.seq == 2:
            raise ValueError("bad message")
        handled.append(message.seq)

    subscription = await broadcaster.subscribe("orders", handler)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        last = [await broadcaster.publish("orders", "e", n) for n in range(3)][-1]
        await wait_until(lambda: subscription.position == last.position, what="every message to be handled")
    assert handled == [1, 3]
    (record,) = error_records(caplog)
    assert record.getMessage() == "handler for channel 'orders' failed on seq 2"
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert subscription.dropped == 0


# -- recovery ------------------------------------------------------------------------


async def test_subscribing_with_since_and_epoch_replays_what_was_missed_then_live_messages(
    broadcaster: Broadcaster,
) -> None:
    published = [await broadcaster.publish("orders", "e", n) for n in range(5)]
    handler = Recorder()
    subscription = await broadcaster.subscribe("orders", handler, since=2, epoch=published[0].epoch)
    assert subscription.recovered is True
    live = await broadcaster.publish("orders", "e", 5)
    await wait_until(lambda: len(handler.messages) == 4, what="the replay and the live message")
    assert handler.seqs() == [3, 4, 5, 6]
    assert handler.messages[-1] is live
    assert subscription.position == live.position


async def test_recovery_with_another_epoch_fails_explicitly_and_only_live_messages_follow(
    broadcaster: Broadcaster,
) -> None:
    published = [await broadcaster.publish("orders", "e", n) for n in range(3)]
    handler = Recorder()
    subscription = await broadcaster.subscribe("orders", handler, since=1, epoch="not-the-epoch")
    assert subscription.recovered is False
    assert subscription.position == published[-1].position
    live = await broadcaster.publish("orders", "e", 3)
    await wait_until(lambda: len(handler.messages) == 1, what="the live message")
    assert handler.messages == [live]


async def test_recovery_fails_explicitly_once_the_missed_messages_left_history() -> None:
    async with Broadcaster(history=HistoryOptions(size=2)) as broadcaster:
        published = [await broadcaster.publish("orders", "e", n) for n in range(5)]
        handler = Recorder()
        subscription = await broadcaster.subscribe("orders", handler, since=1, epoch=published[0].epoch)
        assert subscription.recovered is False
        live = await broadcaster.publish("orders", "e", 5)
        await wait_until(lambda: len(handler.messages) == 1, what="the live message")
        assert handler.messages == [live]
        recoverable = await broadcaster.subscribe("orders", Recorder(), since=4, epoch=published[0].epoch)
        assert recoverable.recovered is True  # seq 5 and 6 are still in history


async def test_a_subscribe_to_an_invalid_channel_raises_and_leaves_nothing_behind(broadcaster: Broadcaster) -> None:
    with pytest.raises(InvalidChannel):
        await broadcaster.subscribe("not valid", Recorder())
    assert broadcaster.hub.channels() == []
    await broadcaster.close()


# -- lifecycle -----------------------------------------------------------------------


async def test_the_context_manager_starts_the_hub_and_ends_every_subscription_on_exit() -> None:
    async with Broadcaster() as broadcaster:
        assert broadcaster.hub.started
        first, second = Recorder(), Held()
        await broadcaster.subscribe("orders", first)
        await broadcaster.subscribe("users", second)
        await broadcaster.publish("users", "e")
        await wait_until(lambda: len(second.started) == 1, what="the held call")
    assert not broadcaster.hub.started
    assert (broadcaster.hub.subscriber_count("orders"), broadcaster.hub.subscriber_count("users")) == (0, 0)
    assert second.finished == []  # the call in progress was cancelled


async def test_close_can_be_called_twice_and_the_broadcaster_starts_again_on_next_use(
    broadcaster: Broadcaster,
) -> None:
    handler = Recorder()
    await broadcaster.subscribe("orders", handler)
    first = await broadcaster.publish("orders", "e")
    await wait_until(lambda: len(handler.messages) == 1, what="the first message")
    await broadcaster.close()
    await broadcaster.close()
    assert not broadcaster.hub.started
    second = await broadcaster.publish("orders", "e")
    assert broadcaster.hub.started
    assert (second.seq, second.epoch) == (2, first.epoch)
    assert handler.messages == [first]  # its subscription ended with close()


async def test_a_broadcaster_uses_the_backend_or_the_hub_it_is_given() -> None:
    backend = MemoryBackend()
    assert Broadcaster(backend=backend).hub.backend is backend
    hub = Hub()
    assert Broadcaster(hub=hub).hub is hub
    assert isinstance(Broadcaster().hub.backend, MemoryBackend)
    assert Broadcaster(history=HistoryOptions(size=7)).hub.backend.options.size == 7


async def test_a_broadcaster_on_the_websocket_backends_hub_reaches_websocket_clients_and_handlers() -> None:
    ws_backend = WebSocketBroadcastBackend()
    router = ws_backend.get_router()
    broadcaster = Broadcaster(hub=ws_backend.hub)
    async with AsgiLifespan(router):
        ws = AsgiWebSocket(router)
        await ws.wait_accepted()
        await ws.subscribe("orders")
        handler = Recorder()
        await broadcaster.subscribe("orders", handler)
        assert ws_backend.get_subscriber_count("orders") == 2  # a WebSocket client and a handler
        from_broadcaster = await broadcaster.publish("orders", "e", "in-process")
        from_backend = await ws_backend.broadcast("orders", "e", "from the app")
        await ws.wait_texts(3)
        await wait_until(lambda: len(handler.messages) == 2, what="both messages")
        assert handler.messages == [from_broadcaster, from_backend]
        assert [(e["seq"], e["payload"]) for e in ws.texts()[1:]] == [(1, "in-process"), (2, "from the app")]
        ws.disconnect()
        await ws.closed()


# -- the seed's RedisBroadcastBackend, without Redis ---------------------------------------


async def test_the_seeds_redis_backend_is_configured_without_connecting() -> None:
    backend = RedisBroadcastBackend(redis_url="redis://localhost:6379/0", channel_prefix="test_integration")
    assert (backend.redis_url, backend.channel_prefix) == ("redis://localhost:6379/0", "test_integration")
    redis = backend.hub.backend
    assert isinstance(redis, RedisBackend)
    assert (redis.url, redis.prefix, redis.shared) == ("redis://localhost:6379/0", "test_integration", True)
    assert not backend.hub.started
    defaults = RedisBroadcastBackend(history=HistoryOptions(size=5))
    assert (defaults.redis_url, defaults.channel_prefix) == ("redis://localhost:6379/0", "broadcast")
    assert defaults.hub.backend.options.size == 5


@pytest.fixture
def redis_in_memory(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, str | None]]:
    """Make RedisBroadcastBackend use an in-memory backend; list the (url, prefix) it asked for."""
    asked: list[tuple[str | None, str | None]] = []

    def create_backend(url: str | None = None, *, prefix: str | None = None, options: Any = None) -> MemoryBackend:
        asked.append((url, prefix))
        return MemoryBackend(options)

    monkeypatch.setattr(broadcaster_module, "create_backend", create_backend)
    return asked


async def test_the_seeds_redis_backend_calls_handlers_with_event_type_and_payload_in_order(
    redis_in_memory: list[tuple[str | None, str | None]],
) -> None:
    backend = RedisBroadcastBackend(redis_url="redis://localhost:6379/0", channel_prefix="test_integration")
    assert redis_in_memory == [("redis://localhost:6379/0", "test_integration")]
    plain: list[tuple[str, Any]] = []
    awaited: list[tuple[str, Any]] = []

    lock = asyncio.Lock()

    async def coroutine_handler(event_type: str, payload: Any) -> None:
        async with lock:  # a handler that awaits something
            awaited.append((event_type, payload))

    await backend.subscribe("orders", lambda event_type, payload: plain.append((event_type, payload)))
    await backend.subscribe("orders", coroutine_handler)
    messages = [
        await backend.broadcast(channel="orders", event_type="created", payload={"entity_id": "123"}),
        await backend.broadcast("orders", "updated", {"entity_id": "123", "total": 5}, origin="tab-1"),
        await backend.broadcast("users", "created", {"id": 1}),
    ]
    assert [(m.channel, m.seq, m.origin) for m in messages] == [
        ("orders", 1, None),
        ("orders", 2, "tab-1"),
        ("users", 1, None),
    ]
    expected = [("created", {"entity_id": "123"}), ("updated", {"entity_id": "123", "total": 5})]
    await wait_until(lambda: len(plain) == len(awaited) == 2, what="both handlers")
    assert plain == awaited == expected
    await backend.close()
    assert not backend.hub.started
    assert backend.hub.subscriber_count("orders") == 0


async def test_the_seeds_redis_to_websocket_bridge_fans_out_to_websocket_clients(
    redis_in_memory: list[tuple[str | None, str | None]],
) -> None:
    # The seed's section 2.2, with the in-memory backend standing in for Redis and a WebSocket client added.
    redis_backend = RedisBroadcastBackend(redis_url="redis://localhost:6379/0", channel_prefix="test_integration")
    ws_backend = WebSocketBroadcastBackend()
    client = AsgiWebSocket(ws_backend)
    await client.wait_accepted()
    await client.subscribe("orders")
    received: list[tuple[str, Any]] = []

    async def bridge_handler(event_type: str, payload: Any) -> None:
        await ws_backend.broadcast(channel=payload.get("channel", "unknown"), event_type=event_type, payload=payload)
        received.append((event_type, payload))

    await redis_backend.subscribe("orders", bridge_handler)
    await redis_backend.broadcast(
        channel="orders", event_type="created", payload={"entity_id": "123", "channel": "orders"}
    )
    await wait_until(lambda: len(received) == 1, what="the bridge")
    assert received == [("created", {"entity_id": "123", "channel": "orders"})]
    (_, event) = await client.wait_texts(2)
    assert (event["channel"], event["event"], event["seq"]) == ("orders", "created", 1)
    assert event["payload"] == {"entity_id": "123", "channel": "orders"}
    client.disconnect()
    await client.closed()
    await redis_backend.close()
    await ws_backend.close()
