"""Cross-instance latency: publish on instance A, receive on instance B, through Redis.

Starts a redis-server on a free port and two ``broadcast serve`` instances on it,
then runs ``broadcast bench`` twice at the same steady rate with the subscribers on
B: once publishing on B (same instance), once on A (across Redis). The difference
is what the Redis hop costs.

    python benchmarks/cross_instance.py [--subscribers 100] [--messages 2000] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import orjson
from processes import start_redis, start_server, stop

from broadcast_cli import __version__


def bench(ws_url: str, publish_url: str, args: argparse.Namespace) -> dict[str, object]:
    command = [
        sys.executable, "-m", "broadcast_cli", "bench", "--url", ws_url, "--publish-url", publish_url,
        "-n", str(args.subscribers), "-m", str(args.messages), "--rate", str(args.rate), "--batch", "1",
        "--sample-every", "1", "--json",
    ]
    report = orjson.loads(subprocess.run(command, capture_output=True, check=True).stdout)
    latency = report["latency_ms"]
    correctness = report["correctness"]
    return {
        "achieved msg/s": f"{report['publish']['rate']:,.0f}",
        "p50 ms": f"{latency['p50']:.2f}",
        "p90 ms": f"{latency['p90']:.2f}",
        "p99 ms": f"{latency['p99']:.2f}",
        "max ms": f"{latency['max']:.2f}",
        "lost/dup/reordered": f"{correctness['lost']}/{correctness['duplicated']}/{correctness['reordered']}",
    }


def main(args: argparse.Namespace) -> None:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed")
    print(f"broadcast-cli {__version__}, Python {platform.python_version()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as directory:
        redis_process, port = start_redis(directory)
        servers = []
        try:
            url = f"redis://127.0.0.1:{port}/0"
            servers = [start_server("--redis-url", url, pin=False), start_server("--redis-url", url, pin=False)]
            (_, http_a, _), (_, http_b, ws_b) = servers
            rows = {
                "same instance (publish on B)": bench(ws_b, http_b, args),
                "across Redis (publish on A)": bench(ws_b, http_a, args),
            }
        finally:
            for process, _, _ in servers:
                stop(process)
            stop(redis_process)
    keys = list(next(iter(rows.values())))
    print(f"\n{args.subscribers} subscribers on B, {args.messages:,} messages at {args.rate:g}/s\n")
    print("| path | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    main(parser.parse_args())
