"""Database engines for SQLite (aiosqlite) and Postgres (asyncpg), from user-facing URLs.

Users write `sqlite:///var/steerway.db` or `postgresql://user@host/db`; the async driver is
chosen here. Any message that mentions a URL goes through `redact_url` first.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5000
PING_TIMEOUT_SECONDS = 5.0

_ASYNC_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
_json_encoder = msgspec.json.Encoder()


def redact_url(url: str | URL) -> str:
    """The URL with its password (if any) replaced by `***`, safe for logs and error messages."""
    text = url.render_as_string(hide_password=True) if isinstance(url, URL) else str(url)
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    userinfo, at, host_and_path = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host_and_path}"


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise ValueError(  # the value is not echoed: it may be a secret set in the wrong place
            "not a database URL (no scheme://); "
            "expected sqlite:///path/to/file.db or postgresql://user@host/database"
        )
    return scheme.lower()


def async_url(url: str) -> str:
    """Map `sqlite://` to aiosqlite and `postgres(ql)://` to asyncpg; async URLs pass unchanged."""
    scheme = _scheme(url)
    target = _ASYNC_SCHEMES.get(scheme)
    if target is None:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r} in {redact_url(url)!r}; "
            "use sqlite:///path/to/file.db or postgresql://user@host/database"
        )
    if scheme == target:
        return url
    return target + url[len(scheme) :]


def is_postgres(engine_or_url: AsyncEngine | Engine | URL | str) -> bool:
    if isinstance(engine_or_url, AsyncEngine | Engine):
        return engine_or_url.dialect.name == "postgresql"
    if isinstance(engine_or_url, URL):
        return engine_or_url.get_backend_name() == "postgresql"
    return _scheme(engine_or_url).startswith("postgres")


def _json_dumps(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a user-facing URL, tuned for the recorder's batched writes.

    SQLite: WAL journal, a busy timeout so several workers can share the file, `synchronous=NORMAL`
    (durable at checkpoints, fast commits), foreign keys enforced. The file's folder is created.
    Postgres: a modest pool, connections checked before use so a restarted server is survived.
    """
    parsed = make_url(async_url(url))
    common: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": msgspec.json.decode,
        # An error's text never quotes the values of its statement: they can be prompts,
        # end-user ids or key hashes, and errors end up in logs.
        "hide_parameters": True,
    }
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, **common)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        parsed,
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"timeout": 5, "command_timeout": 60},
        **common,
    )


async def ping(engine: AsyncEngine) -> None:
    """Run `SELECT 1`; raises if the database cannot be reached within `PING_TIMEOUT_SECONDS`."""
    async with asyncio.timeout(PING_TIMEOUT_SECONDS), engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime; SQLite hands back naive ones, all of them UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
