"""The WebSocket endpoint: one ASGI connection, speaking protocol v1 to the hub.

The connection's outbox is its :class:`~broadcast_cli.hub.Sink`: the hub queues
frames in it without waiting, and one writer task per connection sends them,
every frame queued since its last turn at once. The bounded queue is what keeps a
slow consumer from hurting others: when it overflows, the connection is closed
with 4008 and the client recovers from history when it comes back.

Two ways out, chosen per connection:

* when the ASGI server offers the :data:`~.framing.RAW_SEND` extension (``broadcast
  serve`` does, :mod:`.transport`), a :class:`FramedOutbox` queues each event as
  the WebSocket frame framed once per message (:func:`~.framing.event_frame`), and
  the writer hands all queued frames to the transport in one write; while the
  transport is paused (a client that does not read), frames stay in the outbox;
* under any other ASGI server (the FastAPI router in a user's app, Starlette's
  ``TestClient``), an :class:`Outbox` queues text and the writer sends one
  ``websocket.send`` message per frame.

Acks and errors go through the same queue as events, so an ack always precedes
the replayed events that follow it; the close frame goes through ASGI once the
writer has stopped. On the fast path, a connection that then takes nothing of
what is still buffered for it for 10 s is reset, which frees those buffers (the
transport's and the kernel's): a client that stopped reading for good costs the
server nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ..exceptions import BackendError, InvalidRequest, PermissionDenied
from ..hub import Hub
from ..message import Message, is_pattern
from ..protocol import (
    SUBPROTOCOL,
    Auth,
    CloseCode,
    Publish,
    Request,
    Subscribe,
    SubscribeResult,
    Unsubscribe,
    encode_ack,
    encode_error,
    encode_publish_ack,
    parse_request,
)
from .access import ConnectionAccess, Refusal
from .config import Limits, Security
from .framing import FramedWriter, event_frame, framed_writer, text_frame

__all__ = ["FramedOutbox", "Outbox", "WebSocketEndpoint"]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 10.0
"""How long to try to send a close frame to a client before giving up on it (and, on the fast
path, how long a connection the endpoint is done with may take nothing before it is reset)."""

Scope = Mapping[str, Any]

_PEER_GONE = (OSError, ConnectionError)
"""Errors that only mean the client went away (ASGI servers raise these from send)."""
ASGIMessage = dict[str, Any]

F = TypeVar("F", str, bytes)


class _BoundedQueue(Generic[F]):
    """The frames waiting to be sent on one connection, bounded in count and bytes.

    The subclasses decide what a queued frame is: text for ASGI, or bytes framed for the wire.
    """

    __slots__ = (
        "_bytes",
        "_bytes_limit",
        "_count_limit",
        "_frames",
        "_open",
        "_waiter",
        "closed",
        "finishing",
        "max_bytes",
        "max_messages",
        "max_replay_bytes",
        "on_overflow",
        "overflowed",
        "replaying",
    )

    def __init__(
        self,
        max_messages: int,
        max_bytes: int,
        on_overflow: Callable[[], None] | None = None,
        *,
        max_replay_bytes: int | None = None,
    ) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_replay_bytes = max_replay_bytes if max_replay_bytes is not None else max_bytes
        self.replaying = 0
        """Non-zero while a subscribe may replay history: only :attr:`max_replay_bytes` applies."""
        self.on_overflow = on_overflow
        """Called once when the bounds are exceeded (it must not touch the hub synchronously)."""
        self.overflowed = False
        """Set once the bounds were exceeded; nothing more is queued."""
        self.closed = False
        self.finishing = False
        """Set by :meth:`finish`: nothing more is queued; the writer sends what is queued, then stops."""
        self._open = True
        """Whether frames are still queued: none of :attr:`overflowed`, :attr:`closed`, :attr:`finishing`."""
        self._frames: list[F] = []
        self._bytes = 0
        # The bounds in force, raised after a replay by the backlog it left (see end_replay).
        self._count_limit = max_messages
        self._bytes_limit = max_bytes
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def _push(self, frame: F, size: int) -> None:
        # Called for every frame of every subscriber: kept to a few attribute reads.
        if not self._open:
            return
        frames = self._frames
        frames.append(frame)
        total = self._bytes = self._bytes + size
        if self.replaying:
            over = total > self.max_replay_bytes
        else:
            over = len(frames) > self._count_limit or total > self._bytes_limit
        if over:
            self._overflow()
        if self._waiter is not None:
            self._wake()

    def _overflow(self) -> None:
        self.overflowed = True
        self._open = False
        self._frames.clear()
        self._bytes = 0
        if self.on_overflow is not None:
            self.on_overflow()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None  # once is enough: later frames find no waiter to wake
            if not waiter.done():
                waiter.set_result(None)

    def end_replay(self) -> None:
        """A replay ended: tolerate its backlog until the writer has taken it."""
        self.replaying -= 1
        if not self.replaying:
            self._count_limit = self.max_messages + len(self._frames)
            self._bytes_limit = self.max_bytes + self._bytes

    def finish(self) -> None:
        """Stop queueing; the writer sends the frames already queued, then ends."""
        self.finishing = True
        self._open = False
        self._wake()

    def close(self) -> None:
        """Stop queueing, drop what is queued and wake the writer so that it ends."""
        self.closed = True
        self._open = False
        self._wake()

    async def next_frames(self) -> list[F]:
        """Wait for frames and return all of them; an empty list means: stop."""
        await self.wait()
        return self.take()

    async def wait(self) -> None:
        """Wait until frames are queued, or the writer has to stop."""
        while not self._frames and self._open:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def take(self) -> list[F]:
        """Return every queued frame, emptying the queue; an empty list means: stop."""
        if self.overflowed or self.closed or not self._frames:
            return []
        frames = self._frames
        self._frames = []
        self._bytes = 0
        self._count_limit = self.max_messages
        self._bytes_limit = self.max_bytes
        return frames


class Outbox(_BoundedQueue[str]):
    """A connection's bounded queue of text frames, each to be sent as one ASGI ``websocket.send``."""

    __slots__ = ()

    def deliver(self, message: Message) -> None:
        """Queue an event frame (called by the hub for every message)."""
        self._push(message.text(), len(message.frame))

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame built by the session (an ack or an error)."""
        self._push(frame.decode(), len(frame))


class FramedOutbox(_BoundedQueue[bytes]):
    """A connection's bounded queue of WebSocket frames, framed for the wire, for a :class:`~.framing.FramedWriter`.

    Sizes count the JSON, as in :class:`Outbox`, so the bounds mean the same on both paths.
    """

    __slots__ = ()

    def deliver(self, message: Message) -> None:
        """Queue an event frame (called by the hub for every message): framed once, whatever the subscribers."""
        # _push, inlined: this runs once per message per subscriber, the server's hottest loop.
        if not self._open:
            return
        framed = message.websocket_frame
        if framed is None:
            framed = event_frame(message)
        frames = self._frames
        frames.append(framed)
        total = self._bytes = self._bytes + len(message.frame)
        if self.replaying:
            over = total > self.max_replay_bytes
        else:
            over = len(frames) > self._count_limit or total > self._bytes_limit
        if over:
            self._overflow()
        if self._waiter is not None:
            self._wake()

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame built by the session (an ack or an error)."""
        self._push(text_frame(frame), len(frame))


