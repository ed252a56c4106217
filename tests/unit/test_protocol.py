"""Wire protocol v1: request parsing and frame encoding."""

from __future__ import annotations

import orjson
import pytest

from broadcast_cli.exceptions import InvalidChannel, InvalidEvent, InvalidPayload, ProtocolError
from broadcast_cli.message import Message, Position
from broadcast_cli.protocol import (
    Auth,
    CloseCode,
    Publish,
    Subscribe,
    SubscribeItem,
    SubscribeResult,
    Unsubscribe,
    decode_event,
    encode_ack,
    encode_error,
    encode_event,
    encode_payload,
    encode_publish_ack,
    parse_json,
    parse_publish,
    parse_request,
    should_reconnect,
)


def test_seed_subscribe_and_unsubscribe_frames() -> None:
    assert parse_request('{"subscribe": ["orders", "users"]}') == Subscribe(
        (SubscribeItem("orders"), SubscribeItem("users")), None
    )
    assert parse_request(b'{"unsubscribe": ["orders"]}') == Unsubscribe(("orders",), None)


def test_subscribe_item_with_recovery_position_and_request_id() -> None:
    request = parse_request('{"id": 7, "subscribe": [{"channel": "orders", "since": 41, "epoch": "e1"}]}')
    assert request == Subscribe((SubscribeItem("orders", 41, "e1"),), 7)


def test_duplicate_channels_are_subscribed_once() -> None:
    request = parse_request('{"subscribe": ["a", "a", {"channel": "a", "since": 3}]}')
    assert isinstance(request, Subscribe)
    assert request.items == (SubscribeItem("a"),)


@pytest.mark.parametrize(
    ("frame", "code", "request_id"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_request", None),
        ('{"id": 3, "publish": {}}', "invalid_request", 3),
        ('{"id": 4, "auth": {"token": 7}}', "invalid_request", 4),
        ('{"id": 5, "nope": 1}', "unknown_request", 5),
        ('{"id": 6, "publish": {"channel": "a b", "event": "e"}}', "invalid_channel", 6),
        ('{"id": "x", "subscribe": "orders"}', "invalid_request", "x"),
        ('{"id": 1, "subscribe": [1]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": [{"since": 1}]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": [{"channel": "a", "since": -1}]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": [{"channel": "a", "since": true}]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": [{"channel": "a", "epoch": "e"}]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": [{"channel": "a", "bogus": 1}]}', "invalid_request", 1),
        ('{"id": 1, "subscribe": ["a"], "unsubscribe": ["a"]}', "invalid_request", 1),
        ('{"id": true, "subscribe": ["a"]}', "invalid_request", None),
        ('{"id": 5, "subscribe": ["bad channel"]}', "invalid_channel", 5),
        ('{"id": 5, "unsubscribe": [""]}', "invalid_channel", 5),
        ('{"id": 7, "publish": {"channel": "a", "event": "bad name"}}', "invalid_event", 7),
        ('{"id": 8, "subscribe": ["a"], "subscribe": ["b"]}', "invalid_json", None),
    ],
)
def test_bad_requests_are_refused_with_a_code_and_the_request_id(
    frame: str, code: str, request_id: object
) -> None:
    with pytest.raises((ProtocolError, InvalidChannel, InvalidEvent)) as info:
        parse_request(frame)
    assert info.value.code == code
    assert info.value.request_id == request_id
    assert info.value.message


def test_a_request_may_not_name_more_channels_than_allowed() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(orjson.dumps({"subscribe": [f"c{i}" for i in range(11)]}), max_channels=10)
    assert info.value.code == "too_many_channels"


def test_publish_items_are_validated() -> None:
    request = parse_publish({"channel": "orders", "event": "created", "payload": [1], "origin": "tab"})
    assert (request.channel, request.event, request.payload, request.origin) == ("orders", "created", [1], "tab")
    for bad in ({"event": "e"}, {"channel": "a"}, {"channel": "a", "event": ""}, {"channel": "a b", "event": "e"},
                {"channel": "a", "event": "e", "extra": 1}, {"channel": "a", "event": "e", "origin": 3}, []):
        with pytest.raises(Exception) as info:
            parse_publish(bad)
        assert info.value.code in {"invalid_request", "invalid_channel", "invalid_event"}  # type: ignore[attr-defined]


def _message(**overrides: object) -> Message:
    fields: dict[str, object] = {
        "channel": "orders", "event": "created", "payload": {"entity_id": "123"},
        "seq": 4, "epoch": "e1", "id": "m1", "ts": 1000,
    }
    fields.update(overrides)
    return Message(**fields)  # type: ignore[arg-type]


def test_event_frame_round_trip_and_origin_only_when_set() -> None:
    message = _message()
    frame = encode_event(message)
    assert orjson.loads(frame) == {
        "channel": "orders", "event": "created", "payload": {"entity_id": "123"},
        "seq": 4, "epoch": "e1", "id": "m1", "ts": 1000,
    }
    with_origin = encode_event(_message(origin="tab-1"))
    assert orjson.loads(with_origin)["origin"] == "tab-1"
    decoded = decode_event(with_origin)
    assert decoded.to_dict() == _message(origin="tab-1").to_dict()
    assert decoded.frame == with_origin


