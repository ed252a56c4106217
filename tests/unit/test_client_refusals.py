"""What the client says when a server refuses it, and why a resume failed: pure functions, no sockets."""

from __future__ import annotations

import orjson
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from broadcast_cli.client.client import closed_for_good, handshake_failure
from broadcast_cli.client.stream import cannot_resume
from broadcast_cli.client.subscriptions import ResumeFailure, SubscriptionTable, resume_failure
from broadcast_cli.exceptions import CannotResume, ConnectError, ConnectionRejected
from broadcast_cli.message import Position


def refused(status: int) -> InvalidStatus:
    return InvalidStatus(Response(status, "status", Headers()))


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("ws://h:1/api/ws", 403, "ws://h:1/api/ws refused the WebSocket handshake with HTTP 403: there is no "
         "WebSocket endpoint at /api/ws; a broadcast server's is /ws/broadcast"),
        ("ws://h:1/rt/ws/broadcast?token=abc", 404, "ws://h:1/rt/ws/broadcast?… refused the WebSocket handshake "
         "with HTTP 404: there is no WebSocket endpoint at /rt/ws/broadcast; is the server really mounted under "
         "/rt? Without a prefix, its endpoint is /ws/broadcast"),
        ("ws://h:1/ws/broadcast", 403, "ws://h:1/ws/broadcast refused the WebSocket handshake with HTTP 403 (a proxy "
         "in front of the server, or not a broadcast server?)"),
        ("ws://h:1/ws/broadcast", 401, "ws://h:1/ws/broadcast refused the WebSocket handshake with HTTP 401"),
    ],
)  # fmt: skip
def test_a_refused_handshake_says_where_the_endpoint_is(url: str, status: int, message: str) -> None:
    error = handshake_failure(url, refused(status))
    assert isinstance(error, ConnectionRejected) and error.http_status == status
    assert str(error) == message


def test_other_failures_are_connect_errors_without_the_query() -> None:
    error = handshake_failure("ws://u:pw@h:1/ws/broadcast?token=abc", ValueError("bad"))
    assert type(error) is ConnectError
    assert str(error) == "cannot connect to ws://u:***@h:1/ws/broadcast?…: bad"
    assert type(handshake_failure("ws://h/ws/broadcast", refused(500))) is ConnectError


@pytest.mark.parametrize(
    ("code", "reason", "rejected", "message"),
    [
        (4001, "the connection token expired", True, "ws://h/ws/broadcast closed the connection: the connection "
         "token expired (code 4001); connect again with a fresh token"),
        (4501, "not valid", True, "ws://h/ws/broadcast refused the connection token (code 4501: not valid)"),
        (4503, "origin", True, "ws://h/ws/broadcast refused the connection (code 4503: origin)"),
        (1008, "", True, "ws://h/ws/broadcast refused the connection (code 1008)"),
        (1009, "too big", False, "ws://h/ws/broadcast closed the connection with code 1009 (too big)"),
    ],
)  # fmt: skip
def test_closes_for_good(code: int, reason: str, rejected: bool, message: str) -> None:
    error = closed_for_good("ws://h/ws/broadcast", code, reason)
    assert isinstance(error, ConnectionRejected) is rejected
    assert str(error) == message


@pytest.mark.parametrize(
    ("since", "epoch", "position", "cause"),
    [
        (5, "old", Position(2, "new"), ResumeFailure.HISTORY_RESET),
        (1, "old", Position(90, "new"), ResumeFailure.HISTORY_RESET),
        (99, "e", Position(2, "e"), ResumeFailure.AHEAD),
        (99, None, Position(2, "e"), ResumeFailure.AHEAD),
        (1, "e", Position(9, "e"), ResumeFailure.TRIMMED),
        (1, None, Position(9, "e"), ResumeFailure.TRIMMED),
    ],
)
def test_why_a_resume_failed(since: int, epoch: str | None, position: Position, cause: ResumeFailure) -> None:
    assert resume_failure(since, epoch, position) is cause
    error = cannot_resume("orders", since, epoch, position)
    assert isinstance(error, CannotResume)
    assert (error.channel, error.since, error.epoch, error.seq, error.current_epoch, error.cause) == (
        "orders", since, epoch, position.seq, position.epoch, cause.value,
    )  # fmt: skip
    assert str(error).endswith(f"; refetch its state, then resume from seq {position.seq} of epoch {position.epoch}")


def test_a_url_with_a_query_is_shown_without_it() -> None:
    assert str(closed_for_good("ws://h/ws/broadcast?token=secret", 4501, "no")).startswith("ws://h/ws/broadcast?… ")


def test_the_token_goes_in_an_auth_request_never_shown_by_its_repr() -> None:
    table = SubscriptionTable()
    table.add("orders", lambda message: None)
    subscribe = table.connection_opened()
    auth = table.authenticate("eyJ.secret.sig")
    assert subscribe is not None and auth.id != subscribe.id
    assert orjson.loads(auth.frame) == {"auth": {"token": "eyJ.secret.sig"}, "id": auth.id}
    assert "secret" not in repr(auth)
    assert table.is_pending(auth.id)
    assert table.receive(orjson.dumps({"type": "ack", "id": auth.id})).request == auth  # type: ignore[union-attr]
