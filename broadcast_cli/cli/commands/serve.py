"""``broadcast serve``: run the server."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from ...exceptions import BroadcastError, ConfigurationError
from ...history import HistoryOptions
from ...server.config import ServerConfig
from ...server.serve import ServerUrls, run
from ..errors import InputError
from ..options import PrefixOption, positive
from ..output import Output
from ..status import EXIT_STATUS_HELP

EPILOG = f"""\
Examples:

  broadcast serve

  broadcast serve --host 0.0.0.0 --port 8000 --redis-url redis://localhost:6379/0 --workers 4

  BROADCAST_PORT=9000 BROADCAST_HISTORY_SIZE=100 broadcast serve

Ctrl-C or SIGTERM shuts down gracefully (clients are closed with 1012 and
reconnect elsewhere) and exits 0.

{EXIT_STATUS_HELP}
"""



class LogLevel(enum.StrEnum):
    """uvicorn's log levels."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


_HISTORY = HistoryOptions()


def _announce(urls: ServerUrls) -> None:
    output = Output()
    output.status(f"serving on {urls.http}")
    lines = [
        f"  WebSocket  {urls.websocket}",
        f"  Publish    POST {urls.publish}",
        f"  Health     {urls.health}",
    ]
    if urls.workers:
        lines.append(f"  Workers    {len(urls.workers)} processes ({', '.join(map(str, urls.workers))})")
    print("\n".join(lines), file=output.stderr, flush=True)


def serve(
    *,
    host: Annotated[str, typer.Option(help="Address to listen on.", envvar="BROADCAST_HOST")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).", envvar="BROADCAST_PORT")
    ] = 8000,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis URL, for several workers or instances (default: in memory).",
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
    log_level: Annotated[
        LogLevel, typer.Option(help="Log level.", envvar="BROADCAST_LOG_LEVEL", case_sensitive=False)
    ] = LogLevel.INFO,
) -> None:
    """Run the broadcast server: a WebSocket endpoint and an HTTP publish API.

    Every option can also come from the environment variable shown beside it.
    """
    if workers > 1 and redis_url is None:
        raise InputError(
            f"--workers {workers} needs --redis-url: each worker is a process of its own, and workers share "
            "channels and history only through Redis"
        )
    try:
        history = HistoryOptions(size=history_size, ttl=history_ttl, meta_ttl=max(_HISTORY.meta_ttl, history_ttl))
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    config = ServerConfig(
        host=host, port=port, redis_url=redis_url, prefix=prefix, history=history, log_level=log_level.value
    )
    try:
        run(config, workers=workers, on_ready=_announce)
    except OSError as exc:
        raise BroadcastError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
