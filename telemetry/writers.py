"""Write one batch of trace bundles in one transaction: five append-only tables and the roll-ups.

Postgres takes the append tables through asyncpg `COPY` on the transaction's own connection;
SQLite through executemany inserts. `skip_existing=True` is the careful mode for a batch that
may already be (partly) stored, such as a spill file replayed after a crash: rows whose id is
already in the database are left out, and so are their interactions' roll-up counts, so a
replay never counts anything twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry import rollups
from telemetry.escaping import escape_bundles
from telemetry.evaluation.picking import EvaluationPicker, Pick
from telemetry.evaluation.queue import enqueue_picks
from telemetry.records import OWN_CALL_SOURCES, InteractionRecord, TraceBundle
from telemetry.rows import BatchRecords, Row, TableRecords, as_dicts
from telemetry.schema import metadata
from telemetry.trace_sampling import TraceSampling

_ID_COLUMNS = {
    "traces": "trace_id",
    "spans": "span_id",
    "decisions": "decision_id",
    "ai_interactions": "interaction_id",
    "guardrail_violations": "violation_id",
}
_JSON_COLUMNS = {
    name: frozenset(
        column.name for column in metadata.tables[name].columns if isinstance(column.type, sa.JSON)
    )
    for name in _ID_COLUMNS
}
_ID_LOOKUP_CHUNK = 500
# Rows converted at a time. The conversion runs on the event loop, so a batch is cut into
# pieces the loop can serve requests between.
CHUNK_ROWS = 128
STATEMENT_ROWS = 1024
"""Rows per SQLite statement. The driver runs each in its own thread and takes the GIL back for
every row it binds: under load, each statement handed over costs the writer a wait for the busy
event loop to let go of the GIL, so fewer, longer statements write faster (measured: 1.25x the
requests a second at saturation against statements of `CHUNK_ROWS`)."""
_json_encoder = msgspec.json.Encoder()
SAMPLED_OUT = "sampled_out"
"""The key of `BatchWriter.write`'s counts that holds the traces written without their
spans, decisions and content (present only when the writer samples)."""
Progress = Callable[[float], None]
"""Told, as a batch is written, the share of its rows (0 to 1) that are sent to the database."""


def root_cause(error: BaseException) -> BaseException:
    """The driver's own exception beneath SQLAlchemy's wrappers."""
    cause = error
    while isinstance(cause, sa_exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    while cause.__cause__ is not None and type(cause).__module__.startswith("sqlalchemy"):
        cause = cause.__cause__
    return cause


def is_row_problem(error: BaseException) -> bool:
    """The batch's content is at fault (a duplicate id, a value the column rejects, JSON nested
    too deep), not the database's availability: the same batch would fail again, so it needs
    the careful path rather than a retry."""
    if isinstance(error, sa_exc.IntegrityError | sa_exc.DataError):
        return True
    return isinstance(
        root_cause(error),
        asyncpg.IntegrityConstraintViolationError
        | asyncpg.DataError
        | asyncpg.ProgramLimitExceededError
        | TypeError
        | ValueError
        | OverflowError
        | RecursionError,
    )


class IdTaken(ValueError):
    """A row's id is already stored for another workspace or trace."""


