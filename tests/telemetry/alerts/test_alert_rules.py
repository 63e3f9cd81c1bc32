"""Alert rules from plain data: every mistake is refused with the field it is in, and a rule
that passes never fails for its shape when it is evaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from telemetry.alerts import AlertRule, RuleError, parse_rule
from telemetry.alerts.conditions import breach_of, change_pct
from telemetry.alerts.rule_parsing import parse_duration, rule_data
from telemetry.alerts.state_machine import OpenInstance, next_step
from telemetry.alerts.template import TemplateError, check_template, render
from telemetry.alerts.window import window_of

BASE = {"name": "Error rate", "metric": "error_rate", "critical": 0.05}


def _parsed(**changes: Any) -> AlertRule:
    return parse_rule(BASE | changes)


def test_a_rule_from_the_config_file_shape() -> None:
    rule = _parsed(
        window="5m",
        group_by=["model"],
        filters={"provider": "openai"},
        warning=0.02,
        min_requests=20,
        renotify="1h",
        channels=["c1"],
        labels={"team": "platform"},
        message="{rule} on {labels[model]}: {value}",
        **{"for": "5m"},
    )
    assert (rule.window_s, rule.for_s, rule.renotify_s) == (300, 300, 3600)
    assert rule.filters == {"provider": ["openai"]}
    assert rule.channel_ids == ["c1"]
    assert parse_rule(rule_data(rule)) == rule


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"name": ""}, "name", "required"),
        ({"metric": "nope"}, "metric", "unknown metric 'nope'"),
        ({"group_by": ["guardrail"]}, "group_by", "error_rate cannot be split by 'guardrail'"),
        ({"group_by": ["model", "key", "provider"]}, "group_by", "at most 2"),
        ({"filters": {"rule": ["r1"]}}, "filters.rule", "cannot be split by 'rule'"),
        ({"filters": {"model": []}}, "filters.model", "at least one value"),
        ({"critical": None}, "thresholds", "set a warning or a critical threshold"),
        ({"warning": 0.1}, "critical", "at least the warning threshold"),
        ({"warning": 0.01, "condition": "below"}, "critical", "at most the warning threshold"),
        ({"condition": "sideways"}, "condition", "Invalid enum value"),
        ({"condition": "change_pct", "warning": -10, "critical": 50}, "thresholds", "both"),
        ({"condition": "change_pct", "critical": 0}, "thresholds", "always breach"),
        ({"window": 30}, "window", "from 60 s"),
        ({"window": 90}, "window", "whole minutes"),
        ({"window": "5 fortnights"}, "window", "a duration"),
        ({"window": "3d1m"}, "window", "a duration"),
        ({"window": 2001 * 60 + 60}, "window", "whole hours"),
        ({"for": -1}, "for", "from 0"),
        ({"renotify": 10}, "renotify", "at least 60 s"),
        ({"min_requests": "many"}, "min_requests", "Expected `int`"),
        ({"min_requests": -1}, "min_requests", "negative"),
        ({"no_data": "panic"}, "no_data", "Invalid enum value"),
        ({"channels": ["a", "a"]}, "channels", "twice"),
        ({"message": "{rule.__class__}"}, "message", "unknown field {rule.__class__}"),
        ({"message": "{value"}, "message", "literal braces"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_a_wrong_field_is_named(changes: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({key: value for key, value in (BASE | changes).items()})
    assert caught.value.field == field
    assert says in str(caught.value)


def test_metrics_kept_per_hour_take_whole_hours_and_requests_must_be_countable() -> None:
    with pytest.raises(RuleError, match="window: whole hours"):
        parse_rule({"name": "r", "metric": "rule_matches", "critical": 5, "window": "30m"})
    rule = parse_rule(
        {"name": "r", "metric": "rule_matches", "critical": 5, "window": "2h", "group_by": ["rule"]}
    )
    now = datetime(2026, 3, 2, 12, 3, 20, tzinfo=UTC)
    assert window_of(rule, now) == (now.replace(minute=0, second=0) - timedelta(hours=2),
                                    now.replace(minute=0, second=0))  # fmt: skip
    with pytest.raises(RuleError) as caught:
        parse_rule(rule_data(rule) | {"min_requests": 3})
    assert caught.value.field == "min_requests"


def test_a_minute_window_ends_with_the_minute_in_progress() -> None:
    rule = _parsed(window="5m")
    now = datetime(2026, 3, 2, 12, 3, 20, tzinfo=UTC)
    assert window_of(rule, now) == (
        datetime(2026, 3, 2, 11, 59, tzinfo=UTC),
        datetime(2026, 3, 2, 12, 4, tzinfo=UTC),
    )
    whole = now.replace(second=0)
    assert window_of(rule, whole) == (whole - timedelta(minutes=5), whole)


def test_durations() -> None:
    assert [parse_duration(text, "for") for text in ("90", "90s", "5m", "2h", "1d", "1w")] == [
        90, 90, 300, 7200, 86400, 604800,
    ]  # fmt: skip
    for bad in (True, "5 minutes", "-5m", 1.5, None):
        with pytest.raises(RuleError, match="for: a duration"):
            parse_duration(bad, "for")


def test_templates_render_only_their_own_fields() -> None:
    check_template("{rule} {value:>6} {labels[model]}{group}")
    assert render("{rule} {value:>6} [{labels[model]}] [{labels[nope]}]", {"rule": "R", "value": "7 %"}, {"model": "m"}) == "R    7 % [m] []"  # fmt: skip
    for bad, says in [
        ("{0}", "unknown field"),
        ("{}", "unknown field"),
        ("{labels}", "unknown field"),
        ("{labels[a][b]}", "labels[NAME]"),
        ("{labels.__class__}", "unknown field"),
        ("{value:{rule}}", "cannot hold another field"),
        ("{value!a}", "unknown conversion"),
        ("{value:d}", "Unknown format code"),
        ("x" * 2001, "at most 2000"),
    ]:
        with pytest.raises(TemplateError, match=says.replace("[", r"\[")):
            check_template(bad)


def test_severity_is_the_most_severe_threshold_passed() -> None:
    above = _parsed(warning=0.02, critical=0.05)
    assert breach_of(above, 0.01) is None
    assert breach_of(above, 0.02) is None  # strictly above
    assert breach_of(above, 0.03) == ("warning", 0.02)
    assert breach_of(above, 0.06) == ("critical", 0.05)
    below = _parsed(metric="requests", condition="below", warning=10, critical=2)
    assert breach_of(below, 5) == ("warning", 10)
    assert breach_of(below, 1) == ("critical", 2)
    fall = _parsed(metric="cost", condition="change_pct", warning=-20, critical=-50)
    assert breach_of(fall, -30) == ("warning", -20)
    assert breach_of(fall, 30) is None
    assert change_pct(3, 2) == 50.0 and change_pct(0, 2) == -100.0
    assert change_pct(3, 0) is None and change_pct(None, 2) is None


def test_the_state_machine() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    rule = _parsed(warning=0.02, **{"for": 120}, renotify=600)
    breach = breach_of(rule, 0.03)
    assert breach is not None
    step = next_step(rule, None, breach, now)
    assert (step.state, step.event, step.notify) == ("pending", ("inactive", "pending", None), None)
    pending = OpenInstance("i", "pending", "warning", now, None)
    assert next_step(rule, pending, breach, now + timedelta(seconds=119)).state == "pending"
    step = next_step(rule, pending, breach, now + timedelta(seconds=120))
    assert (step.state, step.notify) == ("firing", "firing")
    assert next_step(rule, pending, "ok", now).state == "inactive"
    assert next_step(rule, pending, "keep", now).event is None

    firing = OpenInstance("i", "firing", "warning", now, now)
    assert next_step(rule, firing, breach, now + timedelta(seconds=599)).notify is None
    assert next_step(rule, firing, breach, now + timedelta(seconds=600)).notify == "firing"
    critical = breach_of(rule, 0.5)
    assert critical is not None
    step = next_step(rule, firing, critical, now + timedelta(seconds=1))
    assert (step.notify, step.event) == (
        "firing",
        ("firing", "firing", "severity warning to critical"),
    )
    assert next_step(rule, firing, "ok", now).notify == "resolved"

    silent = parse_rule(rule_data(rule) | {"notify_on_resolve": False})
    assert next_step(silent, firing, "ok", now).notify is None
    never_told = OpenInstance("i", "firing", "warning", now, None)
    assert next_step(rule, never_told, "ok", now).notify is None  # it was muted when it fired
    assert next_step(rule, never_told, breach, now).notify == "firing"  # and is no longer
    muted = parse_rule(rule_data(rule) | {"muted": True, "for": 0})
    step = next_step(muted, None, breach, now)
    assert (step.state, step.notify) == ("firing", None)
