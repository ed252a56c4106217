"""Message templates for ``broadcast publish --count``: ``{{count}}``, ``{{uuid}}``, ``{{iso}}``…

A template is text with placeholders in double braces. Each message of a run
fills them with its own values:

==========================  ==================================================
placeholder                 becomes
==========================  ==================================================
``{{count}}``               1, 2, … N: the message's number
``{{index}}``               0, 1, … N-1
``{{random}}``              a random number from 0 up to (not including) 1
``{{random(MIN,MAX)}}``     a random integer from MIN to MAX, both included
``{{timestamp}}``           milliseconds since the Unix epoch (as a message's ``ts``)
``{{unix}}``                seconds since the Unix epoch
``{{iso}}``                 UTC date and time, ISO 8601: ``2026-11-24T09:30:00.125Z``
``{{uuid}}``                a random UUID (version 4), different in every message
==========================  ==================================================

Spaces inside the braces are allowed (``{{ random(1, 6) }}``). The time
placeholders of one message give the same instant; ``{{random}}`` and
``{{uuid}}`` draw a new value wherever they appear. Text in double quotes is
written as it is: ``{{"{{"}}`` gives ``{{`` (as in Go's templates).

A payload template stays JSON whatever the values: inside a JSON string a value
is written as string content (``"order-{{uuid}}"``), outside one as a JSON
value, a string value quoted (``{"id": {{uuid}}}`` gives ``{"id": "…"}``).
A placeholder that is not one of the above, or ``{{`` that opens no placeholder,
is an error when the template is read, before anything is sent.

Pure: the caller passes the clock reading and the random generator.
"""

from __future__ import annotations

import enum
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ..exceptions import InvalidRequest

__all__ = ["PLACEHOLDERS", "Template", "Values", "format_uuid"]

PLACEHOLDERS = (
    "{{count}}",
    "{{index}}",
    "{{random}}",
    "{{random(MIN,MAX)}}",
    "{{timestamp}}",
    "{{unix}}",
    "{{iso}}",
    "{{uuid}}",
)
"""Every placeholder, as the help and the errors list them."""

_KNOWN = ", ".join(PLACEHOLDERS)
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^()]*)\))?\s*\}\}")
_LITERAL_RE = re.compile(r'\{\{\s*"([^"]*)"\s*\}\}')
_INTEGER_RE = re.compile(r"\s*([+-]?[0-9]{1,18})\s*")


@dataclass(frozen=True, slots=True)
class Values:
    """What one message's placeholders are filled from."""

    index: int
    """The message's position in the run, from 0."""
    time_ns: int
    """The message's instant, in nanoseconds since the Unix epoch (``time.time_ns()``)."""
    rng: random.Random
    """Where ``{{random}}`` and ``{{uuid}}`` draw from."""


def format_uuid(bits: int) -> str:
    """The version 4 UUID (RFC 9562, section 5.4) made of 128 random *bits*, in its usual 8-4-4-4-12 form."""
    bits &= ~(0xF000 << 64)
    bits |= 0x4000 << 64  # version 4
    bits &= ~(0xC000 << 48)
    bits |= 0x8000 << 48  # variant 10xx
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _iso(time_ns: int) -> str:
    seconds, rest = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


_Fill = Callable[[Values], "int | float | str"]

_FILLS: dict[str, _Fill] = {
    "count": lambda values: values.index + 1,
    "index": lambda values: values.index,
    "random": lambda values: values.rng.random(),
    "timestamp": lambda values: values.time_ns // 1_000_000,
    "unix": lambda values: values.time_ns // 1_000_000_000,
    "iso": lambda values: _iso(values.time_ns),
    "uuid": lambda values: format_uuid(values.rng.getrandbits(128)),
}


class _Where(enum.Enum):
    """Where a placeholder stands, which decides how its value is written."""

    TEXT = "text"
    """In a channel or event name: the value as text."""
    JSON_STRING = "string"
    """Inside a JSON string: the value as string content."""
    JSON_VALUE = "value"
    """In JSON, outside strings: the value as a JSON value (strings quoted)."""


@dataclass(frozen=True, slots=True)
class _Placeholder:
    fill: _Fill
    where: _Where

    def render(self, values: Values) -> str:
        value = self.fill(values)
        if isinstance(value, str) and self.where is not _Where.TEXT:
            quoted = orjson.dumps(value).decode()
            return quoted if self.where is _Where.JSON_VALUE else quoted[1:-1]
        return str(value)


