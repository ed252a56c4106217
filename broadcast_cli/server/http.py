"""The HTTP API: publish, health and channel listing. Every error is JSON.

``POST /publish`` takes one message ``{"channel", "event", "payload", "origin"?,
"id"?}`` or a JSON list of them (a batch, published in order) and answers with
the assigned positions, in the same shape (object or list). Errors use the
WebSocket error frame's shape: ``{"type": "error", "id": null, "code", "message"}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import __version__
from ..exceptions import BackendError, BackendUnavailable, InvalidRequest
from ..hub import Hub
from ..message import Message
from ..protocol import PROTOCOL_VERSION, encode_error, parse_publish
from .config import Limits

__all__ = ["HttpApi", "JSONResponse", "error_response"]


class JSONResponse(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> Response:
    """A JSON error response in the shape of a WebSocket error frame."""
    return Response(encode_error(code, message), status_code=status, media_type="application/json")


def _receipt(message: Message) -> dict[str, Any]:
    return {"channel": message.channel, "seq": message.seq, "epoch": message.epoch, "id": message.id, "ts": message.ts}


class HttpApi:
    """The HTTP endpoints, bound to one hub."""

    def __init__(self, hub: Hub, limits: Limits, *, backend_name: str) -> None:
        self.hub = hub
        self.limits = limits
        self.backend_name = backend_name

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
        body = await self._body(request)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error_response(400, "invalid_json", f"the body is not valid JSON: {exc}")
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
