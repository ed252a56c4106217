"""The README's FastAPI app, as a user runs it: the code block copied from README.md into app.py,
served by a real ``uvicorn`` process, and the real ``broadcast`` CLI publishing into it and
subscribing to it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from broadcast_cli.cli.status import ExitStatus
from tests.conftest import scaled
from tests.integration.conftest import free_port, stop_process

README = Path(__file__).resolve().parents[2] / "README.md"
SCRIPT = Path(sys.executable).with_name("broadcast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "broadcast_cli"]
KEY = "readme-example-key-0123456789"


def readme_app() -> tuple[str, str]:
    """The README's FastAPI code block, and the README's text before it."""
    text = README.read_text()
    blocks = [match for match in re.finditer(r"```python\n(.*?)```", text, re.S) if "include_router" in match[1]]
    assert len(blocks) == 1, "the README should have one Python block with the FastAPI app"
    return blocks[0][1], text[: blocks[0].start()]


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without BROADCAST_* variables (but the test timeout scale), plus *variables*."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BROADCAST_") or name == "BROADCAST_TEST_TIMEOUT_SCALE"
    }
    return {**kept, **variables}


@dataclass
class App:
    """The README's app under uvicorn."""

    process: subprocess.Popen[str]
    url: str


@pytest.fixture
def readme_app_server(tmp_path: Path) -> Iterator[App]:
    """``uvicorn app:app`` in a directory holding the README's app.py, with ``BROADCAST_API_KEY`` set."""
    code, _ = readme_app()
    (tmp_path / "app.py").write_text(code)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=environment(BROADCAST_API_KEY=KEY),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + scaled(30)
    with httpx.Client(timeout=scaled(5)) as http:
        while True:
            try:
                if http.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)  # type: ignore[arg-type]
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"uvicorn app:app did not start:\n{output}")
            time.sleep(0.02)
    yield App(process, url)
    stop_process(process)  # type: ignore[arg-type]
    if process.stdout is not None:
        process.stdout.close()


def broadcast(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, env=env, timeout=scaled(60))


def wait_subscribed(app: App, channel: str, subscriber: subprocess.Popen[str]) -> None:
    """Wait until the app's ``GET /channels`` shows a subscriber of *channel*."""
    deadline = time.monotonic() + scaled(30)
    with httpx.Client(timeout=scaled(10)) as http:
        while not any(
            item["channel"] == channel and item["subscribers"] > 0
            for item in http.get(f"{app.url}/channels").json()["channels"]
        ):
            if subscriber.poll() is not None:
                raise AssertionError(f"the subscriber exited: {subscriber.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody subscribed to {channel!r}")
            time.sleep(0.01)


def test_the_readme_says_to_install_the_fastapi_extra_before_its_app() -> None:
    _, before = readme_app()
    assert "pip install 'broadcast-cli[fastapi]'" in before.rsplit("##", 1)[-1]


def test_the_cli_publishes_into_the_readme_app_with_its_api_key_and_subscribes_to_it(
    readme_app_server: App,
) -> None:
    app = readme_app_server
    subscriber = subprocess.Popen(
        [*COMMAND, "subscribe", "-C", "orders", "--count", "2", "--url", app.url],
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_subscribed(app, "orders", subscriber)
        payload = '{"entity_id": "123"}'
        refused = broadcast("publish", "orders", "order.created", payload, "--url", app.url, env=environment())
        assert refused.returncode == ExitStatus.REFUSED, refused
        assert "API key" in refused.stderr
        published = broadcast(
            "publish", "orders", "order.created", payload, "--url", app.url, env=environment(BROADCAST_API_KEY=KEY)
        )
        assert (published.returncode, published.stderr) == (0, ""), published
        receipt = orjson.loads(published.stdout)
        with httpx.Client(base_url=app.url, timeout=scaled(10)) as http:
            created = http.post("/orders", json={"id": "124"})  # the app's own endpoint broadcasts too
            assert created.status_code == 200, created.text
            stdout, stderr = subscriber.communicate(timeout=scaled(30))
            assert (subscriber.returncode, stderr) == (0, "")
            events = [orjson.loads(line) for line in stdout.splitlines()]
            assert [(event["event"], event["payload"], event["seq"]) for event in events] == [
                ("order.created", {"entity_id": "123"}, 1),
                ("order.created", {"entity_id": "124"}, 2),
            ]
            assert events[0]["id"] == receipt["id"]

            health = http.get("/health")
            assert (health.status_code, health.json()["status"]) == (200, "ok")
            client = http.get("/client.js")
            assert client.status_code == 200
            assert client.headers["content-type"] == "text/javascript; charset=utf-8"
            assert "export class BroadcastClient" in client.text
            assert http.get("/client.d.ts").status_code == 200
            metrics = http.get("/metrics").text
            assert "broadcast_messages_published_total 2.0" in metrics
    finally:
        if subscriber.poll() is None:
            subscriber.kill()
            subscriber.communicate()
    app.process.send_signal(signal.SIGTERM)
    output, _ = app.process.communicate(timeout=scaled(30))
    # uvicorn re-raises the signal once it has shut down: the app's lifespan must have ended cleanly first.
    assert app.process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output, output
    assert "Traceback" not in output and "ERROR" not in output, output
