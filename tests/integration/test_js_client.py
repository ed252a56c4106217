"""The browser client under Node against real servers: the seed's frontend integration tests (2.3).

``tests/integration/js`` runs ``broadcast.js`` on Node's built-in test runner,
with the ``ws`` npm package as its WebSocket (installed with ``npm ci`` from the
lock file beside it). This test starts the real redis-server they share, then
runs ``node --test tests/integration/js``; the Node tests start, stop, kill and
restart the ``broadcast serve`` processes themselves (a restart happens in the
middle of a test), on free ports of 127.0.0.1, and always stop what they started.
Node's TAP output is shown when it fails.

When Node or npm is missing the test fails in CI and is skipped elsewhere, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI, scaled

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
STAMP = JS_DIR / "node_modules" / ".installed-from"
"""The SHA-256 of the package-lock.json that node_modules was installed from (``npm ci`` deletes it)."""
NODE_MAJOR = 20
COUNT = re.compile(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", re.MULTILINE)


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_node() -> str:
    """Node 20 or later; fails (CI) or skips (elsewhere) when it is missing or older."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed (apt-get install nodejs, or run the README's test command)")
    assert node is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=scaled(30)).stdout
    match = re.match(r"v(\d+)\.", version)
    if match is None or int(match.group(1)) < NODE_MAJOR:
        _missing(f"the Node integration tests need Node {NODE_MAJOR} or later; this is {version.strip() or node}")
    return node


def require_npm() -> str:
    """npm (Debian packages it apart from nodejs); fails (CI) or skips (elsewhere) when it is missing."""
    npm = shutil.which("npm")
    if npm is None:
        _missing("npm is not installed (apt-get install npm, or run the README's test command)")
    assert npm is not None
    return npm


def install_dependencies() -> None:
    """``npm ci`` in tests/integration/js when node_modules is missing or was installed from another lock."""
    digest = hashlib.sha256((JS_DIR / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    result = subprocess.run(
        [require_npm(), "ci", "--no-audit", "--no-fund"],
        cwd=JS_DIR, capture_output=True, text=True, timeout=scaled(300),
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci failed in {JS_DIR.relative_to(ROOT)}:\n{result.stdout}{result.stderr}", pytrace=False)
    STAMP.write_text(digest)


def node_environment(redis_url: str) -> dict[str, str]:
    """This process's environment (coverage's subprocess settings included), without the developer's
    BROADCAST_* settings, and with what the Node tests need to start servers."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BROADCAST_") or name == "BROADCAST_TEST_TIMEOUT_SCALE"
    }
    env["BROADCAST_TEST_SERVE"] = json.dumps([sys.executable, "-m", "broadcast_cli", "serve"])
    env["BROADCAST_TEST_REDIS_URL"] = redis_url
    return env


def kill_group(pgid: int) -> bool:
    """Kill what is left of process group *pgid* (Node's, which it shares with the servers it started);
    true when something was left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(scaled(420))
def test_browser_client_under_node_against_real_servers(redis_url: str) -> None:
    node = require_node()
    install_dependencies()
    command = [node, "--test", "--test-reporter=tap", str(JS_DIR.relative_to(ROOT))]
    # A session of its own: should Node hang, its process group (the servers it started too) is killed.
    process = subprocess.Popen(
        command, cwd=ROOT, env=node_environment(redis_url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=scaled(300))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)} did not finish in {scaled(300):.0f} s:\n{output}", pytrace=False)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    leftovers = kill_group(process.pid)
    counts = {name: int(number) for name, number in COUNT.findall(output)}
    if process.returncode != 0 or counts.get("fail", 1) or counts.get("cancelled", 0) or not counts.get("pass"):
        pytest.fail(f"{' '.join(command)} exited with status {process.returncode}:\n{output}", pytrace=False)
    assert not leftovers, f"the Node tests left processes running (now killed):\n{output}"
    print(output)  # shown with pytest -rP: each test's time, and how the recovery scenarios went
