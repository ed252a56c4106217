"""The asyncio client: a thin I/O loop around :class:`~.subscriptions.SubscriptionTable`.

:class:`BroadcastClient` keeps one WebSocket connection open to a broadcast
server, reconnecting with exponential backoff (rotating through the given URLs)
whenever it drops, and resubscribing every channel from the last position seen,
so that a reconnect loses nothing still in the server's history. Every decision
about subscriptions is made by the pure table; this module only connects, sends
the frames the table builds, feeds it what it reads, runs the handlers it
returns, sleeps and reconnects.

::

    async with BroadcastClient("ws://localhost:8000/ws/broadcast") as client:
        sub = client.subscribe("orders", print, on_unrecovered=refetch)
        await sub.wait_ready()
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from ..backoff import backoff
from ..exceptions import (
    ClientClosed,
    ClientError,
    ConfigurationError,
    ConnectError,
    ConnectionRejected,
    ServerError,
)
from ..message import Position
from ..protocol import SUBPROTOCOL, CloseCode, should_reconnect
from ..urls import WEBSOCKET_PATH, redact, redact_secrets
from .subscriptions import (
    AckReceived,
    ErrorReceived,
    EventReceived,
    FrameIgnored,
    Handler,
    HandlerEntry,
    OutgoingRequest,
    SubscriptionTable,
    Unrecovered,
    UnrecoveredHandler,
)

__all__ = [
    "BroadcastClient",
    "ClientState",
    "Subscription",
    "TokenSource",
    "closed_for_good",
    "handshake_failure",
    "is_retryable",
]

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]
"""A connection token, or a function (plain or async) that fetches a fresh one."""

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

ABNORMAL_CLOSURE = 1006
"""The close code reported when the connection dropped without a close frame."""

STABLE_AFTER = 2.0
"""Seconds a connection must last for the backoff to start again from its first delay
(a server that accepts and at once closes must not be hammered)."""

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses of a refused handshake that are worth retrying (timeouts, overload, proxies)."""


class ClientState(enum.StrEnum):
    """Where the client's connection stands; :meth:`BroadcastClient.on_state_change` reports changes."""

    DISCONNECTED = "disconnected"
    """Not connected and not trying: before :meth:`~BroadcastClient.connect`, after
    :meth:`~BroadcastClient.disconnect`, or after a close that forbids reconnecting."""
    CONNECTING = "connecting"
    """Opening the first connection (retrying with backoff until it succeeds)."""
    CONNECTED = "connected"
    """Connected; subscriptions are (re)sent."""
    RECONNECTING = "reconnecting"
    """The connection was lost; reconnecting with backoff."""


def is_retryable(exc: BaseException) -> bool:
    """Say whether the client should reconnect after *exc* ended or prevented a connection.

    Like websockets' ``process_exception``: network errors (:exc:`OSError`,
    :exc:`TimeoutError`, a handshake cut short), handshakes refused with a
    transient HTTP status (408, 429, 5xx from :data:`RETRYABLE_STATUSES`) and
    closes whose code :func:`~broadcast_cli.protocol.should_reconnect` accepts are
    transient; a bad URL, any other refusal and anything unexpected would fail
    again unchanged, so they are not.
    """
    if isinstance(exc, ConnectionClosed):
        return should_reconnect(exc.rcvd.code if exc.rcvd is not None else ABNORMAL_CLOSURE)
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code in RETRYABLE_STATUSES
    if isinstance(exc, InvalidMessage):
        return isinstance(exc.__cause__, (EOFError, OSError))
    if isinstance(exc, (InvalidURI, InvalidHandshake)):
        return False
    return isinstance(exc, (OSError, TimeoutError, EOFError))


