"""The WebSocket's access rules, each both ways, over real sockets.

For every rule: the client it stops is stopped with the documented error frame or
close code, a client it permits gets through, and a permitted client on the same
server is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli import BroadcastClient, ClientState
from broadcast_cli.auth import Grant, OriginPolicy, TokenSigner, TokenVerifier
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.config import Limits, Security, ServerConfig
from tests.conftest import Delivery, scaled, wait_until
from tests.integration.conftest import LiveServer, ServerProcess, run_live_server

SECRET = "w" * 40
SIGNER = TokenSigner(SECRET)
SECURITY = Security(tokens=TokenVerifier(SECRET, leeway=0), public=Grant.of(["public.*"]))


@contextlib.asynccontextmanager
async def server_with(security: Security = SECURITY, **limits: Any) -> AsyncIterator[LiveServer]:
    async with run_live_server(ServerConfig(security=security, limits=Limits(**limits))) as server:
        yield server


async def request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(frame).decode())
    answer: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
    return answer


async def closed_with(ws: ClientConnection) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), scaled(10))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


async def still_served(server: LiveServer, ws: ClientConnection, channel: str = "public.news") -> None:
    """A permitted client keeps receiving on *channel*."""
    message = await server.hub.publish(channel, "e", "still here")
    while (event := orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))).get("seq") != message.seq:
        pass
    assert event["payload"] == "still here"


async def test_without_a_token_only_public_channels_are_readable() -> None:
    async with server_with() as server, connect(server.ws_url) as ws:
        refused = await request(ws, {"subscribe": ["orders"], "id": 1})
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        assert server.hub.subscriber_count("orders") == 0
        mixed = await request(ws, {"subscribe": ["public.news", "orders"], "id": 2})
        assert mixed["code"] == "forbidden"  # all or nothing
        assert server.hub.subscriber_count("public.news") == 0
        ok = await request(ws, {"subscribe": ["public.news"], "id": 3})
        assert ok["type"] == "ack"
        await still_served(server, ws)


async def test_a_token_for_orders_reads_orders_and_not_users() -> None:
    token = SIGNER.mint("alice", channels=["orders"])
    async with server_with() as server, connect(f"{server.ws_url}?token={token}") as ws:
        assert (await request(ws, {"subscribe": ["orders", "public.news"], "id": 1}))["type"] == "ack"
        refused = await request(ws, {"subscribe": ["users"], "id": 2})
        assert refused["code"] == "forbidden" and "alice" in refused["message"]
        assert (await request(ws, {"subscribe": ["*"], "id": 3}))["code"] == "forbidden"
        await still_served(server, ws, "orders")


async def test_the_token_may_come_as_the_first_request() -> None:
    async with server_with() as server, connect(server.ws_url) as ws:
        assert (await request(ws, {"subscribe": ["orders"], "id": 1}))["code"] == "forbidden"
        token = SIGNER.mint("bob", channels=["orders"])
        assert await request(ws, {"auth": {"token": token}, "id": 2}) == {"type": "ack", "id": 2}
        assert (await request(ws, {"subscribe": ["orders"], "id": 3}))["type"] == "ack"
        await still_served(server, ws, "orders")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (TokenSigner("f" * 40).mint("eve", channels=["*"]), CloseCode.UNAUTHORIZED),  # forged
        ("not-a-token", CloseCode.UNAUTHORIZED),  # malformed
        (jwt.encode({"sub": "a", "exp": int(time.time()) - 60, "channels": ["*"]}, SECRET), CloseCode.TOKEN_EXPIRED),
        (jwt.encode({"sub": "a", "exp": int(time.time()) + 60, "channels": ["*"]}, "x" * 40), CloseCode.UNAUTHORIZED),
    ],
    ids=["forged", "malformed", "expired", "wrong-secret"],
)
async def test_bad_tokens_are_refused_and_others_are_unaffected(token: str, code: int) -> None:
    async with server_with() as server, connect(server.ws_url) as bystander:
        assert (await request(bystander, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        async with connect(f"{server.ws_url}?token={token}") as ws:
            assert await closed_with(ws) == code
        async with connect(server.ws_url) as ws:
            await ws.send(orjson.dumps({"auth": {"token": token}}).decode())
            assert await closed_with(ws) == code
        await still_served(server, bystander)


async def test_a_server_without_tokens_refuses_one() -> None:
    async with server_with(Security()) as server:
        async with connect(f"{server.ws_url}?token=anything") as ws:
            assert await closed_with(ws) == CloseCode.UNAUTHORIZED
        async with connect(server.ws_url) as ws:  # and without one, everything is readable
            assert (await request(ws, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"


async def test_an_expiring_token_closes_with_4001_and_a_refreshed_client_recovers() -> None:
    minted: list[str] = []

    def fetch_token() -> str:
        minted.append(SIGNER.mint("carol", channels=["orders"], ttl=2 if not minted else 3600))
        return minted[-1]

    async with server_with() as server:
        client = BroadcastClient(server.ws_url, token=fetch_token, backoff_initial=0.05, backoff_max=0.2)
        closes: list[int | None] = []

        def on_state(state: ClientState) -> None:
            if state is ClientState.RECONNECTING:
                closes.append(client.close_code)

        client.on_state_change(on_state)
        delivery = Delivery("carol")
        try:
            await client.connect(timeout=scaled(10))
            await client.subscribe("orders", lambda m: delivery.append(m.seq)).wait_ready(scaled(10))
            n = 0
            while len(minted) < 2:  # publish until the first token has expired and been replaced
                n += 1
                await server.hub.publish("orders", "e", n)
                await asyncio.sleep(0.05)  # pacing
                assert n < 2000, "the token never expired"
            await client.wait_for_state(ClientState.CONNECTED, scaled(10))
            n += 1
            await server.hub.publish("orders", "e", n)
            await wait_until(lambda: len(delivery) >= n, what="every message, across the token refresh")
            delivery.check(range(1, n + 1))
            assert closes == [CloseCode.TOKEN_EXPIRED]
        finally:
            await client.disconnect()


async def test_publishing_over_the_websocket_needs_a_grant() -> None:
    writer = SIGNER.mint("w", channels=["chat.*"], publish=["chat.*"])
    reader = SIGNER.mint("r", channels=["chat.*"])
    message = {"channel": "chat.room", "event": "said", "payload": {"text": "hi"}}
    async with (
        server_with() as server,
        connect(f"{server.ws_url}?token={writer}") as w,
        connect(f"{server.ws_url}?token={reader}") as r,
        connect(server.ws_url) as anonymous,
    ):
        assert (await request(r, {"subscribe": ["chat.room"], "id": 1}))["type"] == "ack"
        assert (await request(r, {"publish": message, "id": 2}))["code"] == "forbidden"
        assert (await request(anonymous, {"publish": message, "id": 3}))["code"] == "forbidden"
        assert (await request(w, {"publish": {**message, "channel": "orders"}, "id": 4}))["code"] == "forbidden"
        ack = await request(w, {"publish": message, "id": 5})
        assert ack["type"] == "ack" and ack["publish"]["seq"] == 1
        event = orjson.loads(await asyncio.wait_for(r.recv(), scaled(10)))
        assert (event["channel"], event["payload"], event["seq"]) == ("chat.room", {"text": "hi"}, 1)


async def test_the_origin_allowlist() -> None:
    security = Security(origins=OriginPolicy.of(["https://app.example.com"]))
    async with server_with(security) as server, connect(server.ws_url) as service:
        assert (await request(service, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        async with connect(server.ws_url, origin="https://evil.example") as ws:  # type: ignore[arg-type]
            assert await closed_with(ws) == CloseCode.FORBIDDEN_ORIGIN
        async with connect(server.ws_url, origin="https://app.example.com") as ws:  # type: ignore[arg-type]
            assert (await request(ws, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        await still_served(server, service)


async def test_the_connection_limit_triggers_at_its_bound() -> None:
    async with server_with(Security(), max_connections=3) as server, contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(connect(server.ws_url)) for _ in range(3)]
        for ws in held:  # all three are served
            assert (await request(ws, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        async with connect(server.ws_url) as fourth:
            assert await closed_with(fourth) == CloseCode.TRY_AGAIN_LATER
        await held[0].close()
        await wait_until(lambda: server.endpoint.connections() == 2, what="a free place")
        async with connect(server.ws_url) as again:
            assert (await request(again, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        await still_served(server, held[1])


async def test_the_request_rate_triggers_at_its_burst_and_not_below() -> None:
    async with (
        server_with(Security(), requests_per_second=0.001, request_burst=5) as server,
        connect(server.ws_url) as ws,
        connect(server.ws_url) as other,
    ):
        for n in range(5):
            assert (await request(ws, {"unsubscribe": ["x"], "id": n}))["type"] == "ack"
        limited = await request(ws, {"unsubscribe": ["x"], "id": 5})
        assert (limited["code"], limited["id"]) == ("rate_limited", 5)
        assert (await request(other, {"subscribe": ["public.news"], "id": 1}))["type"] == "ack"
        await still_served(server, other)


async def test_secrets_and_tokens_never_reach_the_logs(start_server: Callable[..., ServerProcess]) -> None:
    api_key, token_secret = "K" * 30, "S" * 40
    server = start_server("--log-level", "debug", "--api-key", api_key, "--token-secret", token_secret)
    token = TokenSigner(token_secret).mint("dave", channels=["orders"])
    forged = TokenSigner("F" * 40).mint("eve", channels=["*"])
    async with httpx.AsyncClient(base_url=server.http_url, timeout=scaled(10)) as http:
        async with connect(f"{server.ws_url}?token={token}") as ws:
            assert (await request(ws, {"subscribe": ["orders"], "id": 1}))["type"] == "ack"
            headers = {"authorization": f"Bearer {api_key}"}
            (await http.post("/publish", json={"channel": "orders", "event": "e"}, headers=headers)).raise_for_status()
            assert orjson.loads(await ws.recv())["seq"] == 1
        wrong = {"authorization": "Bearer wrong-but-long-key"}
        refused = await http.post("/publish", json={"channel": "orders", "event": "e"}, headers=wrong)
        assert refused.status_code == 401
        async with connect(f"{server.ws_url}?token={forged}") as ws:
            assert await closed_with(ws) == CloseCode.UNAUTHORIZED
    assert server.terminate() == 0
    logs = "".join(server.stderr_lines)
    for secret in (api_key, token_secret, token, forged, "wrong-but-long-key"):
        assert secret not in logs
