"""The demo's JSON API (``broadcast serve --demo``), in process: store, broadcast, a 4xx JSON error for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig

API = "/demo/api/orders"


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(config=ServerConfig(demo=True))) as test_client:
        yield test_client


def test_an_order_is_stored_then_broadcast_with_the_creators_id_as_origin(client: TestClient) -> None:
    assert client.get(API).json() == {"orders": []}
    with client.websocket_connect("/ws/broadcast") as ws:
        ws.send_json({"subscribe": ["orders"], "id": 1})
        assert ws.receive_json()["type"] == "ack"
        body = {"id": "order-1", "item": "  Green tea ", "quantity": 2, "client_id": "tab-1"}
        answer = client.post(API, json=body)
        assert answer.status_code == 201
        order = answer.json()["order"]
        assert order["id"] == "order-1" and order["item"] == "Green tea" and order["quantity"] == 2
        assert answer.json()["broadcast"]["seq"] == 1
        event = ws.receive_json()
    assert event["event"] == "order.created" and event["origin"] == "tab-1"
    assert event["payload"] == {"entity_id": "order-1", "order": order}
    assert client.get(API).json() == {"orders": [order]}


def test_the_newest_order_comes_first_and_an_id_is_made_when_none_is_given(client: TestClient) -> None:
    first = client.post(API, json={"item": "a", "quantity": 1}).json()["order"]
    second = client.post(API, json={"item": "b", "quantity": 1}).json()["order"]
    assert len(first["id"]) == 24
    assert [order["item"] for order in client.get(API).json()["orders"]] == ["b", "a"]
    assert "origin" not in second


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"{oops", 400, "invalid_json", "not valid JSON"),
        (b"[1]", 400, "invalid_order", "JSON object"),
        (b'{"quantity": 1}', 400, "invalid_order", '"item" is required'),
        (b'{"item": "   ", "quantity": 1}', 400, "invalid_order", '"item" is required'),
        (b'{"item": "a", "quantity": 0}', 400, "invalid_order", "from 1 to 100"),
        (b'{"item": "a", "quantity": 101}', 400, "invalid_order", "from 1 to 100"),
        (b'{"item": "a", "quantity": true}', 400, "invalid_order", "whole number"),
        (b'{"item": "a", "quantity": "2"}', 400, "invalid_order", "whole number"),
        (b'{"item": "a", "quantity": 1, "price": 3}', 400, "invalid_order", "unknown field"),
        (b'{"item": "a", "quantity": 1, "id": "../x"}', 400, "invalid_order", '"id"'),
        (b'{"item": "a", "quantity": 1, "client_id": ""}', 400, "invalid_order", '"client_id"'),
        (b'{"item": "' + b"x" * 81 + b'", "quantity": 1}', 400, "invalid_order", "at most 80"),
        (b'{"item": "' + b"x" * 20_000 + b'"}', 413, "too_large", "bytes"),
    ],
)
def test_bad_input_gets_a_4xx_json_error_and_stores_nothing(
    client: TestClient, body: bytes, status: int, code: str, words: str
) -> None:
    answer = client.post(API, content=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()
    assert error["type"] == "error" and error["code"] == code and words in error["message"]
    assert client.get(API).json() == {"orders": []}


def test_an_id_taken_is_a_conflict(client: TestClient) -> None:
    body = {"id": "same", "item": "a", "quantity": 1}
    assert client.post(API, json=body).status_code == 201
    answer = client.post(API, json=body)
    assert answer.status_code == 409 and answer.json()["code"] == "order_exists"
    assert len(client.get(API).json()["orders"]) == 1


def test_the_page_and_its_script_are_served(client: TestClient) -> None:
    page = client.get("/demo")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'src="/demo/app.js"' in page.text
    script = client.get("/demo/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "from '/client.js'" in script.text
    assert client.get("/demo/", follow_redirects=False).headers["location"] == "/demo"
    assert client.put(API).status_code == 405


def test_instances_share_orders_through_one_database_file(tmp_path: Path) -> None:
    config = ServerConfig(demo=True, demo_db=str(tmp_path / "orders.sqlite3"))
    with TestClient(create_app(config=config)) as one, TestClient(create_app(config=config)) as two:
        one.post(API, json={"item": "shared", "quantity": 1})
        assert [order["item"] for order in two.get(API).json()["orders"]] == ["shared"]


def test_the_demo_is_not_served_unless_asked_for() -> None:
    with TestClient(create_app(config=ServerConfig())) as client:
        assert client.get("/demo").status_code == 404
        assert client.get(API).status_code == 404
        assert client.get("/client.js").status_code == 200
