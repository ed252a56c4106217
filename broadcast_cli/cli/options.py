"""Options shared by several commands, each defined once as an ``Annotated`` alias.

Every option that can come from the environment names its variable
(``BROADCAST_<OPTION>``), and ``--help`` shows it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .output import Format

__all__ = [
    "DEFAULT_HTTP_URL",
    "DEFAULT_WS_URL",
    "CountOption",
    "FormatOption",
    "HttpUrlOption",
    "PrefixOption",
    "TimeoutOption",
    "WsUrlOption",
    "parse_duration",
    "positive",
]

DEFAULT_HTTP_URL = "http://127.0.0.1:8000"
"""Where ``broadcast serve`` answers HTTP by default."""

DEFAULT_WS_URL = "ws://127.0.0.1:8000/ws/broadcast"
"""Where ``broadcast serve`` serves its WebSocket endpoint by default."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in *text*: a number of seconds, or a number with a unit — ``90s``, ``30m``, ``1h``, ``7d``."""
    text = text.strip().lower()
    unit = _UNITS.get(text[-1:]) if text else None
    number = text[:-1] if unit is not None else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration: write 3600, 90s, 30m, 1h or 7d") from None
    if seconds <= 0:
        raise typer.BadParameter(f"a duration must be more than 0, not {text!r}")
    return seconds


def positive(value: float | None) -> float | None:
    """A callback refusing a number of seconds that is not above 0."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be more than 0, not {value}")
    return value


HttpUrlOption = Annotated[
    str,
    typer.Option("--url", "-u", help="Base URL of the server's HTTP API.", envvar="BROADCAST_URL", show_envvar=True),
]
"""``--url`` of the commands that speak HTTP."""

WsUrlOption = Annotated[
    str,
    typer.Option(
        "--url", "-u", help="URL of the server's WebSocket endpoint.", envvar="BROADCAST_WS_URL", show_envvar=True
    ),
]
"""``--url`` of the commands that speak WebSocket."""

PrefixOption = Annotated[
    str,
    typer.Option(help="Prefix of every Redis key (servers sharing a Redis share it).", envvar="BROADCAST_PREFIX"),
]
"""``--prefix``: the Redis key prefix."""

FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        help="How to print data: pretty for a person, json for one JSON object per line; auto is pretty on a "
        "terminal, json when piped.",
        envvar="BROADCAST_FORMAT",
        case_sensitive=False,
    ),
]
"""``--format``: pretty, json, or auto."""

CountOption = Annotated[
    int | None,
    typer.Option("--count", "-c", min=1, help="Exit after this many events.", show_default=False),
]
"""``--count`` of the commands that receive events."""

TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        "-t",
        callback=positive,
        help="Exit when no event arrives for this many seconds.",
        show_default=False,
    ),
]
"""``--timeout`` of the commands that receive events."""
