"""Budget spend in `budget_spend`: written behind, read back at restart, on SQLite and Postgres,
with the in-process ledger, with Redis kept, and with Redis emptied between the two runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.budgets import BudgetLedger, BudgetPolicy, create_budget_ledger
from telemetry.schema import budget_spend
from tests.gateway.test_budgets import NOW, TEST_POLICY, WORKSPACE, charge, state

MakeLedger = Callable[..., BudgetLedger]


class Backend:
    def __init__(self, redis_url: str | None, empties_redis: bool) -> None:
        self.redis_url = redis_url
        self.empties_redis = empties_redis

    def ledger(self, engine: AsyncEngine, policy: BudgetPolicy | None = None) -> BudgetLedger:
        return create_budget_ledger(
            self.redis_url, engine, policy or TEST_POLICY, clock=lambda: NOW
        )

    def restart_redis(self) -> None:
        """Redis restarted too and came back empty (the in-process backend has no Redis)."""
        if self.redis_url and self.empties_redis:
            client = redis.Redis.from_url(self.redis_url)
            client.flushdb()
            client.close()


@pytest.fixture(params=["in-process", "redis", "redis-emptied"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "in-process":
        return Backend(None, False)
    return Backend(request.getfixturevalue("redis_url"), request.param == "redis-emptied")


async def rows(engine: AsyncEngine) -> set[tuple]:
    query = sa.select(
        budget_spend.c.workspace_id,
        budget_spend.c.scope,
        budget_spend.c.subject,
        budget_spend.c.window,
        budget_spend.c.window_start,
        budget_spend.c.spent_micros,
    )
    async with engine.connect() as connection:
        result = await connection.execute(query)
        return {
            (*row[:4], row[4].replace(tzinfo=UTC) if row[4].tzinfo is None else row[4], row[5])
            for row in result
        }


async def test_spend_survives_a_restart(engine: AsyncEngine, backend: Backend) -> None:
    key = charge(1_000_000, "daily", timezone="Europe/Berlin")
    workspace = charge(5_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    user = charge(100_000, "total", scope="end_user", subject="alice")

    first = backend.ledger(engine)
    await first.start()
    for cost in (400_000, 300_000):
        await first.settle(await first.reserve([key, workspace], cost, NOW), cost)
    await first.settle(await first.reserve([user], 60_000, NOW), 50_000)
    unsettled = await first.reserve([key], 200_000, NOW)
    assert unsettled.ok
    await first.close()

    assert await rows(engine) == {
        (WORKSPACE, "key", "key-1", "daily", datetime(2024, 5, 14, 22, tzinfo=UTC), 700_000),
        (WORKSPACE, "workspace", WORKSPACE, "monthly", datetime(2024, 5, 1, tzinfo=UTC), 700_000),
        (
            WORKSPACE,
            "end_user",
            f"{WORKSPACE}/alice",
            "total",
            datetime(1970, 1, 1, tzinfo=UTC),
            50_000,
        ),
    }

    backend.restart_redis()
    second = backend.ledger(engine)
    await second.start()
    try:
        assert (await state(second, key))[0] == 700_000
        assert await state(second, workspace) == (700_000, 0)
        assert await state(second, user) == (50_000, 0)
        assert await second.percent_used([key, workspace], NOW) == {
            "key_percent": 70.0,
            "workspace_percent": 14.0,
        }
        more = await second.reserve([key, workspace], 100_000, NOW)
        await second.settle(more, 100_000)
    finally:
        await second.close()
    assert (
        WORKSPACE,
        "workspace",
        WORKSPACE,
        "monthly",
        datetime(2024, 5, 1, tzinfo=UTC),
        800_000,
    ) in await rows(engine)


async def test_spend_is_written_behind_while_the_ledger_runs(
    engine: AsyncEngine, backend: Backend
) -> None:
    ledger = backend.ledger(engine, replace(TEST_POLICY, flush_interval=0.05))
    await ledger.start()
    try:
        budget = charge(1_000_000, "weekly")
        await ledger.settle(await ledger.reserve([budget], 1_000, NOW), 900)
        await ledger.settle(await ledger.reserve([budget], 1_000, NOW), 100)
        expected = (WORKSPACE, "key", "key-1", "weekly", datetime(2024, 5, 13, tzinfo=UTC), 1_000)
        for _ in range(200):
            if expected in await rows(engine):
                break
            await asyncio.sleep(0.05)
        assert await rows(engine) == {expected}
    finally:
        await ledger.close()


async def test_workers_add_their_spend_to_the_same_rows(
    engine: AsyncEngine, backend: Backend
) -> None:
    budget = charge(10_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    ledgers = [backend.ledger(engine, replace(TEST_POLICY, flush_interval=0.05)) for _ in range(2)]
    for ledger in ledgers:
        await ledger.start()

    async def spend(ledger: BudgetLedger, cost: int) -> None:
        await ledger.settle(await ledger.reserve([budget], cost, NOW), cost)

    await asyncio.gather(*(spend(ledgers[i % 2], 1_000 + i) for i in range(40)))
    for ledger in ledgers:
        await ledger.close()

    total = sum(1_000 + i for i in range(40))
    assert await rows(engine) == {
        (WORKSPACE, "workspace", WORKSPACE, "monthly", datetime(2024, 5, 1, tzinfo=UTC), total)
    }


async def test_only_windows_that_may_still_run_are_loaded(
    engine: AsyncEngine, backend: Backend
) -> None:
    def row(window: str, start: datetime, spent: int) -> dict:
        return {
            "workspace_id": WORKSPACE,
            "scope": "key",
            "subject": "key-1",
            "window": window,
            "window_start": start,
            "spent_micros": spent,
            "updated_at": start,
        }

    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(budget_spend),
            [
                row("daily", datetime(2024, 5, 15, tzinfo=UTC), 300),
                row("daily", datetime(2024, 3, 1, tzinfo=UTC), 900),
                row("monthly", datetime(2024, 5, 1, tzinfo=UTC), 400),
                row("total", datetime(1970, 1, 1, tzinfo=UTC), 500),
            ],
        )
    backend.restart_redis()
    ledger = backend.ledger(engine)
    await ledger.start()
    try:
        assert await state(ledger, charge(1_000, "daily")) == (300, 0)
        assert await state(ledger, charge(1_000, "monthly")) == (400, 0)
        assert await state(ledger, charge(1_000, "total")) == (500, 0)
        long_ago = datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp()
        assert await state(ledger, charge(1_000, "daily"), long_ago) == (0, 0)
    finally:
        await ledger.close()
