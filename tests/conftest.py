"""Fixtures and helpers shared by every test layer."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

TIMEOUT_SCALE = float(os.environ.get("BROADCAST_TEST_TIMEOUT_SCALE", "1"))
"""Multiplies every wait in the tests; raise it on a slow machine."""

IN_CI = bool(os.environ.get("CI"))
"""In CI a missing component (Redis, Chromium) fails the tests instead of skipping them."""


def scaled(seconds: float) -> float:
    """A timeout, scaled by ``BROADCAST_TEST_TIMEOUT_SCALE``."""
    return seconds * TIMEOUT_SCALE


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until *predicate()* is true, polling the event loop; fail after *timeout* (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f} s waiting for {what}")
        await asyncio.sleep(0.005)


async def wait_for(awaitable: Awaitable[object], timeout: float = 10.0) -> object:
    """Await *awaitable* with a scaled timeout."""
    return await asyncio.wait_for(awaitable, scaled(timeout))
