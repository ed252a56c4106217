"""CLI tests against real servers: the commands run in-process under typer's CliRunner.

A command runs its own event loop (``asyncio.run``), so the servers it talks to
run in a thread of their own (:func:`threaded_server`), on real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ThreadedServer, threaded_server


@pytest.fixture
def no_saved_contexts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Contexts are saved in the test's own ``XDG_CONFIG_HOME`` (an empty directory), never the developer's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture(autouse=True)
def _no_broadcast_variables(clean_environment: None, no_saved_contexts: None) -> None:
    """Every CLI test starts from an environment without BROADCAST_* variables, and without saved contexts."""


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    """An in-memory server in a thread."""
    with threaded_server() as running:
        yield running
