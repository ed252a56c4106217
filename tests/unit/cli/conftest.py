"""CLI tests: the commands run in-process under typer's CliRunner, against real servers.

A command runs its own event loop (``asyncio.run``), so the servers it talks to
run in a thread of their own (:func:`threaded_server`), on real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from broadcast_cli.hub import Hub
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.serve import bind, urls_for
from broadcast_cli.server.websocket import WebSocketEndpoint
from tests.conftest import scaled
from tests.integration.conftest import redis_server, redis_url  # noqa: F401 - fixtures for the --redis-url tests


@dataclass
class ThreadedServer:
    """A broadcast server running in a thread with its own event loop."""

    http_url: str
    ws_url: str
    hub: Hub
    endpoint: WebSocketEndpoint
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine: Any) -> Any:
        """Run *coroutine* on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(scaled(10))

    def publish(self, channel: str, event: str, payload: Any = None) -> Any:
        """Publish through the server's hub."""
        return self.call(self.hub.publish(channel, event, payload))

    def subscribers(self, name: str) -> int:
        """How many connections subscribe to the channel or pattern *name*."""

        async def count() -> int:
            if "*" in name:
                return self.hub.patterns().get(name, 0)
            return self.hub.subscriber_count(name)

        return int(self.call(count()))

    def wait_subscribed(self, name: str, count: int = 1) -> None:
        """Wait until *count* connections subscribe to *name*."""
        deadline = time.monotonic() + scaled(15)
        while self.subscribers(name) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody subscribed to {name!r}")
            time.sleep(0.005)

    def drop_connections(self) -> None:
        """Close every WebSocket connection with 1012, as a restarting server does."""

        async def drop() -> None:
            self.endpoint.close_all(1012, "dropped by the test")

        self.call(drop())

    def in_background(self, action: Callable[[ThreadedServer], None]) -> threading.Thread:
        """Run *action(server)* in a thread (while a command runs in the test's), re-raising its error on join."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                action(self)
            except BaseException as exc:
                errors.append(exc)

        thread = _Joining(target=run, daemon=True, errors=errors)
        thread.start()
        return thread


class _Joining(threading.Thread):
    def __init__(self, *, target: Callable[[], None], daemon: bool, errors: list[BaseException]) -> None:
        super().__init__(target=target, daemon=daemon)
        self.errors = errors

    def join(self, timeout: float | None = None) -> None:
        super().join(scaled(15) if timeout is None else timeout)
        if self.errors:
            raise self.errors[0]


@contextlib.contextmanager
def threaded_server(config: ServerConfig | None = None) -> Iterator[ThreadedServer]:
    """Serve broadcast-cli's app with uvicorn in a thread until the block ends."""
    config = config or ServerConfig()
    app = create_app(config=config)
    sock = bind("127.0.0.1", 0)
    urls = urls_for(sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws_per_message_deflate=False))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    started = threading.Event()

    def check() -> None:
        if server.started:
            started.set()
        elif thread.is_alive():
            loop.call_later(0.005, check)

    loop.call_soon_threadsafe(check)
    if not started.wait(scaled(15)):
        raise RuntimeError("the threaded server did not start")
    try:
        yield ThreadedServer(urls.http, urls.websocket, app.state.hub, app.state.websocket, loop)
    finally:
        server.should_exit = True
        thread.join(scaled(15))
        loop.close()
        sock.close()


@pytest.fixture
def server() -> Iterator[ThreadedServer]:
    """An in-memory server in a thread."""
    with threaded_server() as running:
        yield running


@pytest.fixture
def runner() -> CliRunner:
    """Typer's CliRunner, with stdout and stderr kept apart."""
    return CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BROADCAST_* variable of the developer's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("BROADCAST_") and name != "BROADCAST_TEST_TIMEOUT_SCALE":
            monkeypatch.delenv(name)
