"""A small typed client of the server's HTTP publish API (``POST /publish``).

::

    async with HttpPublisher("http://localhost:8000") as publisher:
        receipt = await publisher.publish("orders", "order.created", {"entity_id": "123"})
        print(receipt.seq)

:meth:`HttpPublisher.publish_many` sends any number of messages, in order, in
batches of at most :data:`MAX_BATCH` (the server's limit). Errors are the
library's own: :class:`~broadcast_cli.exceptions.ConnectError` when the server
cannot be reached, :class:`PublishRefused` when it answers with an error status
(its JSON ``code`` and ``message`` kept), :class:`RequestTimeout` when it does
not answer in time. httpx's exceptions never escape.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from ..exceptions import ClientError, ConfigurationError, ConnectError, ServerError
from ..message import Message, PublishRequest, validate_channel, validate_event

__all__ = ["MAX_BATCH", "HttpPublisher", "PublishRefused", "Publisher", "Receipt", "RequestTimeout", "publish_url"]

MAX_BATCH = 1000
"""The most messages the server accepts in one ``POST /publish`` (``Limits.max_publish_batch``)."""

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where ``broadcast serve`` listens by default."""


class PublishRefused(ServerError):
    """The server answered a publish with an error status (4xx: refused; 5xx: failed).

    :attr:`status` is the HTTP status; :attr:`code` and :attr:`message` come from
    the JSON error body (see ``docs/http-api.md``). For a 4xx nothing of the batch
    was published.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status
        self.args = (f"the server refused the publish ({status} {code}): {message}",)

    def __str__(self) -> str:
        return str(self.args[0])


class RequestTimeout(ClientError, TimeoutError):
    """The server did not answer in time; the message may or may not have been published."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a published message landed: the server's answer for one message."""

    channel: str
    seq: int
    epoch: str
    id: str
    ts: int

    @classmethod
    def from_dict(cls, data: object) -> Receipt:
        """Read one item of a ``POST /publish`` answer; raise :class:`ClientError` if it is not one."""
        if isinstance(data, dict):
            channel, seq, epoch = data.get("channel"), data.get("seq"), data.get("epoch")
            message_id, ts = data.get("id"), data.get("ts")
            if (
                isinstance(channel, str)
                and isinstance(seq, int)
                and not isinstance(seq, bool)
                and isinstance(epoch, str)
                and isinstance(message_id, str)
                and isinstance(ts, int)
            ):
                return cls(channel, seq, epoch, message_id, ts)
        raise ClientError(f"unexpected answer from the server: {data!r:.200}")

    @classmethod
    def from_message(cls, message: Message) -> Receipt:
        """The receipt of a message published in-process (e.g. straight into Redis)."""
        return cls(message.channel, message.seq, message.epoch, message.id, message.ts)

    def to_dict(self) -> dict[str, Any]:
        """The receipt as the server sends it."""
        return {"channel": self.channel, "seq": self.seq, "epoch": self.epoch, "id": self.id, "ts": self.ts}


def publish_url(url: str) -> str:
    """The ``/publish`` endpoint of a server given by its base URL (or by that endpoint itself)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"invalid server URL {url!r}: it must start with http:// or https://")
    base = url.rstrip("/")
    return base if base.endswith("/publish") else f"{base}/publish"


def _encode(request: PublishRequest) -> dict[str, Any]:
    item: dict[str, Any] = {"channel": request.channel, "event": request.event, "payload": request.payload}
    if request.origin is not None:
        item["origin"] = request.origin
    if request.id is not None:
        item["id"] = request.id
    return item


def _refusal(response: httpx.Response) -> PublishRefused:
    code, message = "http_error", response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()
        if text:
            message = text[:200]
    else:
        if isinstance(body, dict):
            code = str(body.get("code", code))
            message = str(body.get("message", message))
    return PublishRefused(response.status_code, code, message)


class Publisher(abc.ABC):
    """Publishes messages in order, in batches of at most :attr:`max_batch`.

    Subclasses say how one batch is sent (:meth:`_send_batch`) and how
    connections are released (:meth:`close`). Use it as an async context manager.
    """

    max_batch: int = MAX_BATCH
    """The most messages sent in one batch."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def _send_batch(self, requests: Sequence[PublishRequest]) -> list[Receipt]:
        """Publish one batch, in order, and return its receipts."""

    async def publish_many(
        self,
        requests: Sequence[PublishRequest],
        *,
        on_batch: Callable[[list[Receipt]], object] | None = None,
    ) -> list[Receipt]:
        """Publish *requests* in order, in batches of at most :attr:`max_batch`; return every receipt.

        *on_batch(receipts)* is called after each batch, so a caller can report
        progress (and knows what was published if a later batch fails).
        """
        receipts: list[Receipt] = []
        for start in range(0, len(requests), self.max_batch):
            batch = await self._send_batch(requests[start : start + self.max_batch])
            receipts.extend(batch)
            if on_batch is not None:
                on_batch(batch)
        return receipts


class HttpPublisher(Publisher):
    """Publishes through a server's ``POST /publish``, keeping one HTTP connection open.

    *url* is the server's base URL (``http://host:8000``); *timeout* bounds each
    request in seconds; *api_key* is sent as ``Authorization: Bearer <key>`` to a
    server that requires one. Use it as an async context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 10.0,
        max_batch: int = MAX_BATCH,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not 0 < max_batch <= MAX_BATCH:
            raise ConfigurationError(f"max_batch must be from 1 to {MAX_BATCH}, not {max_batch}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, not {timeout}")
        self.url = publish_url(url)
        """The ``/publish`` endpoint."""
        self.max_batch = max_batch
        """The most messages sent in one request."""
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def close(self) -> None:
        """Close the HTTP connection."""
        await self._client.aclose()

    async def publish(
        self,
        channel: str,
        event: str,
        payload: Any = None,
        *,
        origin: str | None = None,
        id: str | None = None,  # noqa: A002 - the field's name in the API
    ) -> Receipt:
        """Publish one message and return its :class:`Receipt`; bad channel and event names are refused unsent."""
        request = PublishRequest(validate_channel(channel), validate_event(event), payload, origin, id)
        receipts = await self.publish_many([request])
        return receipts[0]

    async def _send_batch(self, requests: Sequence[PublishRequest]) -> list[Receipt]:
        body = orjson.dumps([_encode(request) for request in requests])
        try:
            response = await self._client.post(self.url, content=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                raise ConnectError(f"cannot connect to {self.url}: timed out") from None
            raise RequestTimeout(f"no answer from {self.url} within {self._client.timeout.read} s") from None
        except httpx.ConnectError as exc:
            raise ConnectError(f"cannot connect to {self.url}: {_reason(exc)}") from None
        except httpx.TransportError as exc:
            raise ConnectError(f"the connection to {self.url} failed: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise _refusal(response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ClientError(f"the answer of {self.url} is not JSON: {response.text[:200]!r}") from None
        items = data if isinstance(data, list) else [data]
        if len(items) != len(requests):
            raise ClientError(f"{self.url} answered {len(items)} receipts for {len(requests)} messages")
        return [Receipt.from_dict(item) for item in items]


def _reason(exc: httpx.HTTPError) -> str:
    """The most telling part of an httpx error (often the OS error underneath)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError):
            # asyncio's strerror repeats the address; the errno's own text is the reason.
            if isinstance(cause.errno, int) and cause.errno > 0:
                return os.strerror(cause.errno)
            if cause.strerror:
                return str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
