"""Formatting without printing, and the Output's choice of pretty or NDJSON."""

from __future__ import annotations

import io

import orjson
import pytest

from broadcast_cli.cli.output import (
    Format,
    Output,
    compact_json,
    escape_control,
    format_clock,
    format_receipts,
    pretty_json,
)
from broadcast_cli.client.http import Receipt
from broadcast_cli.message import Message


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("a\nb\tc\r", "a\\u000ab\\u0009c\\u000d"),
        ("\x7f\x9b\u200b\u202e\u2066\ufeff", "\\u007f\\u009b\\u200b\\u202e\\u2066\\ufeff"),
    ],
)
def test_escape_control(text: str, escaped: str) -> None:
    assert escape_control(text) == escaped


def test_escaped_json_stays_valid_json() -> None:
    value = {"s": "\x1b]0;title\x07\u009b\u202e", "n": [1, None]}
    assert orjson.loads(compact_json(value)) == value
    assert orjson.loads(pretty_json(value)) == value
    assert "\n" not in compact_json(value) and pretty_json(value).count("\n") == 6


def test_format_clock_is_local_time_with_milliseconds() -> None:
    import time

    assert format_clock(1_764_000_000_123) == time.strftime("%H:%M:%S", time.localtime(1_764_000_000)) + ".123"


def test_format_receipts() -> None:
    one = Receipt("orders", 7, "e1", "id", 0)
    assert format_receipts([one]) == ["published orders seq 7 (epoch e1)"]
    many = [Receipt("a", 1, "e", "i", 0), Receipt("b", 5, "e", "i", 0), Receipt("a", 2, "e", "i", 0)]
    assert format_receipts(many) == ["published 3 messages", "  a  seq 1…2  (2 messages)", "  b  seq 5  (1 message)"]


def test_auto_is_pretty_on_a_terminal_only() -> None:
    assert Output(stdout=FakeTty()).pretty
    assert not Output(stdout=io.StringIO()).pretty
    assert Output(Format.PRETTY, stdout=io.StringIO()).pretty
    assert not Output(Format.JSON, stdout=FakeTty()).pretty


def test_events_are_printed_as_received_when_not_pretty() -> None:
    frame = b'{"channel":"c","event":"e","payload":{"b":1,"a":2},"seq":1,"epoch":"x","id":"i","ts":5}'
    message = Message("c", "e", {"b": 1, "a": 2}, 1, "x", "i", 5, frame=frame)
    stdout = io.StringIO()
    Output(stdout=stdout).event(message)
    assert stdout.getvalue() == frame.decode() + "\n"
    stdout = io.StringIO()
    Output(stdout=stdout).event(Message("c", "e", None, 2, "x", "i", 5, origin="me"))  # no frame: encoded
    assert orjson.loads(stdout.getvalue())["origin"] == "me"


def test_errors_and_status_go_to_stderr_as_one_line_each() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    output = Output(stdout=stdout, stderr=stderr)
    output.error("bad \x1b[2J thing")
    output.status("reconnecting")
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == "broadcast: bad \\u001b[2J thing\nbroadcast: reconnecting\n"


def test_concealed_secrets_never_reach_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    import broadcast_cli.cli.output as output_module

    monkeypatch.setattr(output_module, "_SECRETS", set())
    output_module.conceal("s3cret-api-key-value", None, "")
    stderr = io.StringIO()
    output = Output(stderr=stderr)
    output.error("the key s3cret-api-key-value was refused by http://u:pw@h/x?token=abc.def")
    output.status("Authorization: Bearer another-one")
    assert stderr.getvalue() == (
        "broadcast: the key *** was refused by http://u:***@h/x?token=***\n"
        "broadcast: Authorization: Bearer ***\n"
    )


def test_the_library_logs_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from broadcast_cli.cli.output import level_to_show, show_logs

    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    logger = logging.getLogger("broadcast_cli.client.client")
    try:
        show_logs(None)
        logger.warning("unseen")
        show_logs(level_to_show(verbose=1))
        logger.debug("unseen either")
        logger.info("connecting to ws://h/ws/broadcast?token=abc \x1b[2J")
        show_logs(level_to_show(name="debug"))
        show_logs(level_to_show(name="debug"))  # once: a second call replaces the handler
        logger.debug("details")
    finally:
        show_logs(None)
    assert stderr.getvalue() == (
        "broadcast: info: connecting to ws://h/ws/broadcast?token=*** \\u001b[2J\n"
        "broadcast: debug: details\n"
    )


@pytest.mark.parametrize(
    ("verbose", "name", "level"),
    [(0, None, None), (1, None, 20), (2, None, 10), (3, None, 10), (0, "warning", 30), (2, "error", 40),
     (0, "trace", 10), (0, "INFO", 20)],
)  # fmt: skip
def test_which_level_to_show(verbose: int, name: str | None, level: int | None) -> None:
    from broadcast_cli.cli.output import level_to_show

    assert level_to_show(verbose, name) == level


def test_the_library_never_prints_on_its_own() -> None:
    import logging

    handlers = logging.getLogger("broadcast_cli").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)
