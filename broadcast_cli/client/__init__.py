"""The Python client of a broadcast server: subscribe to channels over a WebSocket.

:class:`BroadcastClient` reconnects on its own and resubscribes from the last
position seen, so that nothing still in the server's history is lost; when
messages could not be recovered it tells the application (:class:`RecoveryInfo`)
so that it refetches. The subscription logic lives, without I/O, in
:mod:`.subscriptions`; :mod:`.client` is the asyncio loop around it.
"""

from __future__ import annotations

from .client import BroadcastClient, ClientState, Subscription
from .subscriptions import RecoveryInfo, RecoveryReason

__all__ = ["BroadcastClient", "ClientState", "RecoveryInfo", "RecoveryReason", "Subscription"]
