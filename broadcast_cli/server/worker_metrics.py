"""How the workers of one server read each other's metrics, so that any worker's ``/metrics`` describes them all.

With ``--workers N`` the kernel hands each scrape to one worker at random. So
that a scrape still describes the whole server, the parent creates a private
directory (mode 0700) and binds one Unix socket per worker in it before it
forks. Each worker answers connections to its own socket with a snapshot of
its numbers (whatever bytes its *snapshot* function returns) and closes; the
worker that is scraped asks every sibling at that moment and adds their numbers
to its own (:meth:`~.metrics.ServerMetrics.scrape`).

Nothing is written on the hot path, nor anywhere else: a snapshot is read from
the worker's live counters when asked for, so a scrape is exact (after N
acknowledged publishes every scrape says N), and a worker that has exited
counts for nothing, since nobody answers at its socket any more. A restarted
server makes a new directory; the parent removes it on exit, and each worker
removes its own socket when it stops and the last one out the directory (so a
parent killed with SIGKILL leaves nothing behind once its workers have stopped).

We do not use prometheus_client's multiprocess mode: it mirrors metric
*objects* into files, while most of ours are read from the hub at scrape time,
and it is switched on for the whole process by an environment variable, while
apps embedded in one process keep registries of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ..exceptions import BroadcastError

__all__ = ["SIBLING_TIMEOUT", "MetricsExchange"]

SIBLING_TIMEOUT = 5.0
"""How long a scrape waits for a sibling's snapshot, in seconds (Prometheus's own scrape timeout is 10 s)."""


class MetricsExchange:
    """The Unix sockets through which the workers of one server ask each other for their metrics.

    The parent calls :meth:`create` before forking, each worker :meth:`adopt`
    with its index, and the parent :meth:`release` once every worker is
    forked, then :meth:`remove` when the server stops.
    """

    def __init__(self, directory: Path, listeners: list[socket.socket]) -> None:
        self.directory = directory
        """The private directory holding one socket per worker."""
        self.count = len(listeners)
        """How many workers the server runs."""
        self.index: int | None = None
        """This worker's number (0 to ``count - 1``), once :meth:`adopt` was called."""
        self._listeners: list[socket.socket | None] = list(listeners)

    @classmethod
    def create(cls, count: int) -> MetricsExchange:
        """A new private directory with a listening socket for each of *count* workers (in the parent).

        Raises :class:`~broadcast_cli.exceptions.BroadcastError` when the
        temporary directory cannot hold them (not writable, or a path too long
        for a Unix socket).
        """
        try:
            directory = Path(tempfile.mkdtemp(prefix="broadcast-metrics-"))
        except OSError as exc:
            raise BroadcastError(
                f"cannot create a directory for the workers' metrics sockets in {tempfile.gettempdir()}: "
                f"{exc.strerror or exc} (set TMPDIR to a writable directory)"
            ) from None
        listeners: list[socket.socket] = []
        try:
            for index in range(count):
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                listeners.append(listener)
                listener.bind(str(directory / f"{index}.sock"))
                # Bound before the fork: a sibling that asks before this worker serves waits, not fails.
                listener.listen(64)
                listener.set_inheritable(True)
        except BaseException as exc:
            for listener in listeners:
                listener.close()
            shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, OSError):
                raise BroadcastError(
                    f"cannot create the workers' metrics sockets in {directory}: {exc.strerror or exc} "
                    "(set TMPDIR to a shorter directory: a Unix socket's path has at most 107 bytes)"
                ) from None
            raise
        return cls(directory, listeners)

    def path(self, index: int) -> Path:
        """The socket of worker *index*."""
        return self.directory / f"{index}.sock"

    def adopt(self, index: int) -> None:
        """Become worker *index* (in the forked worker): keep its own socket, close the others'."""
        self.index = index
        for other, listener in enumerate(self._listeners):
            if other != index and listener is not None:
                listener.close()
                self._listeners[other] = None

    def release(self) -> None:
        """Close the parent's copies of the sockets, so that only the worker behind each one holds it.

        Then a worker that has exited refuses connections at once, instead of
        leaving its siblings waiting in a backlog that nobody accepts from.
        """
        for index, listener in enumerate(self._listeners):
            if listener is not None:
                listener.close()
                self._listeners[index] = None

    def remove(self) -> None:
        """Close what is still open and delete the directory (in the parent, when the server stops)."""
        self.release()
        shutil.rmtree(self.directory, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def answering(self, snapshot: Callable[[], bytes]) -> AsyncIterator[None]:
        """Answer siblings with ``snapshot()`` until the block ends; then remove this worker's socket."""
        if self.index is None or (listener := self._listeners[self.index]) is None:
            raise RuntimeError("answering() needs adopt(index) first")

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(snapshot())
                await writer.drain()
            except ConnectionError:
                pass  # the sibling gave up waiting
            finally:
                writer.close()

        server = await asyncio.start_unix_server(answer, sock=listener)
        self._listeners[self.index] = None  # the server owns it now
        try:
            yield
        finally:
            server.close()
            with contextlib.suppress(OSError):
                self.path(self.index).unlink()
            with contextlib.suppress(OSError):
                self.directory.rmdir()  # the last worker out, when the parent could not

    async def ask_siblings(self, timeout: float = SIBLING_TIMEOUT) -> dict[int, bytes | None]:  # noqa: ASYNC109
        """Every other worker's snapshot by its index, ``None`` for one that did not answer within *timeout*."""
        siblings = [index for index in range(self.count) if index != self.index]
        answers = await asyncio.gather(*(self._ask(index, timeout) for index in siblings))
        return dict(zip(siblings, answers, strict=True))

    async def _ask(self, index: int, timeout: float) -> bytes | None:  # noqa: ASYNC109
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(str(self.path(index)))
                return await reader.read()
        except (OSError, TimeoutError):
            return None  # exited (no socket, or refused), or stuck
        finally:
            if writer is not None:
                writer.close()

