"""Many lean subscribers in one event loop: connect them, count what they get, know when they are done.

Each connection is an :class:`asyncio.Protocol` that only forwards bytes to its
:class:`~.frames.SubscriberConnection`; a :class:`SubscriberGroup` holds the
connections of one process, opens them with bounded concurrency and tells when
each has every seq it should (:meth:`SubscriberGroup.wait_complete`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from ..exceptions import ConnectError, ConnectionRejected
from .frames import ConnectionState, SubscriberConnection, WebSocketAddress
from .seqs import SeqSummary

__all__ = ["GroupResult", "SubscriberGroup", "SubscriberSpec"]


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    """One subscriber to open: its number in the run, where, and which channel."""

    number: int
    address: WebSocketAddress
    channel: str


@dataclass(frozen=True, slots=True)
class GroupResult:
    """What the subscribers of one group got, once they are done."""

    seqs: SeqSummary
    """The check of every subscriber's seqs, added up."""
    frames: int
    """Event frames received, duplicates included."""
    bytes: int
    """Bytes of the event frames received."""
    last_frame: float
    """``time.monotonic()`` when the last event frame arrived (0 when none did)."""
    closed: dict[int, int]
    """Connections the server closed during the run, by close code (1006: no closing frame)."""
    errors: list[str]
    """Error frames and unexpected frames (the first few), and why connections failed."""
    error_count: int
    """How many errors there were in all."""
    incomplete: int
    """Subscribers that did not get every seq they should have."""


