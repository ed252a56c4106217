"""Named contexts: a server's URL, connection token and API key saved under a name, as ``nats context`` does.

``broadcast context add prod --url https://rt.example.com --token … --api-key …``
saves one; ``broadcast context use prod`` selects it, and from then on every
command that talks to a server (``publish``, ``subscribe``, ``tail``, ``bench``)
takes what the command line and the environment leave unsaid from it::

    explicit option  >  environment variable  >  selected context  >  default

A context is selected by ``--context NAME`` (``broadcast --context prod tail``),
else by ``BROADCAST_CONTEXT``, else by ``broadcast context use``.

The contexts live in one JSON file, :func:`contexts_path`
(``$XDG_CONFIG_HOME/broadcast-cli/contexts.json``, ``~/.config/…`` by default),
readable by its owner only (mode 0600), since it holds secrets::

    {"current": "prod",
     "contexts": {"prod": {"url": "https://rt.example.com", "token": "eyJ…", "api_key": "…"}}}

Reading and writing it are :func:`load` and :func:`save`; everything else here
(:func:`parse`, :func:`dump`, :func:`select`, :func:`choose`) is pure, so that it
can be tested without files.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from ..exceptions import ConfigurationError

__all__ = [
    "CONTEXT_VARIABLE",
    "FILE_NAME",
    "NAME_RULE",
    "Context",
    "Contexts",
    "Origin",
    "choose",
    "contexts_path",
    "dump",
    "load",
    "parse",
    "save",
    "select",
    "validate_name",
]

CONTEXT_VARIABLE = "BROADCAST_CONTEXT"
"""The environment variable that selects a context (``--context`` wins over it)."""

FILE_NAME = "contexts.json"
"""The file holding the contexts, in :func:`contexts_path`'s directory."""

NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
"""What a context's name may be, in words."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FIELDS = ("url", "token", "api_key", "description")


class Origin(enum.IntEnum):
    """Where a value comes from, the strongest first: the order in which sources win."""

    OPTION = 0
    """Given on the command line."""
    ENVIRONMENT = 1
    """From an environment variable."""
    CONTEXT = 2
    """From the selected context."""
    DEFAULT = 3
    """The built-in default."""


@dataclass(frozen=True, slots=True)
class Context:
    """One saved context: where a server is and the credentials for it (each may be missing)."""

    name: str
    url: str | None = None
    """The server's URL, any form ``--url`` takes."""
    token: str | None = None
    """The connection token ``subscribe``, ``tail`` and ``bench`` present."""
    api_key: str | None = None
    """The API key ``publish`` and ``bench`` send."""
    description: str | None = None
    """A note for whoever reads ``broadcast context ls``."""

    def to_dict(self, *, secrets: str | None = None) -> dict[str, Any]:
        """The context as JSON fields; *secrets* (e.g. ``"***"``) stands for the token and API key when given."""
        data: dict[str, Any] = {"name": self.name, "url": self.url}
        for name in ("token", "api_key"):
            value = getattr(self, name)
            data[name] = value if secrets is None or value is None else secrets
        data["description"] = self.description
        return data


@dataclass(frozen=True, slots=True)
class Contexts:
    """Every saved context, by name, and the one ``broadcast context use`` selected."""

    contexts: Mapping[str, Context] = field(default_factory=dict)
    current: str | None = None

    def get(self, name: str) -> Context:
        """The context *name*; :class:`ConfigurationError` naming the known ones if there is none."""
        context = self.contexts.get(name)
        if context is None:
            known = ", ".join(sorted(self.contexts)) or "none yet"
            raise ConfigurationError(
                f"no context named {name!r} (contexts: {known}); save one with: broadcast context add {name} --url URL"
            )
        return context

    def with_context(self, context: Context) -> Contexts:
        """These contexts with *context* added, or replacing the one of the same name."""
        return replace(self, contexts={**self.contexts, context.name: context})

    def without(self, name: str) -> Contexts:
        """These contexts without *name* (unselected if it was the current one)."""
        self.get(name)
        rest = {key: value for key, value in self.contexts.items() if key != name}
        return Contexts(rest, None if self.current == name else self.current)

    def using(self, name: str | None) -> Contexts:
        """These contexts with *name* selected (``None``: none)."""
        if name is not None:
            self.get(name)
        return replace(self, current=name)


