"""Reliability 6: bad input on the WebSocket never hurts the server or anyone else.

Hypothesis sends many random frames — garbage text, random JSON, near-valid
requests with wrong types, binary frames, oversize frames — each on a
connection of its own, to a live server. Every frame gets an error frame with a
documented code or a documented close code; afterwards a normal client still
works and nothing is left behind in the hub.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.config import Limits, ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import ThreadedServer, threaded_server

MAX_FRAME = 4096
ERROR_CODES = {
    "invalid_json",
    "invalid_request",
    "unknown_request",
    "invalid_channel",
    "too_many_channels",
    "too_many_subscriptions",
    "too_many_patterns",
    "forbidden",
    "invalid_event",
    "payload_too_large",
}
CLOSE_CODES = {CloseCode.UNSUPPORTED_DATA, CloseCode.MESSAGE_TOO_BIG}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
names = st.text(alphabet="abcz09_-.:*/ é", max_size=20) | st.sampled_from(["orders", "orders.*", "*", "a" * 200])
items = names | json_values | st.fixed_dictionaries(
    {"channel": names | json_values},
    optional={"since": json_values | st.integers(-5, 10**20), "epoch": json_values, "last": json_values},
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "subscribe": st.lists(items, max_size=5) | json_values,
        "unsubscribe": st.lists(items, max_size=5) | json_values,
        "id": json_values,
        "publish": json_values,
    },
)
frames = st.one_of(
    st.text(max_size=100),
    json_values.map(json.dumps),
    requests.map(json.dumps),
    st.binary(max_size=100),
    st.integers(MAX_FRAME + 1, 3 * MAX_FRAME).map(lambda size: '{"subscribe": ["' + "x" * size + '"]}'),
)

PROBE = '{"unsubscribe": ["probe"], "id": "probe"}'


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[ThreadedServer]:
    """One server for every example, with a small frame limit so that oversize frames are cheap.

    Its send queue holds every answer to the 5,000-request flood (the default's 2,000 frames would
    close a flooder that a loaded machine keeps from reading for a moment: a 4008, not what is tested).
    """
    limits = Limits(max_frame_bytes=MAX_FRAME, max_subscriptions=8, send_buffer_messages=10_000)
    with threaded_server(ServerConfig(limits=limits)) as server:
        yield server


def closes(frame: str | bytes) -> bool:
    """Whether the server answers *frame* by closing the connection (binary or oversize)."""
    return isinstance(frame, bytes) or len(frame.encode()) > MAX_FRAME


def check_answers(server: ThreadedServer, sent: list[str | bytes]) -> None:
    """Send *sent*, then a probe; every answer must be a documented error frame or close code.

    Nothing is sent after a frame the server closes on: a client that keeps
    sending may have its TCP connection reset before it reads the close frame.
    """
    closing = next((n for n, frame in enumerate(sent) if closes(frame)), None)
    if closing is not None:
        sent = sent[: closing + 1]
    with connect(server.ws_url, open_timeout=scaled(10), close_timeout=scaled(5)) as ws:
        try:
            for frame in sent:
                ws.send(frame)
            if closing is None:
                ws.send(PROBE)
            while True:
                answer: dict[str, Any] = orjson.loads(ws.recv(timeout=scaled(10)))
                if answer.get("id") == "probe":
                    assert answer == {"type": "ack", "id": "probe"}
                    assert closing is None
                    return
                if answer["type"] == "error":
                    assert answer["code"] in ERROR_CODES, answer
                    assert answer["message"], answer
                else:
                    assert answer["type"] == "ack", answer
        except ConnectionClosed as exc:
            closed = exc
    assert closing is not None, f"closed after valid frames: {closed}"
    assert closed.rcvd is not None, "closed without a close frame"
    assert closed.rcvd.code in CLOSE_CODES, closed.rcvd


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(frames, min_size=1, max_size=4))
def test_random_frames_get_documented_answers(fuzzed_server: ThreadedServer, sent: list[str | bytes]) -> None:
    check_answers(fuzzed_server, sent)


def test_after_the_fuzzing_a_normal_client_works_and_nothing_leaked(fuzzed_server: ThreadedServer) -> None:
    server = fuzzed_server
    with connect(server.ws_url, open_timeout=scaled(10)) as ws:
        ws.send('{"subscribe": ["orders"], "id": 1}')
        assert orjson.loads(ws.recv(timeout=scaled(10)))["type"] == "ack"
        server.publish("orders", "e", {"n": 1})
        event = orjson.loads(ws.recv(timeout=scaled(10)))
        assert (event["channel"], event["seq"], event["payload"]) == ("orders", 1, {"n": 1})
    deadline = time.monotonic() + scaled(10)

    async def leftovers() -> tuple[int, list[str], dict[str, int]]:
        hub = server.hub
        return server.endpoint.connections(), [c.channel for c in hub.channels()], hub.patterns()

    while (left := server.call(leftovers())) != (0, [], {}):
        assert time.monotonic() < deadline, f"left behind: {left}"
        time.sleep(0.01)


def test_thousands_of_requests_on_one_connection_leave_others_served(fuzzed_server: ThreadedServer) -> None:
    """5,000 subscribes at once: 8 fit, the burst's rest are over the limit, then the rate limit drops the others."""
    server = fuzzed_server
    with connect(server.ws_url) as flooder, connect(server.ws_url) as bystander:
        bystander.send('{"subscribe": ["orders"], "id": 1}')
        assert orjson.loads(bystander.recv(timeout=scaled(10)))["type"] == "ack"
        for n in range(5000):
            flooder.send(orjson.dumps({"subscribe": [f"c{n}"], "id": n}).decode())
        server.publish("orders", "e", "still here")
        assert orjson.loads(bystander.recv(timeout=scaled(10)))["payload"] == "still here"
        answers: dict[str, int] = {}
        for _ in range(5000):  # one answer per request, in order
            answer = orjson.loads(flooder.recv(timeout=scaled(30)))
            key = "ack" if answer["type"] == "ack" else answer["code"]
            answers[key] = answers.get(key, 0) + 1
        assert answers["ack"] == 8
        assert answers["rate_limited"] >= 5000 - Limits().request_burst - 200  # a few refill while it floods
        assert answers["ack"] + answers["too_many_subscriptions"] + answers["rate_limited"] == 5000
