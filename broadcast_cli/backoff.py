"""Reconnection policy, without I/O: how long to wait and whether to retry.

:func:`backoff` yields delays growing exponentially with full jitter, as in
websockets' ``client.backoff()``: spreading reconnects at random keeps a fleet of
clients from stampeding a server that has just come back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

__all__ = ["backoff"]


def backoff(
    initial: float = 0.1,
    maximum: float = 10.0,
    factor: float = 2.0,
    *,
    rand: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Yield reconnection delays, in seconds, forever.

    The n-th delay is drawn uniformly from ``[0, min(maximum, initial * factor**n)]``
    ("full jitter"), except the first, which is drawn from ``[initial / 2, initial]``
    so that a dropped connection is retried promptly but not instantly. *rand*
    draws from ``[0, 1)`` and is there for tests.
    """
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("backoff() needs 0 < initial <= maximum and factor >= 1")
    yield initial * (0.5 + rand() / 2)
    ceiling = initial
    while True:
        ceiling = min(maximum, ceiling * factor)
        yield ceiling * rand()
