"""Run the test suite layer by layer, measure coverage, and print one summary line per layer.

    python scripts/layers.py                      every layer, then the coverage gates
    python scripts/layers.py unit integration     some layers
    python scripts/layers.py e2e -- -k browser    pytest arguments after ``--``
    python scripts/layers.py --no-cov unit        without coverage (faster while developing)

The layers, in the order they run:

- ``static``: ``ruff check`` and ``mypy --strict`` on the package.
- ``unit``: ``pytest tests/unit`` (no sockets, no processes) and the browser
  client's tests on Node's built-in runner (``node --test tests/js``).
- ``integration``: ``pytest tests/integration`` (real redis-server, real sockets,
  real server and CLI processes).
- ``e2e``: ``pytest tests/e2e`` (real Chromium, several server processes, Redis
  failures).
- ``package``: ``scripts/check_package.py`` (wheel and sdist built, the wheel
  installed into a fresh virtual environment and run).

Coverage of ``broadcast_cli`` is measured in every pytest layer, server and CLI
processes started by the tests included. When unit, integration and e2e all ran
in full, the run fails below 90 % of lines overall; when unit ran in full, it fails
unless the unit tests alone cover every line of the pure modules listed in
``pyproject.toml``; the browser client fails below 90 % of its lines in its unit
tests. Every layer runs even when one before it failed; the exit status is 1 if
any failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
COVERAGE_DIR = ROOT / ".coverage-data"
LAYERS = ("static", "unit", "integration", "e2e", "package")
PYTEST_LAYERS = ("unit", "integration", "e2e")

TOTAL_GATE = 90.0
"""The least line coverage of ``broadcast_cli`` over the unit, integration and e2e layers."""

PURE_GATE = 100.0
"""The least line coverage of the pure modules by the unit tests alone."""

JS_GATE = 90.0
"""The least line coverage of the browser client (``broadcast.js``) by its unit tests."""

IN_CI = bool(os.environ.get("CI"))

MAX_FAILURE_NOTES = 10
"""How many failed or erroring tests a layer's summary line names below it."""

