"""One rule for event names, and no repeated JSON key, wherever a message is published.

``POST /publish`` answers 400 with the JSON error body; the WebSocket ``publish``
request an error frame naming the request (tests/integration/test_websocket_protocol_errors.py);
the Python client refuses before sending; the Redis function with a Redis error
(tests/integration/test_redis_functions.py). Nothing of a refused request is published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from broadcast_cli.client.http import HttpPublisher
from broadcast_cli.exceptions import InvalidEvent
from broadcast_cli.message import EVENT_RULE
from tests.conftest import scaled
from tests.integration.conftest import LiveServer


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=scaled(10)) as client:
        yield client


async def next_seq(http: httpx.AsyncClient) -> int:
    """Publish a good message on ``orders``; its seq tells how many were published before."""
    response = await http.post("/publish", json={"channel": "orders", "event": "order.created"})
    response.raise_for_status()
    return int(response.json()["seq"])


@pytest.mark.parametrize("event", ["bad name", "e" * 129, "e" * 300, "order/created", "order.*", "tab\there", "ünï"])
async def test_post_publish_refuses_an_event_name_outside_the_rule(http: httpx.AsyncClient, event: str) -> None:
    response = await http.post("/publish", json={"channel": "orders", "event": event, "payload": {}})
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid_event"
    assert error["message"].startswith("invalid event name ")
    assert error["message"].endswith(f": an event name is {EVENT_RULE}")
    body = [{"channel": "orders", "event": "ok"}, {"channel": "orders", "event": event}]
    batch = await http.post("/publish", json=body)
    assert batch.status_code == 400 and batch.json()["message"].startswith("item 1: invalid event name ")
    assert await next_seq(http) == 1


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"channel": "orders", "channel": "users", "event": "e"}', "channel"),
        (b'{"channel": "orders", "event": "e", "payload": {"n": 1, "n": 2}}', "n"),
        (b'[{"channel": "orders", "event": "e"}, {"channel": "orders", "event": "e", "event": "f"}]', "event"),
    ],
)
async def test_post_publish_refuses_a_repeated_key(http: httpx.AsyncClient, body: bytes, key: str) -> None:
    response = await http.post("/publish", content=body)
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "id": None,
        "code": "invalid_json",
        "message": f"the body repeats the key '{key}' in one object: a JSON object must not repeat a key",
    }
    assert await next_seq(http) == 1


async def test_the_same_key_in_different_objects_and_colons_in_strings_are_fine(http: httpx.AsyncClient) -> None:
    body = b'{"channel": "orders", "event": "order:paid", "payload": {"id": 1, "at": "12:30", "item": {"id": 2}}}'
    response = await http.post("/publish", content=body)
    assert response.status_code == 200 and response.json()["seq"] == 1


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that counts the requests it sends."""

    requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


async def test_the_python_client_refuses_before_sending(live_server: LiveServer) -> None:
    transport = CountingTransport()
    async with HttpPublisher(live_server.http_url, timeout=scaled(10), transport=transport) as publisher:
        with pytest.raises(InvalidEvent, match=r"^invalid event name 'bad name': an event name is 1 to 128"):
            await publisher.publish("orders", "bad name", {"n": 1})
        assert transport.requests == 0
        assert (await publisher.publish("orders", "order.created", {"n": 1})).seq == 1
        assert transport.requests == 1
