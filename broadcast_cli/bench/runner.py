"""One bench run, from start to :class:`~.report.Report`: :func:`run_bench`.

The coordinator (this process) starts the embedded servers when asked, spreads
the subscribers over ``procs`` worker processes (:mod:`.worker`), waits until
every one is subscribed, then publishes through the HTTP API while the workers
count. When publishing ends it tells the workers each channel's last seq; they
wait until every subscriber has it (or nothing has arrived for
``idle_timeout`` seconds, or the run's ``timeout`` is reached) and send back
their counts, seq checks and latency histograms, which make the report.

Processes are started with ``spawn``, so the workers begin with a clean
interpreter; they inherit the bench's core pinning and open-files limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import httpx

from .. import __version__
from ..exceptions import ConnectError, ConnectionRejected
from .config import MAX_MESSAGES, BenchConfig
from .embedded import EmbeddedServers
from .publisher import PublisherResult, publish
from .report import GeneratorUsage, Report, ServerUsage
from .seqs import SeqSummary
from .stats import LatencyHistogram
from .system import cpu_seconds, machine, pin, raise_open_files, rss_bytes
from .worker import WorkerResult, WorkerSpec, event_loop_factory, worker_main

__all__ = ["Phase", "Progress", "plan_workers", "publisher_channels", "run_bench"]

PROGRESS_INTERVAL = 0.2
"""Seconds between two progress reports."""
_RESULT_MARGIN = 30.0
"""Seconds a worker may take, past the run's deadline, to send its result."""
_STOP_TIMEOUT = 10.0
"""Seconds a worker may take to exit once told to stop."""


class Phase(enum.StrEnum):
    """Where a run is."""

    CONNECTING = "connecting"
    PUBLISHING = "publishing"
    DRAINING = "draining"
    """Publishing ended; waiting for the last deliveries."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a run has got (given to ``on_progress`` a few times a second)."""

    phase: Phase
    delivered: int
    """Event frames received so far by every subscriber."""
    expected: int | None
    """Deliveries the run should make in all (``None`` when it depends on time)."""
    published: int
    """Messages published so far."""
    elapsed: float
    """Seconds since publishing started (0 before)."""


