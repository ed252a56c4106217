"""``broadcast publish`` under CliRunner, against a real server in a thread."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from tests.integration.conftest import ThreadedServer, free_port


def receipts(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines()]


def history(server: ThreadedServer, channel: str, since: int = 0) -> list[tuple[str, object, str | None]]:
    recovery = server.call(server.hub.history(channel, since=since))
    return [(message.event, message.payload, message.origin) for message in recovery.messages]


def test_one_message_prints_its_receipt_as_json_when_piped(runner: CliRunner, server: ThreadedServer) -> None:
    args = ["publish", "orders", "order.created", '{"entity_id": "123"}', "--url", server.http_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [receipt] = receipts(result.stdout)
    assert receipt["channel"] == "orders" and receipt["seq"] == 1
    assert set(receipt) == {"channel", "seq", "epoch", "id", "ts"}
    assert result.stderr == ""
    assert history(server, "orders") == [("order.created", {"entity_id": "123"}, None)]


def test_the_payload_defaults_to_null_and_origin_is_passed_on(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "orders", "ping", "--origin", "me", "-u", server.http_url])
    assert result.exit_code == 0, result.output
    assert history(server, "orders") == [("ping", None, "me")]


def test_the_url_comes_from_broadcast_url(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "orders", "ping", "1"], env={"BROADCAST_URL": server.http_url})
    assert result.exit_code == 0, result.output
    assert receipts(result.stdout)[0]["seq"] == 1


def test_the_default_url_is_the_default_server() -> None:
    from broadcast_cli.cli.options import DEFAULT_HTTP_URL

    assert DEFAULT_HTTP_URL == "http://127.0.0.1:8000"


def test_the_payload_from_a_file_and_from_stdin(runner: CliRunner, server: ThreadedServer, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text('{"from": "file"}')
    assert runner.invoke(app, ["publish", "orders", "a", f"@{path}", "-u", server.http_url]).exit_code == 0
    result = runner.invoke(app, ["publish", "orders", "b", "-", "-u", server.http_url], input='{"from": "stdin"}\n')
    assert result.exit_code == 0, result.output
    assert history(server, "orders") == [("a", {"from": "file"}, None), ("b", {"from": "stdin"}, None)]


def test_count_expands_the_template(runner: CliRunner, server: ThreadedServer) -> None:
    args = ["publish", "orders", "tick", '{"n": {{count}}}', "--count", "3", "-u", server.http_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [r["seq"] for r in receipts(result.stdout)] == [1, 2, 3]
    assert [payload for _, payload, _ in history(server, "orders")] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_count_templates_work_in_names_too(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "shard.{{count}}", "e{{count}}", "[1]", "-c", "2", "-u", server.http_url])
    assert result.exit_code == 0, result.output
    assert [(r["channel"], r["seq"]) for r in receipts(result.stdout)] == [("shard.1", 1), ("shard.2", 1)]
    assert history(server, "shard.2") == [("e2", [1], None)]


def test_count_publishes_in_batches_of_at_most_1000(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "bulk", "e", "{{count}}", "-c", "2500", "-u", server.http_url])
    assert result.exit_code == 0, result.output
    assert [r["seq"] for r in receipts(result.stdout)] == list(range(1, 2501))


def test_ndjson_publishes_every_line_in_order(runner: CliRunner, server: ThreadedServer) -> None:
    lines = [orjson.dumps({"channel": "c", "event": "e", "payload": n}).decode() for n in range(1, 1501)]
    stdin = "\n".join([*lines[:2], "", *lines[2:]]) + "\n"  # a blank line is skipped
    result = runner.invoke(app, ["publish", "--ndjson", "--origin", "feed", "-u", server.http_url], input=stdin)
    assert result.exit_code == 0, result.output
    assert [r["seq"] for r in receipts(result.stdout)] == list(range(1, 1501))
    published = history(server, "c", since=500)  # history keeps the last 1000
    assert [payload for _, payload, _ in published] == list(range(501, 1501))
    assert {origin for _, _, origin in published} == {"feed"}


def test_a_bad_ndjson_line_stops_after_the_lines_before_it(runner: CliRunner, server: ThreadedServer) -> None:
    stdin = '{"channel": "c", "event": "e"}\n{"channel": "c"}\n{"channel": "c", "event": "never"}\n'
    result = runner.invoke(app, ["publish", "--ndjson", "-u", server.http_url], input=stdin)
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr == 'broadcast: line 2: a publish item needs "event"; 1 message published before it\n'
    assert len(receipts(result.stdout)) == 1


def test_pretty_output_is_a_summary(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "orders", "e", "-u", server.http_url, "--format", "pretty"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("published orders seq 1 (epoch ")
    args = ["publish", "orders", "e", "-c", "3", "-u", server.http_url]
    result = runner.invoke(app, args, env={"BROADCAST_FORMAT": "pretty"})
    assert result.stdout.splitlines() == ["published 3 messages", "  orders  seq 2…4  (3 messages)"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orders", "e", "{x"], "broadcast: the payload is not valid JSON: unexpected character"),
        (["a b", "e"], "broadcast: invalid channel name 'a b'"),
        (["orders", ""], "broadcast: invalid event name '': an event name is 1 to 128 characters"),
        (["orders", "bad name"], "broadcast: invalid event name 'bad name': an event name is 1 to 128 characters"),
        (["orders", "e", "@/no/such/file.json"], "broadcast: cannot read the payload file '/no/such/file.json'"),
        (["orders", "e", '{"n": {{count}}x}', "-c", "2"], "broadcast: the payload with {{count}} = 1 is not valid"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["publish", *args, "-u", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["orders"],
        ["--ndjson", "orders"],
        ["--ndjson", "--count", "2"],
        ["orders", "e", "--count", "0"],
        ["orders", "e", "--timeout", "0"],
        ["orders", "e", "--format", "yaml"],
        ["orders", "e", "--url", "http://h:1", "--redis-url", "redis://h:2/0"],
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, ["publish", *args])
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "Traceback" not in result.output


def test_a_server_that_is_down_exits_3(runner: CliRunner) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["publish", "orders", "e", "-u", url])
    assert result.exit_code == ExitStatus.CANNOT_CONNECT
    assert result.stderr == f"broadcast: cannot connect to {url}/publish: Connection refused\n"


def test_a_refusal_exits_4_with_the_servers_message(runner: CliRunner, server: ThreadedServer) -> None:
    big = '"' + "x" * 70_000 + '"'
    result = runner.invoke(app, ["publish", "orders", "e", big, "-u", server.http_url])
    assert result.exit_code == ExitStatus.REFUSED
    assert result.stderr == (
        "broadcast: the server refused the publish (413 payload_too_large): "
        "the payload is 70002 bytes as JSON; the limit is 65536\n"
    )
    result = runner.invoke(app, ["publish", "orders", "e", "-u", f"{server.http_url}/elsewhere/"])
    assert result.exit_code == ExitStatus.USAGE  # a path that is not the server's is refused before sending
    assert result.stderr.startswith(f"broadcast: invalid server URL '{server.http_url}/elsewhere/': the path")


@pytest.mark.redis
def test_redis_url_wins_over_broadcast_url_from_the_environment(runner: CliRunner, redis_url: str) -> None:
    args = ["publish", "orders", "e", "[1]", "--redis-url", redis_url, "--prefix", "t"]
    result = runner.invoke(app, args, env={"BROADCAST_URL": f"http://127.0.0.1:{free_port()}"})
    assert result.exit_code == 0, result.output
    assert receipts(result.stdout)[0]["seq"] == 1


def test_a_bad_url_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["publish", "orders", "e", "-u", "localhost:8000"])
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr == (
        "broadcast: invalid server URL 'localhost:8000': it must start with http://, https://, ws:// or wss:// "
        "(e.g. http://127.0.0.1:8000, https://example.com or ws://127.0.0.1:8000/ws/broadcast)\n"
    )


def test_help_has_examples(runner: CliRunner) -> None:
    result = runner.invoke(app, ["publish", "--help"])
    assert result.exit_code == 0
    assert "broadcast publish orders order.created" in result.stdout
    assert "BROADCAST_URL" in result.stdout and "Exit status" in result.stdout
