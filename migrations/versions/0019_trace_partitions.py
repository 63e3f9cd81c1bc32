"""Postgres: the trace tables partitioned by day, so retention drops whole partitions.

`traces`, `spans`, `decisions`, `ai_interactions` and `guardrail_violations` become tables
partitioned by RANGE over `trace_id`, one partition per UTC day, plus a DEFAULT partition.

Why the trace id and not a time column: a partitioned table's primary key must hold its
partition key. Partitioned by `started_at`, every key would become (id, started_at), a lookup
by trace id alone would probe every partition, and the children (whose keys are their own
ids) would still be split from their trace at day boundaries. A trace id is a UUIDv7 whose
first twelve hex digits are its Unix milliseconds, so a day's ids lie between two strings and
a range over the id is a range over time. `traces` keeps its key (`trace_id`); the children's
keys did not hold `trace_id` (`span_id`, `decision_id`, `interaction_id`, `violation_id`) and
become (`trace_id`, own id). Every row of a trace then lives in the same day's partition of its
table, a trace page's reads by trace id are pruned to one partition, and a trace's spans,
decisions, interactions and violations expire with it or, when kept for less time, each on
their own. Nothing read a child row by its own id alone. No foreign key joins these tables
(Postgres would allow one between partitioned tables only on the whole key).

Daily partitions, because retention is set in days. The DEFAULT partition takes any row no
day partition covers (the retention job was late, or an id is not a UUIDv7): an insert never
fails; the job moves the rows of a day into the partition it then makes for it, and deletes
expired default rows one batch at a time by their own time column.

The existing rows are carried over: each table is renamed, the partitioned table is made in its
place with the same columns, defaults and indexes, a partition is made for every day that has
rows, the rows are copied, and the old table dropped. Today's partition and those ahead are made
by the retention job, which runs as soon as a gateway or worker starts: a new database holds
only the default partitions (a fifth of the relations), so making one, or copying one, stays
cheap.
This rewrites the five tables under an exclusive lock; on a large database run it while the
gateway is stopped (docs/operations.md). Downgrade does the reverse: plain tables with the
keys they had. SQLite has no partitions; there this migration does nothing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN_IDS = {
    "traces": "trace_id",
    "spans": "span_id",
    "decisions": "decision_id",
    "ai_interactions": "interaction_id",
    "guardrail_violations": "violation_id",
}
DAYS_AHEAD = 7
EARLIEST_DAY = date(2000, 1, 1)
"""Ids whose time prefix reads earlier than this are not time-ordered ids; they stay in the
default partition instead of getting a partition of a made-up day each."""
_EPOCH = date(1970, 1, 1)
_DAY_MS = 86_400_000


def _key(table: str) -> str:
    own = OWN_IDS[table]
    return "trace_id" if own == "trace_id" else f"trace_id, {own}"


def _bound(day: date) -> str:
    return f"{(day - _EPOCH).days * _DAY_MS:012x}" + "0" * 20


def _index_definitions(table: str) -> list[tuple[str, str]]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = :table AND indexname <> :pk "
            "ORDER BY indexname"
        ),
        {"table": table, "pk": f"pk_{table}"},
    )
    # An index of a partitioned table reads `ON ONLY <table>`: remade on a plain table (or on
    # a partitioned one, to cover its partitions too), it is `ON <table>`.
    return [(name, definition.replace(" ON ONLY ", " ON ")) for name, definition in rows]


def _set_aside(table: str, suffix: str) -> list[tuple[str, str]]:
    """Rename `table` out of the way and free its index names; returns its indexes' DDL."""
    indexes = _index_definitions(table)
    for name, _ in indexes:
        op.execute(f"DROP INDEX {name}")
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_{suffix}")
    op.execute(f"ALTER TABLE {table}_{suffix} RENAME CONSTRAINT pk_{table} TO pk_{table}_{suffix}")
    return indexes


def _days_with_rows(table: str) -> set[date]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT ('x' || lpad(substr(trace_id, 1, 12), 16, '0'))::bit(64)::bigint "
            f"/ {_DAY_MS} FROM {table} WHERE trace_id ~ '^[0-9a-f]{{12}}7[0-9a-f]{{19}}$'"
        )
    )
    return {_EPOCH + timedelta(days=int(number)) for (number,) in rows}


def _partition(table: str) -> None:
    old = f"{table}_unpartitioned"
    indexes = _set_aside(table, "unpartitioned")
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (trace_id)"
    )
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({_key(table)})")
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    today = datetime.now(UTC).date()
    last = today + timedelta(days=DAYS_AHEAD)
    days = {day for day in _days_with_rows(old) if EARLIEST_DAY <= day <= last}
    for day in sorted(days):
        op.execute(
            f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
            f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
        )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    for _, definition in indexes:
        op.execute(definition)


def _unpartition(table: str) -> None:
    old = f"{table}_partitioned"
    indexes = _set_aside(table, "partitioned")
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({OWN_IDS[table]})")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")  # its partitions go with it
    for _, definition in indexes:
        op.execute(definition)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in OWN_IDS:
        _partition(table)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in OWN_IDS:
        _unpartition(table)
