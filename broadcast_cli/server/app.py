"""The ASGI application: the WebSocket endpoint and the HTTP API on one hub.

The routes themselves are defined in :mod:`.routes`, which the FastAPI router
(:mod:`.router`) mounts too; this module adds what only a whole app has: the
index at ``GET /``, the demo, CORS, the JSON 404/405, the lifespan and the
graceful :func:`drain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..backends import create_backend
from ..hub import Hub
from ..urls import WEBSOCKET_PATH
from .config import ServerConfig
from .http import HttpApi
from .index import EndpointInfo, Index
from .routes import ServerEndpoints, http_error, server_routes
from .websocket import WebSocketEndpoint

__all__ = ["SHUTDOWN_TIMEOUT", "WEBSOCKET_PATH", "create_app", "create_hub", "drain"]

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0
"""How long a graceful shutdown waits for publishes in flight, then for clients to take their last frames."""


def create_hub(config: ServerConfig) -> Hub:
    """Create the hub and backend that *config* describes."""
    backend = create_backend(config.redis_url, prefix=config.prefix, options=config.history)
    return Hub(backend, max_payload_bytes=config.limits.max_payload_bytes)


def _demo_routes(hub: Hub, config: ServerConfig) -> tuple[list[BaseRoute], list[EndpointInfo], Callable[[], None]]:
    """The demo's routes with ``config.demo`` (none without), their index entry, and what releases its database."""
    if not config.demo:
        return [], [], lambda: None
    from ..demo import OrderStore, demo_routes

    store = OrderStore(config.demo_db)
    listing = [EndpointInfo("/demo", "GET", "the optimistic-sync demo: open it in two tabs")]
    return demo_routes(hub, store), listing, store.close


def _cors_middleware(config: ServerConfig) -> list[Middleware]:
    """CORS for the HTTP API, for the origins the configuration names (none: no CORS headers)."""
    origins = list(config.security.cors_origins)
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error(exc.status_code, str(exc.detail))


def create_app(hub: Hub | None = None, *, config: ServerConfig | None = None) -> Starlette:
    """Create the server's ASGI app.

    Serves ``/ws/broadcast`` (WebSocket, protocol v1), ``POST /publish``,
    ``GET /health``, ``GET /ready``, ``GET /channels``, ``GET /metrics``,
    ``GET /openapi.json``, the browser client (``GET /client.js``), the demo
    with ``config.demo``, and ``GET /``, which lists them. The hub (made from
    *config* when not given) is started and stopped with the app's lifespan.
    """
    config = config or ServerConfig()
    hub = hub or create_hub(config)
    server = ServerEndpoints(hub, config.limits, config.security)
    routes, listing = server_routes(lambda: server, websocket=server.websocket)
    demo, demo_listing, close_demo = _demo_routes(hub, config)
    index = Index([*listing, *demo_listing])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            close_demo()

    app = Starlette(
        routes=[Route("/", index.serve, methods=["GET"]), *routes, *demo],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        middleware=_cors_middleware(config),
    )
    app.state.hub = hub
    app.state.http = server.http
    app.state.websocket = server.websocket
    app.state.metrics = server.metrics
    return app


async def drain(app: Starlette, timeout: float = SHUTDOWN_TIMEOUT) -> None:  # noqa: ASYNC109 - two phases
    """Shut *app* down gracefully, before the ASGI server closes its connections.

    New publishes are refused (503 ``shutting_down``) and those in flight
    finish, so every publish acknowledged with a 2xx has been handed to the
    hub; then every client is sent what is queued for it and closed with 1012
    (reconnect elsewhere and recover). Each phase waits at most *timeout*
    seconds; clients that do not read are then closed without the rest.
    """
    api: HttpApi = app.state.http
    endpoint: WebSocketEndpoint = app.state.websocket
    try:
        async with asyncio.timeout(timeout):
            await api.drain()
    except TimeoutError:
        logger.warning("publishes still in flight after %g s: shutting down anyway", timeout)
    try:
        async with asyncio.timeout(timeout):
            await endpoint.drain()
    except TimeoutError:
        logger.warning("clients did not take their last frames within %g s: closing them", timeout)
        endpoint.close_all()
