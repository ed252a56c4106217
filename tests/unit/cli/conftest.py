"""CLI tests: the commands run in-process under typer's CliRunner, against real servers.

A command runs its own event loop (``asyncio.run``), so the servers it talks to
run in a thread of their own (:func:`threaded_server`), on real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.integration.conftest import (  # noqa: F401 - fixtures for the --redis-url tests
    ThreadedServer,
    redis_server,
    redis_url,
    threaded_server,
)


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    """An in-memory server in a thread."""
    with threaded_server() as running:
        yield running


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner, with stdout and stderr kept apart."""
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BROADCAST_* variable of the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("BROADCAST_") and name != "BROADCAST_TEST_TIMEOUT_SCALE":
            monkeypatch.delenv(name)
