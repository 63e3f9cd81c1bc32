"""The retention job: every `interval_s`, once across replicas, remove what the config no
longer keeps, and on Postgres keep the day partitions ready ahead.

On Postgres a trace table's day partition is dropped whole once its last possible row is older
than the table's retention, and rows in a default partition (the job was late, or an id is not
time-ordered) are deleted in batches by their own time; on SQLite every kind is deleted in
batches by its time column. Prompts and answers are cleared in batches on both, and roll-ups
are deleted in batches by grain and bucket. A partition is only ever dropped when every id it
can hold is older than the cutoff, so nothing inside the window goes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry import metrics
from telemetry.job_lock import job_lock
from telemetry.periodic import PeriodicJob
from telemetry.retention.batches import clear_content_in_batches, delete_in_batches, moment
from telemetry.retention.partitions import (
    PARTITION_SPAN,
    PARTITIONED_TABLES,
    PartitionedTable,
    day_of,
    days_in_default,
    drop_partition,
    ensure_partition,
    partitions_of,
)
from telemetry.retention.policy import RetentionConfig

logger = logging.getLogger("steerway.telemetry.retention")

LOCK_KEY: Final = 0x5374_6657_0005
"""The advisory lock (Postgres) that lets one process run a round at a time."""
LOCK_NAME: Final = "retention"
DDL_LOCK_TIMEOUT: Final = "10s"
"""How long making or dropping a partition waits for the table's lock before the round gives
up (and the next one tries again), rather than queueing the recorder's writes behind it."""
_ROLLUP_TABLES: Final = {
    "minute": ("usage_rollups",),
    "hour": ("usage_rollups", "usage_breakdowns"),
    "day": ("usage_rollups", "usage_breakdowns"),
}


@dataclass
class RetentionRound:
    """What one round did: rows removed by kind, partitions dropped and made by table, rows
    moved out of default partitions by table."""

    removed: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    moved: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{kind} {rows}" for kind, rows in sorted(self.removed.items()) if rows]
        removed = ", ".join(parts) if parts else "nothing"
        text = f"retention removed {removed}"
        if self.dropped:
            text += f"; partitions dropped {sum(self.dropped.values())}"
        if self.created:
            text += f", made {sum(self.created.values())}"
        if self.moved:
            text += f", rows moved out of default partitions {sum(self.moved.values())}"
        return text


def kept_days(retention: RetentionConfig, follows: str) -> int | None:
    """The days a table following the setting `follows` is kept (None: forever)."""
    if follows == "traces":
        return retention.traces
    if follows == "spans":
        return retention.spans_days()
    if follows == "decisions":
        return retention.decisions_days()
    return retention.interactions_days()


async def run_retention(
    engine: AsyncEngine, retention: RetentionConfig, *, now: datetime | None = None
) -> RetentionRound | None:
    """One round; None when another process holds the round. `now` fixes the clock (tests)."""
    now = now or datetime.now(UTC)
    async with job_lock(engine, key=LOCK_KEY, name=LOCK_NAME) as locked:
        if not locked:
            return None
        done = RetentionRound()
        postgres = engine.dialect.name == "postgresql"
        for table in PARTITIONED_TABLES:
            days = kept_days(retention, table.follows)
            cutoff = None if days is None else now - timedelta(days=days)
            if postgres:
                await _keep_partitions(engine, table, retention, now, cutoff, done)
            elif cutoff is not None:
                done.removed[table.kind] += await delete_in_batches(
                    engine,
                    table.name,
                    f"{table.time_column} < :before",
                    {"before": moment(engine, cutoff)},
                    retention.batch_size,
                )
        if retention.content is not None:
            before = now - timedelta(days=retention.content)
            done.removed["content"] += await clear_content_in_batches(
                engine, before, retention.batch_size
            )
        await _expire_rollups(engine, retention, now, done)
        expired = await delete_in_batches(
            engine,
            "stored_responses",
            "expires_at < :now",
            {"now": moment(engine, now)},
            retention.batch_size,
        )
        if expired:
            done.removed["stored_responses"] += expired
    _count(done)
    logger.info(done.summary())
    return done


async def _keep_partitions(
    engine: AsyncEngine,
    table: PartitionedTable,
    retention: RetentionConfig,
    now: datetime,
    cutoff: datetime | None,
    done: RetentionRound,
) -> None:
    today = day_of(now)
    last = today + PARTITION_SPAN * retention.partitions_ahead
    async with engine.connect() as connection:
        existing = await partitions_of(connection, table)
        late = await days_in_default(connection, table)
    wanted = {today + PARTITION_SPAN * ahead for ahead in range(retention.partitions_ahead + 1)}
    wanted |= {day for day in late if day <= last and not _expired(day, cutoff)}
    for day in sorted(wanted - existing.keys()):
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
            done.moved[table.name] += await ensure_partition(connection, table, day)
        done.created[table.name] += 1
    if cutoff is None:
        return
    for day, name in sorted(existing.items()):
        if _expired(day, cutoff):
            async with engine.begin() as connection:
                await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
                done.removed[table.kind] += await drop_partition(connection, name)
            done.dropped[table.name] += 1
    done.removed[table.kind] += await delete_in_batches(
        engine,
        table.default_partition,
        f"{table.time_column} < :before",
        {"before": cutoff},
        retention.batch_size,
    )


def _expired(day: date, cutoff: datetime | None) -> bool:
    """Whether every id a partition of `day` can hold is older than `cutoff`."""
    if cutoff is None:
        return False
    return datetime.combine(day + PARTITION_SPAN, time(), UTC) <= cutoff


async def _expire_rollups(
    engine: AsyncEngine, retention: RetentionConfig, now: datetime, done: RetentionRound
) -> None:
    levels = {
        "minute": retention.rollup_minute,
        "hour": retention.rollup_hour,
        "day": retention.rollup_day,
    }
    for grain, days in levels.items():
        if days is None:
            continue
        before = moment(engine, now - timedelta(days=days))
        for table in _ROLLUP_TABLES[grain]:
            done.removed[f"rollup_{grain}"] += await delete_in_batches(
                engine,
                table,
                "grain = :grain AND bucket_start < :before",
                {"grain": grain, "before": before},
                retention.batch_size,
            )


def _count(done: RetentionRound) -> None:
    for kind, rows in done.removed.items():
        metrics.retention_rows_removed.labels(kind).inc(rows)
    for table, partitions in done.dropped.items():
        metrics.retention_partitions_dropped.labels(table).inc(partitions)
    for table, partitions in done.created.items():
        metrics.retention_partitions_created.labels(table).inc(partitions)
    for table, rows in done.moved.items():
        metrics.retention_rows_moved.labels(table).inc(rows)


def retention_job(engine: AsyncEngine, retention: RetentionConfig) -> PeriodicJob | None:
    """The job as `steerway serve` and `steerway worker` run it: a round when started and
    every `interval_s` after. It always runs: stored responses of the Responses API expire
    whatever `telemetry.retention` says (at their own `expires_at`), and on Postgres it also
    makes the partitions ahead."""
    return PeriodicJob(
        "steerway-retention",
        retention.interval_s,
        lambda: run_retention(engine, retention),
        logger=logger,
        failing="retention round failed: database %s",
        immediately=True,
    )
