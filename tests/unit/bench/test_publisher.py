"""The publishing side without I/O: the schedule, the payloads, the bodies, and who publishes where."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast_cli.bench.config import BenchConfig
from broadcast_cli.bench.publisher import MIN_PAYLOAD_SIZE, batch_body, due, payload_padding
from broadcast_cli.bench.runner import plan_workers, publisher_channels


def test_as_fast_as_possible_everything_is_due() -> None:
    assert due(0.0, None, 500) == 500


def test_at_a_rate() -> None:
    assert [due(elapsed, 200.0, 1000) for elapsed in (0.0, 0.004, 0.005, 0.0999, 1.0, 100.0)] == [
        1, 1, 2, 20, 201, 1000,
    ]  # fmt: skip


@pytest.mark.parametrize("size", [MIN_PAYLOAD_SIZE, 100, 1000, 65536])
def test_the_payload_has_the_size_asked_for(size: int) -> None:
    body = batch_body(["bench"], payload_padding(size), 1_764_000_000_000_000_000)
    (item,) = orjson.loads(body)
    assert len(orjson.dumps(item["payload"])) == size
    assert item["payload"]["t"] == 1_764_000_000_000_000_000
    assert (item["channel"], item["event"]) == ("bench", "bench")


def test_a_payload_too_small() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        payload_padding(MIN_PAYLOAD_SIZE - 1)


def test_a_batch_body_is_one_json_list() -> None:
    items = orjson.loads(batch_body(["a", "b", "a"], "", 5))
    assert [item["channel"] for item in items] == ["a", "b", "a"]


@given(channels=st.integers(1, 7), publishers=st.integers(1, 7))
def test_publishers_together_cycle_through_the_channels(channels: int, publishers: int) -> None:
    names = [f"c{index}" for index in range(channels)]
    cycles = [publisher_channels(names, publishers, index) for index in range(publishers)]
    # Message k of the run is message k // P of publisher k % P: it must go to channel k % C.
    for k in range(3 * channels * publishers):
        cycle = cycles[k % publishers]
        assert cycle[(k // publishers) % len(cycle)] == names[k % channels]


def test_subscribers_are_spread_over_processes_urls_and_channels() -> None:
    config = BenchConfig(subscribers=7, channels=2, procs=3, connect_concurrency=90)
    specs = plan_workers(config, ["ws://a/", "ws://b/"])
    assert [len(spec.subscribers) for spec in specs] == [3, 2, 2]
    everyone = sorted(subscriber for spec in specs for subscriber in spec.subscribers)
    assert [number for number, _, _ in everyone] == list(range(7))
    assert Counter(url for _, url, _ in everyone) == {"ws://a/": 4, "ws://b/": 3}
    assert Counter(channel for _, _, channel in everyone) == {"bench.0": 4, "bench.1": 3}
    assert all(spec.connect_concurrency == 30 for spec in specs)
