"""broadcast-cli: real-time broadcast and optimistic sync for Python.

A backend publishes "something changed on channel ``orders``"; every connected
client gets it within milliseconds, and a client that reconnects gets what it
missed. ``docs/`` describes the wire protocol, the HTTP API and the Redis layout.

The public names below are imported lazily, so that ``import broadcast_cli``
stays cheap for code that needs only part of the package.

The package logs (``logging.getLogger("broadcast_cli…")``) but never prints on
its own: its logger has a :class:`logging.NullHandler`, so that an application
that configures no logging sees nothing from it (rather than Python's
last-resort handler on stderr), and one that does decides what to show. The
``broadcast`` command shows its logs with ``-v`` or ``--log-level``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .backends import Backend, MemoryBackend, create_backend
    from .backends.redis import RedisBackend
    from .broadcaster import Broadcaster, HandlerSubscription, RedisBroadcastBackend
    from .client import BroadcastClient, ClientState
    from .exceptions import (
        BackendError,
        BackendUnavailable,
        BroadcastError,
        ClientClosed,
        ClientError,
        ConfigurationError,
        ConnectError,
        InvalidChannel,
        InvalidEvent,
        InvalidPayload,
        InvalidRequest,
        ProtocolError,
        ServerError,
    )
    from .history import HistoryOptions
    from .hub import Hub
    from .message import Message, Position, PublishRequest
    from .server.app import create_app
    from .server.config import Limits, ServerConfig
    from .server.router import WebSocketBroadcastBackend

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "BroadcastClient",
    "BroadcastError",
    "Broadcaster",
    "ClientClosed",
    "ClientError",
    "ClientState",
    "ConfigurationError",
    "ConnectError",
    "HandlerSubscription",
    "HistoryOptions",
    "Hub",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPayload",
    "InvalidRequest",
    "Limits",
    "MemoryBackend",
    "Message",
    "Position",
    "ProtocolError",
    "PublishRequest",
    "RedisBackend",
    "RedisBroadcastBackend",
    "ServerConfig",
    "ServerError",
    "WebSocketBroadcastBackend",
    "__version__",
    "create_app",
    "create_backend",
]

_LOCATIONS = {
    "Backend": ".backends",
    "MemoryBackend": ".backends",
    "create_backend": ".backends",
    "RedisBackend": ".backends.redis",
    "Broadcaster": ".broadcaster",
    "RedisBroadcastBackend": ".broadcaster",
    "HandlerSubscription": ".broadcaster",
    "BroadcastClient": ".client",
    "ClientState": ".client",
    "HistoryOptions": ".history",
    "Hub": ".hub",
    "Message": ".message",
    "Position": ".message",
    "PublishRequest": ".message",
    "create_app": ".server.app",
    "Limits": ".server.config",
    "ServerConfig": ".server.config",
    "WebSocketBroadcastBackend": ".server.router",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        module = importlib.import_module(_LOCATIONS[name], __name__)
    elif name in __all__:
        module = importlib.import_module(".exceptions", __name__)
    else:
        raise AttributeError(f"module 'broadcast_cli' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
