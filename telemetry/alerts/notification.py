"""One alert notification, as the alert evaluator hands it to the channels.

Everything a channel shows is already decided here: the summary is rendered from the rule's
template, the console URL is absolute. A channel only formats it for its medium.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

Severity = Literal["warning", "critical"]
State = Literal["firing", "resolved"]


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    rule_name: str
    severity: Severity
    state: State
    fingerprint: str
    """Stable id of the rule and the group's labels: the same alert instance across notifications
    (PagerDuty's `dedup_key`, the receivers' key for grouping a firing and its resolve)."""
    summary: str
    started_at: datetime
    workspace_id: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    ended_at: datetime | None = None
    console_url: str = ""
    test: bool = False
    """A channel's test action, not a real alert."""


def fingerprint_of(rule_id: str, labels: Mapping[str, str]) -> str:
    """The same rule and group labels give the same fingerprint, whatever the labels' order."""
    canonical = msgspec.json.encode([rule_id, sorted(labels.items())])
    return hashlib.sha256(canonical).hexdigest()[:32]


def format_number(value: float | None, unit: str = "") -> str:
    """A value as channels show it: whole numbers whole, others to 6 significant digits, then
    the unit."""
    if value is None:
        return "n/a"
    text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return f"{text} {unit}".rstrip()
