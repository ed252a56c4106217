"""The optimistic-sync demo served by ``broadcast serve --demo`` at ``/demo``.

An orders list backed by SQLite, with a small JSON API, and a page that uses the
browser client: creating an order shows it at once (optimistically), tells the
other tabs over BroadcastChannel, and POSTs it; the API stores it and then
broadcasts ``order.created`` on channel ``orders`` (with the creating tab's client
id as ``origin``), so that every other browser and tab invalidates its list and
refetches. A rejected create rolls the optimistic row back and shows the error.

- :mod:`.orders` — the order model and the validation of a create request (no I/O);
- :mod:`.store` — the SQLite store;
- :mod:`.api` — the endpoints, and :func:`~.api.demo_routes` to mount them.
"""

from __future__ import annotations

from .api import DEMO_CHANNEL, DemoApi, demo_routes
from .orders import NewOrder, Order, parse_new_order
from .store import OrderExists, OrderStore

__all__ = [
    "DEMO_CHANNEL",
    "DemoApi",
    "NewOrder",
    "Order",
    "OrderExists",
    "OrderStore",
    "demo_routes",
    "parse_new_order",
]