def plan_workers(config: BenchConfig, urls: Sequence[str]) -> list[WorkerSpec]:
    """Spread the subscribers over ``config.procs`` workers: subscriber *i* on URL ``i mod U``, channel ``i mod C``."""
    names = config.channel_names
    subscribers = [
        (number, urls[number % len(urls)], names[number % len(names)]) for number in range(config.subscribers)
    ]
    return [
        WorkerSpec(
            index=index,
            subscribers=tuple(subscribers[index :: config.procs]),
            sample_every=config.sample_every,
            connect_concurrency=max(1, config.connect_concurrency // config.procs),
            connect_timeout=config.connect_timeout,
            token=config.token,
        )
        for index in range(config.procs)
    ]


def publisher_channels(names: Sequence[str], publishers: int, index: int) -> list[str]:
    """The channels publisher *index* cycles through, so that message *k* of the run goes to ``names[k mod C]``.

    Publisher *j* sends messages *j*, *j + P*, *j + 2P*…; the cycle repeats after
    ``C / gcd(C, P)`` of them.
    """
    count = len(names)
    return [names[(index + publishers * step) % count] for step in range(count // math.gcd(count, publishers))]


class _Worker:
    """The coordinator's handle on one worker process."""

    def __init__(self, process: BaseProcess, pipe: Connection) -> None:
        self.process = process
        self.pipe = pipe
        self.frames = 0
        """The last progress it reported."""
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(pipe.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            message = self.pipe.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
            code = self.process.exitcode
            message = ("failed", f"a subscriber process exited unexpectedly (status {code})")
        if message[0] == "progress":
            self.frames = message[1]
        else:
            self.inbox.put_nowait(message)

    async def expect(self, kind: str, deadline: float) -> tuple[Any, ...]:
        """The worker's next message, which must be *kind* (a ``failed`` one raises :class:`ConnectError`).

        Raises :class:`TimeoutError` when none came by *deadline* (``time.monotonic()``).
        """
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + deadline - time.monotonic()):
            message = await self.inbox.get()
        if message[0] == "failed":
            refused = len(message) > 2 and message[2]
            raise (ConnectionRejected if refused else ConnectError)(message[1])
        if message[0] != kind:
            raise RuntimeError(f"unexpected message from a subscriber process: {message[0]!r}")
        return message

    def send(self, *message: Any) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(message)

    def stop(self) -> None:
        """Tell it to stop (a no-op once it is done), and stop listening to it."""
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
        self.send("stop")


def _rss(pids: Sequence[int]) -> int | None:
    values = [rss_bytes(pid) for pid in pids]
    return None if not values or None in values else sum(value for value in values if value is not None)


def _cpu(pids: Sequence[int]) -> float | None:
    values = [cpu_seconds(pid) for pid in pids]
    return None if not values or None in values else sum(value for value in values if value is not None)


def _start_workers(specs: Sequence[WorkerSpec]) -> list[_Worker]:
    context = multiprocessing.get_context("spawn")
    workers = []
    for spec in specs:
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=worker_main, args=(spec, child_end), name=f"broadcast-bench-{spec.index}", daemon=True
        )
        process.start()
        child_end.close()
        workers.append(_Worker(process, parent_end))
    return workers


def _stop_workers(workers: Sequence[_Worker]) -> None:
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + _STOP_TIMEOUT
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.pipe.close()


async def run_bench(
    config: BenchConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> Report:
    """Run *config* and return its :class:`~.report.Report`.

    *on_progress* is called a few times a second, *on_status* with a sentence at
    each step. Raises :class:`~broadcast_cli.exceptions.ConnectError` when the
    servers or the subscribers cannot be reached (its subclass
    :class:`~broadcast_cli.exceptions.ConnectionRejected` when the server refused
    every subscriber that failed, e.g. their token),
    :class:`~broadcast_cli.client.http.PublishRefused` when the server refuses a
    publish, and :class:`TimeoutError` when subscribers are still connecting at
    the run's timeout.
    """

    def status(text: str) -> None:
        if on_status is not None:
            on_status(text)

    pin(config.cpus)
    deadline = time.monotonic() + config.timeout
    servers = EmbeddedServers(config.embedded) if config.embedded is not None else None
    workers: list[_Worker] = []
    try:
        urls, publish_url, pids = config.urls, config.http_url, list(config.server_pids)
        if servers is not None:
            started = servers.start()
            urls = tuple(server.websocket for server in started)
            publish_url = config.publish_url or started[0].http
            pids.extend(server.pid for server in started)
            status(f"started {len(started)} server{'s' if len(started) > 1 else ''}: " + ", ".join(urls))
        rss_before = _rss(pids)
        raise_open_files(math.ceil(config.subscribers / config.procs) + 256)

        # Connect.
        connecting = time.monotonic()
        workers = _start_workers(plan_workers(config, urls))
        status(f"connecting {config.subscribers:,} subscribers to {len(config.channel_names)} channel(s)")
        if on_progress is not None:
            on_progress(Progress(Phase.CONNECTING, 0, config.expected_deliveries(), 0, 0.0))
        connect_times = LatencyHistogram()
        for worker in workers:
            try:
                _, encoded = await worker.expect("connected", deadline)
            except TimeoutError:
                raise TimeoutError(f"the subscribers were still connecting after {config.timeout} s") from None
            connect_times.merge(LatencyHistogram.decode(encoded))
        connect_seconds = time.monotonic() - connecting
        rss_connected = _rss(pids)
        status(f"{config.subscribers:,} subscribers connected in {connect_seconds:.2f} s")

        # Publish.
        server_cpu = _cpu(pids)
        cpu = time.process_time()
        start = time.monotonic()
        started_at = time.time()
        for worker in workers:
            worker.send("go")
        published = 0

        def count_published(count: int) -> None:
            nonlocal published
            published += count

        stop = deadline if config.duration is None else min(deadline, start + config.duration)
        planned = config.planned_messages
        expected = config.expected_deliveries()
        names = config.channel_names
        phase = Phase.PUBLISHING

        async def report_progress() -> None:
            while on_progress is not None:
                delivered = sum(worker.frames for worker in workers)
                on_progress(Progress(phase, delivered, expected, published, time.monotonic() - start))
                await asyncio.sleep(PROGRESS_INTERVAL)

        progress = asyncio.ensure_future(report_progress())
        try:
            limits = httpx.Limits(max_connections=config.publishers, max_keepalive_connections=config.publishers)
            async with httpx.AsyncClient(limits=limits, timeout=max(30.0, config.idle_timeout)) as client:
                results: list[PublisherResult] = await asyncio.gather(
                    *(
                        publish(
                            client,
                            publish_url,
                            publisher_channels(names, config.publishers, index),
                            count=min(share, MAX_MESSAGES),
                            rate=None if config.rate is None else config.rate / config.publishers,
                            batch=config.batch,
                            payload_size=config.payload_size,
                            start=start,
                            stop=stop,
                            on_published=count_published,
                            api_key=config.api_key,
                        )
                        for index, share in enumerate(_shares(planned, config.publishers))
                    )
                )
            finals: dict[str, int] = {}
            for result in results:
                for channel, seq in result.finals.items():
                    finals[channel] = max(finals.get(channel, 0), seq)
            publish_seconds = max(result.finished for result in results) - start
            # Stopped by the run's timeout rather than by the duration asked for.
            timed_out = stop == deadline and any(result.timed_out for result in results)
            status(f"published {published:,} messages in {publish_seconds:.2f} s; waiting for the deliveries")

            # Drain.
            phase = Phase.DRAINING
            for worker in workers:
                worker.send("expect", finals, config.idle_timeout, deadline)
            worker_results: list[WorkerResult] = []
            for worker in workers:
                _, worker_result = await worker.expect("result", deadline + _RESULT_MARGIN)
                worker_results.append(worker_result)
        finally:
            progress.cancel()
        wall = time.monotonic() - start
        cpu = time.process_time() - cpu
        server_cpu_end = _cpu(pids)
        rss_after = _rss(pids)
    finally:
        _stop_workers(workers)
        if servers is not None:
            servers.stop()

    seqs = SeqSummary()
    latency = LatencyHistogram()
    frames = nbytes = error_count = 0
    last_frame = 0.0
    closed: dict[int, int] = {}
    errors: list[str] = []
    for worker_result in worker_results:
        group = worker_result.group
        seqs += group.seqs
        frames += group.frames
        nbytes += group.bytes
        last_frame = max(last_frame, group.last_frame)
        for code, count in group.closed.items():
            closed[code] = closed.get(code, 0) + count
        errors.extend(group.errors)
        error_count += group.error_count
        latency.merge(LatencyHistogram.decode(worker_result.latency))
    if on_progress is not None:
        on_progress(Progress(Phase.DRAINING, frames, expected, published, wall))
    loop = "uvloop" if event_loop_factory() is not None else "asyncio"
    server = None
    if pids:
        server_cpu_percent = None
        if server_cpu is not None and server_cpu_end is not None and wall > 0:
            server_cpu_percent = round((server_cpu_end - server_cpu) / wall * 100, 1)
        server = ServerUsage(
            tuple(pids), server_cpu_percent, rss_before, rss_connected, rss_after, connections=config.subscribers
        )
    return Report(
        version=__version__,
        machine=machine(),
        config=config,
        urls=tuple(urls),
        publish_url=publish_url,
        embedded=None if config.embedded is None else ("memory" if config.embedded.redis_url is None else "redis"),
        connect_seconds=connect_seconds,
        connect=connect_times.percentiles(),
        published=published,
        publish_seconds=publish_seconds,
        publish_timed_out=timed_out,
        seqs=seqs,
        frames=frames,
        bytes=nbytes,
        delivery_seconds=max(0.0, last_frame - start) if frames else 0.0,
        latency=latency.percentiles(),
        generator=GeneratorUsage(
            worker_cpu_percent=tuple(
                round(worker_result.cpu_seconds / worker_result.wall_seconds * 100, 1)
                if worker_result.wall_seconds > 0
                else 0.0
                for worker_result in worker_results
            ),
            publisher_cpu_percent=round(cpu / wall * 100, 1) if wall > 0 else 0.0,
            loop=loop,
        ),
        server=server,
        closed=closed,
        errors=tuple(errors[:5]),
        error_count=error_count,
        started=started_at,
        latency_histogram=latency.encode(),
    )


def _shares(total: int, parts: int) -> list[int]:
    """*total* split into *parts* nearly equal shares, the larger first."""
    size, extra = divmod(total, parts)
    return [size + (index < extra) for index in range(parts)]
