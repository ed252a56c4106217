"""The message model and the naming rules."""

from __future__ import annotations

import pytest

from broadcast_cli.exceptions import InvalidChannel, InvalidEvent, InvalidRequest
from broadcast_cli.message import (
    CHANNEL_RULE,
    EVENT_RULE,
    NAME_PUNCTUATION,
    Message,
    validate_channel,
    validate_event,
)


@pytest.mark.parametrize("name", ["orders", "a", "users.42:profile", "A-Z_0-9", "x" * 128])
def test_valid_channel_names(name: str) -> None:
    assert validate_channel(name) == name


@pytest.mark.parametrize("name", ["", "x" * 129, "with space", "slash/es", "ünï", "star*", "{tag}", None, 3])
def test_invalid_channel_names_are_refused_with_the_rule(name: object) -> None:
    with pytest.raises(InvalidChannel) as info:
        validate_channel(name)
    assert info.value.code == "invalid_channel"
    if isinstance(name, str):
        assert "1 to 128 characters" in str(info.value)


@pytest.mark.parametrize("name", ["order.created", "created", "test_event", "v2:order-paid", "E", "x" * 128])
def test_valid_event_names(name: str) -> None:
    assert validate_event(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 129, "x" * 300, "bad name", "tab\there", "new\nline", "order/created", "ünï", "order.*", "{e}"]
)
def test_invalid_event_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event(name)
    assert info.value.code == "invalid_event"
    shown = repr(name) if len(name) <= 40 else f"{name[:40] + '…'!r} ({len(name)} characters)"  # escaped, cut
    assert str(info.value) == f"invalid event name {shown}: an event name is {EVENT_RULE}"


@pytest.mark.parametrize("value", [None, 3, b"created", ["created"]])
def test_an_event_name_is_a_string(value: object) -> None:
    with pytest.raises(InvalidEvent, match=f"an event name must be a string, not {type(value).__name__}"):
        validate_event(value)


def test_one_naming_rule_for_channels_and_events() -> None:
    assert EVENT_RULE == CHANNEL_RULE == "1 to 128 characters, each an ASCII letter, a digit or one of _ - . :"
    for code in range(256):
        character = chr(code)
        allowed = character.isascii() and (character.isalnum() or character in NAME_PUNCTUATION)
        for validate in (validate_channel, validate_event):
            try:
                validate(f"a{character}b")
            except InvalidRequest:
                assert not allowed, f"{character!r} is refused by {validate.__name__}"
            else:
                assert allowed, f"{character!r} is accepted by {validate.__name__}"


def test_text_is_decoded_once() -> None:
    message = Message("c", "e", None, 1, "e1", "id", 0, frame=b'{"x":1}')
    first = message.text()
    assert first == '{"x":1}'
    assert message.text() is first
