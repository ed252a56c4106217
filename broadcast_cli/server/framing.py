"""WebSocket framing of what the server sends, done once per message — no I/O.

A server's frames are not masked (RFC 6455 §5.1), and ``broadcast serve`` does
not compress them, so a text frame carrying an event is the same bytes for every
subscriber: :func:`event_frame` frames each message once and caches the result
on it, and the fast path (:mod:`.transport`) writes those bytes as they are.

The ASGI extension :data:`RAW_SEND` is how a server offers that fast path to
the WebSocket endpoint; :class:`FramedWriter` is what it offers.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Protocol

from ..message import Message

__all__ = ["RAW_SEND", "FramedWriter", "event_frame", "framed_writer", "text_frame"]

RAW_SEND = "broadcast.raw_send"
"""The ASGI scope extension of a connection that takes pre-framed bytes.

Its value is ``{"writer": FramedWriter}``. An ASGI server that does not offer it
gets every frame through the ordinary ``websocket.send`` messages.
"""

_FIN_TEXT = 0x81
"""FIN set, opcode 1 (text), RSV bits clear: a whole, uncompressed text message (§5.2)."""
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """Frame *payload* (UTF-8 text) as one unmasked, final text frame, the way a server sends it.

    The payload length is encoded in 7 bits up to 125, else as 126 and 16 bits
    up to 65,535, else as 127 and 64 bits (RFC 6455 §5.2).
    """
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 1 << 16:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


def event_frame(message: Message) -> bytes:
    """*message*'s event as a WebSocket text frame, framed once and cached on the message."""
    framed = message.websocket_frame
    if framed is None:
        framed = message.websocket_frame = text_frame(message.frame)
    return framed


class FramedWriter(Protocol):
    """A connection's transport, for frames framed by the caller (offered through :data:`RAW_SEND`).

    Each :meth:`write` must hold whole frames, so that they never interleave
    with the frames the server writes itself (pings, the close frame).
    """

    @property
    def paused(self) -> bool:
        """Whether the transport's buffer is above its high-water mark: wait before writing more."""

    def write(self, data: bytes, frames: int = 1) -> None:
        """Write *data*, which holds *frames* whole frames; raise :class:`ConnectionError` once closed."""

    async def wait_writable(self) -> None:
        """Wait until the transport's buffer drained below its low-water mark (or the connection ended)."""

    def abort_after(self, seconds: float) -> None:
        """Drop the connection, with what is still buffered for it, once it has taken none of that for *seconds*.

        The endpoint calls it once it is done with the connection. A client that
        does not read never takes its close frame, and a transport closes only
        once its buffer has gone out: without this, such a connection would keep
        its buffers (the transport's and the kernel's) for as long as the client
        keeps its socket open.
        """


def framed_writer(scope: Mapping[str, Any]) -> FramedWriter | None:
    """The :class:`FramedWriter` that the ASGI server offers for this connection, if any."""
    extensions = scope.get("extensions") or {}
    offer = extensions.get(RAW_SEND)
    if not isinstance(offer, Mapping):
        return None
    writer: FramedWriter | None = offer.get("writer")
    return writer
