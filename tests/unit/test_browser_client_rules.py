"""The browser client checks names with the rule the server applies (one rule for channels and events)."""

from __future__ import annotations

import re

from broadcast_cli.exceptions import InvalidRequest
from broadcast_cli.message import validate_channel, validate_event
from broadcast_cli.static import client_asset


def browser_rule() -> re.Pattern[str]:
    """``NAME_RE`` of broadcast.js, which its ``isChannelName`` and ``isEventName`` test names with."""
    source = client_asset().body.decode()
    [literal] = re.findall(r"^const NAME_RE = /(.*)/$", source, flags=re.MULTILINE)
    # The literal means the same in Python, but for $, which in JavaScript matches only at the very end.
    assert literal.endswith("$") and literal.count("$") == 1
    return re.compile(literal[:-1] + r"\Z")


def accepts(validate: object, name: str) -> bool:
    try:
        validate(name)  # type: ignore[operator]
    except InvalidRequest:
        return False
    return True


def test_the_browser_and_the_server_accept_the_same_names() -> None:
    rule = browser_rule()
    names = [f"a{chr(code)}b" for code in range(256)] + ["x" * 128, "x" * 129, "", "é", "order.created", "order\n"]
    for name in names:
        browser = rule.search(name) is not None
        assert browser == accepts(validate_channel, name) == accepts(validate_event, name), repr(name)
