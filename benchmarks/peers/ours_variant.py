"""broadcast-cli's own app, served with the fast path or the event loop switched off: to measure each lever.

    python benchmarks/peers/ours_variant.py [--port 0] [--protocol fast|asgi] [--loop uvloop|asyncio]

``broadcast serve`` is ``--protocol fast --loop uvloop``. ``--protocol asgi``
serves it with uvicorn's stock WebSocket protocol, so every frame goes through
the ASGI send chain (what an app embedding the FastAPI router gets, and what
``broadcast serve`` did before the fast path); ``--loop asyncio`` uses asyncio's
own event loop. Prints ``{"ws": …, "http": …, "pid": …}`` on stdout once serving.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from peer_protocol import announce

from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.serve import bind, loop_factory, urls_for, uvicorn_config


async def serve(config: uvicorn.Config, port: int) -> None:
    sock = bind("127.0.0.1", port)
    urls = urls_for(sock)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    announce(urls.websocket, urls.http)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--protocol", choices=["fast", "asgi"], default="fast")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    arguments = parser.parse_args()
    server_config = ServerConfig(log_level="warning")
    config = uvicorn_config(create_app(config=server_config), server_config)
    if arguments.protocol == "asgi":
        config.ws = "websockets-sansio"
    factory = loop_factory() if arguments.loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(config, arguments.port))


if __name__ == "__main__":
    main()
