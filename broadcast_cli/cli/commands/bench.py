"""``broadcast bench``: load a server with subscribers and publishers, and check what it delivered."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from ...bench.config import BenchConfig, EmbeddedServer
from ...bench.system import parse_cpus
from ...exceptions import ConfigurationError
from ...urls import ServerURL, parse_server_url, redact
from ..errors import InputError
from ..options import DEFAULT_URL, URL_HELP, FormatOption, UrlsOption, positive, server_url
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP, ExitStatus

if TYPE_CHECKING:
    from ...bench.report import Report

EPILOG = f"""\
Examples:

  broadcast bench --embedded

  broadcast bench --embedded -n 1000 -m 2000 --server-cpus 0 --cpus 1

  broadcast bench --url http://127.0.0.1:8000 -n 1000 --rate 200 --duration 10

  broadcast bench --embedded --redis-url redis://127.0.0.1:6379/0 --servers 2 -n 1000

  broadcast bench --embedded -n 200 -m 500 --json | jq .delivery.per_second

Prints a table on a terminal, one JSON object when piped (or with --json):
deliveries/s and MB/s, achieved publish rate, publish→deliver latency
percentiles (HDR histogram of sampled frames), connect times, the CPU of the
bench and of the server, and the correctness check from the seqs: lost,
duplicated, reordered. Exits 1 when that check fails (anything lost, duplicated
or reordered, an error frame, or a subscriber closed by the server).

{URL_HELP}
The subscribers speak no TLS; --publish-url may be https://.

{EXIT_STATUS_HELP}
"""

_DEFAULT_MESSAGES = 10_000
"""Messages published when neither --messages nor --duration is given."""


def _websocket_url(server: ServerURL, given: str) -> str:
    """The WebSocket endpoint the bench's subscribers connect to; refuses TLS, which they do not speak."""
    if server.secure:
        raise ConfigurationError(
            f"invalid server URL {redact(given)!r}: the bench speaks no TLS; give an http:// or ws:// URL"
        )
    return server.websocket


def _config(
    *,
    urls: list[tuple[str, ServerURL]] | None,
    publish_url: str | None,
    api_key: str | None,
    embedded: bool,
    redis_url: str | None,
    servers: int,
    server_cpus: str | None,
    subscribers: int,
    channels: int,
    publishers: int,
    messages: int | None,
    rate: float | None,
    duration: float | None,
    payload_size: int,
    batch: int,
    procs: int,
    sample_every: int,
    connect_concurrency: int,
    connect_timeout: float,
    idle_timeout: float,
    timeout: float,
    server_pids: list[int] | None,
    cpus: str | None,
) -> BenchConfig:
    """The run the options describe; raises :class:`InputError` for options that do not fit together.

    *urls* are the ``--url`` values as given, each with the server it names.
    """
    if not embedded and (redis_url is not None or servers != 1 or server_cpus is not None):
        raise InputError("--redis-url, --servers and --server-cpus go with --embedded")
    if embedded and urls:
        raise InputError("give --url or --embedded, not both")
    if messages is None and duration is None:
        messages = _DEFAULT_MESSAGES
    try:
        targets = urls or [(DEFAULT_URL, parse_server_url(DEFAULT_URL))]
        websocket_urls = tuple(_websocket_url(server, given) for given, server in targets)
        if publish_url is not None:
            publish_url = parse_server_url(publish_url).http
        elif not embedded:
            publish_url = targets[0][1].http
        spec = None
        if embedded:
            spec = EmbeddedServer(
                redis_url=redis_url,
                servers=servers,
                cpus=parse_cpus(server_cpus) if server_cpus is not None else frozenset(),
            )
        return BenchConfig(
            urls=websocket_urls,
            publish_url=publish_url,
            api_key=api_key,
            embedded=spec,
            subscribers=subscribers,
            channels=channels,
            publishers=publishers,
            messages=messages,
            rate=rate,
            duration=duration,
            payload_size=payload_size,
            batch=batch,
            procs=procs,
            sample_every=sample_every,
            connect_concurrency=connect_concurrency,
            connect_timeout=connect_timeout,
            idle_timeout=idle_timeout,
            timeout=timeout,
            server_pids=tuple(server_pids or ()),
            cpus=parse_cpus(cpus) if cpus is not None else frozenset(),
        )
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None


def exit_status(report: Report) -> ExitStatus:
    """What ``broadcast bench`` exits with after *report*: 1 when the check failed, 5 when publishing timed out."""
    if not report.ok:
        return ExitStatus.ERROR
    if report.publish_timed_out:
        return ExitStatus.TIMEOUT
    return ExitStatus.OK


