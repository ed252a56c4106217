"""The Redis backend (``redis://host:port/db``): many instances, one order per channel.

Each publish runs one Redis function (``broadcast_publish``, see
``redis_functions.lua`` beside this file) that assigns the channel's next
``seq``, appends the event frame to the channel's history stream and publishes
it on the channel's pub/sub channel, atomically. Every instance therefore sees
one order, and any instance can recover a subscriber from the shared history.
An instance subscribes in Redis only to the channels that have local
subscribers.

Redis pub/sub drops what is published while a connection is down; the hub
notices the hole in ``seq`` (or is told the subscription was restored) and
catches up from the history stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backoff import backoff
from ..exceptions import BackendError, BackendUnavailable, ConfigurationError, ProtocolError
from ..history import HistoryOptions, HistorySlice
from ..message import Message, Position, PublishRequest
from ..protocol import decode_event, new_message_id
from .base import Backend, BackendListener

__all__ = ["DEFAULT_PREFIX", "RedisBackend", "redis_keys"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "broadcast"
"""The default prefix of every Redis key and pub/sub channel name."""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

_CONFIRM_TIMEOUT = 10.0
"""How long to wait for Redis to confirm a SUBSCRIBE or UNSUBSCRIBE."""


def redis_keys(prefix: str, channel: str) -> tuple[str, str, str]:
    """Return the Redis names of *channel*: ``(meta key, stream key, pub/sub channel)``."""
    base = f"{prefix}:{{{channel}}}"
    return f"{base}:meta", f"{base}:stream", base


def _library() -> str:
    return resources.files(__package__).joinpath("redis_functions.lua").read_text(encoding="utf-8")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisBackend(Backend):
    """Positions and history in Redis; cross-instance fan-out over Redis pub/sub.

    *prefix* namespaces every key, so that several deployments can share one
    Redis. Extra keyword arguments go to :meth:`redis.asyncio.Redis.from_url`.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        options: HistoryOptions | None = None,
        **redis_options: Any,
    ) -> None:
        super().__init__(options)
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(f"not a Redis URL: {_redact(url)!r} (expected redis://host:port/db)")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"invalid Redis key prefix {prefix!r}: it must be non-empty, without braces")
        self.url = _redact(url)
        self.prefix = prefix
        self._url = url
        redis_options.setdefault("socket_connect_timeout", 5.0)
        redis_options.setdefault("socket_timeout", 10.0)
        redis_options.setdefault("max_connections", 64)
        redis_options.setdefault("timeout", 10.0)
        self._redis_options = redis_options
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._listen_task: asyncio.Task[None] | None = None
        self._has_subscriptions = asyncio.Event()
        self._pending: dict[bytes, deque[tuple[str, asyncio.Future[None]]]] = {}
        self._names: dict[bytes, str] = {}
        ttl = self.options.ttl
        self._limits = (str(self.options.size), str(math.ceil(ttl)), str(math.ceil(self.options.meta_ttl)))

    @property
    def shared(self) -> bool:
        return True

    @property
    def client(self) -> aioredis.Redis:
        """The redis-py client, once connected."""
        if self._redis is None:
            raise BackendError("the Redis backend is not connected: call connect() first")
        return self._redis

    async def connect(self, listener: BackendListener) -> None:
        await super().connect(listener)
        # A backend may be connected again after disconnect(), possibly on another loop.
        self._has_subscriptions = asyncio.Event()
        self._pending.clear()
        self._names.clear()
        # Publishers beyond max_connections wait for a free connection rather than fail.
        pool = aioredis.BlockingConnectionPool.from_url(self._url, **self._redis_options)
        self._redis = aioredis.Redis.from_pool(pool)
        try:
            await self._load_functions()
        except BaseException:
            await self._redis.aclose()
            self._redis = None
            raise
        self._pubsub = self._redis.pubsub()
        self._listen_task = asyncio.get_running_loop().create_task(self._listen(), name="broadcast-redis-listener")

    async def disconnect(self) -> None:
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
            self._listen_task = None
        for waiters in self._pending.values():
            for _, future in waiters:
                future.cancel()
        self._pending.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()
            self._redis = None

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc

    async def _load_functions(self) -> None:
        try:
            await self.client.function_load(_library(), replace=True)
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
        except ResponseError as exc:
            raise BackendError(
                f"cannot load broadcast-cli's functions into Redis at {self.url} (Redis >= 7 is required): {exc}"
            ) from exc

    async def _fcall(self, function: str, *args: Any) -> Any:
        """Call a broadcast-cli function, loading the library again if Redis lost it."""
        for attempt in (1, 2):
            try:
                return await self.client.fcall(function, *args)
            except _UNAVAILABLE as exc:
                raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
            except ResponseError as exc:
                if attempt == 1 and "function not found" in str(exc).lower():
                    await self._load_functions()
                    continue
                raise BackendError(f"Redis refused {function}: {exc}") from exc
            except RedisError as exc:
                raise BackendError(f"Redis failed {function}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _publish_args(self, request: PublishRequest, payload_json: bytes) -> tuple[Any, ...]:
        meta, stream, _ = redis_keys(self.prefix, request.channel)
        return (
            "broadcast_publish",
            2,
            meta,
            stream,
            request.channel,
            request.event,
            payload_json,
            request.origin or "",
            request.id or new_message_id(),
            *self._limits,
        )

    @staticmethod
    def _message(request: PublishRequest, reply: Sequence[Any]) -> Message:
        seq, epoch, ts, frame = reply
        return Message(
            channel=request.channel,
            event=request.event,
            payload=request.payload,
            seq=int(seq),
            epoch=epoch.decode() if isinstance(epoch, bytes) else str(epoch),
            id="",
            ts=int(ts),
            origin=request.origin,
            frame=frame,
        )

    async def publish(self, request: PublishRequest, payload_json: bytes) -> Message:
        args = self._publish_args(request, payload_json)
        reply = await self._fcall(*args)
        message = self._message(request, reply)
        message.id = args[8]
        return message

    async def publish_many(self, requests: Sequence[tuple[PublishRequest, bytes]]) -> list[Message]:
        if len(requests) == 1:
            return [await self.publish(*requests[0])]
        calls = [self._publish_args(request, payload) for request, payload in requests]
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for args in calls:
                pipe.fcall(*args)
            try:
                replies = await pipe.execute(raise_on_error=False)
            except _UNAVAILABLE as exc:
                raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
            except RedisError as exc:
                raise BackendError(f"Redis failed a publish batch: {exc}") from exc
            errors = [reply for reply in replies if isinstance(reply, Exception)]
            if not errors:
                break
            lost_library = all("function not found" in str(e).lower() for e in errors)
            if attempt == 1 and lost_library and len(errors) == len(replies):
                await self._load_functions()
                continue
            raise BackendError(f"Redis refused a publish in a batch: {errors[0]}")
        messages = []
        for (request, _), args, reply in zip(requests, calls, replies, strict=True):
            message = self._message(request, reply)
            message.id = args[8]
            messages.append(message)
        return messages

    async def history(self, channel: str, since: int | None) -> HistorySlice:
        meta, stream, _ = redis_keys(self.prefix, channel)
        size, ttl, meta_ttl = self._limits
        reply = await self._fcall(
            "broadcast_history", 2, meta, stream, channel, -1 if since is None else since, size, ttl, meta_ttl
        )
        position = Position(int(reply[0]), reply[1].decode())
        try:
            messages = [decode_event(frame) for frame in reply[2:]]
        except ProtocolError as exc:
            raise BackendError(f"channel {channel!r} has a corrupt history entry in Redis: {exc}") from exc
        return HistorySlice(position, messages)

    # -- pub/sub ---------------------------------------------------------------

    def _wait(self, kind: str, name: bytes) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(name, deque()).append((kind, future))
        return future

    async def subscribe(self, channel: str) -> None:
        _, _, name = redis_keys(self.prefix, channel)
        key = name.encode()
        self._names[key] = channel
        await self._confirmed_call("subscribe", key)

    async def psubscribe(self, pattern: str) -> None:
        # Channel names hold no Redis glob character but *, so the pattern passes through.
        _, _, name = redis_keys(self.prefix, pattern)
        await self._confirmed_call("psubscribe", name.encode())

    async def punsubscribe(self, pattern: str) -> None:
        _, _, name = redis_keys(self.prefix, pattern)
        await self._confirmed_call("punsubscribe", name.encode())

    async def _confirmed_call(self, kind: str, key: bytes) -> None:
        """Send SUBSCRIBE-like *kind* for *key* and wait for Redis to confirm it."""
        future = self._wait(kind, key)
        try:
            await getattr(self._pubsub, kind)(key)
            self._has_subscriptions.set()
            if kind in ("subscribe", "psubscribe"):
                self._has_subscriptions.set()
            # If the connection drops meanwhile, redis-py may (un)subscribe again on
            # reconnect and the confirmation never comes: don't wait forever.
            await asyncio.wait_for(future, _CONFIRM_TIMEOUT)
        except (TimeoutError, *_UNAVAILABLE) as exc:
            reason = exc or "no confirmation"
            raise BackendUnavailable(f"Redis at {self.url} did not {kind} {key!r}: {reason}") from exc
        except RedisError as exc:
            raise BackendError(f"Redis refused {kind.upper()} {key!r}: {exc}") from exc
        finally:
            self._forget(key, future)

    async def unsubscribe(self, channel: str) -> None:
        _, _, name = redis_keys(self.prefix, channel)
        await self._confirmed_call("unsubscribe", name.encode())

    def _forget(self, key: bytes, future: asyncio.Future[None]) -> None:
        waiters = self._pending.get(key)
        if waiters is None:
            return
        for entry in list(waiters):
            if entry[1] is future:
                waiters.remove(entry)
        if not waiters:
            del self._pending[key]

    def _confirmed(self, kind: str, key: bytes) -> bool:
        """Resolve the oldest waiter for a (un)subscribe confirmation; False if none waited."""
        waiters = self._pending.get(key)
        while waiters:
            waiting_kind, future = waiters[0]
            if waiting_kind != kind:
                return False
            waiters.popleft()
            if not future.done():
                future.set_result(None)
                return True
        return False

    async def _listen(self) -> None:
        """Read the pub/sub connection forever, reconnecting with backoff."""
        delays = backoff(0.05, 2.0)
        pubsub = self._pubsub
        await self._has_subscriptions.wait()
        while True:
            try:
                reply = await pubsub.get_message(timeout=None)
            except _UNAVAILABLE as exc:
                delay = next(delays)
                logger.warning("lost the Redis pub/sub connection (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            except RedisError as exc:
                logger.error("unexpected Redis pub/sub error: %s", exc)
                await asyncio.sleep(next(delays))
                continue
            if reply is None:
                continue
            delays = backoff(0.05, 2.0)
            try:
                self._dispatch(reply)
            except Exception:  # a bug must not end the listener
                logger.exception("error while handling a Redis pub/sub message")

    def _dispatch(self, reply: dict[str, Any]) -> None:
        kind = reply["type"]
        key = reply["channel"]
        if isinstance(kind, bytes):
            kind = kind.decode()
        if kind in ("message", "pmessage"):
            try:
                message = decode_event(reply["data"])
            except ProtocolError as exc:
                logger.error("ignored a malformed frame on Redis channel %r: %s", key, exc)
                return
            assert self.listener is not None
            self.listener.on_message(message)
        elif kind == "subscribe":
            if not self._confirmed("subscribe", key):
                # Not asked for: redis-py restored the subscription after a reconnect.
                channel = self._names.get(key)
                if channel is not None and self.listener is not None:
                    self.listener.on_resubscribed([channel])
        elif kind in ("unsubscribe", "psubscribe", "punsubscribe"):
            self._confirmed(kind, key)
