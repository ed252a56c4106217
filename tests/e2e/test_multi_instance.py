"""Two ``broadcast serve`` processes sharing one real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import scaled
from tests.integration.conftest import ServerProcess

pytestmark = pytest.mark.redis


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))  # type: ignore[no-any-return]


async def publish(server: ServerProcess, channel: str, payload: object) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=scaled(10)) as http:
        body = {"channel": channel, "event": "e", "payload": payload}
        response = await http.post(f"{server.http_url}/publish", json=body)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


async def test_a_message_published_on_one_instance_reaches_the_other(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    a = start_server("--redis-url", redis_url)
    b = start_server("--redis-url", redis_url)
    async with connect(b.ws_url) as on_b, connect(a.ws_url) as on_a:
        for ws in (on_a, on_b):
            await ws.send('{"id": 1, "subscribe": ["orders"]}')
            assert (await recv(ws))["type"] == "ack"
        receipts = [await publish(a if n % 2 else b, "orders", n) for n in range(20)]
        assert [r["seq"] for r in receipts] == list(range(1, 21))
        got_b = [await recv(on_b) for _ in range(20)]
        got_a = [await recv(on_a) for _ in range(20)]
        assert [e["seq"] for e in got_b] == [e["seq"] for e in got_a] == list(range(1, 21))
        assert [e["payload"] for e in got_b] == list(range(20))


async def test_a_subscriber_moving_between_instances_recovers_what_it_missed(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    a = start_server("--redis-url", redis_url)
    b = start_server("--redis-url", redis_url)
    async with connect(a.ws_url) as ws:
        await ws.send('{"id": 1, "subscribe": ["orders"]}')
        ack = await recv(ws)
        epoch = ack["channels"]["orders"]["epoch"]
        for n in range(5):
            await publish(a, "orders", n)
        last = [await recv(ws) for _ in range(5)][-1]
    assert last["seq"] == 5
    for n in range(5, 12):  # missed while away
        await publish(a, "orders", n)
    async with connect(b.ws_url) as ws:
        resume = {"id": 2, "subscribe": [{"channel": "orders", "since": 5, "epoch": epoch}]}
        await ws.send(orjson.dumps(resume).decode())
        ack = await recv(ws)
        assert ack["channels"]["orders"] == {"seq": 12, "epoch": epoch, "recovered": True}
        await publish(a, "orders", 12)
        events = [await recv(ws) for _ in range(8)]
        assert [e["seq"] for e in events] == list(range(6, 14))
        assert [e["payload"] for e in events] == list(range(5, 13))


async def test_an_in_memory_restart_says_recovery_failed(start_server: Callable[..., ServerProcess]) -> None:
    first = start_server()
    receipt = await publish(first, "orders", 1)
    port = first.http_url.rsplit(":", 1)[1]
    first.terminate()
    second = start_server(port=int(port))
    async with connect(second.ws_url) as ws:
        request = {"id": 1, "subscribe": [{"channel": "orders", "since": receipt["seq"], "epoch": receipt["epoch"]}]}
        await ws.send(orjson.dumps(request).decode())
        ack = await recv(ws)
        assert ack["channels"]["orders"]["recovered"] is False
        assert ack["channels"]["orders"]["epoch"] != receipt["epoch"]
