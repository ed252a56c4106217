"""``GET /metrics``: Prometheus metrics that follow what the server does."""

from __future__ import annotations

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from broadcast_cli.server.config import ServerConfig
from tests.conftest import scaled, wait_until
from tests.integration.conftest import RedisProcess, run_live_server

pytestmark = pytest.mark.redis


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


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
