"""Protocol v1 over real sockets, against a server in the test's loop."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli.protocol import SUBPROTOCOL
from broadcast_cli.server.config import Limits, ServerConfig
from tests.conftest import scaled, wait_until
from tests.integration.conftest import LiveServer, run_live_server


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))  # type: ignore[no-any-return]


async def request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(frame).decode())
    return await recv(ws)


async def test_subscribe_ack_then_events(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == SUBPROTOCOL
        ack = await request(ws, {"id": 1, "subscribe": ["orders"]})
        assert ack["type"] == "ack" and ack["id"] == 1
        epoch = ack["channels"]["orders"]["epoch"]
        assert ack["channels"]["orders"] == {"seq": 0, "epoch": epoch}
        await live_server.hub.publish("orders", "created", {"entity_id": "123"}, origin="tab-1")
        event = await recv(ws)
        assert event == {
            "channel": "orders", "event": "created", "payload": {"entity_id": "123"},
            "seq": 1, "epoch": epoch, "id": event["id"], "ts": event["ts"], "origin": "tab-1",
        }


async def test_without_subprotocol_and_without_id_nothing_is_sent_but_events(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url) as ws:
        assert ws.subprotocol is None
        await ws.send('{"subscribe": ["orders"]}')
        await wait_until(lambda: live_server.hub.subscriber_count("orders") == 1, what="the subscription")
        await live_server.hub.publish("orders", "created", 1)
        assert (await recv(ws))["seq"] == 1


async def test_recovery_on_resubscribe(live_server: LiveServer) -> None:
    for n in range(5):
        await live_server.hub.publish("orders", "created", n)
    async with connect(live_server.ws_url) as ws:
        ack = await request(ws, {"id": "r", "subscribe": ["orders"]})
        epoch = ack["channels"]["orders"]["epoch"]
    async with connect(live_server.ws_url) as ws:
        ack = await request(ws, {"id": 2, "subscribe": [{"channel": "orders", "since": 2, "epoch": epoch}]})
        assert ack["channels"]["orders"] == {"seq": 5, "epoch": epoch, "recovered": True}
        assert [(await recv(ws))["payload"] for _ in range(3)] == [2, 3, 4]
        wrong = await request(ws, {"id": 3, "subscribe": [{"channel": "users", "since": 2, "epoch": "gone"}]})
        assert wrong["channels"]["users"]["recovered"] is False


async def test_unsubscribe_stops_events(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await request(ws, {"id": 1, "subscribe": ["a", "b"]})
        assert await request(ws, {"id": 2, "unsubscribe": ["a"]}) == {"type": "ack", "id": 2}
        await live_server.hub.publish("a", "e")
        await live_server.hub.publish("b", "e")
        assert (await recv(ws))["channel"] == "b"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ('{"id": 9, "hello": 1}', "unknown_request"),
        ('{"id": 9, "subscribe": "orders"}', "invalid_request"),
        ('{"id": 9, "subscribe": ["bad name!"]}', "invalid_channel"),
        ("[]", "invalid_request"),
    ],
)
async def test_bad_requests_get_an_error_frame_and_the_connection_stays(
    live_server: LiveServer, frame: str, code: str
) -> None:
    async with connect(live_server.ws_url) as ws:
        await ws.send(frame)
        error = await recv(ws)
        assert error["type"] == "error" and error["code"] == code and error["message"]
        ack = await request(ws, {"id": 10, "subscribe": ["orders"]})
        assert ack["type"] == "ack"


async def test_binary_frames_close_with_1003(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await ws.send(b'{"subscribe": ["orders"]}')
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1003


async def test_oversize_frames_close_with_1009_and_others_are_unaffected(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url) as good:
        await request(good, {"id": 1, "subscribe": ["orders"]})
        async with connect(live_server.ws_url, max_size=None) as ws:
            await ws.send('{"subscribe": ["' + "x" * (70 * 1024) + '"]}')
            with pytest.raises(ConnectionClosed) as info:
                await recv(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        await live_server.hub.publish("orders", "e")
        assert (await recv(good))["seq"] == 1


async def test_subscription_limit() -> None:
    config = ServerConfig(limits=Limits(max_subscriptions=3))
    async with run_live_server(config) as server, connect(server.ws_url) as ws:
        assert (await request(ws, {"id": 1, "subscribe": ["a", "b", "c"]}))["type"] == "ack"
        error = await request(ws, {"id": 2, "subscribe": ["d"]})
        assert error["code"] == "too_many_subscriptions" and error["id"] == 2
        assert (await request(ws, {"id": 3, "subscribe": ["a"]}))["type"] == "ack"


async def test_slow_consumer_is_closed_with_4008_and_others_get_everything() -> None:
    limits = Limits(send_buffer_messages=1000, send_buffer_bytes=64 << 20)
    async with run_live_server(ServerConfig(limits=limits)) as server:
        # The stalled client's socket buffers are kept small so the server's queue fills.
        # A client that never reads, with a tiny receive buffer so the server's queue fills fast.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((urlsplit(server.ws_url).hostname, urlsplit(server.ws_url).port))
        sock.setblocking(False)
        stalled = await connect(server.ws_url, max_queue=1, sock=sock)
        await stalled.send('{"id": 1, "subscribe": ["firehose"]}')
        async with connect(server.ws_url) as reader:
            await request(reader, {"id": 1, "subscribe": ["firehose"]})
            await wait_until(lambda: server.hub.subscriber_count("firehose") == 2, what="both subscriptions")
            received: list[int] = []

            async def read_all() -> None:
                while len(received) < 2000:
                    received.append((await recv(reader))["seq"])

            reading = asyncio.ensure_future(read_all())
            for n in range(2000):
                # The reader stays well within its 1,000 frames however loaded the machine is;
                # the stalled client, which reads nothing, cannot.
                if n - len(received) >= 500:
                    await wait_until(lambda n=n: n - len(received) < 250, what="the reader to catch up")
                # Random, so that permessage-deflate cannot shrink it.
                await server.hub.publish("firehose", "e", os.urandom(8000).hex())
                await asyncio.sleep(0)
            await asyncio.wait_for(reading, scaled(30))
            assert received == list(range(1, 2001))
        await wait_until(lambda: server.hub.subscriber_count("firehose") == 0, what="the slow consumer's removal")
        # It reads at last: what was sent before the overflow, then the close frame.
        async def read_to_the_end() -> None:
            while True:
                await asyncio.wait_for(stalled.recv(), scaled(10))

        with pytest.raises(ConnectionClosed) as info:
            await read_to_the_end()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4008


async def test_server_side_close_all_uses_1012(live_server: LiveServer) -> None:
    async with connect(live_server.ws_url) as ws:
        await request(ws, {"id": 1, "subscribe": ["a"]})
        live_server.drop_connections()
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012
    await wait_until(lambda: live_server.hub.subscriber_count("a") == 0, what="cleanup")


async def test_a_recovery_larger_than_the_send_buffer_is_delivered_whole() -> None:
    """A client back from a long absence must not be closed as a slow consumer by its own replay."""
    limits = Limits(send_buffer_messages=50, send_buffer_bytes=64 * 1024)
    async with run_live_server(ServerConfig(limits=limits)) as server:
        first = await server.hub.publish("orders", "e", 0)
        for _ in range(1, 500):
            await server.hub.publish("orders", "e", os.urandom(200).hex())
        async with connect(server.ws_url) as ws:
            resume = {"id": 1, "subscribe": [{"channel": "orders", "since": 0, "epoch": first.epoch}]}
            ack = await request(ws, resume)
            assert ack["channels"]["orders"] == {"seq": 500, "epoch": first.epoch, "recovered": True}
            assert [(await recv(ws))["seq"] for _ in range(500)] == list(range(1, 501))
            await server.hub.publish("orders", "e", "live")
            assert (await recv(ws))["payload"] == "live"


async def test_patterns_and_last_over_the_wire(live_server: LiveServer) -> None:
    for n in range(5):
        await live_server.hub.publish("orders.eu", "e", n)
    async with connect(live_server.ws_url) as ws:
        ack = await request(ws, {"id": 1, "subscribe": ["orders.*", {"channel": "orders.eu", "last": 2}]})
        assert ack["channels"]["orders.*"] == {"pattern": True}
        assert ack["channels"]["orders.eu"]["seq"] == 5 and "recovered" not in ack["channels"]["orders.eu"]
        assert [(await recv(ws))["seq"] for _ in range(2)] == [4, 5]
        await live_server.hub.publish("orders.us", "e", "live")
        await live_server.hub.publish("orders.eu", "e", "live")
        assert [((e := await recv(ws))["channel"], e["seq"]) for _ in range(2)] == [("orders.us", 1), ("orders.eu", 6)]
        assert (await request(ws, {"id": 2, "unsubscribe": ["orders.*"]}))["type"] == "ack"


async def test_pattern_limit() -> None:
    config = ServerConfig(limits=Limits(max_patterns=2))
    async with run_live_server(config) as server, connect(server.ws_url) as ws:
        assert (await request(ws, {"id": 1, "subscribe": ["a.*", "b.*"]}))["type"] == "ack"
        error = await request(ws, {"id": 2, "subscribe": ["c.*"]})
        assert error["code"] == "too_many_patterns"
        assert (await request(ws, {"id": 3, "subscribe": ["c"]}))["type"] == "ack"
