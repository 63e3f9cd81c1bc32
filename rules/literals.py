"""Literal text every match of a pattern must contain, read from the pattern's source.

A rule's regex runs on every request. RE2 gives up the GIL for each search, and while the
recorder's SQLite thread is busy, getting it back costs the event loop tens of microseconds a
search (a search itself takes under one). A text without the literals a pattern needs cannot
match it, and that is checked with `in`, under the GIL.

Only a simple, common subset of the syntax is read: literal characters and escaped punctuation
at the top level, ended by anything else (a class, `.`, an anchor, `\\d`), the last of them
dropped by a quantifier; a group that is an alternation of plain literals requires one of them.
Anything outside the subset (top-level `|`, flags that apply to the rest of the pattern,
escapes such as `\\x{41}`, `\\pL` or `\\Q`, POSIX classes) requires nothing: the pattern is then
always searched. Missing a literal only costs a search; requiring one a match may lack would
be wrong, so every doubt resolves to requiring less.
"""

from __future__ import annotations

import re
import string
from typing import Final

Required = tuple[tuple[str, ...], ...]
"""Each entry: the text must contain at least one of its strings."""

_LITERAL_ESCAPES: Final = frozenset(string.punctuation)
_ATOM_ESCAPES: Final = frozenset("dDwWsSbBAz")
_PLAIN: Final = re.compile(r"[^\\.^$*+?()\[\]{}|]+")
_REPEAT: Final = re.compile(r"\{\d+(?:,\d*)?\}")
_GROUP_OPENING: Final = re.compile(r"\((?:\?(?::|P?<\w+>))?")
_QUANTIFIERS: Final = frozenset("*+?{")
_MOST_CHECKED: Final = 3


class _Outside(Exception):
    """The pattern uses syntax this reader does not follow."""


def required_literals(source: str) -> Required:
    """What a text must contain to match `source` (a case-sensitive RE2 pattern); `()` when
    nothing is known to be required."""
    if "[:" in source:
        return ()
    try:
        required = _Reader(source).read()
    except _Outside:
        return ()
    # The most telling few: each more is another `in` for a text that has the others.
    ranked = sorted(dict.fromkeys(required), key=lambda options: -min(map(len, options)))
    return tuple(ranked[:_MOST_CHECKED])


def may_match(required: Required, text: str) -> bool:
    """False when `text` lacks what a match needs; True when it may match."""
    for options in required:
        for literal in options:
            if literal in text:
                break
        else:
            return False
    return True


class _Reader:
    __slots__ = ("position", "required", "run", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.position = 0
        self.run: list[str] = []
        self.required: list[tuple[str, ...]] = []

    def read(self) -> Required:
        source = self.source
        while self.position < len(source):
            char = source[self.position]
            if char == "\\":
                self._escape()
            elif char == "(":
                self._group()
            elif char == "[":
                self._end_run()
                self.position = _class_end(source, self.position + 1)
            elif char in _QUANTIFIERS:
                self._quantifier(char)
            elif char in "|)":
                raise _Outside
            elif char in ".^$]}":
                self._end_run()
                self.position += 1
            else:
                self.run.append(char)
                self.position += 1
        self._end_run()
        return tuple(self.required)

    def _end_run(self) -> None:
        if self.run:
            self.required.append(("".join(self.run),))
            self.run.clear()

    def _escape(self) -> None:
        following = self.source[self.position + 1 : self.position + 2]
        if following in _ATOM_ESCAPES:
            self._end_run()
        elif following and following in _LITERAL_ESCAPES:
            self.run.append(following)
        else:
            raise _Outside
        self.position += 2

    def _quantifier(self, char: str) -> None:
        if self.run:
            self.run.pop()  # the repeated character may be absent
        self._end_run()
        repeat = _REPEAT.match(self.source, self.position) if char == "{" else None
        self.position = repeat.end() if repeat is not None else self.position + 1

    def _group(self) -> None:
        self._end_run()
        source = self.source
        opening = _GROUP_OPENING.match(source, self.position)
        assert opening is not None  # `(` alone matches
        if source.startswith("(?", self.position) and opening.end() == self.position + 1:
            # Flags: `(?i)` changes the rest of the pattern, `(?i:...)` its group only.
            close = source.find(")", self.position)
            colon = source.find(":", self.position)
            if close < 0 or colon < 0 or close < colon:
                raise _Outside
            self.position = _group_end(source, colon + 1)
            return
        end = _group_end(source, opening.end())
        body = source[opening.end() : end - 1]
        self.position = end
        if source[end : end + 1] in _QUANTIFIERS:
            return
        options = body.split("|")
        if all(option and _PLAIN.fullmatch(option) for option in options):
            self.required.append(tuple(options))


def _group_end(source: str, position: int) -> int:
    """The index just past the `)` closing a group whose body starts at `position`."""
    depth = 1
    while position < len(source):
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == "[":
            position = _class_end(source, position + 1)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    raise _Outside


def _class_end(source: str, position: int) -> int:
    """The index just past the `]` closing a class whose body starts at `position` (a `]`
    first in the class, or after `^`, is one of its members)."""
    if source.startswith("^", position):
        position += 1
    if source.startswith("]", position):
        position += 1
    while position < len(source):
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == "]":
            return position + 1
        position += 1
    raise _Outside
