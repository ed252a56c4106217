"""Options shared by several commands, each defined once as an ``Annotated`` alias, and where their values come from.

Every option that can come from the environment names its variable
(``BROADCAST_<OPTION>``), and ``--help`` shows it. The server's URL, the
connection token and the API key are resolved here, once for every command
(:func:`server_url`, :func:`connection_token`, :func:`api_key`)::

    explicit option  >  environment variable  >  selected context  >  default

The selected context (:mod:`.contexts`) is ``broadcast --context NAME``, else
``BROADCAST_CONTEXT``, else the one ``broadcast context use`` chose. Every
credential resolved here is concealed from stderr (:func:`.output.conceal`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

import typer

from ..exceptions import ConfigurationError
from ..urls import ServerURL, parse_server_url
from . import contexts
from .contexts import Context, Origin
from .output import Format, conceal

__all__ = [
    "API_KEY_VARIABLE",
    "CONTEXT_PARAMETER",
    "DEFAULT_HTTP_URL",
    "DEFAULT_URL",
    "DEFAULT_WS_URL",
    "DEPRECATED_URL_VARIABLE",
    "TOKEN_VARIABLE",
    "URL_HELP",
    "URL_VARIABLE",
    "ApiKeyOption",
    "ContextOption",
    "CountOption",
    "FormatOption",
    "PrefixOption",
    "TimeoutOption",
    "TokenOption",
    "UrlOption",
    "UrlsOption",
    "api_key",
    "connection_token",
    "parse_duration",
    "positive",
    "selected_context",
    "server_url",
    "server_urls",
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

TOKEN_VARIABLE = "BROADCAST_TOKEN"
"""The environment variable of ``--token``, the connection token."""

API_KEY_VARIABLE = "BROADCAST_API_KEY"
"""The environment variable of ``--api-key``, the key publishing needs."""

CONTEXT_PARAMETER = "context_name"
"""The name of the ``--context`` parameter of the ``broadcast`` command itself (its callback)."""

URL_HELP = """\
--url (or BROADCAST_URL, which every command reads, or the selected context's
URL) is the server as broadcast serve prints it, http://HOST:PORT, or its
WebSocket endpoint, ws://HOST:PORT/ws/broadcast; https:// and wss:// for TLS."""
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
    "(https://, wss:// for TLS; HOST/PREFIX/ws/broadcast for a server under a path prefix). Default: the "
    f"selected context's URL, else {DEFAULT_URL}."
)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", "-u", metavar="URL", help=_URL_HELP, envvar=URL_VARIABLE, show_envvar=True, show_default=False
    ),
]
"""``--url`` of the commands that talk to one server (``publish``, ``subscribe``, ``tail``); see :func:`server_url`."""

UrlsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        "-u",
        metavar="URL",
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
    typer.Option(
        metavar="PREFIX",
        help="Prefix of every Redis key (servers sharing a Redis share it).",
        envvar="BROADCAST_PREFIX",
    ),
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
    typer.Option("--count", "-c", metavar="N", min=1, help="Exit after this many events.", show_default=False),
]
"""``--count`` of the commands that receive events."""

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="The connection token (a JWT, see broadcast token) for a server that requires one; sent in the "
        "connection's first frame, never in its URL. Prefer the environment variable or a context.",
        envvar=TOKEN_VARIABLE,
        show_envvar=True,
        show_default=False,
    ),
]
"""``--token`` of the commands that connect to the WebSocket endpoint; see :func:`connection_token`."""

ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="The server's API key, sent as 'Authorization: Bearer <key>'. Prefer the environment variable or a "
        "context.",
        envvar=API_KEY_VARIABLE,
        show_envvar=True,
        show_default=False,
    ),
]
"""``--api-key`` of the commands that publish; see :func:`api_key`."""

ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        metavar="NAME",
        help="The saved context to use (broadcast context ls): its URL, token and API key, for what the options "
        "and the environment leave unsaid.",
        envvar=contexts.CONTEXT_VARIABLE,
        show_envvar=True,
        show_default=False,
    ),
]
"""``broadcast --context NAME``: the context every command uses; see :func:`selected_context`."""

TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        "-t",
        metavar="SECONDS",
        callback=positive,
        help="Exit when no event arrives for this many seconds.",
        show_default=False,
    ),
]
"""``--timeout`` of the commands that receive events."""


def _origin(ctx: typer.Context, parameter: str) -> Origin:
    """Where the value of *parameter* of *ctx*'s command comes from: the command line, a variable or its default."""
    source = ctx.get_parameter_source(parameter)
    if source is not None and source.name == "COMMANDLINE":
        return Origin.OPTION
    if source is not None and source.name == "ENVIRONMENT":
        return Origin.ENVIRONMENT
    return Origin.DEFAULT


def selected_context(ctx: typer.Context) -> Context | None:
    """The context in use: ``broadcast --context NAME`` or ``BROADCAST_CONTEXT``, else ``broadcast context use``'s.

    Read once per run (kept in the root context's ``meta``). Raises
    :class:`~broadcast_cli.exceptions.ConfigurationError` for a name that names
    no saved context, or a contexts file that cannot be read.
    """
    root = ctx.find_root()
    key = "broadcast_cli.context"
    if key not in root.meta:
        name = root.params.get(CONTEXT_PARAMETER) or os.environ.get(contexts.CONTEXT_VARIABLE) or None
        context = contexts.select(contexts.load(), name)
        if context is not None:
            conceal(context.token, context.api_key)
        root.meta[key] = context
    selected: Context | None = root.meta[key]
    return selected


