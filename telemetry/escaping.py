"""Characters a database cannot store, escaped the same way on every backend.

Postgres `text` cannot hold U+0000 and `jsonb` cannot hold the JSON escape `\\u0000`; no driver
can encode a lone surrogate (U+D800 to U+DFFF) as UTF-8. A client can put either in much of
what it sends (a prompt, `user`, metadata, a model name, a URL path), and one such value would
cost the whole record. Each one is replaced by its JSON escape written out as plain text: U+0000
becomes the six characters `\\u0000`, a lone surrogate such as U+D83D becomes `\\ud83d`. Every
other character, a backslash included, is kept as it is, so stored text that is not escaped
never changes. Text that held the six characters `\\u0000` itself reads the same as an escaped
NUL: the mark on the trace (`traces.escaped`) says whether anything was escaped.

SQLite could store a NUL, but values are escaped there too, so both backends store the same.

Settings (a key's name, tags and metadata, a rule) are refused instead (`find_unstorable`):
escaped, a tag or a pattern would mean something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec

from telemetry.records import TraceBundle

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# How msgspec writes a NUL inside a JSON string. Searched for from the end: `rfind` skips on the
# rare backslash, `find` on the zeros ids and numbers are full of, several times slower.
_ENCODED_NUL = b"\\u0000"
_encoder = msgspec.json.Encoder()
_S = TypeVar("_S", bound=msgspec.Struct)


def has_unstorable(text: str) -> bool:
    """Whether `text` holds a NUL or a lone surrogate; cheap enough for the request path."""
    return "\x00" in text or (not text.isascii() and _UNSTORABLE.search(text) is not None)


def _escape_match(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_text(text: str) -> str:
    """`text` with every NUL and lone surrogate written as its `\\uXXXX` escape."""
    if not has_unstorable(text):
        return text
    return _UNSTORABLE.sub(_escape_match, text)


def may_need_escaping(value: Any) -> bool:
    """A cheap check (one msgspec encode, in C): False when `value` (a string, JSON value or
    msgspec struct) holds nothing to escape. True may be a false alarm (text that holds the six
    characters `\\u0000`), which costs `escape_value` a walk and nothing else."""
    try:
        return _encoder.encode(value).rfind(_ENCODED_NUL) != -1
    except UnicodeEncodeError:  # a lone surrogate
        return True
    except (TypeError, ValueError, OverflowError, RecursionError):
        return True  # not plain JSON: the walk looks at what it can


def escape_value(value: Any) -> Any:
    """`value` with every string in it escaped, object keys included; the very same object when
    nothing needed it, so a caller can tell by identity."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, dict):
        changed = False
        escaped = {}
        for key, item in value.items():
            new_key, new_item = escape_value(key), escape_value(item)
            changed = changed or new_key is not key or new_item is not item
            escaped[new_key] = new_item
        return escaped if changed else value
    if isinstance(value, list | tuple):
        items = [escape_value(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def _escape_record(record: _S) -> _S:
    changes = {}
    for name in record.__struct_fields__:
        value = getattr(record, name)
        escaped = escape_value(value)
        if escaped is not value:
            changes[name] = escaped
    return msgspec.structs.replace(record, **changes) if changes else record


def _escape_records(records: list[_S]) -> list[_S]:
    escaped = [_escape_record(record) for record in records]
    return (
        records if all(new is old for new, old in zip(escaped, records, strict=True)) else escaped
    )


def escape_bundle(bundle: TraceBundle) -> TraceBundle:
    """The bundle with every text and JSON value escaped and its trace marked `escaped`; the
    same bundle when nothing in it needs escaping, or when a value is nested too deep to walk
    (the database refuses such a bundle in any case)."""
    if not may_need_escaping(bundle):
        return bundle
    try:
        escaped = TraceBundle(
            trace=_escape_record(bundle.trace),
            spans=_escape_records(bundle.spans),
            decisions=_escape_records(bundle.decisions),
            interactions=_escape_records(bundle.interactions),
            violations=_escape_records(bundle.violations),
            for_evaluation=bundle.for_evaluation,
        )
    except RecursionError:
        return bundle
    if all(
        getattr(escaped, name) is getattr(bundle, name) for name in TraceBundle.__struct_fields__
    ):
        return bundle
    escaped.trace = msgspec.structs.replace(escaped.trace, escaped=True)
    return escaped


def escape_bundles(bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
    """`escape_bundle` of each: what the writer stores."""
    return [escape_bundle(bundle) for bundle in bundles]


# --- where a value is refused instead (settings whose meaning escaping would change) ---------

UNSTORABLE_PROBLEM = "must not contain NUL (U+0000) or a lone surrogate (U+D800 to U+DFFF)"
"""Why `find_unstorable`'s find is refused, where a value is refused rather than escaped (a
key's or rule's settings, whose meaning escaping would change)."""


def find_unstorable(value: Any, path: str) -> str | None:
    """The path (`metadata.tags[2]`) of the first string in a JSON value that holds a character
    to escape; an object key's own path is its object's. None when there is none. Iterative,
    so a value nested however deep cannot exhaust the stack."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if has_unstorable(item):
                return where
        elif isinstance(item, dict):
            if any(isinstance(key, str) and has_unstorable(key) for key in item):
                return where
            children = [
                (child, f"{where}.{key}" if where else str(key)) for key, child in item.items()
            ]
            pending.extend(reversed(children))
        elif isinstance(item, list | tuple):
            pending.extend(reversed([(child, f"{where}[{n}]") for n, child in enumerate(item)]))
    return None
