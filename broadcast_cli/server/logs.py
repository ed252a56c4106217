"""Keep the server's logs safe to keep: no credentials, and no flood that a client can cause.

Libraries log what they see — the websockets library, at debug level, the whole
handshake request, whose URL may carry ``?token=``. :class:`RedactSecrets`
rewrites such records before any handler writes them.

A client that breaks the protocol gets a close code; the server notes it in one
line, through a :class:`RateLimitedLog`, so that clients cannot make the server
write as much as they like.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from ..auth.rate import TokenBucket

__all__ = ["RateLimitedLog", "RedactSecrets", "install_redaction", "redact"]

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


class RateLimitedLog:
    """Writes lines to *logger* at *level*, at most *burst* at once and *rate* per second on average.

    For what clients do wrong: anyone who reaches the port can send a bad frame
    per connection, as fast as they can connect. The lines beyond the bound are
    counted, not written, and the next line written says how many were left out.
    The clock may be replaced (tests).
    """

    __slots__ = ("bucket", "level", "logger", "omitted")

    def __init__(
        self,
        logger: logging.Logger,
        *,
        level: int = logging.INFO,
        rate: float = 0.2,
        burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.level = level
        self.bucket = TokenBucket(rate, burst, clock=clock)
        """The bound: *burst* lines at once, *rate* per second on average."""
        self.omitted = 0
        """Lines left out since the last one written."""

    def log(self, message: str, *args: object) -> bool:
        """Write ``message % args`` if the bound allows it, else count it; say whether it was written."""
        if not self.bucket.take():
            self.omitted += 1
            return False
        if self.omitted:
            message += " (%d more such lines were left out before this one)"
            args = (*args, self.omitted)
            self.omitted = 0
        self.logger.log(self.level, message, *args)
        return True
