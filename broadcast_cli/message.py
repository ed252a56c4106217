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
    "EVENT_RULE",
    "MAX_CHANNEL_LENGTH",
    "MAX_EVENT_LENGTH",
    "NAME_PUNCTUATION",
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

NAME_PUNCTUATION = "_-.:"
"""The characters that channel and event names may hold besides ASCII letters and digits."""

_CHARACTERS_RULE = f"each an ASCII letter, a digit or one of {' '.join(NAME_PUNCTUATION)}"

CHANNEL_RULE = f"1 to {MAX_CHANNEL_LENGTH} characters, {_CHARACTERS_RULE}"
"""The channel naming rule, as shown in error messages and documentation."""

EVENT_RULE = f"1 to {MAX_EVENT_LENGTH} characters, {_CHARACTERS_RULE}"
"""The event naming rule: the channel naming rule, so that one rule holds for every name a message carries.

Names are safe to embed in Redis keys, URLs, log lines and terminals without
escaping, and hold no ``*``, which stands for "any run of characters" in
channel patterns and in the browser client's event matchers (``order.*``)."""

_NAME_CHARACTERS = "A-Za-z0-9" + re.escape(NAME_PUNCTUATION)
_CHANNEL_RE = re.compile(rf"[{_NAME_CHARACTERS}]{{1,{MAX_CHANNEL_LENGTH}}}")
_EVENT_RE = re.compile(rf"[{_NAME_CHARACTERS}]{{1,{MAX_EVENT_LENGTH}}}")
_PATTERN_RE = re.compile(rf"[{_NAME_CHARACTERS}*]{{1,{MAX_CHANNEL_LENGTH}}}")

PATTERN_RULE = "a channel name in which * stands for any run of characters (e.g. orders.* or *)"
"""The pattern rule, as shown in error messages and documentation."""


def is_pattern(name: str) -> bool:
    """Whether a subscribe name is a pattern (it contains ``*``) rather than a channel."""
    return "*" in name


def _shown(name: str) -> str:
    """*name* as an error message shows it: quoted, cut at 40 characters, with its length when it is longer."""
    if len(name) <= 40:
        return repr(name)
    return f"{name[:40] + '…'!r} ({len(name)} characters)"


def validate_pattern(pattern: object) -> str:
    """Return *pattern* if it is a valid channel pattern, else raise :class:`InvalidChannel`."""
    if not isinstance(pattern, str) or _PATTERN_RE.fullmatch(pattern) is None:
        shown = _shown(pattern) if isinstance(pattern, str) else repr(pattern)
        raise InvalidChannel(
            f"invalid pattern {shown}: a pattern is {PATTERN_RULE}, 1 to {MAX_CHANNEL_LENGTH} characters"
        )
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
        raise InvalidChannel(f"invalid channel name {_shown(channel)}: a channel name is {CHANNEL_RULE}")
    return channel


def validate_event(event: object) -> str:
    """Return *event* if it is a valid event name, else raise :class:`InvalidEvent`.

    The rule (:data:`EVENT_RULE`) is the channel naming rule.
    """
    if not isinstance(event, str):
        raise InvalidEvent(f"an event name must be a string, not {type(event).__name__}")
    if _EVENT_RE.fullmatch(event) is None:
        raise InvalidEvent(f"invalid event name {_shown(event)}: an event name is {EVENT_RULE}")
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
