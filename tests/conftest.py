"""Shared fixtures: real Postgres and Redis, one fresh database per test that asks for one.

Services come from STEERWAY_TEST_DATABASE_URL / STEERWAY_TEST_REDIS_URL (defaults: the local
servers). When one is unreachable its tests skip with the reason, except under CI=true, where
they fail: CI must run every test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from telemetry.db import create_engine

POSTGRES_URL = os.environ.get(
    "STEERWAY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _redis_of_this_worker(url: str) -> str:
    """Each test process its own Redis database: tests flush theirs. With pytest-xdist, worker
    gwN takes the database N below the one configured."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    base, _, number = url.rpartition("/")
    if not worker.startswith("gw") or not number.isdigit():
        return url
    return f"{base}/{max(0, int(number) - int(worker[2:]))}"


REDIS_URL = _redis_of_this_worker(
    os.environ.get("STEERWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(what: str, error: BaseException) -> NoReturn:
    message = f"{what} is unreachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; under CI=true every {what} test must run", pytrace=False)
    pytest.skip(message)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty Postgres database for this test, dropped afterwards."""
    name = f"steerway_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        service_missing("Postgres", error)
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'steerway.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each backend in turn: every storage test runs on both."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database of each backend in turn, migrated to the latest schema."""
    await asyncio.to_thread(migrations.upgrade, database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database flushed before and after the test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        service_missing("Redis", error)
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


# Files whose tests take longest in all, longest first: run first, so that when the suite is
# spread over processes (`make test`: pytest-xdist, a file per process at a time) the last files
# to start are short ones and the processes finish together. Tests within a file keep their order.
LONGEST_FILES = (
    "tests/e2e/test_limits.py",
    "tests/fuzz/test_fuzz.py",
    "tests/e2e/test_workspaces_cli.py",
    "tests/admin_ui/test_console_signin.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_guardrails.py",
    "tests/e2e/test_database_outage.py",
    "tests/e2e/test_unauthenticated.py",
    "tests/e2e/test_unstorable_text.py",
    "tests/e2e/test_crash.py",
    "tests/e2e/test_reliability.py",
    "tests/e2e/test_keys.py",
    "tests/e2e/test_rules_reload.py",
    "tests/e2e/test_rules.py",
    "tests/e2e/test_chat.py",
    "tests/e2e/test_live_workers.py",
    "tests/gateway/test_demo_data.py",
    "tests/telemetry/test_anomalies_demo.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FILES)}
    position = {id(item): index for index, item in enumerate(items)}
    items.sort(
        key=lambda item: (
            rank.get(item.nodeid.partition("::")[0], len(rank)),
            position[id(item)],
        )
    )
