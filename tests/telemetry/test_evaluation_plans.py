"""On Postgres with 100,000 evaluations recorded, the score queries of one workspace and range
(and of every workspace, an operator's view) read `evaluations` through an index, never by
scanning the whole table: each statement a function runs is captured and explained with its
own parameters.

The rows are made by one INSERT ... SELECT over generate_series, spread over 30 days among 5
workspaces, 6 models and 3 evaluators, mostly ok.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine
from telemetry.evaluation import scores
from telemetry.evaluation.scores import Variant
from telemetry.search import TraceFilter, search_traces

EVALUATIONS = 100_000
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WORKSPACE = "ws" + "0" * 29 + "1"

_FILL = f"""
INSERT INTO evaluations (
    evaluation_id, workspace_id, evaluator_id, evaluator_name, trace_id, interaction_id,
    requested_model, provider_model, judge_model, status, scores, score, flags, cost_usd,
    attempts, created_at
)
SELECT
    lpad(to_hex(n), 32, '0'),
    'ws' || lpad((n % 5)::text, 30, '0'),
    'ev' || (n % 3),
    'evaluator-' || (n % 3),
    md5('t' || n),
    md5('i' || n),
    'model-' || (n / 7 % 6),
    'model-' || (n / 7 % 6),
    'judge',
    CASE WHEN n % 20 = 0 THEN 'failed' ELSE 'ok' END,
    CASE WHEN n % 20 = 0 THEN '{{}}'::jsonb
        ELSE jsonb_build_object('accuracy', n % 101, 'tone', 50) END,
    CASE WHEN n % 20 = 0 THEN NULL ELSE (n % 101 + 50) / 2.0 END,
    CASE WHEN n % 13 = 0 THEN '["hallucination"]'::jsonb ELSE '[]'::jsonb END,
    0.0001,
    1,
    timestamptz '{NOW.isoformat()}' - interval '30 days' * (n::float8 / {EVALUATIONS})
FROM generate_series(1, {EVALUATIONS}) AS n
"""

_WORKSPACES = """
INSERT INTO workspaces (workspace_id, name, slug, settings, created_at)
SELECT 'ws' || lpad(n::text, 30, '0'), 'W' || n, 'w' || n, '{}'::jsonb, now()
FROM generate_series(0, 4) AS n
"""


@pytest.fixture
async def filled(migrated_postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(_FILL)
            await conn.exec_driver_sql(_WORKSPACES)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE evaluations")
            await conn.exec_driver_sql("VACUUM ANALYZE workspaces")
        yield engine
    finally:
        await engine.dispose()


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


async def _plans(
    engine: AsyncEngine, work: Callable[[], Awaitable[Any]]
) -> list[list[dict[str, Any]]]:
    """The plan of every statement `work` runs that reads `evaluations`."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "evaluations" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await work()
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with engine.connect() as conn:
        for statement, parameters in captured:
            raw = (
                await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            ).scalar_one()
            document = json.loads(raw) if isinstance(raw, str) else raw
            plans.append(_nodes(document[0]["Plan"]))
    assert plans, "nothing read evaluations"
    return plans


def _scans(plan: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (node["Node Type"], node.get("Index Name", ""))
        for node in plan
        if node.get("Relation Name") == "evaluations"
    }


DAY = {"since": NOW - timedelta(days=1), "until": NOW}


async def test_score_queries_read_evaluations_through_an_index(filled: AsyncEngine) -> None:
    engine = filled

    async def alert() -> Any:
        async with engine.connect() as connection:
            return await scores.mean_score_groups(
                connection, scope=WORKSPACE, **DAY, evaluators=["evaluator-1"], group_by=("model",)
            )

    work: dict[str, Callable[[], Awaitable[Any]]] = {
        "summary": lambda: scores.status_summary(engine, scope=WORKSPACE, **DAY),
        # an operator's view of every workspace names them, so the index serves it too
        "all": lambda: scores.status_summary(engine, scope=None, **DAY),
        "all series": lambda: scores.score_series(
            engine, scope=None, **DAY, step=3600, by="evaluator"
        ),
        "all ranking": lambda: scores.model_ranking(engine, scope=None, **DAY),
        "series": lambda: scores.score_series(
            engine, scope=WORKSPACE, **DAY, step=3600, by="model", criterion="accuracy"
        ),
        "ranking": lambda: scores.model_ranking(engine, scope=WORKSPACE, **DAY),
        "compare": lambda: scores.compare(
            engine,
            scope=WORKSPACE,
            **DAY,
            a=Variant("model", "model-1"),
            b=Variant("model", "model-2"),
        ),
        "names": lambda: scores.evaluation_names(engine, scope=WORKSPACE, **DAY),
        "alert": alert,
        "trace": lambda: scores.trace_evaluations(engine, "0" * 32, scope=WORKSPACE),
        "explorer": lambda: search_traces(
            engine, TraceFilter(max_score=30.0, evaluators=("evaluator-1",)), scope=WORKSPACE
        ),
    }
    for name, run in work.items():
        for plan in await _plans(engine, run):
            scans = _scans(plan)
            assert scans, (name, plan)
            assert not any(kind == "Seq Scan" for kind, _ in scans), (name, scans)
