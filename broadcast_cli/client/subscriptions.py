"""The client's subscription table, without I/O (sans-I/O, as in websockets).

:class:`SubscriptionTable` is everything :class:`~broadcast_cli.client.BroadcastClient`
knows about its subscriptions, and every decision it makes about them:

* which handlers listen to which channel or pattern (``orders.*``), and the last
  position (``seq``, ``epoch``) seen on each channel (patterns have none);
* the requests to send: a ``subscribe`` when a channel gets its first handler,
  an ``unsubscribe`` when it loses its last one, and, on every new connection,
  ONE ``subscribe`` naming every channel with ``since``/``epoch`` set to the last
  position seen, so that nothing still in the server's history is lost;
* what to do with each frame the server sends: match acks and errors to the
  pending requests by id, update positions from acks, and, for each event, the
  handlers to call (those of its channel and of every matching pattern),
  dropping duplicates and detecting loss (an epoch change or a gap in ``seq``)
  so that the application can be told to refetch.

The I/O loop only connects, sends the frames this table builds, feeds it what
it reads, and runs the callbacks it returns. Keeping the decisions here makes
them testable without sockets, clocks or an event loop.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import orjson

from ..exceptions import InvalidRequest, ProtocolError, ServerError
from ..message import Message, Position, is_pattern, pattern_matcher, validate_channel, validate_pattern
from ..protocol import MAX_EPOCH_LENGTH, MAX_LAST, decode_event

__all__ = [
    "AckReceived",
    "ChannelState",
    "ErrorReceived",
    "EventReceived",
    "FrameIgnored",
    "Handler",
    "HandlerEntry",
    "Incoming",
    "OutgoingRequest",
    "RecoveryInfo",
    "RecoveryReason",
    "ResumeFailure",
    "SubscriptionTable",
    "Unrecovered",
    "UnrecoveredHandler",
    "resume_failure",
]

Handler = Callable[[Message], Awaitable[None] | None]
"""A message handler: a plain function, or a coroutine function that is awaited."""


class RecoveryReason(enum.StrEnum):
    """Why messages of a channel were lost and the application must refetch its state."""

    NOT_RECOVERED = "not_recovered"
    """The server's ack said ``recovered: false``: the missed messages left its history
    (or its history was lost), so nothing was replayed."""
    EPOCH_CHANGED = "epoch_changed"
    """A live event came in a new epoch: the channel's history was reset."""
    GAP = "gap"
    """A live event skipped one or more ``seq`` numbers of the current epoch."""


class ResumeFailure(enum.StrEnum):
    """Why the server could not replay a channel from the position a client asked for (``recovered: false``).

    The ack does not say; :func:`resume_failure` tells from the position asked
    for and the one the ack gives.
    """

    HISTORY_RESET = "history_reset"
    """The ack is in another epoch than the one asked for: the channel's history was reset
    (a server without Redis restarted, or Redis lost its data), so the old seqs mean nothing now."""
    AHEAD = "ahead"
    """``since`` is past the channel's last seq (in the same epoch, or no epoch was given):
    there is nothing to replay. A position from before a reset, when no epoch tells."""
    TRIMMED = "trimmed"
    """The messages after ``since`` left the history (its size or age limit)."""


def resume_failure(since: int, epoch: str | None, position: Position) -> ResumeFailure:
    """Why resuming from *since* (of *epoch*, if known) failed, given the channel's *position* in the ack."""
    if epoch is not None and epoch != position.epoch:
        return ResumeFailure.HISTORY_RESET
    if since > position.seq:
        return ResumeFailure.AHEAD
    return ResumeFailure.TRIMMED


@dataclass(frozen=True, slots=True)
class RecoveryInfo:
    """What :attr:`HandlerEntry.on_unrecovered` receives when messages were lost.

    Events *after* :attr:`position` are delivered from now on; whatever happened up
    to it may have been missed, so the application should refetch the channel's
    state. :attr:`previous` is the last position seen before the loss (``None`` if
    none was known).
    """

    channel: str
    position: Position
    reason: RecoveryReason
    previous: Position | None = None


