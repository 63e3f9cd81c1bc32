"""Evaluating one alert rule at a moment: measure each group, step each group's instance, record
the changes, and notify the rule's channels.

Each group of the window (or none, without `group_by`) is judged:

- no requests in the window (or no value to compare): the rule's `no_data` policy — `ok`,
  `alerting` (a breach at the rule's most severe threshold) or `keep` (nothing changes);
- fewer requests than `min_requests`: ok;
- else its value against the thresholds (`conditions.breach_of`).

For `change_pct` the value is the change in percent from the window before; a group that had
nothing in the window before has no change (ok), and one that had some but has nothing now has
fallen by 100 % (for counts, money and tokens; a rate of no requests is no data).

Groups with an open instance but absent from the window have no data. The state machine
(`state_machine.next_step`) decides each group's next state and notifications; the changes and
their events are written in one transaction before any notification is sent, and each
notification's deliveries after it, marking the instance notified: a firing whose sending was
cut off is sent again at the next evaluation (`state_machine`: never notified).

An alert whose labels, with `alertname` (the rule's name) and `severity`, match an active silence
of its workspace is stepped and recorded all the same, but not notified: the instance keeps the
silence's id (`silenced_by`) and its timeline notes when a silence begins and stops holding it
back. A firing never notified is sent at the first evaluation after the silence ends; a resolve
whose firing was never notified is not sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.conditions import Breach, breach_of, change_pct
from telemetry.alerts.delivery import DeliveryResult, deliver_all
from telemetry.alerts.gauge_metrics import GAUGES, GaugeSources
from telemetry.alerts.instance_store import Change, apply, open_instances, record_deliveries
from telemetry.alerts.notification import Notification, fingerprint_of, format_number
from telemetry.alerts.rule import ANOMALY_SCORE, AlertRule
from telemetry.alerts.rule_store import load_channels
from telemetry.alerts.score_rules import EVAL_SCORE
from telemetry.alerts.score_rules import TITLE as SCORE_TITLE
from telemetry.alerts.silence import Silence, alert_labels, silencing
from telemetry.alerts.silence_store import active_silences
from telemetry.alerts.state_machine import OpenInstance, Verdict, next_step
from telemetry.alerts.template import render
from telemetry.alerts.window import Group, Measured, measure
from telemetry.analytics_anomalies import KIND_TITLES
from telemetry.analytics_metrics import METRICS

logger = logging.getLogger("steerway.telemetry.alerts.evaluation")

UNITS = {"percent": "%", "usd": "USD", "ms": "ms", "tokens": "tokens", "count": ""}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One group's evaluation, for logs and tests."""

    fingerprint: str
    labels: dict[str, str]
    state: str | None
    value: float | None
    notified: str | None = None
    deliveries: list[DeliveryResult] = field(default_factory=list)
    silenced_by: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an evaluation is given by the application: where notifications go and how their
    links and secrets are made, and the gateway's state the gauge metrics read."""

    console_url: str = ""
    """The console's public base URL (`https://steerway.example.com`); empty: no links."""
    environ: Mapping[str, str] | None = None
    master_key: str | None = None
    gauges: GaugeSources | None = None
    """Budgets and deployment health (`budget_used_pct`, `deployment_down`); None: those
    rules find no data."""


def verdict_of(rule: AlertRule, measured: Measured | None) -> tuple[Verdict, float | None]:
    """How the group stands, and the value compared (None when there is none)."""
    if measured is None:
        return _no_data(rule), None
    if rule.condition == "change_pct" and measured.previous:
        # Measured against a window that had some: even a fall to no requests is a change.
        if measured.requests and measured.requests < rule.min_requests:
            return "ok", None
        compared = measured.previous_requests
        if compared is not None and compared < rule.min_requests:
            return "ok", None  # too few requests then to compare with
        value = change_pct(measured.value, measured.previous)
        if value is None:
            return _no_data(rule), None
        return breach_of(rule, value) or "ok", value
    if measured.requests == 0:
        return _no_data(rule), None
    if measured.requests is not None and measured.requests < rule.min_requests:
        return "ok", measured.value
    if rule.condition == "change_pct":
        return "ok", None  # nothing in the window before to compare with
    if measured.value is None:
        return _no_data(rule), None
    return breach_of(rule, measured.value) or "ok", measured.value


