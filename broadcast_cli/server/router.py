"""The seed's WebSocket API for FastAPI apps: :class:`WebSocketBroadcastBackend`.

Include its router in an app and broadcast from any endpoint::

    backend = WebSocketBroadcastBackend()                 # or ("redis://localhost:6379/0")
    app.include_router(backend.get_router())              # serves /ws/broadcast
    await backend.broadcast("orders", "created", {"entity_id": "123"})

``get_router(http=True)`` also mounts the HTTP API of ``broadcast serve``
(``POST /publish``, ``/health``, ``/metrics``, ``/client.js``…): the same routes
(:mod:`.routes`), under the same :class:`~.config.Security` and
:class:`~.config.Limits`. The router needs FastAPI: ``pip install
'broadcast-cli[fastapi]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends import Backend, create_backend
from ..exceptions import ConfigurationError
from ..history import HistoryOptions
from ..hub import Hub
from ..message import Message
from ..urls import WEBSOCKET_PATH
from .config import Limits, Security
from .routes import ServerEndpoints, server_routes
from .websocket import Scope, WebSocketEndpoint

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["FASTAPI_EXTRA", "WebSocketBroadcastBackend"]

FASTAPI_EXTRA = "pip install 'broadcast-cli[fastapi]'"
"""How to install what :meth:`WebSocketBroadcastBackend.get_router` needs."""

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


def _api_router_class() -> type[APIRouter]:
    """FastAPI's ``APIRouter``; a :class:`ModuleNotFoundError` saying how to install FastAPI if it is missing."""
    try:
        from fastapi import APIRouter
    except ModuleNotFoundError as exc:
        if exc.name != "fastapi":
            raise
        raise ModuleNotFoundError(
            f"WebSocketBroadcastBackend.get_router() returns a FastAPI router, and FastAPI is not installed: "
            f"{FASTAPI_EXTRA}",
            name="fastapi",
        ) from exc
    return APIRouter


class WebSocketBroadcastBackend:
    """Broadcast to WebSocket clients of a FastAPI (or any Starlette) app.

    With *redis* (a URL or a backend), broadcasts reach the clients of every
    instance on that Redis and history is shared, so clients recover across
    instances; without it everything stays in this process.

    *security* and *limits* protect the endpoints as ``broadcast serve``'s
    ``--api-key``, ``--token-secret``, ``--public``, ``--allowed-origin`` and
    limit options do (default: open, with the default limits).

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
        security: Security | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.security = security or Security()
        """Who may connect, read and publish, as ``broadcast serve`` applies it."""
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
        """The hub shared by the WebSocket endpoint, the HTTP API and :meth:`broadcast`."""
        self._server = ServerEndpoints(self.hub, self.limits, self.security)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def _endpoint(self) -> WebSocketEndpoint:
        return self._server.websocket

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve from *loop*. A Redis connection belongs to the loop that opened it:
        when the app starts again on a new loop (the old one is gone), start afresh."""
        old = self._loop
        self._loop = loop
        if old is None or old is loop or not (old.is_closed() or not old.is_running()):
            return
        if self.hub.backend.shared and self._make_backend is not None:
            self.hub = Hub(self._make_backend(), max_payload_bytes=self.limits.max_payload_bytes)
            self._server = ServerEndpoints(self.hub, self.limits, self.security)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """Serve one WebSocket connection (the backend is itself an ASGI app)."""
        self._bind(asyncio.get_running_loop())
        await self._endpoint(scope, receive, send)

    def get_router(self, *, http: bool = False) -> APIRouter:
        """Return a FastAPI router serving the WebSocket endpoint at :attr:`path`.

        With *http*, the router also serves ``broadcast serve``'s HTTP API, so
        that ``broadcast publish --url``, the browser client and monitoring
        work against your app: ``POST /publish`` (API keys from
        :attr:`security`), ``GET /health``, ``/ready``, ``/channels``,
        ``/metrics``, ``/client.js`` and ``/client.d.ts``, and a 426 for a plain
        ``GET`` of :attr:`path`. Not ``GET /`` nor ``/openapi.json``, which are
        your app's. Your own routes declared before ``include_router`` win over
        these; ``include_router(..., prefix="/realtime")`` moves them all.

        Its lifespan (merged into the app's by ``include_router``) connects the
        backend when the app starts and releases it when the app stops.

        Raises :class:`ModuleNotFoundError` naming ``broadcast-cli[fastapi]``
        when FastAPI is not installed, and
        :class:`~broadcast_cli.exceptions.ConfigurationError` for *http* with
        :attr:`Security.cors_origins <.config.Security.cors_origins>`: CORS
        is middleware of the whole app, which a router cannot add.
        """
        api_router = _api_router_class()
        if http and self.security.cors_origins:
            origins = ", ".join(repr(origin) for origin in self.security.cors_origins)
            raise ConfigurationError(
                f"a router cannot add CORS for {origins}: CORS is middleware of the whole app. Leave cors_origins "
                "out of the Security and add it to your app: app.add_middleware(CORSMiddleware, "
                f"allow_origins=[{origins}], allow_methods=['GET', 'POST'], "
                "allow_headers=['authorization', 'content-type'])"
            )

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            # Connect on the app's loop at startup; release on that loop at shutdown.
            self._bind(asyncio.get_running_loop())
            await self.hub.start()
            try:
                yield
            finally:
                await self.hub.stop()

        routes, _ = server_routes(
            lambda: self._server, websocket=self, websocket_path=self.path, http=http, openapi=False
        )
        router = api_router(lifespan=lifespan)
        router.routes.extend(routes)
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