def test_pre_encoded_payload_is_embedded_unchanged() -> None:
    frame = encode_event(_message(payload=None), b'{"a":[1,2]}')
    assert orjson.loads(frame)["payload"] == {"a": [1, 2]}


def test_decode_event_refuses_other_frames() -> None:
    with pytest.raises(ProtocolError):
        decode_event(b'{"type":"ack","id":1}')
    with pytest.raises(ProtocolError):
        decode_event(b'{"channel":"a","event":"e","seq":"1","epoch":"e","id":"i","ts":0}')


def test_payload_encoding_limits() -> None:
    assert encode_payload({"a": 1}) == b'{"a":1}'
    with pytest.raises(InvalidPayload) as info:
        encode_payload("x" * 100, max_bytes=50)
    assert info.value.code == "payload_too_large"
    with pytest.raises(InvalidPayload):
        encode_payload({1, 2})


def test_ack_and_error_frames() -> None:
    ack = orjson.loads(
        encode_ack(1, {"a": SubscribeResult(Position(3, "e")), "b": SubscribeResult(Position(0, "f"), False)})
    )
    assert ack == {
        "type": "ack", "id": 1,
        "channels": {"a": {"seq": 3, "epoch": "e"}, "b": {"seq": 0, "epoch": "f", "recovered": False}},
    }
    assert orjson.loads(encode_ack("x")) == {"type": "ack", "id": "x"}
    assert orjson.loads(encode_error("invalid_json", "bad", None)) == {
        "type": "error", "id": None, "code": "invalid_json", "message": "bad",
    }


@pytest.mark.parametrize(
    ("code", "retry"),
    [(1000, True), (1001, True), (1006, True), (1011, True), (1012, True), (CloseCode.SLOW_CONSUMER, True),
     (1002, False), (1003, False), (1008, False), (1009, False), (CloseCode.BAD_REQUEST, False), (4999, False)],
)
def test_should_reconnect(code: int, retry: bool) -> None:
    assert should_reconnect(code) is retry


def test_patterns_and_last() -> None:
    request = parse_request('{"subscribe": ["orders.*", "*", {"channel": "users", "last": 10}], "id": 1}')
    assert isinstance(request, Subscribe)
    assert [(i.channel, i.pattern, i.last) for i in request.items] == [
        ("orders.*", True, None), ("*", True, None), ("users", False, 10),
    ]
    assert parse_request('{"unsubscribe": ["orders.*"]}') == Unsubscribe(("orders.*",), None)
    ack = orjson.loads(encode_ack(1, {"orders.*": SubscribeResult(Position(0, ""), None, pattern=True)}))
    assert ack["channels"] == {"orders.*": {"pattern": True}}


@pytest.mark.parametrize(
    "frame",
    [
        '{"subscribe": [{"channel": "orders.*", "since": 1}]}',
        '{"subscribe": [{"channel": "orders.*", "last": 1}]}',
        '{"subscribe": [{"channel": "a", "last": 0}]}',
        '{"subscribe": [{"channel": "a", "last": 1, "since": 1}]}',
        '{"subscribe": ["orders.?"]}',
        '{"subscribe": ["or ders.*"]}',
    ],
)
def test_bad_patterns_and_last(frame: str) -> None:
    with pytest.raises((ProtocolError, InvalidChannel)):
        parse_request(frame)


def test_patterns_are_not_channels_for_publishing() -> None:
    with pytest.raises(InvalidChannel):
        parse_publish({"channel": "orders.*", "event": "e"})


def test_auth_and_publish_requests() -> None:
    auth = parse_request('{"auth": {"token": "abc.def.ghi"}, "id": 1}')
    assert isinstance(auth, Auth) and auth.token == "abc.def.ghi" and auth.id == 1
    assert "abc" not in repr(auth)
    publish = parse_request('{"publish": {"channel": "chat", "event": "said", "payload": {"t": 1}}, "id": "p"}')
    assert isinstance(publish, Publish) and publish.id == "p"
    assert (publish.request.channel, publish.request.event, publish.request.payload) == ("chat", "said", {"t": 1})


def test_publish_ack() -> None:
    message = Message("chat", "said", None, seq=3, epoch="e", id="m1", ts=5)
    assert orjson.loads(encode_publish_ack(9, message)) == {
        "type": "ack", "id": 9, "publish": {"channel": "chat", "seq": 3, "epoch": "e", "id": "m1", "ts": 5}
    }


def test_a_request_id_longer_than_the_limit_is_refused_and_not_echoed() -> None:
    with pytest.raises(ProtocolError, match="the request id must have at most 128 characters") as info:
        parse_request(orjson.dumps({"id": "x" * 129, "subscribe": ["orders"]}))
    assert info.value.code == "invalid_request"
    assert info.value.request_id is None
    assert parse_request(orjson.dumps({"id": "x" * 128, "subscribe": ["orders"]})).id == "x" * 128


