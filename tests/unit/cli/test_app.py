"""The ``broadcast`` app: its commands, --version, --help, and the exit statuses."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from broadcast_cli import __version__
from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus, status_for
from broadcast_cli.client.http import PublishRefused, RequestTimeout
from broadcast_cli.exceptions import (
    BackendError,
    BackendUnavailable,
    CannotResume,
    ConfigurationError,
    ConnectError,
    ConnectionRejected,
    InvalidChannel,
    InvalidPayload,
    ServerError,
)

COMMANDS = ["serve", "publish", "subscribe", "tail", "bench", "token", "context"]


def test_the_exit_statuses() -> None:
    assert {status.name: int(status) for status in ExitStatus} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "CANNOT_CONNECT": 3, "REFUSED": 4, "TIMEOUT": 5, "CANNOT_RESUME": 6,
        "INTERRUPTED": 130,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (KeyboardInterrupt(), ExitStatus.INTERRUPTED),
        (PublishRefused(400, "invalid_channel", "no"), ExitStatus.REFUSED),
        (PublishRefused(413, "too_large", "no"), ExitStatus.REFUSED),
        (PublishRefused(503, "backend_unavailable", "down"), ExitStatus.ERROR),
        (ServerError("too_many_patterns", "no"), ExitStatus.REFUSED),
        (ConnectError("down"), ExitStatus.CANNOT_CONNECT),
        (ConnectionRejected("bad token", close_code=4501), ExitStatus.REFUSED),
        (ConnectionRejected("no endpoint", http_status=403), ExitStatus.REFUSED),
        (
            CannotResume("reset", channel="c", since=5, epoch="e", seq=2, current_epoch="f", cause="history_reset"),
            ExitStatus.CANNOT_RESUME,
        ),
        (BackendUnavailable("down"), ExitStatus.CANNOT_CONNECT),
        (RequestTimeout("slow"), ExitStatus.TIMEOUT),
        (TimeoutError(), ExitStatus.TIMEOUT),
        (InvalidChannel("bad"), ExitStatus.USAGE),
        (InvalidPayload("bad"), ExitStatus.USAGE),
        (ConfigurationError("bad"), ExitStatus.USAGE),
        (BackendError("refused"), ExitStatus.ERROR),
        (RuntimeError("bug"), ExitStatus.ERROR),
    ],
)
def test_status_for(exc: BaseException, status: ExitStatus) -> None:
    assert status_for(exc) is status


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"broadcast-cli {__version__}\n")


def test_no_arguments_shows_the_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == ExitStatus.USAGE
    assert all(command in result.output for command in COMMANDS)


def test_the_help_lists_the_exit_statuses(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Exit status: 0 ok, 1 error, 2 usage or bad input, 3 cannot connect" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_an_example_in_its_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"broadcast {command}" in result.stdout.split("Examples:", 1)[1]
    assert "Exit status" in result.stdout


def test_an_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    assert runner.invoke(app, ["frobnicate"]).exit_code == ExitStatus.USAGE


def test_an_unexpected_error_is_one_line_unless_debugging(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import broadcast_cli.cli.commands.publish as publish_command

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(publish_command, "build_requests", broken)
    result = runner.invoke(app, ["publish", "c", "e"])
    assert result.exit_code == ExitStatus.ERROR
    assert result.stderr == (
        "broadcast: unexpected error: RuntimeError('a bug') (BROADCAST_DEBUG=1 shows the traceback)\n"
    )
    result = runner.invoke(app, ["publish", "c", "e"], env={"BROADCAST_DEBUG": "1"})
    assert isinstance(result.exception, RuntimeError)
