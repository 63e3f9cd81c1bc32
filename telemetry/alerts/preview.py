"""How a rule would have behaved over the last 7 days, before it is saved: its metric per group
at each evaluation step, and the episodes (pending, firing, resolved) it would have produced.

The preview replays the live evaluation rather than imitating it: each step's windows are
measured with `window.measured_groups`, judged with `evaluation.judge_round` (thresholds,
`min_requests`, `no_data`, `change_pct`) and stepped with `state_machine.next_step` (`for`),
the same pure functions the evaluator calls. Only the reading differs: the week is read in one
statement per metric (`preview_sums`), and the windows slide over it (`preview_rolling`).

The evaluation step (`evaluation_step`): an hour for rules read by the hour (and anomaly
scores), 5 minutes for minute-grained rules whose window is whole 5 minutes, else a minute. A
week is then 168, 2,016 or 10,080 evaluations per group; the points answered are at most one
per 5 minutes (2,016 a group), each the step's most severe value. Times of the episodes are
those of the steps: the live evaluator, running every `alerts.interval`, fires up to one step
earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.evaluation import judge_round
from telemetry.alerts.gauge_metrics import is_gauge
from telemetry.alerts.notification import Severity
from telemetry.alerts.preview_rolling import Rolling
from telemetry.alerts.preview_sums import read_step_sums
from telemetry.alerts.rule import ANOMALY_SCORE, WEEK_S, AlertRule, RuleError, window_step
from telemetry.alerts.score_rules import EVAL_SCORE
from telemetry.alerts.state_machine import OpenInstance, Verdict, next_step
from telemetry.alerts.window import (
    Group,
    anomaly_report,
    counts_requests,
    measured_groups,
    window_of,
)
from telemetry.analytics_metrics import Metric

PREVIEW_S: Final = 7 * 86400
POINT_S: Final = 300
"""The finest step of the points answered."""
CHARTED: Final = 8
"""Groups answered with their points: the ones that fired longest, then the busiest."""
_SEVERITY_RANK: Final = {"warning": 1, "critical": 2}


@dataclass(slots=True)
class Episode:
    started_at: datetime
    """When the condition began to hold (pending, or firing at once)."""
    fired_at: datetime | None = None
    """When it fired; None: it cleared while pending."""
    ended_at: datetime | None = None
    """When it resolved (or went back to inactive); None: still open at the preview's end."""
    severity: Severity | None = None
    """The most severe breach while open."""

    def firing_s(self, end: datetime) -> float:
        if self.fired_at is None:
            return 0.0
        return ((self.ended_at or end) - self.fired_at).total_seconds()


@dataclass(slots=True)
class GroupPreview:
    labels: dict[str, str]
    episodes: list[Episode] = field(default_factory=list)
    points: list[tuple[datetime, float | None]] = field(default_factory=list)
    """Empty for groups past the `CHARTED` first."""


@dataclass(frozen=True, slots=True)
class Preview:
    rule: AlertRule
    start: datetime
    end: datetime
    step: int
    """Seconds between evaluations."""
    point_step: int
    groups: list[GroupPreview]

    @property
    def episodes(self) -> list[Episode]:
        return [episode for group in self.groups for episode in group.episodes]

    @property
    def fired(self) -> int:
        return sum(1 for episode in self.episodes if episode.fired_at is not None)

    @property
    def hours_firing(self) -> float:
        return sum(episode.firing_s(self.end) for episode in self.episodes) / 3600

    def by_severity(self) -> dict[str, dict[str, float]]:
        """Per peak severity: how many times it fired, and the hours firing."""
        found = {severity: {"fired": 0.0, "hours": 0.0} for severity in ("critical", "warning")}
        for episode in self.episodes:
            if episode.fired_at is not None and episode.severity is not None:
                found[episode.severity]["fired"] += 1
                found[episode.severity]["hours"] += episode.firing_s(self.end) / 3600
        return found


def evaluation_step(rule: AlertRule) -> int:
    if window_step(rule) == 3600:
        return 3600
    return POINT_S if rule.window_s % POINT_S == 0 else 60