def validate_name(name: str) -> str:
    """*name* if it can name a context (:data:`NAME_RULE`), else :class:`ConfigurationError`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(f"invalid context name {name!r}: {NAME_RULE}")
    return name


def parse(text: str, source: str = FILE_NAME) -> Contexts:
    """The contexts in *text*, the JSON of a contexts file; *source* names it in errors."""
    if not text.strip():
        return Contexts()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{source} is not valid JSON ({exc}): fix it, or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts", {}), dict):
        raise ConfigurationError(f'{source} must hold a JSON object with "contexts": {{"NAME": {{"url": …}}}}')
    contexts: dict[str, Context] = {}
    for name, fields in data.get("contexts", {}).items():
        validate_name(name)
        if not isinstance(fields, dict):
            raise ConfigurationError(f"{source}: context {name!r} must be a JSON object")
        values: dict[str, str | None] = {}
        for key in _FIELDS:
            value = fields.get(key)
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{source}: {key!r} of context {name!r} must be a string")
            values[key] = value or None
        contexts[name] = Context(name, **values)
    current = data.get("current")
    if current is not None and (not isinstance(current, str) or current not in contexts):
        current = None  # a context removed by hand: nothing selected rather than an error on every command
    return Contexts(contexts, current)


def dump(contexts: Contexts) -> str:
    """The JSON text of a contexts file holding *contexts* (indented, for a person who opens it)."""
    data = {
        "current": contexts.current,
        "contexts": {
            name: {key: value for key in _FIELDS if (value := getattr(context, key)) is not None}
            for name, context in sorted(contexts.contexts.items())
        },
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"


def select(contexts: Contexts, explicit: str | None) -> Context | None:
    """The context in use: *explicit* (``--context`` or ``BROADCAST_CONTEXT``), else the current one, else none."""
    if explicit:
        return contexts.get(explicit)
    if contexts.current is not None:
        return contexts.contexts.get(contexts.current)
    return None


def choose(*candidates: tuple[str | None, Origin]) -> tuple[str | None, Origin]:
    """The value that wins among *candidates* ``(value, origin)``: the strongest origin that gives one.

    Between two candidates of the same origin, the first given wins (e.g.
    ``--token`` over a token in ``--url``'s query). ``(None, DEFAULT)`` if none.
    """
    given = [(value, origin) for value, origin in candidates if value]
    if not given:
        return None, Origin.DEFAULT
    return min(given, key=lambda candidate: candidate[1])


def contexts_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the contexts are saved: ``$XDG_CONFIG_HOME/broadcast-cli/contexts.json`` (``~/.config`` by default)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "broadcast-cli" / FILE_NAME


def load(path: Path | None = None) -> Contexts:
    """The contexts saved at *path* (:func:`contexts_path` by default); none if there is no such file."""
    path = contexts_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Contexts()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the contexts in {str(path)!r}: {exc}") from None
    return parse(text, str(path))


def save(contexts: Contexts, path: Path | None = None) -> Path:
    """Write *contexts* to *path* (:func:`contexts_path` by default), readable by its owner only; return the path.

    The file is replaced at once (written aside, then renamed), so that a reader
    never sees half of it, and it is created with mode 0600 (its directory 0700):
    it holds tokens and API keys.
    """
    path = contexts_path() if path is None else path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(dump(contexts))
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigurationError(f"cannot save the contexts in {str(path)!r}: {exc.strerror or exc}") from None
    return path
