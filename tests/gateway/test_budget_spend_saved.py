"""Budget spend that cannot be written on close (the database is away) is saved beside the spill
files and written by the next start: a clean shutdown during an outage loses none of it, on
SQLite and Postgres, with the in-process ledger and with Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.limits.budget_spend import SPEND_SPILL_SUFFIX
from gateway.limits.budgets import create_budget_ledger
from tests.gateway.test_auth_outage import Outage
from tests.gateway.test_budgets import NOW, TEST_POLICY, WORKSPACE, charge, state
from tests.gateway.test_budgets_persistence import Backend, backend, rows

__all__ = ["backend"]


@pytest.fixture
async def outage(migrated_database_url: str) -> AsyncIterator[Outage]:
    outage = Outage(migrated_database_url)
    yield outage
    await outage.close()


async def test_spend_unwritten_at_close_is_saved_and_written_at_the_next_start(
    outage: Outage, backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill = tmp_path / "spill"
    budget = charge(1_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    user = charge(100_000, "total", scope="end_user", subject="carol\x00x")

    def ledger():  # type: ignore[no-untyped-def]
        return create_budget_ledger(
            backend.redis_url, outage.engine, TEST_POLICY, clock=lambda: NOW, spill_dir=spill
        )

    first = ledger()
    await first.start()
    await first.settle(await first.reserve([budget, user], 7_000, NOW), 6_543)
    await outage.begin()
    caplog.set_level(logging.WARNING, "steerway.budgets")
    await first.close()
    saved = sorted(spill.glob(f"*{SPEND_SPILL_SUFFIX}"))
    assert len(saved) == 1
    assert any("saved to" in r.getMessage() for r in caplog.records)
    assert "carol" not in caplog.text

    await outage.end()
    backend.restart_redis()
    second = ledger()
    await second.start()
    try:
        assert not list(spill.glob(f"*{SPEND_SPILL_SUFFIX}"))
        assert (await state(second, budget))[0] == 6_543
        assert (await state(second, user))[0] == 6_543
    finally:
        await second.close()
    stored = {(row[1], row[3], row[5]) for row in await rows(outage.engine)}
    assert stored == {("workspace", "monthly", 6_543), ("end_user", "total", 6_543)}


async def test_a_spend_file_is_taken_up_by_one_worker_only(
    outage: Outage, backend: Backend, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    budget = charge(1_000_000, "monthly", scope="workspace", subject=WORKSPACE)
    first = create_budget_ledger(
        backend.redis_url, outage.engine, TEST_POLICY, clock=lambda: NOW, spill_dir=spill
    )
    await first.start()
    await first.settle(await first.reserve([budget], 5_000, NOW), 4_321)
    await outage.begin()
    await first.close()
    await outage.end()

    workers = [
        create_budget_ledger(
            backend.redis_url, outage.engine, TEST_POLICY, clock=lambda: NOW, spill_dir=spill
        )
        for _ in range(3)
    ]
    await asyncio.gather(*(worker.start() for worker in workers))
    for worker in workers:
        await worker.close()
    assert [row[5] for row in await rows(outage.engine)] == [4_321]
