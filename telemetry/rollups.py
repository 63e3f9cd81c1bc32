"""Roll-ups: a batch's requests summed per grain, bucket and dimensions, then added into the tables.

Every request (one trace bundle) adds to three `usage_rollups` rows, one per grain (minute, hour,
day), keyed by its workspace, key, source, provider, requested and served model, deployment,
status, error type and whether the cache answered. The provider, served model and deployment are
those of the attempt that answered (the last one when none did); tokens and cost are summed over
every attempt, so a retried request costs what its attempts cost. Latency is the request's
whole duration; time to first token the answering attempt's.

Tags, end users, matched rules and guardrail findings go to `usage_breakdowns` at hour and day
grain. Tags and end users are open-ended, so each workspace keeps the names of the first
`NameCaps` limit of them per UTC day (per writer process) and counts the rest as `(other)`.
Their sum over every name is kept too, per key and bucket, as one row of the kind's
`TOTAL_KINDS` (name and detail empty): a top-N's `(other)` group per hour is that row less the
kept names, read from a few rows instead of every end user's.

Several workers write the same rows at once, so the upsert adds to what is stored and never
overwrites it. Rows are sorted by key so concurrent transactions lock them in one order.

On Postgres the writer adds only the finest rows (minute roll-ups, hour breakdowns) and marks
their hours; `telemetry.rollup_folding` sums the hour and day rows from them later, once for many
batches (`aggregate(..., fold=False)`, `add_on_postgres`). SQLite's one writer keeps every grain
as it writes.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from telemetry.records import InteractionRecord, TraceBundle
from telemetry.rows import utc
from telemetry.schema import (
    ROLLUP_BUCKET_COLUMNS,
    ROLLUP_LATENCY_BOUNDS_MS,
    ROLLUP_TTFT_BUCKET_COLUMNS,
    usage_breakdowns,
    usage_rollups,
)
from telemetry.summary import summarise

KEY_COLUMNS: Final[tuple[str, ...]] = tuple(usage_rollups.primary_key.columns.keys())
COUNT_COLUMNS: Final = (
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
)
MONEY_COLUMNS: Final = ("cost_usd", "cost_saved_usd")
FLOAT_COLUMNS: Final = ("latency_ms_sum", "ttft_ms_sum", "overhead_ms_sum")
SUM_COLUMNS: Final = (
    *COUNT_COLUMNS,
    *MONEY_COLUMNS,
    *FLOAT_COLUMNS,
    *ROLLUP_BUCKET_COLUMNS,
    *ROLLUP_TTFT_BUCKET_COLUMNS,
)
BREAKDOWN_KEY_COLUMNS: Final[tuple[str, ...]] = tuple(usage_breakdowns.primary_key.columns.keys())
BREAKDOWN_SUM_COLUMNS: Final = ("events", "errors", "cost_usd", "tokens")
TOTAL_KINDS: Final = {"tag": "tag_total", "end_user": "end_user_total"}
"""Per open-ended kind, the kind of its rows summed over every name."""
BREAKDOWN_KINDS: Final = ("tag", "end_user", "rule", "guardrail", "entity", *TOTAL_KINDS.values())
SHARED_KINDS: Final = frozenset({"tag", "end_user", "rule", *TOTAL_KINDS.values()})
"""Kinds that count their requests' errors, cost and tokens (a guardrail finding counts events
only)."""
OTHER: Final = "(other)"
"""The name a tag or end user is counted under once its workspace's cap is reached."""
NAME_LIMITS: Final = {"tag": 100, "end_user": 1000}
NAME_LENGTH: Final = 256
DETAIL_LENGTH: Final = 64

_LAST_BUCKET: Final = len(ROLLUP_LATENCY_BOUNDS_MS)
_MINUTE: Final = 60
_HOUR: Final = 3600
_DAY: Final = 86400
_GRAIN_SECONDS: Final = (("minute", _MINUTE), ("hour", _HOUR), ("day", _DAY))


def latency_bucket(latency_ms: float) -> int:
    """Index of the first bucket whose upper bound is >= the latency; the last one is +Inf."""
    if math.isnan(latency_ms):
        return _LAST_BUCKET
    return bisect_left(ROLLUP_LATENCY_BOUNDS_MS, latency_ms)


