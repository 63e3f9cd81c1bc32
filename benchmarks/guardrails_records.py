"""What the guardrails benchmark reads back from the gateways it loaded.

From a Steerway's SQLite store, for the answered requests of one key that started within a serial
load: the trace's `overhead_ms` (request start to response start, minus the provider call) and
each `guardrail` decision's `evaluation_us` (the time one guardrail took over the request's
input), by guardrail name. From `/metrics`: the verdicts the gateway counted, which show that
every request ran the guardrails it was meant to.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from benchmarks.limits_records import sqlite_time
from benchmarks.stats import percentile
from benchmarks.stores import SAMPLE, parse_labels

OVERHEAD: Final = "overhead"
"""The kind (and value prefix) of the traces' gateway overhead, in µs."""

# `+type` keeps SQLite off the (type, created_at) index, as in `limits_records`.
_SERIAL_RECORDS = """
WITH chosen AS (
    SELECT t.trace_id, t.workspace_id, t.overhead_ms FROM traces t
    WHERE t.started_at >= ? AND t.started_at <= ? AND t.api_key_id = ? AND t.http_status = 200
)
SELECT 'overhead', overhead_ms * 1000.0 FROM chosen WHERE overhead_ms IS NOT NULL
UNION ALL
SELECT json_extract(d.input, '$.guardrail'), d.evaluation_us
FROM decisions d JOIN chosen
    ON d.trace_id = chosen.trace_id AND d.workspace_id = chosen.workspace_id
WHERE +d.type = 'guardrail' AND json_extract(d.input, '$.direction') = 'input'
"""


def value_prefix(kind: str) -> str:
    """`overhead`, or a guardrail's name as a value prefix (`pii`, `injection`)."""
    return kind.replace("-", "_")


def record_timings(rows: Iterable[tuple[str, float]]) -> dict[str, float]:
    """p50/p99 in µs and the count of each kind among (kind, µs) rows: OVERHEAD or the name of
    a guardrail."""
    found: dict[str, list[float]] = {}
    for kind, micros in rows:
        found.setdefault(value_prefix(kind), []).append(micros)
    values: dict[str, float] = {}
    for prefix, timings in found.items():
        values[f"{prefix}_p50"] = percentile(timings, 50)
        values[f"{prefix}_p99"] = percentile(timings, 99)
        values[f"{prefix}_count"] = float(len(timings))
    return values


def read_serial_records(
    database: Path, began: float, ended: float, key_id: str
) -> dict[str, float]:
    """`record_timings` of the answered requests of key `key_id` that started between two
    instants (epoch seconds)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            _SERIAL_RECORDS, (sqlite_time(began), sqlite_time(ended), key_id)
        ).fetchall()
    finally:
        connection.close()
    return record_timings((str(kind), float(value)) for kind, value in rows if kind is not None)


def verdicts_note(exposition: str) -> str | None:
    """The verdicts the gateway counted (`steerway_guardrail_verdicts_total`) by guardrail and
    action."""
    counts: dict[tuple[str, str], float] = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is None or match.group(1) != "steerway_guardrail_verdicts_total":
            continue
        labels = parse_labels(match.group(3) or "")
        key = (labels.get("guardrail", "?"), labels.get("action", "?"))
        counts[key] = counts.get(key, 0.0) + float(match.group(4))
    if not counts:
        return None
    return "steerway_guardrail_verdicts_total: " + ", ".join(
        f"{guardrail} {action} {count:,.0f}"
        for (guardrail, action), count in sorted(counts.items())
    )
