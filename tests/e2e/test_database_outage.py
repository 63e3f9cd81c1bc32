"""The database away while the gateway serves: Postgres behind a forwarder the test cuts, or a
database renamed under the gateway.

Virtual keys answer 503 with `retry-after` (never a 500 with a traceback) and the log says so
once per outage; with `auth.stale_key_ttl_seconds` a key verified shortly before keeps being
served; the master key keeps working; what is served meanwhile is spilled and reaches the
database when it is back.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

import migrations
from gateway.steering.rulebook import CHANNEL as RULES_CHANNEL
from tests.conftest import POSTGRES_URL
from tests.e2e.conftest import (
    Database,
    GatewayProcess,
    MockProcess,
    _create_postgres,
    _drop_postgres,
    mock_config,
)
from tests.e2e.test_keys import create_key
from tests.forwarder import TcpForwarder

KEY_CACHE_TTL = 0.2
OUTAGE_WARNING = "database unavailable ("
OUTAGE_OVER = "database available again after "
CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def postgres_database() -> Iterator[Database]:
    url = _create_postgres()
    try:
        migrations.upgrade(url)
        yield Database(url)
    finally:
        _drop_postgres(url)


@pytest.fixture
def forwarder(postgres_database: Database) -> Iterator[TcpForwarder]:
    with TcpForwarder.for_url(postgres_database.url) as forwarder:
        yield forwarder


def outage_config(mock: MockProcess, **auth: Any) -> dict[str, Any]:
    return mock_config(
        mock,
        auth={"key_cache_ttl_seconds": KEY_CACHE_TTL, **auth},
        # Fast spilling: an outage is noticed within a few hundred milliseconds.
        telemetry={"flush_interval_ms": 50},
    )


def chat(gateway: GatewayProcess, key: str, request_id: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "x-request-id": request_id or uuid.uuid4().hex}
    with httpx.Client(timeout=30) as http:
        return http.post(f"{gateway.base_url}/chat/completions", json=CHAT, headers=headers)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "service_unavailable"
    assert set(error) == {"message", "type", "param", "code"}


def assert_logged_once_per_outage(log: str) -> None:
    """The outage is logged when it starts and when it ends; nothing is logged per request or
    per retry (no line repeats) and no traceback."""
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if not line.startswith("INFO:")]
    assert sum(line.startswith(OUTAGE_WARNING) for line in lines) == 1, log
    assert sum(line.startswith(OUTAGE_OVER) for line in lines) == 1, log
    assert len(lines) == len(set(lines)), log


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_an_outage_answers_503_with_retry_after_logs_once_and_recovers(
    postgres_database: Database,
    forwarder: TcpForwarder,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    master = "sk-master-" + secrets.token_hex(8)
    gateway = start_gateway(
        Database(forwarder.url(postgres_database.url)),
        outage_config(mock_provider),
        master_key=master,
    )
    key = create_key(gateway, "outage").plaintext
    assert chat(gateway, key).status_code == 200

    forwarder.cut()
    time.sleep(KEY_CACHE_TTL * 2)
    for _ in range(25):
        assert_unavailable(chat(gateway, key))
    for route in ("keys", "workspaces", "workspaces/default", "rules", f"traces/{'0' * 32}"):
        admin = httpx.get(
            f"{gateway.url}/admin/api/{route}", headers={"Authorization": f"Bearer {master}"}
        )
        assert_unavailable(admin)
    created = httpx.post(
        f"{gateway.url}/admin/api/keys",
        json={"name": "made during the outage"},
        headers={"Authorization": f"Bearer {master}"},
    )
    assert_unavailable(created)
    assert httpx.get(f"{gateway.url}/readyz").status_code == 503
    served_meanwhile = [f"outage-master-{index}-{uuid.uuid4().hex}" for index in range(5)]
    for request_id in served_meanwhile:
        assert chat(gateway, master, request_id).status_code == 200

    forwarder.restore()
    assert wait_until(lambda: chat(gateway, key).status_code == 200)
    rows = postgres_database.wait_rows(
        "SELECT request_id FROM traces WHERE request_id LIKE 'outage-master-%'",
        count=len(served_meanwhile),
        timeout=30,
    )
    assert sorted(row["request_id"] for row in rows) == sorted(served_meanwhile)

    assert_logged_once_per_outage(gateway.stop())


def test_a_recently_verified_key_is_served_from_the_stale_cache(
    postgres_database: Database,
    forwarder: TcpForwarder,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(
        Database(forwarder.url(postgres_database.url)),
        outage_config(mock_provider, stale_key_ttl_seconds=300),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    verified = create_key(gateway, "verified").plaintext
    never_used = create_key(gateway, "never used").plaintext
    assert chat(gateway, verified).status_code == 200

    forwarder.cut()
    time.sleep(KEY_CACHE_TTL * 2)
    served_stale = [f"stale-{index}-{uuid.uuid4().hex}" for index in range(5)]
    for request_id in served_stale:
        response = chat(gateway, verified, request_id)
        assert response.status_code == 200, response.text
    assert_unavailable(chat(gateway, never_used))

    forwarder.restore()
    rows = postgres_database.wait_rows(
        "SELECT request_id FROM traces WHERE request_id LIKE 'stale-%'",
        count=len(served_stale),
        timeout=30,
    )
    assert sorted(row["request_id"] for row in rows) == sorted(served_stale)
    assert wait_until(lambda: chat(gateway, never_used).status_code == 200)
    assert_logged_once_per_outage(gateway.stop())


async def _rename_database(old: str, new: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", old
        )
        await connection.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')
    finally:
        await connection.close()


def test_a_renamed_database_answers_503_until_it_is_back(
    postgres_database: Database,
    mock_provider: MockProcess,
    redis_url: str,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """With Redis configured too, and a rule change announced during the outage: the rule
    listener fails to reload and retries every 5 s; the outage is still logged once."""
    gateway = start_gateway(
        postgres_database,
        outage_config(mock_provider),
        master_key="sk-master-" + secrets.token_hex(8),
        env={"STEERWAY_REDIS_URL": redis_url},
    )
    key = create_key(gateway, "renamed").plaintext
    assert chat(gateway, key).status_code == 200

    name = postgres_database.url.rpartition("/")[2]
    away = f"{name}_away"
    asyncio.run(_rename_database(name, away))
    try:
        time.sleep(KEY_CACHE_TTL * 2)
        # As another worker announcing a rule change would: the listener reloads, and fails.
        with redis.Redis.from_url(redis_url) as announcer:
            assert announcer.publish(RULES_CHANNEL, "changed") >= 1
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            assert_unavailable(chat(gateway, key))
            time.sleep(0.1)
    finally:
        asyncio.run(_rename_database(away, name))
    assert wait_until(lambda: chat(gateway, key).status_code == 200)
    assert_logged_once_per_outage(gateway.stop())


def test_a_sqlite_database_another_process_holds_for_writing_answers_503_to_writes(
    tmp_path: Path,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """Another process in a write transaction (a backup, a stuck shell): SQLite refuses every
    other writer once the busy timeout passes; reads, and so key checks, go on."""
    path = tmp_path / "held.db"
    database = Database(f"sqlite:///{path}")
    migrations.upgrade(database.url)
    master = "sk-master-" + secrets.token_hex(8)
    gateway = start_gateway(database, outage_config(mock_provider), master_key=master)
    key = create_key(gateway, "held").plaintext
    admin = {"Authorization": f"Bearer {master}"}
    request_ids = [f"held-{index}-{uuid.uuid4().hex}" for index in range(3)]

    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        created = httpx.post(
            f"{gateway.url}/admin/api/keys", json={"name": "blocked"}, headers=admin, timeout=30
        )
        assert_unavailable(created)
        for request_id in request_ids:
            assert chat(gateway, key, request_id).status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    created = httpx.post(f"{gateway.url}/admin/api/keys", json={"name": "later"}, headers=admin)
    assert created.status_code == 201, created.text
    rows = database.wait_rows(
        "SELECT request_id FROM traces WHERE request_id LIKE 'held-%'",
        count=len(request_ids),
        timeout=60,
    )
    assert sorted(row["request_id"] for row in rows) == sorted(request_ids)
    log = gateway.stop()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if line.startswith(OUTAGE_WARNING)]
    assert len(lines) == 1, log
    assert "OperationalError during POST /admin/api/keys" in lines[0]
