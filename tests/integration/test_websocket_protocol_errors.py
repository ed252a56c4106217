"""Clients that break the protocol, against real ``broadcast serve`` processes and their logs.

Each gets a close code or an error frame that says what it did wrong, and costs
the server one INFO line at most, rate-limited across connections: never an
ERROR, never a traceback (issue 17, item 9). Frames are written with the
websockets library's Sans-I/O client over a raw socket, so that a test can send
what no well-behaved client would: text that is not UTF-8, unmasked frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.transport import CLIENT_ERRORS
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess

LOGGED = "the client broke the WebSocket protocol"
"""What the server's line about such a connection says."""


@dataclass
class RawClient:
    """A WebSocket client that writes any frame, well-formed or not, and reads what the server sends."""

    protocol: ClientProtocol
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
        await self.writer.drain()

    async def send(self, opcode: Opcode, data: bytes, *, fin: bool = True) -> None:
        """Send one frame, masked as a client must; the payload is not checked (text may be any bytes)."""
        self.protocol.send_frame(Frame(opcode, data, fin=fin))
        await self.flush()

    async def send_raw(self, data: bytes) -> None:
        """Write *data* as is, past the protocol."""
        self.writer.write(data)
        await self.writer.drain()

    async def next_event(self) -> Frame | Close:
        """The next data frame the server sends, or its close frame (as :class:`Close`)."""
        deadline = time.monotonic() + scaled(10)
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    return event
            if self.protocol.close_rcvd is not None:
                return self.protocol.close_rcvd
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the server sent nothing"
            data = await asyncio.wait_for(self.reader.read(65536), remaining)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
                assert self.protocol.close_rcvd is not None, "the server closed the socket without a close frame"

    async def json(self) -> dict[str, Any]:
        """The next frame, as JSON (fails on a close)."""
        event = await self.next_event()
        assert isinstance(event, Frame), f"the server closed the connection: {event}"
        return orjson.loads(event.data)  # type: ignore[no-any-return]

    async def close_code(self) -> tuple[int, str]:
        """Wait for the server's close frame; its code and reason."""
        while True:
            event = await self.next_event()
            if isinstance(event, Close):
                return event.code, event.reason


@contextlib.asynccontextmanager
async def raw_client(ws_url: str) -> AsyncIterator[RawClient]:
    """A :class:`RawClient` after a successful opening handshake with *ws_url*."""
    uri = parse_uri(ws_url)
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    client = RawClient(ClientProtocol(uri, max_size=None), reader, writer)
    try:
        client.protocol.send_request(client.protocol.connect())
        await client.flush()
        while True:
            events = client.protocol.events_received()
            if events:
                assert isinstance(events[0], Response) and events[0].status_code == 101, events[0]
                break
            data = await asyncio.wait_for(reader.read(65536), scaled(10))
            assert data, "the server closed the connection during the handshake"
            client.protocol.receive_data(data)
        yield client
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def problems(server: ServerProcess) -> list[str]:
    """The server's log lines that are errors or tracebacks."""
    return [line for line in server.stderr_lines if "ERROR" in line or "Traceback" in line]


def noted(server: ServerProcess) -> list[str]:
    """The server's lines about clients that broke the protocol."""
    return [line for line in server.stderr_lines if LOGGED in line]


async def test_text_that_is_not_utf8_closes_with_1007_and_costs_a_few_rate_limited_lines(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--log-level", "info")
    connections = 60
    started = time.monotonic()
    for n in range(connections):
        async with raw_client(server.ws_url) as client:
            # Half whole frames, half a message whose second fragment holds the bad byte.
            if n % 2:
                await client.send(Opcode.TEXT, b'{"subscribe": ["orders"]}\xff')
            else:
                await client.send(Opcode.TEXT, b'{"subscribe": ', fin=False)
                await client.send(Opcode.CONT, b'["\xc3("]}')
            code, reason = await client.close_code()
            assert code == CloseCode.INVALID_DATA == 1007
            assert reason.startswith("invalid UTF-8 in a text message at byte ")
    elapsed = time.monotonic() - started
    async with raw_client(server.ws_url) as client:  # the server is fine, and UTF-8 split across fragments is too
        await client.send(Opcode.TEXT, b'{"id": 1, "subscribe": ["caf' + b"\xc3", fin=False)
        await client.send(Opcode.CONT, b'\xa9"]}')
        ack = await client.json()
        assert ack["type"] == "error" and ack["code"] == "invalid_channel" and "café" in ack["message"]
    assert server.terminate() == 0  # every line the server wrote is read
    assert problems(server) == []
    lines = noted(server)
    bucket = CLIENT_ERRORS.bucket
    assert 1 <= len(lines) <= bucket.burst + bucket.rate * elapsed + 1 < connections
    assert "WebSocket closed with 1007 (invalid UTF-8 in a text message at byte " in lines[0]


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        # An unmasked frame (RFC 6455 §5.1: a client masks every frame).
        ([b"\x81\x02{}"], 1002),
        # A frame over --max-frame-bytes (64 KiB): its header is enough.
        ([b"\x81\xff" + (128 * 1024).to_bytes(8, "big") + b"\x00\x00\x00\x00"], 1009),
        # An opcode RFC 6455 reserves.
        ([b"\x83\x80\x00\x00\x00\x00"], 1002),
    ],
    ids=["unmasked", "too-big", "reserved-opcode"],
)
async def test_malformed_frames_close_with_their_code_and_one_info_line(
    start_server: Callable[..., ServerProcess], frames: list[bytes], code: int
) -> None:
    server = start_server("--log-level", "info")
    async with raw_client(server.ws_url) as client:
        for data in frames:
            await client.send_raw(data)
        assert (await client.close_code())[0] == code
    assert server.terminate() == 0
    assert problems(server) == []
    [line] = noted(server)
    assert f"WebSocket closed with {code} (" in line


async def test_bad_requests_get_an_answer_and_nothing_in_the_log(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--log-level", "info")
    async with raw_client(server.ws_url) as client:
        for frame, code, request_id in [
            (b"{not json", "invalid_json", None),
            (b'{"id": 1, "shout": ["orders"]}', "unknown_request", 1),
            (b'{"id": 2, "subscribe": ["orders"], "subscribe": ["users"]}', "invalid_json", None),
            (b'{"id": 3, "publish": {"channel": "orders", "event": "bad name"}}', "invalid_event", 3),
            (b'{"id": 4, "publish": {"channel": "orders", "event": "' + b"e" * 129 + b'"}}', "invalid_event", 4),
        ]:
            await client.send(Opcode.TEXT, frame)
            error = await client.json()
            assert (error["type"], error["code"], error["id"]) == ("error", code, request_id), error
        await client.send(Opcode.TEXT, b'{"id": 5, "subscribe": ["orders"]}')
        assert (await client.json())["type"] == "ack"
        await client.send(Opcode.BINARY, b'{"id": 6, "subscribe": ["orders"]}')
        code, reason = await client.close_code()
        assert (code, reason) == (CloseCode.UNSUPPORTED_DATA, "binary frames are not supported: send JSON text frames")
    assert server.terminate() == 0
    assert problems(server) == []
    assert noted(server) == []
