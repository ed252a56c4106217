"""The fast fan-out path of ``broadcast serve``, over real sockets in the test's loop.

The server here is configured as ``broadcast serve`` configures uvicorn
(:func:`~broadcast_cli.server.serve.uvicorn_config`): its WebSocket protocol
offers the raw-send extension, so event frames are framed once per message and
each connection gets one transport write per event-loop tick. The counters of
each connection's :class:`~broadcast_cli.server.transport.TransportWriter` show
that the path was taken.

The protocol tests of ``test_websocket_endpoint.py`` and the websocat interop
test run here again, against this server (this module's ``live_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli import WebSocketBroadcastBackend
from broadcast_cli.message import PublishRequest
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server import websocket as websocket_module
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import Limits, ServerConfig
from broadcast_cli.server.serve import ServerUrls, bind, loop_factory, urls_for, uvicorn_config
from broadcast_cli.server.transport import BroadcastWebSocketProtocol, TransportWriter
from tests.conftest import Delivery, scaled, wait_until
from tests.integration.conftest import LiveServer, stalled_connection

# Run again on this module's server, which takes the fast path.
from tests.integration.test_interop import test_websocat_subscribes_and_receives  # noqa: F401
from tests.integration.test_websocket_endpoint import (  # noqa: F401
    test_bad_requests_get_an_error_frame_and_the_connection_stays,
    test_binary_frames_close_with_1003,
    test_oversize_frames_close_with_1009_and_others_are_unaffected,
    test_patterns_and_last_over_the_wire,
    test_recovery_on_resubscribe,
    test_server_side_close_all_uses_1012,
    test_subscribe_ack_then_events,
    test_unsubscribe_stops_events,
    test_without_subprotocol_and_without_id_nothing_is_sent_but_events,
)


@dataclass
class FastServer(LiveServer):
    """A :class:`LiveServer` served as ``broadcast serve`` serves it, with access to its connections."""

    uvicorn_server: uvicorn.Server | None = None

    def writers(self) -> list[TransportWriter]:
        """The transport writers of the open WebSocket connections."""
        assert self.uvicorn_server is not None
        return writers_of(self.uvicorn_server)

    def writer(self) -> TransportWriter:
        """The transport writer of the only open WebSocket connection."""
        writers = self.writers()
        assert len(writers) == 1, writers
        return writers[0]


@contextlib.asynccontextmanager
async def serve_uvicorn(config: uvicorn.Config) -> AsyncIterator[tuple[uvicorn.Server, ServerUrls]]:
    """Serve with uvicorn in this loop, on a real socket, until the block ends."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    await wait_until(lambda: server.started or task.done(), 15, "the in-process server")
    if task.done():
        task.result()
    try:
        yield server, urls_for(sock)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, scaled(15))
        sock.close()


def writers_of(server: uvicorn.Server) -> list[TransportWriter]:
    """The transport writers of *server*'s open WebSocket connections that were offered one."""
    return [
        connection.raw_writer
        for connection in server.server_state.connections
        if isinstance(connection, BroadcastWebSocketProtocol) and connection.raw_writer is not None
    ]


@contextlib.asynccontextmanager
async def fast_server(config: ServerConfig | None = None) -> AsyncIterator[FastServer]:
    """broadcast-cli's app on uvicorn with ``broadcast serve``'s settings, in this loop, until the block ends."""
    config = config or ServerConfig(log_level="warning")
    app = create_app(config=config)
    async with serve_uvicorn(uvicorn_config(app, config)) as (server, urls):
        yield FastServer(
            app.state.hub, app.state.websocket, urls.http, urls.websocket, app.state.http, uvicorn_server=server
        )


@pytest.fixture
async def live_server() -> AsyncIterator[FastServer]:
    """This module's server: on the fast path."""
    async with fast_server() as server:
        yield server


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))  # type: ignore[no-any-return]


async def subscribe(ws: ClientConnection, *items: str | dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps({"subscribe": list(items), "id": 1}).decode())
    ack = await recv(ws)
    assert ack["type"] == "ack", ack
    return ack


def caught_up(delivery: Delivery, count: int) -> bool:
    return len(delivery) >= count


