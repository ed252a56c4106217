"""The Origin allowlist of WebSocket handshakes: blocks cross-site WebSocket hijacking."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..exceptions import ConfigurationError

__all__ = ["OriginPolicy"]

_ORIGIN_RE = re.compile(r"(https?)://([A-Za-z0-9.*-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?")


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """Which ``Origin`` headers a WebSocket handshake may carry.

    An empty policy allows every origin (the server says so at start). Entries are
    exact origins (``https://app.example.com``) or have one ``*`` for a run of
    subdomain labels (``https://*.example.com``). Clients that send no
    ``Origin`` (services, the CLI — browsers always send one) are allowed: an
    attacker's page cannot omit it.
    """

    allowed: tuple[str, ...] = ()
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        patterns = []
        for origin in self.allowed:
            if origin == "*":
                patterns.append(re.compile(r".*"))
                continue
            if _ORIGIN_RE.fullmatch(origin) is None or origin.count("*") > 1:
                raise ConfigurationError(
                    f"invalid allowed origin {origin!r}: write scheme://host[:port], e.g. https://app.example.com "
                    "or https://*.example.com"
                )
            escaped = re.escape(origin.lower()).replace(r"\*", r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
            patterns.append(re.compile(escaped))
        object.__setattr__(self, "_patterns", tuple(patterns))

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        """A policy allowing *origins*."""
        return cls(tuple(origin.rstrip("/") for origin in origins))

    def __bool__(self) -> bool:
        return bool(self.allowed)

    def allows(self, origin: str | None) -> bool:
        """Whether a handshake with this ``Origin`` header (``None``: none sent) may proceed."""
        if not self.allowed or origin is None:
            return True
        origin = origin.lower()
        return any(pattern.fullmatch(origin) for pattern in self._patterns)
