"""From the batch writer to `evaluations`, on SQLite and Postgres: picking at record time, the
queue, the worker pool calling a Gemini judge (the fake, through the google-genai client),
retries of bad judge output, no content, the daily cap, and the judge's trace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.upstream.model_calls import ModelCaller
from rules.recorded import condition_problem, recorded_test
from telemetry.evaluation.definition import parse_definition
from telemetry.evaluation.picking import EvaluationPicker
from telemetry.evaluation.store import Evaluator, create_evaluator, delete_evaluator
from telemetry.evaluation.worker import EvaluationWorkers, PoolSettings
from telemetry.records import TraceBundle
from telemetry.schema import DEFAULT_WORKSPACE_ID, evaluations
from telemetry.search import TraceFilter, search_traces
from telemetry.trace_sampling import TraceSampling
from telemetry.writers import BatchWriter
from tests.fake_gemini import FakeGemini
from tests.telemetry.evaluation.helpers import chat, judge_config, rows


@pytest.fixture
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-secret-1") as server:
        yield server


class Judged:
    """The pool with a real model caller; the judge's traces go through a real writer."""

    def __init__(self, engine: AsyncEngine, gemini: FakeGemini) -> None:
        self.engine = engine
        self.recorded: list[TraceBundle] = []
        self.caller = ModelCaller(judge_config(gemini), {}, self.recorded.append)
        self.pool = EvaluationWorkers(
            engine, self.caller, PoolSettings(concurrency=2, backoff_s=0.0)
        )
        self.picker = EvaluationPicker(
            engine, compile_condition=recorded_test, refresh_interval=0.0
        )
        self.writer = BatchWriter(engine, sampling=TraceSampling(ratio=0.0), picker=self.picker)

    async def write(self, *bundles: TraceBundle) -> dict[str, int]:
        return await self.writer.write(list(bundles))

    async def drain(self) -> None:
        """Run the pool until the queue holds nothing due, writing the judge's traces."""
        for _ in range(20):
            if not await self.pool.run_once():
                break
        if self.recorded:
            await self.writer.write(self.recorded)
            self.recorded.clear()


@pytest.fixture
async def judged(engine: AsyncEngine, gemini: FakeGemini) -> AsyncIterator[Judged]:
    made = Judged(engine, gemini)
    yield made
    await made.caller.close()


async def judge_costs(engine: AsyncEngine) -> list[Decimal]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(evaluations.c.cost_usd))).scalars())


async def evaluator(engine: AsyncEngine, **definition: Any) -> Evaluator:
    body = {
        "condition": {"model": "gpt-x"},
        "sampling_rate": 1.0,
        "judge": "judge",
        "criteria": ["accuracy", {"name": "brevity", "rubric": "Short and complete."}],
        **definition,
    }
    return await create_evaluator(
        engine,
        workspace_id=DEFAULT_WORKSPACE_ID,
        name=f"answers-{len(definition)}",
        definition=parse_definition(body, models=["judge"], check_condition=condition_problem),
    )


async def test_picked_interactions_are_queued_and_kept_whole(
    engine: AsyncEngine, judged: Judged
) -> None:
    found = await evaluator(engine)
    picked, other, empty, judge_call = (
        chat(),
        chat("gpt-other"),
        chat(content=False),
        chat(source="evaluation"),
    )
    counts = await judged.write(picked, other, empty, judge_call)
    assert counts["evaluation_queue"] == 1
    queue = await rows(engine, "SELECT * FROM evaluation_queue")
    assert [(q["trace_id"], q["status"], q["reason"]) for q in queue] == [
        (picked.trace.trace_id, "pending", "sampled")
    ]
    assert queue[0]["evaluator_id"] == found.id
    no_content = await rows(engine, "SELECT trace_id, status FROM evaluations")
    assert no_content == [{"trace_id": empty.trace.trace_id, "status": "no_content"}]
    # Sampling at 0 keeps only the picked trace whole: its content is there for the judge.
    kept = await rows(
        engine,
        "SELECT t.trace_id, t.sampled_out, i.prompt FROM traces t "
        "JOIN ai_interactions i ON i.trace_id = t.trace_id ORDER BY t.trace_id",
    )
    by_trace = {r["trace_id"]: r for r in kept}
    assert not by_trace[picked.trace.trace_id]["sampled_out"]
    assert by_trace[picked.trace.trace_id]["prompt"] is not None
    assert by_trace[other.trace.trace_id]["sampled_out"]


async def test_a_rewritten_batch_does_not_queue_twice(engine: AsyncEngine, judged: Judged) -> None:
    await evaluator(engine)
    bundle = chat()
    await judged.write(bundle)
    await judged.writer.write([bundle], skip_existing=True)
    assert len(await rows(engine, "SELECT queue_id FROM evaluation_queue")) == 1


async def test_sampling_rate_picks_its_share(engine: AsyncEngine, judged: Judged) -> None:
    await evaluator(engine, sampling_rate=0.25)
    await judged.write(*(chat() for _ in range(200)))
    queued = len(await rows(engine, "SELECT queue_id FROM evaluation_queue"))
    assert 25 <= queued <= 75


