"""The side-by-side benchmark suite: scenarios S1–S4 against broadcast-cli and its peers, in one run.

    pip install -e '.[bench]'           # broadcaster and matplotlib, for the peers and the plot
    python benchmarks/suite.py          # every scenario, every target; writes docs/benchmarks.md
    python benchmarks/suite.py --scenarios S1 --targets ours,node --no-write

Each run starts a fresh server pinned to core 0 (``taskset -c 0``) and drives
it with ``broadcast bench``'s library from this process, pinned to core 1 (its
subscriber processes inherit the pinning). The targets speak the same protocol
subset (docs/protocol.md; the peers are in benchmarks/peers/):

* ``ours``: ``broadcast serve`` (Starlette on uvicorn, in memory): the fast fan-out path
  (each event framed once, one write per connection per tick) on uvloop;
* ``ours-asgi``: the same app with uvicorn's stock WebSocket protocol on asyncio's loop, so
  every frame takes the ASGI send chain: what an app embedding the FastAPI router gets, and
  what ``broadcast serve`` was before the fast path (benchmarks/peers/ours_variant.py);
* ``ours-asyncio``: the fast path on asyncio's own loop, to measure what uvloop adds;
* ``broadcaster``: encode/broadcaster on Starlette (uvicorn), broadcaster's chat pattern;
* ``websockets``: plain ``websockets`` with ``websockets.broadcast()``;
* ``node``: Node's ``ws`` (installed with npm into benchmarks/peers/node/ when missing);
* ``coalesced``: a reference, not a library idiom: ``websockets`` with one write per
  connection per event-loop tick, each frame encoded once.

Scenarios (one server process on one core, except S4):

* S1 burst: 1,000 subscribers on one channel, 2,000 messages of ~100 B as fast as possible;
* S2 steady: 1,000 subscribers, 200 messages/s for 10 s (200k deliveries/s): latency;
* S3 idle: 10,000 subscribed idle connections: server memory per connection;
* S4 scale-out: S1 through Redis, with 2 ``broadcast serve`` processes vs 1 (ours only;
  on a 2-core machine both servers and Redis share core 0 with one server's budget).

The results (machine, versions, commands, figures, ratios to ours) replace the
section between the suite's markers in docs/benchmarks.md, and a plot goes to
docs/benchmarks-suite.png. The machine may be shared and noisy: compare ratios
within one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broadcast_cli import __version__
from broadcast_cli.bench import BenchConfig, Report, run_bench
from broadcast_cli.bench.system import raise_open_files

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
NODE_PEER = PEERS / "node"
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks-suite.png"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
SERVER_CORE, GENERATOR_CORE = 0, 1
START_TIMEOUT = 30.0

TARGETS = {
    "ours": "broadcast-cli (broadcast serve)",
    "ours-asgi": "broadcast-cli, ASGI path (before)",
    "ours-asyncio": "broadcast-cli, fast path on asyncio",
    "broadcaster": "encode/broadcaster + Starlette",
    "websockets": "websockets.broadcast()",
    "node": "Node ws",
    "coalesced": "websockets, one write per tick (reference)",
}


@dataclass(frozen=True)
class Scenario:
    """One of S1–S4: a name, what it shows, and the bench's settings."""

    name: str
    title: str
    settings: dict[str, Any]


SCENARIOS = {
    "S1": Scenario("S1", "burst", {"subscribers": 1000, "messages": 2000, "payload_size": 100, "batch": 100}),
    "S2": Scenario(
        "S2", "steady", {"subscribers": 1000, "messages": None, "rate": 200.0, "duration": 10.0, "sample_every": 4}
    ),
    "S3": Scenario(
        "S3",
        "idle",
        {"subscribers": 10_000, "messages": 10, "connect_timeout": 60.0, "connect_concurrency": 200, "timeout": 600.0},
    ),
    "S4": Scenario("S4", "scale-out", {"subscribers": 1000, "messages": 2000, "payload_size": 100, "batch": 100}),
}


