"""The publishing side of a run: messages carrying their send time, at a rate or as fast as possible.

Every message's payload is ``{"t": NS, "p": "xxx…"}``: ``t`` is ``time.time_ns()``
when its batch was sent (subscribers subtract it from their arrival time: the
publish→deliver latency), and ``p`` pads the payload to the size asked for. The
messages go through the server's HTTP API (``POST /publish``, a JSON list per
batch), the way an application's backend publishes; the answers give each
channel's last seq, which is what every subscriber must reach.

:func:`due` is the schedule, without I/O; :func:`publish` runs it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from ..client.http import PublishRefused, RequestTimeout, publish_url
from ..exceptions import ClientError, ConnectError

__all__ = [
    "EVENT",
    "MIN_PAYLOAD_SIZE",
    "PublisherResult",
    "batch_body",
    "due",
    "payload_padding",
    "publish",
]

EVENT = "bench"
"""The event name of every message the bench publishes."""

_PAYLOAD_HEAD = b'{"t":'
_PAYLOAD_PAD = b',"p":"'
_PAYLOAD_TAIL = b'"}'
_T_DIGITS = 19
"""Digits of ``time.time_ns()`` (until the year 2286)."""

MIN_PAYLOAD_SIZE = len(_PAYLOAD_HEAD) + _T_DIGITS + len(_PAYLOAD_PAD) + len(_PAYLOAD_TAIL)
"""The smallest payload: ``{"t":NS,"p":""}``, 32 bytes of JSON."""


def payload_padding(size: int) -> str:
    """The ``p`` padding that makes the payload *size* bytes of JSON."""
    if size < MIN_PAYLOAD_SIZE:
        raise ValueError(f"a payload is at least {MIN_PAYLOAD_SIZE} bytes, not {size}")
    return "x" * (size - MIN_PAYLOAD_SIZE)


def batch_body(channels: Sequence[str], padding: str, sent_ns: int) -> bytes:
    """The ``POST /publish`` body of one batch: one message per item of *channels*, all sent at *sent_ns*."""
    payload = f'{{"t":{sent_ns},"p":"{padding}"}}'
    items = [f'{{"channel":"{channel}","event":"{EVENT}","payload":{payload}}}' for channel in channels]
    return ("[" + ",".join(items) + "]").encode()


def due(elapsed: float, rate: float | None, total: int) -> int:
    """How many of *total* messages should have been sent *elapsed* seconds after the start.

    *rate* is in messages per second; ``None`` means as fast as possible (all of
    them are due at once). The first message is due at the start.
    """
    if rate is None:
        return total
    return min(total, math.floor(elapsed * rate) + 1)


@dataclass(slots=True)
class PublisherResult:
    """What one publisher did."""

    published: int = 0
    """Messages the server acknowledged."""
    requests: int = 0
    """``POST /publish`` requests sent."""
    started: float = 0.0
    """``time.monotonic()`` when the first batch was sent."""
    finished: float = 0.0
    """``time.monotonic()`` when the last answer came."""
    finals: dict[str, int] = field(default_factory=dict)
    """The greatest seq the server gave, per channel."""
    timed_out: bool = False
    """Whether the deadline stopped it before every message was sent."""


def _finals(answer: bytes, finals: dict[str, int]) -> int:
    """Fold the receipts of a ``POST /publish`` answer into *finals*; return how many messages they cover."""
    try:
        receipts = orjson.loads(answer)
    except orjson.JSONDecodeError:
        raise ClientError(f"unexpected answer to a publish: {answer[:200]!r}") from None
    if not isinstance(receipts, list):
        raise ClientError(f"unexpected answer to a publish: {answer[:200]!r}")
    for receipt in receipts:
        channel = receipt.get("channel") if isinstance(receipt, dict) else None
        seq = receipt.get("seq") if isinstance(receipt, dict) else None
        if not isinstance(channel, str) or not isinstance(seq, int):
            raise ClientError(f"unexpected receipt in the answer to a publish: {receipt!r:.200}")
        if seq > finals.get(channel, 0):
            finals[channel] = seq
    return len(receipts)


async def publish(
    client: httpx.AsyncClient,
    url: str,
    channels: Sequence[str],
    *,
    count: int,
    rate: float | None,
    batch: int,
    payload_size: int,
    start: float,
    stop: float,
    on_published: Callable[[int], None] | None = None,
    api_key: str | None = None,
) -> PublisherResult:
    """Publish *count* messages through ``POST {url}/publish``, cycling through *channels*.

    At most *batch* messages per request, one request at a time; at *rate*
    messages per second (``None``: as fast as the server answers), from
    ``time.monotonic()`` *start* until *stop*, whichever ends first.
    *on_published(n)* is told after each answer. Raises
    :class:`~broadcast_cli.client.http.PublishRefused` when the server refuses a
    batch and :class:`~broadcast_cli.exceptions.ConnectError` when it cannot be
    reached. *api_key*, when given, goes in an ``Authorization: Bearer`` header.
    """
    endpoint = publish_url(url)
    padding = payload_padding(payload_size)
    result = PublisherResult()
    ring = len(channels)
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    delay = start - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    result.started = time.monotonic()
    sent = 0
    while sent < count:
        now = time.monotonic()
        if now >= stop:
            result.timed_out = True
            break
        wanted = min(due(now - start, rate, count) - sent, batch)
        if wanted <= 0:
            assert rate is not None
            # The next message is due at start + sent / rate: sleep until then, never past the deadline.
            await asyncio.sleep(max(0.0, min(start + sent / rate, stop) - now))
            continue
        targets = [channels[(sent + offset) % ring] for offset in range(wanted)]
        body = batch_body(targets, padding, time.time_ns())
        try:
            response = await client.post(endpoint, content=body, headers=headers)
        except httpx.TimeoutException:
            raise RequestTimeout(f"no answer from {endpoint} in time") from None
        except httpx.TransportError as exc:
            raise ConnectError(f"cannot publish to {endpoint}: {exc or type(exc).__name__}") from None
        if response.status_code >= 400:
            raise PublishRefused(response.status_code, "http_error", response.text[:200])
        published = _finals(response.content, result.finals)
        result.requests += 1
        result.published += published
        sent += wanted
        if on_published is not None:
            on_published(published)
    result.finished = time.monotonic()
    return result
