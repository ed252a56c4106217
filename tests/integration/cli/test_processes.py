"""The ``broadcast`` command as a process: how it starts, and what it imports."""

from __future__ import annotations

import subprocess
import sys

from broadcast_cli import __version__


def test_python_m_broadcast_cli_is_the_command() -> None:
    result = subprocess.run([sys.executable, "-m", "broadcast_cli", "--version"], capture_output=True, text=True)
    assert result.stdout == f"broadcast-cli {__version__}\n"


def test_rich_is_not_imported_for_ndjson() -> None:
    code = (
        "import sys, io; from broadcast_cli.cli.output import Output; from broadcast_cli.message import Message;"
        "Output(stdout=io.StringIO()).event(Message('c','e',1,1,'x','i',5)); Output().error('x');"
        "assert 'rich' not in sys.modules, 'rich was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
