"""What the bench asks the operating system: CPU time and memory of processes, core pinning, file limits.

Reading another process's CPU time and resident memory uses Linux's ``/proc``;
elsewhere those figures are ``None`` and the report leaves them out.
"""

from __future__ import annotations

import os
import platform
import resource
from dataclasses import asdict, dataclass

from ..exceptions import ConfigurationError

__all__ = [
    "Machine",
    "cpu_seconds",
    "machine",
    "parse_cpus",
    "pin",
    "raise_open_files",
    "rss_bytes",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def parse_cpus(text: str) -> frozenset[int]:
    """Cores written as ``taskset -c`` takes them: ``0``, ``0,2``, ``1-3``."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            cpus.update(range(int(first), int(last if dash else first) + 1))
    except ValueError:
        raise ConfigurationError(f"invalid CPU list {text!r}: write it like 0, 0,2 or 1-3") from None
    if not cpus or min(cpus) < 0:
        raise ConfigurationError(f"invalid CPU list {text!r}: write it like 0, 0,2 or 1-3")
    return frozenset(cpus)


def pin(cpus: frozenset[int]) -> None:
    """Pin this process (and the processes it starts later) to *cpus*; nothing when *cpus* is empty."""
    if not cpus:
        return
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigurationError("pinning to cores needs Linux (sched_setaffinity)")
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise ConfigurationError(f"cannot pin to cores {sorted(cpus)}: {exc.strerror or exc}") from None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of process *pid* so far, or ``None`` when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (IndexError, ValueError):
        return None


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process *pid*, or ``None`` when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as file:
            return int(file.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def raise_open_files(needed: int) -> int:
    """Raise this process's limit of open files to *needed* if the hard limit allows; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return int(soft)


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the bench ran, for a reader comparing figures."""

    cores: int
    machine: str
    python: str
    system: str

    def to_dict(self) -> dict[str, object]:
        """The machine as a JSON object."""
        return asdict(self)


def machine() -> Machine:
    """This machine."""
    return Machine(os.cpu_count() or 1, platform.machine(), platform.python_version(), platform.system())
