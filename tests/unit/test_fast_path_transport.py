"""The fast path's transport writer, on a fake uvicorn protocol: no socket, no timer.

Once the endpoint is done with a connection, :meth:`TransportWriter.abort_after`
looks, every period, at what the transport still holds for it, and resets the
connection when the client took none of it for a whole period.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any, cast

from broadcast_cli.server.transport import TransportWriter

PERIOD = 10.0


class FakeTimer:
    def __init__(self, delay: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.delay, self.callback, self.args = delay, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Keeps the timers it is given; :meth:`fire` runs the pending one, as if its delay had passed."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> FakeTimer:
        timer = FakeTimer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[FakeTimer]:
        return [timer for timer in self.timers if not timer.cancelled and timer.callback is not None]

    def fire(self) -> None:
        [timer] = self.pending()
        callback, args = timer.callback, timer.args
        timer.cancelled = True  # it ran
        callback(*args)


class FakeSocket:
    def __init__(self, error: OSError | None = None) -> None:
        self.options: list[tuple[int, int, bytes]] = []
        self.error = error

    def setsockopt(self, level: int, option: int, value: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.options.append((level, option, value))


class FakeTransport:
    def __init__(self, buffered: int, sock: FakeSocket | None) -> None:
        self.buffered = buffered
        self.sock = sock
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str) -> Any:
        assert name == "socket"
        return self.sock

    def abort(self) -> None:
        self.aborted = True


class FakeProtocol:
    """What a :class:`TransportWriter` uses of uvicorn's protocol."""

    def __init__(self, buffered: int = 0, sock: FakeSocket | None = None) -> None:
        self.loop = FakeLoop()
        self.transport = FakeTransport(buffered, sock)
        self.disconnected = False


def writer_for(protocol: FakeProtocol) -> TransportWriter:
    return TransportWriter(cast(Any, protocol))


def test_a_client_that_takes_nothing_for_a_period_is_reset_with_its_buffers_dropped() -> None:
    sock = FakeSocket()
    protocol = FakeProtocol(buffered=100_000, sock=sock)
    writer_for(protocol).abort_after(PERIOD)
    [timer] = protocol.loop.pending()
    assert timer.delay == PERIOD
    protocol.loop.fire()
    assert protocol.transport.aborted
    # SO_LINGER on, 0 s: the kernel drops what it holds too, rather than keeping it for an orphan socket.
    assert sock.options == [(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))]
    assert protocol.loop.pending() == []


def test_a_client_that_reads_however_slowly_is_left_to_finish() -> None:
    protocol = FakeProtocol(buffered=100_000)
    writer = writer_for(protocol)
    writer.abort_after(PERIOD)
    writer.abort_after(PERIOD)  # once is enough
    assert len(protocol.loop.pending()) == 1
    for buffered in (99_000, 50_000, 1):
        protocol.transport.buffered = buffered  # it took some during the period: look again later
        protocol.loop.fire()
        assert not protocol.transport.aborted
    protocol.loop.fire()  # a period without taking anything
    assert protocol.transport.aborted


def test_once_the_transport_holds_nothing_the_rest_is_left_to_the_close() -> None:
    protocol = FakeProtocol(buffered=0, sock=FakeSocket(OSError("not a socket any more")))
    writer_for(protocol).abort_after(PERIOD)
    protocol.loop.fire()
    protocol.loop.fire()
    assert not protocol.transport.aborted
    protocol.transport.buffered = 10  # uvicorn's close frame, which the client then does not take
    protocol.loop.fire()
    assert protocol.transport.aborted  # more than at the last look: nothing taken; the socket's error is ignored


def test_nothing_is_watched_once_the_connection_ended() -> None:
    protocol = FakeProtocol(buffered=100, sock=None)
    writer = writer_for(protocol)
    writer.abort_after(PERIOD)
    writer.connection_lost()
    writer.connection_lost()  # idempotent
    assert protocol.loop.pending() == []
    protocol.disconnected = True
    writer.abort_after(PERIOD)
    assert protocol.loop.pending() == []
