"""The ``broadcast`` command: one Typer app, one module per command.

Every command is registered here, wrapped once by
:func:`~.errors.exits_on_error`, which turns errors into an exit status, and
built from :mod:`.help`'s classes, which make ``--help`` read well. The options
of ``broadcast`` itself apply to every command: ``--context NAME`` (see
:mod:`.contexts`) and ``-v``/``--log-level``, which show the library's logs on
stderr (none by default: the command's own status lines say what matters).
"""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from .. import __version__
from .commands.bench import EPILOG as BENCH_EPILOG
from .commands.bench import bench
from .commands.context import context_app
from .commands.publish import EPILOG as PUBLISH_EPILOG
from .commands.publish import publish
from .commands.serve import EPILOG as SERVE_EPILOG
from .commands.serve import serve
from .commands.subscribe import EPILOG as SUBSCRIBE_EPILOG
from .commands.subscribe import subscribe
from .commands.tail import EPILOG as TAIL_EPILOG
from .commands.tail import tail
from .commands.token import EPILOG as TOKEN_EPILOG
from .commands.token import token
from .errors import exits_on_error
from .help import Command, Group, command_class
from .options import ContextOption
from .output import forget_concealed, level_to_show, show_logs
from .status import EXIT_STATUS_HELP

__all__ = ["LogLevel", "app", "main"]

app = typer.Typer(
    name="broadcast",
    help="Real-time broadcast: run a server, publish and watch channels.",
    epilog=(
        "Example: broadcast serve, then broadcast tail in another terminal.\n\n"
        "-v shows the library's logs (-vv debug); --context NAME uses a saved\n"
        "server (broadcast context ls).\n\n"
        f"{EXIT_STATUS_HELP}"
    ),
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    cls=Group,
)


class LogLevel(enum.StrEnum):
    """The levels of ``broadcast --log-level``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _version(value: bool) -> None:
    if value:
        print(f"broadcast-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
    context_name: ContextOption = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Show the library's logs on stderr: -v what it does (info), -vv everything (debug).",
            show_default=False,
        ),
    ] = 0,
    level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            help="Show the library's logs of this level and above (serve: the default of its own --log-level).",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Real-time broadcast: run a server, publish and watch channels."""
    forget_concealed()
    show_logs(level_to_show(verbose, None if level is None else level.value))


app.command(epilog=SERVE_EPILOG, cls=Command)(exits_on_error(serve))
app.command(epilog=PUBLISH_EPILOG, cls=command_class("[OPTIONS] (CHANNEL EVENT [PAYLOAD] | --ndjson)"))(
    exits_on_error(publish)
)
app.command(epilog=SUBSCRIBE_EPILOG, cls=Command)(exits_on_error(subscribe))
app.command(epilog=TAIL_EPILOG, cls=Command)(exits_on_error(tail))
app.command(epilog=BENCH_EPILOG, cls=Command)(exits_on_error(bench))
app.command(epilog=TOKEN_EPILOG, cls=Command)(exits_on_error(token))
app.add_typer(context_app, name="context", cls=Group)


def main() -> None:
    """Entry point of the ``broadcast`` console script."""
    app()