def quick(scenario: Scenario) -> Scenario:
    """*scenario* with a tenth of the load (to check the suite itself, not to measure)."""
    settings = dict(scenario.settings)
    for name in ("subscribers", "messages"):
        if settings.get(name):
            settings[name] = max(1, settings[name] // 10)
    if settings.get("duration"):
        settings["duration"] = settings["duration"] / 5
    return Scenario(scenario.name, scenario.title, settings)


@dataclass
class Server:
    """A server process started for one run."""

    process: subprocess.Popen[str]
    ws: str
    http: str
    command: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid


def log(text: str) -> None:
    print(f"suite: {text}", file=sys.stderr, flush=True)


def pinned(command: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_lines(stream: Any, lines: list[str], found: threading.Event, pattern: re.Pattern[str]) -> None:
    for line in stream:
        lines.append(line)
        if pattern.search("".join(lines)):
            found.set()
    found.set()


def start_server(command: list[str], *, announces_json: bool, log_path: Path) -> Server:
    """Start a server pinned to the server core; wait until it says where it listens."""
    full = pinned(command, SERVER_CORE)
    log_file = log_path.open("a")
    if announces_json:
        process = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=ROOT)
        stream = process.stdout
        pattern = re.compile(r"^\{.*\}$", re.MULTILINE)
    else:
        process = subprocess.Popen(full, stdout=log_file, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        stream = process.stderr
        pattern = re.compile(r"WebSocket\s+(ws://\S+)")
    lines: list[str] = []
    found = threading.Event()
    threading.Thread(target=read_lines, args=(stream, lines, found, pattern), daemon=True).start()
    if not found.wait(START_TIMEOUT) or not pattern.search("".join(lines)):
        process.kill()
        process.wait()
        raise SystemExit(f"the server did not start: {' '.join(full)}\n{''.join(lines)}")
    text = "".join(lines)
    if announces_json:
        match = pattern.search(text)
        assert match is not None
        info = json.loads(match.group())
        return Server(process, info["ws"], info["http"], full)
    ws = re.search(r"WebSocket\s+(ws://\S+)", text)
    http = re.search(r"serving on (http://\S+)", text)
    assert ws is not None
    assert http is not None
    return Server(process, ws.group(1), http.group(1), full)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_node_peer() -> None:
    if (NODE_PEER / "node_modules" / "ws").is_dir():
        return
    if shutil.which("npm") is None:
        raise SystemExit("the node target needs node and npm (or leave it out: --targets ours,broadcaster,…)")
    log("installing the Node peer's dependencies (npm ci)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_PEER, check=True)


def target_command(target: str, *, redis_url: str | None = None) -> tuple[list[str], bool]:
    """The command starting *target*, and whether it announces itself with a JSON line."""
    python = sys.executable
    if target == "ours":
        command = [python, "-m", "broadcast_cli", "serve", "--port", "0", "--log-level", "warning"]
        return ([*command, "--redis-url", redis_url] if redis_url else command), False
    if target == "ours-asgi":
        return [python, str(PEERS / "ours_variant.py"), "--protocol", "asgi", "--loop", "asyncio"], True
    if target == "ours-asyncio":
        return [python, str(PEERS / "ours_variant.py"), "--protocol", "fast", "--loop", "asyncio"], True
    if target == "broadcaster":
        return [python, str(PEERS / "broadcaster_peer.py")], True
    if target == "websockets":
        return [python, str(PEERS / "websockets_peer.py")], True
    if target == "coalesced":
        return [python, str(PEERS / "websockets_peer.py"), "--coalesce"], True
    if target == "node":
        return ["node", str(NODE_PEER / "server.js")], True
    raise SystemExit(f"unknown target {target!r}; known: {', '.join(TARGETS)}")


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[tuple[str, int]]:
    """A redis-server of our own on a free port, pinned to the server core: its URL and pid."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("S4 needs redis-server (apt-get install redis-server), or leave it out: --scenarios S1,S2,S3")
    port = free_port()
    arguments = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    arguments += ["--dir", str(directory)]
    command = pinned([executable, *arguments], SERVER_CORE)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                break
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop(process)


@dataclass
class Run:
    """One scenario against one target: the report and how it was made."""

    scenario: str
    target: str
    label: str
    report: Report
    commands: list[str]


def bench_command(scenario: Scenario, servers: list[Server]) -> str:
    """The ``broadcast bench`` command line equivalent to a run (for the record)."""
    flags = {
        "subscribers": "-n", "messages": "-m", "rate": "--rate", "duration": "--duration",
        "payload_size": "--payload-size", "batch": "--batch", "sample_every": "--sample-every",
        "connect_concurrency": "--connect-concurrency", "connect_timeout": "--connect-timeout", "timeout": "--timeout",
    }  # fmt: skip
    parts = ["taskset", "-c", str(GENERATOR_CORE), "broadcast", "bench"]
    for server in servers:
        parts += ["--url", server.ws]
    if servers[0].http != servers[0].ws.replace("ws://", "http://").rsplit("/ws/", 1)[0]:
        parts += ["--publish-url", servers[0].http]
    for name, value in scenario.settings.items():
        if value is not None:
            parts += [flags[name], f"{value:g}" if isinstance(value, float) else str(value)]
    for server in servers:
        parts += ["--server-pid", str(server.pid)]
    return " ".join(parts)


def shown(command: list[str]) -> str:
    """A command as a reader would type it from the repository's root."""
    words = ["python" if word == sys.executable else word.removeprefix(f"{ROOT}/") for word in command]
    return " ".join(words)


async def run_one(
    scenario: Scenario, target: str, label: str, servers: list[Server], extra_pids: tuple[int, ...] = ()
) -> Run:
    config = BenchConfig(
        urls=tuple(server.ws for server in servers),
        publish_url=servers[0].http,
        server_pids=(*(server.pid for server in servers), *extra_pids),
        **scenario.settings,
    )
    log(f"{scenario.name} {label}: {bench_command(scenario, servers)}")
    report = await run_bench(config)
    status = "ok" if report.ok else "FAILED: " + "; ".join(report.problems())
    log(
        f"{scenario.name} {label}: {report.deliveries_per_second:,.0f} deliveries/s, "
        f"server CPU {report.server.cpu_percent if report.server else '?'}%, "
        f"bench CPU {report.generator.worker_cpu_percent}, {status}"
    )
    commands = [*(shown(server.command) for server in servers), bench_command(scenario, servers)]
    return Run(scenario.name, target, label, report, commands)


async def run_target(scenario: Scenario, target: str, workdir: Path) -> Run:
    command, announces_json = target_command(target)
    server = start_server(command, announces_json=announces_json, log_path=workdir / f"{target}.log")
    try:
        return await run_one(scenario, target, TARGETS[target], [server])
    finally:
        stop(server.process)


async def run_scale_out(scenario: Scenario, count: int, workdir: Path) -> Run:
    with redis_server(workdir) as (redis_url, redis_pid):
        command, _ = target_command("ours", redis_url=redis_url)
        log_path = workdir / "ours-redis.log"
        servers = [start_server(command, announces_json=False, log_path=log_path) for _ in range(count)]
        try:
            label = f"{count} server{'s' if count > 1 else ''} on Redis"
            run = await run_one(scenario, "ours", label, servers, extra_pids=(redis_pid,))
            run.commands.insert(0, f"taskset -c {SERVER_CORE} redis-server --save '' --appendonly no")
            return run
        finally:
            for server in servers:
                stop(server.process)


# -- the record -----------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "broadcast-cli": __version__}
    for package in ("uvicorn", "starlette", "websockets", "broadcaster", "orjson", "uvloop", "hdrhistogram"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
        found["node"] = node.stdout.strip()
        package = NODE_PEER / "node_modules" / "ws" / "package.json"
        if package.exists():
            found["ws (npm)"] = json.loads(package.read_text())["version"]
    if shutil.which("redis-server"):
        text = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
        if match := re.search(r"v=(\S+)", text):
            found["redis"] = match.group(1)
    return found


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores ({model or platform.machine()}){memory}; Linux {platform.release()}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def verdict(report: Report) -> str:
    seqs = report.seqs
    if report.ok:
        return f"ok ({seqs.received:,})"
    closed = sum(report.closed.values())
    return f"**{seqs.lost:,} lost, {seqs.duplicated:,} dup, {seqs.reordered:,} reord., {closed} closed**"


def cpu(report: Report) -> str:
    server = report.server.cpu_percent if report.server and report.server.cpu_percent is not None else None
    bench = "+".join(f"{value:.0f}" for value in report.generator.worker_cpu_percent)
    flag = " ⚠" if report.generator.busy else ""
    return f"{'?' if server is None else f'{server:.0f}'}% / {bench}%{flag}"


def s1_table(runs: list[Run]) -> list[str]:
    ours = next((run.report.deliveries_per_second for run in runs if run.target == "ours"), None)
    lines = [
        "| target | deliveries/s | × ours | MB/s | publish (msg/s) | latency p50 / p99 (ms) "
        "| CPU server / bench | check |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        report = run.report
        ratio = f"{report.deliveries_per_second / ours:.2f}" if ours else "–"
        latency = report.latency
        p50, p99 = (latency.p50, latency.p99) if latency else (None, None)
        lines.append(
            f"| {run.label} | {report.deliveries_per_second:,.0f} | {ratio} | {report.megabytes_per_second:,.1f} | "
            f"{report.publish_rate:,.0f} | {ms(p50)} / {ms(p99)} | {cpu(report)} | {verdict(report)} |"
        )
    return lines


def s2_table(runs: list[Run]) -> list[str]:
    lines = [
        "| target | publish rate (target 200) | deliveries/s | p50 | p90 | p99 | p99.9 | max (ms) "
        "| CPU server / bench | check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        report = run.report
        latency = report.latency
        values = (latency.p50, latency.p90, latency.p99, latency.p99_9, latency.max) if latency else (None,) * 5
        lines.append(
            f"| {run.label} | {report.publish_rate:,.1f} | {report.deliveries_per_second:,.0f} | "
            + " | ".join(ms(value) for value in values)
            + f" | {cpu(report)} | {verdict(report)} |"
        )
    return lines


def s3_table(runs: list[Run]) -> list[str]:
    ours = next((run for run in runs if run.target == "ours"), None)
    base = ours.report.server.rss_per_connection if ours and ours.report.server else None
    lines = [
        "| target | connections | RSS before → connected (MB) | per connection (kB) | × ours | connect all (s) "
        "| connect p99 (ms) | check |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        report = run.report
        server = report.server
        per = server.rss_per_connection if server else None
        before = server.rss_before if server else None
        connected = server.rss_connected if server else None
        rss = "–" if before is None or connected is None else f"{before / 1e6:,.1f} → {connected / 1e6:,.1f}"
        ratio = f"{per / base:.2f}" if per and base else "–"
        p99 = report.connect.p99 if report.connect else None
        kilobytes = "–" if per is None else f"{per / 1000:,.1f}"
        lines.append(
            f"| {run.label} | {report.config.subscribers:,} | {rss} | {kilobytes} | "
            f"{ratio} | {report.connect_seconds:.1f} | {ms(p99)} | {verdict(report)} |"
        )
    return lines


def s4_table(runs: list[Run]) -> list[str]:
    base = runs[0].report.deliveries_per_second if runs else None
    lines = [
        "| setup | deliveries/s | × 1 server | latency p50 / p99 (ms) | CPU servers+Redis / bench | check |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        report = run.report
        latency = report.latency
        ratio = f"{report.deliveries_per_second / base:.2f}" if base else "–"
        lines.append(
            f"| {run.label} | {report.deliveries_per_second:,.0f} | {ratio} | "
            f"{ms(latency.p50 if latency else None)} / {ms(latency.p99 if latency else None)} | {cpu(report)} | "
            f"{verdict(report)} |"
        )
    return lines


TABLES = {"S1": s1_table, "S2": s2_table, "S3": s3_table, "S4": s4_table}
DESCRIPTIONS = {
    "S1": "1,000 subscribers on one channel; 2,000 messages of 100 B published as fast as possible "
    "(batches of 100); the clock runs from the first publish to the last delivery.",
    "S2": "1,000 subscribers; 200 messages/s for 10 s (200k deliveries/s); latency from the publisher's "
    "send time (in the payload) to arrival, one frame in 4 sampled (~500k samples), HDR histogram.",
    "S3": "10,000 subscribed connections, idle; resident memory of the server process before they "
    "connect and once all are subscribed; then 10 messages to check they are alive.",
    "S4": "S1 through Redis: `broadcast serve --redis-url`, 1 process vs 2 (subscribers split between "
    "them, publishes to the first); the servers and Redis all on core 0, so the CPU column adds up the "
    "servers and Redis: on 2 cores scale-out cannot add CPU, this measures what the Redis path and a "
    "second process cost at the same budget.",
}


def plot(runs: list[Run], path: Path) -> bool:
    """A bar chart of S1's throughput and S2's latency percentiles; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return False
    s1 = [run for run in runs if run.scenario == "S1"]
    s2 = [run for run in runs if run.scenario == "S2" and run.report.latency]
    panels = [panel for panel in (s1, s2) if panel]
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    column = 0
    if s1:
        axis = axes[0][column]
        labels = [run.label.replace(" (", "\n(") for run in s1]
        values = [run.report.deliveries_per_second / 1000 for run in s1]
        colors = [
            "#d62728" if run.target == "ours" else "#f4a3a3" if run.target.startswith("ours") else "#7f7f7f"
            for run in s1
        ]
        bars = axis.barh(labels, values, color=colors)
        axis.bar_label(bars, labels=[f"{value:,.0f}k" for value in values], padding=3, fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel("deliveries/s (thousands)")
        axis.set_title("S1 burst: 1,000 subscribers × 2,000 messages", fontsize=10)
        axis.tick_params(axis="y", labelsize=8)
        axis.set_xlim(0, max(values) * 1.2)
        column += 1
    if s2:
        axis = axes[0][column]
        names = ["p50", "p90", "p99", "p99.9"]
        width = 0.8 / len(s2)
        for index, run in enumerate(s2):
            latency = run.report.latency
            assert latency is not None
            values = [latency.p50, latency.p90, latency.p99, latency.p99_9]
            positions = [slot + index * width for slot in range(len(names))]
            axis.bar(positions, values, width, label=run.label)
        axis.set_xticks([slot + width * (len(s2) - 1) / 2 for slot in range(len(names))], names)
        axis.set_yscale("log")
        axis.set_ylabel("publish → deliver latency (ms, log scale)")
        axis.set_title("S2 steady: 1,000 subscribers, 200 msg/s", fontsize=10)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def record(runs: list[Run], started: datetime.datetime, argv: list[str], plotted: bool) -> str:
    found = versions()
    lines = [
        BEGIN,
        f"## {started:%Y-%m-%d} — the side-by-side suite (`benchmarks/suite.py`)",
        "",
        "Generated by `python benchmarks/suite.py " + " ".join(argv) + "` (this section is rewritten on each run).",
        "",
        f"Machine: {machine()}. Server on core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), the bench on core "
        f"{GENERATOR_CORE} (its subscribers in one process, uvloop). Versions: "
        + ", ".join(f"{name} {version}" for name, version in found.items())
        + ".",
        "",
        "CPU columns: the server process(es), then each subscriber process of the bench, in percent of one core "
        "over the measured time (⚠: the bench was above 90 %, so that figure is a floor). The check column is "
        "the bench's seq check: every expected message delivered to every subscriber, once, in order.",
        "",
    ]
    if plotted:
        lines += [f"![S1 throughput and S2 latency]({PLOT.name})", ""]
    for name, scenario in SCENARIOS.items():
        selected = [run for run in runs if run.scenario == name]
        if not selected:
            continue
        lines += [f"### {name} {scenario.title}", "", DESCRIPTIONS[name], "", *TABLES[name](selected), ""]
    lines += ["<details><summary>Commands of each run</summary>", "", "```console"]
    for run in runs:
        lines += [f"# {run.scenario} {run.label}", *(f"$ {command}" for command in run.commands)]
    lines += ["```", "", "</details>", END]
    return "\n".join(lines)


def write(section: str) -> None:
    text = DOC.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


async def main(arguments: argparse.Namespace, argv: list[str]) -> None:
    scenarios = [name.strip().upper() for name in arguments.scenarios.split(",")]
    targets = [name.strip() for name in arguments.targets.split(",")]
    for name in scenarios:
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        if arguments.quick:
            SCENARIOS[name] = quick(SCENARIOS[name])
    for target in targets:
        target_command(target)
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {GENERATOR_CORE})
    raise_open_files(1_000_000)  # the servers started from here inherit it: S3 needs 10,000 sockets
    if "node" in targets:
        ensure_node_peer()
    started = datetime.datetime.now(datetime.UTC)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="broadcast-suite-") as directory:
        workdir = Path(directory)
        for name in scenarios:
            scenario = SCENARIOS[name]
            if name == "S4":
                runs.append(await run_scale_out(scenario, 1, workdir))
                runs.append(await run_scale_out(scenario, 2, workdir))
                continue
            for target in targets:
                runs.append(await run_target(scenario, target, workdir))
    if arguments.json:
        records = [
            {"scenario": run.scenario, "target": run.target, "label": run.label, "commands": run.commands,
             "report": run.report.to_dict()}
            for run in runs
        ]  # fmt: skip
        Path(arguments.json).write_text(json.dumps(records, indent=1))  # noqa: ASYNC240 - once, after the runs
    plotted = plot(runs, PLOT) if arguments.write else False
    section = record(runs, started, argv, plotted)
    if arguments.write:
        write(section)
        log(f"wrote {DOC.relative_to(ROOT)}" + (f" and {PLOT.relative_to(ROOT)}" if plotted else ""))
    else:
        print(section)
    failed = [run for run in runs if not run.report.ok]
    if failed:
        log("correctness failed in: " + ", ".join(f"{run.scenario} {run.label}" for run in failed))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="S1,S2,S3,S4", help="comma-separated, from S1,S2,S3,S4")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, from {','.join(TARGETS)}")
    parser.add_argument(
        "--no-write", dest="write", action="store_false", help="print the section instead of writing docs/"
    )
    parser.add_argument("--json", help="also write every report to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a tenth of the load: to check the suite, not to measure")
    asyncio.run(main(parser.parse_args(), sys.argv[1:]))
