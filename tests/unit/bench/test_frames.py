"""The lean subscriber without I/O: handshake, subscribe, counting, seq checks, latency samples, control frames."""

from __future__ import annotations

import orjson
import pytest

from broadcast_cli.bench.frames import (
    ConnectionState,
    SubscriberConnection,
    accept_key,
    client_frame,
    parse_ws_url,
    server_frame,
)
from broadcast_cli.exceptions import ConfigurationError

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x01\x02\x03\x04"
ADDRESS = parse_ws_url("ws://127.0.0.1:8000/ws/broadcast")


def response(accept: bytes | None = None, status: str = "101 Switching Protocols") -> bytes:
    accept = accept_key(KEY) if accept is None else accept
    return (
        f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept.decode()}\r\n\r\n"
    ).encode()


def ack(seq: int = 0, channel: str = "bench") -> bytes:
    return server_frame(orjson.dumps({"type": "ack", "id": 1, "channels": {channel: {"seq": seq, "epoch": "e1"}}}))


def event(seq: int, sent_ns: int = 1_000, pad: int = 10) -> bytes:
    return server_frame(event_payload(seq, sent_ns, pad))


def event_payload(seq: int, sent_ns: int = 1_000, pad: int = 10) -> bytes:
    frame = {
        "channel": "bench",
        "event": "bench",
        "payload": {"t": sent_ns, "p": "x" * pad},
        "seq": seq,
        "epoch": "e1",
        "id": "0123456789abcdef01234567",
        "ts": 1,
    }
    return orjson.dumps(frame)


def unmask(frame: bytes) -> tuple[int, bytes]:
    """The opcode and payload of a (short) masked client frame."""
    assert frame[1] & 0x80, "client frames are masked"
    size = frame[1] & 0x7F
    assert size < 126
    mask, payload = frame[2:6], frame[6 : 6 + size]
    return frame[0] & 0x0F, bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def connection(sample_every: int = 1) -> SubscriberConnection:
    return SubscriberConnection(ADDRESS, "bench", key=KEY, mask=MASK, sample_every=sample_every)


def subscribed(start: int = 0, sample_every: int = 1) -> SubscriberConnection:
    conn = connection(sample_every)
    conn.data_to_send()
    conn.receive_data(response() + ack(start), 0)
    conn.data_to_send()
    assert conn.state is ConnectionState.STREAMING
    return conn


def test_the_handshake_request() -> None:
    request = connection().data_to_send().decode()
    assert request.startswith("GET /ws/broadcast HTTP/1.1\r\n")
    assert "Host: 127.0.0.1:8000\r\n" in request
    assert f"Sec-WebSocket-Key: {KEY.decode()}\r\n" in request
    assert "Sec-WebSocket-Version: 13\r\n" in request
    assert request.endswith("\r\n\r\n")


def test_accept_key_is_rfc_6455s_example() -> None:
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def test_subscribes_after_the_handshake_then_streams_after_the_ack() -> None:
    conn = connection()
    conn.data_to_send()
    conn.receive_data(response(), 0)
    assert conn.state is ConnectionState.SUBSCRIBING
    opcode, payload = unmask(conn.data_to_send())
    assert (opcode, orjson.loads(payload)) == (1, {"subscribe": ["bench"], "id": 1})
    conn.receive_data(ack(41), 0)
    assert conn.state is ConnectionState.STREAMING
    assert conn.tracker is not None and conn.tracker.start == 41
    assert conn.epoch == "e1"


def test_counts_events_and_checks_seqs() -> None:
    conn = subscribed(start=10)
    data = b"".join(event(seq) for seq in (11, 12, 14, 13, 13))
    conn.receive_data(data, 0)
    assert conn.frames == 5
    assert conn.bytes == sum(len(event_payload(seq)) for seq in (11, 12, 14, 13, 13))
    assert conn.tracker is not None
    summary = conn.tracker.summary(15)
    assert (summary.lost, summary.reordered, summary.duplicated) == (1, 1, 1)


def test_everything_in_one_chunk() -> None:
    conn = connection()
    conn.data_to_send()
    conn.receive_data(response() + ack(0) + event(1) + event(2), 0)
    assert (conn.state, conn.frames) == (ConnectionState.STREAMING, 2)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_any_split_of_the_stream(chunk: int) -> None:
    conn = connection(sample_every=3)
    conn.data_to_send()
    stream = response() + ack(0) + b"".join(event(seq, sent_ns=100, pad=seq * 7) for seq in range(1, 41))
    for start in range(0, len(stream), chunk):
        conn.receive_data(stream[start : start + chunk], 1_100)
    assert conn.frames == 40
    assert conn.tracker is not None and conn.tracker.complete(40)
    assert conn.samples == [1_000] * len(range(0, 41, 3)[1:])  # seqs 3, 6, … 39
    assert conn.error is None


