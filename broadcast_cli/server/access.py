"""What one WebSocket connection may do: its origin, its token, its grants, its request rate.

:class:`ConnectionAccess` is made from the server's :class:`~.config.Security`
and the handshake's ASGI scope, and answers the session's questions without
I/O: may the handshake proceed, may this subscribe or publish go ahead, when
does the token expire. The session (:mod:`.websocket`) acts on the answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..auth import TokenBucket, TokenClaims
from ..exceptions import AuthenticationError, PermissionDenied, TokenExpired
from ..protocol import CloseCode
from .config import Limits, Security

__all__ = ["ConnectionAccess", "Refusal"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection must be closed: the close code and a reason that never contains a secret."""

    code: int
    reason: str


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _query_token(scope: Mapping[str, Any]) -> str | None:
    query = scope.get("query_string", b"")
    tokens = parse_qs(query.decode("latin-1") if isinstance(query, bytes) else str(query)).get("token")
    return tokens[-1] if tokens else None


class ConnectionAccess:
    """The access rules of one connection, applied to the requests it makes."""

    def __init__(self, security: Security, limits: Limits, scope: Mapping[str, Any]) -> None:
        self.security = security
        self.claims: TokenClaims | None = None
        """What the connection's token grants, once it gave a valid one."""
        self.origin = _header(scope, b"origin")
        self._handshake_token = _query_token(scope)
        self._bucket = TokenBucket(limits.requests_per_second, limits.request_burst)

    def handshake_refusal(self) -> Refusal | None:
        """Check the Origin and any ``?token=``; return why the connection must close, or ``None``."""
        if not self.security.origins.allows(self.origin):
            return Refusal(CloseCode.FORBIDDEN_ORIGIN, "this origin may not connect (not in the server's allowlist)")
        if self._handshake_token is not None:
            return self.authenticate(self._handshake_token)
        return None

    def authenticate(self, token: str) -> Refusal | None:
        """Check *token* (from ``?token=`` or an ``auth`` request); return why to close, or ``None``."""
        verifier = self.security.tokens
        if verifier is None:
            return Refusal(CloseCode.UNAUTHORIZED, "this server takes no connection tokens")
        try:
            self.claims = verifier.verify(token)
        except TokenExpired as exc:
            return Refusal(CloseCode.TOKEN_EXPIRED, str(exc))
        except AuthenticationError as exc:
            return Refusal(CloseCode.UNAUTHORIZED, str(exc))
        return None

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until the token expires (then the connection closes with 4001), or ``None``."""
        if self.claims is None:
            return None
        return self.claims.seconds_left(time.time() if now is None else now)

    def allow_request(self) -> bool:
        """Whether the connection's next request is within its rate (a token bucket)."""
        return self._bucket.take()

    def check_subscribe(self, names: Iterable[str]) -> None:
        """Raise :class:`PermissionDenied` naming the first channel or pattern this connection may not read."""
        security = self.security
        if security.reading_is_open:
            return
        claims = self.claims
        for name in names:
            if security.public.allows(name) or (claims is not None and claims.channels.allows(name)):
                continue
            if claims is None:
                raise PermissionDenied(f"channel {name!r} needs a connection token (?token= or an auth request)")
            raise PermissionDenied(f"the connection token of {claims.sub!r} does not grant channel {name!r}")

    def check_publish(self, channel: str) -> None:
        """Raise :class:`PermissionDenied` unless the connection's token grants publishing to *channel*."""
        claims = self.claims
        if claims is None or not claims.publish.allows(channel):
            who = f"the connection token of {claims.sub!r}" if claims is not None else "a connection without a token"
            raise PermissionDenied(f"{who} may not publish to {channel!r}: publishing needs a token that grants it")
