"""CLI tests without I/O: the commands run in-process under typer's CliRunner.

What needs a server or Redis is in ``tests/integration/cli``; here the
commands parse options, validate input and format output, with whatever would
do I/O (``serve``'s ``run``) replaced to capture what it was given.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_broadcast_variables(clean_environment: None) -> None:
    """Every CLI test starts from an environment without BROADCAST_* variables."""
