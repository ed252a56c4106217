"""Reliability 4: ``kill -9`` of the instance a client is on, while publishing.

Two instances on one Redis. Clients with a list of URLs move to the other
instance; a client with one URL waits for its instance to come back. Either way
every message comes from the Redis-backed history: 0 lost, 0 duplicated, 0
reordered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from broadcast_cli import BroadcastClient
from broadcast_cli.client import RecoveryInfo
from tests.conftest import Delivery, publish_paced, scaled, wait_until
from tests.integration.conftest import ServerProcess

pytestmark = pytest.mark.redis

MESSAGES = 1500
RATE = 500.0
CRASH_AFTER = 500


async def test_clients_recover_every_message_after_an_instance_crash(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    history = ("--redis-url", redis_url, "--history-size", str(MESSAGES))
    a = start_server(*history)
    b = start_server(*history)
    port_a = int(a.http_url.rsplit(":", 1)[1])
    clients = {
        "rotating client 1": BroadcastClient([a.ws_url, b.ws_url], backoff_initial=0.05, backoff_max=0.5),
        "rotating client 2": BroadcastClient([a.ws_url, b.ws_url], backoff_initial=0.05, backoff_max=0.5),
        "same-URL client": BroadcastClient(a.ws_url, backoff_initial=0.05, backoff_max=0.5),
    }
    deliveries = {name: Delivery(name) for name in clients}
    losses: list[RecoveryInfo] = []
    for name, client in clients.items():
        await client.connect(timeout=scaled(10))
        sub = client.subscribe(
            "orders", lambda message, d=deliveries[name]: d.append(message.seq), on_unrecovered=losses.append
        )
        await sub.wait_ready(scaled(10))

    async def crash() -> None:
        await wait_until(
            lambda: min(map(len, deliveries.values())) >= CRASH_AFTER, timeout=30, what=f"{CRASH_AFTER} messages"
        )
        a.kill()
        start_server(*history, port=port_a)  # the same instance, back on its address

    try:
        async with httpx.AsyncClient(base_url=b.http_url, timeout=scaled(10)) as http:
            crashing = asyncio.ensure_future(crash())
            acknowledged = await publish_paced(http, "orders", range(1, MESSAGES + 1), RATE)
            await asyncio.wait_for(crashing, scaled(60))
        assert len(acknowledged) == MESSAGES
        await wait_until(
            lambda: min(map(len, deliveries.values())) >= MESSAGES, timeout=60, what="every message everywhere"
        )
        for delivery in deliveries.values():
            delivery.check(range(1, MESSAGES + 1))
        assert losses == []
        assert clients["rotating client 1"].url == b.ws_url
        assert clients["same-URL client"].url == a.ws_url
    finally:
        for client in clients.values():
            await client.disconnect()
