"""The HTTP API's access rules, each both ways, over a real socket."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from broadcast_cli.auth import ApiKeys
from broadcast_cli.client.http import HttpPublisher, PublishRefused
from broadcast_cli.server.config import Security, ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import run_live_server

KEY = "k" * 24
MESSAGE = {"channel": "orders", "event": "e", "payload": 1}


async def test_publish_needs_a_valid_api_key_and_a_subscriber_sees_only_accepted_ones() -> None:
    config = ServerConfig(security=Security(api_keys=ApiKeys.of([KEY, "other-key-0123456789"])))
    async with (
        run_live_server(config) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=scaled(10)) as http,
        connect(server.ws_url) as ws,
    ):
        await ws.send('{"subscribe": ["orders"], "id": 1}')
        await ws.recv()
        for headers in ({}, {"authorization": "Bearer wrong-key-0123456789"}, {"authorization": KEY}):
            refused = await http.post("/publish", json=MESSAGE, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "unauthorized"
            assert refused.headers["www-authenticate"] == "Bearer"
            assert KEY not in refused.text
        accepted = await http.post("/publish", json=MESSAGE, headers={"authorization": f"Bearer {KEY}"})
        assert accepted.status_code == 200
        assert orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))["seq"] == 1
        async with HttpPublisher(server.http_url, api_key=KEY) as publisher:
            assert (await publisher.publish("orders", "e")).seq == 2
        async with HttpPublisher(server.http_url) as publisher:
            with pytest.raises(PublishRefused) as refusal:
                await publisher.publish("orders", "e")
        assert (refusal.value.status, refusal.value.code) == (401, "unauthorized")
        # Reading stays open to the health and metrics endpoints.
        assert (await http.get("/health")).status_code == 200


async def test_cors_only_for_the_configured_origins() -> None:
    config = ServerConfig(security=Security(cors_origins=("https://app.example.com",)))
    async with (
        run_live_server(config) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=scaled(10)) as http,
    ):
        preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
        allowed = await http.options("/publish", headers={"origin": "https://app.example.com", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        denied = await http.options("/publish", headers={"origin": "https://evil.example", **preflight})
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers
        simple = await http.post("/publish", json=MESSAGE, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
