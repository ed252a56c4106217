"""``broadcast serve``: run the server."""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
from pathlib import Path
from typing import Annotated

import typer

from ...exceptions import BroadcastError, ConfigurationError
from ...history import HistoryOptions
from ...server.config import Limits, ServerConfig
from ...server.security import build_security, open_warnings
from ...server.serve import ServerUrls, run
from ..errors import InputError
from ..options import PrefixOption, positive
from ..output import Output, level_to_show, show_logs
from ..status import EXIT_STATUS_HELP

EPILOG = f"""\
Examples:

  broadcast serve

  broadcast serve --workers 4 --redis-url redis://localhost:6379/0

  broadcast serve --host 0.0.0.0 --api-key "$KEY"

  BROADCAST_PORT=9000 BROADCAST_HISTORY_SIZE=100 broadcast serve

  broadcast serve --demo     (then open http://127.0.0.1:8000/demo twice)

Ctrl-C or SIGTERM shuts down gracefully (clients are closed with 1012 and
reconnect elsewhere) and exits 0.

{EXIT_STATUS_HELP}
"""



class TokenAlgorithm(enum.StrEnum):
    """The signature algorithms of connection tokens."""

    HS256 = "HS256"
    RS256 = "RS256"
    ES256 = "ES256"


class LogLevel(enum.StrEnum):
    """uvicorn's log levels."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


_HISTORY = HistoryOptions()
_LIMITS = Limits()


def _announce(urls: ServerUrls, *, demo: bool = False, warnings: tuple[str, ...] = ()) -> None:
    output = Output()
    output.status(f"serving on {urls.http}")
    lines = [
        f"  WebSocket  {urls.websocket}",
        f"  Publish    POST {urls.publish}",
        f"  Health     {urls.health}",
    ]
    if demo:
        lines.append(f"  Demo       {urls.http}/demo")
    if urls.workers:
        lines.append(f"  Workers    {len(urls.workers)} processes ({', '.join(map(str, urls.workers))})")
    print("\n".join(lines), file=output.stderr, flush=True)
    for warning in warnings:
        output.status(warning)


def _effective_level(ctx: typer.Context, own: LogLevel) -> LogLevel:
    """serve's ``--log-level``, or ``broadcast -v``/``--log-level``'s when serve's own is not given."""
    source = ctx.get_parameter_source("log_level")
    if source is not None and source.name != "DEFAULT":
        return own
    root = ctx.find_root().params
    level = level_to_show(int(root.get("verbose") or 0), str(root["level"]) if root.get("level") else None)
    if level is None:
        return own
    return LogLevel(logging.getLevelName(level).lower())


