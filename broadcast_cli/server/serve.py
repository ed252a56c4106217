"""Run the server with uvicorn on a socket we bind ourselves.

Binding first means ``--port 0`` works (the kernel picks a free port) and the
real address is known before any client needs it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from .app import WEBSOCKET_PATH, create_app, create_hub
from .config import ServerConfig

__all__ = ["ServerUrls", "bind", "run"]


@dataclass(frozen=True, slots=True)
class ServerUrls:
    """Where a running server can be reached."""

    http: str
    websocket: str
    publish: str
    health: str


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen on *host*:*port* (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def urls_for(sock: socket.socket) -> ServerUrls:
    """The URLs of a server listening on *sock*."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    return ServerUrls(
        http=base,
        websocket=f"ws://{shown}:{port}{WEBSOCKET_PATH}",
        publish=f"{base}/publish",
        health=f"{base}/health",
    )


def run(config: ServerConfig, *, on_ready: Callable[[ServerUrls], None] | None = None) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); *on_ready* gets the URLs once serving.

    Raises :class:`~broadcast_cli.exceptions.BroadcastError` (e.g. Redis is
    unreachable) or :class:`OSError` (the address is taken) before serving.
    """
    hub = create_hub(config)
    sock = bind(config.host, config.port)
    urls = urls_for(sock)
    app = create_app(hub, config=config)
    uv_config = uvicorn.Config(
        app,
        log_level=config.log_level,
        ws_max_size=config.limits.max_frame_bytes,
        # Every subscriber gets the same bytes; compression would redo the work per connection.
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(uv_config)

    async def main() -> None:
        # Connect the backend first, so that an unreachable Redis is one clear error.
        await hub.start()
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no "started" event
            await asyncio.sleep(0.01)
        if server.started and on_ready is not None:
            on_ready(urls)
        await serving

    try:
        asyncio.run(main())
    finally:
        sock.close()
