"""Telemetry tests, and the helpers they share: bundle builders and database readers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.rollup_folding import fold_pending
from telemetry.schema import DEFAULT_WORKSPACE_ID, usage_rollups

# A fixed minute, far from "now", so every test knows which roll-up row its interactions hit.
MINUTE = 1_700_000_040.0  # 2023-11-14 22:34:00 UTC


def make_bundle(
    *,
    started_at: float = MINUTE + 1.5,
    latency_ms: float = 120.0,
    cost: Decimal | None = Decimal("0.0012345678"),
    status: str = "ok",
    cache_hit: bool = False,
    prompt_tokens: int | None = 10,
    completion_tokens: int | None = 5,
    cached_tokens: int | None = None,
    api_key_id: str | None = "key1",
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    workspace_id: str = DEFAULT_WORKSPACE_ID,
) -> TraceBundle:
    trace_id = uuid7_hex()
    span_id = span_id_hex()
    ended_at = started_at + latency_ms / 1000.0
    return TraceBundle(
        trace=TraceRecord(
            trace_id=trace_id,
            workspace_id=workspace_id,
            api_key_id=api_key_id,
            request_id=f"req-{trace_id[-8:]}",
            end_user="user-7",
            route="/v1/chat/completions",
            started_at=started_at - 0.002,
            ended_at=ended_at + 0.001,
            status=status,
            http_status=200 if status == "ok" else 502,
            requested_model=model,
            provider=provider,
            provider_model=f"{model}-2024",
            overhead_ms=0.42,
            tags=["prod", "ü-tag"],
            metadata={"team": "search", "nested": {"n": 1, "list": [1, 2.5, None]}},
            features={"token_estimate": 42, "has_tools": False},
        ),
        spans=[
            SpanRecord(
                span_id=span_id,
                trace_id=trace_id,
                workspace_id=workspace_id,
                name="provider.call",
                component="providers",
                started_at=started_at,
                ended_at=ended_at,
                attributes={"gen_ai.system": provider},
                events=[{"name": "first_token", "at_ms": 12.5}],
            ),
            SpanRecord(
                span_id=span_id_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                parent_span_id=span_id,
                name="rules.evaluate",
                component="rules",
                started_at=started_at,
                ended_at=started_at + 0.00005,
            ),
        ],
        decisions=[
            DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                sequence=0,
                type="model_selection",
                component="rules",
                rule_id="r1",
                rule_name="cheap first",
                input={"model": model},
                output={"provider": provider},
                reasoning="matched rule r1",
                evaluation_us=17.5,
                created_at=started_at,
            )
        ],
        interactions=[
            InteractionRecord(
                interaction_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                span_id=span_id,
                api_key_id=api_key_id,
                provider=provider,
                requested_model=model,
                provider_model=f"{model}-2024",
                deployment="default",
                operation="chat",
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_tokens=cached_tokens,
                total_tokens=(prompt_tokens or 0) + (completion_tokens or 0),
                cost_usd=cost,
                started_at=started_at,
                ended_at=ended_at,
                ttft_ms=12.5,
                status=status,
                http_status=200 if status == "ok" else 502,
                finish_reason="stop" if status == "ok" else None,
                error_type=None if status == "ok" else "upstream_error",
                cache_hit=cache_hit,
                prompt=[{"role": "user", "content": "hi"}],
                response=None,
            )
        ],
    )


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they are stored as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def fetch(engine: AsyncEngine, sql: str, **params: Any) -> list[sa.Row[Any]]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.text(sql), params)).all())


async def fetch_table(engine: AsyncEngine, table: sa.Table) -> list[sa.RowMapping]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(table))).mappings().all())


async def rollup_rows(engine: AsyncEngine, grain: str = "minute") -> list[sa.RowMapping]:
    """The `usage_rollups` rows of one grain: every request counts once in each grain (the hour
    and day rows once the pending hours are folded: `telemetry.rollup_folding`)."""
    await fold_pending(engine)
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.select(usage_rollups).where(usage_rollups.c.grain == grain)
        )
        return list(result.mappings().all())


async def requests_per_grain(engine: AsyncEngine) -> dict[str, int]:
    """SUM(requests) of `usage_rollups` per grain, the pending hours folded first."""
    await fold_pending(engine)
    total = sa.func.sum(usage_rollups.c.requests)
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.select(usage_rollups.c.grain, total).group_by(usage_rollups.c.grain)
        )
        return {grain: int(requests) for grain, requests in result.all()}


async def count(engine: AsyncEngine, table: str) -> int:
    rows = await fetch(engine, f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


async def eventually(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Wait until `condition()` holds; fail with AssertionError after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class RecordingObserver:
    """Keeps every event the recorder reports, for assertions."""

    def __init__(self) -> None:
        self.enqueued_depths: list[int] = []
        self.dropped_counts: list[int] = []
        self.rows: dict[str, int] = {}
        self.batches: list[tuple[float, int]] = []
        self.spilled_counts: list[int] = []
        self.failures: list[BaseException] = []
        self.quarantined_counts: list[int] = []

    def enqueued(self, depth: int) -> None:
        self.enqueued_depths.append(depth)

    def dropped(self, count: int) -> None:
        self.dropped_counts.append(count)

    def written(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows

    def batch_written(self, seconds: float, bundles: int) -> None:
        self.batches.append((seconds, bundles))

    def spilled(self, bundles: int) -> None:
        self.spilled_counts.append(bundles)

    def write_failed(self, error: BaseException) -> None:
        self.failures.append(error)

    def quarantined(self, lines: int) -> None:
        self.quarantined_counts.append(lines)
