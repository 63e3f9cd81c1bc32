"""One evaluation of one alert instance: from its open state and what the rule found for its
group, the next state, the event to record and the notification to send. Pure: no I/O, time
given.

    inactive --condition holds--> pending --held for `for`--> firing --clears--> resolved
                                     \\--clears--> inactive (never notified)

`for` 0 goes from inactive to firing at once. A firing instance notifies when it fires, when its
severity changes, every `renotify` while it keeps firing, when it was never notified (its rule
was muted or silenced when it fired, and is no longer), and when it resolves if the rule says so
and it was notified of firing. A muted rule goes through the same states and never notifies; so
does a silenced alert (`evaluation` holds its notifications back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from telemetry.alerts.conditions import Breach
from telemetry.alerts.notification import Severity
from telemetry.alerts.rule import AlertRule

OpenState = Literal["pending", "firing"]
NextState = Literal["pending", "firing", "resolved", "inactive"]
Verdict = Breach | Literal["ok", "keep"]
"""A breach; `ok` (the condition does not hold); `keep` (no data, and the rule keeps states)."""


@dataclass(frozen=True, slots=True)
class OpenInstance:
    instance_id: str
    state: OpenState
    severity: Severity
    started_at: datetime
    last_notified_at: datetime | None
    silenced_by: str | None = None
    """The silence that held it back at its last evaluation."""


@dataclass(frozen=True, slots=True)
class Step:
    state: NextState | None
    """None: no instance (none was open and none opens)."""
    event: tuple[str, str, str | None] | None = None
    """(from state, to state, note) when there is something to record."""
    notify: Literal["firing", "resolved"] | None = None
    severity: Severity | None = None
    threshold: float | None = None


def next_step(
    rule: AlertRule, current: OpenInstance | None, verdict: Verdict, now: datetime
) -> Step:
    step = _step(rule, current, verdict, now)
    if rule.muted and step.notify is not None:
        return Step(step.state, step.event, None, step.severity, step.threshold)
    return step


def _step(rule: AlertRule, current: OpenInstance | None, verdict: Verdict, now: datetime) -> Step:
    if verdict == "keep":
        return Step(None if current is None else current.state)
    if verdict == "ok":
        if current is None:
            return Step(None)
        if current.state == "pending":
            return Step("inactive", ("pending", "inactive", "cleared before firing"))
        notify = rule.notify_on_resolve and current.last_notified_at is not None
        return Step(
            "resolved",
            ("firing", "resolved", None),
            "resolved" if notify else None,
            current.severity,
        )
    severity, threshold = verdict
    if current is None:
        if rule.for_s == 0:
            return Step("firing", ("inactive", "firing", None), "firing", severity, threshold)
        return Step("pending", ("inactive", "pending", None), None, severity, threshold)
    if current.state == "pending":
        if now - current.started_at >= timedelta(seconds=rule.for_s):
            return Step("firing", ("pending", "firing", None), "firing", severity, threshold)
        return Step("pending", None, None, severity, threshold)
    if severity != current.severity:
        note = f"severity {current.severity} to {severity}"
        return Step("firing", ("firing", "firing", note), "firing", severity, threshold)
    if current.last_notified_at is None:
        return Step("firing", None, "firing", severity, threshold)
    due = current.last_notified_at + timedelta(seconds=rule.renotify_s)
    if rule.renotify_s and now >= due:
        return Step("firing", None, "firing", severity, threshold)
    return Step("firing", None, None, severity, threshold)
