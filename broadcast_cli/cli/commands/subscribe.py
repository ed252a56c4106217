"""``broadcast subscribe``: print the events of channels (and patterns) as they come."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from ...client.stream import EventStream
from ...message import Message
from ..options import (
    DEFAULT_URL,
    URL_HELP,
    CountOption,
    FormatOption,
    TimeoutOption,
    TokenOption,
    UrlOption,
    connection_token,
    positive,
    server_url,
)
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP, ExitStatus

EPILOG = f"""\
Examples:

  broadcast subscribe --channel orders

  broadcast subscribe --channel orders --channel 'users.*' | jq .payload

  broadcast subscribe --channel orders --since 41 --epoch 1840b76a

  broadcast subscribe --channel orders --count 3 --timeout 10

  broadcast subscribe -C orders --url https://rt.example.com --token "$TOKEN"

Prints each event: as received, one JSON object per line, when piped; pretty on
a terminal. Reconnects on its own (status on stderr) and recovers what it
missed (patterns get live events only). Ctrl-C or SIGTERM exits 0; --timeout
exits 0, or 5 when fewer than --count events came.

--since resumes from a position: when the server cannot replay from it (its
history was reset, the messages left it, or the seq is ahead of the channel),
it says which and exits 6 before printing anything; refetch, then resume from
the position it gives.

{URL_HELP}
BROADCAST_WS_URL, deprecated, still works here (and wins over BROADCAST_URL).
--token (or BROADCAST_TOKEN, or the context's token) is sent in the connection's
first frame; a token in the URL's query (?token=...) is moved there too.

{EXIT_STATUS_HELP}
"""

ConnectTimeoutOption = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        metavar="SECONDS",
        callback=positive,
        help="Seconds to keep trying to reach the server at start (then exit 3).",
        envvar="BROADCAST_CONNECT_TIMEOUT",
    ),
]
"""``--connect-timeout``: how long to retry the first connection."""


async def follow(
    stream: EventStream,
    show: Callable[[Message], None],
    *,
    count: int | None,
    idle: float | None,
) -> ExitStatus:
    """Show the events of *stream* until *count* of them, or until none comes for *idle* seconds.

    Ending on *idle* is a success unless *count* events were expected.
    """
    received = 0
    async with stream:
        while count is None or received < count:
            try:
                message = await stream.next(idle)
            except TimeoutError:
                return ExitStatus.OK if count is None else ExitStatus.TIMEOUT
            show(message)
            received += 1
    return ExitStatus.OK


def run_until_stopped(follower: Coroutine[Any, Any, ExitStatus]) -> ExitStatus:
    """Run *follower* to its end; Ctrl-C or SIGTERM stop it, as the normal end of a subscription (status 0)."""

    async def main() -> ExitStatus:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        # Not possible outside the main thread, or where there are no signals.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await follower
        except asyncio.CancelledError:
            return ExitStatus.OK
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return ExitStatus.OK


def subscribe(
    ctx: typer.Context,
    *,
    channel: Annotated[
        list[str],
        typer.Option(
            "--channel",
            "-C",
            help="A channel to follow, or a pattern (orders.*, *: live events only). Repeat for more.",
            show_default=False,
        ),
    ],
    since: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="SEQ",
            help="Replay what came after this seq (one channel), then follow; exit 6 if the server cannot.",
            show_default=False,
        ),
    ] = None,
    epoch: Annotated[
        str | None,
        typer.Option(
            metavar="EPOCH",
            help="The epoch of --since's seq (from an event's epoch field): tells a history reset apart.",
            show_default=False,
        ),
    ] = None,
    count: CountOption = None,
    timeout: TimeoutOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    connect_timeout: ConnectTimeoutOption = 10.0,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Print the events of channels as they are published."""
    if epoch is not None and since is None:
        raise typer.BadParameter("--epoch goes with --since", param_hint="--epoch")
    output = Output(output_format)
    server, connection = connection_token(ctx, token, server_url(ctx, url, notice=output.status))
    stream = EventStream(
        server.websocket,
        channel,
        since=since,
        epoch=epoch,
        connect_timeout=connect_timeout,
        on_status=output.status,
        token=connection,
    )
    status = run_until_stopped(follow(stream, output.event, count=count, idle=timeout))
    if status is ExitStatus.TIMEOUT:
        output.error(f"no event for {timeout} s: {count} expected")
    raise typer.Exit(status)
