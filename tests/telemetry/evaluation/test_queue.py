"""The queue's claims on SQLite and Postgres: concurrent claimers never share a row, a lease
that ran out is claimed again, retries wait their turn, and the recorder keeps a picked
request's content whole when sampling and redaction run before the writer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from rules.recorded import recorded_test
from telemetry.evaluation.definition import parse_definition
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.evaluation.queue import claim, retry_later
from telemetry.evaluation.store import create_evaluator
from telemetry.ids import uuid7_hex
from telemetry.recorder import Recorder
from telemetry.schema import DEFAULT_WORKSPACE_ID, evaluation_queue
from telemetry.trace_sampling import TraceSampling
from tests.telemetry.evaluation.helpers import chat, rows


async def queue_rows(engine: AsyncEngine, count: int) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            evaluation_queue.insert(),
            [
                {
                    "queue_id": uuid7_hex(),
                    "workspace_id": DEFAULT_WORKSPACE_ID,
                    "evaluator_id": "e" * 32,
                    "trace_id": uuid7_hex(),
                    "interaction_id": uuid7_hex(),
                    "reason": "on_demand",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for _ in range(count)
            ],
        )


async def test_concurrent_claims_never_share_a_row(engine: AsyncEngine) -> None:
    await queue_rows(engine, 40)
    claimed: list[str] = []
    for _ in range(20):
        rounds = await asyncio.gather(*(claim(engine, limit=7, lease_s=60) for _ in range(4)))
        claimed += [c.queue_id for batch in rounds for c in batch]
        assert all(c.attempts == 1 for batch in rounds for c in batch)
        if not any(rounds):
            break
    assert len(claimed) == len(set(claimed)) == 40
    assert await claim(engine, limit=10, lease_s=60) == []


async def test_a_lapsed_lease_is_claimed_again_and_a_retry_waits(engine: AsyncEngine) -> None:
    await queue_rows(engine, 2)
    first, second = await claim(engine, limit=2, lease_s=60)
    async with engine.begin() as connection:
        await connection.execute(
            evaluation_queue.update()
            .where(evaluation_queue.c.queue_id == first.queue_id)
            .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    [again] = await claim(engine, limit=5, lease_s=60)
    assert (again.queue_id, again.attempts) == (first.queue_id, 2)
    await retry_later(engine, second, "not_json: the judge's answer is not JSON", 3600)
    assert await claim(engine, limit=5, lease_s=60) == []
    [waiting] = await rows(
        engine,
        "SELECT status, last_error FROM evaluation_queue WHERE queue_id = :q",
        q=second.queue_id,
    )
    assert waiting == {
        "status": "pending",
        "last_error": "not_json: the judge's answer is not JSON",
    }


@pytest.mark.parametrize("redacted", [False, True])
async def test_the_recorder_keeps_a_picked_request_whole(
    engine: AsyncEngine, tmp_path: object, redacted: bool
) -> None:
    await create_evaluator(
        engine,
        workspace_id=DEFAULT_WORKSPACE_ID,
        name="all",
        definition=parse_definition({"judge": "judge", "condition": {"model": "gpt-x"}}),
    )
    recorder = Recorder(
        engine,
        flush_interval=0.01,
        sampling=TraceSampling(ratio=0.0),
        redact=(lambda text: text.replace("France", "[COUNTRY]")) if redacted else None,
        picker=EvaluationPicker(engine, compile_condition=recorded_test, refresh_interval=60.0),
    )
    await recorder.start()
    picked, other = chat(), chat("gpt-other")
    recorder.record(picked)
    recorder.record(other)
    await recorder.stop()
    stored = {
        r["trace_id"]: r for r in await rows(engine, "SELECT trace_id, prompt FROM ai_interactions")
    }
    assert stored[picked.trace.trace_id]["prompt"] is not None
    assert stored[other.trace.trace_id]["prompt"] is None
    if redacted:
        assert "[COUNTRY]" in str(stored[picked.trace.trace_id]["prompt"])
    [queued] = await rows(engine, "SELECT trace_id FROM evaluation_queue")
    assert queued["trace_id"] == picked.trace.trace_id
    counted = await rows(engine, "SELECT COUNT(*) AS n FROM evaluations")
    assert counted == [{"n": 0}]