def handshake_failure(url: str, exc: BaseException) -> ConnectError:
    """The error to raise when connecting to *url* failed with *exc*, which is not worth retrying.

    A handshake answered with an HTTP 4xx is a :class:`ConnectionRejected`; a 403
    or 404 says where a broadcast server's endpoint is, since that is what such
    an answer usually means (a Starlette app answers 403 to a WebSocket handshake
    on a path where it has no WebSocket endpoint). *url* is shown without its
    query or password.
    """
    shown = redact(url)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if 400 <= status < 500:
            message = f"{shown} refused the WebSocket handshake with HTTP {status}"
            if status in (403, 404):
                path = urlsplit(url).path or "/"
                if not path.endswith(WEBSOCKET_PATH):
                    message += (
                        f": there is no WebSocket endpoint at {path}; a broadcast server's is {WEBSOCKET_PATH}"
                    )
                elif path != WEBSOCKET_PATH:
                    prefix = path.removesuffix(WEBSOCKET_PATH)
                    message += (
                        f": there is no WebSocket endpoint at {path}; is the server really mounted under "
                        f"{prefix}? Without a prefix, its endpoint is {WEBSOCKET_PATH}"
                    )
                else:
                    message += " (a proxy in front of the server, or not a broadcast server?)"
            return ConnectionRejected(message, http_status=status)
    return ConnectError(f"cannot connect to {shown}: {redact_secrets(str(exc))}")


def closed_for_good(url: str, code: int, reason: str) -> ConnectError:
    """The error to raise when *url* closed the connection with *code*, after which the client stops.

    Codes the server uses to refuse this client (4001 for a token that expired,
    when no fresh one can be had; 4500–4999, e.g. 4501 for a token that is not
    valid, 4503 for an Origin that is not allowed; 1008, policy) give a
    :class:`ConnectionRejected`.
    """
    shown = redact(url)
    detail = f": {reason}" if reason else ""
    if code == CloseCode.TOKEN_EXPIRED:
        return ConnectionRejected(
            f"{shown} closed the connection: the connection token expired (code {code}); "
            "connect again with a fresh token",
            close_code=code,
        )
    if code == CloseCode.UNAUTHORIZED:
        return ConnectionRejected(
            f"{shown} refused the connection token (code {code}{detail})", close_code=code
        )
    if 4500 <= code < 5000 or code == 1008:
        return ConnectionRejected(f"{shown} refused the connection (code {code}{detail})", close_code=code)
    return ConnectError(f"{shown} closed the connection with code {code} ({reason or 'no reason'})")


async def _call(callback: Callable[[_T], object], argument: _T, what: str) -> None:
    """Call a user callback, awaiting it if it returns an awaitable; log its errors."""
    try:
        result = callback(argument)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("%s %r raised an exception", what, callback)


class Subscription:
    """One handler on one channel, as returned by :meth:`BroadcastClient.subscribe`.

    Calling it (or :meth:`unsubscribe`) removes the handler; the channel is
    unsubscribed on the server when its last handler goes. :meth:`wait_ready`
    waits for the server's ack, so code (and tests) can know that events
    published from then on will be delivered.
    """

    __slots__ = ("_client", "_entry")

    def __init__(self, client: BroadcastClient, entry: HandlerEntry) -> None:
        self._client = client
        self._entry = entry

    @property
    def channel(self) -> str:
        """The subscribed channel (or pattern)."""
        return self._entry.channel

    @property
    def active(self) -> bool:
        """False once unsubscribed, or refused by the server (see :attr:`error`)."""
        return self._entry.active

    @property
    def ready(self) -> bool:
        """Whether the subscription is acked on the current connection."""
        return self._entry.ready

    @property
    def position(self) -> Position | None:
        """The channel's position in the last ack (``None`` before the first ack)."""
        return self._entry.position

    @property
    def recovered(self) -> bool | None:
        """The last ack's ``recovered`` flag: ``None`` if no recovery was asked for,
        ``True`` if the missed messages are replayed, ``False`` if they were lost."""
        return self._entry.recovered

    @property
    def last_position(self) -> Position | None:
        """The last position seen on the channel: what to persist to resume later with ``since``/``epoch``."""
        return self._client._table.position(self._entry.channel)

    @property
    def error(self) -> ServerError | None:
        """The server's refusal of this subscription, if it refused it."""
        return self._entry.error

    def unsubscribe(self) -> None:
        """Remove the handler; unsubscribe the channel when it was its last handler. Idempotent."""
        self._client._remove(self._entry)

    def __call__(self) -> None:
        """Same as :meth:`unsubscribe`, so a subscription can be used as a cleanup callback."""
        self.unsubscribe()

    async def wait_ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the documented API
        """Wait until the server acked the subscription on the current connection.

        Raises :class:`~broadcast_cli.exceptions.ServerError` if the server refused
        it, :class:`~broadcast_cli.exceptions.ClientError` if it was unsubscribed,
        :class:`~broadcast_cli.exceptions.ConnectError` if the client stopped for
        good, :class:`~broadcast_cli.exceptions.ClientClosed` after
        :meth:`~BroadcastClient.disconnect`, and :exc:`TimeoutError` after *timeout*
        seconds.
        """
        entry = self._entry

        def ready() -> bool:
            if entry.error is not None:
                raise entry.error
            if not entry.active:
                raise ClientError(f"the subscription to {entry.channel!r} was unsubscribed")
            if entry.ready:
                return True
            self._client._raise_if_stopped()
            return False

        await self._client._wait_until(ready, timeout)

    def __repr__(self) -> str:
        return f"<Subscription {self.channel!r} active={self.active} ready={self.ready} position={self.position}>"