@pytest.mark.parametrize("epoch", ["", "e" * 65, 7])
def test_a_subscribe_epoch_must_be_a_short_string(epoch: object) -> None:
    frame = orjson.dumps({"id": 2, "subscribe": [{"channel": "orders", "since": 1, "epoch": epoch}]})
    with pytest.raises(ProtocolError, match='"epoch" must be a string of 1 to 64 characters') as info:
        parse_request(frame)
    assert (info.value.code, info.value.request_id) == ("invalid_request", 2)


@pytest.mark.parametrize("auth", ['"abc.def.ghi"', "null", '{"token": "t", "extra": 1}', "{}"])
def test_auth_must_be_an_object_with_only_a_token(auth: str) -> None:
    with pytest.raises(ProtocolError, match='"auth" must be an object') as info:
        parse_request(f'{{"id": 3, "auth": {auth}}}')
    assert (info.value.code, info.value.request_id) == ("invalid_request", 3)


@pytest.mark.parametrize("message_id", ["", "m" * 129, 42])
def test_a_publish_message_id_must_be_a_short_string(message_id: object) -> None:
    with pytest.raises(ProtocolError, match='"id" must be a string of 1 to 128 characters') as info:
        parse_publish({"channel": "orders", "event": "created", "id": message_id})
    assert info.value.code == "invalid_request"
    assert parse_publish({"channel": "orders", "event": "created", "id": "m" * 128}).id == "m" * 128


def test_an_event_whose_payload_is_not_json_serializable_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload, match="the payload is not JSON-serializable") as info:
        encode_event(_message(payload={1, 2}))
    assert info.value.code == "invalid_payload"


@pytest.mark.parametrize(
    "text",
    [
        '{"channel": "a", "channel": "b"}',
        '{"channel":"a","event":"e","payload":{"k":1,"k" :2}}',
        '[{"a": 1}, {"b": {"c": "12:30", "c": "13:30"}}]',
        '{"a": {"x": 1, "y": 2}, "a": 3}',
        '{"caf\\u00e9": 1, "café": 2}',
        '{"a": 1, "a": 2, "x": "\\u003a"}',  # an escaped colon makes up for the pair the repeat took
        '{"a": "x:y", "a": {"b": "1:2"}}',
    ],
)
def test_an_object_that_repeats_a_key_is_refused(text: str) -> None:
    for data in (text, text.encode()):
        with pytest.raises(ProtocolError) as info:
            parse_json(data, what="the body")
        assert info.value.code == "invalid_json"
        assert info.value.message.startswith("the body repeats the key ")
        assert info.value.message.endswith(" in one object: a JSON object must not repeat a key")


@pytest.mark.parametrize(
    "text",
    [
        '{"channel": "users:42", "event": "e", "payload": {"at": "12:30", "url": "https://x"}}',  # colons in strings
        '{"a": {"k": 1}, "b": {"k": 1}, "k": [{"k": 2}]}',  # the same key in different objects
        '{"a:b": 1, "a": 2}',
        '{"url": "https://x", "time": "12:30:00", "k": ":::"}',
        '{"escaped": "\\u003a", "a": "b:c"}',
        '[1, "x", null, []]',
        "{}",
        '"a:b"',
    ],
)
def test_keys_repeated_only_across_objects_or_colons_in_strings_are_fine(text: str) -> None:
    assert parse_json(text) == orjson.loads(text)
    assert parse_json(text.encode()) == orjson.loads(text)


def test_a_long_repeated_key_is_shown_cut() -> None:
    key = "k" * 100
    with pytest.raises(ProtocolError, match=f"the frame repeats the key '{'k' * 40}…' in one object"):
        parse_json(f'{{"{key}": 1, "{key}": 2}}')


def test_text_deeper_than_orjson_encodes_is_checked_all_the_same() -> None:
    deep = "[" * 300 + '{"a": "b:c"}' + "]" * 300  # orjson parses 1,024 levels but encodes 254
    assert parse_json(deep) == orjson.loads(deep)
    with pytest.raises(ProtocolError, match="repeats the key 'a'"):
        parse_json("[" * 300 + '{"a": 1, "a": 2}' + "]" * 300)


def test_text_too_deep_to_check_is_refused_rather_than_crashing() -> None:
    text = "[" * 1000 + '{"a": "b:c"}' + "]" * 1000  # orjson takes 1,024 levels; the check needs recursion
    with pytest.raises(ProtocolError) as info:
        parse_json(text)
    assert info.value.code == "invalid_json" and "too deeply" in info.value.message


def test_invalid_json_names_what_was_read() -> None:
    with pytest.raises(ProtocolError, match=r"^the body is not valid JSON: ") as info:
        parse_json(b"{", what="the body")
    assert info.value.code == "invalid_json"


def test_text_that_is_not_utf8_closes_with_1007_which_is_not_worth_a_retry() -> None:
    assert CloseCode.INVALID_DATA == 1007
    assert not should_reconnect(CloseCode.INVALID_DATA)
