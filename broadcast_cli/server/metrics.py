"""Prometheus metrics of one server, served at ``GET /metrics``.

Counters come from the hub's :class:`~broadcast_cli.hub.HubStats` and gauges
from the hub and the WebSocket endpoint, read when Prometheus scrapes; only the
fan-out histogram is recorded on the hot path (once per fan-out, not per
delivery). Each app has its own metrics, so several servers in one process
(tests, embedding) do not mix their numbers.

A server of several workers answers a scrape from whichever worker the kernel
hands it to; that worker asks its siblings for a :class:`MetricsSnapshot` of
their numbers (:mod:`.worker_metrics`) and adds them to its own, so that every
scrape describes the whole server.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Iterator, Mapping

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..hub import Hub
from ..protocol import PROTOCOL_VERSION
from .websocket import WebSocketEndpoint
from .worker_metrics import SIBLING_TIMEOUT, MetricsExchange

__all__ = ["CONTENT_TYPE", "FANOUT_BUCKETS", "FanoutHistogram", "MetricsSnapshot", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The media type of :meth:`ServerMetrics.render`'s output."""

FANOUT_BUCKETS = (1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1)
"""The upper bounds, in seconds, of the fan-out histogram's buckets (then ``+Inf``)."""


class FanoutHistogram:
    """Fan-out durations counted in :data:`FANOUT_BUCKETS`: one bisection and two additions per fan-out.

    Plain numbers, so that a worker can send them to its siblings as they are.
    """

    def __init__(self) -> None:
        self.counts = [0] * (len(FANOUT_BUCKETS) + 1)
        """Observations per bucket (not cumulative); the last bucket is ``+Inf``."""
        self.sum = 0.0
        """The sum of every observation, in seconds."""

    def observe(self, seconds: float) -> None:
        """Count one fan-out that took *seconds*."""
        # bisect_left: a value equal to a bound belongs to that bucket, as Prometheus's `le` says.
        self.counts[bisect.bisect_left(FANOUT_BUCKETS, seconds)] += 1
        self.sum += seconds


