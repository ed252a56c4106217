"""Reliability figures that tests must not assert: latency beside a stalled client, and memory.

1. Slow consumer: 100 subscribers read 10,000 messages published at a steady
   rate, first alone, then beside one client that stops reading. Reports the
   normal subscribers' publish→deliver latency (p50/p99/max) both ways, whether
   the stalled client was closed (4008), and the server's RSS. The readers are
   ``broadcast bench``'s lean subscribers, so that the generator keeps up.
2. Hygiene: 10,000 connect/subscribe/disconnect cycles against a server;
   reports its RSS before and after.

The server runs as a ``broadcast serve`` process (pinned to core 0 when
``taskset`` exists, this script to core 1).

    python benchmarks/reliability.py [--messages 10000] [--rate 500] [--cycles 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import orjson
from processes import PINNED, start_server, stop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from broadcast_cli import __version__
from broadcast_cli.bench.system import rss_bytes


def mib(pid: int) -> float:
    return (rss_bytes(pid) or 0) / 2**20


def peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.asynccontextmanager
async def stalled(ws_url: str) -> AsyncIterator[ClientConnection]:
    url = urlsplit(ws_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    async with connect(ws_url, sock=sock, max_queue=1, close_timeout=1) as ws:
        await ws.send('{"subscribe": ["bench"], "id": 1}')
        await ws.recv()
        yield ws


async def slow_consumer_phase(readers: int, messages: int, rate: float, with_stalled: bool) -> dict[str, object]:
    """Run ``broadcast bench`` (lean subscribers, sampled latency) against a server, beside a stalled client or not."""
    process, http_url, ws_url = start_server("--send-buffer-messages", "1000", "--history-size", str(messages))
    try:
        async with contextlib.AsyncExitStack() as stack:
            stalled_ws = await stack.enter_async_context(stalled(ws_url)) if with_stalled else None
            command = [
                sys.executable, "-m", "broadcast_cli", "bench", "--url", ws_url, "-n", str(readers),
                "-m", str(messages), "--rate", str(rate), "--batch", "1", "--payload-size", "450",
                "--sample-every", "1", "--publishers", "4", "--server-pid", str(process.pid), "--json",
            ]
            if PINNED:
                command += ["--cpus", "1"]
            closed = "—"

            async def watch_stalled() -> str:
                # Once the server has let go of it (the channel has only the readers left), read it.
                assert stalled_ws is not None
                async with httpx.AsyncClient(base_url=http_url) as http:
                    seen_all = False
                    while True:
                        channels = (await http.get("/channels")).json()["channels"]
                        count = channels[0]["subscribers"] if channels else 0
                        seen_all = seen_all or count == readers + 1
                        if seen_all and count == readers:
                            break
                        await asyncio.sleep(0.05)
                try:
                    while True:
                        await asyncio.wait_for(stalled_ws.recv(), 10)
                except ConnectionClosed as exc:
                    return f"yes ({exc.rcvd.code})" if exc.rcvd else "yes (no close frame)"
                except TimeoutError:
                    return "no"

            watcher = asyncio.ensure_future(watch_stalled()) if stalled_ws is not None else None
            bench = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
            out, _ = await bench.communicate()
            report = orjson.loads(out)
            if watcher is not None:
                if not watcher.done():
                    watcher.cancel()
                    closed = "no"
                else:
                    closed = watcher.result()
            latency = report["latency_ms"]
            correctness = report["correctness"]
            return {
                "stalled client": "yes" if with_stalled else "no",
                "achieved msg/s": f"{report['publish']['rate']:,.0f}",
                "deliveries/s": f"{report['delivery']['per_second']:,.0f}",
                "p50 ms": f"{latency['p50']:.2f}",
                "p99 ms": f"{latency['p99']:.2f}",
                "max ms": f"{latency['max']:.2f}",
                "readers lost/dup/reordered": "/".join(
                    str(correctness[key]) for key in ("lost", "duplicated", "reordered")
                ),
                "stalled closed": closed,
                "server RSS MiB (peak)": f"{mib(process.pid):.1f} ({peak_mib(process.pid):.1f})",
            }
    finally:
        stop(process)


async def hygiene(cycles: int, concurrency: int = 50) -> dict[str, object]:
    process, http_url, ws_url = start_server()
    rng = random.Random(1)
    try:
        warm = 200
        remaining = [warm]

        async def worker(counter: list[int]) -> None:
            while counter[0] > 0:
                counter[0] -= 1
                async with connect(ws_url, compression=None) as ws:
                    names = rng.sample([f"room.{n}" for n in range(50)], 3)
                    await ws.send(orjson.dumps({"subscribe": names, "id": 1}).decode())
                    await ws.recv()
                    if rng.random() < 0.3:
                        ws.transport.abort()

        await asyncio.gather(*(worker(remaining) for _ in range(concurrency)))
        before = mib(process.pid)
        started = time.monotonic()
        steps = []
        for _ in range(4):
            remaining = [cycles // 4]
            await asyncio.gather(*(worker(remaining) for _ in range(concurrency)))
            steps.append(f"{mib(process.pid):.1f}")
        elapsed = time.monotonic() - started
        async with httpx.AsyncClient(base_url=http_url) as http:
            while (await http.get("/channels")).json()["channels"]:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.05)
        return {
            "cycles": f"{cycles:,}",
            "seconds": f"{elapsed:.1f}",
            "RSS before MiB (after 200 warm-up cycles)": f"{before:.1f}",
            "RSS after each quarter MiB": " → ".join(steps),
            "peak MiB": f"{peak_mib(process.pid):.1f}",
        }
    finally:
        stop(process)


def table(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    if PINNED:
        os.sched_setaffinity(0, {1})
    print(f"broadcast-cli {__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, pinned: {PINNED}")
    print(f"\n### Slow consumer: {args.readers} readers, {args.messages:,} messages at {args.rate:g}/s\n")
    rows = [await slow_consumer_phase(args.readers, args.messages, args.rate, stalled) for stalled in (False, True)]
    print(table(rows))
    print(f"\n### Resource hygiene: {args.cycles:,} connect/subscribe/disconnect cycles\n")
    print(table([await hygiene(args.cycles)]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--cycles", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