def preview_range(rule: AlertRule, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the preview: the evaluations are at start + step, ..., end, the last
    being the latest the live evaluation has made by `now` that falls on a step."""
    step = evaluation_step(rule)
    _, window_end = window_of(rule, now)
    end = datetime.fromtimestamp(int(window_end.timestamp()) // step * step, UTC)
    return end - timedelta(seconds=PREVIEW_S), end


async def preview_rule(engine: AsyncEngine, rule: AlertRule, now: datetime) -> Preview:
    """The rule replayed over the 7 days before `now` (a checked rule, not necessarily
    stored). A gauge (`budget_used_pct`, `deployment_down`) is read as it stands and has no
    history to replay: a `RuleError` on `metric`."""
    if rule.metric == EVAL_SCORE:
        raise RuleError(
            "metric", f"{EVAL_SCORE} is not replayed yet: the Quality page shows past scores"
        )
    if is_gauge(rule.metric):
        raise RuleError(
            "metric",
            f"{rule.metric} is read as it stands now and kept nowhere over time, so "
            "there are no past days to replay",
        )
    step = evaluation_step(rule)
    start, end = preview_range(rule, now)
    size = rule.window_s // step
    lag = compared_lag(rule, step)
    lead = size + lag
    read_from = start + timedelta(seconds=step * (1 - lead))
    replay = _Replay(rule, step, start, end, lag)
    if rule.metric == ANOMALY_SCORE:
        replay.scores = await _scores(engine, rule, start, end, now)
    else:
        metric, sums = await read_step_sums(engine, rule, rule.metric, read_from, end, step)
        replay.metric = metric
        replay.current = Rolling(sums, size, len(metric.columns))
        if rule.condition == "change_pct":
            replay.previous = Rolling(sums, size, len(metric.columns))
    if rule.metric != "requests" and counts_requests(rule):
        _, requests = await read_step_sums(engine, rule, "requests", read_from, end, step)
        replay.requests = Rolling(requests, size, 1)
        if rule.condition == "change_pct" and rule.min_requests:
            replay.previous_requests = Rolling(requests, size, 1)
    return replay.run(lead)


def compared_lag(rule: AlertRule, step: int) -> int:
    """How many steps back a `change_pct` rule's compared window ends (`compare_to`: the
    window before, or the same window a week earlier); 0 for other conditions."""
    if rule.condition != "change_pct":
        return 0
    seconds = WEEK_S if rule.compare_to == "last_week" else rule.window_s
    return seconds // step


async def _scores(
    engine: AsyncEngine, rule: AlertRule, start: datetime, end: datetime, now: datetime
) -> dict[Group, dict[datetime, float | None]]:
    """Each hour's anomaly score per group over the week (one anomaly report)."""
    dimension, report = await anomaly_report(engine, rule, start, end, now)
    found: dict[Group, dict[datetime, float | None]] = {}
    for series in report.series:
        group: Group = ((dimension, series.group),) if dimension else ()
        found[group] = {hour.at: hour.score for hour in series.hours}
    return found


