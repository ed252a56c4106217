"""Wire protocol v1: parse client requests and build server frames, without I/O.

Every frame is a JSON text frame on the WebSocket endpoint ``/ws/broadcast``.
Clients send requests::

    {"subscribe": ["orders", {"channel": "users", "since": 41, "epoch": "e1"}], "id": 1}
    {"unsubscribe": ["orders"], "id": 2}
    {"auth": {"token": "eyJ…"}, "id": 3}
    {"publish": {"channel": "chat", "event": "said", "payload": {...}}, "id": 4}

The server sends events (one per published message), and, for requests that
carry an ``id``, an ack or an error::

    {"channel": "orders", "event": "created", "payload": {...}, "seq": 42,
     "epoch": "e1", "id": "…", "ts": 1764000000000, "origin": "tab-1"}
    {"type": "ack", "id": 1, "channels": {"orders": {"seq": 42, "epoch": "e1"}}}
    {"type": "error", "id": 1, "code": "invalid_channel", "message": "…"}

``docs/protocol.md`` is the full specification; this module is its reference
implementation.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .exceptions import InvalidChannel, InvalidPayload, InvalidRequest, ProtocolError
from .message import (
    Message,
    Position,
    PublishRequest,
    is_pattern,
    validate_channel,
    validate_event,
    validate_pattern,
)

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_EPOCH_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_LAST",
    "MAX_TOKEN_LENGTH",
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "Auth",
    "CloseCode",
    "Publish",
    "Request",
    "Subscribe",
    "SubscribeItem",
    "SubscribeResult",
    "Unsubscribe",
    "decode_event",
    "encode_ack",
    "encode_error",
    "encode_event",
    "encode_payload",
    "encode_publish_ack",
    "new_message_id",
    "parse_json",
    "parse_publish",
    "parse_request",
    "should_reconnect",
]

PROTOCOL_VERSION = 1
"""The version of the wire protocol that this module implements."""

SUBPROTOCOL = "broadcast.v1"
"""The WebSocket subprotocol name of protocol v1. Clients may offer it; the server
selects it when offered, and speaks v1 to clients that offer none."""

MAX_ID_LENGTH = 128
"""The longest request id (when a string) and message id accepted."""

MAX_EPOCH_LENGTH = 64
"""The longest epoch accepted in a subscribe request."""

MAX_LAST = 10_000
"""The most messages a subscribe item may ask to replay with ``last``."""

MAX_TOKEN_LENGTH = 8192
"""The longest connection token accepted."""

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
"""The default bound on a payload's size, encoded as JSON."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes used by the server.

    Codes 4000–4499 ask the client to reconnect (and recover); codes 4500–4999
    tell it not to reconnect without a change on its side. Standard codes keep
    their RFC 6455 meaning.
    """

    NORMAL = 1000
    """The connection is closed on purpose; nothing went wrong."""
    GOING_AWAY = 1001
    """The server is going away; reconnect."""
    UNSUPPORTED_DATA = 1003
    """A binary frame was received; protocol v1 is text only. Do not reconnect blindly."""
    INVALID_DATA = 1007
    """A text message was not UTF-8 (RFC 6455 §8.1). Do not reconnect blindly."""
    MESSAGE_TOO_BIG = 1009
    """A frame exceeded the server's frame size limit."""
    INTERNAL_ERROR = 1011
    """The server hit an unexpected error; reconnect."""
    SERVICE_RESTART = 1012
    """The server is shutting down or restarting; reconnect (elsewhere) and recover."""
    TRY_AGAIN_LATER = 1013
    """The server is overloaded; reconnect later."""
    TOKEN_EXPIRED = 4001
    """The connection token expired: reconnect with a fresh token, and recover."""
    SLOW_CONSUMER = 4008
    """The client did not read fast enough and its send buffer overflowed; reconnect and recover."""
    BAD_REQUEST = 4500
    """The client sent a request that cannot be answered with an error frame."""
    UNAUTHORIZED = 4501
    """The connection token is missing where required, malformed, forged or wrongly signed."""
    FORBIDDEN_ORIGIN = 4503
    """The handshake's Origin is not in the server's allowlist."""


def should_reconnect(code: int) -> bool:
    """Say whether a client should reconnect after the connection closed with *code*.

    Codes that blame the client (1002 protocol error, 1003 unsupported data, 1007
    invalid data, 1008 policy violation, 1009 too big, 1010 missing extension) and
    the terminal range 4500–4999 mean that reconnecting unchanged would fail
    again. Everything else (1001 going away, 1006 dropped connection, 1011, 1012,
    1013, 4000–4499, and a 1000 the client did not ask for) is worth a retry.
    """
    if code in (1002, 1003, 1007, 1008, 1009, 1010):
        return False
    return not 4500 <= code < 5000


