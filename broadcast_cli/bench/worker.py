"""A subscriber process: its share of the subscribers, in an event loop of its own.

The coordinator (:mod:`.runner`) starts one per ``procs`` and talks to it over a
pipe, in this order::

    worker                          coordinator
    ("connected", connect times) →
                                  ← ("go",)                      publishing starts
    ("progress", frames) …       →
                                  ← ("expect", finals, idle, deadline)
    ("result", WorkerResult)     →

or ``("failed", reason, refused)`` when its subscribers cannot connect (*refused*:
the server said no, e.g. to their token), and ``("stop",)``
from the coordinator at any time. The worker ignores SIGINT: on Ctrl-C the
coordinator stops it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..exceptions import ConnectError, ConnectionRejected
from .frames import parse_ws_url
from .stats import LatencyHistogram
from .subscribers import GroupResult, SubscriberGroup, SubscriberSpec

__all__ = ["PROGRESS_INTERVAL", "WorkerResult", "WorkerSpec", "event_loop_factory", "worker_main"]

PROGRESS_INTERVAL = 0.2
"""Seconds between two progress messages of a worker."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One worker's share of a run."""

    index: int
    subscribers: tuple[tuple[int, str, str], ...]
    """``(number, WebSocket URL, channel)`` of each subscriber."""
    sample_every: int
    connect_concurrency: int
    connect_timeout: float
    token: str | None = field(default=None, repr=False)
    """The connection token the subscribers present, for a server that requires one."""


@dataclass(frozen=True, slots=True)
class WorkerResult:
    """What one worker measured."""

    group: GroupResult
    latency: str
    """The encoded :class:`~.stats.LatencyHistogram` of the latency samples."""
    cpu_seconds: float
    """CPU time the worker used from "go" to its result."""
    wall_seconds: float
    """Wall time from "go" to its result."""


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (it comes with ``uvicorn[standard]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    """The body of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(_work(spec, pipe))
    pipe.close()


class _Inbox:
    """The coordinator's messages, as an asyncio queue."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(pipe.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            message = self.pipe.recv()
        except (EOFError, OSError):  # the coordinator is gone
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
            message = ("stop",)
        self.queue.put_nowait(message)

    async def get(self) -> tuple[Any, ...]:
        return await self.queue.get()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.pipe.fileno())


async def _report_progress(group: SubscriberGroup, pipe: Connection) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        pipe.send(("progress", group.frames))


async def _work(spec: WorkerSpec, pipe: Connection) -> None:
    specs = [SubscriberSpec(number, parse_ws_url(url), channel) for number, url, channel in spec.subscribers]
    group = SubscriberGroup(specs, sample_every=spec.sample_every, token=spec.token)
    inbox = _Inbox(pipe)
    try:
        try:
            await group.connect(concurrency=spec.connect_concurrency, each_within=spec.connect_timeout)
        except ConnectError as exc:
            pipe.send(("failed", str(exc), isinstance(exc, ConnectionRejected)))
            return
        connect_times = LatencyHistogram()
        connect_times.record_many(group.connect_times)
        pipe.send(("connected", connect_times.encode()))
        if (await inbox.get())[0] != "go":
            return
        cpu, wall = time.process_time(), time.monotonic()
        progress = asyncio.ensure_future(_report_progress(group, pipe))
        try:
            message = await inbox.get()
        finally:
            progress.cancel()
        if message[0] != "expect":
            return
        _, finals, idle, deadline = message
        group.expect(finals)
        await group.wait_complete(idle=idle, deadline=deadline)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        result = group.result()  # before the samples are recorded: recording is not part of the run
        latency = LatencyHistogram()
        latency.record_many(group.samples)
        pipe.send(("result", WorkerResult(result, latency.encode(), cpu, wall)))
    finally:
        inbox.close()
        group.close()  # the transports write the closing frames before they close
