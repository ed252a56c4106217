"""``broadcast serve`` as a user runs it: URLs on start, one clear line on failure."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from broadcast_cli import __version__
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, free_port, worker_pids


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
    # A graceful shutdown on SIGTERM is a success.
    assert server.terminate() == 0
    assert "Traceback" not in "".join(server.stderr_lines)


def test_an_unreachable_redis_is_one_clear_error() -> None:
    result = serve("--port", "0", "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 3  # cannot connect
    assert result.stderr.startswith("broadcast: Redis at redis://127.0.0.1:")
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_backend_url_and_a_taken_port() -> None:
    import socket

    result = serve("--port", "0", "--redis-url", "mongodb://x")
    assert (result.returncode, result.stderr.strip()) == (
        2, "broadcast: unknown backend URL scheme 'mongodb' in 'mongodb://x': use memory:// or redis://host:port/db"
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


def alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: list[int]) -> None:
    import time

    deadline = time.monotonic() + scaled(15)
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers still alive: {[pid for pid in pids if alive(pid)]}"
        time.sleep(0.02)


@pytest.mark.redis
def test_workers_share_the_socket_and_stop_gracefully(
    start_server: Callable[..., ServerProcess], redis_url: str
) -> None:
    server = start_server("--workers", "2", "--redis-url", redis_url)
    pids = worker_pids(server)
    assert len(pids) == 2 and server.process.pid not in pids
    assert all(alive(pid) for pid in pids)
    with httpx.Client(timeout=scaled(10)) as client:
        # Each request on a new connection: the kernel spreads them among the workers; all share Redis.
        for n in range(1, 11):
            answer = client.post(f"{server.http_url}/publish", json={"channel": "c", "event": "e", "payload": n},
                                 headers={"connection": "close"})
            assert answer.json()["seq"] == n
    assert server.terminate() == 0
    wait_gone(pids)
    assert "Traceback" not in "".join(server.stderr_lines)


@pytest.mark.redis
def test_workers_stop_when_the_parent_dies(start_server: Callable[..., ServerProcess], redis_url: str) -> None:
    server = start_server("--workers", "2", "--redis-url", redis_url)
    pids = worker_pids(server)
    server.kill()
    wait_gone(pids)


def test_workers_without_redis_are_refused() -> None:
    result = serve("--port", "0", "--workers", "2")
    assert result.returncode == 2
    assert result.stderr.startswith("broadcast: --workers 2 needs --redis-url")


def test_ctrl_c_shuts_down_gracefully_closing_clients_with_1012(start_server: Callable[..., ServerProcess]) -> None:
    import signal

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    server = start_server()
    with connect(server.ws_url, open_timeout=scaled(10)) as ws:
        ws.send('{"subscribe": ["orders"], "id": 1}')
        assert '"ack"' in str(ws.recv(timeout=scaled(10)))
        server.process.send_signal(signal.SIGINT)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=scaled(15))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    assert server.process.wait(scaled(15)) == 0
