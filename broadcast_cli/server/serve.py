"""Run the server with uvicorn on a socket we bind ourselves, in one process or several.

Binding first means ``--port 0`` works (the kernel picks a free port) and the
real address is known before any client needs it.

With several workers (:func:`run` with ``workers > 1``) the parent binds the
socket once and forks the workers, each running its own uvicorn server (and
hub) on the inherited socket, so the kernel spreads connections among them.
The workers share channels, positions and history through Redis, which is why
several workers need it. The parent forwards SIGINT and SIGTERM to the workers
and waits for them; each worker watches the parent, and stops if it dies. The
workers answer each other's requests for their metrics (:mod:`.worker_metrics`),
so that whichever worker serves ``GET /metrics`` describes the whole server.

Each process runs on uvloop when it is installed (:func:`loop_factory`), and
serves WebSockets with :class:`~.transport.BroadcastWebSocketProtocol`, uvicorn's
own protocol plus the fast fan-out path (:func:`websocket_protocol`).

SIGINT and SIGTERM shut a server down gracefully (its WebSocket clients are
closed with 1012, "service restart", and reconnect elsewhere), and :func:`run`
then returns normally: a server stopped on purpose has succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from ..exceptions import BroadcastError, ConfigurationError
from ..urls import PUBLISH_PATH, WEBSOCKET_PATH
from .app import create_app, create_hub, drain
from .config import ServerConfig
from .logs import install_redaction
from .metrics import ServerMetrics
from .worker_metrics import MetricsExchange

__all__ = [
    "ServerUrls",
    "bind",
    "loop_factory",
    "run",
    "run_loop",
    "urls_for",
    "uvicorn_config",
    "websocket_protocol",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a server gracefully."""


