"""A lean protocol v1 subscriber, without I/O: bytes in, counters and bytes out.

A load generator must cost less than the server it measures, so this is not the
full client (:mod:`broadcast_cli.client`): it opens the WebSocket (RFC 6455
§4.1), subscribes to one channel, then only *counts* event frames. Per frame it
reads the header and finds the ``"seq":N`` field with a bytes search, so that
:class:`~.seqs.SeqTracker` can check order and loss; one frame in
``sample_every`` is also searched for the publisher's send time (``"t":NS`` in
the payload) to measure publish→deliver latency. No frame is parsed as JSON,
except the ack and error frames.

:class:`SubscriberConnection` follows the websockets library's Sans-I/O shape:
feed it what the socket received (:meth:`~SubscriberConnection.receive_data`),
send what :meth:`~SubscriberConnection.data_to_send` returns (the handshake, the
subscribe request, pongs, the closing frame).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
from urllib.parse import urlsplit

import orjson

from ..exceptions import ConfigurationError
from .seqs import SeqTracker

__all__ = [
    "SUBSCRIBE_ID",
    "ConnectionState",
    "SubscriberConnection",
    "WebSocketAddress",
    "accept_key",
    "client_frame",
    "parse_ws_url",
    "server_frame",
]

SUBSCRIBE_ID = 1
"""The ``id`` of the subscribe request, echoed by its ack."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_MAX_HEAD = 64 * 1024
"""The most bytes of HTTP response head accepted before giving up."""
_MAX_MESSAGE = 16 * 1024 * 1024
"""The largest server frame (or fragmented message) accepted."""

_SEQ = b'"seq":'
_T = b'"t":'

# Opcodes (RFC 6455 §5.2).
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_FIN_TEXT = 0x80 | _TEXT


class ConnectionState(enum.Enum):
    """Where a :class:`SubscriberConnection` is."""

    HANDSHAKE = "handshake"
    """The opening handshake was sent; waiting for ``101 Switching Protocols``."""
    SUBSCRIBING = "subscribing"
    """The subscribe request was sent; waiting for its ack."""
    STREAMING = "streaming"
    """Subscribed: counting events."""
    CLOSED = "closed"
    """The server closed the connection, or it failed (see :attr:`SubscriberConnection.error`)."""


class WebSocketAddress:
    """Where a WebSocket endpoint is: host, port and path of a ``ws://`` URL."""

    __slots__ = ("host", "path", "port", "url")

    def __init__(self, url: str, host: str, port: int, path: str) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.path = path

    def __repr__(self) -> str:
        return f"WebSocketAddress({self.url!r})"


def parse_ws_url(url: str) -> WebSocketAddress:
    """Split a ``ws://host:port/path`` URL; raise :class:`ConfigurationError` for anything else (no TLS)."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ConfigurationError(f"invalid WebSocket URL {url!r}: the bench speaks ws://HOST[:PORT]/PATH (no TLS)")
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigurationError(f"invalid WebSocket URL {url!r}: bad port") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return WebSocketAddress(url, parts.hostname, port, path)


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value a server answers *key* with (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def _masked(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    if not size:
        return b""
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final client frame: masked, as RFC 6455 §5.3 requires of clients."""
    mask = os.urandom(4) if mask is None else mask
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + mask + _masked(payload, mask)


