"""In-memory ASGI connections for unit tests: no socket, no server, no thread.

:class:`AsgiWebSocket` is a client's side of one ASGI WebSocket connection to any
ASGI app (the :class:`~broadcast_cli.server.websocket.WebSocketEndpoint`, the
FastAPI router of :class:`~broadcast_cli.WebSocketBroadcastBackend`, a whole
app): what the client sends is queued for the app's ``receive``; what the app
sends is kept in :attr:`AsgiWebSocket.sent`. :class:`AsgiLifespan` runs an app's
lifespan (startup, then shutdown) as an ASGI server would. :class:`FakeWriter`
stands in for the raw-send transport of ``broadcast serve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from broadcast_cli.server.framing import RAW_SEND
from tests.conftest import wait_for, wait_until

__all__ = ["AsgiApp", "AsgiLifespan", "AsgiWebSocket", "FakeWriter"]

AsgiApp = Callable[[Any, Any, Any], Awaitable[None]]
"""An ASGI application: ``app(scope, receive, send)``."""

WEBSOCKET_PATH = "/ws/broadcast"


class FakeWriter:
    """A :class:`~broadcast_cli.server.framing.FramedWriter` that parses what it is given as a client would."""

    def __init__(self) -> None:
        self.client = ClientProtocol(parse_uri("ws://test/ws/broadcast"), state=State.OPEN, max_size=None)
        self.frames: list[Frame] = []
        self.writes = 0
        self.writable = asyncio.Event()
        self.writable.set()
        self.abort_delay: float | None = None
        """The delay given to :meth:`abort_after`, once the endpoint is done with the connection."""

    @property
    def paused(self) -> bool:
        return not self.writable.is_set()

    def abort_after(self, seconds: float) -> None:
        self.abort_delay = seconds

    def write(self, data: bytes, frames: int = 1) -> None:
        assert not self.paused, "written while paused"
        self.client.receive_data(data)
        received = [event for event in self.client.events_received() if isinstance(event, Frame)]
        assert len(received) == frames
        self.frames += received
        self.writes += 1

    async def wait_writable(self) -> None:
        await self.writable.wait()

    def json(self) -> list[dict[str, Any]]:
        assert all(frame.opcode is Opcode.TEXT and frame.fin for frame in self.frames)
        return [orjson.loads(frame.data) for frame in self.frames]


class AsgiWebSocket:
    """One ASGI WebSocket connection to *app*: the client's side of ``receive`` and ``send``.

    The connection opens at once (``websocket.connect`` is queued) and the app runs
    in :attr:`task`. With *writer*, the scope offers the raw-send extension, as
    ``broadcast serve`` does; without it, every frame is an ASGI ``websocket.send``,
    kept in :attr:`sent` once the client took it (see :meth:`stop_reading`).
    """

    def __init__(
        self,
        app: AsgiApp,
        writer: FakeWriter | None = None,
        *,
        path: str = WEBSOCKET_PATH,
        subprotocols: tuple[str, ...] = (),
    ) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.reading = asyncio.Event()
        """Cleared by :meth:`stop_reading`: the app's ``websocket.send`` waits, as for a client that does not read."""
        self.reading.set()
        extensions: dict[str, Any] = {"websocket.http.response": {}}
        if writer is not None:
            extensions[RAW_SEND] = {"writer": writer}
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "server": ("testserver", 80),
            "client": ("testclient", 50000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
            "subprotocols": list(subprotocols),
            "extensions": extensions,
        }
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.ensure_future(app(self.scope, self.incoming.get, self._send))

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await self.reading.wait()
        self.sent.append(message)

    def stop_reading(self) -> None:
        """Stop taking frames: every ``websocket.send`` of the app waits (close frames still pass)."""
        self.reading.clear()

    def resume_reading(self) -> None:
        """Take frames again."""
        self.reading.set()

    # -- the client sends ----------------------------------------------------------

    def request(self, frame: dict[str, Any]) -> None:
        """Send *frame* as a JSON text frame."""
        self.send_text(orjson.dumps(frame).decode())

    def send_text(self, text: str) -> None:
        """Send a text frame as is."""
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        self.incoming.put_nowait({"type": "websocket.receive", "bytes": data})

    def disconnect(self, code: int = 1000) -> None:
        """Go away, as a client closing the connection (or losing it) does."""
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    # -- what the app sent ---------------------------------------------------------

    @property
    def accepted(self) -> bool:
        """Whether the app accepted the connection."""
        return any(m["type"] == "websocket.accept" for m in self.sent)

    def texts(self) -> list[dict[str, Any]]:
        """The text frames the app sent, parsed, in order."""
        return [orjson.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]

    def close_code(self) -> int | None:
        """The code of the app's close frame, if it sent one."""
        closes = [m["code"] for m in self.sent if m["type"] == "websocket.close"]
        return closes[0] if closes else None

    # -- waiting -------------------------------------------------------------------

    async def wait_accepted(self) -> None:
        """Wait until the app accepted the connection (as a client's ``connect`` does)."""
        await wait_until(lambda: self.accepted or self.task.done(), what="the handshake")
        assert self.accepted, f"the connection was not accepted: {self.sent}"

    async def wait_texts(self, count: int, what: str = "frames") -> list[dict[str, Any]]:
        """Wait until the app sent *count* text frames; return every frame sent so far."""
        await wait_until(lambda: len(self.texts()) >= count, what=f"{count} {what}")
        return self.texts()

    async def subscribe(self, *items: str | dict[str, Any], id: int = 1) -> dict[str, Any]:  # noqa: A002
        """Subscribe and return the ack (or error) answering the request."""
        before = len(self.texts())
        self.request({"subscribe": list(items), "id": id})
        await wait_until(
            lambda: any(frame.get("id") == id and "type" in frame for frame in self.texts()[before:]),
            what=f"the answer to subscribe #{id}",
        )
        return next(frame for frame in self.texts()[before:] if frame.get("id") == id and "type" in frame)

    async def closed(self) -> None:
        """Wait until the app is done with the connection."""
        await wait_for(self.task)


class AsgiLifespan:
    """Run *app*'s ASGI lifespan: ``async with`` starts it up and shuts it down."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def _answer(self, kind: str) -> dict[str, Any]:
        """Wait for the app's answer (``complete`` or ``failed``) to ``lifespan.<kind>``."""
        task = self.task
        assert task is not None

        def answers() -> list[dict[str, Any]]:
            return [m for m in self.sent if m["type"].startswith(f"lifespan.{kind}.")]

        await wait_until(lambda: bool(answers()) or task.done(), what=f"the answer to lifespan.{kind}")
        assert answers(), f"the app's lifespan ended without answering lifespan.{kind}: {task!r}"
        return answers()[0]

    async def __aenter__(self) -> AsgiLifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, self.incoming.get, self._send))
        self.incoming.put_nowait({"type": "lifespan.startup"})
        answer = await self._answer("startup")
        assert answer["type"] == "lifespan.startup.complete", answer
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.task is not None
        self.incoming.put_nowait({"type": "lifespan.shutdown"})
        answer = await self._answer("shutdown")
        await wait_for(self.task)
        assert answer["type"] == "lifespan.shutdown.complete", answer
