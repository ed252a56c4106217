"""One connection's access rules, decided without I/O from the handshake's scope."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from broadcast_cli.auth import Grant, OriginPolicy, TokenSigner, TokenVerifier
from broadcast_cli.exceptions import PermissionDenied
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.access import ConnectionAccess
from broadcast_cli.server.config import Limits, Security

SECRET = "z" * 40
SIGNER = TokenSigner(SECRET)


def scope(query: str = "", origin: str | None = None) -> dict[str, Any]:
    headers = [(b"origin", origin.encode())] if origin is not None else []
    return {"type": "websocket", "query_string": query.encode(), "headers": headers}


def access(security: Security, query: str = "", origin: str | None = None) -> ConnectionAccess:
    return ConnectionAccess(security, Limits(requests_per_second=1, request_burst=2), scope(query, origin))


SECURED = Security(tokens=TokenVerifier(SECRET), public=Grant.of(["public.*"]))


def test_an_open_server_lets_everyone_read() -> None:
    conn = access(Security())
    assert conn.handshake_refusal() is None
    conn.check_subscribe(["orders", "anything.*"])


def test_without_a_token_only_public_channels() -> None:
    conn = access(SECURED)
    assert conn.handshake_refusal() is None
    conn.check_subscribe(["public.news"])
    with pytest.raises(PermissionDenied, match="needs a connection token"):
        conn.check_subscribe(["public.news", "orders"])


def test_a_token_grants_its_channels_and_no_others() -> None:
    conn = access(SECURED, "token=" + SIGNER.mint("alice", channels=["orders", "users.*"]))
    assert conn.handshake_refusal() is None
    conn.check_subscribe(["orders", "users.1", "users.*", "public.x"])
    with pytest.raises(PermissionDenied, match="'alice' does not grant channel 'payments'"):
        conn.check_subscribe(["payments"])
    with pytest.raises(PermissionDenied, match="does not grant channel '\\*'"):
        conn.check_subscribe(["*"])
    seconds = conn.expires_in()
    assert seconds is not None and 3590 < seconds <= 3600


def test_bad_tokens_close_with_documented_codes() -> None:
    forged = TokenSigner("f" * 40).mint("alice", channels=["*"])
    assert access(SECURED, "token=" + forged).handshake_refusal().code == CloseCode.UNAUTHORIZED  # type: ignore[union-attr]
    assert access(SECURED, "token=garbage").handshake_refusal().code == CloseCode.UNAUTHORIZED  # type: ignore[union-attr]
    expired = access(SECURED)
    old = jwt.encode({"sub": "a", "exp": int(time.time()) - 60, "channels": ["*"]}, SECRET, algorithm="HS256")
    refusal = expired.authenticate(old)
    assert refusal is not None and refusal.code == CloseCode.TOKEN_EXPIRED
    assert old not in refusal.reason
    no_tokens = access(Security(), "token=" + SIGNER.mint("a", channels=["x"]))
    assert no_tokens.handshake_refusal().code == CloseCode.UNAUTHORIZED  # type: ignore[union-attr]


def test_publish_needs_a_token_that_grants_it() -> None:
    with pytest.raises(PermissionDenied, match="without a token"):
        access(SECURED).check_publish("chat.room")
    reader = access(SECURED, "token=" + SIGNER.mint("r", channels=["chat.*"]))
    assert reader.handshake_refusal() is None
    with pytest.raises(PermissionDenied, match="may not publish"):
        reader.check_publish("chat.room")
    writer = access(SECURED, "token=" + SIGNER.mint("w", channels=["chat.*"], publish=["chat.*"]))
    assert writer.handshake_refusal() is None
    writer.check_publish("chat.room")
    with pytest.raises(PermissionDenied):
        writer.check_publish("orders")


def test_origins() -> None:
    security = Security(origins=OriginPolicy.of(["https://app.example.com"]))
    assert access(security, origin="https://app.example.com").handshake_refusal() is None
    assert access(security).handshake_refusal() is None  # not a browser
    refusal = access(security, origin="https://evil.example").handshake_refusal()
    assert refusal is not None and refusal.code == CloseCode.FORBIDDEN_ORIGIN


def test_the_request_rate() -> None:
    conn = access(Security())
    assert [conn.allow_request() for _ in range(3)] == [True, True, False]