async def _escaped(bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
    """`escape_bundles` of a batch, `CHUNK_ROWS` bundles at a time with the event loop served in
    between: a few microseconds a bundle still add up to milliseconds in a large batch."""
    escaped: list[TraceBundle] = []
    for start in range(0, len(bundles), CHUNK_ROWS):
        if start:
            await asyncio.sleep(0)
        escaped.extend(escape_bundles(bundles[start : start + CHUNK_ROWS]))
    return escaped


def _json_text(value: Any) -> str | None:
    return None if value is None else _json_encoder.encode(value).decode()


class BatchWriter:
    """Writes batches of bundles to one database. Between batches it holds only which tags and
    end users keep their names in the roll-ups today (`telemetry.rollups.NameCaps`).

    With `sampling`, a bundle the policy does not keep whole is written as its trace row
    (marked `sampled_out`), its interactions without content and its guardrail findings; the
    roll-ups count it like any other."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        sampling: TraceSampling | None = None,
        picker: EvaluationPicker | None = None,
    ) -> None:
        self._engine = engine
        self._sampling = sampling
        self._picker = picker
        self._dialect = engine.dialect.name
        self._upsert = rollups.upsert_statement(self._dialect)
        self._upsert_breakdowns = rollups.breakdown_upsert_statement(self._dialect)
        self._name_caps = rollups.NameCaps()
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self._insert_new = {
            name: insert(metadata.tables[name]).on_conflict_do_nothing(
                index_elements=_unique_key(name, self._dialect)
            )
            for name in _ID_COLUMNS
        }
        self._driver_inserts: dict[str, _DriverInsert] = {}

    async def write(
        self,
        bundles: Sequence[TraceBundle],
        *,
        skip_existing: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        """Write the bundles; returns rows written per table (roll-ups: the rows the writer made;
        on Postgres the finest only, the database sums the hour and day rows from them), and
        with sampling the traces sampled out under `SAMPLED_OUT`. `progress` hears of each
        chunk of rows sent (not of the careful `skip_existing` writes).

        Values Postgres cannot hold are stored escaped on both backends (`telemetry.escaping`).
        SQLite would store them as they are, so there every batch is escaped before it is
        written; Postgres refuses them, so there a batch is escaped only once it has failed for
        its content, and batches without any cost nothing extra.
        """
        if self._dialect != "postgresql":
            return await self._write(await _escaped(bundles), skip_existing, progress)
        try:
            return await self._write(bundles, skip_existing, progress)
        except Exception as error:
            if not is_row_problem(error):
                raise
            escaped = await _escaped(bundles)
            if all(new is old for new, old in zip(escaped, bundles, strict=True)):
                raise
        return await self._write(escaped, skip_existing, progress)

    async def mark_for_evaluation(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        """The bundles, those an evaluator picks marked so sampling keeps their content (the
        recorder calls this before sampling drops content ahead of redaction)."""
        if self._picker is None:
            return list(bundles)
        await self._picker.refresh_if_due()
        return self._picker.mark(bundles)

    async def _write(
        self, bundles: Sequence[TraceBundle], skip_existing: bool, progress: Progress | None
    ) -> dict[str, int]:
        picked: dict[str, int] = {}
        if self._picker is not None:
            await self._picker.refresh_if_due()
            bundles = self._picker.mark(bundles)
        records = BatchRecords.from_bundles(bundles, self._sampling)
        async with self._engine.begin() as connection:
            if skip_existing:
                records = records.without(await self._stored_ids(connection, records))
            tables = records.tables()
            if self._picker is not None:
                picked = await self._enqueue_evaluations(connection, records)
            if skip_existing:
                await self._insert_ignoring_duplicates(connection, tables)
            elif self._dialect == "postgresql":
                await self._copy(connection, tables, _RowTally(tables, progress))
            else:
                await self._insert(connection, tables, _RowTally(tables, progress))
            postgres = self._dialect == "postgresql"
            # The gateway's own calls (a judge's, `evaluation`; a moderation judge's,
            # `moderation`) stay out of the users' usage figures.
            counted = [b for b in records.traces if b.trace.source not in OWN_CALL_SOURCES]
            summed = await rollups.aggregate_yielding(
                counted, self._name_caps, fold=not postgres, chunk=CHUNK_ROWS
            )
            if postgres:
                raw = (await connection.get_raw_connection()).driver_connection
                await rollups.add_on_postgres(raw, summed)
            else:
                if summed.rollups:
                    await connection.execute(self._upsert, summed.rollups)
                if summed.breakdowns:
                    await connection.execute(self._upsert_breakdowns, summed.breakdowns)
        counts = {table.name: len(table.records) for table in tables}
        counts["usage_rollups"] = len(summed.rollups)
        counts["usage_breakdowns"] = len(summed.breakdowns)
        for table, rows in picked.items():
            counts[table] = counts.get(table, 0) + rows
        if self._sampling is not None:
            counts[SAMPLED_OUT] = len(records.sampled_out)
        return counts

    async def _enqueue_evaluations(
        self, connection: AsyncConnection, records: BatchRecords
    ) -> dict[str, int]:
        """Queue rows (or `no_content` evaluations) for the interactions this batch writes
        that an evaluator picks, in the batch's transaction; picked from the records as
        written, so content sampling or redaction left out counts as no content."""
        assert self._picker is not None
        writing = {i.interaction_id: i for i in records.interactions}
        picks = [
            _with_interaction(pick, writing[pick.interaction.interaction_id])
            for pick in self._picker.pick(records.traces)
            if pick.interaction.interaction_id in writing
        ]
        if not picks:
            return {}
        return await enqueue_picks(connection, picks)

    async def _stored_ids(
        self, connection: AsyncConnection, records: BatchRecords
    ) -> dict[str, set[str]]:
        """Per table, the ids of the batch already stored as these very rows: same id, same
        workspace, same trace. An id stored for another workspace or trace is not "already
        stored" (skipping it would drop a request silently, or tie it to a row that is not
        its own); it raises `IdTaken`, so the bundle is refused and counted. Where the table's
        key holds the trace id (spans; on Postgres every child table), the same id under
        another trace is another row, and is written."""
        stored: dict[str, set[str]] = {}
        for name, owners in records.owners().items():
            table = metadata.tables[name]
            column = table.c[_ID_COLUMNS[name]]
            # Keyed by trace and id, the same id under another trace is another row.
            by_trace = len(_unique_key(name, self._dialect)) > 1
            ids = list(owners)
            found: set[str] = set()
            for start in range(0, len(ids), _ID_LOOKUP_CHUNK):
                chunk = ids[start : start + _ID_LOOKUP_CHUNK]
                result = await connection.execute(
                    sa.select(column, table.c.workspace_id, table.c.trace_id).where(
                        column.in_(chunk)
                    )
                )
                for row_id, workspace_id, trace_id in result.all():
                    owner = owners[row_id]
                    if by_trace and owner[1] != trace_id:
                        continue
                    if owner != (workspace_id, trace_id):
                        raise IdTaken(
                            f"{name} id {row_id} is stored for another workspace or trace"
                        )
                    found.add(row_id)
            stored[name] = found
        return stored

    async def _copy(
        self, connection: AsyncConnection, tables: list[TableRecords], tally: _RowTally
    ) -> None:
        # asyncpg only starts the transaction on the first statement SQLAlchemy sends; COPY goes
        # around SQLAlchemy, so send one first to make sure COPY runs inside the transaction.
        await connection.exec_driver_sql("SELECT 1")
        raw = (await connection.get_raw_connection()).driver_connection
        if raw is None or not raw.is_in_transaction():
            raise RuntimeError("COPY would run outside the batch's transaction")
        for table in tables:
            if table.records:
                await raw.copy_records_to_table(
                    table.name, records=_copy_rows(table, tally), columns=list(table.columns)
                )

    async def _insert(
        self, connection: AsyncConnection, tables: list[TableRecords], tally: _RowTally
    ) -> None:
        for table in tables:
            if not table.records:
                continue
            insert = self._driver_inserts.get(table.name)
            if insert is None:
                insert = self._driver_inserts[table.name] = _DriverInsert(
                    metadata.tables[table.name], table.columns, connection.dialect
                )
            end = len(table.records)
            for start in range(0, end, STATEMENT_ROWS):
                stop = min(start + STATEMENT_ROWS, end)
                parameters: list[tuple[Any, ...]] = []
                for at in range(start, stop, CHUNK_ROWS):
                    if at > start:
                        await asyncio.sleep(0)
                    parameters += insert.parameters(table.rows(at, min(at + CHUNK_ROWS, stop)))
                await connection.exec_driver_sql(insert.sql, parameters)
                tally.sent(len(parameters))

    async def _insert_ignoring_duplicates(
        self, connection: AsyncConnection, tables: list[TableRecords]
    ) -> None:
        for table in tables:
            rows = table.rows()
            if rows:
                await connection.execute(
                    self._insert_new[table.name], _parameters(table.name, table.columns, rows)
                )


def _with_interaction(pick: Pick, interaction: InteractionRecord) -> Pick:
    return Pick(pick.evaluator, pick.trace_id, interaction)


class _DriverInsert:
    """A plain executemany INSERT for one table, its values converted by the column types' own
    bind processors: rows are stored exactly as SQLAlchemy would store them, at a fraction of
    the per-row cost of building and compiling parameter dictionaries."""

    def __init__(self, table: sa.Table, columns: Sequence[str], dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for position, name in enumerate(columns):
            column_type = table.c[name].type
            processor = _fast_sqlite_processor(column_type) if dialect.name == "sqlite" else None
            if processor is None:
                processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.append((position, processor))

    def parameters(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Converted rows; None stays SQL NULL (also in JSON columns, never JSON `null`)."""
        processors = self._processors
        converted = []
        for row in rows:
            values = list(row)
            for position, processor in processors:
                value = values[position]
                if value is not None:
                    values[position] = processor(value)
            converted.append(tuple(values))
        return converted


