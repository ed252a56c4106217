"""The seed's WebSocket API for FastAPI apps: :class:`WebSocketBroadcastBackend`.

Include its router in an app and broadcast from any endpoint::

    backend = WebSocketBroadcastBackend()                 # or ("redis://localhost:6379/0")
    app.include_router(backend.get_router())              # serves /ws/broadcast
    await backend.broadcast("orders", "created", {"entity_id": "123"})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends import Backend, create_backend
from ..history import HistoryOptions
from ..hub import Hub
from ..message import Message
from ..urls import WEBSOCKET_PATH
from .config import Limits
from .websocket import Scope, WebSocketEndpoint

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["WebSocketBroadcastBackend"]

T = TypeVar("T")

_SETTLE_ROUNDS = 32
"""Event-loop turns that let a connection pick up a frame already handed to the loop."""


async def _settled(endpoint: WebSocketEndpoint, make: Callable[[], Awaitable[T]]) -> T:
    # Frames a client handed to the loop before this call must be handled first.
    # Picking a frame up takes a few turns of the loop and no I/O; handling it may
    # wait on Redis, which wait_idle() covers.
    for _ in range(_SETTLE_ROUNDS):
        await asyncio.sleep(0)
    await endpoint.wait_idle()
    return await make()


class WebSocketBroadcastBackend:
    """Broadcast to WebSocket clients of a FastAPI (or any Starlette) app.

    With *redis* (a URL or a backend), broadcasts reach the clients of every
    instance on that Redis and history is shared, so clients recover across
    instances; without it everything stays in this process.

    The WebSocket connections live on the server's event loop. When
    :meth:`broadcast` or :meth:`get_subscriber_count` is called from another
    thread or loop (as Starlette's ``TestClient`` does), it runs on the
    connections' loop, after the requests already handed to that loop.
    """

    def __init__(
        self,
        redis: str | Backend | None = None,
        *,
        path: str = WEBSOCKET_PATH,
        prefix: str | None = None,
        history: HistoryOptions | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.path = path
        if isinstance(redis, Backend):
            self._make_backend: Callable[[], Backend] | None = None
            backend = redis
        else:

            def make_backend() -> Backend:
                return create_backend(redis, prefix=prefix, options=history)

            self._make_backend = make_backend
            backend = make_backend()
        self.hub = Hub(backend, max_payload_bytes=self.limits.max_payload_bytes)
        """The hub shared by the WebSocket endpoint and :meth:`broadcast`."""
        self._endpoint = WebSocketEndpoint(self.hub, self.limits)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve from *loop*. A Redis connection belongs to the loop that opened it:
        when the app starts again on a new loop (the old one is gone), start afresh."""
        old = self._loop
        self._loop = loop
        if old is None or old is loop or not (old.is_closed() or not old.is_running()):
            return
        if self.hub.backend.shared and self._make_backend is not None:
            self.hub = Hub(self._make_backend(), max_payload_bytes=self.limits.max_payload_bytes)
            self._endpoint = WebSocketEndpoint(self.hub, self.limits)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve one WebSocket connection (the backend is itself an ASGI app)."""
        self._bind(asyncio.get_running_loop())
        await self._endpoint(scope, receive, send)

    def get_router(self) -> APIRouter:
        """Return a FastAPI router serving the WebSocket endpoint at :attr:`path`.

        Its lifespan (merged into the app's by ``include_router``) connects the
        backend when the app starts and releases it when the app stops.
        """
        from fastapi import APIRouter
        from starlette.routing import WebSocketRoute

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            # Connect on the app's loop at startup; release on that loop at shutdown.
            self._bind(asyncio.get_running_loop())
            await self.hub.start()
            try:
                yield
            finally:
                await self.hub.stop()

        router = APIRouter(lifespan=lifespan)
        router.routes.append(WebSocketRoute(self.path, self))
        return router

    def _foreign_loop(self) -> asyncio.AbstractEventLoop | None:
        """The connections' loop if it is running and is not the caller's, else ``None``."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return None
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        return None if current is loop else loop

    async def broadcast(
        self, channel: str, event_type: str, payload: Any = None, *, origin: str | None = None
    ) -> Message:
        """Send *payload* as *event_type* to every subscriber of *channel*; return the message."""

        def publish() -> Coroutine[Any, Any, Message]:
            return self.hub.publish(channel, event_type, payload, origin=origin)

        loop = self._foreign_loop()
        if loop is None:
            self._bind(asyncio.get_running_loop())
            return await publish()
        future = asyncio.run_coroutine_threadsafe(_settled(self._endpoint, publish), loop)
        return await asyncio.wrap_future(future)

    def get_subscriber_count(self, channel: str) -> int:
        """The number of this instance's WebSocket connections subscribed to *channel*."""
        loop = self._foreign_loop()
        if loop is None:
            return self.hub.subscriber_count(channel)

        async def count() -> int:
            return self.hub.subscriber_count(channel)

        return asyncio.run_coroutine_threadsafe(_settled(self._endpoint, count), loop).result(timeout=30)

    async def close(self) -> None:
        """Disconnect the backend (Redis connections included)."""
        await self.hub.stop()