def bucket_of(epoch_seconds: float, seconds: int) -> float:
    return math.floor(epoch_seconds / seconds) * float(seconds)


def minute_of(epoch_seconds: float) -> float:
    return bucket_of(epoch_seconds, _MINUTE)


@dataclass
class NameCaps:
    """Which tags and end users keep their names: per workspace, kind and UTC day, the first
    `NAME_LIMITS[kind]` seen that day; the rest are `(other)`.

    A request is named by its own day's names, also when it is written after the next day's
    first (requests finishing out of order at midnight, a spill file replayed): the names of a
    day are remembered until the day after it is over. A request older than that starts its
    day's names afresh."""

    limits: Mapping[str, int] = field(default_factory=lambda: dict(NAME_LIMITS))
    _newest_day: float = -math.inf
    _kept: dict[tuple[float, str, str], set[str]] = field(default_factory=dict)

    def name(self, workspace_id: str, kind: str, value: str, at: float) -> str:
        day = bucket_of(at, _DAY)
        if day > self._newest_day:
            self._newest_day = day
            self._kept = {key: kept for key, kept in self._kept.items() if key[0] >= day - _DAY}
        kept = self._kept.setdefault((day, workspace_id, kind), set())
        value = value[:NAME_LENGTH]
        if value in kept:
            return value
        if len(kept) < self.limits.get(kind, 0):
            kept.add(value)
            return value
        return OTHER


