"""Every judge attempt is paid, so every attempt counts (SQLite and Postgres, the fake Gemini
through google-genai): an evaluation carries the tokens and cost of all its row's attempts, a
row still being retried counts towards the daily cap, and the cap stops the judge on that sum.

One call of the fake costs $0.000136: 120 prompt tokens at $0.30 and 40 completion tokens at
$2.50 per million (gemini-2.5-flash)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.results import spent_today
from telemetry.schema import DEFAULT_WORKSPACE_ID, ai_interactions, evaluation_queue, evaluations
from tests.fake_gemini import COMPLETION_TOKENS, PROMPT_TOKENS, FakeGemini
from tests.telemetry.evaluation.helpers import chat, rows
from tests.telemetry.evaluation.test_pipeline import Judged, evaluator, gemini  # noqa: F401

CALL = Decimal("0.000136")


async def money(
    engine: AsyncEngine, column: sa.Column[Decimal], *where: sa.ColumnElement[bool]
) -> list[Decimal | None]:
    """A money column read through its type (the raw value is an integer of nano-units)."""
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(column).where(*where))).scalars())


@pytest.fixture
async def judged(engine: AsyncEngine, gemini: FakeGemini) -> AsyncIterator[Judged]:  # noqa: F811
    made = Judged(engine, gemini)
    yield made
    await made.caller.close()


async def test_an_evaluation_carries_the_cost_of_every_attempt(
    engine: AsyncEngine,
    judged: Judged,
    gemini: FakeGemini,  # noqa: F811
) -> None:
    await evaluator(engine, max_attempts=3)
    await judged.write(chat())
    gemini.then_text("not json").then_text('{"scores": {}}').then_scores(
        {"accuracy": 90, "brevity": 70}
    )
    await judged.drain()
    [row] = await rows(
        engine,
        "SELECT status, attempts, score, cost_usd, prompt_tokens, completion_tokens "
        "FROM evaluations",
    )
    assert (row["status"], row["attempts"], row["score"]) == ("ok", 3, 80.0)
    assert await money(engine, evaluations.c.cost_usd) == [3 * CALL]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        3 * PROMPT_TOKENS,
        3 * COMPLETION_TOKENS,
    )
    # the same as the three recorded judge calls
    judge_calls = ai_interactions.c.purpose == "evaluation"
    assert await money(engine, ai_interactions.c.cost_usd, judge_calls) == [CALL] * 3
    [queued] = await rows(engine, "SELECT status FROM evaluation_queue")
    assert queued["status"] == "done"


async def test_a_failed_evaluation_carries_every_attempt_too(
    engine: AsyncEngine,
    judged: Judged,
    gemini: FakeGemini,  # noqa: F811
) -> None:
    await evaluator(engine, max_attempts=2)
    await judged.write(chat())
    gemini.then_text("not json", times=2)
    await judged.drain()
    [row] = await rows(engine, "SELECT status, cost_usd, prompt_tokens FROM evaluations")
    assert row["status"] == "failed"
    assert await money(engine, evaluations.c.cost_usd) == [2 * CALL]
    assert row["prompt_tokens"] == 2 * PROMPT_TOKENS


async def test_the_cap_counts_retried_calls(
    engine: AsyncEngine,
    judged: Judged,
    gemini: FakeGemini,  # noqa: F811
) -> None:
    # Three calls ($0.000408) pass a cap of $0.0003; the last call alone ($0.000136) would not.
    found = await evaluator(engine, daily_cap_usd="0.0003", max_attempts=3)
    await judged.write(chat())
    gemini.then_text("not json", times=2).then_scores({"accuracy": 90, "brevity": 70})
    await judged.drain()
    assert await spent_today(engine, DEFAULT_WORKSPACE_ID, found.id) == 3 * CALL
    await judged.write(chat())
    await judged.drain()
    statuses = [r["status"] for r in await rows(engine, "SELECT status FROM evaluations")]
    assert sorted(statuses) == ["ok", "over_cap"]
    assert len(gemini.received) == 3


async def test_a_row_still_retried_counts_towards_the_cap(
    engine: AsyncEngine,
    judged: Judged,
    gemini: FakeGemini,  # noqa: F811
) -> None:
    found = await evaluator(engine, daily_cap_usd="0.0001", max_attempts=3)
    await judged.write(chat())
    gemini.then_text("not json")
    assert await judged.pool.run_once() == 1  # one failed attempt; the row waits its retry
    [queued] = await rows(
        engine, "SELECT status, spent_usd, spent_prompt_tokens FROM evaluation_queue"
    )
    assert queued["status"] == "pending"
    assert await money(engine, evaluation_queue.c.spent_usd) == [CALL]
    assert queued["spent_prompt_tokens"] == PROMPT_TOKENS
    assert await spent_today(engine, DEFAULT_WORKSPACE_ID, found.id) == CALL
    await judged.drain()
    # No second call: the cap was spent by the first attempt; the over-cap evaluation still
    # carries what that attempt cost.
    [row] = await rows(engine, "SELECT status, cost_usd FROM evaluations")
    assert row["status"] == "over_cap"
    assert await money(engine, evaluations.c.cost_usd) == [CALL]
    assert len(gemini.received) == 1
    assert await spent_today(engine, DEFAULT_WORKSPACE_ID, found.id) == CALL
