"""The seed's WebSocketBroadcastBackend in FastAPI apps served by uvicorn on real sockets.

``get_router()`` serves the WebSocket endpoint (the seed's API); ``get_router(http=True)``
mounts ``broadcast serve``'s routes too, protected by the same Security and Limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli import WebSocketBroadcastBackend
from broadcast_cli.auth import ApiKeys, Grant, OriginPolicy, TokenSigner, TokenVerifier
from broadcast_cli.client.http import HttpPublisher, PublishRefused
from broadcast_cli.exceptions import ConfigurationError
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import Limits, Security
from broadcast_cli.server.serve import ServerUrls
from tests.conftest import scaled
from tests.integration.conftest import serve_asgi

KEY = "k" * 24
SECRET = "s" * 40
SECURITY = Security(
    api_keys=ApiKeys.of([KEY]),
    tokens=TokenVerifier(SECRET),
    public=Grant.of(["public.*"]),
    origins=OriginPolicy.of(["https://app.example.com"]),
)
AUTHORIZED = {"authorization": f"Bearer {KEY}"}


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))  # type: ignore[no-any-return]


async def request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(frame).decode())
    return await recv(ws)


async def close_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), scaled(10))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


def make_app(redis_url: str) -> tuple[FastAPI, WebSocketBroadcastBackend]:
    app = FastAPI()
    backend = WebSocketBroadcastBackend(redis_url)
    app.include_router(backend.get_router())
    return app, backend


@contextlib.asynccontextmanager
async def embedded(
    backend: WebSocketBroadcastBackend, app: FastAPI | None = None, **include: Any
) -> AsyncIterator[tuple[ServerUrls, httpx.AsyncClient]]:
    """*backend*'s router with the HTTP API, in a FastAPI app served by uvicorn; and an HTTP client of it."""
    app = app or FastAPI()
    app.include_router(backend.get_router(http=True), **include)
    async with serve_asgi(app) as urls, httpx.AsyncClient(base_url=urls.http, timeout=scaled(10)) as http:
        yield urls, http
    await backend.close()


@pytest.mark.redis
async def test_broadcasts_reach_the_clients_of_every_instance(redis_url: str) -> None:
    app_a, backend_a = make_app(redis_url)
    app_b, backend_b = make_app(redis_url)
    async with serve_asgi(app_a) as urls_a, serve_asgi(app_b) as urls_b:
        async with connect(urls_a.websocket) as on_a, connect(urls_b.websocket) as on_b:
            for ws in (on_a, on_b):
                await ws.send('{"id": 1, "subscribe": ["orders"]}')
                assert (await recv(ws))["type"] == "ack"
            assert backend_a.get_subscriber_count("orders") == 1
            message = await backend_a.broadcast("orders", "order.created", {"entity_id": "123"}, origin="tab-1")
            for ws in (on_a, on_b):
                event = await recv(ws)
                assert (event["event"], event["payload"], event["seq"], event["origin"]) == (
                    "order.created", {"entity_id": "123"}, message.seq, "tab-1",
                )
        # A client that left instance A recovers on instance B.
        async with connect(urls_b.websocket) as back:
            await backend_a.broadcast("orders", "order.created", {"entity_id": "124"})
            resume = {"id": 2, "subscribe": [{"channel": "orders", "since": message.seq, "epoch": message.epoch}]}
            await back.send(orjson.dumps(resume).decode())
            ack = await recv(back)
            assert ack["channels"]["orders"]["recovered"] is True
            assert (await recv(back))["payload"] == {"entity_id": "124"}
    await backend_a.close()
    await backend_b.close()


