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


def decode_client_frame(frame: bytes) -> tuple[int, bytes]:
    """The first byte and unmasked payload of one client frame of any length."""
    assert frame[1] & 0x80, "client frames are masked"
    size, at = frame[1] & 0x7F, 2
    if size == 126:
        size, at = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, at = int.from_bytes(frame[2:10], "big"), 10
    mask, payload = frame[at : at + 4], frame[at + 4 :]
    assert len(payload) == size
    return frame[0], bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def test_the_address_repr_names_the_url() -> None:
    assert repr(ADDRESS) == "WebSocketAddress('ws://127.0.0.1:8000/ws/broadcast')"


@pytest.mark.parametrize("every", [0, -1])
def test_sample_every_must_be_at_least_one(every: int) -> None:
    with pytest.raises(ValueError, match=f"sample_every must be 1 or more, not {every}"):
        SubscriberConnection(ADDRESS, "bench", sample_every=every)


def test_data_to_send_is_empty_once_everything_was_taken() -> None:
    conn = connection()
    assert conn.data_to_send().startswith(b"GET ")
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, bytes((0x81, 0x80))),
        (125, bytes((0x81, 0x80 | 125))),
        (126, bytes((0x81, 0x80 | 126)) + (126).to_bytes(2, "big")),
        (65_535, bytes((0x81, 0x80 | 126)) + (65_535).to_bytes(2, "big")),
        (65_536, bytes((0x81, 0x80 | 127)) + (65_536).to_bytes(8, "big")),
    ],
    ids=["empty", "7-bit", "16-bit-min", "16-bit-max", "64-bit"],
)
def test_client_frames_use_the_shortest_length_encoding_and_mask_the_payload(size: int, header: bytes) -> None:
    payload = bytes(index % 251 for index in range(size))
    frame = client_frame(0x1, payload, MASK)
    assert frame.startswith(header + MASK)
    assert len(frame) == len(header) + 4 + size
    assert decode_client_frame(frame) == (0x81, payload)


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (125, bytes((0x81, 125))),
        (126, bytes((0x81, 126)) + (126).to_bytes(2, "big")),
        (65_536, bytes((0x81, 127)) + (65_536).to_bytes(8, "big")),
    ],
    ids=["7-bit", "16-bit", "64-bit"],
)
def test_server_frames_use_the_shortest_length_encoding(size: int, header: bytes) -> None:
    payload = b"x" * size
    assert server_frame(payload) == header + payload


def test_a_large_event_with_a_64_bit_length_is_counted() -> None:
    conn = subscribed()
    big = event(1, pad=70_000)
    assert big[1] == 127
    conn.receive_data(big + event(2), 0)
    assert conn.frames == 2
    assert conn.bytes == len(event_payload(1, pad=70_000)) + len(event_payload(2))


def test_a_64_bit_length_split_inside_its_header_waits_for_the_rest() -> None:
    conn = subscribed()
    payload = event_payload(1)
    frame = bytes((0x81, 127)) + len(payload).to_bytes(8, "big") + payload
    conn.receive_data(frame[:5], 0)
    assert (conn.frames, conn.state) == (0, ConnectionState.STREAMING)
    conn.receive_data(frame[5:], 0)
    assert conn.frames == 1
    assert conn.error is None


def test_a_frame_larger_than_16_mib_is_refused_from_its_header() -> None:
    conn = subscribed()
    conn.receive_data(bytes((0x81, 127)) + (16 * 1024 * 1024 + 1).to_bytes(8, "big"), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == "the server sent a frame of 16777217 bytes"


def test_a_fragmented_message_larger_than_16_mib_is_refused() -> None:
    conn = subscribed()
    half = b"x" * (8 * 1024 * 1024 + 1)
    conn.receive_data(server_frame(half, fin=False) + server_frame(half, opcode=0x0), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == "the server sent a message larger than 16 MiB"


def test_spaces_after_the_colons_are_read() -> None:
    conn = subscribed(sample_every=1)
    conn.receive_data(server_frame(b'{"channel": "bench", "payload": {"t": 400}, "seq": 1, "epoch": "e1"}'), 1_000)
    assert conn.frames == 1
    assert conn.samples == [600]


def test_an_event_whose_seq_is_the_last_field() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b'{"channel":"bench","epoch":"e1","seq":1}') + event(2), 0)
    assert conn.frames == 2
    assert conn.tracker is not None and conn.tracker.complete(2)


