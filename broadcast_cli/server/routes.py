"""The server's routes, defined once: ``broadcast serve``'s app and the FastAPI router mount the same ones.

:class:`ServerEndpoints` holds what serves them on one hub, protected by one
:class:`~.config.Security` and bounded by one :class:`~.config.Limits`: the
WebSocket endpoint (origins, tokens, grants, rates, connection count), the HTTP
API (API keys, body and batch limits) and the metrics. :func:`server_routes`
turns it into Starlette routes, with the :class:`~.index.EndpointInfo` list that
``GET /`` shows.

The HTTP API answers its errors in its own JSON shape whatever app it is
mounted in: a route turns Starlette's :class:`HTTPException` (a body too large,
say) into that shape itself rather than leaving it to the app's handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..hub import Hub
from ..static import CLIENT_TYPES, client_asset
from ..urls import PUBLISH_PATH, WEBSOCKET_PATH
from .config import Limits, Security
from .http import HttpApi, error_response
from .index import WEBSOCKET, EndpointInfo
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServerMetrics
from .websocket import WebSocketEndpoint

__all__ = ["ServerEndpoints", "http_error", "server_routes"]

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application: ``await app(scope, receive, send)``."""

Handler = Callable[["ServerEndpoints", Request], Awaitable[Response]]
"""An HTTP endpoint, given the endpoints it serves from and the request."""

_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def http_error(status: int, detail: str) -> Response:
    """The JSON error response for an HTTP status Starlette raised (404, 405, 413…)."""
    return error_response(status, _ERROR_CODES.get(status, "http_error"), detail)


class ServerEndpoints:
    """What the server's routes serve, on one hub: the WebSocket endpoint, the HTTP API and the metrics."""

    def __init__(self, hub: Hub, limits: Limits | None = None, security: Security | None = None) -> None:
        self.hub = hub
        self.limits = limits or Limits()
        self.security = security or Security()
        """Who may connect, read and publish: applied to the WebSocket endpoint and to ``POST /publish``."""
        self.websocket = WebSocketEndpoint(hub, self.limits, self.security)
        """The WebSocket endpoint (protocol v1)."""
        self.http = HttpApi(hub, self.limits, backend_name=hub.backend.url, api_keys=self.security.api_keys)
        """The HTTP API: publish, health, readiness, channels."""
        self.metrics = ServerMetrics(hub, self.websocket)
        """The Prometheus metrics of this hub and endpoint."""

    async def serve_metrics(self, request: Request) -> Response:
        """``GET /metrics``: the metrics in Prometheus's text format."""
        return Response(await self.metrics.scrape(), media_type=METRICS_CONTENT_TYPE)


_HTTP_ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    (PUBLISH_PATH, "POST", lambda server, request: server.http.publish(request), "publish a message or a batch"),
    ("/health", "GET", lambda server, request: server.http.health(request), "liveness, version and backend"),
    ("/ready", "GET", lambda server, request: server.http.ready(request), "readiness: 503 while Redis is down"),
    ("/channels", "GET", lambda server, request: server.http.channels(request), "channels with subscribers here"),
    ("/metrics", "GET", lambda server, request: server.serve_metrics(request), "Prometheus metrics"),
)
"""The HTTP API: path, method, handler and what the index says of it."""

_OPENAPI = ("/openapi.json", "GET", lambda server, request: server.http.openapi(request), "this API's OpenAPI 3.1")


def _endpoint(handler: Handler, current: Callable[[], ServerEndpoints]) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint calling *handler* on the current endpoints, its HTTP errors in the API's shape."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(current(), request)
        except HTTPException as exc:
            return http_error(exc.status_code, str(exc.detail))

    return endpoint


def server_routes(
    current: Callable[[], ServerEndpoints],
    *,
    websocket: ASGIApp,
    websocket_path: str = WEBSOCKET_PATH,
    http: bool = True,
    openapi: bool = True,
) -> tuple[list[BaseRoute], list[EndpointInfo]]:
    """The server's routes, and the list of them for the index.

    *websocket* serves the WebSocket endpoint at *websocket_path*. With *http*,
    the HTTP API too: ``POST /publish``, ``GET /health``, ``/ready``,
    ``/channels``, ``/metrics``, the browser client ``/client.js`` and
    ``/client.d.ts``, ``/openapi.json`` (with *openapi*) and a 426 for a plain
    ``GET`` of the WebSocket path. Each request is served by *current()*,
    which the FastAPI router replaces when its app restarts on a new event loop.
    """
    routes: list[BaseRoute] = [WebSocketRoute(websocket_path, websocket)]
    listing = [EndpointInfo(websocket_path, WEBSOCKET, "subscribe and publish: WebSocket protocol v1")]
    if not http:
        return routes, listing
    routes.append(
        Route(websocket_path, _endpoint(lambda server, request: server.http.websocket_only(request), current))
    )
    for path, method, handler, description in (*_HTTP_ROUTES, *((_OPENAPI,) if openapi else ())):
        routes.append(Route(path, _endpoint(handler, current), methods=[method]))
        listing.append(EndpointInfo(path, method, description))
    for path, asset, description in (
        ("/client.js", client_asset(), "the browser client, an ES module"),
        ("/client.d.ts", client_asset(CLIENT_TYPES), "its TypeScript declarations"),
    ):
        routes.append(Route(path, asset.serve, methods=["GET"]))
        listing.append(EndpointInfo(path, "GET", description))
    return routes, listing
