"""The demo's endpoints: the page, its script, and the orders API.

=======================  =====================================================
``GET /demo``            the page (``/demo/`` redirects to it)
``GET /demo/app.js``     its script, which imports ``/client.js``
``GET /demo/api/orders`` ``{"orders": [...]}``, newest first
``POST /demo/api/orders`` store an order, then broadcast ``order.created``
=======================  =====================================================

Errors are JSON in the HTTP API's shape (``{"type": "error", "id": null,
"code", "message"}``): 400 ``invalid_json`` or ``invalid_order``, 409
``order_exists``, 413 ``too_large``.
"""

from __future__ import annotations

from importlib.resources import files

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..exceptions import BackendError, InvalidRequest
from ..hub import Hub
from ..server.http import JSONResponse, error_response
from ..static import Asset
from .orders import parse_new_order
from .store import OrderExists, OrderStore

__all__ = ["DEMO_CHANNEL", "MAX_BODY_BYTES", "DemoApi", "demo_routes"]

DEMO_CHANNEL = "orders"
"""The channel the demo broadcasts on."""

MAX_BODY_BYTES = 16 * 1024
"""The largest create request accepted."""


class _TooLarge(Exception):
    pass


class DemoApi:
    """The demo's endpoints, on one hub and one store."""

    def __init__(self, hub: Hub, store: OrderStore) -> None:
        self.hub = hub
        self.store = store
        static = files(__package__).joinpath("static")
        self.page = Asset(static.joinpath("index.html"))
        """The page."""
        self.script = Asset(static.joinpath("app.js"))
        """The page's script."""

    async def list_orders(self, request: Request) -> Response:
        """``GET /demo/api/orders``: the orders, newest first."""
        orders = await self.store.latest()
        return JSONResponse({"orders": [order.to_json() for order in orders]})

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def create_order(self, request: Request) -> Response:
        """``POST /demo/api/orders``: validate, store, then broadcast ``order.created``.

        Answers ``201 {"order": …, "broadcast": {"seq", "epoch"}}``. The
        broadcast comes after the order is stored, so that a browser refetching
        on it sees the order. Should the broadcast fail (Redis unreachable), the
        order stays stored and ``"broadcast"`` is ``null``, with a ``warning``.
        """
        try:
            body = await self._body(request)
        except _TooLarge:
            return error_response(413, "too_large", f"an order is at most {MAX_BODY_BYTES} bytes of JSON")
        except ClientDisconnect:
            return error_response(400, "invalid_request", "the client disconnected before sending the whole body")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error_response(400, "invalid_json", f"the body is not valid JSON: {exc}")
        try:
            new = parse_new_order(data)
        except InvalidRequest as exc:
            return error_response(400, exc.code, exc.message)
        try:
            order = await self.store.create(new)
        except OrderExists as exc:
            return error_response(409, "order_exists", str(exc))
        answer: dict[str, object] = {"order": order.to_json()}
        try:
            message = await self.hub.publish(
                DEMO_CHANNEL, "order.created", {"entity_id": order.id, "order": order.to_json()}, origin=new.client_id
            )
        except BackendError as exc:
            answer["broadcast"] = None
            answer["warning"] = f"the order was stored, but could not be broadcast: {exc}"
        else:
            answer["broadcast"] = {"channel": message.channel, "seq": message.seq, "epoch": message.epoch}
        return JSONResponse(answer, status_code=201)

    async def redirect(self, request: Request) -> Response:
        """``GET /demo/``: to ``/demo``."""
        return RedirectResponse("/demo", status_code=308)


def demo_routes(hub: Hub, store: OrderStore) -> list[BaseRoute]:
    """The demo's routes, to add to the server's app."""
    api = DemoApi(hub, store)
    return [
        Route("/demo", api.page.serve, methods=["GET"]),
        Route("/demo/", api.redirect, methods=["GET"]),
        Route("/demo/app.js", api.script.serve, methods=["GET"]),
        Route("/demo/api/orders", api.list_orders, methods=["GET"]),
        Route("/demo/api/orders", api.create_order, methods=["POST"]),
    ]
