"""The committed completion scripts are those the CLI generates, and completion works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parents[3] / "completions"
SCRIPTS = {"bash": "broadcast.bash", "zsh": "_broadcast", "fish": "broadcast.fish"}
COMMAND = [sys.executable, "-c", "from broadcast_cli.cli.app import app; app(prog_name='broadcast')"]


def complete(env: dict[str, str]) -> str:
    result = subprocess.run(COMMAND, capture_output=True, text=True, env=os.environ | env, check=True)
    return result.stdout


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_the_committed_scripts_are_up_to_date(shell: str) -> None:
    generated = complete({"_BROADCAST_COMPLETE": f"source_{shell}"})
    committed = (COMPLETIONS / SCRIPTS[shell]).read_text()
    assert committed == generated, f"completions/{SCRIPTS[shell]} is out of date: run completions/generate.sh"


def test_bash_completes_commands_and_options() -> None:
    def words(line: str) -> list[str]:
        cword = str(len(line.split()) - (0 if line.endswith(" ") else 1))
        return complete({"_BROADCAST_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": cword}).split()

    assert words("broadcast ") == ["serve", "publish", "subscribe", "tail", "bench", "token", "context"]
    assert words("broadcast context ") == ["add", "use", "ls", "show", "rm"]
    assert "--token" in words("broadcast subscribe --")
    assert words("broadcast su") == ["subscribe"]
    assert "--stats" in words("broadcast tail --")
    assert words("broadcast tail --format ") == ["auto", "pretty", "json"]
    assert words("broadcast serve --log-level ") == ["critical", "error", "warning", "info", "debug", "trace"]
