"""Silences: label matchers in Alertmanager's style and the time range over which alerts whose
labels match all of them are not notified.

A matcher is `name=value`, `name!=value`, `name=~regex` or `name!~regex`. A regex matches the
whole value (it is anchored), and is checked when the silence is made. A label an alert does not
have counts as the empty value, as in Alertmanager, so `team!=ops` matches an alert without a
`team`. A silence needs at least one matcher that the empty value does not satisfy, so that no
silence can match every alert by accident.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

Op = Literal["=", "!=", "=~", "!~"]
OPS: Final[tuple[Op, ...]] = ("=", "!=", "=~", "!~")
MAX_MATCHERS: Final = 20
MAX_VALUE: Final = 1000
_LABEL: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
_WRITTEN: Final = re.compile(r"\s*([^=!~\s]+)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.S)
EXAMPLE: Final = "name=value, name!=value, name=~regex or name!~regex"


class SilenceError(ValueError):
    """A silence that cannot be made; `field` names what to change as the API writes it
    (`matchers[0]`, `ends_at`, `comment`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        found = labels.get(self.label, "")
        if self.op == "=":
            return found == self.value
        if self.op == "!=":
            return found != self.value
        hit = _anchored(self.value).fullmatch(found) is not None
        return hit if self.op == "=~" else not hit

    def text(self) -> str:
        return f"{self.label}{self.op}{self.value}"

    def data(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}


@functools.lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern})", re.S)


@dataclass(frozen=True, slots=True)
class Silence:
    silence_id: str
    workspace_id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)

    def state_at(self, now: datetime) -> Literal["pending", "active", "expired"]:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"


def parse_matcher(value: Any, field: str) -> Matcher:
    """A matcher from its text (`model=~gpt-4o.*`) or an object `{"label", "op", "value"}`."""
    label: Any
    op: Any
    text: Any
    if isinstance(value, str):
        found = _WRITTEN.fullmatch(value)
        if found is None:
            raise SilenceError(field, f"expected a label matcher: {EXAMPLE}")
        label, op, text = found[1], found[2], _unquoted(found[3])
    elif isinstance(value, dict):
        unknown = sorted(set(value) - {"label", "op", "value"})
        if unknown:
            raise SilenceError(f"{field}.{unknown[0]}", "unknown field (label, op, value)")
        label, op, text = value.get("label"), value.get("op", "="), value.get("value")
        if not isinstance(label, str):
            raise SilenceError(f"{field}.label", "a label name is required")
        if op not in OPS:
            raise SilenceError(f"{field}.op", f"must be one of {', '.join(OPS)}")
        if not isinstance(text, str):
            raise SilenceError(f"{field}.value", "must be text")
    else:
        raise SilenceError(field, f"expected a label matcher: {EXAMPLE}")
    return _checked(label, op, text, field)


def _unquoted(text: str) -> str:
    """`"a b"` as `a b`: Alertmanager's matchers may quote their value."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _checked(label: str, op: str, value: str, field: str) -> Matcher:
    if _LABEL.fullmatch(label) is None:
        raise SilenceError(
            field, f"'{label[:100]}' is not a label name (letters, digits, _ . -; up to 100)"
        )
    if len(value) > MAX_VALUE:
        raise SilenceError(field, f"the value is longer than {MAX_VALUE} characters")
    if op in ("=~", "!~"):
        try:
            _anchored(value)
        except re.error as error:
            raise SilenceError(field, f"not a regular expression: {error}") from None
    return Matcher(label, op, value)  # type: ignore[arg-type]


def parse_matchers(values: Any, field: str = "matchers") -> tuple[Matcher, ...]:
    """The matchers of a silence: a non-empty list, at most `MAX_MATCHERS`, one of which the
    empty value does not satisfy."""
    if not isinstance(values, list) or not values:
        raise SilenceError(field, f"at least one label matcher is required ({EXAMPLE})")
    if len(values) > MAX_MATCHERS:
        raise SilenceError(field, f"at most {MAX_MATCHERS} matchers")
    matchers = tuple(
        parse_matcher(value, f"{field}[{index}]") for index, value in enumerate(values)
    )
    if all(matcher.matches({}) for matcher in matchers):
        raise SilenceError(
            field, "every matcher also matches an alert without the label: name a value to match"
        )
    return matchers


def matchers_from_rows(rows: Sequence[Mapping[str, str]]) -> tuple[Matcher, ...]:
    return tuple(Matcher(row["label"], row["op"], row["value"]) for row in rows)  # type: ignore[arg-type]


def alert_labels(labels: Mapping[str, str], rule_name: str, severity: str | None) -> dict[str, str]:
    """The labels a silence is matched against: the alert's own, its rule's name as
    `alertname` and its `severity`."""
    found = {**labels, "alertname": rule_name}
    if severity is not None:
        found["severity"] = severity
    return found


def silencing(silences: Sequence[Silence], labels: Mapping[str, str]) -> Silence | None:
    """The silence that holds back an alert with these labels: of those that match, the one that
    ends last."""
    matching = [silence for silence in silences if silence.matches(labels)]
    return max(matching, key=lambda silence: silence.ends_at, default=None)
