"""Redis pub/sub connections for the Redis backend, in every topology.

A :class:`PubSubConnection` is one pub/sub connection to one Redis server — a
single Redis, the master a Sentinel names, or one primary of a Redis Cluster —
and the task that reads it. broadcast-cli, not redis-py, restores its
subscriptions after a reconnection: so it knows which ones came back (the hub
then catches up on them from history), and so that a cluster node is asked
only for the shard channels of the slots it serves, one channel per command (a
command naming channels of several slots is refused there).

A :class:`Subscriptions` decides which connection carries which channel:
:class:`SingleSubscriptions` has one connection; the cluster's lives in
:mod:`broadcast_cli.backends.redis_cluster`.

Every command sent on a connection is remembered, in order, until Redis
answers it; Redis answers in order, so the answers are matched to the commands
without guessing. Two answers come unasked: a message, and — in a cluster — a
``sunsubscribe`` telling that the channel's slot moved to another node.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.crc import key_slot
from redis.exceptions import AskError, RedisError, ResponseError

from ..backoff import backoff
from ..exceptions import BackendError, BackendUnavailable

__all__ = [
    "CONFIRM_TIMEOUT",
    "PubSubConnection",
    "Redirected",
    "SingleSubscriptions",
    "Subscriptions",
    "connected_pubsub",
]

logger = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 10.0
"""How long to wait for Redis to confirm a SUBSCRIBE-like command."""

_MESSAGES = frozenset({"message", "smessage", "pmessage"})
_CONFIRMATIONS = frozenset({"subscribe", "ssubscribe", "psubscribe", "unsubscribe", "sunsubscribe", "punsubscribe"})
_UNSUBSCRIBES = frozenset({"unsubscribe", "sunsubscribe", "punsubscribe"})


class Redirected(BackendUnavailable):
    """A cluster node refused a shard channel: its slot is served elsewhere (``MOVED``/``ASK``)."""


def _delays() -> Iterator[float]:
    return backoff(0.05, 2.0)


async def connected_pubsub(client: aioredis.Redis) -> PubSub:
    """A new :class:`~redis.asyncio.client.PubSub` of *client*, connected."""
    pubsub = client.pubsub()
    try:
        await pubsub.connect()  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py 8.2
    except BaseException:
        await _close(pubsub)
        raise
    return pubsub


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8.2 on


@dataclass(slots=True)
class _Command:
    """A SUBSCRIBE-like command sent and not answered yet."""

    kind: str
    key: bytes
    future: asyncio.Future[None] | None
    """Resolved by the answer; ``None`` for a command sent by a reconnection."""


class PubSubConnection:
    """One pub/sub connection to one Redis server, which reconnects by itself.

    *connect* makes a fresh, connected :class:`redis.asyncio.client.PubSub`
    (without retries of its own: a lost connection must be noticed here).
    *owner* hears about messages and subscriptions; *sharded* chooses
    ``SSUBSCRIBE`` over ``SUBSCRIBE``; *name* says which server it is, in errors.
    """

    def __init__(
        self,
        connect: Callable[[], Coroutine[Any, Any, PubSub]],
        owner: Subscriptions,
        *,
        sharded: bool,
        name: str,
    ) -> None:
        self.name = name
        """The server, for messages (a URL, or a cluster node's ``host:port``)."""
        self.keys: set[bytes] = set()
        """The Redis channels this connection carries, or is asked to."""
        self.patterns: set[bytes] = set()
        """The Redis patterns this connection carries, or is asked to."""
        self._connect = connect
        self._owner = owner
        self._subscribe, self._unsubscribe = ("ssubscribe", "sunsubscribe") if sharded else ("subscribe", "unsubscribe")
        self._pubsub: PubSub | None = None
        self._sent: deque[_Command] = deque()
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def up(self) -> bool:
        """Whether the connection is established (as far as this process knows)."""
        return self._pubsub is not None

    def _unavailable(self, reason: object) -> BackendUnavailable:
        return BackendUnavailable(f"Redis at {self.name} is unreachable: {reason}")

    async def open(self) -> None:
        """Connect and start reading; raise :class:`BackendUnavailable` if Redis cannot be reached."""
        try:
            self._pubsub = await self._connect()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"broadcast-redis-pubsub {self.name}")

    async def close(self) -> None:
        """Stop reading and close the connection."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pending in list(self._tasks):
            pending.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_all("the connection was closed")
        pubsub, self._pubsub = self._pubsub, None
        await _close(pubsub)

    # -- commands ----------------------------------------------------------------

    async def subscribe(self, key: bytes) -> None:
        """Subscribe to channel *key*; return once Redis confirmed it."""
        self.keys.add(key)
        try:
            await self._call(self._subscribe, key)
        except Redirected:
            self.keys.discard(key)
            raise

    async def unsubscribe(self, key: bytes) -> None:
        """Unsubscribe from channel *key*; return once Redis confirmed it (or the connection is down)."""
        self.keys.discard(key)
        if self._pubsub is None:
            return  # not subscribed, and a reconnection will not subscribe it
        await self._call(self._unsubscribe, key)

    async def psubscribe(self, pattern: bytes) -> None:
        """Subscribe to *pattern*; return once Redis confirmed it."""
        self.patterns.add(pattern)
        await self._call("psubscribe", pattern)

    async def punsubscribe(self, pattern: bytes) -> None:
        """Unsubscribe from *pattern*; return once Redis confirmed it (or the connection is down)."""
        self.patterns.discard(pattern)
        if self._pubsub is None:
            return
        await self._call("punsubscribe", pattern)

    async def _call(self, kind: str, key: bytes) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # The command goes out whole even if the caller is cancelled meanwhile:
        # a command cut in the middle would break the connection for every channel.
        send = loop.create_task(self._send(kind, key, future))
        self._tasks.add(send)
        send.add_done_callback(self._sent_done)
        try:
            await asyncio.shield(send)
            await asyncio.wait_for(future, CONFIRM_TIMEOUT)
        except TimeoutError:
            raise self._unavailable(f"no answer to {kind.upper()} {key.decode(errors='replace')!r}") from None
        finally:
            if not future.done():
                future.cancel()  # nobody waits for it any more

    def _sent_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller, if still there, got it through shield()

    async def _send(self, kind: str, key: bytes, future: asyncio.Future[None] | None) -> None:
        async with self._send_lock:
            pubsub = self._pubsub
            if pubsub is None:
                raise self._unavailable("the pub/sub connection is down; reconnecting")
            self._sent.append(_Command(kind, key, future))
            try:
                await pubsub.execute_command(kind.upper(), key)
            except Exception as exc:  # redis-py may fail in several ways on a broken connection
                # The reader notices the broken connection too, and starts over.
                raise self._unavailable(exc) from exc

    # -- reading ---------------------------------------------------------------

    async def _run(self) -> None:
        """Read the connection forever; reconnect with backoff when it breaks."""
        delays = _delays()
        at_once = True  # the first attempt after a connection that worked is made at once
        while True:
            pubsub = self._pubsub
            if pubsub is None:
                if not at_once:
                    await asyncio.sleep(next(delays))
                at_once = False
                if not await self._owner.before_reconnect(self):
                    return
                try:
                    await self._reconnect()
                except Exception as exc:
                    logger.warning("cannot reconnect to Redis at %s for pub/sub (%s); retrying", self.name, exc)
                    continue
                logger.info("reconnected to Redis at %s for pub/sub", self.name)
                continue
            try:
                reply = await pubsub.get_message(timeout=None)
            except ResponseError as exc:
                self._refused(exc)
                continue
            except Exception as exc:
                logger.warning("lost the pub/sub connection to Redis at %s (%s); reconnecting", self.name, exc)
                await self._lose(exc)
                continue
            if reply is None:
                continue
            if not at_once:
                delays, at_once = _delays(), True
            try:
                self._dispatch(reply)
            except Exception:  # a bug must not end the reader
                logger.exception("error while handling a Redis pub/sub message")

    def _fail_all(self, reason: object) -> None:
        sent, self._sent = self._sent, deque()
        for command in sent:
            if command.future is not None and not command.future.done():
                command.future.set_exception(self._unavailable(reason))

    async def _lose(self, exc: Exception) -> None:
        """Forget the broken connection; every command waiting for an answer fails."""
        pubsub, self._pubsub = self._pubsub, None
        self._fail_all(exc)
        async with self._send_lock:  # no command is half-sent on it
            await _close(pubsub)

    async def _reconnect(self) -> None:
        """Connect again and subscribe again to every channel and pattern asked for."""
        pubsub = await self._connect()
        async with self._send_lock:
            try:
                for key in list(self.keys):
                    self._sent.append(_Command(self._subscribe, key, None))
                    await pubsub.execute_command(self._subscribe.upper(), key)
                for pattern in list(self.patterns):
                    self._sent.append(_Command("psubscribe", pattern, None))
                    await pubsub.execute_command("PSUBSCRIBE", pattern)
            except BaseException:
                self._sent.clear()
                await _close(pubsub)
                raise
            self._pubsub = pubsub

    def _answered(self, kind: str, key: bytes) -> _Command | None:
        for command in self._sent:
            if command.kind == kind and command.key == key:
                self._sent.remove(command)
                return command
        return None

    def _dispatch(self, reply: dict[str, Any]) -> None:
        kind = reply["type"]
        if isinstance(kind, bytes):
            kind = kind.decode()
        key: bytes = reply["channel"]
        if kind in _MESSAGES:
            self._owner.on_frame(reply["data"], key)
            return
        if kind not in _CONFIRMATIONS:
            return
        command = self._answered(kind, key)
        if command is None:
            if kind == self._unsubscribe and key in self.keys:
                # Unasked: the cluster moved the channel's slot to another node.
                self.keys.discard(key)
                self._owner.on_dropped(self, key)
            return
        if command.future is not None:
            if not command.future.done():
                command.future.set_result(None)
            return
        # A subscription restored by a reconnection.
        if kind == self._subscribe:
            if key in self.keys:
                self._owner.on_restored(key)
            else:  # unsubscribed while the connection was down
                self._spawn(self._call(self._unsubscribe, key))
        elif kind == "psubscribe" and key not in self.patterns:
            self._spawn(self._call("punsubscribe", key))

    def _refused(self, exc: ResponseError) -> None:
        """Redis answered the oldest command with an error."""
        if isinstance(exc, AskError):  # MOVED or ASK: the slot is served elsewhere
            head = self._sent[0] if self._sent else None
            if head is None or key_slot(head.key) != exc.slot_id:
                return  # the late answer to a command already settled by an unasked sunsubscribe
            self._sent.popleft()
            if head.kind in _UNSUBSCRIBES:
                if head.future is not None and not head.future.done():
                    head.future.set_result(None)  # the node holds no subscription to it any more
            elif head.future is not None:
                if not head.future.done():
                    head.future.set_exception(Redirected(f"Redis at {self.name} redirects {head.key!r}: {exc}"))
            elif head.key in self.keys:
                self.keys.discard(head.key)
                self._owner.on_dropped(self, head.key)
            return
        head = self._sent.popleft() if self._sent else None
        if head is None:
            logger.error("unexpected error on the pub/sub connection to Redis at %s: %s", self.name, exc)
            return
        name = head.key.decode(errors="replace")
        if head.future is not None:
            if not head.future.done():
                head.future.set_exception(BackendError(f"Redis refused {head.kind.upper()} {name!r}: {exc}"))
            return
        logger.warning("Redis at %s refused to restore %s %r: %s", self.name, head.kind.upper(), name, exc)
        if head.key in self.keys:
            self.keys.discard(head.key)
            self._owner.on_dropped(self, head.key)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a Redis pub/sub command failed: %s", task.exception())


class Subscriptions(abc.ABC):
    """Which pub/sub connection carries which Redis channel.

    *on_frame* gets each message (its data and Redis channel); *on_restored*
    gets each Redis channel whose subscription came back after it was lost.
    """

    def __init__(self, on_frame: Callable[[bytes, bytes], None], on_restored: Callable[[bytes], None]) -> None:
        self.on_frame = on_frame
        """Called with the data and the Redis channel of each message."""
        self._on_restored = on_restored
        self._wanted: set[bytes] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether every connection is established."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect what must be connected from the start."""

    async def close(self) -> None:
        """Close every connection."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def subscribe(self, key: bytes) -> None:
        """Subscribe to Redis channel *key*; return once Redis confirmed it."""
        self._wanted.add(key)
        await self._place(key)

    async def unsubscribe(self, key: bytes) -> None:
        """Unsubscribe from Redis channel *key*."""
        self._wanted.discard(key)
        await self._unplace(key)

    @abc.abstractmethod
    async def psubscribe(self, pattern: bytes) -> None:
        """Subscribe to a Redis pattern."""

    @abc.abstractmethod
    async def punsubscribe(self, pattern: bytes) -> None:
        """Unsubscribe from a Redis pattern."""

    @abc.abstractmethod
    async def _place(self, key: bytes) -> None:
        """Subscribe a connection to *key*."""

    @abc.abstractmethod
    async def _unplace(self, key: bytes) -> None:
        """Unsubscribe the connection that carries *key*, if any."""

    # -- what connections tell ---------------------------------------------------

    def on_restored(self, key: bytes) -> None:
        """A connection subscribed to *key* again after losing it."""
        if key in self._wanted:
            self._on_restored(key)

    def on_dropped(self, connection: PubSubConnection, key: bytes) -> None:
        """*connection* no longer carries *key* (Redis dropped or refused it): subscribe again."""
        if key in self._wanted:
            self._spawn(self._replace(key))

    async def before_reconnect(self, connection: PubSubConnection) -> bool:
        """Called before *connection* reconnects; ``False`` closes it instead."""
        return True

    async def _replace(self, key: bytes) -> None:
        """Subscribe to *key* again, wherever it is served now, until it works or nobody wants it."""
        delays = _delays()
        while key in self._wanted:
            try:
                await self._place(key)
            except BackendError as exc:
                delay = next(delays)
                logger.warning("cannot subscribe again to %r (%s); retrying in %.2f s", key, exc, delay)
                await asyncio.sleep(delay)
                continue
            if key in self._wanted:
                self._on_restored(key)
            else:
                await self._unplace(key)
            return

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class SingleSubscriptions(Subscriptions):
    """One pub/sub connection: a single Redis, or the master a Sentinel names."""

    def __init__(
        self,
        connect: Callable[[], Coroutine[Any, Any, PubSub]],
        *,
        sharded: bool,
        name: str,
        on_frame: Callable[[bytes, bytes], None],
        on_restored: Callable[[bytes], None],
    ) -> None:
        super().__init__(on_frame, on_restored)
        self.connection = PubSubConnection(connect, self, sharded=sharded, name=name)
        """The one connection."""

    @property
    def connected(self) -> bool:
        return self.connection.up

    async def start(self) -> None:
        await self.connection.open()

    async def close(self) -> None:
        await super().close()
        await self.connection.close()

    async def _place(self, key: bytes) -> None:
        await self.connection.subscribe(key)

    async def _unplace(self, key: bytes) -> None:
        await self.connection.unsubscribe(key)

    async def psubscribe(self, pattern: bytes) -> None:
        await self.connection.psubscribe(pattern)

    async def punsubscribe(self, pattern: bytes) -> None:
        await self.connection.punsubscribe(pattern)
