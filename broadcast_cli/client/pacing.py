"""When the messages of a run may go: as fast as possible, at a rate, or with a pause between them.

A :class:`Pacing` is asked before each batch how many messages are due
(:meth:`~Pacing.due`) and, when none is, when the next one will be
(:meth:`~Pacing.next_at`). The caller passes the time (``time.monotonic()``), so
the schedules are tested with plain numbers.

:class:`Rate` keeps an absolute schedule: message *k* is due at
``start + k / rate``, so the time spent sending never adds up into drift, and
over any run the count sent is within one of ``rate × elapsed``. It is also a
token bucket: when the sender falls behind (a slow server), at most
:data:`BURST_SECONDS` worth of messages are due at once, and the schedule starts
again from there instead of catching up without limit.

:func:`parse_rate` and :func:`parse_pause` read ``--rate 200/s`` and ``--sleep 250ms``.
"""

from __future__ import annotations

import abc
import math
import re

from ..exceptions import ConfigurationError

__all__ = [
    "BURST_SECONDS",
    "MAX_PAUSE",
    "MAX_RATE",
    "AsFastAsPossible",
    "Pacing",
    "Pause",
    "Rate",
    "parse_pause",
    "parse_rate",
]

MAX_RATE = 1_000_000.0
"""The highest rate, in messages per second."""

MAX_PAUSE = 86_400.0
"""The longest pause between two messages, in seconds (a day)."""

BURST_SECONDS = 1.0
"""At a rate, the most a late sender may send at once: this many seconds' worth of messages."""

_SLACK = 1e-6
"""Seconds of slack for the float arithmetic of a schedule: a message due at ``t`` goes from ``t - 1 µs``."""

_UNLIMITED = 2**62
"""A count of messages no run reaches."""

_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE_RE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?:/\s*([a-z]+))?\s*", re.IGNORECASE)
_PAUSE_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PAUSE_RE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_rate(text: str) -> float:
    """Messages per second in *text*: ``200``, ``200/s``, ``600/m`` (``/min``) or ``36/h``.

    Raises :class:`~broadcast_cli.exceptions.ConfigurationError` for anything
    else, and for a rate that is not above 0 or is above :data:`MAX_RATE`.
    """
    match = _RATE_RE.fullmatch(text)
    per = _PER.get((match.group(2) or "s").lower()) if match is not None else None
    if match is None or per is None:
        raise ConfigurationError(f"{text!r} is not a rate: write 200, 200/s, 600/m or 36/h (messages per time)")
    rate = float(match.group(1)) / per
    if not 0 < rate <= MAX_RATE:
        raise ConfigurationError(f"a rate must be above 0 and at most {MAX_RATE:,.0f}/s, not {text!r}")
    return rate


def parse_pause(text: str) -> float:
    """Seconds in *text*: ``250ms``, ``1.5s``, ``2`` (seconds), ``1m`` or ``1h``.

    Raises :class:`~broadcast_cli.exceptions.ConfigurationError` for anything
    else, and for a pause that is not above 0 or is longer than :data:`MAX_PAUSE`.
    """
    match = _PAUSE_RE.fullmatch(text)
    unit = _PAUSE_UNITS.get((match.group(2) or "s").lower()) if match is not None else None
    if match is None or unit is None:
        raise ConfigurationError(f"{text!r} is not a duration: write 250ms, 1.5s, 2 (seconds), 1m or 1h")
    seconds = float(match.group(1)) * unit
    if not 0 < seconds <= MAX_PAUSE:
        raise ConfigurationError(f"a pause must be above 0 and at most {MAX_PAUSE:,.0f} s (a day), not {text!r}")
    return seconds


class Pacing(abc.ABC):
    """When the messages of a run may go, asked before each batch."""

    @abc.abstractmethod
    def due(self, now: float, sent: int) -> int:
        """How many more messages may go at *now*, *sent* having gone already (0: wait for :meth:`next_at`)."""

    @abc.abstractmethod
    def next_at(self, sent: int) -> float:
        """When message number *sent* (from 0) is due, when :meth:`due` said none is."""

    def answered(self, now: float, sent: int) -> None:  # noqa: B027 - most pacings need not know
        """Told when the batch that brought the count to *sent* was answered, at *now*."""


class AsFastAsPossible(Pacing):
    """No pacing: every message is due at once (the sender's batches are the only limit)."""

    def due(self, now: float, sent: int) -> int:
        """As many as the sender wants."""
        return _UNLIMITED

    def next_at(self, sent: int) -> float:
        """Now, always."""
        return -math.inf


class Rate(Pacing):
    """*rate* messages per second from *start*, on an absolute schedule, with a bounded burst.

    Message *k* is due at ``start + k / rate`` (the first at once). When more
    than *burst* messages are due at once (default: :data:`BURST_SECONDS` worth,
    at least 1), the sender is late: the schedule starts again so that *burst*
    are due, and the rest follow at the rate.
    """

    def __init__(self, rate: float, start: float, *, burst: int | None = None) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ConfigurationError(f"a rate must be above 0 and at most {MAX_RATE:,.0f}/s, not {rate}")
        self.rate = rate
        """Messages per second."""
        self.burst = max(1, math.ceil(rate * BURST_SECONDS)) if burst is None else burst
        """The most messages due at once."""
        if self.burst < 1:
            raise ConfigurationError(f"a burst must be at least 1 message, not {self.burst}")
        self._origin = start
        self._base = 0  # message self._base is due at self._origin

    def due(self, now: float, sent: int) -> int:
        """Messages due by *now* that have not gone, at most :attr:`burst`."""
        scheduled = self._base + math.floor((now - self._origin + _SLACK) * self.rate) + 1
        late = scheduled - sent
        if late > self.burst:
            # Late by more than a burst: start again from here rather than catch up.
            self._base = sent
            self._origin = now - (self.burst - 1) / self.rate
            return self.burst
        return max(0, late)

    def next_at(self, sent: int) -> float:
        """When message *sent* is due on the schedule."""
        return self._origin + (sent - self._base) / self.rate


class Pause(Pacing):
    """One message at a time, each *seconds* after the previous one was answered (``nats pub --sleep``)."""

    def __init__(self, seconds: float, start: float) -> None:
        if not 0 < seconds <= MAX_PAUSE:
            raise ConfigurationError(f"a pause must be above 0 and at most {MAX_PAUSE:,.0f} s, not {seconds}")
        self.seconds = seconds
        """The pause after each answer."""
        self._next = start

    def due(self, now: float, sent: int) -> int:
        """1 when the pause since the last answer is over, else 0."""
        return 1 if now + _SLACK >= self._next else 0

    def next_at(self, sent: int) -> float:
        """The end of the pause."""
        return self._next

    def answered(self, now: float, sent: int) -> None:
        """Start the pause."""
        self._next = now + self.seconds
