"""The ASGI application: the WebSocket endpoint and the HTTP API on one hub."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..backends import create_backend
from ..hub import Hub
from ..static import CLIENT_TYPES, client_asset
from ..urls import PUBLISH_PATH, WEBSOCKET_PATH
from .config import Limits, ServerConfig
from .http import HttpApi, error_response
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServerMetrics
from .websocket import WebSocketEndpoint

__all__ = ["SHUTDOWN_TIMEOUT", "WEBSOCKET_PATH", "create_app", "create_hub", "drain"]

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0
"""How long a graceful shutdown waits for publishes in flight, then for clients to take their last frames."""


def create_hub(config: ServerConfig) -> Hub:
    """Create the hub and backend that *config* describes."""
    backend = create_backend(config.redis_url, prefix=config.prefix, options=config.history)
    return Hub(backend, max_payload_bytes=config.limits.max_payload_bytes)


def _browser_routes(hub: Hub, config: ServerConfig) -> tuple[list[BaseRoute], Callable[[], None]]:
    """The browser client at ``GET /client.js`` (types at ``/client.d.ts``), and the demo with ``config.demo``.

    Returns the routes and the function that releases what they hold (the demo's database).
    """
    routes: list[BaseRoute] = [
        Route("/client.js", client_asset().serve, methods=["GET"]),
        Route("/client.d.ts", client_asset(CLIENT_TYPES).serve, methods=["GET"]),
    ]
    if not config.demo:
        return routes, lambda: None
    from ..demo import OrderStore, demo_routes

    store = OrderStore(config.demo_db)
    return [*routes, *demo_routes(hub, store)], store.close


def _middleware(config: ServerConfig) -> list[Middleware]:
    """CORS for the HTTP API, for the origins the configuration names."""
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


async def _metrics(metrics: ServerMetrics, request: Request) -> Response:
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


def create_app(hub: Hub | None = None, *, config: ServerConfig | None = None) -> Starlette:
    """Create the server's ASGI app.

    Serves ``/ws/broadcast`` (WebSocket, protocol v1), ``POST /publish``,
    ``GET /health``, ``GET /ready``, ``GET /channels``, ``GET /metrics`` and
    ``GET /openapi.json``. The hub (made from *config* when not given) is
    started and stopped with the app's lifespan.
    """
    config = config or ServerConfig()
    hub = hub or create_hub(config)
    limits: Limits = config.limits
    api = HttpApi(hub, limits, backend_name=hub.backend.url, api_keys=config.security.api_keys)
    endpoint = WebSocketEndpoint(hub, limits, config.security)
    metrics = ServerMetrics(hub, endpoint)
    browser_routes, close_browser_routes = _browser_routes(hub, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            close_browser_routes()

    app = Starlette(
        routes=[
            WebSocketRoute(WEBSOCKET_PATH, endpoint),
            Route(WEBSOCKET_PATH, api.websocket_only, methods=["GET"]),
            Route(PUBLISH_PATH, api.publish, methods=["POST"]),
            Route("/health", api.health, methods=["GET"]),
            Route("/ready", api.ready, methods=["GET"]),
            Route("/openapi.json", api.openapi, methods=["GET"]),
            Route("/channels", api.channels, methods=["GET"]),
            Route("/metrics", functools.partial(_metrics, metrics), methods=["GET"]),
            *browser_routes,
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        middleware=_middleware(config),
    )
    app.state.hub = hub
    app.state.http = api
    app.state.websocket = endpoint
    app.state.metrics = metrics
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
