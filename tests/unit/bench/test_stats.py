"""Latency histograms: percentiles, merging across processes, the encoding between them."""

from __future__ import annotations

from broadcast_cli.bench.stats import LatencyHistogram


def test_empty() -> None:
    histogram = LatencyHistogram()
    assert histogram.count == 0
    assert histogram.percentiles() is None


def test_percentiles_in_milliseconds() -> None:
    histogram = LatencyHistogram()
    histogram.record_many(ms * 1_000_000 for ms in range(1, 1001))  # 1 ms … 1000 ms
    percentiles = histogram.percentiles()
    assert percentiles is not None
    assert percentiles.count == 1000
    # Three significant digits: within 0.1 %.
    for value, expected in [
        (percentiles.min, 1),
        (percentiles.p50, 500),
        (percentiles.p90, 900),
        (percentiles.p99, 990),
        (percentiles.p99_9, 999),
        (percentiles.max, 1000),
        (percentiles.mean, 500.5),
    ]:
        assert abs(value - expected) <= expected * 0.001 + 0.001, (value, expected)


def test_negative_and_huge_values_are_clamped() -> None:
    histogram = LatencyHistogram()
    histogram.record(-5_000)
    histogram.record(10**15)  # more than an hour
    percentiles = histogram.percentiles()
    assert percentiles is not None
    assert percentiles.min == 0
    assert 3_599_000 <= percentiles.max <= 3_601_000  # an hour, in ms, to 3 digits


def test_encode_decode_merge() -> None:
    first, second = LatencyHistogram(), LatencyHistogram()
    first.record_many([1_000_000] * 3)
    second.record_many([3_000_000] * 1)
    merged = LatencyHistogram.decode(first.encode())
    merged.merge(LatencyHistogram.decode(second.encode()))
    percentiles = merged.percentiles()
    assert percentiles is not None
    assert (percentiles.count, percentiles.p50) == (4, 1.0)
    assert 3.0 <= percentiles.max <= 3.003  # the top of its bucket: 3 significant digits


def test_an_empty_histogram_survives_the_trip() -> None:
    decoded = LatencyHistogram.decode(LatencyHistogram().encode())
    assert decoded.count == 0
    decoded.merge(LatencyHistogram())
    assert decoded.percentiles() is None


def test_to_dict() -> None:
    histogram = LatencyHistogram()
    histogram.record(2_000_000)
    percentiles = histogram.percentiles()
    assert percentiles is not None
    assert set(percentiles.to_dict()) == {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"}
