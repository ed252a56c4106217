"""``broadcast bench`` as a user runs it: real processes, real sockets, and servers that lose messages on purpose.

Runs are small (tens of subscribers, hundreds of messages): these tests check
counts and verdicts, never speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, serve_asgi

SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``broadcast bench ARGS --json`` to completion."""
    return subprocess.run(
        [*COMMAND, "bench", *args, "--json"], capture_output=True, text=True, timeout=scaled(180), check=False
    )


async def bench_async(*args: str) -> tuple[int, str, str]:
    """Run ``broadcast bench ARGS --json`` without blocking the test's event loop (which serves a server)."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND, "bench", *args, "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), scaled(180))
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def report_of(stdout: str) -> dict[str, Any]:
    (line,) = stdout.splitlines()
    report: dict[str, Any] = orjson.loads(line)
    return report


def assert_all_delivered(
    report: dict[str, Any], subscribers: int, messages: int, deliveries: int | None = None
) -> None:
    """*messages* published, each subscriber got every message of its channel (*deliveries* in all), once, in order."""
    deliveries = subscribers * messages if deliveries is None else deliveries
    assert report["publish"]["messages"] == messages
    assert report["delivery"]["deliveries"] == report["delivery"]["expected"] == deliveries
    assert report["correctness"] == {
        "ok": True, "lost": 0, "duplicated": 0, "reordered": 0, "closed": {}, "errors": 0, "first_errors": [],
    }  # fmt: skip
    assert report["connect"]["ms"]["count"] == subscribers
    assert report["latency_ms"]["count"] > 0


def test_embedded_in_memory() -> None:
    result = bench("--embedded", "-n", "20", "-m", "200")
    assert result.returncode == 0, result.stderr
    report = report_of(result.stdout)
    assert_all_delivered(report, 20, 200)
    assert report["target"]["embedded"] == "memory"
    assert len(report["server"]["pids"]) == 1
    assert report["server"]["rss_bytes"]["connected"] > 0
    assert "20 subscribers connected" in result.stderr


def test_against_a_running_server(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    result = bench(
        "--url", server.ws_url, "--server-pid", str(server.process.pid),
        "-n", "30", "-m", "90", "--channels", "3", "--publishers", "2", "--procs", "2", "--batch", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = report_of(result.stdout)
    # 90 messages over 3 channels (30 each), 30 subscribers over 3 channels (10 each): 900 deliveries.
    assert_all_delivered(report, 30, 90, deliveries=900)
    assert report["target"]["publish_url"] == server.http_url
    assert report["server"]["pids"] == [server.process.pid]
    assert len(report["generator"]["worker_cpu_percent"]) == 2


def test_at_a_rate_for_a_duration(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    result = bench("--url", server.ws_url, "-n", "5", "--rate", "100", "--duration", "0.5")
    assert result.returncode == 0, result.stderr
    report = report_of(result.stdout)
    assert report["scenario"]["rate"] == 100
    assert report["publish"]["target_rate"] == 100
    published = report["publish"]["messages"]
    assert 1 <= published <= 50  # never more than the rate allows in the duration
    assert_all_delivered(report, 5, published)


@pytest.mark.redis
def test_two_embedded_servers_on_redis(redis_url: str) -> None:
    result = bench("--embedded", "--redis-url", redis_url, "--servers", "2", "-n", "20", "-m", "100")
    assert result.returncode == 0, result.stderr
    report = report_of(result.stdout)
    assert_all_delivered(report, 20, 100)
    assert len(set(report["target"]["urls"])) == 2
    assert report["target"]["embedded"] == "redis"


def test_cannot_connect() -> None:
    result = bench("--url", "ws://127.0.0.1:9/ws/broadcast", "-n", "2", "-m", "2")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "cannot connect to ws://127.0.0.1:9/ws/broadcast" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--servers", "2"], ["--embedded", "--servers", "2"], ["--embedded", "--url", "ws://127.0.0.1:1/"], ["-s", "5"],
        ["--url", "https://127.0.0.1:1"], ["--url", "http://127.0.0.1:1/elsewhere"],
    ],
)  # fmt: skip
def test_usage_errors(args: list[str]) -> None:
    result = bench(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""


# -- servers that get it wrong on purpose ------------------------------------------------------------------------


def faulty_app(fault: str) -> Starlette:
    """A server speaking the protocol subset the bench needs, which drops, repeats or swaps seq 3 for everyone."""
    sockets: set[WebSocket] = set()
    last = 0

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            request = orjson.loads(await websocket.receive_text())
            positions = {name: {"seq": last, "epoch": "e"} for name in request["subscribe"]}
            ack = {"type": "ack", "id": request["id"], "channels": positions}
            await websocket.send_text(orjson.dumps(ack).decode())
            sockets.add(websocket)
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            sockets.discard(websocket)

    async def publish(request: Request) -> Response:
        nonlocal last
        receipts, frames = [], []
        for item in orjson.loads(await request.body()):
            last += 1
            message = {"channel": item["channel"], "event": item["event"], "payload": item["payload"]}
            frames.append(orjson.dumps({**message, "seq": last, "epoch": "e", "id": str(last), "ts": 0}).decode())
            receipts.append({"channel": item["channel"], "seq": last, "epoch": "e", "id": str(last), "ts": 0})
        if fault == "drop":
            frames = [frame for frame in frames if '"seq":3,' not in frame]
        elif fault == "duplicate":
            frames = [frame for frame in frames for _ in range(2 if '"seq":3,' in frame else 1)]
        elif fault == "reorder":  # 1, 2, 4, 3, 5…
            third = next(index for index, frame in enumerate(frames) if '"seq":3,' in frame)
            frames[third], frames[third + 1] = frames[third + 1], frames[third]
        for websocket in list(sockets):
            for frame in frames:
                await websocket.send_text(frame)
        return Response(orjson.dumps(receipts), media_type="application/json")

    return Starlette(routes=[WebSocketRoute("/ws/broadcast", endpoint), Route("/publish", publish, methods=["POST"])])


@contextlib.asynccontextmanager
async def faulty_server(fault: str) -> AsyncIterator[str]:
    async with serve_asgi(faulty_app(fault)) as urls:
        yield urls.websocket


@pytest.mark.parametrize(
    ("fault", "counts"),
    [
        ("none", {"lost": 0, "duplicated": 0, "reordered": 0}),
        ("drop", {"lost": 10, "duplicated": 0, "reordered": 0}),
        ("duplicate", {"lost": 0, "duplicated": 10, "reordered": 0}),
        ("reorder", {"lost": 0, "duplicated": 0, "reordered": 10}),
    ],
)
async def test_what_a_faulty_server_gets_wrong_is_reported(fault: str, counts: dict[str, int]) -> None:
    async with faulty_server(fault) as url:
        code, stdout, stderr = await bench_async(
            "--url", url, "-n", "10", "-m", "8", "--batch", "8", "--idle-timeout", str(scaled(3))
        )
    report = report_of(stdout)
    correctness = report["correctness"]
    assert {name: correctness[name] for name in counts} == counts
    assert report["delivery"]["expected"] == 80
    if fault == "none":
        assert (code, correctness["ok"]) == (0, True), stderr
    else:
        assert (code, correctness["ok"]) == (1, False)
        assert "broadcast: correctness check failed" in stderr
