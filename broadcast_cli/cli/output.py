"""What the commands print, and how: the only module that imports rich (lazily).

Data goes to stdout, status and errors to stderr (as in httpie's ``writer.py``).
When stdout is a terminal, data is shown for a person (colours, pretty JSON);
when it is piped, each record is one line of JSON (NDJSON) for the next
program. ``--format`` overrides the guess.

The ``format_*`` functions build text and print nothing; :class:`Output` prints.
Everything that came from the network is passed through :func:`escape_control`
before it reaches a terminal, so a payload cannot move the cursor, change the
title or hide text.
"""

from __future__ import annotations

import contextlib
import enum
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import orjson

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from ..client.http import Receipt
    from ..message import Message
    from .rates import RateRow

__all__ = [
    "Format",
    "Output",
    "compact_json",
    "escape_control",
    "format_clock",
    "format_receipts",
    "pretty_json",
]

PROGRAM = "broadcast"
"""The prefix of every status and error line."""

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
        line = f"{PROGRAM}: {escape_control(message)}"
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


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _frame_text(message: Message) -> str:
    """The event exactly as the server sent it (re-encoded only if the frame is unknown)."""
    return message.text() if message.frame else orjson.dumps(message.to_dict()).decode()