def _context_value(ctx: typer.Context, field: str) -> tuple[str | None, str | None]:
    """The *field* of the selected context, and the context's name (``None, None`` when none is selected)."""
    context = selected_context(ctx)
    if context is None:
        return None, None
    return getattr(context, field), context.name


def server_url(
    ctx: typer.Context, url: str, *, notice: Callable[[str], object] | None = None, parameter: str = "url"
) -> ServerURL:
    """The server that the ``--url`` option (*url*, parameter *parameter* of *ctx*'s command) names.

    ``--url`` on the command line, else :data:`URL_VARIABLE`, else the selected
    context's URL, else :data:`DEFAULT_URL`. Given *notice* (by ``subscribe`` and
    ``tail``), :data:`DEPRECATED_URL_VARIABLE` is honoured as before: when it is
    set and ``--url`` is not given, it wins, even over :data:`URL_VARIABLE`, and
    *notice* is told that it is deprecated. Raises
    :class:`~broadcast_cli.exceptions.ConfigurationError` for a URL that names no
    server, saying where it came from.
    """
    origin = _origin(ctx, parameter)
    variable = URL_VARIABLE
    if notice is not None and origin is not Origin.OPTION:
        deprecated = os.environ.get(DEPRECATED_URL_VARIABLE)
        if deprecated:
            reason = (
                f"it wins over {URL_VARIABLE} until it is unset" if origin is Origin.ENVIRONMENT else "it still works"
            )
            notice(
                f"{DEPRECATED_URL_VARIABLE} is deprecated ({reason}): set {URL_VARIABLE}, which every command "
                "reads, e.g. http://HOST:PORT"
            )
            url, origin, variable = deprecated, Origin.ENVIRONMENT, DEPRECATED_URL_VARIABLE
    context_url, context_name = (None, None) if origin is not Origin.DEFAULT else _context_value(ctx, "url")
    if context_url is not None:
        url, origin = context_url, Origin.CONTEXT
    ctx.meta[f"broadcast_cli.origin.{parameter}"] = origin
    try:
        server = parse_server_url(url)
    except ConfigurationError as exc:
        if origin is Origin.ENVIRONMENT:
            raise ConfigurationError(f"{exc}; it comes from {variable}") from None
        if origin is Origin.CONTEXT:
            raise ConfigurationError(f"{exc}; it comes from context {context_name!r}") from None
        raise
    conceal(*_query_tokens(server))
    return server


def server_urls(ctx: typer.Context, urls: list[str] | None, *, parameter: str = "urls") -> list[ServerURL]:
    """The servers a repeatable ``--url`` (*urls*) names: each given one, else the context's, else the default."""
    if urls:
        return [server_url(ctx, url, parameter=parameter) for url in urls]
    return [server_url(ctx, DEFAULT_URL, parameter=parameter)]


def _query_tokens(server: ServerURL) -> list[str]:
    return [value for key, value in parse_qsl(server.query, keep_blank_values=True) if key == "token"]


def connection_token(
    ctx: typer.Context, token: str | None, server: ServerURL, *, parameter: str = "token", url_parameter: str = "url"
) -> tuple[ServerURL, str | None]:
    """The connection token to present to *server*, and *server* without a ``?token=`` in its URL.

    ``--token`` (*token*, parameter *parameter*) on the command line, else a
    token in the query of a ``--url`` given there, else :data:`TOKEN_VARIABLE`,
    else a token in the URL of a variable, else the selected context's token:
    the same order as every option, a dedicated option before a URL's query.
    The token is taken out of the URL so that it travels in the connection's
    first frame (an ``auth`` request) rather than in a URL a proxy may log.
    """
    url_origin = ctx.meta.get(f"broadcast_cli.origin.{url_parameter}", Origin.OPTION)
    pairs = parse_qsl(server.query, keep_blank_values=True)
    in_url = next((value for key, value in reversed(pairs) if key == "token"), None)
    context_token, _ = _context_value(ctx, "token")
    chosen, _ = contexts.choose(
        (token, _origin(ctx, parameter) if token else Origin.DEFAULT),
        (context_token, Origin.CONTEXT),
        (in_url, url_origin),
    )
    conceal(chosen, in_url)
    rest = urlencode([(key, value) for key, value in pairs if key != "token"])
    return dataclasses.replace(server, query=rest), chosen


def api_key(ctx: typer.Context, key: str | None, *, parameter: str = "api_key") -> str | None:
    """The API key to send: ``--api-key`` (*key*) or :data:`API_KEY_VARIABLE`, else the selected context's."""
    context_key, _ = _context_value(ctx, "api_key")
    chosen, _ = contexts.choose(
        (key, _origin(ctx, parameter) if key else Origin.DEFAULT), (context_key, Origin.CONTEXT)
    )
    conceal(chosen)
    return chosen
