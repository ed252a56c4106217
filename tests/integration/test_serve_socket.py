"""The listening socket of ``broadcast serve``."""

from __future__ import annotations

import asyncio
import socket

from broadcast_cli.server.serve import bind
from tests.conftest import scaled


async def test_accepted_connections_have_nagle_off() -> None:
    """Small frames and responses go out at once, not ~40 ms later (Nagle's algorithm with delayed ACKs)."""
    sock = bind("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("socket")
        accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(accepted, scaled(10)) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
