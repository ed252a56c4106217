"""The subset of protocol v1 every peer server speaks, written once for the Python peers.

A peer is a minimal server built on another library, speaking just enough of
broadcast-cli's wire protocol (docs/protocol.md) for ``broadcast bench`` to
drive it:

* WebSocket at ``/ws/broadcast``: ``{"subscribe": ["chan", …], "id": N}`` is
  answered with ``{"type": "ack", "id": N, "channels": {"chan": {"seq": S, "epoch": E}}}``;
  then every message published on the channel arrives as one text frame
  ``{"channel", "event", "payload", "seq", "epoch", "id", "ts"}`` — the same
  fields, order and size as broadcast-cli's own frames;
* ``POST /publish`` with one message or a JSON list of them, answered with the
  receipts ``[{"channel", "seq", "epoch", "id", "ts"}, …]``.

No history, no recovery, no limits: only the fan-out is compared.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

EPOCH = format(time.time_ns() // 1000, "x")
"""This process's epoch (the peers keep no history, so a restart is a new epoch)."""


@dataclass
class Sequencer:
    """Per-channel seqs: 1, 2, 3, …"""

    seqs: dict[str, int] = field(default_factory=dict)

    def position(self, channel: str) -> dict[str, Any]:
        """The ack entry of *channel*: its last seq and the epoch."""
        return {"seq": self.seqs.get(channel, 0), "epoch": EPOCH}

    def frames(self, body: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
        """Number the messages of a ``POST /publish`` body: their ``(channel, frame)`` and the answer."""
        data = orjson.loads(body)
        items = data if isinstance(data, list) else [data]
        frames = []
        receipts = []
        for item in items:
            channel = item["channel"]
            seq = self.seqs[channel] = self.seqs.get(channel, 0) + 1
            message_id = secrets.token_hex(12)
            ts = time.time_ns() // 1_000_000
            frame = orjson.dumps(
                {
                    "channel": channel,
                    "event": item["event"],
                    "payload": item.get("payload"),
                    "seq": seq,
                    "epoch": EPOCH,
                    "id": message_id,
                    "ts": ts,
                }
            )
            frames.append((channel, frame))
            receipts.append({"channel": channel, "seq": seq, "epoch": EPOCH, "id": message_id, "ts": ts})
        return frames, orjson.dumps(receipts if isinstance(data, list) else receipts[0])


def subscribe_request(text: str | bytes) -> tuple[list[str], Any] | None:
    """The channels and id of a subscribe request, or None for anything else."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("subscribe"), list):
        return None
    return [name for name in request["subscribe"] if isinstance(name, str)], request.get("id")


def ack(request_id: Any, sequencer: Sequencer, channels: list[str]) -> bytes:
    """The ack of a subscribe request."""
    return orjson.dumps(
        {"type": "ack", "id": request_id, "channels": {name: sequencer.position(name) for name in channels}}
    )


def announce(ws_url: str, http_url: str) -> None:
    """Tell the runner where the peer listens: one JSON line on stdout."""
    print(json.dumps({"ws": ws_url, "http": http_url, "pid": os.getpid()}), flush=True)
    sys.stdout.flush()
