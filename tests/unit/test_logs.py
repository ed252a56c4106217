"""Credentials are redacted from log records."""

from __future__ import annotations

import logging

from broadcast_cli.server.logs import RedactSecrets, redact


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