def bench(
    ctx: typer.Context,
    *,
    urls: UrlsOption = None,
    publish_url: Annotated[
        str | None,
        typer.Option(
            help="The server to publish to, by any URL --url takes (https:// works here). "
            "Default: the server of the first --url.",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="The server's API key for publishing (prefer the environment variable).",
            envvar="BROADCAST_API_KEY",
            show_default=False,
        ),
    ] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Start the server(s) in child processes instead of using --url.")
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(help="With --embedded: the Redis the servers share (default: in memory).", show_default=False),
    ] = None,
    servers: Annotated[
        int, typer.Option(min=1, help="With --embedded: how many server processes (more than 1 needs --redis-url).")
    ] = 1,
    server_cpus: Annotated[
        str | None,
        typer.Option(help="With --embedded: pin the servers to these cores, e.g. 0 or 0,2.", show_default=False),
    ] = None,
    cpus: Annotated[
        str | None,
        typer.Option(help="Pin the bench's own processes to these cores, e.g. 1 or 1-3.", show_default=False),
    ] = None,
    subscribers: Annotated[int, typer.Option("--subscribers", "-n", min=1, help="Subscriber connections.")] = 100,
    channels: Annotated[int, typer.Option(min=1, help="Channels the subscribers are spread over.")] = 1,
    publishers: Annotated[
        int, typer.Option("--publishers", "-p", min=1, help="Concurrent publishers (HTTP connections).")
    ] = 1,
    messages: Annotated[
        int | None,
        typer.Option(
            "--messages",
            "-m",
            min=1,
            help=f"Messages to publish in all (default: {_DEFAULT_MESSAGES:,}, or as many as --duration allows).",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            "-r",
            callback=positive,
            help="Target publish rate in messages per second, in all (default: as fast as possible).",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", "-d", callback=positive, help="Stop publishing after this many seconds.", show_default=False
        ),
    ] = None,
    payload_size: Annotated[int, typer.Option("--payload-size", "-s", help="Bytes of each payload, as JSON.")] = 100,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="The most messages per publish request.")] = 100,
    procs: Annotated[
        int, typer.Option(min=1, help="Processes the subscribers are spread over (when one core cannot keep up).")
    ] = 1,
    sample_every: Annotated[
        int, typer.Option(min=1, help="Measure the latency of one frame in this many; the others are only counted.")
    ] = 16,
    connect_concurrency: Annotated[int, typer.Option(min=1, help="Connections opened at once.")] = 100,
    connect_timeout: Annotated[
        float, typer.Option(callback=positive, help="Seconds each subscriber may take to connect and subscribe.")
    ] = 10.0,
    idle_timeout: Annotated[
        float,
        typer.Option(
            callback=positive,
            help="After publishing, stop waiting when nothing has arrived for this many seconds (the rest is lost).",
        ),
    ] = 5.0,
    timeout: Annotated[
        float, typer.Option("--timeout", "-t", callback=positive, help="Seconds the whole run may take.")
    ] = 300.0,
    server_pids: Annotated[
        list[int] | None,
        typer.Option(
            "--server-pid", help="A server process to report CPU and memory of (repeatable).", show_default=False
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON (as --format json).")] = False,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Load a server with subscribers and publishers; report throughput, latency and correctness.

    N subscribers over C channels, P publishers at a rate or as fast as possible,
    against a running server (--url) or servers the bench starts (--embedded).
    """
    source = ctx.get_parameter_source("urls")
    if embedded and source is not None and source.name == "ENVIRONMENT":
        urls = None  # BROADCAST_URL names a server to use; --embedded starts its own
    config = _config(
        urls=[(url, server_url(ctx, url, parameter="urls")) for url in urls] if urls else None,
        publish_url=publish_url,
        api_key=api_key,
        embedded=embedded,
        redis_url=redis_url,
        servers=servers,
        server_cpus=server_cpus,
        subscribers=subscribers,
        channels=channels,
        publishers=publishers,
        messages=messages,
        rate=rate,
        duration=duration,
        payload_size=payload_size,
        batch=batch,
        procs=procs,
        sample_every=sample_every,
        connect_concurrency=connect_concurrency,
        connect_timeout=connect_timeout,
        idle_timeout=idle_timeout,
        timeout=timeout,
        server_pids=server_pids,
        cpus=cpus,
    )
    from ...bench.runner import run_bench  # here: it loads the server, for --embedded

    output = Output(Format.JSON if json_output else output_format)
    with output.bench_progress() as show_progress:
        report = asyncio.run(run_bench(config, on_progress=show_progress, on_status=output.status))
    output.bench_report(report)
    if report.generator.busy:
        output.status(
            "a process of the bench was above 90% of a core: the figures may be its limit, not the server's "
            "(try --procs on a machine with cores to spare)"
        )
    for problem in report.problems():
        output.error(problem)
    if report.publish_timed_out:
        output.error(f"the run's timeout ({timeout:g} s) stopped publishing after {report.published:,} messages")
    status = exit_status(report)
    if status is not ExitStatus.OK:
        raise typer.Exit(status)
