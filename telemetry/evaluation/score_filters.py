"""The traces explorer's filters on evaluations: one EXISTS subquery on `evaluations` by the
trace's id and workspace (the trace_id index), so a list of traces stays one query.

The conditions given hold of one and the same evaluation: `evaluator=tone&max_score=40` finds
traces that the tone evaluator scored 40 or less, not traces some evaluator scored low and the
tone evaluator judged. A score bound reads each evaluation's mean (only evaluations that ended
ok have one); `evaluated` alone asks whether any evaluation, whatever its status, exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from telemetry.schema import evaluations, traces
from telemetry.search_json import array_holds_any

Condition = sa.ColumnElement[bool]


def evaluation_conditions(
    *,
    evaluated: bool | None,
    evaluators: Sequence[str],
    min_score: float | None,
    max_score: float | None,
    flags: Sequence[str],
    dialect: str,
) -> list[Condition]:
    e = evaluations.c
    inside: list[Condition] = []
    if evaluators:
        inside.append(e.evaluator_name.in_(evaluators))
    if min_score is not None:
        inside.append(e.score >= min_score)
    if max_score is not None:
        inside.append(e.score <= max_score)
    if flags:
        inside.append(array_holds_any(e.flags, flags, dialect))
    if not inside and evaluated is None:
        return []
    found: Any = sa.exists().where(
        e.trace_id == traces.c.trace_id, e.workspace_id == traces.c.workspace_id, *inside
    )
    if evaluated is False:
        if inside:
            # "not evaluated" with a condition on the evaluation cannot hold of one evaluation
            return [sa.false()]
        return [~found]
    return [found]
