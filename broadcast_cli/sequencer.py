"""Per-channel ordering of incoming messages, without I/O.

A backend may hand the hub a channel's messages out of order, twice, or with
holes: Redis pub/sub drops what is published while an instance is disconnected,
and an instance sees its own publishes both as the reply to its script and as the
pub/sub echo. :class:`Sequencer` turns that stream into the channel's messages
exactly once and in ``seq`` order, and says which range is missing so that the
hub can fetch it from history.
"""

from __future__ import annotations

from collections.abc import Iterable

from .message import Message, Position

__all__ = ["Sequencer"]


class Sequencer:
    """Orders one channel's messages for fan-out.

    Until :meth:`sync` gives it the channel's position, it holds what it is
    offered. Afterwards :meth:`offer` returns the messages that can be delivered
    now, in order; a message beyond a hole waits until :meth:`fill` brings the
    missing ones from history (or learns that they are gone).
    """

    __slots__ = ("_early", "_pending", "position")

    def __init__(self) -> None:
        self.position: Position | None = None
        """The last position delivered, ``None`` before :meth:`sync`."""
        self._pending: dict[int, Message] = {}
        self._early: list[Message] = []

    @property
    def gap(self) -> tuple[int, int] | None:
        """The missing ``seq`` range ``(after, up_to)`` to fetch from history, or ``None``."""
        if self.position is None or not self._pending:
            return None
        return self.position.seq, min(self._pending) - 1

    def sync(self, position: Position) -> list[Message]:
        """Start at *position*; return the held messages that follow it, in order."""
        self.position = position
        early, self._early = self._early, []
        delivered: list[Message] = []
        for message in sorted(early, key=lambda m: m.seq):
            delivered.extend(self.offer(message))
        return delivered

    def offer(self, message: Message) -> list[Message]:
        """Take one message; return those that can be delivered now, in order."""
        position = self.position
        if position is None:
            self._early.append(message)
            return []
        if message.epoch != position.epoch:
            # History was lost and the channel started over: follow the new epoch.
            self._pending.clear()
            position = self.position = Position(0, message.epoch)
        seq = message.seq
        if seq <= position.seq:
            return []
        if seq != position.seq + 1:
            self._pending[seq] = message
            return []
        delivered = [message]
        pending = self._pending
        while pending and seq + 1 in pending:
            seq += 1
            delivered.append(pending.pop(seq))
        self.position = Position(seq, position.epoch)
        return delivered

    def fill(self, messages: Iterable[Message], position: Position) -> list[Message]:
        """Take the result of a history fetch for :attr:`gap`.

        *messages* are what history still holds after the gap's start and
        *position* the channel's position when history was read. Messages up to
        that position that history no longer holds are skipped: delivery resumes
        at the next message held, and subscribers see the jump in ``seq``. A hole
        above that position was published after the read: it stays a :attr:`gap`.
        """
        delivered: list[Message] = []
        if self.position is None:
            return delivered
        if position.epoch != self.position.epoch:
            self._pending = {s: m for s, m in self._pending.items() if m.epoch == position.epoch}
            self.position = Position(0, position.epoch)
        for message in messages:
            delivered.extend(self.offer(message))
        while (gap := self.gap) is not None and gap[0] < position.seq:
            # Missing yet published before the read: gone from history. Skip it.
            up_to = min(gap[1], position.seq)
            self.position = Position(up_to, position.epoch)
            if up_to + 1 in self._pending:
                delivered.extend(self.offer(self._pending.pop(up_to + 1)))
        return delivered
