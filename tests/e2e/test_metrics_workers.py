"""``GET /metrics`` of ``broadcast serve --workers 2``: whichever worker answers, the scrape describes the whole server.

The kernel hands each new connection to one worker, so every scrape here is on
a connection of its own. To put WebSocket clients on a chosen worker, the test
stops the other one (SIGSTOP) while they connect, so only one worker accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli.server.worker_metrics import SIBLING_TIMEOUT
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, worker_pids

pytestmark = pytest.mark.redis

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

PUBLISHED = 4
SCRAPES = 20


def gone(pid: int) -> bool:
    """Whether process *pid* has exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """Worker *pid* frozen with SIGSTOP until the block ends, so that it accepts no connection meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def scrape(server: ServerProcess) -> Samples:
    """One scrape, on a new connection (so any worker may answer it)."""
    async with httpx.AsyncClient(timeout=scaled(SIBLING_TIMEOUT + 10)) as http:
        response = await http.get(f"{server.http_url}/metrics", headers={"connection": "close"})
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def per_worker(samples: Samples, name: str) -> dict[str, float]:
    """The samples of the per-worker metric *name*, by worker number."""
    return {dict(labels)["worker"]: value for (sample, labels), value in samples.items() if sample == name}


async def subscribe(server: ServerProcess, count: int) -> list[ClientConnection]:
    """*count* clients subscribed to ``orders``, each acknowledged."""
    clients = []
    for _ in range(count):
        ws = await connect(server.ws_url)
        clients.append(ws)
        await ws.send('{"id": 1, "subscribe": ["orders"]}')
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
        assert ack["type"] == "ack"
    return clients


async def test_every_scrape_describes_every_worker(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server("--workers", "2", "--redis-url", redis_url)
    first, second = worker_pids(server)
    clients: list[ClientConnection] = []
    try:
        with stopped(second):
            clients += await subscribe(server, 3)  # all on the first worker
        with stopped(first):
            clients += await subscribe(server, 2)  # all on the second
        async with httpx.AsyncClient(timeout=scaled(10)) as http:
            for n in range(PUBLISHED):  # a connection each: the publishes land on either worker
                response = await http.post(
                    f"{server.http_url}/publish",
                    json={"channel": "orders", "event": "e", "payload": n},
                    headers={"connection": "close"},
                )
                response.raise_for_status()
        for ws in clients:
            for _ in range(PUBLISHED):
                await asyncio.wait_for(ws.recv(), scaled(10))

        scrapes = [await scrape(server) for _ in range(SCRAPES)]
        for samples in scrapes:
            assert samples[("broadcast_messages_published_total", ())] == PUBLISHED
            assert samples[("broadcast_messages_received_total", ())] == 2 * PUBLISHED  # each worker fans out
            assert samples[("broadcast_deliveries_total", ())] == 5 * PUBLISHED
            assert samples[("broadcast_connections", ())] == 5
            assert samples[("broadcast_subscriptions", ())] == 5
            assert samples[("broadcast_channels", ())] == 1  # one channel, though both workers have it
            assert samples[("broadcast_backend_up", ())] == 1
            # Two workers, each once: the answering worker's numbers are not also counted as a sibling's.
            assert per_worker(samples, "broadcast_worker_up") == {"0": 1, "1": 1}
            assert sorted(per_worker(samples, "broadcast_worker_connections").values()) == [2, 3]
            fanouts = samples[("broadcast_fanout_seconds_count", ())]
            assert fanouts >= 2  # at least one fan-out per worker
            assert samples[("broadcast_fanout_seconds_bucket", (("le", "+Inf"),))] == fanouts
        assert all(samples == scrapes[0] for samples in scrapes)  # nothing moved between scrapes
    finally:
        for ws in clients:
            await ws.close()
    assert server.terminate() == 0
    assert "Traceback" not in "".join(server.stderr_lines)


async def test_a_worker_that_does_not_answer_is_shown_missing_not_waited_for_forever(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server("--workers", "2", "--redis-url", redis_url)
    first, _ = worker_pids(server)
    clients = await subscribe(server, 2)
    try:
        assert (await scrape(server))[("broadcast_connections", ())] == 2
        with stopped(first):  # the scrape reaches the other worker, which cannot reach this one
            start = time.monotonic()
            samples = await scrape(server)
            waited = time.monotonic() - start
        assert sorted(per_worker(samples, "broadcast_worker_up").values()) == [0, 1]
        assert waited >= SIBLING_TIMEOUT * 0.9
        # Only the answering worker's numbers, once.
        [answering] = per_worker(samples, "broadcast_worker_connections").values()
        assert samples[("broadcast_connections", ())] == answering
        # Back, it answers again, and every connection is counted once.
        samples = await scrape(server)
        assert per_worker(samples, "broadcast_worker_up") == {"0": 1, "1": 1}
        assert samples[("broadcast_connections", ())] == 2
    finally:
        for ws in clients:
            await ws.close()


def test_the_private_directory_lives_as_long_as_the_server(
    redis_url: str, start_server: Callable[..., ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    server = start_server("--workers", "2", "--redis-url", redis_url)
    [directory] = tmp_path.glob("broadcast-metrics-*")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert sorted(path.name for path in directory.iterdir()) == ["0.sock", "1.sock"]
    assert server.terminate() == 0
    assert not directory.exists()

    # A parent killed outright cannot clean up; its workers, stopping, remove what they made.
    server = start_server("--workers", "2", "--redis-url", redis_url)
    pids = worker_pids(server)
    [directory] = tmp_path.glob("broadcast-metrics-*")
    server.kill()

    deadline = time.monotonic() + scaled(15)
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "the workers did not stop after their parent died"
        time.sleep(0.02)
    assert not directory.exists()
