"""What changed between two versions of a rule, down to the changed value.

The store records which top-level keys changed (`when`, `then`...); a reader wants to see that
`when.all[1].model` went from "gpt-4o" to "gpt-4o-mini". Mappings are compared key by key and
lists item by item (items past the shorter list are added or removed), so each change names the
smallest value that differs, with the path the compiler's messages use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

Kind = Literal["added", "removed", "changed"]
SYMBOLS: Final[dict[str, str]] = {"added": "+", "removed": "-", "changed": "~"}
_MISSING: Any = object()


class Change(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    path: str
    before: Any = None
    after: Any = None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.kind]

    @property
    def before_text(self) -> str:
        return "" if self.kind == "added" else shown(self.before)

    @property
    def after_text(self) -> str:
        return "" if self.kind == "removed" else shown(self.after)


def shown(value: Any) -> str:
    """A value as compact JSON: strings quoted, so `"1"` and `1` read differently."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def rule_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[Change]:
    """Every change from `old` to `new` (None: no document), in the documents' key order."""
    changes: list[Change] = []
    _compare(_MISSING if old is None else old, _MISSING if new is None else new, "", changes)
    return changes


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _compare(before: Any, after: Any, path: str, changes: list[Change]) -> None:
    if before is _MISSING and after is _MISSING:
        return
    if before is _MISSING:
        if isinstance(after, Mapping) and after and not path:
            for key, value in after.items():
                _compare(_MISSING, value, _join(path, str(key)), changes)
            return
        changes.append(Change(kind="added", path=path, after=after))
        return
    if after is _MISSING:
        if isinstance(before, Mapping) and before and not path:
            for key, value in before.items():
                _compare(value, _MISSING, _join(path, str(key)), changes)
            return
        changes.append(Change(kind="removed", path=path, before=before))
        return
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*after, *(key for key in before if key not in after)]:
            _compare(
                before.get(key, _MISSING), after.get(key, _MISSING), _join(path, str(key)), changes
            )
        return
    if isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            _compare(
                before[index] if index < len(before) else _MISSING,
                after[index] if index < len(after) else _MISSING,
                f"{path}[{index}]",
                changes,
            )
        return
    if not _same(before, after):
        changes.append(Change(kind="changed", path=path, before=before, after=after))


def _same(before: Any, after: Any) -> bool:
    """Equal values of one JSON type: `1` and `1.0` are one number, `1` and `true` are not."""
    if isinstance(before, bool) or isinstance(after, bool):
        return type(before) is type(after) and before == after
    if isinstance(before, int | float) and isinstance(after, int | float):
        return before == after
    return type(before) is type(after) and before == after
