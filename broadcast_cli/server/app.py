"""The ASGI application: the WebSocket endpoint and the HTTP API on one hub."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from ..backends import create_backend
from ..hub import Hub
from .config import Limits, ServerConfig
from .http import HttpApi, error_response
from .websocket import WebSocketEndpoint

__all__ = ["WEBSOCKET_PATH", "create_app", "create_hub"]

WEBSOCKET_PATH = "/ws/broadcast"
"""Where the WebSocket endpoint is served."""


def create_hub(config: ServerConfig) -> Hub:
    """Create the hub and backend that *config* describes."""
    backend = create_backend(config.redis_url, prefix=config.prefix, options=config.history)
    return Hub(backend, max_payload_bytes=config.limits.max_payload_bytes)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


def create_app(hub: Hub | None = None, *, config: ServerConfig | None = None) -> Starlette:
    """Create the server's ASGI app.

    Serves ``/ws/broadcast`` (WebSocket, protocol v1), ``POST /publish``,
    ``GET /health`` and ``GET /channels``. The hub (made from *config* when not
    given) is started and stopped with the app's lifespan.
    """
    config = config or ServerConfig()
    hub = hub or create_hub(config)
    limits: Limits = config.limits
    api = HttpApi(hub, limits, backend_name=hub.backend.url)
    endpoint = WebSocketEndpoint(hub, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = Starlette(
        routes=[
            WebSocketRoute(WEBSOCKET_PATH, endpoint),
            Route(WEBSOCKET_PATH, api.websocket_only, methods=["GET"]),
            Route("/publish", api.publish, methods=["POST"]),
            Route("/health", api.health, methods=["GET"]),
            Route("/channels", api.channels, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.websocket = endpoint
    return app
