"""Publishing from outside a server: through its HTTP API or straight into Redis.

What ``broadcast publish`` does, as a library:

* :func:`publisher` opens a :class:`Publisher`: an
  :class:`~broadcast_cli.client.http.HttpPublisher` for a server's URL, or a
  :class:`RedisPublisher` that writes into Redis with no server in between (the
  same Lua function the servers use, so their subscribers get the messages);
* :func:`make_request` validates one message, :func:`expand_template` fills a
  ``{{count}}`` template, :func:`parse_ndjson_line` reads one line of a stream;
* :class:`LineReader` reads a stream's lines in a thread and hands them out in
  batches of whatever has arrived, so a stream is published with low latency
  when it trickles and in large batches when it floods.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any, Self

import orjson

from ..broadcaster import Broadcaster
from ..exceptions import ConfigurationError, InvalidPayload, InvalidRequest
from ..message import PublishRequest, validate_channel, validate_event
from ..protocol import MAX_ID_LENGTH, encode_payload, parse_publish
from ..urls import redact
from .http import MAX_BATCH, HttpPublisher, Publisher, Receipt

__all__ = [
    "COUNT_PLACEHOLDER",
    "LineReader",
    "Publisher",
    "RedisPublisher",
    "expand_template",
    "make_request",
    "parse_json",
    "parse_ndjson_line",
    "publisher",
]

COUNT_PLACEHOLDER = "{{count}}"
"""Replaced by 1, 2, … N in the channel, event and payload of ``broadcast publish --count N``."""


class RedisPublisher(Publisher):
    """Publishes straight into Redis, as a server on that Redis (and *prefix*) would.

    Subscribers of every server sharing the Redis get the messages, with their
    ``seq`` assigned by Redis. Raises
    :class:`~broadcast_cli.exceptions.BackendUnavailable` when Redis cannot be reached.
    """

    def __init__(self, redis_url: str, *, prefix: str = "broadcast", max_batch: int = MAX_BATCH) -> None:
        if not redis_url.lower().startswith("redis"):
            # memory:// would "succeed" into a hub of this process only, which no subscriber shares.
            raise ConfigurationError(
                f"cannot publish into {redact(redis_url)!r}: give the Redis your servers share "
                "(redis://, rediss://, redis+sentinel:// or redis+cluster://), or publish through a server with --url"
            )
        self.max_batch = max_batch
        self._broadcaster = Broadcaster(redis_url, prefix=prefix)

    async def __aenter__(self) -> Self:
        await self._broadcaster.hub.start()
        return self

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._broadcaster.close()

    async def _send_batch(self, requests: Sequence[PublishRequest]) -> list[Receipt]:
        messages = await self._broadcaster.hub.publish_many(requests)
        return [Receipt.from_message(message) for message in messages]


def publisher(
    url: str | None = None,
    *,
    redis_url: str | None = None,
    prefix: str = "broadcast",
    timeout: float = 10.0,
    api_key: str | None = None,
) -> Publisher:
    """A :class:`RedisPublisher` when *redis_url* is given, else an :class:`HttpPublisher` for *url*."""
    if redis_url is not None:
        return RedisPublisher(redis_url, prefix=prefix)
    if url is None:
        return HttpPublisher(timeout=timeout, api_key=api_key)
    return HttpPublisher(url, timeout=timeout, api_key=api_key)


def parse_json(text: str | bytes, what: str = "the payload") -> Any:
    """Parse JSON text, raising :class:`~broadcast_cli.exceptions.InvalidPayload` with the reason."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"{what} is not valid JSON: {exc}") from None


def make_request(
    channel: str, event: str, payload: Any = None, *, origin: str | None = None, id: str | None = None  # noqa: A002
) -> PublishRequest:
    """Validate one message to publish (channel and event names, payload encodable, origin and id)."""
    validate_channel(channel)
    validate_event(event)
    encode_payload(payload)
    for name, value in (("origin", origin), ("id", id)):
        if value is not None and not 0 < len(value) <= MAX_ID_LENGTH:
            raise InvalidRequest(f"{name} must have 1 to {MAX_ID_LENGTH} characters, not {len(value)}")
    return PublishRequest(channel, event, payload, origin, id)


def expand_template(template: str, count: int) -> str:
    """*template* with every ``{{count}}`` replaced by *count*."""
    return template.replace(COUNT_PLACEHOLDER, str(count))


def parse_ndjson_line(line: str | bytes, number: int, *, origin: str | None = None) -> PublishRequest | None:
    """Read line *number* of an NDJSON stream: ``{"channel", "event", "payload"?, "origin"?, "id"?}``.

    Blank lines give ``None``. *origin* is the default for lines without one.
    Errors name the line.
    """
    if not line.strip():
        return None
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"line {number} is not valid JSON: {exc}") from None
    if origin is not None and isinstance(data, dict) and "origin" not in data:
        data["origin"] = origin
    try:
        request = parse_publish(data)
        encode_payload(request.payload)
    except InvalidRequest as exc:
        raise type(exc)(f"line {number}: {exc}", code=exc.code) from None
    return request


class LineReader:
    """Reads the lines of a blocking stream (stdin) in a thread, for an event loop.

    :meth:`batches` yields lists of at most *max_size* lines: as soon as one line
    is there, with every further line that has already arrived. At most
    *max_pending* lines wait in memory; the thread stops reading beyond that.
    """

    def __init__(self, stream: IO[bytes] | IO[str], *, max_pending: int = 10 * MAX_BATCH) -> None:
        self._stream = stream
        self._room = threading.Semaphore(max_pending)
        self._queue: asyncio.Queue[str | bytes | BaseException | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="broadcast-line-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        loop = self._loop
        assert loop is not None
        try:
            for line in self._stream:
                self._room.acquire()
                loop.call_soon_threadsafe(self._queue.put_nowait, line)
        except BaseException as exc:  # handed to the reading coroutine, which raises it
            loop.call_soon_threadsafe(self._queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, None)

    def _take(self, item: str | bytes | BaseException | None) -> str | bytes | None:
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            self._room.release()
        return item

    async def batches(self, max_size: int = MAX_BATCH) -> AsyncIterator[list[str | bytes]]:
        """Yield the stream's lines in batches until it ends."""
        if self._thread is None:
            self._start()
        while True:
            line = self._take(await self._queue.get())
            if line is None:
                return
            batch = [line]
            ended = False
            while len(batch) < max_size and not self._queue.empty():
                more = self._take(self._queue.get_nowait())
                if more is None:
                    ended = True
                    break
                batch.append(more)
            yield batch
            if ended:
                return
