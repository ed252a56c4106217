"""Exit statuses of the ``broadcast`` command, and which error gives which, defined once.

Every command turns its errors into an exit status here (:func:`status_for`),
so that scripts can tell "the server is down" from "the server said no":

====  ================  ==========================================================
code  name              when
====  ================  ==========================================================
0     OK                success; also Ctrl-C or SIGTERM ending ``serve``,
                        ``subscribe`` or ``tail``, which run until stopped
1     ERROR             anything else: a 5xx, a backend error, an I/O error
2     USAGE             bad arguments, options or input (invalid JSON, a bad
                        channel name, a file that cannot be read)
3     CANNOT_CONNECT    the server (or Redis) could not be reached
4     REFUSED           the server refused the request or the connection: an HTTP
                        4xx, an error frame answering a subscribe, a connection
                        token that is not valid or expired, an Origin not allowed
5     TIMEOUT           the server did not answer in time, or ``--count`` events
                        did not arrive within ``--timeout``
6     CANNOT_RESUME     ``subscribe --since``: the server cannot replay from that
                        position (its history was reset, the messages left it, or
                        the seq is ahead of the channel); refetch, then resume from
                        the position the message gives
130   INTERRUPTED       Ctrl-C stopped an operation before it completed
====  ================  ==========================================================

"Cannot connect" (3) is worth retrying later, unchanged; "refused" (4) is not:
something must change first (the token, the URL's path, the request).
"""

from __future__ import annotations

import enum

from ..exceptions import (
    BackendUnavailable,
    CannotResume,
    ConfigurationError,
    ConnectError,
    ConnectionRejected,
    InvalidRequest,
    ServerError,
)

__all__ = ["EXIT_STATUS_HELP", "ExitStatus", "status_for"]


class ExitStatus(enum.IntEnum):
    """What ``broadcast`` exits with."""

    OK = 0
    """Success."""
    ERROR = 1
    """A runtime error, e.g. a backend error or a 5xx answer."""
    USAGE = 2
    """Bad arguments, options or input."""
    CANNOT_CONNECT = 3
    """The server or the backend could not be reached."""
    REFUSED = 4
    """The server refused the request or the connection (a 4xx, an error frame, a token it does not take)."""
    TIMEOUT = 5
    """Nothing (or not enough) came back in time."""
    CANNOT_RESUME = 6
    """``subscribe --since``: the server cannot replay from that position; refetch, then resume."""
    INTERRUPTED = 130
    """Ctrl-C stopped an operation before it completed (128 + SIGINT)."""


EXIT_STATUS_HELP = (
    "Exit status: 0 ok, 1 error, 2 usage or bad input, 3 cannot connect,\n"
    "4 refused by the server (4xx, bad token), 5 timeout, 6 cannot resume from\n"
    "--since, 130 interrupted."
)
"""The exit statuses in one line, as shown at the end of every command's ``--help``."""


def status_for(exc: BaseException) -> ExitStatus:
    """The exit status for an error that ended a command.

    The order matters: the most specific classes come first (a
    :class:`~broadcast_cli.client.http.PublishRefused` is a
    :class:`~broadcast_cli.exceptions.ServerError`, a 5xx is not a refusal).
    """
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    from ..client.http import PublishRefused  # here, so that commands that never publish never load httpx

    if isinstance(exc, PublishRefused):
        return ExitStatus.REFUSED if 400 <= exc.status < 500 else ExitStatus.ERROR
    if isinstance(exc, (ServerError, ConnectionRejected)):
        return ExitStatus.REFUSED
    if isinstance(exc, CannotResume):
        return ExitStatus.CANNOT_RESUME
    if isinstance(exc, (ConnectError, BackendUnavailable)):
        return ExitStatus.CANNOT_CONNECT
    if isinstance(exc, TimeoutError):
        return ExitStatus.TIMEOUT
    if isinstance(exc, (InvalidRequest, ConfigurationError)):
        return ExitStatus.USAGE
    return ExitStatus.ERROR
