"""The explorers' filters on evaluations: one EXISTS subquery on `evaluations` by the judged row's
id and workspace, so a list stays one query. The traces list correlates on the trace's id (the
evaluations' trace_id index), the interactions list on the interaction's id (its interaction_id
index): an evaluation judges one interaction of one request, so of a request's attempts only
the judged one matches.

The conditions given hold of one and the same evaluation: `evaluator=tone&max_score=40` finds
rows that the tone evaluator scored 40 or less, not rows some evaluator scored low and the
tone evaluator judged. A score bound reads each evaluation's mean (only evaluations that ended
ok have one); `evaluated` alone asks whether any evaluation, whatever its status, exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from telemetry.schema import evaluations
from telemetry.search_json import array_holds_any

Condition = sa.ColumnElement[bool]


def evaluation_conditions(
    subject: sa.Column[Any],
    *,
    evaluated: bool | None,
    evaluators: Sequence[str],
    min_score: float | None,
    max_score: float | None,
    flags: Sequence[str],
    dialect: str,
) -> list[Condition]:
    """Conditions on the rows of `subject`'s table, judged by evaluations whose column of the
    same name equals `subject` (`traces.c.trace_id` or `ai_interactions.c.interaction_id`) in
    the same workspace."""
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
        e[subject.key] == subject,
        e.workspace_id == subject.table.c.workspace_id,
        *inside,
    )
    if evaluated is False:
        if inside:
            # "not evaluated" with a condition on the evaluation cannot hold of one evaluation
            return [sa.false()]
        return [~found]
    return [found]
