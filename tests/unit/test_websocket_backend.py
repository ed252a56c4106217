"""The seed's WebSocketBroadcastBackend over the in-memory backend, with in-memory ASGI connections.

Each connection is an :class:`~tests.unit.asgi.AsgiWebSocket` driving the
backend's FastAPI router (what ``app.include_router(backend.get_router())``
mounts) through ASGI ``receive``/``send``: no socket, no server, no thread,
except where a test calls the backend from another thread on purpose, as
Starlette's ``TestClient`` does in the seed's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from broadcast_cli import WebSocketBroadcastBackend
from broadcast_cli.backends.memory import MemoryBackend
from broadcast_cli.exceptions import InvalidChannel, InvalidEvent, InvalidPayload
from broadcast_cli.history import HistoryOptions
from broadcast_cli.hub import Hub
from broadcast_cli.message import Message
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server import router as router_module
from broadcast_cli.server.config import Limits
from tests.conftest import Delivery, wait_for, wait_until
from tests.unit.asgi import AsgiApp, AsgiLifespan, AsgiWebSocket

NOW = 1_764_000_000.0
"""The in-memory backend's clock in these tests: every message has ``ts`` = NOW in milliseconds."""
NOW_MS = 1_764_000_000_000

Connect = Callable[..., Awaitable[AsgiWebSocket]]


def events(ws: AsgiWebSocket) -> list[dict[str, Any]]:
    """The event frames *ws* received (acks and errors have a ``type``, events have none)."""
    return [frame for frame in ws.texts() if "type" not in frame]


def wire(message: Message) -> dict[str, Any]:
    """The event frame a subscriber receives for *message*, spelled out field by field."""
    frame = {
        "channel": message.channel,
        "event": message.event,
        "payload": message.payload,
        "seq": message.seq,
        "epoch": message.epoch,
        "id": message.id,
        "ts": NOW_MS,
    }
    if message.origin is not None:
        frame["origin"] = message.origin
    return frame


def make_backend(**options: Any) -> WebSocketBroadcastBackend:
    history = options.pop("history", HistoryOptions(size=100))
    return WebSocketBroadcastBackend(MemoryBackend(history, clock=lambda: NOW), **options)


@pytest.fixture
def backend() -> WebSocketBroadcastBackend:
    return make_backend()


@pytest.fixture
async def router(backend: WebSocketBroadcastBackend) -> AsyncIterator[AsgiApp]:
    """The backend's router, started up as an ASGI server starts an app, and shut down afterwards."""
    router = backend.get_router()
    async with AsgiLifespan(router):
        yield router


@pytest.fixture
async def connect(router: AsgiApp) -> AsyncIterator[Connect]:
    """Open accepted connections to the router; whatever is still open is disconnected afterwards."""
    opened: list[AsgiWebSocket] = []

    async def connect(app: AsgiApp = router, **options: Any) -> AsgiWebSocket:
        ws = AsgiWebSocket(app, **options)
        opened.append(ws)
        await ws.wait_accepted()
        return ws

    yield connect
    for ws in opened:
        if not ws.task.done():
            ws.disconnect()
        await ws.closed()


# -- receiving what broadcast() publishes ----------------------------------------------