@dataclass(frozen=True, slots=True)
class ServerUrls:
    """Where a running server can be reached."""

    http: str
    websocket: str
    publish: str
    health: str
    workers: tuple[int, ...] = ()
    """The process ids of the workers, when there are several."""


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen on *host*:*port* (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # With proto 0, asyncio would not set TCP_NODELAY on accepted connections, and
    # Nagle's algorithm with delayed ACKs would hold every small response ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def urls_for(sock: socket.socket, *, tls: bool = False) -> ServerUrls:
    """The URLs of a server listening on *sock* (``https``/``wss`` with *tls*)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    base = f"{'https' if tls else 'http'}://{shown}:{port}"
    return ServerUrls(
        http=base,
        websocket=f"{'wss' if tls else 'ws'}://{shown}:{port}{WEBSOCKET_PATH}",
        publish=f"{base}{PUBLISH_PATH}",
        health=f"{base}/health",
    )


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the stop signal once it has shut down gracefully.

    uvicorn re-raises SIGINT/SIGTERM after a graceful shutdown, so the process
    dies of the signal (-15, or KeyboardInterrupt). A graceful stop is a
    success: we only record the signal. A second SIGINT still forces the exit.
    """

    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(config)
        self.stopped_by: int | None = None
        """The signal that stopped the server, if one did."""
        self._drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting connections, drain the app (see :func:`.app.drain`), then shut down as uvicorn does."""
        for server in self.servers:
            server.close()
        if self._drain is not None and not self.force_exit:
            await self._drain()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
        self.handle_exit(sig, frame)


def websocket_protocol() -> type[asyncio.Protocol] | str:
    """The WebSocket protocol for uvicorn: ours, with the fast path (:mod:`.transport`), when uvicorn has its base."""
    try:
        from .transport import BroadcastWebSocketProtocol
    except ImportError:  # pragma: no cover - uvicorn without websockets-sansio (< 0.35)
        return "auto"
    return BroadcastWebSocketProtocol


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (uvicorn[standard] brings it), else ``None``: asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - e.g. Windows, PyPy
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run *main* to completion in a new event loop (uvloop's when installed), as :func:`asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def uvicorn_config(app: Any, config: ServerConfig) -> uvicorn.Config:
    """uvicorn's settings for serving *app* as ``broadcast serve`` does (the fast WebSocket path included)."""
    return uvicorn.Config(
        app,
        log_level=config.log_level,
        ws=websocket_protocol(),
        ws_max_size=config.limits.max_frame_bytes,
        # Every subscriber gets the same bytes; compression would redo the work per connection.
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,  # and so no URL with a ?token= is ever logged
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
    )


def _uvicorn_server(config: ServerConfig) -> tuple[_Server, Callable[[], Awaitable[None]], ServerMetrics]:
    """The uvicorn server of one process, the coroutine function that starts its hub, and its app's metrics."""
    hub = create_hub(config)
    app = create_app(hub, config=config)
    uv_config = uvicorn_config(app, config)
    install_redaction("uvicorn", "uvicorn.error", "uvicorn.access")  # uvicorn has just set up its handlers
    metrics: ServerMetrics = app.state.metrics
    return _Server(uv_config, functools.partial(drain, app, config.shutdown_timeout)), hub.start, metrics


async def _serve(
    server: _Server, start_hub: Callable[[], Awaitable[None]], sock: socket.socket, on_started: Callable[[], None]
) -> None:
    # Connect the backend first, so that an unreachable Redis is one clear error.
    await start_hub()
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    if server.started:
        on_started()
    await serving


def run(
    config: ServerConfig, *, workers: int = 1, on_ready: Callable[[ServerUrls], None] | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully and return.

    *on_ready* gets the URLs once serving (once every worker serves). Raises
    :class:`~broadcast_cli.exceptions.ConfigurationError` for several *workers*
    without Redis, :class:`~broadcast_cli.exceptions.BroadcastError` (e.g.
    Redis is unreachable, a worker died) or :class:`OSError` (the address is
    taken).
    """
    if workers < 1:
        raise ConfigurationError(f"the number of workers must be at least 1, not {workers}")
    if workers > 1:
        if config.redis_url is None:
            raise ConfigurationError(
                f"{workers} workers need --redis-url: each worker is a process of its own, and they share "
                "channels and history only through Redis"
            )
        _run_workers(config, workers, on_ready)
        return
    server, start_hub, _ = _uvicorn_server(config)
    sock = bind(config.host, config.port)
    urls = urls_for(sock, tls=config.ssl_certfile is not None)

    def started() -> None:
        if on_ready is not None:
            on_ready(urls)

    try:
        run_loop(_serve(server, start_hub, sock, started))
    finally:
        sock.close()


# -- several workers -----------------------------------------------------------


async def _check_backend(config: ServerConfig) -> None:
    """Connect to the backend once and disconnect, so that an unreachable Redis is one error, not N."""
    hub = create_hub(config)
    await hub.start()
    await hub.stop()


def _worker(
    config: ServerConfig, sock: socket.socket, ready_fd: int, lifeline_fd: int, exchange: MetricsExchange
) -> int:
    """The body of one worker process; returns its exit status."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    server, start_hub, metrics = _uvicorn_server(config)
    metrics.workers = exchange

    def started() -> None:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
        # The parent holds the only write end of the lifeline: EOF means it died.
        asyncio.get_running_loop().add_reader(lifeline_fd, parent_gone)

    def parent_gone() -> None:
        asyncio.get_running_loop().remove_reader(lifeline_fd)
        server.should_exit = True

    async def serve() -> None:
        # Siblings get this worker's numbers until it exits, through its graceful shutdown.
        async with exchange.answering(lambda: metrics.snapshot().to_bytes()):
            await _serve(server, start_hub, sock, started)

    try:
        run_loop(serve())
    except BroadcastError as exc:
        print(f"broadcast: worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except BaseException as exc:
        print(f"broadcast: worker {os.getpid()} failed: {exc!r}", file=sys.stderr, flush=True)
        return 1
    return 0


class _Workers:
    """The parent's view of its workers: start, forward signals, reap."""

    def __init__(self) -> None:
        self.pids: dict[int, int | None] = {}
        """Each worker's pid and its exit status once reaped (None while it runs)."""
        self.stopping = False

    def signal_all(self, sig: int) -> None:
        for pid, status in self.pids.items():
            if status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True
        self.signal_all(sig)

    def reap(self, block: bool) -> tuple[int, int] | None:
        """Reap one worker; return its pid and exit status (negative: killed by that signal)."""
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0 or pid not in self.pids:
            return None
        code = os.waitstatus_to_exitcode(status)
        self.pids[pid] = code
        return pid, code

    @property
    def running(self) -> int:
        return sum(1 for status in self.pids.values() if status is None)


def _run_workers(config: ServerConfig, count: int, on_ready: Callable[[ServerUrls], None] | None) -> None:
    asyncio.run(_check_backend(config))
    exchange = MetricsExchange.create(count)
    try:
        sock = bind(config.host, config.port)
    except BaseException:
        exchange.remove()
        raise
    urls = urls_for(sock, tls=config.ssl_certfile is not None)
    ready_read, ready_write = os.pipe()
    lifeline_read, lifeline_write = os.pipe()
    workers = _Workers()
    previous = {sig: signal.signal(sig, workers.on_signal) for sig in STOP_SIGNALS}
    try:
        for index in range(count):
            pid = os.fork()
            if pid == 0:  # the worker
                status = 1
                try:
                    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent only, which forwards it once
                    os.close(ready_read)
                    os.close(lifeline_write)
                    exchange.adopt(index)
                    status = _worker(config, sock, ready_write, lifeline_read, exchange)
                finally:
                    os._exit(status)
            workers.pids[pid] = None
        exchange.release()
        os.close(ready_write)
        os.close(lifeline_read)
        failure = _wait_ready(workers, ready_read, count)
        if failure is None and not workers.stopping and on_ready is not None:
            on_ready(ServerUrls(urls.http, urls.websocket, urls.publish, urls.health, tuple(workers.pids)))
        while workers.running:
            reaped = workers.reap(block=True)
            if reaped is not None and not workers.stopping and failure is None:
                failure = reaped
                workers.stopping = True
                workers.signal_all(signal.SIGTERM)
        if failure is not None:
            pid, code = failure
            raise BroadcastError(f"worker {pid} exited with status {code}; the other workers were stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if workers.running:
            workers.signal_all(signal.SIGKILL)
            while workers.running and workers.reap(block=True) is not None:
                pass
        os.close(ready_read)
        os.close(lifeline_write)
        sock.close()
        exchange.remove()


def _wait_ready(workers: _Workers, ready_fd: int, count: int) -> tuple[int, int] | None:
    """Wait until *count* workers said they serve; return the first worker that exited meanwhile."""
    ready = 0
    while ready < count and not workers.stopping:
        readable, _, _ = select.select([ready_fd], [], [], 0.1)
        if readable:
            data = os.read(ready_fd, count)
            ready += len(data)
            if not data:
                time.sleep(0.01)  # every worker closed its end: one exited, reap it below
        reaped = workers.reap(block=False)
        if reaped is not None:
            workers.stopping = True
            workers.signal_all(signal.SIGTERM)
            return reaped
    return None
