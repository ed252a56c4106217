"""The Redis backend: many instances, one order per channel.

The URL chooses the topology (see :mod:`broadcast_cli.backends.redis_url`): a
single Redis (``redis://host:port/db``), the master a Redis Sentinel names
(``redis+sentinel://host:26379/service``), or a Redis Cluster
(``redis+cluster://host:port,host:port``).

Each publish runs one Redis function (``broadcast_publish``, or
``broadcast_spublish`` with sharded pub/sub; see ``redis_functions.lua`` beside
this file) that assigns the channel's next ``seq``, appends the event frame to
the channel's history stream and publishes it on the channel's pub/sub channel,
atomically. Every instance therefore sees one order, and any instance can
recover a subscriber from the shared history. An instance subscribes in Redis
only to the channels that have local subscribers.

A channel's keys and pub/sub channel share a hash tag, so in a cluster they
live on one node: the function runs there and, with sharded pub/sub
(``SPUBLISH``), only that node carries the message.

Redis pub/sub drops what is published while a connection is down; the hub
notices the hole in ``seq`` (or is told the subscription was restored) and
catches up from the history stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..exceptions import BackendError, BackendUnavailable, ConfigurationError, InvalidRequest, ProtocolError
from ..history import HistoryOptions, HistorySlice
from ..message import (
    CHANNEL_RULE,
    EVENT_RULE,
    MAX_CHANNEL_LENGTH,
    MAX_EVENT_LENGTH,
    NAME_PUNCTUATION,
    Message,
    Position,
    PublishRequest,
)
from ..protocol import DEFAULT_MAX_PAYLOAD_BYTES, MAX_ID_LENGTH, decode_event, new_message_id
from .base import Backend, BackendListener
from .redis_cluster import ClusterSubscriptions
from .redis_pubsub import SingleSubscriptions, Subscriptions, connected_pubsub
from .redis_url import RedisTarget, Topology, parse_redis_url

__all__ = ["DEFAULT_PREFIX", "LIBRARY_VERSION", "RedisBackend", "function_library", "library_rules", "redis_keys"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "broadcast"
"""The default prefix of every Redis key and pub/sub channel name."""

_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,  # a cluster without a quorum, or a slot without a node
    TryAgainError,  # a slot in the middle of a migration
    RedisClusterException,  # e.g. a slot no node serves, as far as the client knows
)

_POOL_ONLY = ("max_connections", "timeout")
"""Options of a connection pool, not of a connection."""


def redis_keys(prefix: str, channel: str) -> tuple[str, str, str]:
    """Return the Redis names of *channel*: ``(meta key, stream key, pub/sub channel)``."""
    base = f"{prefix}:{{{channel}}}"
    return f"{base}:meta", f"{base}:stream", base


LIBRARY_VERSION = 2
"""The version of broadcast-cli's Redis function library, which ``FCALL_RO broadcast_version 0`` returns.

2: the functions apply the protocol's rules (names, ids, payload), and take ``MAX_PAYLOAD``."""

_UNCHECKED = "0"
"""``MAX_PAYLOAD`` of the publishes of a server: its hub has checked the payload, against its own limit."""


def library_rules() -> dict[str, int | str]:
    """The values that :func:`function_library` writes into the library: the protocol's rules, from Python.

    Names map to the ``local NAME = value --[[broadcast:NAME]]`` lines of
    ``redis_functions.lua``, so that the functions apply the numbers and the
    naming rule that :mod:`broadcast_cli.message` and :mod:`broadcast_cli.protocol`
    define, and no second copy of them can drift.
    """
    # A Lua pattern for "a character outside the naming rule": %x is x itself for any punctuation x.
    escaped = "".join(f"%{character}" for character in NAME_PUNCTUATION)
    return {
        "VERSION": LIBRARY_VERSION,
        "MAX_CHANNEL_LENGTH": MAX_CHANNEL_LENGTH,
        "MAX_EVENT_LENGTH": MAX_EVENT_LENGTH,
        "MAX_ID_LENGTH": MAX_ID_LENGTH,
        "MAX_PAYLOAD_BYTES": DEFAULT_MAX_PAYLOAD_BYTES,
        "NOT_A_NAME_CHARACTER": f"[^A-Za-z0-9{escaped}]",
        "CHANNEL_RULE": CHANNEL_RULE,
        "EVENT_RULE": EVENT_RULE,
    }


