"""Options shared by several commands, each defined once as an ``Annotated`` alias.

Every option that can come from the environment names its variable
(``BROADCAST_<OPTION>``), and ``--help`` shows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import typer

from ..exceptions import ConfigurationError
from ..urls import ServerURL, parse_server_url
from .output import Format

__all__ = [
    "DEFAULT_HTTP_URL",
    "DEFAULT_URL",
    "DEFAULT_WS_URL",
    "DEPRECATED_URL_VARIABLE",
    "URL_HELP",
    "URL_VARIABLE",
    "CountOption",
    "FormatOption",
    "PrefixOption",
    "TimeoutOption",
    "UrlOption",
    "UrlsOption",
    "parse_duration",
    "positive",
    "server_url",
]

DEFAULT_URL = "http://127.0.0.1:8000"
"""The server every command talks to by default: ``broadcast serve``'s own default address."""

DEFAULT_HTTP_URL = DEFAULT_URL
"""Where ``broadcast serve`` answers HTTP by default."""

DEFAULT_WS_URL = "ws://127.0.0.1:8000/ws/broadcast"
"""Where ``broadcast serve`` serves its WebSocket endpoint by default."""

URL_VARIABLE = "BROADCAST_URL"
"""The environment variable of ``--url``, for every command that talks to a server."""

DEPRECATED_URL_VARIABLE = "BROADCAST_WS_URL"
"""What ``subscribe`` and ``tail`` read before :data:`URL_VARIABLE` served them: still honoured, with a notice."""

URL_HELP = """\
--url (or BROADCAST_URL, which every command reads) is the server as broadcast
serve prints it, http://HOST:PORT, or its WebSocket endpoint,
ws://HOST:PORT/ws/broadcast; https:// and wss:// for TLS. A query (?token=...)
goes to the WebSocket endpoint only."""
"""The paragraph of the ``--help`` of every command with a ``--url`` that says which URLs it takes."""

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


_URL_HELP = (
    "The server: http://HOST:PORT as broadcast serve prints it, or ws://HOST:PORT/ws/broadcast "
    "(https://, wss:// for TLS; HOST/PREFIX/ws/broadcast for a server under a path prefix)."
)

UrlOption = Annotated[
    str,
    typer.Option("--url", "-u", help=_URL_HELP, envvar=URL_VARIABLE, show_envvar=True),
]
"""``--url`` of the commands that talk to one server (``publish``, ``subscribe``, ``tail``); see :func:`server_url`."""

UrlsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        "-u",
        help="A server: http://HOST:PORT or ws://HOST:PORT/ws/broadcast (no TLS; HOST/PREFIX/ws/broadcast for a "
        f"server under a path prefix). Repeat it to spread the subscribers over several. Default: {DEFAULT_URL}.",
        envvar=URL_VARIABLE,
        show_envvar=True,
        show_default=False,
    ),
]
"""``--url`` of ``bench``: the same URLs as :data:`UrlOption`, repeatable."""

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


def server_url(
    ctx: typer.Context, url: str, *, notice: Callable[[str], object] | None = None, parameter: str = "url"
) -> ServerURL:
    """The server that the ``--url`` option (*url*, parameter *parameter* of *ctx*'s command) names.

    Given *notice* (by ``subscribe`` and ``tail``), :data:`DEPRECATED_URL_VARIABLE`
    is honoured as before: when it is set and ``--url`` is not given, it wins,
    even over :data:`URL_VARIABLE`, and *notice* is told that it is deprecated.
    Raises :class:`~broadcast_cli.exceptions.ConfigurationError` for a URL that
    names no server, saying which variable it came from.
    """
    source = ctx.get_parameter_source(parameter)
    from_variable = source is not None and source.name == "ENVIRONMENT"
    variable = URL_VARIABLE
    if notice is not None and (source is None or source.name != "COMMANDLINE"):
        deprecated = os.environ.get(DEPRECATED_URL_VARIABLE)
        if deprecated:
            reason = f"it wins over {URL_VARIABLE} until it is unset" if from_variable else "it still works"
            notice(
                f"{DEPRECATED_URL_VARIABLE} is deprecated ({reason}): set {URL_VARIABLE}, which every command "
                "reads, e.g. http://HOST:PORT"
            )
            url, from_variable, variable = deprecated, True, DEPRECATED_URL_VARIABLE
    try:
        return parse_server_url(url)
    except ConfigurationError as exc:
        if from_variable:
            raise ConfigurationError(f"{exc}; it comes from {variable}") from None
        raise