@dataclass(frozen=True, slots=True)
class SubscribeItem:
    """One channel (or pattern) of a subscribe request, with what to replay first.

    When :attr:`since` is set the server sends every message after that ``seq``
    that is still in history before the live ones; :attr:`epoch` (optional) must
    then match the channel's epoch, else nothing is recovered. When :attr:`last`
    is set it sends the last that many messages still in history. A
    :attr:`channel` containing ``*`` is a pattern: live messages only.
    """

    channel: str
    since: int | None = None
    epoch: str | None = None
    last: int | None = None

    @property
    def pattern(self) -> bool:
        """Whether this item is a pattern subscription."""
        return is_pattern(self.channel)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A ``subscribe`` request."""

    items: tuple[SubscribeItem, ...]
    id: str | int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """An ``unsubscribe`` request."""

    channels: tuple[str, ...]
    id: str | int | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    """An ``auth`` request: the connection token, when it did not come with the handshake (``?token=``)."""

    token: str
    id: str | int | None = None

    def __repr__(self) -> str:  # never show the token
        return f"Auth(token=<{len(self.token)} characters>, id={self.id!r})"


@dataclass(frozen=True, slots=True)
class Publish:
    """A ``publish`` request over the WebSocket (only for connections whose token grants it)."""

    request: PublishRequest
    id: str | int | None = None


Request = Subscribe | Unsubscribe | Auth | Publish
"""A parsed client request."""


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """The outcome of subscribing one channel, as reported in the ack.

    :attr:`recovered` is ``None`` when the client asked for no recovery, ``True``
    when every message after ``since`` follows, ``False`` when they could not be
    recovered (left history, or the epoch changed) and the client should refetch.
    """

    position: Position
    recovered: bool | None = None
    pattern: bool = False
    """A pattern subscription: no position, live messages only."""


_VERBS = ("subscribe", "unsubscribe", "auth", "publish")


def _request_id(data: Mapping[str, Any]) -> str | int | None:
    rid = data.get("id")
    if rid is None:
        return None
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise ProtocolError("the request id must be a string or an integer", code="invalid_request")
    if isinstance(rid, str) and len(rid) > MAX_ID_LENGTH:
        raise ProtocolError(f"the request id must have at most {MAX_ID_LENGTH} characters")
    return rid


def _channel(value: object, request_id: str | int | None) -> str:
    """A channel name or a pattern, validated."""
    try:
        if isinstance(value, str) and is_pattern(value):
            return validate_pattern(value)
        return validate_channel(value)
    except InvalidChannel as exc:
        exc.request_id = request_id
        raise


def _subscribe_item(value: object, request_id: str | int | None) -> SubscribeItem:
    if isinstance(value, str):
        return SubscribeItem(_channel(value, request_id))
    if not isinstance(value, dict):
        raise ProtocolError(
            "each subscribe item must be a channel name or an object "
            '{"channel": ..., "since": ..., "epoch": ...} or {"channel": ..., "last": ...}',
            request_id=request_id,
        )
    unknown = value.keys() - {"channel", "since", "epoch", "last"}
    if unknown:
        raise ProtocolError(
            f"unknown subscribe item field(s) {sorted(unknown)}: allowed are channel, since, epoch, last",
            request_id=request_id,
        )
    if "channel" not in value:
        raise ProtocolError("a subscribe item object needs a \"channel\"", request_id=request_id)
    channel = _channel(value["channel"], request_id)
    last = value.get("last")
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or not 0 < last <= MAX_LAST):
        raise ProtocolError(f'"last" must be an integer from 1 to {MAX_LAST}, not {last!r}', request_id=request_id)
    if is_pattern(channel) and (value.keys() & {"since", "epoch", "last"}):
        raise ProtocolError(
            f"{channel!r} is a pattern: patterns get live messages only (no since, epoch or last)",
            request_id=request_id,
        )
    if last is not None and "since" in value:
        raise ProtocolError('"since" and "last" exclude each other', request_id=request_id)
    since = value.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise ProtocolError(
            f'"since" must be a non-negative integer (a seq), not {since!r}', request_id=request_id
        )
    epoch = value.get("epoch")
    if epoch is not None and (not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH):
        raise ProtocolError(
            f'"epoch" must be a string of 1 to {MAX_EPOCH_LENGTH} characters', request_id=request_id
        )
    if epoch is not None and since is None:
        raise ProtocolError('"epoch" is only meaningful with "since"', request_id=request_id)
    return SubscribeItem(channel, since, epoch, last)


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key if len(key) <= 40 else key[:40] + "…"


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return data


def parse_json(text: str | bytes, *, what: str = "the frame") -> Any:
    """Parse *text* as JSON (RFC 8259, by orjson), refusing an object that repeats a key.

    RFC 8259 leaves a repeated key to each parser: most keep the last value, some
    the first, some refuse. A proxy that reads ``{"channel": "a", "channel": "b"}``
    as channel ``a`` while the server reads ``b`` is a hole, so the server refuses
    such a text, wherever the object is (the payload included). Raises
    :class:`~broadcast_cli.exceptions.ProtocolError` with the code ``invalid_json``;
    *what* names the text in its message (``"the frame"``, ``"the body"``).

    orjson keeps the last value silently, so the check comes after it, by
    counting: each pair of an object has one ``:`` outside strings, and a
    repeated pair leaves one key fewer (and maybe strings fewer) in what was
    parsed. The text encoded again (compact, by orjson) has one ``:`` per key
    parsed plus those of the strings parsed: a text with as many repeats no key,
    unless a ``\\u003a`` escape made a ``:`` that the text does not show. Then,
    or when the numbers differ, the standard library's parser looks at each
    object's pairs. docs/protocol.md gives what each costs.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{what} is not valid JSON: {exc}", code="invalid_json") from None
    if isinstance(text, str):
        colons, escaped = text.count(":"), "\\u003a" in text or "\\u003A" in text
    else:
        colons, escaped = text.count(b":"), b"\\u003a" in text or b"\\u003A" in text
    if not colons:
        return value
    try:
        encoded = orjson.dumps(value).count(b":")
    except orjson.JSONEncodeError:  # nested deeper than orjson encodes (254 levels)
        encoded = -1
    if escaped or colons != encoded:
        try:
            json.loads(text, object_pairs_hook=_unique_pairs)
        except _RepeatedKey as exc:
            raise ProtocolError(
                f"{what} repeats the key {exc.key!r} in one object: a JSON object must not repeat a key",
                code="invalid_json",
            ) from None
        except RecursionError:
            raise ProtocolError(
                f"{what} nests objects and lists too deeply to be checked for repeated keys", code="invalid_json"
            ) from None
    return value


