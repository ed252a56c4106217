"""``broadcast token``: mint a connection token (like Centrifugo's ``gentoken``)."""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Annotated

import typer

from ...auth import TokenSigner
from ...exceptions import ConfigurationError
from ..errors import InputError
from ..options import FormatOption, parse_duration
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP

EPILOG = f"""\
Examples:

  export BROADCAST_TOKEN_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')

  broadcast token --sub alice --channel orders --channel 'users.*' --ttl 1h

  broadcast token --sub svc --channel '*' --publish 'chat.*' --algorithm RS256 --private-key key.pem

Prints the token on stdout (or, piped with --format json, a JSON object with its
claims). A server started with the same --token-secret (or the matching
--token-public-key) accepts it: broadcast subscribe --token TOKEN (or
BROADCAST_TOKEN, or broadcast context add NAME --token TOKEN).

{EXIT_STATUS_HELP}
"""


class Algorithm(enum.StrEnum):
    """The signature algorithms of connection tokens."""

    HS256 = "HS256"
    RS256 = "RS256"
    ES256 = "ES256"


def token(
    *,
    sub: Annotated[str, typer.Option(help="Who the connection is (the token's subject).", show_default=False)],
    channel: Annotated[
        list[str] | None,
        typer.Option(help="A channel or pattern the connection may read (repeat for several).", show_default=False),
    ] = None,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            help="A channel or pattern the connection may publish to over the WebSocket (repeat).", show_default=False
        ),
    ] = None,
    ttl: Annotated[
        str, typer.Option(help="How long the token is valid: seconds, or 90s, 30m, 1h, 7d.")
    ] = "1h",
    secret: Annotated[
        str | None,
        typer.Option(
            help="The HS256 secret (the server's --token-secret); prefer the environment variable.",
            envvar="BROADCAST_TOKEN_SECRET",
            show_default=False,
        ),
    ] = None,
    algorithm: Annotated[Algorithm, typer.Option(help="The signature algorithm.")] = Algorithm.HS256,
    private_key: Annotated[
        Path | None,
        typer.Option(help="The PEM private key, for RS256 or ES256.", show_default=False),
    ] = None,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Mint a connection token (JWT) that lets a connection read CHANNELs (and publish)."""
    seconds = parse_duration(ttl)
    if algorithm is Algorithm.HS256:
        if private_key is not None:
            raise InputError("--private-key is for RS256 and ES256; HS256 signs with --secret")
        if secret is None:
            raise InputError("HS256 needs --secret (or BROADCAST_TOKEN_SECRET): the server's --token-secret")
        key: str | bytes = secret
    else:
        if private_key is None:
            raise InputError(f"{algorithm.value} needs --private-key FILE (PEM)")
        try:
            key = private_key.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {str(private_key)!r}: {exc.strerror}") from None
    if not channel and not publish:
        raise InputError("the token would grant nothing: give --channel (and/or --publish)")
    try:
        minted = TokenSigner(key, algorithm.value).mint(
            sub, channels=channel or (), publish=publish or (), ttl=seconds
        )
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    output = Output(output_format)
    output.token(
        minted,
        {
            "sub": sub,
            "exp": int(time.time() + seconds),
            "channels": list(channel or ()),
            "publish": list(publish or ()),
            "algorithm": algorithm.value,
        },
    )
