"""What one bench run does: :class:`BenchConfig`, checked when it is made.

N subscribers spread over C channels (subscriber *i* on channel ``i mod C``),
P publishers sharing the messages, a count and/or a duration, a target rate or
none (as fast as possible). Every load loop is bounded twice: by a count and by
time (:attr:`BenchConfig.timeout` bounds the whole run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError, InvalidChannel
from ..message import validate_channel
from .frames import parse_ws_url
from .publisher import MIN_PAYLOAD_SIZE

__all__ = ["DEFAULT_URL", "MAX_MESSAGES", "MAX_PAYLOAD_SIZE", "BenchConfig", "EmbeddedServer", "http_url_for"]

DEFAULT_URL = "ws://127.0.0.1:8000/ws/broadcast"
"""Where ``broadcast serve`` serves WebSocket by default."""

MAX_MESSAGES = 100_000_000
"""The most messages one run publishes (a bound for runs given only a duration)."""

MAX_PAYLOAD_SIZE = 64 * 1024
"""The largest payload (the server's default limit)."""

MAX_PUBLISH_BATCH = 1000
"""The most messages in one ``POST /publish`` (the server's limit)."""


def http_url_for(ws_url: str) -> str:
    """The HTTP base URL of the server serving *ws_url* (``ws://h:p/ws/broadcast`` → ``http://h:p``)."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigurationError(f"invalid WebSocket URL {ws_url!r}: it must start with ws://")
    return f"{scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """Servers the bench starts itself (``broadcast bench --embedded``) instead of connecting to one."""

    redis_url: str | None = None
    """Their backend: ``None`` for in-memory, else a ``redis://`` URL they share."""
    servers: int = 1
    """How many server processes; subscribers are spread over them, so more than one needs Redis."""
    cpus: frozenset[int] = frozenset()
    """The cores the servers are pinned to (empty: not pinned)."""

    def __post_init__(self) -> None:
        if self.servers < 1:
            raise ConfigurationError(f"the number of servers must be at least 1, not {self.servers}")
        if self.servers > 1 and self.redis_url is None:
            raise ConfigurationError(
                f"{self.servers} servers need a Redis URL: separate in-memory servers share no messages"
            )
        schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
        if self.redis_url is not None and not self.redis_url.startswith(schemes):
            raise ConfigurationError(
                f"invalid Redis URL {self.redis_url!r}: it must start with redis://, redis+sentinel:// or redis+cluster://"
            )


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """One run of ``broadcast bench``."""

    urls: tuple[str, ...] = (DEFAULT_URL,)
    """The servers' WebSocket endpoints; subscribers are spread over them in turn."""
    publish_url: str | None = None
    """The HTTP base URL publishers post to (default: the server of the first of :attr:`urls`)."""
    api_key: str | None = field(default=None, repr=False)
    """The API key publishers send (``Authorization: Bearer``), for a server that requires one."""
    token: str | None = field(default=None, repr=False)
    """The connection token subscribers send (an ``auth`` request), for a server whose channels need one."""
    embedded: EmbeddedServer | None = None
    """Start servers instead of connecting to :attr:`urls`."""
    subscribers: int = 100
    """How many subscriber connections."""
    channels: int = 1
    """How many channels the subscribers are spread over."""
    channel_prefix: str = "bench"
    """The channel name (with one channel), or the prefix of ``PREFIX.0``, ``PREFIX.1``…"""
    publishers: int = 1
    """How many publishers (concurrent HTTP connections), sharing the messages and the rate."""
    messages: int | None = 10_000
    """How many messages to publish in all; ``None``: as many as :attr:`duration` allows."""
    rate: float | None = None
    """The target publish rate in messages per second, in all; ``None``: as fast as possible."""
    duration: float | None = None
    """Stop publishing after this many seconds (``None``: when :attr:`messages` are published)."""
    payload_size: int = 100
    """Bytes of each payload, as JSON."""
    batch: int = 100
    """The most messages per publish request."""
    procs: int = 1
    """Processes the subscribers are spread over (more when one core cannot count fast enough)."""
    sample_every: int = 16
    """Measure the latency of one event in this many (per subscriber); the others are only counted."""
    connect_concurrency: int = 100
    """How many connections are being opened at once."""
    connect_timeout: float = 10.0
    """Seconds each subscriber may take to connect and be subscribed."""
    idle_timeout: float = 5.0
    """After publishing, give up waiting for deliveries when none has arrived for this many seconds."""
    timeout: float = 300.0
    """Seconds the whole run may take; what is undelivered then is lost."""
    server_pids: tuple[int, ...] = ()
    """Processes whose CPU and memory to report (the server's; those of embedded servers are added)."""
    cpus: frozenset[int] = frozenset()
    """The cores the bench's own processes are pinned to (empty: not pinned)."""

    def __post_init__(self) -> None:
        if not self.urls:
            raise ConfigurationError("give at least one server URL")
        for url in self.urls:
            parse_ws_url(url)
        if self.publish_url is not None and not self.publish_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"invalid publish URL {self.publish_url!r}: it must start with http://")
        _at_least("subscribers", self.subscribers, 1)
        _at_least("channels", self.channels, 1)
        _at_least("publishers", self.publishers, 1)
        _at_least("procs", self.procs, 1)
        _at_least("sample_every", self.sample_every, 1)
        _at_least("connect_concurrency", self.connect_concurrency, 1)
        if self.procs > self.subscribers:
            raise ConfigurationError(f"{self.procs} processes for {self.subscribers} subscribers: give fewer procs")
        if not MIN_PAYLOAD_SIZE <= self.payload_size <= MAX_PAYLOAD_SIZE:
            raise ConfigurationError(
                f"the payload size must be from {MIN_PAYLOAD_SIZE} to {MAX_PAYLOAD_SIZE} bytes, not {self.payload_size}"
            )
        if not 1 <= self.batch <= MAX_PUBLISH_BATCH:
            raise ConfigurationError(f"the batch must be from 1 to {MAX_PUBLISH_BATCH} messages, not {self.batch}")
        if self.messages is None and self.duration is None:
            raise ConfigurationError("give a number of messages, a duration, or both")
        if self.messages is not None and not 1 <= self.messages <= MAX_MESSAGES:
            raise ConfigurationError(f"the number of messages must be from 1 to {MAX_MESSAGES:,}, not {self.messages}")
        for name in ("rate", "duration", "connect_timeout", "idle_timeout", "timeout"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(f"{name.replace('_', ' ')} must be a positive number, not {value}")
        if self.publishers > self.planned_messages:
            raise ConfigurationError(
                f"{self.publishers} publishers for {self.planned_messages} messages: give fewer publishers"
            )
        try:
            for channel in self.channel_names:
                validate_channel(channel)
        except InvalidChannel as exc:
            raise ConfigurationError(f"invalid channel prefix {self.channel_prefix!r}: {exc}") from None
        if any(cpu < 0 for cpu in self.cpus):
            raise ConfigurationError(f"invalid CPU numbers: {sorted(self.cpus)}")

    @property
    def channel_names(self) -> list[str]:
        """The channels, in order: subscriber *i* is on ``channel_names[i % channels]``."""
        if self.channels == 1:
            return [self.channel_prefix]
        return [f"{self.channel_prefix}.{index}" for index in range(self.channels)]

    @property
    def planned_messages(self) -> int:
        """The most messages the run publishes: :attr:`messages`, or what the rate allows in the duration."""
        planned = self.messages if self.messages is not None else MAX_MESSAGES
        if self.rate is not None and self.duration is not None:
            planned = min(planned, max(1, math.ceil(self.rate * self.duration)))
        return planned

    @property
    def http_url(self) -> str:
        """Where publishers post: :attr:`publish_url`, or the server of the first WebSocket URL."""
        return self.publish_url if self.publish_url is not None else http_url_for(self.urls[0])

    def subscribers_of(self, channel_index: int) -> int:
        """How many subscribers channel number *channel_index* has."""
        full, extra = divmod(self.subscribers, self.channels)
        return full + (channel_index < extra)

    def expected_deliveries(self) -> int | None:
        """Deliveries the run should make when every planned message is published (``None``: unknown)."""
        if self.messages is None and self.rate is None:
            return None
        planned = self.planned_messages
        full, extra = divmod(planned, self.channels)
        return sum((full + (index < extra)) * self.subscribers_of(index) for index in range(self.channels))


def _at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigurationError(f"{name.replace('_', ' ')} must be at least {minimum}, not {value}")
