"""The in-memory backend: one process, no dependencies, the default (``memory://``).

Positions and history live in this process and die with it; a restarted server
gives every channel a new epoch, so reconnecting clients learn that they cannot
recover and refetch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..history import ChannelHistory, HistoryOptions, HistorySlice
from ..message import Message, Position, PublishRequest
from ..protocol import encode_event, new_message_id
from .base import Backend

__all__ = ["MemoryBackend"]

_SWEEP_INTERVAL_MS = 60_000


@dataclass(slots=True)
class _Channel:
    seq: int
    epoch: str
    history: ChannelHistory
    touched_ms: int


class MemoryBackend(Backend):
    """Keeps positions and history in this process.

    *clock* returns the time in seconds since the Unix epoch; it is there so that
    tests can move time forward without sleeping.
    """

    def __init__(self, options: HistoryOptions | None = None, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(options)
        self.url = "memory://"
        self._clock = clock
        self._channels: dict[str, _Channel] = {}
        self._swept_ms = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _channel(self, name: str, now_ms: int) -> _Channel:
        if now_ms - self._swept_ms > _SWEEP_INTERVAL_MS:
            self._sweep(now_ms)
        state = self._channels.get(name)
        if state is None:
            state = self._channels[name] = _Channel(0, os.urandom(4).hex(), ChannelHistory(self.options), now_ms)
        state.touched_ms = now_ms
        return state

    def _sweep(self, now_ms: int) -> None:
        """Forget channels idle for longer than the position TTL, and expire history."""
        self._swept_ms = now_ms
        horizon = now_ms - int(self.options.meta_ttl * 1000)
        for name in [name for name, state in self._channels.items() if state.touched_ms < horizon]:
            del self._channels[name]
        for state in self._channels.values():
            state.history.expire(now_ms)

    def __len__(self) -> int:
        """The number of channels that have a position."""
        return len(self._channels)

    async def publish(self, request: PublishRequest, payload_json: bytes) -> Message:
        now_ms = self._now_ms()
        state = self._channel(request.channel, now_ms)
        state.seq += 1
        message = Message(
            channel=request.channel,
            event=request.event,
            payload=request.payload,
            seq=state.seq,
            epoch=state.epoch,
            id=request.id or new_message_id(),
            ts=now_ms,
            origin=request.origin,
        )
        message.frame = encode_event(message, payload_json)
        state.history.append(message)
        return message

    async def subscribe(self, channel: str) -> None:
        """Nothing to do: every message is published in this process."""

    async def unsubscribe(self, channel: str) -> None:
        """Nothing to do: every message is published in this process."""

    async def history(self, channel: str, since: int | None) -> HistorySlice:
        now_ms = self._now_ms()
        state = self._channel(channel, now_ms)
        position = Position(state.seq, state.epoch)
        if since is None:
            return HistorySlice(position)
        return HistorySlice(position, state.history.after(since, now_ms))
