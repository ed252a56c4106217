"""Ctrl-C during a long operation: the first asks it to stop cleanly, the second stops it at once.

Inside a running event loop, :func:`stop_on_interrupt` turns the first SIGINT
into an :class:`asyncio.Event` the operation checks between two steps (so that
what it reports, e.g. how many messages the server acknowledged, is exact); a
second SIGINT raises :class:`KeyboardInterrupt` as usual. Where the loop cannot
handle signals (not the main thread, or not POSIX), Ctrl-C behaves as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

__all__ = ["stop_on_interrupt"]


@contextlib.contextmanager
def stop_on_interrupt(on_stop: Callable[[], object] | None = None) -> Iterator[asyncio.Event]:
    """An event set by the first Ctrl-C; the second raises :class:`KeyboardInterrupt`. Call it inside the loop.

    *on_stop* is called on the first Ctrl-C, e.g. to say what the operation still waits for.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def interrupted() -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if on_stop is not None:
            on_stop()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError, ValueError):
        yield stop  # the default: Ctrl-C raises KeyboardInterrupt
        return
    try:
        yield stop
    finally:
        loop.remove_signal_handler(signal.SIGINT)