def _lua_literal(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def function_library(source: str | None = None) -> str:
    """broadcast-cli's Redis function library (``redis_functions.lua``), with :func:`library_rules` written in.

    *source* replaces the file's text (for tests). Raises :class:`AssertionError`
    when a rule has no line to go to: the file and this module disagree.
    """
    if source is None:
        source = resources.files(__package__).joinpath("redis_functions.lua").read_text(encoding="utf-8")
    for name, value in library_rules().items():
        line = re.compile(rf"^(local {name} = ).*( --\[\[broadcast:{name}\]\])$", re.MULTILINE)
        replacement = r"\g<1>" + _lua_literal(value).replace("\\", "\\\\") + r"\g<2>"
        source, found = line.subn(replacement, source)
        if found != 1:
            raise AssertionError(f"redis_functions.lua has {found} lines for the rule {name}, not 1")
    return source


class _BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The Sentinel master's connections, where a caller beyond ``max_connections`` waits for a free one."""


class RedisBackend(Backend):
    """Positions and history in Redis; cross-instance fan-out over Redis pub/sub.

    *prefix* namespaces every key, so that several deployments can share one
    Redis. *sharded* (Redis >= 7) carries messages over sharded pub/sub, which
    a Redis Cluster always does; ``None`` leaves it to the URL's ``sharded``
    option. Extra keyword arguments are connection options for redis-py
    (``socket_timeout``, ``max_connections``, …).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        options: HistoryOptions | None = None,
        sharded: bool | None = None,
        **redis_options: Any,
    ) -> None:
        super().__init__(options)
        self.target: RedisTarget = parse_redis_url(url, sharded=sharded)
        """The topology, servers and options the URL names."""
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"invalid Redis key prefix {prefix!r}: it must be non-empty, without braces")
        self.url = self.target.url
        self.prefix = prefix
        redis_options.setdefault("socket_connect_timeout", 5.0)
        redis_options.setdefault("socket_timeout", 10.0)
        redis_options.setdefault("max_connections", 64)
        redis_options.setdefault("timeout", 10.0)
        self._redis_options = redis_options
        self._redis: Any = None
        self._clients: list[Any] = []
        self._sentinel: Sentinel | None = None
        self._subscriptions: Subscriptions | None = None
        self._gate: asyncio.Semaphore | None = None
        self._names: dict[bytes, str] = {}
        self._publish_function = "broadcast_spublish" if self.target.sharded else "broadcast_publish"
        ttl = self.options.ttl
        self._limits = (str(self.options.size), str(math.ceil(ttl)), str(math.ceil(self.options.meta_ttl)))

    @property
    def shared(self) -> bool:
        return True

    @property
    def topology(self) -> Topology:
        """``single``, ``sentinel`` or ``cluster``."""
        return self.target.topology

    @property
    def sharded(self) -> bool:
        """Whether messages travel over sharded pub/sub (``SSUBSCRIBE``/``SPUBLISH``)."""
        return self.target.sharded

    @property
    def connected(self) -> bool:
        return self._redis is not None and self._subscriptions is not None and self._subscriptions.connected

    @property
    def client(self) -> aioredis.Redis | RedisCluster:
        """The redis-py client for commands, once connected."""
        if self._redis is None:
            raise BackendError("the Redis backend is not connected: call connect() first")
        client: aioredis.Redis | RedisCluster = self._redis
        return client

    # -- connecting ------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        """Connection options: ours and the caller's, then the URL's."""
        return {**self._redis_options, **self.target.options}

    @staticmethod
    def _pubsub_options(options: dict[str, Any]) -> dict[str, Any]:
        """Options of a pub/sub connection: no retries nor health checks of redis-py's own.

        The reader must see a broken connection (to restore the subscriptions
        itself), and nothing but the reader may read from the connection.
        """
        return {
            **{name: value for name, value in options.items() if name not in _POOL_ONLY},
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }

    async def connect(self, listener: BackendListener) -> None:
        await super().connect(listener)
        # A backend may be connected again after disconnect(), possibly on another loop.
        self._names.clear()
        try:
            await self._open()
        except BaseException:
            await self._close()
            raise

    async def _open(self) -> None:
        target = self.target
        if target.topology == "cluster":
            options = self._options()
            max_connections = options.pop("max_connections")
            options.pop("timeout", None)
            cluster = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
                max_connections=max_connections,
                **options,
            )
            self._redis = cluster
            # Callers beyond max_connections wait rather than fail, as with one Redis.
            self._gate = asyncio.Semaphore(max_connections)
            try:
                await cluster.initialize()
            except _UNAVAILABLE as exc:
                raise BackendUnavailable(f"Redis Cluster at {self.url} is unreachable: {exc}") from exc
            await self._load_functions()
            self._subscriptions = ClusterSubscriptions(
                cluster, self._pubsub_options(options), on_frame=self._on_frame, on_restored=self._on_restored
            )
        else:
            if target.topology == "sentinel":
                assert target.service is not None
                options = self._options()
                sentinel_options = {
                    "socket_connect_timeout": options["socket_connect_timeout"],
                    "socket_timeout": options["socket_timeout"],
                    # A sentinel that does not answer is skipped at once for the next one.
                    "retry": Retry(NoBackoff(), 0),
                    **target.sentinel_options,
                }
                # Sentinel() is typed from redis-py 8.2 on, untyped before.
                self._sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
                    target.hosts, sentinel_kwargs=sentinel_options
                )
                self._redis = self._sentinel.master_for(
                    target.service, connection_pool_class=_BlockingSentinelPool, **options
                )
                pubsub_client = self._sentinel.master_for(target.service, **self._pubsub_options(options))
            else:
                assert target.client_url is not None
                # Publishers beyond max_connections wait for a free connection rather than fail.
                pool = aioredis.BlockingConnectionPool.from_url(target.client_url, **self._redis_options)
                self._redis = aioredis.Redis.from_pool(pool)
                pubsub_client = aioredis.Redis.from_url(
                    target.client_url, **self._pubsub_options(dict(self._redis_options))
                )
            self._clients.append(pubsub_client)
            await self._load_functions()
            self._subscriptions = SingleSubscriptions(
                functools.partial(connected_pubsub, pubsub_client),
                sharded=target.sharded,
                name=self.url,
                on_frame=self._on_frame,
                on_restored=self._on_restored,
            )
        await self._subscriptions.start()

    async def disconnect(self) -> None:
        await self._close()

    async def _close(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, None
        if subscriptions is not None:
            await subscriptions.close()
        clients, self._clients = [*self._clients, self._redis], []
        self._redis = None
        self._gate = None
        for client in clients:
            if client is not None:
                with contextlib.suppress(RedisError, RedisClusterException, OSError):
                    await client.aclose()
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None:
            with contextlib.suppress(RedisError, OSError):
                await sentinel.aclose()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
        except RedisError as exc:
            raise BackendUnavailable(f"Redis at {self.url} cannot answer: {exc}") from exc

    async def _load_functions(self) -> None:
        """Load broadcast-cli's functions (into every primary of a cluster)."""
        try:
            await self.client.function_load(function_library(), replace=True)
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
        except ResponseError as exc:
            raise BackendError(
                f"cannot load broadcast-cli's functions into Redis at {self.url} (Redis >= 7 is required): {exc}"
            ) from exc

    # -- commands --------------------------------------------------------------

    def _route(self, key: str) -> dict[str, Any]:
        """Keyword arguments sending a command about *key* to the node that serves it (in a cluster)."""
        if self._gate is None:
            return {}
        # Saying where spares redis-py a COMMAND GETKEYS round trip per FCALL.
        return {"target_nodes": self._redis.get_node_from_key(key)}

    async def _execute(self, *args: Any, key: str) -> Any:
        if self._gate is None:
            return await self.client.execute_command(*args)
        route = self._route(key)
        async with self._gate:
            return await self.client.execute_command(*args, **route)

    async def _fcall(self, function: str, *args: Any, key: str) -> Any:
        """Call a broadcast-cli function, loading the library again if Redis lost it."""
        for attempt in (1, 2):
            try:
                return await self._execute("FCALL", function, *args, key=key)
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
            2,
            meta,
            stream,
            request.channel,
            request.event,
            payload_json,
            request.origin or "",
            request.id or new_message_id(),
            *self._limits,
            _UNCHECKED,
        )

    @staticmethod
    def _message(request: PublishRequest, args: Sequence[Any], reply: Sequence[Any]) -> Message:
        seq, epoch, ts, frame = reply
        return Message(
            channel=request.channel,
            event=request.event,
            payload=request.payload,
            seq=int(seq),
            epoch=epoch.decode() if isinstance(epoch, bytes) else str(epoch),
            id=args[7],
            ts=int(ts),
            origin=request.origin,
            frame=frame,
        )

    async def publish(self, request: PublishRequest, payload_json: bytes) -> Message:
        args = self._publish_args(request, payload_json)
        reply = await self._fcall(self._publish_function, *args, key=args[1])
        return self._message(request, args, reply)

    async def publish_many(self, requests: Sequence[tuple[PublishRequest, bytes]]) -> list[Message]:
        if len(requests) == 1:
            return [await self.publish(*requests[0])]
        calls = [self._publish_args(request, payload) for request, payload in requests]
        replies: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in (1, 2):
            try:
                results = await self._pipeline([calls[index] for index in pending])
            except _UNAVAILABLE as exc:
                raise BackendUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc
            except RedisError as exc:
                raise BackendError(f"Redis failed a publish batch: {exc}") from exc
            errors: list[tuple[int, Exception]] = []
            for index, result in zip(pending, results, strict=True):
                if isinstance(result, Exception):
                    errors.append((index, result))
                else:
                    replies[index] = result
            if not errors:
                break
            for _, error in errors:
                if isinstance(error, _UNAVAILABLE):
                    raise BackendUnavailable(f"Redis at {self.url} is unreachable: {error}")
            if attempt == 1 and all("function not found" in str(error).lower() for _, error in errors):
                # Redis (or a cluster node) lost the library: those publishes did not happen; the others did.
                await self._load_functions()
                pending = [index for index, _ in errors]
                continue
            raise BackendError(f"Redis refused a publish in a batch: {errors[0][1]}")
        return [
            self._message(request, args, reply)
            for (request, _), args, reply in zip(requests, calls, replies, strict=True)
        ]

    async def _pipeline(self, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run one publish per call in a pipeline (per node, in a cluster); errors are returned, not raised."""
        pipe = self.client.pipeline(transaction=False)
        for args in calls:
            pipe.execute_command("FCALL", self._publish_function, *args, **self._route(args[1]))
        if self._gate is None:
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results
        async with self._gate:
            results = await pipe.execute(raise_on_error=False)
            return results

    async def history(self, channel: str, since: int | None) -> HistorySlice:
        meta, stream, _ = redis_keys(self.prefix, channel)
        size, ttl, meta_ttl = self._limits
        reply = await self._fcall(
            "broadcast_history", 2, meta, stream, channel, -1 if since is None else since, size, ttl, meta_ttl, key=meta
        )
        position = Position(int(reply[0]), reply[1].decode())
        try:
            messages = [decode_event(frame) for frame in reply[2:]]
        except ProtocolError as exc:
            raise BackendError(f"channel {channel!r} has a corrupt history entry in Redis: {exc}") from exc
        return HistorySlice(position, messages)

    # -- pub/sub ---------------------------------------------------------------

    def _subs(self) -> Subscriptions:
        if self._subscriptions is None:
            raise BackendError("the Redis backend is not connected: call connect() first")
        return self._subscriptions

    async def subscribe(self, channel: str) -> None:
        _, _, name = redis_keys(self.prefix, channel)
        key = name.encode()
        self._names[key] = channel
        await self._subs().subscribe(key)

    async def unsubscribe(self, channel: str) -> None:
        _, _, name = redis_keys(self.prefix, channel)
        key = name.encode()
        self._names.pop(key, None)
        await self._subs().unsubscribe(key)

    async def psubscribe(self, pattern: str) -> None:
        if self.target.sharded:
            raise InvalidRequest(
                f"pattern subscriptions such as {pattern!r} are not available with sharded Redis pub/sub "
                "(Redis Cluster, or sharded=true), where a message reaches only the subscribers of its own "
                "channel: subscribe to channels by name",
                code="patterns_unavailable",
            )
        # Channel names hold no Redis glob character but *, so the pattern passes through.
        _, _, name = redis_keys(self.prefix, pattern)
        await self._subs().psubscribe(name.encode())

    async def punsubscribe(self, pattern: str) -> None:
        if self.target.sharded:
            return  # never subscribed
        _, _, name = redis_keys(self.prefix, pattern)
        await self._subs().punsubscribe(name.encode())

    def _on_frame(self, data: bytes, key: bytes) -> None:
        try:
            message = decode_event(data)
        except ProtocolError as exc:
            logger.error("ignored a malformed frame on Redis channel %r: %s", key, exc)
            return
        if self.listener is not None:
            self.listener.on_message(message)

    def _on_restored(self, key: bytes) -> None:
        channel = self._names.get(key)
        if channel is not None and self.listener is not None:
            self.listener.on_resubscribed([channel])
