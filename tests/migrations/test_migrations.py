"""The migrations build exactly the tables in telemetry.schema, on SQLite and Postgres alike."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

import migrations
from telemetry.db import as_utc, create_engine
from telemetry.retention.partitions import is_partition_name
from telemetry.schema import DEFAULT_WORKSPACE_ID, for_dialect, metadata, usage_breakdowns

TABLES = {
    "workspaces",
    "api_keys",
    "traces",
    "spans",
    "decisions",
    "ai_interactions",
    "usage_rollups",
    "usage_breakdowns",
    "rules",
    "rule_versions",
    "budget_spend",
    "guardrail_violations",
    "users",
    "memberships",
    "console_sessions",
    "signin_links",
    "audit_log",
    "dashboards",
    "usage_pending",
    "alert_rules",
    "notification_channels",
    "alert_instances",
    "alert_events",
    "alert_deliveries",
    "silences",
    "report_definitions",
    "report_instances",
    "report_files",
    "alert_builtin_installs",
    "evaluators",
    "evaluation_queue",
    "evaluations",
    "comparisons",
    "stored_responses",
}
ALERT_TABLES = {
    "alert_rules",
    "notification_channels",
    "alert_instances",
    "alert_events",
    "alert_deliveries",
    "silences",
    "alert_builtin_installs",
}
REPORT_TABLES = {"report_definitions", "report_instances", "report_files"}
QUALITY_TABLES = {"evaluators", "evaluation_queue", "evaluations", "comparisons"}
RESPONSES_TABLES = {"stored_responses"}
SINCE_QUALITY = QUALITY_TABLES | RESPONSES_TABLES
CONSOLE_TABLES = {"users", "memberships", "console_sessions", "signin_links", "audit_log"}
NEWER_TABLES = (
    CONSOLE_TABLES
    | {"usage_breakdowns", "dashboards", "usage_pending"}
    | ALERT_TABLES
    | REPORT_TABLES
    | SINCE_QUALITY
)
LIMIT_COLUMNS = {
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budgets",
    "default_tags",
}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "include_object": for_dialect(connection.dialect.name)},
    )
    return list(compare_metadata(context, metadata))


def _inspect(connection: Connection) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    every = set(inspector.get_table_names()) - {"alembic_version"}
    tables = {name for name in every if not is_partition_name(name)}
    return {
        "tables": tables,
        "partitions": every - tables,
        "rollup_pk": inspector.get_pk_constraint("usage_rollups") if tables else None,
        "indexes": {
            table: {index["name"] for index in inspector.get_indexes(table)} for table in tables
        },
        "columns": {
            table: {column["name"] for column in inspector.get_columns(table)} for table in tables
        },
        "spend_pk": (
            inspector.get_pk_constraint("budget_spend") if "budget_spend" in tables else None
        ),
    }


async def _with_connection(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


async def _default_workspaces(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.text("SELECT workspace_id, name, slug, settings FROM workspaces")
            )
            return list(result.all())
    finally:
        await engine.dispose()


async def test_upgrade_matches_the_schema_and_downgrade_undoes_it(database_url: str) -> None:
    assert await asyncio.to_thread(migrations.current, database_url) is None

    await asyncio.to_thread(migrations.upgrade, database_url)
    assert await asyncio.to_thread(migrations.current, database_url) == migrations.head()
    assert await _with_connection(database_url, _differences) == []
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == TABLES == set(metadata.tables)
    if database_url.startswith("postgresql"):
        # Only the default partitions: the retention job makes the days when a gateway starts.
        assert shape["partitions"] == {
            f"{table}_default"
            for table in ("traces", "spans", "decisions", "ai_interactions", "guardrail_violations")
        }
    else:
        assert shape["partitions"] == set()
    assert shape["rollup_pk"]["constrained_columns"] == [
        "grain",
        "bucket_start",
        "workspace_id",
        "api_key_id",
        "source",
        "provider",
        "model",
        "served_model",
        "deployment",
        "status",
        "error_type",
        "cache_hit",
    ]
    assert "ix_usage_rollups_workspace_id_grain_bucket_start" in shape["indexes"]["usage_rollups"]
    assert "ix_traces_requested_model_started_at" in shape["indexes"]["traces"]
    assert "ix_rule_versions_rule_id_version" in shape["indexes"]["rule_versions"]
    assert shape["spend_pk"]["constrained_columns"] == [
        "scope",
        "subject",
        "window",
        "window_start",
    ]
    (workspace,) = await _default_workspaces(database_url)
    assert tuple(workspace[:3]) == (DEFAULT_WORKSPACE_ID, "Default", "default")

    await asyncio.to_thread(migrations.downgrade, database_url, "base")
    assert await asyncio.to_thread(migrations.current, database_url) is None
    assert (await _with_connection(database_url, _inspect))["tables"] == set()

    await asyncio.to_thread(migrations.upgrade, database_url)
    assert await _with_connection(database_url, _differences) == []
    assert len(await _default_workspaces(database_url)) == 1


async def test_the_api_works_when_called_inside_a_running_event_loop(sqlite_url: str) -> None:
    migrations.upgrade(sqlite_url)  # blocks this loop briefly, but must not fail
    assert migrations.current(sqlite_url) == migrations.head()
    migrations.upgrade(sqlite_url)  # already at head: nothing to do
    assert migrations.current(sqlite_url) == migrations.head()


def test_upgrading_twice_is_harmless_from_plain_code(sqlite_url: str) -> None:
    migrations.upgrade(sqlite_url)
    migrations.upgrade(sqlite_url)
    assert migrations.current(sqlite_url) == migrations.head()


async def _insert_key(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO api_keys (key_id, workspace_id, name, key_hash, display_prefix,"
                    " role, metadata, created_at) VALUES ('k1', :w, 'old key', :h, 'sk-sw-abc...',"
                    " 'user', '{}', CURRENT_TIMESTAMP)"
                ),
                {"w": DEFAULT_WORKSPACE_ID, "h": "0" * 64},
            )
    finally:
        await engine.dispose()


async def _key_limits(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.text(
                    "SELECT key_id, allowed_models, rpm_limit, tpm_limit, max_parallel, budgets,"
                    " default_tags FROM api_keys"
                )
            )
            return [tuple(row) for row in result.all()]
    finally:
        await engine.dispose()


async def test_limits_migration_keeps_existing_keys_and_undoes_cleanly(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url, "0002")
    await _insert_key(database_url)

    await asyncio.to_thread(migrations.upgrade, database_url)
    rows = await _key_limits(database_url)
    (row,) = rows
    json_values = [json.loads(v) if isinstance(v, str) else v for v in (row[1], row[5], row[6])]
    assert (row[0], *row[2:5]) == ("k1", None, None, None)
    assert json_values == [None, [], []]

    await asyncio.to_thread(migrations.downgrade, database_url, "0002")
    assert await asyncio.to_thread(migrations.current, database_url) == "0002"
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == TABLES - {"budget_spend", "guardrail_violations"} - NEWER_TABLES
    assert not LIMIT_COLUMNS & shape["columns"]["api_keys"]
    assert "cost_saved_usd" not in shape["columns"]["ai_interactions"]
    assert "ix_ai_interactions_workspace_id_started_at" in shape["indexes"]["ai_interactions"]
    assert len(await _default_workspaces(database_url)) == 1

    await asyncio.to_thread(migrations.upgrade, database_url)
    assert await _with_connection(database_url, _differences) == []
    assert [row[0] for row in await _key_limits(database_url)] == ["k1"]


async def test_guardrails_migration_gives_existing_keys_no_guardrails(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url, "0003")
    await _insert_key(database_url)
    await asyncio.to_thread(migrations.upgrade, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(sa.text("SELECT guardrails FROM api_keys"))
            ).scalar_one()
    finally:
        await engine.dispose()
    assert (json.loads(stored) if isinstance(stored, str) else stored) == []

    await asyncio.to_thread(migrations.downgrade, database_url, "0003")
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == TABLES - {"guardrail_violations"} - NEWER_TABLES
    assert "guardrails" not in shape["columns"]["api_keys"]
    await asyncio.to_thread(migrations.upgrade, database_url)
    assert await _with_connection(database_url, _differences) == []


async def test_downgrading_to_0001_drops_the_rule_tables(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    await asyncio.to_thread(migrations.downgrade, database_url, "0001")
    assert await asyncio.to_thread(migrations.current, database_url) == "0001"
    tables = (await _with_connection(database_url, _inspect))["tables"]
    assert (
        tables
        == TABLES
        - {"rules", "rule_versions", "budget_spend", "guardrail_violations"}
        - NEWER_TABLES
    )
    assert len(await _default_workspaces(database_url)) == 1


async def test_downgrading_to_0009_drops_the_dashboards_and_the_pending_hours_only(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    await asyncio.to_thread(migrations.downgrade, database_url, "0010")
    shape = await _with_connection(database_url, _inspect)
    assert (
        shape["tables"] == TABLES - {"usage_pending"} - ALERT_TABLES - REPORT_TABLES - SINCE_QUALITY
    )
    await asyncio.to_thread(migrations.downgrade, database_url, "0009")
    assert await asyncio.to_thread(migrations.current, database_url) == "0009"
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == (
        TABLES - {"dashboards", "usage_pending"} - ALERT_TABLES - REPORT_TABLES - SINCE_QUALITY
    )
    await asyncio.to_thread(migrations.upgrade, database_url)
    assert await _with_connection(database_url, _differences) == []


async def test_downgrading_to_0013_drops_the_alert_tables_only(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    await asyncio.to_thread(migrations.downgrade, database_url, "0013")
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == TABLES - ALERT_TABLES - REPORT_TABLES - SINCE_QUALITY
    await asyncio.to_thread(migrations.upgrade, database_url)
    shape = await _with_connection(database_url, _inspect)
    assert "uq_alert_instances_open_rule_id_fingerprint" in shape["indexes"]["alert_instances"]
    assert await _with_connection(database_url, _differences) == []


async def test_downgrading_to_0014_drops_the_reports_and_built_in_installs_only(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    await asyncio.to_thread(migrations.downgrade, database_url, "0014")
    shape = await _with_connection(database_url, _inspect)
    assert shape["tables"] == TABLES - REPORT_TABLES - {"alert_builtin_installs"} - SINCE_QUALITY
    assert "silenced_by" not in shape["columns"]["alert_instances"]
    assert "managed_by" not in shape["columns"]["alert_rules"]
    await asyncio.to_thread(migrations.upgrade, database_url)
    shape = await _with_connection(database_url, _inspect)
    assert "ix_report_definitions_enabled_next_run_at" in shape["indexes"]["report_definitions"]
    assert await _with_connection(database_url, _differences) == []


def test_a_bad_url_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(ValueError, match="mysql") as caught:
        migrations.upgrade("mysql://admin:hunter2@db.example/steerway")
    assert "hunter2" not in str(caught.value)


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(sa.text(sql))).all()]
    finally:
        await engine.dispose()


async def _insert_old_rollup(url: str, minute: str, requests: int, bucket: int) -> None:
    engine = create_engine(url)
    buckets = {f"latency_bucket_{n}": int(n == bucket) * requests for n in range(13)}
    columns = ", ".join(buckets)
    marks = ", ".join(f":{name}" for name in buckets)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO usage_rollups (bucket_start, workspace_id, api_key_id, provider,"
                    " model, requests, errors, cache_hits, prompt_tokens, completion_tokens,"
                    f" cached_tokens, cost_usd, latency_ms_sum, {columns}) VALUES (:minute, :w,"
                    " 'k1', 'openai', 'gpt-x', :requests, 1, 0, 70, 30, 0, 2, :latency,"
                    f" {marks})"
                ).bindparams(sa.bindparam("minute", type_=sa.DateTime(timezone=True))),
                {
                    "minute": datetime.fromisoformat(minute).replace(tzinfo=UTC),
                    "w": DEFAULT_WORKSPACE_ID,
                    "requests": requests,
                    "latency": 80.0 * requests,
                    **buckets,
                },
            )
    finally:
        await engine.dispose()


async def test_the_analytics_migration_carries_minute_rollups_over_and_sums_hours_and_days(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url, "0008")
    # Two minutes of one hour and a minute of the next day; bucket 3 is "up to 100 ms".
    await _insert_old_rollup(database_url, "2026-03-01 10:05:00", 4, 3)
    await _insert_old_rollup(database_url, "2026-03-01 10:59:00", 3, 3)
    await _insert_old_rollup(database_url, "2026-03-02 00:00:00", 5, 12)
    await asyncio.to_thread(migrations.upgrade, database_url)
    rows = await _rows(
        database_url,
        "SELECT grain, requests, errors, prompt_tokens, latency_le_100, latency_le_inf,"
        " latency_le_75, status, served_model FROM usage_rollups"
        " ORDER BY grain, bucket_start",
    )
    assert rows == [
        ("day", 7, 2, 140, 7, 0, 0, "", ""),
        ("day", 5, 1, 70, 0, 5, 0, "", ""),
        ("hour", 7, 2, 140, 7, 0, 0, "", ""),
        ("hour", 5, 1, 70, 0, 5, 0, "", ""),
        ("minute", 4, 1, 70, 4, 0, 0, "", ""),
        ("minute", 3, 1, 70, 3, 0, 0, "", ""),
        ("minute", 5, 1, 70, 0, 5, 0, "", ""),
    ]
    hours = await _rows(
        database_url, "SELECT bucket_start FROM usage_rollups WHERE grain = 'hour' ORDER BY 1"
    )
    assert [str(hour[0])[:19] for hour in hours] == ["2026-03-01 10:00:00", "2026-03-02 00:00:00"]


def _breakdown(hour: int, key: str, kind: str, name: str, events: int, cost: str) -> dict[str, Any]:
    return {
        "grain": "hour",
        "bucket_start": datetime(2026, 12, 1, hour, tzinfo=UTC),
        "workspace_id": DEFAULT_WORKSPACE_ID,
        "api_key_id": key,
        "kind": kind,
        "name": name,
        "detail": "",
        "events": events,
        "errors": 1,
        "cost_usd": Decimal(cost),
        "tokens": 10 * events,
    }


async def _breakdowns(url: str, rows: list[dict[str, Any]] | None = None) -> set[tuple[Any, ...]]:
    """Write `rows` into usage_breakdowns, then read what it holds."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            if rows:
                await connection.execute(usage_breakdowns.insert(), rows)
            found = await connection.execute(
                sa.select(
                    usage_breakdowns.c.bucket_start,
                    usage_breakdowns.c.api_key_id,
                    usage_breakdowns.c.kind,
                    usage_breakdowns.c.name,
                    usage_breakdowns.c.events,
                    usage_breakdowns.c.errors,
                    usage_breakdowns.c.cost_usd,
                    usage_breakdowns.c.tokens,
                )
            )
            return {(as_utc(row[0]).hour, *row[1:]) for row in found.all()}
    finally:
        await engine.dispose()


