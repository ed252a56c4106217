"""What ``broadcast`` says when something goes wrong, as a user sees it: real processes against ``broadcast serve``.

One line on stderr per failure (the library prints nothing on its own), a status
a script can act on, and never a token or an API key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import orjson
import pytest

from broadcast_cli.auth import TokenSigner
from broadcast_cli.cli.status import ExitStatus
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess

SECRET = "a-secret-of-at-least-thirty-two-bytes-for-hs256"
SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]


def broadcast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``broadcast ARGS`` to completion, stdout and stderr piped."""
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=scaled(60),
        env=os.environ | (env or {}),
    )


def publish(server: ServerProcess, channel: str, count: int = 1) -> dict[str, object]:
    """Publish *count* messages with ``broadcast publish``; the last receipt."""
    result = broadcast("publish", channel, "e", "{{count}}", "--count", str(count), "--url", server.http_url)
    assert (result.returncode, result.stderr) == (0, ""), result
    receipt: dict[str, object] = orjson.loads(result.stdout.splitlines()[-1])
    return receipt


@pytest.fixture
def secured(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server that takes connection tokens; ``public.*`` is readable without one."""
    return start_server("--token-secret", SECRET, "--public", "public.*")


def expired_token() -> str:
    """A well-signed token that expired a minute ago (past the server's leeway)."""
    now = int(time.time())
    return jwt.encode({"sub": "late", "iat": now - 3600, "exp": now - 60, "channels": ["orders"]}, SECRET)


def assert_one_line(stderr: str, start: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith(start), stderr


# -- tokens --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--token", "BROADCAST_TOKEN", "query"])
def test_a_token_reaches_the_server_whichever_way_it_is_given_and_is_never_shown(
    secured: ServerProcess, how: str
) -> None:
    publish(secured, "orders", 2)
    token = TokenSigner(SECRET).mint("alice", channels=["orders"])
    args = ["-vv", "tail", "orders", "-n", "2", "-c", "2", "-t", "10"]
    env = {}
    if how == "--token":
        args += ["--url", secured.http_url, "--token", token]
    elif how == "BROADCAST_TOKEN":
        args += ["--url", secured.http_url]
        env["BROADCAST_TOKEN"] = token
    else:
        args += ["--url", f"{secured.ws_url}?token={token}"]
    result = broadcast(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert [event["payload"] for event in map(orjson.loads, result.stdout.splitlines())] == [1, 2]
    assert "broadcast: debug: sending the connection token" in result.stderr  # -vv shows the library's logs
    assert token not in result.stderr and token not in result.stdout
    assert token.split(".")[2] not in result.stderr  # not even its signature


def test_without_the_token_the_same_channel_is_refused(secured: ServerProcess) -> None:
    result = broadcast("tail", "orders", "--url", secured.http_url)
    assert result.returncode == ExitStatus.REFUSED
    assert result.stderr == (
        "broadcast: server refused the request (forbidden): channel 'orders' needs a connection token "
        "(?token= or an auth request)\n"
    )


def test_an_invalid_token_is_refused_in_one_line_without_showing_it(secured: ServerProcess) -> None:
    forged = TokenSigner("another-secret-of-at-least-thirty-two-bytes!").mint("mallory", channels=["orders"])
    for args in (["--token", forged], ["--url", f"{secured.http_url}/?token={forged}"]):
        result = broadcast("subscribe", "-C", "orders", "--url", secured.http_url, *args)
        assert result.returncode == ExitStatus.REFUSED, result.stderr
        # The server's reason follows the code; the token is not in it.
        assert_one_line(result.stderr, f"broadcast: {secured.ws_url} refused the connection token (code 4501: ")
        assert forged not in result.stdout + result.stderr


def test_an_expired_token_exits_4_at_once_instead_of_reconnecting(secured: ServerProcess) -> None:
    result = broadcast("subscribe", "-C", "orders", "--url", secured.http_url, "--token", expired_token())
    assert result.returncode == ExitStatus.REFUSED
    assert result.stderr == (
        f"broadcast: {secured.ws_url} closed the connection: the connection token expired (code 4001); "
        "connect again with a fresh token\n"
    )


def test_a_token_sent_to_a_server_that_takes_none_is_refused(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    result = broadcast("tail", "--url", server.http_url, "--token", "not.a.token")
    assert result.returncode == ExitStatus.REFUSED
    assert_one_line(result.stderr, f"broadcast: {server.ws_url} refused the connection token (code 4501")
    assert "not.a.token" not in result.stderr


# -- where the server is -------------------------------------------------------------------------------------------


def test_a_wrong_websocket_path_says_where_the_endpoint_is(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    url = f"{server.http_url}/realtime/ws/broadcast"
    result = broadcast("subscribe", "-C", "orders", "--url", url)
    assert result.returncode == ExitStatus.REFUSED
    assert result.stderr == (
        f"broadcast: {url.replace('http', 'ws', 1)} refused the WebSocket handshake with HTTP 403: there is no "
        "WebSocket endpoint at /realtime/ws/broadcast; is the server really mounted under /realtime? Without a "
        "prefix, its endpoint is /ws/broadcast\n"
    )


def test_a_server_that_is_down_is_one_line_and_exits_3(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    url = server.ws_url
    server.terminate()
    result = broadcast("subscribe", "-C", "orders", "--url", url, "--connect-timeout", "0.5")
    assert result.returncode == ExitStatus.CANNOT_CONNECT
    assert result.stderr == f"broadcast: could not connect to {url} within 0.5 s\n"
    # -v shows what the library did meanwhile, on request only.
    result = broadcast("-v", "subscribe", "-C", "orders", "--url", url, "--connect-timeout", "0.5")
    assert result.returncode == ExitStatus.CANNOT_CONNECT
    assert f"broadcast: info: cannot connect to {url}: " in result.stderr
    assert result.stderr.endswith(f"broadcast: could not connect to {url} within 0.5 s\n")


# -- subscribe --since: what happened, and a status to act on --------------------------------------------------------


def test_since_from_another_epoch_says_the_history_was_reset(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    epoch = publish(server, "orders", 2)["epoch"]
    result = broadcast("subscribe", "-C", "orders", "--since", "5", "--epoch", "deadbeef", "-u", server.http_url)
    assert (result.returncode, result.stdout) == (ExitStatus.CANNOT_RESUME, "")
    assert result.stderr == (
        "broadcast: cannot resume orders from seq 5 of epoch deadbeef: its history was reset: it is in another "
        f"epoch now, at seq 2 of epoch {epoch}; refetch its state, then resume from seq 2 of epoch {epoch}\n"
    )


@pytest.mark.parametrize("with_epoch", [False, True])
def test_since_ahead_of_the_channel_says_there_is_nothing_to_replay(
    start_server: Callable[..., ServerProcess], with_epoch: bool
) -> None:
    server = start_server()
    epoch = publish(server, "orders", 2)["epoch"]
    args = ["--epoch", str(epoch)] if with_epoch else []
    result = broadcast("subscribe", "-C", "orders", "--since", "99999", *args, "-u", server.http_url)
    assert (result.returncode, result.stdout) == (ExitStatus.CANNOT_RESUME, "")
    asked = f"seq 99999 of epoch {epoch}" if with_epoch else "seq 99999"
    hint = "" if with_epoch else " (a seq from before its history was reset? an epoch would tell)"
    assert result.stderr == (
        f"broadcast: cannot resume orders from {asked}: nothing to replay: {asked} is ahead of the channel, which "
        f"is at seq 2 of epoch {epoch}{hint}; refetch its state, then resume from seq 2 of epoch {epoch}\n"
    )


def test_since_before_what_history_holds_says_the_messages_are_gone(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--history-size", "2")
    epoch = publish(server, "orders", 5)["epoch"]
    result = broadcast("subscribe", "-C", "orders", "--since", "1", "--epoch", str(epoch), "-u", server.http_url)
    assert (result.returncode, result.stdout) == (ExitStatus.CANNOT_RESUME, "")
    assert result.stderr == (
        f"broadcast: cannot resume orders from seq 1 of epoch {epoch}: the messages after it are no longer in the "
        f"server's history, trimmed or expired (the channel is at seq 5 of epoch {epoch}); refetch its state, then "
        f"resume from seq 5 of epoch {epoch}\n"
    )
    # Resuming from what history still holds replays it, and says nothing.
    result = broadcast("subscribe", "-C", "orders", "--since", "3", "--epoch", str(epoch), "-c", "2", "-u",
                       server.http_url)  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert [event["seq"] for event in map(orjson.loads, result.stdout.splitlines())] == [4, 5]
