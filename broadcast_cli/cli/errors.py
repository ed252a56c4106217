"""Where a command's errors become one line on stderr and an exit status.

:func:`exits_on_error` wraps every command once, in :mod:`.app`; commands raise
the library's exceptions (or :class:`InputError`) and never print tracebacks.
Set ``BROADCAST_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

from ..exceptions import BroadcastError
from .output import Output
from .status import ExitStatus, status_for

__all__ = ["InputError", "exits_on_error"]

P = ParamSpec("P")
R = TypeVar("R")


class InputError(BroadcastError):
    """Input the command cannot use: a file that cannot be read, options that exclude each other…

    Exits with :attr:`~.status.ExitStatus.USAGE`.
    """


def _silence_stdout() -> None:
    """After a broken pipe, send what is left to /dev/null so that closing stdout does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def exits_on_error(command: Callable[P, R]) -> Callable[P, R]:
    """Run *command*, turning its errors into one line on stderr and an :class:`ExitStatus`."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # typer.Exit, usage errors: click reports them itself
        except KeyboardInterrupt:
            Output().status("interrupted")
            raise typer.Exit(ExitStatus.INTERRUPTED) from None
        except BrokenPipeError:
            # The reader went away (``broadcast subscribe | head -3``): that is how a pipe ends.
            _silence_stdout()
            raise typer.Exit(ExitStatus.OK) from None
        except InputError as exc:
            Output().error(str(exc))
            raise typer.Exit(ExitStatus.USAGE) from None
        except BroadcastError as exc:
            Output().error(str(exc))
            raise typer.Exit(status_for(exc)) from None
        except TimeoutError as exc:
            Output().error(str(exc) or "timed out")
            raise typer.Exit(ExitStatus.TIMEOUT) from None
        except Exception as exc:
            if os.environ.get("BROADCAST_DEBUG"):
                raise
            Output().error(f"unexpected error: {exc!r} (BROADCAST_DEBUG=1 shows the traceback)")
            raise typer.Exit(ExitStatus.ERROR) from None

    return run