def parse_request(frame: str | bytes, *, max_channels: int = 1024) -> Request:
    """Parse one client frame into a :data:`Request`.

    Raises :class:`~broadcast_cli.exceptions.ProtocolError` (or its sibling
    :class:`~broadcast_cli.exceptions.InvalidChannel`) with the request's ``id``
    when it can be read, so that the error frame can name the failed request.
    A request naming more than *max_channels* channels is refused.
    """
    data = parse_json(frame, what="the frame")
    if not isinstance(data, dict):
        raise ProtocolError(f"a request must be a JSON object, not {type(data).__name__}")
    request_id = _request_id(data)
    verbs = [verb for verb in _VERBS if verb in data]
    if not verbs:
        keys = ", ".join(sorted(k for k in data if k != "id")) or "none"
        raise ProtocolError(
            f"unknown request (keys: {keys}): a request has one of {', '.join(_VERBS)}",
            code="unknown_request",
            request_id=request_id,
        )
    if len(verbs) > 1:
        raise ProtocolError(f"a request must have exactly one of {', '.join(_VERBS)}", request_id=request_id)
    verb = verbs[0]
    if verb == "auth":
        return _auth(data["auth"], request_id)
    if verb == "publish":
        try:
            return Publish(parse_publish(data["publish"]), request_id)
        except InvalidRequest as exc:
            exc.request_id = request_id
            raise
    items = data[verb]
    if not isinstance(items, list):
        raise ProtocolError(f'"{verb}" must be a list of channels', request_id=request_id)
    if len(items) > max_channels:
        raise ProtocolError(
            f"a request may name at most {max_channels} channels, not {len(items)}",
            code="too_many_channels",
            request_id=request_id,
        )
    if verb == "subscribe":
        parsed: dict[str, SubscribeItem] = {}
        for value in items:
            item = _subscribe_item(value, request_id)
            parsed.setdefault(item.channel, item)
        return Subscribe(tuple(parsed.values()), request_id)
    channels = dict.fromkeys(_channel(value, request_id) for value in items)
    return Unsubscribe(tuple(channels), request_id)


def _auth(value: object, request_id: str | int | None) -> Auth:
    if not isinstance(value, dict) or set(value) != {"token"}:
        raise ProtocolError('"auth" must be an object {"token": "…"}', request_id=request_id)
    token = value["token"]
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise ProtocolError(f'"token" must be a string of 1 to {MAX_TOKEN_LENGTH} characters', request_id=request_id)
    return Auth(token, request_id)


