"""Peer: plain ``websockets`` (asyncio) with ``websockets.broadcast()``, speaking our protocol subset.

    python benchmarks/peers/websockets_peer.py [--port 0] [--http-port 0] [--coalesce]

The websockets server answers only GET requests, so ``POST /publish`` is served
by a minimal HTTP/1.1 server (asyncio streams, keep-alive) on a second port.
Each published frame is written with ``websockets.broadcast()`` to every
subscriber of its channel: the idiomatic fan-out of the library. Prints
``{"ws": …, "http": …, "pid": …}`` on stdout once listening.

``--coalesce`` is a reference, not an idiom: each message is framed once (a
server's frames are unmasked, so every subscriber gets the same bytes) and each
connection gets one ``transport.write()`` per event-loop tick with every frame
queued for it, instead of one write (one system call) per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import websockets
from peer_protocol import Sequencer, ack, announce, subscribe_request
from websockets.asyncio.server import ServerConnection, serve

sequencer = Sequencer()
channels: dict[str, set[ServerConnection]] = {}
coalesce = False
pending: dict[ServerConnection, list[bytes]] = {}
"""With --coalesce: the frames (already framed) waiting for each connection's next write."""


async def subscriber(websocket: ServerConnection) -> None:
    mine: set[str] = set()
    try:
        async for text in websocket:
            request = subscribe_request(text)
            if request is None:
                continue
            names, request_id = request
            for name in names:
                channels.setdefault(name, set()).add(websocket)
                mine.add(name)
            if request_id is not None:
                await websocket.send(ack(request_id, sequencer, names).decode())
    finally:
        for name in mine:
            channels.get(name, set()).discard(websocket)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def flush() -> None:
    """Write each connection's queued frames at once."""
    for connection, frames in pending.items():
        if connection.protocol.state is websockets.protocol.State.OPEN:
            connection.transport.write(b"".join(frames))
    pending.clear()


def publish(body: bytes) -> bytes:
    frames, answer = sequencer.frames(body)
    for channel, frame in frames:
        connections = channels.get(channel)
        if not connections:
            continue
        if not coalesce:
            websockets.broadcast(connections, frame, text=True)
            continue
        if not pending:
            asyncio.get_running_loop().call_soon(flush)
        framed = text_frame(frame)
        for connection in connections:
            pending.setdefault(connection, []).append(framed)
    return answer


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP/1.1 server: POST /publish with a Content-Length body, keep-alive."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head[:-4].split(b"\r\n")
            method, path, _ = request_line.split(b" ", 2)
            length = 0
            for line in header_lines:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if method == b"POST" and path == b"/publish":
                status, answer = b"200 OK", publish(body)
            else:
                status, answer = b"404 Not Found", b'{"type":"error","code":"not_found"}'
            writer.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(answer)).encode() + b"\r\n\r\n" + answer
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int, http_port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(subscriber, "127.0.0.1", port, compression=None, max_queue=None, backlog=2048) as server:
        http_server = await asyncio.start_server(http, "127.0.0.1", http_port, backlog=2048)
        ws_port = server.sockets[0].getsockname()[1]
        publish_port = http_server.sockets[0].getsockname()[1]
        announce(f"ws://127.0.0.1:{ws_port}/ws/broadcast", f"http://127.0.0.1:{publish_port}")
        await stop
        http_server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--coalesce", action="store_true", help="one write per connection per event-loop tick")
    arguments = parser.parse_args()
    coalesce = arguments.coalesce
    asyncio.run(main(arguments.port, arguments.http_port))