def _no_data(rule: AlertRule) -> Verdict:
    if rule.no_data == "alerting":
        severity, threshold = rule.thresholds[0]
        return Breach(severity, threshold)
    return "keep" if rule.no_data == "keep" else "ok"


@dataclass(frozen=True, slots=True)
class Judged:
    """How one group (or one open instance without data) stands in a round."""

    fingerprint: str
    labels: dict[str, str]
    verdict: Verdict
    value: float | None


def judge_round(
    rule: AlertRule, measured: Mapping[Group, Measured], open_labels: Mapping[str, dict[str, str]]
) -> list[Judged]:
    """Every group measured, and every open instance (fingerprint → its labels) absent from the
    window, judged. Pure: the live evaluation and the preview (`telemetry.alerts.preview`)
    judge through it."""
    found = dict(measured)
    if not rule.group_by:
        found.setdefault((), Measured(None, 0))
    judged: list[Judged] = []
    seen: set[str] = set()
    for group, one in sorted(found.items()):
        group_labels = dict(group)
        fingerprint = fingerprint_of(rule.id, group_labels)
        seen.add(fingerprint)
        verdict, value = verdict_of(rule, one)
        judged.append(Judged(fingerprint, rule.labels | group_labels, verdict, value))
    for fingerprint, labels in sorted(open_labels.items()):
        if fingerprint not in seen:
            verdict, _ = verdict_of(rule, None)
            judged.append(Judged(fingerprint, labels, verdict, None))
    return judged


async def evaluate_rule(
    engine: AsyncEngine,
    rule: AlertRule,
    now: datetime,
    delivery: Delivery | None = None,
    silences: Sequence[Silence] | None = None,
) -> list[Outcome]:
    """Evaluate `rule` at `now`: record what changed and send what is due. `silences`: the
    active silences of the rule's workspace (a round reads them once for every rule); None
    reads them."""
    if silences is None:
        silences = (await active_silences(engine, now, rule.workspace_id)).get(
            rule.workspace_id, []
        )
    measured = await measure(engine, rule, now, delivery.gauges if delivery else None)
    stored = await open_instances(engine, rule.id)
    judged = judge_round(rule, measured, {fp: open_.labels for fp, open_ in stored.items()})
    changes = [
        _change(
            rule,
            one.fingerprint,
            one.labels,
            stored[one.fingerprint].instance if one.fingerprint in stored else None,
            one.verdict,
            one.value,
            now,
            silences,
        )
        for one in judged
    ]
    recorded = [change for change in changes if change.step.state is not None]
    ids = await apply(engine, rule.id, rule.workspace_id, recorded, now)
    outcomes = await asyncio.gather(
        *(_notify(engine, rule, change, ids, now, delivery or Delivery()) for change in changes)
    )
    return list(outcomes)


def _change(
    rule: AlertRule,
    fingerprint: str,
    labels: dict[str, str],
    current: OpenInstance | None,
    verdict: Verdict,
    value: float | None,
    now: datetime,
    silences: Sequence[Silence],
) -> Change:
    step = next_step(rule, current, verdict, now)
    severity = step.severity or (current.severity if current is not None else None)
    silence = silencing(silences, alert_labels(labels, rule.name, severity)) if silences else None
    if silence is None:
        return Change(fingerprint, labels, current, step, value)
    held = dataclasses.replace(step, notify=None)
    return Change(fingerprint, labels, current, held, value, silence.silence_id)


