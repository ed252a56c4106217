"""Per-channel ordering: duplicates dropped, holes detected and filled."""

from __future__ import annotations

from broadcast_cli.message import Message, Position
from broadcast_cli.sequencer import Sequencer


def msg(seq: int, epoch: str = "e") -> Message:
    return Message("c", "ev", None, seq, epoch, f"m{seq}", 0)


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


def test_holds_messages_until_synced_and_drops_those_already_counted() -> None:
    sequencer = Sequencer()
    assert sequencer.offer(msg(3)) == []
    assert sequencer.offer(msg(2)) == []
    assert seqs(sequencer.sync(Position(2, "e"))) == [3]
    assert sequencer.position == Position(3, "e")


def test_in_order_and_duplicates() -> None:
    sequencer = Sequencer()
    sequencer.sync(Position(0, "e"))
    assert seqs(sequencer.offer(msg(1))) == [1]
    assert sequencer.offer(msg(1)) == []
    assert seqs(sequencer.offer(msg(2))) == [2]


def test_a_hole_waits_for_history_then_delivers_in_order() -> None:
    sequencer = Sequencer()
    sequencer.sync(Position(1, "e"))
    assert sequencer.offer(msg(4)) == []
    assert sequencer.offer(msg(5)) == []
    assert sequencer.gap == (1, 3)
    assert seqs(sequencer.offer(msg(2))) == [2]
    assert sequencer.gap == (2, 3)
    assert seqs(sequencer.fill([msg(3), msg(4)], Position(5, "e"))) == [3, 4, 5]
    assert sequencer.gap is None


def test_what_history_lost_is_skipped() -> None:
    sequencer = Sequencer()
    sequencer.sync(Position(1, "e"))
    sequencer.offer(msg(5))
    sequencer.offer(msg(8))
    assert seqs(sequencer.fill([msg(5)], Position(8, "e"))) == [5, 8]
    assert sequencer.position == Position(8, "e")
    assert sequencer.gap is None


def test_a_new_epoch_starts_over() -> None:
    sequencer = Sequencer()
    sequencer.sync(Position(7, "old"))
    assert seqs(sequencer.offer(msg(1, "new"))) == [1]
    assert sequencer.position == Position(1, "new")
    sequencer.offer(msg(3, "new"))
    assert seqs(sequencer.fill([msg(1, "newer"), msg(2, "newer")], Position(2, "newer"))) == [1, 2]


def test_a_hole_above_what_history_had_when_read_is_not_skipped() -> None:
    """History read at seq 5 cannot know of 6..9: they were published after the read."""
    sequencer = Sequencer()
    sequencer.sync(Position(1, "e"))
    sequencer.offer(msg(3))
    sequencer.offer(msg(10))
    assert seqs(sequencer.fill([msg(2), msg(3), msg(4), msg(5)], Position(5, "e"))) == [2, 3, 4, 5]
    assert sequencer.gap == (5, 9)
    assert seqs(sequencer.fill([msg(s) for s in range(6, 11)], Position(10, "e"))) == [6, 7, 8, 9, 10]
    assert sequencer.gap is None


def test_a_hole_partly_below_the_read_position_skips_only_that_part() -> None:
    sequencer = Sequencer()
    sequencer.sync(Position(1, "e"))
    sequencer.offer(msg(10))
    # 2..4 are gone (5 is what history had), 6 is gone too, 7..9 came after the read.
    assert seqs(sequencer.fill([msg(5)], Position(6, "e"))) == [5]
    assert sequencer.position == Position(6, "e")
    assert sequencer.gap == (6, 9)


def test_a_fill_before_the_sync_delivers_nothing_and_does_not_sync() -> None:
    sequencer = Sequencer()
    assert sequencer.fill([msg(1), msg(2)], Position(2, "e")) == []
    assert sequencer.position is None
    assert sequencer.gap is None
    assert seqs(sequencer.sync(Position(0, "e"))) == []  # the filled messages were not held
