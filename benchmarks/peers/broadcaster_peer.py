"""Peer: encode/broadcaster on Starlette (uvicorn), speaking our protocol subset.

    python benchmarks/peers/broadcaster_peer.py [--port 0]

The closest Python peer: the pattern of broadcaster's own chat example — one
``Broadcast("memory://")``; each connection has a task per channel that reads
its ``broadcast.subscribe(channel)`` queue and sends each event; ``POST
/publish`` calls ``broadcast.publish()``. Served by uvicorn like broadcast-cli
(permessage-deflate off). Prints ``{"ws": …, "http": …, "pid": …}`` on stdout
once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from broadcaster import Broadcast
from peer_protocol import Sequencer, ack, announce, subscribe_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

broadcast = Broadcast("memory://")
sequencer = Sequencer()


async def forward(websocket: WebSocket, channel: str, ready: asyncio.Event) -> None:
    async with broadcast.subscribe(channel) as subscriber:
        ready.set()
        async for event in subscriber:  # type: ignore[union-attr]
            await websocket.send_text(event.message)


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    tasks: list[asyncio.Task[None]] = []
    try:
        while True:
            request = subscribe_request(await websocket.receive_text())
            if request is None:
                continue
            names, request_id = request
            events = []
            for name in names:
                ready = asyncio.Event()
                events.append(ready)
                tasks.append(asyncio.create_task(forward(websocket, name, ready)))
            for ready in events:
                await ready.wait()
            if request_id is not None:
                await websocket.send_text(ack(request_id, sequencer, names).decode())
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()


async def publish(request: Request) -> Response:
    frames, answer = sequencer.frames(await request.body())
    for channel, frame in frames:
        await broadcast.publish(channel, frame.decode())
    return Response(answer, media_type="application/json")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await broadcast.connect()
    yield
    await broadcast.disconnect()


app = Starlette(
    routes=[WebSocketRoute("/ws/broadcast", endpoint), Route("/publish", publish, methods=["POST"])],
    lifespan=lifespan,
)


async def main(port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", ws_per_message_deflate=False, lifespan="on", access_log=False)
    )
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    bound = sock.getsockname()[1]
    announce(f"ws://127.0.0.1:{bound}/ws/broadcast", f"http://127.0.0.1:{bound}")
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
