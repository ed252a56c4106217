"""The fast WebSocket path of ``broadcast serve``: uvicorn's protocol, plus a way around the ASGI send chain.

Sending a frame through ASGI costs, per frame and per connection, a message
dict, Starlette's and uvicorn's ``send`` coroutines, framing by ``websockets``
and a ``transport.write()`` — one ``send()`` system call. With many
subscribers that is most of the server's time (docs/benchmarks.md).

:class:`BroadcastWebSocketProtocol` is uvicorn's own WebSocket protocol
(``websockets-sansio``), which also offers each connection the ASGI extension
:data:`~.framing.RAW_SEND`: a :class:`TransportWriter` that writes frames the
endpoint framed once per message (:func:`~.framing.event_frame`) straight to
the transport, every frame queued for the connection in one write. Everything
else — the handshake, reading, pings, the close — stays uvicorn's, but for one
thing: once the endpoint is done with a connection, one that takes nothing of
what is still buffered for it for a while (a client that does not read, and so
never takes its close frame) is reset (:meth:`TransportWriter.abort_after`)
rather than kept with its buffers. The endpoint falls back to plain ASGI under
any other server.

A client that breaks the WebSocket protocol (a frame websockets cannot parse, a
frame over the size limit, a text message that is not UTF-8) is closed with the
code RFC 6455 §7.4.1 gives (1002, 1009, 1007) and costs the server one INFO line
at most, rate-limited across connections (:data:`CLIENT_ERRORS`), where uvicorn
would log an invalid UTF-8 text message as an ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from ..protocol import CloseCode
from .framing import RAW_SEND
from .logs import RateLimitedLog

__all__ = ["CLIENT_ERRORS", "BroadcastWebSocketProtocol", "TransportWriter"]

CLIENT_ERRORS = RateLimitedLog(logging.getLogger("uvicorn.error"))
"""Where connections closed for breaking the WebSocket protocol are noted: uvicorn's log, rate-limited
(10 lines at once, then one per 5 s), for every connection of the process."""

_LINGER_RESET = struct.pack("ii", 1, 0)
"""``SO_LINGER`` on, for 0 s: closing the socket resets the connection and drops what the kernel still holds for it."""


class TransportWriter:
    """Writes pre-framed server frames to one connection's transport (a :class:`~.framing.FramedWriter`).

    :attr:`writes` and :attr:`frames` count what went this way: one write per
    connection per event-loop tick carries every frame queued meanwhile.
    """

    __slots__ = ("_abort", "_protocol", "frames", "writes")

    def __init__(self, protocol: BroadcastWebSocketProtocol) -> None:
        self._protocol = protocol
        self._abort: asyncio.TimerHandle | None = None
        self.writes = 0
        """Transport writes made for the endpoint."""
        self.frames = 0
        """Frames those writes carried."""

    @property
    def paused(self) -> bool:
        """Whether the transport asked us to stop writing (``pause_writing``) and has not resumed yet."""
        return not self._protocol.writable.is_set()

    def write(self, data: bytes, frames: int = 1) -> None:
        """Write *data* (*frames* whole frames); raise :class:`ConnectionResetError` once the connection is closing.

        Once a close frame was sent or the socket is closing, no data frame may follow (RFC 6455 §5.5.1).
        """
        protocol = self._protocol
        if protocol.disconnected or protocol.close_sent or protocol.conn.state is not State.OPEN:
            raise ConnectionResetError("the WebSocket connection is closing")
        transport = protocol.transport
        if transport.is_closing():
            raise ConnectionResetError("the WebSocket connection is closing")
        transport.write(data)
        self.writes += 1
        self.frames += frames

    async def wait_writable(self) -> None:
        """Wait until the transport resumes writing (uvicorn sets the event on ``resume_writing`` and on loss)."""
        await self._protocol.writable.wait()

    def abort_after(self, seconds: float) -> None:
        """Reset the connection, dropping its buffers, once it has taken nothing buffered for it for *seconds*.

        uvicorn closes a connection with ``transport.close()``, which waits until
        the transport's buffer has gone out: for a client that does not read, as
        long as it keeps its end open, with the kernel's send buffer full as
        well. Every *seconds*, while the connection lasts, what the transport
        still holds is compared with the previous look: unchanged or more (the
        client took nothing) means a reset, which frees both buffers at once;
        less (it is reading, however slowly) or nothing (the rest is with the
        kernel, which finishes the close by itself) means another look later.
        """
        protocol = self._protocol
        if protocol.disconnected or self._abort is not None:
            return
        self._abort = protocol.loop.call_later(
            seconds, self._check_progress, seconds, protocol.transport.get_write_buffer_size()
        )

    def _check_progress(self, seconds: float, before: int) -> None:
        self._abort = None
        protocol = self._protocol
        transport = protocol.transport
        pending = transport.get_write_buffer_size()
        if pending and pending >= before:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()
            return
        self._abort = protocol.loop.call_later(seconds, self._check_progress, seconds, pending)

    def connection_lost(self) -> None:
        """The connection ended: nothing left to watch."""
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None


class BroadcastWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, offering :data:`~.framing.RAW_SEND` to the app.

    Pass the class to ``uvicorn.Config(ws=...)``. The extension is offered only
    when no WebSocket extension was negotiated (``broadcast serve`` turns
    permessage-deflate off), so that every frame the endpoint writes is what the
    client expects, byte for byte.
    """

    raw_writer: TransportWriter | None = None
    """This connection's :class:`TransportWriter`, once the app was offered one."""

    async def run_asgi(self) -> None:
        """Run the app with the extension added to its scope."""
        extensions = self.scope.get("extensions")
        if extensions is not None and not self.conn.extensions:
            self.raw_writer = TransportWriter(self)
            extensions[RAW_SEND] = {"writer": self.raw_writer}
        await super().run_asgi()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection ended: cancel the writer's pending abort, if any."""
        super().connection_lost(exc)
        if self.raw_writer is not None:
            self.raw_writer.connection_lost()

    def send_receive_event_to_app(self) -> None:
        """Hand a whole message to the app, but close the connection with 1007 if a text message is not UTF-8.

        uvicorn would close it too, logging an ERROR with a traceback: one per
        connection, for anyone who can connect. (A message that is not ASCII is
        decoded here, then again by uvicorn: requests are small, and uvicorn's
        handling of a message stays its own.)
        """
        if self.curr_msg_data_type == "text" and not self.close_sent and self.conn.state is State.OPEN:
            frames = self.frames
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            if not data.isascii():
                try:
                    data.decode()
                except UnicodeDecodeError as exc:
                    self.frames = []
                    self.conn.send_close(CloseCode.INVALID_DATA, f"invalid UTF-8 in a text message at byte {exc.start}")
                    self.handle_parser_exception()
                    return
        super().send_receive_event_to_app()

    def handle_parser_exception(self) -> None:
        """Close a connection that broke the WebSocket protocol, as uvicorn does, noting it in one line (rate-limited).

        websockets has queued the close frame with the code and reason (1002 a
        malformed frame, 1009 a frame over the size limit, 1007 text that is not
        UTF-8); the app gets them in its ``websocket.disconnect`` message.
        """
        close = self.conn.close_sent
        if close is not None:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            CLIENT_ERRORS.log(
                "%s - WebSocket closed with %d (%s): the client broke the WebSocket protocol",
                client,
                close.code,
                close.reason,
            )
        super().handle_parser_exception()
