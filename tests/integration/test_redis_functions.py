"""Publishing straight into Redis (``FCALL broadcast_publish``) keeps the protocol's rules.

A non-Python service publishes with the Redis function (docs/redis.md): it must
refuse what ``POST /publish`` refuses — channel and event names, origin and id
lengths, the payload's size, and a payload that is not JSON as the subscribers'
parsers read it (Redis's cjson takes NaN, hexadecimal, raw control characters
and text that is not UTF-8, any of which would break every subscriber of the
channel), or that repeats a key — with a Redis error that says why, and store nothing.
Raw FCALL against a real redis-server, and redis-cli.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broadcast_cli.backends.redis import LIBRARY_VERSION, RedisBackend, function_library, redis_keys
from broadcast_cli.exceptions import InvalidRequest
from broadcast_cli.hub import Hub
from broadcast_cli.message import EVENT_RULE, validate_channel, validate_event
from broadcast_cli.protocol import DEFAULT_MAX_PAYLOAD_BYTES, MAX_ID_LENGTH, SubscribeItem, parse_json
from tests.conftest import wait_until
from tests.integration.conftest import Collector, RedisProcess

pytestmark = pytest.mark.redis

META, STREAM, _ = redis_keys("broadcast", "orders")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of an empty Redis with broadcast-cli's functions loaded."""
    client = redis.Redis.from_url(redis_url)
    client.function_load(function_library(), replace=True)
    yield client
    client.close()


def publish(client: redis.Redis, *args: str | bytes | int, channel: str | bytes = "orders") -> int | str:
    """``FCALL broadcast_publish`` for *channel* with *args* after the channel: the seq, or the error message."""
    if isinstance(channel, bytes):
        keys = [b"broadcast:{" + channel + b"}:meta", b"broadcast:{" + channel + b"}:stream"]
    else:
        keys = list(redis_keys("broadcast", channel)[:2])
    try:
        reply = client.fcall("broadcast_publish", 2, *keys, channel, *args)
    except redis.ResponseError as exc:
        return str(exc)
    return int(reply[0])


def stored(client: redis.Redis) -> int:
    """How many messages the channel ``orders`` has in history."""
    return int(client.xlen(STREAM))


def test_the_library_says_its_version_and_rules(client: redis.Redis) -> None:
    reply = client.fcall_ro("broadcast_version", 0)
    rules = dict(zip(reply[::2], reply[1::2], strict=True))
    assert rules[b"version"] == LIBRARY_VERSION
    assert rules[b"max_event_length"] == 128 and rules[b"max_id_length"] == MAX_ID_LENGTH
    assert rules[b"max_payload_bytes"] == DEFAULT_MAX_PAYLOAD_BYTES
    assert rules[b"event_rule"].decode() == EVENT_RULE


def test_event_names_follow_the_same_rule_as_in_python_byte_for_byte(client: redis.Redis) -> None:
    def python_accepts(name: bytes) -> bool:
        try:
            validate_event(name.decode("latin-1"))
        except InvalidRequest:
            return False
        return True

    for code in range(256):
        name = b"a" + bytes([code]) + b"b"
        result = publish(client, name, "{}", "", "", 0)
        assert isinstance(result, int) == python_accepts(name), (name, result)
    assert isinstance(publish(client, "e" * 128, "{}", "", "", 0), int)
    assert publish(client, "e" * 300, "{}") == (
        f"broadcast: event name longer than 128 characters (300 bytes): an event name is {EVENT_RULE}"
    )
    assert publish(client, "bad name", "{}") == (
        f"broadcast: invalid event name: byte 4 (0x20) is not allowed: an event name is {EVENT_RULE}"
    )
    assert publish(client, "", "{}") == f"broadcast: the event name is missing or empty: an event name is {EVENT_RULE}"


