"""The daily partitions of the trace tables on Postgres, named and bounded by trace id.

`traces`, `spans`, `decisions`, `ai_interactions` and `guardrail_violations` are partitioned by
RANGE over `trace_id` (migration 0019 says why). A trace id is a UUIDv7 in hex, whose first
twelve digits are its Unix milliseconds, so the ids minted on one UTC day lie between two
32-digit strings: `<that day's first millisecond, 12 hex digits>` followed by zeros, and the same
for the next day. One partition per day and table (`traces_p20261207`), and a DEFAULT partition
(`traces_default`) that takes every row no partition covers, so an insert never fails when the
job is late or an id is not time-ordered.

A partition is made while its day is ahead (`ensure_partition`): made then, it is empty and
`CREATE TABLE ... PARTITION OF` is instant. When the default partition already holds rows of the
day (the job was late), those rows are moved into a table of their own first, which is then
attached, so no row is ever lost or left where expiry by partition would miss it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

PARTITION_SPAN: Final = timedelta(days=1)
"""Daily: retention is set in days, so a partition expires whole on the day its last row does;
a day of a busy gateway (2,000 requests a second is about 170 million rows over the five
tables) is still a size Postgres scans, indexes and drops comfortably."""

_EPOCH: Final = date(1970, 1, 1)
_DAY_MS: Final = 86_400_000
_UUID7_ID: Final = "^[0-9a-f]{12}7[0-9a-f]{19}$"


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    """A table partitioned by trace id: its kind (the metric's label), the retention setting it
    follows, its own id, and the time column its rows are expired by where they are deleted
    one by one."""

    name: str
    kind: str
    follows: str
    id_column: str
    time_column: str

    @property
    def default_partition(self) -> str:
        return f"{self.name}_default"

    def partition(self, day: date) -> str:
        return f"{self.name}_p{day:%Y%m%d}"


PARTITIONED_TABLES: Final = (
    PartitionedTable("traces", "traces", "traces", "trace_id", "started_at"),
    PartitionedTable("spans", "spans", "spans", "span_id", "started_at"),
    PartitionedTable("decisions", "decisions", "decisions", "decision_id", "created_at"),
    PartitionedTable(
        "ai_interactions", "interactions", "interactions", "interaction_id", "started_at"
    ),
    PartitionedTable("guardrail_violations", "violations", "traces", "violation_id", "created_at"),
)

_PARTITION_NAME: Final = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")


def is_partition_name(name: str) -> bool:
    """Whether `name` is one of the partitions this module makes (for schema comparisons)."""
    match = _PARTITION_NAME.match(name)
    if match is not None:
        return match["table"] in {table.name for table in PARTITIONED_TABLES}
    return any(name == table.default_partition for table in PARTITIONED_TABLES)


def id_bound(day: date) -> str:
    """The smallest time-ordered id minted on `day` (UTC): the lower bound of its partition."""
    millis = (day - _EPOCH).days * _DAY_MS
    return f"{millis:012x}" + "0" * 20


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


async def partitions_of(connection: AsyncConnection, table: PartitionedTable) -> dict[date, str]:
    """The day partitions `table` has, by day (the default partition is not among them)."""
    result = await connection.execute(
        sa.text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE parent.relname = :table AND parent.relnamespace = current_schema()::regnamespace"
        ),
        {"table": table.name},
    )
    days: dict[date, str] = {}
    for (name,) in result.all():
        match = _PARTITION_NAME.match(name)
        if match is not None and match["table"] == table.name:
            days[datetime.strptime(match["day"], "%Y%m%d").date()] = name
    return days


async def days_in_default(connection: AsyncConnection, table: PartitionedTable) -> set[date]:
    """The days of the time-ordered ids in the default partition (usually none: rows land
    there only while the job is late, or when an id is not a UUIDv7, which has no day)."""
    result = await connection.execute(
        sa.text(
            "SELECT DISTINCT ('x' || lpad(substr(trace_id, 1, 12), 16, '0'))::bit(64)::bigint "
            f"/ {_DAY_MS} FROM {table.default_partition} WHERE trace_id ~ '{_UUID7_ID}'"
        )
    )
    return {_EPOCH + timedelta(days=int(number)) for (number,) in result.all()}


async def ensure_partition(connection: AsyncConnection, table: PartitionedTable, day: date) -> int:
    """Make `day`'s partition of `table` if it has none; returns the rows moved into it from
    the default partition (0 when it was made ahead of its day, as it should be)."""
    name = table.partition(day)
    low, high = id_bound(day), id_bound(day + PARTITION_SPAN)
    bounds = f"FROM ('{low}') TO ('{high}')"
    # Writers wait until the partition is there (a few milliseconds when it is made ahead, as
    # long as the move when rows wait in the default partition). The lock is on the parent: a
    # writer routes its rows when it locks the parent, so one that waited only on the default
    # partition would still send the day's rows there once the day had its own partition, and
    # the default partition's new bound would refuse them. It is the strongest lock the round
    # needs (making or attaching a partition takes it), taken at once: taking a weaker one
    # first and then this one deadlocks with a writer that has read the table in its
    # transaction and waits to write it.
    await connection.execute(sa.text(f"LOCK TABLE {table.name} IN ACCESS EXCLUSIVE MODE"))
    in_default = await connection.scalar(
        sa.text(
            f"SELECT count(*) FROM {table.default_partition} "
            "WHERE trace_id >= :low AND trace_id < :high"
        ),
        {"low": low, "high": high},
    )
    if not in_default:
        await connection.execute(
            sa.text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table.name} FOR VALUES {bounds}"
            )
        )
        return 0
    await connection.execute(
        sa.text(f"CREATE TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    moved = await connection.execute(
        sa.text(
            f"WITH moved AS (DELETE FROM {table.default_partition} "
            "WHERE trace_id >= :low AND trace_id < :high RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        {"low": low, "high": high},
    )
    await connection.execute(
        sa.text(f"ALTER TABLE {table.name} ATTACH PARTITION {name} FOR VALUES {bounds}")
    )
    return int(moved.rowcount or 0)


async def drop_partition(connection: AsyncConnection, name: str) -> int:
    """Drop a whole partition; returns the rows it held."""
    rows = await connection.scalar(sa.text(f"SELECT count(*) FROM {name}"))
    await connection.execute(sa.text(f"DROP TABLE {name}"))
    return int(rows or 0)
