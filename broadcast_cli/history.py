"""Per-channel bounded message history and the recovery decision, without I/O.

History is what makes reconnects lossless: a subscriber that comes back with the
last ``seq`` and ``epoch`` it saw gets exactly the messages it missed, if they are
still in history. :func:`recover` decides whether they are; :class:`ChannelHistory`
keeps one channel's recent messages in memory for the in-memory backend. The
Redis backend keeps the same history in a Redis stream and uses the same
:func:`recover`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from .message import Message, Position

__all__ = ["ChannelHistory", "HistoryOptions", "HistorySlice", "Recovery", "recover"]


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How much history each channel keeps.

    :attr:`size` bounds the number of messages kept per channel (0 turns history
    off); :attr:`ttl` is how long, in seconds, a message stays recoverable;
    :attr:`meta_ttl` is how long, in seconds, a channel's position (``seq`` and
    ``epoch``) survives without a publish. When the position expires, the channel
    starts again at seq 1 in a new epoch, and subscribers are told they could not
    recover.
    """

    size: int = 1000
    ttl: float = 600.0
    meta_ttl: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        from .exceptions import ConfigurationError

        if self.size < 0:
            raise ConfigurationError(f"history size must be >= 0, not {self.size}")
        if self.ttl <= 0:
            raise ConfigurationError(f"history ttl must be > 0 seconds, not {self.ttl}")
        if self.meta_ttl < self.ttl:
            raise ConfigurationError(
                f"the position ttl ({self.meta_ttl} s) must be at least the history ttl ({self.ttl} s)"
            )


@dataclass(frozen=True, slots=True)
class HistorySlice:
    """What a backend read from a channel's history.

    :attr:`position` is the channel's current position; :attr:`messages` are the
    messages after the requested ``seq`` that are still in history, oldest first.
    """

    position: Position
    messages: Sequence[Message] = ()


@dataclass(frozen=True, slots=True)
class Recovery:
    """The outcome of a recovery attempt.

    :attr:`recovered` is ``None`` when no recovery was asked for. When it is
    ``True``, :attr:`messages` are exactly the messages after ``since`` up to
    :attr:`position`; when ``False`` they are empty and the subscriber must
    refetch its state.
    """

    position: Position
    recovered: bool | None
    messages: Sequence[Message] = ()


def recover(history: HistorySlice, *, since: int | None, epoch: str | None) -> Recovery:
    """Decide whether a subscriber at ``(since, epoch)`` can catch up from *history*.

    Recovery succeeds when the epoch matches (or was not given) and history holds
    every message from ``since + 1`` to the current ``seq`` with no gap.
    """
    position = history.position
    if since is None:
        return Recovery(position, None)
    if epoch is not None and epoch != position.epoch:
        return Recovery(position, False)
    if since > position.seq:
        return Recovery(position, False)
    wanted = [m for m in history.messages if since < m.seq <= position.seq]
    if len(wanted) != position.seq - since:
        return Recovery(position, False)
    if wanted and (wanted[0].seq != since + 1 or wanted[-1].seq != position.seq):
        return Recovery(position, False)
    return Recovery(position, True, wanted)


class ChannelHistory:
    """One channel's recent messages, bounded by count and age.

    Messages must be appended in ``seq`` order. Expired messages are dropped
    lazily, when the history is read or appended to.
    """

    __slots__ = ("_messages", "size", "ttl_ms")

    def __init__(self, options: HistoryOptions) -> None:
        self.size = options.size
        self.ttl_ms = int(options.ttl * 1000)
        self._messages: deque[Message] = deque(maxlen=max(options.size, 1))

    def __len__(self) -> int:
        return len(self._messages)

    def append(self, message: Message) -> None:
        """Add *message*, evicting the oldest message beyond the size bound."""
        if self.size:
            self._messages.append(message)

    def expire(self, now_ms: int) -> None:
        """Drop messages older than the TTL at time *now_ms*."""
        messages = self._messages
        horizon = now_ms - self.ttl_ms
        while messages and messages[0].ts < horizon:
            messages.popleft()

    def after(self, seq: int, now_ms: int) -> list[Message]:
        """Return the unexpired messages with a ``seq`` greater than *seq*, oldest first."""
        self.expire(now_ms)
        messages = self._messages
        if not messages or messages[-1].seq <= seq:
            return []
        first = messages[0].seq
        start = max(seq + 1 - first, 0)
        return list(itertools.islice(messages, start, None))
