"""The lock a process holds while it applies a part of the config file to the database (the
alert rules and channels, the evaluators): every worker applies the file at start, one at a
time, and the next then finds it applied."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


@contextlib.asynccontextmanager
async def config_sync_lock(engine: AsyncEngine, name: str, key: int) -> AsyncIterator[None]:
    """Postgres: the advisory lock `key`. SQLite: a file lock beside the database, in
    `<database>.<name>-sync-lock` (none for an in-memory database, which one process owns)."""
    if engine.dialect.name != "postgresql":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            yield
            return
        descriptor = os.open(f"{database}.{name}-sync-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)
        return
    async with engine.connect() as holder:
        await holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            await holder.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await holder.commit()
