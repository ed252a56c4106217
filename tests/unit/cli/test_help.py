"""``--help`` as it reads when piped: plain text, metavars for people, a truthful usage line."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from broadcast_cli.cli.app import app

COMMANDS = [
    *([command] for command in ["serve", "publish", "subscribe", "tail", "bench", "token", "context"]),
    *(["context", command] for command in ["add", "use", "ls", "show", "rm"]),
    [],
]


def help_of(runner: CliRunner, command: list[str]) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "broadcast")
def test_no_python_type_and_no_box_when_piped(runner: CliRunner, command: list[str]) -> None:
    text = help_of(runner, command)
    assert not re.search(r"<(bool|str|int|float|list\[|int range|float range|path)", text), text
    assert not set("╭╰│─┃━") & set(text), text  # no box drawn into a pipe
    assert text.startswith(f"Usage: broadcast {' '.join(command)}".rstrip() + " ")


def option_line(text: str, option: str) -> str:
    """The help line where *option* is described."""
    return next(line.strip() for line in text.splitlines() if re.match(rf"\s+(-\w, )?{re.escape(option)}\b", line))


@pytest.mark.parametrize(
    ("command", "option", "shown"),
    [
        ([], "--version", "--version  "),  # a flag: no metavar
        ([], "-h, --help", "-h, --help  "),
        ([], "--context", "--context NAME"),
        (["subscribe"], "--channel", "-C, --channel CHANNEL"),
        (["subscribe"], "--since", "--since SEQ"),
        (["subscribe"], "--timeout", "-t, --timeout SECONDS"),
        (["subscribe"], "--format", "--format [auto|pretty|json]"),
        (["subscribe"], "--token", "--token TOKEN"),
        (["tail"], "--stats", "--stats  "),
        (["serve"], "--port", "--port INTEGER"),
        (["serve"], "--redis-url", "--redis-url REDIS_URL"),
        (["serve"], "--log-level", "--log-level [critical|error|warning|info|debug|trace]"),
        (["token"], "--channel", "--channel CHANNEL"),
    ],
)
def test_metavars_say_what_the_value_is(runner: CliRunner, command: list[str], option: str, shown: str) -> None:
    assert option_line(help_of(runner, command), option).startswith(shown)


def test_usage_lines_show_what_is_required(runner: CliRunner) -> None:
    assert help_of(runner, ["publish"]).splitlines()[0] == (
        "Usage: broadcast publish [OPTIONS] (CHANNEL EVENT [PAYLOAD] | --ndjson)"
    )
    assert help_of(runner, ["tail"]).splitlines()[0] == "Usage: broadcast tail [OPTIONS] [CHANNEL|PATTERN]..."
    assert help_of(runner, ["context", "add"]).splitlines()[0] == "Usage: broadcast context add [OPTIONS] NAME"
    assert help_of(runner, ["context", "use"]).splitlines()[0] == "Usage: broadcast context use [OPTIONS] [NAME]"


def test_a_usage_error_is_plain_text_when_piped(runner: CliRunner) -> None:
    result = runner.invoke(app, ["subscribe"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Usage: broadcast subscribe [OPTIONS]\nTry 'broadcast subscribe -h' for help.\n\n"
        "Error: Missing option '--channel' / '-C'.\n"
    )
