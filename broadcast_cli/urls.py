"""One server, one URL: its WebSocket endpoint and its HTTP API, derived from any URL of it, without I/O.

A server answers HTTP (``POST /publish``, ``GET /health``…) at its base URL and
WebSocket at ``/ws/broadcast`` under it, on the same host and port. Any of
these names it::

    http://127.0.0.1:8000                     the base, as broadcast serve prints it
    https://example.com/                      (https ↔ wss, http ↔ ws)
    ws://127.0.0.1:8000/ws/broadcast          the WebSocket endpoint
    wss://example.com/ws/broadcast?token=…    a query is for the WebSocket only
    http://127.0.0.1:8000/publish             the publish endpoint
    https://example.com/realtime/ws/broadcast a server under a path prefix

:func:`parse_server_url` reads one, :class:`ServerURL` gives both sides
(:attr:`~ServerURL.websocket`, :attr:`~ServerURL.http`).

The rules:

* The path is empty or ``/`` (the base), or ends with one of the server's
  endpoints, ``/ws/broadcast`` or ``/publish`` (a trailing ``/`` is ignored).
  What comes before the endpoint is a path prefix, for a server behind a
  reverse proxy that mounts it there: ``/realtime/ws/broadcast`` is the server
  whose base is ``/realtime``. Any other path is refused: a bare prefix
  (``http://host/realtime``) cannot be told from a mistyped path, so a server
  under a prefix is named by one of its endpoints.
* The query (``?token=…``) is passed on to the WebSocket endpoint only, where
  it authenticates the connection; it is never sent to the HTTP API (an API
  key travels in a header), so a token does not end up in HTTP logs.
* A fragment (``#…``) is refused: a server never sees one.
* The credentials and the port are kept; a host is required.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from .exceptions import ConfigurationError

__all__ = [
    "ENDPOINTS",
    "PUBLISH_PATH",
    "REDACTED",
    "SCHEMES",
    "WEBSOCKET_PATH",
    "ServerURL",
    "parse_server_url",
    "redact",
    "redact_secrets",
]

WEBSOCKET_PATH = "/ws/broadcast"
"""The path of a server's WebSocket endpoint, under its base."""

PUBLISH_PATH = "/publish"
"""The path of a server's HTTP publish endpoint, under its base."""

ENDPOINTS = (WEBSOCKET_PATH, PUBLISH_PATH)
"""The paths a server URL may end with, after an optional prefix."""

SCHEMES: Mapping[str, bool] = {"http": False, "ws": False, "https": True, "wss": True}
"""Every scheme a server URL may have, and whether it means TLS."""

_EXAMPLES = "e.g. http://127.0.0.1:8000, https://example.com or ws://127.0.0.1:8000/ws/broadcast"


@dataclass(frozen=True, slots=True)
class ServerURL:
    """Where a server is: enough to reach both its WebSocket endpoint and its HTTP API."""

    netloc: str
    """``[credentials@]host[:port]``, an IPv6 host in brackets."""
    secure: bool = False
    """TLS: ``wss://`` and ``https://``."""
    prefix: str = ""
    """The path the server is mounted under: ``""``, or ``/a[/b…]`` (no trailing ``/``)."""
    query: str = ""
    """The query of the WebSocket URL, without its ``?`` (e.g. ``token=…``); empty for none."""

    @property
    def websocket(self) -> str:
        """The WebSocket endpoint, with the query: ``ws://host:port[/prefix]/ws/broadcast[?query]``."""
        url = f"{'wss' if self.secure else 'ws'}://{self.netloc}{self.prefix}{WEBSOCKET_PATH}"
        return f"{url}?{self.query}" if self.query else url

    @property
    def http(self) -> str:
        """The base URL of the HTTP API, without a query or a trailing ``/``: ``http://host:port[/prefix]``."""
        return f"{'https' if self.secure else 'http'}://{self.netloc}{self.prefix}"


def redact(url: str) -> str:
    """*url* as a message may show it: the password and the query (which may hold a token) masked."""
    url, query, _ = url.partition("?")
    scheme, slashes, rest = url.partition("://")
    if not slashes:
        scheme, rest = "", url
    netloc, slash, path = rest.partition("/")
    credentials, at, host = netloc.rpartition("@")
    user, colon, _ = credentials.partition(":")
    shown = f"{scheme}{slashes}{user}{colon and ':***'}{at}{host}{slash}{path}"
    return f"{shown}?…" if query else shown


REDACTED = "***"
"""What stands for a secret in a message."""

_LABELLED_SECRET = re.compile(
    r"(?i)((?:\b|[?&])(?:token|access_token|api[_-]?key|secret|password)=|authorization:\s*bearer\s+|"
    r"\bbearer\s+|\"(?:token|api_key|secret|password)\":\s*\")[^\s&\"',;:)]+"
)
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*:)[^/\s@]+@")
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """*text* as a message may show it: credentials replaced by :data:`REDACTED`.

    Masks each of *secrets* (the token and API key a command was given, as is and
    URL-encoded), and whatever looks like one even when it was not named: a
    ``token=``, ``api_key=`` or ``password=`` value, a ``Bearer`` credential, the
    password of a URL, a JWT.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, REDACTED)
    text = _LABELLED_SECRET.sub(lambda match: match.group(1) + REDACTED, text)
    text = _URL_PASSWORD.sub(lambda match: match.group(1) + REDACTED + "@", text)
    return _JWT.sub(REDACTED, text)


def _prefix(path: str) -> str | None:
    """The prefix before the endpoint that *path* names, ``""`` for the base; ``None`` if it names neither."""
    path = path.rstrip("/")
    if not path:
        return ""
    for endpoint in ENDPOINTS:
        if path.endswith(endpoint):
            prefix = path.removesuffix(endpoint)
            if "//" not in prefix and not prefix.endswith("/"):
                return prefix
    return None


def parse_server_url(url: str) -> ServerURL:
    """The server that *url* names: its base URL or one of its endpoints, over http(s) or ws(s).

    Raises :class:`~broadcast_cli.exceptions.ConfigurationError`, saying what was
    given and what is accepted, for any other URL.
    """
    text = url.strip()
    invalid = f"invalid server URL {redact(url)!r}"
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ConfigurationError(f"{invalid}: {exc} (an IPv6 host goes in brackets: http://[::1]:8000)") from None
    secure = SCHEMES.get(parts.scheme)
    if secure is None:
        raise ConfigurationError(f"{invalid}: it must start with http://, https://, ws:// or wss:// ({_EXAMPLES})")
    host = parts.hostname
    if not host:
        raise ConfigurationError(f"{invalid}: it names no host ({_EXAMPLES})")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{invalid}: the port must be a number from 0 to 65535") from None
    if parts.fragment:
        raise ConfigurationError(f"{invalid}: a server URL has no fragment (#…)")
    prefix = _prefix(parts.path)
    if prefix is None:
        raise ConfigurationError(
            f"{invalid}: the path {parts.path!r} is neither the server's base (/) nor one of its endpoints "
            f"({WEBSOCKET_PATH}, {PUBLISH_PATH}), with or without a prefix (/PREFIX{WEBSOCKET_PATH})"
        )
    credentials, at, _ = parts.netloc.rpartition("@")
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{credentials}{at}{host}" + ("" if port is None else f":{port}")
    return ServerURL(netloc, secure=secure, prefix=prefix, query=parts.query)