@dataclasses.dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """One process's numbers at one moment: what a scrape renders, and what a worker sends its siblings."""

    pid: int
    """The process the numbers are from."""
    backend_up: bool
    connections: int
    channels: tuple[str, ...]
    """The channels with local subscribers, by name, so that workers sharing a channel count it once."""
    subscriptions: int
    published: int
    received: int
    delivered: int
    recovered: int
    not_recovered: int
    slow_consumer_closes: int
    catch_ups: int
    fanout_counts: tuple[int, ...]
    """:attr:`FanoutHistogram.counts`."""
    fanout_sum: float

    def to_bytes(self) -> bytes:
        """The snapshot as JSON."""
        return orjson.dumps(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> MetricsSnapshot:
        """The snapshot that :meth:`to_bytes` made; raises :class:`ValueError` for anything else."""
        fields = orjson.loads(data)  # JSONDecodeError is a ValueError
        if not isinstance(fields, dict) or fields.keys() != _FIELD_NAMES:
            raise ValueError("not a metrics snapshot")
        channels, counts = fields["channels"], fields["fanout_counts"]
        if not isinstance(channels, list) or not isinstance(counts, list) or len(counts) != len(FANOUT_BUCKETS) + 1:
            raise ValueError("not a metrics snapshot")
        return cls(**{**fields, "channels": tuple(channels), "fanout_counts": tuple(counts)})


_FANOUT_LABELS = (*map(repr, FANOUT_BUCKETS), "+Inf")
"""The buckets' ``le`` labels, as prometheus_client writes them ("1e-06", "0.00025", ...)."""

_FIELD_NAMES = {field.name for field in dataclasses.fields(MetricsSnapshot)}


class _Families(Collector):
    """The metric families of one scrape, from this process's snapshot and, with workers, its siblings'."""

    def __init__(
        self, backend: str, local: MetricsSnapshot, workers: Mapping[int, MetricsSnapshot | None] | None
    ) -> None:
        self.backend = backend
        self.local = local
        self.workers = workers
        """Every worker's snapshot by index (``None``: it did not answer); ``None`` for a single process."""

    def collect(self) -> Iterator[Metric]:
        answered = (
            [self.local] if self.workers is None else [shot for shot in self.workers.values() if shot is not None]
        )

        def total(name: str) -> int:
            return sum(getattr(shot, name) for shot in answered)

        info = GaugeMetricFamily(
            "broadcast_info", "The server's version, protocol and backend.", labels=["version", "protocol", "backend"]
        )
        info.add_metric([__version__, str(PROTOCOL_VERSION), self.backend], 1)
        yield info
        yield GaugeMetricFamily(
            "broadcast_backend_up",
            "1 while the backend's connection for other instances' messages is up (every worker's; always 1 in "
            "memory).",
            value=1 if all(shot.backend_up for shot in answered) else 0,
        )
        yield GaugeMetricFamily("broadcast_connections", "Open WebSocket connections.", value=total("connections"))
        channels = set().union(*(shot.channels for shot in answered))
        yield GaugeMetricFamily("broadcast_channels", "Channels with local subscribers.", value=len(channels))
        yield GaugeMetricFamily(
            "broadcast_subscriptions",
            "Subscriptions of local connections, to channels and patterns.",
            value=total("subscriptions"),
        )
        yield CounterMetricFamily(
            "broadcast_messages_published", "Messages published through this instance.", value=total("published")
        )
        yield CounterMetricFamily(
            "broadcast_messages_received",
            "Messages fanned out to local subscribers, published on any instance (once per worker that fans out).",
            value=total("received"),
        )
        yield CounterMetricFamily(
            "broadcast_deliveries",
            "Frames handed to local subscribers (messages × subscribers).",
            value=total("delivered"),
        )
        recoveries = CounterMetricFamily(
            "broadcast_recoveries", "Subscriptions that asked to recover (since), by result.", labels=["result"]
        )
        recoveries.add_metric(["recovered"], total("recovered"))
        recoveries.add_metric(["not_recovered"], total("not_recovered"))
        yield recoveries
        yield CounterMetricFamily(
            "broadcast_slow_consumer_closes",
            "Connections closed with 4008 because their send buffer overflowed.",
            value=total("slow_consumer_closes"),
        )
        yield CounterMetricFamily(
            "broadcast_history_catch_ups",
            "History reads that filled a gap in what the backend delivered (e.g. after a lost Redis connection).",
            value=total("catch_ups"),
        )
        yield self._fanout(answered)
        if self.workers is not None:
            yield from self._per_worker(self.workers)

    @staticmethod
    def _fanout(answered: list[MetricsSnapshot]) -> Metric:
        counts = [sum(column) for column in zip(*(shot.fanout_counts for shot in answered), strict=True)]
        cumulative, buckets = 0, []
        for bound, count in zip(_FANOUT_LABELS, counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        return HistogramMetricFamily(
            "broadcast_fanout_seconds",
            "Time to hand one batch of messages to every local subscriber's queue.",
            buckets=buckets,
            sum_value=sum(shot.fanout_sum for shot in answered),
        )

    @staticmethod
    def _per_worker(workers: Mapping[int, MetricsSnapshot | None]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "broadcast_worker_up",
            f"1 for a worker whose numbers this scrape includes, 0 for one that did not answer within "
            f"{SIBLING_TIMEOUT:g} s (its numbers are missing from the totals).",
            labels=["worker"],
        )
        connections = GaugeMetricFamily(
            "broadcast_worker_connections", "Open WebSocket connections of each worker.", labels=["worker"]
        )
        for index, shot in sorted(workers.items()):
            up.add_metric([str(index)], 0 if shot is None else 1)
            if shot is not None:
                connections.add_metric([str(index)], shot.connections)
        yield up
        yield connections


class _Local(Collector):
    """This process's metrics, read when collected."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return _Families(self.metrics.hub.backend.url, self.metrics.snapshot(), None).collect()


class ServerMetrics:
    """The metrics of one app, fed by *hub* and *endpoint*; of the whole server once :attr:`workers` is set."""

    def __init__(self, hub: Hub, endpoint: WebSocketEndpoint) -> None:
        self.hub = hub
        self.endpoint = endpoint
        self.fanout_seconds = FanoutHistogram()
        """The fan-out histogram, which the hub feeds."""
        hub.stats.fanout_observer = self.fanout_seconds.observe
        self.registry = CollectorRegistry()
        """A registry of this app's own, holding this process's metrics."""
        self.registry.register(_Local(self))
        self.workers: MetricsExchange | None = None
        """How this process reaches its sibling workers, when it is one of several (set by :mod:`.serve`)."""

    def snapshot(self) -> MetricsSnapshot:
        """This process's numbers, now."""
        hub, stats = self.hub, self.hub.stats
        channels = hub.channels()
        return MetricsSnapshot(
            pid=os.getpid(),
            backend_up=hub.backend.connected,
            connections=self.endpoint.connections(),
            channels=tuple(info.channel for info in channels),
            subscriptions=sum(info.subscribers for info in channels) + sum(hub.patterns().values()),
            published=stats.published,
            received=stats.received,
            delivered=stats.delivered,
            recovered=stats.recovered,
            not_recovered=stats.not_recovered,
            slow_consumer_closes=self.endpoint.slow_consumer_closes,
            catch_ups=stats.catch_ups,
            fanout_counts=tuple(self.fanout_seconds.counts),
            fanout_sum=self.fanout_seconds.sum,
        )

    def render(self) -> bytes:
        """This process's metrics in Prometheus's text format."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        """The server's metrics in Prometheus's text format: this process's, plus its sibling workers' if any.

        A sibling that does not answer within
        :data:`~.worker_metrics.SIBLING_TIMEOUT` is left out of the totals and
        shown as ``broadcast_worker_up{worker="N"} 0``.
        """
        exchange = self.workers
        if exchange is None or exchange.index is None:
            return self.render()
        answers = await exchange.ask_siblings()
        local = self.snapshot()
        workers: dict[int, MetricsSnapshot | None] = {exchange.index: local}
        for index, data in answers.items():
            try:
                workers[index] = None if data is None else MetricsSnapshot.from_bytes(data)
            except (ValueError, TypeError):
                workers[index] = None  # cut short: it exited while answering
        return generate_latest(_Families(self.hub.backend.url, local, workers))
