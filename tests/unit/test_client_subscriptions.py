"""The client without sockets: its subscription table, its retry decision, and its loop on a fake connection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    NegotiationError,
)
from websockets.frames import Close
from websockets.http11 import Response

import broadcast_cli.client.client as client_module
from broadcast_cli.client import BroadcastClient, ClientState, RecoveryInfo, Subscription
from broadcast_cli.client.client import is_retryable
from broadcast_cli.client.subscriptions import (
    AckReceived,
    ErrorReceived,
    EventReceived,
    FrameIgnored,
    HandlerEntry,
    OutgoingRequest,
    RecoveryReason,
    SubscriptionTable,
)
from broadcast_cli.exceptions import (
    ClientClosed,
    ClientError,
    ConfigurationError,
    ConnectError,
    InvalidChannel,
    InvalidRequest,
    ServerError,
)
from broadcast_cli.message import Message, Position
from broadcast_cli.protocol import CloseCode
from tests.conftest import wait_until

# -- helpers -------------------------------------------------------------------


def noop(message: Message) -> None:
    """A handler that does nothing."""


def event(channel: str, seq: int, epoch: object = "e1", **extra: Any) -> bytes:
    """An event frame as the server sends it."""
    data = {"channel": channel, "event": "changed", "payload": {"n": seq}, "seq": seq, "epoch": epoch}
    data |= {"id": f"m{seq}", "ts": 1_764_000_000_000} | extra
    return orjson.dumps(data)


def ack(request_id: int, channels: dict[str, dict[str, Any]] | None = None) -> bytes:
    """An ack frame; *channels* maps each channel to its ``seq``/``epoch``/``recovered``."""
    data: dict[str, Any] = {"type": "ack", "id": request_id}
    if channels is not None:
        data["channels"] = channels
    return orjson.dumps(data)


def error(request_id: object, code: str = "too_many_subscriptions", message: str = "no more") -> bytes:
    return orjson.dumps({"type": "error", "id": request_id, "code": code, "message": message})


def request_data(request: OutgoingRequest | None) -> dict[str, Any]:
    assert request is not None
    data: dict[str, Any] = orjson.loads(request.frame)
    return data


def open_table(*channels: str) -> tuple[SubscriptionTable, dict[str, HandlerEntry]]:
    """A table on an open connection with *channels* subscribed and acked at seq 0 of epoch e1."""
    table = SubscriptionTable()
    table.connection_opened()
    entries: dict[str, HandlerEntry] = {}
    for channel in channels:
        entry, request = table.add(channel, noop, on_unrecovered=lambda info: None)
        assert request is not None
        outcome = table.receive(ack(request.id, {channel: {"seq": 0, "epoch": "e1"}}))
        assert isinstance(outcome, AckReceived)
        entries[channel] = entry
    return table, entries


def delivered_seqs(table: SubscriptionTable, *frames: bytes) -> list[int]:
    seqs = []
    for frame in frames:
        outcome = table.receive(frame)
        assert isinstance(outcome, EventReceived)
        if outcome.deliver:
            seqs.append(outcome.message.seq)
    return seqs


# -- the subscription table: requests -----------------------------------------


def test_request_ids_count_up_and_are_never_reused() -> None:
    table = SubscriptionTable()
    assert [table.next_id() for _ in range(3)] == [1, 2, 3]
    table.connection_opened()
    _, request = table.add("a", noop)
    assert request is not None
    assert request.id == 4


def test_subscribing_while_disconnected_sends_nothing_until_a_connection_opens() -> None:
    table = SubscriptionTable()
    entry, request = table.add("orders", noop)
    assert request is None
    assert not entry.ready
    assert table.channels() == ["orders"]


def test_the_first_handler_of_a_channel_sends_a_subscribe_with_an_id() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    _, request = table.add("orders", noop)
    assert request is not None
    assert request.kind == "subscribe"
    assert request.channels == ("orders",)
    assert request_data(request) == {"subscribe": ["orders"], "id": request.id}
    assert table.is_pending(request.id)


def test_a_subscribe_with_since_and_epoch_asks_the_server_to_recover() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    _, request = table.add("orders", noop, since=41, epoch="e1")
    assert request_data(request)["subscribe"] == [{"channel": "orders", "since": 41, "epoch": "e1"}]
    _, request = table.add("users", noop, since=0)
    assert request_data(request)["subscribe"] == [{"channel": "users", "since": 0}]


def test_a_further_handler_joins_the_channel_without_a_request() -> None:
    table, _ = open_table("orders")
    entry, request = table.add("orders", noop)
    assert request is None
    assert entry.ready
    assert entry.position == Position(0, "e1")


def test_a_further_handler_before_the_ack_becomes_ready_with_the_ack() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    first, request = table.add("orders", noop)
    second, again = table.add("orders", noop)
    assert request is not None
    assert again is None
    outcome = table.receive(ack(request.id, {"orders": {"seq": 3, "epoch": "e1"}}))
    assert isinstance(outcome, AckReceived)
    assert outcome.ready == (first, second)
    assert second.ready
    assert second.position == Position(3, "e1")


def test_the_resubscribe_after_a_reconnect_is_one_request_with_every_channel_from_its_last_position() -> None:
    table, _ = open_table("orders", "users")
    table.add("fresh", noop)  # its subscribe is pending: no position yet
    table.add("resume", noop, since=7, epoch="e0")  # also pending, with a requested position
    assert delivered_seqs(table, event("orders", 1), event("orders", 2), event("users", 1)) == [1, 2, 1]
    table.connection_lost()
    request = table.connection_opened()
    assert request is not None
    assert request.channels == ("orders", "users", "fresh", "resume")
    assert request_data(request) == {
        "subscribe": [
            {"channel": "orders", "since": 2, "epoch": "e1"},
            {"channel": "users", "since": 1, "epoch": "e1"},
            "fresh",
            {"channel": "resume", "since": 7, "epoch": "e0"},
        ],
        "id": request.id,
    }


def test_no_resubscribe_without_subscriptions() -> None:
    table = SubscriptionTable()
    assert table.connection_opened() is None


def test_a_lost_connection_returns_the_unanswered_requests_and_clears_readiness() -> None:
    table, entries = open_table("orders")
    _, pending = table.add("users", noop)
    assert pending is not None
    assert table.connection_lost() == [pending]
    assert not table.is_open
    assert table.pending() == []
    assert not entries["orders"].ready
    assert entries["orders"].position == Position(0, "e1")  # the last ack is kept
    assert table.receive(ack(pending.id, {"users": {"seq": 0, "epoch": "e1"}})) == FrameIgnored(
        "an ack for no pending request (id 2)"
    )


def test_removing_the_last_handler_sends_an_unsubscribe() -> None:
    table, entries = open_table("orders")
    other, _ = table.add("orders", noop)
    assert table.remove(entries["orders"]) is None
    request = table.remove(other)
    assert request is not None
    assert request.kind == "unsubscribe"
    assert request_data(request) == {"unsubscribe": ["orders"], "id": request.id}
    assert table.channels() == []
    assert isinstance(table.receive(ack(request.id)), AckReceived)
    assert not table.pending()


def test_removing_is_idempotent_and_sends_nothing_while_disconnected() -> None:
    table, entries = open_table("orders")
    table.connection_lost()
    assert table.remove(entries["orders"]) is None
    assert table.remove(entries["orders"]) is None
    assert not entries["orders"].active
    assert table.connection_opened() is None


def test_an_unsubscribe_before_the_subscribe_ack_still_unsubscribes_and_the_late_ack_is_ignored() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, subscribe = table.add("orders", noop)
    unsubscribe = table.remove(entry)
    assert subscribe is not None
    assert unsubscribe is not None
    assert unsubscribe.kind == "unsubscribe"
    outcome = table.receive(ack(subscribe.id, {"orders": {"seq": 5, "epoch": "e1"}}))
    assert outcome == AckReceived(subscribe)
    assert not entry.ready


def subscribed_again(channel: str) -> tuple[SubscriptionTable, OutgoingRequest, HandlerEntry, OutgoingRequest]:
    """A table where *channel* was subscribed, left and subscribed again before any answer.

    Returns the table, the first subscribe request, the new entry and its subscribe request.
    """
    table = SubscriptionTable()
    table.connection_opened()
    old, first = table.add(channel, noop)
    table.remove(old)
    new, second = table.add(channel, noop)
    assert first is not None
    assert second is not None
    return table, first, new, second


def test_a_stale_ack_does_not_touch_a_channel_subscribed_again() -> None:
    table, first, new, second = subscribed_again("orders")
    assert table.receive(ack(first.id, {"orders": {"seq": 5, "epoch": "e1"}})) == AckReceived(first)
    assert not new.ready
    # events of the old subscription, before the new one's ack, are not delivered
    assert delivered_seqs(table, event("orders", 6)) == []
    table.receive(ack(second.id, {"orders": {"seq": 6, "epoch": "e1"}}))
    assert new.ready
    assert delivered_seqs(table, event("orders", 6), event("orders", 7)) == [7]


@pytest.mark.parametrize(
    ("kwargs", "exception"),
    [
        ({"since": -1}, InvalidRequest),
        ({"since": True}, InvalidRequest),
        ({"epoch": "e1"}, InvalidRequest),
        ({"since": 1, "epoch": ""}, InvalidRequest),
        ({"since": 1, "epoch": "x" * 65}, InvalidRequest),
    ],
)
def test_bad_recovery_positions_are_refused(kwargs: dict[str, Any], exception: type[Exception]) -> None:
    with pytest.raises(exception):
        SubscriptionTable().add("orders", noop, **kwargs)


def test_bad_channel_names_are_refused_before_anything_is_sent() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    with pytest.raises(InvalidChannel):
        table.add("bad channel", noop)
    assert table.channels() == []
    assert table.pending() == []


# -- the subscription table: acks and errors ----------------------------------


def test_an_ack_makes_the_subscription_ready_with_its_position() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, request = table.add("orders", noop)
    assert request is not None
    outcome = table.receive(ack(request.id, {"orders": {"seq": 42, "epoch": "e1"}}))
    assert outcome == AckReceived(request, (entry,), ())
    assert entry.ready
    assert entry.position == Position(42, "e1")
    assert entry.recovered is None
    assert table.position("orders") == Position(42, "e1")
    assert not table.is_pending(request.id)


def test_recovered_true_keeps_the_last_seen_seq_so_the_replay_is_delivered() -> None:
    table = SubscriptionTable()
    table.add("orders", noop, since=41, epoch="e1")
    request = table.connection_opened()
    assert request is not None
    outcome = table.receive(ack(request.id, {"orders": {"seq": 44, "epoch": "e1", "recovered": True}}))
    assert isinstance(outcome, AckReceived)
    assert outcome.unrecovered == ()
    assert outcome.ready[0].recovered is True
    assert outcome.ready[0].position == Position(44, "e1")
    assert table.position("orders") == Position(41, "e1")
    replay = [event("orders", seq) for seq in (42, 43, 44)]
    assert delivered_seqs(table, *replay, event("orders", 44), event("orders", 45)) == [42, 43, 44, 45]


def test_recovered_true_without_an_epoch_learns_the_epoch_from_the_ack() -> None:
    table = SubscriptionTable()
    table.add("orders", noop, since=2)
    request = table.connection_opened()
    assert request is not None
    table.receive(ack(request.id, {"orders": {"seq": 2, "epoch": "e9", "recovered": True}}))
    assert table.position("orders") == Position(2, "e9")


def test_recovered_false_reports_the_loss_and_continues_from_the_ack_position() -> None:
    table = SubscriptionTable()
    infos: list[RecoveryInfo] = []
    entry, _ = table.add("orders", noop, since=10, epoch="e1", on_unrecovered=infos.append)
    silent, _ = table.add("orders", noop)  # no on_unrecovered: not listed
    request = table.connection_opened()
    assert request is not None
    outcome = table.receive(ack(request.id, {"orders": {"seq": 3, "epoch": "e2", "recovered": False}}))
    assert isinstance(outcome, AckReceived)
    assert outcome.ready == (entry, silent)
    assert len(outcome.unrecovered) == 1
    loss = outcome.unrecovered[0]
    assert loss.info == RecoveryInfo("orders", Position(3, "e2"), RecoveryReason.NOT_RECOVERED, Position(10, "e1"))
    assert loss.entries == (entry,)
    assert entry.recovered is False
    assert table.position("orders") == Position(3, "e2")
    assert delivered_seqs(table, event("orders", 3, "e2"), event("orders", 4, "e2")) == [4]


def test_a_multi_channel_ack_updates_every_channel() -> None:
    table = SubscriptionTable()
    table.add("a", noop, since=1, epoch="e1")
    table.add("b", noop)
    request = table.connection_opened()
    assert request is not None
    outcome = table.receive(
        ack(request.id, {"a": {"seq": 5, "epoch": "e1", "recovered": True}, "b": {"seq": 9, "epoch": "e1"}})
    )
    assert isinstance(outcome, AckReceived)
    assert len(outcome.ready) == 2
    assert table.position("a") == Position(1, "e1")
    assert table.position("b") == Position(9, "e1")


def test_an_error_fails_the_subscription_and_drops_its_channel() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, request = table.add("orders", noop)
    assert request is not None
    outcome = table.receive(error(request.id))
    assert isinstance(outcome, ErrorReceived)
    assert outcome.request == request
    assert outcome.failed == (entry,)
    assert isinstance(entry.error, ServerError)
    assert entry.error.code == "too_many_subscriptions"
    assert entry.error.request_id == request.id
    assert not entry.active
    assert table.channels() == []
    assert table.remove(entry) is None


def test_an_error_that_names_no_pending_request_is_reported_without_a_request() -> None:
    table, _ = open_table("orders")
    outcome = table.receive(error(None, "invalid_json", "bad"))
    assert isinstance(outcome, ErrorReceived)
    assert outcome.request is None
    assert outcome.failed == ()
    assert outcome.error.code == "invalid_json"
    assert table.channels() == ["orders"]


def test_an_error_answering_an_unsubscribe_fails_no_subscription() -> None:
    table, entries = open_table("orders", "users")
    request = table.remove(entries["orders"])
    assert request is not None
    outcome = table.receive(error(request.id, "backend_unavailable"))
    assert isinstance(outcome, ErrorReceived)
    assert outcome.request == request
    assert outcome.failed == ()
    assert entries["users"].active


def test_an_ack_without_a_usable_position_still_makes_the_subscription_ready() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, request = table.add("orders", noop)
    assert request is not None
    table.receive(ack(request.id, {"orders": {"seq": "x"}}))
    assert entry.ready
    assert entry.position is None
    assert delivered_seqs(table, event("orders", 7), event("orders", 8)) == [7, 8]


def test_an_ack_whose_position_is_not_an_object_keeps_the_requested_position() -> None:
    table = SubscriptionTable()
    entry, _ = table.add("orders", noop, since=4, epoch="e1")
    request = table.connection_opened()
    assert request is not None
    outcome = table.receive(orjson.dumps({"type": "ack", "id": request.id, "channels": {"orders": 9}}))
    assert outcome == AckReceived(request, (entry,), ())
    assert entry.ready
    assert entry.position == Position(4, "e1")
    assert entry.recovered is None
    assert delivered_seqs(table, event("orders", 5)) == [5]


@pytest.mark.parametrize("channels", [None, [], "orders"])
def test_a_subscribe_ack_without_a_channels_object_still_makes_the_subscription_ready(channels: Any) -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, request = table.add("orders", noop)
    assert request is not None
    frame = {"type": "ack", "id": request.id} | ({} if channels is None else {"channels": channels})
    outcome = table.receive(orjson.dumps(frame))
    assert outcome == AckReceived(request, (entry,), ())
    assert entry.ready
    assert entry.position is None
    assert table.position("orders") is None


def test_a_late_error_for_a_subscribe_does_not_fail_the_channel_subscribed_again() -> None:
    table, first, new, second = subscribed_again("orders")
    outcome = table.receive(error(first.id, "backend_unavailable", "down"))
    assert isinstance(outcome, ErrorReceived)
    assert outcome.request == first
    assert outcome.failed == ()
    assert new.active
    assert new.error is None
    assert table.channels() == ["orders"]
    assert table.is_pending(second.id)


def test_a_late_error_for_a_subscribe_of_a_channel_since_left_fails_nothing() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    entry, subscribe = table.add("orders", noop)
    table.remove(entry)
    assert subscribe is not None
    outcome = table.receive(error(subscribe.id))
    assert isinstance(outcome, ErrorReceived)
    assert outcome.failed == ()
    assert entry.error is None
    assert table.channels() == []


def test_removing_an_entry_that_the_table_does_not_hold_changes_nothing() -> None:
    table, entries = open_table("orders")
    stranger, _ = SubscriptionTable().add("orders", noop)  # same channel, another table
    assert table.remove(stranger) is None
    assert table.get("orders") is not None
    assert table.channels() == ["orders"]
    assert entries["orders"].ready
    assert table.pending() == []


def test_get_returns_the_channel_state_and_whether_it_is_a_pattern() -> None:
    table, entries = open_table("orders", "users.*")
    orders, users = table.get("orders"), table.get("users.*")
    assert orders is not None
    assert users is not None
    assert orders.entries == [entries["orders"]]
    assert not orders.is_pattern
    assert users.is_pattern
    assert users.matcher is not None and users.matcher.fullmatch("users.42")
    assert table.get("payments") is None


# -- the subscription table: events --------------------------------------------


def test_events_are_delivered_to_every_handler_of_their_channel_in_order() -> None:
    table, entries = open_table("orders", "users")
    second, _ = table.add("orders", noop)
    outcome = table.receive(event("orders", 1))
    assert isinstance(outcome, EventReceived)
    assert outcome.deliver == (entries["orders"], second)
    assert outcome.unrecovered is None
    assert outcome.message.payload == {"n": 1}
    assert outcome.message.position == Position(1, "e1")


def test_duplicates_are_dropped() -> None:
    table, _ = open_table("orders")
    assert delivered_seqs(table, event("orders", 1), event("orders", 2), event("orders", 1), event("orders", 2)) == [
        1,
        2,
    ]
    outcome = table.receive(event("orders", 2))
    assert isinstance(outcome, EventReceived)
    assert outcome.duplicate
    assert outcome.deliver == ()


def test_a_seq_gap_is_reported_then_the_event_is_delivered_and_the_channel_continues() -> None:
    table, entries = open_table("orders")
    delivered_seqs(table, event("orders", 1))
    outcome = table.receive(event("orders", 4))
    assert isinstance(outcome, EventReceived)
    assert outcome.deliver == (entries["orders"],)
    assert outcome.unrecovered is not None
    assert outcome.unrecovered.info == RecoveryInfo("orders", Position(3, "e1"), RecoveryReason.GAP, Position(1, "e1"))
    assert outcome.unrecovered.entries == (entries["orders"],)
    assert delivered_seqs(table, event("orders", 3), event("orders", 5)) == [5]


def test_an_epoch_change_is_reported_even_when_the_seq_looks_older() -> None:
    table, _ = open_table("orders")
    delivered_seqs(table, event("orders", 1), event("orders", 2))
    outcome = table.receive(event("orders", 1, "e2"))
    assert isinstance(outcome, EventReceived)
    assert outcome.deliver
    assert outcome.unrecovered is not None
    assert outcome.unrecovered.info.reason is RecoveryReason.EPOCH_CHANGED
    assert outcome.unrecovered.info.position == Position(0, "e2")
    assert outcome.unrecovered.info.previous == Position(2, "e1")
    assert table.position("orders") == Position(1, "e2")
    assert delivered_seqs(table, event("orders", 1, "e2"), event("orders", 2, "e2")) == [2]


def test_events_before_the_ack_or_for_unknown_channels_are_dropped() -> None:
    table = SubscriptionTable()
    table.connection_opened()
    table.add("orders", noop)
    for frame in (event("orders", 1), event("nobody", 1)):
        outcome = table.receive(frame)
        assert isinstance(outcome, EventReceived)
        assert outcome.deliver == ()
        assert not outcome.duplicate


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"type": "hello"}', "unknown frame type"),
        (b'{"channel": "orders", "seq": 1}', "not an event frame"),
        (event("orders", 1, epoch=1), "seq must be an integer"),
        (b'{"type": "ack", "id": "1"}', "no pending request"),
    ],
)
def test_malformed_frames_are_ignored_with_a_reason(frame: bytes, reason: str) -> None:
    table, _ = open_table("orders")
    outcome = table.receive(frame)
    assert isinstance(outcome, FrameIgnored)
    assert reason in outcome.reason


def test_text_frames_are_accepted_too() -> None:
    table, _ = open_table("orders")
    outcome = table.receive(event("orders", 1).decode())
    assert isinstance(outcome, EventReceived)
    assert outcome.deliver
    assert outcome.message.frame == event("orders", 1)


# -- is_retryable ---------------------------------------------------------------


def closed(code: int | None) -> ConnectionClosed:
    return ConnectionClosed(None if code is None else Close(code, "bye"), None)


def status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "status", Headers()))


def message_error(cause: BaseException | None) -> InvalidMessage:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(), True),
        (OSError("network unreachable"), True),
        (TimeoutError(), True),
        (EOFError(), True),
        (closed(None), True),
        (closed(1000), True),
        (closed(1001), True),
        (closed(1011), True),
        (closed(1012), True),
        (closed(4008), True),
        (closed(1003), False),
        (closed(1008), False),
        (closed(4500), False),
        (closed(4999), False),
        (status(500), True),
        (status(502), True),
        (status(503), True),
        (status(429), True),
        (status(403), False),
        (status(404), False),
        (message_error(EOFError()), True),
        (message_error(None), False),
        (InvalidURI("http://x", "not a ws URI"), False),
        (NegotiationError("no subprotocol"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert is_retryable(exc) is retry


# -- the client loop, on a fake connection ------------------------------------


class FakeTransport:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def abort(self) -> None:
        self.connection.drop(None)


class FakeConnection:
    """What the client uses of a websockets ``ClientConnection``, driven by the test."""

    def __init__(self, url: str, kwargs: dict[str, Any]) -> None:
        self.url = url
        self.kwargs = kwargs
        self.sent: list[dict[str, Any]] = []
        self.incoming: asyncio.Queue[bytes | ConnectionClosed] = asyncio.Queue()
        self.transport = FakeTransport(self)
        self.closed = False
        self._sent_event = asyncio.Event()

    async def recv(self) -> bytes:
        item = await self.incoming.get()
        if isinstance(item, ConnectionClosed):
            self.incoming.put_nowait(item)
            raise item
        return item

    async def send(self, frame: str) -> None:
        if self.closed:
            raise ConnectionClosed(None, None)
        self.sent.append(orjson.loads(frame))
        self._sent_event.set()

    async def close(self) -> None:
        self.drop(1000)

    def feed(self, frame: bytes) -> None:
        self.incoming.put_nowait(frame)

    def drop(self, code: int | None, reason: str = "") -> None:
        """End the connection: the server closes with *code*, or it drops (None)."""
        if not self.closed:
            self.closed = True
            self.incoming.put_nowait(ConnectionClosed(None if code is None else Close(code, reason), None))

    async def next_sent(self, count: int = 1) -> dict[str, Any]:
        """Wait until *count* frames were sent; return the last of them."""
        while len(self.sent) < count:
            self._sent_event.clear()
            await asyncio.wait_for(self._sent_event.wait(), 5)
        return self.sent[count - 1]


class FakeServer:
    """Replaces ``websockets.asyncio.client.connect``: each attempt pops the next scripted outcome."""

    def __init__(self) -> None:
        self.outcomes: list[BaseException | None] = []
        self.connections: list[FakeConnection] = []
        self.attempts: list[str] = []
        self._connected = asyncio.Event()

    def __call__(self, url: str, **kwargs: Any) -> Any:
        return self._connect(url, kwargs)

    async def _connect(self, url: str, kwargs: dict[str, Any]) -> FakeConnection:
        self.attempts.append(url)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        connection = FakeConnection(url, kwargs)
        self.connections.append(connection)
        self._connected.set()
        return connection

    async def connection(self, number: int) -> FakeConnection:
        """Wait for the *number*-th connection (from 1)."""
        while len(self.connections) < number:
            self._connected.clear()
            await asyncio.wait_for(self._connected.wait(), 5)
        return self.connections[number - 1]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()
    monkeypatch.setattr(client_module, "connect", fake)
    return fake


def make_client(urls: str | list[str] = "ws://a/ws/broadcast", **kwargs: Any) -> BroadcastClient:
    options: dict[str, Any] = {"backoff_initial": 0.001, "backoff_max": 0.002} | kwargs
    return BroadcastClient(urls, **options)


async def test_connect_subscribe_receive_reconnect_and_resubscribe(server: FakeServer) -> None:
    client = make_client(["ws://a/ws/broadcast", "ws://b/ws/broadcast"])
    states: list[ClientState] = []
    client.on_state_change(states.append)
    received: list[tuple[str, int]] = []

    async def async_handler(message: Message) -> None:
        received.append(("async", message.seq))

    early = client.subscribe("orders", lambda message: received.append(("sync", message.seq)))
    assert client.state is ClientState.DISCONNECTED
    await client.connect(timeout=5)
    assert states == [ClientState.CONNECTING, ClientState.CONNECTED]

    first = server.connections[0]
    assert first.kwargs["subprotocols"] == ["broadcast.v1"]
    assert await first.next_sent() == {"subscribe": ["orders"], "id": 1}
    late = client.subscribe("users", async_handler)
    assert await first.next_sent(2) == {"subscribe": ["users"], "id": 2}
    first.feed(ack(1, {"orders": {"seq": 0, "epoch": "e1"}}))
    first.feed(ack(2, {"users": {"seq": 5, "epoch": "e1"}}))
    await early.wait_ready(5)
    await late.wait_ready(5)
    assert late.position == Position(5, "e1")
    first.feed(event("orders", 1))
    first.feed(event("users", 6))
    first.feed(event("orders", 2))
    first.feed(event("orders", 2))  # a duplicate

    first.drop(1012, "restart")
    await client.wait_for_state(ClientState.RECONNECTING, 5)
    assert client.close_code == 1012
    assert client.close_reason == "restart"
    assert not early.ready
    second = await server.connection(2)
    assert second.url == "ws://b/ws/broadcast"  # rotated
    assert received == [("sync", 1), ("async", 6), ("sync", 2)]
    assert await second.next_sent() == {
        "subscribe": [
            {"channel": "orders", "since": 2, "epoch": "e1"},
            {"channel": "users", "since": 6, "epoch": "e1"},
        ],
        "id": 3,
    }
    second.feed(
        ack(
            3,
            {
                "orders": {"seq": 3, "epoch": "e1", "recovered": True},
                "users": {"seq": 6, "recovered": True, "epoch": "e1"},
            },
        )
    )
    second.feed(event("orders", 3))
    await early.wait_ready(5)
    assert early.recovered is True
    await client.wait_for_state(ClientState.CONNECTED, 5)
    assert states == [ClientState.CONNECTING, ClientState.CONNECTED, ClientState.RECONNECTING, ClientState.CONNECTED]

    early()
    assert await second.next_sent(2) == {"unsubscribe": ["orders"], "id": 4}
    second.feed(ack(4))
    second.feed(event("users", 7))
    await client.disconnect()
    assert client.state is ClientState.DISCONNECTED
    assert states[-1] is ClientState.DISCONNECTED
    assert len(states) == 5
    assert ("sync", 3) in received


async def test_closed_as_a_slow_consumer_it_reconnects_and_recovers_from_its_last_seq(server: FakeServer) -> None:
    # 4008: the server dropped what it had queued for this client. The frames that reached it before
    # the close are still read; then it resubscribes from the last of them, and history fills the gap.
    client = make_client()
    received: list[int] = []
    losses: list[RecoveryInfo] = []
    sub = client.subscribe("orders", lambda message: received.append(message.seq), on_unrecovered=losses.append)
    await client.connect(timeout=5)
    first = server.connections[0]
    assert await first.next_sent() == {"subscribe": ["orders"], "id": 1}
    first.feed(ack(1, {"orders": {"seq": 0, "epoch": "e1"}}))
    for seq in range(1, 4):
        first.feed(event("orders", seq))
    first.drop(CloseCode.SLOW_CONSUMER, "slow consumer: send buffer overflow")
    await client.wait_for_state(ClientState.RECONNECTING, 5)
    assert client.close_code == CloseCode.SLOW_CONSUMER
    second = await server.connection(2)
    assert await second.next_sent() == {"subscribe": [{"channel": "orders", "since": 3, "epoch": "e1"}], "id": 2}
    second.feed(ack(2, {"orders": {"seq": 9, "epoch": "e1", "recovered": True}}))
    for seq in range(4, 11):  # the replay (4…9), then a live event
        second.feed(event("orders", seq))
    await sub.wait_ready(5)
    await wait_until(lambda: len(received) == 10, 5, "the replay and the live event")
    assert received == list(range(1, 11))
    assert sub.recovered is True
    assert losses == []
    await client.disconnect()


async def test_state_callbacks_are_called_once_per_change_and_can_be_removed(server: FakeServer) -> None:
    seen: list[ClientState] = []
    kept: list[ClientState] = []

    def broken(state: ClientState) -> None:
        raise RuntimeError("a broken callback")

    client = make_client()
    remove = client.on_state_change(seen.append)
    client.on_state_change(broken)
    client.on_state_change(kept.append)
    await client.connect(timeout=5)
    remove()
    remove()  # idempotent
    await client.disconnect()
    assert seen == [ClientState.CONNECTING, ClientState.CONNECTED]
    assert kept == [ClientState.CONNECTING, ClientState.CONNECTED, ClientState.DISCONNECTED]


async def test_the_first_attempts_keep_connecting_and_rotate_urls(server: FakeServer) -> None:
    server.outcomes = [ConnectionRefusedError(111, "refused"), TimeoutError()]
    client = make_client(["ws://a/ws/broadcast", "ws://b/ws/broadcast"])
    states: list[ClientState] = []
    client.on_state_change(states.append)
    await client.connect(timeout=5)
    assert server.attempts == ["ws://a/ws/broadcast", "ws://b/ws/broadcast", "ws://a/ws/broadcast"]
    assert states == [ClientState.CONNECTING, ClientState.CONNECTED]
    assert isinstance(client.last_error, TimeoutError)
    await client.disconnect()


async def test_a_refused_handshake_stops_connect_with_connect_error(server: FakeServer) -> None:
    server.outcomes = [InvalidStatus(Response(403, "Forbidden", Headers()))]
    client = make_client()
    with pytest.raises(ConnectError, match="403"):
        await client.connect(timeout=5)
    assert client.state is ClientState.DISCONNECTED
    assert server.attempts == ["ws://a/ws/broadcast"]


async def test_connect_times_out_with_connect_error_and_stops(server: FakeServer) -> None:
    server.outcomes = [ConnectionRefusedError(111, "refused")] * 10_000
    client = make_client()
    with pytest.raises(ConnectError, match="within") as info:
        await client.connect(timeout=0.05)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert client.state is ClientState.DISCONNECTED
    attempts = len(server.attempts)
    await asyncio.sleep(0)  # the loop is stopped: no further attempt can start
    assert len(server.attempts) == attempts


async def test_a_terminal_close_code_stops_reconnecting_and_fails_waiters(server: FakeServer) -> None:
    client = make_client()
    sub = client.subscribe("orders", noop)
    await client.connect(timeout=5)
    connection = server.connections[0]
    await connection.next_sent()
    waiting = asyncio.ensure_future(client.wait_for_state(ClientState.RECONNECTING, 5))
    connection.drop(4500, "bad request")
    with pytest.raises(ConnectError, match="4500"):
        await waiting
    assert client.state is ClientState.DISCONNECTED
    assert client.close_code == 4500
    assert client.close_reason == "bad request"
    with pytest.raises(ConnectError):
        await sub.wait_ready(5)
    with pytest.raises(ConnectError):
        await client.wait_for_state(ClientState.CONNECTED, 5)
    await client.wait_for_state(ClientState.DISCONNECTED, 5)
    assert len(server.attempts) == 1
    # connect() may be called again: the subscription is sent anew
    await client.connect(timeout=5)
    assert await server.connections[1].next_sent() == {"subscribe": ["orders"], "id": 2}
    await client.disconnect()


async def test_a_refused_subscription_fails_wait_ready_with_server_error(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    await client.connect(timeout=5)
    sub = client.subscribe("orders", noop)
    connection = server.connections[0]
    request = await connection.next_sent()
    connection.feed(error(request["id"]))
    with pytest.raises(ServerError) as info, caplog.at_level(logging.ERROR, logger="broadcast_cli.client.client"):
        await sub.wait_ready(5)
    assert info.value.code == "too_many_subscriptions"
    assert sub.error is info.value
    assert not sub.active
    assert "too_many_subscriptions" in caplog.text
    assert client.subscriptions() == []
    await client.disconnect()


async def test_handler_errors_are_logged_and_delivery_goes_on(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    await client.connect(timeout=5)
    got: list[int] = []
    done = asyncio.Event()

    def broken(message: Message) -> None:
        raise RuntimeError(f"broken on {message.seq}")

    def keep(message: Message) -> None:
        got.append(message.seq)
        if message.seq == 2:
            done.set()

    client.subscribe("orders", broken)
    client.subscribe("orders", keep)
    connection = server.connections[0]
    request = await connection.next_sent()
    with caplog.at_level(logging.ERROR, logger="broadcast_cli.client.client"):
        connection.feed(ack(request["id"], {"orders": {"seq": 0, "epoch": "e1"}}))
        connection.feed(event("orders", 1))
        connection.feed(event("orders", 2))
        await asyncio.wait_for(done.wait(), 5)
    assert got == [1, 2]
    assert "broken on 1" in caplog.text
    assert client.state is ClientState.CONNECTED
    await client.disconnect()


async def test_on_unrecovered_is_called_for_recovered_false_and_gaps(server: FakeServer) -> None:
    infos: list[RecoveryInfo] = []
    got: list[int] = []
    done = asyncio.Event()

    async def on_unrecovered(info: RecoveryInfo) -> None:
        infos.append(info)

    def handler(message: Message) -> None:
        got.append(message.seq)
        if message.seq == 9:
            done.set()

    client = make_client()
    sub = client.subscribe("orders", handler, since=3, epoch="old", on_unrecovered=on_unrecovered)
    await client.connect(timeout=5)
    connection = server.connections[0]
    assert await connection.next_sent() == {"subscribe": [{"channel": "orders", "since": 3, "epoch": "old"}], "id": 1}
    connection.feed(ack(1, {"orders": {"seq": 5, "epoch": "new", "recovered": False}}))
    connection.feed(event("orders", 6, "new"))
    connection.feed(event("orders", 9, "new"))
    await asyncio.wait_for(done.wait(), 5)
    assert sub.recovered is False
    assert sub.position == Position(5, "new")
    assert sub.last_position == Position(9, "new")
    assert got == [6, 9]
    assert [(info.reason, info.position) for info in infos] == [
        (RecoveryReason.NOT_RECOVERED, Position(5, "new")),
        (RecoveryReason.GAP, Position(8, "new")),
    ]
    await client.disconnect()


async def test_an_unanswered_request_drops_the_connection_and_reconnects(server: FakeServer) -> None:
    client = make_client(request_timeout=0.01)
    sub = client.subscribe("orders", noop)
    await client.connect(timeout=5)
    second = await server.connection(2)  # the first never answered
    request = await second.next_sent()
    second.feed(ack(request["id"], {"orders": {"seq": 0, "epoch": "e1"}}))
    await sub.wait_ready(5)
    assert client.close_code == 1006
    await client.disconnect()


async def test_the_client_is_unusable_after_disconnect(server: FakeServer) -> None:
    states: list[ClientState] = []
    async with make_client() as client:
        client.on_state_change(states.append)
        sub = client.subscribe("orders", noop)
        assert client.state is ClientState.CONNECTED
    assert states == [ClientState.DISCONNECTED]
    assert server.connections[0].closed
    with pytest.raises(ClientClosed):
        client.subscribe("orders", noop)
    with pytest.raises(ClientClosed):
        await client.connect()
    with pytest.raises(ClientClosed):
        await sub.wait_ready(5)
    with pytest.raises(ClientClosed):
        await client.wait_for_state(ClientState.CONNECTED, 5)


async def test_wait_ready_refuses_an_unsubscribed_subscription_and_times_out(server: FakeServer) -> None:
    client = make_client()
    sub = client.subscribe("orders", noop)
    assert isinstance(sub, Subscription)
    with pytest.raises(TimeoutError):
        await sub.wait_ready(0)
    sub.unsubscribe()
    with pytest.raises(ClientError, match="unsubscribed"):
        await sub.wait_ready(5)
    assert client.subscriptions() == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], {}),
        ("http://a/ws", {}),
        (["ws://a", "tcp://b"], {}),
        ("ws://a", {"backoff_initial": 0}),
        ("ws://a", {"backoff_initial": 2.0, "backoff_max": 1.0}),
        ("ws://a", {"backoff_factor": 0.5}),
        ("ws://a", {"open_timeout": 0}),
    ],
)
def test_bad_options_are_refused(args: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        BroadcastClient(args, **kwargs)


def test_the_client_id_is_random_unless_given() -> None:
    assert BroadcastClient("ws://a").client_id != BroadcastClient("ws://a").client_id
    assert BroadcastClient("ws://a", client_id="tab-1").client_id == "tab-1"
    assert str(ClientState.CONNECTED) == "connected"
    assert ClientState("reconnecting") is ClientState.RECONNECTING


def test_the_package_exports_are_sorted() -> None:
    import broadcast_cli.client as package

    assert package.__all__ == sorted(package.__all__)
    assert {"BroadcastClient", "ClientState", "RecoveryInfo", "Subscription"} <= set(package.__all__)
