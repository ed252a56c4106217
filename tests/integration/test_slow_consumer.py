"""Reliability 2: a client stops reading, or reads slower than messages come.

Beside it, clients that read normally get everything in order; the slow one is
closed with 4008 once its bounded send buffer overflows, and recovers from
history when it comes back with its last ``seq``: with the send buffer's
defaults, the Python client does that on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli import BroadcastClient, ClientState, Message
from broadcast_cli.client import RecoveryInfo
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.config import Limits
from tests.conftest import Delivery, scaled, wait_until
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


# -- with the defaults: a reader slower than the publisher, then back to speed ---------

FAST_READERS = 3
SLOW_PAYLOAD = "y" * 4000
"""About 4 kB per event: the default send buffer (1 MiB) holds some 250 of them."""
SLOW_BATCH = 25
SLOW_SHARE = 2
"""Per batch of SLOW_BATCH published, the slow reader may take this many: it reads slower than messages come."""
MOST = 5000
"""The most messages published before the slow reader must have been closed: enough for the send
buffer, the kernel's socket buffers on both sides (a few MiB) and what it read meanwhile."""
TAIL = 100
"""Published after its close: live for the fast readers, recovered or live for the slow one."""
HISTORY = MOST + TAIL
"""History large enough to hold every message of the test, so that the slow reader's recovery cannot
fall out of it (with the default 1,000, one that falls that far behind one channel gets recovered: false)."""
LAG = 200
"""The publisher waits until every fast reader is within this many messages: the test's own loop reads
for them, and must not be what makes them slow on a loaded machine."""


class Throttle:
    """Lets a reader take :meth:`grant`-ed messages only, until :meth:`release`: then as many as come."""

    def __init__(self) -> None:
        self.released = False
        self._credit = 0
        self._changed = asyncio.Event()

    def grant(self, count: int) -> None:
        self._credit += count
        self._changed.set()

    def release(self) -> None:
        self.released = True
        self._changed.set()

    async def take(self) -> None:
        while not self.released and self._credit <= 0:
            self._changed.clear()
            await self._changed.wait()
        self._credit -= 1


async def slow_consumer_closes(http: httpx.AsyncClient) -> int:
    """The server's count of connections closed with 4008."""
    metrics = (await http.get("/metrics")).text
    match = re.search(r"^broadcast_slow_consumer_closes_total (\S+)$", metrics, re.MULTILINE)
    assert match is not None, metrics
    return int(float(match.group(1)))


async def read_all(ws: ClientConnection, delivery: Delivery) -> None:
    """Read events into *delivery* until the connection closes (which fails the test)."""
    while True:
        delivery.append(orjson.loads(await ws.recv(decode=False))["seq"])


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_with_the_default_send_buffer_a_slow_reader_is_closed_and_catches_up_on_its_own(
    backend: str, start_server: Callable[..., ServerProcess], request: pytest.FixtureRequest
) -> None:
    limits = Limits()
    args = ["--history-size", str(HISTORY)]  # and the send buffer's defaults: no --send-buffer-* option
    if backend == "redis":
        args += ["--redis-url", request.getfixturevalue("redis_url")]
    server = start_server(*args)

    throttle = Throttle()
    slow = Delivery("slow reader")
    losses: list[RecoveryInfo] = []
    states: list[ClientState] = []

    async def slowly(message: Message) -> None:
        await throttle.take()
        slow.append(message.seq)

    async with contextlib.AsyncExitStack() as stack:
        fast = [Delivery(f"fast reader {n}") for n in range(FAST_READERS)]
        readers = [await stack.enter_async_context(connect(server.ws_url)) for _ in range(FAST_READERS)]
        for ws in readers:
            await subscribe(ws, "orders")
        reading = [asyncio.ensure_future(read_all(ws, d)) for ws, d in zip(readers, fast, strict=True)]
        for task in reading:
            stack.callback(task.cancel)
        client = BroadcastClient(server.ws_url)
        stack.push_async_callback(client.disconnect)
        client.on_state_change(states.append)
        await client.connect(timeout=scaled(10))
        subscription = client.subscribe("orders", slowly, on_unrecovered=losses.append)
        await subscription.wait_ready(scaled(10))

        def fast_readers_within(count: int) -> bool:
            for task in reading:
                if task.done():
                    task.result()  # a fast reader was closed: fail with why
            return min(map(len, fast)) >= count

        async with httpx.AsyncClient(base_url=server.http_url, timeout=scaled(30)) as http:

            published = 0

            async def publish_batch() -> None:
                nonlocal published
                ahead = published - LAG
                await wait_until(lambda: fast_readers_within(ahead), 30, "the fast readers")
                batch = [{"channel": "orders", "event": "changed", "payload": SLOW_PAYLOAD}] * SLOW_BATCH
                (await http.post("/publish", json=batch)).raise_for_status()
                published += SLOW_BATCH

            # Publish while the slow reader takes 2 messages of every 25, until the server gives up on it.
            # Nothing waits for the slow one: the publisher keeps pace with the fast readers only, and
            # they keep up while the slow one's buffer overflows.
            while await slow_consumer_closes(http) == 0:
                assert published < MOST, f"no 4008 after {published} messages; {len(slow)} read slowly"
                await publish_batch()
                throttle.grant(SLOW_SHARE)
            behind = published - len(slow)
            # Back to full speed: it reads what reached it, gets 4008, reconnects and recovers the rest.
            throttle.release()
            for _ in range(TAIL // SLOW_BATCH):
                await publish_batch()
            await wait_until(
                lambda: fast_readers_within(published) and len(slow) >= published,
                60,
                f"every reader to get all {published} messages",
            )
            assert await slow_consumer_closes(http) == 1  # the slow reader only

        for delivery in [*fast, slow]:
            delivery.check(range(1, published + 1))
        assert behind * len(SLOW_PAYLOAD) > limits.send_buffer_bytes  # it was that far behind when closed
        assert client.close_code == CloseCode.SLOW_CONSUMER
        assert subscription.recovered is True
        assert losses == []
        connected, reconnecting = ClientState.CONNECTED, ClientState.RECONNECTING
        assert states == [ClientState.CONNECTING, connected, reconnecting, connected]  # one reconnection
