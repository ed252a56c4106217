"""Per-channel rates for ``tail --stats``, with plain numbers for time."""

from __future__ import annotations

from broadcast_cli.cli.rates import WINDOW, ChannelRates, RateRow


def test_counts_rates_and_order() -> None:
    rates = ChannelRates(start=100.0)
    for n in range(10):
        rates.record("busy", "tick", n + 1, 100.0 + n / 10)  # 10 events in second 100
    rates.record("quiet", "ping", 41, 100.5)
    rows = rates.rows(101.2)
    assert rows == [
        RateRow("busy", 10, 10, 10.0, "tick", 10),
        RateRow("quiet", 1, 1, 1.0, "ping", 41),
    ]
    assert rows[0].to_dict() == {
        "channel": "busy", "total": 10, "last_second": 10, "average": 10.0, "last_event": "tick", "last_seq": 10
    }  # fmt: skip


def test_the_average_covers_the_window_only() -> None:
    rates = ChannelRates(start=0.0)
    for second in range(30):
        rates.record("c", "e", second + 1, second + 0.5)
    [row] = rates.rows(30.0)
    assert row.total == 30 and row.last_second == 1
    assert row.average == WINDOW / WINDOW
    [row] = rates.rows(100.0)  # long quiet: nothing in the window
    assert (row.average, row.last_second, row.total) == (0.0, 0, 30)


def test_before_the_first_whole_second_the_current_count_is_shown() -> None:
    rates = ChannelRates(start=5.2)
    rates.record("c", "e", 1, 5.3)
    rates.record("c", "e", 2, 5.4)
    assert rates.rows(5.5)[0].average == 2.0


def test_no_channels() -> None:
    assert ChannelRates(start=0.0).rows(5.0) == []
