"""``broadcast publish --count`` templates against a real server: valid JSON, distinct values, errors before sending."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime

import orjson
import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from tests.integration.conftest import ThreadedServer

TEMPLATE = (
    '{"id": {{uuid}}, "n": {{count}}, "i": {{index}}, "die": {{random(1,6)}}, "x": {{random}}, '
    '"ms": {{timestamp}}, "s": {{unix}}, "at": {{iso}}, "label": "order {{count}} of {{uuid}}"}'
)


def payloads(server: ThreadedServer, channel: str) -> list[dict[str, object]]:
    recovery = server.call(server.hub.history(channel, since=0))
    return [message.payload for message in recovery.messages]


def test_every_placeholder_makes_valid_json_with_distinct_values(runner: CliRunner, server: ThreadedServer) -> None:
    before = time.time_ns() // 1_000_000
    result = runner.invoke(app, ["publish", "orders", "made", TEMPLATE, "-c", "200", "-u", server.http_url])
    after = time.time_ns() // 1_000_000
    assert result.exit_code == 0, result.output
    made = payloads(server, "orders")
    assert len(made) == 200
    assert [payload["n"] for payload in made] == list(range(1, 201))
    assert [payload["i"] for payload in made] == list(range(200))
    ids = [payload["id"] for payload in made]
    assert len(set(ids)) == 200 and all(uuid.UUID(str(value)).version == 4 for value in ids)
    assert {payload["die"] for payload in made} <= set(range(1, 7)) and len({payload["die"] for payload in made}) > 1
    assert all(isinstance(payload["x"], float) and 0 <= payload["x"] < 1 for payload in made)
    assert len({payload["x"] for payload in made}) == 200
    for payload in made:
        ms = payload["ms"]
        assert isinstance(ms, int) and before <= ms <= after
        assert payload["s"] == ms // 1000
        assert datetime.fromisoformat(str(payload["at"]).replace("Z", "+00:00")).timestamp() == ms / 1000
        # In a string, the value is string content; each {{uuid}} draws a new one.
        label = re.fullmatch(rf"order {payload['n']} of ([0-9a-f-]{{36}})", str(payload["label"]))
        assert label is not None and uuid.UUID(label.group(1)).version == 4 and label.group(1) != payload["id"]


def test_templates_in_the_channel_and_event(runner: CliRunner, server: ThreadedServer) -> None:
    args = ["publish", "dice.{{random(1,2)}}", "roll.{{index}}", "-c", "40", "-u", server.http_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    channels = [orjson.loads(line)["channel"] for line in result.stdout.splitlines()]
    assert set(channels) == {"dice.1", "dice.2"}
    events = [message.event for name in ("dice.1", "dice.2")
              for message in server.call(server.hub.history(name, since=0)).messages]  # fmt: skip
    assert sorted(events) == sorted(f"roll.{index}" for index in range(40))


def test_without_count_the_text_is_sent_as_it_is(runner: CliRunner, server: ThreadedServer) -> None:
    result = runner.invoke(app, ["publish", "raw", "e", '{"greeting": "Hello {{name}}"}', "-u", server.http_url])
    assert result.exit_code == 0, result.output
    assert payloads(server, "raw") == [{"greeting": "Hello {{name}}"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["raw", "e", '{"to": {{name}}}'], "broadcast: unknown placeholder {{name}} in the payload: the "
         "placeholders are {{count}}, {{index}}, {{random}}, {{random(MIN,MAX)}}, {{timestamp}}, {{unix}}, {{iso}}, "
         "{{uuid}}\n"),
        (["raw.{{shard}}", "e"], "broadcast: unknown placeholder {{shard}} in the channel"),
        (["raw", "e", "{{random(6,1)}}"], "broadcast: {{random(6,1)}} in the payload: MIN is above MAX\n"),
        (["raw", "e", '"{{uuid"'], "broadcast: the payload has {{ that opens no placeholder at character 2"),
        (["raw", "e", "{{uuid}}{{uuid}}"], "broadcast: the payload with {{count}} = 1 is not valid JSON"),
    ],
)  # fmt: skip
def test_a_wrong_template_is_an_error_before_anything_is_sent(
    runner: CliRunner, server: ThreadedServer, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["publish", *args, "-c", "5", "-u", server.http_url])
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith(message), result.stderr
    assert result.stdout == ""
    assert server.call(server.hub.history("raw", since=0)).messages == []
