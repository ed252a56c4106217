"""The browser client (``GET /client.js``) in real Chromium, against real servers on a real Redis.

Leader takeover (the headline: close the tab holding the socket while messages
are published; the other tab gets every seq exactly once), reconnection and
recovery (the seed's scenario 4), ``recovered: false``, reference counts
across tabs, and the fallback to one socket per tab.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import scaled
from tests.e2e.browser.conftest import open_client_tab, poll, publish, subscribers
from tests.integration.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.redis


@pytest.fixture
def pair(redis_url: str, start_server: Callable[..., ServerProcess]) -> tuple[ServerProcess, ServerProcess]:
    """Two ``broadcast serve`` instances on one real Redis."""
    return start_server("--redis-url", redis_url), start_server("--redis-url", redis_url)


class Publisher:
    """Publishes *count* messages, one request after another, in a thread: traffic during a takeover."""

    def __init__(self, server: ServerProcess, channel: str, count: int) -> None:
        self.server, self.channel, self.count = server, channel, count
        self.published = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=scaled(10)) as http:
                for n in range(self.count):
                    body = {"channel": self.channel, "event": "tick", "payload": n}
                    http.post(f"{self.server.http_url}/publish", json=body).raise_for_status()
                    self.published += 1
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(scaled(60))
        assert not self.thread.is_alive(), "the publisher did not finish"
        assert self.error is None, f"publishing failed: {self.error!r}"


def test_when_the_leader_tab_closes_the_other_takes_over_and_gets_every_seq_exactly_once(
    pair: tuple[ServerProcess, ServerProcess], new_context: Callable[[], BrowserContext]
) -> None:
    one, two = pair
    context = new_context()
    leader = open_client_tab(context, one)
    follower = open_client_tab(context, one)
    for tab in (leader, follower):
        tab.js("() => window.subscribe('ticks')")
        tab.wait("() => window.acks.ticks >= 1")
    assert [leader.js("() => client.role"), follower.js("() => client.role")] == ["leader", "follower"]
    assert [len(leader.sockets), len(follower.sockets)] == [1, 0]
    total = 300
    with Publisher(two, "ticks", total) as publisher:
        follower.wait("() => window.seen.ticks.length >= 30")
        leader.page.close()  # while the publisher goes on
        follower.wait("() => client.role === 'leader' && client.state === 'connected'")
    assert publisher.published == total
    follower.wait(f"() => window.seen.ticks.length >= {total}", seconds=60)
    seen = follower.js("() => window.seen.ticks")
    assert seen == list(range(1, total + 1))  # every seq, in order, exactly once
    assert follower.js("() => window.losses") == []
    # The new leader opened one socket and resumed from the last seq it had seen.
    assert len(follower.sockets) == 1
    first = json.loads(follower.sent[0])
    [item] = first["subscribe"]
    assert item["channel"] == "ticks" and 30 <= item["since"] < total and "epoch" in item
    assert follower.errors == []


def test_scenario_4_a_client_reconnects_and_recovers_what_was_published_while_its_server_was_down(
    pair: tuple[ServerProcess, ServerProcess],
    new_context: Callable[[], BrowserContext],
    start_server: Callable[..., ServerProcess],
    redis_url: str,
) -> None:
    one, two = pair
    tab = open_client_tab(new_context(), one, backoff={"initial": 100, "maximum": 500})
    tab.js("() => window.subscribe('orders')")
    tab.wait("() => window.acks.orders >= 1")
    for n in range(3):
        publish(two, "orders", n)
    tab.wait("() => window.seen.orders.length === 3")
    port = int(one.http_url.rsplit(":", 1)[1])
    one.terminate()  # closes its clients with 1012
    tab.wait("() => client.state === 'reconnecting'")
    for n in range(3, 6):
        publish(two, "orders", n)  # missed while away
    start_server("--redis-url", redis_url, port=port)
    tab.wait("() => client.state === 'connected' && window.acks.orders >= 2")
    publish(two, "orders", 6)
    tab.wait("() => window.seen.orders.length >= 7")
    assert tab.js("() => window.seen.orders") == list(range(1, 8))
    assert tab.js("() => window.losses") == []
    resubscribe = json.loads(tab.sent[-1])["subscribe"]  # retries that found no server sent nothing
    assert [(item["channel"], item["since"]) for item in resubscribe] == [("orders", 3)]


def test_a_client_is_told_recovered_false_when_the_server_lost_its_history(
    new_context: Callable[[], BrowserContext], start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()  # in memory: a restart loses the history and changes the epoch
    tab = open_client_tab(new_context(), server, backoff={"initial": 100, "maximum": 500})
    tab.js("() => window.subscribe('orders')")
    tab.wait("() => window.acks.orders >= 1")
    publish(server, "orders")
    tab.wait("() => window.seen.orders.length === 1")
    port = int(server.http_url.rsplit(":", 1)[1])
    server.terminate()
    tab.wait("() => client.state === 'reconnecting'")
    start_server(port=port)
    tab.wait("() => window.losses.length === 1")
    loss = tab.js("() => window.losses[0]")
    assert loss["channel"] == "orders" and loss["recovered"] is False and loss["reason"] == "not_recovered"


def test_subscriptions_are_reference_counted_across_tabs_and_a_closed_tab_releases_its_own(
    pair: tuple[ServerProcess, ServerProcess], new_context: Callable[[], BrowserContext]
) -> None:
    one, _ = pair
    context = new_context()
    leader = open_client_tab(context, one)
    follower = open_client_tab(context, one)
    for tab in (leader, follower):
        tab.js("() => window.subscribe('shared')")
        tab.wait("() => window.acks.shared >= 1")
    follower.js("() => window.subscribe('mine')")
    follower.wait("() => window.acks.mine >= 1")
    assert subscribers(one, "shared") == subscribers(one, "mine") == 1
    leader.js("() => window.unsubscribe.shared()")
    publish(one, "shared")
    follower.wait("() => window.seen.shared.length === 1")  # still subscribed for the follower
    assert subscribers(one, "shared") == 1
    follower.js("() => window.unsubscribe.shared()")
    poll(lambda: subscribers(one, "shared") == 0, "the last tab's unsubscribe")
    follower.page.close()  # the leader notices (the tab's lock is released) and drops its channels
    poll(lambda: subscribers(one, "mine") == 0, "the closed tab's channel to be dropped")
    assert len(leader.sockets) == 1


@pytest.fixture
def without_web_locks(new_context: Callable[[], BrowserContext]) -> BrowserContext:
    """A context whose pages have no Web Locks API, like an old browser."""
    context = new_context()
    context.add_init_script("Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined })")
    return context


def test_without_web_locks_each_tab_has_its_own_socket(
    pair: tuple[ServerProcess, ServerProcess], without_web_locks: BrowserContext
) -> None:
    one, _ = pair
    tabs = [open_client_tab(without_web_locks, one) for _ in range(2)]
    for tab in tabs:
        assert tab.js("() => [client.role, client.shared]") == ["solo", False]
        tab.js("() => window.subscribe('orders')")
        tab.wait("() => window.acks.orders >= 1")
    publish(one, "orders")
    for tab in tabs:
        tab.wait("() => window.seen.orders.length === 1")
        assert len(tab.sockets) == 1
    assert subscribers(one, "orders") == 2


def test_the_client_module_is_served_with_its_types(pair: tuple[ServerProcess, ServerProcess]) -> None:
    one, _ = pair
    with httpx.Client(timeout=scaled(10)) as http:
        script = http.get(f"{one.http_url}/client.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
        assert script.headers["access-control-allow-origin"] == "*"
        assert "export class BroadcastClient" in script.text
        again = http.get(f"{one.http_url}/client.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304
        types = http.get(f"{one.http_url}/client.d.ts")
        assert types.status_code == 200 and "export class BroadcastClient" in types.text
        assert http.get(f"{one.http_url}/demo").status_code == 404  # only with --demo
