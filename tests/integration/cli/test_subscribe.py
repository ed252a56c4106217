"""``broadcast subscribe`` under CliRunner, against a real server in a thread."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from tests.integration.conftest import ThreadedServer, free_port


def events(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines()]


def publish_when_subscribed(name: str, *messages: tuple[str, str, object]) -> object:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed(name)
        for channel, event, payload in messages:
            server.publish(channel, event, payload)

    return action


def test_events_are_printed_as_received_one_per_line(runner: CliRunner, server: ThreadedServer) -> None:
    thread = server.in_background(
        publish_when_subscribed("orders", ("orders", "a", {"n": 1}), ("other", "x", None), ("orders", "b", [2]))
    )
    result = runner.invoke(app, ["subscribe", "--channel", "orders", "--count", "2", "--url", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    received = events(result.stdout)
    assert [(e["channel"], e["event"], e["payload"], e["seq"]) for e in received] == [
        ("orders", "a", {"n": 1}, 1),
        ("orders", "b", [2], 2),
    ]
    assert set(received[0]) == {"channel", "event", "payload", "seq", "epoch", "id", "ts"}
    assert result.stderr == ""


def test_several_channels_and_a_pattern(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("users")
        server.wait_subscribed("orders.*")
        for channel in ("orders", "users", "orders.eu", "elsewhere", "orders.us.east"):
            server.publish(channel, "e")

    thread = server.in_background(action)
    args = ["subscribe", "-C", "orders", "-C", "users", "-C", "orders.*", "-c", "4"]
    result = runner.invoke(app, args, env={"BROADCAST_WS_URL": server.ws_url})  # deprecated, still works
    thread.join()
    assert result.exit_code == 0, result.output
    assert [e["channel"] for e in events(result.stdout)] == ["orders", "users", "orders.eu", "orders.us.east"]


def test_a_channel_and_a_matching_pattern_print_each_event_once(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("orders.eu")
        server.wait_subscribed("orders.*")
        for _ in range(3):
            server.publish("orders.eu", "e")

    thread = server.in_background(action)
    args = ["subscribe", "-C", "orders.eu", "-C", "orders.*", "-c", "3", "-t", "5", "-u", server.ws_url]
    result = runner.invoke(app, args)
    thread.join()
    assert result.exit_code == 0, result.output
    assert [e["seq"] for e in events(result.stdout)] == [1, 2, 3]


def test_since_replays_from_history(runner: CliRunner, server: ThreadedServer) -> None:
    for n in range(1, 6):
        server.publish("orders", "e", n)
    result = runner.invoke(app, ["subscribe", "-C", "orders", "--since", "2", "-c", "3", "-u", server.ws_url])
    assert result.exit_code == 0, result.output
    assert [(e["seq"], e["payload"]) for e in events(result.stdout)] == [(3, 3), (4, 4), (5, 5)]


def test_since_with_another_epoch_says_the_history_was_reset_and_exits_6(
    runner: CliRunner, server: ThreadedServer
) -> None:
    epoch = server.publish("orders", "e").epoch
    args = ["subscribe", "-C", "orders", "--since", "1", "--epoch", "old", "-t", "0.3", "-u", server.ws_url]
    result = runner.invoke(app, args)
    assert result.exit_code == ExitStatus.CANNOT_RESUME, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "broadcast: cannot resume orders from seq 1 of epoch old: its history was reset: it is in another epoch "
        f"now, at seq 1 of epoch {epoch}; refetch its state, then resume from seq 1 of epoch {epoch}\n"
    )


def test_timeout_ends_quietly_without_count_and_with_5_when_count_is_not_reached(
    runner: CliRunner, server: ThreadedServer
) -> None:
    result = runner.invoke(app, ["subscribe", "-C", "orders", "--timeout", "0.2", "-u", server.ws_url])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    server.publish("orders", "only")
    args = ["subscribe", "-C", "orders", "--since", "0", "-c", "2", "-t", "0.3", "-u", server.ws_url]
    result = runner.invoke(app, args)
    assert result.exit_code == ExitStatus.TIMEOUT
    assert len(events(result.stdout)) == 1
    assert result.stderr == "broadcast: no event for 0.3 s: 2 expected\n"


def test_a_dropped_connection_is_reconnected_and_nothing_is_lost(runner: CliRunner, server: ThreadedServer) -> None:
    def action(server: ThreadedServer) -> None:
        server.wait_subscribed("orders")
        server.publish("orders", "e", 1)
        server.drop_connections()
        server.publish("orders", "e", 2)  # while the client reconnects: recovered from history
        server.publish("orders", "e", 3)
        server.wait_subscribed("orders")
        server.publish("orders", "e", 4)

    thread = server.in_background(action)
    result = runner.invoke(app, ["subscribe", "-C", "orders", "-c", "4", "-t", "10", "-u", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    assert [e["payload"] for e in events(result.stdout)] == [1, 2, 3, 4]
    assert [e["seq"] for e in events(result.stdout)] == [1, 2, 3, 4]
    closed = "broadcast: connection closed by the server (code 1012, dropped by the test); reconnecting\n"
    assert closed in result.stderr
    assert "broadcast: reconnected to " in result.stderr


def test_pretty_output_escapes_control_characters(runner: CliRunner, server: ThreadedServer) -> None:
    thread = server.in_background(
        publish_when_subscribed(
            "orders", ("orders", "evil", {"text": "\x1b]0;pwned\x07 \u009b31m \u202e", "\x1b[2J": 1})
        )
    )
    result = runner.invoke(app, ["subscribe", "-C", "orders", "-c", "1", "--format", "pretty", "-u", server.ws_url])
    thread.join()
    assert result.exit_code == 0, result.output
    header, *payload = result.stdout.splitlines()
    assert " orders  evil  #1  epoch " in header
    assert payload == ["{", '  "text": "\\u001b]0;pwned\\u0007 \\u009b31m \\u202e",', '  "\\u001b[2J": 1', "}"]
    assert not any(ch in result.stdout for ch in "\x1b\x07\u009b\u202e")


def test_a_server_that_is_down_exits_3(runner: CliRunner) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws/broadcast"
    result = runner.invoke(app, ["subscribe", "-C", "orders", "--connect-timeout", "0.3", "-u", url])
    assert result.exit_code == ExitStatus.CANNOT_CONNECT
    assert result.stderr == f"broadcast: could not connect to {url} within 0.3 s\n"


def test_a_refused_subscription_exits_4(runner: CliRunner, server: ThreadedServer) -> None:
    patterns = [arg for n in range(33) for arg in ("-C", f"p{n}.*")]
    result = runner.invoke(app, ["subscribe", *patterns, "-u", server.ws_url])
    assert result.exit_code == ExitStatus.REFUSED, result.output
    assert result.stderr == (
        "broadcast: server refused the request (too_many_patterns): "
        "a connection may subscribe to at most 32 patterns\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-C", "a b"], "broadcast: invalid channel name 'a b'"),
        (["-C", "a b*"], "broadcast: invalid pattern 'a b*'"),
        (["-C", "a", "-C", "b", "--since", "1"], "broadcast: since resumes one channel"),
        (["-C", "a.*", "--since", "1"], "broadcast: since resumes one channel"),
        (["-C", "a", "-u", "http://x/y"], "broadcast: invalid server URL 'http://x/y': the path '/y'"),
        (["-C", "a", "-u", "x:8000"], "broadcast: invalid server URL 'x:8000': it must start with http://"),
    ],
)
def test_bad_input_exits_2_with_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["subscribe", *args])
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [[], ["-C", "a", "--epoch", "e"], ["-C", "a", "-c", "0"], ["-C", "a", "-t", "0"], ["-C", "a", "--since", "-1"]],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["subscribe", *args])
    assert result.exit_code == ExitStatus.USAGE, result.output


def test_help_has_examples_and_the_environment_variable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["subscribe", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "broadcast subscribe --channel orders" in result.stdout
    assert "BROADCAST_URL" in result.stdout and "http://127.0.0.1:8000" in result.stdout
    assert "BROADCAST_WS_URL, deprecated, still works" in result.stdout
