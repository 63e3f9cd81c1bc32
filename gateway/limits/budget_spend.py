"""Settled budget spend in the `budget_spend` table: write-behind increments, read back at start.

Each worker adds what it settled (`add`) to a pending map; a background task writes the map
every `flush_interval` seconds, and once more on close, in one transaction: an upsert per
(scope, subject, window, window_start) that adds to the stored spend, so workers and replicas
write the same rows without overwriting each other. Rows are written in key order so concurrent
transactions lock them in one order. A failed flush keeps its increments for the next one.

A row the database refuses (its values, not the database, at fault) never holds back the others:
the batch is then written row by row, and the refused row stays pending, set aside so later
flushes write the rest in one transaction again and try it alone. Subjects are escaped before
they get here (`budget_model.stored_subject`), so no known value is refused; logs never show a
row's subject.

With a `spill_dir`, spend that cannot be written on close (the database is away) is saved to a
`*.spend.json` file there, fsynced, and written to the table by the next worker to start, so a
clean shutdown during an outage loses none. A worker claims a file with an exclusive `flock`
before writing it, so with several workers each file is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.budget_model import AccountKey
from gateway.limits.budget_windows import LONGEST, utc_datetime
from telemetry.recorder import describe_error
from telemetry.schema import budget_spend
from telemetry.writers import is_row_problem

logger = logging.getLogger("steerway.budgets")

_KEY_COLUMNS = ("scope", "subject", "window", "window_start")
_LONGEST_WINDOW = timedelta(seconds=max(LONGEST.values()))
_CLOSE_TIMEOUT = 10.0
SPEND_SPILL_SUFFIX = ".spend.json"


class SpendRow(NamedTuple):
    key: AccountKey
    workspace_id: str
    spent_micros: int

    @property
    def ends_by(self) -> int | None:
        """Latest instant the row's window can end (its time zone is not stored); None: never."""
        _, _, window, start = self.key
        longest = LONGEST.get(window)
        return None if longest is None else start + longest


def _epoch(value: datetime) -> int:
    if value.tzinfo is None:  # SQLite hands timestamps back without their zone; they are UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