class _Replay:
    """The evaluations of the week, one step after another."""

    def __init__(
        self, rule: AlertRule, step: int, start: datetime, end: datetime, lag: int
    ) -> None:
        self.rule = rule
        self.step = step
        self.lag = lag
        self.start = start
        self.end = end
        self.metric: Metric | None = None
        self.current: Rolling | None = None
        self.previous: Rolling | None = None
        self.requests: Rolling | None = None
        self.previous_requests: Rolling | None = None
        self.scores: dict[Group, dict[datetime, float | None]] | None = None
        self.open: dict[str, OpenInstance] = {}
        self.groups: dict[str, GroupPreview] = {}
        self.values: dict[str, list[float | None]] = {}
        self.known: dict[int, dict[Group, float | None]] = {}
        """Per rolling window (by id), the metric of each group, computed again only for the
        groups whose sums the step changed: a quiet group costs nothing per step."""

    def run(self, lead: int) -> Preview:
        evaluations = PREVIEW_S // self.step
        lagging = (
            (self.current, 0),
            (self.previous, self.lag),
            (self.requests, 0),
            (self.previous_requests, self.lag),
        )
        for number in range(1, evaluations + 1):
            index = lead - 1 + number  # the window ends before this step of the rows read
            for rolling, lag in lagging:
                if rolling is not None:
                    rolling.advance_to(index - lag)
            self._evaluate(number, self.start + timedelta(seconds=number * self.step))
        return self._answer(evaluations)

    def _evaluate(self, number: int, now: datetime) -> None:
        rule = self.rule
        values = self._values(self.current, now)
        previous = self._values(self.previous, now) if self.previous is not None else {}
        requests = None
        if rule.metric == "requests":
            requests = values
        elif self.requests is not None:
            requests = {
                group: float(sums[0]) for group, sums in self._present(self.requests).items()
            }
        previous_requests = None
        if rule.condition == "change_pct" and rule.min_requests:
            if rule.metric == "requests":
                previous_requests = previous
            elif self.previous_requests is not None:
                previous_requests = {
                    group: float(sums[0])
                    for group, sums in self._present(self.previous_requests).items()
                }
        measured = measured_groups(rule, values, requests, previous, previous_requests)
        labels = {fingerprint: self.groups[fingerprint].labels for fingerprint in self.open}
        for judged in judge_round(rule, measured, labels):
            fingerprint = judged.fingerprint
            group = self.groups.get(fingerprint)
            if group is None:
                names = rule.group_by
                group = GroupPreview({name: judged.labels.get(name, "") for name in names})
                self.groups[fingerprint] = group
            shown = judged.value
            if shown is None and rule.condition != "change_pct":
                found = measured.get(tuple(sorted(group.labels.items())))
                shown = None if found is None else found.value
            series = self.values.setdefault(fingerprint, [None] * (PREVIEW_S // self.step))
            series[number - 1] = shown
            self._step(fingerprint, group, judged.verdict, now)

    def _step(self, fingerprint: str, group: GroupPreview, verdict: Verdict, now: datetime) -> None:
        current = self.open.get(fingerprint)
        step = next_step(self.rule, current, verdict, now)
        if step.state is None:
            return
        if current is None:
            group.episodes.append(Episode(started_at=now))
        episode = group.episodes[-1]
        if step.severity is not None and (
            episode.severity is None
            or _SEVERITY_RANK[step.severity] > _SEVERITY_RANK[episode.severity]
        ):
            episode.severity = step.severity
        if step.state == "firing" and episode.fired_at is None:
            episode.fired_at = now
        if step.state == "resolved" or step.state == "inactive":
            episode.ended_at = now
            del self.open[fingerprint]
            return
        self.open[fingerprint] = OpenInstance(
            instance_id=fingerprint,
            state=step.state,
            severity=step.severity or (current.severity if current else "warning"),
            started_at=current.started_at if current else now,
            last_notified_at=now
            if step.notify
            else (current.last_notified_at if current else None),
        )

    def _present(self, rolling: Rolling) -> dict[Group, list[Any]]:
        """The window's sums per group, as the analytics answer a window: without `group_by`,
        the one group even when empty."""
        found: dict[Group, list[Any]] = dict(rolling.sums)
        if not self.rule.group_by:
            found.setdefault((), rolling.zero())
        return found

    def _values(self, rolling: Rolling | None, now: datetime) -> dict[Group, float | None]:
        if self.scores is not None:
            hour = now - timedelta(seconds=3600)
            return {group: hours.get(hour) for group, hours in self.scores.items()}
        assert rolling is not None and self.metric is not None
        metric = self.metric
        known = self.known.setdefault(id(rolling), {})
        present = self._present(rolling)
        for group in [group for group in known if group not in present]:
            del known[group]
        for group, sums in present.items():
            if group in rolling.changed or group not in known:
                known[group] = _number(metric.value(sums))
        return dict(known)

    def _answer(self, evaluations: int) -> Preview:
        def rank(fingerprint: str) -> tuple[float, int, int]:
            group = self.groups[fingerprint]
            firing = sum(episode.firing_s(self.end) for episode in group.episodes)
            seen = sum(value is not None for value in self.values.get(fingerprint, ()))
            return (-firing, -len(group.episodes), -seen)

        ordered = sorted(self.groups, key=lambda fingerprint: (rank(fingerprint), fingerprint))
        per_point = max(1, POINT_S // self.step)
        answered: list[GroupPreview] = []
        for position, fingerprint in enumerate(ordered):
            group = self.groups[fingerprint]
            if position >= CHARTED and not group.episodes:
                continue
            if position < CHARTED:
                group.points = self._points(self.values.get(fingerprint, []), per_point)
            answered.append(group)
        return Preview(self.rule, self.start, self.end, self.step, self.step * per_point, answered)

    def _points(
        self, values: list[float | None], per_point: int
    ) -> list[tuple[datetime, float | None]]:
        """A point per `per_point` evaluations, at the last one's time, the most severe value
        among them (the highest for a rule breached above, the lowest below)."""
        rule = self.rule
        falling = rule.condition == "below" or (
            rule.condition == "change_pct" and any(value < 0 for _, value in rule.thresholds)
        )
        points: list[tuple[datetime, float | None]] = []
        for first in range(0, len(values), per_point):
            known = [value for value in values[first : first + per_point] if value is not None]
            at = self.start + timedelta(seconds=(first + per_point) * self.step)
            points.append((at, (min(known) if falling else max(known)) if known else None))
        return points


def _number(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)