async def test_a_subscribed_client_receives_exactly_what_broadcast_publishes(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    ack = await ws.subscribe("orders", id=1)
    epoch = ack["channels"]["orders"]["epoch"]
    assert ack == {"type": "ack", "id": 1, "channels": {"orders": {"seq": 0, "epoch": epoch}}}
    message = await backend.broadcast("orders", "created", {"entity_id": "123"})
    assert (message.channel, message.event, message.payload) == ("orders", "created", {"entity_id": "123"})
    assert (message.seq, message.epoch, message.origin) == (1, epoch, None)
    await ws.wait_texts(2)
    assert events(ws) == [
        {
            "channel": "orders",
            "event": "created",
            "payload": {"entity_id": "123"},
            "seq": 1,
            "epoch": epoch,
            "id": message.id,
            "ts": NOW_MS,
        }
    ]


async def test_a_broadcast_with_an_origin_carries_it_to_every_subscriber(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    sender, other = await connect(), await connect()
    for ws in (sender, other):
        await ws.subscribe("orders")
    message = await backend.broadcast("orders", "order.created", {"entity_id": "9"}, origin="tab-1")
    for ws in (sender, other):
        await ws.wait_texts(2)
        assert events(ws) == [wire(message)]
        assert events(ws)[0]["origin"] == "tab-1"


async def test_broadcast_takes_the_seeds_keyword_arguments_and_any_json_payload(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    await ws.subscribe("orders")
    payloads: list[Any] = [{"nested": {"list": [1, 2.5, None, True]}}, [1, "two"], "text", 42, None]
    messages = [await backend.broadcast(channel="orders", event_type="e", payload=p) for p in payloads]
    messages.append(await backend.broadcast("orders", "no-payload"))
    await ws.wait_texts(7)
    assert events(ws) == [wire(m) for m in messages]
    assert [event["payload"] for event in events(ws)] == [*payloads, None]
    assert [event["seq"] for event in events(ws)] == [1, 2, 3, 4, 5, 6]


async def test_seq_counts_per_channel_and_the_epoch_stays_the_same(backend: WebSocketBroadcastBackend) -> None:
    a1 = await backend.broadcast("a", "e")
    a2 = await backend.broadcast("a", "e")
    b1 = await backend.broadcast("b", "e")
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert a1.epoch == a2.epoch
    assert len({a1.id, a2.id, b1.id}) == 3


async def test_a_client_receives_only_the_channels_it_subscribed_to(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    orders, users, both = await connect(), await connect(), await connect()
    await orders.subscribe("orders")
    await users.subscribe("users")
    await both.subscribe("orders", "users")
    sent = [
        await backend.broadcast("orders", "e", 1),
        await backend.broadcast("users", "e", 2),
        await backend.broadcast("invoices", "e", 3),
        await backend.broadcast("orders", "e", 4),
    ]
    await both.wait_texts(4)
    await orders.wait_texts(3)
    await users.wait_texts(2)
    assert events(both) == [wire(sent[0]), wire(sent[1]), wire(sent[3])]
    assert events(orders) == [wire(sent[0]), wire(sent[3])]
    assert events(users) == [wire(sent[1])]


async def test_a_subscribe_without_an_id_is_not_acked_but_events_follow(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    ws.request({"subscribe": ["orders"]})  # the seed's send_json({"subscribe": ["orders"]})
    await wait_until(lambda: backend.get_subscriber_count("orders") == 1, what="the subscription")
    message = await backend.broadcast("orders", "created", {"entity_id": "123"})
    assert await ws.wait_texts(1) == [wire(message)]


async def test_a_pattern_subscription_receives_every_matching_channel(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    assert await ws.subscribe("orders.*", id=3) == {"type": "ack", "id": 3, "channels": {"orders.*": {"pattern": True}}}
    eu = await backend.broadcast("orders.eu", "e", 1)
    await backend.broadcast("users", "e", 2)
    us = await backend.broadcast("orders.us", "e", 3)
    await ws.wait_texts(3)
    assert events(ws) == [wire(eu), wire(us)]
    assert backend.get_subscriber_count("orders.eu") == 0  # a pattern is not a subscription to the channel


# -- the subscriber count ------------------------------------------------------------


async def test_nobody_is_counted_on_a_channel_never_subscribed(backend: WebSocketBroadcastBackend) -> None:
    assert backend.get_subscriber_count("orders") == 0


async def test_the_subscriber_count_goes_up_and_down_per_channel(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    first, second = await connect(), await connect()
    await first.subscribe("orders", "users")
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (1, 1)
    await second.subscribe("orders")
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (2, 1)
    first.request({"unsubscribe": ["orders"], "id": 2})
    assert (await first.wait_texts(2))[1] == {"type": "ack", "id": 2}
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (1, 1)
    second.request({"unsubscribe": ["orders", "never-subscribed"], "id": 2})
    await second.wait_texts(2)
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (0, 1)


async def test_subscribing_twice_on_one_connection_counts_once_and_delivers_once(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    first = await ws.subscribe("orders", "orders", id=1)
    assert list(first["channels"]) == ["orders"]
    second = await ws.subscribe("orders", id=2)
    assert second["channels"]["orders"] == first["channels"]["orders"]  # no "recovered": nothing is replayed
    assert backend.get_subscriber_count("orders") == 1
    message = await backend.broadcast("orders", "e")
    await ws.wait_texts(3)
    assert events(ws) == [wire(message)]


async def test_a_disconnected_client_is_no_longer_counted(backend: WebSocketBroadcastBackend, connect: Connect) -> None:
    leaving, staying = await connect(), await connect()
    await leaving.subscribe("orders", "users")
    await staying.subscribe("orders")
    assert backend.get_subscriber_count("orders") == 2
    leaving.disconnect(1001)
    await leaving.closed()
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (1, 0)
    message = await backend.broadcast("orders", "e")
    await staying.wait_texts(2)
    assert events(staying) == [wire(message)]
    assert events(leaving) == []


async def test_an_unsubscribed_client_gets_nothing_more_from_that_channel(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws, witness = await connect(), await connect()
    await ws.subscribe("orders", "users")
    await witness.subscribe("orders")
    before = await backend.broadcast("orders", "e", "before")
    ws.request({"unsubscribe": ["orders"], "id": 2})
    await ws.wait_texts(3)
    after = await backend.broadcast("orders", "e", "after")
    on_users = await backend.broadcast("users", "e", "still")
    await witness.wait_texts(3)
    await ws.wait_texts(4)
    assert ws.texts()[2] == {"type": "ack", "id": 2}
    assert events(ws) == [wire(before), wire(on_users)]
    assert events(witness) == [wire(before), wire(after)]


# -- several connections on one channel ----------------------------------------------


async def test_every_client_on_a_channel_gets_every_message_once_in_order(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    clients = [await connect() for _ in range(3)]
    for ws in clients:
        await ws.subscribe("orders")
    assert backend.get_subscriber_count("orders") == 3
    messages = [await backend.broadcast("orders", "e", {"n": n}) for n in range(50)]
    for number, ws in enumerate(clients):
        await ws.wait_texts(51)
        delivery = Delivery(f"client {number}")
        for event in events(ws):
            delivery.append(event["seq"])
        delivery.check(range(1, 51))
        assert events(ws) == [wire(m) for m in messages]


async def test_concurrent_broadcasts_reach_every_client_in_seq_order(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    clients = [await connect() for _ in range(3)]
    for ws in clients:
        await ws.subscribe("orders")
    messages = await asyncio.gather(*(backend.broadcast("orders", "e", {"n": n}) for n in range(30)))
    assert sorted(m.seq for m in messages) == list(range(1, 31))
    by_seq = sorted(messages, key=lambda m: m.seq)
    for ws in clients:
        await ws.wait_texts(31)
        assert events(ws) == [wire(m) for m in by_seq]


# -- recovery after a disconnect -----------------------------------------------------


async def test_a_client_that_reconnects_with_since_and_epoch_recovers_what_it_missed(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    await ws.subscribe("orders")
    seen = [await backend.broadcast("orders", "e", n) for n in range(3)]
    await ws.wait_texts(4)
    last = events(ws)[-1]
    ws.disconnect(1006)
    await ws.closed()
    missed = [await backend.broadcast("orders", "e", n) for n in range(3, 6)]
    back = await connect()
    ack = await back.subscribe({"channel": "orders", "since": last["seq"], "epoch": last["epoch"]}, id=7)
    recovered = {"seq": 6, "epoch": last["epoch"], "recovered": True}
    assert ack == {"type": "ack", "id": 7, "channels": {"orders": recovered}}
    live = await backend.broadcast("orders", "e", 6)
    texts = await back.wait_texts(5)
    assert texts[0] == ack  # the ack comes before the replay
    assert events(back) == [wire(m) for m in [*missed, live]]
    assert [event["seq"] for event in events(ws)] == [m.seq for m in seen]


async def test_a_client_that_saw_everything_recovers_nothing_and_gets_the_live_events(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    first = await backend.broadcast("orders", "e")
    ws = await connect()
    ack = await ws.subscribe({"channel": "orders", "since": 1, "epoch": first.epoch})
    assert ack["channels"]["orders"] == {"seq": 1, "epoch": first.epoch, "recovered": True}
    live = await backend.broadcast("orders", "e")
    await ws.wait_texts(2)
    assert events(ws) == [wire(live)]


async def test_recovery_with_another_epoch_is_refused_and_only_live_events_follow(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    first = await backend.broadcast("orders", "e")
    await backend.broadcast("orders", "e")
    ws = await connect()
    ack = await ws.subscribe({"channel": "orders", "since": 1, "epoch": "not-the-epoch"})
    assert ack["channels"]["orders"] == {"seq": 2, "epoch": first.epoch, "recovered": False}
    live = await backend.broadcast("orders", "e")
    await ws.wait_texts(2)
    assert events(ws) == [wire(live)]


async def test_recovery_fails_explicitly_when_the_missed_messages_left_history(connect: Connect) -> None:
    backend = make_backend(history=HistoryOptions(size=2))
    router = backend.get_router()
    async with AsgiLifespan(router):
        first = await backend.broadcast("orders", "e", 0)
        for n in range(1, 5):
            await backend.broadcast("orders", "e", n)
        ws = await connect(router)
        ack = await ws.subscribe({"channel": "orders", "since": 1, "epoch": first.epoch})
        assert ack["channels"]["orders"] == {"seq": 5, "epoch": first.epoch, "recovered": False}
        live = await backend.broadcast("orders", "e", 5)
        await ws.wait_texts(2)
        assert events(ws) == [wire(live)]
        ws.disconnect()
        await ws.closed()


async def test_last_replays_the_tail_of_history_then_live_events(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    messages = [await backend.broadcast("orders", "e", n) for n in range(5)]
    ws = await connect()
    ack = await ws.subscribe({"channel": "orders", "last": 2})
    assert ack["channels"]["orders"] == {"seq": 5, "epoch": messages[0].epoch}
    live = await backend.broadcast("orders", "e", 5)
    await ws.wait_texts(4)
    assert events(ws) == [wire(messages[3]), wire(messages[4]), wire(live)]


# -- bad requests --------------------------------------------------------------------


async def test_bad_requests_get_error_frames_and_the_connection_stays_usable(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    ws.send_text("not json")
    ws.request({"subscribe": ["a b"], "id": 7})
    ws.request({"frobnicate": ["orders"], "id": "x"})
    ws.request({"subscribe": "orders", "id": 9})
    ws.request({"subscribe": [{"channel": "orders", "last": 2, "since": 1}], "id": 10})
    errors = await ws.wait_texts(5)
    assert [(e["type"], e["id"], e["code"]) for e in errors] == [
        ("error", None, "invalid_json"),
        ("error", 7, "invalid_channel"),
        ("error", "x", "unknown_request"),
        ("error", 9, "invalid_request"),
        ("error", 10, "invalid_request"),
    ]
    assert errors[1]["message"] == (
        "invalid channel name 'a b': a channel name is 1 to 128 characters, "
        "each an ASCII letter, a digit or one of _ - . :"
    )
    assert all(set(error) == {"type", "id", "code", "message"} for error in errors)
    assert backend.get_subscriber_count("orders") == 0
    assert not ws.task.done()
    ack = await ws.subscribe("orders", id=11)
    assert ack["type"] == "ack"
    message = await backend.broadcast("orders", "e")
    await ws.wait_texts(7)
    assert events(ws) == [wire(message)]


async def test_a_request_with_one_bad_channel_subscribes_none_of_its_channels(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    error = await ws.subscribe("orders", "users", "not valid!", id=4)
    assert (error["type"], error["id"], error["code"]) == ("error", 4, "invalid_channel")
    assert (backend.get_subscriber_count("orders"), backend.get_subscriber_count("users")) == (0, 0)


async def test_a_bad_request_does_not_affect_other_connections(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    bad, good = await connect(), await connect()
    await bad.subscribe("orders")
    await good.subscribe("orders")
    bad.send_text("{")
    bad.request({"subscribe": [""], "id": 2})
    await bad.wait_texts(3)
    message = await backend.broadcast("orders", "e")
    await good.wait_texts(2)
    await bad.wait_texts(4)
    assert good.texts()[1:] == [wire(message)]
    assert bad.texts()[3] == wire(message)  # errors leave the connection's subscriptions alone
    assert backend.get_subscriber_count("orders") == 2


async def test_a_binary_frame_closes_only_that_connection_with_1003(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    binary, other = await connect(), await connect()
    for ws in (binary, other):
        await ws.subscribe("orders")
    binary.send_bytes(b'{"subscribe": ["users"]}')
    await binary.closed()
    assert binary.close_code() == CloseCode.UNSUPPORTED_DATA
    assert backend.get_subscriber_count("orders") == 1
    message = await backend.broadcast("orders", "e")
    await other.wait_texts(2)
    assert events(other) == [wire(message)]


async def test_broadcast_refuses_an_invalid_channel_event_or_payload_and_publishes_nothing(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    await ws.subscribe("orders")
    with pytest.raises(InvalidChannel):
        await backend.broadcast("not valid", "e")
    with pytest.raises(InvalidChannel):
        await backend.broadcast("orders.*", "e")
    with pytest.raises(InvalidEvent):
        await backend.broadcast("orders", "")
    with pytest.raises(InvalidPayload):
        await backend.broadcast("orders", "e", {"not json": {1, 2}})
    message = await backend.broadcast("orders", "e")
    assert message.seq == 1
    await ws.wait_texts(2)
    assert events(ws) == [wire(message)]


async def test_the_limits_given_to_the_backend_apply_to_broadcasts_and_connections(connect: Connect) -> None:
    backend = make_backend(limits=Limits(max_payload_bytes=32, max_frame_bytes=256, max_subscriptions=2))
    router = backend.get_router()
    async with AsgiLifespan(router):
        ws, other = await connect(router), await connect(router)
        with pytest.raises(InvalidPayload):
            await backend.broadcast("orders", "e", "x" * 40)
        error = await ws.subscribe("a", "b", "c", id=1)
        assert (error["code"], error["id"]) == ("too_many_channels", 1)
        await ws.subscribe("a", "b", id=2)
        error = await ws.subscribe("c", id=3)
        assert (error["code"], error["id"]) == ("too_many_subscriptions", 3)
        ws.send_text('{"subscribe": ["' + "x" * 300 + '"]}')
        await ws.closed()
        assert ws.close_code() == CloseCode.MESSAGE_TOO_BIG
        assert not other.task.done()
        other.disconnect()
        await other.closed()


async def test_a_client_that_stops_reading_is_closed_with_4008_and_recovers_when_it_comes_back(
    connect: Connect,
) -> None:
    backend = make_backend(limits=Limits(send_buffer_messages=3))
    router = backend.get_router()
    async with AsgiLifespan(router):
        slow, reader = await connect(router), await connect(router)
        for ws in (slow, reader):
            await ws.subscribe("orders")
        slow.stop_reading()
        messages = []
        for n in range(5):
            messages.append(await backend.broadcast("orders", "e", n))
            await reader.wait_texts(n + 2)  # the reader keeps up; the slow client's frames pile up
        await slow.closed()
        assert slow.close_code() == CloseCode.SLOW_CONSUMER
        assert events(slow) == []
        assert backend.get_subscriber_count("orders") == 1
        await reader.wait_texts(6)
        assert events(reader) == [wire(m) for m in messages]
        back = await connect(router)
        ack = await back.subscribe({"channel": "orders", "since": 0, "epoch": messages[0].epoch})
        assert ack["channels"]["orders"]["recovered"] is True
        await back.wait_texts(6)
        assert events(back) == [wire(m) for m in messages]
        for ws in (reader, back):
            ws.disconnect()
            await ws.closed()


# -- lifecycle -----------------------------------------------------------------------


async def test_the_routers_lifespan_starts_the_backend_and_stops_it() -> None:
    backend = make_backend()
    router = backend.get_router()
    assert not backend.hub.started
    async with AsgiLifespan(router) as lifespan:
        assert backend.hub.started
        assert [m["type"] for m in lifespan.sent] == ["lifespan.startup.complete"]
    assert not backend.hub.started
    assert [m["type"] for m in lifespan.sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_an_app_that_includes_the_router_serves_it_and_starts_and_stops_the_backend() -> None:
    app = FastAPI()
    backend = make_backend()
    app.include_router(backend.get_router())
    app.state.broadcast = backend
    async with AsgiLifespan(app):
        assert backend.hub.started
        ws = AsgiWebSocket(app)
        await ws.wait_accepted()
        await ws.subscribe("orders")
        assert backend.get_subscriber_count("orders") == 1
        message = await app.state.broadcast.broadcast("orders", "created", {"entity_id": "123"})
        await ws.wait_texts(2)
        assert events(ws) == [wire(message)]
        ws.disconnect()
        await ws.closed()
        assert backend.get_subscriber_count("orders") == 0
    assert not backend.hub.started


class BroadcastRequest(BaseModel):
    """The body of the seed's ``POST /test/broadcast``."""

    channel: str
    event: str
    payload: dict[str, Any]


def seed_test_server() -> FastAPI:
    """The seed's ``test_server.py``, with the in-memory backend of these tests."""
    app = FastAPI(title="Broadcast Test Server")
    broadcast = make_backend()
    app.include_router(broadcast.get_router())

    @app.post("/test/broadcast")
    async def trigger_broadcast(request: BroadcastRequest) -> dict[str, str]:
        await broadcast.broadcast(channel=request.channel, event_type=request.event, payload=request.payload)
        return {"status": "broadcasted"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_the_seeds_test_server_broadcasts_what_is_posted_to_its_http_endpoint() -> None:
    # Served through ASGI in memory (httpx's ASGITransport: no socket).
    app = seed_test_server()
    async with (
        AsgiLifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        assert (await http.get("/health")).json() == {"status": "ok"}
        ws = AsgiWebSocket(app)
        await ws.wait_accepted()
        await ws.subscribe("integration-test")
        body = {"channel": "integration-test", "event": "test_event", "payload": {"message": "hello"}}
        response = await http.post("/test/broadcast", json=body)
        assert (response.status_code, response.json()) == (200, {"status": "broadcasted"})
        await ws.wait_texts(2)
        (event,) = events(ws)
        assert (event["channel"], event["event"], event["seq"]) == ("integration-test", "test_event", 1)
        assert event["payload"] == {"message": "hello"}
        ws.disconnect()
        await ws.closed()


async def test_broadcast_works_before_the_app_starts_and_reaches_nobody(backend: WebSocketBroadcastBackend) -> None:
    # The seed's Redis bridge broadcasts on a WebSocketBroadcastBackend that no app serves.
    message = await backend.broadcast(channel="orders", event_type="created", payload={"entity_id": "123"})
    assert (message.seq, message.payload) == (1, {"entity_id": "123"})
    assert backend.get_subscriber_count("orders") == 0


async def test_the_backend_is_itself_an_asgi_app_serving_any_path() -> None:
    backend = make_backend()
    ws = AsgiWebSocket(backend, path="/anywhere")
    await ws.wait_accepted()
    await ws.subscribe("orders")
    message = await backend.broadcast("orders", "e")
    await ws.wait_texts(2)
    assert events(ws) == [wire(message)]
    ws.disconnect()
    await ws.closed()
    await backend.close()
    assert not backend.hub.started


async def test_the_router_serves_the_path_it_was_given_and_no_other(connect: Connect) -> None:
    backend = make_backend(path="/live")
    router = backend.get_router()
    async with AsgiLifespan(router):
        elsewhere = AsgiWebSocket(router)  # at /ws/broadcast
        await elsewhere.closed()
        assert [m["type"] for m in elsewhere.sent] == ["websocket.close"]
        ws = await connect(router, path="/live")
        await ws.subscribe("orders")
        assert backend.get_subscriber_count("orders") == 1
        ws.disconnect()
        await ws.closed()


async def test_the_connection_selects_the_v1_subprotocol_when_the_client_offers_it(connect: Connect) -> None:
    offering, silent = await connect(subprotocols=("broadcast.v1",)), await connect()
    assert offering.sent[0] == {"type": "websocket.accept", "subprotocol": "broadcast.v1"}
    assert silent.sent[0] == {"type": "websocket.accept", "subprotocol": None}


async def test_close_stops_the_backend_and_a_later_broadcast_starts_it_again(
    backend: WebSocketBroadcastBackend,
) -> None:
    first = await backend.broadcast("orders", "e")
    assert backend.hub.started
    await backend.close()
    assert not backend.hub.started
    second = await backend.broadcast("orders", "e")
    assert (second.seq, second.epoch) == (2, first.epoch)  # the in-memory positions live in the backend


def test_an_in_memory_app_run_again_on_a_new_event_loop_keeps_its_hub_and_positions() -> None:
    # Two TestClient blocks run the app on two event loops, one after the other.
    backend = make_backend()
    router = backend.get_router()
    hubs: list[Hub] = []
    acks: list[dict[str, Any]] = []

    async def serve_once(since: dict[str, Any]) -> None:
        async with AsgiLifespan(router):
            ws = AsgiWebSocket(router)
            await ws.wait_accepted()
            acks.append(await ws.subscribe({"channel": "orders", **since}))
            await backend.broadcast("orders", "e", len(hubs))
            await ws.wait_texts(2)
            ws.disconnect()
            await ws.closed()
        hubs.append(backend.hub)

    with asyncio.Runner() as runner:
        runner.run(serve_once({}))
    epoch = acks[0]["channels"]["orders"]["epoch"]
    with asyncio.Runner() as runner:
        runner.run(serve_once({"since": 0, "epoch": epoch}))
    assert hubs[0] is hubs[1]
    assert acks[1]["channels"]["orders"] == {"seq": 1, "epoch": epoch, "recovered": True}


class SharedMemoryBackend(MemoryBackend):
    """An in-memory backend that says it is shared, as a Redis backend is (its connections belong to a loop)."""

    @property
    def shared(self) -> bool:
        return True


def test_an_app_run_again_on_a_new_event_loop_gets_a_fresh_backend_when_it_is_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[tuple[str | None, str | None, SharedMemoryBackend]] = []

    def create_backend(url: str | None, *, prefix: str | None = None, options: Any = None) -> SharedMemoryBackend:
        made.append((url, prefix, SharedMemoryBackend(options, clock=lambda: NOW)))
        return made[-1][2]

    monkeypatch.setattr(router_module, "create_backend", create_backend)
    backend = WebSocketBroadcastBackend("redis://cache:6379/0", prefix="app")
    router = backend.get_router()
    served: list[tuple[Any, dict[str, Any]]] = []

    async def serve_once() -> None:
        async with AsgiLifespan(router):
            ws = AsgiWebSocket(router)
            await ws.wait_accepted()
            await ws.subscribe("orders")
            message = await backend.broadcast("orders", "e")
            await ws.wait_texts(2)
            served.append((backend.hub, events(ws)[0]))
            assert events(ws) == [wire(message)]
            ws.disconnect()
            await ws.closed()

    for _ in range(2):
        with asyncio.Runner() as runner:
            runner.run(serve_once())
    assert [(url, prefix) for url, prefix, _ in made] == [("redis://cache:6379/0", "app")] * 2
    (first_hub, _), (second_hub, _) = served
    assert first_hub is not second_hub
    assert (first_hub.backend, second_hub.backend) == (made[0][2], made[1][2])


# -- calls from another thread or event loop (as from the seed's TestClient tests) ---------


async def test_a_subscribe_sent_just_before_counting_from_another_thread_is_counted(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    first, second = await connect(), await connect()
    first.request({"subscribe": ["orders"]})
    assert await asyncio.to_thread(backend.get_subscriber_count, "orders") == 1
    second.request({"subscribe": ["orders"]})
    assert await asyncio.to_thread(backend.get_subscriber_count, "orders") == 2
    first.request({"unsubscribe": ["orders"]})
    assert await asyncio.to_thread(backend.get_subscriber_count, "orders") == 1
    assert first.texts() == second.texts() == []  # no id, no ack: the count did not wait for one


async def test_a_broadcast_from_another_event_loop_runs_after_the_subscribe_sent_before_it(
    backend: WebSocketBroadcastBackend, connect: Connect
) -> None:
    ws = await connect()
    ws.request({"subscribe": ["orders"]})

    def broadcast_from_another_loop() -> Message:
        return asyncio.run(backend.broadcast("orders", "created", {"entity_id": "123"}))

    message = await asyncio.to_thread(broadcast_from_another_loop)
    assert message.seq == 1
    assert await ws.wait_texts(1) == [wire(message)]


class HeldSubscribe(MemoryBackend):
    """An in-memory backend whose subscribe waits until the test releases it, as a Redis round trip may."""

    def __init__(self) -> None:
        super().__init__(HistoryOptions(size=10), clock=lambda: NOW)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        self.entered.set()
        await self.release.wait()
        await super().subscribe(channel)


async def test_counting_from_another_thread_waits_for_a_subscribe_still_waiting_on_the_backend(
    connect: Connect,
) -> None:
    held = HeldSubscribe()
    backend = WebSocketBroadcastBackend(held)
    router = backend.get_router()
    async with AsgiLifespan(router):
        ws = await connect(router)
        ws.request({"subscribe": ["orders"]})
        counting = asyncio.ensure_future(asyncio.to_thread(backend.get_subscriber_count, "orders"))
        await wait_for(held.entered.wait())
        # The count must be waiting for the request to be handled (not answering 0) before it is released.
        await wait_until(lambda: counting.done() or bool(backend._endpoint._idle_waiters), what="the count to wait")
        held.release.set()
        assert await wait_for(counting) == 1
        ws.disconnect()
        await ws.closed()
