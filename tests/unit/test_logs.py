"""Credentials are redacted from log records; lines about clients are rate-limited."""

from __future__ import annotations

import logging

import pytest

from broadcast_cli.server.logs import RateLimitedLog, RedactSecrets, redact


def test_tokens_and_bearer_credentials_are_redacted() -> None:
    assert redact("GET /ws/broadcast?token=abc.def.ghi HTTP/1.1") == "GET /ws/broadcast?token=*** HTTP/1.1"
    assert redact("GET /x?a=1&token=t0k&b=2") == "GET /x?a=1&token=***&b=2"
    assert redact("Authorization: Bearer s3cr3t-key") == "Authorization: Bearer ***"
    assert redact('{"auth": {"token": "eyJ.x.y"}}') == '{"auth": {"token": "***"}}'
    assert redact("nothing secret here: tokenizer=1") == "nothing secret here: tokenizer=1"


def test_the_filter_rewrites_the_record_with_its_arguments() -> None:
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "< %s", ("GET /?token=abc",), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "< GET /?token=***"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_beyond_the_bound_are_counted_and_the_next_line_says_how_many(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLog(logging.getLogger("test.clients"), rate=0.5, burst=3, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.clients"):
        written = [log.log("client %s broke the protocol", n) for n in range(10)]
        assert written == [True] * 3 + [False] * 7
        assert log.omitted == 7
        clock.now = 1.9  # not yet one more line's worth (0.5 per second)
        assert not log.log("client %s broke the protocol", 10)
        clock.now = 2.0
        assert log.log("client %s broke the protocol", 11)
        assert log.omitted == 0
        assert log.log("client %s broke the protocol", 12) is False
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "client 0 broke the protocol",
        "client 1 broke the protocol",
        "client 2 broke the protocol",
        "client 11 broke the protocol (8 more such lines were left out before this one)",
    ]
    assert {record.levelno for record in caplog.records} == {logging.INFO}


def test_the_level_is_chosen_by_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("test.quiet"), level=logging.DEBUG, clock=Clock())
    with caplog.at_level(logging.DEBUG, logger="test.quiet"):
        assert log.log("a line")
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [(logging.DEBUG, "a line")]
