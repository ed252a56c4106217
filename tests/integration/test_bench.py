"""``broadcast bench`` as a user runs it: real processes, real sockets, and servers that lose messages on purpose.

Runs are small (tens of subscribers, hundreds of messages): these tests check
counts and verdicts, never speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]
from hdrh.log import HistogramLogReader  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from broadcast_cli.auth.tokens import TokenSigner
from tests.conftest import scaled
from tests.integration.cli.terminal import run_in_terminal
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


# -- what a run leaves for later: --csv, --hdr, --compare; and its progress ---------------------------------------


def test_csv_rows_and_hdr_histograms_for_later(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    runs = tmp_path / "runs.csv"
    reports = []
    for name, messages in (("before", "60"), ("after", "120")):
        result = bench("--url", server.ws_url, "-n", "4", "-m", messages, "--sample-every", "1",
                       "--csv", str(runs), "--hdr", str(tmp_path / f"{name}.hdr"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"the run's figures are the last row of {runs}" in result.stderr
        reports.append(report_of(result.stdout))

    # One row per run under one header, with the figures of the JSON report.
    with runs.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert runs.read_text().count("started,version,target") == 1
    assert len(rows) == 2
    for row, report in zip(rows, reports, strict=True):
        assert int(row["published"]) == report["publish"]["messages"]
        assert int(row["deliveries"]) == report["delivery"]["deliveries"]
        assert int(row["latency_samples"]) == report["latency_ms"]["count"]
        assert float(row["latency_p99_ms"]) == report["latency_ms"]["p99"]
        assert row["ok"] == "true" and row["target"] == server.ws_url

    # The histogram files are HdrHistogram logs: its own library reads them, with every sample.
    for name, report in zip(("before", "after"), reports, strict=True):
        reader = HistogramLogReader(str(tmp_path / f"{name}.hdr"), HdrHistogram(1, 3_600_000_000, 3))
        try:
            histogram = reader.get_next_interval_histogram()
            assert reader.get_next_interval_histogram() is None
        finally:
            reader.close()
        assert histogram.get_total_count() == report["latency_ms"]["count"] == 4 * report["publish"]["messages"]
        assert histogram.get_max_value() / 1000 == pytest.approx(report["latency_ms"]["max"], rel=0.001)

    # --compare sets them side by side.
    result = bench("--compare", str(tmp_path / "before.hdr"), str(tmp_path / "after.hdr"))
    assert result.returncode == 0, result.stderr
    comparison = orjson.loads(result.stdout)
    samples, *percentiles = comparison["rows"]
    assert samples["figure"] == "samples"
    assert [samples["first"], samples["second"]] == [report["latency_ms"]["count"] for report in reports]
    assert [row["figure"] for row in percentiles] == ["p50", "p90", "p99", "p99.9", "p99.99", "max"]
    assert percentiles[-1]["first"] == pytest.approx(reports[0]["latency_ms"]["max"], rel=0.001)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csv", "{tmp}/missing/runs.csv"], "broadcast: the CSV file '{tmp}/missing/runs.csv': the folder "
         "'{tmp}/missing' does not exist"),
        (["--hdr", "{tmp}"], "broadcast: the histogram file '{tmp}' is a folder: give a file name"),
        (["--csv", "{tmp}/other.csv"], "broadcast: the CSV file '{tmp}/other.csv' has other columns than broadcast "
         "bench writes: give a new file"),
        (["--compare", "{tmp}/other.csv", "{tmp}/other.csv"], "broadcast: '{tmp}/other.csv' is not an HdrHistogram "
         "log: line 1 is not an interval"),
        (["--compare", "{tmp}/none.hdr", "{tmp}/none.hdr"], "broadcast: cannot read the histogram '{tmp}/none.hdr': "
         "No such file or directory"),
        (["--compare", "{tmp}/a.hdr", "{tmp}/b.hdr", "-n", "5"], "broadcast: --compare reads two files and runs "
         "nothing: give it without --subscribers"),
    ],
)  # fmt: skip
def test_files_that_cannot_be_used_are_refused_before_a_run(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "other.csv").write_text("name,value\nx,1\n")
    # Nothing listens on the URL: the files are checked before anything connects.
    target = [] if "--compare" in args else ["--url", "ws://127.0.0.1:9/ws/broadcast"]
    result = bench(*target, *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2, result.stderr
    assert result.stderr == message.format(tmp=tmp_path) + "\n"
    assert result.stdout == ""


def test_progress_on_a_terminal_unless_no_progress(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    args = ["bench", "--url", server.ws_url, "-n", "2", "-m", "400", "--rate", "400"]
    code, shown, _ = run_in_terminal(*args)
    assert code == 0, shown
    assert "deliveries," in shown and "published" in shown  # the bar: "N/800 deliveries, M published"
    assert "correctness" in shown  # the report's table
    code, shown, _ = run_in_terminal(*args, "--no-progress")
    assert code == 0, shown
    assert "deliveries," not in shown and "correctness" in shown


# -- a server whose channels need a connection token -------------------------------------------------------------

SECRET = "s" * 40


def test_subscribers_present_the_token(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--token-secret", SECRET)
    token = TokenSigner(SECRET).mint("bench", channels=["bench"])
    for way in (["--url", server.ws_url, "--token", token], ["--url", f"{server.http_url}?token={token}"]):
        result = bench(*way, "-n", "3", "-m", "30")
        assert result.returncode == 0, result.stderr
        assert_all_delivered(report_of(result.stdout), 3, 30)
        assert token not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the server refused the subscribe (forbidden): channel 'bench' needs a connection token"),
        (["--token", TokenSigner(SECRET).mint("bench", channels=["other"])], "does not grant channel 'bench'"),
        (["--token", TokenSigner("f" * 40).mint("eve", channels=["*"])], "the server closed the connection (code 4501"),
    ],
)
def test_a_token_the_server_refuses_exits_4(
    start_server: Callable[..., ServerProcess], args: list[str], message: str
) -> None:
    server = start_server("--token-secret", SECRET)
    result = bench("--url", server.ws_url, *args, "-n", "2", "-m", "2")
    assert result.returncode == 4, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_embedded_servers_take_no_token() -> None:
    result = bench("--embedded", "--token", "x")
    assert result.returncode == 2
    assert result.stderr == "broadcast: --token goes with --url: the servers of --embedded take no connection token\n"
