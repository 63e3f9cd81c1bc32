"""Roll-ups and breakdowns worked out afresh from the raw rows as the database holds them, for
tests that check the stored ones against them.

Written from the definitions, not from `telemetry.rollups`: a request (trace) counts once per
grain under the attempt that answered it (the last successful one, else the last one, else the
trace's own provider); tokens and cost are the sums over its attempts; latency is the trace's
duration; time to first token the answering attempt's, when it answered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from telemetry.db import as_utc
from telemetry.rollups import TOTAL_KINDS
from telemetry.schema import (
    ROLLUP_BUCKET_COLUMNS,
    ROLLUP_LATENCY_BOUNDS_MS,
    ROLLUP_TTFT_BUCKET_COLUMNS,
)

Row = dict[str, Any]
GRAINS: dict[str, Callable[[datetime], datetime]] = {
    "minute": lambda t: t.replace(second=0, microsecond=0),
    "hour": lambda t: t.replace(minute=0, second=0, microsecond=0),
    "day": lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
}
DIMENSIONS = (
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
)
COUNTS = (
    "requests",
    "errors",
    "cache_hits",
    "attempts",
    "retries",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "unpriced",
    "ttft_count",
    "overhead_count",
    "cost_usd",
    "cost_saved_usd",
    *ROLLUP_BUCKET_COLUMNS,
    *ROLLUP_TTFT_BUCKET_COLUMNS,
)
"""Compared exactly (money is Decimal)."""
FLOATS = ("latency_ms_sum", "ttft_ms_sum", "overhead_ms_sum")
"""Compared to within rounding."""


def by_trace(records: Iterable[Row]) -> dict[str, list[Row]]:
    """Records grouped by trace, in the order given (interactions: by attempt)."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for record in records:
        grouped[record["trace_id"]].append(record)
    return grouped


def bucket_column(columns: tuple[str, ...], milliseconds: float) -> str:
    for bound, column in zip(ROLLUP_LATENCY_BOUNDS_MS, columns, strict=False):
        if milliseconds <= bound:
            return column
    return columns[-1]


def _answering(attempts: list[Row]) -> Row | None:
    answered = [a for a in attempts if a["status"] == "ok"]
    if answered:
        return answered[-1]
    return attempts[-1] if attempts else None


def _unpriced(attempt: Row) -> bool:
    return (
        attempt["cost_usd"] is None
        and not attempt["cache_hit"]
        and (attempt["prompt_tokens"] is not None or attempt["status"] == "ok")
    )


def _known(values: Iterable[Any]) -> Any:
    return sum(v for v in values if v is not None)


def _request(trace: Row, attempts: list[Row], decisions: list[Row]) -> tuple[tuple[Any, ...], Row]:
    """The request's dimensions (after grain and bucket) and what it adds to its rows."""
    answer = _answering(attempts)
    dimensions = (
        trace["workspace_id"],
        trace["api_key_id"] or "",
        trace["source"],
        answer["provider"] if answer else trace["provider"] or "",
        trace["requested_model"] or (answer["requested_model"] if answer else ""),
        answer["provider_model"] if answer else trace["provider_model"] or "",
        answer["deployment"] if answer else "",
        trace["status"],
        trace["error_type"] or "",
        any(a["cache_hit"] for a in attempts),
    )
    duration = trace["duration_ms"]
    ttft = answer["ttft_ms"] if answer is not None and answer["status"] == "ok" else None
    overhead = trace["overhead_ms"]
    added: Row = {
        "requests": 1,
        "errors": int(trace["status"] == "error"),
        "cache_hits": int(dimensions[-1]),
        "attempts": sum(1 for a in attempts if not a["cache_hit"]),
        "retries": sum(1 for d in decisions if d["type"] == "retry"),
        "fallbacks": sum(1 for d in decisions if d["type"] == "fallback"),
        "prompt_tokens": _known(a["prompt_tokens"] for a in attempts),
        "completion_tokens": _known(a["completion_tokens"] for a in attempts),
        "cached_tokens": _known(a["cached_tokens"] for a in attempts),
        "unpriced": int(any(_unpriced(a) for a in attempts)),
        "cost_usd": Decimal(_known(a["cost_usd"] for a in attempts)),
        "cost_saved_usd": Decimal(_known(a["cost_saved_usd"] for a in attempts)),
        "latency_ms_sum": duration,
        bucket_column(ROLLUP_BUCKET_COLUMNS, duration): 1,
        "ttft_count": int(ttft is not None),
        "ttft_ms_sum": ttft or 0.0,
        "overhead_count": int(overhead is not None),
        "overhead_ms_sum": overhead or 0.0,
    }
    if ttft is not None:
        added[bucket_column(ROLLUP_TTFT_BUCKET_COLUMNS, ttft)] = 1
    return dimensions, added


