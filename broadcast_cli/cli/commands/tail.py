"""``broadcast tail``: watch live traffic, one line per event, or a live table of rates."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ...client.stream import EventStream
from ...message import is_pattern
from ...protocol import MAX_LAST
from ..options import (
    DEFAULT_URL,
    URL_HELP,
    CountOption,
    FormatOption,
    TimeoutOption,
    TokenOption,
    UrlOption,
    connection_token,
    server_url,
)
from ..output import Format, Output
from ..rates import ChannelRates
from ..status import EXIT_STATUS_HELP, ExitStatus
from .subscribe import ConnectTimeoutOption, follow, run_until_stopped

EPILOG = f"""\
Examples:

  broadcast tail

  broadcast tail orders 'users.*' -n 20

  broadcast tail --stats

  broadcast tail orders -n 100 --timeout 1 > recent.ndjson

One coloured line per event on a terminal (time, channel, event, seq, payload);
one JSON object per line, as received, when piped. -n replays the named channels
(patterns get live events only).

{URL_HELP}
BROADCAST_WS_URL, deprecated, still works here (and wins over BROADCAST_URL).
--token (or BROADCAST_TOKEN, or the context's token) is sent in the connection's
first frame; a token in the URL's query (?token=...) is moved there too.

{EXIT_STATUS_HELP}
"""

STATS_INTERVAL = 1.0
"""Seconds between two updates of the --stats table."""


async def watch_rates(
    stream: EventStream, output: Output, *, count: int | None, idle: float | None
) -> ExitStatus:
    """Count the events of *stream* per channel and show the rates every :data:`STATS_INTERVAL`."""
    rates = ChannelRates(time.monotonic())
    received = 0
    async with stream:
        with output.rates() as show:
            last_event = next_update = time.monotonic()
            while count is None or received < count:
                now = time.monotonic()
                wait = next_update - now
                if idle is not None:
                    wait = min(wait, last_event + idle - now)
                try:
                    message = await stream.next(max(wait, 0.0))
                except TimeoutError:
                    now = time.monotonic()
                    if idle is not None and now - last_event >= idle:
                        show(rates.rows(now))
                        return ExitStatus.OK if count is None else ExitStatus.TIMEOUT
                else:
                    now = last_event = time.monotonic()
                    rates.record(message.channel, message.event, message.seq, now)
                    received += 1
                if now >= next_update:
                    show(rates.rows(now))
                    next_update = now + STATS_INTERVAL
            show(rates.rows(time.monotonic()))
    return ExitStatus.OK


def tail(
    ctx: typer.Context,
    *,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[CHANNEL|PATTERN]...",
            help="Channels or patterns (orders.*) to watch. Default: * (every channel).",
            show_default=False,
        ),
    ] = None,
    lines: Annotated[
        int | None,
        typer.Option(
            "--lines",
            "-n",
            metavar="N",
            min=1,
            max=MAX_LAST,
            help="First replay the last N events of each named channel, then follow.",
            show_default=False,
        ),
    ] = None,
    stats: Annotated[
        bool, typer.Option("--stats", help="Show a live table of per-channel message rates instead of the events.")
    ] = False,
    count: CountOption = None,
    timeout: TimeoutOption = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    connect_timeout: ConnectTimeoutOption = 10.0,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Watch live traffic: every channel by default, one line per event."""
    names = names or ["*"]
    output = Output(output_format)
    server, connection = connection_token(ctx, token, server_url(ctx, url, notice=output.status))
    channels = [name for name in names if not is_pattern(name)]
    if lines is not None and not channels:
        output.status("-n replays named channels only; patterns get live events")
    stream = EventStream(
        server.websocket, names, last=lines, connect_timeout=connect_timeout, on_status=output.status, token=connection
    )
    if stats:
        status = run_until_stopped(watch_rates(stream, output, count=count, idle=timeout))
    else:
        status = run_until_stopped(follow(stream, output.tail, count=count, idle=timeout))
    if status is ExitStatus.TIMEOUT:
        output.error(f"no event for {timeout} s: {count} expected")
    raise typer.Exit(status)
