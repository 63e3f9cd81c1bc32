"""Regular expressions written by users, compiled with RE2 so that none can stall a worker.

Python's `re` backtracks: `(a+)+$` over thirty `a`s followed by a `!` takes minutes, and a search
cannot be interrupted, so one rule or deny-list pattern would hold the event loop and with it
every tenant of the worker. RE2 answers a search in time linear in the text whatever the pattern,
and bounds the memory a pattern may compile to. The price is its dialect: no look-arounds and no
back-references (the features that need backtracking), ASCII-only `\\d`, `\\w`, `\\s` and `\\b`
(use `\\p{L}`, `\\p{N}` for other scripts), `$` only at the very end of the text unless `(?m)`,
`\\z` rather than `\\Z`. A pattern RE2 cannot take is refused when it is loaded, with the reason and,
for Python-only syntax, what to write instead.

Every user pattern goes through `compile_pattern`: rule conditions (`rules.conditions`, the
evaluator that `rules.codegen` generates), deny lists and model-name globs (`glob_pattern`) in
the gateway. The project's own fixed expressions stay on `re`; each is written so it cannot
backtrack without bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NamedTuple

import re2
from re2 import _re2

from rules.literals import Required, may_match, required_literals

MAX_PROGRAM_BYTES: Final = 1 << 20
"""The memory RE2 may use for one pattern, its compiled program and its search cache. A pattern
that needs more is refused (`[\\pL\\pN]{100}` does: a hundred copies of every letter and digit
of Unicode); this also bounds the time a pattern takes to compile, which happens on the event
loop when a rule is saved (under 0.1 s at this size, over a second at RE2's default of 8 MB). A
search whose cache fills up goes on in RE2's slower, still linear, mode."""

_UNANCHORED: Final = _re2.RE2.Anchor.UNANCHORED
_ANCHOR_BOTH: Final = _re2.RE2.Anchor.ANCHOR_BOTH
_NO_SPAN: Final = -1

# RE2's message starts → what a user of Python's `re` should know; first match wins.
_HINTS: Final = (
    ("invalid perl operator: (?=", "look-ahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "look-ahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "look-behind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "look-behind (?<!...) is not supported"),
    ("invalid perl operator: (?>", "atomic groups are not needed: RE2 never backtracks"),
    ("invalid perl operator: (?x", "verbose mode (?x) is not supported"),
    ("invalid perl operator: (?#", "comments (?#...) are not supported"),
    ("invalid perl operator: (?(", "conditional groups are not supported"),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("invalid escape sequence: \\u", "write \\x{00e9} for a code point"),
    ("invalid escape sequence: \\U", "write \\x{1f600} for a code point"),
    ("invalid escape sequence: \\N", "write \\x{00e9} for a code point"),
    ("bad repetition operator: ++", "possessive quantifiers are not needed: RE2 never backtracks"),
    ("bad repetition operator: *+", "possessive quantifiers are not needed: RE2 never backtracks"),
    ("bad repetition operator: ?+", "possessive quantifiers are not needed: RE2 never backtracks"),
    ("invalid repetition size", "counted repetitions go up to {1000}, nested ones multiplied"),
    ("pattern too large", "the pattern compiles to more than 1 MB; make it smaller"),
)
_BACKREFERENCE: Final = "invalid escape sequence: \\"


class PatternError(ValueError):
    """A pattern RE2 refuses. The message is meant for the user who wrote it."""


class Found(NamedTuple):
    """One match: character offsets in the text, and the byte spans of the pattern's groups as
    RE2 reports them (`(-1, -1)` for a group that took no part; index 0 is the whole match)."""

    start: int
    end: int
    groups: list[tuple[int, int]]

    def took_part(self, group: int) -> bool:
        return self.groups[group][0] != _NO_SPAN


class Pattern:
    """A compiled user pattern. `search` is the request path's call; `finditer` serves checks
    that need where each match is."""

    __slots__ = ("_match", "_required", "groups", "source")

    def __init__(self, source: str, regexp: _re2.RE2, required: Required = ()) -> None:
        self.source = source
        self.groups: int = regexp.NumberOfCapturingGroups()
        self._match = regexp.Match
        self._required = required
        """Literals a matching text contains (`rules.literals`): a text without them is not
        searched, which spares handing the GIL back and forth."""

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in `text` (Python's `re.search`)."""
        if not may_match(self._required, text):
            return False
        data = _encode(text)
        return self._match(_UNANCHORED, data, 0, len(data))[0][0] != _NO_SPAN

    def fullmatch(self, text: str) -> bool:
        if not may_match(self._required, text):
            return False
        data = _encode(text)
        return self._match(_ANCHOR_BOTH, data, 0, len(data))[0][0] != _NO_SPAN

    def finditer(self, text: str) -> Iterator[Found]:
        """Every non-overlapping match from left to right, as `re.finditer` finds them (an empty
        match moves the search one character on)."""
        if not may_match(self._required, text):
            return
        data = _encode(text)
        size = len(data)
        ascii_only = size == len(text)
        position = 0
        byte_mark = char_mark = 0  # a byte offset already converted, and its character offset
        while position <= size:
            spans = self._match(_UNANCHORED, data, position, size)
            start, end = spans[0]
            if start == _NO_SPAN:
                return
            if ascii_only:
                yield Found(start, end, spans)
            else:
                char_start = char_mark + _re2.BytesToCharLen(data, byte_mark, start)
                char_end = char_start + _re2.BytesToCharLen(data, start, end)
                byte_mark, char_mark = end, char_end
                yield Found(char_start, char_end, spans)
            if end == start:
                if end == size:
                    return
                position = end + _re2.CharLenToBytes(data, end, 1)
            else:
                position = end


def _encode(text: str) -> bytes:
    # `surrogatepass`: a lone surrogate (valid in a Python str, not in UTF-8) cannot match
    # anything a pattern names, and must not make the search raise.
    return text.encode("utf-8", "surrogatepass")


def _options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.log_errors = False  # RE2 would print each refusal to stderr; ours is in the message
    options.case_sensitive = not ignore_case
    return options


_CASE_SENSITIVE: Final = _options(ignore_case=False)
_IGNORE_CASE: Final = _options(ignore_case=True)


def compile_pattern(source: str, *, ignore_case: bool = False) -> Pattern:
    """`source` compiled by RE2, or `PatternError` saying why RE2 refuses it. `ignore_case`
    is the same as starting the pattern with `(?i)` (Unicode case folding)."""
    if not isinstance(source, str):
        raise PatternError("a regular expression is a string")
    regexp = _re2.RE2(_encode(source), _IGNORE_CASE if ignore_case else _CASE_SENSITIVE)
    if not regexp.ok():
        raise PatternError(_refusal(regexp.error(), source))
    return Pattern(source, regexp, () if ignore_case else required_literals(source))


def _refusal(error: str | bytes, source: str) -> str:
    reason = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
    hint = next((hint for start, hint in _HINTS if reason.startswith(start)), None)
    if hint is None and (
        (reason.startswith(_BACKREFERENCE) and reason[len(_BACKREFERENCE) :][:1].isdigit())
        or (reason == "invalid perl operator: (?P" and "(?P=" in source)
    ):
        hint = "back-references are not supported"
    return reason if hint is None else f"{reason} ({hint}; patterns use RE2 syntax)"


def glob_regex(glob: str) -> str:
    """The RE2 source matching the same names as the shell-style `glob` (`fnmatch`'s syntax:
    `*`, `?`, `[abc]`, `[!abc]`, `[a-z]`; anything else is literal), whole name only.

    `fnmatch.translate` writes look-aheads and back-references (to keep `re` from backtracking),
    which RE2 does not take; RE2 needs neither."""
    parts: list[str] = []
    index, length = 0, len(glob)
    while index < length:
        char = glob[index]
        index += 1
        if char == "*":
            if not parts or parts[-1] != ".*":
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[":
            closing = _class_end(glob, index)
            if closing < 0:
                parts.append(_literal("["))
            else:
                parts.append(_class_regex(glob[index:closing]))
                index = closing + 1
        else:
            parts.append(_literal(char))
    return "(?s:" + "".join(parts) + ")"


def _class_end(glob: str, index: int) -> int:
    """Where the class opened just before `index` closes, or -1: a `]` right after `[` or
    `[!` belongs to the class."""
    if index < len(glob) and glob[index] == "!":
        index += 1
    if index < len(glob) and glob[index] == "]":
        index += 1
    return glob.find("]", index)


def _class_regex(body: str) -> str:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    ranges: list[str] = []
    index = 0
    while index < len(body):
        low = body[index]
        if index + 2 < len(body) and body[index + 1] == "-":
            high = body[index + 2]
            index += 3
            if low <= high:  # fnmatch drops a reversed range: it matches nothing
                ranges.append(f"{_code_point(low)}-{_code_point(high)}")
        else:
            index += 1
            ranges.append(_code_point(low))
    if not ranges:
        return "(?s:.)" if negated else "[^\\x00-\\x{10ffff}]"
    return "[" + ("^" if negated else "") + "".join(ranges) + "]"


def _code_point(char: str) -> str:
    return f"\\x{{{ord(char):x}}}"


def _literal(char: str) -> str:
    return char if char.isalnum() or char in "-_" else _code_point(char)


def glob_pattern(globs: tuple[str, ...]) -> Pattern:
    """One pattern matching a whole name when any of `globs` does."""
    return compile_pattern("|".join(glob_regex(glob) for glob in globs))
