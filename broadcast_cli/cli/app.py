"""The ``broadcast`` command: one Typer app, one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .commands.serve import serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="broadcast",
    help="Real-time broadcast: run a server, publish and watch channels.",
    no_args_is_help=True,
    add_completion=True,
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


app.command()(serve)


def main() -> None:
    """Entry point of the ``broadcast`` console script."""
    app()
