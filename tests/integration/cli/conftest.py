"""CLI tests against real servers: the commands run in-process under typer's CliRunner.

A command runs its own event loop (``asyncio.run``), so the servers it talks to
run in a thread of their own (:func:`threaded_server`), on real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import ThreadedServer, threaded_server


@pytest.fixture(autouse=True)
def _no_broadcast_variables(clean_environment: None) -> None:
    """Every CLI test starts from an environment without BROADCAST_* variables."""


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    """An in-memory server in a thread."""
    with threaded_server() as running:
        yield running
