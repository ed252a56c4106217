"""Turning ``broadcast serve``'s security options into a :class:`~.config.Security`, with safe defaults.

The CLI hands the raw option values here; this module reads key files, checks
every value and decides whether the server may start: on an address other
processes' networks can reach, publishing must need an API key unless the
operator says ``--insecure``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from ..auth import ApiKeys, Grant, OriginPolicy, TokenVerifier
from ..exceptions import ConfigurationError
from .config import Security

__all__ = ["build_security", "is_loopback", "open_warnings"]


def is_loopback(host: str) -> bool:
    """Whether *host* is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_security(
    *,
    host: str,
    api_keys: Sequence[str] = (),
    insecure: bool = False,
    token_secret: str | None = None,
    token_public_key: Path | None = None,
    token_algorithm: str = "HS256",
    public: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
) -> Security:
    """Check the options and build the server's :class:`Security`; raise :class:`ConfigurationError` if unsafe."""
    keys = ApiKeys.of(api_keys)
    if not keys and not insecure and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host} without --api-key: anyone who can reach this address could publish. "
            "Give --api-key KEY (or BROADCAST_API_KEY), or --insecure if that is what you want"
        )
    tokens: TokenVerifier | None = None
    if token_secret is not None and token_public_key is not None:
        raise ConfigurationError("give --token-secret (HS256) or --token-public-key (RS256/ES256), not both")
    if token_secret is not None:
        if token_algorithm != "HS256":
            raise ConfigurationError(f"--token-secret is for HS256; {token_algorithm} needs --token-public-key FILE")
        tokens = TokenVerifier(token_secret, "HS256")
    elif token_public_key is not None:
        if token_algorithm == "HS256":
            raise ConfigurationError("--token-public-key needs --token-algorithm RS256 or ES256")
        try:
            pem = token_public_key.read_bytes()
        except OSError as exc:
            shown = str(token_public_key)
            raise ConfigurationError(f"cannot read the token public key {shown!r}: {exc.strerror}") from None
        tokens = TokenVerifier(pem, token_algorithm)
    return Security(
        api_keys=keys,
        tokens=tokens,
        public=Grant.of(public),
        origins=OriginPolicy.of(allowed_origins),
        cors_origins=tuple(origin.rstrip("/") for origin in cors_origins),
    )


def open_warnings(security: Security) -> list[str]:
    """What anyone who reaches the server may do without credentials, to say at start."""
    warnings = []
    if security.publishing_is_open:
        warnings.append("publishing is open: POST /publish needs no API key (--api-key)")
    if security.reading_is_open:
        warnings.append("reading is open: any connection may read any channel (--token-secret, --public)")
    if not security.origins:
        warnings.append("any web page may connect: no Origin allowlist (--allowed-origin)")
    return warnings
