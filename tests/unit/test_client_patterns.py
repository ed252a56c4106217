"""The client's subscription table with ``last`` replays and pattern subscriptions (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from broadcast_cli.client.subscriptions import AckReceived, ErrorReceived, EventReceived, SubscriptionTable
from broadcast_cli.exceptions import InvalidChannel, InvalidRequest
from tests.unit.test_client_subscriptions import ack, error, event, noop, request_data


def opened() -> SubscriptionTable:
    table = SubscriptionTable()
    table.connection_opened()
    return table


def deliver(table: SubscriptionTable, frame: bytes) -> EventReceived:
    outcome = table.receive(frame)
    assert isinstance(outcome, EventReceived)
    return outcome


# -- last ----------------------------------------------------------------------


def test_last_asks_for_a_replay_and_delivers_it_after_the_ack() -> None:
    table = opened()
    entry, request = table.add("orders", noop, last=3)
    assert request is not None
    assert request_data(request) == {"subscribe": [{"channel": "orders", "last": 3}], "id": request.id}
    outcome = table.receive(ack(request.id, {"orders": {"seq": 10, "epoch": "e1"}}))
    assert isinstance(outcome, AckReceived) and outcome.ready == (entry,) and outcome.unrecovered == ()
    # The replay has seqs up to the ack's; then the live events follow.
    assert [deliver(table, event("orders", seq)).deliver for seq in (8, 9, 10, 11)] == [(entry,)] * 4
    assert table.position("orders") is not None and table.position("orders").seq == 11  # type: ignore[union-attr]
    assert deliver(table, event("orders", 11)).duplicate


def test_last_with_fewer_messages_in_history_is_no_loss() -> None:
    table = opened()
    _, request = table.add("orders", noop, last=100, on_unrecovered=lambda info: pytest.fail(f"reported {info}"))
    assert request is not None
    table.receive(ack(request.id, {"orders": {"seq": 200, "epoch": "e1"}}))
    outcome = deliver(table, event("orders", 150))  # history only held 150…200
    assert outcome.deliver and outcome.unrecovered is None


def test_a_reconnect_before_any_event_asks_for_the_replay_again_and_after_one_recovers() -> None:
    table = opened()
    _, request = table.add("orders", noop, last=5)
    assert request is not None
    table.receive(ack(request.id, {"orders": {"seq": 10, "epoch": "e1"}}))
    table.connection_lost()
    request = table.connection_opened()
    assert request_data(request)["subscribe"] == [{"channel": "orders", "last": 5}]
    assert request is not None
    table.receive(ack(request.id, {"orders": {"seq": 10, "epoch": "e1"}}))
    deliver(table, event("orders", 6))
    table.connection_lost()
    assert request_data(table.connection_opened())["subscribe"] == [{"channel": "orders", "since": 6, "epoch": "e1"}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"last": 0}, '"last" must be an integer from 1 to 10000'),
        ({"last": 10_001}, '"last" must be an integer from 1 to 10000'),
        ({"last": True}, '"last" must be an integer'),
        ({"last": 2, "since": 4}, '"since" and "last" exclude each other'),
    ],
)
def test_bad_last_values_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        SubscriptionTable().add("orders", noop, **kwargs)


# -- patterns ------------------------------------------------------------------


def test_a_pattern_is_subscribed_by_name_and_gets_every_matching_channel() -> None:
    table = opened()
    entry, request = table.add("orders.*", noop)
    assert request is not None
    assert request_data(request) == {"subscribe": ["orders.*"], "id": request.id}
    assert deliver(table, event("orders.eu", 1)).deliver == ()  # not acked yet
    outcome = table.receive(ack(request.id, {"orders.*": {"pattern": True}}))
    assert isinstance(outcome, AckReceived) and outcome.ready == (entry,)
    assert entry.position is None
    assert deliver(table, event("orders.eu", 2)).deliver == (entry,)
    assert deliver(table, event("orders.us.east", 7)).deliver == (entry,)
    assert deliver(table, event("orders", 1)).deliver == ()
    assert deliver(table, event("users.orders.x", 1)).deliver == ()
    assert table.position("orders.eu") is None  # no position per pattern


def test_patterns_keep_no_position_so_repeats_and_gaps_pass_through() -> None:
    table = opened()
    entry, request = table.add("*", noop, on_unrecovered=lambda info: pytest.fail(f"reported {info}"))
    assert request is not None
    table.receive(ack(request.id, {"*": {"pattern": True}}))
    for seq in (5, 9, 9, 1):
        outcome = deliver(table, event("any", seq))
        assert outcome.deliver == (entry,) and outcome.unrecovered is None


def test_a_channel_and_a_matching_pattern_both_get_the_event_and_duplicates_drop_for_both() -> None:
    table = opened()
    channel_entry, first = table.add("orders.eu", noop)
    pattern_entry, second = table.add("orders.*", noop)
    assert first is not None and second is not None
    table.receive(ack(first.id, {"orders.eu": {"seq": 0, "epoch": "e1"}}))
    table.receive(ack(second.id, {"orders.*": {"pattern": True}}))
    assert deliver(table, event("orders.eu", 1)).deliver == (channel_entry, pattern_entry)
    assert deliver(table, event("orders.eu", 1)).deliver == ()
    assert deliver(table, event("orders.us", 4)).deliver == (pattern_entry,)


def test_patterns_are_resubscribed_as_they_are_and_unsubscribed_by_name() -> None:
    table = opened()
    entry, request = table.add("orders.*", noop)
    _, other = table.add("users", noop)
    assert request is not None and other is not None
    table.receive(ack(request.id, {"orders.*": {"pattern": True}}))
    table.receive(ack(other.id, {"users": {"seq": 3, "epoch": "e1"}}))
    table.connection_lost()
    again = table.connection_opened()
    assert request_data(again)["subscribe"] == ["orders.*", {"channel": "users", "since": 3, "epoch": "e1"}]
    assert again is not None
    table.receive(ack(again.id, {"orders.*": {"pattern": True}, "users": {"seq": 3, "epoch": "e1", "recovered": True}}))
    unsubscribe = table.remove(entry)
    assert request_data(unsubscribe) == {"unsubscribe": ["orders.*"], "id": unsubscribe.id}  # type: ignore[union-attr]
    assert deliver(table, event("orders.eu", 1)).deliver == ()
    assert table.channels() == ["users"]


def test_a_refused_pattern_is_dropped() -> None:
    table = opened()
    entry, request = table.add("a.*", noop)
    assert request is not None
    outcome = table.receive(error(request.id, "too_many_patterns", "at most 32"))
    assert isinstance(outcome, ErrorReceived) and outcome.failed == (entry,)
    assert entry.error is not None and entry.error.code == "too_many_patterns"
    assert deliver(table, event("a.b", 1)).deliver == ()
    assert table.channels() == []


@pytest.mark.parametrize(
    ("kwargs", "exception"),
    [({"since": 1}, InvalidRequest), ({"last": 1}, InvalidRequest), ({"since": 1, "epoch": "e"}, InvalidRequest)],
)
def test_patterns_refuse_positions(kwargs: dict[str, Any], exception: type[Exception]) -> None:
    with pytest.raises(exception, match="is a pattern"):
        SubscriptionTable().add("orders.*", noop, **kwargs)


def test_bad_patterns_are_refused() -> None:
    with pytest.raises(InvalidChannel, match="invalid pattern"):
        SubscriptionTable().add("orders *", noop)


def test_the_close_timeout_must_be_positive() -> None:
    from broadcast_cli.client import BroadcastClient
    from broadcast_cli.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="close_timeout"):
        BroadcastClient("ws://localhost:1/ws/broadcast", close_timeout=0)
