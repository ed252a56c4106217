"""The seq check: lost, duplicated and reordered, against a model that remembers every seq."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast_cli.bench.seqs import SeqSummary, SeqTracker


def check(start: int, seqs: list[int], last: int) -> SeqSummary:
    tracker = SeqTracker(start)
    for seq in seqs:
        tracker.observe(seq)
    return tracker.summary(last)


def model(start: int, seqs: list[int], last: int) -> SeqSummary:
    """The definitions, the slow way."""
    seen: set[int] = set()
    greatest = start
    duplicated = reordered = 0
    for seq in seqs:
        if seq <= start or seq in seen:
            duplicated += 1
            continue
        if seq < greatest:
            reordered += 1
        seen.add(seq)
        greatest = max(greatest, seq)
    expected = max(0, last - start)
    lost = sum(1 for seq in range(start + 1, last + 1) if seq not in seen)
    beyond = sum(1 for seq in seen if seq > max(last, start))
    return SeqSummary(expected, expected - lost, lost, duplicated, reordered, beyond)


def test_in_order_is_ok() -> None:
    summary = check(0, [1, 2, 3, 4], 4)
    assert summary == SeqSummary(expected=4, received=4)
    assert summary.ok


def test_starts_after_the_ack_position() -> None:
    assert check(41, [42, 43], 43) == SeqSummary(expected=2, received=2)


def test_a_gap_is_lost() -> None:
    summary = check(0, [1, 2, 5, 6], 6)
    assert (summary.lost, summary.received, summary.duplicated, summary.reordered) == (2, 4, 0, 0)
    assert not summary.ok


def test_the_tail_that_never_came_is_lost() -> None:
    assert check(0, [1, 2], 5).lost == 3


def test_nothing_received() -> None:
    assert check(10, [], 20) == SeqSummary(expected=10, received=0, lost=10)


def test_a_late_seq_is_reordered_not_lost() -> None:
    summary = check(0, [1, 3, 2, 4], 4)
    assert (summary.lost, summary.reordered, summary.duplicated) == (0, 1, 0)


def test_filling_the_middle_of_a_gap_splits_it() -> None:
    tracker = SeqTracker(0)
    for seq in (1, 10, 5, 2, 9):
        tracker.observe(seq)
    assert tracker.missing(10) == 5  # 3, 4, 6, 7, 8
    assert tracker.reordered == 3
    assert not tracker.complete(10)
    for seq in (3, 4, 6, 7, 8):
        tracker.observe(seq)
    assert tracker.complete(10)


def test_a_repeated_seq_is_a_duplicate() -> None:
    summary = check(0, [1, 2, 2, 3, 1], 3)
    assert (summary.duplicated, summary.lost, summary.reordered) == (2, 0, 0)


def test_a_seq_at_or_before_the_start_is_a_duplicate() -> None:
    assert check(5, [5, 3, 6], 6).duplicated == 2


def test_seqs_past_the_last_are_counted_apart() -> None:
    summary = check(0, [1, 2, 3, 4, 7], 3)
    assert (summary.expected, summary.received, summary.lost, summary.beyond) == (3, 3, 0, 2)


def test_complete() -> None:
    tracker = SeqTracker(0)
    assert tracker.complete(0)
    tracker.observe(1)
    assert tracker.complete(1)
    assert not tracker.complete(2)


def test_a_negative_start_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        SeqTracker(-1)


def test_summaries_add_up() -> None:
    assert SeqSummary(1, 1, 0, 2, 3, 4) + SeqSummary(5, 4, 1, 0, 0, 0) == SeqSummary(6, 5, 1, 2, 3, 4)


@given(
    start=st.integers(0, 5),
    seqs=st.lists(st.integers(0, 30), max_size=60),
    last=st.integers(0, 30),
)
def test_agrees_with_the_model(start: int, seqs: list[int], last: int) -> None:
    assert check(start, seqs, last) == model(start, seqs, last)


@given(st.permutations(list(range(1, 21))), st.sets(st.integers(1, 20)))
def test_a_shuffled_delivery_with_drops(order: list[int], dropped: set[int]) -> None:
    delivered = [seq for seq in order if seq not in dropped]
    summary = check(0, delivered, 20)
    assert summary.lost == len(dropped)
    assert summary.duplicated == 0
    assert summary == model(0, delivered, 20)
