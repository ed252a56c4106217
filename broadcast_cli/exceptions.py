"""The exceptions raised by broadcast-cli, all rooted in :class:`BroadcastError`.

The tree::

    BroadcastError
    ├── ConfigurationError (also ValueError) — bad options, URL or settings
    ├── InvalidRequest (also ValueError) — input that breaks the protocol's rules
    │   ├── InvalidChannel — a channel name outside the naming rule
    │   ├── InvalidEvent — an event name that is empty or too long
    │   ├── InvalidPayload — a payload that is not JSON or is too large
    │   └── ProtocolError — a WebSocket frame that is not a valid v1 request
    ├── BackendError — the backend (e.g. Redis) failed or is unreachable
    │   └── BackendUnavailable — the backend cannot be reached right now
    ├── AuthenticationError — a token or API key is missing, malformed or wrongly signed
    │   └── TokenExpired — a connection token is past its ``exp``
    ├── PermissionDenied — the credentials do not grant this channel or action
    └── ClientError — raised by the Python client
        ├── ConnectError — the server could not be reached or refused the handshake
        ├── ServerError — the server answered a request with an error frame
        └── ClientClosed — the client was used after :meth:`disconnect`

Every error carries what a user needs to fix it: the offending value and the rule
it broke, in a message that reads as a sentence.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendUnavailable",
    "BroadcastError",
    "ClientClosed",
    "ClientError",
    "ConfigurationError",
    "ConnectError",
    "InvalidChannel",
    "InvalidEvent",
    "InvalidPayload",
    "InvalidRequest",
    "PermissionDenied",
    "ProtocolError",
    "ServerError",
    "TokenExpired",
]


class BroadcastError(Exception):
    """Base class of every error raised by broadcast-cli."""


class ConfigurationError(BroadcastError, ValueError):
    """An option, URL or setting is invalid."""


class InvalidRequest(BroadcastError, ValueError):
    """Input that breaks a rule of the protocol.

    :attr:`code` is the machine-readable error code sent to clients (in a WebSocket
    error frame or an HTTP error body); :attr:`request_id` is the ``id`` of the
    request that failed, when it had one.
    """

    code: str = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, request_id: object = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.request_id = request_id


class InvalidChannel(InvalidRequest):
    """A channel name does not follow the naming rule (see :data:`~broadcast_cli.message.CHANNEL_RULE`)."""

    code = "invalid_channel"


class InvalidEvent(InvalidRequest):
    """An event name is not a string of 1 to 128 characters."""

    code = "invalid_event"


class InvalidPayload(InvalidRequest):
    """A payload cannot be encoded as JSON, or its encoding exceeds the size limit."""

    code = "invalid_payload"


class ProtocolError(InvalidRequest):
    """A WebSocket frame is not a valid protocol v1 request."""


class BackendError(BroadcastError):
    """The backend failed to carry out an operation."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached, or the connection broke during the operation.

    A publish that raises this was not acknowledged. If the backend could not be
    reached it was not carried out; if the connection broke mid-call it may have
    been: retry with the same message ``id`` so that subscribers can spot a repeat.
    """


class AuthenticationError(BroadcastError):
    """Credentials (a connection token or an API key) are missing, malformed or wrongly signed."""


class TokenExpired(AuthenticationError):
    """A connection token is past its ``exp``: fetch a new one and reconnect."""


class PermissionDenied(BroadcastError):
    """The credentials are valid but do not grant this channel or action."""


class ClientError(BroadcastError):
    """An error raised by :class:`~broadcast_cli.client.BroadcastClient`."""


class ConnectError(ClientError):
    """The client could not connect: the server is unreachable or refused the handshake."""


class ServerError(ClientError):
    """The server answered a request with an error frame.

    :attr:`code` and :attr:`request_id` are copied from the frame.
    """

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(f"server refused the request ({code}): {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class ClientClosed(ClientError):
    """The client was used after :meth:`~broadcast_cli.client.BroadcastClient.disconnect`."""