def serve(
    ctx: typer.Context,
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.", envvar="BROADCAST_HOST")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).", envvar="BROADCAST_PORT")
    ] = 8000,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help=(
                "Redis URL, for several workers or instances (default: in memory): redis://host:6379/0 "
                "(?sharded=true for sharded pub/sub), redis+sentinel://host:26379/service/0 or "
                "redis+cluster://host:7000,host:7001."
            ),
            envvar="BROADCAST_REDIS_URL",
            show_default=False,
        ),
    ] = None,
    prefix: PrefixOption = "broadcast",
    history_size: Annotated[
        int,
        typer.Option(min=0, help="Messages kept per channel for recovery (0: none).", envvar="BROADCAST_HISTORY_SIZE"),
    ] = _HISTORY.size,
    history_ttl: Annotated[
        float,
        typer.Option(
            callback=positive, help="Seconds a message stays recoverable.", envvar="BROADCAST_HISTORY_TTL"
        ),
    ] = _HISTORY.ttl,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the listening socket (more than 1 needs --redis-url).",
            envvar="BROADCAST_WORKERS",
        ),
    ] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Also serve the optimistic-sync demo (orders, in SQLite) at /demo.", envvar="BROADCAST_DEMO"
        ),
    ] = False,
    demo_db: Annotated[
        str | None,
        typer.Option(
            help="The demo's SQLite file, shared by instances and workers (default: in memory).",
            envvar="BROADCAST_DEMO_DB",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option(help="Log level.", envvar="BROADCAST_LOG_LEVEL", case_sensitive=False)
    ] = LogLevel.INFO,
    max_frame_bytes: Annotated[
        int,
        typer.Option(
            min=1024, help="Largest WebSocket frame accepted from a client (bigger: close 1009).",
            envvar="BROADCAST_MAX_FRAME_BYTES", rich_help_panel="Limits",
        ),
    ] = _LIMITS.max_frame_bytes,
    send_buffer_messages: Annotated[
        int,
        typer.Option(
            min=1,
            help=(
                "Frames queued for a client that does not keep up before it is closed as a slow consumer "
                "(4008); it reconnects and recovers from history."
            ),
            envvar="BROADCAST_SEND_BUFFER_MESSAGES", rich_help_panel="Limits",
        ),
    ] = _LIMITS.send_buffer_messages,
    send_buffer_bytes: Annotated[
        int,
        typer.Option(
            min=1024,
            help=(
                "Bytes (of JSON) queued for a client that does not keep up before it is closed as a slow "
                "consumer (4008). Times the connections, it bounds what stalled clients cost in memory."
            ),
            envvar="BROADCAST_SEND_BUFFER_BYTES", rich_help_panel="Limits",
        ),
    ] = _LIMITS.send_buffer_bytes,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            callback=positive,
            help="On SIGTERM: seconds to wait for publishes in flight, then for clients to take their last frames.",
            envvar="BROADCAST_SHUTDOWN_TIMEOUT",
        ),
    ] = 10.0,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="An API key that POST /publish accepts (repeat for several). Needed on a non-loopback address.",
            envvar="BROADCAST_API_KEY",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            help="Serve on a non-loopback address without an API key: anyone who reaches it may publish.",
            envvar="BROADCAST_INSECURE",
            rich_help_panel="Security",
        ),
    ] = False,
    token_secret: Annotated[
        str | None,
        typer.Option(
            help="Connections need a JWT (HS256) signed with this secret to read private channels.",
            envvar="BROADCAST_TOKEN_SECRET",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    token_public_key: Annotated[
        Path | None,
        typer.Option(
            help="Connections need a JWT verified by this PEM public key (with --token-algorithm RS256 or ES256).",
            envvar="BROADCAST_TOKEN_PUBLIC_KEY",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    token_algorithm: Annotated[
        TokenAlgorithm,
        typer.Option(help="The connection tokens' signature algorithm.", envvar="BROADCAST_TOKEN_ALGORITHM",
                     rich_help_panel="Security"),
    ] = TokenAlgorithm.HS256,
    public: Annotated[
        list[str] | None,
        typer.Option(
            help="A channel or pattern anyone may read without a token, e.g. 'public.*' (repeat for several).",
            envvar="BROADCAST_PUBLIC",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="An Origin allowed to open WebSockets, e.g. https://app.example.com or https://*.example.com.",
            envvar="BROADCAST_ALLOWED_ORIGIN",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="An origin whose pages may call the HTTP API (CORS).",
            envvar="BROADCAST_CORS_ORIGIN",
            show_default=False,
            rich_help_panel="Security",
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(help="Serve TLS (https/wss) with this PEM certificate (chain).", envvar="BROADCAST_SSL_CERTFILE",
                     show_default=False, rich_help_panel="Security"),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option(help="The TLS certificate's PEM private key.", envvar="BROADCAST_SSL_KEYFILE",
                     show_default=False, rich_help_panel="Security"),
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option(min=1, help="WebSocket connections per server process; more are refused (1013).",
                     envvar="BROADCAST_MAX_CONNECTIONS", rich_help_panel="Limits"),
    ] = _LIMITS.max_connections,
    rate_limit: Annotated[
        float,
        typer.Option(callback=positive, help="Requests per second one connection may send, on average.",
                     envvar="BROADCAST_RATE_LIMIT", rich_help_panel="Limits"),
    ] = _LIMITS.requests_per_second,
    rate_burst: Annotated[
        int,
        typer.Option(min=1, help="Requests one connection may send at once before --rate-limit applies.",
                     envvar="BROADCAST_RATE_BURST", rich_help_panel="Limits"),
    ] = _LIMITS.request_burst,
) -> None:
    """Run the broadcast server: a WebSocket endpoint and an HTTP publish API.

    Every option can also come from the environment variable shown beside it.
    """
    if workers > 1 and redis_url is None:
        raise InputError(
            f"--workers {workers} needs --redis-url: each worker is a process of its own, and workers share "
            "channels and history only through Redis"
        )
    if demo and workers > 1 and demo_db is None:
        raise InputError(f"--demo with --workers {workers} needs --demo-db FILE: the workers share the orders there")
    try:
        history = HistoryOptions(size=history_size, ttl=history_ttl, meta_ttl=max(_HISTORY.meta_ttl, history_ttl))
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    limits = dataclasses.replace(
        _LIMITS,
        max_frame_bytes=max_frame_bytes,
        send_buffer_messages=send_buffer_messages,
        send_buffer_bytes=send_buffer_bytes,
        max_connections=max_connections,
        requests_per_second=rate_limit,
        request_burst=rate_burst,
    )
    try:
        security = build_security(
            host=host,
            api_keys=api_key or (),
            insecure=insecure,
            token_secret=token_secret,
            token_public_key=token_public_key,
            token_algorithm=token_algorithm.value,
            public=public or (),
            allowed_origins=allowed_origin or (),
            cors_origins=cors_origin or (),
        )
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InputError("TLS needs both --ssl-certfile and --ssl-keyfile")
    for path in (ssl_certfile, ssl_keyfile):
        if path is not None and not path.is_file():
            raise InputError(f"cannot read {str(path)!r}: no such file")
    log_level = _effective_level(ctx, log_level)
    show_logs(level_to_show(name=log_level.value))
    config = ServerConfig(
        host=host,
        port=port,
        redis_url=redis_url,
        prefix=prefix,
        history=history,
        limits=limits,
        security=security,
        log_level=log_level.value,
        shutdown_timeout=shutdown_timeout,
        ssl_certfile=str(ssl_certfile) if ssl_certfile is not None else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile is not None else None,
        demo=demo,
        demo_db=demo_db,
    )
    try:
        warnings = tuple(open_warnings(security))
        run(config, workers=workers, on_ready=functools.partial(_announce, demo=demo, warnings=warnings))
    except OSError as exc:
        raise BroadcastError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
