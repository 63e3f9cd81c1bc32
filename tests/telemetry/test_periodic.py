"""The loop of background jobs: every interval until stopped, a run of failures logged once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from telemetry.periodic import run_every


async def test_a_run_of_failures_is_logged_once_and_the_job_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = [ValueError("row 7 holds secret-text"), ValueError("again"), None, KeyError("k")]
    done: list[int] = []
    stopping = asyncio.Event()

    async def work() -> None:
        done.append(len(done))
        outcome = outcomes[len(done) - 1]
        if len(done) == len(outcomes):
            stopping.set()
        if outcome is not None:
            raise outcome

    logger = logging.getLogger("steerway.test.periodic")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        async with asyncio.timeout(5):
            await run_every(0.01, stopping, work, logger=logger, failing="job failed: %s")
    assert done == [0, 1, 2, 3]
    assert [record.getMessage() for record in caplog.records] == [
        "job failed: ValueError",
        "job failed: KeyError",
    ]


async def test_stopping_ends_the_wait_without_another_round() -> None:
    stopping = asyncio.Event()
    rounds: list[None] = []

    async def work() -> None:
        rounds.append(None)

    job = asyncio.create_task(
        run_every(60, stopping, work, logger=logging.getLogger("t"), failing="%s")
    )
    await asyncio.sleep(0.05)
    stopping.set()
    async with asyncio.timeout(1):
        await job
    assert rounds == []
