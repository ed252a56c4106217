"""What the commands print, and how: the only module that imports rich (lazily).

Data goes to stdout, status and errors to stderr (as in httpie's ``writer.py``).
When stdout is a terminal, data is shown for a person (colours, pretty JSON);
when it is piped, each record is one line of JSON (NDJSON) for the next
program. ``--format`` overrides the guess.

The ``format_*`` functions build text and print nothing; :class:`Output` prints.
Everything that came from the network is passed through :func:`escape_control`
before it reaches a terminal, so a payload cannot move the cursor, change the
title or hide text. Every status and error line, and every log line
(:func:`show_logs`), goes through :func:`~broadcast_cli.urls.redact_secrets`: the
token and API key a command was given (:func:`conceal`) never reach stderr.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from ..urls import redact_secrets

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..bench.files import ComparisonRow
    from ..bench.report import Report
    from ..bench.runner import Progress as BenchProgress
    from ..client.http import Receipt
    from ..message import Message
    from .rates import RateRow

__all__ = [
    "MIN_SECRET_LENGTH",
    "Format",
    "LogLines",
    "Output",
    "compact_json",
    "conceal",
    "escape_control",
    "forget_concealed",
    "format_bench_rows",
    "format_clock",
    "format_receipts",
    "level_to_show",
    "pretty_json",
    "show_logs",
]

PROGRAM = "broadcast"
"""The prefix of every status and error line."""

_SECRETS: set[str] = set()

MIN_SECRET_LENGTH = 8
"""Shorter values are not masked as they are (a real token or API key is longer; masking ``url`` would garble
messages); the patterns of :func:`~broadcast_cli.urls.redact_secrets` still apply."""


def conceal(*secrets: str | None) -> None:
    """Never show *secrets* (a token, an API key) on stderr, in any status, error or log line of this run."""
    _SECRETS.update(secret for secret in secrets if secret and len(secret) >= MIN_SECRET_LENGTH)


def forget_concealed() -> None:
    """Start a run with no secret to conceal (the ``broadcast`` command calls it first: one run, one set)."""
    _SECRETS.clear()


def _redacted(text: str) -> str:
    return redact_secrets(text, _SECRETS)


class LogLines(logging.Handler):
    """Log records as ``broadcast: LEVEL: message`` lines on stderr, credentials masked, control characters escaped.

    It writes to whatever ``sys.stderr`` is when a record comes, so that it
    follows a redirected stderr (as under a test runner).
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            lines = escape_control(_redacted(text), keep_newlines=True)
            print(f"{PROGRAM}: {record.levelname.lower()}: {lines}", file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def level_to_show(verbose: int = 0, name: str | None = None) -> int | None:
    """The level of the logs to show: the level *name* if given (``trace`` is debug), else ``-v`` info and ``-vv``
    debug (*verbose* times), else ``None``: none."""
    if name is not None:
        level = logging.getLevelName("DEBUG" if name.lower() == "trace" else name.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {name!r}")
        return level
    if verbose:
        return logging.INFO if verbose == 1 else logging.DEBUG
    return None


def show_logs(level: int | None, logger: str = "broadcast_cli") -> None:
    """Show the library's log records of *level* and above on stderr; ``None``: show none (the default).

    The library never prints on its own (its logger has a ``NullHandler``): the
    command decides, once per run, whether its logs are shown (``-v``,
    ``--log-level``, ``serve``'s ``--log-level``).
    """
    log = logging.getLogger(logger)
    for handler in [handler for handler in log.handlers if isinstance(handler, LogLines)]:
        log.removeHandler(handler)
    if level is None:
        log.setLevel(logging.NOTSET)
        return
    log.setLevel(level)
    log.addHandler(LogLines(level))


_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


class Format(enum.StrEnum):
    """How data is printed: ``auto`` picks ``pretty`` on a terminal and ``json`` otherwise."""

    AUTO = "auto"
    PRETTY = "pretty"
    JSON = "json"


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """*text* with control, bidi and invisible formatting characters written as ``\\uXXXX``.

    The escapes are JSON's, so escaping JSON text keeps it valid JSON.
    *keep_newlines* leaves line feeds alone (the layout of indented JSON, whose
    strings never hold a raw one).
    """
    if keep_newlines:
        return "\n".join(_CONTROL_RE.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL_RE.sub(_escape, text)


def compact_json(value: Any) -> str:
    """*value* as compact JSON on one line, control characters escaped."""
    return escape_control(orjson.dumps(value).decode())


def pretty_json(value: Any) -> str:
    """*value* as indented JSON, control characters escaped."""
    return escape_control(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), keep_newlines=True)


def format_clock(ts_ms: int) -> str:
    """A message timestamp (ms since the Unix epoch) as local ``HH:MM:SS.mmm``."""
    seconds, millis = divmod(ts_ms, 1000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{millis:03d}"


def format_receipts(receipts: Sequence[Receipt]) -> list[str]:
    """A short human summary of published messages: one line per message, or per channel for many."""
    if len(receipts) == 1:
        receipt = receipts[0]
        return [f"published {receipt.channel} seq {receipt.seq} (epoch {receipt.epoch})"]
    by_channel: dict[str, list[Receipt]] = {}
    for receipt in receipts:
        by_channel.setdefault(receipt.channel, []).append(receipt)
    lines = [f"published {len(receipts)} messages"]
    for channel, items in by_channel.items():
        seqs = f"seq {items[0].seq}" if len(items) == 1 else f"seq {items[0].seq}…{items[-1].seq}"
        lines.append(f"  {channel}  {seqs}  ({len(items)} message{'s' if len(items) > 1 else ''})")
    return lines


class Output:
    """Where a command writes: data to stdout, status and errors to stderr.

    *format* says how data is shown (see :class:`Format`). The rich consoles are
    made on first use, so commands that print plain lines never import rich.
    """

    def __init__(
        self,
        format: Format = Format.AUTO,  # noqa: A002 - the option's name
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.stdout_tty = _isatty(self.stdout)
        self.stderr_tty = _isatty(self.stderr)
        self.pretty = format is Format.PRETTY or (format is Format.AUTO and self.stdout_tty)
        """Whether data is shown for a person rather than as NDJSON."""
        self.json = format is Format.JSON
        """Whether JSON was asked for explicitly."""
        self._console: Console | None = None
        self._err_console: Console | None = None

    # -- consoles -------------------------------------------------------------

    @property
    def console(self) -> Console:
        """The rich console on stdout."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stdout, highlight=False, force_terminal=self.stdout_tty or None)
        return self._console

    @property
    def err_console(self) -> Console:
        """The rich console on stderr."""
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(file=self.stderr, highlight=False, force_terminal=self.stderr_tty or None)
        return self._err_console

    # -- stderr ---------------------------------------------------------------

    def error(self, message: str) -> None:
        """One line saying what went wrong, on stderr."""
        self._stderr_line(message, "bold red")

    def status(self, message: str) -> None:
        """A status line (connecting, reconnected…) on stderr."""
        self._stderr_line(message, "dim")

    def _stderr_line(self, message: str, style: str) -> None:
        line = f"{PROGRAM}: {escape_control(_redacted(message))}"
        if self.stderr_tty:
            from rich.text import Text

            self.err_console.print(Text(line, style=style), soft_wrap=True)
        else:
            print(line, file=self.stderr, flush=True)

    # -- stdout ---------------------------------------------------------------

    def line(self, text: str) -> None:
        """One raw line of data on stdout, flushed (an NDJSON record)."""
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def lines(self, texts: Iterable[str]) -> None:
        """Raw lines of data on stdout, flushed once."""
        self.stdout.write("".join(text + "\n" for text in texts))
        self.stdout.flush()

    def show(self, renderable: RenderableType) -> None:
        """Print a rich renderable on stdout."""
        self.console.print(renderable, soft_wrap=True)

    # -- records --------------------------------------------------------------

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        """Published messages: NDJSON receipts, or a summary for a person."""
        if not receipts:
            return
        if not self.pretty:
            self.lines(orjson.dumps(receipt.to_dict()).decode() for receipt in receipts)
            return
        from rich.text import Text

        for text in format_receipts(receipts):
            self.show(Text(text, style="green"))

    def token(self, token: str, claims: Mapping[str, Any]) -> None:
        """A minted token: the token alone on stdout (for ``$(broadcast token …)``), or JSON with its claims.

        JSON is for ``--format json``; for a person, the claims go to stderr.
        """
        if self.json:
            self.line(orjson.dumps({"token": token, **claims}).decode())
            return
        self.line(token)
        if self.stderr_tty:
            granted = ", ".join(claims.get("channels") or []) or "nothing"
            self.status(f"token for {claims['sub']}: reads {granted}; valid until {claims['exp']} (Unix time)")

    def contexts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Saved contexts (``broadcast context ls``): one JSON object per line when piped, a table for a person.

        The rows come with their secrets already masked.
        """
        if not self.pretty:
            self.lines(orjson.dumps(dict(row)).decode() for row in rows)
            return
        from rich.table import Table

        table = Table(title_justify="left", expand=False)
        for column in ("", "name", "url", "token", "api key", "description"):
            table.add_column(column, no_wrap=column in ("name", "url"))
        for row in rows:
            table.add_row(
                "*" if row.get("current") else "",
                escape_control(str(row["name"])),
                escape_control(row.get("url") or ""),
                "set" if row.get("token") else "",
                "set" if row.get("api_key") else "",
                escape_control(row.get("description") or ""),
                style="bold" if row.get("current") else None,
            )
        self.show(table)

    def record(self, fields: Mapping[str, Any]) -> None:
        """One record: a JSON line when piped, ``name: value`` lines for a person."""
        if not self.pretty:
            self.line(orjson.dumps(dict(fields)).decode())
            return
        width = max((len(name) for name in fields), default=0)
        self.lines(
            f"{name + ':':<{width + 1}} {escape_control('' if value is None else str(value))}"
            for name, value in fields.items()
        )

    def event(self, message: Message) -> None:
        """One event as ``broadcast subscribe`` shows it: the frame as received, or a block for a person."""
        if not self.pretty:
            self.line(_frame_text(message))
            return
        self.show(self.event_block(message))

    def event_block(self, message: Message) -> Text:
        """A header line (time, channel, event, seq, epoch, origin) and the pretty payload."""
        from rich.highlighter import JSONHighlighter
        from rich.text import Text

        text = Text()
        text.append(format_clock(message.ts), style="dim")
        text.append("  ")
        text.append(message.channel, style="bold cyan")
        text.append("  ")
        text.append(escape_control(message.event), style="bold yellow")
        text.append(f"  #{message.seq}", style="magenta")
        text.append(f"  epoch {message.epoch}", style="dim")
        if message.origin is not None:
            text.append(f"  from {escape_control(message.origin)}", style="dim")
        text.append("\n")
        payload = Text(pretty_json(message.payload))
        JSONHighlighter().highlight(payload)
        text.append_text(payload)
        return text

    def tail_line(self, message: Message) -> Text:
        """One line per event for ``broadcast tail``: time, channel, event, seq, compact payload."""
        from rich.highlighter import JSONHighlighter
        from rich.text import Text

        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(format_clock(message.ts), style="dim")
        text.append(" ")
        text.append(message.channel, style="bold cyan")
        text.append(" ")
        text.append(escape_control(message.event), style="yellow")
        text.append(f" #{message.seq}", style="magenta")
        text.append(" ")
        payload = Text(compact_json(message.payload))
        JSONHighlighter().highlight(payload)
        text.append_text(payload)
        return text

    def tail(self, message: Message) -> None:
        """One event as ``broadcast tail`` shows it: one coloured line, or the frame as received."""
        if not self.pretty:
            self.line(_frame_text(message))
            return
        self.console.print(self.tail_line(message), no_wrap=True, overflow="ellipsis", crop=True)

    # -- tail --stats ---------------------------------------------------------

    def rates_table(self, rows: Sequence[RateRow], total: int) -> Table:
        """The ``tail --stats`` table: one row per channel, busiest first."""
        from rich.table import Table

        table = Table(title=f"{total} events, {len(rows)} channels", title_justify="left", expand=False)
        table.add_column("channel", style="bold cyan", no_wrap=True)
        table.add_column("msg/s (last 1 s)", justify="right", style="magenta")
        table.add_column("msg/s (10 s avg)", justify="right")
        table.add_column("total", justify="right")
        table.add_column("last event", style="yellow", overflow="ellipsis", no_wrap=True)
        table.add_column("last seq", justify="right", style="dim")
        for row in rows:
            table.add_row(
                row.channel,
                str(row.last_second),
                f"{row.average:.1f}",
                str(row.total),
                escape_control(row.last_event),
                str(row.last_seq),
            )
        return table

    @contextlib.contextmanager
    def rates(self) -> Iterator[Callable[[Sequence[RateRow]], None]]:
        """A function showing the rates: a live table for a person, one JSON line per update when piped."""
        if not self.pretty:

            def write(rows: Sequence[RateRow]) -> None:
                self.line(orjson.dumps({"channels": [row.to_dict() for row in rows]}).decode())

            yield write
            return
        from rich.live import Live

        with Live(self.rates_table([], 0), console=self.console, auto_refresh=False, transient=False) as live:

            def update(rows: Sequence[RateRow]) -> None:
                live.update(self.rates_table(rows, sum(row.total for row in rows)), refresh=True)

            yield update

    # -- bench ----------------------------------------------------------------

    @contextlib.contextmanager
    def bench_progress(self) -> Iterator[Callable[[BenchProgress], None]]:
        """A function showing a bench run's progress: a bar on stderr when it is a terminal, else nothing."""
        if not self.stderr_tty:
            yield lambda progress: None
            return
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self.err_console,
            transient=True,
        )
        with bar:
            task = bar.add_task("starting", total=None, counts="")

            def update(progress: BenchProgress) -> None:
                expected = f"/{progress.expected:,}" if progress.expected is not None else ""
                counts = f"{progress.delivered:,}{expected} deliveries, {progress.published:,} published"
                bar.update(
                    task,
                    description=str(progress.phase),
                    completed=progress.delivered,
                    total=progress.expected,
                    counts=counts,
                )

            yield update

    @contextlib.contextmanager
    def count_progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A function showing how many of *total* are done: a bar on stderr when it is a terminal, else nothing."""
        if not self.stderr_tty:
            yield lambda done: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.err_console,
            transient=True,
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda done: bar.update(task, completed=done)

    def bench_table(self, report: Report) -> Table:
        """A bench report for a person: one row per figure."""
        from rich.table import Table

        config = report.config
        title = (
            f"broadcast bench: {config.subscribers:,} subscribers on {config.channels} channel"
            f"{'s' if config.channels > 1 else ''}, {report.published:,} messages of {config.payload_size} B"
        )
        table = Table(title=title, title_justify="left", show_header=False, expand=False)
        table.add_column("figure", style="bold cyan", no_wrap=True)
        table.add_column("value")
        for name, value, style in format_bench_rows(report):
            table.add_row(name, value, style=style)
        return table

    def bench_report(self, report: Report) -> None:
        """A bench report: a table for a person, one JSON object when piped."""
        if not self.pretty:
            self.line(orjson.dumps(report.to_dict()).decode())
            return
        self.show(self.bench_table(report))

    def bench_comparison(self, first: str, second: str, rows: Sequence[ComparisonRow]) -> None:
        """Two latency histograms side by side (``bench --compare``): a table, or one JSON object when piped."""
        if not self.pretty:
            data = {"first": first, "second": second, "rows": [row.to_dict() for row in rows]}
            self.line(orjson.dumps(data).decode())
            return
        from rich.table import Table

        table = Table(title="latency, publish to deliver (ms)", title_justify="left", expand=False)
        table.add_column("figure", style="bold cyan", no_wrap=True)
        table.add_column(escape_control(first), justify="right")
        table.add_column(escape_control(second), justify="right")
        table.add_column("change", justify="right")
        for row in rows:
            change = row.change
            shown = "" if change is None else f"{change:+.1%}"
            if row.name == "samples":
                table.add_row(row.name, f"{row.first:,.0f}", f"{row.second:,.0f}", shown, style="dim")
                continue
            style = None if change is None or abs(change) < 0.05 else ("red" if change > 0 else "green")
            table.add_row(row.name, f"{row.first:,.3f}", f"{row.second:,.3f}", shown, style=style)
        self.show(table)


def format_bench_rows(report: Report) -> list[tuple[str, str, str | None]]:
    """The rows of a bench report for a person: ``(figure, value, style)``."""
    config = report.config
    seqs = report.seqs
    rows: list[tuple[str, str, str | None]] = [
        (
            "throughput",
            f"{report.deliveries_per_second:,.0f} deliveries/s, {report.megabytes_per_second:,.1f} MB/s "
            f"({report.frames:,} in {report.delivery_seconds:.2f} s)",
            "bold",
        ),
        (
            "publish rate",
            f"{report.publish_rate:,.0f} msg/s achieved, target "
            + ("as fast as possible" if config.rate is None else f"{config.rate:,g} msg/s")
            + f" ({report.published:,} in {report.publish_seconds:.2f} s)",
            None,
        ),
    ]
    latency = report.latency
    if latency is not None:
        rows.append(
            (
                "latency",
                f"p50 {latency.p50:,.2f}  p90 {latency.p90:,.2f}  p99 {latency.p99:,.2f}  "
                f"p99.9 {latency.p99_9:,.2f}  max {latency.max:,.2f} ms  ({latency.count:,} samples)",
                None,
            )
        )
    connect = report.connect
    rows.append(
        (
            "connect",
            f"{config.subscribers:,} in {report.connect_seconds:.2f} s"
            + ("" if connect is None else f"; each p50 {connect.p50:,.1f}  p99 {connect.p99:,.1f}  max "
               f"{connect.max:,.1f} ms"),
            None,
        )
    )
    verdict = "ok" if report.ok else "FAILED"
    rows.append(
        (
            "correctness",
            f"{verdict}: {seqs.received:,} of {seqs.expected:,} delivered; {seqs.lost:,} lost, "
            f"{seqs.duplicated:,} duplicated, {seqs.reordered:,} reordered"
            + (f", {report.error_count:,} errors" if report.error_count else ""),
            "green" if report.ok else "bold red",
        )
    )
    if report.closed:
        codes = ", ".join(f"{count:,} with {code}" for code, count in sorted(report.closed.items()))
        rows.append(("closed by server", codes, "bold red"))
    generator = report.generator
    workers = ", ".join(f"{cpu:.0f}%" for cpu in generator.worker_cpu_percent)
    rows.append(
        (
            "bench CPU",
            f"subscribers {workers} ({len(generator.worker_cpu_percent)} proc, {generator.loop}), "
            f"publishers {generator.publisher_cpu_percent:.0f}% of a core",
            "yellow" if generator.busy else None,
        )
    )
    server = report.server
    if server is not None:
        parts = []
        if server.cpu_percent is not None:
            parts.append(f"CPU {server.cpu_percent:.0f}%")
        if server.rss_before is not None and server.rss_connected is not None:
            parts.append(f"RSS {server.rss_before / 1e6:,.1f} → {server.rss_connected / 1e6:,.1f} MB connected")
        per_connection = server.rss_per_connection
        if per_connection is not None:
            parts.append(f"{per_connection / 1000:,.1f} kB per connection")
        if server.rss_after is not None:
            parts.append(f"{server.rss_after / 1e6:,.1f} MB at the end")
        rows.append((f"server ({len(server.pids)} proc)", ", ".join(parts) or "?", None))
    return rows


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _frame_text(message: Message) -> str:
    """The event exactly as the server sent it (re-encoded only if the frame is unknown)."""
    return message.text() if message.frame else orjson.dumps(message.to_dict()).decode()
