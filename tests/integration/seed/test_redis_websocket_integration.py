# Copied from the seed test plan (../shared/seed/000_9652b0bcb83ad9ea.txt, section 2.2)
# with only its import lines changed. Do not edit: it is the compatibility contract.
"""
Integration tests for Redis pub/sub with WebSocket fanout.

This tests the multi-instance scenario where:
1. Backend Instance A receives mutation request
2. Instance A broadcasts via Redis
3. All backend instances receive Redis message
4. Each instance fans out to its connected WebSocket clients

Requires: Redis running (docker-compose up redis)
"""

import asyncio
import pytest

from broadcast_cli import RedisBroadcastBackend
from broadcast_cli import WebSocketBroadcastBackend


@pytest.fixture
async def redis_backend():
    """Create Redis broadcast backend."""
    backend = RedisBroadcastBackend(
        redis_url="redis://localhost:6379/0",
        channel_prefix="test_integration",
    )
    yield backend
    await backend.close()


class TestRedisWebSocketBridge:
    """Tests for bridging Redis pub/sub to WebSocket clients."""

    @pytest.mark.asyncio
    async def test_redis_broadcast_fans_out_to_websockets(
        self, redis_backend
    ):
        """Test that Redis broadcasts reach WebSocket clients."""
        ws_backend = WebSocketBroadcastBackend()
        received = []

        # Subscribe WebSocket backend to Redis channel
        async def bridge_handler(event_type, payload):
            await ws_backend.broadcast(
                channel=payload.get("channel", "unknown"),
                event_type=event_type,
                payload=payload,
            )
            received.append((event_type, payload))

        await redis_backend.subscribe("orders", bridge_handler)
        await asyncio.sleep(0.1)  # Let subscription establish

        # Broadcast via Redis
        await redis_backend.broadcast(
            channel="orders",
            event_type="created",
            payload={"entity_id": "123", "channel": "orders"},
        )

        # Wait for message
        await asyncio.sleep(0.2)

        assert len(received) == 1
        assert received[0][0] == "created"
        assert received[0][1]["entity_id"] == "123"
