"""Durations in an HDR histogram, and the percentiles a report shows.

:class:`LatencyHistogram` wraps the ``hdrhistogram`` package (HdrHistogram's
Python port) so that the rest of the bench sees a small typed API: record
durations in nanoseconds, merge histograms from several processes (through
:meth:`~LatencyHistogram.encode`, a compact string), read :class:`Percentiles`.
Values are kept in microseconds with 3 significant digits, from 1 µs to one hour.

Recording costs about a microsecond of Python per value, so the subscribers keep
raw samples in a list while they measure and record them afterwards
(:meth:`~LatencyHistogram.record_many`).

:meth:`~LatencyHistogram.to_log` writes a histogram as an HdrHistogram interval
log (``broadcast bench --hdr``), which HdrHistogram's own tools read, and
:meth:`~LatencyHistogram.from_log` reads it back, to compare runs later.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from ..exceptions import ConfigurationError

__all__ = ["LOG_FORMAT_VERSION", "LatencyHistogram", "Percentiles"]

LOG_FORMAT_VERSION = "1.2"
"""The version of HdrHistogram's interval log format that :meth:`LatencyHistogram.to_log` writes."""

_LOG_LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_SIGNIFICANT_FIGURES = 3


@dataclass(frozen=True, slots=True)
class Percentiles:
    """A distribution of durations, in milliseconds."""

    count: int
    """How many values were recorded."""
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p99_9: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        """The percentiles as a JSON object (the field names as keys)."""
        return asdict(self)


class LatencyHistogram:
    """An HDR histogram of durations (recorded in ns, kept in µs, read in ms)."""

    __slots__ = ("_histogram",)

    def __init__(self) -> None:
        self._histogram: Any = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_FIGURES)

    def record(self, nanoseconds: int) -> None:
        """Record one duration; negative ones (clocks a hair apart) count as 0, longer than an hour as an hour."""
        self._histogram.record_value(min(max(nanoseconds // 1000, 0), _HIGHEST_US))

    def record_many(self, nanoseconds: Iterable[int]) -> None:
        """Record every duration of *nanoseconds*."""
        record = self._histogram.record_value
        for value in nanoseconds:
            record(min(max(value // 1000, 0), _HIGHEST_US))

    @property
    def count(self) -> int:
        """How many durations were recorded."""
        return int(self._histogram.get_total_count())

    def merge(self, other: LatencyHistogram) -> None:
        """Add the values of *other* to this histogram."""
        if other.count:
            self._histogram.add(other._histogram)

    def encode(self) -> str:
        """The histogram as compact text (HdrHistogram's compressed, base64 encoding)."""
        return bytes(self._histogram.encode()).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> LatencyHistogram:
        """The histogram that :meth:`encode` gave *text* for."""
        histogram = cls()
        if text:
            histogram._histogram.decode_and_add(text.encode("ascii"))
        return histogram

    def value_at(self, percentile: float) -> float:
        """The duration, in milliseconds, below which *percentile* % of the values fall (100: the largest)."""
        return round(float(self._histogram.get_value_at_percentile(percentile)) / 1000, 3)

    def to_log(self, *, start: float, seconds: float, comment: str = "") -> str:
        """The histogram as an HdrHistogram interval log (format :data:`LOG_FORMAT_VERSION`) of one interval.

        *start* is the Unix time the measurement began, *seconds* how long it
        lasted; *comment* (one line) goes in the header. Values are in
        microseconds; the interval's maximum is written in milliseconds.
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        lines = [f"#[Histogram log format version {LOG_FORMAT_VERSION}]"]
        lines.extend(f"#{line}" for line in comment.splitlines())
        lines += [
            f"#[StartTime: {start:.3f} (seconds since epoch), {stamp}]",
            _LOG_LEGEND,
            f"0.000,{seconds:.3f},{self._histogram.get_max_value() / 1000:.3f},{self.encode()}",
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_log(cls, text: str, what: str = "the log") -> LatencyHistogram:
        """Every interval of an HdrHistogram interval log added up (as written by :meth:`to_log`).

        Raises :class:`~broadcast_cli.exceptions.ConfigurationError` naming *what*
        when *text* holds no interval or one that does not decode.
        """
        histogram = cls()
        intervals = 0
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.startswith(("#", '"')):
                continue
            fields = line.strip().split(",")
            if fields[0].startswith("Tag="):
                fields = fields[1:]
            if len(fields) != 4:
                raise ConfigurationError(f"{what} is not an HdrHistogram log: line {number} is not an interval")
            try:
                histogram._histogram.decode_and_add(fields[3].encode("ascii"))
            except Exception as exc:  # the decoder raises base64, zlib and its own errors alike
                raise ConfigurationError(f"{what}: the histogram on line {number} does not decode ({exc})") from None
            intervals += 1
        if not intervals:
            raise ConfigurationError(f"{what} is not an HdrHistogram log: it holds no interval")
        return histogram

    def percentiles(self) -> Percentiles | None:
        """The distribution in milliseconds, or ``None`` when nothing was recorded."""
        histogram = self._histogram
        if not histogram.get_total_count():
            return None
        at = histogram.get_value_at_percentile

        def ms(microseconds: float) -> float:
            return round(microseconds / 1000, 3)

        return Percentiles(
            count=self.count,
            min=ms(histogram.get_min_value()),
            mean=ms(histogram.get_mean_value()),
            p50=ms(at(50)),
            p90=ms(at(90)),
            p99=ms(at(99)),
            p99_9=ms(at(99.9)),
            max=ms(histogram.get_max_value()),
        )
