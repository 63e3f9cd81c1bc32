"""Engines from user-facing URLs, and URLs in messages without their passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from telemetry.db import async_url, create_engine, is_postgres, ping, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/steerway.db", "sqlite+aiosqlite:///var/steerway.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_async_url_picks_the_async_driver(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:s3cr3t-pw@db/steerway",
        "postgresql+psycopg2://root:s3cr3t-pw@db/steerway",
        "s3cr3t-pw",
    ],
)
def test_unsupported_urls_are_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        async_url(url)
    assert "s3cr3t-pw" not in str(caught.value)
    assert "sqlite:///" in str(caught.value)  # says what would work


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:pa:ss@w0rd@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("sqlite:///var/steerway.db", "sqlite:///var/steerway.db"),
        ("redis://:token@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ],
)
def test_redact_url_hides_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_url(sa.engine.make_url(url)).count("***") == expected.count("***")


def test_is_postgres_reads_urls_and_engines(tmp_path: Path) -> None:
    assert is_postgres("postgres://h/db") and is_postgres("postgresql+asyncpg://h/db")
    assert not is_postgres("sqlite:///x.db")
    assert not is_postgres(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    assert is_postgres(create_engine("postgresql://u@127.0.0.1/db"))  # no connection made


async def test_sqlite_engine_creates_its_folder_and_tunes_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "steerway.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        async with engine.connect() as connection:
            pragma = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 1,  # NORMAL
            "busy_timeout": 5000,
        }
        await ping(engine)
    finally:
        await engine.dispose()


async def test_ping_reaches_both_backends(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


async def test_ping_raises_when_the_database_is_missing(postgres_url: str) -> None:
    engine = create_engine(postgres_url + "_missing")
    try:
        with pytest.raises(Exception) as caught:
            await ping(engine)
        assert "does not exist" in str(caught.value)
    finally:
        await engine.dispose()
