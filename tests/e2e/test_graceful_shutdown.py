"""Reliability 5: SIGTERM while publishers publish and subscribers read.

The server stops accepting connections, refuses new publishes, finishes those
in flight, sends every client what is queued for it and closes it with 1012.
Nothing that was acknowledged to a publisher is lost: subscribers of an
in-memory server have it before the close; subscribers of a Redis-backed one
recover it on another instance.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

from broadcast_cli import BroadcastClient, ClientState
from broadcast_cli.client import RecoveryInfo
from broadcast_cli.protocol import CloseCode
from tests.conftest import Delivery, scaled, wait_until
from tests.integration.conftest import ServerProcess, stalled_connection

PUBLISHERS = 4
SUBSCRIBERS = 5
BATCH = 200
SIGTERM_AFTER = 2000
SHUTDOWN_TIMEOUT = 3.0


class Publisher:
    """Publishes batches until the server stops acknowledging, recording each acknowledged seq.

    Batches fill the subscribers' send queues, so that the shutdown finds frames
    still queued: those must reach the subscribers too.
    """

    def __init__(self, http_url: str) -> None:
        self.http_url = http_url
        self.acknowledged: list[int] = []
        self.stopped_by = ""

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.http_url, timeout=scaled(15)) as http:
            for n in range(10_000):  # bounded; ends at the first refusal
                batch = [{"channel": "orders", "event": "e", "payload": n}] * BATCH
                try:
                    response = await http.post("/publish", json=batch)
                except httpx.TransportError as exc:
                    self.stopped_by = type(exc).__name__
                    return
                if response.status_code != 200:
                    assert response.status_code == 503, response.text
                    self.stopped_by = response.json()["code"]
                    return
                self.acknowledged.extend(receipt["seq"] for receipt in response.json())


async def read_all(ws: ClientConnection, delivery: Delivery) -> int | None:
    """Read events until the server closes the connection; return its close code."""
    try:
        while True:
            delivery.append(orjson.loads(await ws.recv(decode=False))["seq"])
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


def acknowledged(publishers: list[Publisher]) -> list[int]:
    return sorted(seq for publisher in publishers for seq in publisher.acknowledged)


async def test_sigterm_loses_nothing_acknowledged_in_memory(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--shutdown-timeout", str(SHUTDOWN_TIMEOUT))
    subscribers = [await connect(server.ws_url) for _ in range(SUBSCRIBERS)]
    for ws in subscribers:
        await ws.send('{"subscribe": ["orders"], "id": 1}')
        assert orjson.loads(await ws.recv())["type"] == "ack"
    deliveries = [Delivery(f"subscriber {n}") for n in range(SUBSCRIBERS)]
    reading = [asyncio.ensure_future(read_all(ws, d)) for ws, d in zip(subscribers, deliveries, strict=True)]
    publishers = [Publisher(server.http_url) for _ in range(PUBLISHERS)]
    # A client that does not read holds the shutdown open until its timeout.
    async with stalled_connection(server.ws_url) as stalled:
        await stalled.send('{"subscribe": ["orders"]}')
        publishing = [asyncio.ensure_future(p.run()) for p in publishers]
        await wait_until(lambda: len(acknowledged(publishers)) >= SIGTERM_AFTER, what="the first publishes")
        server.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()

        # While it drains, it accepts no new connection.
        refused = False
        while not refused:
            try:
                async with connect(server.ws_url, open_timeout=scaled(5)):
                    pass
            except (ConnectionError, InvalidMessage):
                refused = True  # refused, or reset from the backlog without an answer
            assert time.monotonic() - sent < scaled(10), "still accepting connections 10 s after SIGTERM"
        assert server.process.poll() is None, "the stalled client should hold the drain open"

        await asyncio.wait_for(asyncio.gather(*publishing), scaled(30))
        codes = await asyncio.wait_for(asyncio.gather(*reading), scaled(30))
        server.process.wait(scaled(30))  # the drain ends on its own; a second SIGTERM would force it
        assert server.terminate() == 0

    assert codes == [CloseCode.SERVICE_RESTART] * SUBSCRIBERS
    assert all(p.stopped_by for p in publishers)
    acked = acknowledged(publishers)
    assert len(acked) >= SIGTERM_AFTER
    for delivery in deliveries:
        delivery.check(range(1, len(delivery) + 1))
        assert set(acked) <= set(delivery.seqs), f"{delivery.name} lost acknowledged messages"


@pytest.mark.redis
async def test_sigterm_loses_nothing_acknowledged_with_redis(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    a = start_server("--redis-url", redis_url, "--shutdown-timeout", str(SHUTDOWN_TIMEOUT))
    b = start_server("--redis-url", redis_url)
    deliveries = [Delivery(f"client {n}") for n in range(SUBSCRIBERS)]
    losses: list[RecoveryInfo] = []
    clients = [BroadcastClient([a.ws_url, b.ws_url], backoff_initial=0.05, backoff_max=0.5) for _ in deliveries]
    for client, delivery in zip(clients, deliveries, strict=True):
        await client.connect(timeout=scaled(10))
        sub = client.subscribe("orders", lambda m, d=delivery: d.append(m.seq), on_unrecovered=losses.append)
        await sub.wait_ready(scaled(10))
    publishers = [Publisher(a.http_url) for _ in range(PUBLISHERS)]
    try:
        publishing = [asyncio.ensure_future(p.run()) for p in publishers]
        await wait_until(lambda: len(acknowledged(publishers)) >= SIGTERM_AFTER, what="the first publishes")
        a.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*publishing), scaled(30))
        a.process.wait(scaled(30))
        assert a.terminate() == 0
        acked = acknowledged(publishers)
        await wait_until(
            lambda: all(set(acked) <= set(d.seqs) for d in deliveries), timeout=30, what="every acknowledged message"
        )
        await wait_until(
            lambda: all(c.url == b.ws_url and c.state == ClientState.CONNECTED for c in clients), what="the move to B"
        )
        for delivery in deliveries:
            delivery.check(range(1, len(delivery) + 1))
        assert losses == []
    finally:
        for client in clients:
            await client.disconnect()