def test_channel_names_follow_the_same_rule_as_in_python_byte_for_byte(client: redis.Redis) -> None:
    for code in range(256):
        channel = b"a" + bytes([code]) + b"b"
        if code in b"{}":
            continue  # a brace would break the keys' hash tag: the keys check refuses it anyway
        try:
            validate_channel(channel.decode("latin-1"))
            python_accepts = True
        except InvalidRequest:
            python_accepts = False
        result = publish(client, "e", "{}", "", "", 0, channel=channel)
        assert isinstance(result, int) == python_accepts, (channel, result)
    assert isinstance(publish(client, "e", "{}", channel="c" * 128), int)
    assert str(publish(client, "e", "{}", channel="c" * 129)).startswith(
        "broadcast: channel name longer than 128 characters (129 bytes): a channel name is 1 to 128 characters"
    )


def test_the_payload_limit_is_the_servers_default_unless_the_caller_gives_its_own(client: redis.Redis) -> None:
    def payload(size: int) -> str:
        return '"' + "x" * (size - 2) + '"'

    assert isinstance(publish(client, "e", payload(DEFAULT_MAX_PAYLOAD_BYTES)), int)
    assert publish(client, "e", payload(DEFAULT_MAX_PAYLOAD_BYTES + 1)) == (
        f"broadcast: the payload is {DEFAULT_MAX_PAYLOAD_BYTES + 1} bytes; the limit is 65536 (MAX_PAYLOAD)"
    )
    assert publish(client, "e", payload(100 * 1024)) == (
        "broadcast: the payload is 102400 bytes; the limit is 65536 (MAX_PAYLOAD)"
    )
    assert stored(client) == 1
    # A deployment whose servers take larger payloads (Limits.max_payload_bytes) passes its limit.
    assert isinstance(publish(client, "e", payload(100 * 1024), "", "", "", "", "", 200 * 1024), int)
    refused = publish(client, "e", payload(1024), "", "", "", "", "", 1000)
    assert str(refused).endswith("the limit is 1000 (MAX_PAYLOAD)")
    # 0: the caller has checked the payload, as broadcast-cli's servers do; it is not looked at.
    assert isinstance(publish(client, "e", payload(100 * 1024), "", "", "", "", "", 0), int)
    assert str(publish(client, "e", "{}", "", "", "", "", "", "lots")) == (
        "broadcast: MAX_PAYLOAD must be a non-negative number"
    )
    assert stored(client) == 3


def test_origin_and_id_have_at_most_128_characters_of_utf8(client: redis.Redis) -> None:
    assert isinstance(publish(client, "e", "{}", "é" * MAX_ID_LENGTH, "ü" * MAX_ID_LENGTH), int)
    assert publish(client, "e", "{}", "é" * 129) == "broadcast: ORIGIN longer than 128 characters (129)"
    assert publish(client, "e", "{}", "", "i" * 129) == "broadcast: ID longer than 128 characters (129)"
    assert publish(client, "e", "{}", b"tab-\xff") == "broadcast: ORIGIN is not valid UTF-8"
    assert publish(client, "e", "{}", "", b"\xc0\x80") == "broadcast: ID is not valid UTF-8"
    assert stored(client) == 1
    [(_, fields)] = client.xrange(STREAM)
    event = orjson.loads(fields[b"f"])
    assert (event["origin"], event["id"]) == ("é" * MAX_ID_LENGTH, "ü" * MAX_ID_LENGTH)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"NaN", "it holds \"NaN\", which is not JSON"),
        (b"[1, Infinity]", "it holds \"Infinity\", which is not JSON"),
        (b'{"n": nan}', "it holds \"nan\", which is not JSON"),
        (b"0x1F", "it holds \"0x1F\", which is not JSON"),
        (b"[01]", "it holds \"01\", which is not JSON"),
        (b"+1", "it holds \"+1\", which is not JSON"),
        (b"1.", "it holds \"1.\", which is not JSON"),
        (b"1e400", "it holds \"1e400\", which is not JSON"),
        (b'"a\x01b"', "it holds a raw control character"),
        (b'{"text": "two\nlines"}', "it holds a raw tab or line break in a string"),
        (b'"\xff"', "the payload is not valid UTF-8"),
        (b'"\xed\xa0\x80"', "the payload is not valid UTF-8"),  # a surrogate
        (b'{"n": 1, "n": 2}', "it holds an object that repeats a key"),
        (b'[{"a": {"b": 1, "\\u0062": 2}}]', "it holds an object that repeats a key"),
        (b"{not json", "the payload is not JSON text: Expected object key string"),
        (b"", "the payload is not JSON text"),
    ],
)
def test_a_payload_that_subscribers_could_not_parse_is_refused(client: redis.Redis, payload: bytes, why: str) -> None:
    result = publish(client, "e", payload)
    assert isinstance(result, str) and result.startswith("broadcast: ") and why in result, result
    assert stored(client) == 0


