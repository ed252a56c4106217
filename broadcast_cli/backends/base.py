"""The interface every backend implements.

A backend stores each channel's position and history and carries messages
between instances. The hub (:mod:`broadcast_cli.hub`) owns local fan-out; a
backend only assigns positions, keeps history, and tells the hub about messages
published elsewhere. As in encode/broadcaster, the interface is one small class
and a backend is chosen by URL scheme (:func:`broadcast_cli.backends.create_backend`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from ..history import HistoryOptions, HistorySlice
from ..message import Message, PublishRequest

__all__ = ["Backend", "BackendListener"]


class BackendListener(abc.ABC):
    """What a backend calls back into: the hub."""

    @abc.abstractmethod
    def on_message(self, message: Message) -> None:
        """A message was published on a channel this instance subscribed to.

        Called on the event loop, in the order the backend received messages,
        which may repeat or skip messages: the hub orders them by ``seq``.
        """

    @abc.abstractmethod
    def on_resubscribed(self, channels: Sequence[str]) -> None:
        """The backend lost its subscription to *channels* for a while and has it back.

        Messages published in between may have been missed: the hub catches up
        from history.
        """


class Backend(abc.ABC):
    """Assigns positions, keeps history, and carries messages between instances.

    ``publish`` must be atomic per channel: assigning the ``seq``, appending to
    history and notifying the other instances happen as one step, so that every
    instance sees one order.
    """

    url: str
    """The URL the backend was created from (without credentials)."""

    options: HistoryOptions
    """How much history each channel keeps."""

    def __init__(self, options: HistoryOptions | None = None) -> None:
        self.options = options or HistoryOptions()
        self.listener: BackendListener | None = None

    @property
    def shared(self) -> bool:
        """Whether other instances share this backend (and need cross-instance fan-out)."""
        return False

    @property
    def connected(self) -> bool:
        """Whether the backend's connection for messages of other instances is up, as far as it knows.

        Answered without I/O (for metrics); :meth:`ping` asks the backend itself.
        """
        return True

    async def connect(self, listener: BackendListener) -> None:
        """Connect, and send messages published on subscribed channels to *listener*."""
        self.listener = listener

    async def disconnect(self) -> None:  # noqa: B027 - optional hook
        """Release every resource; the backend may not be used afterwards."""

    @abc.abstractmethod
    async def publish(self, request: PublishRequest, payload_json: bytes) -> Message:
        """Publish one message and return it with its position and encoded frame.

        *payload_json* is ``request.payload`` already encoded as JSON. Raises
        :class:`~broadcast_cli.exceptions.BackendUnavailable` when the message
        could not be stored and sent.
        """

    async def publish_many(self, requests: Sequence[tuple[PublishRequest, bytes]]) -> list[Message]:
        """Publish several messages in order; the default publishes one by one."""
        return [await self.publish(request, payload) for request, payload in requests]

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Start receiving *channel*'s messages; return once no message can be missed."""

    @abc.abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving *channel*'s messages."""

    async def psubscribe(self, pattern: str) -> None:  # noqa: B027 - in-process backends need nothing
        """Start receiving the messages of every channel matching *pattern* (``*`` = any run).

        A backend that cannot carry patterns (Redis with sharded pub/sub) raises
        :class:`~broadcast_cli.exceptions.InvalidRequest` with the code
        ``patterns_unavailable``.
        """

    async def punsubscribe(self, pattern: str) -> None:  # noqa: B027 - in-process backends need nothing
        """Stop receiving the messages of channels matching *pattern*."""

    @abc.abstractmethod
    async def history(self, channel: str, since: int | None) -> HistorySlice:
        """Return *channel*'s position and, when *since* is given, the messages after it.

        Reading the position of a channel that has none yet starts its epoch, so
        that every subscriber gets a real epoch to recover with.
        """

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~broadcast_cli.exceptions.BackendUnavailable` if the backend is unreachable."""


BackendFactory = Callable[..., Backend]
