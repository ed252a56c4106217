"""The WebSocket endpoint: one ASGI connection, speaking protocol v1 to the hub.

:class:`Outbox` is the connection's :class:`~broadcast_cli.hub.Sink`: the hub
queues frames in it without waiting, and one writer task per connection sends
them. The bounded queue is what keeps a slow consumer from hurting others: when
it overflows, the connection is closed with 4008 and the client recovers from
history when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import BackendError, InvalidRequest
from ..hub import Hub
from ..message import Message, is_pattern
from ..protocol import (
    SUBPROTOCOL,
    CloseCode,
    Subscribe,
    SubscribeResult,
    encode_ack,
    encode_error,
    parse_request,
)
from .config import Limits

__all__ = ["Outbox", "WebSocketEndpoint"]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 10.0
"""How long to try to send a close frame to a client before giving up on it."""

Scope = Mapping[str, Any]

_PEER_GONE = (OSError, ConnectionError)
"""Errors that only mean the client went away (ASGI servers raise these from send)."""
ASGIMessage = dict[str, Any]


class Outbox:
    """The frames waiting to be sent on one connection, bounded in count and bytes."""

    __slots__ = (
        "_bytes",
        "_extra_bytes",
        "_extra_messages",
        "_queue",
        "_waiter",
        "closed",
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
        self._extra_messages = 0
        self._extra_bytes = 0
        self.on_overflow = on_overflow
        """Called once when the bounds are exceeded (it must not touch the hub synchronously)."""
        self.overflowed = False
        """Set once the bounds were exceeded; nothing more is queued."""
        self.closed = False
        self._queue: deque[tuple[str, int]] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def deliver(self, message: Message) -> None:
        """Queue an event frame (called by the hub for every message)."""
        self._push(message.text(), len(message.frame))

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame built by the session (an ack or an error)."""
        self._push(frame.decode(), len(frame))

    def _push(self, text: str, size: int) -> None:
        if self.overflowed or self.closed:
            return
        self._queue.append((text, size))
        self._bytes += size
        if self.replaying:
            over = self._bytes > self.max_replay_bytes
        else:
            over = (
                len(self._queue) > self.max_messages + self._extra_messages
                or self._bytes > self.max_bytes + self._extra_bytes
            )
        if over:
            self.overflowed = True
            self._queue.clear()
            self._bytes = 0
            if self.on_overflow is not None:
                self.on_overflow()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end_replay(self) -> None:
        """A replay ended: tolerate its backlog until the writer has taken it."""
        self.replaying -= 1
        if not self.replaying:
            self._extra_messages = len(self._queue)
            self._extra_bytes = self._bytes

    def close(self) -> None:
        """Stop queueing and wake the writer so that it ends."""
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_frames(self) -> list[str]:
        """Wait for frames and return all of them; an empty list means: stop."""
        while not self._queue and not self.overflowed and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed or self.closed:
            return []
        frames = [text for text, _ in self._queue]
        self._queue.clear()
        self._bytes = self._extra_messages = self._extra_bytes = 0
        return frames


class _Session:
    """One client connection."""

    def __init__(self, endpoint: WebSocketEndpoint, hub: Hub, limits: Limits, receive: Any, send: Any) -> None:
        self.endpoint = endpoint
        self.hub = hub
        self.limits = limits
        self.receive = receive
        self.send = send
        self.outbox = Outbox(
            limits.send_buffer_messages,
            limits.send_buffer_bytes,
            self._overflowed,
            max_replay_bytes=limits.max_replay_bytes,
        )
        self.close_code: int | None = None
        self.close_reason = ""
        self._writer: asyncio.Task[None] | None = None

    async def run(self, scope: Scope) -> None:
        message = await self.receive()
        if message["type"] != "websocket.connect":
            return
        await self.hub.start()
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in scope.get("subprotocols", ()) else None
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol})
        writer = self._writer = asyncio.get_running_loop().create_task(self._write())
        reader = asyncio.get_running_loop().create_task(self._read())
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.outbox.close()
            self.hub.unsubscribe_all(self.outbox)
            for task in (reader, writer):
                task.cancel()
            for result in await asyncio.gather(reader, writer, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, _PEER_GONE):
                    logger.error("unexpected error on a WebSocket connection", exc_info=result)
                    self._close(CloseCode.INTERNAL_ERROR, "internal server error")
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

    def _overflowed(self) -> None:
        logger.info("closing a slow consumer: its send buffer overflowed")
        self.abort(CloseCode.SLOW_CONSUMER, "slow consumer: send buffer overflow")

    async def _write(self) -> None:
        outbox = self.outbox
        send = self.send
        while True:
            frames = await outbox.next_frames()
            if not frames:
                return
            for text in frames:
                await send({"type": "websocket.send", "text": text})

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
        try:
            request = parse_request(text, max_channels=self.limits.max_subscriptions)
        except InvalidRequest as exc:
            outbox.send_frame(encode_error(exc.code, exc.message, exc.request_id))
            return
        request_id = request.id
        try:
            if isinstance(request, Subscribe):
                have = self.hub.subscriptions(outbox)
                new = {item.channel for item in request.items} - set(have)
                patterns = sum(1 for name in have if is_pattern(name)) + sum(1 for name in new if is_pattern(name))
                if patterns > self.limits.max_patterns:
                    outbox.send_frame(
                        encode_error(
                            "too_many_patterns",
                            f"a connection may subscribe to at most {self.limits.max_patterns} patterns",
                            request_id,
                        )
                    )
                    return
                if len(have) + len(new) > self.limits.max_subscriptions:
                    outbox.send_frame(
                        encode_error(
                            "too_many_subscriptions",
                            f"a connection may subscribe to at most {self.limits.max_subscriptions} channels",
                            request_id,
                        )
                    )
                    return

                def ack(results: Mapping[str, SubscribeResult]) -> None:
                    if request_id is not None:
                        outbox.send_frame(encode_ack(request_id, results))

                outbox.replaying += 1
                try:
                    await self.hub.subscribe(outbox, request.items, on_ready=ack)
                finally:
                    outbox.end_replay()
            else:
                self.hub.unsubscribe(outbox, request.channels)
                if request_id is not None:
                    outbox.send_frame(encode_ack(request_id))
        except InvalidRequest as exc:
            outbox.send_frame(encode_error(exc.code, exc.message, request_id))
        except BackendError as exc:
            outbox.send_frame(encode_error("backend_unavailable", str(exc), request_id))


class WebSocketEndpoint:
    """The ASGI application serving protocol v1 on a WebSocket.

    Mount it at ``/ws/broadcast`` (the server and the FastAPI router do).
    """

    def __init__(self, hub: Hub, limits: Limits | None = None) -> None:
        self.hub = hub
        self.limits = limits or Limits()
        self._sessions: set[_Session] = set()
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

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError("WebSocketEndpoint serves WebSocket connections only")
        session = _Session(self, self.hub, self.limits, receive, send)
        self._sessions.add(session)
        try:
            await session.run(scope)
        finally:
            self._sessions.discard(session)
