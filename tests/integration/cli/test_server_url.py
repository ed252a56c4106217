"""One server URL for every command: ``--url`` or ``BROADCAST_URL``, as ``broadcast serve`` prints it or as ws://.

``publish``, ``subscribe`` and ``tail`` run under CliRunner against a real server
in a thread; ``bench`` (which starts worker processes) runs as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from typer.testing import CliRunner

from broadcast_cli.auth.grants import Grant
from broadcast_cli.auth.tokens import TokenSigner, TokenVerifier
from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import Security, ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import ThreadedServer, free_port, serve_asgi, threaded_server

SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]

FORMS: dict[str, Callable[[ThreadedServer], str]] = {
    "as serve prints it": lambda server: server.http_url,
    "with a trailing slash": lambda server: f"{server.http_url}/",
    "the WebSocket endpoint": lambda server: server.ws_url,
    "ws:// without the path": lambda server: server.http_url.replace("http://", "ws://"),
    "the publish endpoint": lambda server: f"{server.http_url}/publish",
}
"""Every form of the same server's URL."""

NOTICE = "broadcast: BROADCAST_WS_URL is deprecated ({}): set BROADCAST_URL, which every command reads, e.g. http://HOST:PORT\n"


def lines(output: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in output.splitlines()]


def given(how: str, url: str) -> tuple[list[str], dict[str, str]]:
    """The arguments and the environment that give *url*: with ``--url``, or with ``BROADCAST_URL`` alone."""
    return (["--url", url], {}) if how == "--url" else ([], {"BROADCAST_URL": url})


def dead_url() -> str:
    """The URL of a server that is not there."""
    return f"http://127.0.0.1:{free_port()}"


