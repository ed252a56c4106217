"""CLI tests without I/O: the commands run in-process under typer's CliRunner.

What needs a server or Redis is in ``tests/integration/cli``; here the
commands parse options, validate input and format output, with whatever would
do I/O (``serve``'s ``run``) replaced to capture what it was given.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def no_saved_contexts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No context the developer saved is read: ``XDG_CONFIG_HOME`` is an empty directory of the test's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture(autouse=True)
def _no_broadcast_variables(clean_environment: None, no_saved_contexts: None) -> None:
    """Every CLI test starts from an environment without BROADCAST_* variables, and without saved contexts."""
