"""What stalled clients cost a ``broadcast serve`` process: its memory, and the kernel's.

N clients connect on 127.0.0.1, subscribe, and never read again (a 4 KiB receive
buffer, set before connecting, keeps their side from soaking anything up).
Messages of about --size bytes (as JSON frames) are then published to their
channel (``--channels shared``: one channel for all, whose messages every queue
shares) or to a channel of each (``--channels own``: every queued message is one
connection's alone), in batches, until the server has closed every one of them
as a slow consumer (4008). After each batch it reads the server's resident memory
(``/proc/PID/status``) and what the kernel holds unsent on the server's sockets
(``ss -tm``, when ``ss`` exists). It reports the peak, per stalled connection,
and the same 12 s after the closes: by then the server has reset connections
that took nothing for 10 s, freeing what was still buffered for them.

Bounded: at most --clients connections, at most --seconds of publishing. With
``--channels shared``, use enough clients (e.g. 200): the messages they share
count once, spread over them. Keep a run under 40 s: uvicorn's keepalive pings
drop a client that answers none for that long, before its buffer overflows.

    python benchmarks/stalled_clients.py --clients 200 --channels shared --size 300
    python benchmarks/stalled_clients.py --clients 20 --channels own --size 8192 -- --history-size 1

Arguments after ``--`` go to ``broadcast serve`` (e.g. ``--send-buffer-bytes``).
With ``--channels own``, give ``--history-size 1`` so that history, which a
server in memory keeps per channel, does not count as what the queues hold.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import httpx
from processes import start_server, stop

from broadcast_cli.bench.system import rss_bytes

ENVELOPE = 150
"""About what an event frame holds besides its payload (channel, event, seq, epoch, id, ts)."""


def kernel_unsent(port: int) -> tuple[int, int] | None:
    """(sockets, bytes queued unsent) of the server's established connections on *port*, from ``ss -tm``."""
    if shutil.which("ss") is None:
        return None
    out = subprocess.run(
        ["ss", "-tmnH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    sockets = queued = 0
    for match in re.finditer(r"skmem:\(([^)]*)\)", out):
        unsent = re.search(r"(?:^|,)w(\d+)", match.group(1))  # wmem_queued
        queued += int(unsent.group(1)) if unsent else 0
        sockets += 1
    return sockets, queued


def masked_text_frame(text: str) -> bytes:
    """A client's (masked) WebSocket text frame of a short *text*."""
    payload = text.encode()
    assert len(payload) < 126
    key = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def stalled_client(host: str, port: int, channel: str) -> socket.socket:
    """A WebSocket client subscribed to *channel* that will never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/broadcast HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    if b" 101 " not in data.split(b"\r\n", 1)[0]:
        raise SystemExit(f"the server refused the WebSocket: {data[:200]!r}")
    sock.sendall(masked_text_frame(json.dumps({"subscribe": [channel], "id": 1})))
    rest = data.split(b"\r\n\r\n", 1)[1]
    while b'"ack"' not in rest:
        rest += sock.recv(4096)
    return sock


def slow_consumer_closes(http: httpx.Client) -> int:
    match = re.search(r"^broadcast_slow_consumer_closes_total (\S+)$", http.get("/metrics").text, re.MULTILINE)
    assert match is not None
    return int(float(match.group(1)))


def main(args: argparse.Namespace, serve_args: list[str]) -> dict[str, object]:
    process, http_url, _ = start_server(
        "--max-connections", str(args.clients + 10), *serve_args, pin=False
    )
    assert process.stderr is not None
    threading.Thread(target=process.stderr.read, daemon=True).start()  # never let its stderr fill up
    host, port = "127.0.0.1", int(http_url.rsplit(":", 1)[1])
    clients: list[socket.socket] = []
    report: dict[str, object] = {"clients": args.clients, "channels": args.channels, "size": args.size,
                                 "serve": serve_args}
    try:
        with httpx.Client(base_url=http_url, timeout=60) as http:
            report["rss_start_kib"] = (rss_bytes(process.pid) or 0) // 1024
            names = ["stalled"] if args.channels == "shared" else [f"stalled.{n}" for n in range(args.clients)]
            for n in range(args.clients):
                clients.append(stalled_client(host, port, names[n % len(names)]))
            connected = (rss_bytes(process.pid) or 0) // 1024
            report["rss_connected_kib"] = connected
            pad = "x" * max(0, args.size - ENVELOPE)
            per_batch = max(len(names), min(1000, 3_000_000 // max(args.size, 1) // len(names) * len(names)))
            if args.channels == "shared":
                per_batch = 100
            published = closed = peak = kernel_peak = 0
            deadline = time.monotonic() + args.seconds
            while closed < args.clients and time.monotonic() < deadline:
                batch = [
                    {"channel": names[(published + i) % len(names)], "event": "changed", "payload": {"p": pad}}
                    for i in range(per_batch)
                ]
                http.post("/publish", json=batch).raise_for_status()
                published += per_batch
                rss = (rss_bytes(process.pid) or 0) // 1024
                closed = slow_consumer_closes(http)
                kernel = kernel_unsent(port)
                kernel_peak = max(kernel_peak, kernel[1] if kernel else 0)
                if rss >= peak:
                    peak = rss
                    report["peak"] = {"published": published, "closed": closed, "rss_kib": rss}
            report["published"] = published
            report["closed_4008"] = closed
            if closed < args.clients:
                report["note"] = "not every client was closed with 4008 in time (uvicorn's pings drop one that "
                "answers none for 40 s): publish faster, or fewer clients"
            report["peak_rss_per_client_kib"] = round((peak - connected) / args.clients, 1)
            if shutil.which("ss"):
                report["peak_kernel_unsent_per_client_kib"] = round(kernel_peak / 1024 / args.clients, 1)
            time.sleep(12)  # the server resets a connection that took nothing for 10 s after its close
            report["rss_12s_after_kib"] = (rss_bytes(process.pid) or 0) // 1024
            after = kernel_unsent(port)
            report["kernel_unsent_12s_after_kib"] = None if after is None else after[1] // 1024
    finally:
        for sock in clients:
            sock.close()
        stop(process)
    return report


if __name__ == "__main__":
    argv = sys.argv[1:]
    serve_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="stalled clients (default 100)")
    parser.add_argument("--channels", choices=["shared", "own"], default="shared")
    parser.add_argument("--size", type=int, default=300, help="bytes of each event frame, about (default 300)")
    parser.add_argument("--seconds", type=float, default=120.0, help="publish for at most this long (default 120)")
    print(json.dumps(main(parser.parse_args(argv), serve_args)))
