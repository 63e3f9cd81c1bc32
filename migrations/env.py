"""Alembic environment for SQLite and Postgres alike, through the project's async engines.

The database URL comes, in order, from `config.attributes["database_url"]` (the programmatic API
in `migrations`), `alembic -x database_url=...`, `sqlalchemy.url` in the ini file, or
`STEERWAY_DATABASE_URL`.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import async_url, create_engine, redact_url
from telemetry.schema import for_dialect, metadata

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("STEERWAY_DATABASE_URL")
    )
    if not url:
        raise RuntimeError(
            "no database URL: set STEERWAY_DATABASE_URL or pass -x database_url=<url>"
        )
    return str(url)


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=for_dialect(connection.dialect.name),
        # SQLite's DDL is transactional once the driver leaves transactions to us
        # (`_sqlite_atomically`); Alembic would otherwise commit after every revision.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_atomically(engine: AsyncEngine) -> None:
    """Every migration of a run in one SQLite transaction, taken with the write lock.

    Python's sqlite3 begins a transaction before data changes only, so `CREATE TABLE` and the
    rest of a migration's DDL were each committed as they ran: a failed run left the schema
    half-built, and a recorder writing meanwhile saw (and filled) tables a later step still
    meant to fill. Here the driver's own transaction handling is off and the run begins with
    `BEGIN IMMEDIATE`: other writers wait for its commit, and a failure leaves nothing."""

    def without_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", without_driver_transactions)
    event.listen(engine.sync_engine, "begin", begin_immediate)


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _sqlite_atomically(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline(url: str) -> None:
    context.configure(
        url=async_url(url),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _inside_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def main() -> None:
    url = _database_url()
    if context.is_offline_mode():
        _run_offline(url)
    elif _inside_event_loop():
        raise RuntimeError(
            f"migrations for {redact_url(url)} cannot run inside a running event loop; "
            "call the functions in the `migrations` package, which run them on a worker thread"
        )
    else:
        asyncio.run(_run_online(url))


main()