async def test_the_totals_migration_sums_the_stored_tags_and_end_users(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url, "0012")
    named = [
        _breakdown(9, "k1", "tag", "prod", 3, "0.0000000001"),
        _breakdown(9, "k1", "tag", "search", 2, "0.25"),
        _breakdown(9, "k2", "tag", "prod", 7, "1.5"),
        _breakdown(10, "k1", "tag", "prod", 4, "0.5"),
        _breakdown(9, "k1", "end_user", "alice", 5, "0.125"),
        _breakdown(9, "k1", "end_user", "bob", 6, "0.375"),
        _breakdown(9, "k1", "rule", "r1", 8, "0.75"),
    ]
    # A writer of this version began a total before the migration ran: it is made whole.
    begun = _breakdown(10, "k1", "tag_total", "", 1, "0.125")
    before = await _breakdowns(database_url, [*named, begun])
    before.remove((10, "k1", "tag_total", "", 1, 1, Decimal("0.125"), 10))

    await asyncio.to_thread(migrations.upgrade, database_url)
    after = await _breakdowns(database_url)
    one = Decimal("0.0000000001")
    assert after - before == {
        (9, "k1", "tag_total", "", 5, 2, Decimal("0.25") + one, 50),
        (9, "k2", "tag_total", "", 7, 1, Decimal("1.5"), 70),
        (10, "k1", "tag_total", "", 4, 1, Decimal("0.5"), 40),
        (9, "k1", "end_user_total", "", 11, 2, Decimal("0.5"), 110),
    }
    assert before <= after

    await asyncio.to_thread(migrations.downgrade, database_url, "0012")
    assert await _breakdowns(database_url) == before


async def test_a_failed_run_leaves_the_database_as_it_was(database_url: str) -> None:
    """Every migration of a run is one transaction, on SQLite too: a step that fails (here a
    table of the last revision already exists) undoes the steps before it."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE silences (id INTEGER)"))
    finally:
        await engine.dispose()
    with pytest.raises(Exception, match="silences"):
        await asyncio.to_thread(migrations.upgrade, database_url)
    assert await asyncio.to_thread(migrations.current, database_url) is None
    names = await _with_connection(database_url, lambda c: sa.inspect(c).get_table_names())
    assert names == ["silences"]
