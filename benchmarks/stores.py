"""Postgres and Redis housekeeping for the store scenarios, and Prometheus text parsing."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable

import asyncpg
import redis as redis_client

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class StoreUnavailable(RuntimeError):
    pass


def flush_redis(url: str) -> None:
    try:
        client = redis_client.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.flushdb()
        finally:
            client.close()
    except (redis_client.RedisError, OSError) as error:
        raise StoreUnavailable(f"Redis at {url} unreachable: {error}") from error


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(admin_url: str) -> str:
    """Create a fresh database; returns its URL (same server and user as `admin_url`)."""
    name = f"steerway_bench_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        raise StoreUnavailable(f"Postgres unreachable: {type(error).__name__}: {error}") from error
    return with_database(admin_url, name)


def drop_database(admin_url: str, database_url: str) -> None:
    name = database_url.rpartition("/")[2]
    asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _count(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in tables
        }
    finally:
        await connection.close()


def count_rows(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    return asyncio.run(_count(url, tables))


async def _count_answered(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        query = "SELECT count(*) FROM traces WHERE http_status BETWEEN 200 AND 299"
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


def count_answered_traces(url: str) -> int:
    """Trace rows of requests answered with a 2xx status."""
    return asyncio.run(_count_answered(url))


def parse_labels(text: str) -> dict[str, str]:
    return {key: value for key, value in LABEL.findall(text)}


def sum_samples(
    exposition: str,
    name: str,
    keep: Callable[[dict[str, str]], bool] | None = None,
) -> float | None:
    """Sum of the samples named `name` whose labels pass `keep`; None when there is none."""
    total: float | None = None
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        if keep is not None and not keep(parse_labels(match.group(3) or "")):
            continue
        total = (total or 0.0) + float(match.group(4))
    return total


def is_success(labels: dict[str, str]) -> bool:
    status = labels.get("status_code") or labels.get("status") or labels.get("code") or ""
    return status.startswith("2")