def batch(channel: str, count: int, payload: Any = None) -> list[PublishRequest]:
    return [PublishRequest(channel, "e", payload) for _ in range(count)]


def test_broadcast_serve_configures_the_fast_path_and_uvloop() -> None:
    config = uvicorn_config(create_app(config=ServerConfig()), ServerConfig())
    assert config.ws is BroadcastWebSocketProtocol
    assert config.ws_per_message_deflate is False
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory() is uvloop.new_event_loop


async def test_each_connection_gets_one_write_per_tick_with_every_queued_frame(live_server: FastServer) -> None:
    async with connect(live_server.ws_url) as first, connect(live_server.ws_url) as second:
        for ws in (first, second):
            await subscribe(ws, "orders")
        # Ten messages handed to the hub at once reach each connection in one tick: one write each.
        messages = await live_server.hub.publish_many(batch("orders", 10, {"n": 1}))
        for ws in (first, second):
            assert [(await recv(ws))["seq"] for _ in range(10)] == list(range(1, 11))
        for writer in live_server.writers():
            assert (writer.frames, writer.writes) == (11, 2)  # the ack, then the ten events
        # Framed once for every subscriber: the same bytes object went to both.
        assert messages[0].websocket_frame is not None
        assert messages[0].websocket_frame.endswith(messages[0].frame)