def parse_publish(data: object) -> PublishRequest:
    """Validate one publish object ``{"channel", "event", "payload", "origin"?, "id"?}``.

    Used by the HTTP API for each item of a publish body.
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"a publish item must be a JSON object, not {type(data).__name__}")
    unknown = data.keys() - {"channel", "event", "payload", "origin", "id"}
    if unknown:
        raise ProtocolError(
            f"unknown field(s) {sorted(unknown)}: a publish item has channel, event, payload, origin, id"
        )
    for name in ("channel", "event"):
        if name not in data:
            raise ProtocolError(f'a publish item needs "{name}"')
    channel = validate_channel(data["channel"])
    event = validate_event(data["event"])
    origin = data.get("origin")
    if origin is not None and (not isinstance(origin, str) or not 0 < len(origin) <= MAX_ID_LENGTH):
        raise ProtocolError(f'"origin" must be a string of 1 to {MAX_ID_LENGTH} characters')
    message_id = data.get("id")
    if message_id is not None and (not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID_LENGTH):
        raise ProtocolError(f'"id" must be a string of 1 to {MAX_ID_LENGTH} characters')
    return PublishRequest(channel, event, data.get("payload"), origin, message_id)


def new_message_id() -> str:
    """Return a new random message id (24 hex digits)."""
    return os.urandom(12).hex()


def encode_payload(payload: Any, *, max_bytes: int | None = None) -> bytes:
    """Encode *payload* as JSON, raising :class:`InvalidPayload` if it cannot be.

    *max_bytes* bounds the encoded size.
    """
    try:
        data = orjson.dumps(payload)
    except TypeError as exc:
        raise InvalidPayload(f"the payload is not JSON-serializable: {exc}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidPayload(
            f"the payload is {len(data)} bytes as JSON; the limit is {max_bytes}", code="payload_too_large"
        )
    return data


def encode_event(message: Message, payload_json: bytes | None = None) -> bytes:
    """Encode *message* as an event frame: the bytes every subscriber receives.

    *payload_json*, when given, is the payload already encoded as JSON; it is
    embedded as is rather than encoded a second time.
    """
    data = message.to_dict()
    if payload_json is not None:
        data["payload"] = orjson.Fragment(payload_json)
    try:
        return orjson.dumps(data)
    except TypeError as exc:
        raise InvalidPayload(f"the payload is not JSON-serializable: {exc}") from None


def decode_event(frame: bytes | str) -> Message:
    """Parse an event frame back into a :class:`~broadcast_cli.message.Message`.

    The frame is kept as :attr:`Message.frame` so it can be forwarded unchanged.
    Raises :class:`ProtocolError` when *frame* is not an event frame.
    """
    raw = frame.encode() if isinstance(frame, str) else frame
    try:
        data = orjson.loads(raw)
        seq, epoch = data["seq"], data["epoch"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(epoch, str):
            raise TypeError("seq must be an integer and epoch a string")
        return Message(
            channel=data["channel"],
            event=data["event"],
            payload=data.get("payload"),
            seq=data["seq"],
            epoch=data["epoch"],
            id=data["id"],
            ts=data["ts"],
            origin=data.get("origin"),
            frame=raw,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProtocolError(f"not an event frame: {exc}") from None


def encode_ack(request_id: str | int | None, results: Mapping[str, SubscribeResult] | None = None) -> bytes:
    """Encode the ack of request *request_id*; *results* are per-channel subscribe outcomes."""
    data: dict[str, Any] = {"type": "ack", "id": request_id}
    if results is not None:
        channels: dict[str, Any] = {}
        for channel, result in results.items():
            if result.pattern:
                channels[channel] = {"pattern": True}
                continue
            entry: dict[str, Any] = {"seq": result.position.seq, "epoch": result.position.epoch}
            if result.recovered is not None:
                entry["recovered"] = result.recovered
            channels[channel] = entry
        data["channels"] = channels
    return orjson.dumps(data)


def encode_publish_ack(request_id: str | int, message: Message) -> bytes:
    """The ack of a ``publish`` request: the message's position, as ``POST /publish`` answers."""
    receipt = {
        "channel": message.channel,
        "seq": message.seq,
        "epoch": message.epoch,
        "id": message.id,
        "ts": message.ts,
    }
    return orjson.dumps({"type": "ack", "id": request_id, "publish": receipt})


def encode_error(code: str, message: str, request_id: object = None) -> bytes:
    """Encode an error frame (also the body of HTTP errors)."""
    return orjson.dumps({"type": "error", "id": request_id, "code": code, "message": message})
