"""Subscriptions and local fan-out, independent of any transport.

The hub is the middle of broadcast-cli: publishers hand it messages, the backend
gives each its position (and carries it to other instances), and the hub hands
each message, encoded once, to every local subscriber of its channel. A
subscriber is any :class:`Sink`: a WebSocket connection's outbox, an in-process
handler. The hub never awaits a sink: :meth:`Sink.deliver` only queues, so a slow
subscriber cannot delay the others.

Recovery happens here too. A subscriber that comes back with the last ``seq`` and
``epoch`` it saw first receives what it missed from history, then the live
messages, with no gap and no duplicate even while messages are being published:
its live messages are held in a buffer while history is read, and merged by
``seq`` afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .backends.base import Backend, BackendListener
from .backends.memory import MemoryBackend
from .exceptions import BackendError
from .history import HistorySlice, Recovery, recover
from .message import (
    Message,
    Position,
    PublishRequest,
    is_pattern,
    pattern_matcher,
    validate_channel,
    validate_event,
    validate_pattern,
)
from .protocol import DEFAULT_MAX_PAYLOAD_BYTES, SubscribeItem, SubscribeResult, encode_payload
from .sequencer import Sequencer

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "ChannelInfo", "Hub", "HubStats", "Sink"]

logger = logging.getLogger(__name__)

MAX_PATTERN_CHANNELS = 10_000
"""The most channels the hub tracks only because a pattern matches them."""


class Sink(Protocol):
    """A local subscriber: something that takes messages without blocking.

    :meth:`deliver` is called on the event loop for every message of every
    channel the sink subscribed to, in ``seq`` order per channel. It must return
    at once (queue the message, never await it) and must not subscribe or
    unsubscribe anything synchronously.
    """

    def deliver(self, message: Message) -> None:
        """Take one message."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A channel with local subscribers: its name, their number and its position."""

    channel: str
    subscribers: int
    position: Position | None


class _Buffer:
    """Stands in for a sink while its history is read, holding live messages."""

    __slots__ = ("messages", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)