UnrecoveredHandler = Callable[[RecoveryInfo], Awaitable[None] | None]
"""Called when a channel's missed messages cannot be recovered; may be a coroutine function."""


@dataclass(eq=False, slots=True)
class HandlerEntry:
    """One handler registered on one channel (what a client ``Subscription`` wraps).

    :attr:`ready` is true while the channel's subscription is acked on the current
    connection; :attr:`position` and :attr:`recovered` come from the last ack;
    :attr:`error` is set (and :attr:`active` cleared) when the server refused the
    subscription.
    """

    channel: str
    handler: Handler
    on_unrecovered: UnrecoveredHandler | None = None
    active: bool = True
    ready: bool = False
    position: Position | None = None
    recovered: bool | None = None
    error: ServerError | None = None


@dataclass(eq=False, slots=True)
class ChannelState:
    """One subscribed channel (or pattern): its handlers and the last position seen on it.

    :attr:`seq` and :attr:`epoch` are the last message seen (or the position
    asked for with ``since``/``epoch`` before any was seen); :attr:`request_id` is
    the id of the ``subscribe`` sent for the channel on the current connection,
    and :attr:`acked` whether its ack has come. :attr:`last` asks the server to
    replay the channel's last messages, as long as none was seen. A pattern has
    a :attr:`matcher` and never a position.
    """

    name: str
    entries: list[HandlerEntry] = field(default_factory=list)
    seq: int | None = None
    epoch: str | None = None
    request_id: int | None = None
    acked: bool = False
    last: int | None = None
    matcher: re.Pattern[str] | None = None

    @property
    def is_pattern(self) -> bool:
        """Whether this is a pattern subscription."""
        return self.matcher is not None

    @property
    def position(self) -> Position | None:
        """The last position seen, when both ``seq`` and ``epoch`` are known."""
        if self.seq is None or self.epoch is None:
            return None
        return Position(self.seq, self.epoch)


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request to send: its id, its verb, the channels it names and its JSON text frame.

    The frame of an ``auth`` request holds the connection token: it is left out of
    the request's ``repr``, and the client never logs it.
    """

    id: int
    kind: Literal["subscribe", "unsubscribe", "auth"]
    channels: tuple[str, ...]
    frame: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Unrecovered:
    """A loss to report: :attr:`info`, to pass to the ``on_unrecovered`` of :attr:`entries`."""

    info: RecoveryInfo
    entries: tuple[HandlerEntry, ...]


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ack matched to :attr:`request`.

    :attr:`ready` are the handler entries that became ready; :attr:`unrecovered`
    the channels the server could not recover (``recovered: false``).
    """

    request: OutgoingRequest
    ready: tuple[HandlerEntry, ...] = ()
    unrecovered: tuple[Unrecovered, ...] = ()


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """An error frame, matched to :attr:`request` when its id names a pending one.

    :attr:`failed` are the handler entries whose subscription was refused; they are
    removed from the table and carry :attr:`error`.
    """

    error: ServerError
    request: OutgoingRequest | None = None
    failed: tuple[HandlerEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class EventReceived:
    """An event: call the ``on_unrecovered`` of :attr:`unrecovered` first, then :attr:`deliver`.

    :attr:`deliver` is empty when the event is dropped: :attr:`duplicate` (already
    seen) or for a channel that is not (yet) acked on this connection.
    """

    message: Message
    deliver: tuple[HandlerEntry, ...] = ()
    unrecovered: Unrecovered | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class FrameIgnored:
    """A frame that needs no action (unknown request id, malformed frame…), and why."""

    reason: str


Incoming = AckReceived | ErrorReceived | EventReceived | FrameIgnored
"""What :meth:`SubscriptionTable.receive` makes of one server frame."""


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_position(since: int | None, epoch: str | None) -> None:
    if since is not None and (not _is_int(since) or since < 0):
        raise InvalidRequest(f'"since" must be a non-negative integer (a seq), not {since!r}')
    if epoch is not None:
        if since is None:
            raise InvalidRequest('"epoch" is only meaningful with "since"')
        if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_EPOCH_LENGTH:
            raise InvalidRequest(f'"epoch" must be a string of 1 to {MAX_EPOCH_LENGTH} characters, not {epoch!r}')


def _check_last(last: int | None, since: int | None) -> None:
    if last is None:
        return
    if not _is_int(last) or not 0 < last <= MAX_LAST:
        raise InvalidRequest(f'"last" must be an integer from 1 to {MAX_LAST}, not {last!r}')
    if since is not None:
        raise InvalidRequest('"since" and "last" exclude each other')


def _ack_position(info: object) -> tuple[Position, bool | None] | None:
    if not isinstance(info, dict):
        return None
    seq, epoch, recovered = info.get("seq"), info.get("epoch"), info.get("recovered")
    if _is_int(seq) and isinstance(epoch, str) and (recovered is None or isinstance(recovered, bool)):
        return Position(seq, epoch), recovered
    return None


class SubscriptionTable:
    """The client's subscriptions and pending requests; pure state, no I/O.

    The table knows whether a connection is open (:meth:`connection_opened`,
    :meth:`connection_lost`): while it is, the methods that change subscriptions
    return the request to send; while it is not, they return ``None`` and the
    next :meth:`connection_opened` subscribes everything at once.
    """

    def __init__(self) -> None:
        self._channels: dict[str, ChannelState] = {}
        self._patterns: dict[str, ChannelState] = {}
        self._pending: dict[int, OutgoingRequest] = {}
        self._ids = itertools.count(1)
        self._open = False

    # -- inspection -----------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether a connection is open (requests returned by the table must be sent)."""
        return self._open

    def channels(self) -> list[str]:
        """The subscribed channels and patterns, in subscription order."""
        return list(self._channels)

    def get(self, channel: str) -> ChannelState | None:
        """The state of *channel*, or ``None`` if it has no handler."""
        return self._channels.get(channel)

    def position(self, channel: str) -> Position | None:
        """The last position seen on *channel* (``None`` if unknown or not subscribed)."""
        state = self._channels.get(channel)
        return state.position if state is not None else None

    def pending(self) -> list[OutgoingRequest]:
        """The requests sent on the current connection and not answered yet."""
        return list(self._pending.values())

    def is_pending(self, request_id: int) -> bool:
        """Whether the request *request_id* still waits for its answer."""
        return request_id in self._pending

    def next_id(self) -> int:
        """Allocate a request id: 1, 2, 3…, never reused by this table."""
        return next(self._ids)

    # -- requests -------------------------------------------------------------

    def _request(
        self, kind: Literal["subscribe", "unsubscribe", "auth"], items: Any, channels: list[str]
    ) -> OutgoingRequest:
        request_id = self.next_id()
        frame = orjson.dumps({kind: items, "id": request_id}).decode()
        request = OutgoingRequest(request_id, kind, tuple(channels), frame)
        self._pending[request_id] = request
        return request

    def _subscribe(self, states: list[ChannelState]) -> OutgoingRequest | None:
        if not states:
            return None
        items: list[Any] = []
        for state in states:
            if state.seq is None:
                items.append(state.name if state.last is None else {"channel": state.name, "last": state.last})
            elif state.epoch is None:
                items.append({"channel": state.name, "since": state.seq})
            else:
                items.append({"channel": state.name, "since": state.seq, "epoch": state.epoch})
        request = self._request("subscribe", items, [state.name for state in states])
        for state in states:
            state.request_id = request.id
            state.acked = False
        return request

    def add(
        self,
        channel: str,
        handler: Handler,
        *,
        since: int | None = None,
        epoch: str | None = None,
        last: int | None = None,
        on_unrecovered: UnrecoveredHandler | None = None,
    ) -> tuple[HandlerEntry, OutgoingRequest | None]:
        """Register *handler* on *channel*; return its entry and the request to send, if any.

        The first handler of a channel creates it, starting from ``since``/``epoch``
        when given (the server then replays what came after, if still in
        history), or replaying the *last* messages still in history. A further
        handler joins the channel as it is: its ``since`` and ``last`` are
        ignored and it is ready at once if the channel is acked. A *channel*
        containing ``*`` is a pattern (``orders.*``): it gets the live events of
        every matching channel, without ``since``, ``epoch`` or ``last``.
        Raises :class:`~broadcast_cli.exceptions.InvalidChannel` or
        :class:`~broadcast_cli.exceptions.InvalidRequest` for bad arguments.
        """
        pattern = is_pattern(channel) if isinstance(channel, str) else False
        if pattern:
            validate_pattern(channel)
            if since is not None or epoch is not None or last is not None:
                raise InvalidRequest(
                    f"{channel!r} is a pattern: patterns get live events only (no since, epoch or last)"
                )
        else:
            validate_channel(channel)
        _check_position(since, epoch)
        _check_last(last, since)
        entry = HandlerEntry(channel, handler, on_unrecovered)
        state = self._channels.get(channel)
        if state is not None:
            state.entries.append(entry)
            if state.acked:
                entry.ready = True
                entry.position = state.position
            return entry, None
        state = ChannelState(channel, [entry], since, epoch, last=last)
        if pattern:
            state.matcher = pattern_matcher(channel)
            self._patterns[channel] = state
        self._channels[channel] = state
        return entry, self._subscribe([state]) if self._open else None

    def remove(self, entry: HandlerEntry) -> OutgoingRequest | None:
        """Unregister *entry*; return the ``unsubscribe`` to send if it was its channel's last.

        Removing an entry twice, or one the server refused, does nothing.
        """
        if not entry.active:
            return None
        entry.active = False
        entry.ready = False
        state = self._channels.get(entry.channel)
        if state is None or entry not in state.entries:
            return None
        state.entries.remove(entry)
        if state.entries:
            return None
        del self._channels[entry.channel]
        self._patterns.pop(entry.channel, None)
        if not self._open or state.request_id is None:
            return None
        return self._request("unsubscribe", [state.name], [state.name])

    def connection_opened(self) -> OutgoingRequest | None:
        """A connection is open: return the ONE ``subscribe`` naming every channel.

        Each channel with a known position carries ``since`` (and ``epoch``), so
        the server replays what was missed while disconnected.
        """
        self._open = True
        self._pending.clear()
        return self._subscribe(list(self._channels.values()))

    def authenticate(self, token: str) -> OutgoingRequest:
        """The ``auth`` request presenting *token* on the open connection, to send before anything else.

        The token travels in a frame rather than in the handshake URL (``?token=``),
        so that it is never part of a URL that a proxy or a log may record. The
        server checks the requests that follow against what it grants.
        """
        return self._request("auth", {"token": token}, [])

    def connection_lost(self) -> list[OutgoingRequest]:
        """The connection is gone: forget what was in flight and return those requests.

        Every entry stops being ready until the next connection's ack; positions
        are kept for the resubscription.
        """
        self._open = False
        lost = list(self._pending.values())
        self._pending.clear()
        for state in self._channels.values():
            state.request_id = None
            state.acked = False
            for entry in state.entries:
                entry.ready = False
        return lost

    # -- incoming frames ------------------------------------------------------

    def receive(self, frame: str | bytes) -> Incoming:
        """Interpret one frame from the server and update the table accordingly."""
        try:
            data = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return FrameIgnored(f"the frame is not valid JSON: {exc}")
        if not isinstance(data, dict):
            return FrameIgnored(f"the frame is a JSON {type(data).__name__}, not an object")
        kind = data.get("type")
        if kind == "ack":
            return self.handle_ack(data)
        if kind == "error":
            return self.handle_error(data)
        if kind is not None:
            return FrameIgnored(f"unknown frame type {kind!r}")
        try:
            message = decode_event(frame)
        except ProtocolError as exc:
            return FrameIgnored(str(exc))
        return self.handle_event(message)

    def handle_ack(self, data: dict[str, Any]) -> Incoming:
        """Match an ack to its pending request; for a subscribe, record each channel's position.

        ``recovered: true`` keeps the last position seen (the missed events follow
        the ack); ``false`` or absent moves to the ack's position, and ``false``
        is reported as :class:`Unrecovered`. After a ``last`` request nothing is
        seen yet: the replayed events (up to the ack's position) follow, and the
        first of them sets the position. Pattern entries have no position.
        """
        request_id = data.get("id")
        request = self._pending.pop(request_id, None) if _is_int(request_id) else None
        if request is None:
            return FrameIgnored(f"an ack for no pending request (id {request_id!r})")
        if request.kind != "subscribe":
            return AckReceived(request)
        results = data.get("channels")
        if not isinstance(results, dict):
            results = {}
        ready: list[HandlerEntry] = []
        unrecovered: list[Unrecovered] = []
        for name in request.channels:
            state = self._channels.get(name)
            if state is None or state.request_id != request.id:
                continue  # unsubscribed, or subscribed again, since the request was sent
            parsed = _ack_position(results.get(name))
            recovered: bool | None = None
            position = state.position
            if parsed is not None:
                position, recovered = parsed
                previous = state.position
                if recovered is True and state.seq is not None:
                    state.epoch = position.epoch  # the replay follows from our own seq
                elif state.seq is None and state.last is not None:
                    state.epoch = position.epoch  # the replay of the last messages follows
                else:
                    state.seq, state.epoch = position.seq, position.epoch
                if recovered is False:
                    info = RecoveryInfo(name, position, RecoveryReason.NOT_RECOVERED, previous)
                    unrecovered.append(Unrecovered(info, self._listeners(state)))
            state.acked = True
            for entry in state.entries:
                entry.ready = True
                entry.position = position
                entry.recovered = recovered
                ready.append(entry)
        return AckReceived(request, tuple(ready), tuple(unrecovered))

    def handle_error(self, data: dict[str, Any]) -> Incoming:
        """Match an error frame to its pending request; a refused subscribe drops its channels."""
        request_id = data.get("id")
        error = ServerError(str(data.get("code", "error")), str(data.get("message", "")), request_id)
        request = self._pending.pop(request_id, None) if _is_int(request_id) else None
        if request is None or request.kind != "subscribe":
            return ErrorReceived(error, request)
        failed: list[HandlerEntry] = []
        for name in request.channels:
            state = self._channels.get(name)
            if state is None or state.request_id != request.id:
                continue
            del self._channels[name]
            self._patterns.pop(name, None)
            for entry in state.entries:
                entry.active = False
                entry.ready = False
                entry.error = error
                failed.append(entry)
        return ErrorReceived(error, request, tuple(failed))

    def handle_event(self, message: Message) -> Incoming:
        """Decide what to do with an event: deliver, drop as a duplicate, or report a loss first.

        An event of another epoch than the last seen, or whose ``seq`` is not the
        next one, means messages were lost: it is reported (with the position just
        before it) and then delivered, and the channel continues from it. Every
        acked pattern that matches the channel gets it too (patterns keep no
        position: they see what the server sends).
        """
        state = self._channels.get(message.channel)
        patterns = self._matching(message.channel) if self._patterns else ()
        if state is None or not state.acked:
            return EventReceived(message, patterns)
        loss: Unrecovered | None = None
        if state.seq is not None and state.epoch is not None:
            previous = Position(state.seq, state.epoch)
            reason: RecoveryReason | None = None
            if message.epoch != state.epoch:
                reason = RecoveryReason.EPOCH_CHANGED
            elif message.seq <= state.seq:
                return EventReceived(message, duplicate=True)
            elif message.seq != state.seq + 1:
                reason = RecoveryReason.GAP
            if reason is not None:
                info = RecoveryInfo(message.channel, Position(message.seq - 1, message.epoch), reason, previous)
                loss = Unrecovered(info, self._listeners(state))
        state.seq, state.epoch = message.seq, message.epoch
        return EventReceived(message, (*state.entries, *patterns), loss)

    def _matching(self, channel: str) -> tuple[HandlerEntry, ...]:
        entries: list[HandlerEntry] = []
        for state in self._patterns.values():
            if state.acked and state.matcher is not None and state.matcher.fullmatch(channel):
                entries.extend(state.entries)
        return tuple(entries)

    @staticmethod
    def _listeners(state: ChannelState) -> tuple[HandlerEntry, ...]:
        return tuple(entry for entry in state.entries if entry.on_unrecovered is not None)
