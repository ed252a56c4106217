"""``broadcast serve --demo`` under CliRunner: the options reach the configuration, and a refusal."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import broadcast_cli.cli.commands.serve as serve_command
from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from broadcast_cli.server.config import ServerConfig


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    calls: list[ServerConfig] = []

    def run(config: ServerConfig, *, workers: int = 1, on_ready: object = None) -> None:
        calls.append(config)

    monkeypatch.setattr(serve_command, "run", run)
    return calls


def test_the_demo_is_off_by_default(runner: CliRunner, captured: list[ServerConfig]) -> None:
    assert runner.invoke(app, ["serve"]).exit_code == 0
    assert (captured[0].demo, captured[0].demo_db) == (False, None)


def test_demo_and_its_database(runner: CliRunner, captured: list[ServerConfig]) -> None:
    result = runner.invoke(app, ["serve", "--demo", "--demo-db", "/tmp/orders.sqlite3"])
    assert result.exit_code == 0, result.output
    assert (captured[0].demo, captured[0].demo_db) == (True, "/tmp/orders.sqlite3")


def test_demo_from_the_environment(runner: CliRunner, captured: list[ServerConfig]) -> None:
    result = runner.invoke(app, ["serve"], env={"BROADCAST_DEMO": "1", "BROADCAST_DEMO_DB": "o.db"})
    assert result.exit_code == 0, result.output
    assert (captured[0].demo, captured[0].demo_db) == (True, "o.db")


def test_demo_with_several_workers_needs_a_database_file(runner: CliRunner, captured: list[ServerConfig]) -> None:
    result = runner.invoke(app, ["serve", "--demo", "--workers", "2", "--redis-url", "redis://r/0"])
    assert result.exit_code == ExitStatus.USAGE
    assert "--demo-db" in result.output
    assert captured == []
