"""Per-channel message counts and rates for ``broadcast tail --stats``, without I/O or clocks.

The caller passes the time (``time.monotonic()``), so the arithmetic is tested
with plain numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["WINDOW", "ChannelRates", "RateRow"]

WINDOW = 10
"""Seconds over which the average rate is taken."""


@dataclass(frozen=True, slots=True)
class RateRow:
    """One channel's line of the table."""

    channel: str
    total: int
    """Events seen since the start."""
    last_second: int
    """Events in the last whole second."""
    average: float
    """Events per second over the last :data:`WINDOW` whole seconds (or since the start, if sooner)."""
    last_event: str
    last_seq: int

    def to_dict(self) -> dict[str, object]:
        """The row as JSON for ``--format json``."""
        return {
            "channel": self.channel,
            "total": self.total,
            "last_second": self.last_second,
            "average": round(self.average, 3),
            "last_event": self.last_event,
            "last_seq": self.last_seq,
        }


@dataclass(slots=True)
class _Channel:
    total: int = 0
    buckets: deque[list[int]] = field(default_factory=deque)  # [whole second, count], oldest first
    last_event: str = ""
    last_seq: int = 0


class ChannelRates:
    """Counts events per channel in one-second buckets; :meth:`rows` gives the table at a moment."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._channels: dict[str, _Channel] = {}

    def record(self, channel: str, event: str, seq: int, now: float) -> None:
        """Count one event of *channel* at time *now*."""
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        second = math.floor(now)
        if state.buckets and state.buckets[-1][0] == second:
            state.buckets[-1][1] += 1
        else:
            state.buckets.append([second, 1])
            while state.buckets[0][0] < second - WINDOW:
                state.buckets.popleft()
        state.total += 1
        state.last_event, state.last_seq = event, seq

    def rows(self, now: float) -> list[RateRow]:
        """Every channel seen, busiest first (over the window), then by name.

        The average is over the whole seconds of the last :data:`WINDOW` (fewer
        at the start); before the first whole second, it is the current one's count.
        """
        current = math.floor(now)
        complete = min(WINDOW, current - math.floor(self.start))
        rows = []
        for name, state in self._channels.items():
            last_second = sum(count for second, count in state.buckets if second == current - 1)
            if complete > 0:
                in_window = sum(count for second, count in state.buckets if current - complete <= second < current)
                average = in_window / complete
            else:
                average = float(sum(count for second, count in state.buckets if second == current))
            rows.append(RateRow(name, state.total, last_second, average, state.last_event, state.last_seq))
        rows.sort(key=lambda row: (-row.average, row.channel))
        return rows
