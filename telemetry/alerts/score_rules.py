"""`eval_score`: the mean score (0-100) an evaluator's judge gave in the rule's window, read from
`evaluations` (`telemetry.evaluation.scores`), not from the roll-ups.

    metric: eval_score
    filters: {evaluator: [helpfulness], model: [gpt-4o-mini], criterion: [accuracy]}
    group_by: [model]            # or [evaluator], or none
    condition: below
    warning: 70
    critical: 50
    min_requests: 20             # here: scores in the window; fewer does not breach
    window: 1h

`filters.evaluator` is required (a score means something only within one judge's rubric);
`filters.criterion` (one) reads that criterion's score instead of each evaluation's mean. The
window ends at the evaluation's moment (evaluations are read as written, not in minutes);
`min_requests` is the least number of scores a group needs to breach, so a handful of answers
never pages anyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.scores import InvalidScoreQuery, mean_score_groups

EVAL_SCORE: Final = "eval_score"
TITLE: Final = "Evaluation score"
DIMENSIONS: Final = ("evaluator", "model")
FILTERS: Final = ("evaluator", "model", "criterion")


class ScoreRuleError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_score_rule(rule: Any) -> None:
    """Raise `ScoreRuleError` naming the first field of an `eval_score` rule that is wrong."""
    if rule.condition == "change_pct":
        raise ScoreRuleError("condition", f"{EVAL_SCORE} is compared with thresholds: above, below")
    if rule.anomaly_kind is not None:
        raise ScoreRuleError("kind", f"{EVAL_SCORE} takes no kind; a criterion is a filter")
    for name in rule.filters:
        if name not in FILTERS:
            raise ScoreRuleError(
                f"filters.{name}", f"{EVAL_SCORE} is filtered by {', '.join(FILTERS)}"
            )
    if not rule.filters.get("evaluator"):
        raise ScoreRuleError(
            "filters.evaluator", f"{EVAL_SCORE} needs the evaluator (or evaluators) it watches"
        )
    if len(rule.filters.get("criterion", [])) > 1:
        raise ScoreRuleError("filters.criterion", "one criterion at most")
    if len(set(rule.group_by)) != len(rule.group_by) or not set(rule.group_by) <= set(DIMENSIONS):
        raise ScoreRuleError(
            "group_by", f"{EVAL_SCORE} can be split by {', '.join(DIMENSIONS)}, each once"
        )
    for field, value in (("warning", rule.warning), ("critical", rule.critical)):
        if value is not None and not 0 <= value <= 100:
            raise ScoreRuleError(field, "a score threshold lies from 0 to 100")


Group = tuple[tuple[str, str], ...]


async def measure_scores(
    engine: AsyncEngine, rule: Any, now: datetime
) -> dict[Group, tuple[float | None, int]]:
    """Each group's (mean score, number of scores) over [now - window, now)."""
    criteria = rule.filters.get("criterion") or [None]
    try:
        async with engine.connect() as connection:
            rows = await mean_score_groups(
                connection,
                scope=rule.workspace_id,
                since=now - timedelta(seconds=rule.window_s),
                until=now,
                evaluators=rule.filters.get("evaluator", ()),
                models=rule.filters.get("model", ()),
                criterion=criteria[0],
                group_by=tuple(rule.group_by),
            )
    except InvalidScoreQuery as error:
        raise ScoreRuleError("filters", str(error)) from error
    return {
        tuple(sorted(zip(rule.group_by, group, strict=True))): (mean, count)
        for group, (count, mean) in rows.items()
    }