def server_frame(payload: bytes, opcode: int = _TEXT, *, fin: bool = True) -> bytes:
    """One unmasked frame as a server sends it (for tests and fakes)."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 1 << 16:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def _int_at(data: bytes, start: int, end: int) -> int | None:
    """The unsigned integer written at *start* in ``data[:end]`` (JSON, spaces before it skipped), or None."""
    while start < end and data[start] == 32:
        start += 1
    stop = start
    while stop < end and 48 <= data[stop] <= 57:
        stop += 1
    return int(data[start:stop]) if stop > start else None


class SubscriberConnection:
    """One subscriber's WebSocket connection, as a state machine fed with bytes.

    *channel* is subscribed to once the handshake is done, after an ``auth``
    request with *token* when one is given (the connection token of a server
    that requires one; it never goes in the URL). Latency samples
    (nanoseconds from the publisher's ``"t"`` to *now_ns*) are appended to
    *samples* for one event in *sample_every*: those whose seq is
    *sample_offset* modulo *sample_every*.
    """

    __slots__ = (
        "_buffer",
        "_fragments",
        "_key",
        "_mask",
        "_outgoing",
        "_token",
        "address",
        "bytes",
        "channel",
        "close_code",
        "epoch",
        "error",
        "errors",
        "frames",
        "refused",
        "sample_every",
        "sample_offset",
        "samples",
        "state",
        "tracker",
    )

    def __init__(
        self,
        address: WebSocketAddress,
        channel: str,
        *,
        samples: list[int] | None = None,
        sample_every: int = 16,
        sample_offset: int = 0,
        key: bytes | None = None,
        mask: bytes | None = None,
        token: str | None = None,
    ) -> None:
        if sample_every < 1:
            raise ValueError(f"sample_every must be 1 or more, not {sample_every}")
        self.address = address
        self.channel = channel
        self.samples: list[int] = samples if samples is not None else []
        """Latency samples, in nanoseconds."""
        self.sample_every = sample_every
        self.sample_offset = sample_offset % sample_every
        self.state = ConnectionState.HANDSHAKE
        self.tracker: SeqTracker | None = None
        """The seq check, made when the ack gives the starting position."""
        self.epoch: str | None = None
        """The channel's epoch, from the ack."""
        self.frames = 0
        """Event frames received (duplicates included)."""
        self.bytes = 0
        """Bytes of the event frames received (their payloads, without the frame headers)."""
        self.errors: list[str] = []
        """Error frames from the server, and frames that were not events."""
        self.error: str | None = None
        """Why the connection failed, when it did."""
        self.refused = False
        """Whether the server refused this client (a 4xx handshake, an error answering the subscribe, a close
        code from 4000 to 4999): trying again unchanged would be refused again."""
        self.close_code: int | None = None
        """The code of the server's closing frame, when it sent one."""
        self._key = key if key is not None else base64.b64encode(os.urandom(16))
        self._mask = mask
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        self._token = token
        self._outgoing = [self._handshake_request()]

    # -- output ---------------------------------------------------------------

    def _handshake_request(self) -> bytes:
        address = self.address
        host = f"[{address.host}]" if ":" in address.host else address.host
        if address.port != 80:
            host = f"{host}:{address.port}"
        return (
            f"GET {address.path} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: broadcast.v1\r\n"
            "\r\n"
        ).encode()

    def data_to_send(self) -> bytes:
        """The bytes to write to the socket now (empty when there are none)."""
        if not self._outgoing:
            return b""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def close_frame(self, code: int = 1000) -> bytes:
        """A closing frame to send when the bench is done with the connection."""
        return client_frame(_CLOSE, code.to_bytes(2, "big"), self._mask)

    # -- input ----------------------------------------------------------------

    def receive_data(self, data: bytes, now_ns: int) -> None:
        """Feed bytes read from the socket; *now_ns* is when they arrived (``time.time_ns()``)."""
        if self.state is ConnectionState.STREAMING and self.tracker is not None:
            self._stream(data, now_ns)
        elif self.state is ConnectionState.HANDSHAKE:
            self._handshake(data, now_ns)
        elif self.state is ConnectionState.SUBSCRIBING:
            self._frames(self._buffer + data, now_ns)

    def _fail(self, reason: str, *, refused: bool = False) -> None:
        self.error = reason
        self.refused = refused
        self.state = ConnectionState.CLOSED
        self._buffer = b""

    def _handshake(self, data: bytes, now_ns: int) -> None:
        data = self._buffer + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > _MAX_HEAD:
                self._fail("the server's handshake response is too long")
            else:
                self._buffer = data
            return
        head, rest = data[:end].decode("latin-1"), data[end + 4 :]
        self._buffer = b""
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            refused = len(parts) >= 2 and parts[1].startswith("4")
            self._fail(f"the server refused the WebSocket handshake: {status_line.strip()[:200]}", refused=refused)
            return
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != accept_key(self._key):
            self._fail("the server's handshake has a wrong Sec-WebSocket-Accept")
            return
        if self._token is not None:
            # No id: no ack. A token the server refuses closes the connection before the subscribe's ack.
            self._outgoing.append(client_frame(_TEXT, orjson.dumps({"auth": {"token": self._token}}), self._mask))
        request = orjson.dumps({"subscribe": [self.channel], "id": SUBSCRIBE_ID})
        self._outgoing.append(client_frame(_TEXT, request, self._mask))
        self.state = ConnectionState.SUBSCRIBING
        if rest:
            self._frames(rest, now_ns)

    def _frames(self, data: bytes, now_ns: int) -> None:
        """Read whole frames one at a time until subscribed, then hand the rest to :meth:`_stream`."""
        pos, size = 0, len(data)
        while self.state is ConnectionState.SUBSCRIBING:
            header = self._header(data, pos, size)
            if header is None:
                break
            first, start, end = header
            pos = end
            self._frame(first, data[start:end], now_ns)
        if self.state is ConnectionState.SUBSCRIBING:
            self._buffer = data[pos:]
        elif self.state is ConnectionState.STREAMING:
            self._buffer = b""
            if pos < size:
                self._stream(data[pos:], now_ns)

    def _header(self, data: bytes, pos: int, size: int) -> tuple[int, int, int] | None:
        """The first byte, payload start and end of the frame at *pos*, or None when it is incomplete."""
        if size - pos < 2:
            return None
        length = data[pos + 1]
        if length & 0x80:
            self._fail("the server sent a masked frame (RFC 6455 §5.1)")
            return None
        start = pos + 2
        if length == 126:
            if size - pos < 4:
                return None
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            start = pos + 4
        elif length == 127:
            if size - pos < 10:
                return None
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            start = pos + 10
        if length > _MAX_MESSAGE:
            self._fail(f"the server sent a frame of {length} bytes")
            return None
        end = start + length
        return (data[pos], start, end) if end <= size else None

    def _frame(self, first: int, payload: bytes, now_ns: int) -> None:
        """Handle one whole frame the slow way."""
        opcode = first & 0x0F
        if opcode == _PING:
            self._outgoing.append(client_frame(_PONG, payload, self._mask))
        elif opcode == _PONG:
            pass
        elif opcode == _CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._outgoing.append(client_frame(_CLOSE, payload[:2], self._mask))
            reason = payload[2:].decode("utf-8", "replace")
            self._fail(
                f"the server closed the connection (code {self.close_code}{': ' + reason if reason else ''})",
                refused=4000 <= self.close_code <= 4999,
            )
        elif opcode == _BINARY:
            self._fail("the server sent a binary frame")
        elif opcode in (_TEXT, _CONTINUATION):
            if opcode == _TEXT:
                self._fragments = [payload]
            elif self._fragments is None:
                self._fail("the server sent a continuation frame with no message to continue")
                return
            else:
                self._fragments.append(payload)
            if sum(map(len, self._fragments)) > _MAX_MESSAGE:
                self._fail("the server sent a message larger than 16 MiB")
            elif first & 0x80:
                message = b"".join(self._fragments)
                self._fragments = None
                self._message(message, now_ns)
        else:
            self._fail(f"the server sent a frame with the reserved opcode {opcode}")

    def _message(self, message: bytes, now_ns: int) -> None:
        """One whole text message, read the slow way."""
        if self.state is ConnectionState.SUBSCRIBING:
            self._ack(message)
            return
        seq_at = message.find(_SEQ)
        if seq_at >= 0 and not message.startswith(b'{"type"'):
            seq = _int_at(message, seq_at + 6, len(message))
            if seq is not None and self.tracker is not None:
                self.frames += 1
                self.bytes += len(message)
                self.tracker.observe(seq)
                if seq % self.sample_every == self.sample_offset:
                    self._sample(message, 0, len(message), now_ns)
                return
        self._other(message)

    def _ack(self, message: bytes) -> None:
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._fail(f"the server answered the subscribe with a frame that is not JSON: {message[:200]!r}")
            return
        if not isinstance(data, dict):
            self._fail(f"unexpected answer to the subscribe: {message[:200]!r}")
        elif data.get("type") == "error":
            self._fail(f"the server refused the subscribe ({data.get('code')}): {data.get('message')}", refused=True)
        elif data.get("type") == "ack" and data.get("id") == SUBSCRIBE_ID:
            channels = data.get("channels")
            position = channels.get(self.channel) if isinstance(channels, dict) else None
            seq = position.get("seq") if isinstance(position, dict) else None
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                self._fail(f"the subscribe ack has no position for {self.channel!r}: {message[:200]!r}")
                return
            epoch = position.get("epoch") if isinstance(position, dict) else None
            self.epoch = epoch if isinstance(epoch, str) else None
            self.tracker = SeqTracker(seq)
            self.state = ConnectionState.STREAMING
        else:
            self._fail(f"unexpected answer to the subscribe: {message[:200]!r}")

    def _other(self, message: bytes) -> None:
        """A text frame that is not an event: an error frame, or something the bench does not know."""
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data.get("type") == "error":
            self.errors.append(f"{data.get('code')}: {data.get('message')}")
        else:
            self.errors.append(f"unexpected frame: {message[:200]!r}")

    def _sample(self, data: bytes, start: int, end: int, now_ns: int) -> None:
        at = data.find(_T, start, end)
        if at >= 0:
            sent = _int_at(data, at + 4, end)
            if sent is not None:
                self.samples.append(now_ns - sent)

    def _stream(self, data: bytes, now_ns: int) -> None:
        """The fast path: count whole unfragmented text frames, check each seq, sample a few.

        Anything else (control frames, fragments, 64-bit lengths, frames without
        a seq) is handled by :meth:`_frame`, the slow way, one frame at a time.
        """
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        tracker = self.tracker
        assert tracker is not None
        size = len(data)
        pos = frames = nbytes = 0
        expected = tracker.next
        every, offset = self.sample_every, self.sample_offset
        find = data.find
        while size - pos >= 2:
            length = data[pos + 1]
            if length < 126 or (length == 126 and size - pos >= 4):
                if length < 126:
                    start = pos + 2
                else:
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    start = pos + 4
                end = start + length
                if end > size:
                    break
                if data[pos] == _FIN_TEXT:
                    at = find(_SEQ, start, end)
                    if at >= 0:  # an event (error frames have no seq; the one ack came before)
                        at += 6
                        stop = find(b",", at, end)
                        if stop < 0:
                            stop = find(b"}", at, end)
                        try:
                            seq = int(data[at:stop])
                        except ValueError:  # "seq":null…: the slow way
                            seq = -1
                        if seq >= 0:
                            frames += 1
                            nbytes += length
                            if seq == expected:
                                expected += 1
                            else:
                                tracker.next = expected
                                tracker.observe(seq)
                                expected = tracker.next
                            if seq % every == offset:
                                self._sample(data, start, end, now_ns)
                            pos = end
                            continue
            else:
                header = self._header(data, pos, size)  # a 64-bit length, a masked frame, or incomplete
                if header is None:
                    break
                _, start, end = header
            tracker.next = expected
            self._frame(data[pos], data[start:end], now_ns)
            expected = tracker.next
            pos = end
            if self.state is ConnectionState.CLOSED:
                break
        tracker.next = expected
        self.frames += frames
        self.bytes += nbytes
        if self.state is not ConnectionState.CLOSED:
            self._buffer = data[pos:]
