"""What a run leaves for later: its CSV row, its histogram as an HdrHistogram log, and two logs compared."""

from __future__ import annotations

import csv
import dataclasses
import io

import orjson
import pytest
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from broadcast_cli.bench.config import BenchConfig
from broadcast_cli.bench.files import COMPARED, ComparisonRow, compare, hdr_log
from broadcast_cli.bench.report import CSV_COLUMNS, GeneratorUsage, Report, ServerUsage
from broadcast_cli.bench.seqs import SeqSummary
from broadcast_cli.bench.stats import LOG_FORMAT_VERSION, LatencyHistogram
from broadcast_cli.bench.system import Machine
from broadcast_cli.cli.output import Format, Output
from broadcast_cli.exceptions import ConfigurationError


def histogram(*milliseconds: float) -> LatencyHistogram:
    made = LatencyHistogram()
    made.record_many(int(ms * 1_000_000) for ms in milliseconds)
    return made


def report(**changes: object) -> Report:
    latency = histogram(1, 2, 3, 4)
    base = Report(
        version="0.1.0",
        machine=Machine(2, "x86_64", "3.11.7", "Linux"),
        config=BenchConfig(subscribers=10, messages=100, rate=50.0),
        urls=("ws://127.0.0.1:1/ws/broadcast",),
        publish_url="http://127.0.0.1:1",
        embedded=None,
        connect_seconds=0.5,
        connect=histogram(10, 20).percentiles(),
        published=100,
        publish_seconds=2.0,
        publish_timed_out=False,
        seqs=SeqSummary(expected=1000, received=1000),
        frames=1000,
        bytes=250_000,
        delivery_seconds=2.5,
        latency=latency.percentiles(),
        generator=GeneratorUsage((40.0, 55.5), 10.0, "uvloop"),
        server=ServerUsage((123,), 99.5, 10_000_000, 10_500_000, 11_000_000, connections=10),
        started=1_795_496_779.5,
        latency_histogram=latency.encode(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_csv_row_has_every_column_and_the_figures_of_the_json_report() -> None:
    result = report()
    values = result.csv_values()
    assert tuple(values) != CSV_COLUMNS  # built in another order: the row follows the columns, not the dict
    assert set(values) == set(CSV_COLUMNS)
    text = io.StringIO()
    csv.writer(text).writerows([CSV_COLUMNS, result.csv_row()])
    [row] = csv.DictReader(io.StringIO(text.getvalue()))
    data = result.to_dict()
    assert row["started"] == "2026-11-24T05:06:19Z"
    assert row["target"] == "ws://127.0.0.1:1/ws/broadcast"
    assert (row["subscribers"], row["rate"], row["duration"]) == ("10", "50.0", "")
    assert float(row["deliveries_per_second"]) == data["delivery"]["per_second"] == 400.0
    assert float(row["latency_p99_ms"]) == data["latency_ms"]["p99"]
    assert int(row["latency_samples"]) == data["latency_ms"]["count"] == 4
    assert float(row["connect_max_ms"]) == data["connect"]["ms"]["max"]
    assert (row["ok"], row["lost"], row["closed"]) == ("true", "0", "0")
    assert (row["bench_worker_cpu_percent"], row["server_rss_per_connection_bytes"]) == ("55.5", "50000")


def test_a_csv_row_without_latency_or_server() -> None:
    bare = report(latency=None, connect=None, server=None, embedded="redis")
    row = dict(zip(CSV_COLUMNS, bare.csv_row(), strict=True))
    assert row["target"] == "redis"
    assert row["latency_samples"] == row["latency_p50_ms"] == row["connect_p99_ms"] == ""
    assert row["server_cpu_percent"] == row["server_rss_per_connection_bytes"] == ""
    row = dict(zip(CSV_COLUMNS, report(closed={4008: 2}).csv_row(), strict=True))
    assert (row["ok"], row["closed"]) == ("false", "2")


def test_the_hdr_log_is_hdrhistograms_format_and_reads_back() -> None:
    result = report()
    text = hdr_log(result)
    lines = text.splitlines()
    assert lines[0] == f"#[Histogram log format version {LOG_FORMAT_VERSION}]"
    assert lines[1].startswith("#[broadcast bench 0.1.0: publish to deliver latency in microseconds; 10 subscriber")
    assert lines[2] == "#[StartTime: 1795496779.500 (seconds since epoch), 2026-11-24T05:06:19Z]"
    assert lines[3] == '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
    start, length, maximum, encoded = lines[4].split(",")
    assert (start, length, maximum) == ("0.000", "2.500", "4.001")  # 4 ms, to 3 significant digits, in ms
    # The encoded histogram is HdrHistogram's own: its library decodes it.
    decoded = HdrHistogram(1, 3_600_000_000, 3)
    decoded.decode_and_add(encoded.encode())
    assert decoded.get_total_count() == 4
    back = LatencyHistogram.from_log(text)
    assert back.percentiles() == result.latency


def test_a_log_of_several_intervals_adds_them_up() -> None:
    first = histogram(1, 1).to_log(start=0, seconds=1)
    second = histogram(3).to_log(start=1, seconds=1)
    tagged = second.replace("\n0.000,", "\nTag=b,0.000,")
    assert LatencyHistogram.from_log(first + "\n" + tagged).count == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "'x.hdr' is not an HdrHistogram log: it holds no interval"),
        ("#[comment]\n", "'x.hdr' is not an HdrHistogram log: it holds no interval"),
        ("started,version\n2026,0.1\n", "'x.hdr' is not an HdrHistogram log: line 1 is not an interval"),
        ("0.000,1.000,2.000,HISTnotbase64!\n", "'x.hdr': the histogram on line 1 does not decode"),
        ("0.000,1.000,2.000,é\n", "'x.hdr': the histogram on line 1 does not decode"),
    ],
)
def test_what_is_not_a_log_is_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        LatencyHistogram.from_log(text, "'x.hdr'")
    assert str(raised.value).startswith(message)


