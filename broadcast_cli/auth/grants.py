"""Which channels a credential grants: names and ``*`` patterns, checked without I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..exceptions import ConfigurationError, InvalidChannel
from ..message import is_pattern, pattern_matcher, validate_channel, validate_pattern

__all__ = ["Grant"]


@dataclass(frozen=True, slots=True)
class Grant:
    """A set of channel names and patterns (``orders``, ``users.*``, ``*``).

    :meth:`allows` answers for a channel, and for a pattern subscription: a
    pattern is allowed only when a granted pattern covers every channel it can
    match (``users.*`` covers ``users.eu.*``; ``users.*`` does not cover ``*``).
    """

    entries: tuple[str, ...] = ()
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        patterns: list[re.Pattern[str]] = []
        for entry in self.entries:
            try:
                if is_pattern(entry):
                    patterns.append(pattern_matcher(validate_pattern(entry)))
                else:
                    names.add(validate_channel(entry))
            except InvalidChannel as exc:
                raise ConfigurationError(f"cannot grant {entry!r}: {exc}") from None
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_patterns", tuple(patterns))

    @classmethod
    def of(cls, entries: Iterable[str]) -> Grant:
        """A grant of *entries*, in order, without repeats."""
        return cls(tuple(dict.fromkeys(entries)))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def allows(self, name: str) -> bool:
        """Whether *name* (a channel, or a pattern to subscribe to) is granted.

        A granted pattern covers a subscribed pattern when it matches the
        subscribed pattern's text with its ``*`` taken literally: every channel
        the subscribed pattern can match then matches the granted one too.
        """
        if name in self._names:
            return True
        return any(pattern.fullmatch(name) for pattern in self._patterns)
