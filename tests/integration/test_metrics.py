"""``GET /metrics``: Prometheus metrics that follow what the server does.

Servers of several worker processes are tested in ``tests/e2e/test_metrics_workers.py``;
here, the parts they rest on, in one process.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from broadcast_cli.hub import Hub
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.metrics import FANOUT_BUCKETS, MetricsSnapshot, ServerMetrics
from broadcast_cli.server.websocket import WebSocketEndpoint
from broadcast_cli.server.worker_metrics import MetricsExchange
from tests.conftest import scaled, wait_until
from tests.integration.conftest import RedisProcess, run_live_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.mark.redis
async def test_metrics_follow_connections_messages_recoveries_and_redis(own_redis: RedisProcess) -> None:
    async with (
        run_live_server(ServerConfig(redis_url=own_redis.url)) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=scaled(10)) as http,
    ):
        async with connect(server.ws_url) as ws:
            await ws.send('{"subscribe": ["orders"], "id": 1}')
            epoch = orjson.loads(await ws.recv())["channels"]["orders"]["epoch"]
            for n in range(3):
                (await http.post("/publish", json={"channel": "orders", "event": "e", "payload": n})).raise_for_status()
            for _ in range(3):
                await ws.recv()
            metrics = await scrape(http)
            assert metrics[("broadcast_connections", ())] == 1
            assert metrics[("broadcast_channels", ())] == 1
            assert metrics[("broadcast_subscriptions", ())] == 1
            assert metrics[("broadcast_messages_published_total", ())] == 3
            assert metrics[("broadcast_messages_received_total", ())] == 3
            assert metrics[("broadcast_deliveries_total", ())] == 3
            assert metrics[("broadcast_fanout_seconds_count", ())] >= 1
            assert metrics[("broadcast_backend_up", ())] == 1

        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"subscribe": [{"channel": "orders", "since": 1, "epoch": epoch}]}).decode())
            await ws.send(orjson.dumps({"subscribe": [{"channel": "other", "since": 5, "epoch": "gone"}]}).decode())
            for _ in range(2):  # seq 2 and 3, recovered
                await ws.recv()
            await wait_until(lambda: server.hub.subscriber_count("other") == 1, what="the second subscribe")
            metrics = await scrape(http)
            assert metrics[("broadcast_recoveries_total", (("result", "recovered"),))] == 1
            assert metrics[("broadcast_recoveries_total", (("result", "not_recovered"),))] == 1

        own_redis.stop()
        await wait_until(lambda: not server.hub.backend.connected, what="the lost Redis connection to be noticed")
        assert (await scrape(http))[("broadcast_backend_up", ())] == 0
        own_redis.start()
        await wait_until(lambda: server.hub.backend.connected, timeout=15, what="Redis to be back")
        assert (await scrape(http))[("broadcast_backend_up", ())] == 1


async def test_apps_in_one_process_keep_their_own_numbers() -> None:
    async with (
        run_live_server(ServerConfig()) as first,
        run_live_server(ServerConfig()) as second,
        httpx.AsyncClient(base_url=first.http_url, timeout=scaled(10)) as on_first,
        httpx.AsyncClient(base_url=second.http_url, timeout=scaled(10)) as on_second,
    ):
        for n in range(2):
            (await on_first.post("/publish", json={"channel": "c", "event": "e", "payload": n})).raise_for_status()
        one, other = await scrape(on_first), await scrape(on_second)
    assert one[("broadcast_messages_published_total", ())] == 2
    assert other[("broadcast_messages_published_total", ())] == 0
    assert not any(name.startswith("broadcast_worker_") for name, _ in (*one, *other))  # one process: no workers


def test_the_fanout_histogram_counts_as_prometheus_client_does() -> None:
    hub = Hub()
    metrics = ServerMetrics(hub, WebSocketEndpoint(hub))
    reference = Histogram("broadcast_fanout_seconds", "", buckets=FANOUT_BUCKETS, registry=CollectorRegistry())
    for seconds in (0.0, *FANOUT_BUCKETS, 3e-6, 0.0007, 0.2, 7.0):  # on every bound, between them, beyond
        metrics.fanout_seconds.observe(seconds)
        reference.observe(seconds)
    expected = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in reference.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }
    samples = parse(metrics.render().decode())
    assert {key: value for key, value in samples.items() if key[0].startswith("broadcast_fanout_seconds")} == expected


def test_a_snapshot_makes_the_trip_between_workers_and_nothing_else_passes_for_one() -> None:
    hub = Hub()
    metrics = ServerMetrics(hub, WebSocketEndpoint(hub))
    metrics.fanout_seconds.observe(0.003)
    snapshot = metrics.snapshot()
    assert MetricsSnapshot.from_bytes(snapshot.to_bytes()) == snapshot
    data = snapshot.to_bytes()
    for bad in (b"", data[: len(data) // 2], b"[]", b'{"pid": 1}', data.replace(b'"channels":[]', b'"channels":7')):
        with pytest.raises(ValueError, match=r"."):
            MetricsSnapshot.from_bytes(bad)


async def test_a_worker_answers_with_its_snapshot_and_a_gone_sibling_counts_for_nothing() -> None:
    hub = Hub()
    metrics = ServerMetrics(hub, WebSocketEndpoint(hub))
    exchange = MetricsExchange.create(3)
    try:
        exchange.adopt(0)  # this process is worker 0; workers 1 and 2 have exited: nobody holds their sockets
        metrics.workers = exchange
        async with exchange.answering(lambda: metrics.snapshot().to_bytes()):
            reader, writer = await asyncio.open_unix_connection(str(exchange.path(0)))
            assert MetricsSnapshot.from_bytes(await reader.read()) == metrics.snapshot()
            writer.close()

            start = time.monotonic()
            assert await exchange.ask_siblings() == {1: None, 2: None}
            assert time.monotonic() - start < scaled(2)  # refused at once, not waited for

            samples = parse((await metrics.scrape()).decode())
            up = {dict(labels)["worker"]: value for (name, labels), value in samples.items()
                  if name == "broadcast_worker_up"}
            assert up == {"0": 1, "1": 0, "2": 0}
            assert samples[("broadcast_worker_connections", (("worker", "0"),))] == 0
        assert not exchange.path(0).exists()
    finally:
        exchange.remove()
    assert not exchange.directory.exists()
