"""Publish and subscribe inside a Python process: the embeddable API.

:class:`Broadcaster` is a hub with handler subscriptions: ``await
subscribe(channel, handler)`` calls ``handler(message)`` for every message, in
order, one at a time, without ever holding up the hub.
:class:`RedisBroadcastBackend` is the seed's API over the same machinery, with
``handler(event_type, payload)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from .backends import Backend, create_backend
from .history import HistoryOptions
from .hub import Hub
from .message import Message, Position
from .protocol import SubscribeItem

__all__ = ["Broadcaster", "Handler", "HandlerSubscription", "RedisBroadcastBackend"]

logger = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[None] | None]
"""A message handler: a function or coroutine function taking a :class:`Message`."""


class HandlerSubscription:
    """A handler's subscription to one channel. Call it (or :meth:`unsubscribe`) to end it.

    Messages are queued for the handler without blocking the hub; a handler that
    falls more than *max_pending* messages behind loses the overflow: the first
    drop is logged as an error and :attr:`dropped` counts them all.
    """

    def __init__(
        self,
        hub: Hub,
        channel: str,
        handler: Handler,
        *,
        max_pending: int = 10_000,
        on_end: Callable[[HandlerSubscription], None] | None = None,
    ) -> None:
        self.hub = hub
        self.channel = channel
        self.handler = handler
        self.max_pending = max_pending
        self.position: Position | None = None
        """The position of the last message handed to the handler (or of the subscribe)."""
        self.recovered: bool | None = None
        """Whether the requested recovery succeeded (``None`` when none was asked for)."""
        self.dropped = 0
        """How many messages were dropped because the handler fell too far behind."""
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._active = False
        self._on_end = on_end

    def deliver(self, message: Message) -> None:
        """Queue *message* for the handler (called by the hub)."""
        if not self._active:
            return
        if len(self._queue) >= self.max_pending:
            if not self.dropped:
                logger.error(
                    "handler for channel %r is more than %d messages behind: dropping messages",
                    self.channel,
                    self.max_pending,
                )
            self.dropped += 1
            return
        self._queue.append(message)
        self._wake.set()

    async def _start(self, since: int | None, epoch: str | None) -> None:
        self._active = True
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            results = await self.hub.subscribe(self, [SubscribeItem(self.channel, since, epoch)])
        except BaseException:
            await self.unsubscribe()
            raise
        result = results[self.channel]
        self.recovered = result.recovered
        if self.position is None:
            self.position = result.position

    async def _run(self) -> None:
        while self._active:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                message = self._queue.popleft()
                try:
                    result = self.handler(message)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("handler for channel %r failed on seq %d", self.channel, message.seq)
                self.position = message.position

    async def unsubscribe(self) -> None:
        """End the subscription; queued messages are discarded."""
        self._active = False
        self.hub.unsubscribe(self, [self.channel])
        self._queue.clear()
        if self._on_end is not None:
            self._on_end(self)
            self._on_end = None
        if self._task is not None:
            self._task.cancel()
            if self._task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    def __call__(self) -> Awaitable[None]:
        return self.unsubscribe()


class Broadcaster:
    """Publish and subscribe within a process, in memory or over Redis.

    ``Broadcaster()`` keeps everything in memory; ``Broadcaster("redis://…")``
    shares channels, positions and history with every other instance on that
    Redis. It connects on first use; :meth:`close` (or ``async with``) releases it.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str | None = None,
        history: HistoryOptions | None = None,
        backend: Backend | None = None,
        hub: Hub | None = None,
    ) -> None:
        if hub is None:
            hub = Hub(backend if backend is not None else create_backend(url, prefix=prefix, options=history))
        self.hub = hub
        """The hub doing the work; share it with a server to serve WebSocket clients too."""
        self._subscriptions: set[HandlerSubscription] = set()

    async def __aenter__(self) -> Broadcaster:
        await self.hub.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def publish(
        self, channel: str, event: str, payload: Any = None, *, origin: str | None = None, id: str | None = None  # noqa: A002
    ) -> Message:
        """Publish a message; see :meth:`Hub.publish <broadcast_cli.hub.Hub.publish>`."""
        return await self.hub.publish(channel, event, payload, origin=origin, id=id)

    async def subscribe(
        self,
        channel: str,
        handler: Handler,
        *,
        since: int | None = None,
        epoch: str | None = None,
        max_pending: int = 10_000,
    ) -> HandlerSubscription:
        """Call *handler* for every message on *channel* from now on.

        With *since* (and *epoch*), messages after that ``seq`` still in history
        come first; :attr:`HandlerSubscription.recovered` says whether they all did.
        A handler more than *max_pending* messages behind loses the overflow (see
        :class:`HandlerSubscription`). Returns once the subscription is active:
        nothing published afterwards is missed. The broadcaster forgets the
        subscription once it ends.
        """
        subscription = HandlerSubscription(
            self.hub, channel, handler, max_pending=max_pending, on_end=self._subscriptions.discard
        )
        self._subscriptions.add(subscription)
        await subscription._start(since, epoch)
        return subscription

    async def close(self) -> None:
        """End every subscription and disconnect the backend."""
        for subscription in list(self._subscriptions):
            await subscription.unsubscribe()
        self._subscriptions.clear()
        await self.hub.stop()


class RedisBroadcastBackend:
    """The seed's Redis broadcast API: ``subscribe``, ``broadcast`` and ``close``.

    ``handler(event_type, payload)`` is awaited for each message of a subscribed
    channel, in order. Channels, positions and history are shared in Redis under
    *channel_prefix*, so every instance with the same prefix sees every message.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        channel_prefix: str = "broadcast",
        *,
        history: HistoryOptions | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.channel_prefix = channel_prefix
        self._broadcaster = Broadcaster(redis_url, prefix=channel_prefix, history=history)

    @property
    def hub(self) -> Hub:
        """The hub doing the work."""
        return self._broadcaster.hub

    async def subscribe(
        self, channel: str, handler: Callable[[str, Any], Awaitable[None] | None]
    ) -> HandlerSubscription:
        """Await ``handler(event_type, payload)`` for every message on *channel*.

        Returns once Redis confirmed the subscription, so nothing published
        afterwards is missed.
        """

        async def adapter(message: Message) -> None:
            result = handler(message.event, message.payload)
            if inspect.isawaitable(result):
                await result

        return await self._broadcaster.subscribe(channel, adapter)

    async def broadcast(
        self, channel: str, event_type: str, payload: Any = None, *, origin: str | None = None
    ) -> Message:
        """Publish *payload* as *event_type* on *channel*; return the message with its position."""
        return await self._broadcaster.publish(channel, event_type, payload, origin=origin)

    async def close(self) -> None:
        """End every subscription and close the Redis connections."""
        await self._broadcaster.close()