class _Session:
    """One client connection."""

    def __init__(
        self,
        endpoint: WebSocketEndpoint,
        hub: Hub,
        limits: Limits,
        receive: Any,
        send: Any,
        *,
        writer: FramedWriter | None = None,
        access: ConnectionAccess,
    ) -> None:
        self.endpoint = endpoint
        self.hub = hub
        self.limits = limits
        self.receive = receive
        self.send = send
        self.access = access
        """What this connection may do (its origin, token and request rate)."""
        self._expiry: asyncio.TimerHandle | None = None
        self.raw = writer
        """Where frames framed here are written, when the ASGI server offers it (else: ASGI sends)."""
        kind = Outbox if writer is None else FramedOutbox
        self.outbox: Outbox | FramedOutbox = kind(
            limits.send_buffer_messages,
            limits.send_buffer_bytes,
            self._overflowed,
            max_replay_bytes=limits.max_replay_bytes,
        )
        self.close_code: int | None = None
        self.close_reason = ""
        self._writer: asyncio.Task[None] | None = None

    async def run(self, scope: Scope, refusal: Refusal | None = None) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        await self.hub.start()
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in scope.get("subprotocols", ()) else None
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol})
        # Refused after the handshake, with a close code: a browser sees no reason for a failed handshake.
        refusal = refusal or self.access.handshake_refusal()
        if refusal is not None:
            with contextlib.suppress(Exception):
                await self.send({"type": "websocket.close", "code": refusal.code, "reason": refusal.reason})
            return
        self._watch_expiry()
        writer = self._writer = asyncio.get_running_loop().create_task(self._write())
        reader = asyncio.get_running_loop().create_task(self._read())
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            self.outbox.close()
            self.hub.unsubscribe_all(self.outbox)
            for task in (reader, writer):
                task.cancel()
            for result in await asyncio.gather(reader, writer, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, _PEER_GONE):
                    logger.error("unexpected error on a WebSocket connection", exc_info=result)
                    self._close(CloseCode.INTERNAL_ERROR, "internal server error")
            if self.raw is not None:
                # A client that does not read would keep the connection, and what is buffered for it, for as
                # long as it keeps its socket open: whatever ended the session, drop it once it takes nothing.
                self.raw.abort_after(_CLOSE_TIMEOUT)
            if self.close_code is not None:
                # A client that does not read may never take the close frame: don't wait forever.
                with contextlib.suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(
                        self.send({"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}),
                        _CLOSE_TIMEOUT,
                    )

    def _close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason

    def abort(self, code: int, reason: str) -> None:
        """Close the connection with *code*, dropping the frames not yet sent."""
        self._close(code, reason)
        self.outbox.close()
        if self._writer is not None:
            # The writer may be stuck sending to a client that does not read.
            self._writer.cancel()

    def finish(self, code: int, reason: str) -> None:
        """Close the connection with *code* once the frames already queued are sent."""
        self._close(code, reason)
        self.outbox.finish()

    def _watch_expiry(self) -> None:
        """Close the connection with 4001 when its token expires (the client reconnects with a fresh one)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        seconds = self.access.expires_in()
        if seconds is not None:
            self._expiry = asyncio.get_running_loop().call_later(
                max(seconds, 0.0), self.abort, CloseCode.TOKEN_EXPIRED, "the connection token expired"
            )

    def _overflowed(self) -> None:
        self.endpoint.slow_consumer_closes += 1
        logger.info("closing a slow consumer: its send buffer overflowed")
        self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send buffer overflow")

    async def _write(self) -> None:
        outbox = self.outbox
        if isinstance(outbox, FramedOutbox):
            assert self.raw is not None
            await self._write_framed(outbox, self.raw)
            return
        send = self.send
        while True:
            frames = await outbox.next_frames()
            if not frames:
                return
            for text in frames:
                await send({"type": "websocket.send", "text": text})

    @staticmethod
    async def _write_framed(outbox: FramedOutbox, writer: FramedWriter) -> None:
        # One write per turn with every frame queued meanwhile: one system call per
        # connection, not one per frame. While the transport is paused, new frames
        # stay in the outbox, whose bounds then close a slow consumer with 4008.
        while True:
            await outbox.wait()
            if writer.paused:
                await writer.wait_writable()
            frames = outbox.take()
            if not frames:
                return
            writer.write(frames[0] if len(frames) == 1 else b"".join(frames), len(frames))

    async def _read(self) -> None:
        max_frame = self.limits.max_frame_bytes
        while True:
            message: ASGIMessage = await self.receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                self._close(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported: send JSON text frames")
                return
            if len(text) > max_frame // 4 and len(text.encode()) > max_frame:
                self._close(CloseCode.MESSAGE_TOO_BIG, f"frame larger than {max_frame} bytes")
                return
            self.endpoint._busy += 1
            try:
                await self._handle(text)
            finally:
                self.endpoint._request_done()

    async def _handle(self, text: str) -> None:
        outbox = self.outbox
        allowed = self.access.allow_request()
        try:
            request = parse_request(text, max_channels=self.limits.max_subscriptions)
        except InvalidRequest as exc:
            outbox.send_frame(encode_error(exc.code, exc.message, exc.request_id))
            return
        request_id = request.id
        if not allowed:
            rate = self.limits.requests_per_second
            outbox.send_frame(
                encode_error("rate_limited", f"more than {rate:g} requests per second: request dropped", request_id)
            )
            return
        try:
            await self._dispatch(request)
        except InvalidRequest as exc:
            outbox.send_frame(encode_error(exc.code, exc.message, request_id))
        except PermissionDenied as exc:
            outbox.send_frame(encode_error("forbidden", str(exc), request_id))
        except BackendError as exc:
            outbox.send_frame(encode_error("backend_unavailable", str(exc), request_id))

    async def _dispatch(self, request: Request) -> None:
        if isinstance(request, Subscribe):
            await self._subscribe(request)
        elif isinstance(request, Unsubscribe):
            self.hub.unsubscribe(self.outbox, request.channels)
            self._ack(request.id)
        elif isinstance(request, Auth):
            refusal = self.access.authenticate(request.token)
            if refusal is not None:
                self.abort(refusal.code, refusal.reason)
                return
            self._watch_expiry()
            self._ack(request.id)
        else:
            await self._publish(request)

    def _ack(self, request_id: str | int | None) -> None:
        if request_id is not None:
            self.outbox.send_frame(encode_ack(request_id))

    async def _subscribe(self, request: Subscribe) -> None:
        outbox = self.outbox
        request_id = request.id
        self.access.check_subscribe(item.channel for item in request.items)
        have = self.hub.subscriptions(outbox)
        new = {item.channel for item in request.items} - set(have)
        patterns = sum(1 for name in have if is_pattern(name)) + sum(1 for name in new if is_pattern(name))
        if patterns > self.limits.max_patterns:
            message = f"a connection may subscribe to at most {self.limits.max_patterns} patterns"
            outbox.send_frame(encode_error("too_many_patterns", message, request_id))
            return
        if len(have) + len(new) > self.limits.max_subscriptions:
            message = f"a connection may subscribe to at most {self.limits.max_subscriptions} channels"
            outbox.send_frame(encode_error("too_many_subscriptions", message, request_id))
            return

        def ack(results: Mapping[str, SubscribeResult]) -> None:
            if request_id is not None:
                outbox.send_frame(encode_ack(request_id, results))

        outbox.replaying += 1
        try:
            await self.hub.subscribe(outbox, request.items, on_ready=ack)
        finally:
            outbox.end_replay()

    async def _publish(self, request: Publish) -> None:
        """A ``publish`` over the WebSocket: only where the connection's token grants the channel."""
        published = request.request
        self.access.check_publish(published.channel)
        message = await self.hub.publish(
            published.channel, published.event, published.payload, origin=published.origin, id=published.id
        )
        if request.id is not None:
            self.outbox.send_frame(encode_publish_ack(request.id, message))


class WebSocketEndpoint:
    """The ASGI application serving protocol v1 on a WebSocket.

    Mount it at ``/ws/broadcast`` (the server and the FastAPI router do).
    """

    def __init__(self, hub: Hub, limits: Limits | None = None, security: Security | None = None) -> None:
        self.hub = hub
        self.limits = limits or Limits()
        self.security = security or Security()
        """Who may connect and read what (open by default)."""
        self.slow_consumer_closes = 0
        """Connections closed with 4008 since the endpoint was made."""
        self._sessions: set[_Session] = set()
        self._all_closed: asyncio.Event | None = None
        self._busy = 0
        self._idle_waiters: list[asyncio.Future[None]] = []

    def _request_done(self) -> None:
        self._busy -= 1
        if not self._busy:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_idle(self) -> None:
        """Wait until no connection is in the middle of handling a request."""
        while self._busy:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def connections(self) -> int:
        """The number of open connections."""
        return len(self._sessions)

    def close_all(self, code: int = CloseCode.SERVICE_RESTART, reason: str = "server restart") -> None:
        """Close every connection with *code* (by default 1012: reconnect and recover)."""
        for session in list(self._sessions):
            session.abort(code, reason)

    async def drain(self, code: int = CloseCode.SERVICE_RESTART, reason: str = "server restart") -> None:
        """Close every connection with *code* once it was sent what is already queued for it.

        What the hub delivers from now on is not queued, so a client recovers it
        from history when it reconnects. Bound the wait with a timeout and then
        :meth:`close_all`: a client that does not read may never take its frames.
        """
        if not self._sessions:
            return
        closed = self._all_closed = asyncio.Event()
        for session in list(self._sessions):
            session.finish(code, reason)
        await closed.wait()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("WebSocketEndpoint serves WebSocket connections only")
        access = ConnectionAccess(self.security, self.limits, scope)
        session = _Session(self, self.hub, self.limits, receive, send, writer=framed_writer(scope), access=access)
        refusal = None
        if len(self._sessions) >= self.limits.max_connections:
            refusal = Refusal(CloseCode.TRY_AGAIN_LATER, f"this server holds {self.limits.max_connections} connections")
        self._sessions.add(session)
        try:
            await session.run(scope, refusal)
        finally:
            self._sessions.discard(session)
            if not self._sessions and self._all_closed is not None:
                self._all_closed.set()
