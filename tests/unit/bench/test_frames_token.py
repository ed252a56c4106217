"""The lean subscriber with a connection token, and how it tells a refusal from a failure."""

from __future__ import annotations

import orjson
import pytest

from broadcast_cli.bench.frames import ConnectionState, SubscriberConnection, server_frame
from tests.unit.bench.test_frames import ADDRESS, KEY, MASK, ack, response, unmask


def text_frames(data: bytes) -> list[object]:
    """The JSON of each (short, masked) client text frame in *data*."""
    frames = []
    while data:
        size = data[1] & 0x7F
        opcode, payload = unmask(data[: 6 + size])
        assert opcode == 0x1
        frames.append(orjson.loads(payload))
        data = data[6 + size :]
    return frames


def test_a_token_goes_in_an_auth_request_before_the_subscribe() -> None:
    conn = SubscriberConnection(ADDRESS, "bench", key=KEY, mask=MASK, token="eyJ.token")
    handshake = conn.data_to_send()
    assert b"token" not in handshake  # never in the URL
    conn.receive_data(response(), 0)
    assert text_frames(conn.data_to_send()) == [{"auth": {"token": "eyJ.token"}}, {"subscribe": ["bench"], "id": 1}]
    conn.receive_data(ack(5), 0)
    assert conn.state is ConnectionState.STREAMING


def test_without_a_token_only_the_subscribe() -> None:
    conn = SubscriberConnection(ADDRESS, "bench", key=KEY, mask=MASK)
    conn.data_to_send()
    conn.receive_data(response(), 0)
    assert text_frames(conn.data_to_send()) == [{"subscribe": ["bench"], "id": 1}]


def test_a_refused_token_closes_with_its_reason() -> None:
    conn = SubscriberConnection(ADDRESS, "bench", key=KEY, mask=MASK, token="bad")
    closing = server_frame((4501).to_bytes(2, "big") + b"the connection token is not valid", opcode=0x8)
    conn.receive_data(response() + closing, 0)
    assert conn.state is ConnectionState.CLOSED and conn.refused
    assert conn.error == "the server closed the connection (code 4501: the connection token is not valid)"


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (response(status="403 Forbidden"), True),
        (response(status="404 Not Found"), True),
        (response(status="503 Service Unavailable"), False),
        (response() + server_frame(orjson.dumps({"type": "error", "id": 1, "code": "forbidden"})), True),
        (response() + server_frame((1001).to_bytes(2, "big"), opcode=0x8), False),
        (response() + server_frame((4001).to_bytes(2, "big"), opcode=0x8), True),
        (response() + server_frame(b"\x00\x01not json"), False),
    ],
)
def test_a_refusal_is_told_from_a_failure(answer: bytes, refused: bool) -> None:
    conn = SubscriberConnection(ADDRESS, "bench", key=KEY, mask=MASK)
    conn.receive_data(answer, 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.refused is refused, conn.error
