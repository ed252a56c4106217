"""Pacing with a fake clock: the rate's absolute schedule, its bounded burst, the pause, and parsing them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast_cli.client.pacing import (
    BURST_SECONDS,
    MAX_PAUSE,
    MAX_RATE,
    AsFastAsPossible,
    Pacing,
    Pause,
    Rate,
    parse_pause,
    parse_rate,
)
from broadcast_cli.exceptions import ConfigurationError


class Run:
    """A sender driven by a fake clock: each batch takes *answer* seconds, at most *batch* messages."""

    def __init__(self, pacing: Pacing, *, batch: int = 1000, answer: float = 0.0, start: float = 0.0) -> None:
        self.pacing = pacing
        self.batch = batch
        self.answer = answer
        self.now = start
        self.sent = 0
        self.sends: list[tuple[float, int]] = []
        """``(time, count)`` of every batch."""

    def until(self, end: float, total: int = 10**9) -> None:
        """Send what is due, waiting as told, until the clock reaches *end* or *total* are sent."""
        while self.now < end and self.sent < total:
            count = min(self.pacing.due(self.now, self.sent), self.batch, total - self.sent)
            if count <= 0:
                wake = self.pacing.next_at(self.sent)
                assert wake > self.now - 1e-6, "told to wait for a time already past"
                self.now = max(wake, self.now)
                continue
            self.sends.append((self.now, count))
            self.sent += count
            self.now += self.answer
            self.pacing.answered(self.now, self.sent)


@given(
    rate=st.floats(0.5, 2000),
    answer=st.floats(0, 0.05),
    batch=st.integers(1, 1000),
    start=st.floats(0, 1e6),
)
def test_a_rate_is_never_ahead_of_its_schedule(rate: float, answer: float, batch: int, start: float) -> None:
    run = Run(Rate(rate, start), batch=batch, answer=answer, start=start)
    run.until(start + 2.0)
    sent = 0
    for at, count in run.sends:
        sent += count
        # Message k is due at start + k / rate: by time t at most floor((t - start) * rate) + 1 have gone.
        assert sent <= math.floor((at - start + 1e-6) * rate) + 1


@pytest.mark.parametrize(("rate", "answer", "batch"), [(200.0, 0.0, 1000), (200.0, 0.003, 1000), (5000, 0.02, 1000)])
def test_a_rate_does_not_drift_however_long_the_answers_take(rate: float, answer: float, batch: int) -> None:
    run = Run(Rate(rate, 0.0), batch=batch, answer=answer)
    run.until(100.0)
    # 100 s at the rate: the count is the schedule's, to one message, whatever each send cost.
    assert abs(run.sent - rate * 100.0) <= 1 + rate * answer


def test_the_first_message_goes_at_once_then_one_per_interval() -> None:
    run = Run(Rate(4.0, 10.0), start=10.0)
    run.until(11.1)
    assert run.sends == [(10.0, 1), (10.25, 1), (10.5, 1), (10.75, 1), (11.0, 1)]


def test_a_late_sender_sends_at_most_a_burst_then_keeps_the_rate() -> None:
    rate = Rate(100.0, 0.0)
    assert rate.burst == math.ceil(100 * BURST_SECONDS)
    assert rate.due(0.0, 0) == 1
    # Stalled for 5 s (a slow server): 500 are overdue, but only a burst goes at once.
    assert rate.due(5.0, 1) == 100
    assert rate.due(5.0, 101) == 0
    assert rate.next_at(101) == pytest.approx(5.01)
    assert rate.due(5.01, 101) == 1
    assert rate.due(6.0, 102) == 99  # back on the schedule: 100 a second


def test_the_burst_can_be_chosen() -> None:
    rate = Rate(1000.0, 0.0, burst=10)
    assert rate.due(60.0, 0) == 10
    with pytest.raises(ConfigurationError, match="a burst must be at least 1 message, not 0"):
        Rate(1.0, 0.0, burst=0)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, MAX_RATE * 2])
def test_a_rate_out_of_bounds_is_refused(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="a rate must be above 0 and at most 1,000,000/s"):
        Rate(bad, 0.0)


def test_a_slow_rate_waits_its_interval() -> None:
    rate = Rate(1 / 3600, 0.0)  # 1/h
    assert rate.burst == 1
    assert rate.due(0.0, 0) == 1
    assert rate.due(3599.0, 1) == 0
    assert rate.next_at(1) == pytest.approx(3600.0)


def test_a_pause_follows_each_answer() -> None:
    run = Run(Pause(0.5, 0.0), answer=0.1)
    run.until(1.8)
    # Sent at 0, answered at 0.1, paused until 0.6, answered at 0.7, paused until 1.2…
    assert run.sends == [(0.0, 1), pytest.approx((0.6, 1)), pytest.approx((1.2, 1))]


def test_a_pause_sends_one_at_a_time() -> None:
    pause = Pause(1.0, 0.0)
    assert pause.due(0.0, 0) == 1
    pause.answered(0.2, 1)
    assert (pause.due(1.1, 1), pause.next_at(1)) == (0, 1.2)
    assert pause.due(1.2, 1) == 1


@pytest.mark.parametrize("bad", [0.0, -1.0, MAX_PAUSE + 1])
def test_a_pause_out_of_bounds_is_refused(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="a pause must be above 0"):
        Pause(bad, 0.0)


def test_as_fast_as_possible_leaves_it_to_the_batches() -> None:
    pacing = AsFastAsPossible()
    run = Run(pacing, batch=1000, answer=0.01)
    run.until(math.inf, total=2500)
    assert [count for _, count in run.sends] == [1000, 1000, 500]
    assert pacing.next_at(0) == -math.inf


@pytest.mark.parametrize(
    ("text", "rate"),
    [("200", 200.0), ("200/s", 200.0), (" 200 / s ", 200.0), ("600/m", 10.0), ("600/min", 10.0), ("36/h", 0.01),
     ("0.5/sec", 0.5), ("1e3/S", 1000.0), (".5", 0.5), ("1000000", MAX_RATE)],
)  # fmt: skip
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "'fast' is not a rate: write 200, 200/s, 600/m or 36/h"),
        ("200/d", "'200/d' is not a rate"),
        ("-5", "'-5' is not a rate"),
        ("", "'' is not a rate"),
        ("0", "a rate must be above 0 and at most 1,000,000/s, not '0'"),
        ("2e6/s", "a rate must be above 0"),
    ],
)
def test_parse_rate_refuses(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_rate(text)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1.5s", 1.5), ("2", 2.0), ("1m", 60.0), ("1h", 3600.0), (" 10 MS ", 0.01), ("24h", MAX_PAUSE)],
)
def test_parse_pause(text: str, seconds: float) -> None:
    assert parse_pause(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "'soon' is not a duration: write 250ms, 1.5s, 2 (seconds), 1m or 1h"),
        ("1d", "'1d' is not a duration"),
        ("0ms", "a pause must be above 0 and at most 86,400 s (a day), not '0ms'"),
        ("25h", "a pause must be above 0"),
    ],
)
def test_parse_pause_refuses(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_pause(text)
    assert str(raised.value).startswith(message)
