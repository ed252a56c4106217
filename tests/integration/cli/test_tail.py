"""``broadcast tail`` under CliRunner, against a real server in a thread."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from tests.integration.conftest import ThreadedServer, free_port


def events(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines()]


def test_by_default_every_channel(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("*")
        for channel in ("a", "b.c", "d:e"):
            server.publish(channel, "e", channel)

    thread = server.in_background(action)
    result = runner.invoke(app, ["tail", "-c", "3", "-u", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    assert [(e["channel"], e["payload"]) for e in events(result.stdout)] == [("a", "a"), ("b.c", "b.c"), ("d:e", "d:e")]


def test_n_replays_the_last_events_of_each_named_channel_then_follows(
    runner: CliRunner, server: ThreadedServer
) -> None:
    for n in range(1, 6):
        server.publish("orders", "e", n)
        server.publish("users", "e", n)

    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("orders")
        server.wait_subscribed("users")
        server.publish("orders", "live", 6)

    thread = server.in_background(action)
    result = runner.invoke(app, ["tail", "orders", "users", "-n", "2", "-c", "5", "-u", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    received = [(e["channel"], e["seq"]) for e in events(result.stdout)]
    assert sorted(received[:4]) == [("orders", 4), ("orders", 5), ("users", 4), ("users", 5)]
    assert received[4] == ("orders", 6)


def test_n_with_more_than_history_holds_replays_what_there_is(runner: CliRunner, server: ThreadedServer) -> None:
    server.publish("orders", "e", 1)
    result = runner.invoke(app, ["tail", "orders", "-n", "100", "-t", "0.3", "-u", server.ws_url])
    assert result.exit_code == 0, result.output
    assert [e["seq"] for e in events(result.stdout)] == [1]


def test_n_with_patterns_only_says_it_replays_nothing(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["tail", "orders.*", "-n", "5", "-t", "0.2", "-u", server.ws_url])
    assert result.exit_code == 0, result.output
    assert result.stderr == "broadcast: -n replays named channels only; patterns get live events\n"


def test_pretty_lines(runner: CliRunner, server: ThreadedServer) -> None:
    server.publish("orders", "order.created", {"entity_id": "123", "bad": "\x1b[31m"})
    args = ["tail", "orders", "-n", "1", "-c", "1", "--format", "pretty", "-u", server.ws_url]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    clock, rest = line.split(" ", 1)
    assert len(clock) == len("12:00:00.000") and clock[2] == ":" and clock[8] == "."
    assert rest == 'orders order.created #1 {"entity_id":"123","bad":"\\u001b[31m"}'
    # A line never wraps: it is cut to the terminal's width.
    result = runner.invoke(app, args, env={"COLUMNS": "40"})
    [line] = result.stdout.splitlines()
    assert len(line) == 40 and line.endswith("…")


def test_stats_as_json_lines(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("*")
        for channel in ("a", "a", "b"):
            server.publish(channel, "e")

    thread = server.in_background(action)
    result = runner.invoke(app, ["tail", "--stats", "-c", "3", "-u", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    final = events(result.stdout)[-1]["channels"]
    assert isinstance(final, list)
    assert [(row["channel"], row["total"], row["last_seq"]) for row in final] == [("a", 2, 2), ("b", 1, 1)]


def test_stats_as_a_table(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("*")
        server.publish("orders", "created")

    thread = server.in_background(action)
    args = ["tail", "--stats", "-c", "1", "--format", "pretty", "-u", server.ws_url]
    result = runner.invoke(app, args, env={"COLUMNS": "120"})
    thread.join()
    assert result.exit_code == 0, result.output
    assert "1 events, 1 channels" in result.stdout
    assert "orders" in result.stdout and "created" in result.stdout


def test_stats_timeout_without_events(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["tail", "--stats", "-t", "0.2", "-u", server.ws_url])
    assert result.exit_code == 0, result.output
    assert events(result.stdout)[-1] == {"channels": []}
    result = runner.invoke(app, ["tail", "--stats", "-t", "0.2", "-c", "1", "-u", server.ws_url])
    assert result.exit_code == ExitStatus.TIMEOUT


def test_a_server_that_is_down_exits_3(runner: CliRunner) -> None:
    port = free_port()
    result = runner.invoke(app, ["tail", "--connect-timeout", "0.2"], env={"BROADCAST_URL": f"http://127.0.0.1:{port}"})
    assert result.exit_code == ExitStatus.CANNOT_CONNECT
    assert result.stderr == f"broadcast: could not connect to ws://127.0.0.1:{port}/ws/broadcast within 0.2 s\n"


@pytest.mark.parametrize("args", [["-n", "0"], ["-n", "10001"], ["-c", "0"], ["--format", "xml"]])
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    assert runner.invoke(app, ["tail", *args]).exit_code == ExitStatus.USAGE


def test_bad_names_exit_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["tail", "no spaces"])
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("broadcast: invalid channel name 'no spaces'")


def test_help_has_examples(runner: CliRunner) -> None:
    result = runner.invoke(app, ["tail", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "broadcast tail orders 'users.*' -n 20" in result.stdout and "BROADCAST_URL" in result.stdout