def test_a_seq_that_is_not_a_number_is_not_an_event() -> None:
    conn = subscribed()
    odd = b'{"channel":"bench","seq":null,"epoch":"e1"}'
    conn.receive_data(event(1) + server_frame(odd) + event(2), 0)
    assert conn.frames == 2
    assert conn.tracker is not None and conn.tracker.complete(2)
    assert conn.errors == [f"unexpected frame: {odd!r}"]
    assert conn.state is ConnectionState.STREAMING


def test_a_frame_that_is_not_json_is_recorded_and_streaming_goes_on() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b"hello") + event(1), 0)
    assert conn.errors == ["unexpected frame: b'hello'"]
    assert (conn.state, conn.frames) == (ConnectionState.STREAMING, 1)


def test_an_empty_ping_is_answered_with_an_empty_pong() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b"", opcode=0x9), 0)
    assert conn.data_to_send() == bytes((0x8A, 0x80)) + MASK


def test_an_unsolicited_pong_is_ignored() -> None:
    conn = subscribed()
    conn.receive_data(event(1) + server_frame(b"beat", opcode=0xA) + event(2), 0)
    assert conn.frames == 2
    assert conn.data_to_send() == b""
    assert (conn.error, conn.errors) == (None, [])


def test_a_close_frame_without_a_code_is_1005_and_is_echoed_empty() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b"", opcode=0x8), 0)
    assert (conn.state, conn.close_code) == (ConnectionState.CLOSED, 1005)
    assert conn.error == "the server closed the connection (code 1005)"
    assert conn.data_to_send() == bytes((0x88, 0x80)) + MASK


def test_a_continuation_with_no_message_to_continue_is_refused() -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b'"seq":1}', opcode=0x0) + event(1), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == "the server sent a continuation frame with no message to continue"
    assert conn.frames == 0


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_a_reserved_opcode_is_refused(opcode: int) -> None:
    conn = subscribed()
    conn.receive_data(server_frame(b"", opcode=opcode), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == f"the server sent a frame with the reserved opcode {opcode}"


def test_a_handshake_response_without_an_end_is_refused_past_64_kib() -> None:
    conn = connection()
    head = b"HTTP/1.1 101 Switching Protocols\r\nX-Pad: "
    conn.receive_data(head, 0)
    conn.receive_data(b"a" * (64 * 1024 - len(head)), 0)
    assert conn.state is ConnectionState.HANDSHAKE  # 64 KiB without the blank line is still accepted
    conn.receive_data(b"a", 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error == "the server's handshake response is too long"


def test_an_ack_longer_than_125_bytes_is_read_even_in_pieces() -> None:
    channel = "c" * 128
    conn = SubscriberConnection(ADDRESS, channel, key=KEY, mask=MASK)
    long_ack = ack(7, channel=channel)
    assert long_ack[1] == 126
    stream = response() + long_ack + event(8)
    for start in range(0, len(stream), 3):
        conn.receive_data(stream[start : start + 3], 0)
    assert conn.state is ConnectionState.STREAMING
    assert conn.tracker is not None and conn.tracker.start == 7
    assert conn.frames == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"not json", "the server answered the subscribe with a frame that is not JSON: b'not json'"),
        (b"[1]", "unexpected answer to the subscribe: b'[1]'"),
        (b'{"type":"ack","id":2}', 'unexpected answer to the subscribe: b\'{"type":"ack","id":2}\''),
    ],
    ids=["not-json", "not-an-object", "another-id"],
)
def test_a_wrong_answer_to_the_subscribe_fails_the_connection(answer: bytes, error: str) -> None:
    conn = connection()
    conn.receive_data(response() + server_frame(answer), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error is not None and conn.error.startswith(error)
    assert conn.tracker is None


def test_an_event_before_the_ack_fails_the_connection() -> None:
    conn = connection()
    conn.receive_data(response() + event(1) + ack(0), 0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.error is not None and conn.error.startswith("unexpected answer to the subscribe: ")