def test_16_and_64_bit_lengths() -> None:
    conn = subscribed()
    conn.receive_data(event(1, pad=300), 0)  # a 16-bit length
    long = orjson.dumps({"channel": "bench", "payload": {"p": "x" * 100}, "seq": 2, "epoch": "e1"})
    frame = bytes((0x81, 127)) + len(long).to_bytes(8, "big") + long  # a 64-bit length for a short frame
    conn.receive_data(frame + event(3), 0)
    assert conn.frames == 3
    assert conn.tracker is not None and conn.tracker.complete(3)


def test_latency_samples_one_frame_in_n() -> None:
    conn = subscribed(sample_every=4)
    conn.receive_data(b"".join(event(seq, sent_ns=1_000 * seq) for seq in range(1, 13)), 20_000)
    assert conn.samples == [20_000 - 4_000, 20_000 - 8_000, 20_000 - 12_000]


def test_the_sample_offset_spreads_samples_over_subscribers() -> None:
    conn = SubscriberConnection(ADDRESS, "bench", key=KEY, sample_every=4, sample_offset=1)
    conn.data_to_send()
    conn.receive_data(response() + ack(0) + b"".join(event(seq, sent_ns=seq) for seq in range(1, 9)), 100)
    assert conn.samples == [99, 95]  # seqs 1 and 5


def test_ping_is_answered_with_pong() -> None:
    conn = subscribed()
    conn.receive_data(event(1) + server_frame(b"hi", opcode=0x9) + event(2), 0)
    assert unmask(conn.data_to_send()) == (0xA, b"hi")
    assert conn.frames == 2


def test_a_close_frame_ends_the_connection() -> None:
    conn = subscribed()
    conn.receive_data(event(1) + server_frame((4008).to_bytes(2, "big") + b"slow", opcode=0x8) + event(2), 0)
    assert (conn.state, conn.close_code, conn.frames) == (ConnectionState.CLOSED, 4008, 1)
    assert "4008" in (conn.error or "")
    assert unmask(conn.data_to_send()) == (0x8, (4008).to_bytes(2, "big"))


def test_a_fragmented_event() -> None:
    conn = subscribed()
    whole = event_payload(1)
    conn.receive_data(server_frame(whole[:10], fin=False) + server_frame(whole[10:], opcode=0x0), 0)
    assert conn.frames == 1


def test_error_frames_are_recorded() -> None:
    conn = subscribed()
    error = orjson.dumps({"type": "error", "id": None, "code": "backend_unavailable", "message": "down"})
    conn.receive_data(event(1) + server_frame(error) + event(2), 0)
    assert conn.frames == 2
    assert conn.errors == ["backend_unavailable: down"]


def test_a_frame_that_is_not_an_event() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b'{"hello": "world"}'), 0)
    assert conn.frames == 0
    assert conn.errors and "unexpected frame" in conn.errors[0]


def test_a_refused_handshake() -> None:
    conn = connection()
    conn.receive_data(response(status="403 Forbidden"), 0)
    assert conn.state is ConnectionState.CLOSED
    assert "403 Forbidden" in (conn.error or "")


def test_a_wrong_accept_key() -> None:
    conn = connection()
    conn.receive_data(response(accept=b"wrong"), 0)
    assert "Sec-WebSocket-Accept" in (conn.error or "")


def test_a_refused_subscribe() -> None:
    conn = connection()
    error = orjson.dumps({"type": "error", "id": 1, "code": "invalid_channel", "message": "no"})
    conn.receive_data(response() + server_frame(error), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == "the server refused the subscribe (invalid_channel): no"


def test_an_ack_without_the_channel() -> None:
    conn = connection()
    conn.receive_data(response() + ack(channel="other"), 0)
    assert "no position for 'bench'" in (conn.error or "")


def test_a_masked_server_frame_is_refused() -> None:
    conn = subscribed()
    conn.receive_data(client_frame(0x1, b'{"seq":1}', MASK), 0)
    assert conn.state is ConnectionState.CLOSED
    assert "masked" in (conn.error or "")


def test_a_binary_frame_is_refused() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b"\x00\x01", opcode=0x2), 0)
    assert "binary" in (conn.error or "")


def test_close_frame_for_the_bench() -> None:
    assert unmask(connection().close_frame()) == (0x8, (1000).to_bytes(2, "big"))


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("ws://127.0.0.1:8000/ws/broadcast", "127.0.0.1", 8000, "/ws/broadcast"),
        ("ws://localhost", "localhost", 80, "/"),
        ("ws://[::1]:9/x?y=1", "::1", 9, "/x?y=1"),
    ],
)
def test_parse_ws_url(url: str, host: str, port: int, path: str) -> None:
    address = parse_ws_url(url)
    assert (address.host, address.port, address.path) == (host, port, path)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "wss://example.test/ws", "ws://", "ws://h:bad/"])
def test_parse_ws_url_refuses(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_ws_url(url)
