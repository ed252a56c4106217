"""Reliability 2: a client stops reading while 10,000 messages go to its channel.

Beside it, 100 clients that read normally get everything in order; the stalled
one is closed with 4008 once its bounded send buffer overflows, and recovers
from history when it comes back with its last ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli.protocol import CloseCode
from tests.conftest import Delivery, scaled
from tests.integration.conftest import ServerProcess, stalled_connection

READERS = 100
MESSAGES = 10_000
BATCH = 50
PAYLOAD = "x" * 500
SEND_BUFFER_MESSAGES = 1000


async def subscribe(ws: ClientConnection, item: str | dict[str, Any]) -> dict[str, Any]:
    """Subscribe to one channel and return its ack entry."""
    await ws.send(orjson.dumps({"subscribe": [item], "id": 1}).decode())
    ack = orjson.loads(await ws.recv())
    assert ack["type"] == "ack", ack
    entry: dict[str, Any] = ack["channels"]["orders"]
    return entry


async def read_until(ws: ClientConnection, delivery: Delivery, last: int) -> None:
    """Read events into *delivery* until seq *last*."""
    while not delivery.seqs or delivery.seqs[-1] < last:
        delivery.append(orjson.loads(await ws.recv(decode=False))["seq"])


async def test_a_stalled_client_is_closed_and_recovers_while_others_get_everything(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(
        "--send-buffer-messages", str(SEND_BUFFER_MESSAGES), "--history-size", str(MESSAGES)
    )
    async with contextlib.AsyncExitStack() as stack:
        readers = [await stack.enter_async_context(connect(server.ws_url)) for _ in range(READERS)]
        for ws in readers:
            await subscribe(ws, "orders")
        stalled = await stack.enter_async_context(stalled_connection(server.ws_url))
        epoch = (await subscribe(stalled, "orders"))["epoch"]
        deliveries = [Delivery(f"reader {n}") for n in range(READERS)]
        pairs = zip(readers, deliveries, strict=True)
        reading = [asyncio.ensure_future(read_until(ws, d, MESSAGES)) for ws, d in pairs]

        seen = Delivery("stalled client")
        close_codes: list[int | None] = []

        async def revive(http: httpx.AsyncClient) -> None:
            # Once the server gave up on it, the stalled client reads again: it finds what
            # reached its socket before the overflow, then the close code.
            while True:
                channels = (await http.get("/channels")).json()["channels"]
                if channels and channels[0]["subscribers"] == READERS:
                    break
                await asyncio.sleep(0.01)
            try:
                while True:
                    seen.append(orjson.loads(await stalled.recv(decode=False))["seq"])
            except ConnectionClosed as exc:
                close_codes.append(exc.rcvd.code if exc.rcvd is not None else None)

        async with httpx.AsyncClient(base_url=server.http_url, timeout=scaled(30)) as http:
            reviving = asyncio.ensure_future(revive(http))
            batch = [{"channel": "orders", "event": "e", "payload": PAYLOAD}] * BATCH
            for _ in range(MESSAGES // BATCH):
                (await http.post("/publish", json=batch)).raise_for_status()
            await asyncio.wait_for(asyncio.gather(*reading, reviving), scaled(90))

        for delivery in deliveries:
            delivery.check(range(1, MESSAGES + 1))
        assert close_codes == [CloseCode.SLOW_CONSUMER]
        assert len(seen) < MESSAGES - SEND_BUFFER_MESSAGES
        seen.check(range(1, len(seen) + 1))

        # ... and recovers everything after its last seq from history.
        async with connect(server.ws_url) as again:
            last = seen.seqs[-1] if seen.seqs else 0
            entry = await subscribe(again, {"channel": "orders", "since": last, "epoch": epoch})
            assert entry["recovered"] is True
            await asyncio.wait_for(read_until(again, seen, MESSAGES), scaled(30))
        seen.check(range(1, MESSAGES + 1))