async def _notify(
    engine: AsyncEngine,
    rule: AlertRule,
    change: Change,
    ids: Mapping[str, str],
    now: datetime,
    delivery: Delivery,
) -> Outcome:
    step = change.step
    if step.state is not None and change.fingerprint not in ids:
        # Ended by hand between this round's reading and its writing: nothing changed.
        return Outcome(change.fingerprint, change.labels, None, change.value)
    outcome = Outcome(
        change.fingerprint, change.labels, step.state, change.value, silenced_by=change.silenced_by
    )
    if step.notify is None:
        return outcome
    instance_id = ids[change.fingerprint]
    notification = notification_of(rule, change, instance_id, now, delivery.console_url)
    channels = await load_channels(engine, rule.workspace_id, rule.channel_ids)
    results = await deliver_all(
        [channels[id_] for id_ in rule.channel_ids if id_ in channels],
        notification,
        environ=delivery.environ,
        master_key=delivery.master_key,
    )
    results += [_missing(id_, notification, now) for id_ in rule.channel_ids if id_ not in channels]
    await record_deliveries(engine, instance_id, rule.workspace_id, step.notify, results, now)
    return Outcome(
        change.fingerprint, change.labels, step.state, change.value, step.notify, results
    )


def _missing(channel_id: str, notification: Notification, now: datetime) -> DeliveryResult:
    logger.warning(
        "alert rule %r names channel %s, which does not exist", notification.rule_name, channel_id
    )
    return DeliveryResult(
        channel_id=channel_id,
        channel_name="",
        kind="",
        status="failed",
        attempts=0,
        started_at=now,
        duration_ms=0.0,
        fingerprint=notification.fingerprint,
        error="no such channel in this workspace",
    )


def shown(rule: AlertRule, value: float | None) -> tuple[float | None, str]:
    """A value of the rule as people read it, and its unit: rates in percent."""
    if rule.condition == "change_pct":
        return value, "%"
    if rule.metric in (ANOMALY_SCORE, EVAL_SCORE):
        return value, ""
    if rule.metric in GAUGES:
        return value, GAUGES[rule.metric].unit
    unit = METRICS[rule.metric].unit
    if value is not None and unit == "percent":
        value = round(value * 100, 9)
    return value, UNITS.get(unit, unit)


def metric_title(rule: AlertRule) -> str:
    if rule.metric == ANOMALY_SCORE and rule.anomaly_kind in KIND_TITLES:
        return f"Anomaly score of {KIND_TITLES[rule.anomaly_kind].lower()}"
    if rule.metric in GAUGES:
        return GAUGES[rule.metric].title
    if rule.metric == EVAL_SCORE:
        criteria = rule.filters.get("criterion")
        return f"{SCORE_TITLE} ({criteria[0]})" if criteria else SCORE_TITLE
    return METRICS[rule.metric].title


def span(seconds: int) -> str:
    """A window as people say it: `90 s`, `5 min`, `2 h`, `1 d`."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def notification_of(
    rule: AlertRule, change: Change, instance_id: str, now: datetime, console_url: str
) -> Notification:
    step = change.step
    assert step.notify is not None
    severity = step.severity or (change.current.severity if change.current else "warning")
    value, unit = shown(rule, change.value)
    threshold, _ = shown(rule, step.threshold)
    group = {name: change.labels[name] for name in rule.group_by if name in change.labels}
    summary = render(
        rule.message,
        {
            "rule": rule.name,
            "metric": metric_title(rule),
            "value": format_number(value, unit),
            "threshold": format_number(threshold, unit),
            "severity": severity,
            "state": step.notify,
            "window": span(rule.window_s),
            "group": " (" + ", ".join(f"{k}={v}" for k, v in group.items()) + ")" if group else "",
        },
        change.labels,
    )
    started = change.current.started_at if change.current is not None else now
    base = console_url.rstrip("/")
    return Notification(
        rule_id=rule.id,
        rule_name=rule.name,
        severity=severity,
        state=step.notify,
        fingerprint=change.fingerprint,
        summary=summary,
        started_at=started,
        workspace_id=rule.workspace_id,
        labels=change.labels,
        value=value,
        threshold=threshold,
        unit=unit,
        ended_at=now if step.notify == "resolved" else None,
        console_url=f"{base}/admin/alerts/{instance_id}" if base else "",
    )
