"""``broadcast serve`` under CliRunner: options, environment variables and refusals.

The server itself runs in the integration tests (``tests/integration/test_cli_serve.py``);
here ``run`` is replaced to capture the configuration the options produce.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import broadcast_cli.cli.commands.serve as serve_command
from broadcast_cli.cli.app import app
from broadcast_cli.cli.status import ExitStatus
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.security import open_warnings
from broadcast_cli.server.serve import ServerUrls

Captured = list[tuple[ServerConfig, int]]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ServerConfig, int]]:
    calls: list[tuple[ServerConfig, int]] = []

    def run(config: ServerConfig, *, workers: int = 1, on_ready: object = None) -> None:
        calls.append((config, workers))

    monkeypatch.setattr(serve_command, "run", run)
    return calls


def test_defaults(runner: CliRunner, captured: list[tuple[ServerConfig, int]]) -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    [(config, workers)] = captured
    assert (config.host, config.port, config.redis_url, config.prefix, config.log_level) == (
        "127.0.0.1", 8000, None, "broadcast", "info"
    )
    assert (config.history.size, config.history.ttl, workers) == (1000, 600.0, 1)
    # What a stalled client may queue before 4008: sized for 10,000 connections (docs/guarantees.md).
    assert (config.limits.send_buffer_messages, config.limits.send_buffer_bytes) == (2000, 1024 * 1024)


def test_the_send_buffer_comes_from_options_or_the_environment(
    runner: CliRunner, captured: list[tuple[ServerConfig, int]]
) -> None:
    result = runner.invoke(app, ["serve", "--send-buffer-messages", "500", "--send-buffer-bytes", "4194304"])
    assert result.exit_code == 0, result.output
    env = {"BROADCAST_SEND_BUFFER_MESSAGES": "20000", "BROADCAST_SEND_BUFFER_BYTES": "16777216"}
    result = runner.invoke(app, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    [(options, _), (environment, _)] = captured
    assert (options.limits.send_buffer_messages, options.limits.send_buffer_bytes) == (500, 4 << 20)
    assert (environment.limits.send_buffer_messages, environment.limits.send_buffer_bytes) == (20_000, 16 << 20)


def test_options(runner: CliRunner, captured: list[tuple[ServerConfig, int]]) -> None:
    args = [
        "serve", "--host", "0.0.0.0", "--port", "9001", "--redis-url", "redis://r:6379/1", "--prefix", "app",
        "--history-size", "50", "--history-ttl", "30", "--workers", "3", "--log-level", "WARNING",
        "--api-key", "k" * 20,
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [(config, workers)] = captured
    assert (config.host, config.port, config.redis_url, config.prefix, config.log_level) == (
        "0.0.0.0", 9001, "redis://r:6379/1", "app", "warning"
    )
    assert (config.history.size, config.history.ttl, workers) == (50, 30.0, 3)


def test_every_option_comes_from_the_environment(runner: CliRunner, captured: list[tuple[ServerConfig, int]]) -> None:
    env = {
        "BROADCAST_HOST": "::1",
        "BROADCAST_PORT": "0",
        "BROADCAST_REDIS_URL": "redis://r/0",
        "BROADCAST_PREFIX": "p",
        "BROADCAST_HISTORY_SIZE": "0",
        "BROADCAST_HISTORY_TTL": "1000000",
        "BROADCAST_WORKERS": "2",
        "BROADCAST_LOG_LEVEL": "debug",
    }
    result = runner.invoke(app, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    [(config, workers)] = captured
    assert (config.host, config.port, config.redis_url, config.prefix, config.log_level) == (
        "::1", 0, "redis://r/0", "p", "debug"
    )
    assert (config.history.size, config.history.ttl, workers) == (0, 1_000_000.0, 2)
    assert config.history.meta_ttl >= config.history.ttl


def test_the_help_shows_every_environment_variable_and_an_example(runner: CliRunner) -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("HOST", "PORT", "REDIS_URL", "PREFIX", "HISTORY_SIZE", "HISTORY_TTL", "WORKERS", "LOG_LEVEL"):
        assert f"BROADCAST_{name}" in result.stdout
    assert "broadcast serve --host 0.0.0.0" in result.stdout and "Exit status" in result.stdout


def test_several_workers_need_redis(runner: CliRunner, captured: list[tuple[ServerConfig, int]]) -> None:
    result = runner.invoke(app, ["serve", "--workers", "4"])
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr == (
        "broadcast: --workers 4 needs --redis-url: each worker is a process of its own, and workers share "
        "channels and history only through Redis\n"
    )
    assert captured == []


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "70000"],
        ["--port", "x"],
        ["--workers", "0"],
        ["--history-size", "-1"],
        ["--history-ttl", "0"],
        ["--log-level", "loud"],
        ["--send-buffer-messages", "0"],
        ["--send-buffer-bytes", "1023"],
    ],
)
def test_bad_options_are_usage_errors(runner: CliRunner, captured: Captured, args: list[str]) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert captured == []


def test_the_announcement(capsys: pytest.CaptureFixture[str]) -> None:
    urls = ServerUrls("http://h:1", "ws://h:1/ws/broadcast", "http://h:1/publish", "http://h:1/health", (7, 8))
    serve_command._announce(urls)
    assert capsys.readouterr().err.splitlines() == [
        "broadcast: serving on http://h:1",
        "  WebSocket  ws://h:1/ws/broadcast",
        "  Publish    POST http://h:1/publish",
        "  Health     http://h:1/health",
        "  Workers    2 processes (7, 8)",
    ]


def test_a_non_loopback_address_needs_an_api_key_or_insecure(
    runner: CliRunner, captured: list[tuple[ServerConfig, int]]
) -> None:
    refused = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "refusing to serve on 0.0.0.0 without --api-key" in refused.stderr
    assert captured == []
    insecure = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--insecure"])
    assert insecure.exit_code == 0, insecure.output
    [(config, _)] = captured
    assert config.security.publishing_is_open and config.security.reading_is_open
    said = " ".join(open_warnings(config.security))
    assert "publishing is open" in said and "reading is open" in said and "any web page" in said


def test_security_options(runner: CliRunner, captured: list[tuple[ServerConfig, int]]) -> None:
    args = [
        "serve", "--api-key", "a" * 20, "--api-key", "b" * 20, "--token-secret", "s" * 40,
        "--public", "public.*", "--allowed-origin", "https://app.example.com", "--cors-origin", "https://app.example.com",
        "--max-connections", "10", "--rate-limit", "5", "--rate-burst", "7",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [(config, _)] = captured
    assert open_warnings(config.security) == []
    security = config.security
    assert len(security.api_keys.keys) == 2 and security.tokens is not None
    assert security.public.allows("public.news") and not security.public.allows("orders")
    assert security.origins.allows("https://app.example.com") and not security.origins.allows("https://evil.com")
    assert security.cors_origins == ("https://app.example.com",)
    limits = config.limits
    assert (limits.max_connections, limits.requests_per_second, limits.request_burst) == (10, 5.0, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-key", "short"], "at least 16"),
        (["--token-secret", "short"], "at least 32"),
        (["--token-algorithm", "RS256", "--token-secret", "s" * 40], "needs --token-public-key"),
        (["--token-public-key", "/nonexistent.pem", "--token-algorithm", "ES256"], "cannot read the token public key"),
        (["--allowed-origin", "app.example.com"], "invalid allowed origin"),
        (["--public", "not valid"], "cannot grant"),
    ],
)
def test_bad_security_options_are_usage_errors(
    runner: CliRunner, captured: list[tuple[ServerConfig, int]], args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.stderr