class _Sums:
    """One row's sums by position in `SUM_COLUMNS`, only those not zero: of a row's hundred and
    more sums, a few buckets and counts are all most rows ever add to."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}

    def add(self, contribution: list[tuple[int, Any]]) -> None:
        values = self.values
        for position, amount in contribution:
            values[position] = values.get(position, 0) + amount

    def add_all(self, other: _Sums) -> None:
        self.add(list(other.values.items()))

    def row(self) -> dict[str, Any]:
        row = dict(_ZERO_ROW)
        for position, amount in self.values.items():
            row[SUM_COLUMNS[position]] = amount
        return row


_POSITION: Final = {name: n for n, name in enumerate(SUM_COLUMNS)}
_ZERO_ROW: Final[dict[str, Any]] = {
    name: Decimal(0) if name in MONEY_COLUMNS else 0.0 if name in FLOAT_COLUMNS else 0
    for name in SUM_COLUMNS
}
_LATENCY_POSITIONS: Final = tuple(_POSITION[name] for name in ROLLUP_BUCKET_COLUMNS)
_TTFT_POSITIONS: Final = tuple(_POSITION[name] for name in ROLLUP_TTFT_BUCKET_COLUMNS)


def _answering(interactions: list[InteractionRecord]) -> InteractionRecord | None:
    for interaction in reversed(interactions):
        if interaction.status == "ok":
            return interaction
    return interactions[-1] if interactions else None


def _unpriced(interaction: InteractionRecord) -> bool:
    """Whether an attempt cost an unknown amount: it used tokens, or answered, at a price not
    known. A failure that reported no usage cost nothing (budgets settle it at 0, as
    `gateway.proxy` does) and a cache hit costs nothing by definition."""
    return (
        interaction.cost_usd is None
        and not interaction.cache_hit
        and (interaction.prompt_tokens is not None or interaction.status == "ok")
    )


def _contribution(bundle: TraceBundle, status: str, summary: tuple[Any, ...]) -> list[Any]:
    """(position, amount) pairs this request adds to its rows."""
    _deployment, prompt, completion, _total, cost, ttft, cache_hit = summary[:7]
    trace = bundle.trace
    p = _POSITION
    added: list[tuple[int, Any]] = [
        (p["requests"], 1),
        (p["latency_ms_sum"], trace.duration_ms),
        (_LATENCY_POSITIONS[latency_bucket(trace.duration_ms)], 1),
    ]
    if status == "error":
        added.append((p["errors"], 1))
    if cache_hit:
        added.append((p["cache_hits"], 1))
    interactions = bundle.interactions
    if interactions:
        attempts = sum(1 for i in interactions if not i.cache_hit)
        if attempts:
            added.append((p["attempts"], attempts))
        cached = sum(i.cached_tokens or 0 for i in interactions)
        saved = sum((i.cost_saved_usd for i in interactions if i.cost_saved_usd), Decimal(0))
        if cached:
            added.append((p["cached_tokens"], cached))
        if saved:
            added.append((p["cost_saved_usd"], saved))
        if any(_unpriced(i) for i in interactions):
            added.append((p["unpriced"], 1))
    if prompt:
        added.append((p["prompt_tokens"], prompt))
    if completion:
        added.append((p["completion_tokens"], completion))
    if cost:
        added.append((p["cost_usd"], cost))
    if ttft is not None:
        added.extend(
            (
                (p["ttft_count"], 1),
                (p["ttft_ms_sum"], ttft),
                (_TTFT_POSITIONS[latency_bucket(ttft)], 1),
            )
        )
    if trace.overhead_ms is not None:
        added.extend(((p["overhead_count"], 1), (p["overhead_ms_sum"], trace.overhead_ms)))
    retries = fallbacks = 0
    for decision in bundle.decisions:
        if decision.type == "retry":
            retries += 1
        elif decision.type == "fallback":
            fallbacks += 1
    if retries:
        added.append((p["retries"], retries))
    if fallbacks:
        added.append((p["fallbacks"], fallbacks))
    return added


def _dimensions(bundle: TraceBundle, status: str, cache_hit: bool) -> tuple[Any, ...]:
    """The key after grain and bucket: workspace ... cache hit, as in `KEY_COLUMNS`."""
    trace = bundle.trace
    answer = _answering(bundle.interactions)
    if answer is None:
        provider = trace.provider or ""
        served = trace.provider_model or ""
        deployment = ""
        model = trace.requested_model or ""
    else:
        provider = answer.provider
        served = answer.provider_model
        deployment = answer.deployment
        model = trace.requested_model or answer.requested_model
    return (
        trace.workspace_id,
        trace.api_key_id or "",
        trace.source,
        provider[:128],
        model[:NAME_LENGTH],
        served[:NAME_LENGTH],
        deployment[:NAME_LENGTH],
        status,
        (trace.error_type or "")[:DETAIL_LENGTH],
        bool(cache_hit),
    )


@dataclass
class Aggregate:
    """A batch summed: rows for `usage_rollups` and for `usage_breakdowns`, each sorted by key."""

    rollups: list[dict[str, Any]]
    breakdowns: list[dict[str, Any]]


class _Breakdowns:
    def __init__(self) -> None:
        self.sums: dict[tuple[Any, ...], list[Any]] = {}

    def add(
        self, key: tuple[Any, ...], events: int, error: int, cost: Decimal, tokens: int
    ) -> None:
        entry = self.sums.get(key)
        if entry is None:
            self.sums[key] = [events, error, cost, tokens]
        else:
            entry[0] += events
            entry[1] += error
            entry[2] += cost
            entry[3] += tokens


def _breakdowns(
    bundle: TraceBundle,
    status: str,
    summary: tuple[Any, ...],
    buckets: tuple[tuple[str, datetime], ...],
    caps: NameCaps,
    into: _Breakdowns,
) -> None:
    trace = bundle.trace
    workspace = trace.workspace_id
    key = trace.api_key_id or ""
    cost = summary[4] or Decimal(0)
    tokens = (summary[1] or 0) + (summary[2] or 0)
    error = 1 if status == "error" else 0
    names: list[tuple[str, str, str, int]] = []
    for tag in dict.fromkeys(trace.tags):
        names.append(("tag", caps.name(workspace, "tag", tag, trace.started_at), "", 1))
        names.append((TOTAL_KINDS["tag"], "", "", 1))
    if trace.end_user:
        end_user = caps.name(workspace, "end_user", trace.end_user, trace.started_at)
        names.append(("end_user", end_user, "", 1))
        names.append((TOTAL_KINDS["end_user"], "", "", 1))
    for rule_id in summary[7]:
        names.append(("rule", rule_id[:NAME_LENGTH], "", 1))
    for violation in bundle.violations:
        guardrail = violation.guardrail[:NAME_LENGTH]
        names.append(("guardrail", guardrail, violation.action[:DETAIL_LENGTH], 1))
        for entity, count in violation.entities.items():
            names.append(("entity", guardrail, entity[:DETAIL_LENGTH], count))
    for grain, start in buckets:
        for kind, name, detail, events in names:
            shared = kind in SHARED_KINDS
            into.add(
                (grain, start, workspace, key, kind, name, detail),
                events,
                error if shared else 0,
                cost if shared else Decimal(0),
                tokens if shared else 0,
            )


def aggregate(
    bundles: Iterable[TraceBundle], caps: NameCaps | None = None, *, fold: bool = True
) -> Aggregate:
    """Sum the bundles into roll-up and breakdown rows (see the module's docstring).

    Unknown costs (None) add nothing to `cost_usd`; a request with an attempt whose cost is
    unknown (`_unpriced`) counts in `unpriced`, also when its other attempts were priced.
    Unknown token counts add 0.

    With `fold=False` only the finest rows are made (minute roll-ups, hour breakdowns): Postgres
    adds them up into the coarser grains itself (`add_on_postgres`).
    """
    caps = caps if caps is not None else NameCaps()
    minutes: dict[tuple[Any, ...], _Sums] = {}
    breakdowns = _Breakdowns()
    _accumulate(bundles, caps, minutes, breakdowns)
    return _aggregate(minutes, breakdowns, fold)


async def aggregate_yielding(
    bundles: list[TraceBundle], caps: NameCaps | None = None, *, fold: bool = True, chunk: int = 128
) -> Aggregate:
    """`aggregate`, `chunk` bundles at a time with the event loop served in between: a batch of
    a thousand bundles takes 10-20 ms, too long to hold a loop that serves requests."""
    caps = caps if caps is not None else NameCaps()
    minutes: dict[tuple[Any, ...], _Sums] = {}
    breakdowns = _Breakdowns()
    for start in range(0, len(bundles), chunk):
        if start:
            await asyncio.sleep(0)
        _accumulate(bundles[start : start + chunk], caps, minutes, breakdowns)
    return _aggregate(minutes, breakdowns, fold)


def _accumulate(
    bundles: Iterable[TraceBundle],
    caps: NameCaps,
    minutes: dict[tuple[Any, ...], _Sums],
    breakdowns: _Breakdowns,
) -> None:
    for bundle in bundles:
        status, summary = summarise(bundle)
        dimensions = _dimensions(bundle, status, summary[6])
        started = bundle.trace.started_at
        key = (bucket_of(started, _MINUTE), *dimensions)
        entry = minutes.get(key)
        if entry is None:
            entry = minutes[key] = _Sums()
        entry.add(_contribution(bundle, status, summary))
        if bundle.trace.tags or bundle.trace.end_user or bundle.violations or summary[7]:
            hour = (("hour", _time(bucket_of(started, _HOUR))),)
            _breakdowns(bundle, status, summary, hour, caps, breakdowns)


def _aggregate(
    minutes: dict[tuple[Any, ...], _Sums], breakdowns: _Breakdowns, fold: bool
) -> Aggregate:
    sums = _by_grain(minutes, _GRAIN_SECONDS if fold else _GRAIN_SECONDS[:1])
    if fold:
        for (_, start, *rest), values in list(breakdowns.sums.items()):
            day = ("day", _time(bucket_of(start.timestamp(), _DAY)), *rest)
            breakdowns.add(day, *values)
    return Aggregate(
        rollups=[
            dict(zip(KEY_COLUMNS, key, strict=True)) | entry.row()
            for key, entry in sorted(sums.items(), key=_sort_key)
        ],
        breakdowns=[
            dict(zip(BREAKDOWN_KEY_COLUMNS, key, strict=True))
            | dict(zip(BREAKDOWN_SUM_COLUMNS, values, strict=True))
            for key, values in sorted(breakdowns.sums.items(), key=_sort_key)
        ],
    )


def _time(epoch_seconds: float) -> datetime:
    return _TIMES.get(epoch_seconds) or _TIMES.setdefault(epoch_seconds, utc(epoch_seconds))


_TIMES: dict[float, datetime] = {}
"""Bucket starts already made into datetimes (a few thousand a day at most is a small cost;
cleared when it grows past `_TIMES_LIMIT`)."""
_TIMES_LIMIT: Final = 100_000


def _by_grain(
    minutes: dict[tuple[Any, ...], _Sums], grains: tuple[tuple[str, int], ...]
) -> dict[tuple[Any, ...], _Sums]:
    """The minute rows, and the rows of the coarser `grains` they add up to: each request is
    summed once, then whole minutes are folded into their hour and day."""
    if len(_TIMES) > _TIMES_LIMIT:
        _TIMES.clear()
    sums: dict[tuple[Any, ...], _Sums] = {}
    for (minute, *dimensions), entry in minutes.items():
        sums[("minute", _time(minute), *dimensions)] = entry
        for grain, seconds in grains[1:]:
            key = (grain, _time(bucket_of(minute, seconds)), *dimensions)
            folded = sums.get(key)
            if folded is None:
                folded = sums[key] = _Sums()
            folded.add_all(entry)
    return sums


def _sort_key(item: tuple[tuple[Any, ...], Any]) -> tuple[Any, ...]:
    return item[0]


def _upsert(
    table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], dialect: str
) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )


def upsert_statement(dialect_name: str) -> sa.Insert:
    """`INSERT ... ON CONFLICT (key) DO UPDATE SET col = usage_rollups.col + excluded.col`."""
    return _upsert(usage_rollups, KEY_COLUMNS, SUM_COLUMNS, dialect_name)


def breakdown_upsert_statement(dialect_name: str) -> sa.Insert:
    return _upsert(usage_breakdowns, BREAKDOWN_KEY_COLUMNS, BREAKDOWN_SUM_COLUMNS, dialect_name)


def postgres_type(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.BigInteger):
        return "int8"
    if isinstance(kind, sa.Float):
        return "float8"
    if isinstance(kind, sa.String):
        return "text"
    return "numeric"  # Money


def _unnest_upsert(table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...]) -> str:
    names = (*keys, *sums)
    arrays = ", ".join(
        f"${n}::{postgres_type(table.c[name])}[]" for n, name in enumerate(names, start=1)
    )
    additions = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in sums)
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {additions}"
    )


_UNNEST_ROLLUPS: Final = _unnest_upsert(usage_rollups, KEY_COLUMNS, SUM_COLUMNS)
_UNNEST_BREAKDOWNS: Final = _unnest_upsert(
    usage_breakdowns, BREAKDOWN_KEY_COLUMNS, BREAKDOWN_SUM_COLUMNS
)
_MARK_HOURS: Final = (
    "INSERT INTO usage_pending (hour_start, marked_at) SELECT unnest($1::timestamptz[]), now() "
    "ON CONFLICT (hour_start) DO UPDATE SET marked_at = excluded.marked_at"
)
"""`DO UPDATE`, not `DO NOTHING`: the mark is locked until this batch commits, so a fold that
clears it waits for the batch's rows and sums them (`telemetry.rollup_folding`)."""


def hours_of(summed: Aggregate) -> list[datetime]:
    """The hours the finest rows of `aggregate(..., fold=False)` fall in, in order."""
    hours = {
        utc(bucket_of(row["bucket_start"].timestamp(), _HOUR))
        for row in (*summed.rollups, *summed.breakdowns)
    }
    return sorted(hours)


async def add_on_postgres(connection: Any, summed: Aggregate, *, mark: bool = True) -> None:
    """Add the finest rows (`aggregate(..., fold=False)`: minute roll-ups, hour breakdowns) into
    the tables through asyncpg and mark their hours for `telemetry.rollup_folding`, which sums
    the hour and day rows from them. Each table takes one statement whose values are column
    arrays: far cheaper to send than a parameter per value when rows have more than a hundred
    columns. Summing the coarser rows later, once for many batches, spares the recorder two more
    rows to update per row it writes (`connection` is asyncpg's, inside the batch's
    transaction; the marks go last, so they are held only until it commits)."""
    for sql, rows, names in (
        (_UNNEST_ROLLUPS, summed.rollups, (*KEY_COLUMNS, *SUM_COLUMNS)),
        (_UNNEST_BREAKDOWNS, summed.breakdowns, (*BREAKDOWN_KEY_COLUMNS, *BREAKDOWN_SUM_COLUMNS)),
    ):
        if rows:
            await connection.execute(sql, *([row[name] for row in rows] for name in names))
    hours = hours_of(summed)
    if mark and hours:
        await connection.execute(_MARK_HOURS, hours)
