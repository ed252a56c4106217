"""The optimistic-sync demo in real Chromium: the seed's scenarios 1, 2 and 3.

Two ``broadcast serve --demo`` instances share one real Redis and one SQLite
file. A create's POST can be held with Playwright's request routing, so that the
tests see the optimistic state for certain, not by luck of timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import scaled
from tests.e2e.browser.conftest import DemoPair, Tab, open_tab, poll, subscribers, timeout_ms
from tests.integration.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Route

pytestmark = pytest.mark.redis

ORDERS_API = "**/demo/api/orders"


def open_demo(context: BrowserContext, server: ServerProcess) -> Tab:
    """The demo page, once its subscription is acked and its first fetch is done."""
    tab = open_tab(context, f"{server.http_url}/demo")
    tab.wait("() => window.demo?.client.state === 'connected' && window.demo.client.position('orders') !== null")
    tab.wait("() => window.demo.query.loaded")
    return tab


def create_order(tab: Tab, item: str, quantity: int) -> None:
    """Fill the form and submit it, as a person would."""
    tab.page.get_by_test_id("item").fill(item)
    tab.page.get_by_test_id("quantity").fill(str(quantity))
    tab.page.get_by_test_id("create").click()


def row(tab: Tab, item: str, status: str | None = None) -> Any:
    """The orders-table rows showing *item* (with *status*: ``pending`` or ``saved``)."""
    selector = "tr" if status is None else f"tr[data-status={status}]"
    return tab.page.get_by_test_id("orders").locator(selector, has_text=item)


def hold_creates(tab: Tab) -> list[Route]:
    """Hold the page's POSTs to the orders API until the test continues them."""
    held: list[Route] = []

    def handle(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    tab.page.route(ORDERS_API, handle)
    return held


def stored_items(server: ServerProcess) -> list[str]:
    """The items the server has stored."""
    orders = httpx.get(f"{server.http_url}/demo/api/orders", timeout=scaled(10)).json()["orders"]
    return [order["item"] for order in orders]


def test_scenario_1_a_mutation_shows_at_once_then_is_confirmed_without_a_duplicate(
    demo_pair: DemoPair, new_context: Callable[[], BrowserContext]
) -> None:
    from playwright.sync_api import expect

    tab = open_demo(new_context(), demo_pair.one)
    fetches = tab.js("() => window.demo.query.fetches")
    held = hold_creates(tab)
    create_order(tab, "Espresso beans", 3)
    expect(row(tab, "Espresso beans", "pending")).to_have_count(1)  # optimistic, before the API answered
    expect(tab.page.get_by_test_id("count")).to_have_text("1 order (1 saving…)")  # the row shown is counted
    poll(lambda: len(held) == 1, "the create request")
    assert "Espresso beans" not in stored_items(demo_pair.one)
    held[0].continue_()
    expect(row(tab, "Espresso beans", "saved")).to_have_count(1)
    tab.wait("() => window.demo.events.some((e) => e.event === 'order.created' && e.own)")  # the broadcast came back
    expect(row(tab, "Espresso beans")).to_have_count(1)  # no duplicate row
    expect(tab.page.get_by_test_id("count")).to_have_text("1 order")
    assert tab.js("() => window.demo.query.fetches") == fetches  # its own echo invalidated nothing
    assert stored_items(demo_pair.one) == ["Espresso beans"]
    assert tab.errors == []


def test_scenario_2_an_order_created_in_one_browser_shows_in_another_on_the_other_instance(
    demo_pair: DemoPair, new_context: Callable[[], BrowserContext]
) -> None:
    from playwright.sync_api import expect

    a = open_demo(new_context(), demo_pair.one)
    b = open_demo(new_context(), demo_pair.two)
    create_order(a, "Green tea", 2)
    expect(row(a, "Green tea", "saved")).to_have_count(1)
    expect(row(b, "Green tea", "saved")).to_have_count(1)
    b.wait("() => window.demo.events.some((e) => e.event === 'order.created' && !e.own && !e.local)")
    ids = "() => [...document.querySelectorAll('[data-testid=orders] tr')].map((tr) => tr.dataset.orderId)"
    assert a.js(ids) == b.js(ids)
    assert a.errors == b.errors == []


def test_scenario_3_another_tab_shows_the_order_before_the_server_round_trip_on_one_websocket(
    demo_pair: DemoPair, new_context: Callable[[], BrowserContext]
) -> None:
    from playwright.sync_api import expect

    context = new_context()
    tab1 = open_demo(context, demo_pair.one)
    tab2 = open_demo(context, demo_pair.one)
    held = hold_creates(tab1)
    create_order(tab1, "Oat milk", 6)
    expect(row(tab2, "Oat milk", "pending")).to_have_count(1)  # over BroadcastChannel, not the server
    poll(lambda: len(held) == 1, "the create request")
    assert "Oat milk" not in stored_items(demo_pair.one)  # the round trip has not completed
    held[0].continue_()
    expect(row(tab2, "Oat milk", "saved")).to_have_count(1)
    expect(row(tab2, "Oat milk")).to_have_count(1)
    # One WebSocket for both tabs: the first tab's; the server sees one subscriber.
    assert [len(tab1.sockets), len(tab2.sockets)] == [1, 0]
    assert tab1.js("() => window.demo.client.role") == "leader"
    assert tab2.js("() => window.demo.client.role") == "follower"
    assert subscribers(demo_pair.one, "orders") == 1
    assert tab1.errors == tab2.errors == []


def test_a_rejected_create_rolls_back_in_every_tab_and_shows_the_error(
    demo_pair: DemoPair, new_context: Callable[[], BrowserContext]
) -> None:
    from playwright.sync_api import expect

    context = new_context()
    tab1 = open_demo(context, demo_pair.one)
    tab2 = open_demo(context, demo_pair.one)
    held = hold_creates(tab1)
    create_order(tab1, "Pallet of flour", 500)  # above the API's limit of 100
    expect(row(tab1, "Pallet of flour", "pending")).to_have_count(1)
    expect(row(tab2, "Pallet of flour", "pending")).to_have_count(1)
    poll(lambda: len(held) == 1, "the create request")
    held[0].continue_()
    expect(tab1.page.get_by_test_id("error")).to_contain_text("must be from 1 to 100", timeout=timeout_ms())
    expect(row(tab1, "Pallet of flour")).to_have_count(0)
    expect(row(tab2, "Pallet of flour")).to_have_count(0)
    assert stored_items(demo_pair.one) == []
