"""On Postgres with 100,000 requests recorded, the console's main list queries read traces
through an index, never by scanning the whole table.

The rows are made by one INSERT ... SELECT over generate_series (a few seconds), spread over 30
days among 5 workspaces, 50 keys, 10 models, mostly ok with a share of errors, denials and
cancellations, a tenth tagged `beta`; a request's workspace, model, tag and team do not go
together, so a filter within one workspace finds rows as it would in real traffic.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

import migrations
from telemetry.db import create_engine
from telemetry.retention.job import run_retention
from telemetry.retention.policy import RetentionConfig
from telemetry.schema import traces
from telemetry.search import TraceFilter, traces_statement
from tests.e2e.conftest import _create_postgres, _drop_postgres

TRACES = 100_000
NOW = datetime(2026, 12, 1, tzinfo=UTC)

_FILL = f"""
INSERT INTO traces (
    trace_id, workspace_id, api_key_id, request_id, end_user, route, method, started_at,
    ended_at, duration_ms, status, http_status, requested_model, provider, provider_model,
    stream, error_type, tags, metadata, features, deployment, cost_usd, total_tokens
)
SELECT
    lpad(to_hex((extract(epoch FROM started) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(n::text), 1, 19),
    'ws' || lpad((n % 5)::text, 30, '0'),
    'key' || (n % 50),
    'req-' || n,
    CASE WHEN n % 3 = 0 THEN NULL ELSE 'user-' || (n % 997) END,
    '/v1/chat/completions',
    'POST',
    started,
    started + interval '1 millisecond' * (n % 4000),
    (n % 4000)::float8 + 0.25,
    status,
    CASE status WHEN 'ok' THEN 200 WHEN 'error' THEN 502 WHEN 'denied' THEN 429 ELSE 499 END,
    'model-' || (n / 7 % 10),
    'provider-' || (n % 3),
    'model-' || (n / 7 % 10) || '-2024',
    n % 4 = 0,
    CASE status WHEN 'ok' THEN NULL WHEN 'error' THEN 'upstream_error'
        WHEN 'denied' THEN 'rate_limit_exceeded' ELSE 'client_disconnected' END,
    CASE WHEN n / 3 % 10 = 0 THEN '["prod", "beta"]' ELSE '["prod"]' END::jsonb,
    jsonb_build_object('team', 'team-' || (n / 11 % 20)),
    '{{}}'::jsonb,
    'deployment-' || (n % 6),
    (n % 1000) / 100000.0,
    n % 2000
FROM (
    SELECT
        n,
        timestamptz '{NOW.isoformat()}' - interval '26 seconds' * ({TRACES} - n) AS started,
        CASE WHEN n % 50 = 1 THEN 'error' WHEN n % 50 = 2 THEN 'denied'
            WHEN n % 100 = 3 THEN 'cancelled' ELSE 'ok' END AS status
    FROM generate_series(1, {TRACES}) AS n
) AS generated
"""


class Explain(Executable, ClauseElement):
    inherit_cache = True

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


@pytest.fixture(scope="module")
async def filled(postgres_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_database)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(_FILL)
    # The rows landed in the default partition (the migration made partitions for today and
    # ahead only); the retention job moves each day's rows into a partition of its own.
    await run_retention(engine, RetentionConfig(), now=NOW)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE traces")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = _create_postgres()
    try:
        migrations.upgrade(url)
        yield url
    finally:
        _drop_postgres(url)


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += nodes(child)
    return found


async def plan_of(engine: AsyncEngine, statement: sa.Select[Any]) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        raw = (await conn.execute(Explain(statement))).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    return nodes(document[0]["Plan"])


SMALL_PARTITION = 100
"""Rows a partition may hold and still be read whole: a page or two, which the planner rightly
reads at once (the first and last days of the fill hold a few rows, days ahead none)."""


async def _rows_per_partition(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM traces GROUP BY 1"
        )
        return {name: int(count) for name, count in rows.all()}


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "first page": ({}, "newest"),
    "by model": ({"models": ("model-3",)}, "newest"),
    "by key": ({"api_key_ids": ("key7",)}, "newest"),
    "by status": ({"statuses": ("error",)}, "newest"),
    "by tag": ({"tags_all": ("beta",)}, "newest"),
    "by time range": (
        {"since": NOW - timedelta(minutes=15), "until": NOW - timedelta(minutes=5)},
        "newest",
    ),
    "by end user": ({"end_users": ("user-5",)}, "newest"),
    "by metadata": ({"metadata": (("team", "team-3"),)}, "newest"),
    "by request id": ({"request_ids": ("req-777",)}, "newest"),
    "sorted by duration": ({}, "duration"),
    "sorted by cost": ({}, "cost"),
}


@pytest.mark.parametrize("scope", [None, "ws" + "0" * 29 + "2"], ids=["every workspace", "one"])
@pytest.mark.parametrize("case", list(CASES))
async def test_list_queries_use_an_index_at_100k_traces(
    filled: AsyncEngine, case: str, scope: str | None
) -> None:
    filters, sort = CASES[case]
    statement = traces_statement(
        TraceFilter(**filters), scope=scope, dialect="postgresql", sort=sort, limit=50
    )
    plan = await plan_of(filled, statement)
    holding = await _rows_per_partition(filled)
    assert len(holding) == 32 and "traces_default" not in holding  # a day each, none left over
    large = {name for name, rows in holding.items() if rows >= SMALL_PARTITION}
    assert len(large) == 31
    on_traces = [node for node in plan if node.get("Relation Name") in large]
    assert on_traces, plan
    kinds = {node["Node Type"] for node in on_traces}
    assert "Seq Scan" not in kinds, (case, kinds)
    assert kinds <= {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}, (case, kinds)


async def test_a_lookup_by_trace_id_reads_one_partition(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        trace_id = await conn.scalar(sa.text("SELECT trace_id FROM traces LIMIT 1 OFFSET 5000"))
    plan = await plan_of(filled, sa.select(traces).where(traces.c.trace_id == trace_id))
    relations = {node["Relation Name"] for node in plan if "Relation Name" in node}
    assert len(relations) == 1 and re.fullmatch(r"traces_p\d{8}", relations.pop())
    assert {node["Node Type"] for node in plan} <= {"Index Scan", "Append", "Result"}


async def test_the_filled_table_holds_what_the_cases_look_for(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        counts = (
            await conn.execute(
                sa.text(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'error'),"
                    " count(*) FILTER (WHERE tags @> '[\"beta\"]'),"
                    " count(*) FILTER (WHERE api_key_id = 'key7') FROM traces"
                )
            )
        ).one()
    numbers = range(1, TRACES + 1)
    assert tuple(counts) == (
        TRACES,
        sum(1 for n in numbers if n % 50 == 1),
        sum(1 for n in numbers if n // 3 % 10 == 0),
        sum(1 for n in numbers if n % 50 == 7),
    )


async def test_the_statement_runs_and_finds_rows(filled: AsyncEngine) -> None:
    statement = traces_statement(
        TraceFilter(models=("model-0",), tags_all=("beta",)),
        scope=None,
        dialect="postgresql",
        limit=10,
    )
    async with filled.connect() as conn:
        rows = (await conn.execute(statement)).all()
    assert len(rows) == 11  # one more than the page, to tell that another follows
    assert all(row.requested_model == "model-0" and "beta" in row.tags for row in rows)