def bench_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``broadcast bench ARGS --json`` to completion, with *env* added to the environment."""
    return subprocess.run(
        [*COMMAND, "bench", *args, "--json"],
        capture_output=True, text=True, timeout=scaled(180), check=False, env=os.environ | (env or {}),
    )  # fmt: skip


def publish_when_subscribed(name: str, payload: object) -> Callable[[ThreadedServer], None]:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed(name)
        server.publish(name, "live", payload)

    return action


@pytest.mark.parametrize("how", ["--url", "BROADCAST_URL"])
@pytest.mark.parametrize("form", FORMS)
def test_publish_tail_and_subscribe_take_the_same_url(
    runner: CliRunner, server: ThreadedServer, form: str, how: str
) -> None:
    args, env = given(how, FORMS[form](server))
    result = runner.invoke(app, ["publish", "orders", "created", '{"n": 1}', *args], env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert [receipt["seq"] for receipt in lines(result.stdout)] == [1]

    result = runner.invoke(app, ["tail", "orders", "-n", "1", "-c", "1", *args], env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert [(event["event"], event["payload"]) for event in lines(result.stdout)] == [("created", {"n": 1})]

    thread = server.in_background(publish_when_subscribed("orders", {"n": 2}))
    result = runner.invoke(app, ["subscribe", "-C", "orders", "--since", "0", "-c", "2", "-t", "10", *args], env=env)
    thread.join()
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert [(event["seq"], event["payload"]) for event in lines(result.stdout)] == [(1, {"n": 1}), (2, {"n": 2})]


@pytest.mark.parametrize("how", ["--url", "BROADCAST_URL"])
def test_bench_takes_the_same_url(server: ThreadedServer, how: str) -> None:
    args, env = given(how, server.http_url)
    result = bench_process(*args, "-n", "2", "-m", "6", env=env)
    assert result.returncode == 0, result.stderr
    (report,) = lines(result.stdout)
    assert report["target"]["urls"] == [server.ws_url]
    assert report["target"]["publish_url"] == server.http_url
    assert report["correctness"]["ok"] is True
    assert report["delivery"]["deliveries"] == report["delivery"]["expected"] == 12


def test_bench_publish_url_takes_any_form(server: ThreadedServer) -> None:
    result = bench_process("--url", server.ws_url, "--publish-url", f"{server.ws_url}/", "-n", "1", "-m", "2")
    assert result.returncode == 0, result.stderr
    (report,) = lines(result.stdout)
    assert report["target"]["publish_url"] == server.http_url


def test_bench_embedded_ignores_broadcast_url() -> None:
    # Were the variable read, its path would be refused (exit 2); it names a server to use, and --embedded starts one.
    result = bench_process("--embedded", "-n", "1", "-m", "2", env={"BROADCAST_URL": f"{dead_url()}/elsewhere"})
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[0]["target"]["embedded"] == "memory"


COMMANDS = {
    "publish": ["publish", "orders", "e"],
    "subscribe": ["subscribe", "-C", "orders"],
    "tail": ["tail"],
    "bench": ["bench", "-n", "1", "-m", "1"],
}


@pytest.mark.parametrize("how", ["--url", "BROADCAST_URL"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_path_that_is_not_the_servers_is_a_usage_error(runner: CliRunner, command: str, how: str) -> None:
    url = f"{dead_url()}/elsewhere/"
    args, env = given(how, url)
    result = runner.invoke(app, [*COMMANDS[command], *args], env=env)
    assert result.exit_code == ExitStatus.USAGE, result.output
    expected = (
        f"broadcast: invalid server URL '{url}': the path '/elsewhere/' is neither the server's base (/) nor one of "
        "its endpoints (/ws/broadcast, /publish), with or without a prefix (/PREFIX/ws/broadcast)"
    )
    assert result.stderr == expected + ("" if how == "--url" else "; it comes from BROADCAST_URL") + "\n"
    assert result.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_a_url_of_another_scheme_is_a_usage_error(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [*COMMANDS[command], "--url", "localhost:8000"])
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert result.stderr.startswith(
        "broadcast: invalid server URL 'localhost:8000': it must start with http://, https://, ws:// or wss:// "
        "(e.g. http://127.0.0.1:8000"
    )
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("url", ["https://127.0.0.1:1", "wss://127.0.0.1:1/ws/broadcast?token=secret"])
def test_the_bench_speaks_no_tls(runner: CliRunner, url: str) -> None:
    result = runner.invoke(app, ["bench", "--url", url])
    assert result.exit_code == ExitStatus.USAGE, result.output
    shown = url.replace("?token=secret", "?…")
    assert result.stderr == (
        f"broadcast: invalid server URL '{shown}': the bench speaks no TLS; give an http:// or ws:// URL\n"
    )


def test_broadcast_ws_url_still_serves_subscribe_and_tail_with_a_notice(
    runner: CliRunner, server: ThreadedServer
) -> None:
    server.publish("orders", "e", 1)
    env = {"BROADCAST_WS_URL": server.ws_url}
    for command in (["tail", "orders", "-n", "1", "-c", "1"], ["subscribe", "-C", "orders", "--since", "0", "-c", "1"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 0, result.output
        assert [event["payload"] for event in lines(result.stdout)] == [1]
        assert result.stderr == NOTICE.format("it still works")


def test_broadcast_ws_url_wins_over_broadcast_url_as_before(runner: CliRunner, server: ThreadedServer) -> None:
    server.publish("orders", "e", 1)
    env = {"BROADCAST_URL": dead_url(), "BROADCAST_WS_URL": server.ws_url}
    result = runner.invoke(app, ["tail", "orders", "-n", "1", "-c", "1", "--connect-timeout", "5"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stderr == NOTICE.format("it wins over BROADCAST_URL until it is unset")


def test_a_bad_broadcast_ws_url_says_where_it_comes_from(runner: CliRunner) -> None:
    result = runner.invoke(app, ["subscribe", "-C", "orders"], env={"BROADCAST_WS_URL": "ws://127.0.0.1:1/nowhere"})
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.endswith("; it comes from BROADCAST_WS_URL\n")


def test_url_wins_over_both_variables(runner: CliRunner, server: ThreadedServer) -> None:
    server.publish("orders", "e", 1)
    env = {"BROADCAST_URL": dead_url(), "BROADCAST_WS_URL": f"{dead_url()}/ws/broadcast"}
    for command in (["tail", "orders", "-n", "1", "-c", "1"], ["publish", "orders", "e", "2"]):
        result = runner.invoke(app, [*command, "--url", server.http_url], env=env)
        assert (result.exit_code, result.stderr) == (0, ""), result.output


def test_publish_and_bench_never_read_broadcast_ws_url(runner: CliRunner, server: ThreadedServer) -> None:
    env = {"BROADCAST_URL": server.http_url, "BROADCAST_WS_URL": f"{dead_url()}/ws/broadcast"}
    result = runner.invoke(app, ["publish", "orders", "e"], env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    result = bench_process("-n", "1", "-m", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout)[0]["target"]["urls"] == [server.ws_url]


SECRET = "a-secret-of-at-least-thirty-two-bytes-for-hs256"


def test_a_token_in_the_query_reaches_the_websocket_and_publish_still_works(runner: CliRunner) -> None:
    config = ServerConfig(security=Security(tokens=TokenVerifier(SECRET), public=Grant.of(["public"])))
    token = TokenSigner(SECRET).mint("alice", channels=["orders"])
    with threaded_server(config) as server:
        url = f"{server.http_url}/?token={token}"
        result = runner.invoke(app, ["publish", "orders", "e", "1", "--url", url])
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        result = runner.invoke(app, ["tail", "orders", "-n", "1", "-c", "1", "--url", url])
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        assert [event["payload"] for event in lines(result.stdout)] == [1]
        # Without the token, the same server refuses the channel: the token did the work.
        result = runner.invoke(app, ["tail", "orders", "-n", "1", "-c", "1", "--url", server.http_url])
        assert result.exit_code == ExitStatus.REFUSED, result.output


# -- a server mounted under a path prefix, as behind a reverse proxy ---------------------------------------------


@contextlib.asynccontextmanager
async def prefixed_server(prefix: str) -> AsyncIterator[str]:
    """broadcast-cli's app mounted at *prefix* of another app; yields that app's base URL (without the prefix)."""
    inner = create_app(config=ServerConfig())

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with inner.router.lifespan_context(inner):
            yield

    async with serve_asgi(Starlette(routes=[Mount(prefix, app=inner)], lifespan=lifespan)) as urls:
        yield urls.http


async def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``broadcast ARGS`` as a process, without blocking the test's event loop (which serves the server)."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), scaled(60))
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_a_server_under_a_prefix_is_named_by_its_endpoint() -> None:
    async with prefixed_server("/realtime") as base:
        code, stdout, stderr = await run_cli("publish", "orders", "e", "1", "--url", f"{base}/realtime/publish")
        assert (code, stderr) == (0, ""), stdout
        code, stdout, stderr = await run_cli(
            "tail", "orders", "-n", "1", "-c", "1", "-t", "10", "--url", f"{base}/realtime/ws/broadcast"
        )
        assert (code, stderr) == (0, ""), stdout
        assert [event["payload"] for event in lines(stdout)] == [1]
        # The prefix alone could be a typo: refused, saying how to name such a server.
        code, _, stderr = await run_cli("publish", "orders", "e", "--url", f"{base}/realtime")
        assert code == ExitStatus.USAGE
        assert "with or without a prefix (/PREFIX/ws/broadcast)" in stderr