class _Channel:
    """The hub's state for one channel with local subscribers (or matched by a pattern)."""

    __slots__ = (
        "active",
        "fetching",
        "lock",
        "name",
        "pattern_version",
        "patterns",
        "refs",
        "sequencer",
        "sinks",
        "unsubscribing",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.sinks: dict[Sink, None] = {}
        self.sequencer = Sequencer()
        self.refs = 0
        self.active = False
        """Whether the backend is subscribed to this channel."""
        self.fetching = False
        self.unsubscribing = False
        self.lock = asyncio.Lock()
        self.patterns: list[_Pattern] = []
        self.pattern_version = -1


class _Pattern:
    """The hub's state for one pattern with local subscribers."""

    __slots__ = ("active", "lock", "matcher", "name", "refs", "sinks", "unsubscribing")

    def __init__(self, name: str) -> None:
        self.name = name
        self.matcher = pattern_matcher(name)
        self.sinks: dict[Sink, None] = {}
        self.refs = 0
        self.active = False
        self.unsubscribing = False
        self.lock = asyncio.Lock()


@dataclass(slots=True)
class HubStats:
    """What a hub has done since it was made: the numbers behind the server's metrics.

    Plain counters, cheap enough for the fan-out path; read them at any time.
    """

    published: int = 0
    """Messages published through this hub (on this instance)."""
    received: int = 0
    """Messages handed to local fan-out, from this instance or any other."""
    delivered: int = 0
    """Frames handed to local subscribers (one per message per subscriber)."""
    recovered: int = 0
    """Subscriptions with ``since`` that recovered every missed message."""
    not_recovered: int = 0
    """Subscriptions with ``since`` that could not (``recovered: false``)."""
    catch_ups: int = 0
    """History reads that filled a gap left by the backend (e.g. a lost Redis connection)."""
    fanout_observer: Callable[[float], None] | None = field(default=None, repr=False)
    """Called with the seconds each local fan-out took (for a latency histogram)."""


class Hub(BackendListener):
    """Local subscriptions and fan-out over a :class:`~broadcast_cli.backends.base.Backend`.

    Use one hub per process (or per embedded application), on one event loop.
    :meth:`start` connects the backend; :meth:`stop` releases it.
    """

    def __init__(self, backend: Backend | None = None, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        """The backend that assigns positions and keeps history."""
        self.max_payload_bytes = max_payload_bytes
        """The largest payload accepted, in bytes of JSON."""
        self._channels: dict[str, _Channel] = {}
        self._patterns: dict[str, _Pattern] = {}
        self._pattern_version = 0
        self._pattern_channels: dict[str, None] = {}
        self._subscriptions: dict[Sink, dict[str, Sink]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self.stats = HubStats()
        """Counters of what this hub has done."""

    # -- lifecycle -------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has connected the backend."""
        return self._started

    async def start(self) -> None:
        """Connect the backend. Calling it again does nothing."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if not self._started:
                await self.backend.connect(self)
                self._started = True

    async def stop(self) -> None:
        """Forget every subscriber and disconnect the backend."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._channels.clear()
        self._patterns.clear()
        self._pattern_channels.clear()
        self._subscriptions.clear()
        if self._started:
            self._started = False
            await self.backend.disconnect()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publishing ------------------------------------------------------------

    def _prepare(self, request: PublishRequest) -> tuple[PublishRequest, bytes]:
        validate_channel(request.channel)
        validate_event(request.event)
        return request, encode_payload(request.payload, max_bytes=self.max_payload_bytes)

    async def publish(
        self,
        channel: str,
        event: str,
        payload: Any = None,
        *,
        origin: str | None = None,
        id: str | None = None,  # noqa: A002 - the protocol's name
    ) -> Message:
        """Publish one message and return it with its position.

        Local subscribers have been handed the message when this returns,
        unless it waits behind messages of other instances still on their way.
        Raises :class:`~broadcast_cli.exceptions.InvalidRequest` for a bad channel,
        event or payload, and :class:`~broadcast_cli.exceptions.BackendUnavailable`
        when the message could not be stored and sent.
        """
        request, payload_json = self._prepare(PublishRequest(channel, event, payload, origin, id))
        await self.start()
        message = await self.backend.publish(request, payload_json)
        self.stats.published += 1
        self.on_message(message)
        return message

    async def publish_many(self, requests: Sequence[PublishRequest]) -> list[Message]:
        """Publish several messages in order, validating all of them before publishing any."""
        prepared = [self._prepare(request) for request in requests]
        await self.start()
        messages = await self.backend.publish_many(prepared)
        self.stats.published += len(messages)
        for message in messages:
            self.on_message(message)
        return messages

    # -- backend callbacks -----------------------------------------------------

    def on_message(self, message: Message) -> None:
        """Order *message* within its channel and hand it to the channel's sinks."""
        state = self._channels.get(message.channel)
        if state is None:
            if not self._patterns:
                return
            state = self._pattern_channel(message)
            if state is None:
                return
        sequencer = state.sequencer
        delivered = sequencer.offer(message)
        if delivered:
            self._fanout(state, delivered)
        if sequencer.gap is not None and not state.fetching:
            self._spawn(self._catch_up(state))

    def on_resubscribed(self, channels: Sequence[str]) -> None:
        """Catch up from history on *channels*, whose messages may have been missed."""
        for name in channels:
            state = self._channels.get(name)
            if state is not None and state.active and not state.fetching:
                self._spawn(self._catch_up(state, always=True))

    def _fanout(self, state: _Channel, messages: Sequence[Message]) -> None:
        stats = self.stats
        started = time.perf_counter() if stats.fanout_observer is not None else 0.0
        sinks = state.sinks
        patterns = self._patterns_of(state) if self._patterns else ()
        count = len(messages) * len(sinks)
        if not patterns:
            for message in messages:
                for sink in sinks:
                    sink.deliver(message)
        else:
            subscriptions = self._subscriptions
            name = state.name
            for message in messages:
                for sink in sinks:
                    sink.deliver(message)
                delivered: set[Sink] = set()
                for pattern in patterns:
                    for sink in pattern.sinks:
                        # Once per sink, even if it has the channel or several matching patterns.
                        if sink not in delivered and name not in subscriptions.get(sink, ()):
                            delivered.add(sink)
                            sink.deliver(message)
                count += len(delivered)
        stats.received += len(messages)
        stats.delivered += count
        if stats.fanout_observer is not None:
            stats.fanout_observer(time.perf_counter() - started)

    def _patterns_of(self, state: _Channel) -> list[_Pattern]:
        if state.pattern_version != self._pattern_version:
            state.patterns = [p for p in self._patterns.values() if p.matcher.fullmatch(state.name)]
            state.pattern_version = self._pattern_version
        return state.patterns

    def _pattern_channel(self, message: Message) -> _Channel | None:
        """Start tracking a channel that only patterns subscribe to, from *message* on."""
        name = message.channel
        if not any(p.matcher.fullmatch(name) for p in self._patterns.values()):
            return None
        state = self._channels[name] = _Channel(name)
        state.sequencer.sync(Position(message.seq - 1, message.epoch))
        self._pattern_channels[name] = None
        if len(self._pattern_channels) > MAX_PATTERN_CHANNELS:
            for old in list(self._pattern_channels)[: len(self._pattern_channels) - MAX_PATTERN_CHANNELS]:
                self._forget_pattern_channel(old)
        return state

    def _forget_pattern_channel(self, name: str) -> None:
        self._pattern_channels.pop(name, None)
        state = self._channels.get(name)
        if state is not None and not state.refs and not state.active and not state.fetching:
            del self._channels[name]

    async def _catch_up(self, state: _Channel, *, always: bool = False) -> None:
        """Fetch from history what the sequencer misses, until it misses nothing."""
        state.fetching = True
        try:
            while self._channels.get(state.name) is state or always:
                position = state.sequencer.position
                gap = state.sequencer.gap
                if position is None or (gap is None and not always):
                    return
                always = False
                after = gap[0] if gap is not None else position.seq
                history = await self.backend.history(state.name, after)
                self.stats.catch_ups += 1
                if history.position.epoch != position.epoch:
                    # The channel started over: everything of the new epoch is missing.
                    history = await self.backend.history(state.name, 0)
                delivered = state.sequencer.fill(history.messages, history.position)
                if delivered:
                    self._fanout(state, delivered)
        except BackendError as exc:
            logger.warning("cannot catch up on channel %r from history: %s", state.name, exc)
        finally:
            state.fetching = False

    # -- subscribing -----------------------------------------------------------

    async def _activate(self, name: str) -> _Channel:
        """Reserve a place on channel *name*, subscribing the backend if needed."""
        state = self._channels.get(name)
        if state is None:
            state = self._channels[name] = _Channel(name)
        state.refs += 1
        try:
            if not state.active:
                async with state.lock:
                    if not state.active:
                        tracked = state.sequencer.position is not None  # e.g. matched by a pattern
                        try:
                            await self.backend.subscribe(name)
                            history = None if tracked else await self.backend.history(name, None)
                        except BaseException:
                            # Failed or cancelled half-way: the backend may be subscribed.
                            state.unsubscribing = True
                            self._spawn(self._deactivate(state))
                            raise
                        self._pattern_channels.pop(name, None)
                        state.active = True
                        if history is not None:
                            state.sequencer.sync(history.position)
                        elif not state.fetching:
                            self._spawn(self._catch_up(state, always=True))
        except BaseException:
            self._release(state)
            raise
        return state

    def _release(self, entry: _Channel | _Pattern) -> None:
        """Give back a place on a channel or pattern; the last one out unsubscribes the backend."""
        entry.refs -= 1
        if entry.refs == 0:
            if entry.active:
                self._spawn(self._deactivate(entry))
            elif not entry.lock.locked() and not entry.unsubscribing:
                self._drop(entry)

    async def _deactivate(self, entry: _Channel | _Pattern) -> None:
        """Unsubscribe the backend from an idle channel or pattern (or one whose activation failed)."""
        try:
            async with entry.lock:
                if entry.refs or not (entry.active or entry.unsubscribing):
                    return
                entry.active = False
                try:
                    if isinstance(entry, _Pattern):
                        await self.backend.punsubscribe(entry.name)
                    else:
                        await self.backend.unsubscribe(entry.name)
                except BackendError as exc:
                    logger.warning("cannot unsubscribe %r in the backend: %s", entry.name, exc)
        finally:
            entry.unsubscribing = False
            if entry.refs == 0 and not entry.active:
                self._drop(entry)

    def _drop(self, entry: _Channel | _Pattern) -> None:
        """Forget a channel or pattern that nobody uses any more."""
        if isinstance(entry, _Pattern):
            if self._patterns.get(entry.name) is entry:
                del self._patterns[entry.name]
                self._pattern_version += 1
            if not self._patterns:
                for name in list(self._pattern_channels):
                    self._forget_pattern_channel(name)
        elif self._channels.get(entry.name) is entry:
            del self._channels[entry.name]

    async def subscribe(
        self,
        sink: Sink,
        items: Sequence[SubscribeItem],
        *,
        on_ready: Callable[[Mapping[str, SubscribeResult]], None] | None = None,
    ) -> dict[str, SubscribeResult]:
        """Subscribe *sink* to the channels and patterns of *items*, replaying where asked.

        Once every channel is subscribed and every recovery decided,
        *on_ready* is called with the results (the place to send an ack); then
        the recovered messages are delivered, then the live ones. A channel the
        sink already has is left as it is. Either every channel is subscribed or,
        on error, none of the new ones is. A pattern (``orders.*``) delivers the
        live messages of every matching channel, once per sink.
        """
        for item in items:
            if item.pattern:
                validate_pattern(item.channel)
            else:
                validate_channel(item.channel)
        await self.start()
        current = self._subscriptions.setdefault(sink, {})
        results: dict[str, SubscribeResult] = {}
        attached: list[tuple[_Channel, _Buffer, Recovery]] = []
        attached_patterns: list[str] = []
        try:
            for item in items:
                if item.pattern:
                    if item.channel not in current:
                        pattern = await self._activate_pattern(item.channel)
                        pattern.sinks[sink] = None
                        current[item.channel] = sink
                        attached_patterns.append(item.channel)
                    results[item.channel] = SubscribeResult(Position(0, ""), None, pattern=True)
                    continue
                if item.channel in current:
                    state = self._channels[item.channel]
                    # Already subscribed: nothing is replayed, so nothing is claimed as recovered.
                    position = state.sequencer.position or Position(0, "")
                    results[item.channel] = SubscribeResult(position, None)
                    continue
                state = await self._activate(item.channel)
                buffer = _Buffer(sink)
                state.sinks[buffer] = None
                current[item.channel] = buffer
                attached.append((state, buffer, Recovery(Position(0, ""), None)))
                recovery = await self._recover(state, item)
                attached[-1] = (state, buffer, recovery)
                results[item.channel] = SubscribeResult(recovery.position, recovery.recovered)
                if recovery.recovered is not None:
                    if recovery.recovered:
                        self.stats.recovered += 1
                    else:
                        self.stats.not_recovered += 1
        except BaseException:
            for state, _, _ in attached:
                self._detach(sink, state.name)
            for name in attached_patterns:
                self._detach(sink, name)
            if not current:
                self._subscriptions.pop(sink, None)
            raise
        if on_ready is not None:
            on_ready(results)
        for state, buffer, recovery in attached:
            for message in recovery.messages:
                sink.deliver(message)
            last = recovery.position
            for message in buffer.messages:
                if message.epoch != last.epoch or message.seq > last.seq:
                    sink.deliver(message)
            del state.sinks[buffer]
            state.sinks[sink] = None
            current[state.name] = sink
        return results

    async def _recover(self, state: _Channel, item: SubscribeItem) -> Recovery:
        """Decide what *item* recovers.

        The returned position is the last ``seq`` the subscriber has once the
        returned messages are delivered; live messages after it follow.
        """
        position = state.sequencer.position
        assert position is not None  # an active channel is synced
        since = item.since
        if item.last is not None:
            return await self._replay_last(state, position, item.last)
        if since is None:
            return Recovery(position, None)
        if item.epoch is not None and item.epoch != position.epoch:
            return Recovery(position, False)
        if since == position.seq:
            return Recovery(position, True)
        history = await self.backend.history(state.name, min(since, position.seq))
        if history.position.epoch != position.epoch:
            # The channel started over under our feet: catch the hub up, refuse recovery.
            if not state.fetching:
                self._spawn(self._catch_up(state, always=True))
            return Recovery(position, False)
        # History may be ahead of this instance (messages still on their way):
        # catch the channel up, so every sink (this one's buffer included) gets
        # them as live messages, exactly once.
        delivered = state.sequencer.fill(history.messages, history.position)
        if delivered:
            self._fanout(state, delivered)
        recovery = recover(history, since=since, epoch=item.epoch or position.epoch)
        if not recovery.recovered:
            return Recovery(position, False)
        replay = [message for message in recovery.messages if message.seq <= position.seq]
        return Recovery(Position(max(since, position.seq), position.epoch), True, replay)

    async def _replay_last(self, state: _Channel, position: Position, last: int) -> Recovery:
        """The last *last* messages still in history up to *position*, to replay before live ones."""
        since = max(position.seq - last, 0)
        if since == position.seq:
            return Recovery(position, None)
        history = await self.backend.history(state.name, since)
        if history.position.epoch != position.epoch:
            return Recovery(position, None)
        delivered = state.sequencer.fill(history.messages, history.position)
        if delivered:
            self._fanout(state, delivered)
        replay = [message for message in history.messages if since < message.seq <= position.seq]
        return Recovery(position, None, replay)

    async def _activate_pattern(self, name: str) -> _Pattern:
        """Reserve a place on pattern *name*, subscribing the backend if needed."""
        pattern = self._patterns.get(name)
        if pattern is None:
            pattern = self._patterns[name] = _Pattern(name)
            self._pattern_version += 1
        pattern.refs += 1
        try:
            if not pattern.active:
                async with pattern.lock:
                    if not pattern.active:
                        try:
                            await self.backend.psubscribe(name)
                        except BaseException:
                            pattern.unsubscribing = True
                            self._spawn(self._deactivate(pattern))
                            raise
                        pattern.active = True
        except BaseException:
            self._release(pattern)
            raise
        return pattern

    def _detach(self, sink: Sink, channel: str) -> None:
        current = self._subscriptions.get(sink)
        if current is None:
            return
        entry = current.pop(channel, None)
        if entry is None:
            return
        if is_pattern(channel):
            pattern = self._patterns.get(channel)
            if pattern is not None and entry in pattern.sinks:
                del pattern.sinks[entry]
                self._release(pattern)
            return
        state = self._channels.get(channel)
        if state is not None and entry in state.sinks:
            del state.sinks[entry]
            self._release(state)

    def unsubscribe(self, sink: Sink, channels: Sequence[str]) -> None:
        """Unsubscribe *sink* from *channels*; channels it does not have are ignored."""
        for channel in channels:
            self._detach(sink, channel)
        if not self._subscriptions.get(sink, True):
            del self._subscriptions[sink]

    def unsubscribe_all(self, sink: Sink) -> None:
        """Unsubscribe *sink* from every channel (e.g. when its connection closes)."""
        current = self._subscriptions.get(sink)
        if current is not None:
            self.unsubscribe(sink, list(current))

    # -- introspection ---------------------------------------------------------

    def subscriptions(self, sink: Sink) -> list[str]:
        """The channels *sink* is subscribed to."""
        return list(self._subscriptions.get(sink, ()))

    def subscriber_count(self, channel: str) -> int:
        """The number of local sinks subscribed to *channel*."""
        state = self._channels.get(channel)
        return len(state.sinks) if state is not None else 0

    def patterns(self) -> dict[str, int]:
        """Every pattern with local subscribers, and their number."""
        return {name: len(pattern.sinks) for name, pattern in sorted(self._patterns.items()) if pattern.sinks}

    def channels(self) -> list[ChannelInfo]:
        """Every channel with local subscribers, sorted by name."""
        return [
            ChannelInfo(name, len(state.sinks), state.sequencer.position)
            for name, state in sorted(self._channels.items())
            if state.sinks
        ]

    async def history(self, channel: str, *, since: int | None = None, epoch: str | None = None) -> Recovery:
        """Read *channel*'s position and, with *since*, what a subscriber there missed."""
        validate_channel(channel)
        await self.start()
        history: HistorySlice = await self.backend.history(channel, since)
        return recover(history, since=since, epoch=epoch)
