"""Fixtures and helpers shared by every test layer."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

import httpx
import pytest
from typer.testing import CliRunner

TIMEOUT_SCALE = float(os.environ.get("BROADCAST_TEST_TIMEOUT_SCALE", "1"))
"""Multiplies every wait in the tests; raise it on a slow machine."""

IN_CI = bool(os.environ.get("CI"))
"""In CI a missing component (Redis, Chromium) fails the tests instead of skipping them."""


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner, with stdout and stderr kept apart."""
    return CliRunner()


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BROADCAST_* variable of the developer's shell leaks into a CLI test."""
    for name in list(os.environ):
        if name.startswith("BROADCAST_") and name != "BROADCAST_TEST_TIMEOUT_SCALE":
            monkeypatch.delenv(name)


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


class Delivery:
    """The ``seq`` numbers one client received on one channel, checked for exactly-once, in-order delivery."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: list[int] = []

    def __len__(self) -> int:
        return len(self.seqs)

    def append(self, seq: int) -> None:
        """Record a received ``seq``."""
        self.seqs.append(seq)

    def check(self, expected: Sequence[int]) -> None:
        """Fail unless exactly *expected* was received, each once, in order; say what went wrong."""
        if self.seqs == list(expected):
            return
        counts = Counter(self.seqs)
        missing = sorted(set(expected) - counts.keys())
        duplicated = sorted(seq for seq, n in counts.items() if n > 1)
        reordered = sum(1 for a, b in itertools.pairwise(self.seqs) if b < a)
        raise AssertionError(
            f"{self.name}: received {len(self.seqs)} of {len(expected)}: {len(missing)} lost {missing[:10]}, "
            f"{len(duplicated)} duplicated {duplicated[:10]}, {reordered} reordered"
        )


async def publish_paced(
    http: httpx.AsyncClient, channel: str, numbers: Iterable[int], rate: float
) -> list[int]:
    """Publish one message per number (payload ``{"n": number}``) at *rate* messages per second.

    Falls behind, never ahead, when the server is slower. Returns the numbers
    whose publish was acknowledged with a 2xx; anything else fails.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    acknowledged = []
    for index, number in enumerate(numbers):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing, not synchronisation
        response = await http.post("/publish", json={"channel": channel, "event": "e", "payload": {"n": number}})
        response.raise_for_status()
        acknowledged.append(number)
    return acknowledged
