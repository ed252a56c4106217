"""Correctness from seqs: what one subscriber lost, got twice, or got out of order.

A server numbers each channel's messages 1, 2, 3, … (protocol v1, ``seq``), and
the subscribe ack gives the position a subscriber starts from. So a subscriber
can tell, from the seqs alone, whether it got every message once and in order:

* **lost**: a seq after the start, up to the channel's last published seq, that
  never arrived;
* **duplicated**: a seq that arrived again (or one at or before the start);
* **reordered**: a seq that arrived after a greater one (late, but not lost).

:class:`SeqTracker` costs one comparison per in-order frame; gaps are kept as
intervals, so a large loss costs memory per gap, not per missing message.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

__all__ = ["SeqSummary", "SeqTracker"]


@dataclass(frozen=True, slots=True)
class SeqSummary:
    """What a set of subscribers received, checked against what was published."""

    expected: int = 0
    """Deliveries that should have happened: for each subscriber, the seqs after its start up to the last."""
    received: int = 0
    """Distinct expected seqs that arrived (``expected - lost``)."""
    lost: int = 0
    """Expected seqs that never arrived."""
    duplicated: int = 0
    """Frames carrying a seq that had already arrived (or that came before the start)."""
    reordered: int = 0
    """Seqs that arrived after a greater one."""
    beyond: int = 0
    """Distinct seqs that arrived past the last expected one (published by someone else)."""

    @property
    def ok(self) -> bool:
        """Whether every expected message arrived exactly once and in order."""
        return not (self.lost or self.duplicated or self.reordered)

    def __add__(self, other: SeqSummary) -> SeqSummary:
        return SeqSummary(
            self.expected + other.expected,
            self.received + other.received,
            self.lost + other.lost,
            self.duplicated + other.duplicated,
            self.reordered + other.reordered,
            self.beyond + other.beyond,
        )


class SeqTracker:
    """Checks the seqs that one subscriber receives on one channel.

    *start* is the position of the subscribe ack: the first event expected is
    ``start + 1``. Call :meth:`observe` with each event's seq, then
    :meth:`summary` with the channel's last published seq.
    """

    __slots__ = ("_missing", "_missing_count", "duplicated", "next", "reordered", "start")

    def __init__(self, start: int = 0) -> None:
        if start < 0:
            raise ValueError(f"a start seq is 0 or more, not {start}")
        self.start = start
        """The ack's position."""
        self.next = start + 1
        """The seq expected next: one more than the greatest seen so far."""
        self.duplicated = 0
        """Frames with a seq seen before (or at or before :attr:`start`)."""
        self.reordered = 0
        """Seqs that filled a gap: they came after a greater one."""
        self._missing: list[tuple[int, int]] = []
        """Gaps not filled yet, as sorted, disjoint, inclusive ``(first, last)`` intervals."""
        self._missing_count = 0

    def observe(self, seq: int) -> None:
        """Record that an event with *seq* arrived."""
        if seq == self.next:
            self.next = seq + 1
        elif seq > self.next:
            self._missing.append((self.next, seq - 1))
            self._missing_count += seq - self.next
            self.next = seq + 1
        elif not self._fill(seq):
            self.duplicated += 1

    def _fill(self, seq: int) -> bool:
        """Take *seq* out of the gaps; return whether it was missing (then it came late)."""
        missing = self._missing
        index = bisect.bisect_right(missing, seq, key=lambda gap: gap[0]) - 1
        if index < 0:
            return False
        first, last = missing[index]
        if seq > last:
            return False
        pieces = [gap for gap in ((first, seq - 1), (seq + 1, last)) if gap[0] <= gap[1]]
        missing[index : index + 1] = pieces
        self._missing_count -= 1
        self.reordered += 1
        return True

    def complete(self, last: int) -> bool:
        """Whether every seq from ``start + 1`` to *last* has arrived."""
        return self.next > last and not self._missing_count

    def missing(self, last: int) -> int:
        """How many seqs from ``start + 1`` to *last* have not arrived."""
        gaps = self._missing_count
        if last < self.next - 1:  # seqs arrived beyond *last*: count only the gaps up to it
            gaps = sum(max(0, min(gap_last, last) - first + 1) for first, gap_last in self._missing)
        return gaps + max(0, last - (self.next - 1))

    def summary(self, last: int) -> SeqSummary:
        """The check of this subscriber, *last* being the channel's last published seq."""
        expected = max(0, last - self.start)
        lost = self.missing(last)
        beyond = max(0, self.next - 1 - max(last, self.start))
        if beyond:  # gaps past *last* are not losses, and their seqs are not deliveries
            beyond -= sum(max(0, gap_last - max(first, last + 1) + 1) for first, gap_last in self._missing)
        return SeqSummary(
            expected=expected,
            received=expected - lost,
            lost=lost,
            duplicated=self.duplicated,
            reordered=self.reordered,
            beyond=beyond,
        )
