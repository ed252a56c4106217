"""The WebSocket endpoint on either path, driven through ASGI with no socket.

With the raw-send extension in the scope, frames go to the writer, framed, in
the order they were queued; without it, each frame is one ``websocket.send``.
"""

from __future__ import annotations

import asyncio

from broadcast_cli.backends.memory import MemoryBackend
from broadcast_cli.history import HistoryOptions
from broadcast_cli.hub import Hub
from broadcast_cli.message import PublishRequest
from broadcast_cli.protocol import CloseCode
from broadcast_cli.server.config import Limits
from broadcast_cli.server.websocket import WebSocketEndpoint
from tests.conftest import wait_for, wait_until
from tests.unit.asgi import AsgiWebSocket as Connection
from tests.unit.asgi import FakeWriter


async def started_hub() -> Hub:
    hub = Hub(MemoryBackend(HistoryOptions(size=1000)))
    await hub.start()
    return hub


async def test_the_ack_is_written_before_the_replay_then_live_events_in_one_write_per_turn() -> None:
    hub = await started_hub()
    first = await hub.publish("orders", "e", 0)
    await hub.publish_many([PublishRequest("orders", "e", n) for n in range(1, 10)])
    writer = FakeWriter()
    connection = Connection(WebSocketEndpoint(hub), writer)
    connection.request({"subscribe": [{"channel": "orders", "since": 4, "epoch": first.epoch}], "id": 1})
    await wait_until(lambda: len(writer.frames) == 7, what="the ack and the replay")
    ack, *replay = writer.json()
    assert ack == {"type": "ack", "id": 1, "channels": {"orders": {"seq": 10, "epoch": first.epoch, "recovered": True}}}
    assert [event["seq"] for event in replay] == [5, 6, 7, 8, 9, 10]
    writes = writer.writes
    await hub.publish_many([PublishRequest("orders", "e", n) for n in range(5)])
    await wait_until(lambda: len(writer.frames) == 12, what="the live events")
    assert writer.writes == writes + 1
    assert [event["seq"] for event in writer.json()[7:]] == [11, 12, 13, 14, 15]
    # The ASGI path only carried the handshake.
    assert [m["type"] for m in connection.sent] == ["websocket.accept"]
    connection.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await wait_for(connection.task)


async def test_while_the_transport_is_paused_frames_wait_in_the_outbox_until_it_overflows_into_4008() -> None:
    hub = await started_hub()
    writer = FakeWriter()
    endpoint = WebSocketEndpoint(hub, Limits(send_buffer_messages=10))
    connection = Connection(endpoint, writer)
    connection.request({"subscribe": ["orders"], "id": 1})
    await wait_until(lambda: len(writer.frames) == 1, what="the ack")
    writer.writable.clear()  # the client stopped reading: the transport paused
    await hub.publish_many([PublishRequest("orders", "e", n) for n in range(10)])
    assert hub.subscriber_count("orders") == 1  # ten frames wait within the bound
    await hub.publish("orders", "e", "one too many")
    await wait_for(connection.task)
    assert connection.close_code() == CloseCode.SLOW_CONSUMER
    assert len(writer.frames) == 1
    assert hub.subscriber_count("orders") == 0
    # Done with the connection: the transport resets it if it then takes nothing for 10 s.
    assert writer.abort_delay == 10.0


async def test_a_paused_transport_that_resumes_gets_everything_queued_meanwhile_in_one_write() -> None:
    hub = await started_hub()
    writer = FakeWriter()
    connection = Connection(WebSocketEndpoint(hub), writer)
    connection.request({"subscribe": ["orders"], "id": 1})
    await wait_until(lambda: len(writer.frames) == 1, what="the ack")
    writer.writable.clear()
    for n in range(3):
        await hub.publish("orders", "e", n)
        await asyncio.sleep(0)  # let the writer run between publishes: it must wait, not write
    assert (len(writer.frames), writer.writes) == (1, 1)
    writer.writable.set()
    await wait_until(lambda: len(writer.frames) == 4, what="the queued events")
    assert writer.writes == 2
    connection.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await wait_for(connection.task)


async def test_drain_writes_what_is_queued_then_closes_through_asgi() -> None:
    hub = await started_hub()
    writer = FakeWriter()
    endpoint = WebSocketEndpoint(hub)
    connection = Connection(endpoint, writer)
    connection.request({"subscribe": ["orders"], "id": 1})
    await wait_until(lambda: len(writer.frames) == 1, what="the ack")
    await hub.publish_many([PublishRequest("orders", "e", n) for n in range(50)])
    await wait_for(endpoint.drain())
    await wait_for(connection.task)
    assert [event["seq"] for event in writer.json()[1:]] == list(range(1, 51))
    assert connection.close_code() == CloseCode.SERVICE_RESTART


async def test_without_the_extension_every_frame_is_one_asgi_send() -> None:
    hub = await started_hub()
    connection = Connection(WebSocketEndpoint(hub), None)
    connection.request({"subscribe": ["orders"], "id": 1})
    await wait_until(lambda: len(connection.texts()) == 1, what="the ack")
    await hub.publish_many([PublishRequest("orders", "e", n) for n in range(3)])
    await wait_until(lambda: len(connection.texts()) == 4, what="the events")
    ack, *events = connection.texts()
    assert ack["type"] == "ack" and [event["seq"] for event in events] == [1, 2, 3]
    connection.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await wait_for(connection.task)
