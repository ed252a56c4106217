"""``--url`` of every command: where the URL comes from (the option, BROADCAST_URL, BROADCAST_WS_URL, the default)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from broadcast_cli.cli.options import DEFAULT_URL, TokenOption, UrlOption, connection_token, server_url
from broadcast_cli.exceptions import ConfigurationError

probe = typer.Typer()


@probe.command()
def show(ctx: typer.Context, url: UrlOption = DEFAULT_URL, legacy: bool = False) -> None:
    """Print the server's two URLs, then what it was told (``--legacy``: as subscribe and tail)."""
    notices: list[str] = []
    server = server_url(ctx, url, notice=notices.append if legacy else None)
    print(server.websocket, server.http, *notices, sep="\n")


def resolve(runner: CliRunner, *args: str, **env: str) -> list[str]:
    result = runner.invoke(probe, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.stdout.splitlines()


def test_the_default_is_the_local_server(runner: CliRunner) -> None:
    assert resolve(runner) == ["ws://127.0.0.1:8000/ws/broadcast", "http://127.0.0.1:8000"]
    assert resolve(runner, "--legacy") == ["ws://127.0.0.1:8000/ws/broadcast", "http://127.0.0.1:8000"]


def test_the_option_then_broadcast_url(runner: CliRunner) -> None:
    assert resolve(runner, "--url", "ws://a:1/ws/broadcast", BROADCAST_URL="http://b:2") == [
        "ws://a:1/ws/broadcast", "http://a:1",
    ]  # fmt: skip
    assert resolve(runner, BROADCAST_URL="https://b:2/") == ["wss://b:2/ws/broadcast", "https://b:2"]


def test_broadcast_ws_url_serves_only_who_asks_for_it(runner: CliRunner) -> None:
    assert resolve(runner, BROADCAST_WS_URL="ws://c:3/ws/broadcast") == [
        "ws://127.0.0.1:8000/ws/broadcast", "http://127.0.0.1:8000",
    ]  # fmt: skip
    websocket, http, notice = resolve(runner, "--legacy", BROADCAST_WS_URL="ws://c:3/ws/broadcast")
    assert (websocket, http) == ("ws://c:3/ws/broadcast", "http://c:3")
    assert notice.startswith("BROADCAST_WS_URL is deprecated (it still works): set BROADCAST_URL")


def test_broadcast_ws_url_wins_over_broadcast_url_as_before_but_not_over_the_option(runner: CliRunner) -> None:
    env = {"BROADCAST_URL": "http://b:2", "BROADCAST_WS_URL": "ws://c:3/ws/broadcast"}
    websocket, _, notice = resolve(runner, "--legacy", **env)
    assert websocket == "ws://c:3/ws/broadcast"
    assert notice.startswith("BROADCAST_WS_URL is deprecated (it wins over BROADCAST_URL until it is unset)")
    assert resolve(runner, "--legacy", "--url", "http://a:1", **env) == ["ws://a:1/ws/broadcast", "http://a:1"]
    assert resolve(runner, "--legacy", BROADCAST_URL="http://b:2", BROADCAST_WS_URL="")[0] == "ws://b:2/ws/broadcast"


@pytest.mark.parametrize(
    ("args", "env", "ending"),
    [
        (["--url", "http://h/x"], {}, "(/PREFIX/ws/broadcast)"),
        ([], {"BROADCAST_URL": "http://h/x"}, "(/PREFIX/ws/broadcast); it comes from BROADCAST_URL"),
        (["--legacy"], {"BROADCAST_WS_URL": "ws://h/x"}, "(/PREFIX/ws/broadcast); it comes from BROADCAST_WS_URL"),
    ],
)
def test_an_error_says_which_variable_the_url_came_from(
    runner: CliRunner, args: list[str], env: dict[str, str], ending: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve(runner, *args, **env)
    assert str(caught.value).startswith("invalid server URL ")
    assert str(caught.value).endswith(ending)


tokens = typer.Typer()


@tokens.command()
def show_token(ctx: typer.Context, url: UrlOption = DEFAULT_URL, token: TokenOption = None) -> None:
    """Print the WebSocket URL the token was taken out of, then the token."""
    server, chosen = connection_token(ctx, token, server_url(ctx, url))
    print(server.websocket, chosen, sep="\n")


def token_of(runner: CliRunner, *args: str, **env: str) -> list[str]:
    result = runner.invoke(tokens, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.stdout.splitlines()


def test_no_token_by_default(runner: CliRunner) -> None:
    assert token_of(runner) == ["ws://127.0.0.1:8000/ws/broadcast", "None"]


def test_the_token_is_taken_out_of_the_url_and_the_other_query_kept(runner: CliRunner) -> None:
    assert token_of(runner, "--url", "http://h:1/?a=1&token=t%2Bu&b=2") == ["ws://h:1/ws/broadcast?a=1&b=2", "t+u"]


@pytest.mark.parametrize(
    ("args", "env", "winner"),
    [
        (["--token", "opt"], {"BROADCAST_TOKEN": "env"}, "opt"),
        ([], {"BROADCAST_TOKEN": "env"}, "env"),
        (["--token", "opt", "--url", "http://h:1?token=url"], {}, "opt"),  # the dedicated option first
        (["--url", "http://h:1?token=url"], {"BROADCAST_TOKEN": "env"}, "url"),  # given on the command line
        ([], {"BROADCAST_URL": "http://h:1?token=url", "BROADCAST_TOKEN": "env"}, "env"),
        ([], {"BROADCAST_URL": "http://h:1?token=url"}, "url"),
    ],
)
def test_which_token_wins(runner: CliRunner, args: list[str], env: dict[str, str], winner: str) -> None:
    assert token_of(runner, *args, **env)[1] == winner
