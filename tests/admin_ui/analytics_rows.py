"""Roll-up, breakdown and budget rows written straight into a test database, so the analytics
pages have known numbers at known times (an hour ago, three days ago) that real requests, made
now, cannot give. Each request-like row is written at minute, hour and day grain, as the recorder
writes them."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from telemetry.db import create_engine
from telemetry.rollups import SUM_COLUMNS, TOTAL_KINDS, latency_bucket
from telemetry.schema import (
    ROLLUP_BUCKET_COLUMNS,
    ROLLUP_TTFT_BUCKET_COLUMNS,
    budget_spend,
    usage_breakdowns,
    usage_rollups,
)

GRAINS = (("minute", 60), ("hour", 3600), ("day", 86400))


def floor(moment: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, UTC)


def rollup_rows(
    at: datetime,
    workspace_id: str,
    key_id: str,
    *,
    model: str,
    provider: str = "openai",
    deployment: str = "",
    status: str = "ok",
    error_type: str = "",
    cache_hit: bool = False,
    requests: int = 1,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    cost: Decimal = Decimal(0),
    cost_saved: Decimal = Decimal(0),
    latency_ms: float = 100.0,
    ttft_ms: float | None = None,
) -> list[dict[str, Any]]:
    """One group of `requests` requests, alike, at the three grains."""
    sums: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    sums.update(
        requests=requests,
        errors=requests if status == "error" else 0,
        cache_hits=requests if cache_hit else 0,
        attempts=0 if cache_hit else requests,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        cost_usd=cost,
        cost_saved_usd=cost_saved,
        latency_ms_sum=latency_ms * requests,
        ttft_ms_sum=0.0,
        overhead_ms_sum=0.0,
    )
    sums[ROLLUP_BUCKET_COLUMNS[latency_bucket(latency_ms)]] = requests
    if ttft_ms is not None:
        sums["ttft_count"] = requests
        sums["ttft_ms_sum"] = ttft_ms * requests
        sums[ROLLUP_TTFT_BUCKET_COLUMNS[latency_bucket(ttft_ms)]] = requests
    return [
        {
            "grain": grain,
            "bucket_start": floor(at, seconds),
            "workspace_id": workspace_id,
            "api_key_id": key_id,
            "source": "proxy",
            "provider": provider,
            "model": model,
            "served_model": model,
            "deployment": deployment,
            "status": status,
            "error_type": error_type,
            "cache_hit": cache_hit,
            **sums,
        }
        for grain, seconds in GRAINS
    ]


def breakdown_rows(
    at: datetime,
    workspace_id: str,
    key_id: str,
    *,
    kind: str,
    name: str,
    detail: str = "",
    events: int = 1,
    cost: Decimal = Decimal(0),
    tokens: int = 0,
) -> list[dict[str, Any]]:
    return [
        {
            "grain": grain,
            "bucket_start": floor(at, seconds),
            "workspace_id": workspace_id,
            "api_key_id": key_id,
            "kind": kind,
            "name": name,
            "detail": detail,
            "events": events,
            "errors": 0,
            "cost_usd": cost,
            "tokens": tokens,
        }
        for grain, seconds in GRAINS[1:]
    ]


@dataclass
class Planted:
    rollups: list[dict[str, Any]] = field(default_factory=list)
    breakdowns: list[dict[str, Any]] = field(default_factory=list)
    spend: list[dict[str, Any]] = field(default_factory=list)


def total_rows(breakdowns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of tags and end users summed over their names, as the recorder keeps them
    (`rollups.TOTAL_KINDS`)."""
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in breakdowns:
        kind = TOTAL_KINDS.get(row["kind"])
        if kind is None:
            continue
        key = (row["grain"], row["bucket_start"], row["workspace_id"], row["api_key_id"], kind)
        total = totals.setdefault(
            key,
            dict(
                zip(
                    ("grain", "bucket_start", "workspace_id", "api_key_id", "kind"),
                    key,
                    strict=True,
                )
            )
            | {"name": "", "detail": "", "events": 0, "errors": 0, "cost_usd": Decimal(0)}
            | {"tokens": 0},
        )
        for column in ("events", "errors", "cost_usd", "tokens"):
            total[column] += row[column]
    return list(totals.values())


def plant(database_url: str, rows: Planted) -> None:
    """Write the rows (synchronously: call it off any running event loop), and the breakdowns'
    totals."""

    async def write() -> None:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                for table, found in (
                    (usage_rollups, rows.rollups),
                    (usage_breakdowns, [*rows.breakdowns, *total_rows(rows.breakdowns)]),
                    (budget_spend, rows.spend),
                ):
                    if found:
                        await connection.execute(table.insert(), found)
        finally:
            await engine.dispose()

    asyncio.run(write())
