"""The result of a run: throughput, latency, correctness, and what the run cost (:class:`Report`).

Pure data: the runner fills it, ``broadcast bench`` prints it as a table or as
JSON (:meth:`Report.to_dict`). :attr:`Report.ok` is the correctness verdict:
every expected message delivered to every subscriber once, in order, and no
connection closed or refused along the way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .config import BenchConfig
from .seqs import SeqSummary
from .stats import Percentiles
from .system import Machine

__all__ = ["CSV_COLUMNS", "GeneratorUsage", "Report", "ServerUsage"]

CSV_COLUMNS = (
    "started", "version", "target",
    "subscribers", "channels", "publishers", "messages", "rate", "duration",
    "payload_size", "batch", "procs", "sample_every",
    "published", "publish_seconds", "publish_rate",
    "deliveries", "expected_deliveries", "bytes", "delivery_seconds",
    "deliveries_per_second", "megabytes_per_second",
    "latency_samples", "latency_min_ms", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
    "latency_p99_9_ms", "latency_max_ms",
    "connect_seconds", "connect_p50_ms", "connect_p99_ms", "connect_max_ms",
    "ok", "lost", "duplicated", "reordered", "closed", "errors",
    "bench_worker_cpu_percent", "bench_publisher_cpu_percent", "server_cpu_percent", "server_rss_per_connection_bytes",
)  # fmt: skip
"""The columns of ``broadcast bench --csv``: one row per run (:meth:`Report.csv_row`).

