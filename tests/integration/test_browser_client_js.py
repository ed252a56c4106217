"""The browser client's unit tests (tests/js, Node's built-in test runner), run from pytest.

They drive broadcast.js with a fake WebSocket, BroadcastChannel, Web Locks and
clock: states, backoff bounds, resubscription with since/epoch, recovered:
false, invalidation, and the leader logic. Without Node they fail in CI and are
skipped elsewhere, saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI, scaled

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


def test_the_browser_client_passes_its_node_tests() -> None:
    if NODE is None:
        message = "node is not installed (apt-get install nodejs): the browser client's unit tests need Node 20+"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [NODE, "--test", "tests/js"], cwd=ROOT, capture_output=True, text=True, timeout=scaled(120), check=False
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, "node --test tests/js failed:\n" + result.stdout[-6000:] + result.stderr[-2000:]
    assert any(line.startswith("# pass ") and line != "# pass 0" for line in summary), "\n".join(summary)
