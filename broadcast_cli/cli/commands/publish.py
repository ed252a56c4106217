"""``broadcast publish``: publish messages through a server's HTTP API or straight into Redis."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ...client.http import Receipt
from ...client.pacing import parse_pause, parse_rate
from ...client.publish import (
    COUNT_PLACEHOLDER,
    LineReader,
    Publisher,
    make_request,
    parse_json,
    parse_ndjson_line,
    publisher,
)
from ...client.series import Series, TemplatedMessages
from ...exceptions import BroadcastError, ConfigurationError
from ...message import PublishRequest
from ..errors import InputError
from ..interrupts import stop_on_interrupt
from ..options import DEFAULT_URL, URL_HELP, FormatOption, PrefixOption, UrlOption, positive, server_url
from ..options import api_key as resolve_api_key
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP, ExitStatus

EPILOG = f"""\
Examples:

  broadcast publish orders order.created '{{"entity_id": "123"}}'

  broadcast publish orders order.created @order.json --url http://10.0.0.5:8000

  echo '{{"n": 1}}' | broadcast publish orders tick -

  broadcast publish orders tick '{{"n": {COUNT_PLACEHOLDER}}}' --count 1000

  broadcast publish orders tick '{{"id": {{{{uuid}}}}, "at": {{{{iso}}}}}}' -c 100000 --rate 500/s

  broadcast publish dice.{{{{random(1,6)}}}} roll '{{"n": {{{{index}}}}}}' -c 10

  broadcast publish orders heartbeat -c 60 --sleep 1s

  jq -c '.[]' events.json | broadcast publish --ndjson

  broadcast publish orders order.created --redis-url redis://localhost:6379/0

Prints the assigned seq of each message: one JSON receipt per line when piped,
a summary on a terminal, where a progress bar on stderr follows a --count run
(--no-progress hides it).