def _unique_key(name: str, dialect: str) -> list[str]:
    """The columns of a trace table's primary key, as `telemetry.schema` declares it. On
    Postgres the tables are partitioned by trace id (migration 0019), and a partitioned table's
    key must hold its partition key: there every key starts with the trace id."""
    key = [column.name for column in metadata.tables[name].primary_key.columns]
    if dialect == "postgresql" and key[0] != "trace_id":
        return ["trace_id", *key]
    return key


def _sqlite_timestamp(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores (naive UTC, microseconds), made in C. The
    records' times are UTC already: their text without the offset skips two conversions."""
    if value.tzinfo is UTC:
        return value.isoformat(" ", "microseconds")[:-6]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _fast_sqlite_processor(column_type: sa.types.TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """Cheaper stand-ins for SQLAlchemy's per-value SQLite conversions of the hot column types;
    they store the same text, so reading through SQLAlchemy gives the same values back."""
    if isinstance(column_type, sa.DateTime):
        return _sqlite_timestamp
    if isinstance(column_type, sa.JSON):
        return _json_text
    return None


async def _copy_rows(table: TableRecords, tally: _RowTally) -> AsyncIterator[Row]:
    """The table's rows for one COPY, converted `CHUNK_ROWS` at a time with the event loop
    served in between: a COPY per table rather than per chunk spares the round trips and the
    statement set-up of the others, which cost more than the rows themselves."""
    json_positions = [i for i, c in enumerate(table.columns) if c in _JSON_COLUMNS[table.name]]
    for start in range(0, len(table.records), CHUNK_ROWS):
        if start:
            await asyncio.sleep(0)
        rows = table.rows(start, start + CHUNK_ROWS)
        if json_positions:
            rows = [_encode_json(row, json_positions) for row in rows]
        for row in rows:
            yield row
        tally.sent(len(rows))


class _RowTally:
    """A batch's rows sent so far, as a share told to its `Progress`."""

    __slots__ = ("_progress", "_sent", "_total")

    def __init__(self, tables: Sequence[TableRecords], progress: Progress | None) -> None:
        self._progress = progress
        self._total = sum(len(table.records) for table in tables)
        self._sent = 0

    def sent(self, rows: int) -> None:
        if self._progress is not None and self._total:
            self._sent += rows
            self._progress(self._sent / self._total)


def _encode_json(row: Row, positions: list[int]) -> Row:
    values = list(row)
    for position in positions:
        values[position] = _json_text(values[position])
    return tuple(values)


def _parameters(name: str, columns: tuple[str, ...], rows: list[Row]) -> list[dict[str, Any]]:
    """executemany parameters; a JSON column's None is stored as SQL NULL, not JSON `null`."""
    parameters = as_dicts(columns, rows)
    nullable_json = [
        c for c in _JSON_COLUMNS[name] if metadata.tables[name].c[c].nullable and c in columns
    ]
    for row in parameters:
        for column in nullable_json:
            if row[column] is None:
                row[column] = sa.null()
    return parameters
