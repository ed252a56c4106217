"""The demo's orders, in SQLite.

One connection per store, used from worker threads (never the event loop) under
a lock. A file database is opened in WAL mode with a busy timeout, so that
several ``broadcast serve --demo --demo-db FILE`` processes (instances sharing
one Redis, or ``--workers``) share the same orders; without a file the orders
live in memory, in one process.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

from ..exceptions import BroadcastError
from .orders import NewOrder, Order

__all__ = ["OrderExists", "OrderStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    created_at INTEGER NOT NULL
)
"""


class OrderExists(BroadcastError):
    """An order with this id is already stored."""


class OrderStore:
    """The orders, in the SQLite database at *path* (``None``: in memory).

    The async methods run the queries in a worker thread.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        """The database file, or ``None`` for memory."""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path or ":memory:", timeout=10.0, check_same_thread=False, isolation_level=None)
            if self.path is not None:
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def create_sync(self, new: NewOrder) -> Order:
        """Store *new* and return it; raise :class:`OrderExists` if its id is taken."""
        order = Order(new.id, new.item, new.quantity, int(time.time() * 1000))
        with self._lock:
            try:
                self._connection().execute(
                    "INSERT INTO orders (id, item, quantity, created_at) VALUES (?, ?, ?, ?)",
                    (order.id, order.item, order.quantity, order.created_at),
                )
            except sqlite3.IntegrityError:
                raise OrderExists(f"an order with id {new.id!r} already exists") from None
        return order

    def latest_sync(self, limit: int = 500) -> list[Order]:
        """The latest *limit* orders, newest first."""
        query = "SELECT id, item, quantity, created_at FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._lock:
            rows = self._connection().execute(query, (limit,)).fetchall()
        return [Order(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def create(self, new: NewOrder) -> Order:
        """:meth:`create_sync` in a worker thread."""
        return await asyncio.to_thread(self.create_sync, new)

    async def latest(self, limit: int = 500) -> list[Order]:
        """:meth:`latest_sync` in a worker thread."""
        return await asyncio.to_thread(self.latest_sync, limit)

    def close(self) -> None:
        """Close the database (an in-memory one loses its orders); it reopens on next use."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
