"""Processes the benchmark scripts start: ``broadcast serve`` and ``redis-server``, each stopped by its owner.

Imported by the scripts beside it (run as ``python benchmarks/<script>.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import redis

__all__ = ["PINNED", "free_port", "start_redis", "start_server", "stop"]

PINNED = bool(shutil.which("taskset")) and (os.cpu_count() or 1) > 1
"""Whether servers are pinned to core 0 (and the generator may take core 1)."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(*args: str, pin: bool = PINNED) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``broadcast serve *args`` on a free port; return the process, its HTTP and its WebSocket URL."""
    command = [sys.executable, "-m", "broadcast_cli", "serve", "--port", "0", "--log-level", "warning", *args]
    if pin:
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    http = ws = ""
    deadline = time.monotonic() + 30
    while not ws:
        line = process.stderr.readline()
        if not line or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start")
        if "serving on " in line:
            http = line.split("serving on ", 1)[1].strip()
        if line.strip().startswith("WebSocket"):
            ws = line.split()[-1]
    return process, http, ws


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a redis-server of our own on a free port, keeping nothing on disk."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.02)
    client.close()
    return process, port


def stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Stop *process* with SIGTERM (SIGKILL after 15 s) and reap it."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
