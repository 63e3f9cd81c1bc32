"""The pool of judge workers: claims queue rows, calls the judge, writes `evaluations`.

At most `concurrency` judge calls run at once. A row is claimed with a lease of `lease_s`
seconds; a worker that dies mid-call leaves the row to be claimed again once the lease ends.
A failed attempt (the call failed or timed out, the answer is not the expected JSON, the judge
refused) is retried after `backoff_s * 2^(attempt-1)` seconds until the evaluator's
`max_attempts`, then ends as a `failed` evaluation. Nothing a judge answers stops the pool.

Every attempt may be paid: a failed attempt's tokens and cost are added to its queue row, and
the evaluation written at the end carries the sum over all of the row's attempts.

The daily cap: before calling the judge, the evaluator's spend today (UTC; the sum of its
evaluations' `cost_usd`, plus what the failed attempts of its unfinished rows spent) is compared with its `daily_cap_usd`; at or over it the row ends at
once as an `over_cap` evaluation (no call, no cost), so the queue never grows while the cap
holds and the console can count what was skipped. The check is made per row before its call,
so the calls in flight when the cap is reached may pass it by their own cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation import metrics
from telemetry.evaluation.judge import JudgeAnswer, JudgeCaller, JudgeCallFailed, JudgeRequest
from telemetry.evaluation.parsing import VerdictError, parse_verdict
from telemetry.evaluation.prompt import build_messages, response_schema
from telemetry.evaluation.queue import (
    DONE,
    FAILED,
    Claim,
    Spend,
    claim,
    finish,
    retry_later,
    spent_before,
)
from telemetry.evaluation.results import (
    JudgedInteraction,
    Outcome,
    read_interaction,
    spent_today,
    write_outcome,
)
from telemetry.evaluation.store import Evaluator, get_evaluator

logger = logging.getLogger("steerway.evaluation.worker")

MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class PoolSettings:
    concurrency: int = 2
    poll_interval: float = 1.0
    lease_s: float = 120.0
    backoff_s: float = 5.0
    close_timeout: float = 10.0


class _Failure(Exception):
    """A failed attempt: its message is stored, so it never holds a provider's text."""

    def __init__(
        self, message: str, answer: JudgeAnswer | None = None, trace_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.answer = answer
        self.trace_id = trace_id or (answer.trace_id if answer else None)


def _spend_of(answer: JudgeAnswer | None) -> Spend:
    if answer is None:
        return Spend()
    return Spend(answer.cost_usd, answer.prompt_tokens, answer.completion_tokens)


def _every_attempt(item: Claim, answer: JudgeAnswer | None) -> dict[str, Any]:
    """The evaluation's tokens and cost: its row's earlier attempts' and this one's, so the
    daily cap counts every paid call, not the last one only."""
    total = spent_before(item).plus(_spend_of(answer))
    return {
        "cost_usd": total.cost_usd,
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
    }


class EvaluationWorkers:
    def __init__(
        self, engine: AsyncEngine, judge: JudgeCaller, settings: PoolSettings | None = None
    ) -> None:
        self._engine = engine
        self._judge = judge
        self._settings = settings or PoolSettings()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="evaluation-workers")

    async def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._running:
            _, pending = await asyncio.wait(
                set(self._running), timeout=self._settings.close_timeout
            )
            for left in pending:
                left.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim what is due (up to `concurrency`) and process it; the rows processed."""
        claimed = await claim(
            self._engine, limit=self._settings.concurrency, lease_s=self._settings.lease_s
        )
        await asyncio.gather(*(self._process_safely(item) for item in claimed))
        return len(claimed)

    async def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            free = self._settings.concurrency - len(self._running)
            claimed: list[Claim] = []
            if free > 0:
                try:
                    claimed = await claim(self._engine, limit=free, lease_s=self._settings.lease_s)
                    failing = False
                except Exception as error:
                    if not failing:
                        logger.warning(
                            "evaluation: cannot claim queue rows (%s)", type(error).__name__
                        )
                    failing = True
            for item in claimed:
                task = asyncio.create_task(self._process_safely(item))
                self._running.add(task)
                task.add_done_callback(self._done)
            # Woken early when a row ends (a slot is free) or the pool stops.
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_interval):
                    await self._wake.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _process_safely(self, item: Claim) -> None:
        try:
            await self._process(item)
        except Exception as error:
            logger.warning(
                "evaluation: row %s failed unexpectedly (%s); retried later",
                item.queue_id,
                type(error).__name__,
            )
            with contextlib.suppress(Exception):
                await retry_later(
                    self._engine, item, f"internal: {type(error).__name__}", self._delay(item)
                )

    def _delay(self, item: Claim) -> float:
        return self._settings.backoff_s * 2 ** max(0, item.attempts - 1)

    async def _process(self, item: Claim) -> None:
        evaluator = await get_evaluator(self._engine, item.evaluator_id)
        if evaluator is None or evaluator.workspace_id != item.workspace_id:
            async with self._engine.begin() as connection:
                await finish(connection, item, FAILED, "the evaluator was deleted")
            return
        judged = await read_interaction(self._engine, item)
        if judged is None or judged.prompt is None or judged.response is None:
            await self._end(
                item,
                evaluator,
                judged,
                Outcome(
                    status="no_content",
                    scores={},
                    error="the interaction's prompt and answer were not stored",
                    **_every_attempt(item, None),
                ),
            )
            return
        cap = evaluator.definition.daily_cap_usd
        if (
            cap is not None
            and await spent_today(self._engine, item.workspace_id, evaluator.id) >= cap
        ):
            await self._end(
                item,
                evaluator,
                judged,
                Outcome(
                    status="over_cap",
                    scores={},
                    error=f"the daily cap of ${cap} is spent",
                    **_every_attempt(item, None),
                ),
            )
            return
        try:
            answer = await self._call(evaluator, judged, item)
            verdict = parse_verdict(answer.text, evaluator.definition.criteria)
        except _Failure as failure:
            await self._failed(item, evaluator, judged, failure)
            return
        except VerdictError as error:
            await self._failed(item, evaluator, judged, _Failure(str(error), answer))
            return
        await self._end(
            item,
            evaluator,
            judged,
            Outcome(
                status="ok",
                scores=verdict.scores,
                score=verdict.score,
                rationale=verdict.rationale,
                flags=tuple(verdict.flags),
                **_every_attempt(item, answer),
                latency_ms=answer.latency_ms,
                judge_trace_id=answer.trace_id,
            ),
        )

    async def _call(
        self, evaluator: Evaluator, judged: JudgedInteraction, item: Claim
    ) -> JudgeAnswer:
        definition = evaluator.definition
        request = JudgeRequest(
            workspace_id=item.workspace_id,
            model=definition.judge.model,
            messages=build_messages(judged.prompt, judged.response, definition.criteria),
            schema=response_schema(definition.criteria),
            temperature=definition.judge.temperature,
            timeout_s=definition.judge.timeout_s,
        )
        try:
            async with asyncio.timeout(definition.judge.timeout_s + 1.0):
                answer = await self._judge.judge(request)
        except TimeoutError:
            raise _Failure(f"timeout: no answer in {definition.judge.timeout_s:g} s") from None
        except JudgeCallFailed as error:
            raise _Failure(f"call: {error}"[:MAX_ERROR], trace_id=error.trace_id) from None
        if answer.refused:
            raise _Failure("refusal: the judge declined to score", answer)
        return answer

    async def _failed(
        self,
        item: Claim,
        evaluator: Evaluator,
        judged: JudgedInteraction,
        failure: _Failure,
    ) -> None:
        message = str(failure)[:MAX_ERROR]
        answer = failure.answer
        if item.attempts < evaluator.definition.max_attempts:
            await retry_later(self._engine, item, message, self._delay(item), _spend_of(answer))
            return
        await self._end(
            item,
            evaluator,
            judged,
            Outcome(
                status="failed",
                scores={},
                error=message,
                **_every_attempt(item, answer),
                latency_ms=answer.latency_ms if answer else None,
                judge_trace_id=failure.trace_id,
            ),
            queue_status=FAILED,
        )

    async def _end(
        self,
        item: Claim,
        evaluator: Evaluator,
        judged: JudgedInteraction | None,
        outcome: Outcome,
        *,
        queue_status: str = DONE,
    ) -> None:
        async with self._engine.begin() as connection:
            await write_outcome(
                connection,
                item,
                evaluator_name=evaluator.name,
                judge_model=evaluator.definition.judge.model,
                judged=judged,
                outcome=outcome,
            )
            await finish(connection, item, queue_status, outcome.error)
        metrics.observe(
            evaluator.name, outcome.status, outcome.scores if outcome.status == "ok" else None
        )
