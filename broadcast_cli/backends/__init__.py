"""Backends, chosen by URL scheme: ``memory://`` (the default) and Redis.

Redis is reached as one server (``redis://``, ``rediss://``, ``unix://``),
through Sentinel (``redis+sentinel://``) or as a cluster (``redis+cluster://``);
see :mod:`broadcast_cli.backends.redis_url`. The Redis backend is imported only
when asked for, as in encode/broadcaster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from ..history import HistoryOptions
from .base import Backend, BackendListener
from .memory import MemoryBackend
from .redis_url import redact

__all__ = ["Backend", "BackendListener", "MemoryBackend", "create_backend"]

_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # e.g. an unclosed [IPv6 bracket: the backend says what is wrong
        return url.partition(":")[0].lower()


def create_backend(
    url: str | None = None,
    *,
    prefix: str | None = None,
    options: HistoryOptions | None = None,
    **backend_options: Any,
) -> Backend:
    """Create the backend named by *url* (``memory://`` when ``None``).

    *prefix* namespaces Redis keys; *options* sets how much history channels
    keep; other keyword arguments go to the backend (e.g. ``sharded=True``).
    """
    scheme = _scheme(url or "memory://")
    if scheme == "memory":
        return MemoryBackend(options)
    if scheme in _REDIS_SCHEMES:
        from .redis import DEFAULT_PREFIX, RedisBackend

        assert url is not None
        return RedisBackend(url, prefix=prefix or DEFAULT_PREFIX, options=options, **backend_options)
    if scheme.startswith(("redis", "rediss")):
        raise ConfigurationError(
            f"unknown Redis URL scheme {scheme!r} in {redact(url or '')!r}: use redis://host:port/db, "
            "redis+sentinel://host:26379,host:26379/service[/db] or redis+cluster://host:port,host:port"
        )
    raise ConfigurationError(
        f"unknown backend URL scheme {scheme!r} in {redact(url or '')!r}: use memory:// or redis://host:port/db"
    )
