"""``broadcast context``: servers saved under a name, and the order in which a command takes its URL and token.

Real processes, a real ``broadcast serve``, the contexts in the test's own
``XDG_CONFIG_HOME`` (the ``no_saved_contexts`` fixture).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import orjson
import pytest
import typer
from typer.testing import CliRunner

from broadcast_cli.auth import TokenSigner
from broadcast_cli.cli import contexts
from broadcast_cli.cli.contexts import Context, Contexts
from broadcast_cli.cli.options import (
    DEFAULT_URL,
    ContextOption,
    TokenOption,
    UrlOption,
    api_key,
    connection_token,
    server_url,
)
from broadcast_cli.cli.status import ExitStatus
from tests.conftest import scaled
from tests.integration.cli.terminal import run_in_terminal
from tests.integration.conftest import ServerProcess, free_port

SECRET = "a-secret-of-at-least-thirty-two-bytes-for-hs256"
API_KEY = "an-api-key-of-more-than-16-chars"
SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]


def broadcast(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``broadcast ARGS`` to completion (in the test's environment, plus *env*), output piped."""
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, input=stdin or "", timeout=scaled(60),
        env=os.environ | (env or {}),
    )  # fmt: skip


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def secured(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A server that needs a token to read ``orders`` and an API key to publish."""
    return start_server("--token-secret", SECRET, "--api-key", API_KEY, "--public", "public.*")


def payloads(stdout: str) -> list[object]:
    return [orjson.loads(line)["payload"] for line in stdout.splitlines()]


def test_a_context_gives_the_url_the_token_and_the_api_key(secured: ServerProcess, no_saved_contexts: Path) -> None:
    token = TokenSigner(SECRET).mint("alice", channels=["orders"])
    result = broadcast(
        "context", "add", "prod", "--url", secured.http_url, "--token", token, "--api-key", "-", "--use",
        stdin=API_KEY + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = no_saved_contexts / "broadcast-cli" / "contexts.json"
    assert result.stderr == f"broadcast: saved context 'prod' in {path}; it is in use\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds secrets
    # publish takes the URL and the API key, tail the URL and the token: no --url, --api-key or --token.
    result = broadcast("publish", "orders", "e", "1")
    assert (result.returncode, result.stderr) == (0, ""), result
    result = broadcast("tail", "orders", "-n", "1", "-c", "1", "-t", "10")
    assert (result.returncode, result.stderr) == (0, ""), result
    assert payloads(result.stdout) == [1]
    # Nothing shows a secret: ls and show mask them; the file alone holds them.
    for args in (["context", "ls"], ["context", "show"], ["context", "show", "prod"]):
        result = broadcast(*args)
        assert result.returncode == 0, result.stderr
        assert token not in result.stdout + result.stderr and API_KEY not in result.stdout + result.stderr
    assert orjson.loads(broadcast("context", "show").stdout) == {
        "name": "prod", "url": secured.http_url, "token": "***", "api_key": "***", "description": None,
        "current": True,
    }  # fmt: skip


def test_an_option_beats_a_variable_which_beats_the_context(
    start_server: Callable[..., ServerProcess], no_saved_contexts: Path
) -> None:
    server = start_server()
    assert broadcast("publish", "orders", "e", "1", "--url", server.http_url).returncode == 0
    tail = ["tail", "orders", "-n", "1", "-c", "1", "--connect-timeout", "1"]
    assert broadcast("context", "add", "good", "--url", server.http_url).returncode == 0
    assert broadcast("context", "add", "down", "--url", dead_url(), "--use").returncode == 0
    down = broadcast(*tail)
    assert down.returncode == ExitStatus.CANNOT_CONNECT, down.stderr  # the context in use
    assert payloads(broadcast("--context", "good", *tail).stdout) == [1]  # --context selects another
    assert payloads(broadcast(*tail, env={"BROADCAST_CONTEXT": "good"}).stdout) == [1]
    assert payloads(broadcast(*tail, env={"BROADCAST_URL": server.http_url}).stdout) == [1]  # a variable wins
    result = broadcast(*tail, "--url", server.http_url, env={"BROADCAST_URL": dead_url()})  # the option wins
    assert payloads(result.stdout) == [1]
    result = broadcast(*tail, "--url", dead_url(), env={"BROADCAST_CONTEXT": "good"})
    assert result.returncode == ExitStatus.CANNOT_CONNECT
    # --context beats BROADCAST_CONTEXT, and a name that names no context says which exist.
    result = broadcast("--context", "nope", *tail, env={"BROADCAST_CONTEXT": "good"})
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr == (
        "broadcast: no context named 'nope' (contexts: down, good); save one with: broadcast context add nope "
        "--url URL\n"
    )
    # Without a context in use, the variable or the option, as before contexts.
    assert broadcast("context", "use", "--none").returncode == 0
    assert payloads(broadcast(*tail, env={"BROADCAST_URL": server.http_url}).stdout) == [1]


def test_a_token_option_beats_the_contexts_token(secured: ServerProcess, no_saved_contexts: Path) -> None:
    signer = TokenSigner(SECRET)
    assert broadcast("publish", "orders", "e", "1", "--url", secured.http_url, "--api-key", API_KEY).returncode == 0
    reader = signer.mint("reader", channels=["orders"])
    outsider = signer.mint("outsider", channels=["other"])
    added = broadcast("context", "add", "prod", "--url", secured.http_url, "--token", outsider, "--use")
    assert added.returncode == 0
    tail = ["tail", "orders", "-n", "1", "-c", "1", "-t", "10"]
    assert broadcast(*tail).returncode == ExitStatus.REFUSED  # the context's token does not grant orders
    assert payloads(broadcast(*tail, "--token", reader).stdout) == [1]
    assert payloads(broadcast(*tail, env={"BROADCAST_TOKEN": reader}).stdout) == [1]
    assert payloads(broadcast(*tail, "--url", f"{secured.http_url}/?token={reader}").stdout) == [1]


def test_ls_is_ndjson_piped_and_a_table_on_a_terminal(no_saved_contexts: Path) -> None:
    assert broadcast("context", "ls").stderr == "broadcast: no contexts yet: broadcast context add NAME --url URL\n"
    broadcast("context", "add", "a", "--url", "http://a:1", "--description", "first")
    broadcast("context", "add", "b", "--url", "https://b.example.com", "--token", "t0ken-value", "--use")
    result = broadcast("context", "ls")
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [
        {"name": "a", "url": "http://a:1", "token": None, "api_key": None, "description": "first", "current": False},
        {"name": "b", "url": "https://b.example.com", "token": "***", "api_key": None, "description": None,
         "current": True},
    ]  # fmt: skip
    code, shown, _ = run_in_terminal("context", "ls")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert code == 0
    assert "┃ name" in shown and "https://b.example.com" in shown and "t0ken-value" not in shown


def test_mistakes_are_one_line_and_exit_2(no_saved_contexts: Path) -> None:
    cases = [
        (["context", "add", "x y", "--url", "http://a:1"], "broadcast: invalid context name 'x y': 1 to 64 letters"),
        (["context", "add", "a", "--url", "http://a:1/nope"], "broadcast: invalid server URL 'http://a:1/nope'"),
        (["context", "add", "a"], "broadcast: a context holds something: give --url, --token and/or --api-key"),
        (["context", "use", "ghost"], "broadcast: no context named 'ghost' (contexts: none yet)"),
        (["context", "rm", "ghost"], "broadcast: no context named 'ghost'"),
        (["context", "show"], "broadcast: no context is in use"),
    ]
    for args, start in cases:
        result = broadcast(*args)
        assert result.returncode == ExitStatus.USAGE, (args, result.stderr)
        assert result.stderr.startswith(start) and result.stderr.count("\n") == 1, result.stderr
    assert broadcast("context", "add", "a", "--url", "http://a:1").returncode == 0
    result = broadcast("context", "add", "a", "--url", "http://b:1")
    assert result.stderr == "broadcast: there is already a context named 'a': --force replaces it\n"
    assert broadcast("context", "add", "a", "--url", "http://b:1", "--force").returncode == 0
    assert orjson.loads(broadcast("context", "show", "a").stdout)["url"] == "http://b:1"
    assert broadcast("context", "rm", "a").stderr == "broadcast: removed context 'a'\n"
    # A file edited by hand into something else is named in the error.
    path = no_saved_contexts / "broadcast-cli" / "contexts.json"
    path.write_text("{not json")
    result = broadcast("tail")
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.startswith(f"broadcast: {path} is not valid JSON")


# -- the resolution helpers that every command calls, publish's and bench's included --------------------------------

probe = typer.Typer()


@probe.callback()
def _root(context_name: ContextOption = None) -> None:
    """As ``broadcast`` itself: ``--context``."""


@probe.command()
def resolve(
    ctx: typer.Context,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    key: Annotated[str | None, typer.Option("--api-key", envvar="BROADCAST_API_KEY")] = None,
) -> None:
    """Print the server, the token and the API key the command would use."""
    server, chosen = connection_token(ctx, token, server_url(ctx, url))
    print(server.http, chosen, api_key(ctx, key, parameter="key"), sep="\n")


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, ["http://ctx:1", "ctx-token", "ctx-key"]),
        (["--context", "other"], {}, ["http://other:2", "None", "None"]),
        ([], {"BROADCAST_CONTEXT": "other"}, ["http://other:2", "None", "None"]),
        ([], {"BROADCAST_URL": "http://env:3", "BROADCAST_TOKEN": "env-token", "BROADCAST_API_KEY": "env-key"},
         ["http://env:3", "env-token", "env-key"]),
        (["resolve", "--url", "http://opt:4", "--token", "opt-token", "--api-key", "opt-key"],
         {"BROADCAST_URL": "http://env:3", "BROADCAST_TOKEN": "env-token", "BROADCAST_API_KEY": "env-key"},
         ["http://opt:4", "opt-token", "opt-key"]),
    ],
)  # fmt: skip
def test_option_then_variable_then_context_then_default(
    runner: CliRunner, no_saved_contexts: Path, args: list[str], env: dict[str, str], expected: list[str]
) -> None:
    saved = Contexts(
        {
            "main": Context("main", url="http://ctx:1", token="ctx-token", api_key="ctx-key"),
            "other": Context("other", url="http://other:2"),
        },
        current="main",
    )
    contexts.save(saved, no_saved_contexts / "broadcast-cli" / "contexts.json")
    if not args or args[0] != "resolve":
        args = [*args, "resolve"]
    result = runner.invoke(probe, args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected


def test_bench_and_publish_take_the_contexts_server_and_api_key(
    start_server: Callable[..., ServerProcess], no_saved_contexts: Path
) -> None:
    server = start_server("--api-key", API_KEY)
    result = broadcast("context", "add", "bench", "--url", server.http_url, "--api-key", "-", "--use", stdin=API_KEY)
    assert result.returncode == 0, result.stderr
    result = broadcast("bench", "-n", "2", "--channels", "1", "-m", "20", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["target"]["publish_url"] == server.http_url
    assert report["delivery"]["deliveries"] == report["delivery"]["expected"] == 40
    assert report["correctness"]["ok"] is True
    assert API_KEY not in result.stdout + result.stderr  # the server took it: it refuses a publish without it
    result = broadcast("publish", "orders", "e", "1", env={"BROADCAST_CONTEXT": ""})
    assert result.returncode == 0, result.stderr
    broadcast("context", "rm", "bench")
    result = broadcast("publish", "--url", server.http_url, "orders", "e", "1")
    assert result.returncode == ExitStatus.REFUSED, result


def test_publish_refuses_a_redis_url_that_no_server_shares(no_saved_contexts: Path) -> None:
    result = broadcast("publish", "--redis-url", "memory://", "orders", "e", "1")
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.startswith("broadcast: cannot publish into 'memory://': give the Redis your servers share")
    assert len(result.stderr.splitlines()) == 1
