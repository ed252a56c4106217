"""Reliability 3: Redis stops mid-stream, then comes back.

The servers stay up and keep their WebSocket clients; readiness reports Redis
down; a publish meanwhile gets 503, never a 2xx; once Redis is back,
cross-instance fan-out resumes within seconds, without a restart, and clients
get what they missed — or are told the history was lost when Redis came back empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from broadcast_cli import BroadcastClient, ClientState
from broadcast_cli.client import RecoveryInfo, RecoveryReason
from tests.conftest import Delivery, scaled, wait_until
from tests.integration.conftest import RedisProcess, ServerProcess

pytestmark = pytest.mark.redis

BEFORE = 100
AFTER = 100
OUTAGE = 3.0
"""Seconds Redis stays down."""
RESUME_WITHIN = 5.0
"""Seconds within which cross-instance fan-out must resume once Redis is back."""


@pytest.fixture(params=["persistent", "empty"])
def outage_redis(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RedisProcess]:
    """A Redis of the test's own that keeps its data across a restart, or comes back empty."""
    server = RedisProcess(tmp_path, persistent=request.param == "persistent")
    server.start()
    yield server
    server.stop()


class Watched:
    """A client on one instance, subscribed to ``orders``, recording everything that happens to it."""

    def __init__(self, name: str, url: str) -> None:
        self.delivery = Delivery(name)
        self.losses: list[RecoveryInfo] = []
        self.states: list[ClientState] = []
        self.client = BroadcastClient(url, backoff_initial=0.05, backoff_max=0.5)
        self.client.on_state_change(self.states.append)

    async def start(self) -> None:
        await self.client.connect(timeout=scaled(10))
        sub = self.client.subscribe(
            "orders", lambda message: self.delivery.append(message.seq), on_unrecovered=self.losses.append
        )
        await sub.wait_ready(scaled(10))


async def publish(http: httpx.AsyncClient, n: int) -> httpx.Response:
    return await http.post("/publish", json={"channel": "orders", "event": "e", "payload": {"n": n}})


async def test_servers_ride_out_a_redis_outage(
    outage_redis: RedisProcess, start_server: Callable[..., ServerProcess]
) -> None:
    a = start_server("--redis-url", outage_redis.url)
    b = start_server("--redis-url", outage_redis.url)
    on_a, on_b = Watched("client on A", a.ws_url), Watched("client on B", b.ws_url)
    await on_a.start()
    await on_b.start()
    async with (
        httpx.AsyncClient(base_url=a.http_url, timeout=scaled(15)) as http_a,
        httpx.AsyncClient(base_url=b.http_url, timeout=scaled(15)) as http_b,
    ):
        try:
            for n in range(1, BEFORE + 1):
                (await publish(http_a, n)).raise_for_status()
            await wait_until(lambda: len(on_a.delivery) == len(on_b.delivery) == BEFORE, what="the first messages")

            outage_redis.stop()
            for http in (http_a, http_b):
                ready = await http.get("/ready")
                assert ready.status_code == 503, ready.text
                assert ready.json()["backend"]["state"] == "down"
                assert (await http.get("/health")).status_code == 200
                refused = await publish(http, 0)
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "backend_unavailable"
            # Stay down long enough for the servers' reconnection backoff to reach its cap,
            # refusing every publish meanwhile.
            down_until = time.monotonic() + OUTAGE
            refusals = 0
            while time.monotonic() < down_until:
                refused = await publish((http_a, http_b)[refusals % 2], 0)
                assert refused.status_code == 503, refused.text
                refusals += 1
                await asyncio.sleep(0.05)  # pacing
            assert a.process.poll() is None and b.process.poll() is None

            outage_redis.start()
            restarted = time.monotonic()
            # Publish on A as soon as it can; the first that B's client receives marks the resumption.
            resumed: float | None = None
            n = BEFORE + 1
            while n <= BEFORE + AFTER:
                response = await publish(http_a, n)
                if response.status_code == 503:
                    await asyncio.sleep(0.02)  # Redis is not accepting yet: retry, paced
                    continue
                response.raise_for_status()
                n += 1
                if resumed is None and len(on_b.delivery) > BEFORE:
                    resumed = time.monotonic() - restarted
            await wait_until(
                lambda: len(on_a.delivery) == len(on_b.delivery) == BEFORE + AFTER, timeout=30, what="every message"
            )
            if resumed is None:
                resumed = time.monotonic() - restarted
            print(f"cross-instance fan-out resumed {resumed:.2f} s after Redis restarted")
            assert resumed < scaled(RESUME_WITHIN), f"cross-instance fan-out resumed after {resumed:.2f} s"
            assert (await http_a.get("/ready")).status_code == 200

            for watched in (on_a, on_b):
                # Redis's outage never cost a WebSocket connection.
                assert ClientState.RECONNECTING not in watched.states
                if outage_redis.persistent:
                    watched.delivery.check(range(1, BEFORE + AFTER + 1))
                    assert watched.losses == []
                else:
                    # Redis came back empty: a new epoch, numbered from 1, and the client is told.
                    assert watched.delivery.seqs[:BEFORE] == list(range(1, BEFORE + 1))
                    assert watched.delivery.seqs[BEFORE:] == list(range(1, AFTER + 1))
                    assert [loss.reason for loss in watched.losses] == [RecoveryReason.EPOCH_CHANGED]
        finally:
            await on_a.client.disconnect()
            await on_b.client.disconnect()
