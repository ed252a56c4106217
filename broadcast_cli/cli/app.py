"""The ``broadcast`` command: one Typer app, one module per command.

Every command is registered here, wrapped once by
:func:`~.errors.exits_on_error`, which turns errors into an exit status.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .commands.bench import EPILOG as BENCH_EPILOG
from .commands.bench import bench
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
from .status import EXIT_STATUS_HELP

__all__ = ["app", "main"]

app = typer.Typer(
    name="broadcast",
    help="Real-time broadcast: run a server, publish and watch channels.",
    epilog=f"Example: broadcast serve, then broadcast tail in another terminal.\n\n{EXIT_STATUS_HELP}",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"broadcast-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Show the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Real-time broadcast: run a server, publish and watch channels."""


app.command(epilog=SERVE_EPILOG)(exits_on_error(serve))
app.command(epilog=PUBLISH_EPILOG)(exits_on_error(publish))
app.command(epilog=SUBSCRIBE_EPILOG)(exits_on_error(subscribe))
app.command(epilog=TAIL_EPILOG)(exits_on_error(tail))
app.command(epilog=BENCH_EPILOG)(exits_on_error(bench))
app.command(epilog=TOKEN_EPILOG)(exits_on_error(token))


def main() -> None:
    """Entry point of the ``broadcast`` console script."""
    app()
