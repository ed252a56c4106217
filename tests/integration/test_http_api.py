"""The HTTP API over a real socket: publish, batches, errors, health, channels."""

from __future__ import annotations

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from broadcast_cli.server.config import Limits, ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import LiveServer, run_live_server


@pytest.fixture
async def http(live_server: LiveServer) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=live_server.http_url, timeout=scaled(10)) as client:
        yield client  # type: ignore[misc]


async def test_publish_one_message_reaches_subscribers(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    async with connect(live_server.ws_url) as ws:
        await ws.send('{"id": 1, "subscribe": ["orders"]}')
        await ws.recv()
        response = await http.post("/publish", json={"channel": "orders", "event": "created", "payload": {"n": 1}})
        assert response.status_code == 200
        receipt = response.json()
        assert receipt["channel"] == "orders" and receipt["seq"] == 1 and receipt["epoch"] and receipt["id"]
        event = orjson.loads(await ws.recv())
        assert (event["seq"], event["payload"], event["id"]) == (1, {"n": 1}, receipt["id"])


async def test_publish_a_batch_in_order(http: httpx.AsyncClient) -> None:
    body = [{"channel": "a", "event": "e", "payload": n} for n in range(3)] + [{"channel": "b", "event": "e"}]
    response = await http.post("/publish", json=body)
    assert response.status_code == 200
    assert [(r["channel"], r["seq"]) for r in response.json()] == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{nope", 400, "invalid_json"),
        (b"[]", 400, "invalid_request"),
        (b'"text"', 400, "invalid_request"),
        (b'{"channel": "a"}', 400, "invalid_request"),
        (b'{"channel": "bad name", "event": "e"}', 400, "invalid_channel"),
        (b'{"channel": "a", "event": ""}', 400, "invalid_event"),
        (b'{"channel": "a", "event": "e", "unknown": 1}', 400, "invalid_request"),
        (b'[{"channel": "a", "event": "e"}, {"channel": "a"}]', 400, "invalid_request"),
    ],
)
async def test_bad_publish_bodies_get_a_json_4xx(http: httpx.AsyncClient, body: bytes, status: int, code: str) -> None:
    response = await http.post("/publish", content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["type"] == "error" and error["code"] == code and error["message"]


async def test_a_bad_item_in_a_batch_publishes_nothing(http: httpx.AsyncClient) -> None:
    response = await http.post("/publish", json=[{"channel": "a", "event": "e"}, {"channel": "a", "event": 3}])
    assert response.status_code == 400 and response.json()["message"].startswith("item 1:")
    again = await http.post("/publish", json={"channel": "a", "event": "e"})
    assert again.json()["seq"] == 1


async def test_size_limits() -> None:
    limits = Limits(max_payload_bytes=100, max_publish_body_bytes=1000, max_publish_batch=2)
    async with (
        run_live_server(ServerConfig(limits=limits)) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        big = await http.post("/publish", json={"channel": "a", "event": "e", "payload": "x" * 200})
        assert (big.status_code, big.json()["code"]) == (413, "payload_too_large")
        huge = await http.post("/publish", content=b"[" + b" " * 2000 + b"]")
        assert (huge.status_code, huge.json()["code"]) == (413, "too_large")
        batch = await http.post("/publish", json=[{"channel": "a", "event": "e"}] * 3)
        assert (batch.status_code, batch.json()["code"]) == (413, "batch_too_large")


async def test_unknown_routes_and_methods_answer_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = await http.get("/publish")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


async def test_plain_http_on_the_websocket_path_says_upgrade(http: httpx.AsyncClient) -> None:
    response = await http.get("/ws/broadcast")
    assert (response.status_code, response.json()["code"]) == (426, "upgrade_required")


async def test_health_and_channels(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    health = (await http.get("/health")).json()
    assert health["status"] == "ok" and health["backend"] == "memory://" and health["protocol"] == 1
    async with connect(live_server.ws_url) as ws1, connect(live_server.ws_url) as ws2:
        for ws in (ws1, ws2):
            await ws.send('{"id": 1, "subscribe": ["orders"]}')
            await ws.recv()
        await http.post("/publish", json={"channel": "orders", "event": "e"})
        channels = (await http.get("/channels")).json()["channels"]
        assert [(c["channel"], c["subscribers"], c["seq"]) for c in channels] == [("orders", 2, 1)]


async def test_ready_and_openapi(http: httpx.AsyncClient) -> None:
    ready = await http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "backend": {"url": "memory://", "state": "up"}}
    schema = (await http.get("/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {"/publish", "/health", "/ready", "/channels", "/metrics"}


async def test_a_draining_server_refuses_publishes_with_503(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    await live_server.http_api.drain()
    refused = await http.post("/publish", json={"channel": "orders", "event": "e"})
    assert refused.status_code == 503
    assert refused.json()["code"] == "shutting_down"
