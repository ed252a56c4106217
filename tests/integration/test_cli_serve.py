"""``broadcast serve`` as a user runs it: URLs on start, one clear line on failure."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx

from broadcast_cli import __version__
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, free_port


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broadcast_cli", "serve", *args], capture_output=True, text=True, timeout=scaled(30)
    )


def test_serve_announces_its_urls_and_serves(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    announced = "".join(server.stderr_lines)
    assert f"serving on {server.http_url}" in announced
    assert f"WebSocket  {server.ws_url}" in announced and server.ws_url.endswith("/ws/broadcast")
    assert f"POST {server.http_url}/publish" in announced
    health = httpx.get(f"{server.http_url}/health", timeout=scaled(10)).json()
    assert health == {"status": "ok", "version": __version__, "protocol": 1, "backend": "memory://"}
    # uvicorn shuts down gracefully on SIGTERM, then lets the signal end the process.
    assert server.terminate() in (0, -15)
    assert "Traceback" not in "".join(server.stderr_lines)


def test_an_unreachable_redis_is_one_clear_error() -> None:
    result = serve("--port", "0", "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert result.stderr.startswith("broadcast: Redis at redis://127.0.0.1:")
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_backend_url_and_a_taken_port() -> None:
    import socket

    result = serve("--port", "0", "--redis-url", "mongodb://x")
    assert (result.returncode, result.stderr.strip()) == (
        1, "broadcast: unknown backend URL scheme 'mongodb' in 'mongodb://x': use memory:// or redis://host:port/db"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == f"broadcast: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "broadcast_cli", "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, f"broadcast-cli {__version__}")
