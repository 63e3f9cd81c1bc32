"""The gauge metrics' rule checks, `change_pct` against the same window last week, and the
built-in rules every workspace is given once (on both backends)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from telemetry.alerts import RuleError, evaluate_rule, parse_rule
from telemetry.alerts.builtin_rules import BUILTIN_RULES, install_builtins
from telemetry.alerts.rule_parsing import rule_data
from telemetry.alerts.rule_store import create_rule, delete_rule, load_rules
from telemetry.alerts.window import compared_window, window_of
from telemetry.schema import DEFAULT_WORKSPACE_ID, alert_builtin_installs
from tests.telemetry.alerts.alert_history import T0, minutes, plant

GAUGE = {"name": "Budgets", "metric": "budget_used_pct", "warning": 80}
DOWN = {"name": "Down", "metric": "deployment_down", "warning": 0}


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        (GAUGE | {"window": "1h"}, "window", "leave window out"),
        (GAUGE | {"condition": "change_pct", "warning": 50}, "condition", "above, below"),
        (GAUGE | {"group_by": ["model"]}, "group_by", "it can be by: budget, subject, window"),
        (GAUGE | {"filters": {"model": "x"}}, "filters.model", "by: budget, subject, window"),
        (GAUGE | {"min_requests": 20}, "min_requests", "does not count requests"),
        (GAUGE | {"kind": "cost"}, "kind", "one of limit, soft_limit"),
        (DOWN | {"kind": "soft_limit"}, "kind", "only for the metrics"),
        (DOWN | {"group_by": ["budget"]}, "group_by", "provider, model, deployment"),
        (DOWN | {"group_by": ["model", "model"]}, "group_by", "names a dimension twice"),
        ({**DOWN, "compare_to": "last_week"}, "compare_to", "only with the condition change_pct"),
        (
            {"name": "p95", "metric": "latency_p95", "condition": "change_pct", "warning": 50}
            | {"compare_to": "last_year"},
            "compare_to",
            "Invalid enum value 'last_year'",
        ),
    ],
)
def test_a_wrong_gauge_or_comparison_names_the_field(
    data: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule(data)
    assert raised.value.field == field
    assert says in raised.value.reason


def test_gauge_rules_and_comparisons_that_pass() -> None:
    rule = parse_rule(GAUGE | {"kind": "soft_limit", "group_by": ["budget", "subject"]})
    assert (rule.anomaly_kind, rule.window_s) == ("soft_limit", 300)
    assert parse_rule(DOWN | {"filters": {"provider": "openai"}}).filters == {
        "provider": ["openai"]
    }
    weekly = parse_rule(
        {"name": "p95", "metric": "latency_p95", "condition": "change_pct", "warning": 50}
        | {"compare_to": "last_week", "window": "1h"}
    )
    start, end = window_of(weekly, T0)
    assert compared_window(weekly, start, end) == (
        start - timedelta(days=7),
        end - timedelta(days=7),
    )
    for name, template in BUILTIN_RULES.items():
        assert parse_rule(_written(template)).name == template.name, name


def _written(rule: Any) -> dict[str, Any]:
    return rule_data(rule)


async def test_p95_latency_against_the_same_hour_last_week(engine: AsyncEngine) -> None:
    week = timedelta(days=7)
    await plant(engine, start=T0 - minutes(60) - week, minutes_=60, per_minute=2, latency_ms=200)
    await plant(engine, start=T0 - minutes(60) - week, minutes_=60, per_minute=1, model="quiet")
    await plant(engine, start=T0 - minutes(120), minutes_=60, per_minute=2, latency_ms=900)
    await plant(engine, start=T0 - minutes(60), minutes_=60, per_minute=2, latency_ms=450)
    await plant(engine, start=T0 - minutes(60), minutes_=60, per_minute=2, model="quiet")
    template = BUILTIN_RULES["latency_last_week"]
    rule = parse_rule(_written(template) | {"group_by": ["model"], "min_requests": 100})
    rule = await create_rule(engine, rule)
    found = {o.labels["model"]: o for o in await evaluate_rule(engine, rule, T0)}
    # 450 ms against 200 ms a week ago, read from the roll-ups' histogram buckets (500 ms and
    # 250 ms): +100 %. Against the hour just before (900 ms) it would be a fall.
    assert found["gpt-4o-mini"].value == pytest.approx(100.0)
    assert found["gpt-4o-mini"].state == "firing"
    # 120 requests now but 60 a week ago: too few to compare with.
    assert (found["quiet"].state, found["quiet"].value) == (None, None)


async def _builtins(engine: AsyncEngine, workspace_id: str) -> dict[str, Any]:
    return {rule.built_in: rule for rule in await load_rules(engine, workspace_id) if rule.built_in}


async def test_a_new_workspace_gets_the_built_in_rules_once(engine: AsyncEngine) -> None:
    workspace = await KeyStore(engine).create_workspace("team-b")
    given = await _builtins(engine, workspace.workspace_id)
    assert sorted(given) == sorted(BUILTIN_RULES)
    assert {rule.name for rule in given.values()} == {
        "Budget soft limit reached",
        "Deployment in cooldown",
        "Error rate above 5 %",
        "p95 latency above the same hour last week",
    }
    assert all(rule.channel_ids == [] and not rule.muted for rule in given.values())
    await delete_rule(engine, given["error_rate"].id)
    assert await install_builtins(engine) == 4  # the default workspace's, made at last
    assert sorted(await _builtins(engine, workspace.workspace_id)) == sorted(
        set(BUILTIN_RULES) - {"error_rate"}
    )
    assert await install_builtins(engine) == 0
    assert sorted(await _builtins(engine, DEFAULT_WORKSPACE_ID)) == sorted(BUILTIN_RULES)


async def test_a_rule_of_the_same_name_is_left_alone(engine: AsyncEngine) -> None:
    mine = await create_rule(
        engine, parse_rule({"name": "Error rate above 5 %", "metric": "errors", "critical": 9})
    )
    assert await install_builtins(engine, [DEFAULT_WORKSPACE_ID]) == 3
    rules = {rule.name: rule for rule in await load_rules(engine, DEFAULT_WORKSPACE_ID)}
    assert rules["Error rate above 5 %"] == mine
    async with engine.connect() as connection:
        given = await connection.scalar(
            sa.select(sa.func.count()).select_from(alert_builtin_installs)
        )
    assert given == 4
