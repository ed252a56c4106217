"""Durations in an HDR histogram, and the percentiles a report shows.

:class:`LatencyHistogram` wraps the ``hdrhistogram`` package (HdrHistogram's
Python port) so that the rest of the bench sees a small typed API: record
durations in nanoseconds, merge histograms from several processes (through
:meth:`~LatencyHistogram.encode`, a compact string), read :class:`Percentiles`.
Values are kept in microseconds with 3 significant digits, from 1 µs to one hour.

Recording costs about a microsecond of Python per value, so the subscribers keep
raw samples in a list while they measure and record them afterwards
(:meth:`~LatencyHistogram.record_many`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["LatencyHistogram", "Percentiles"]

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