def expected_rollups(
    traces: Iterable[Row], interactions: Iterable[Row], decisions: Iterable[Row]
) -> dict[tuple[Any, ...], Row]:
    """Per (grain, bucket start, *DIMENSIONS): every sum of `COUNTS` and `FLOATS`."""
    attempts = by_trace(interactions)
    decided = by_trace(decisions)
    expected: dict[tuple[Any, ...], Row] = {}
    for trace in traces:
        dimensions, added = _request(
            trace, attempts.get(trace["trace_id"], []), decided.get(trace["trace_id"], [])
        )
        started = as_utc(trace["started_at"])
        assert started is not None
        for grain, floor in GRAINS.items():
            sums = expected.setdefault(
                (grain, floor(started), *dimensions), dict.fromkeys((*COUNTS, *FLOATS), 0)
            )
            for name, amount in added.items():
                sums[name] += amount
    return expected


def stored_key(row: Row) -> tuple[Any, ...]:
    return (row["grain"], as_utc(row["bucket_start"]), *(row[name] for name in DIMENSIONS))


def assert_rollups_match(stored: Iterable[Row], expected: dict[tuple[Any, ...], Row]) -> None:
    rows = {stored_key(row): row for row in stored}
    assert set(rows) == set(expected)
    for key, sums in expected.items():
        row = rows[key]
        for name in COUNTS:
            assert row[name] == sums[name], (key, name)
        for name in FLOATS:
            assert row[name] == pytest.approx(sums[name], rel=1e-9, abs=1e-9), (key, name)


def expected_breakdowns(
    traces: Iterable[Row],
    interactions: Iterable[Row],
    decisions: Iterable[Row],
    violations: Iterable[Row],
) -> dict[tuple[Any, ...], list[Any]]:
    """Per (grain, bucket start, workspace, key, kind, name, detail): [events, errors, cost,
    tokens], every name kept (no cap applied), and the tags' and end users' totals."""
    attempts = by_trace(interactions)
    decided = by_trace(decisions)
    found = by_trace(violations)
    expected: dict[tuple[Any, ...], list[Any]] = {}
    for trace in traces:
        mine = attempts.get(trace["trace_id"], [])
        shared = (
            int(trace["status"] == "error"),
            Decimal(_known(a["cost_usd"] for a in mine)),
            _known(a["prompt_tokens"] for a in mine) + _known(a["completion_tokens"] for a in mine),
        )
        unshared = (0, Decimal(0), 0)
        rules = dict.fromkeys(
            d["rule_id"]
            for d in decided.get(trace["trace_id"], [])
            if d["type"] == "rule_evaluation" and d["rule_id"] is not None
        )
        named: list[tuple[str, str, str, int, tuple[Any, ...]]] = [
            *(("tag", tag, "", 1, shared) for tag in dict.fromkeys(trace["tags"])),
            *((("end_user", trace["end_user"], "", 1, shared),) if trace["end_user"] else ()),
            *(("rule", rule, "", 1, shared) for rule in rules),
        ]
        named += [
            (TOTAL_KINDS[kind], "", "", 1, sums)
            for kind, _, _, _, sums in named
            if kind in TOTAL_KINDS
        ]
        for violation in found.get(trace["trace_id"], []):
            guardrail = violation["guardrail"]
            named.append(("guardrail", guardrail, violation["action"], 1, unshared))
            for entity, count in violation["entities"].items():
                named.append(("entity", guardrail, entity, count, unshared))
        started = as_utc(trace["started_at"])
        assert started is not None
        for grain in ("hour", "day"):
            start = GRAINS[grain](started)
            for kind, name, detail, events, (errors, cost, tokens) in named:
                key = (grain, start, trace["workspace_id"], trace["api_key_id"] or "", kind, name)
                sums = expected.setdefault((*key, detail), [0, 0, Decimal(0), 0])
                sums[0] += events
                sums[1] += errors
                sums[2] += cost
                sums[3] += tokens
    return expected


def stored_breakdowns(stored: Iterable[Row]) -> dict[tuple[Any, ...], list[Any]]:
    return {
        (
            row["grain"],
            as_utc(row["bucket_start"]),
            row["workspace_id"],
            row["api_key_id"],
            row["kind"],
            row["name"],
            row["detail"],
        ): [row["events"], row["errors"], row["cost_usd"], row["tokens"]]
        for row in stored
    }
