"""Comparisons whose runner died, on SQLite and Postgres: another runner takes over once the
lease has run out (not before, and only one of two runners asking at once), resumes from the
requests without a saved result so no recorded call is made again, and ends `done` with every
request once; the runner that lost the lease can write nothing more."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.comparison import store
from telemetry.comparison.replay import ReplayAnswer, ReplayRequest
from telemetry.comparison.runner import ComparisonRunner, RunnerSettings
from telemetry.evaluation.judge import JudgeAnswer, JudgeRequest
from telemetry.schema import comparisons
from tests.telemetry.comparison.test_runner import VERDICT, a_comparison, until
from tests.telemetry.evaluation.on_demand_rows import add_workspace


class Replayer:
    """Answers the first `answered` replays at once; those after wait for ever, as calls in
    flight when a process dies."""

    def __init__(self, answered: int | None = None) -> None:
        self.answered = answered
        self.asked: list[ReplayRequest] = []

    def by_model(self) -> Counter[str]:
        return Counter(r.model for r in self.asked)

    async def replay(self, request: ReplayRequest) -> ReplayAnswer:
        self.asked.append(request)
        if self.answered is not None and len(self.asked) > self.answered:
            await asyncio.Event().wait()
        return ReplayAnswer(
            text=f"answer from {request.model}",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal("0.001"),
            latency_ms=3.0,
            trace_id="f" * 32,
        )


class Judge:
    def __init__(self) -> None:
        self.asked = 0

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        self.asked += 1
        return JudgeAnswer(text=VERDICT, cost_usd=Decimal("0.0001"), trace_id="e" * 32)


async def completed(engine: AsyncEngine, comparison_id: str) -> int:
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None
    return found.completed


async def expire_lease(engine: AsyncEngine, comparison_id: str) -> None:
    """What the passing of time does to the lease of a runner that died."""
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.update()
            .where(comparisons.c.comparison_id == comparison_id)
            .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_runner_that_died_is_resumed_from_where_it_stopped(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-resume")
    comparison_id = await a_comparison(engine, workspace_id, 5)
    # Two requests answered (two replays each), the third's replays hang.
    dying = Replayer(answered=4)
    first = ComparisonRunner(engine, dying, Judge(), RunnerSettings(concurrency=1, lease_s=60))
    first.start(comparison_id)
    await until(lambda: asyncio.sleep(0, len(dying.asked) == 6))
    assert await completed(engine, comparison_id) == 2  # saved before the third began
    # The process dies: its task ends with no cleanup at all.
    first._tasks[comparison_id].cancel()
    await asyncio.sleep(0.05)
    stranded = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert stranded is not None and stranded.status == "running"

    replayer, judge = Replayer(), Judge()
    second = ComparisonRunner(engine, replayer, judge, RunnerSettings(concurrency=2, lease_s=60))
    assert await second.resume_abandoned() == []  # the lease has not run out yet
    await expire_lease(engine, comparison_id)
    assert await second.resume_abandoned() == [comparison_id]
    await second.wait(comparison_id)

    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None
    assert (found.status, found.completed, found.failed, found.error) == ("done", 5, 0, None)
    # Only the three requests without a saved result were replayed and judged again.
    assert replayer.by_model() == Counter({"small": 3, "large": 3})
    assert judge.asked == 6
    requests = found.definition["requests"]
    assert [r["interaction_id"] for r in found.results] == [r["interaction_id"] for r in requests]
    assert found.actual_cost_usd == Decimal("0.011")  # 10 replays and 10 judgements
    # The first runner, were it still alive, can write nothing more.
    assert not await store.save_progress(
        engine,
        comparison_id,
        runner_id=first.runner_id,
        results=[],
        completed=0,
        failed=0,
        actual_cost_usd=None,
    )
    assert not await store.renew_lease(engine, comparison_id, runner_id=first.runner_id, lease_s=60)
    await first.close()
    await second.close()


async def test_of_two_runners_asking_at_once_one_resumes(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-once")
    comparison_id = await a_comparison(engine, workspace_id, 3)
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.update()
            .where(comparisons.c.comparison_id == comparison_id)
            .values(status="running", started_at=datetime.now(UTC), claimed_by="0" * 32)
        )
    await expire_lease(engine, comparison_id)
    replayer = Replayer()
    runners = [
        ComparisonRunner(engine, replayer, Judge(), RunnerSettings(lease_s=60)) for _ in range(2)
    ]
    taken = await asyncio.gather(*(r.resume_abandoned() for r in runners))
    assert sorted(taken, key=len) == [[], [comparison_id]]
    for runner in runners:
        await runner.wait(comparison_id)
    assert replayer.by_model() == Counter({"small": 3, "large": 3})
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None and (found.status, found.completed) == ("done", 3)
    for runner in runners:
        await runner.close()


async def test_a_closed_runner_hands_its_comparison_back_at_once(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-handback")
    comparison_id = await a_comparison(engine, workspace_id, 3)
    stopping = Replayer(answered=2)
    first = ComparisonRunner(engine, stopping, Judge(), RunnerSettings(concurrency=1, lease_s=60))
    first.start(comparison_id)
    await until(lambda: asyncio.sleep(0, len(stopping.asked) == 4))
    await first.close()
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None
    assert (found.status, found.completed, found.error) == ("running", 1, None)
    replayer = Replayer()
    second = ComparisonRunner(engine, replayer, Judge(), RunnerSettings(lease_s=60))
    assert await second.resume_abandoned() == [comparison_id]  # no lease to wait for
    await second.wait(comparison_id)
    assert replayer.by_model() == Counter({"small": 2, "large": 2})
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None and (found.status, found.completed) == ("done", 3)
    await second.close()


async def test_an_accepted_comparison_never_started_is_started(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-pending")
    comparison_id = await a_comparison(engine, workspace_id, 2)
    runner = ComparisonRunner(engine, Replayer(), Judge(), RunnerSettings(lease_s=60))
    assert await runner.resume_abandoned() == []  # just accepted: its own process starts it
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.update()
            .where(comparisons.c.comparison_id == comparison_id)
            .values(created_at=datetime.now(UTC) - timedelta(seconds=61))
        )
    assert await runner.resume_abandoned() == [comparison_id]
    await runner.wait(comparison_id)
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None and (found.status, found.completed) == ("done", 2)
    assert found.started_at is not None
    await runner.close()


async def test_a_running_comparison_renews_its_lease(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-renew")
    comparison_id = await a_comparison(engine, workspace_id, 2)
    hanging = Replayer(answered=0)
    runner = ComparisonRunner(engine, hanging, Judge(), RunnerSettings(lease_s=0.6))
    runner.start(comparison_id)
    await until(lambda: asyncio.sleep(0, len(hanging.asked) == 4))
    await asyncio.sleep(1.0)  # longer than the lease: renewed meanwhile
    other = ComparisonRunner(engine, Replayer(), Judge(), RunnerSettings(lease_s=0.6))
    assert await other.resume_abandoned() == []
    async with engine.connect() as conn:
        until_at = (
            await conn.execute(
                sa.select(comparisons.c.claimed_until).where(
                    comparisons.c.comparison_id == comparison_id
                )
            )
        ).scalar_one()
    assert until_at is not None
    await runner.close()
    await other.close()
