"""Append many rows to the telemetry tables through one connection, in the caller's transaction.

For writing a large history at once (`steerway demo-data`), not for the request path's batches
(`telemetry.writers`). Rows are tuples in the order of the columns given; `prepare` converts them
to what the driver takes and may run in a worker thread while the previous rows are being sent,
so building rows and the database's work overlap. Postgres takes them through asyncpg `COPY` on
the transaction's own connection; SQLite through executemany inserts. Roll-up rows are added to
whatever `usage_rollups` already holds for the same key (the recorder's upsert), so a history
written on top of other rows never overwrites a count (the same goes for `usage_breakdowns`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from telemetry import rollups
from telemetry.schema import metadata

Row = tuple[Any, ...]
ROLLUP_COLUMNS: tuple[str, ...] = (*rollups.KEY_COLUMNS, *rollups.SUM_COLUMNS)
BREAKDOWN_COLUMNS: tuple[str, ...] = (
    *rollups.BREAKDOWN_KEY_COLUMNS,
    *rollups.BREAKDOWN_SUM_COLUMNS,
)
_ADDED_TO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "usage_rollups": (rollups.KEY_COLUMNS, rollups.SUM_COLUMNS),
    "usage_breakdowns": (rollups.BREAKDOWN_KEY_COLUMNS, rollups.BREAKDOWN_SUM_COLUMNS),
}
"""Tables whose rows are added to the stored ones with the same key: (key columns, sums)."""
SQLITE_CACHE_KIB = 64 * 1024
"""SQLite's page cache while rows are appended: a quarter faster than the default 2 MB once the
indexes outgrow that."""
_json_encoder = msgspec.json.Encoder()


class RowsConflict(Exception):
    """A row's key is already stored: the transaction cannot go on."""


class PreparedRows(msgspec.Struct, frozen=True, gc=False):
    table: str
    columns: tuple[str, ...]
    rows: list[Row]


def _json_text(value: Any) -> str:
    if not value and type(value) in (list, dict):
        return "[]" if type(value) is list else "{}"
    return _json_encoder.encode(value).decode()


def _sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores: naive UTC with microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


Converter = list[tuple[int, Callable[[Any], Any]]]


def _converter(table: str, columns: Sequence[str], dialect: Dialect) -> Converter:
    """Per column that needs one, how a value becomes what the driver takes: JSON as text on
    both backends; on SQLite also times as text and money as integer 1e-10 dollars, exactly as
    the column types store them."""
    found: Converter = []
    for position, name in enumerate(columns):
        column_type = metadata.tables[table].c[name].type
        processor: Callable[[Any], Any] | None
        if isinstance(column_type, sa.JSON):
            processor = _json_text
        elif dialect.name != "sqlite":
            processor = None
        elif isinstance(column_type, sa.DateTime):
            processor = _sqlite_timestamp
        else:
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            found.append((position, processor))
    return found


class BulkLoader:
    """Converts and appends rows for one dialect and one transaction (make one per
    transaction); holds no connection."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._postgres = dialect.name == "postgresql"
        self._converters: dict[tuple[str, tuple[str, ...]], Converter] = {}
        self._staged: set[str] = set()
        self._began = False
        self._cache_size: int | None = None

    def prepare(self, table: str, columns: tuple[str, ...], rows: Sequence[Row]) -> PreparedRows:
        """The rows as the driver takes them; None stays SQL NULL, also in JSON columns."""
        key = (table, columns)
        converter = self._converters.get(key)
        if converter is None:
            converter = self._converters[key] = _converter(table, columns, self._dialect)
        if not converter:
            return PreparedRows(table, columns, list(rows))
        converted = []
        for row in rows:
            values = list(row)
            for position, convert in converter:
                value = values[position]
                if value is not None:
                    values[position] = convert(value)
            converted.append(tuple(values))
        return PreparedRows(table, columns, converted)

    def prepare_rollups(self, summed: rollups.Aggregate) -> list[PreparedRows]:
        """Roll-up and breakdown rows as `telemetry.rollups.aggregate` makes them."""
        return [
            self.prepare(
                "usage_rollups",
                ROLLUP_COLUMNS,
                [tuple(r[c] for c in ROLLUP_COLUMNS) for r in summed.rollups],
            ),
            self.prepare(
                "usage_breakdowns",
                BREAKDOWN_COLUMNS,
                [tuple(r[c] for c in BREAKDOWN_COLUMNS) for r in summed.breakdowns],
            ),
        ]

    async def write(self, connection: AsyncConnection, batches: Sequence[PreparedRows]) -> None:
        """Append the batches in order; roll-ups are added to the counts already stored.
        Raises `RowsConflict` when a row's key is already taken."""
        for batch in batches:
            if not batch.rows:
                continue
            try:
                if self._postgres:
                    await self._copy(connection, batch)
                else:
                    await self._insert(connection, batch)
            except (sa_exc.IntegrityError, asyncpg.UniqueViolationError) as error:
                raise RowsConflict(f"a row of {batch.table} is already stored") from error

    async def finish(self, connection: AsyncConnection) -> None:
        """Put back what `write` changed on the connection (SQLite's page cache size)."""
        if self._cache_size is not None:
            await connection.exec_driver_sql(f"PRAGMA cache_size = {self._cache_size}")
            self._cache_size = None

    async def _copy(self, connection: AsyncConnection, batch: PreparedRows) -> None:
        if not self._began:
            # COPY goes around SQLAlchemy, which starts asyncpg's transaction only on the first
            # statement it sends: send one first, so the rows land in the caller's transaction.
            await connection.exec_driver_sql("SELECT 1")
            self._began = True
        raw = (await connection.get_raw_connection()).driver_connection
        if raw is None or not raw.is_in_transaction():
            raise RuntimeError("COPY would run outside the caller's transaction")
        added_to = _ADDED_TO.get(batch.table)
        if added_to is None:
            await raw.copy_records_to_table(
                batch.table, records=batch.rows, columns=list(batch.columns)
            )
            return
        keys, sums = added_to
        stage = f"bulk_load_{batch.table}"
        if stage not in self._staged:
            await raw.execute(
                f"CREATE TEMPORARY TABLE {stage} "
                f"(LIKE {batch.table} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            self._staged.add(stage)
        await raw.execute(f"TRUNCATE {stage}")
        await raw.copy_records_to_table(stage, records=batch.rows, columns=list(batch.columns))
        names = ", ".join(batch.columns)
        additions = ", ".join(f"{name} = {batch.table}.{name} + excluded.{name}" for name in sums)
        await raw.execute(
            f"INSERT INTO {batch.table} ({names}) SELECT {names} FROM {stage} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {additions}"
        )

    async def _insert(self, connection: AsyncConnection, batch: PreparedRows) -> None:
        if not self._began:
            result = await connection.exec_driver_sql("PRAGMA cache_size")
            self._cache_size = int(result.scalar_one())
            await connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            self._began = True
        quote = self._dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in batch.columns)
        marks = ", ".join("?" for _ in batch.columns)
        sql = f"INSERT INTO {quote(batch.table)} ({names}) VALUES ({marks})"
        added_to = _ADDED_TO.get(batch.table)
        if added_to is not None:
            key_columns, sums = added_to
            additions = ", ".join(f"{quote(c)} = {quote(c)} + excluded.{quote(c)}" for c in sums)
            keys = ", ".join(quote(c) for c in key_columns)
            sql += f" ON CONFLICT ({keys}) DO UPDATE SET {additions}"
        await connection.exec_driver_sql(sql, batch.rows)
