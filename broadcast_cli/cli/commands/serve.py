"""``broadcast serve``: run the server."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ...exceptions import BroadcastError
from ...server.config import ServerConfig
from ...server.serve import ServerUrls, run
from ..status import ExitStatus


def _announce(urls: ServerUrls) -> None:
    print(f"broadcast: serving on {urls.http}", file=sys.stderr)
    print(f"  WebSocket  {urls.websocket}", file=sys.stderr)
    print(f"  Publish    POST {urls.publish}", file=sys.stderr)
    print(f"  Health     {urls.health}", file=sys.stderr, flush=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.", envvar="BROADCAST_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", envvar="BROADCAST_PORT")] = 8000,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis URL for many instances (default: in memory).", envvar="BROADCAST_REDIS_URL"),
    ] = None,
    prefix: Annotated[str, typer.Option(help="Prefix of Redis keys.", envvar="BROADCAST_PREFIX")] = "broadcast",
    log_level: Annotated[str, typer.Option(help="Log level.", envvar="BROADCAST_LOG_LEVEL")] = "info",
) -> None:
    """Run the broadcast server.

    Example: broadcast serve --port 8000 --redis-url redis://localhost:6379/0
    """
    config = ServerConfig(host=host, port=port, redis_url=redis_url, prefix=prefix, log_level=log_level)
    try:
        run(config, on_ready=_announce)
    except OSError as exc:
        print(f"broadcast: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        raise typer.Exit(ExitStatus.ERROR) from None
    except BroadcastError as exc:
        print(f"broadcast: {exc}", file=sys.stderr)
        raise typer.Exit(ExitStatus.ERROR) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitStatus.INTERRUPTED) from None
