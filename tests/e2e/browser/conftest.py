"""Real Chromium (Debian's ``chromium``, driven by Playwright) against real servers.

Layer 3 of the seed's plan: Browser → WebSocket → ``broadcast serve`` → Redis →
``broadcast serve`` → WebSocket → browser. Playwright's own browser builds are
never downloaded: Debian's ``chromium`` is launched through ``executable_path``.
When Chromium (or Playwright) is missing the tests fail in CI and are skipped
elsewhere, saying why.

The tests here are synchronous (Playwright's sync API): while it runs, the
thread's event loop is Playwright's, so no asyncio test may share this package.
Waits are conditions with scaled timeouts, never fixed sleeps.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import IN_CI, scaled
from tests.integration.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, WebSocket

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Chromium's flags: no sandbox (containers, root), and nothing that talks to the network by itself."""


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    """Debian's Chromium; fails (CI) or skips (elsewhere) when it is missing."""
    path = os.environ.get("BROADCAST_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or not Path(path).exists():
        _missing("chromium is not installed (apt-get install chromium, or run the README's test command)")
    assert path is not None
    return path


def timeout_ms(seconds: float = 20.0) -> float:
    """A Playwright timeout in milliseconds, scaled by ``BROADCAST_TEST_TIMEOUT_SCALE``."""
    return scaled(seconds) * 1000


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, for the browser tests of this package."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    manager = sync_playwright().start()
    yield manager
    manager.stop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the package; each test gets fresh contexts."""
    chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Make browser contexts (each one is a browser profile of its own); all are closed afterwards."""
    from playwright.sync_api import expect

    expect.set_options(timeout=timeout_ms())
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context()
        context.set_default_timeout(timeout_ms())
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@dataclass
class Tab:
    """A page, with the WebSockets it opened, the frames they sent, and its errors."""

    page: Page
    sockets: list[WebSocket] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("websocket", self._on_websocket)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _on_websocket(self, socket: WebSocket) -> None:
        self.sockets.append(socket)
        socket.on("framesent", lambda payload: self.sent.append(payload if isinstance(payload, str) else ""))

    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate *expression* (a function of *arg*) in the page."""
        return self.page.evaluate(expression, arg)

    def wait(self, expression: str, arg: Any = None, seconds: float = 20.0) -> None:
        """Wait until *expression* (a function of *arg*) is truthy in the page."""
        self.page.wait_for_function(expression, arg=arg, timeout=timeout_ms(seconds))


def open_tab(context: BrowserContext, url: str) -> Tab:
    """Open *url* in a new page of *context*."""
    tab = Tab(context.new_page())
    tab.page.goto(url)
    return tab


CLIENT_PAGE_SETUP = """async (options) => {
  const { BroadcastClient } = await import('/client.js')
  const client = new BroadcastClient('/ws/broadcast', options)
  window.client = client
  window.seen = {}
  window.losses = []
  window.acks = {}
  window.unsubscribe = {}
  window.subscribe = (channel) => {
    window.seen[channel] = []
    window.unsubscribe[channel] = client.subscribe(channel, (event) => window.seen[channel].push(event.seq), {
      onUnrecovered: (info) => window.losses.push(info),
      onReady: (ack) => { window.acks[channel] = (window.acks[channel] ?? 0) + 1 },
    })
  }
  client.connect()
}"""
"""Loads /client.js in a page and exposes a client with helpers the tests call."""


def open_client_tab(context: BrowserContext, server: ServerProcess, **options: Any) -> Tab:
    """A page of *server*'s origin running the browser client (``window.client``), connected."""
    tab = open_tab(context, f"{server.http_url}/health")
    tab.js(CLIENT_PAGE_SETUP, options)
    tab.wait("() => window.client.state === 'connected'")
    return tab


def poll(predicate: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Poll *predicate* (e.g. an HTTP check) until true; fail after *seconds* (scaled)."""
    deadline = time.monotonic() + scaled(seconds)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(seconds):.1f} s waiting for {what}")
        time.sleep(0.02)


def subscribers(server: ServerProcess, channel: str) -> int:
    """How many connections of *server* subscribe *channel* (``GET /channels``)."""
    answer = httpx.get(f"{server.http_url}/channels", timeout=scaled(10)).json()
    return sum(item["subscribers"] for item in answer["channels"] if item["channel"] == channel)


def publish(server: ServerProcess, channel: str, payload: object = None, event: str = "tick") -> dict[str, Any]:
    """Publish one message through *server*'s HTTP API."""
    response = httpx.post(
        f"{server.http_url}/publish", json={"channel": channel, "event": event, "payload": payload}, timeout=scaled(10)
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@dataclass
class DemoPair:
    """Two ``broadcast serve --demo`` instances on one Redis and one SQLite file."""

    one: ServerProcess
    two: ServerProcess
    database: Path


@pytest.fixture
def demo_pair(redis_url: str, tmp_path: Path, start_server: Callable[..., ServerProcess]) -> DemoPair:
    """Two demo instances sharing one real Redis and one orders database."""
    database = tmp_path / "orders.sqlite3"
    args = ("--redis-url", redis_url, "--demo", "--demo-db", str(database))
    return DemoPair(start_server(*args), start_server(*args), database)
