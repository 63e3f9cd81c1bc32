"""What the limits benchmark reads back from the gateways it loaded.

- The gateway's own timing of each serial load, from its SQLite store: the trace's
  `overhead_ms` (from the request's start to the response's start, minus the provider call) and
  the `evaluation_us` of each rate-limit, budget and cache decision, the time that check took
  before the provider call (rate limits: `acquire`; budgets: the largest cost and `reserve`;
  cache: the key's hash and the lookup). Traces are those of one key started within the load's
  time window (and, for the cache variants, with the expected cache outcome), so requests of a
  neighbouring load still in flight do not count. Giving back (rate-limit release, budget
  settle, cache store) happens after the response starts and is in neither.
- The spend the budget ledger persisted (`budget_spend`), and the refusals and cache outcomes the
  gateway counted (`/metrics`): evidence that each variant did what it is meant to measure.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from benchmarks.stats import percentile
from benchmarks.stores import SAMPLE, parse_labels, sum_samples

CHECK_TYPES: Final = {"rate_limit": "rate", "budget_check": "budget", "cache_decision": "cache"}
"""Decision types of the checks, and the prefix of their values (`rate_p50`, ...)."""
OVERHEAD: Final = "overhead"
"""The kind (and value prefix) of the traces' gateway overhead, in µs."""
KINDS: Final = {**CHECK_TYPES, OVERHEAD: OVERHEAD}


def sqlite_time(epoch: float) -> str:
    """An instant as the SQLite store writes timestamps (naive UTC text), for comparisons."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def check_timings(rows: Iterable[tuple[str, float]]) -> dict[str, float]:
    """p50/p99 in µs and the count of each kind among (kind, µs) rows: a decision type of
    CHECK_TYPES, or OVERHEAD."""
    found: dict[str, list[float]] = {}
    for kind, micros in rows:
        prefix = KINDS.get(kind)
        if prefix is not None:
            found.setdefault(prefix, []).append(micros)
    values: dict[str, float] = {}
    for prefix, timings in found.items():
        values[f"{prefix}_p50"] = percentile(timings, 50)
        values[f"{prefix}_p99"] = percentile(timings, 99)
        values[f"{prefix}_count"] = float(len(timings))
    return values


def _read_only(database: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True)


# `+type` keeps SQLite off the (type, created_at) index: a trace's decisions are found through
# (trace_id, sequence), whatever the number of decisions of that type in the store.
_SERIAL_RECORDS = """
WITH chosen AS (
    SELECT t.trace_id, t.workspace_id, t.overhead_ms FROM traces t
    WHERE t.started_at >= ? AND t.started_at <= ? AND t.api_key_id = ? AND t.http_status = 200
      AND (? IS NULL OR EXISTS (
          SELECT 1 FROM decisions c
          WHERE c.trace_id = t.trace_id AND c.workspace_id = t.workspace_id
            AND +c.type = 'cache_decision'
            AND json_extract(c.output, '$.status') = ?))
)
SELECT 'overhead', overhead_ms * 1000.0 FROM chosen WHERE overhead_ms IS NOT NULL
UNION ALL
SELECT d.type, d.evaluation_us FROM decisions d JOIN chosen
    ON d.trace_id = chosen.trace_id AND d.workspace_id = chosen.workspace_id
WHERE +d.type IN ('rate_limit', 'budget_check', 'cache_decision')
"""


def read_serial_records(
    database: Path, began: float, ended: float, key_id: str, cache_status: str | None = None
) -> dict[str, float]:
    """`check_timings` of the answered requests of key `key_id` that started between two
    instants (epoch seconds), only those with `cache_status` (HIT, MISS) when given."""
    connection = _read_only(database)
    try:
        rows = connection.execute(
            _SERIAL_RECORDS,
            (sqlite_time(began), sqlite_time(ended), key_id, cache_status, cache_status),
        ).fetchall()
    finally:
        connection.close()
    return check_timings((str(kind), float(value)) for kind, value in rows)


def read_key_spend(database: Path) -> dict[str, int]:
    """Spent micro-dollars per key id in `budget_spend` (what the ledger persisted)."""
    connection = _read_only(database)
    try:
        rows = connection.execute(
            "SELECT subject, SUM(spent_micros) FROM budget_spend WHERE scope = 'key' "
            "GROUP BY subject"
        ).fetchall()
    finally:
        connection.close()
    return {str(subject): int(spent) for subject, spent in rows}


def spend_note(spent: Mapping[str, int], key_names: Mapping[str, str]) -> str:
    """`key_names`: key id -> key name."""
    if not spent:
        return "budget_spend: nothing persisted"
    parts = [
        f"{key_names.get(key_id, key_id)} key ${micros / 1e6:,.6f}"
        for key_id, micros in sorted(spent.items(), key=lambda item: key_names.get(item[0], ""))
    ]
    return "budget_spend (persisted spend): " + ", ".join(parts)


def cache_note(exposition: str) -> str | None:
    """The cache outcomes the gateway counted (`steerway_cache_requests_total`)."""
    counts: dict[str, float] = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is None or match.group(1) != "steerway_cache_requests_total":
            continue
        outcome = parse_labels(match.group(3) or "").get("result", "?")
        counts[outcome] = counts.get(outcome, 0.0) + float(match.group(4))
    if not counts:
        return None
    return "steerway_cache_requests_total: " + ", ".join(
        f"{outcome} {counts.get(outcome, 0.0):,.0f}" for outcome in ("hit", "miss", "bypass")
    )


def refusals_note(exposition: str) -> str:
    """Requests a limit refused, and failed Redis calls: none is expected."""
    rate = sum_samples(exposition, "steerway_rate_limited_total") or 0.0
    budget = sum_samples(exposition, "steerway_budget_denied_total") or 0.0
    errors = sum_samples(exposition, "steerway_redis_errors_total") or 0.0
    return (
        f"refused by rate limits {rate:,.0f}, by budgets {budget:,.0f}; Redis errors {errors:,.0f}"
    )
