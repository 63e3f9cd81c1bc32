"""`eval_score` rules on both backends: the rule's checks name the field, the evaluation fires
for a model whose mean score falls below the threshold with enough scores, leaves alone one
with too few, reads one criterion when asked, never counts another workspace's scores, and the
background evaluator sends the firing to a webhook."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import AlertEvaluator, RuleError, evaluate_rule, parse_rule
from telemetry.alerts.rule_store import create_rule
from tests.telemetry.alerts.alert_history import (
    DELIVERY,
    OTHER_WORKSPACE,
    add_workspace,
    alerts_of,
    webhook_channel,
)
from tests.telemetry.alerts.receivers import Receiver
from tests.telemetry.evaluation_history import Judged, plant

RULE = {
    "name": "Answers got worse",
    "metric": "eval_score",
    "filters": {"evaluator": ["helpful"]},
    "group_by": ["model"],
    "condition": "below",
    "warning": 70,
    "critical": 40,
    "min_requests": 5,
    "window": "1h",
}


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({**RULE, "filters": {}}, "filters.evaluator", "needs the evaluator"),
        ({**RULE, "filters": {"evaluator": "x", "tag": "y"}}, "filters.tag", "filtered by"),
        ({**RULE, "group_by": ["provider"]}, "group_by", "evaluator, model"),
        (
            {**RULE, "condition": "change_pct", "warning": -10, "critical": -20},
            "condition",
            "above, below",
        ),
        ({**RULE, "warning": 170, "critical": 180, "condition": "above"}, "warning", "0 to 100"),
        ({**RULE, "kind": "cost"}, "kind", "takes no kind"),
        (
            {**RULE, "filters": {"evaluator": "x", "criterion": ["a", "b"]}},
            "filters.criterion",
            "one",
        ),
    ],
)
def test_a_wrong_score_rule_names_the_field(data: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(RuleError) as raised:
        parse_rule(data)
    assert raised.value.field == field
    assert says in raised.value.reason


def _scores(now: datetime, model: str, values: list[float], **extra: Any) -> list[Judged]:
    return [
        Judged(
            at=now - timedelta(minutes=50) + timedelta(minutes=n),
            model=model,
            scores={"accuracy": value, "tone": 90},
            evaluator="helpful",
            **extra,
        )
        for n, value in enumerate(values)
    ]


async def test_a_model_below_the_threshold_fires(engine: AsyncEngine) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await add_workspace(engine)
    history = [
        *_scores(now, "good", [80] * 6),  # mean (80 + 90) / 2 = 85
        *_scores(now, "poor", [20, 30, 40, 30, 20, 40]),  # mean (30 + 90) / 2 = 60
        *_scores(now, "rare", [0, 0]),  # mean 45, but 2 scores < min 5
        *_scores(now, "poor", [90] * 10, workspace_id=OTHER_WORKSPACE),
        *_scores(now - timedelta(hours=2), "good", [0] * 10),  # before the window
        Judged(at=now - timedelta(minutes=5), model="good", status="failed", evaluator="helpful"),
    ]
    await plant(engine, history, with_requests=False)
    rule = await create_rule(engine, parse_rule(RULE))
    found = {o.labels["model"]: o for o in await evaluate_rule(engine, rule, now)}
    assert set(found) == {"good", "poor", "rare"}
    assert (found["poor"].state, found["poor"].value) == ("firing", 60)
    assert found["good"].state is None and found["good"].value == 85
    assert found["rare"].state is None
    one = parse_rule(
        {
            **RULE,
            "name": "Accuracy got worse",
            "filters": {"evaluator": ["helpful"], "criterion": ["accuracy"]},
        }
    )
    one = await create_rule(engine, one)
    by_accuracy = {o.labels["model"]: o for o in await evaluate_rule(engine, one, now)}
    assert by_accuracy["poor"].value == 30  # below the critical threshold of 40
    assert by_accuracy["good"].value == 80


async def test_the_evaluator_sends_a_score_alert(engine: AsyncEngine, hook: Receiver) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await plant(engine, _scores(now, "poor", [10] * 8), with_requests=False)
    channel = await webhook_channel(engine, f"{hook.url}/hook")
    await create_rule(
        engine, parse_rule({**RULE, "group_by": [], "channels": [channel], "window": "2h"})
    )
    evaluator = AlertEvaluator(engine, interval=0.05, delivery=DELIVERY)
    await evaluator.start()
    try:
        async with asyncio.timeout(10):
            await hook.arrived.wait()
    finally:
        await evaluator.close()
    (alert,) = alerts_of(hook.received)
    assert (alert["state"], alert["severity"], alert["value"]) == ("firing", "warning", 50)
    assert "Evaluation score" in alert["summary"]


def test_the_docs_example_is_a_valid_rule() -> None:
    text = (Path(__file__).parents[3] / "docs" / "alerts.md").read_text()
    section = text.split("### Evaluation scores", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    rule = parse_rule(yaml.safe_load(example))
    assert (rule.metric, rule.filters["criterion"], rule.min_requests) == (
        "eval_score",
        ["accuracy"],
        20,
    )
