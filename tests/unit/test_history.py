"""Bounded history and the recovery decision."""

from __future__ import annotations

import pytest

from broadcast_cli.exceptions import ConfigurationError
from broadcast_cli.history import ChannelHistory, HistoryOptions, HistorySlice, recover
from broadcast_cli.message import Message, Position


def msg(seq: int, ts: int = 0, epoch: str = "e") -> Message:
    return Message("c", "ev", seq, seq, epoch, f"m{seq}", ts)


def test_history_is_bounded_by_size() -> None:
    history = ChannelHistory(HistoryOptions(size=3))
    for seq in range(1, 6):
        history.append(msg(seq))
    assert [m.seq for m in history.after(0, now_ms=0)] == [3, 4, 5]
    assert [m.seq for m in history.after(3, now_ms=0)] == [4, 5]
    assert history.after(5, now_ms=0) == []


def test_history_expires_by_age() -> None:
    history = ChannelHistory(HistoryOptions(size=10, ttl=1.0))
    history.append(msg(1, ts=0))
    history.append(msg(2, ts=500))
    history.append(msg(3, ts=1500))
    assert [m.seq for m in history.after(0, now_ms=1400)] == [2, 3]
    assert [m.seq for m in history.after(0, now_ms=2400)] == [3]


def test_history_size_zero_keeps_nothing() -> None:
    history = ChannelHistory(HistoryOptions(size=0))
    history.append(msg(1))
    assert history.after(0, now_ms=0) == []


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        HistoryOptions(size=-1)
    with pytest.raises(ConfigurationError):
        HistoryOptions(ttl=0)
    with pytest.raises(ConfigurationError):
        HistoryOptions(ttl=100, meta_ttl=10)


def slice_(top: int, seqs: list[int], epoch: str = "e") -> HistorySlice:
    return HistorySlice(Position(top, epoch), [msg(s, epoch=epoch) for s in seqs])


def test_recover_everything_missed() -> None:
    result = recover(slice_(5, [2, 3, 4, 5]), since=2, epoch="e")
    assert result.recovered is True
    assert [m.seq for m in result.messages] == [3, 4, 5]
    assert result.position == Position(5, "e")


def test_recover_nothing_missed() -> None:
    result = recover(slice_(5, []), since=5, epoch="e")
    assert (result.recovered, list(result.messages)) == (True, [])


def test_no_recovery_asked() -> None:
    assert recover(slice_(5, [5]), since=None, epoch=None).recovered is None


def test_recover_fails_when_history_was_trimmed() -> None:
    assert recover(slice_(9, [6, 7, 8, 9]), since=2, epoch="e").recovered is False


def test_recover_fails_on_another_epoch_or_a_future_seq() -> None:
    assert recover(slice_(5, [4, 5]), since=3, epoch="other").recovered is False
    assert recover(slice_(5, []), since=6, epoch="e").recovered is False


def test_recover_without_epoch_checks_seq_only() -> None:
    assert recover(slice_(5, [4, 5]), since=3, epoch=None).recovered is True


def test_the_length_of_a_history_is_what_it_holds_after_evictions_and_expiry() -> None:
    history = ChannelHistory(HistoryOptions(size=3, ttl=1.0))
    assert len(history) == 0
    for seq in range(1, 5):
        history.append(msg(seq, ts=seq * 400))
    assert len(history) == 3  # seq 1 was evicted by the size bound
    history.expire(now_ms=2_300)  # seqs 2 (800 ms) and 3 (1200 ms) are more than 1 s old
    assert len(history) == 1
    assert len(ChannelHistory(HistoryOptions(size=0))) == 0


def test_recover_fails_when_a_repeated_seq_hides_a_hole() -> None:
    """Two copies of seq 4 make up the count of 4 and 5, but 5 is missing."""
    result = recover(slice_(5, [4, 4]), since=3, epoch="e")
    assert (result.recovered, list(result.messages)) == (False, [])
    assert result.position == Position(5, "e")


def test_recover_fails_when_history_is_out_of_order() -> None:
    """Every seq is there, but replaying them as read would deliver 5 before 4."""
    assert recover(slice_(5, [5, 4]), since=3, epoch="e").recovered is False