def test_an_empty_histogram_makes_a_log_too() -> None:
    result = report(latency=None, latency_histogram="")
    assert LatencyHistogram.from_log(hdr_log(result)).count == 0


def test_compare_sets_the_percentiles_side_by_side() -> None:
    before = histogram(*range(1, 101))  # 1…100 ms
    after = histogram(*(2 * ms for ms in range(1, 101)))  # twice as slow
    rows = compare(before, after)
    assert [row.name for row in rows] == ["samples", *(name for name, _ in COMPARED)]
    assert rows[0] == ComparisonRow("samples", 100, 100) and rows[0].change == 0
    p50 = rows[1]
    assert abs(p50.first - 50) < 0.1 and abs(p50.second - 100) < 0.1
    assert p50.change == pytest.approx(1.0, abs=0.01)
    assert rows[-1].to_dict() == {"figure": "max", "first": rows[-1].first, "second": rows[-1].second, "change": 1.0}
    nothing = compare(LatencyHistogram(), before)[1]
    assert nothing.change is None and nothing.to_dict()["change"] is None


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_comparison_is_json_when_piped_and_a_table_for_a_person() -> None:
    rows = compare(histogram(1, 2), histogram(1, 2, 40))
    piped = io.StringIO()
    Output(stdout=piped).bench_comparison("a.hdr", "b.hdr", rows)
    data = orjson.loads(piped.getvalue())
    assert (data["first"], data["second"]) == ("a.hdr", "b.hdr")
    assert data["rows"][0] == {"figure": "samples", "first": 2, "second": 3, "change": 0.5}
    shown = FakeTty()
    Output(Format.PRETTY, stdout=shown).bench_comparison("a.hdr", "b.hdr", rows)
    text = shown.getvalue()
    assert "latency, publish to deliver (ms)" in text and "a.hdr" in text and "+50.0%" in text


def test_progress_is_shown_only_on_a_terminal() -> None:
    stderr = io.StringIO()
    with Output(stderr=stderr).count_progress("publishing", 10) as show:
        show(5)
    assert stderr.getvalue() == ""
    terminal = FakeTty()
    with Output(stderr=terminal).count_progress("publishing", 10) as show:
        show(10)
    assert "publishing" in terminal.getvalue() and "10/10" in terminal.getvalue()