async def test_frames_of_every_length_encoding_arrive_intact(live_server: FastServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await subscribe(ws, "big")
        # 7-bit, 16-bit and 64-bit payload lengths (RFC 6455 §5.2), non-ASCII included.
        payloads = ["é", "ü" * 200, "x" * 65_000]
        for payload in payloads:
            await live_server.hub.publish("big", "e", payload)
        assert [(await recv(ws))["payload"] for _ in payloads] == payloads
        assert live_server.writer().frames == 1 + len(payloads)


async def test_the_ack_precedes_the_replay_and_live_events_follow_without_gap(live_server: FastServer) -> None:
    first = await live_server.hub.publish("orders", "e", 0)
    await live_server.hub.publish_many(batch("orders", 49))
    publishing = True

    async def publish_meanwhile() -> None:
        while publishing:
            await live_server.hub.publish_many(batch("orders", 5))
            await asyncio.sleep(0)

    publisher = asyncio.ensure_future(publish_meanwhile())
    try:
        async with connect(live_server.ws_url) as ws:
            ack = await subscribe(ws, {"channel": "orders", "since": 10, "epoch": first.epoch})
            entry = ack["channels"]["orders"]
            assert entry["recovered"] is True and entry["seq"] >= 50
            delivery = Delivery("fast path")
            while len(delivery) < 200:
                event = await recv(ws)
                assert "type" not in event, event
                delivery.append(event["seq"])
            publishing = False
            delivery.check(range(11, 211))
    finally:
        publishing = False
        await asyncio.wait_for(publisher, scaled(10))


async def test_a_stalled_client_is_closed_with_4008_while_others_get_everything() -> None:
    config = ServerConfig(log_level="warning", limits=Limits(send_buffer_messages=200, send_buffer_bytes=64 << 20))
    async with fast_server(config) as server, stalled_connection(server.ws_url) as stalled:
        await subscribe(stalled, "firehose")
        stalled_writer = server.writer()
        async with connect(server.ws_url) as reader:
            await subscribe(reader, "firehose")
            received = Delivery("reader")

            async def read_all() -> None:
                while len(received) < 2000:
                    received.append((await recv(reader))["seq"])

            reading = asyncio.ensure_future(read_all())
            paused_seen = False
            for published in range(20, 2001, 20):
                await server.hub.publish_many(batch("firehose", 20, os.urandom(2000).hex()))
                paused_seen = paused_seen or stalled_writer.paused
                # The reader shares this loop: let it keep within its own bound.
                await wait_until(functools.partial(caught_up, received, published - 100), 30, "the reader")
            await asyncio.wait_for(reading, scaled(30))
            received.check(range(1, 2001))
        await wait_until(lambda: server.hub.subscriber_count("firehose") == 0, what="the slow consumer's removal")
        # Frames waited in the bounded outbox while the transport was paused, then overflowed.
        assert paused_seen
        assert stalled_writer.frames < 2000
        seen = Delivery("stalled client")

        async def read_to_the_end() -> None:
            while True:
                seen.append(orjson.loads(await asyncio.wait_for(stalled.recv(), scaled(10)))["seq"])

        with pytest.raises(ConnectionClosed) as info:
            await read_to_the_end()
        assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.SLOW_CONSUMER
        seen.check(range(1, len(seen) + 1))
        assert len(seen) == stalled_writer.frames - 1  # everything written before the overflow, then 4008


async def test_a_client_that_never_reads_again_is_reset_and_what_was_buffered_for_it_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uvicorn closes a connection once its buffer has gone out: for this client, never. The endpoint
    # resets a connection it is done with once it has taken nothing for a while (10 s; here 0.3 s).
    monkeypatch.setattr(websocket_module, "_CLOSE_TIMEOUT", 0.3)
    config = ServerConfig(log_level="warning", limits=Limits(send_buffer_messages=200))
    async with fast_server(config) as server, stalled_connection(server.ws_url) as stalled:
        await subscribe(stalled, "firehose")
        writer = server.writer()
        while server.hub.subscriber_count("firehose"):
            await server.hub.publish_many(batch("firehose", 20, os.urandom(2000).hex()))
            await asyncio.sleep(0)  # let the writer run: frames go to the transport until it pauses
        assert server.endpoint.slow_consumer_closes == 1
        assert writer.paused  # what the transport holds (and the kernel) waits for a client that does not read
        await wait_until(lambda: not server.writers(), 10, "the connection's reset")

        async def read_to_the_end() -> None:
            while True:
                await recv(stalled)

        with pytest.raises(ConnectionClosed) as info:
            await read_to_the_end()
        assert info.value.rcvd is None  # no close frame could reach it: the connection was reset


async def test_drain_writes_what_is_queued_then_closes_with_1012(live_server: FastServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await subscribe(ws, "orders")
        await live_server.hub.publish_many(batch("orders", 100))
        draining = asyncio.ensure_future(live_server.endpoint.drain())
        assert [(await recv(ws))["seq"] for _ in range(100)] == list(range(1, 101))
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == CloseCode.SERVICE_RESTART
        await asyncio.wait_for(draining, scaled(10))


async def test_acks_and_errors_share_the_events_queue(live_server: FastServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await subscribe(ws, "orders")
        await live_server.hub.publish_many(batch("orders", 3))
        await ws.send("not json")
        await ws.send('{"unsubscribe": ["orders"], "id": 7}')
        frames = [await recv(ws) for _ in range(5)]
        assert [frame.get("seq") for frame in frames[:3]] == [1, 2, 3]
        assert frames[3]["code"] == "invalid_json"
        assert frames[4] == {"type": "ack", "id": 7}
        assert live_server.writer().frames == 6


async def test_the_fastapi_router_takes_the_fast_path_under_this_protocol() -> None:
    app = FastAPI()
    backend = WebSocketBroadcastBackend()
    app.include_router(backend.get_router())
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws=BroadcastWebSocketProtocol, ws_per_message_deflate=False
    )
    async with serve_uvicorn(config) as (server, urls), connect(urls.websocket) as ws:
        await subscribe(ws, "orders")
        await backend.broadcast("orders", "order.created", {"entity_id": "123"})
        assert (await recv(ws))["payload"] == {"entity_id": "123"}
        [writer] = writers_of(server)
        assert writer.frames == 2


async def test_with_compression_negotiated_the_asgi_path_is_taken() -> None:
    config = ServerConfig(log_level="warning")
    app = create_app(config=config)
    settings = uvicorn_config(app, config)
    settings.ws_per_message_deflate = True  # as an app of one's own might configure it
    async with serve_uvicorn(settings) as (server, urls), connect(urls.websocket, compression="deflate") as ws:
        await subscribe(ws, "orders")
        await app.state.hub.publish_many(batch("orders", 3, "x" * 500))
        assert [(await recv(ws))["seq"] for _ in range(3)] == [1, 2, 3]
        assert writers_of(server) == []
        assert ws.protocol.extensions  # permessage-deflate was in use
