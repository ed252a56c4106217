"""``broadcast publish | subscribe | tail`` as a user runs them: real processes, real sockets, real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, free_port

SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]


def broadcast(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002
    """Run ``broadcast ARGS`` to completion."""
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, input=input, timeout=scaled(60))


def start(*args: str) -> subprocess.Popen[str]:
    """Start ``broadcast ARGS`` in the background, its output piped."""
    return subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        stdout, stderr = process.communicate(timeout=scaled(30))
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"the command did not finish:\n{stdout}\n{stderr}") from None
    return process.returncode, stdout, stderr


@pytest.fixture
def background() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        process = start(*args)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_subscribed(server: ServerProcess, channel: str, process: subprocess.Popen[str]) -> None:
    """Wait until the server reports a subscriber of *channel* (GET /channels)."""
    deadline = time.monotonic() + scaled(30)
    with httpx.Client(timeout=scaled(10)) as client:
        while True:
            channels = client.get(f"{server.http_url}/channels").json()["channels"]
            if any(item["channel"] == channel and item["subscribers"] > 0 for item in channels):
                return
            if process.poll() is not None:
                raise AssertionError(f"the subscriber exited: {finish(process)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody subscribed to {channel!r}")
            time.sleep(0.01)


def lines(stdout: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def test_subscribe_receives_what_publish_sends(
    start_server: Callable[..., ServerProcess], background: Callable[..., subprocess.Popen[str]]
) -> None:
    server = start_server()
    subscriber = background("subscribe", "--channel", "orders", "--count", "3", "--url", server.ws_url)
    wait_subscribed(server, "orders", subscriber)
    receipts = []
    for n in range(1, 4):
        result = broadcast("publish", "orders", "order.created", f'{{"entity_id": "{n}"}}', "--url", server.http_url)
        assert (result.returncode, result.stderr) == (0, ""), result
        receipts.extend(lines(result.stdout))
    code, stdout, stderr = finish(subscriber)
    assert (code, stderr) == (0, "")
    events = lines(stdout)
    assert [(e["channel"], e["event"], e["payload"], e["seq"]) for e in events] == [
        ("orders", "order.created", {"entity_id": str(n)}, n) for n in range(1, 4)
    ]
    assert [(r["seq"], r["id"], r["epoch"]) for r in receipts] == [(e["seq"], e["id"], e["epoch"]) for e in events]


@pytest.mark.redis
def test_publish_straight_into_redis_reaches_the_servers_subscribers(
    start_server: Callable[..., ServerProcess], background: Callable[..., subprocess.Popen[str]], redis_url: str
) -> None:
    server = start_server("--redis-url", redis_url, "--prefix", "app")
    subscriber = background("subscribe", "--channel", "orders", "--count", "3", "--url", server.ws_url)
    wait_subscribed(server, "orders", subscriber)
    result = broadcast(
        "publish", "orders", "tick", '{"n": {{count}}}', "--count", "3", "--redis-url", redis_url, "--prefix", "app"
    )
    assert (result.returncode, result.stderr) == (0, ""), result
    assert [r["seq"] for r in lines(result.stdout)] == [1, 2, 3]
    code, stdout, stderr = finish(subscriber)
    assert (code, stderr) == (0, "")
    assert [(e["channel"], e["event"], e["payload"], e["seq"]) for e in lines(stdout)] == [
        ("orders", "tick", {"n": n}, n) for n in range(1, 4)
    ]


def test_publish_ndjson_from_a_pipe(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    items = [{"channel": f"c{n % 2}", "event": "e", "payload": n} for n in range(10)]
    stream = "".join(orjson.dumps(item).decode() + "\n" for item in items)
    result = broadcast("publish", "--ndjson", "--url", server.http_url, input=stream)
    assert result.returncode == 0, result
    assert [(r["channel"], r["seq"]) for r in lines(result.stdout)] == [(f"c{n % 2}", n // 2 + 1) for n in range(10)]


def test_tail_n_replays_history_then_follows(
    start_server: Callable[..., ServerProcess], background: Callable[..., subprocess.Popen[str]]
) -> None:
    server = start_server()
    assert broadcast("publish", "orders", "old", "{{count}}", "-c", "5", "-u", server.http_url).returncode == 0
    tail = background("tail", "orders", "-n", "3", "--count", "4", "--url", server.ws_url)
    wait_subscribed(server, "orders", tail)
    assert broadcast("publish", "orders", "new", "6", "-u", server.http_url).returncode == 0
    code, stdout, stderr = finish(tail)
    assert (code, stderr) == (0, "")
    assert [(e["event"], e["seq"], e["payload"]) for e in lines(stdout)] == [
        ("old", 3, 3), ("old", 4, 4), ("old", 5, 5), ("new", 6, 6)
    ]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("command", ["subscribe", "tail"])
def test_ctrl_c_or_sigterm_ends_a_subscription_with_status_0(
    start_server: Callable[..., ServerProcess],
    background: Callable[..., subprocess.Popen[str]],
    command: str,
    stop: signal.Signals,
) -> None:
    server = start_server()
    names = ["--channel", "orders"] if command == "subscribe" else ["orders"]
    subscriber = background(command, *names, "--url", server.ws_url)
    wait_subscribed(server, "orders", subscriber)
    subscriber.send_signal(stop)
    code, stdout, stderr = finish(subscriber)
    assert (code, stdout) == (0, "")
    assert "Traceback" not in stderr


def test_a_closed_pipe_ends_a_subscription_quietly(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    payload = '[{{count}}, "' + "x" * 200 + '"]'
    assert broadcast("publish", "orders", "e", payload, "-c", "2000", "-u", server.http_url).returncode == 0
    # `broadcast tail orders -n 2000 | head -1`: the reader goes away after one line, long
    # before the 500 KB are written (a pipe holds 64 KB): the writer gets EPIPE.
    command = " ".join([*COMMAND, "tail", "orders", "-n", "2000", "-u", server.ws_url, "-t", "30"])
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{command} | head -1"], capture_output=True, text=True, timeout=scaled(60)
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert lines(result.stdout)[0]["seq"] == 1001  # history holds the last 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["publish", "orders", "e", "--url", "http://127.0.0.1:{port}"], "cannot connect to http://127.0.0.1:{port}"),
        (
            ["subscribe", "-C", "orders", "--url", "ws://127.0.0.1:{port}/ws/broadcast", "--connect-timeout", "1"],
            "could not connect to ws://127.0.0.1:{port}/ws/broadcast within 1.0 s",
        ),
        (
            ["tail", "--url", "ws://127.0.0.1:{port}/ws/broadcast", "--connect-timeout", "1"],
            "could not connect to ws://127.0.0.1:{port}/ws/broadcast within 1.0 s",
        ),
    ],
)
def test_a_server_that_is_down_exits_3_with_one_line(args: list[str], message: str) -> None:
    port = free_port()
    result = broadcast(*(arg.format(port=port) for arg in args))
    assert result.returncode == 3
    assert result.stderr.startswith("broadcast: " + message.format(port=port))
    assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.redis
def test_publish_to_a_redis_that_is_down_exits_3() -> None:
    result = broadcast("publish", "orders", "e", "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 3
    assert result.stderr.startswith("broadcast: Redis at redis://127.0.0.1:") and result.stderr.count("\n") == 1


def test_refusals_and_bad_input(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    result = broadcast("publish", "orders", "e", '"' + "x" * 70_000 + '"', "--url", server.http_url)
    assert result.returncode == 4
    assert result.stderr.startswith("broadcast: the server refused the publish (413 payload_too_large)")
    result = broadcast("publish", "orders", "e", "{not json", "--url", server.http_url)
    assert (result.returncode, result.stderr.count("\n")) == (2, 1)
    assert result.stderr.startswith("broadcast: the payload is not valid JSON")


def test_the_environment_gives_the_urls(
    start_server: Callable[..., ServerProcess], background: Callable[..., subprocess.Popen[str]]
) -> None:
    server = start_server()
    env = os.environ | {"BROADCAST_URL": server.http_url}  # one variable for both commands
    subscriber = subprocess.Popen(
        [*COMMAND, "subscribe", "--channel", "env", "--count", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    try:
        wait_subscribed(server, "env", subscriber)
        published = subprocess.run([*COMMAND, "publish", "env", "e"], env=env, capture_output=True, timeout=scaled(30))
        assert published.returncode == 0
        code, stdout, _ = finish(subscriber)
    finally:
        if subscriber.poll() is None:
            subscriber.kill()
            subscriber.communicate()
    assert code == 0 and lines(stdout)[0]["channel"] == "env"
