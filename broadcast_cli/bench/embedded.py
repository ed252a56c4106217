"""Servers the bench starts itself (``--embedded``): ``broadcast serve`` in child processes.

Each server is a process of its own, so that its CPU and memory are measured
apart from the bench's and it can be pinned to other cores. It listens on a
free port of 127.0.0.1 and reports its URLs over a pipe once it serves.
:meth:`EmbeddedServers.stop` stops them with SIGTERM (a graceful shutdown), and
kills any that does not exit in time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from ..exceptions import BroadcastError, ConnectError
from ..server.config import ServerConfig
from ..server.serve import ServerUrls, run
from .config import EmbeddedServer
from .system import pin

__all__ = ["EmbeddedServers", "StartedServer"]

_START_TIMEOUT = 30.0
"""Seconds a server may take to start serving."""
_STOP_TIMEOUT = 10.0
"""Seconds a server may take to shut down after SIGTERM before it is killed."""


@dataclass(frozen=True, slots=True)
class StartedServer:
    """One embedded server."""

    pid: int
    websocket: str
    http: str


def _serve(config: ServerConfig, cpus: frozenset[int], pipe: Connection) -> None:
    """The body of an embedded server process."""
    pin(cpus)

    def ready(urls: ServerUrls) -> None:
        pipe.send(("ready", urls.websocket, urls.http))

    try:
        run(config, on_ready=ready)
    except (BroadcastError, OSError) as exc:
        with contextlib.suppress(OSError):  # the bench stopped listening once the server was ready
            pipe.send(("failed", str(exc)))


class EmbeddedServers:
    """The servers of one run, started by :meth:`start` and stopped by :meth:`stop`."""

    def __init__(self, spec: EmbeddedServer) -> None:
        self.spec = spec
        self.servers: list[StartedServer] = []
        self._processes: list[BaseProcess] = []

    def start(self) -> list[StartedServer]:
        """Start the servers and wait until each serves; raise :class:`ConnectError` when one cannot."""
        context = multiprocessing.get_context("spawn")
        config = ServerConfig(host="127.0.0.1", port=0, redis_url=self.spec.redis_url, log_level="warning")
        pipes = []
        for _ in range(self.spec.servers):
            receiver, sender = context.Pipe(duplex=False)
            process: BaseProcess = context.Process(
                target=_serve, args=(config, self.spec.cpus, sender), name="broadcast-bench-server", daemon=True
            )
            process.start()
            sender.close()
            self._processes.append(process)
            pipes.append(receiver)
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            for process, pipe in zip(self._processes, pipes, strict=True):
                message = pipe.recv() if pipe.poll(max(0.0, deadline - time.monotonic())) else None
                if message is None or message[0] != "ready":
                    reason = message[1] if message else f"it did not start within {_START_TIMEOUT:.0f} s"
                    raise ConnectError(f"the embedded server could not start: {reason}")
                assert process.pid is not None
                self.servers.append(StartedServer(process.pid, message[1], message[2]))
        except EOFError:
            raise ConnectError("the embedded server exited as it started") from None
        finally:
            for pipe in pipes:
                pipe.close()
        return self.servers

    def stop(self) -> None:
        """Stop every server: SIGTERM, then SIGKILL for one that has not exited in time."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + _STOP_TIMEOUT
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        self._processes.clear()
