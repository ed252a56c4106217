"""Connection tokens: JWTs that say who a connection is and which channels it may use.

HS256 with a shared secret by default; RS256 or ES256 with a key pair when the
servers should hold only the public key. Signing and checking are PyJWT's; this
module only says which claims a token carries and what they mean:

- ``sub``: who the connection is (logged, never the token itself);
- ``exp``: when the token stops being accepted (required);
- ``channels``: the channel names or patterns the connection may read;
- ``publish``: the patterns it may publish to over the WebSocket (none if absent).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from ..exceptions import AuthenticationError, ConfigurationError, TokenExpired
from .grants import Grant

__all__ = ["ALGORITHMS", "MIN_SECRET_LENGTH", "TokenClaims", "TokenSigner", "TokenVerifier"]

ALGORITHMS = ("HS256", "RS256", "ES256")
"""The signature algorithms accepted."""

MIN_SECRET_LENGTH = 32
"""The shortest HS256 secret accepted, in bytes."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token grants."""

    sub: str
    """Who the connection is."""
    exp: int
    """When the token expires, in seconds since the Unix epoch."""
    channels: Grant
    """What the connection may subscribe to."""
    publish: Grant
    """What the connection may publish to over the WebSocket."""

    def seconds_left(self, now: float | None = None) -> float:
        """Seconds until the token expires (negative once it has)."""
        return self.exp - (time.time() if now is None else now)


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ConfigurationError(f"unknown token algorithm {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
    return algorithm


def _check_secret(algorithm: str, key: str | bytes) -> None:
    if algorithm == "HS256" and len(key) < MIN_SECRET_LENGTH:
        raise ConfigurationError(
            f"an HS256 token secret must be at least {MIN_SECRET_LENGTH} bytes (got {len(key)}); make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


class TokenSigner:
    """Mints tokens (``broadcast token``): with the shared secret (HS256) or a private key (RS256, ES256)."""

    def __init__(self, key: str | bytes, algorithm: str = "HS256") -> None:
        self.algorithm = _check_algorithm(algorithm)
        _check_secret(self.algorithm, key)
        self._key = key

    def mint(
        self, sub: str, *, channels: Iterable[str] = (), publish: Iterable[str] = (), ttl: float = 3600.0
    ) -> str:
        """A token for *sub* that grants *channels* (and *publish*) for *ttl* seconds."""
        if not sub:
            raise ConfigurationError("a token needs a subject (--sub): who the connection is")
        if ttl <= 0:
            raise ConfigurationError(f"a token's lifetime must be more than 0 seconds, not {ttl}")
        channels, publish = list(dict.fromkeys(channels)), list(dict.fromkeys(publish))
        Grant.of(channels)  # refuse invalid names now, not when the token is used
        Grant.of(publish)
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(ttl), "channels": channels}
        if publish:
            claims["publish"] = publish
        try:
            return jwt.encode(claims, self._key, algorithm=self.algorithm)
        except (ValueError, TypeError, jwt.exceptions.PyJWTError) as exc:
            raise ConfigurationError(f"cannot sign a token with this {self.algorithm} key: {exc}") from None


class TokenVerifier:
    """Checks tokens: the shared secret (HS256) or a public key (RS256, ES256), and the claims.

    *leeway* tolerates that much clock difference (seconds) with the minting service.
    """

    def __init__(self, key: str | bytes, algorithm: str = "HS256", *, leeway: float = 5.0) -> None:
        self.algorithm = _check_algorithm(algorithm)
        _check_secret(self.algorithm, key)
        self._key = key
        self.leeway = leeway

    def verify(self, token: str) -> TokenClaims:
        """Return what *token* grants; raise :class:`TokenExpired` or :class:`AuthenticationError`.

        The error messages never contain the token.
        """
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("the connection token has expired: fetch a new one and reconnect") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("the connection token's signature is not valid for this server") from None
        except jwt.exceptions.PyJWTError as exc:
            raise AuthenticationError(f"the connection token is not valid: {exc}") from None
        except (ValueError, TypeError) as exc:  # e.g. a key of the wrong kind
            raise AuthenticationError(f"the connection token cannot be checked: {exc}") from None
        return TokenClaims(
            sub=_string(claims["sub"], "sub"),
            exp=int(claims["exp"]),
            channels=_grant(claims.get("channels", []), "channels"),
            publish=_grant(claims.get("publish", []), "publish"),
        )


def _string(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"the connection token's {name!r} claim must be a non-empty string")
    return value


def _grant(value: object, name: str) -> Grant:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise AuthenticationError(f"the connection token's {name!r} claim must be a list of channel names or patterns")
    try:
        return Grant.of(value)
    except ConfigurationError as exc:
        raise AuthenticationError(f"the connection token's {name!r} claim is not valid: {exc}") from None