def dumps(value: object) -> bytes:
    """*value* as JSON text, in one of several layouts (indented or not, escaped or raw UTF-8)."""
    variant = len(str(value))
    return json.dumps(value, ensure_ascii=variant % 2 == 0, indent=variant % 3 or None).encode()


json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(alphabet="ab:é\\", max_size=3), children),
    max_leaves=10,
).map(dumps)
JSONISH = '0123456789.eE+-[]{}:,"\\ \t\nnulltrefasNIxé\x01'
"""Characters that make JSON, or nearly."""

near_json = st.binary(max_size=12) | st.text(alphabet=JSONISH, max_size=16).map(str.encode)
spliced_json = st.tuples(json_text, st.binary(max_size=3), st.integers(0, 40)).map(
    lambda spliced: spliced[0][: spliced[2]] + spliced[1] + spliced[0][spliced[2] :]
)
# Objects whose keys may repeat: the generator of dictionaries never makes one.
repeated_keys = st.lists(st.tuples(st.sampled_from(["a", "b", "a:b", "\\u0061"]), json_text), max_size=4).map(
    lambda pairs: b"{" + b",".join(b'"' + key.encode() + b'":' + value for key, value in pairs) + b"}"
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(payload=json_text | near_json | spliced_json | repeated_keys)
def test_the_function_takes_exactly_the_json_that_the_server_takes(redis_server: RedisProcess, payload: bytes) -> None:
    """The server's parser (orjson, then no repeated key) is the subscribers' parser: they must agree."""
    with redis.Redis(port=redis_server.port) as client:
        if not client.function_list(library="broadcast_cli"):
            client.function_load(function_library(), replace=True)
        try:
            parse_json(payload)
            parsed = True
        except InvalidRequest:
            parsed = False
        result = publish(client, "e", payload, "", "", 0)  # SIZE 0: nothing kept in history
        assert isinstance(result, int) == parsed, (payload, result)


async def test_a_server_replaces_an_old_library_and_its_own_publishes_are_not_checked_twice(
    redis_url: str, client: redis.Redis
) -> None:
    client.function_load(
        "#!lua name=broadcast_cli\nredis.register_function('broadcast_publish', function() return 'old' end)",
        replace=True,
    )
    hub = Hub(RedisBackend(redis_url))
    await hub.start()
    try:
        rules = client.fcall_ro("broadcast_version", 0)
        assert rules[:2] == [b"version", LIBRARY_VERSION]
        assert str(publish(client, "bad name", "{}")).startswith("broadcast: invalid event name")
        sink = Collector()
        await hub.subscribe(sink, [SubscribeItem("orders")])
        # A payload above the function's default is the hub's to judge (its limit is configurable).
        hub.max_payload_bytes = 200 * 1024
        message = await hub.publish("orders", "order.created", {"text": "x" * (100 * 1024)})
        assert message.seq == 1
        await wait_until(lambda: len(sink.messages) == 1, what="the large message")
        with pytest.raises(InvalidRequest, match="invalid event name 'bad name'"):
            await hub.publish("orders", "bad name", {})
    finally:
        await hub.stop()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_redis_cli_shows_the_error(redis_server: RedisProcess, client: redis.Redis) -> None:
    result = subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "FCALL", "broadcast_publish", "2", META, STREAM,
         "orders", "x" * 300, "{}"],
        capture_output=True, text=True, check=True,
    )
    assert result.stdout.startswith("ERR broadcast: event name longer than 128 characters (300 bytes)")
    assert stored(client) == 0
