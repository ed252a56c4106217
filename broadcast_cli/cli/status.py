"""Exit statuses of the ``broadcast`` command, defined once."""

from __future__ import annotations

import enum

__all__ = ["ExitStatus"]


class ExitStatus(enum.IntEnum):
    """What ``broadcast`` exits with."""

    OK = 0
    """Success."""
    ERROR = 1
    """A runtime error, e.g. the backend is unreachable."""
    USAGE = 2
    """Bad arguments or options."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C."""
