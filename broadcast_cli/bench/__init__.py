"""``broadcast bench`` as a library: load a server and check that it delivers correctly.

::

    from broadcast_cli.bench import BenchConfig, run_bench

    report = asyncio.run(run_bench(BenchConfig(subscribers=1000, messages=2000)))
    print(report.deliveries_per_second, report.latency, report.ok)

N lean subscribers (:mod:`.frames`: they count frames, check every ``seq`` and
parse one frame in ``sample_every`` for latency) spread over ``procs`` processes
(:mod:`.worker`); P publishers posting to the HTTP API at a rate or as fast as
possible (:mod:`.publisher`); the check of what arrived (:mod:`.seqs`);
latency in an HDR histogram (:mod:`.stats`); the :class:`Report`
(:mod:`.report`). :mod:`.runner` coordinates a run; :mod:`.embedded` starts
servers for it.

The names below are imported lazily, so that a subscriber process loads only
what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import BenchConfig, EmbeddedServer
    from .report import GeneratorUsage, Report, ServerUsage
    from .runner import Phase, Progress, run_bench
    from .seqs import SeqSummary, SeqTracker
    from .stats import LatencyHistogram, Percentiles

__all__ = [
    "BenchConfig",
    "EmbeddedServer",
    "GeneratorUsage",
    "LatencyHistogram",
    "Percentiles",
    "Phase",
    "Progress",
    "Report",
    "SeqSummary",
    "SeqTracker",
    "ServerUsage",
    "run_bench",
]

_LOCATIONS = {
    "BenchConfig": ".config",
    "EmbeddedServer": ".config",
    "GeneratorUsage": ".report",
    "Report": ".report",
    "ServerUsage": ".report",
    "Phase": ".runner",
    "Progress": ".runner",
    "run_bench": ".runner",
    "SeqSummary": ".seqs",
    "SeqTracker": ".seqs",
    "LatencyHistogram": ".stats",
    "Percentiles": ".stats",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'broadcast_cli.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LOCATIONS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
