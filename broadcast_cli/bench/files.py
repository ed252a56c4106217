"""What ``broadcast bench`` keeps for later: a CSV row per run, the latency histogram, and comparing two of those.

* ``--csv FILE`` appends one row per run (:data:`~.report.CSV_COLUMNS`) to a
  CSV file, writing the header when the file is new, so a file collects runs;
* ``--hdr FILE`` writes the run's publish→deliver latency histogram as an
  HdrHistogram interval log (:meth:`~.stats.LatencyHistogram.to_log`), which
  HdrHistogram's own tools read too;
* ``--compare A B`` reads two such logs and sets their percentiles side by
  side (:func:`compare`).

The files are checked before a run (:func:`check_csv`, :func:`check_writable`),
so that a typo in a path does not cost a whole run.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import ConfigurationError
from .report import CSV_COLUMNS, Report
from .stats import LatencyHistogram

__all__ = [
    "COMPARED",
    "ComparisonRow",
    "append_csv",
    "check_csv",
    "check_writable",
    "compare",
    "hdr_log",
    "read_hdr",
    "write_hdr",
]

COMPARED = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99), ("max", 100.0))
"""The percentiles :func:`compare` sets side by side, by name."""


def check_writable(path: Path, what: str) -> None:
    """Raise :class:`~broadcast_cli.exceptions.ConfigurationError` unless *path* can be written as a file."""
    folder = path.parent
    if path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} is a folder: give a file name")
    if not folder.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r}: the folder {str(folder)!r} does not exist")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise ConfigurationError(f"{what} {str(path)!r} cannot be written: permission denied")


def _header(path: Path) -> list[str] | None:
    """The first row of the CSV file at *path*, or ``None`` when it is missing or empty."""
    try:
        with path.open(encoding="utf-8", newline="") as file:
            return next(csv.reader(file), None)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"the CSV file {str(path)!r} cannot be read: {exc}") from None


def check_csv(path: Path) -> None:
    """Check that a run's row can be appended to *path*: writable, and new, empty or with the same columns."""
    check_writable(path, "the CSV file")
    header = _header(path)
    if header is not None and tuple(header) != CSV_COLUMNS:
        raise ConfigurationError(
            f"the CSV file {str(path)!r} has other columns than broadcast bench writes: give a new file"
        )


def append_csv(path: Path, report: Report) -> None:
    """Append *report*'s row to the CSV file at *path*, after the header when the file is new or empty."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if _header(path) is None:
        writer.writerow(CSV_COLUMNS)
    writer.writerow(report.csv_row())
    with path.open("a", encoding="utf-8", newline="") as file:
        file.write(text.getvalue())


def hdr_log(report: Report) -> str:
    """*report*'s latency histogram as an HdrHistogram interval log, the run described in its header."""
    config = report.config
    comment = (
        f"[broadcast bench {report.version}: publish to deliver latency in microseconds; "
        f"{config.subscribers} subscriber(s) on {config.channels} channel(s), {report.published} message(s) "
        f"of {config.payload_size} B, one frame in {config.sample_every} sampled]"
    )
    histogram = LatencyHistogram.decode(report.latency_histogram)
    return histogram.to_log(start=report.started, seconds=report.delivery_seconds, comment=comment)


def write_hdr(path: Path, report: Report) -> None:
    """Write :func:`hdr_log` of *report* to *path*."""
    path.write_text(hdr_log(report), encoding="utf-8")


def read_hdr(path: Path) -> LatencyHistogram:
    """The histogram of the HdrHistogram log at *path* (every interval added up)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the histogram {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{str(path)!r} is not an HdrHistogram log: it is not text") from None
    return LatencyHistogram.from_log(text, repr(str(path)))


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One figure of two runs: in milliseconds (samples for ``samples``)."""

    name: str
    first: float
    second: float

    @property
    def change(self) -> float | None:
        """How much the second differs from the first, as a fraction (0.25: 25 % more), ``None`` from 0."""
        return None if self.first == 0 else self.second / self.first - 1

    def to_dict(self) -> dict[str, object]:
        """The row as JSON."""
        change = self.change
        return {
            "figure": self.name,
            "first": self.first,
            "second": self.second,
            "change": None if change is None else round(change, 4),
        }


def compare(first: LatencyHistogram, second: LatencyHistogram) -> list[ComparisonRow]:
    """The samples and the percentiles of :data:`COMPARED` of two histograms, side by side."""
    rows = [ComparisonRow("samples", first.count, second.count)]
    rows.extend(ComparisonRow(name, first.value_at(at), second.value_at(at)) for name, at in COMPARED)
    return rows
