"""Server settings: where to listen, which backend, and the limits that keep it up."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..history import HistoryOptions
from ..hub import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["Limits", "ServerConfig"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may cost the server.

    A client whose unsent frames exceed :attr:`send_buffer_messages` or
    :attr:`send_buffer_bytes` is a slow consumer: its connection is closed with
    code 4008 and it recovers from history when it reconnects.
    """

    max_frame_bytes: int = 64 * 1024
    """The largest WebSocket frame accepted from a client."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    """The largest payload accepted in a publish, as JSON."""
    max_subscriptions: int = 1024
    """The most channels (patterns included) one connection may subscribe to."""
    max_patterns: int = 32
    """The most patterns (``orders.*``) one connection may subscribe to."""
    send_buffer_messages: int = 10_000
    """The most frames queued for one connection before it is closed as a slow consumer."""
    send_buffer_bytes: int = 16 * 1024 * 1024
    """The most bytes queued for one connection before it is closed as a slow consumer."""
    max_replay_bytes: int = 64 * 1024 * 1024
    """The most bytes a connection may have queued while a subscribe replays history.

    Recovered messages may exceed the send buffer bounds (a client that was away
    comes back to a backlog), up to this bound; past it the connection is closed as
    a slow consumer."""
    max_publish_body_bytes: int = 4 * 1024 * 1024
    """The largest HTTP publish body accepted."""
    max_publish_batch: int = 1000
    """The most messages in one HTTP publish batch."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``broadcast serve`` needs to run a server."""

    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    """The backend: ``None`` for in-memory, else a ``redis://`` URL."""
    prefix: str = "broadcast"
    """The prefix of every Redis key and pub/sub channel."""
    history: HistoryOptions = field(default_factory=HistoryOptions)
    limits: Limits = field(default_factory=Limits)
    log_level: str = "info"
