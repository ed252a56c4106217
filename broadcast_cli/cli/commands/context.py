"""``broadcast context add|use|ls|show|rm``: save a server's URL, token and API key under a name.

Like ``nats context``: once a context is selected, ``publish``, ``subscribe``,
``tail`` and ``bench`` take from it what the command line and the environment
leave unsaid (see :mod:`..contexts`), so ``--url`` is not typed each time.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ...exceptions import ConfigurationError
from ...urls import REDACTED, parse_server_url
from .. import contexts
from ..contexts import Context, Contexts
from ..errors import InputError, exits_on_error
from ..help import Command, Group
from ..options import FormatOption, selected_context
from ..output import Format, Output, conceal
from ..status import EXIT_STATUS_HELP

__all__ = ["EPILOG", "context_app"]

EPILOG = f"""\
Examples:

  broadcast context add local --url http://127.0.0.1:8000 --use

  broadcast context add prod --url https://rt.example.com --token "$TOKEN" --api-key - < key.txt

  broadcast context use prod

  broadcast --context local tail

  broadcast context ls

Every command that talks to a server takes, from the selected context, what
neither an option nor an environment variable gives: option > variable >
context > default. A context is selected by broadcast --context NAME, else
BROADCAST_CONTEXT, else broadcast context use NAME. The contexts are saved in
$XDG_CONFIG_HOME/broadcast-cli/contexts.json (~/.config by default), readable
by you only; ls and show never print a token or an API key.

{EXIT_STATUS_HELP}
"""

context_app = typer.Typer(
    name="context",
    help="Save servers under a name (URL, token, API key) and choose the one commands use.",
    epilog=EPILOG,
    no_args_is_help=True,
    cls=Group,
)


def _read_secret(value: str | None, what: str, stdin_taken: list[str]) -> str | None:
    """*value*, or a line of stdin when it is ``-`` (a secret that stays out of the shell's history)."""
    if value != "-":
        return value or None
    if stdin_taken:
        raise InputError(f"only one of --token and --api-key can be read from stdin (-), not {what} too")
    stdin_taken.append(what)
    line = sys.stdin.readline().strip()
    if not line:
        raise InputError(f"{what} -: stdin held no line to read it from")
    return line


def _rows(saved: Contexts, selected: str | None) -> list[dict[str, Any]]:
    return [
        {**context.to_dict(secrets=REDACTED), "current": name == selected}
        for name, context in sorted(saved.contexts.items())
    ]


def _selected_name(ctx: typer.Context) -> str | None:
    context = selected_context(ctx)
    return None if context is None else context.name


@context_app.command("add", epilog=EPILOG, cls=Command)
@exits_on_error
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The context's name, e.g. prod.", show_default=False)],
    *,
    url: Annotated[
        str | None,
        typer.Option("--url", "-u", metavar="URL", help="The server's URL, as --url takes it.", show_default=False),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", metavar="TOKEN", help="The connection token (- reads it from stdin).", show_default=False
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", metavar="KEY", help="The API key for publishing (- reads it from stdin).",
                     show_default=False),
    ] = None,
    description: Annotated[
        str | None, typer.Option(metavar="TEXT", help="A note shown by ls.", show_default=False)
    ] = None,
    use: Annotated[bool, typer.Option("--use", help="Select it, as broadcast context use NAME does.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace a context of that name.")] = False,
) -> None:
    """Save a context: a server's URL, and the token and API key for it."""
    contexts.validate_name(name)
    stdin_taken: list[str] = []
    token = _read_secret(token, "--token", stdin_taken)
    api_key = _read_secret(api_key, "--api-key", stdin_taken)
    conceal(token, api_key)
    if url is None and token is None and api_key is None:
        raise InputError("a context holds something: give --url, --token and/or --api-key")
    if url is not None:
        parse_server_url(url)  # a URL no command could use is refused now, not at each use
    saved = contexts.load()
    if name in saved.contexts and not force:
        raise InputError(f"there is already a context named {name!r}: --force replaces it")
    saved = saved.with_context(Context(name, url=url, token=token, api_key=api_key, description=description))
    if use:
        saved = saved.using(name)
    path = contexts.save(saved)
    Output().status(f"saved context {name!r} in {path}" + ("; it is in use" if use else ""))


@context_app.command("use", epilog=EPILOG, cls=Command)
@exits_on_error
def use(
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="The context commands use from now on.", show_default=False),
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="Use no context: the options, variables and defaults.")] = False,
) -> None:
    """Choose the context every command uses (BROADCAST_CONTEXT and --context win over it)."""
    if (name is None) == (not none):
        raise InputError("give a context's NAME, or --none")
    saved = contexts.load()
    contexts.save(saved.using(name))
    Output().status(f"using context {name!r}" if name is not None else "using no context")


@context_app.command("ls", epilog=EPILOG, cls=Command)
@exits_on_error
def ls(ctx: typer.Context, output_format: FormatOption = Format.AUTO) -> None:
    """List the saved contexts (one JSON object per line when piped), tokens and API keys masked."""
    saved = contexts.load()
    output = Output(output_format)
    if not saved.contexts:
        output.status("no contexts yet: broadcast context add NAME --url URL")
        return
    try:
        selected = _selected_name(ctx)
    except ConfigurationError:
        selected = None  # --context names no saved context: list them all the same
    output.contexts(_rows(saved, selected))


@context_app.command("show", epilog=EPILOG, cls=Command)
@exits_on_error
def show(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="The context to show; default: the one in use.", show_default=False),
    ] = None,
    output_format: FormatOption = Format.AUTO,
) -> None:
    """Show a context (the one in use by default), its token and API key masked."""
    saved = contexts.load()
    if name is None:
        name = _selected_name(ctx)
        if name is None:
            raise InputError("no context is in use: name one (broadcast context show NAME), or broadcast context use")
    context = saved.get(name)
    Output(output_format).record({**context.to_dict(secrets=REDACTED), "current": name == _selected_name(ctx)})


@context_app.command("rm", epilog=EPILOG, cls=Command)
@exits_on_error
def rm(name: Annotated[str, typer.Argument(metavar="NAME", help="The context to remove.", show_default=False)]) -> None:
    """Remove a saved context."""
    saved = contexts.load()
    contexts.save(saved.without(name))
    Output().status(f"removed context {name!r}")