``started`` is the UTC time publishing began; ``target`` is ``memory`` or
``redis`` for embedded servers, else the WebSocket URLs; the scenario follows
(an empty cell: not set), then the figures, as in the JSON report.
"""

GENERATOR_BUSY = 90.0
"""Above this CPU percentage (of one core) a generator process may be what limits the figures."""


@dataclass(frozen=True, slots=True)
class GeneratorUsage:
    """What the bench itself cost, so that a reader can tell whether it was the bottleneck."""

    worker_cpu_percent: tuple[float, ...]
    """CPU of each subscriber process while it measured, in percent of one core."""
    publisher_cpu_percent: float
    """CPU of the coordinating process (the publishers) over the same time, in percent of one core."""
    loop: str
    """The event loop of the subscriber processes: ``uvloop`` or ``asyncio``."""

    @property
    def busy(self) -> bool:
        """Whether a process of the bench was nearly saturated (the figures may then be a floor)."""
        return any(cpu > GENERATOR_BUSY for cpu in (*self.worker_cpu_percent, self.publisher_cpu_percent))

    def to_dict(self) -> dict[str, Any]:
        """The usage as a JSON object."""
        return {
            "procs": len(self.worker_cpu_percent),
            "worker_cpu_percent": list(self.worker_cpu_percent),
            "publisher_cpu_percent": self.publisher_cpu_percent,
            "loop": self.loop,
            "busy": self.busy,
        }


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """CPU and memory of the server processes (when the bench knows their pids)."""

    pids: tuple[int, ...]
    cpu_percent: float | None
    """CPU of the servers while the bench measured, in percent of one core (added up over processes)."""
    rss_before: int | None
    """Resident memory before the subscribers connected, in bytes (added up over processes)."""
    rss_connected: int | None
    """Resident memory once every subscriber was subscribed, before publishing."""
    rss_after: int | None
    """Resident memory at the end of the run."""
    connections: int = 0
    """How many subscribers were connected (for :attr:`rss_per_connection`)."""

    @property
    def rss_per_connection(self) -> float | None:
        """Memory each subscribed connection added, in bytes."""
        if self.rss_before is None or self.rss_connected is None or not self.connections:
            return None
        return (self.rss_connected - self.rss_before) / self.connections

    def to_dict(self) -> dict[str, Any]:
        """The usage as a JSON object."""
        per_connection = self.rss_per_connection
        return {
            "pids": list(self.pids),
            "cpu_percent": self.cpu_percent,
            "rss_bytes": {"before": self.rss_before, "connected": self.rss_connected, "after": self.rss_after},
            "rss_per_connection_bytes": None if per_connection is None else round(per_connection),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one run measured."""

    version: str
    """broadcast-cli's version."""
    machine: Machine
    config: BenchConfig
    urls: tuple[str, ...]
    """The WebSocket endpoints the subscribers used."""
    publish_url: str
    embedded: str | None
    """``memory`` or ``redis`` when the bench started the servers, else ``None``."""
    connect_seconds: float
    """Wall time to connect and subscribe every subscriber."""
    connect: Percentiles | None
    """Time each subscriber took to connect and be subscribed."""
    published: int
    """Messages the server acknowledged."""
    publish_seconds: float
    """From the first publish request to the last answer."""
    publish_timed_out: bool
    """Whether the run's timeout stopped publishing early."""
    seqs: SeqSummary
    """The correctness check, over every subscriber."""
    frames: int
    """Event frames received (duplicates included)."""
    bytes: int
    """Bytes of those frames (WebSocket payloads)."""
    delivery_seconds: float
    """From the first publish request to the last frame received."""
    latency: Percentiles | None
    """Publish→deliver latency of the sampled frames."""
    generator: GeneratorUsage
    server: ServerUsage | None = None
    closed: dict[int, int] = field(default_factory=dict)
    """Subscribed connections the server closed during the run, by close code."""
    errors: tuple[str, ...] = ()
    """The first few errors (error frames, unexpected frames, closed connections)."""
    error_count: int = 0
    started: float = 0.0
    """Unix time when publishing started."""
    latency_histogram: str = field(default="", repr=False)
    """The latency samples' :class:`~.stats.LatencyHistogram`, encoded (for ``--hdr``)."""

    # -- figures ---------------------------------------------------------------

    @property
    def deliveries_per_second(self) -> float:
        """Event frames received per second, over every subscriber."""
        return self.frames / self.delivery_seconds if self.delivery_seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        """Megabytes (10⁶ bytes) of event frames received per second."""
        return self.bytes / self.delivery_seconds / 1e6 if self.delivery_seconds > 0 else 0.0

    @property
    def publish_rate(self) -> float:
        """Messages published per second (the achieved rate)."""
        return self.published / self.publish_seconds if self.publish_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether every expected message reached every subscriber once, in order, with no error."""
        return self.seqs.ok and not self.error_count and not self.closed

    def problems(self) -> list[str]:
        """What went wrong, one sentence each (empty when :attr:`ok`)."""
        problems = []
        seqs = self.seqs
        if not seqs.ok:
            problems.append(
                f"correctness check failed: {seqs.lost:,} lost, {seqs.duplicated:,} duplicated, "
                f"{seqs.reordered:,} reordered (of {seqs.expected:,} expected deliveries)"
            )
        if self.closed:
            codes = ", ".join(f"{count} with code {code}" for code, count in sorted(self.closed.items()))
            problems.append(f"the server closed subscribed connections: {codes}")
        if self.error_count:
            problems.append(f"{self.error_count} errors; the first: {self.errors[0] if self.errors else '?'}")
        return problems

    def csv_values(self) -> dict[str, object]:
        """The run's figures by :data:`CSV_COLUMNS` name (``None``: not set or not measured)."""
        seqs = self.seqs
        latency = self.latency
        connect = self.connect
        server = self.server
        per_connection = None if server is None else server.rss_per_connection
        values: dict[str, object] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "version": self.version,
            "target": self.embedded or " ".join(self.urls),
            **self._scenario(),
            "published": self.published,
            "publish_seconds": round(self.publish_seconds, 3),
            "publish_rate": round(self.publish_rate, 1),
            "deliveries": self.frames,
            "expected_deliveries": seqs.expected,
            "bytes": self.bytes,
            "delivery_seconds": round(self.delivery_seconds, 3),
            "deliveries_per_second": round(self.deliveries_per_second, 1),
            "megabytes_per_second": round(self.megabytes_per_second, 3),
            "connect_seconds": round(self.connect_seconds, 3),
            "ok": self.ok,
            "lost": seqs.lost,
            "duplicated": seqs.duplicated,
            "reordered": seqs.reordered,
            "closed": sum(self.closed.values()),
            "errors": self.error_count,
            "bench_worker_cpu_percent": max(self.generator.worker_cpu_percent, default=0.0),
            "bench_publisher_cpu_percent": self.generator.publisher_cpu_percent,
            "server_cpu_percent": None if server is None else server.cpu_percent,
            "server_rss_per_connection_bytes": None if per_connection is None else round(per_connection),
        }
        for name in ("count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"):
            column = "latency_samples" if name == "count" else f"latency_{name}_ms"
            values[column] = None if latency is None else getattr(latency, name)
        for name in ("p50", "p99", "max"):
            values[f"connect_{name}_ms"] = None if connect is None else getattr(connect, name)
        return values

    def _scenario(self) -> dict[str, object]:
        """What the run was asked to do: the CSV columns and the JSON ``scenario`` object."""
        config = self.config
        return {
            "subscribers": config.subscribers,
            "channels": config.channels,
            "publishers": config.publishers,
            "messages": config.messages,
            "rate": config.rate,
            "duration": config.duration,
            "payload_size": config.payload_size,
            "batch": config.batch,
            "procs": config.procs,
            "sample_every": config.sample_every,
        }

    def csv_row(self) -> list[str]:
        """The run as one CSV row, in the order of :data:`CSV_COLUMNS` (``true``/``false``, empty for none)."""
        values = self.csv_values()
        return [_csv_cell(values[column]) for column in CSV_COLUMNS]

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON object (what ``broadcast bench --json`` prints)."""
        config = self.config
        seqs = self.seqs
        return {
            "version": self.version,
            "machine": self.machine.to_dict(),
            "target": {"urls": list(self.urls), "publish_url": self.publish_url, "embedded": self.embedded},
            "scenario": self._scenario(),
            "connect": {
                "seconds": round(self.connect_seconds, 3),
                "ms": None if self.connect is None else self.connect.to_dict(),
            },
            "publish": {
                "messages": self.published,
                "seconds": round(self.publish_seconds, 3),
                "rate": round(self.publish_rate, 1),
                "target_rate": config.rate,
                "timed_out": self.publish_timed_out,
            },
            "delivery": {
                "deliveries": self.frames,
                "expected": seqs.expected,
                "bytes": self.bytes,
                "seconds": round(self.delivery_seconds, 3),
                "per_second": round(self.deliveries_per_second, 1),
                "megabytes_per_second": round(self.megabytes_per_second, 3),
            },
            "latency_ms": None if self.latency is None else self.latency.to_dict(),
            "correctness": {
                "ok": self.ok,
                "lost": seqs.lost,
                "duplicated": seqs.duplicated,
                "reordered": seqs.reordered,
                "closed": {str(code): count for code, count in sorted(self.closed.items())},
                "errors": self.error_count,
                "first_errors": list(self.errors),
            },
            "generator": self.generator.to_dict(),
            "server": None if self.server is None else self.server.to_dict(),
        }


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