def _constant(text: str) -> _Fill:
    return lambda values: text


def _random_between(argument: str, shown: str, what: str) -> _Fill:
    bounds = argument.split(",")
    matches = [_INTEGER_RE.fullmatch(bound) for bound in bounds]
    if len(bounds) != 2 or matches[0] is None or matches[1] is None:
        raise InvalidRequest(
            f"{shown} in {what} needs two integers, e.g. {{{{random(1,100)}}}}", code="invalid_template"
        )
    low, high = int(matches[0].group(1)), int(matches[1].group(1))
    if low > high:
        raise InvalidRequest(f"{shown} in {what}: MIN is above MAX", code="invalid_template")
    return lambda values: values.rng.randint(low, high)


def _placeholder(match: re.Match[str], where: _Where, what: str) -> _Placeholder:
    name, argument = match.group(1), match.group(2)
    shown = match.group(0)
    if name == "random" and argument is not None:
        return _Placeholder(_random_between(argument, shown, what), where)
    fill = _FILLS.get(name)
    if fill is None:
        raise InvalidRequest(
            f"unknown placeholder {shown} in {what}: the placeholders are {_KNOWN}", code="invalid_template"
        )
    if argument is not None:
        raise InvalidRequest(f"{shown} in {what}: {{{{{name}}}}} takes no arguments", code="invalid_template")
    return _Placeholder(fill, where)


def _string_state(text: str, start: int, end: int, inside: bool) -> bool:
    """Whether JSON *text* is inside a string at *end*, having been *inside* at *start*."""
    position = start
    while True:
        quote = text.find('"', position, end)
        if quote < 0:
            return inside
        if inside:
            backslashes = 0
            while quote - backslashes - 1 >= start and text[quote - backslashes - 1] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                inside = False
        else:
            inside = True
        position = quote + 1


class Template:
    """A channel, event or payload with placeholders, read once and filled for each message.

    :meth:`text` reads a channel or event name, :meth:`json` a payload's JSON
    text. Both raise :class:`~broadcast_cli.exceptions.InvalidRequest` (code
    ``invalid_template``) naming the placeholder that is wrong and *what* holds it.
    """

    __slots__ = ("_parts", "source")

    def __init__(self, source: str, parts: list[str | _Placeholder]) -> None:
        self.source = source
        """The template as given."""
        self._parts = parts

    @classmethod
    def text(cls, source: str, what: str = "the text") -> Template:
        """A template of plain text: values are written as they are."""
        return cls._read(source, what, json=False)

    @classmethod
    def json(cls, source: str, what: str = "the payload") -> Template:
        """A template of JSON text: values are written so that the result stays JSON."""
        return cls._read(source, what, json=True)

    @classmethod
    def _read(cls, source: str, what: str, *, json: bool) -> Template:
        parts: list[str | _Placeholder] = []
        position = 0
        in_string = False
        while (opening := source.find("{{", position)) >= 0:
            literal = _LITERAL_RE.match(source, opening)
            match = literal or _PLACEHOLDER_RE.match(source, opening)
            if match is None:
                shown = source[opening : opening + 30]
                raise InvalidRequest(
                    f"{what} has {{{{ that opens no placeholder at character {opening + 1} ({shown!r}); "
                    f"the placeholders are {_KNOWN}",
                    code="invalid_template",
                )
            where = _Where.TEXT
            if json:
                in_string = _string_state(source, position, opening, in_string)
                where = _Where.JSON_STRING if in_string else _Where.JSON_VALUE
            if opening > position:
                parts.append(source[position:opening])
            if literal is not None:
                parts.append(_Placeholder(_constant(literal.group(1)), where))
            else:
                parts.append(_placeholder(match, where, what))
            position = match.end()
        if position < len(source):
            parts.append(source[position:])
        return cls(source, parts)

    @property
    def fixed(self) -> bool:
        """Whether the template has no placeholder (every message gets :attr:`source`)."""
        return all(isinstance(part, str) for part in self._parts)

    def render(self, values: Values) -> str:
        """The template filled with one message's *values*."""
        return "".join(part if isinstance(part, str) else part.render(values) for part in self._parts)
