# Copied from the seed test plan (../shared/seed/000_9652b0bcb83ad9ea.txt, section 2.1)
# with only its import lines changed. Do not edit: it is the compatibility contract.
"""
Integration tests for WebSocket broadcast with real connections.

Uses FastAPI TestClient with websocket support.
"""

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from broadcast_cli import WebSocketBroadcastBackend


@pytest.fixture
def app_with_broadcast():
    """Create a FastAPI app with broadcast WebSocket endpoint."""
    app = FastAPI()
    backend = WebSocketBroadcastBackend()
    app.include_router(backend.get_router())

    app.state.broadcast = backend
    return app, backend


class TestWebSocketIntegration:
    """Integration tests with real WebSocket connections."""

    def test_client_connects_and_subscribes(self, app_with_broadcast):
        """Test that a client can connect and subscribe to a channel."""
        app, backend = app_with_broadcast

        with TestClient(app) as client:
            with client.websocket_connect("/ws/broadcast") as ws:
                # Subscribe to channel
                ws.send_json({"subscribe": ["orders"]})

                # Verify subscription
                assert backend.get_subscriber_count("orders") == 1

    def test_client_receives_broadcast(self, app_with_broadcast):
        """Test that a subscribed client receives broadcast messages."""
        app, backend = app_with_broadcast

        with TestClient(app) as client:
            with client.websocket_connect("/ws/broadcast") as ws:
                ws.send_json({"subscribe": ["orders"]})

                # Backend broadcasts
                import asyncio
                asyncio.get_event_loop().run_until_complete(
                    backend.broadcast("orders", "created", {"entity_id": "123"})
                )

                # Client receives
                data = ws.receive_json()
                assert data["channel"] == "orders"
                assert data["event"] == "created"
                assert data["payload"]["entity_id"] == "123"

    def test_multiple_clients_same_channel(self, app_with_broadcast):
        """Test multiple clients subscribing to the same channel."""
        app, backend = app_with_broadcast

        with TestClient(app) as client:
            with client.websocket_connect("/ws/broadcast") as ws1:
                with client.websocket_connect("/ws/broadcast") as ws2:
                    ws1.send_json({"subscribe": ["orders"]})
                    ws2.send_json({"subscribe": ["orders"]})

                    assert backend.get_subscriber_count("orders") == 2

    def test_client_unsubscribe(self, app_with_broadcast):
        """Test client unsubscribing from a channel."""
        app, backend = app_with_broadcast

        with TestClient(app) as client:
            with client.websocket_connect("/ws/broadcast") as ws:
                ws.send_json({"subscribe": ["orders"]})
                assert backend.get_subscriber_count("orders") == 1

                ws.send_json({"unsubscribe": ["orders"]})
                assert backend.get_subscriber_count("orders") == 0
