"""The HTTP API: publish, health, readiness and channel listing. Every error is JSON.

``POST /publish`` takes one message ``{"channel", "event", "payload", "origin"?,
"id"?}`` or a JSON list of them (a batch, published in order) and answers with
the assigned positions, in the same shape (object or list). Errors use the
WebSocket error frame's shape: ``{"type": "error", "id": null, "code", "message"}``.
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import __version__
from ..auth import ApiKeys
from ..exceptions import AuthenticationError, BackendError, BackendUnavailable, InvalidRequest
from ..hub import Hub
from ..message import Message
from ..protocol import PROTOCOL_VERSION, encode_error, parse_json, parse_publish
from .config import Limits

__all__ = ["READY_TIMEOUT", "HttpApi", "JSONResponse", "error_response"]

READY_TIMEOUT = 2.0
"""How long ``GET /ready`` waits for the backend to answer before reporting it down."""


class JSONResponse(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> Response:
    """A JSON error response in the shape of a WebSocket error frame."""
    return Response(encode_error(code, message), status_code=status, media_type="application/json")


@functools.cache
def _openapi() -> bytes:
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


def _receipt(message: Message) -> dict[str, Any]:
    return {"channel": message.channel, "seq": message.seq, "epoch": message.epoch, "id": message.id, "ts": message.ts}


class HttpApi:
    """The HTTP endpoints, bound to one hub."""

    def __init__(self, hub: Hub, limits: Limits, *, backend_name: str, api_keys: ApiKeys | None = None) -> None:
        self.hub = hub
        self.limits = limits
        self.backend_name = backend_name
        self.api_keys = api_keys or ApiKeys()
        """The keys ``POST /publish`` accepts; none: publishing is open."""
        self.draining = False
        """Set by :meth:`drain`: publishes are refused with 503 ``shutting_down``."""
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self) -> None:
        """Refuse new publishes and wait for those in flight to finish."""
        self.draining = True
        await self._idle.wait()

    async def _body(self, request: Request) -> bytes:
        limit = self.limits.max_publish_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the body is {declared} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise HTTPException(400, "the client disconnected before sending the whole body") from None
        return b"".join(chunks)

    async def publish(self, request: Request) -> Response:
        """``POST /publish``: publish one message or a batch."""
        if self.api_keys:
            try:
                self.api_keys.check(request.headers.get("authorization"))
            except AuthenticationError as exc:
                response = error_response(401, "unauthorized", f"nothing was published: {exc}")
                response.headers["www-authenticate"] = "Bearer"
                return response
        if self.draining:
            return error_response(
                503, "shutting_down", "this server is shutting down; nothing was published: publish to another instance"
            )
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._publish(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _publish(self, request: Request) -> Response:
        body = await self._body(request)
        try:
            data = parse_json(body, what="the body")
        except InvalidRequest as exc:
            return error_response(400, exc.code, exc.message)
        batch = isinstance(data, list)
        items = data if batch else [data]
        if not items:
            return error_response(400, "invalid_request", "an empty batch: send at least one message")
        if len(items) > self.limits.max_publish_batch:
            return error_response(
                413, "batch_too_large", f"a batch may hold at most {self.limits.max_publish_batch} messages"
            )
        try:
            requests = []
            for index, item in enumerate(items):
                try:
                    requests.append(parse_publish(item))
                except InvalidRequest as exc:
                    if batch:
                        exc.message = f"item {index}: {exc.message}"
                    raise
            messages = await self.hub.publish_many(requests)
        except InvalidRequest as exc:
            status = 413 if exc.code == "payload_too_large" else 400
            return error_response(status, exc.code, exc.message)
        except BackendUnavailable as exc:
            return error_response(503, "backend_unavailable", f"nothing was published: {exc}")
        except BackendError as exc:
            return error_response(502, "backend_error", str(exc))
        receipts = [_receipt(message) for message in messages]
        return JSONResponse(receipts if batch else receipts[0])

    async def websocket_only(self, request: Request) -> Response:
        """A plain HTTP request on the WebSocket path: say how to use it."""
        return error_response(
            426, "upgrade_required", "this is a WebSocket endpoint: connect with a WebSocket client (protocol v1)"
        )

    async def health(self, request: Request) -> Response:
        """``GET /health``: liveness, with the version and backend."""
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "backend": self.backend_name,
            }
        )

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: this API's OpenAPI 3.1 description."""
        return Response(_openapi(), media_type="application/json")

    async def ready(self, request: Request) -> Response:
        """``GET /ready``: readiness. 200 when the backend answers, 503 when it does not.

        A load balancer should stop sending new clients to an instance that is
        not ready; its connected clients stay connected and catch up once the
        backend is back.
        """
        backend = {"url": self.backend_name, "state": "up"}
        try:
            await asyncio.wait_for(self.hub.backend.ping(), READY_TIMEOUT)
        except (BackendError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {READY_TIMEOUT:g} s"
            backend.update(state="down", error=reason)
            return JSONResponse({"status": "unavailable", "backend": backend}, status_code=503)
        return JSONResponse({"status": "ready", "backend": backend})

    async def channels(self, request: Request) -> Response:
        """``GET /channels``: channels with local subscribers, their counts and positions."""
        return JSONResponse(
            {
                "channels": [
                    {
                        "channel": info.channel,
                        "subscribers": info.subscribers,
                        "seq": info.position.seq if info.position else 0,
                        "epoch": info.position.epoch if info.position else None,
                    }
                    for info in self.hub.channels()
                ]
            }
        )
