"""The report: its figures, its verdict, its JSON shape, and how the command shows it and exits."""

from __future__ import annotations

import dataclasses
import io

import orjson

from broadcast_cli.bench.config import BenchConfig
from broadcast_cli.bench.report import GeneratorUsage, Report, ServerUsage
from broadcast_cli.bench.seqs import SeqSummary
from broadcast_cli.bench.stats import LatencyHistogram
from broadcast_cli.bench.system import Machine
from broadcast_cli.cli.commands.bench import exit_status
from broadcast_cli.cli.output import Format, Output, format_bench_rows
from broadcast_cli.cli.status import ExitStatus


def report(**changes: object) -> Report:
    latency = LatencyHistogram()
    latency.record_many([1_000_000, 2_000_000])
    base = Report(
        version="0.1.0",
        machine=Machine(2, "x86_64", "3.11.7", "Linux"),
        config=BenchConfig(subscribers=10, messages=100),
        urls=("ws://127.0.0.1:1/ws/broadcast",),
        publish_url="http://127.0.0.1:1",
        embedded="memory",
        connect_seconds=0.5,
        connect=latency.percentiles(),
        published=100,
        publish_seconds=0.25,
        publish_timed_out=False,
        seqs=SeqSummary(expected=1000, received=1000),
        frames=1000,
        bytes=250_000,
        delivery_seconds=0.5,
        latency=latency.percentiles(),
        generator=GeneratorUsage((40.0,), 10.0, "uvloop"),
        server=ServerUsage((123,), 99.5, 10_000_000, 10_500_000, 11_000_000, connections=10),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_figures() -> None:
    result = report()
    assert (result.deliveries_per_second, result.megabytes_per_second, result.publish_rate) == (2000.0, 0.5, 400.0)
    assert result.server is not None and result.server.rss_per_connection == 50_000
    assert result.ok and result.problems() == []
    assert exit_status(result) is ExitStatus.OK


def test_no_time_no_rate() -> None:
    result = report(frames=0, delivery_seconds=0.0, publish_seconds=0.0)
    assert (result.deliveries_per_second, result.megabytes_per_second, result.publish_rate) == (0.0, 0.0, 0.0)


def test_a_failed_check() -> None:
    result = report(seqs=SeqSummary(expected=1000, received=990, lost=10, duplicated=2, reordered=1))
    assert not result.ok
    assert result.problems() == [
        "correctness check failed: 10 lost, 2 duplicated, 1 reordered (of 1,000 expected deliveries)"
    ]
    assert exit_status(result) is ExitStatus.ERROR


def test_closed_connections_and_errors_fail_the_check() -> None:
    result = report(closed={4008: 3}, errors=("closed",), error_count=3)
    assert not result.ok
    assert result.problems()[0] == "the server closed subscribed connections: 3 with code 4008"
    assert exit_status(report(error_count=1, errors=("x",))) is ExitStatus.ERROR


def test_publishing_stopped_by_the_timeout() -> None:
    assert exit_status(report(publish_timed_out=True)) is ExitStatus.TIMEOUT


def test_the_busy_generator() -> None:
    assert not GeneratorUsage((40.0,), 10.0, "uvloop").busy
    assert GeneratorUsage((40.0, 95.0), 10.0, "uvloop").busy
    assert GeneratorUsage((40.0,), 91.0, "asyncio").busy


def test_to_dict() -> None:
    data = orjson.loads(orjson.dumps(report().to_dict()))
    assert set(data) == {
        "version", "machine", "target", "scenario", "connect", "publish", "delivery", "latency_ms", "correctness",
        "generator", "server",
    }  # fmt: skip
    assert data["delivery"] == {
        "deliveries": 1000,
        "expected": 1000,
        "bytes": 250_000,
        "seconds": 0.5,
        "per_second": 2000.0,
        "megabytes_per_second": 0.5,
    }
    assert data["correctness"] == {
        "ok": True, "lost": 0, "duplicated": 0, "reordered": 0, "closed": {}, "errors": 0, "first_errors": [],
    }  # fmt: skip
    assert data["server"]["rss_per_connection_bytes"] == 50_000
    assert data["latency_ms"]["count"] == 2


def test_printed_as_one_json_line_when_piped() -> None:
    stdout = io.StringIO()
    Output(Format.AUTO, stdout=stdout, stderr=io.StringIO()).bench_report(report())
    (line,) = stdout.getvalue().splitlines()
    assert orjson.loads(line)["correctness"]["ok"] is True


def test_shown_as_a_table_for_a_person() -> None:
    stdout = io.StringIO()
    Output(Format.PRETTY, stdout=stdout, stderr=io.StringIO()).bench_report(report())
    text = stdout.getvalue()
    assert "2,000 deliveries/s" in text
    assert "correctness" in text and "0 lost" in text


def test_rows() -> None:
    rows = {name: value for name, value, _ in format_bench_rows(report())}
    assert rows["throughput"] == "2,000 deliveries/s, 0.5 MB/s (1,000 in 0.50 s)"
    assert rows["publish rate"] == "400 msg/s achieved, target as fast as possible (100 in 0.25 s)"
    assert rows["correctness"] == "ok: 1,000 of 1,000 delivered; 0 lost, 0 duplicated, 0 reordered"
    assert rows["server (1 proc)"].startswith("CPU 100%, RSS 10.0 → 10.5 MB connected, 50.0 kB per connection")
    failed = {name: value for name, value, _ in format_bench_rows(report(closed={1006: 2}, server=None))}
    assert failed["closed by server"] == "2 with 1006"
    assert "server (1 proc)" not in failed