async def test_the_seeds_router_serves_the_websocket_endpoint_only() -> None:
    app = FastAPI()
    app.include_router(WebSocketBroadcastBackend().get_router())
    async with serve_asgi(app) as urls, httpx.AsyncClient(base_url=urls.http, timeout=scaled(10)) as http:
        for path in ("/publish", "/health", "/client.js", "/metrics"):
            assert (await http.get(path)).status_code == 404, path
        async with connect(urls.websocket) as ws:
            assert (await request(ws, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"


async def test_publish_into_the_app_needs_the_api_key_and_reaches_its_websocket_clients() -> None:
    backend = WebSocketBroadcastBackend(security=SECURITY)
    async with embedded(backend) as (urls, http), connect(urls.websocket) as ws:
        assert (await request(ws, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        message = {"channel": "public.news", "event": "e", "payload": 1}
        for headers in ({}, {"authorization": "Bearer wrong-key-0123456789"}):
            refused = await http.post("/publish", json=message, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized"), refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
        async with HttpPublisher(urls.http) as anonymous:
            with pytest.raises(PublishRefused) as refusal:
                await anonymous.publish("public.news", "e", 2)
        assert (refusal.value.status, refusal.value.code) == (401, "unauthorized")
        async with HttpPublisher(urls.http, api_key=KEY) as publisher:
            receipt = await publisher.publish("public.news", "e", 3)
        event = await recv(ws)
        assert (event["seq"], event["payload"], event["id"]) == (1, 3, receipt.id)  # nothing refused got through
        assert backend.get_subscriber_count("public.news") == 1


async def test_the_websocket_of_the_app_checks_tokens_grants_and_origins() -> None:
    backend = WebSocketBroadcastBackend(security=SECURITY)
    async with embedded(backend) as (urls, _):
        async with connect(urls.websocket) as anonymous:
            denied = await request(anonymous, {"subscribe": ["orders"], "id": 1})
            assert (denied["type"], denied["code"]) == ("error", "forbidden")
            assert (await request(anonymous, {"subscribe": ["public.news"], "id": 2}))["type"] == "ack"
        token = TokenSigner(SECRET).mint("alice", channels=["orders"])
        async with connect(f"{urls.websocket}?token={token}") as alice:
            assert (await request(alice, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"
        forged = TokenSigner("f" * 40).mint("eve", channels=["*"])
        async with connect(f"{urls.websocket}?token={forged}") as eve:
            assert await close_code(eve) == CloseCode.UNAUTHORIZED
        async with connect(urls.websocket, origin="https://evil.example") as evil:  # type: ignore[arg-type]
            assert await close_code(evil) == CloseCode.FORBIDDEN_ORIGIN
        async with connect(urls.websocket, origin="https://app.example.com") as page:  # type: ignore[arg-type]
            assert (await request(page, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"


async def test_the_limits_apply_to_the_apps_http_api_and_websocket_with_the_apis_json_errors() -> None:
    limits = Limits(max_publish_batch=2, max_publish_body_bytes=2048, max_connections=1)
    backend = WebSocketBroadcastBackend(limits=limits)
    async with embedded(backend) as (urls, http):
        batch = [{"channel": "orders", "event": "e"}] * 3
        too_many = await http.post("/publish", json=batch)
        assert (too_many.status_code, too_many.json()["code"]) == (413, "batch_too_large")
        too_big = await http.post("/publish", content=b"[" + b" " * 4096 + b"]")
        assert too_big.status_code == 413
        error = too_big.json()
        assert (error["type"], error["id"], error["code"]) == ("error", None, "too_large")  # the API's shape
        async with connect(urls.websocket) as first, connect(urls.websocket) as second:
            assert await close_code(second) == CloseCode.TRY_AGAIN_LATER
            assert (await request(first, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"


async def test_the_app_serves_what_broadcast_serve_serves_from_the_same_routes() -> None:
    backend = WebSocketBroadcastBackend()
    async with (
        serve_asgi(create_app()) as serve_urls,
        httpx.AsyncClient(base_url=serve_urls.http, timeout=scaled(10)) as serve_http,
        embedded(backend) as (_, app_http),
    ):
        listed = (await serve_http.get("/")).json()["endpoints"]
        paths = [entry["path"] for entry in listed if entry["method"] == "GET" and entry["path"] != "/openapi.json"]
        assert {"/health", "/ready", "/channels", "/metrics", "/client.js", "/client.d.ts"} <= set(paths)
        for path in [*paths, "/ws/broadcast"]:
            served, embedded_answer = await serve_http.get(path), await app_http.get(path)
            assert (embedded_answer.status_code, embedded_answer.headers["content-type"]) == (
                served.status_code, served.headers["content-type"],
            ), path
        for path in ("/client.js", "/client.d.ts", "/health"):
            assert (await app_http.get(path)).content == (await serve_http.get(path)).content, path
        assert "broadcast_connections 0.0" in (await app_http.get("/metrics")).text
        assert (await app_http.get("/")).status_code == 404  # the app's own: it has no index


async def test_the_apps_own_routes_come_first_and_a_prefix_moves_every_route() -> None:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "mine"}

    backend = WebSocketBroadcastBackend()
    app.include_router(backend.get_router(http=True))
    elsewhere = WebSocketBroadcastBackend()
    async with embedded(elsewhere, app, prefix="/realtime") as (urls, http):
        assert (await http.get("/health")).json() == {"status": "mine"}
        assert (await http.get("/realtime/health")).json()["status"] == "ok"
        assert (await http.get("/realtime/client.js")).status_code == 200
        async with (
            connect(f"{urls.http.replace('http', 'ws', 1)}/realtime/ws/broadcast") as ws,
            HttpPublisher(f"{urls.http}/realtime/publish") as publisher,
        ):
            assert (await request(ws, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"
            await publisher.publish("orders", "e", "under a prefix")
            assert (await recv(ws))["payload"] == "under a prefix"
    await backend.close()


def test_cors_origins_are_refused_with_the_middleware_to_add_instead() -> None:
    backend = WebSocketBroadcastBackend(security=Security(cors_origins=("https://app.example.com",)))
    with pytest.raises(ConfigurationError, match=r"app\.add_middleware\(CORSMiddleware.*'https://app\.example\.com'"):
        backend.get_router(http=True)
    assert backend.get_router() is not None  # the WebSocket alone needs no CORS


def test_without_fastapi_the_router_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what `import fastapi` meets when it is not installed
    backend = WebSocketBroadcastBackend()
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'broadcast-cli\[fastapi\]'") as raised:
        backend.get_router()
    assert raised.value.name == "fastapi"
