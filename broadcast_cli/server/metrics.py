"""Prometheus metrics of one server process, served at ``GET /metrics``.

Counters come from the hub's :class:`~broadcast_cli.hub.HubStats` and gauges
from the hub and the WebSocket endpoint, read when Prometheus scrapes; only the
fan-out histogram is recorded on the hot path (once per fan-out, not per
delivery). Each app has its own registry, so several servers in one process
(tests, embedding) do not mix their numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..hub import Hub
from ..protocol import PROTOCOL_VERSION
from .websocket import WebSocketEndpoint

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :meth:`ServerMetrics.render`'s output."""

_FANOUT_BUCKETS = (1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1)


class _Collector(Collector):
    """Reads the hub and the endpoint at scrape time."""

    def __init__(self, hub: Hub, endpoint: WebSocketEndpoint) -> None:
        self.hub = hub
        self.endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        hub, stats = self.hub, self.hub.stats
        info = GaugeMetricFamily(
            "broadcast_info", "The server's version, protocol and backend.", labels=["version", "protocol", "backend"]
        )
        info.add_metric([__version__, str(PROTOCOL_VERSION), hub.backend.url], 1)
        yield info
        yield GaugeMetricFamily(
            "broadcast_backend_up",
            "1 while the backend's connection for other instances' messages is up (always 1 in memory).",
            value=1 if hub.backend.connected else 0,
        )
        yield GaugeMetricFamily(
            "broadcast_connections", "Open WebSocket connections.", value=self.endpoint.connections()
        )
        channels = hub.channels()
        yield GaugeMetricFamily("broadcast_channels", "Channels with local subscribers.", value=len(channels))
        patterns = hub.patterns()
        yield GaugeMetricFamily(
            "broadcast_subscriptions",
            "Subscriptions of local connections, to channels and patterns.",
            value=sum(info.subscribers for info in channels) + sum(patterns.values()),
        )
        yield CounterMetricFamily(
            "broadcast_messages_published", "Messages published through this instance.", value=stats.published
        )
        yield CounterMetricFamily(
            "broadcast_messages_received",
            "Messages fanned out to local subscribers, published on any instance.",
            value=stats.received,
        )
        yield CounterMetricFamily(
            "broadcast_deliveries",
            "Frames handed to local subscribers (messages × subscribers).",
            value=stats.delivered,
        )
        recoveries = CounterMetricFamily(
            "broadcast_recoveries", "Subscriptions that asked to recover (since), by result.", labels=["result"]
        )
        recoveries.add_metric(["recovered"], stats.recovered)
        recoveries.add_metric(["not_recovered"], stats.not_recovered)
        yield recoveries
        yield CounterMetricFamily(
            "broadcast_slow_consumer_closes",
            "Connections closed with 4008 because their send buffer overflowed.",
            value=self.endpoint.slow_consumer_closes,
        )
        yield CounterMetricFamily(
            "broadcast_history_catch_ups",
            "History reads that filled a gap in what the backend delivered (e.g. after a lost Redis connection).",
            value=stats.catch_ups,
        )


class ServerMetrics:
    """The metrics of one app: a registry of its own, fed by *hub* and *endpoint*."""

    def __init__(self, hub: Hub, endpoint: WebSocketEndpoint) -> None:
        self.registry = CollectorRegistry()
        self.fanout_seconds = Histogram(
            "broadcast_fanout_seconds",
            "Time to hand one batch of messages to every local subscriber's queue.",
            buckets=_FANOUT_BUCKETS,
            registry=self.registry,
        )
        hub.stats.fanout_observer = self.fanout_seconds.observe
        self.registry.register(_Collector(hub, endpoint))

    def render(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)
