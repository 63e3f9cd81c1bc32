"""Per-minute usage roll-ups: aggregate a batch's interactions, then add them into the table.

Several workers write the same minute's rows at once, so the upsert adds to what is stored and
never overwrites it. Rows are sorted by key so concurrent transactions lock them in one order.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from telemetry.records import InteractionRecord
from telemetry.rows import utc
from telemetry.schema import ROLLUP_BUCKET_COLUMNS, ROLLUP_LATENCY_BOUNDS_MS, usage_rollups

KEY_COLUMNS: tuple[str, ...] = ("bucket_start", "workspace_id", "api_key_id", "provider", "model")
SUM_COLUMNS: tuple[str, ...] = (
    "requests",
    "errors",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms_sum",
    *ROLLUP_BUCKET_COLUMNS,
)
_LAST_BUCKET = len(ROLLUP_LATENCY_BOUNDS_MS)


def latency_bucket(latency_ms: float) -> int:
    """Index of the first bucket whose upper bound is >= the latency; the last one is +Inf."""
    if math.isnan(latency_ms):
        return _LAST_BUCKET
    return bisect_left(ROLLUP_LATENCY_BOUNDS_MS, latency_ms)


def minute_of(epoch_seconds: float) -> float:
    return math.floor(epoch_seconds / 60.0) * 60.0


class _Sums:
    __slots__ = (
        "cache_hits",
        "cached_tokens",
        "completion_tokens",
        "cost_usd",
        "errors",
        "latency_buckets",
        "latency_ms_sum",
        "prompt_tokens",
        "requests",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.cache_hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.cost_usd = Decimal(0)
        self.latency_ms_sum = 0.0
        self.latency_buckets = [0] * len(ROLLUP_BUCKET_COLUMNS)

    def add(self, i: InteractionRecord) -> None:
        self.requests += 1
        if i.status != "ok":
            self.errors += 1
        if i.cache_hit:
            self.cache_hits += 1
        self.prompt_tokens += i.prompt_tokens or 0
        self.completion_tokens += i.completion_tokens or 0
        self.cached_tokens += i.cached_tokens or 0
        if i.cost_usd is not None:
            self.cost_usd += i.cost_usd
        latency = i.latency_ms
        self.latency_ms_sum += latency
        self.latency_buckets[latency_bucket(latency)] += 1

    def columns(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms_sum": self.latency_ms_sum,
            **dict(zip(ROLLUP_BUCKET_COLUMNS, self.latency_buckets, strict=True)),
        }


def aggregate(interactions: Iterable[InteractionRecord]) -> list[dict[str, Any]]:
    """One row per (minute, workspace, key, provider, requested model), sorted by that key.

    Unknown costs (None) add nothing to `cost_usd`; unknown token counts add 0.
    """
    sums: dict[tuple[float, str, str, str, str], _Sums] = {}
    for i in interactions:
        key = (
            minute_of(i.started_at),
            i.workspace_id,
            i.api_key_id or "",
            i.provider,
            i.requested_model,
        )
        entry = sums.get(key)
        if entry is None:
            entry = sums[key] = _Sums()
        entry.add(i)
    return [
        {
            "bucket_start": utc(minute),
            "workspace_id": workspace_id,
            "api_key_id": api_key_id,
            "provider": provider,
            "model": model,
            **entry.columns(),
        }
        for (minute, workspace_id, api_key_id, provider, model), entry in sorted(
            sums.items(), key=lambda item: item[0]
        )
    ]


def upsert_statement(dialect_name: str) -> sa.Insert:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET col = usage_rollups.col + excluded.col`."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(usage_rollups)
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: usage_rollups.c[name] + statement.excluded[name] for name in SUM_COLUMNS},
    )
