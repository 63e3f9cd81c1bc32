"""Run the database migrations from code: `upgrade`, `downgrade`, `current`. No alembic.ini needed.

The functions are synchronous. Called from a thread with a running event loop (an async test,
an application's startup hook), they do the work on a short-lived worker thread, since the
migrations drive the async engine with their own loop. From async code, prefer
`await asyncio.to_thread(migrations.upgrade, url)` so the loop is not blocked meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from telemetry.db import create_engine

__all__ = ["current", "downgrade", "head", "revision_of", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent
_T = TypeVar("_T")


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def _outside_event_loop(work: Callable[[], _T]) -> _T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="steerway-migrate") as pool:
        return pool.submit(work).result()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database up to `revision` (default: the newest)."""
    _outside_event_loop(lambda: command.upgrade(_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    """Take the database back to `revision` (`"base"`: drop everything the migrations made)."""
    _outside_event_loop(lambda: command.downgrade(_config(database_url), revision))


def revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _current(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(revision_of)
    finally:
        await engine.dispose()


def current(database_url: str) -> str | None:
    """The database's revision, or None when it has never been migrated."""
    return _outside_event_loop(lambda: asyncio.run(_current(database_url)))


def head() -> str | None:
    """The newest revision the migrations know."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
