"""A token bucket: how many requests a connection may make per second, with bursts."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..exceptions import ConfigurationError

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows *rate* requests per second on average and up to *burst* at once.

    Pure but for the clock, which tests may replace.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigurationError(f"a rate limit needs a rate above 0 and a burst of at least 1, not {rate}/{burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self) -> bool:
        """Spend one token if there is one; say whether the request may go ahead."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