class SpendStore:
    """The pending increments of one worker and the table they go to; no engine: nothing is
    persisted (every call still works)."""

    def __init__(
        self,
        engine: AsyncEngine | None,
        *,
        flush_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
        spill_dir: Path | None = None,
    ) -> None:
        self._engine = engine
        self._spill_dir = spill_dir
        self._interval = flush_interval
        self._clock = clock
        self._pending: dict[AccountKey, list[Any]] = {}  # key -> [workspace_id, micros]
        self._flushing: dict[AccountKey, list[Any]] = {}  # what the flush under way writes
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing = False
        self._refused: set[AccountKey] = set()  # rows the database refused: written alone
        self._upsert: sa.Insert | None = None

    @property
    def persistent(self) -> bool:
        return self._engine is not None

    def add(self, key: AccountKey, workspace_id: str, micros: int) -> None:
        """Count `micros` more spend on the account; written by the next flush."""
        if micros <= 0 or self._engine is None:
            return
        entry = self._pending.get(key)
        if entry is None:
            self._pending[key] = [workspace_id, micros]
        else:
            entry[1] += micros

    def pending_micros(self) -> int:
        """Spend not written yet, a flush under way included."""
        entries = [*self._pending.values(), *self._flushing.values()]
        return sum(entry[1] for entry in entries)

    async def load_current(self, now: float) -> list[SpendRow]:
        """Rows whose window may still be running at `now` ("total" rows always)."""
        if self._engine is None:
            return []
        oldest = utc_datetime(now) - _LONGEST_WINDOW
        query = sa.select(
            budget_spend.c.scope,
            budget_spend.c.subject,
            budget_spend.c.window,
            budget_spend.c.window_start,
            budget_spend.c.workspace_id,
            budget_spend.c.spent_micros,
        ).where(sa.or_(budget_spend.c.window == "total", budget_spend.c.window_start >= oldest))
        async with self._engine.connect() as connection:
            result = await connection.execute(query)
            rows = [
                SpendRow((scope, subject, window, _epoch(start)), workspace_id, int(spent))
                for scope, subject, window, start, workspace_id, spent in result
            ]
        return [row for row in rows if row.ends_by is None or row.ends_by > now]

    async def snapshot(self, now: float) -> list[SpendRow]:
        """The current rows plus this worker's unwritten increments, read while no flush is
        under way (so each increment is counted once: in the table or in the pending map)."""
        async with self._lock:
            rows = {row.key: row for row in await self.load_current(now)}
            for key, (workspace_id, micros) in self._pending.items():
                row = rows.get(key)
                rows[key] = SpendRow(key, workspace_id, micros + (row.spent_micros if row else 0))
        return list(rows.values())

    async def flush(self) -> None:
        """Write the pending increments; what is not written stays pending.

        Raises when the database is unavailable. A failure while committing leaves it unknown
        whether the rows were written; the increments are then written again (at least once,
        never lost)."""
        if self._engine is None:
            return
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            self._flushing = batch
            try:
                await self._write_all(batch)
            finally:
                self._flushing = {}
                for key, (workspace_id, micros) in batch.items():
                    self.add(key, workspace_id, micros)

    async def _write_all(self, batch: dict[AccountKey, list[Any]]) -> None:
        """Write the batch, taking each row written out of it; rows refused before stay out
        of the shared transaction, so one bad row cannot fail every flush."""
        trusted = {key: entry for key, entry in batch.items() if key not in self._refused}
        if trusted:
            try:
                await self._write(trusted)
            except Exception as error:
                if not is_row_problem(error):
                    raise
            else:
                for key in trusted:
                    del batch[key]
        for key in sorted(batch):
            try:
                await self._write({key: batch[key]})
            except Exception as error:
                if not is_row_problem(error):
                    raise
                if key not in self._refused:
                    self._refused.add(key)
                    logger.error(
                        "a %s budget spend row was refused by the database (%s); kept pending",
                        key[0],
                        describe_error(error),
                    )
            else:
                del batch[key]
                self._refused.discard(key)

    async def _write(self, batch: dict[AccountKey, list[Any]]) -> None:
        assert self._engine is not None
        now = utc_datetime(self._clock())
        rows = [
            {
                "scope": scope,
                "subject": subject,
                "window": window,
                "window_start": utc_datetime(start),
                "workspace_id": workspace_id,
                "spent_micros": micros,
                "updated_at": now,
            }
            for (scope, subject, window, start), (workspace_id, micros) in sorted(batch.items())
        ]
        async with self._engine.begin() as connection:
            await connection.execute(self._upsert_statement(), rows)

    def _upsert_statement(self) -> sa.Insert:
        if self._upsert is None:
            assert self._engine is not None
            dialect = self._engine.dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(budget_spend)
            self._upsert = statement.on_conflict_do_update(
                index_elements=list(_KEY_COLUMNS),
                set_={
                    "spent_micros": budget_spend.c.spent_micros + statement.excluded.spent_micros,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        return self._upsert

    async def start(self) -> None:
        """Write the spend earlier workers saved on close, then flush every interval. Call it
        before `load_current`, so what was saved is counted."""
        if self._engine is not None and self._task is None:
            await self._write_saved()
            self._stopping.clear()
            self._task = asyncio.create_task(self._flush_forever(), name="steerway-budget-spend")

    async def close(self) -> None:
        if self._task is not None:
            # Never cancel a flush under way: its transaction may commit regardless, and the
            # increments it gave back would then be written twice.
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.flush()
        except Exception as error:
            reason = describe_error(error)
        else:
            reason = "rows the database refused"
        if self._pending:
            self._save_pending(reason)

    def _save_pending(self, reason: str) -> None:
        micros, rows = self.pending_micros(), len(self._pending)
        if self._spill_dir is not None:
            try:
                path = _save(self._spill_dir, self._pending)
            except OSError as error:
                logger.error(
                    "budget spend of %d micro-dollars could not be written on close (%s) nor "
                    "saved to %s (%s)",
                    micros,
                    reason,
                    self._spill_dir,
                    type(error).__name__,
                )
            else:
                logger.warning(
                    "budget spend of %d micro-dollars in %d rows could not be written on close "
                    "(%s); saved to %s for the next start",
                    micros,
                    rows,
                    reason,
                    path.name,
                )
                self._pending.clear()
            return
        logger.error(
            "budget spend of %d micro-dollars could not be written on close (%s)", micros, reason
        )

    async def _write_saved(self) -> None:
        """Write the spend files earlier workers saved; a file is deleted once written."""
        if self._spill_dir is None or not self._spill_dir.is_dir():
            return
        for path in sorted(self._spill_dir.glob(f"*{SPEND_SPILL_SUFFIX}")):
            fd = _claim(path)
            if fd is None:
                continue
            try:
                rows = _load(fd)
                if rows is None:
                    logger.error("budget spend file %s cannot be read; left in place", path.name)
                    continue
                try:
                    await self._write_all(rows)
                except Exception as error:
                    logger.warning(
                        "budget spend saved in %s not written yet (%s); kept pending",
                        path.name,
                        describe_error(error),
                    )
                for key, (workspace_id, micros) in rows.items():
                    self.add(key, workspace_id, micros)  # what is not written stays pending
                path.unlink(missing_ok=True)
                logger.info("budget spend saved in %s taken up", path.name)
            finally:
                os.close(fd)

    async def _flush_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
            except Exception as error:
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "budget spend could not be written (%s); retrying every %.1fs",
                        describe_error(error),
                        self._interval,
                    )
            else:
                if self._failing:
                    self._failing = False
                    logger.info("budget spend is written to the database again")


def _save(directory: Path, pending: dict[AccountKey, list[Any]]) -> Path:
    """Write the rows to a new spend file durably: a temporary name, fsync, rename, fsync."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
    temporary = directory / f"{stem}.spend.new"
    rows = [[*key, workspace_id, micros] for key, (workspace_id, micros) in pending.items()]
    data = json.dumps(rows).encode()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    final = directory / f"{stem}{SPEND_SPILL_SUFFIX}"
    os.rename(temporary, final)
    folder = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return final


def _claim(path: Path) -> int | None:
    """An open descriptor holding the file's lock; None when another worker has it or it is
    gone (written by another worker already)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not os.path.samestat(os.fstat(fd), os.stat(path)):
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


def _load(fd: int) -> dict[AccountKey, list[Any]] | None:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    try:
        rows = json.loads(b"".join(chunks))
        loaded: dict[AccountKey, list[Any]] = {}
        for scope, subject, window, start, workspace_id, micros in rows:
            key = (str(scope), str(subject), str(window), int(start))
            entry = loaded.setdefault(key, [str(workspace_id), 0])
            entry[1] += int(micros)
        return loaded
    except (ValueError, TypeError):
        return None
