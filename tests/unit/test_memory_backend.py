"""The in-memory backend's positions, history and expiry (time is injected, not slept)."""

from __future__ import annotations

from broadcast_cli.backends.memory import MemoryBackend
from broadcast_cli.history import HistoryOptions
from broadcast_cli.message import PublishRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_history_expires_and_idle_channels_start_a_new_epoch() -> None:
    clock = Clock()
    backend = MemoryBackend(HistoryOptions(size=10, ttl=60, meta_ttl=3600), clock=clock)
    first = await backend.publish(PublishRequest("a", "e"), b"1")
    await backend.publish(PublishRequest("a", "e"), b"2")
    assert [m.seq for m in (await backend.history("a", 0)).messages] == [1, 2]
    clock.now += 61
    history = await backend.history("a", 0)
    assert (history.position.seq, list(history.messages)) == (2, [])
    clock.now += 3600 * 2
    await backend.publish(PublishRequest("b", "e"), b"1")  # sweeps
    assert len(backend) == 1
    again = await backend.publish(PublishRequest("a", "e"), b"3")
    assert again.seq == 1
    assert again.epoch != first.epoch


async def test_frame_embeds_the_encoded_payload() -> None:
    backend = MemoryBackend()
    message = await backend.publish(PublishRequest("a", "e", {"x": 1}, origin="o", id="my-id"), b'{"x":1}')
    assert message.frame.startswith(b'{"channel":"a","event":"e","payload":{"x":1},"seq":1,')
    assert message.id == "my-id"
