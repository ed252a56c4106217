"""The Redis function library takes the protocol's rules from Python, and its file holds the same ones.

``redis_functions.lua`` is loaded by every server with :func:`function_library`,
which writes the rules of :mod:`broadcast_cli.message` and :mod:`broadcast_cli.protocol`
into it; an operator may also load the file as it is (docs/redis.md), which must
then give the same rules. (Against a real Redis: tests/integration/test_redis_functions.py.)
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from broadcast_cli.backends.redis import LIBRARY_VERSION, function_library, library_rules
from broadcast_cli.message import CHANNEL_RULE, EVENT_RULE, MAX_CHANNEL_LENGTH, MAX_EVENT_LENGTH
from broadcast_cli.protocol import DEFAULT_MAX_PAYLOAD_BYTES, MAX_ID_LENGTH


def source() -> str:
    return resources.files("broadcast_cli.backends").joinpath("redis_functions.lua").read_text(encoding="utf-8")


def test_the_rules_come_from_the_protocol() -> None:
    rules = library_rules()
    assert rules["VERSION"] == LIBRARY_VERSION
    assert rules["MAX_CHANNEL_LENGTH"] == MAX_CHANNEL_LENGTH
    assert rules["MAX_EVENT_LENGTH"] == MAX_EVENT_LENGTH
    assert rules["MAX_ID_LENGTH"] == MAX_ID_LENGTH
    assert rules["MAX_PAYLOAD_BYTES"] == DEFAULT_MAX_PAYLOAD_BYTES
    assert rules["CHANNEL_RULE"] == CHANNEL_RULE
    assert rules["EVENT_RULE"] == EVENT_RULE
    assert rules["NOT_A_NAME_CHARACTER"] == "[^A-Za-z0-9%_%-%.%:]"


def test_the_file_as_shipped_holds_the_same_rules() -> None:
    """Loading the file by hand (redis-cli FUNCTION LOAD) gives what a server loads."""
    assert function_library() == source()


def test_every_rule_is_written_over_its_line() -> None:
    lines = "\n".join(f"local {name} = 0 --[[broadcast:{name}]]" for name in library_rules())
    written = function_library(lines + "\nlocal OTHER = 1\n")
    assert "local VERSION = 2 --[[broadcast:VERSION]]" in written
    assert "local EVENT_RULE = '1 to 128 characters, each" in written
    assert r"local NOT_A_NAME_CHARACTER = '[^A-Za-z0-9%_%-%.%:]' --[[broadcast:NOT_A_NAME_CHARACTER]]" in written
    assert written.endswith("\nlocal OTHER = 1\n")


def test_a_file_without_a_line_for_a_rule_is_a_bug_said_at_once() -> None:
    without = re.sub(r"^local MAX_EVENT_LENGTH = .*$", "", source(), flags=re.MULTILINE)
    with pytest.raises(AssertionError, match="0 lines for the rule MAX_EVENT_LENGTH"):
        function_library(without)


def test_quotes_and_backslashes_in_a_rule_stay_a_lua_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "broadcast_cli.backends.redis.library_rules", lambda: {"EVENT_RULE": "it's a \\ rule"}
    )
    written = function_library("local EVENT_RULE = '' --[[broadcast:EVENT_RULE]]")
    assert written == r"local EVENT_RULE = 'it\'s a \\ rule' --[[broadcast:EVENT_RULE]]"
