"""Real components for integration tests: redis-server processes and servers.

Every Redis here is a real ``redis-server`` started on a free port, never a fake,
so tests can stop and restart it. When ``redis-server`` is missing the Redis
tests fail in CI and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn

from broadcast_cli.hub import Hub
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.serve import ServerUrls, bind, urls_for
from broadcast_cli.server.websocket import WebSocketEndpoint
from tests.conftest import IN_CI, scaled

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis() -> str:
    """The path of redis-server; fails (CI) or skips (elsewhere) when it is missing."""
    if REDIS_SERVER is None:
        message = "redis-server is not installed (apt-get install redis-server, or run the README's test command)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_SERVER


@dataclass
class RedisProcess:
    """A redis-server process of our own, on a free port, that can be stopped and restarted."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = require_redis()
        self.process = subprocess.Popen(
            [
                executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + scaled(15)
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}") from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server shared by the session's tests (flushed before each by ``redis_url``)."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The URL of an empty Redis."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server for this test alone, which the test may stop and restart."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@dataclass
class LiveServer:
    """A server running in the test's own event loop, on a real socket."""

    app_hub: Hub
    endpoint: WebSocketEndpoint
    http_url: str
    ws_url: str

    @property
    def hub(self) -> Hub:
        return self.app_hub

    def drop_connections(self, code: int = 1012) -> None:
        """Close every client connection from the server side."""
        self.endpoint.close_all(code, "dropped by the test")


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, ws_max_size: int = 64 * 1024) -> AsyncIterator[ServerUrls]:
    """Serve any ASGI *app* with uvicorn in this event loop, on a real socket, until the block ends."""
    sock = bind("127.0.0.1", 0)
    urls = urls_for(sock)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", ws_max_size=ws_max_size, ws_per_message_deflate=False)
    )
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    deadline = time.monotonic() + scaled(15)
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        await asyncio.sleep(0.005)
    try:
        yield urls
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, scaled(15))
        sock.close()


@contextlib.asynccontextmanager
async def run_live_server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    """Serve broadcast-cli's app with uvicorn in this event loop until the block ends."""
    app = create_app(config=config)
    async with serve_asgi(app, ws_max_size=config.limits.max_frame_bytes) as urls:
        yield LiveServer(app.state.hub, app.state.websocket, urls.http, urls.websocket)


@pytest.fixture
async def live_server() -> AsyncIterator[LiveServer]:
    """An in-memory server in the test's loop."""
    async with run_live_server(ServerConfig()) as server:
        yield server


@pytest.fixture
async def live_redis_server(redis_url: str) -> AsyncIterator[LiveServer]:
    """A server on the test Redis, in the test's loop."""
    async with run_live_server(ServerConfig(redis_url=redis_url)) as server:
        yield server


@dataclass
class ServerProcess:
    """A ``broadcast serve`` process; its stderr is collected in :attr:`stderr_lines`."""

    process: subprocess.Popen[str]
    http_url: str
    ws_url: str
    stderr_lines: list[str]
    reader: threading.Thread

    def _reap(self) -> int:
        code = self.process.wait()
        self.reader.join(scaled(10))
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def kill(self) -> None:
        """Kill it with SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def terminate(self) -> int:
        """Stop it with SIGTERM and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(scaled(15))
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._reap()


def start_server_process(*args: str, port: int = 0) -> ServerProcess:
    """Start ``python -m broadcast_cli serve`` and wait until it announces its URLs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcast_cli", "serve", "--port", str(port), "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    announced = threading.Event()
    urls: dict[str, str] = {}

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving on " in line:
                urls["http"] = line.split("serving on ", 1)[1].strip()
            elif line.strip().startswith("WebSocket"):
                urls["ws"] = line.split()[-1]
                announced.set()
        announced.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if not announced.wait(scaled(30)) or "ws" not in urls:
        process.kill()
        process.wait()
        reader.join(scaled(10))
        process.stderr.close()
        raise RuntimeError("broadcast serve did not announce its URLs:\n" + "".join(lines))
    return ServerProcess(process, urls["http"], urls["ws"], lines, reader)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``broadcast serve`` processes with ``start_server(*args)``; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(*args: str, port: int = 0) -> ServerProcess:
        server = start_server_process(*args, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()
