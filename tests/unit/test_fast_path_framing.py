"""The fast path's framing: each event framed once, byte for byte what ``websockets`` would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from broadcast_cli.message import Message
from broadcast_cli.server.framing import RAW_SEND, event_frame, framed_writer, text_frame
from broadcast_cli.server.websocket import FramedOutbox

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70_000]
"""Around each boundary of the length encoding (RFC 6455 §5.2): 7 bits, 16 bits, 64 bits."""


def websockets_frame(payload: bytes) -> bytes:
    """What uvicorn's WebSocket protocol writes for ``websocket.send`` with this text: websockets' own framing."""
    server = ServerProtocol(state=State.OPEN, max_size=None)
    server.send_text(payload)
    return b"".join(server.data_to_send())


@pytest.mark.parametrize("length", LENGTHS)
def test_a_text_frame_is_what_websockets_sends(length: int) -> None:
    payload = b"x" * length
    assert text_frame(payload) == websockets_frame(payload)
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


@pytest.mark.parametrize("text", ["", "é", "ünïcødé ✓ 日本語 🎉", "€" * 42, "🎉" * 16_384, "ß" * 40_000])
def test_non_ascii_text_is_framed_by_its_utf8_length(text: str) -> None:
    payload = text.encode()
    framed = text_frame(payload)
    assert framed == websockets_frame(payload)
    assert framed.endswith(payload)


def test_an_event_is_framed_once_and_cached_on_the_message() -> None:
    message = Message("orders", "e", None, 1, "ep", "id", 0, frame=b'{"channel":"orders","seq":1}')
    assert message.websocket_frame is None
    first = event_frame(message)
    assert first == text_frame(message.frame)
    assert message.websocket_frame is first
    assert event_frame(message) is first


async def test_a_framed_outbox_queues_wire_frames_and_counts_json_bytes() -> None:
    message = Message("orders", "e", None, 1, "ep", "id", 0, frame=b'{"seq":1}')
    outbox = FramedOutbox(10, 14 + 9 + 9)  # the bounds count the JSON, as on the ASGI path
    outbox.send_frame(b'{"type":"ack"}')  # an ack: framed on the way in
    outbox.deliver(message)
    outbox.deliver(message)
    assert not outbox.overflowed  # framed, these are 38 bytes: the frame headers are not counted
    framed = text_frame(message.frame)
    assert await outbox.next_frames() == [text_frame(b'{"type":"ack"}'), framed, framed]
    outbox.send_frame(b"x" * 33)
    assert outbox.overflowed


async def test_a_framed_outbox_hands_out_every_frame_at_once_and_overflows_like_the_text_one() -> None:
    calls: list[None] = []
    outbox = FramedOutbox(3, 1000, lambda: calls.append(None))
    for seq in (1, 2):
        outbox.send_frame(b'{"seq":%d}' % seq)
    assert await outbox.next_frames() == [text_frame(b'{"seq":1}'), text_frame(b'{"seq":2}')]
    for seq in range(3, 7):
        outbox.send_frame(b'{"seq":%d}' % seq)
    assert outbox.overflowed and calls == [None]
    assert await outbox.next_frames() == []


def test_the_extension_is_found_only_when_offered() -> None:
    writer = object()
    assert framed_writer({"extensions": {RAW_SEND: {"writer": writer}}}) is writer
    assert framed_writer({"extensions": {"websocket.http.response": {}}}) is None
    assert framed_writer({"extensions": None}) is None
    assert framed_writer({}) is None
    assert framed_writer({"extensions": {RAW_SEND: "not a dict"}}) is None
