"""The events of some channels and patterns as one async iterator: what ``subscribe`` and ``tail`` read.

::

    async with EventStream(url, ["orders", "users.*"], last=10) as stream:
        async for message in stream:
            print(message.channel, message.seq, message.payload)

:class:`EventStream` wraps a :class:`~broadcast_cli.client.BroadcastClient`, so it
reconnects and recovers on its own; what happens to the connection is told to
*on_status* as sentences, for a person watching. Events come out in the order
they arrived, each once, even when a channel and a matching pattern are both
subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from ..exceptions import ConnectError, InvalidRequest
from ..message import Message, is_pattern
from .client import BroadcastClient, ClientState, Subscription
from .subscriptions import RecoveryInfo, RecoveryReason

__all__ = ["EventStream"]

CLOSE_TIMEOUT = 0.5
"""Seconds a stream waits for the server's close frame when it stops, before dropping the connection."""

_LOSS = {
    RecoveryReason.NOT_RECOVERED: "they are no longer in the server's history",
    RecoveryReason.EPOCH_CHANGED: "the channel's history was reset",
    RecoveryReason.GAP: "some were skipped",
}


class EventStream:
    """Subscribe to *names* (channels or patterns) and iterate over their events.

    *since* and *epoch* resume one channel from a position; *last* replays the
    last that many messages of each channel (patterns get live events only).
    :meth:`connect` (or ``async with``) waits until every subscription is acked,
    for at most *connect_timeout* seconds to reach the server. *max_pending*
    bounds the events received and not yet read; past it the client stops
    reading the socket until there is room.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        names: Sequence[str],
        *,
        since: int | None = None,
        epoch: str | None = None,
        last: int | None = None,
        connect_timeout: float | None = 10.0,
        on_status: Callable[[str], object] | None = None,
        max_pending: int = 10_000,
        client: BroadcastClient | None = None,
    ) -> None:
        if not names:
            raise InvalidRequest("name at least one channel or pattern")
        channels = [name for name in names if not is_pattern(name)]
        if since is not None and (len(channels) != 1 or len(names) != 1):
            raise InvalidRequest("since resumes one channel: name exactly one channel (and no pattern) with it")
        self.names = list(dict.fromkeys(names))
        """The channels and patterns subscribed to."""
        # A reader that stops reading (Ctrl-C, a closed pipe) must not wait long for a polite close.
        self.client = client if client is not None else BroadcastClient(url, close_timeout=CLOSE_TIMEOUT)
        """The client doing the work."""
        self._since, self._epoch, self._last = since, epoch, last
        self._connect_timeout = connect_timeout
        self._on_status = on_status
        self._queue: asyncio.Queue[Message] = asyncio.Queue(max_pending)
        self._previous: Message | None = None
        self._subscriptions: list[Subscription] = []
        self._remove_callback: Callable[[], None] | None = None
        self._was_connected = False

    # -- life cycle -----------------------------------------------------------

    async def connect(self) -> None:
        """Connect, subscribe, and wait until every subscription is acked.

        Raises :class:`~broadcast_cli.exceptions.ConnectError` when the server
        cannot be reached within *connect_timeout*, and
        :class:`~broadcast_cli.exceptions.ServerError` when it refuses a subscription.
        """
        for name in self.names:
            if is_pattern(name):
                subscription = self.client.subscribe(name, self._put)
            else:
                subscription = self.client.subscribe(
                    name, self._put, since=self._since, epoch=self._epoch, last=self._last,
                    on_unrecovered=self._unrecovered,
                )  # fmt: skip
            self._subscriptions.append(subscription)
        self._remove_callback = self.client.on_state_change(self._state_changed)
        await self.client.connect(self._connect_timeout)
        for subscription in self._subscriptions:
            await subscription.wait_ready()

    async def close(self) -> None:
        """Disconnect for good."""
        if self._remove_callback is not None:
            self._remove_callback()
        await self.client.disconnect()

    async def __aenter__(self) -> Self:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- events ---------------------------------------------------------------

    async def _put(self, message: Message) -> None:
        # A frame for a channel and a matching pattern reaches both handlers: keep it once.
        if message is self._previous:
            return
        self._previous = message
        await self._queue.put(message)

    async def next(self, timeout: float | None = None) -> Message:  # noqa: ASYNC109 - an idle timeout, per event
        """The next event; :exc:`TimeoutError` if none comes within *timeout* seconds.

        Raises :class:`~broadcast_cli.exceptions.ConnectError` when the client
        stopped for good (the server closed with a code that forbids reconnecting).
        """
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        getting = asyncio.ensure_future(self._queue.get())
        stopping = asyncio.ensure_future(self.client.wait_for_state(ClientState.DISCONNECTED))
        try:
            done, _ = await asyncio.wait({getting, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not getting.done():
                getting.cancel()
        if getting in done:
            return getting.result()
        if stopping in done:
            if stopping.exception() is not None:
                raise stopping.exception()  # type: ignore[misc]
            raise ConnectError(self._stopped_reason())
        raise TimeoutError(f"no event within {timeout} s")

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Message:
        return await self.next()

    # -- status ---------------------------------------------------------------

    def _status(self, text: str) -> None:
        if self._on_status is not None:
            self._on_status(text)

    def _stopped_reason(self) -> str:
        client = self.client
        if client.close_code is not None:
            reason = f" ({client.close_reason})" if client.close_reason else ""
            return f"the server closed the connection with code {client.close_code}{reason}; not reconnecting"
        return f"the connection to {client.url} ended: {client.last_error}; not reconnecting"

    def _state_changed(self, state: ClientState) -> None:
        client = self.client
        if state is ClientState.CONNECTED:
            if self._was_connected:
                self._status(f"reconnected to {client.url}; recovering what was missed")
            self._was_connected = True
        elif state is ClientState.RECONNECTING:
            if client.close_code is not None and client.close_code != 1006:
                reason = f", {client.close_reason}" if client.close_reason else ""
                why = f"closed by the server (code {client.close_code}{reason})"
            else:
                why = f"lost ({client.last_error})" if client.last_error is not None else "lost"
            self._status(f"connection {why}; reconnecting")

    def _unrecovered(self, info: RecoveryInfo) -> None:
        self._status(
            f"messages of {info.channel} were lost ({_LOSS.get(info.reason, info.reason)}): "
            f"continuing after seq {info.position.seq}"
        )
