"""A series of messages, made as they go, in batches, stopped cleanly between two batches.

The publisher here keeps what it is sent in memory (the HTTP and Redis
publishers are tested against real servers in tests/integration).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from broadcast_cli.client.http import Publisher, Receipt
from broadcast_cli.client.series import Series, TemplatedMessages
from broadcast_cli.exceptions import ConnectError, InvalidChannel, InvalidPayload, InvalidRequest
from broadcast_cli.message import PublishRequest


class MemoryPublisher(Publisher):
    """Acknowledges every message, numbering them per channel; fails the batch number *fail_at* (from 1)."""

    def __init__(self, max_batch: int = 1000, fail_at: int | None = None) -> None:
        self.max_batch = max_batch
        self.fail_at = fail_at
        self.batches: list[list[PublishRequest]] = []
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def _send_batch(self, requests: Sequence[PublishRequest]) -> list[Receipt]:
        if self.fail_at is not None and len(self.batches) + 1 == self.fail_at:
            raise ConnectError("the server went away")
        self.batches.append(list(requests))
        start = sum(len(batch) for batch in self.batches) - len(requests)
        return [Receipt(r.channel, start + n + 1, "e", f"id{start + n}", 0) for n, r in enumerate(requests)]


def numbered(index: int) -> PublishRequest:
    return PublishRequest("c", "e", index)


async def test_every_message_in_order_in_batches_of_at_most_max_batch() -> None:
    publisher = MemoryPublisher(max_batch=400)
    series = Series(1000, numbered)
    told: list[int] = []
    assert await series.run(publisher, on_batch=lambda receipts: told.append(len(receipts))) == 1000
    assert [len(batch) for batch in publisher.batches] == told == [400, 400, 200]
    assert [request.payload for batch in publisher.batches for request in batch] == list(range(1000))
    assert (series.published, series.stopped) == (1000, False)


async def test_stop_ends_the_run_after_the_batch_in_flight() -> None:
    publisher = MemoryPublisher(max_batch=100)
    series = Series(1000, numbered)
    stop = asyncio.Event()

    def acknowledged(receipts: list[Receipt]) -> None:
        if series.published >= 300:
            stop.set()

    assert await series.run(publisher, stop=stop, on_batch=acknowledged) == 300
    assert (series.published, series.stopped, len(publisher.batches)) == (300, True, 3)


async def test_stop_ends_a_pause_at_once() -> None:
    series = Series(3, numbered, pause=3600.0)
    stop = asyncio.Event()
    publisher = MemoryPublisher()
    run = asyncio.ensure_future(series.run(publisher, stop=stop, on_batch=lambda receipts: stop.set()))
    assert await asyncio.wait_for(run, 10) == 1
    assert series.stopped


async def test_an_error_leaves_the_count_of_what_went_before() -> None:
    series = Series(50, numbered)
    with pytest.raises(ConnectError):
        await series.run(MemoryPublisher(max_batch=20, fail_at=2))
    assert series.published == 20


@pytest.mark.parametrize("stop", [None, asyncio.Event], ids=["without stop", "with stop"])
async def test_paced_runs_wait_between_batches(stop: type[asyncio.Event] | None) -> None:
    # The start, then each loop: a read before the batch (and one after it). At 0.999 s the second message
    # is 1 ms away: the series waits that long, then finds it due.
    clock = iter([0.0, 0.0, 0.0, 0.999, 1.0, 1.0])
    series = Series(2, numbered, rate=1.0, clock=lambda: next(clock))
    publisher = MemoryPublisher()
    assert await series.run(publisher, stop=None if stop is None else stop()) == 2
    assert [len(batch) for batch in publisher.batches] == [1, 1]


def test_a_series_needs_messages_and_one_pace() -> None:
    with pytest.raises(ValueError, match="at least one message, not 0"):
        Series(0, numbered)
    with pytest.raises(ValueError, match="a rate or a pause, not both"):
        Series(1, numbered, rate=1.0, pause=1.0)


def test_templated_messages_fill_the_channel_event_and_payload() -> None:
    messages = TemplatedMessages.read(
        "shard.{{count}}", "tick.{{index}}", '{"n": {{count}}, "at": {{timestamp}}}',
        origin="me", rng=random.Random(1), clock_ns=lambda: 5_000_000_000,
    )  # fmt: skip
    assert messages(0) == PublishRequest("shard.1", "tick.0", {"n": 1, "at": 5000}, "me")
    assert messages(41) == PublishRequest("shard.42", "tick.41", {"n": 42, "at": 5000}, "me")


def test_a_payload_without_placeholders_is_read_once() -> None:
    messages = TemplatedMessages.read("c", "e", '{"fixed": [1, 2]}')
    first, second = messages(0), messages(1)
    assert first.payload == {"fixed": [1, 2]} and first.payload is second.payload
    assert TemplatedMessages.read("c", "e", None)(3).payload is None


def test_errors_name_what_is_wrong() -> None:
    with pytest.raises(InvalidPayload, match="the payload is not valid JSON"):
        TemplatedMessages.read("c", "e", "{oops")
    with pytest.raises(InvalidPayload, match=r"^the payload with \{\{count\}\} = 1 is not valid JSON"):
        TemplatedMessages.read("c", "e", "{{count}}x")(0)
    with pytest.raises(InvalidRequest, match=r"unknown placeholder \{\{n\}\} in the event"):
        TemplatedMessages.read("c", "{{n}}", None)
    with pytest.raises(InvalidChannel):
        TemplatedMessages.read("bad channel {{count}}", "e", None)(0)
