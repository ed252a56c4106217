"""Keep credentials out of the server's logs.

Libraries log what they see — the websockets library, at debug level, the whole
handshake request, whose URL may carry ``?token=``. :class:`RedactSecrets`
rewrites such records before any handler writes them.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "install_redaction", "redact"]

_SECRETS = re.compile(r"(?i)((?:[?&]|\b)token=|authorization:\s*bearer\s+|\"token\":\s*\")[^\s&\"',]+")


def redact(text: str) -> str:
    """*text* with connection tokens and bearer credentials replaced by ``***``."""
    return _SECRETS.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """A filter that redacts tokens and bearer credentials from every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_redaction(*names: str) -> None:
    """Add :class:`RedactSecrets` to every handler of the loggers *names* (and the root logger)."""
    for name in ("", *names):
        for handler in logging.getLogger(name or None).handlers:
            if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
                handler.addFilter(RedactSecrets())
