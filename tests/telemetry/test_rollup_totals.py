"""A varied history written through the real batch writer, on SQLite and Postgres: every grain's
roll-ups add up to the raw rows, and each hour row is the sum of its minute rows, each day row
the sum of its hour rows."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.analytics_scans import SharedScans
from telemetry.db import as_utc
from telemetry.records import TraceBundle
from telemetry.rollup_folding import fold_pending
from telemetry.rollups import SUM_COLUMNS
from telemetry.schema import (
    ai_interactions,
    decisions,
    guardrail_violations,
    traces,
    usage_breakdowns,
    usage_rollups,
)
from telemetry.writers import BatchWriter
from tests.telemetry.request_bundles import FAILED, Attempt, Finding, request
from tests.telemetry.rollup_oracle import (
    DIMENSIONS,
    FLOATS,
    GRAINS,
    assert_rollups_match,
    expected_breakdowns,
    expected_rollups,
    stored_breakdowns,
)

START = datetime(2026, 11, 27, 22, 40, tzinfo=UTC).timestamp()
"""The history runs from here for three hours, across midnight."""
WORKSPACES = ("a" * 32, "b" * 32)
KEYS = ("key1", "key2", None)
ZERO = Decimal(0)


def _cost(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(1, 10**7)).scaleb(-10)


def _attempts(rng: random.Random, status: str) -> tuple[tuple[Attempt, ...], list[str]]:
    """The attempts of a request that ended with `status`, and its retry/fallback decisions."""
    provider = rng.choice(("openai", "anthropic"))
    ok = Attempt(
        provider=provider,
        served=rng.choice((f"{provider}-small", f"{provider}-large")),
        deployment=rng.choice(("primary", "eu")),
        prompt=rng.randrange(1, 4000),
        completion=rng.randrange(0, 800),
        cached=rng.choice((None, 0, 64)),
        cost=_cost(rng) if rng.random() > 0.1 else None,  # a model without a price
        ttft_ms=rng.choice((None, rng.uniform(0.5, 4000.0))),
    )
    if status == "cancelled":
        return (replace(ok, status="cancelled", completion=None),), []
    if status == "error":
        used = Attempt(
            status="error", prompt=rng.randrange(1, 99), cost=_cost(rng), error_type="timeout"
        )
        return rng.choice(((FAILED,), (FAILED, FAILED), (used, FAILED))), ["retry"]
    if rng.random() < 0.15:
        saved = _cost(rng)
        return (Attempt(cache_hit=True, deployment="cache", cost=ZERO, cost_saved=saved),), []
    kind = rng.random()
    if kind < 0.15:
        return (FAILED, ok), ["retry"]
    if kind < 0.25:
        return (FAILED, replace(ok, provider="azure", deployment="fallback")), ["fallback"]
    return (ok,), []


def history(seed: int, size: int) -> list[TraceBundle]:
    rng = random.Random(seed)
    bundles = []
    for n in range(size):
        status = rng.choices(("ok", "error", "denied", "cancelled"), (80, 10, 5, 5))[0]
        at = START + rng.uniform(0, 3 * 3600)
        if n % 25 == 0:
            at = float(int(at) // 60 * 60)  # exactly on a minute's start
        if status == "denied":
            attempts: tuple[Attempt, ...] = ()
            decided: list[str] = []
        else:
            attempts, decided = _attempts(rng, status)
        bundles.append(
            request(
                at=at,
                duration_ms=rng.choice((rng.uniform(0.2, 3000.0), rng.uniform(3000, 400_000))),
                workspace_id=rng.choice(WORKSPACES),
                api_key_id=rng.choice(KEYS),
                model=rng.choice(("fast", "smart")),
                status="error" if status == "denied" else status,
                error_type={"error": "timeout", "denied": "invalid_api_key"}.get(status),
                source=rng.choices(("proxy", "otlp", "evaluation"), (90, 5, 5))[0],
                attempts=attempts,
                overhead_ms=rng.choice((None, rng.uniform(0.05, 3.0))),
                tags=rng.sample(("prod", "search", "batch", "beta"), rng.randrange(0, 3)),
                end_user=rng.choice((None, *(f"user-{u}" for u in range(12)))),
                rules=rng.sample(("cheap-first", "eu-only", "long-context"), rng.randrange(0, 2)),
                decisions=decided,
                findings=rng.choice(
                    (
                        (),
                        (),
                        (Finding("pii", "mask", {"EMAIL": rng.randrange(1, 3)}),),
                        (Finding("injection", "block"),),
                    )
                ),
            )
        )
    return bundles


async def _table(engine: AsyncEngine, table: sa.Table) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(sa.select(table))).mappings()]


def _summed_up(rows: list[dict[str, Any]], into: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Rows of a finer grain added up per bucket of the coarser grain `into` and dimensions."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        bucket = GRAINS[into](as_utc(row["bucket_start"]))  # type: ignore[arg-type]
        key = (bucket, *(row[name] for name in DIMENSIONS))
        total = sums.setdefault(key, dict.fromkeys(SUM_COLUMNS, 0))
        for name in SUM_COLUMNS:
            total[name] += row[name]
    return sums


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(as_utc(row["bucket_start"]), *(row[name] for name in DIMENSIONS)): row for row in rows}


def _assert_same_sums(
    coarse: dict[tuple[Any, ...], dict[str, Any]], summed: dict[tuple[Any, ...], dict[str, Any]]
) -> None:
    assert set(coarse) == set(summed)
    for key, total in summed.items():
        for name in SUM_COLUMNS:
            if name in FLOATS:
                assert coarse[key][name] == pytest.approx(total[name], rel=1e-9), (key, name)
            else:
                assert coarse[key][name] == total[name], (key, name)


async def test_every_grain_adds_up_to_the_raw_rows(engine: AsyncEngine) -> None:
    bundles = history(seed=15, size=600)
    writer = BatchWriter(engine)
    for start, end in ((0, 1), (1, 200), (200, 450), (450, 600)):
        await writer.write(bundles[start:end])
    await writer.write(bundles[100:300], skip_existing=True)  # a replay adds nothing

    raw = {
        table.name: await _table(engine, table)
        for table in (traces, ai_interactions, decisions, guardrail_violations)
    }
    assert len(raw["traces"]) == len(bundles)
    assert {t["status"] for t in raw["traces"]} == {"ok", "error", "denied", "cancelled"}
    assert {t["source"] for t in raw["traces"]} == {"proxy", "otlp", "evaluation"}
    raw = users_requests(raw)
    await _assert_analytics_see_everything(engine, users_bundles(bundles))
    if engine.dialect.name == "postgresql":
        # the recorder marked its hours; the hour and day rows are summed by the fold
        hours = {int(b.trace.started_at // 3600 * 3600) for b in bundles}
        marked = await fold_pending(engine)
        assert {int(hour.timestamp()) for hour in marked} == hours
        assert await fold_pending(engine) == []
    else:
        assert await fold_pending(engine) == []
    requests = len(raw["traces"])
    errors = sum(1 for t in raw["traces"] if t["status"] == "error")
    cost = sum((i["cost_usd"] for i in raw["ai_interactions"] if i["cost_usd"]), ZERO)
    prompt = sum(i["prompt_tokens"] or 0 for i in raw["ai_interactions"])
    total = sa.func.sum
    async with engine.connect() as connection:
        per_grain = {
            row.grain: row
            for row in await connection.execute(
                sa.select(
                    usage_rollups.c.grain,
                    total(usage_rollups.c.requests).label("requests"),
                    total(usage_rollups.c.cost_usd).label("cost_usd"),
                    total(usage_rollups.c.prompt_tokens).label("prompt_tokens"),
                    total(usage_rollups.c.errors).label("errors"),
                ).group_by(usage_rollups.c.grain)
            )
        }
    assert set(per_grain) == set(GRAINS)
    for grain, sums in per_grain.items():
        assert sums.requests == requests, grain
        assert sums.cost_usd == cost, grain
        assert sums.prompt_tokens == prompt, grain
        assert sums.errors == errors, grain

    stored = await _table(engine, usage_rollups)
    grains = {grain: [row for row in stored if row["grain"] == grain] for grain in GRAINS}
    assert len(grains["minute"]) > len(grains["hour"]) > len(grains["day"]) > 1
    _assert_same_sums(_by_key(grains["hour"]), _summed_up(grains["minute"], "hour"))
    _assert_same_sums(_by_key(grains["day"]), _summed_up(grains["hour"], "day"))

    assert_rollups_match(
        stored, expected_rollups(raw["traces"], raw["ai_interactions"], raw["decisions"])
    )
    assert stored_breakdowns(await _table(engine, usage_breakdowns)) == expected_breakdowns(
        raw["traces"], raw["ai_interactions"], raw["decisions"], raw["guardrail_violations"]
    )


async def test_writers_adding_to_the_same_rows_at_once_lose_nothing(engine: AsyncEngine) -> None:
    """Four workers' writers, each with batches of the same minutes, hours and days, written at
    the same time while the hour and day rows are folded again and again: every roll-up and
    breakdown row still holds exactly what the raw rows add up to (no update lost or counted
    twice, no deadlock between the writers' marks and the fold)."""
    bundles = history(seed=16, size=800)
    writers = [BatchWriter(engine) for _ in range(4)]

    async def work(writer: BatchWriter, mine: list[TraceBundle]) -> None:
        for start in range(0, len(mine), 25):
            await writer.write(mine[start : start + 25])

    writing = asyncio.gather(*(work(w, bundles[n::4]) for n, w in enumerate(writers)))
    folds = 0
    while not writing.done():
        folds += len(await fold_pending(engine))
        await asyncio.sleep(0.01)
    await writing
    await _assert_analytics_see_everything(engine, users_bundles(bundles))
    await fold_pending(engine)
    if engine.dialect.name == "postgresql":
        assert folds > 0  # folds ran while the writers wrote

    raw = {
        table.name: await _table(engine, table)
        for table in (traces, ai_interactions, decisions, guardrail_violations)
    }
    assert len(raw["traces"]) == len(bundles)
    raw = users_requests(raw)
    stored = await _table(engine, usage_rollups)
    assert {row["grain"] for row in stored} == set(GRAINS)
    assert_rollups_match(
        stored, expected_rollups(raw["traces"], raw["ai_interactions"], raw["decisions"])
    )
    assert stored_breakdowns(await _table(engine, usage_breakdowns)) == expected_breakdowns(
        raw["traces"], raw["ai_interactions"], raw["decisions"], raw["guardrail_violations"]
    )


def users_bundles(bundles: list[TraceBundle]) -> list[TraceBundle]:
    """What the roll-ups count: every request but a judge's own calls (source `evaluation`)."""
    return [b for b in bundles if b.trace.source != "evaluation"]


def users_requests(raw: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The raw rows of `users_bundles`: those of judge calls' traces left out."""
    judged = {t["trace_id"] for t in raw["traces"] if t["source"] == "evaluation"}
    return {
        name: [row for row in rows if row["trace_id"] not in judged] for name, rows in raw.items()
    }


async def _assert_analytics_see_everything(engine: AsyncEngine, bundles: list[TraceBundle]) -> None:
    """Whether or not the hour and day rows are summed yet, analytics at every grain count every
    request, and their top-N rankings and totals (read from the coarsest rows) too, whether a
    query runs alone or with a page's shared scans."""
    start = datetime.fromtimestamp(START, UTC).replace(hour=0, minute=0)
    end = start + timedelta(days=2)
    counts = {
        "model": len(bundles),
        "key": len(bundles),
        "end_user": sum(1 for b in bundles if b.trace.end_user),
    }
    for step in (300, 3600, 86400):
        scans = SharedScans(engine, concurrency=2)
        for shared in (None, scans):
            query = AnalyticsQuery("requests", start, end, step=step)
            assert (await run_query(engine, query, scope=None, scans=shared)).total == len(bundles)
            for by, expected in counts.items():
                if by == "end_user" and step < 3600:
                    continue  # kept per hour
                ranked = AnalyticsQuery("requests", start, end, step=step, group_by=(by,), top=1)
                result = await run_query(engine, ranked, scope=None, scans=shared)
                assert sum(s.total or 0 for s in result.series) == expected, (step, by)
                points = [value or 0 for series in result.series for _, value in series.points]
                assert sum(points) == expected, (step, by)
                totals = await run_query(
                    engine, replace(ranked, points=False), scope=None, scans=shared
                )
                assert [s.total for s in totals.series] == [s.total for s in result.series]
