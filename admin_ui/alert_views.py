"""Alert instances, their events and deliveries as the console's templates show them: the
severity and state as badges, the value against its threshold in the rule's unit as the
notifications write them (`12.5 % above 5 %`), times in UTC and how long an alert lasted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from admin_ui.page_views import TimeView, WorkspaceLabel, time_view
from telemetry.alerts.evaluation import metric_title, shown, span
from telemetry.alerts.notification import format_number
from telemetry.alerts.rule import AlertRule

SEVERITY_TONES: Final = {"critical": "error", "warning": "warning"}
STATE_TONES: Final = {
    "firing": "error",
    "pending": "warning",
    "resolved": "ok",
    "inactive": "neutral",
}
COMPARISONS: Final = {"above": "above", "below": "below", "change_pct": "beyond"}


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: str
    rule_id: str
    rule_name: str
    workspace_id: str
    workspace: str
    severity: str
    severity_tone: str
    state: str
    state_tone: str
    labels: list[tuple[str, str]]
    value: str
    threshold: str
    comparison: str
    started: TimeView | None
    fired: TimeView | None
    resolved: TimeView | None
    lasted: str
    acknowledged_by: str | None
    acknowledged: TimeView | None

    @property
    def open(self) -> bool:
        return self.state in ("pending", "firing")


def lasted(start: datetime, end: datetime | None, now: datetime) -> str:
    """How long from `start` to `end` (or to now): `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    seconds = max(int(((end or now) - start).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def value_text(rule: AlertRule | None, value: float | None) -> str:
    """A value of the rule in its unit, as its notifications write it (`n/a`: none)."""
    if rule is None:
        return format_number(value)
    number, unit = shown(rule, value)
    return format_number(number, unit)


def alert_row(
    row: Mapping[str, Any],
    rules: Mapping[str, AlertRule],
    workspaces: Mapping[str, WorkspaceLabel],
    now: datetime | None = None,
) -> AlertRow:
    rule = rules.get(row["rule_id"])
    label = workspaces.get(row["workspace_id"])
    started: datetime = row["started_at"]
    return AlertRow(
        id=row["instance_id"],
        rule_id=row["rule_id"],
        rule_name=rule.name if rule else row["rule_id"],
        workspace_id=row["workspace_id"],
        workspace=label.slug if label else row["workspace_id"],
        severity=row["severity"],
        severity_tone=SEVERITY_TONES.get(row["severity"], "neutral"),
        state=row["state"],
        state_tone=STATE_TONES.get(row["state"], "neutral"),
        labels=sorted(dict(row["labels"]).items()),
        value=value_text(rule, row["value"]),
        threshold=value_text(rule, row["threshold"]),
        comparison=COMPARISONS[rule.condition] if rule else "against",
        started=time_view(started),
        fired=time_view(row["fired_at"]),
        resolved=time_view(row["resolved_at"]),
        lasted=lasted(started, row["resolved_at"], now or datetime.now(UTC)),
        acknowledged_by=row["acknowledged_by"],
        acknowledged=time_view(row["acknowledged_at"]),
    )


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What the detail page says of the rule behind an alert."""

    name: str
    metric: str
    condition: str
    window: str
    hold: str
    warning: str | None
    critical: str | None
    muted: bool


def rule_facts(rule: AlertRule) -> RuleFacts:
    def threshold(value: float | None) -> str | None:
        if value is None:
            return None
        number, unit = shown(rule, value)
        text = format_number(number, unit)
        return f"{'+' if rule.condition == 'change_pct' and value > 0 else ''}{text}"

    return RuleFacts(
        name=rule.name,
        metric=metric_title(rule),
        condition={"above": "above", "below": "below", "change_pct": "change in percent"}[
            rule.condition
        ],
        window=span(rule.window_s),
        hold=span(rule.for_s) if rule.for_s else "fires at once",
        warning=threshold(rule.warning),
        critical=threshold(rule.critical),
        muted=rule.muted,
    )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an alert's timeline: a state change or acknowledgement, or a delivery."""

    kind: str
    """`event` or `delivery`."""
    at: TimeView | None
    sort_key: tuple[datetime, str]
    title: str
    tone: str
    note: str | None = None
    value: str | None = None
    channel: str | None = None
    channel_id: str | None = None
    channel_kind: str | None = None
    status: str | None = None
    attempts: int | None = None
    reply: str | None = None
    error: str | None = None
    duration_ms: float | None = None


def event_entry(event: Mapping[str, Any], rule: AlertRule | None) -> TimelineEntry:
    from_state, to_state = event["from_state"], event["to_state"]
    note = event["note"]
    if from_state == to_state:
        title = (note or "noted").capitalize()
        note = None
    elif from_state == "inactive":
        title = f"Opened as {to_state}"
    else:
        title = f"{from_state.capitalize()} → {to_state}"
    return TimelineEntry(
        kind="event",
        at=time_view(event["at"]),
        sort_key=(event["at"], event["event_id"]),
        title=title,
        tone=STATE_TONES.get(to_state, "neutral"),
        note=note,
        value=None if event["value"] is None else value_text(rule, event["value"]),
    )


def delivery_entry(
    delivery: Mapping[str, Any], channels: Mapping[str, tuple[str, str]]
) -> TimelineEntry:
    """`channels`: the name and kind of each channel id still stored."""
    name, kind = channels.get(delivery["channel_id"], ("", ""))
    reply = delivery["smtp_reply"]
    if delivery["http_status"] is not None:
        reply = f"HTTP {delivery['http_status']}"
    return TimelineEntry(
        kind="delivery",
        at=time_view(delivery["at"]),
        sort_key=(delivery["at"], delivery["delivery_id"]),
        title=f"{delivery['event'].capitalize()} notification {delivery['status']}",
        tone="ok" if delivery["status"] == "sent" else "error",
        channel=name or "deleted channel",
        channel_id=delivery["channel_id"] if name else None,
        channel_kind=kind or None,
        status=delivery["status"],
        attempts=delivery["attempts"],
        reply=reply,
        error=delivery["error"],
        duration_ms=delivery["duration_ms"],
    )
