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

from ..exceptions import CannotResume, ConnectError, InvalidRequest
from ..message import Message, Position, is_pattern
from ..urls import redact
from .client import BroadcastClient, ClientState, Subscription, TokenSource
from .subscriptions import RecoveryInfo, RecoveryReason, ResumeFailure, resume_failure

__all__ = ["EventStream", "cannot_resume"]

CLOSE_TIMEOUT = 0.5
"""Seconds a stream waits for the server's close frame when it stops, before dropping the connection."""

_LOSS = {
    RecoveryReason.NOT_RECOVERED: "they are no longer in the server's history",
    RecoveryReason.EPOCH_CHANGED: "the channel's history was reset",
    RecoveryReason.GAP: "some were skipped",
}


def cannot_resume(channel: str, since: int, epoch: str | None, position: Position) -> CannotResume:
    """The error saying why *channel* cannot be resumed from *since* (of *epoch*), now that it is at *position*.

    Each message says what happened (see :class:`~.subscriptions.ResumeFailure`)
    and the position to resume from once the application has refetched its state.
    """
    cause = resume_failure(since, epoch, position)
    asked = f"seq {since}" + (f" of epoch {epoch}" if epoch is not None else "")
    now = f"seq {position.seq} of epoch {position.epoch}"
    if cause is ResumeFailure.HISTORY_RESET:
        what = f"its history was reset: it is in another epoch now, at {now}"
    elif cause is ResumeFailure.AHEAD:
        what = f"nothing to replay: {asked} is ahead of the channel, which is at {now}"
        if epoch is None:
            what += " (a seq from before its history was reset? an epoch would tell)"
    else:
        what = (
            "the messages after it are no longer in the server's history, trimmed or expired "
            f"(the channel is at {now})"
        )
        if epoch is None:
            what += ", or its history was reset (an epoch would tell)"
    message = (
        f"cannot resume {channel} from {asked}: {what}; refetch its state, then resume from "
        f"seq {position.seq} of epoch {position.epoch}"
    )
    return CannotResume(
        message, channel=channel, since=since, epoch=epoch, seq=position.seq, current_epoch=position.epoch,
        cause=cause.value,
    )  # fmt: skip


class EventStream:
    """Subscribe to *names* (channels or patterns) and iterate over their events.

    *since* and *epoch* resume one channel from a position; *last* replays the
    last that many messages of each channel (patterns get live events only).
    :meth:`connect` (or ``async with``) waits until every subscription is acked,
    for at most *connect_timeout* seconds to reach the server; when the server
    cannot replay from *since*, it raises
    :class:`~broadcast_cli.exceptions.CannotResume` saying why. *token* is the
    connection token (see :class:`~.client.BroadcastClient`). *max_pending*
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
        token: TokenSource | None = None,
    ) -> None:
        if not names:
            raise InvalidRequest("name at least one channel or pattern")
        channels = [name for name in names if not is_pattern(name)]
        if since is not None and (len(channels) != 1 or len(names) != 1):
            raise InvalidRequest("since resumes one channel: name exactly one channel (and no pattern) with it")
        self.names = list(dict.fromkeys(names))
        """The channels and patterns subscribed to."""
        # A reader that stops reading (Ctrl-C, a closed pipe) must not wait long for a polite close.
        self.client = (
            client if client is not None else BroadcastClient(url, close_timeout=CLOSE_TIMEOUT, token=token)
        )
        """The client doing the work."""
        self._since, self._epoch, self._last = since, epoch, last
        self._connect_timeout = connect_timeout
        self._on_status = on_status
        self._queue: asyncio.Queue[Message] = asyncio.Queue(max_pending)
        self._previous: Message | None = None
        self._subscriptions: list[Subscription] = []
        self._remove_callback: Callable[[], None] | None = None
        self._was_connected = False
        self._following = False

    # -- life cycle -----------------------------------------------------------

    async def connect(self) -> None:
        """Connect, subscribe, and wait until every subscription is acked.

        Raises :class:`~broadcast_cli.exceptions.ConnectError` when the server
        cannot be reached within *connect_timeout* (its subclass
        :class:`~broadcast_cli.exceptions.ConnectionRejected` when it refuses the
        connection), :class:`~broadcast_cli.exceptions.ServerError` when it
        refuses a subscription, and :class:`~broadcast_cli.exceptions.CannotResume`
        when it cannot replay from *since*.
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
            if self._since is not None and subscription.recovered is False and subscription.position is not None:
                raise cannot_resume(subscription.channel, self._since, self._epoch, subscription.position)
        self._following = True

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
        return f"the connection to {redact(client.url)} ended: {client.last_error}; not reconnecting"

    def _state_changed(self, state: ClientState) -> None:
        client = self.client
        if state is ClientState.CONNECTED:
            if self._was_connected:
                self._status(f"reconnected to {redact(client.url)}; recovering what was missed")
            self._was_connected = True
        elif state is ClientState.RECONNECTING:
            if client.close_code is not None and client.close_code != 1006:
                reason = f", {client.close_reason}" if client.close_reason else ""
                why = f"closed by the server (code {client.close_code}{reason})"
            else:
                why = f"lost ({client.last_error})" if client.last_error is not None else "lost"
            self._status(f"connection {why}; reconnecting")

    def _unrecovered(self, info: RecoveryInfo) -> None:
        if not self._following:
            return  # the first ack: connect() raises CannotResume, saying why
        self._status(
            f"messages of {info.channel} were lost ({_LOSS.get(info.reason, info.reason)}): "
            f"continuing after seq {info.position.seq}"
        )
