"""Hour and day roll-ups summed from the finer rows after the fact, on Postgres.

The recorder adds each batch's minute roll-ups and hour breakdowns and marks their hours in
`usage_pending` (`telemetry.rollups.add_on_postgres`). Every `interval` a worker takes the marks
and, in the same transaction, sums each marked hour's hour rows from its minute rows and each
day of a marked hour from its hour rows, replacing what they held. Summing a whole hour again is
the same whoever does it and however often, so a crash or a second worker can never count a
request twice; an advisory lock lets one worker fold at a time, and the marks are taken in hour
order, the order writers lock them in.

A batch's mark is locked until the batch commits, so a fold that takes it waits for those rows
and sums them; a batch that marks an hour after a fold took it leaves a new mark for the next.
Until an hour is folded, analytics read it from its finer rows (`telemetry.analytics`), so no
answer waits for the fold.

At 2,000 requests a second the recorder writes about eight batches a second; each would add to
as many hour and day rows as minute rows. A fold every ten seconds updates each of those rows
once instead of eighty times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.periodic import run_every
from telemetry.rollups import (
    BREAKDOWN_KEY_COLUMNS,
    BREAKDOWN_SUM_COLUMNS,
    KEY_COLUMNS,
    SUM_COLUMNS,
    postgres_type,
)
from telemetry.schema import usage_breakdowns, usage_rollups

logger = logging.getLogger("steerway.telemetry.rollup_folding")

DEFAULT_INTERVAL: Final = 10.0
CLOSE_TIMEOUT: Final = 5.0
"""The longest a stopping gateway waits for its last fold."""
LOCK_KEY: Final = 0x5374_6657_0001
"""The advisory lock one folding worker holds for its transaction."""
HOUR: Final = timedelta(hours=1)
DAY: Final = timedelta(days=1)

_TAKE_MARKS: Final = (
    "DELETE FROM usage_pending WHERE hour_start IN "
    "(SELECT hour_start FROM usage_pending ORDER BY hour_start FOR UPDATE) RETURNING hour_start"
)


def _summed_again(
    table: sa.Table, keys: tuple[str, ...], sums: tuple[str, ...], grain: str, finer: str
) -> str:
    """Rows of `grain` for the bucket [$1, $2) set to the sums of its rows of grain `finer`."""
    names = (*keys, *sums)
    dimensions = ", ".join(name for name in keys if name not in ("grain", "bucket_start"))
    summed = ", ".join(f"sum({name})::{postgres_type(table.c[name])}" for name in sums)
    replaced = ", ".join(f"{name} = excluded.{name}" for name in sums)
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT '{grain}', $1::timestamptz, {dimensions}, {summed} FROM {table.name} "
        f"WHERE grain = '{finer}' AND bucket_start >= $1 AND bucket_start < $2 "
        f"GROUP BY {dimensions} ORDER BY {dimensions} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {replaced}"
    )


_HOURS_FROM_MINUTES: Final = _summed_again(
    usage_rollups, KEY_COLUMNS, SUM_COLUMNS, "hour", "minute"
)
_DAYS_FROM_HOURS: Final = _summed_again(usage_rollups, KEY_COLUMNS, SUM_COLUMNS, "day", "hour")
_BREAKDOWN_DAYS_FROM_HOURS: Final = _summed_again(
    usage_breakdowns, BREAKDOWN_KEY_COLUMNS, BREAKDOWN_SUM_COLUMNS, "day", "hour"
)


def day_of(hour: datetime) -> datetime:
    return hour.replace(hour=0, minute=0, second=0, microsecond=0)


async def fold_pending(engine: AsyncEngine) -> list[datetime]:
    """Sum the marked hours and their days again and clear the marks; the hours folded (none
    when another worker is folding, or on a database that marks nothing)."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.begin() as connection:
        # Through SQLAlchemy first: that opens the transaction the lock and the sums belong to.
        locked = await connection.scalar(
            sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
        )
        if not locked:
            return []
        raw: Any = (await connection.get_raw_connection()).driver_connection
        hours = sorted(row["hour_start"] for row in await raw.fetch(_TAKE_MARKS))
        for hour in hours:
            await raw.execute(_HOURS_FROM_MINUTES, hour, hour + HOUR)
        for day in sorted({day_of(hour) for hour in hours}):
            await raw.execute(_DAYS_FROM_HOURS, day, day + DAY)
            await raw.execute(_BREAKDOWN_DAYS_FROM_HOURS, day, day + DAY)
    return hours


class RollupFolder:
    """Folds the marked hours every `interval` seconds while the gateway runs, and once more
    when it stops. Does nothing on SQLite, whose one writer keeps every grain as it writes."""

    def __init__(self, engine: AsyncEngine, interval: float = DEFAULT_INTERVAL) -> None:
        self._engine = engine
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._engine.dialect.name == "postgresql" and self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._fold_forever(), name="steerway-rollup-fold")

    async def close(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):  # what is left stays marked for the next start
            async with asyncio.timeout(min(self._interval, CLOSE_TIMEOUT)):
                await fold_pending(self._engine)

    async def _fold_forever(self) -> None:
        # Marks stay until a fold succeeds; analytics read those hours from finer rows.
        await run_every(
            self._interval,
            self._stopping,
            lambda: fold_pending(self._engine),
            logger=logger,
            failing="hour and day roll-ups not summed yet: database %s",
        )
