"""The lock that lets one process run a round of a background job (evaluating alerts, making
scheduled reports) at a time, across the gateway's workers and replicas.

On Postgres, a transaction-level advisory lock of the job's own key, held on a connection of
its own for the round: released when the round's transaction ends, or when a crashed process's
connection closes. On SQLite, an exclusive `flock` of a file beside the database
(`<database>.<name>-lock`), for `steerway serve --workers N`, whose workers share one file; the
kernel releases it when the holder exits. Either way a process that finds it taken skips the
round.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


@contextlib.asynccontextmanager
async def job_lock(engine: AsyncEngine, *, key: int, name: str) -> AsyncIterator[bool]:
    """True while this process holds the job's round; False when another does. `key` is the
    job's advisory lock key (one per job), `name` the lock file's suffix on SQLite."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as holder, holder.begin():
            locked = await holder.scalar(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}
            )
            yield bool(locked)
        return
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield True  # in memory: this process's alone; a URI: no plain path to lock beside
        return
    with _file_lock(Path(f"{database}.{name}-lock")) as locked:
        yield locked


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)