With --count, CHANNEL, EVENT and PAYLOAD are templates that each message fills
in: {{{{count}}}} (1…N), {{{{index}}}} (0…N-1), {{{{random}}}} (from 0 to 1),
{{{{random(MIN,MAX)}}}} (an integer), {{{{timestamp}}}} (ms), {{{{unix}}}} (s), {{{{iso}}}}
(UTC, ISO 8601) and {{{{uuid}}}} (random). In the payload a value stays valid JSON:
inside a string it is string content, elsewhere a JSON value (strings quoted);
{{{{"{{{{"}}}} writes {{{{. Any other {{{{…}}}} is an error before anything is sent.
Without --count, no text is a template.

--rate 200/s (or 600/m, 36/h) keeps an absolute schedule, which never drifts;
--sleep 250ms pauses after each message instead.

Ctrl-C stops a run after the batch in flight and says how many of the messages
the server acknowledged (exit status 130); a second Ctrl-C stops at once.

{URL_HELP}

{EXIT_STATUS_HELP}
"""


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_payload_text(source: str, output: Output | None = None) -> str:
    """The JSON text of a PAYLOAD argument: the text itself, ``@file`` or ``-`` (stdin).

    Reading ``-`` from a terminal, *output* is told how to end the input.
    """
    if source == "-":
        if output is not None and _stdin_is_terminal():
            output.status("reading the payload from stdin: type or paste the JSON, then Ctrl-D on a line of its own")
        return sys.stdin.read()
    if source.startswith("@"):
        path = Path(source[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read the payload file {str(path)!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"the payload file {str(path)!r} is not UTF-8 text: {exc.reason}") from None
    return source


def build_requests(
    channel: str,
    event: str,
    payload_text: str | None,
    *,
    count: int | None,
    origin: str | None,
    rate: float | None = None,
    pause: float | None = None,
) -> Series:
    """The messages of a CHANNEL EVENT [PAYLOAD] publish: one, or *count* made from templates.

    Without *count* the texts are used as they are; with it they are templates
    (:mod:`~broadcast_cli.client.templates`), read here so that a wrong
    placeholder is an error before anything is sent.
    """
    if count is None:
        payload: Any = None if payload_text is None else parse_json(payload_text)
        request = make_request(channel, event, payload, origin=origin)
        return Series(1, lambda index: request)
    messages = TemplatedMessages.read(channel, event, payload_text, origin=origin)
    return Series(count, messages, rate=rate, pause=pause)


class _Tally:
    """How many messages of a stream were acknowledged so far, and how many wait for their answer."""

    def __init__(self) -> None:
        self.published = 0
        self.in_flight = 0

    async def publish(self, pub: Publisher, requests: list[PublishRequest], output: Output) -> None:
        """Publish *requests*, printing their receipts and counting them."""

        def acknowledged(receipts: list[Receipt]) -> None:
            self.published += len(receipts)
            self.in_flight -= len(receipts)
            output.receipts(receipts)

        self.in_flight = len(requests)
        await pub.publish_many(requests, on_batch=acknowledged)
        self.in_flight = 0


async def _publish_stream(pub: Publisher, output: Output, origin: str | None, tally: _Tally) -> None:
    """Publish the NDJSON lines of stdin in batches, counting them in *tally*."""
    number = 0
    reader = LineReader(sys.stdin.buffer)
    async with pub:
        async for lines in reader.batches():
            requests: list[PublishRequest] = []
            try:
                for line in lines:
                    number += 1
                    request = parse_ndjson_line(line, number, origin=origin)
                    if request is not None:
                        requests.append(request)
            except BroadcastError as exc:
                if requests:
                    await tally.publish(pub, requests, output)
                published = tally.published
                exc.args = (f"{exc}; {published} message{'' if published == 1 else 's'} published before it",)
                raise
            if requests:
                await tally.publish(pub, requests, output)


async def _publish_series(pub: Publisher, output: Output, series: Series, *, progress: bool) -> None:
    """Publish *series*: receipts as they come when piped, one summary at the end for a person."""
    kept: list[Receipt] = []
    bar = output.count_progress("publishing", series.total) if progress else contextlib.nullcontext(_ignore)

    def stopping() -> None:
        if series.in_flight:
            waiting = f"{series.in_flight} message{'s' if series.in_flight > 1 else ''} in flight"
            output.status(f"stopping: waiting for the server's answer about the {waiting} (Ctrl-C again stops at once)")

    try:
        with stop_on_interrupt(stopping) as stop, bar as show:

            def acknowledged(receipts: list[Receipt]) -> None:
                if output.pretty:
                    kept.extend(receipts)
                else:
                    output.receipts(receipts)
                show(series.published)

            async with pub:
                await series.run(pub, stop=stop, on_batch=acknowledged)
    except BroadcastError as exc:
        if series.published:
            exc.args = (f"{exc}; {series.published} of {series.total} published before it",)
        raise
    finally:
        output.receipts(kept)  # the summary, for a person (kept is empty otherwise)


def _ignore(done: int) -> None:
    """Where progress goes when it is not shown."""


def _interrupted(output: Output, published: int, total: int | None, in_flight: int = 0) -> typer.Exit:
    """Say how many messages the server acknowledged before Ctrl-C (and how many had no answer yet); the exit."""
    counted = f"{published} of {total}" if total is not None else str(published)
    note = f"; {in_flight} more had no answer yet and may or may not have been published" if in_flight else ""
    output.status(f"interrupted after {counted} published{note}")
    return typer.Exit(ExitStatus.INTERRUPTED)


def _option(parse: Callable[[str], float], text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return parse(text)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def publish(
    ctx: typer.Context,
    *,
    channel: Annotated[
        str | None, typer.Argument(help="The channel, e.g. orders.", show_default=False)
    ] = None,
    event: Annotated[
        str | None, typer.Argument(help="The event name, e.g. order.created.", show_default=False)
    ] = None,
    payload: Annotated[
        str | None,
        typer.Argument(
            help="The payload: JSON text, @FILE to read it from a file, or - to read it from stdin. Default: null.",
            show_default=False,
        ),
    ] = None,
    ndjson: Annotated[
        bool,
        typer.Option(
            "--ndjson",
            help='Read messages from stdin, one JSON object per line: {"channel", "event", "payload"}; '
            "publish them in batches of up to 1000.",
        ),
    ] = False,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            "-c",
            min=1,
            help=f"Publish N messages, CHANNEL, EVENT and PAYLOAD being templates: {COUNT_PLACEHOLDER} becomes "
            "1…N (the other placeholders are below).",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            "-r",
            metavar="RATE",
            help="With --count: publish at this rate, e.g. 200, 200/s, 600/m or 36/h, on an absolute schedule "
            "(it never drifts; a late run sends at most a second's worth at once).",
            show_default=False,
        ),
    ] = None,
    sleep: Annotated[
        str | None,
        typer.Option(
            "--sleep",
            metavar="DURATION",
            help="With --count: one message at a time, pausing this long after each answer, e.g. 250ms, 1s, 1m.",
            show_default=False,
        ),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress bar on a terminal during a --count run.")
    ] = False,
    origin: Annotated[
        str | None,
        typer.Option(help="Your client id, passed on to subscribers so they can ignore their own echo."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Publish straight into this Redis instead of through a server (no environment variable: "
            "a server's BROADCAST_REDIS_URL never changes where publish goes).",
            show_default=False,
        ),
    ] = None,
    prefix: PrefixOption = "broadcast",
    api_key: Annotated[
        str | None,
        typer.Option(
            help="The server's API key, sent as 'Authorization: Bearer <key>' (prefer the environment variable).",
            envvar="BROADCAST_API_KEY",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", "-t", callback=positive, help="Seconds to wait for each answer.")
    ] = 10.0,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Publish a message on a channel.

    PAYLOAD is JSON: text, @FILE, or - for stdin. The message goes through the
    server's HTTP API (--url), or straight into Redis (--redis-url).
    """
    url_source = ctx.get_parameter_source("url")
    if redis_url is not None and url_source is not None and url_source.name == "COMMANDLINE":
        raise typer.BadParameter("give --url or --redis-url, not both", param_hint="--redis-url")
    per_second = _option(parse_rate, rate, "--rate")
    pause = _option(parse_pause, sleep, "--sleep")
    if per_second is not None and pause is not None:
        raise typer.BadParameter("give --rate or --sleep, not both", param_hint="--sleep")
    if (per_second is not None or pause is not None) and count is None:
        raise typer.BadParameter("--rate and --sleep pace the messages of --count N: give --count")
    http_url = server_url(ctx, url).http if redis_url is None else None
    key = resolve_api_key(ctx, api_key) if redis_url is None else None
    output = Output(output_format)
    if ndjson:
        if channel is not None or payload is not None or count is not None:
            raise typer.BadParameter("--ndjson reads everything from stdin: give no CHANNEL, EVENT, PAYLOAD or --count")
        if _stdin_is_terminal():
            output.status("reading messages from stdin, one JSON object per line; Ctrl-D on a line of its own ends")
        pub = publisher(http_url, redis_url=redis_url, prefix=prefix, timeout=timeout, api_key=key)
        tally = _Tally()
        try:
            asyncio.run(_publish_stream(pub, output, origin, tally))
        except KeyboardInterrupt:
            raise _interrupted(output, tally.published, None, tally.in_flight) from None
        return
    if channel is None or event is None:
        raise typer.BadParameter("CHANNEL and EVENT are required (or --ndjson to read messages from stdin)")
    text = None if payload is None else read_payload_text(payload, output)
    series = build_requests(channel, event, text, count=count, origin=origin, rate=per_second, pause=pause)
    # A bar beside NDJSON lines on the same terminal would garble both: only when data is not streamed there.
    progress = not no_progress and count is not None and (output.pretty or not output.stdout_tty)
    pub = publisher(http_url, redis_url=redis_url, prefix=prefix, timeout=timeout, api_key=key)
    try:
        asyncio.run(_publish_series(pub, output, series, progress=progress))
    except KeyboardInterrupt:
        raise _interrupted(output, series.published, series.total, series.in_flight) from None
    if series.stopped:
        raise _interrupted(output, series.published, series.total)
