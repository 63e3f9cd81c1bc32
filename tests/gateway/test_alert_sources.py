"""The gauge metrics of alert rules against real parts: budgets made in the key store and the
config, spent through the real ledger (persisted to `budget_spend`), on both backends; and the
deployments' circuit breakers, in-process and shared through Redis."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import GatewayConfig, parse_config
from gateway.jobs.alert_sources import gauge_sources
from gateway.keys.limits import BudgetLimit
from gateway.keys.store import KeyStore
from gateway.limits.admission import Admission, budget_limits
from gateway.limits.budgets import create_budget_ledger
from gateway.upstream.health import CooldownPolicy, DeploymentHealth, InProcessHealth, RedisHealth
from telemetry.alerts import AlertRule, Outcome, evaluate_rule
from telemetry.alerts.evaluation import Delivery
from telemetry.alerts.rule_store import create_rule, load_rules

MOCK_URL = "http://127.0.0.1:9"


def _config(**extra: Any) -> GatewayConfig:
    return parse_config(
        {
            "providers": {"mock": {"type": "openai", "base_url": MOCK_URL}},
            "models": {
                "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
                "split": [
                    {"provider": "mock", "model": "mock-gpt", "weight": 3},
                    {"provider": "mock", "model": "mock-gpt-large", "weight": 1},
                ],
            },
            **extra,
        },
        {},
    )


BUDGET_CONFIG = _config(
    budgets={
        "timezone": "Europe/Berlin",
        "end_user": {"limit_usd": "1.00", "window": "daily"},
        "buckets": {"premium": [{"limit_usd": 100, "window": "monthly", "soft_percent": 50}]},
    }
)


async def _spend(
    engine: AsyncEngine, workspace_slug: str, micros: int, end_user: str
) -> tuple[str, str]:
    """A workspace with a monthly budget of $10 (soft limit 80 %) and a key `svc` with a daily
    budget of $2; `micros` spent by the key's request for `end_user` charged to the bucket
    `premium`, through the real ledger. The workspace's id and the key's name."""
    store = KeyStore(engine)
    workspace = await store.create_workspace(
        workspace_slug,
        settings={"budgets": [{"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}]},
    )
    created = await store.create(
        "svc",
        workspace_id=workspace.workspace_id,
        budgets=[BudgetLimit.from_json({"limit_usd": "2.00", "window": "daily"})],
    )
    key = await store.get(created.info.key_id)
    assert key is not None
    config = BUDGET_CONFIG.budgets
    admission = Admission(
        limiter=None,
        ledger=None,
        timezone=config.timezone,
        end_user_budgets=budget_limits(config.end_user),
        buckets={name: budget_limits(specs) for name, specs in config.buckets.items()},
    )
    ledger = create_budget_ledger(None, engine)
    await ledger.start()
    try:
        # Nothing held (as for a model without a price), so the spend may pass the limits.
        reservation = await ledger.reserve(
            admission.charges(key, end_user, "premium"), 0, time.time()
        )
        assert reservation.ok
        await ledger.settle(reservation, micros)
    finally:
        await ledger.close()  # writes the spend to budget_spend
    return workspace.workspace_id, key.name


async def _evaluate(
    engine: AsyncEngine, health: DeploymentHealth, config: GatewayConfig, **fields: Any
) -> dict[tuple[tuple[str, str], ...], Outcome]:
    rule = await create_rule(engine, AlertRule(**fields))
    delivery = Delivery(gauges=gauge_sources(engine, config, health))
    outcomes = await evaluate_rule(engine, rule, datetime.now(UTC), delivery)
    return {tuple(sorted(o.labels.items())): o for o in outcomes}


def _budget(scope: str, subject: str, window: str) -> tuple[tuple[str, str], ...]:
    return (("budget", scope), ("subject", subject), ("window", window))


async def test_budget_used_pct_per_budget_of_its_own_workspace(engine: AsyncEngine) -> None:
    workspace_id, key_name = await _spend(engine, "acme", 1_700_000, "alice")
    await _spend(engine, "elsewhere", 900_000, "alice")  # another tenant's alice: not counted
    found = await _evaluate(
        engine,
        InProcessHealth(),
        BUDGET_CONFIG,
        name="Budgets",
        metric="budget_used_pct",
        group_by=["budget", "subject", "window"],
        warning=80.0,
        critical=100.0,
        workspace_id=workspace_id,
    )
    values = {group: outcome.value for group, outcome in found.items()}
    assert values == {
        _budget("key", key_name, "daily"): pytest.approx(85.0),
        _budget("workspace", "acme", "monthly"): pytest.approx(17.0),
        _budget("end_user", "alice", "daily"): pytest.approx(170.0),
        _budget("bucket", "premium", "monthly"): pytest.approx(1.7),
    }
    states = {group[0][1]: outcome.state for group, outcome in found.items()}
    assert states == {"key": "firing", "end_user": "firing", "workspace": None, "bucket": None}


async def test_budget_used_pct_of_the_soft_limit_filtered_and_folded(engine: AsyncEngine) -> None:
    workspace_id, _ = await _spend(engine, "acme", 7_000_000, "bob")
    sources = InProcessHealth()
    soft = await _evaluate(
        engine,
        sources,
        BUDGET_CONFIG,
        name="Soft",
        metric="budget_used_pct",
        anomaly_kind="soft_limit",
        group_by=["budget", "subject"],
        warning=100.0,
        workspace_id=workspace_id,
    )
    # Only budgets with a soft limit: the workspace's ($8 of $10) and the bucket's ($50).
    assert {group: o.value for group, o in soft.items()} == {
        (("budget", "workspace"), ("subject", "acme")): pytest.approx(87.5),
        (("budget", "bucket"), ("subject", "premium")): pytest.approx(14.0),
    }
    (most,) = (
        await _evaluate(
            engine,
            sources,
            BUDGET_CONFIG,
            name="Most used end user or key",
            metric="budget_used_pct",
            filters={"budget": ["end_user", "key"]},
            critical=100.0,
            workspace_id=workspace_id,
        )
    ).values()
    assert (most.value, most.state) == (pytest.approx(700.0), "firing")


async def test_budget_used_pct_without_budgets_has_no_data(engine: AsyncEngine) -> None:
    (outcome,) = (
        await _evaluate(
            engine,
            InProcessHealth(),
            _config(),
            name="Budgets",
            metric="budget_used_pct",
            warning=50.0,
            no_data="alerting",
        )
    ).values()
    assert (outcome.state, outcome.value) == ("firing", None)


DOWN = "mock/mock-gpt"


def _deployment(model: str, deployment: str) -> tuple[tuple[str, str], ...]:
    return (("deployment", deployment), ("model", model), ("provider", "mock"))


async def _deployments(engine: AsyncEngine, health: DeploymentHealth) -> dict[Any, Outcome]:
    return await _evaluate(
        engine,
        health,
        _config(),
        name=f"Deployment down {secrets.token_hex(3)}",
        metric="deployment_down",
        group_by=["provider", "model", "deployment"],
        warning=0.0,
    )


async def test_deployment_down_in_process(engine: AsyncEngine) -> None:
    health = InProcessHealth()
    assert await health.failure(DOWN, CooldownPolicy(failures=1, period=600)) is not None
    found = await _deployments(engine, health)
    assert {group: (o.value, o.state) for group, o in found.items()} == {
        _deployment("mock-gpt", DOWN): (1.0, "firing"),
        _deployment("split", DOWN): (1.0, "firing"),
        _deployment("split", "mock/mock-gpt-large"): (0.0, None),
    }
    # Another process without Redis (a `steerway worker`) has a breaker of its own.
    elsewhere = await _deployments(engine, InProcessHealth())
    assert {o.value for o in elsewhere.values()} == {0.0}


async def test_deployment_down_shared_through_redis(engine: AsyncEngine, redis_url: str) -> None:
    prefix = f"steerway:health-test:{secrets.token_hex(4)}"
    serving = RedisHealth(redis_url, key_prefix=prefix)
    evaluating = RedisHealth(redis_url, key_prefix=prefix)
    await serving.start()
    await evaluating.start()
    try:
        assert await serving.failure(DOWN, CooldownPolicy(failures=1, period=600)) is not None
        await evaluating.refresh()
        found = await _deployments(engine, evaluating)
    finally:
        await serving.close()
        await evaluating.close()
    assert {group: o.value for group, o in found.items()} == {
        _deployment("mock-gpt", DOWN): 1.0,
        _deployment("split", DOWN): 1.0,
        _deployment("split", "mock/mock-gpt-large"): 0.0,
    }
    assert found[_deployment("mock-gpt", DOWN)].state == "firing"


async def test_a_budget_past_its_soft_limit_fires_the_built_in_rule(engine: AsyncEngine) -> None:
    workspace_id, _ = await _spend(engine, "acme", 8_500_000, "carol")  # $8.50 of $8 soft
    (rule,) = [
        rule
        for rule in await load_rules(engine, workspace_id)
        if rule.built_in == "budget_soft_limit"
    ]
    delivery = Delivery(gauges=gauge_sources(engine, BUDGET_CONFIG, InProcessHealth()))
    outcomes = await evaluate_rule(engine, rule, datetime.now(UTC), delivery)
    firing = {o.labels["subject"]: o for o in outcomes if o.state == "firing"}
    assert sorted(firing) == ["acme"]
    assert firing["acme"].labels == {"budget": "workspace", "subject": "acme", "window": "monthly"}
    assert firing["acme"].value == pytest.approx(106.25)
    # The bucket's soft limit is $50: at $8.50 it is not reached.
    assert {o.labels["subject"]: o.state for o in outcomes} == {"acme": "firing", "premium": None}
