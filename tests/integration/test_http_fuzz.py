"""Reliability 7: bad input on the HTTP API always gets a 4xx JSON error, never a 5xx.

Schemathesis generates requests — valid and invalid — from the server's own
OpenAPI description (``GET /openapi.json``) and checks every response against
it; Hypothesis adds arbitrary bodies the schema would never produce.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from broadcast_cli.server.config import ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import ThreadedServer, threaded_server

ERROR_CODES = {
    "invalid_json",
    "invalid_request",
    "invalid_channel",
    "invalid_event",
    "payload_too_large",
    "batch_too_large",
    "too_large",
}


@pytest.fixture(scope="module")
def api_server() -> Iterator[ThreadedServer]:
    """One in-memory server, with the default limits that the OpenAPI description states, for every request."""
    with threaded_server(ServerConfig()) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(api_server: ThreadedServer) -> OpenApiSchema:
    """The server's OpenAPI description, as it serves it."""
    # 413 is how the API refuses a body, payload or batch above its limits (docs/http-api.md).
    config = schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "413"]}}}
    )
    return schemathesis.openapi.from_url(f"{api_server.http_url}/openapi.json", config=config)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_conforms_to_its_schema(api_schema: OpenApiSchema, mode: GenerationMode) -> None:
    """Valid requests get the documented 2xx; invalid ones a documented 4xx, never a 5xx."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {operation.label for operation in operations} >= {"POST /publish", "GET /ready", "GET /health"}
    if mode is GenerationMode.NEGATIVE:
        # Only a request body can be invalid: the GET operations take no parameters.
        operations = [operation for operation in operations if operation.method.upper() == "POST"]
    for operation in operations:

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            case.call_and_validate()

        call()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=15,
)
items = st.fixed_dictionaries(
    {},
    optional={
        "channel": json_values | st.text(alphabet="ab.:*/ é", max_size=130),
        "event": json_values | st.text(max_size=130),
        "payload": json_values | st.integers(64 * 1024 - 20, 64 * 1024 + 20).map(lambda size: "x" * size),
        "origin": json_values,
        "id": json_values,
        "extra": json_values,
    },
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(json.dumps).map(str.encode),
    items.map(json.dumps).map(str.encode),
    st.lists(items, max_size=5).map(json.dumps).map(str.encode),
    st.integers(990, 1010).map(lambda count: json.dumps([{"channel": "a", "event": "e"}] * count).encode()),
    st.integers(4 * 1024 * 1024 - 10, 4 * 1024 * 1024 + 10).map(lambda size: b"[" + b" " * size + b"]"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=content_types)
def test_arbitrary_publish_bodies_get_a_receipt_or_a_4xx_json_error(
    api_server: ThreadedServer, body: bytes, content_type: str
) -> None:
    response = httpx.post(
        f"{api_server.http_url}/publish", content=body, headers={"content-type": content_type}, timeout=scaled(10)
    )
    answer = response.json()
    if response.status_code == 200:
        receipts = answer if isinstance(answer, list) else [answer]
        assert all(receipt["seq"] >= 1 and receipt["epoch"] for receipt in receipts), answer
    else:
        assert 400 <= response.status_code < 500, (response.status_code, answer)
        assert answer["type"] == "error" and answer["code"] in ERROR_CODES and answer["message"], answer
