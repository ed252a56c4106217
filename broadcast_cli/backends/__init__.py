"""Backends, chosen by URL scheme: ``memory://`` (the default) and ``redis://``.

The Redis backend is imported only when asked for, as in encode/broadcaster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from ..history import HistoryOptions
from .base import Backend, BackendListener
from .memory import MemoryBackend

__all__ = ["Backend", "BackendListener", "MemoryBackend", "create_backend"]


def create_backend(
    url: str | None = None,
    *,
    prefix: str | None = None,
    options: HistoryOptions | None = None,
    **backend_options: Any,
) -> Backend:
    """Create the backend named by *url* (``memory://`` when ``None``).

    *prefix* namespaces Redis keys; *options* sets how much history channels keep.
    """
    scheme = urlsplit(url or "memory://").scheme
    if scheme == "memory":
        return MemoryBackend(options)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import DEFAULT_PREFIX, RedisBackend

        assert url is not None
        return RedisBackend(url, prefix=prefix or DEFAULT_PREFIX, options=options, **backend_options)
    raise ConfigurationError(
        f"unknown backend URL scheme {scheme!r} in {url!r}: use memory:// or redis://host:port/db"
    )
