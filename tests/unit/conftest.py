"""The unit layer: pure code, no I/O.

Every test here runs with network sockets and child processes refused, so a
test that would need a server, Redis or another process fails at once, saying
so; such a test belongs in ``tests/integration``. Unix socket pairs stay
allowed: asyncio's event loop wakes itself up through one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pytest
from pytest_socket import disable_socket, enable_socket


class ProcessRefused(RuntimeError):
    """A unit test tried to start a process."""


@pytest.fixture(autouse=True)
def no_network_and_no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse network sockets and child processes for the duration of one unit test."""

    def refuse(self: subprocess.Popen[bytes], args: object, *rest: object, **options: object) -> NoReturn:
        raise ProcessRefused(f"a unit test may not start a process ({args!r}): move it to tests/integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()
