"""Ctrl-C during a long operation: the first asks it to stop, the second stops it."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from broadcast_cli.cli.interrupts import stop_on_interrupt


def test_the_first_ctrl_c_sets_the_event_and_the_second_raises() -> None:
    told: list[str] = []

    async def run() -> None:
        with stop_on_interrupt(lambda: told.append("stopping")) as stop:
            signal.raise_signal(signal.SIGINT)
            await asyncio.wait_for(stop.wait(), 10)
            assert told == ["stopping"]
            signal.raise_signal(signal.SIGINT)
            await asyncio.sleep(10)  # the loop raises KeyboardInterrupt before this ends

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run())
    assert told == ["stopping"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the usual Ctrl-C again


def test_where_the_loop_cannot_handle_signals_ctrl_c_behaves_as_usual() -> None:
    seen: list[bool] = []

    async def run() -> None:
        with stop_on_interrupt() as stop:
            seen.append(stop.is_set())

    # Only the main thread may handle signals: in another, the event is never set and SIGINT is left alone.
    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    thread.join(10)
    assert seen == [False]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