class _Protocol(asyncio.Protocol):
    """Forwards a socket's bytes to a :class:`SubscriberConnection`."""

    __slots__ = ("connection", "done", "ended", "group", "ready", "transport")

    def __init__(self, connection: SubscriberConnection, group: SubscriberGroup) -> None:
        self.connection = connection
        self.group = group
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.done = False
        """Set once the connection has every seq it should (or has ended)."""
        self.ended = False
        """Set once the connection is closed or failed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses of asyncio's
        self.transport.write(self.connection.data_to_send())

    def data_received(self, data: bytes) -> None:
        connection = self.connection
        connection.receive_data(data, time.time_ns())
        self.group.last_data = time.monotonic()
        if connection._outgoing:
            assert self.transport is not None
            self.transport.write(connection.data_to_send())
        if not self.ready.done():
            if connection.state is ConnectionState.STREAMING:
                self.ready.set_result(None)
            elif connection.state is ConnectionState.CLOSED:
                failure = ConnectionRejected if connection.refused else ConnectError
                self.ready.set_exception(failure(connection.error or "the connection failed"))
        if connection.state is ConnectionState.CLOSED:
            self.group._ended(self)
            if self.transport is not None:
                self.transport.close()
        elif not self.done:
            self.group._check(self)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        connection = self.connection
        if connection.state is not ConnectionState.CLOSED:
            connection.state = ConnectionState.CLOSED
            connection.error = f"the connection was lost: {exc}" if exc else "the server closed the TCP connection"
        if not self.ready.done():
            self.ready.set_exception(ConnectError(connection.error or "the connection was lost"))
        self.group._ended(self)


class SubscriberGroup:
    """The subscribers of one process.

    Latency samples of every connection go to :attr:`samples` (nanoseconds).
    """

    def __init__(self, specs: Sequence[SubscriberSpec], *, sample_every: int = 16, token: str | None = None) -> None:
        self.specs = list(specs)
        self.sample_every = sample_every
        self._token = token
        self.samples: list[int] = []
        """Latency samples, in nanoseconds, of every connection."""
        self.connect_times: list[int] = []
        """How long each subscriber took to connect and be subscribed, in nanoseconds."""
        self.protocols: list[_Protocol] = []
        self.last_data = 0.0
        """``time.monotonic()`` when bytes last arrived on any connection."""
        self.closed: dict[int, int] = {}
        """Connections that ended before the group closed them, by close code (1006: no closing frame)."""
        self.failures: list[str] = []
        """Why those connections ended."""
        self._finals: dict[str, int] | None = None
        self._remaining = 0
        self._complete: asyncio.Event | None = None
        self._closing = False

    @property
    def frames(self) -> int:
        """Event frames received so far, by every connection of the group."""
        return sum(protocol.connection.frames for protocol in self.protocols)

    async def connect(self, *, concurrency: int, each_within: float) -> None:
        """Open and subscribe every connection, *concurrency* at a time, each within *each_within* seconds.

        Raises :class:`~broadcast_cli.exceptions.ConnectError` (naming the first
        failure and how many failed) when any cannot be opened.
        """
        loop = asyncio.get_running_loop()
        semaphore = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        refused: list[bool] = []

        async def open_one(spec: SubscriberSpec) -> None:
            async with semaphore:
                if failures:
                    return
                connection = SubscriberConnection(
                    spec.address,
                    spec.channel,
                    samples=self.samples,
                    sample_every=self.sample_every,
                    sample_offset=spec.number,
                    token=self._token,
                )
                protocol = _Protocol(connection, self)
                started = time.perf_counter_ns()
                try:
                    async with asyncio.timeout(each_within):
                        await loop.create_connection(lambda: protocol, spec.address.host, spec.address.port)
                        await protocol.ready
                except TimeoutError:
                    failures.append(f"no subscribe ack from {spec.address.url} within {each_within} s")
                except ConnectError as exc:
                    failures.append(f"{spec.address.url}: {exc}")
                    refused.append(isinstance(exc, ConnectionRejected))
                except OSError as exc:
                    failures.append(f"cannot connect to {spec.address.url}: {exc.strerror or exc}")
                else:
                    self.connect_times.append(time.perf_counter_ns() - started)
                finally:
                    self.protocols.append(protocol)
                    if protocol.ready.done() and not protocol.ready.cancelled():
                        protocol.ready.exception()  # retrieved: a failure is reported once, below

        await asyncio.gather(*(open_one(spec) for spec in self.specs))
        if failures:
            self.close()
            more = f" ({len(failures)} subscribers failed)" if len(failures) > 1 else ""
            # Refused (a token, a subscribe the server says no to) when every failure was a refusal.
            failure = ConnectionRejected if refused and all(refused) and len(refused) == len(failures) else ConnectError
            raise failure(failures[0] + more)

    def expect(self, finals: dict[str, int]) -> None:
        """Say which seq is the last of each channel; :meth:`wait_complete` then waits for it."""
        self._finals = finals
        self._complete = asyncio.Event()
        self._remaining = len(self.protocols)
        for protocol in self.protocols:
            self._check(protocol)
        if not self._remaining:
            self._complete.set()

    def _check(self, protocol: _Protocol) -> None:
        finals = self._finals
        if finals is None or protocol.done:
            return
        connection = protocol.connection
        tracker = connection.tracker
        last = finals.get(connection.channel, 0)
        if connection.state is ConnectionState.CLOSED or (tracker is not None and tracker.complete(last)):
            protocol.done = True
            self._remaining -= 1
            if not self._remaining and self._complete is not None:
                self._complete.set()

    def _ended(self, protocol: _Protocol) -> None:
        if protocol.ended:
            return
        protocol.ended = True
        connection = protocol.connection
        if not self._closing and connection.tracker is not None:  # subscribed, then ended: part of the result
            code = connection.close_code if connection.close_code is not None else 1006
            self.closed[code] = self.closed.get(code, 0) + 1
            self.failures.append(connection.error or f"closed with code {code}")
        self._check(protocol)

    async def wait_complete(self, *, idle: float, deadline: float) -> None:
        """Wait until every subscriber has its last seq, nothing arrived for *idle* seconds, or *deadline*.

        *deadline* is a ``time.monotonic()`` time. What is still missing then is lost.
        """
        complete = self._complete
        if complete is None:
            raise RuntimeError("expect() comes before wait_complete()")
        self.last_data = max(self.last_data, time.monotonic())
        while not complete.is_set():
            now = time.monotonic()
            wait = min(self.last_data + idle, deadline) - now
            if wait <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await complete.wait()

    def result(self) -> GroupResult:
        """The counts and checks of every connection (after :meth:`expect`)."""
        finals = self._finals or {}
        seqs = SeqSummary()
        frames = nbytes = incomplete = 0
        errors: list[str] = []
        for protocol in self.protocols:
            connection = protocol.connection
            frames += connection.frames
            nbytes += connection.bytes
            errors.extend(connection.errors)
            if connection.tracker is not None:
                summary = connection.tracker.summary(finals.get(connection.channel, 0))
                seqs += summary
                incomplete += summary.lost > 0
        errors.extend(self.failures)
        return GroupResult(
            seqs=seqs,
            frames=frames,
            bytes=nbytes,
            last_frame=self.last_data,
            closed=dict(self.closed),
            errors=errors[:5],
            error_count=len(errors),
            incomplete=incomplete,
        )

    def close(self) -> None:
        """Send each open connection a closing frame and close its socket."""
        self._closing = True
        for protocol in self.protocols:
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                if protocol.connection.state is not ConnectionState.CLOSED:
                    with contextlib.suppress(Exception):
                        transport.write(protocol.connection.close_frame())
                transport.close()
