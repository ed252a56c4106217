"""The message model and the naming rules."""

from __future__ import annotations

import pytest

from broadcast_cli.exceptions import InvalidChannel, InvalidEvent
from broadcast_cli.message import Message, validate_channel, validate_event


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


def test_event_names() -> None:
    assert validate_event("order.created") == "order.created"
    for bad in ("", "x" * 129, None):
        with pytest.raises(InvalidEvent):
            validate_event(bad)


def test_text_is_decoded_once() -> None:
    message = Message("c", "e", None, 1, "e1", "id", 0, frame=b'{"x":1}')
    first = message.text()
    assert first == '{"x":1}'
    assert message.text() is first
