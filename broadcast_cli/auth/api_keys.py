"""API keys for the HTTP publish API, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from ..exceptions import AuthenticationError, ConfigurationError

__all__ = ["MIN_KEY_LENGTH", "ApiKeys"]

MIN_KEY_LENGTH = 16
"""The shortest API key accepted: shorter ones are guessable."""


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The keys that may publish over HTTP, given as ``Authorization: Bearer <key>``."""

    keys: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, keys: Iterable[str]) -> ApiKeys:
        """Check and keep *keys*; each must have at least :data:`MIN_KEY_LENGTH` characters."""
        kept = []
        for key in keys:
            if len(key) < MIN_KEY_LENGTH or not key.isprintable() or " " in key:
                raise ConfigurationError(
                    f"an API key must be at least {MIN_KEY_LENGTH} printable characters without spaces "
                    f"(got one of {len(key)}); make one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
            kept.append(key.encode())
        return cls(tuple(kept))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def check(self, authorization: str | None) -> None:
        """Raise :class:`AuthenticationError` unless *authorization* is ``Bearer <one of the keys>``.

        Every key is compared, each in constant time, so that the time taken
        says nothing about which key, or how much of one, matched.
        """
        if authorization is None:
            raise AuthenticationError("this server needs an API key: send the header 'Authorization: Bearer <key>'")
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise AuthenticationError("the Authorization header must be 'Bearer <key>'")
        candidate = given.strip().encode()
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise AuthenticationError("the API key is not valid for this server")
