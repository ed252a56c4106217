"""How ``broadcast --help`` and usage errors read: for a person on a terminal, plain text when piped.

Typer shows an option's Python type as its metavar (``--channel <list[str]>``,
``--version <bool>``) and draws boxes even into a pipe. Every command and group
of the ``broadcast`` app is built from :class:`Command` and :class:`Group`
(``cls=`` in :mod:`.app`), which fix that in one place, for every command:

* a flag shows no metavar; an option without one shows its name in capitals
  (``--channel CHANNEL``, ``--redis-url REDIS_URL``), a number ``INTEGER`` or
  ``FLOAT``, a path ``FILE``, a choice ``[auto|pretty|json]``; an argument shows ``CHANNEL``, in
  brackets only when it is optional (click's convention; a command whose
  arguments depend on its options gives its usage line, :func:`command_class`);
* help goes through rich (boxes, colours) only when stdout is a terminal, and
  usage errors only when stderr is one; otherwise they are click's plain text,
  the epilog as written (its examples are never rewrapped, so they can be
  copied).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from typing import Any, ClassVar, TextIO

from typer.core import MarkupMode, TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["Command", "Group", "command_class", "metavar_for"]

_DONE = "_broadcast_metavar"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def metavar_for(param: TyperOption | TyperArgument) -> str:
    """The metavar *param* shows when it declares none: nothing for a flag, else what its value is."""
    if isinstance(param, TyperOption) and (param.is_flag or param.count):
        return ""
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return "[" + "|".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices or ()) + "]"
    annotation = descriptor.annotation
    if descriptor.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "FLOAT"
    if descriptor.is_path:
        return "FILE"
    return (param.name or "value").upper()


class _Argument(TyperArgument):
    """An argument shown by its metavar alone (no ``<str>``), in brackets only when it is optional."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required and not name.startswith("["):
            name = f"[{name}]"
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name


def _humanize(params: Sequence[Any]) -> None:
    for param in params:
        if getattr(param, _DONE, False) or not isinstance(param, (TyperOption, TyperArgument)):
            continue
        setattr(param, _DONE, True)
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = metavar_for(param)
        else:
            if param.metavar is None:
                param.metavar = metavar_for(param)
            if type(param) is TyperArgument:
                param.__class__ = _Argument  # the same object, shown differently


class _Help:
    """What :class:`Command` and :class:`Group` share: metavars for people, rich help on a terminal only."""

    rich_markup_mode: MarkupMode

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        _humanize(params)
        return params

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        """The epilog line by line, as written (click would rewrap each paragraph, examples included)."""
        epilog = getattr(self, "epilog", None)
        if not epilog:
            return
        formatter.write_paragraph()
        indent = " " * (formatter.current_indent + 2)
        lines = inspect.cleandoc(epilog).splitlines()
        formatter.write("".join(f"{indent}{line}\n" if line else "\n" for line in lines))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        configured = self.rich_markup_mode
        self.rich_markup_mode = getattr(self, "_configured_markup", configured) if _isatty(sys.stdout) else None
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            self.rich_markup_mode = configured


class Command(_Help, TyperCommand):
    """A ``broadcast`` command; see the module's docstring. :attr:`usage` replaces its usage line's arguments."""

    usage: ClassVar[str | None] = None
    """The usage line after the command's name, when the arguments alone would mislead (``None``: derived)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        if self.usage is not None:
            self.get_params(ctx)
            return [self.usage]
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return pieces


def command_class(usage: str) -> type[Command]:
    """A :class:`Command` whose usage line reads *usage* (e.g. ``[OPTIONS] CHANNEL EVENT [PAYLOAD]``)."""
    return type("Command", (Command,), {"usage": usage})


class Group(_Help, TyperGroup):
    """The ``broadcast`` command (and its groups): see the module's docstring."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; its usage errors are drawn by rich only when stderr is a terminal."""
        configured = self.rich_markup_mode
        self._configured_markup = configured
        self.rich_markup_mode = configured if _isatty(sys.stderr) else None
        try:
            return super().main(*args, **kwargs)
        finally:
            self.rich_markup_mode = configured
