"""The interactions list's evaluation filters on SQLite and Postgres, over planted requests and
verdicts: each filter finds exactly the judged attempts (of a retried request, the attempt that
was judged and not the one that failed before it), the conditions hold of one evaluation, and an
evaluation of another workspace never marks an interaction of this one as judged."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID, evaluations
from telemetry.search import InteractionFilter, search_interactions
from telemetry.writers import BatchWriter
from tests.e2e.conftest import Database, backend_database
from tests.telemetry.evaluation_history import Judged, evaluation_row, plant, request_bundle

__all__ = ["backend_database"]

START = datetime(2024, 7, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@dataclasses.dataclass
class History:
    judged: list[Judged]
    """This workspace's evaluations, one per judged attempt and evaluator."""
    failed_attempt: str
    """The first attempt of a retried request; its second attempt was judged."""
    unjudged: str
    """An attempt no evaluation of this workspace judged (another workspace's names its id)."""
    theirs: Judged
    other_workspace: str

    def mine(self, holds: Callable[[Judged], bool]) -> set[str]:
        return {j.interaction_id for j in self.judged if holds(j)}


@pytest.fixture(scope="module")
async def engine(backend_database: Database) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend_database.url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def history(engine: AsyncEngine) -> History:
    other = await KeyStore(engine).create_workspace("scores-other", name="Scores other")
    judged = [
        Judged(
            at=START + timedelta(minutes=5 * n + 3),
            model="mock-gpt",
            scores={"accuracy": 30 + n * 12},
            evaluator="helpful" if n < 4 else "tone",
            flags=["hallucination"] if n in (1, 4) else [],
        )
        for n in range(6)
    ]
    judged.append(
        Judged(
            at=START + timedelta(minutes=40), model="mock-gpt", status="failed", evaluator="tone"
        )
    )
    retried = Judged(at=START + timedelta(minutes=45), model="mock-gpt", scores={"accuracy": 70})
    judged.append(retried)
    # the first request's answer was judged twice: helpful scored it 30, tone 95
    judged.append(dataclasses.replace(judged[0], scores={"tone": 95}, evaluator="tone", flags=[]))
    unjudged = Judged(at=START + timedelta(minutes=50), model="mock-gpt")
    theirs = Judged(
        at=START + timedelta(minutes=20),
        model="mock-gpt",
        scores={"accuracy": 10},
        flags=["hallucination"],
        workspace_id=other.workspace_id,
    )

    bundles = [request_bundle(j) for j in [*judged[:-1], unjudged, theirs]]
    retry = bundles[judged.index(retried)]
    answered = retry.interactions[0]
    failed = msgspec.structs.replace(
        answered,
        interaction_id=uuid7_hex(),
        attempt=1,
        status="error",
        http_status=502,
        error_type="upstream_error",
        ended_at=answered.started_at + 0.1,
    )
    retry.interactions = [failed, msgspec.structs.replace(answered, attempt=2)]
    await BatchWriter(engine).write(bundles)
    await plant(engine, [*judged, theirs], with_requests=False)
    # another workspace's evaluation naming this workspace's unjudged interaction
    foreign = dataclasses.replace(unjudged, workspace_id=other.workspace_id, scores={"accuracy": 5})
    async with engine.begin() as connection:
        await connection.execute(sa.insert(evaluations), [evaluation_row(foreign)])
    return History(
        judged=judged,
        failed_attempt=failed.interaction_id,
        unjudged=unjudged.interaction_id,
        theirs=theirs,
        other_workspace=other.workspace_id,
    )


async def found(
    engine: AsyncEngine, scope: str | None = DEFAULT_WORKSPACE_ID, **filters: Any
) -> set[str]:
    page = await search_interactions(
        engine,
        InteractionFilter(since=START, until=END, **filters),
        scope=scope,
        limit=200,
    )
    assert page.next_cursor is None
    ids = [row.interaction_id for row in page.rows]
    assert len(ids) == len(set(ids))
    return set(ids)


def _mean_at_most(bound: float) -> Callable[[Judged], bool]:
    return lambda j: j.mean is not None and j.mean <= bound


async def test_each_filter_finds_exactly_the_judged_attempts(
    engine: AsyncEngine, history: History
) -> None:
    every = await found(engine)
    judged = history.mine(lambda j: True)
    assert len(judged) == 8 and judged <= every
    assert await found(engine, evaluated=True) == judged
    assert history.failed_attempt in every and history.unjudged in every
    assert await found(engine, evaluated=False) == {history.failed_attempt, history.unjudged}
    assert await found(engine, evaluators=("tone",)) == history.mine(
        lambda j: j.evaluator == "tone"
    )
    low = history.mine(_mean_at_most(54))
    assert len(low) == 3 and await found(engine, max_score=54.0) == low
    assert await found(engine, min_score=60.0, max_score=80.0) == history.mine(
        lambda j: j.mean is not None and 60 <= j.mean <= 80
    )
    flagged = history.mine(lambda j: "hallucination" in j.flags)
    assert len(flagged) == 2 and await found(engine, eval_flags=("hallucination",)) == flagged
    assert await found(engine, evaluated=False, evaluators=("tone",)) == set()


async def test_the_conditions_hold_of_one_evaluation(engine: AsyncEngine, history: History) -> None:
    twice = history.judged[0].interaction_id
    assert twice in await found(engine, max_score=40.0)
    assert twice in await found(engine, evaluators=("tone",))
    low_tone = await found(engine, evaluators=("tone",), max_score=60.0)
    assert twice not in low_tone
    assert low_tone == history.mine(lambda j: j.evaluator == "tone" and _mean_at_most(60)(j))


async def test_another_workspaces_evaluations_never_count(
    engine: AsyncEngine, history: History
) -> None:
    theirs = history.theirs.interaction_id
    assert await found(engine, max_score=20.0) == set()
    assert await found(engine, history.other_workspace, evaluated=True) == {theirs}
    assert await found(engine, history.other_workspace, max_score=20.0) == {theirs}
    assert await found(engine, history.other_workspace, evaluated=False) == set()
    everyone = await found(engine, None, evaluated=True)
    assert everyone == history.mine(lambda j: True) | {theirs}
    assert history.unjudged not in everyone
    assert await found(
        engine, None, workspace_ids=(DEFAULT_WORKSPACE_ID,), eval_flags=("hallucination",)
    ) == history.mine(lambda j: "hallucination" in j.flags)
