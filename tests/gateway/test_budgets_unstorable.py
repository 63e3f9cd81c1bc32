"""End-user ids the database cannot store as they are (NUL, lone surrogates) neither wedge the
write-behind of budget spend nor let spend escape its budget, on SQLite and Postgres, with the
in-process ledger, Redis kept and Redis emptied between two runs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.limits.budget_spend import SpendStore
from tests.gateway.test_budgets import NOW, TEST_POLICY, WORKSPACE, charge, state
from tests.gateway.test_budgets_persistence import Backend, backend, rows

__all__ = ["backend"]  # fixtures

TODAY = datetime(2024, 5, 15, tzinfo=UTC)


async def _wait_for(engine: AsyncEngine, expected: set[tuple]) -> set[tuple]:
    stored = await rows(engine)
    for _ in range(200):
        if expected <= stored:
            break
        await asyncio.sleep(0.05)
        stored = await rows(engine)
    return stored


async def test_an_end_user_with_nul_neither_wedges_flushes_nor_escapes_the_budget(
    engine: AsyncEngine, backend: Backend
) -> None:
    eve = charge(100_000, "daily", scope="end_user", subject="eve\x00nul")
    alice = charge(100_000, "daily", scope="end_user", subject="alice")
    bob = charge(100_000, "daily", scope="end_user", subject="bob")
    first = backend.ledger(engine, replace(TEST_POLICY, flush_interval=0.05))
    await first.start()
    try:
        await first.settle(await first.reserve([eve], 90_000, NOW), 90_000)
        await first.settle(await first.reserve([alice], 1_000, NOW), 1_000)
        expected = {
            (WORKSPACE, "end_user", f"{WORKSPACE}/eve\\u0000nul", "daily", TODAY, 90_000),
            (WORKSPACE, "end_user", f"{WORKSPACE}/alice", "daily", TODAY, 1_000),
        }
        assert await _wait_for(engine, expected) == expected
        # Later spend of others is still written by the same worker, while it runs.
        await first.settle(await first.reserve([bob], 2_000, NOW), 2_000)
        await first.settle(await first.reserve([alice], 3_000, NOW), 3_000)
        expected = {
            (WORKSPACE, "end_user", f"{WORKSPACE}/eve\\u0000nul", "daily", TODAY, 90_000),
            (WORKSPACE, "end_user", f"{WORKSPACE}/alice", "daily", TODAY, 4_000),
            (WORKSPACE, "end_user", f"{WORKSPACE}/bob", "daily", TODAY, 2_000),
        }
        assert await _wait_for(engine, expected) == expected
        await first.settle(await first.reserve([eve], 5_000, NOW), 5_000)
    finally:
        await first.close()
    assert (
        WORKSPACE,
        "end_user",
        f"{WORKSPACE}/eve\\u0000nul",
        "daily",
        TODAY,
        95_000,
    ) in await rows(engine)

    backend.restart_redis()
    second = backend.ledger(engine)
    await second.start()
    try:
        assert await state(second, eve) == (95_000, 0)
        refused = await second.reserve([eve], 10_000, NOW)
        assert refused.denied is not None and refused.denied.subject == "eve\x00nul"
        assert (await second.reserve([alice], 10_000, NOW)).ok
    finally:
        await second.close()


async def test_a_lone_surrogate_in_an_end_user_is_stored_escaped(
    engine: AsyncEngine, backend: Backend
) -> None:
    user = charge(100_000, "total", scope="end_user", subject="half-\ud83d")
    ledger = backend.ledger(engine)
    await ledger.start()
    try:
        await ledger.settle(await ledger.reserve([user], 7_000, NOW), 7_000)
    finally:
        await ledger.close()
    subjects = {row[2] for row in await rows(engine)}
    assert subjects == {f"{WORKSPACE}/half-\\ud83d"}


async def test_a_long_escaped_end_user_is_hashed_to_fit(
    engine: AsyncEngine, backend: Backend
) -> None:
    user = charge(100_000, "total", scope="end_user", subject="\x00" * 100)  # 600 escaped
    ledger = backend.ledger(engine)
    await ledger.start()
    try:
        await ledger.settle(await ledger.reserve([user], 7_000, NOW), 7_000)
    finally:
        await ledger.close()
    (subject,) = {row[2] for row in await rows(engine)}
    assert subject.startswith(f"{WORKSPACE}/sha256:") and len(subject) <= 256


async def test_a_row_the_database_refuses_holds_back_no_other_row(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever a row's problem (here: more micro-dollars than a BIGINT holds), the others are
    written, and the refused one stays pending, logged without its subject."""
    store = SpendStore(engine, flush_interval=0.05)
    start = int(TODAY.timestamp())
    refused = ("end_user", f"{WORKSPACE}/secret-subject-marker", "daily", start)
    store.add(refused, WORKSPACE, 2**63)
    store.add(("end_user", f"{WORKSPACE}/alice", "daily", start), WORKSPACE, 1_000)
    await store.start()
    try:
        expected = {(WORKSPACE, "end_user", f"{WORKSPACE}/alice", "daily", TODAY, 1_000)}
        assert await _wait_for(engine, expected) == expected
        store.add(("end_user", f"{WORKSPACE}/bob", "daily", start), WORKSPACE, 2_000)
        expected.add((WORKSPACE, "end_user", f"{WORKSPACE}/bob", "daily", TODAY, 2_000))
        assert await _wait_for(engine, expected) == expected
        assert store.pending_micros() == 2**63
    finally:
        with caplog.at_level(logging.ERROR, logger="steerway.budgets"):
            await store.close()
    assert await rows(engine) == expected
    assert "secret-subject-marker" not in caplog.text
    assert str(2**63) in caplog.text  # the amount that could not be written is told
