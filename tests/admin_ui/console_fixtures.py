"""A gateway for the console's sign-in tests: on SQLite with sessions in the database and
throttling in-process, on Postgres with both in Redis; a short throttling window, and proxy
headers trusted so each test signs in from an address of its own (X-Forwarded-For)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import REDIS_URL, service_missing
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

WINDOW_SECONDS = 4.0
PER_ACCOUNT = 2
PER_ADDRESS = 4
CONSOLE = {
    "signin_attempts_per_account": PER_ACCOUNT,
    "signin_attempts_per_address": PER_ADDRESS,
    "signin_window_minutes": WINDOW_SECONDS / 60,
    "trust_forwarded_headers": True,
}


def address() -> dict[str, str]:
    """Headers that make a request come from an address no other test uses (the last hop of
    X-Forwarded-For is the one the gateway counts)."""
    octets = ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))
    return {"x-forwarded-for": f"203.0.113.9, 10.{octets}"}


def flush_console_keys() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        for key in client.scan_iter("steerway:console:*"):
            client.delete(key)
    except redis.RedisError as error:
        service_missing("Redis", error)
    finally:
        client.close()


@pytest.fixture(scope="module")
def console_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    env: dict[str, Any] = {}
    if backend_database.url.startswith("postgres"):
        flush_console_keys()
        env["STEERWAY_REDIS_URL"] = REDIS_URL
    process = GatewayProcess(
        backend_database,
        mock_config(mock_provider, console=CONSOLE),
        tmp_path_factory.mktemp("console"),
        master_key="sk-master-" + secrets.token_hex(8),
        env=env,
    )
    try:
        yield process
    finally:
        process.stop()