async def test_the_judge_scores_and_its_call_is_recorded_apart(
    engine: AsyncEngine, judged: Judged, gemini: FakeGemini
) -> None:
    found = await evaluator(engine)
    bundle = chat()
    await judged.write(bundle)
    gemini.then_scores({"accuracy": 90, "brevity": 70}, flags=["hallucination"])
    await judged.drain()
    [row] = await rows(engine, "SELECT * FROM evaluations")
    scores = row["scores"] if isinstance(row["scores"], dict) else json.loads(row["scores"])
    assert row["status"] == "ok"
    assert scores == {"accuracy": 90, "brevity": 70}
    assert row["score"] == pytest.approx(80.0)
    flags = row["flags"] if isinstance(row["flags"], list) else json.loads(row["flags"])
    assert flags == ["hallucination"]
    assert row["evaluator_id"] == found.id
    assert row["requested_model"] == "gpt-x"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (120, 40)
    # gemini-2.5-flash: $0.30 in, $2.50 out per million tokens.
    assert await judge_costs(engine) == [Decimal("0.000136")]
    # The request reached the fake through google-genai, with the key in its header and JSON
    # output asked for with the criteria's schema.
    [sent] = gemini.received
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.api_key == "gk-secret-1"
    assert sent.body["generationConfig"]["responseMimeType"] == "application/json"
    assert sent.schema_properties == ["accuracy", "brevity"]
    assert "Paris." in json.dumps(sent.body["contents"])
    # The judge's call is a trace of its own, left out of the users' roll-ups.
    [judge_trace] = await rows(
        engine, "SELECT trace_id, source FROM traces WHERE trace_id = :t", t=row["judge_trace_id"]
    )
    assert judge_trace["source"] == "evaluation"
    purposes = await rows(
        engine, "SELECT purpose FROM ai_interactions WHERE trace_id = :t", t=row["judge_trace_id"]
    )
    assert purposes == [{"purpose": "evaluation"}]
    counted = await rows(engine, "SELECT DISTINCT model, source FROM usage_rollups")
    assert counted == [{"model": "gpt-x", "source": "proxy"}]
    queue = await rows(engine, "SELECT status, attempts FROM evaluation_queue")
    assert queue == [{"status": "done", "attempts": 1}]


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda g: g.then_text("The answer looks fine to me.", times=3), id="not-json"),
        pytest.param(lambda g: g.then_text('{"score": 5}', times=3), id="wrong-shape"),
        pytest.param(
            lambda g: g.then_text('{"scores": {"accuracy": 250, "brevity": 1}}', times=3),
            id="out-of-range",
        ),
        pytest.param(lambda g: g.then_refusal(times=3), id="refusal"),
        pytest.param(lambda g: g.then_status(503, times=3), id="unavailable"),
    ],
)
async def test_bad_judge_output_is_retried_then_failed(
    engine: AsyncEngine, judged: Judged, gemini: FakeGemini, script: Any
) -> None:
    await evaluator(engine, max_attempts=3)
    await judged.write(chat())
    script(gemini)
    gemini.then_scores({"accuracy": 100, "brevity": 100})  # never reached
    await judged.drain()
    [row] = await rows(engine, "SELECT status, attempts, error, score FROM evaluations")
    assert (row["status"], row["attempts"], row["score"]) == ("failed", 3, None)
    assert "gk-secret-1" not in row["error"]
    assert len(gemini.received) == 3
    [queued] = await rows(engine, "SELECT status, last_error FROM evaluation_queue")
    assert queued["status"] == "failed"
    assert queued["last_error"] == row["error"]


async def test_a_failed_attempt_then_a_good_answer_is_ok(
    engine: AsyncEngine, judged: Judged, gemini: FakeGemini
) -> None:
    await evaluator(engine)
    await judged.write(chat())
    gemini.then_text("not json").then_scores({"accuracy": 60, "brevity": 40})
    await judged.drain()
    [row] = await rows(engine, "SELECT status, attempts, score FROM evaluations")
    assert (row["status"], row["attempts"], row["score"]) == ("ok", 2, 50.0)


async def test_the_daily_cap_stops_the_judge(
    engine: AsyncEngine, judged: Judged, gemini: FakeGemini
) -> None:
    # One call costs $0.000136: the first is made, the rest find the cap spent.
    await evaluator(engine, daily_cap_usd="0.0001")
    await judged.write(chat(), chat(), chat())
    await judged.drain()
    statuses = sorted(r["status"] for r in await rows(engine, "SELECT status FROM evaluations"))
    assert statuses.count("ok") >= 1
    assert statuses.count("over_cap") >= 1
    assert len(gemini.received) == statuses.count("ok")
    assert len(statuses) == 3


async def test_a_deleted_evaluator_ends_its_rows(
    engine: AsyncEngine, judged: Judged, gemini: FakeGemini
) -> None:
    found = await evaluator(engine)
    await judged.write(chat())
    await delete_evaluator(engine, found)
    await judged.drain()
    assert await rows(engine, "SELECT queue_id FROM evaluation_queue") == []
    assert gemini.received == []


async def test_the_traces_explorer_leaves_judge_calls_out_unless_asked(
    engine: AsyncEngine, judged: Judged
) -> None:
    user, judge_call = chat(), chat(source="evaluation")
    await judged.write(user, judge_call)
    listed = await search_traces(engine, TraceFilter(), scope=None)
    assert [r.trace_id for r in listed.rows] == [user.trace.trace_id]
    asked = await search_traces(engine, TraceFilter(sources=("evaluation",)), scope=None)
    assert [r.trace_id for r in asked.rows] == [judge_call.trace.trace_id]
