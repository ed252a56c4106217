"""Reliability 1: the server drops every connection while 1,000 messages/s are published.

Every client resumes from its last position and receives every ``seq`` exactly
once, in order, whatever the backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from broadcast_cli import BroadcastClient, ClientState
from broadcast_cli.client import RecoveryInfo
from broadcast_cli.history import HistoryOptions
from broadcast_cli.server.config import ServerConfig
from tests.conftest import Delivery, publish_paced, scaled, wait_until
from tests.integration.conftest import LiveServer, run_live_server

CLIENTS = 5
MESSAGES = 3000
RATE = 1000.0
DROPS = ((600, 1012), (1400, 1011), (2200, 1001))
"""(after how many messages every client has received, the close code the server drops them with)."""


@pytest.fixture(params=["memory", "redis"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[LiveServer]:
    """A server in memory, then one on a real Redis, with history enough for the whole test."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    config = ServerConfig(redis_url=redis_url, history=HistoryOptions(size=MESSAGES))
    async with run_live_server(config) as live:
        yield live


async def test_every_client_resumes_with_every_seq_once_in_order(server: LiveServer) -> None:
    deliveries = [Delivery(f"client {n}") for n in range(CLIENTS)]
    losses: list[RecoveryInfo] = []
    states: list[list[ClientState]] = [[] for _ in range(CLIENTS)]
    clients = [BroadcastClient(server.ws_url, backoff_initial=0.02, backoff_max=0.3) for _ in range(CLIENTS)]
    for client, delivery, log in zip(clients, deliveries, states, strict=True):
        client.on_state_change(log.append)
        await client.connect(timeout=scaled(10))
        sub = client.subscribe(
            "orders", lambda message, d=delivery: d.append(message.seq), on_unrecovered=losses.append
        )
        await sub.wait_ready(scaled(10))

    async def drop() -> None:
        for after, code in DROPS:
            await wait_until(lambda a=after: min(map(len, deliveries)) >= a, timeout=30, what=f"{after} messages")
            await wait_until(lambda: server.hub.subscriber_count("orders") == CLIENTS, what="every resubscription")
            server.drop_connections(code)

    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=scaled(10)) as http:
            dropper = asyncio.ensure_future(drop())
            acknowledged = await publish_paced(http, "orders", range(1, MESSAGES + 1), RATE)
            await asyncio.wait_for(dropper, scaled(30))
        assert len(acknowledged) == MESSAGES
        await wait_until(lambda: min(map(len, deliveries)) >= MESSAGES, timeout=30, what="every message everywhere")
        for delivery in deliveries:
            delivery.check(range(1, MESSAGES + 1))
        assert losses == []
        for log in states:
            assert log.count(ClientState.RECONNECTING) == len(DROPS)
            assert log[-1] == ClientState.CONNECTED
    finally:
        for client in clients:
            await client.disconnect()
