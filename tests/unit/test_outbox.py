"""The per-connection send queue: bounded, and drained or dropped on close."""

from __future__ import annotations

from broadcast_cli.server.websocket import Outbox


def frames(outbox: Outbox, *texts: str) -> None:
    for text in texts:
        outbox.send_frame(text.encode())


async def test_frames_come_out_in_order_all_at_once() -> None:
    outbox = Outbox(10, 1000)
    frames(outbox, "a", "b", "c")
    assert len(outbox) == 3
    assert await outbox.next_frames() == ["a", "b", "c"]
    assert len(outbox) == 0


async def test_too_many_frames_overflow_once() -> None:
    calls: list[None] = []
    outbox = Outbox(2, 1000, lambda: calls.append(None))
    frames(outbox, "a", "b")
    assert not outbox.overflowed
    frames(outbox, "c", "d")
    assert outbox.overflowed and len(calls) == 1 and len(outbox) == 0
    assert await outbox.next_frames() == []


async def test_too_many_bytes_overflow() -> None:
    outbox = Outbox(100, 5)
    frames(outbox, "abc")
    assert not outbox.overflowed
    frames(outbox, "def")
    assert outbox.overflowed


async def test_a_replay_may_exceed_the_bounds_up_to_its_own() -> None:
    outbox = Outbox(2, 1000, max_replay_bytes=10)
    outbox.replaying += 1
    frames(outbox, "a", "b", "c", "d")
    outbox.end_replay()
    assert not outbox.overflowed
    frames(outbox, "e")  # the backlog is tolerated until the writer takes it
    assert not outbox.overflowed
    assert await outbox.next_frames() == ["a", "b", "c", "d", "e"]
    frames(outbox, "f", "g", "h")
    assert outbox.overflowed


async def test_finish_sends_what_is_queued_then_stops() -> None:
    outbox = Outbox(10, 1000)
    frames(outbox, "a", "b")
    outbox.finish()
    frames(outbox, "late")  # nothing is queued once finishing
    assert await outbox.next_frames() == ["a", "b"]
    assert await outbox.next_frames() == []


async def test_close_drops_what_is_queued() -> None:
    outbox = Outbox(10, 1000)
    frames(outbox, "a")
    outbox.close()
    assert await outbox.next_frames() == []
