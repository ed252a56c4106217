"""The Python client against real servers over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from broadcast_cli import BroadcastClient, ClientState, Message
from broadcast_cli.client import RecoveryInfo
from tests.conftest import scaled, wait_until
from tests.integration.conftest import LiveServer, ServerProcess


def fast_client(urls: str | list[str]) -> BroadcastClient:
    return BroadcastClient(urls, backoff_initial=0.05, backoff_max=0.5)


async def test_subscribe_receive_and_unsubscribe(live_server: LiveServer) -> None:
    async with fast_client(live_server.ws_url) as client:
        assert client.state == ClientState.CONNECTED
        got: list[Message] = []
        sub = client.subscribe("orders", got.append)
        await sub.wait_ready(scaled(10))
        assert sub.position is not None and sub.position.seq == 0
        await live_server.hub.publish("orders", "order.created", {"entity_id": "123"}, origin=client.client_id)
        await wait_until(lambda: len(got) == 1, what="the event")
        event = got[0]
        assert (event.event, event.payload, event.origin) == ("order.created", {"entity_id": "123"}, client.client_id)
        sub()
        await wait_until(lambda: live_server.hub.subscriber_count("orders") == 0, what="the unsubscribe")
    assert client.state == ClientState.DISCONNECTED


async def test_async_handlers_run_in_order(live_server: LiveServer) -> None:
    async with fast_client(live_server.ws_url) as client:
        got: list[int] = []

        async def handler(message: Message) -> None:
            await asyncio.sleep(0)
            got.append(message.seq)

        await client.subscribe("orders", handler).wait_ready(scaled(10))
        for n in range(50):
            await live_server.hub.publish("orders", "e", n)
        await wait_until(lambda: len(got) == 50, what="50 events")
        assert got == list(range(1, 51))


async def test_seed_scenario_4_server_side_drops_while_publishing(live_server: LiveServer) -> None:
    """Connect, subscribe, drop the connection from the server while publishing: every seq once, in order."""
    states: list[ClientState] = []
    received: list[int] = []
    client = fast_client(live_server.ws_url)
    client.on_state_change(states.append)
    await client.connect(timeout=scaled(10))
    sub = client.subscribe("orders", lambda message: received.append(message.seq))
    await sub.wait_ready(scaled(10))
    drops = 0
    for n in range(1, 1001):
        await live_server.hub.publish("orders", "order.created", {"n": n})
        if n % 10 == 0:
            await asyncio.sleep(0)
        if n in (200, 500, 800):
            # Drop it again only once it is back: each drop is a reconnect.
            await wait_until(lambda: live_server.hub.subscriber_count("orders") == 1, what="the resubscription")
            live_server.drop_connections()
            drops += 1
    await wait_until(lambda: len(received) >= 1000, timeout=30, what="all 1000 events")
    assert received == list(range(1, 1001))
    assert states[:2] == [ClientState.CONNECTING, ClientState.CONNECTED]
    assert states.count(ClientState.RECONNECTING) == drops
    assert states[-1] == ClientState.CONNECTED
    assert sub.recovered is True
    await client.disconnect()


async def test_redis_backed_recovery_after_drops(live_redis_server: LiveServer) -> None:
    received: list[int] = []
    async with fast_client(live_redis_server.ws_url) as client:
        await client.subscribe("orders", lambda message: received.append(message.seq)).wait_ready(scaled(10))
        for n in range(1, 301):
            await live_redis_server.hub.publish("orders", "e", n)
            if n in (100, 200):
                await wait_until(lambda: live_redis_server.hub.subscriber_count("orders") == 1, what="resubscription")
                live_redis_server.drop_connections(1011)
        await wait_until(lambda: len(received) >= 300, timeout=30, what="all 300 events")
        assert received == list(range(1, 301))


@pytest.mark.redis
async def test_the_client_rotates_to_another_instance_and_recovers(
    redis_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    a = start_server("--redis-url", redis_url)
    b = start_server("--redis-url", redis_url)
    received: list[int] = []
    async with fast_client([a.ws_url, b.ws_url]) as client:
        assert client.url == a.ws_url
        await client.subscribe("orders", lambda message: received.append(message.seq)).wait_ready(scaled(10))
        async with httpx.AsyncClient(base_url=b.http_url, timeout=scaled(10)) as http:
            for n in range(1, 51):
                (await http.post("/publish", json={"channel": "orders", "event": "e", "payload": n})).raise_for_status()
            await wait_until(lambda: len(received) == 50, what="the first 50")
            a.kill()  # the instance the client is connected to crashes
            for n in range(51, 101):
                (await http.post("/publish", json={"channel": "orders", "event": "e", "payload": n})).raise_for_status()
        await wait_until(lambda: len(received) >= 100, timeout=30, what="all 100 after the crash")
        assert received == list(range(1, 101))
        assert client.url == b.ws_url


async def test_a_server_that_lost_history_is_reported(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    port = int(server.http_url.rsplit(":", 1)[1])
    lost: list[RecoveryInfo] = []
    got: list[Message] = []
    async with fast_client(server.ws_url) as client:
        sub = client.subscribe("orders", got.append, on_unrecovered=lost.append)
        await sub.wait_ready(scaled(10))
        server.terminate()
        await client.wait_for_state(ClientState.RECONNECTING, scaled(10))
        start_server(port=port)  # a fresh in-memory server: a new epoch
        await client.wait_for_state(ClientState.CONNECTED, scaled(15))
        await wait_until(lambda: len(lost) == 1, what="the unrecovered report")
        assert lost[0].channel == "orders"


async def test_a_slow_handler_does_not_make_the_client_drop_a_healthy_connection(live_server: LiveServer) -> None:
    states: list[ClientState] = []
    client = BroadcastClient(live_server.ws_url, request_timeout=0.3)
    client.on_state_change(states.append)
    await client.connect(timeout=scaled(10))
    handled = asyncio.Event()

    async def slow(message: Message) -> None:
        await asyncio.sleep(1.0)  # the scenario: a handler slower than request_timeout
        handled.set()

    await client.subscribe("a", slow).wait_ready(scaled(10))
    await live_server.hub.publish("a", "e")
    await wait_until(lambda: client._reading is False, what="the handler to start")
    other = client.subscribe("b", lambda message: None)  # its ack waits, unread, behind the handler
    await asyncio.wait_for(handled.wait(), scaled(10))
    await other.wait_ready(scaled(10))
    assert states == [ClientState.CONNECTING, ClientState.CONNECTED]
    await client.disconnect()