PYTEST_SUMMARY = re.compile(r"\b(\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b.*) in ([\d.]+)s")
TOTAL = re.compile(r"^(?:TOTAL\s.*\s)?([\d.]+)%?$")
NODE_COUNT = re.compile(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$")
NODE_FILE_COVERAGE = re.compile(r"^# broadcast_cli/static/broadcast\.js\s*\|\s*([\d.]+)\s*\|")


@dataclass
class Outcome:
    """What one step of the run did: its summary line, whether it passed, and how long it took."""

    layer: str
    summary: str
    ok: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def run(command: Sequence[str], *, env: dict[str, str] | None = None, tail: int = 200) -> tuple[int, list[str]]:
    """Run *command* from the repository's root, echoing its output; return its status and last lines."""
    print(f"$ {' '.join(command)}", flush=True)
    last: deque[str] = deque(maxlen=tail)
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        last.append(line.rstrip("\n"))
    sys.stdout.flush()
    return process.wait(), list(last)


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def static() -> Outcome:
    """ruff on the package, its tests, scripts and benchmarks; mypy --strict on the package."""
    start = time.monotonic()
    ruff_status, ruff_lines = run([str(VENV_BIN / "ruff"), "check", "broadcast_cli", "tests", "scripts", "benchmarks"])
    mypy_status, mypy_lines = run([str(VENV_BIN / "mypy"), "broadcast_cli"])
    ruff = "ruff: no problems" if ruff_status == 0 else f"ruff: {last_nonempty(ruff_lines)}"
    mypy = last_nonempty(mypy_lines).replace("Success: no issues found", "mypy --strict: no issues")
    return Outcome("static", f"{ruff}; {mypy}", ruff_status == mypy_status == 0, time.monotonic() - start)


def pytest_layer(layer: str, extra: Sequence[str], coverage: bool) -> Outcome:
    """``pytest tests/<layer>``, with coverage into ``.coverage-data/<layer>`` unless turned off."""
    start = time.monotonic()
    command = [sys.executable, "-m", "pytest", f"tests/{layer}"]
    env = dict(os.environ)
    if coverage:
        env["COVERAGE_FILE"] = str(COVERAGE_DIR / layer)
        command += ["--cov=broadcast_cli", "--cov-report="]
    if sys.stdout.isatty():
        command.append("--color=yes")
    status, lines = run([*command, *extra], env=env)
    summary = next((match.group(0) for line in reversed(lines) if (match := PYTEST_SUMMARY.search(line))), None)
    if summary is None:
        summary = f"pytest exited with status {status} before its summary"
    # pytest's short summary (-rfE, its default) names what failed; repeat it where a reader of
    # only the run's last lines (a CI report) sees it.
    cleaned = [strip_ansi(line) for line in lines]
    start_of_summary = next((i for i, line in enumerate(cleaned) if "short test summary info" in line), len(cleaned))
    failures = [line for line in cleaned[start_of_summary:] if line.startswith(("FAILED ", "ERROR "))]
    notes = failures[:MAX_FAILURE_NOTES]
    if len(failures) > MAX_FAILURE_NOTES:
        notes.append(f"… and {len(failures) - MAX_FAILURE_NOTES} more (see the layer's output above)")
    return Outcome(layer, strip_ansi(summary), status == 0, time.monotonic() - start, notes)


def node_layer() -> Outcome:
    """The browser client's unit tests on Node's built-in runner, with its line coverage of broadcast.js."""
    start = time.monotonic()
    node = shutil.which("node")
    if node is None:
        message = "node is not installed (apt-get install nodejs): the browser client's unit tests need Node 20+"
        return Outcome("unit (js)", message + ("" if IN_CI else "; skipped"), not IN_CI, time.monotonic() - start)
    status, lines = run([node, "--test", "--test-reporter=tap", "--experimental-test-coverage", "tests/js"])
    counts = {match.group(1): int(match.group(2)) for line in lines if (match := NODE_COUNT.match(line))}
    covered = next((float(match.group(1)) for line in lines if (match := NODE_FILE_COVERAGE.match(line))), None)
    ok = status == 0 and counts.get("pass", 0) > 0 and counts.get("fail", 1) == 0
    passed, failed, tests = counts.get("pass", 0), counts.get("fail", 0), counts.get("tests", 0)
    summary = f"{passed} passed, {failed} failed of {tests} (node --test)"
    notes = []
    if covered is None:
        ok = False
        summary += "; no coverage report for broadcast.js"
    else:
        summary += f"; broadcast.js {covered:.1f}% of lines (gate {JS_GATE:.0f}%)"
        if covered < JS_GATE:
            ok = False
            notes.append(f"broadcast.js is {covered:.1f}% covered by tests/js, below {JS_GATE:.0f}%")
    return Outcome("unit (js)", summary, ok, time.monotonic() - start, notes)


def package_layer() -> Outcome:
    """Build, install into a fresh virtual environment, run (``scripts/check_package.py``)."""
    start = time.monotonic()
    status, lines = run([sys.executable, str(ROOT / "scripts" / "check_package.py")])
    summary = next((line for line in reversed(lines) if line.startswith("package:")), f"exited with status {status}")
    return Outcome("package", summary.removeprefix("package: "), status == 0, time.monotonic() - start)


def pure_module_files() -> list[str]:
    """The source files of the pure modules named in ``pyproject.toml``."""
    names = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["broadcast-cli"]["pure-modules"]
    files = []
    for name in names:
        path = Path(*name.split("."))
        files.append(str(path / "__init__.py") if (ROOT / path).is_dir() else f"{path}.py")
    return files


def coverage_percent(*arguments: str) -> float | None:
    """Run ``coverage report`` (a table, or ``--format=total``) and return the total percentage it printed."""
    status, lines = run([sys.executable, "-m", "coverage", "report", "--precision=1", *arguments])
    totals = [match for line in lines if (match := TOTAL.search(line))]
    return float(totals[-1].group(1)) if status == 0 and totals else None


def coverage_gates(ran: set[str], partial: bool) -> Outcome | None:
    """Combine the layers' coverage and apply the gates that the layers run allow."""
    start = time.monotonic()
    measured = [layer for layer in PYTEST_LAYERS if layer in ran and (COVERAGE_DIR / layer).exists()]
    if not measured:
        return None
    combined = COVERAGE_DIR / "all"
    combined.unlink(missing_ok=True)
    status, _ = run(
        [sys.executable, "-m", "coverage", "combine", "--keep", f"--data-file={combined}"]
        + [str(COVERAGE_DIR / layer) for layer in measured]
    )
    if status != 0:
        return Outcome("coverage", "coverage combine failed", False, time.monotonic() - start)
    parts: list[str] = []
    notes: list[str] = []
    ok = True

    full = set(PYTEST_LAYERS) <= ran and not partial
    heading(f"coverage of broadcast_cli ({' + '.join(measured)})")
    listing = ["--show-missing", "--skip-covered"] if full else ["--format=total"]
    total = coverage_percent(f"--data-file={combined}", *listing)
    if total is None:
        return Outcome("coverage", "coverage report failed", False, time.monotonic() - start)
    if full:
        parts.append(f"broadcast_cli {total:.1f}% of lines (gate {TOTAL_GATE:.0f}%)")
        if total < TOTAL_GATE:
            ok = False
            notes.append(f"line coverage {total:.1f}% is below {TOTAL_GATE:.0f}%")
    else:
        parts.append(f"broadcast_cli {total:.1f}% of lines from {' + '.join(measured)} (no gate: not every layer ran)")

    if "unit" in measured and not partial:
        heading("coverage of the pure modules by the unit tests alone")
        unit_total = coverage_percent(
            f"--data-file={COVERAGE_DIR / 'unit'}", "--show-missing", f"--include={','.join(pure_module_files())}"
        )
        if unit_total is None:
            ok = False
            parts.append("pure modules: report failed")
        else:
            parts.append(f"pure modules {unit_total:.1f}% from unit tests alone (gate {PURE_GATE:.0f}%)")
            if unit_total < PURE_GATE:
                ok = False
                notes.append(f"the unit tests cover {unit_total:.1f}% of the pure modules; every line must be covered")
    return Outcome("coverage", "; ".join(parts), ok, time.monotonic() - start, notes)


def last_nonempty(lines: Sequence[str]) -> str:
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip("= ")


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def print_summary(outcomes: Sequence[Outcome], elapsed: float) -> None:
    heading("summary")
    width = max(len(outcome.layer) for outcome in outcomes)
    for outcome in outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        print(f"{mark} {outcome.layer:<{width}}  {duration(outcome.seconds):>10}  {outcome.summary}")
        for note in outcome.notes:
            print(f"{'':>{width + 19}}{note}")
    print(f"{'':4} {'total':<{width}}  {duration(elapsed):>10}", flush=True)


def parse(argv: Sequence[str]) -> tuple[list[str], list[str], bool]:
    arguments = list(argv)
    extra: list[str] = []
    if "--" in arguments:
        split = arguments.index("--")
        arguments, extra = arguments[:split], arguments[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("layers", nargs="*", metavar="LAYER", help=f"{', '.join(LAYERS)} or all (the default)")
    parser.add_argument("--no-cov", action="store_true", help="do not measure coverage")
    options = parser.parse_args(arguments)
    unknown = [layer for layer in options.layers if layer not in (*LAYERS, "all")]
    if unknown:
        parser.error(f"unknown layer {unknown[0]!r}: choose from {', '.join(LAYERS)} or all")
    chosen = set(options.layers) if options.layers and "all" not in options.layers else set(LAYERS)
    return [layer for layer in LAYERS if layer in chosen], extra, not options.no_cov


def main(argv: Sequence[str]) -> int:
    layers, extra, coverage = parse(argv)
    started = time.monotonic()
    if coverage:
        shutil.rmtree(COVERAGE_DIR, ignore_errors=True)
        COVERAGE_DIR.mkdir()
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        print(f"-- {outcome.layer}: {outcome.summary} ({duration(outcome.seconds)})", flush=True)

    for layer in layers:
        heading(f"{layer} layer")
        if layer == "static":
            record(static())
        elif layer == "package":
            record(package_layer())
        else:
            record(pytest_layer(layer, extra, coverage))
            if layer == "unit" and not extra:
                heading("unit layer: the browser client")
                record(node_layer())
    if coverage:
        gates = coverage_gates(set(layers), partial=bool(extra))
        if gates is not None:
            outcomes.append(gates)
    print_summary(outcomes, time.monotonic() - started)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
