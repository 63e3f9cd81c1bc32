"""The comparison runner on SQLite and Postgres: it runs a comparison once however often it is
started (two runners, as two processes would be), keeps to its concurrency, saves its progress,
stops at a cancellation, and selects only requests with stored content in one workspace."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.comparison import store
from telemetry.comparison.replay import ReplayAnswer, ReplayRequest
from telemetry.comparison.requests import select_requests
from telemetry.comparison.runner import ComparisonRunner, RunnerSettings
from telemetry.evaluation.judge import JudgeAnswer, JudgeRequest
from telemetry.search import TraceFilter
from tests.telemetry.evaluation.on_demand_rows import add_workspace, answered, write

VERDICT = '{"scores": {"accuracy": 70}, "rationale": "fine", "flags": []}'


class Replayer:
    """Answers every replay after `gate` opens, counting how many run at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.asked: list[ReplayRequest] = []
        self.running = 0
        self.most = 0

    async def replay(self, request: ReplayRequest) -> ReplayAnswer:
        self.asked.append(request)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return ReplayAnswer(
            text=f"answer from {request.model}",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal("0.001"),
            latency_ms=3.0,
            trace_id="f" * 32,
        )


class Judge:
    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        return JudgeAnswer(text=VERDICT, cost_usd=Decimal("0.0001"), trace_id="e" * 32)


async def a_comparison(engine: AsyncEngine, workspace_id: str, requests: int) -> str:
    bundles = [answered(workspace_id) for _ in range(requests)]
    await write(engine, *bundles, answered(workspace_id, stored=False))
    found = await select_requests(engine, TraceFilter(), workspace_id=workspace_id)
    assert len(found.requests) == requests and found.without_content == 1
    definition: dict[str, Any] = {
        "variants": {"a": {"model": "small"}, "b": {"model": "large", "system_prompt": "Hi."}},
        "evaluator": {
            "definition": {
                "condition": None,
                "sampling_rate": 0.0,
                "judge": {"model": "judge", "temperature": 0.0, "timeout_s": 5},
                "criteria": [{"name": "accuracy"}],
            }
        },
        "requests": [
            {"trace_id": r.trace_id, "interaction_id": r.interaction_id} for r in found.requests
        ],
    }
    return await store.create_comparison(
        engine,
        workspace_id=workspace_id,
        name="test",
        definition=definition,
        estimate={},
        total=requests,
        created_by="tester",
    )


async def until(check: Any) -> None:
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_comparison_started_twice_runs_once(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-twice")
    comparison_id = await a_comparison(engine, workspace_id, 3)
    replayer = Replayer()
    first = ComparisonRunner(engine, replayer, Judge(), RunnerSettings(concurrency=2))
    second = ComparisonRunner(engine, replayer, Judge(), RunnerSettings(concurrency=2))
    first.start(comparison_id)
    first.start(comparison_id)
    second.start(comparison_id)
    await until(lambda: asyncio.sleep(0, len(replayer.asked) >= 4))
    await asyncio.sleep(0.05)
    assert replayer.most == 4  # two requests at once, both variants of each
    replayer.gate.set()
    await first.wait(comparison_id)
    await second.wait(comparison_id)
    found = await store.get_comparison(engine, comparison_id, workspace_ids=[workspace_id])
    assert found is not None
    assert (found.status, found.completed, found.failed) == ("done", 3, 0)
    assert len(replayer.asked) == 6
    assert found.actual_cost_usd == Decimal("0.0066")  # 6 replays and 6 judgements
    assert all(r["a"]["score"] == 70.0 and r["b"]["score"] == 70.0 for r in found.results)
    large = [r for r in replayer.asked if r.model == "large"]
    assert all(r.messages[0] == {"role": "system", "content": "Hi."} for r in large)
    assert found.finished_at is not None
    elsewhere = await store.get_comparison(engine, comparison_id, workspace_ids=["0" * 32])
    assert elsewhere is None


async def test_a_cancelled_comparison_stops_before_its_next_request(engine: AsyncEngine) -> None:
    workspace_id = await add_workspace(engine, "compare-cancel")
    comparison_id = await a_comparison(engine, workspace_id, 4)
    replayer = Replayer()
    runner = ComparisonRunner(engine, replayer, Judge(), RunnerSettings(concurrency=1))
    runner.start(comparison_id)
    await until(lambda: asyncio.sleep(0, len(replayer.asked) >= 2))
    assert await store.cancel_comparison(engine, comparison_id, workspace_id)
    replayer.gate.set()
    await runner.wait(comparison_id)
    found = await store.get_comparison(engine, comparison_id, workspace_ids=None)
    assert found is not None
    assert found.status == "cancelled"
    assert found.completed == 1 and len(replayer.asked) == 2
    assert not await store.cancel_comparison(engine, comparison_id, workspace_id)
