"""The message model: what a publish carries and what every subscriber receives.

A message is published to a *channel* under an *event* name with a JSON
*payload*. The backend assigns it a position in the channel: ``seq`` counts the
channel's messages from 1, strictly increasing by 1, and ``epoch`` names the
generation of the channel's history. The epoch changes whenever that history is
lost (a fresh in-memory hub, a Redis that lost its data), so a ``(seq, epoch)``
pair names one message for as long as it exists.

This module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .exceptions import InvalidChannel, InvalidEvent

__all__ = [
    "CHANNEL_RULE",
    "MAX_CHANNEL_LENGTH",
    "MAX_EVENT_LENGTH",
    "PATTERN_RULE",
    "Message",
    "Position",
    "PublishRequest",
    "is_pattern",
    "pattern_matcher",
    "validate_channel",
    "validate_event",
    "validate_pattern",
]

MAX_CHANNEL_LENGTH = 128
"""The longest channel name accepted, in characters."""

MAX_EVENT_LENGTH = 128
"""The longest event name accepted, in characters."""

CHANNEL_RULE = "1 to 128 characters, each an ASCII letter, a digit or one of _ - . :"
"""The channel naming rule, as shown in error messages and documentation."""

_CHANNEL_RE = re.compile(rf"[A-Za-z0-9_\-.:]{{1,{MAX_CHANNEL_LENGTH}}}")
_PATTERN_RE = re.compile(rf"[A-Za-z0-9_\-.:*]{{1,{MAX_CHANNEL_LENGTH}}}")

PATTERN_RULE = "a channel name in which * stands for any run of characters (e.g. orders.* or *)"
"""The pattern rule, as shown in error messages and documentation."""


def is_pattern(name: str) -> bool:
    """Whether a subscribe name is a pattern (it contains ``*``) rather than a channel."""
    return "*" in name


def validate_pattern(pattern: object) -> str:
    """Return *pattern* if it is a valid channel pattern, else raise :class:`InvalidChannel`."""
    if not isinstance(pattern, str) or _PATTERN_RE.fullmatch(pattern) is None:
        shown = pattern if not isinstance(pattern, str) or len(pattern) <= 40 else pattern[:40] + "…"
        raise InvalidChannel(f"invalid pattern {shown!r}: a pattern is {PATTERN_RULE}, 1 to 128 characters")
    return pattern


def pattern_matcher(pattern: str) -> re.Pattern[str]:
    """Compile *pattern* (``*`` matches any run of characters) into a regular expression."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def validate_channel(channel: object) -> str:
    """Return *channel* if it is a valid channel name, else raise :class:`InvalidChannel`.

    The rule (:data:`CHANNEL_RULE`) keeps names safe to embed in Redis keys, URLs
    and log lines without escaping.
    """
    if not isinstance(channel, str):
        raise InvalidChannel(f"a channel name must be a string, not {type(channel).__name__}")
    if _CHANNEL_RE.fullmatch(channel) is None:
        shown = channel if len(channel) <= 40 else channel[:40] + "…"
        raise InvalidChannel(f"invalid channel name {shown!r}: a channel name is {CHANNEL_RULE}")
    return channel


def validate_event(event: object) -> str:
    """Return *event* if it is a valid event name, else raise :class:`InvalidEvent`."""
    if not isinstance(event, str):
        raise InvalidEvent(f"an event name must be a string, not {type(event).__name__}")
    if not 1 <= len(event) <= MAX_EVENT_LENGTH:
        raise InvalidEvent(f"an event name must have 1 to {MAX_EVENT_LENGTH} characters, not {len(event)}")
    return event


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One message to publish, before the backend assigns it a position.

    :attr:`origin` is the publisher's client id, echoed to subscribers so that a
    client can ignore its own changes; :attr:`id` is a unique message id chosen by
    the publisher (one is generated when it is ``None``).
    """

    channel: str
    event: str
    payload: Any = None
    origin: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a channel stands: its last ``seq`` in history generation ``epoch``.

    ``seq`` is 0 for a channel that has no message yet in this epoch.
    """

    seq: int
    epoch: str


@dataclass(slots=True, eq=False)
class Message:
    """A published message with its server-assigned position.

    :attr:`frame` is the message encoded once as a protocol v1 event frame (UTF-8
    JSON); every subscriber receives these same bytes, so fan-out never encodes
    per subscriber. :attr:`ts` is the server time of the publish in milliseconds
    since the Unix epoch.
    """

    channel: str
    event: str
    payload: Any
    seq: int
    epoch: str
    id: str
    ts: int
    origin: str | None = None
    frame: bytes = field(default=b"", repr=False)
    _text: str | None = field(default=None, repr=False)
    websocket_frame: bytes | None = field(default=None, repr=False)
    """:attr:`frame` as a server's WebSocket text frame, cached by the first server that framed it
    (:func:`broadcast_cli.server.framing.event_frame`): one framing per message, not per subscriber."""

    @property
    def position(self) -> Position:
        """The message's position in its channel."""
        return Position(self.seq, self.epoch)

    def text(self) -> str:
        """Return :attr:`frame` decoded as ``str``, decoding at most once per message.

        ASGI servers take text frames as ``str``; caching the decoded frame keeps
        fan-out free of per-subscriber work.
        """
        text = self._text
        if text is None:
            text = self._text = self.frame.decode()
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the message as the JSON object that its frame encodes."""
        data: dict[str, Any] = {
            "channel": self.channel,
            "event": self.event,
            "payload": self.payload,
            "seq": self.seq,
            "epoch": self.epoch,
            "id": self.id,
            "ts": self.ts,
        }
        if self.origin is not None:
            data["origin"] = self.origin
        return data
