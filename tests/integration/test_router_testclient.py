"""The seed's TestClient pattern with a Redis-backed WebSocketBroadcastBackend.

``send_json`` then ``get_subscriber_count()`` from the test's thread must see the
subscription, even though it waits on Redis; and an app started twice (two
TestClient blocks, two event loops) must keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from broadcast_cli import WebSocketBroadcastBackend

pytestmark = pytest.mark.redis


@pytest.fixture
def main_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_counts_and_broadcasts_from_the_test_thread_with_redis(
    redis_url: str, main_loop: asyncio.AbstractEventLoop
) -> None:
    backend = WebSocketBroadcastBackend(redis_url)
    app = FastAPI()
    app.include_router(backend.get_router())
    for run in range(2):  # a second TestClient runs the app on a new event loop
        with TestClient(app) as client, client.websocket_connect("/ws/broadcast") as ws:
            for attempt in range(5):
                channel = f"orders-{run}-{attempt}"
                ws.send_json({"subscribe": [channel]})
                assert backend.get_subscriber_count(channel) == 1
                main_loop.run_until_complete(backend.broadcast(channel, "created", {"entity_id": attempt}))
                event = ws.receive_json()
                assert (event["channel"], event["payload"]) == (channel, {"entity_id": attempt})
                ws.send_json({"unsubscribe": [channel]})
                assert backend.get_subscriber_count(channel) == 0


def test_the_http_api_follows_the_app_onto_a_new_event_loop_with_redis(redis_url: str) -> None:
    # The second TestClient block starts the app on a new loop, where the router makes a new
    # hub on a new Redis connection: the HTTP routes must publish through that one.
    backend = WebSocketBroadcastBackend(redis_url)
    app = FastAPI()
    app.include_router(backend.get_router(http=True))
    for run in range(2):
        with TestClient(app) as client, client.websocket_connect("/ws/broadcast") as ws:
            ws.send_json({"subscribe": ["orders"], "id": 1})
            assert ws.receive_json()["type"] == "ack"
            response = client.post("/publish", json={"channel": "orders", "event": "created", "payload": run})
            assert response.status_code == 200, response.text
            event = ws.receive_json()
            assert (event["payload"], event["seq"]) == (run, response.json()["seq"])
            assert client.get("/channels").json()["channels"] == [
                {"channel": "orders", "subscribers": 1, "seq": run + 1, "epoch": event["epoch"]}
            ]
            assert "broadcast_messages_published_total 1.0" in client.get("/metrics").text
            assert client.get("/ready").json()["status"] == "ready"