class BroadcastClient:
    """A reconnecting, recovering client of a broadcast server's WebSocket endpoint.

    *url_or_urls* is one ``ws://``/``wss://`` URL of the endpoint (e.g.
    ``ws://host:8000/ws/broadcast``) or a list of them: each reconnect attempt
    moves to the next one. Reconnect delays come from
    :func:`~broadcast_cli.backoff.backoff` with *backoff_initial*, *backoff_max*
    and *backoff_factor*. *open_timeout* bounds each opening handshake and
    *close_timeout* each closing one (a connection whose unread frames fill its
    buffer cannot read the server's close frame: it is then dropped); a request left
    unanswered for *request_timeout* seconds means the connection is dead: it is
    dropped and reopened. *client_id* identifies this client (a random one is
    made if not given); publishers pass it as ``origin`` to recognize their own
    messages. *token* is the connection token for a server that requires one: a
    string, or a function (plain or async) called before every connection
    attempt, so that a token that expired (close code 4001) is replaced by a
    fresh one on the reconnect, which then recovers what was missed (a string
    that expired cannot be replaced: the client stops, with
    :class:`~broadcast_cli.exceptions.ConnectionRejected`). The token is
    presented in the connection's first frame, an ``auth`` request, never in its
    URL, where proxies and logs would record it.
    """

    def __init__(
        self,
        url_or_urls: str | Sequence[str],
        *,
        client_id: str | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        backoff_factor: float = 2.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        request_timeout: float = 10.0,
        token: TokenSource | None = None,
    ) -> None:
        urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
        if not urls:
            raise ConfigurationError("BroadcastClient needs at least one URL")
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
                raise ConfigurationError(f"invalid server URL {url!r}: it must start with ws:// or wss://")
        if not 0 < backoff_initial <= backoff_max or backoff_factor < 1:
            raise ConfigurationError(
                "the backoff needs 0 < backoff_initial <= backoff_max and backoff_factor >= 1, not "
                f"{backoff_initial}, {backoff_max}, {backoff_factor}"
            )
        if open_timeout <= 0 or request_timeout <= 0 or close_timeout <= 0:
            raise ConfigurationError("open_timeout, close_timeout and request_timeout must be positive")
        self.urls: tuple[str, ...] = tuple(urls)
        """The server URLs, tried in turn."""
        self._token = token
        self.client_id: str = client_id if client_id is not None else secrets.token_hex(8)
        """This client's id, for publishers that want to suppress their own echo (``origin``)."""
        self.close_code: int | None = None
        """The close code of the last connection that closed (1006 if it dropped), else ``None``."""
        self.close_reason: str = ""
        """The close reason of the last connection that closed."""
        self.last_error: BaseException | None = None
        """The last error that ended or prevented a connection."""
        self._backoff = (backoff_initial, backoff_max, backoff_factor)
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._request_timeout = request_timeout
        self._reading = False
        self._table = SubscriptionTable()
        self._state = ClientState.DISCONNECTED
        self._state_callbacks: list[Callable[[ClientState], object]] = []
        self._waiters: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[str] | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._attempt = 0
        self._stopped_error: ConnectError | None = None
        self._closed = False

    # -- state ----------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The connection's current :class:`ClientState`."""
        return self._state

    @property
    def url(self) -> str:
        """The URL of the current (or next) connection attempt."""
        return self.urls[self._attempt % len(self.urls)]

    def on_state_change(self, callback: Callable[[ClientState], object]) -> Callable[[], None]:
        """Call *callback(state)* on every state change (once per change); return a function removing it.

        Callbacks run synchronously in the client's task; their exceptions are logged.
        """
        self._state_callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._state_callbacks.remove(callback)

        return remove

    def _set_state(self, state: ClientState) -> None:
        if state is self._state:
            return
        logger.debug("state %s -> %s", self._state, state)
        self._state = state
        for callback in list(self._state_callbacks):
            try:
                callback(state)
            except Exception:
                logger.exception("state change callback %r raised an exception", callback)
        self._notify()

    def _notify(self) -> None:
        """Wake every waiter so that it checks its condition again."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_until(self, condition: Callable[[], bool], seconds: float | None) -> None:
        """Wait until *condition()* is true (it may raise to stop waiting), re-checking on every change."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(seconds):
            while not condition():
                waiter = loop.create_future()
                self._waiters.add(waiter)
                try:
                    await waiter
                finally:
                    self._waiters.discard(waiter)

    def _raise_if_stopped(self) -> None:
        if self._closed:
            raise ClientClosed("the client was disconnected")
        if self._stopped_error is not None:
            raise self._stopped_error

    async def wait_for_state(
        self,
        state: ClientState | str,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented API
    ) -> None:
        """Wait until the client is in *state*.

        Raises :class:`~broadcast_cli.exceptions.ConnectError` (or
        :class:`~broadcast_cli.exceptions.ClientClosed`) if the client stops for
        good before reaching it, and :exc:`TimeoutError` after *timeout* seconds.
        """
        wanted = ClientState(state)

        def reached() -> bool:
            if self._state is wanted:
                return True
            self._raise_if_stopped()
            return False

        await self._wait_until(reached, timeout)

    # -- connection -----------------------------------------------------------

    async def connect(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - the documented API
        """Start the background connection loop and return once connected.

        Unreachable servers are retried with backoff until *timeout* seconds
        (forever if ``None``); then, or if the server refuses for good, the loop
        is stopped and :class:`~broadcast_cli.exceptions.ConnectError` raised.
        Calling it while connected returns at once.
        """
        if self._closed:
            raise ClientClosed("the client was disconnected; create a new one")
        if self._task is None or self._task.done():
            self._stopped_error = None
            self._set_state(ClientState.CONNECTING)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"broadcast-client-{self.client_id}")

        def connected() -> bool:
            if self._state is ClientState.CONNECTED:
                return True
            self._raise_if_stopped()
            return False

        try:
            await self._wait_until(connected, timeout)
        except TimeoutError:
            await self._stop()
            urls = ", ".join(redact(url) for url in self.urls)
            error = ConnectError(f"could not connect to {urls} within {timeout} s")
            raise error from self.last_error
        except ConnectError:
            await self._stop()
            raise

    async def disconnect(self) -> None:
        """Close the connection and stop reconnecting for good; the state becomes ``disconnected``."""
        self._closed = True
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        ws = self._ws
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        self._end_session()
        self._set_state(ClientState.DISCONNECTED)
        self._notify()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    async def _run(self) -> None:
        """Run :meth:`_connection_loop`; a bug in it stops the client instead of hanging it."""
        try:
            await self._connection_loop()
        except Exception as exc:
            logger.exception("the connection loop failed")
            self._end_session()
            self._give_up(ConnectError(f"the client's connection loop failed: {exc!r}"))

    async def _connection_loop(self) -> None:
        """Connect, run the connection, and reconnect with backoff until stopped."""
        delays: Iterator[float] | None = None
        ever_connected = False
        while not self._closed:
            url = self.url
            try:
                token = await self._fetch_token()
                ws = await connect(
                    url,
                    subprotocols=[Subprotocol(SUBPROTOCOL)],
                    open_timeout=self._open_timeout,
                    close_timeout=self._close_timeout,
                )
            except Exception as exc:
                self.last_error = exc
                if not is_retryable(exc):
                    self._give_up(handshake_failure(url, exc))
                    return
                logger.info("cannot connect to %s: %s; retrying", redact(url), redact_secrets(str(exc)))
            else:
                ever_connected = True
                opened = asyncio.get_running_loop().time()
                code, reason = await self._session(ws, token)
                if asyncio.get_running_loop().time() - opened >= STABLE_AFTER:
                    delays = None  # a fresh backoff after a connection that held
                self.close_code, self.close_reason = code, reason
                if self._closed:
                    return
                # A token that expired is replaced on the reconnect only if it comes from a function.
                refreshable = code == CloseCode.TOKEN_EXPIRED and callable(self._token)
                if not should_reconnect(code) or (code == CloseCode.TOKEN_EXPIRED and not refreshable):
                    self._give_up(closed_for_good(url, code, reason))
                    return
                logger.info("connection to %s closed with code %s (%s); reconnecting", redact(url), code, reason)
            self._set_state(ClientState.RECONNECTING if ever_connected else ClientState.CONNECTING)
            if delays is None:
                delays = backoff(*self._backoff)
            await asyncio.sleep(next(delays))
            self._attempt += 1

    async def _fetch_token(self) -> str | None:
        """The token for the next connection, if the client has one (fetched afresh if it is a function)."""
        source = self._token
        if source is None:
            return None
        token: object = source
        if callable(source):
            token = source()
            if inspect.isawaitable(token):
                token = await token
        if not isinstance(token, str) or not token:
            raise ConfigurationError("the token function must return a non-empty string")
        return token

    def _give_up(self, error: ConnectError) -> None:
        """Stop for good after a terminal failure: state ``disconnected``, waiters failed with *error*."""
        logger.error("%s; not reconnecting", error)
        self._stopped_error = error
        self._task = None
        self._set_state(ClientState.DISCONNECTED)
        self._notify()

    async def _session(self, ws: ClientConnection, token: str | None = None) -> tuple[int, str]:
        """Run one open connection until it closes; return its close code and reason.

        A *token* is presented first, in an ``auth`` request, and the subscriptions
        follow it: the server answers requests in order, so they are checked
        against what it grants.
        """
        self._ws = ws
        self._outbox = asyncio.Queue()
        writer = asyncio.get_running_loop().create_task(self._write(ws, self._outbox))
        request = self._table.connection_opened()
        if token is not None:
            self._send(self._table.authenticate(token))
        if request is not None:
            self._send(request)
        self._set_state(ClientState.CONNECTED)
        try:
            while True:
                try:
                    self._reading = True
                    frame = await ws.recv()
                except ConnectionClosed as exc:
                    self.last_error = exc
                    if exc.rcvd is None:
                        return ABNORMAL_CLOSURE, ""
                    return exc.rcvd.code, exc.rcvd.reason
                finally:
                    self._reading = False
                try:
                    await self._dispatch(frame)
                except Exception:
                    logger.exception("failed to process a frame from %s", redact(self.url))
        finally:
            writer.cancel()
            self._end_session()

    def _end_session(self) -> None:
        """Forget the current connection (idempotent)."""
        self._ws = None
        self._outbox = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._table.is_open:
            for request in self._table.connection_lost():
                logger.debug("request %s (%s %s) lost with the connection", request.id, request.kind, request.channels)
        self._notify()

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[str]) -> None:
        """Send queued frames in order; the reader notices if the connection fails."""
        while True:
            frame = await outbox.get()
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return

    def _send(self, request: OutgoingRequest) -> None:
        """Queue *request* and watch that it gets answered within ``request_timeout``."""
        outbox, ws = self._outbox, self._ws
        if outbox is None or ws is None:  # the table only returns requests while a connection is open
            return
        if request.kind == "auth":
            logger.debug("sending the connection token (request %s)", request.id)
        else:
            logger.debug("sending %s", request.frame)
        outbox.put_nowait(request.frame)
        timer = asyncio.get_running_loop().call_later(self._request_timeout, self._check_answered, ws, request)
        self._timers[request.id] = timer

    def _answered(self, request: OutgoingRequest | None) -> None:
        """Stop watching *request*: it was answered."""
        if request is not None:
            timer = self._timers.pop(request.id, None)
            if timer is not None:
                timer.cancel()

    def _check_answered(self, ws: ClientConnection, request: OutgoingRequest) -> None:
        self._timers.pop(request.id, None)
        if ws is not self._ws or not self._table.is_pending(request.id):
            return
        if not self._reading:
            # A handler is running: the answer may be waiting unread. Look again later.
            timer = asyncio.get_running_loop().call_later(self._request_timeout, self._check_answered, ws, request)
            self._timers[request.id] = timer
            return
        logger.warning(
            "no answer to request %s within %s s: dropping the connection to %s",
            request.id,
            self._request_timeout,
            redact(self.url),
        )
        ws.transport.abort()

    async def _dispatch(self, frame: str | bytes) -> None:
        """Feed one frame to the table and run what it asks for."""
        outcome = self._table.receive(frame)
        if isinstance(outcome, EventReceived):
            if outcome.unrecovered is not None:
                await self._report(outcome.unrecovered)
            for entry in outcome.deliver:
                if entry.active:
                    await _call(entry.handler, outcome.message, f"handler for {entry.channel!r}")
        elif isinstance(outcome, AckReceived):
            self._answered(outcome.request)
            self._notify()
            for loss in outcome.unrecovered:
                await self._report(loss)
        elif isinstance(outcome, ErrorReceived):
            request = outcome.request
            self._answered(request)
            logger.error(
                "%s (request %s%s)",
                outcome.error,
                outcome.error.request_id,
                f": {request.kind} {', '.join(request.channels)}" if request is not None else "",
            )
            self._notify()
        elif isinstance(outcome, FrameIgnored):
            logger.debug("ignored a frame: %s", outcome.reason)

    async def _report(self, loss: Unrecovered) -> None:
        info = loss.info
        logger.warning(
            "messages of channel %r were lost (%s): continuing after seq %s of epoch %s",
            info.channel,
            info.reason,
            info.position.seq,
            info.position.epoch,
        )
        for entry in loss.entries:
            if entry.active and entry.on_unrecovered is not None:
                await _call(entry.on_unrecovered, info, f"on_unrecovered for {entry.channel!r}")

    # -- subscriptions --------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        handler: Handler,
        *,
        since: int | None = None,
        epoch: str | None = None,
        last: int | None = None,
        on_unrecovered: UnrecoveredHandler | None = None,
    ) -> Subscription:
        """Call *handler(message)* for every event of *channel*; return the :class:`Subscription`.

        *handler* may be a coroutine function: it is awaited, and handlers run one
        at a time in the order of the events. With *since* (and *epoch*) the
        server first replays what came after that position, if still in its
        history; with *last* it first replays the last that many messages still
        in history. A *channel* containing ``*`` is a pattern (``orders.*``,
        ``*``): *handler* gets the live events of every matching channel (their
        :attr:`~broadcast_cli.message.Message.channel` says which), and what is
        published while disconnected is not recovered. When messages were lost (the server could not recover, or a gap
        or epoch change shows in live events), *on_unrecovered(info)* is called
        so that the application refetches the channel's state; delivery then
        continues. The subscription is sent at once if connected, else on
        connection. A further handler on an already subscribed channel joins it
        as it stands (*since* is then ignored).
        """
        if self._closed:
            raise ClientClosed("the client was disconnected; create a new one")
        entry, request = self._table.add(
            channel, handler, since=since, epoch=epoch, last=last, on_unrecovered=on_unrecovered
        )
        if request is not None:
            self._send(request)
        return Subscription(self, entry)

    def _remove(self, entry: HandlerEntry) -> None:
        request = self._table.remove(entry)
        if request is not None:
            self._send(request)
        self._notify()

    def subscriptions(self) -> list[str]:
        """The channels and patterns that have at least one handler."""
        return self._table.channels()

    def __repr__(self) -> str:
        return f"<BroadcastClient {redact(self.url)} {self._state.value} channels={len(self._table.channels())}>"
