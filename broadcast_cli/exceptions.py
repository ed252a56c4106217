"""The exceptions raised by broadcast-cli, all rooted in :class:`BroadcastError`.

The tree::

    BroadcastError
    ├── ConfigurationError (also ValueError) — bad options, URL or settings
    ├── InvalidRequest (also ValueError) — input that breaks the protocol's rules
    │   ├── InvalidChannel — a channel name outside the naming rule
    │   ├── InvalidEvent — an event name outside the naming rule
    │   ├── InvalidPayload — a payload that is not JSON or is too large
    │   └── ProtocolError — a WebSocket frame that is not a valid v1 request
    ├── BackendError — the backend (e.g. Redis) failed or is unreachable
    │   └── BackendUnavailable — the backend cannot be reached right now
    ├── AuthenticationError — a token or API key is missing, malformed or wrongly signed
    │   └── TokenExpired — a connection token is past its ``exp``
    ├── PermissionDenied — the credentials do not grant this channel or action
    └── ClientError — raised by the Python client
        ├── ConnectError — the server could not be reached, or ended the connection for good
        │   └── ConnectionRejected — the server was reached and refused this client (token, origin, path)
        ├── ServerError — the server answered a request with an error frame
        ├── CannotResume — the server cannot replay a channel from the position asked (``since``)
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
    "CannotResume",
    "ClientClosed",
    "ClientError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionRejected",
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
    """An event name does not follow the naming rule (see :data:`~broadcast_cli.message.EVENT_RULE`)."""

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
    """The client could not connect: the server is unreachable, or ended the connection for good."""


class ConnectionRejected(ConnectError):
    """The server was reached and refused this client; trying again unchanged would be refused again.

    A handshake answered with an HTTP 4xx (no WebSocket endpoint at that path, a
    proxy's refusal), or a close code that forbids reconnecting unchanged: a
    connection token that is not valid (4501) or expired (4001, when the client
    has no way to get a fresh one), an ``Origin`` not allowed (4503).
    :attr:`close_code` or :attr:`http_status` says which, when known.
    """

    def __init__(self, message: str, *, close_code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.http_status = http_status


class ServerError(ClientError):
    """The server answered a request with an error frame.

    :attr:`code` and :attr:`request_id` are copied from the frame.
    """

    def __init__(self, code: str, message: str, request_id: object = None) -> None:
        super().__init__(f"server refused the request ({code}): {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class CannotResume(ClientError):
    """The server cannot replay a channel from the position the client asked to resume from (``since``).

    :attr:`channel` is the channel, :attr:`since` and :attr:`epoch` the position
    asked for, :attr:`seq` and :attr:`current_epoch` where the channel is now (from
    the server's ack), and :attr:`cause` why nothing could be replayed (see
    :class:`~broadcast_cli.client.subscriptions.ResumeFailure`): its history was
    reset (another epoch), the messages after *since* left its history, or
    *since* is ahead of the channel. The message says which, and how to go on.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        since: int,
        epoch: str | None,
        seq: int,
        current_epoch: str,
        cause: str,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.since = since
        self.epoch = epoch
        self.seq = seq
        self.current_epoch = current_epoch
        self.cause = cause


class ClientClosed(ClientError):
    """The client was used after :meth:`~broadcast_cli.client.BroadcastClient.disconnect`."""
