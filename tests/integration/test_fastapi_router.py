"""The seed's WebSocketBroadcastBackend in FastAPI apps served by uvicorn, on one Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli import WebSocketBroadcastBackend
from tests.conftest import scaled
from tests.integration.conftest import serve_asgi

pytestmark = pytest.mark.redis


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))  # type: ignore[no-any-return]


def make_app(redis_url: str) -> tuple[FastAPI, WebSocketBroadcastBackend]:
    app = FastAPI()
    backend = WebSocketBroadcastBackend(redis_url)
    app.include_router(backend.get_router())
    return app, backend


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
