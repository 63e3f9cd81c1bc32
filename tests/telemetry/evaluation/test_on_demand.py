"""Queuing evaluations on demand, on SQLite and Postgres: one trace, a filtered set, what is
skipped, re-evaluation, and one workspace never reaching another's rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.on_demand import (
    enabled_evaluator,
    enabled_evaluators,
    enqueue,
    select_trace,
    select_traces,
)
from telemetry.schema import evaluation_queue
from telemetry.search import TraceFilter
from tests.telemetry.evaluation.on_demand_rows import (
    add_evaluator,
    add_workspace,
    answered,
    queue_rows,
    write,
)


async def test_the_enabled_evaluators_of_a_workspace_are_listed_by_name(
    engine: AsyncEngine,
) -> None:
    mine, theirs = await add_workspace(engine, "mine"), await add_workspace(engine, "theirs")
    await add_evaluator(engine, mine, "tone", judge="judge-b")
    await add_evaluator(engine, mine, "accuracy")
    await add_evaluator(engine, mine, "paused", enabled=False)
    other = await add_evaluator(engine, theirs, "elsewhere")

    found = await enabled_evaluators(engine, workspace_ids={mine})
    assert [(e.name, e.judge_model) for e in found] == [("accuracy", "judge"), ("tone", "judge-b")]
    assert await enabled_evaluator(engine, other, workspace_ids={mine}) is None
    assert await enabled_evaluators(engine, workspace_ids=set()) == []
    everyone = await enabled_evaluators(engine, workspace_ids=None)
    assert {e.name for e in everyone} == {"accuracy", "tone", "elsewhere"}


async def test_one_trace_queues_its_answered_attempt_as_pending_on_demand(
    engine: AsyncEngine,
) -> None:
    workspace = await add_workspace(engine, "one")
    evaluator_id = await add_evaluator(engine, workspace, "accuracy")
    evaluator = await enabled_evaluator(engine, evaluator_id, workspace_ids={workspace})
    assert evaluator is not None
    bundle = answered(workspace, first_failed=True)
    await write(engine, bundle)

    selection = await select_trace(engine, bundle.trace.trace_id, workspace_id=workspace)
    assert selection is not None
    assert len(selection.candidates) == 1  # the failed first attempt is not judged
    before = datetime.now(UTC) - timedelta(seconds=1)
    outcome = await enqueue(engine, evaluator, selection)

    assert outcome.as_json() == {"queued": 1, "already_running": 0, "skipped_no_content": 0}
    (row,) = await queue_rows(engine, evaluator_id=evaluator_id)
    answer = next(i for i in bundle.interactions if i.status == "ok")
    assert row["interaction_id"] == answer.interaction_id
    assert row["trace_id"] == bundle.trace.trace_id
    assert row["workspace_id"] == workspace
    assert (row["status"], row["reason"], row["attempts"]) == ("pending", "on_demand", 0)
    next_at = row["next_attempt_at"]
    next_at = next_at if next_at.tzinfo else next_at.replace(tzinfo=UTC)
    assert next_at >= before


async def test_an_answer_without_stored_content_is_counted_and_not_queued(
    engine: AsyncEngine,
) -> None:
    workspace = await add_workspace(engine, "bare")
    evaluator_id = await add_evaluator(engine, workspace, "accuracy")
    evaluator = await enabled_evaluator(engine, evaluator_id, workspace_ids=None)
    assert evaluator is not None
    bare, stored = answered(workspace, stored=False), answered(workspace)
    await write(engine, bare, stored)

    selection = await select_traces(engine, TraceFilter(), workspace_id=workspace)
    assert selection.traces == 2
    assert selection.without_content == 1
    assert [c.content_characters is not None for c in selection.candidates].count(True) == 1
    outcome = await enqueue(engine, evaluator, selection)

    assert (outcome.queued, outcome.skipped_no_content) == (1, 1)
    rows = await queue_rows(engine, evaluator_id=evaluator_id)
    assert [r["trace_id"] for r in rows] == [stored.trace.trace_id]


async def test_asking_again_puts_a_judged_or_failed_pair_back_to_pending(
    engine: AsyncEngine,
) -> None:
    workspace = await add_workspace(engine, "again")
    evaluator_id = await add_evaluator(engine, workspace, "accuracy")
    evaluator = await enabled_evaluator(engine, evaluator_id, workspace_ids={workspace})
    assert evaluator is not None
    done, failed, running = (answered(workspace) for _ in range(3))
    await write(engine, done, failed, running)
    selection = await select_traces(engine, TraceFilter(), workspace_id=workspace)
    assert (await enqueue(engine, evaluator, selection)).queued == 3

    later = datetime.now(UTC) + timedelta(hours=1)
    states = {
        done.trace.trace_id: ("done", None),
        failed.trace.trace_id: ("failed", "judge answered no JSON"),
        running.trace.trace_id: ("running", None),
    }
    async with engine.begin() as conn:
        for trace_id, (status, error) in states.items():
            await conn.execute(
                sa.update(evaluation_queue)
                .where(evaluation_queue.c.trace_id == trace_id)
                .values(
                    status=status,
                    attempts=3,
                    last_error=error,
                    reason="sampled",
                    next_attempt_at=later,
                    claimed_until=later if status == "running" else None,
                )
            )
    first_ids = {r["trace_id"]: r["queue_id"] for r in await queue_rows(engine)}

    outcome = await enqueue(engine, evaluator, selection)

    assert (outcome.queued, outcome.already_running) == (2, 1)
    rows = {r["trace_id"]: r for r in await queue_rows(engine, evaluator_id=evaluator_id)}
    assert len(rows) == 3
    assert {t: r["queue_id"] for t, r in rows.items()} == first_ids  # the same rows, reset
    for trace in (done, failed):
        row = rows[trace.trace.trace_id]
        assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 0, None)
        assert row["reason"] == "on_demand"
        assert row["claimed_until"] is None
    kept = rows[running.trace.trace_id]
    assert (kept["status"], kept["attempts"], kept["reason"]) == ("running", 3, "sampled")


async def test_a_set_is_the_newest_traces_the_filter_finds_up_to_the_bound(
    engine: AsyncEngine,
) -> None:
    workspace = await add_workspace(engine, "bound")
    now = time.time()
    wanted = [answered(workspace, model="mock-gpt", at=now - 300 + n) for n in range(3)]
    other_model = answered(workspace, model="large")
    judge_call = answered(workspace, model="mock-gpt", source="evaluation")
    await write(engine, *wanted, other_model, judge_call)

    filters = TraceFilter(models=("mock-gpt",))
    every = await select_traces(engine, filters, workspace_id=workspace)
    assert (every.traces, every.more_traces) == (3, False)
    assert {c.trace_id for c in every.candidates} == {b.trace.trace_id for b in wanted}

    bounded = await select_traces(engine, filters, workspace_id=workspace, limit=2)
    assert (bounded.traces, bounded.more_traces) == (2, True)
    assert {c.trace_id for c in bounded.candidates} == {b.trace.trace_id for b in wanted[1:]}


async def test_a_workspace_never_selects_or_queues_another_workspaces_traces(
    engine: AsyncEngine,
) -> None:
    mine, theirs = await add_workspace(engine, "mine"), await add_workspace(engine, "theirs")
    evaluator_id = await add_evaluator(engine, mine, "accuracy")
    evaluator = await enabled_evaluator(engine, evaluator_id, workspace_ids={mine})
    assert evaluator is not None
    own, foreign = answered(mine), answered(theirs)
    await write(engine, own, foreign)

    assert await select_trace(engine, foreign.trace.trace_id, workspace_id=mine) is None
    named = TraceFilter(workspace_ids=(theirs,))
    assert (await select_traces(engine, named, workspace_id=mine)).candidates == []
    selection = await select_traces(engine, TraceFilter(), workspace_id=mine)
    await enqueue(engine, evaluator, selection)

    rows = await queue_rows(engine)
    assert [(r["trace_id"], r["workspace_id"]) for r in rows] == [(own.trace.trace_id, mine)]
