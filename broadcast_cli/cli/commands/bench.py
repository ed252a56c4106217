"""``broadcast bench``: load a server with subscribers and publishers, and check what it delivered."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ...bench.config import BenchConfig, EmbeddedServer
from ...bench.files import append_csv, check_csv, check_writable, compare, read_hdr, write_hdr
from ...bench.system import parse_cpus
from ...exceptions import ConfigurationError
from ...urls import ServerURL, parse_server_url, redact
from ..errors import InputError
from ..options import (
    DEFAULT_URL,
    URL_HELP,
    FormatOption,
    TokenOption,
    UrlsOption,
    connection_token,
    positive,
    server_url,
)
from ..options import (
    api_key as resolve_api_key,
)
from ..output import Format, Output
from ..status import EXIT_STATUS_HELP, ExitStatus

if TYPE_CHECKING:
    from ...bench.report import Report
    from ...bench.runner import Progress

EPILOG = f"""\
Examples:

  broadcast bench --embedded

  broadcast bench --embedded -n 1000 -m 2000 --server-cpus 0 --cpus 1

  broadcast bench --url http://127.0.0.1:8000 -n 1000 --rate 200 --duration 10

  broadcast bench --url http://10.0.0.5:8000 --token "$(broadcast token --sub bench --channel bench)"

  broadcast bench --embedded --redis-url redis://127.0.0.1:6379/0 --servers 2 -n 1000

  broadcast bench --embedded -n 200 -m 500 --json | jq .delivery.per_second

  broadcast bench --embedded -n 200 --csv runs.csv --hdr before.hdr

  broadcast bench --compare before.hdr after.hdr

Prints a table on a terminal, one JSON object when piped (or with --json):
deliveries/s and MB/s, achieved publish rate, publish→deliver latency
percentiles (HDR histogram of sampled frames), connect times, the CPU of the
bench and of the server, and the correctness check from the seqs: lost,
duplicated, reordered. Exits 1 when that check fails (anything lost, duplicated
or reordered, an error frame, or a subscriber closed by the server).

--csv FILE appends the run's figures to FILE as one CSV row (the header first
when FILE is new); --hdr FILE writes its latency histogram as an HdrHistogram
log; --compare A B sets two such logs side by side. A progress bar runs on
stderr on a terminal (--no-progress hides it).

{URL_HELP}
The subscribers speak no TLS; --publish-url may be https://. They present
--token (or BROADCAST_TOKEN, or a ?token= in --url) in their first frame, for a
server whose channels need one.

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
    token: str | None,
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
            token=token,
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


def _ignore(progress: Progress) -> None:
    """Where progress goes with --no-progress."""


_COMPARE_OPTIONS = {"compare_files", "json_output", "output_format"}
"""The options that go with --compare."""


def _compare(ctx: typer.Context, output: Output, first: Path, second: Path) -> None:
    """``bench --compare A B``: the two histograms' percentiles side by side."""
    for parameter in ctx.command.params:
        name = parameter.name or ""
        source = ctx.get_parameter_source(name)
        if name not in _COMPARE_OPTIONS and source is not None and source.name == "COMMANDLINE":
            shown = parameter.opts[0] if parameter.opts else name
            raise InputError(f"--compare reads two files and runs nothing: give it without {shown}")
    try:
        rows = compare(read_hdr(first), read_hdr(second))
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    output.bench_comparison(str(first), str(second), rows)


def _keep(output: Output, report: Report, csv_file: Path | None, hdr_file: Path | None) -> None:
    """Write the run's CSV row and histogram; a file that cannot be written exits 1 (the report is printed)."""
    try:
        if csv_file is not None:
            append_csv(csv_file, report)
            output.status(f"the run's figures are the last row of {csv_file}")
        if hdr_file is not None:
            write_hdr(hdr_file, report)
            samples = report.latency.count if report.latency is not None else 0
            output.status(f"the latency histogram ({samples:,} samples) is in {hdr_file}")
    except OSError as exc:
        output.error(f"cannot write {exc.filename or 'a file'}: {exc.strerror or exc}")
        raise typer.Exit(ExitStatus.ERROR) from None


def _connection_token(
    ctx: typer.Context, token: str | None, targets: list[tuple[str, ServerURL]] | None, *, embedded: bool
) -> tuple[list[tuple[str, ServerURL]] | None, str | None]:
    """The token the subscribers present (``--token``, ``BROADCAST_TOKEN``, a URL's ``?token=``), the URLs without it.

    The servers of ``--embedded`` take no token: one given on the command line is
    refused, one from the environment is left unused.
    """
    if embedded:
        source = ctx.get_parameter_source("token")
        if source is not None and source.name == "COMMANDLINE":
            raise InputError("--token goes with --url: the servers of --embedded take no connection token")
        return targets, None
    if not targets:
        _, chosen = connection_token(ctx, token, parse_server_url(DEFAULT_URL), url_parameter="urls")
        return targets, chosen
    resolved = [(given, *connection_token(ctx, token, server, url_parameter="urls")) for given, server in targets]
    tokens = {chosen for _, _, chosen in resolved}
    if len(tokens) > 1:
        raise InputError("the --url values carry different tokens: give one --token for every server")
    return [(given, server) for given, server, _ in resolved], tokens.pop()


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
    token: TokenOption = None,
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
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="FILE",
            help="Append the run's figures to this CSV file, one row per run (the header first when it is new).",
            show_default=False,
        ),
    ] = None,
    hdr_file: Annotated[
        Path | None,
        typer.Option(
            "--hdr",
            metavar="FILE",
            help="Write the latency histogram to this file (an HdrHistogram log, in µs), for --compare later.",
            show_default=False,
        ),
    ] = None,
    compare_files: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            "--compare",
            metavar="A B",
            help="Run nothing: set the latency percentiles of two --hdr files side by side, with the change from A.",
            show_default=False,
        ),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar on a terminal.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON (as --format json).")] = False,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Load a server with subscribers and publishers; report throughput, latency and correctness.

    N subscribers over C channels, P publishers at a rate or as fast as possible,
    against a running server (--url) or servers the bench starts (--embedded).
    """
    output = Output(Format.JSON if json_output else output_format)
    if compare_files is not None:
        _compare(ctx, output, *compare_files)
        return
    source = ctx.get_parameter_source("urls")
    if embedded and source is not None and source.name == "ENVIRONMENT":
        urls = None  # BROADCAST_URL names a server to use; --embedded starts its own
    if urls:
        targets: list[tuple[str, ServerURL]] | None = [(url, server_url(ctx, url, parameter="urls")) for url in urls]
    elif not embedded:  # the selected context's server, else the default one
        server = server_url(ctx, DEFAULT_URL, parameter="urls")
        targets = [(server.http, server)]
    else:
        targets = None
    targets, connection = _connection_token(ctx, token, targets, embedded=embedded)
    config = _config(
        urls=targets,
        publish_url=publish_url,
        api_key=resolve_api_key(ctx, api_key),
        token=connection,
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
    try:
        if csv_file is not None:
            check_csv(csv_file)
        if hdr_file is not None:
            check_writable(hdr_file, "the histogram file")
    except ConfigurationError as exc:
        raise InputError(str(exc)) from None
    from ...bench.runner import run_bench  # here: it loads the server, for --embedded

    with contextlib.nullcontext(_ignore) if no_progress else output.bench_progress() as show_progress:
        report = asyncio.run(run_bench(config, on_progress=show_progress, on_status=output.status))
    output.bench_report(report)
    _keep(output, report, csv_file, hdr_file)
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
