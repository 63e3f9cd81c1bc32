"""Shared fixtures: real Postgres and Redis, one fresh database per test that asks for one.

Services come from STEERWAY_TEST_DATABASE_URL / STEERWAY_TEST_REDIS_URL (defaults: the local
servers). When one is unreachable its tests skip with the reason, except under CI=true, where
they fail: CI must run every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
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


def _create_postgres(prefix: str, template: str | None = None) -> str:
    """A new database's name: empty, or a copy of `template`."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"{copy_of}'))
    except (OSError, asyncpg.PostgresError) as error:
        service_missing("Postgres", error)
    return name


class Dropper:
    """Drops this process's finished test databases on a thread of its own.

    A `DROP DATABASE` waits for a checkpoint it forces: on a busy machine 0.4-1.5 s of mostly
    waiting on the disk, which the next test need not wait for too. Drops waiting together are
    sent at once, on connections of their own, so they share checkpoints and keep up with the
    tests. `close` waits for every drop and fails when a database could not be dropped, so a
    session leaves nothing behind.
    """

    AT_ONCE = 8
    THREAD = "steerway-dropper"
    """The name of the thread that drops: the suite's own work, not the code under test's."""

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failed: list[str] = []

    def drop(self, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.THREAD)
            self._thread.start()
        self._names.put(name)

    def close(self) -> None:
        if self._thread is None:
            return
        self._names.put(None)
        self._thread.join()
        self._thread = None
        if self._failed:
            raise RuntimeError(f"test databases left behind: {', '.join(self._failed)}")

    def _run(self) -> None:
        closing = False
        while not closing:
            waiting = [self._names.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    waiting.append(self._names.get_nowait())
            closing = None in waiting
            names = [name for name in waiting if name is not None]
            if names:
                asyncio.run(self._drop_all(names))

    async def _drop_all(self, names: list[str]) -> None:
        slots = asyncio.Semaphore(self.AT_ONCE)

        async def drop(name: str) -> None:
            async with slots:
                for attempt in range(3):
                    try:
                        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        return
                    except (OSError, asyncpg.PostgresError):
                        if attempt == 2:
                            self._failed.append(name)

        await asyncio.gather(*(drop(name) for name in names))


@pytest.fixture(scope="session")
def dropper() -> Iterator[Dropper]:
    dropper = Dropper()
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture
def postgres_url(dropper: Dropper) -> Iterator[str]:
    """A fresh, empty Postgres database for this test, dropped afterwards."""
    name = _create_postgres("steerway_test")
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        dropper.drop(name)


@pytest.fixture(scope="session")
def postgres_template(dropper: Dropper) -> Iterator[str]:
    """This process's Postgres database at the newest schema, made once per session: migrated
    databases are copies of it (`CREATE DATABASE ... TEMPLATE`), cheaper than migrating each."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = _create_postgres(f"steerway_tpl_{worker}")
    try:
        migrations.upgrade(_with_database(POSTGRES_URL, name))
        yield name
    finally:
        dropper.drop(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the newest schema, made once per session, for migrated copies."""
    path = tmp_path_factory.mktemp("template") / "steerway.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


def copy_sqlite(template: Path, path: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(path)) as target,
    ):
        source.backup(target)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'steerway.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each backend in turn: every storage test runs on both."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite database at the newest schema: a copy of the session's template."""
    path = tmp_path / "steerway.db"
    copy_sqlite(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def migrated_postgres_url(postgres_template: str, dropper: Dropper) -> Iterator[str]:
    """A fresh Postgres database at the newest schema: a copy of this process's template."""
    name = _create_postgres("steerway_test", postgres_template)
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        dropper.drop(name)


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each backend in turn, at the newest schema. Tests of the migrations
    themselves (or of a database not migrated yet) take `database_url` instead."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database of each backend in turn, at the newest schema."""
    engine = create_engine(migrated_database_url)
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
    "tests/fuzz/test_fuzz_admin.py",
    "tests/e2e/test_alerts.py",
    "tests/e2e/test_silences_and_worker.py",
    "tests/fuzz/test_fuzz.py",
    "tests/e2e/test_otlp_ingest.py",
    "tests/deploy/test_image_install.py",
    "tests/fuzz/test_fuzz_otlp.py",
    "tests/e2e/test_otlp_export.py",
    "tests/e2e/test_otlp_export_down.py",
    "tests/e2e/test_sampling.py",
    "tests/admin_ui/test_console_signin.py",
    "tests/e2e/test_workspaces_cli.py",
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
