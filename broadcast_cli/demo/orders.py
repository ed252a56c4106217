"""The demo's order model and the validation of a create request; no I/O.

A create request is a JSON object::

    {"item": "Espresso beans", "quantity": 2, "id": "3f6c…", "client_id": "a1b2…"}

``id`` (optional) is chosen by the browser, so that its optimistic row and the
stored order are one row; ``client_id`` (optional) is the creating client's id,
broadcast as ``origin`` so that the creator can ignore its own echo.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidRequest

__all__ = ["MAX_ITEM_LENGTH", "MAX_QUANTITY", "NewOrder", "Order", "parse_new_order"]

MAX_ITEM_LENGTH = 80
"""The longest item name accepted, in characters."""

MAX_QUANTITY = 100
"""The largest quantity of one order: the demo's business rule, so that a person can see a create rejected."""

_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FIELDS = frozenset({"id", "item", "quantity", "client_id"})


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated create request."""

    id: str
    item: str
    quantity: int
    client_id: str | None = None
    """The creating client's id, broadcast as ``origin``."""


@dataclass(frozen=True, slots=True)
class Order:
    """A stored order."""

    id: str
    item: str
    quantity: int
    created_at: int
    """When it was stored, in milliseconds since the Unix epoch."""

    def to_json(self) -> dict[str, Any]:
        """The order as the API shows it."""
        return {"id": self.id, "item": self.item, "quantity": self.quantity, "created_at": self.created_at}


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_order")


def parse_new_order(data: object) -> NewOrder:
    """Validate a create request; raise :class:`~broadcast_cli.exceptions.InvalidRequest` (``invalid_order``)."""
    if not isinstance(data, dict):
        raise _invalid(f"an order must be a JSON object, not {type(data).__name__}")
    unknown = data.keys() - _FIELDS
    if unknown:
        raise _invalid(f"unknown field(s) {sorted(unknown)}: an order has item, quantity, id, client_id")
    item = data.get("item")
    if not isinstance(item, str) or not item.strip():
        raise _invalid('"item" is required: the name of what is ordered')
    item = item.strip()
    if len(item) > MAX_ITEM_LENGTH:
        raise _invalid(f'"item" may have at most {MAX_ITEM_LENGTH} characters, not {len(item)}')
    quantity = data.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise _invalid('"quantity" is required: a whole number')
    if not 1 <= quantity <= MAX_QUANTITY:
        raise _invalid(f'"quantity" must be from 1 to {MAX_QUANTITY}, not {quantity}')
    order_id = data.get("id")
    if order_id is None:
        order_id = secrets.token_hex(12)
    elif not isinstance(order_id, str) or _ID_RE.fullmatch(order_id) is None:
        raise _invalid('"id" must be 1 to 64 letters, digits, "-" or "_"')
    client_id = data.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= 128):
        raise _invalid('"client_id" must be a string of 1 to 128 characters')
    return NewOrder(order_id, item, quantity, client_id)
