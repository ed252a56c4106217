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
else — the handshake, reading, pings, the close — stays uvicorn's. The endpoint
falls back to plain ASGI under any other server.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from .framing import RAW_SEND

__all__ = ["BroadcastWebSocketProtocol", "TransportWriter"]


class TransportWriter:
    """Writes pre-framed server frames to one connection's transport (a :class:`~.framing.FramedWriter`).

    :attr:`writes` and :attr:`frames` count what went this way: one write per
    connection per event-loop tick carries every frame queued meanwhile.
    """

    __slots__ = ("_protocol", "frames", "writes")

    def __init__(self, protocol: BroadcastWebSocketProtocol) -> None:
        self._protocol = protocol
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
