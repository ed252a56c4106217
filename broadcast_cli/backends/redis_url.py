"""Redis URLs: the topology, the servers and the options a URL names, parsed without I/O.

The scheme chooses the topology:

``redis://[[user]:password@]host[:port][/db][?option=value&…]``
    One Redis server (``rediss://`` for TLS, ``unix:///path/to/socket`` for a
    local socket), with redis-py's own URL options.
``redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db][?option=value&…]``
    The master of *service*, found through Redis Sentinel and followed across
    failovers. The hosts are sentinels (port 26379 by default); the credentials
    are the master's (``sentinel_username`` and ``sentinel_password`` are the
    sentinels').
``redis+cluster://[[user]:password@]host[:port][,host[:port]…][/][?option=value&…]``
    A Redis Cluster; the hosts are any of its nodes (port 6379 by default), from
    which the others are discovered. Messages always travel over sharded pub/sub.

``sharded=true`` (a single Redis or Sentinel, Redis >= 7) carries messages over
sharded pub/sub (``SSUBSCRIBE``/``SPUBLISH``) instead of ``SUBSCRIBE``/``PUBLISH``.
With sharded pub/sub, pattern subscriptions are not available.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..exceptions import ConfigurationError

__all__ = ["SCHEMES", "RedisTarget", "Topology", "parse_redis_url", "redact"]

Topology = Literal["single", "sentinel", "cluster"]
"""How the Redis servers are arranged."""

SCHEMES: Mapping[str, Topology] = {
    "redis": "single",
    "rediss": "single",
    "unix": "single",
    "redis+sentinel": "sentinel",
    "redis+cluster": "cluster",
}
"""Every URL scheme of the Redis backend, and the topology it names."""

_DEFAULT_PORTS: Mapping[Topology, int] = {"single": 6379, "sentinel": 26379, "cluster": 6379}


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _positive(parse: Callable[[str], float]) -> Callable[[str], float]:
    def check(value: str) -> float:
        number = parse(value)
        if number <= 0:
            raise ValueError(f"{value!r} is not a positive number")
        return number

    return check


# Connection options of the sentinel and cluster URLs (a single Redis's URL takes redis-py's own).
_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "client_name": str,
    "max_connections": _positive(int),
    "socket_connect_timeout": _positive(float),
    "socket_timeout": _positive(float),
    "timeout": _positive(float),
}
_SENTINEL_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "sentinel_password": str,
    "sentinel_username": str,
}


def redact(url: str) -> str:
    """Return *url* with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        scheme, slashes, rest = url.partition("://")
        userinfo, at, hosts = rest.rpartition("@")
        return f"{scheme}{slashes}***@{hosts}" if at and ":" in userinfo else url
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    username = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{username}:***@{hosts}"))


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis URL names: a topology, its servers, and how to connect to them."""

    topology: Topology
    """``single``, ``sentinel`` or ``cluster``."""
    sharded: bool
    """Whether messages travel over sharded pub/sub (always, in a cluster)."""
    url: str
    """The URL, its password redacted: for messages and logs."""
    client_url: str | None = None
    """For a single Redis: the URL for redis-py, without broadcast-cli's own options."""
    hosts: tuple[tuple[str, int], ...] = ()
    """The sentinels, or the cluster nodes to start from."""
    service: str | None = None
    """The Sentinel service (master) name."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the connections to Redis (sentinel and cluster)."""
    sentinel_options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the connections to the sentinels."""


def _hosts(netloc: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in netloc.split(","):
        if item.startswith("["):  # [IPv6]:port
            host, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ConfigurationError(f"invalid host {item!r} in Redis URL {url!r}")
            port_text = rest[1:]
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise ConfigurationError(f"Redis URL {url!r} names an empty host: list them as host:port,host:port")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ConfigurationError(f"invalid port {port_text!r} in Redis URL {url!r}") from None
        if not 0 < port < 65536:
            raise ConfigurationError(f"invalid port {port} in Redis URL {url!r}")
        hosts.append((host, port))
    return tuple(hosts)


def _options(query: str, known: Mapping[str, Callable[[str], Any]], url: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parse = known.get(name)
        if parse is None:
            raise ConfigurationError(
                f"unknown option {name!r} in Redis URL {url!r}: the options are {', '.join(sorted(known))}"
            )
        try:
            options[name] = parse(value)
        except ValueError as exc:
            raise ConfigurationError(f"invalid value for {name!r} in Redis URL {url!r}: {exc}") from None
    return options


def parse_redis_url(url: str, *, sharded: bool | None = None) -> RedisTarget:
    """Parse a Redis URL; *sharded*, when given, overrides the URL's ``sharded`` option.

    Raises :class:`~broadcast_cli.exceptions.ConfigurationError` for a scheme
    that is not a Redis one, a malformed URL, or an unknown option.
    """
    shown = redact(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"invalid host in Redis URL {shown!r}: {exc}") from None
    topology = SCHEMES.get(parts.scheme)
    if topology is None:
        raise ConfigurationError(
            f"not a Redis URL: {shown!r} (expected redis://host:port/db, "
            "redis+sentinel://host:26379/service or redis+cluster://host:port,host:port)"
        )
    known = {"sharded": _bool, **_OPTIONS}
    if topology == "sentinel":
        known.update(_SENTINEL_OPTIONS)
    # Our own option is taken out; a single Redis's other options are redis-py's.
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = [(name, value) for name, value in query if name == "sharded"]
    in_url = _options(urlencode(own), known, shown).get("sharded") if own else None
    if topology == "single":
        rest = urlencode([(name, value) for name, value in query if name != "sharded"])
        wants = sharded if sharded is not None else bool(in_url)
        return RedisTarget("single", wants, shown, client_url=urlunsplit(parts._replace(query=rest)))

    options = _options(parts.query, known, shown)
    options.pop("sharded", None)
    userinfo, at, netloc = parts.netloc.rpartition("@")
    if at:
        username, colon, password = userinfo.partition(":")
        if username:
            options["username"] = unquote(username)
        if colon:
            options["password"] = unquote(password)
    if not netloc:
        raise ConfigurationError(f"Redis URL {shown!r} names no host")
    hosts = _hosts(netloc, _DEFAULT_PORTS[topology], shown)
    segments = [unquote(segment) for segment in parts.path.split("/") if segment]

    if topology == "cluster":
        if sharded is False or in_url is False:
            raise ConfigurationError(
                f"Redis URL {shown!r}: a Redis Cluster always carries messages over sharded pub/sub (sharded=false)"
            )
        if segments not in ([], ["0"]):
            raise ConfigurationError(f"Redis URL {shown!r}: a Redis Cluster has only database 0, not {parts.path!r}")
        return RedisTarget("cluster", True, shown, hosts=hosts, options=options)

    if not segments or len(segments) > 2:
        raise ConfigurationError(
            f"Redis URL {shown!r} names no Sentinel service: use redis+sentinel://host:26379/service[/db]"
        )
    if len(segments) == 2:
        try:
            options["db"] = int(segments[1])
        except ValueError:
            raise ConfigurationError(f"invalid database {segments[1]!r} in Redis URL {shown!r}") from None
    sentinel_options: dict[str, Any] = {
        name: options[name] for name in ("socket_connect_timeout", "socket_timeout") if name in options
    }
    for name in _SENTINEL_OPTIONS:
        if name in options:
            sentinel_options[name.removeprefix("sentinel_")] = options.pop(name)
    wants = sharded if sharded is not None else bool(in_url)
    return RedisTarget(
        "sentinel",
        wants,
        shown,
        hosts=hosts,
        service=segments[0],
        options=options,
        sentinel_options=sentinel_options,
    )
