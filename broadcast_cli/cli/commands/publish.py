"""``broadcast publish``: publish messages through a server's HTTP API or straight into Redis."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ...client.publish import (
    COUNT_PLACEHOLDER,
    LineReader,
    Publisher,
    expand_template,
    make_request,
    parse_json,
    parse_ndjson_line,
    publisher,
)
from ...exceptions import BroadcastError
from ...message import PublishRequest
from ..errors import InputError
from ..options import DEFAULT_URL, URL_HELP, FormatOption, PrefixOption, UrlOption, positive, server_url
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP

EPILOG = f"""\
Examples:

  broadcast publish orders order.created '{{"entity_id": "123"}}'

  broadcast publish orders order.created @order.json --url http://10.0.0.5:8000

  echo '{{"n": 1}}' | broadcast publish orders tick -

  broadcast publish orders tick '{{"n": {COUNT_PLACEHOLDER}}}' --count 1000

  jq -c '.[]' events.json | broadcast publish --ndjson

  broadcast publish orders order.created --redis-url redis://localhost:6379/0

Prints the assigned seq of each message: one JSON receipt per line when piped,
a summary on a terminal.

{URL_HELP}

{EXIT_STATUS_HELP}
"""


def read_payload_text(source: str) -> str:
    """The JSON text of a PAYLOAD argument: the text itself, ``@file`` or ``-`` (stdin)."""
    if source == "-":
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
    channel: str, event: str, payload_text: str | None, *, count: int | None, origin: str | None
) -> list[PublishRequest]:
    """The messages of a CHANNEL EVENT [PAYLOAD] publish, ``{{count}}`` expanded when *count* is given."""
    if count is None:
        payload: Any = None if payload_text is None else parse_json(payload_text)
        return [make_request(channel, event, payload, origin=origin)]
    templated = payload_text is not None and COUNT_PLACEHOLDER in payload_text
    fixed: Any = None if payload_text is None or templated else parse_json(payload_text)
    requests = []
    for n in range(1, count + 1):
        payload = fixed
        if templated:
            assert payload_text is not None
            payload = parse_json(expand_template(payload_text, n), f"the payload with {COUNT_PLACEHOLDER} = {n}")
        requests.append(
            make_request(expand_template(channel, n), expand_template(event, n), payload, origin=origin)
        )
    return requests


async def _publish_stream(pub: Publisher, output: Output, origin: str | None) -> int:
    """Publish the NDJSON lines of stdin in batches; return how many were published."""
    published = 0
    number = 0
    reader = LineReader(sys.stdin.buffer)
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
                published += len(await pub.publish_many(requests, on_batch=output.receipts))
            exc.args = (f"{exc}; {published} message{'' if published == 1 else 's'} published before it",)
            raise
        if requests:
            published += len(await pub.publish_many(requests, on_batch=output.receipts))
    return published


async def _publish(pub: Publisher, output: Output, requests: list[PublishRequest] | None, origin: str | None) -> None:
    async with pub:
        if requests is None:
            await _publish_stream(pub, output, origin)
        elif output.pretty:
            output.receipts(await pub.publish_many(requests))  # one summary
        else:
            await pub.publish_many(requests, on_batch=output.receipts)  # receipts as they come


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
            help=f"Publish N messages; {COUNT_PLACEHOLDER} in the channel, event or payload becomes 1…N.",
            show_default=False,
        ),
    ] = None,
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
    http_url = server_url(ctx, url).http if redis_url is None else None
    if ndjson:
        if channel is not None or payload is not None or count is not None:
            raise typer.BadParameter("--ndjson reads everything from stdin: give no CHANNEL, EVENT, PAYLOAD or --count")
        requests = None
    else:
        if channel is None or event is None:
            raise typer.BadParameter("CHANNEL and EVENT are required (or --ndjson to read messages from stdin)")
        text = None if payload is None else read_payload_text(payload)
        requests = build_requests(channel, event, text, count=count, origin=origin)
    output = Output(output_format)
    pub = publisher(http_url, redis_url=redis_url, prefix=prefix, timeout=timeout, api_key=api_key)
    asyncio.run(_publish(pub, output, requests, origin))
