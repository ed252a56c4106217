"""Server settings: where to listen, which backend, and the limits that keep it up."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth import ApiKeys, Grant, OriginPolicy, TokenVerifier
from ..history import HistoryOptions
from ..protocol import DEFAULT_MAX_PAYLOAD_BYTES

__all__ = ["Limits", "Security", "ServerConfig"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may cost the server.

    A client whose unsent frames exceed :attr:`send_buffer_messages` or
    :attr:`send_buffer_bytes` is a slow consumer: its connection is closed with
    code 4008 and it recovers from history when it reconnects. Times the
    connections, the send buffer bounds are what stalled clients may cost the
    server's memory (docs/guarantees.md gives the worst case, kernel buffers
    included).
    """

    max_frame_bytes: int = 64 * 1024
    """The largest WebSocket frame accepted from a client."""
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    """The largest payload accepted in a publish, as JSON."""
    max_subscriptions: int = 1024
    """The most channels (patterns included) one connection may subscribe to."""
    max_patterns: int = 32
    """The most patterns (``orders.*``) one connection may subscribe to."""
    send_buffer_messages: int = 2_000
    """The most frames queued for one connection before it is closed as a slow consumer.

    Twice :attr:`max_publish_batch`: a batch reaches every subscriber's queue at
    once, and must fit in the queue of a client that keeps up. With
    notifications of a few hundred bytes, this bound is reached before
    :attr:`send_buffer_bytes`."""
    send_buffer_bytes: int = 1024 * 1024
    """The most bytes (of JSON) queued for one connection before it is closed as a slow consumer.

    1 MiB, as Centrifugo's client queue: 10,000 stalled clients queue at most
    10 GiB of JSON, rather than 160 GiB with the former 16 MiB. What that costs
    in memory (messages shared or not, the kernel's buffers) is measured in
    docs/guarantees.md."""
    max_replay_bytes: int = 64 * 1024 * 1024
    """The most bytes a connection may have queued while a subscribe replays history.

    Recovered messages may exceed the send buffer bounds (a client that was away
    comes back to a backlog), up to this bound; past it the connection is closed as
    a slow consumer."""
    max_publish_body_bytes: int = 4 * 1024 * 1024
    """The largest HTTP publish body accepted."""
    max_publish_batch: int = 1000
    """The most messages in one HTTP publish batch."""
    max_connections: int = 50_000
    """The most WebSocket connections this server process holds; more are refused (1013, try again later)."""
    requests_per_second: float = 50.0
    """The average rate of requests (subscribe, unsubscribe, publish) one connection may send."""
    request_burst: int = 200
    """How many requests one connection may send at once before the rate applies."""


@dataclass(frozen=True, slots=True)
class Security:
    """Who may publish and read what (see docs/security.md).

    With no :attr:`tokens` and no :attr:`public` channels, anyone may read any
    channel; with no :attr:`api_keys`, anyone who reaches the port may publish.
    The server says so when it starts.
    """

    api_keys: ApiKeys = field(default_factory=ApiKeys)
    """Keys accepted by ``POST /publish`` (``Authorization: Bearer <key>``); none: publishing is open."""
    tokens: TokenVerifier | None = None
    """Checks connection tokens; ``None``: connections carry no token."""
    public: Grant = field(default_factory=Grant)
    """Channels (and patterns) anyone may read without a token."""
    origins: OriginPolicy = field(default_factory=OriginPolicy)
    """The Origin allowlist of WebSocket handshakes; empty: any origin."""
    cors_origins: tuple[str, ...] = ()
    """Origins whose pages may call the HTTP API (CORS); empty: none."""

    @property
    def reading_is_open(self) -> bool:
        """Whether every channel can be read without a token."""
        return self.tokens is None and not self.public

    @property
    def publishing_is_open(self) -> bool:
        """Whether ``POST /publish`` needs no API key."""
        return not self.api_keys


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
    security: Security = field(default_factory=Security)
    log_level: str = "info"
    shutdown_timeout: float = 10.0
    ssl_certfile: str | None = None
    """A PEM certificate (chain): serve HTTPS and WSS instead of HTTP and WS."""
    ssl_keyfile: str | None = None
    """The certificate's PEM private key."""
    """On SIGTERM, how long to wait for publishes in flight, then for clients to take their last frames."""
    demo: bool = False
    """Also serve the optimistic-sync demo at ``/demo`` (see :mod:`broadcast_cli.demo`)."""
    demo_db: str | None = None
    """The demo's SQLite file (``None``: in memory); instances and workers showing one list share one file."""
