"""Running a confirmed comparison, off the request path, in the process that serves the console.

Each recorded request is replayed to both variants at once, and each answer is judged with
the evaluator's criteria against the recorded conversation (the user's request, not the
variant's system prompt, so two system prompts are judged on what the user asked). At most
`concurrency` requests are in flight. After every request the row's results, progress counts
and actual cost (replays and judge calls) are saved, so the console shows progress, and the
status is read again, so a cancelled comparison stops before its next request. Starting a
comparison already running (here or in another process) does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.comparison import store
from telemetry.comparison.replay import ReplayAnswer, ReplayCaller, ReplayRequest, variant_messages
from telemetry.comparison.requests import read_prompt
from telemetry.evaluation.definition import EvaluatorDefinition, parse_definition
from telemetry.evaluation.judge import JudgeCaller, JudgeCallFailed, JudgeRequest
from telemetry.evaluation.parsing import VerdictError, parse_verdict
from telemetry.evaluation.prompt import build_messages, response_schema

logger = logging.getLogger("steerway.comparison")

REPLAY_TIMEOUT_S: Final = 60.0
MAX_ERROR: Final = 300


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    concurrency: int = 2
    replay_timeout_s: float = REPLAY_TIMEOUT_S


class _Progress:
    def __init__(self, total: int) -> None:
        self.results: list[dict[str, Any] | None] = [None] * total
        self.completed = 0
        self.failed = 0
        self.cost = Decimal(0)
        self.lock = asyncio.Lock()

    def finished(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r is not None]


class ComparisonRunner:
    def __init__(
        self,
        engine: AsyncEngine,
        replayer: ReplayCaller,
        judge: JudgeCaller,
        settings: RunnerSettings | None = None,
    ) -> None:
        self._engine = engine
        self._replayer = replayer
        self._judge = judge
        self._settings = settings or RunnerSettings()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, comparison_id: str) -> None:
        """Run the comparison in the background (nothing when it already runs here)."""
        if comparison_id in self._tasks:
            return
        task = asyncio.create_task(self._run_safely(comparison_id), name="comparison")
        self._tasks[comparison_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(comparison_id, None))

    async def wait(self, comparison_id: str) -> None:
        task = self._tasks.get(comparison_id)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_safely(self, comparison_id: str) -> None:
        try:
            if not await store.claim_for_run(self._engine, comparison_id):
                return
            await self.run(comparison_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await store.finish_comparison(
                    self._engine, comparison_id, store.FAILED, "the serving process stopped"
                )
            raise
        except Exception as error:
            logger.warning("comparison %s failed (%s)", comparison_id, type(error).__name__)
            with contextlib.suppress(Exception):
                await store.finish_comparison(
                    self._engine, comparison_id, store.FAILED, f"internal: {type(error).__name__}"
                )

    async def run(self, comparison_id: str) -> None:
        """Run a comparison already `running` to its end."""
        found = await store.get_comparison(self._engine, comparison_id, workspace_ids=None)
        if found is None:
            return
        definition = found.definition
        evaluator = parse_definition(definition["evaluator"]["definition"], stored=True)
        requests: list[dict[str, Any]] = definition["requests"]
        progress = _Progress(len(requests))
        slots = asyncio.Semaphore(max(1, self._settings.concurrency))
        cancelled = asyncio.Event()

        async def one(index: int, recorded: dict[str, Any]) -> None:
            async with slots:
                if cancelled.is_set():
                    return
                if await store.read_status(self._engine, comparison_id) != store.RUNNING:
                    cancelled.set()
                    return
                result, cost = await self._compare_one(found, evaluator, recorded)
                async with progress.lock:
                    progress.results[index] = result
                    progress.cost += cost
                    if result["ok"]:
                        progress.completed += 1
                    else:
                        progress.failed += 1
                    await store.save_progress(
                        self._engine,
                        comparison_id,
                        results=progress.finished(),
                        completed=progress.completed,
                        failed=progress.failed,
                        actual_cost_usd=progress.cost,
                    )

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        status = store.DONE if progress.completed or not requests else store.FAILED
        error = None if status == store.DONE else "no request could be compared"
        await store.finish_comparison(self._engine, comparison_id, status, error)

    async def _compare_one(
        self,
        found: store.StoredComparison,
        evaluator: EvaluatorDefinition,
        recorded: dict[str, Any],
    ) -> tuple[dict[str, Any], Decimal]:
        result: dict[str, Any] = {
            "trace_id": recorded["trace_id"],
            "interaction_id": recorded["interaction_id"],
            "requested_model": recorded.get("requested_model"),
        }
        prompt = await read_prompt(self._engine, found.workspace_id, recorded["interaction_id"])
        variants = found.definition["variants"]
        sides = [
            (side, variants[side], variant_messages(prompt, variants[side].get("system_prompt")))
            for side in ("a", "b")
        ]
        if any(messages is None for _, _, messages in sides):
            result["ok"] = False
            result["error"] = "the recorded prompt is gone or is not a list of chat messages"
            return result, Decimal(0)
        outcomes = await asyncio.gather(
            *(
                self._variant(
                    found.workspace_id, variant, messages or [], prompt, evaluator, recorded
                )
                for _, variant, messages in sides
            )
        )
        cost = Decimal(0)
        for (side, _, _), (entry, spent) in zip(sides, outcomes, strict=True):
            result[side] = entry
            cost += spent
        result["ok"] = all(result[side].get("score") is not None for side in ("a", "b"))
        return result, cost

    async def _variant(
        self,
        workspace_id: str,
        variant: dict[str, Any],
        messages: list[dict[str, Any]],
        prompt: Any,
        evaluator: EvaluatorDefinition,
        recorded: dict[str, Any],
    ) -> tuple[dict[str, Any], Decimal]:
        answer = await self._replay(workspace_id, variant["model"], messages, recorded)
        spent = answer.cost_usd or Decimal(0)
        entry: dict[str, Any] = {
            "model": variant["model"],
            "status": "ok" if answer.error is None else "failed",
            "trace_id": answer.trace_id,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "cost_usd": None if answer.cost_usd is None else str(answer.cost_usd),
            "latency_ms": answer.latency_ms,
            "score": None,
            "scores": {},
            "error": answer.error,
        }
        if answer.error is not None or answer.text is None:
            entry["status"] = "failed"
            entry["error"] = answer.error or "the model gave no answer"
            return entry, spent
        judged = await self._judge_answer(workspace_id, prompt, answer.text, evaluator)
        entry.update(judged)
        judge_cost = judged.get("judge_cost_usd")
        if judge_cost is not None:
            spent += Decimal(judge_cost)
        return entry, spent

    async def _replay(
        self,
        workspace_id: str,
        model: str,
        messages: list[dict[str, Any]],
        recorded: dict[str, Any],
    ) -> ReplayAnswer:
        timeout = self._settings.replay_timeout_s
        request = ReplayRequest(
            workspace_id=workspace_id,
            model=model,
            messages=messages,
            max_tokens=recorded.get("max_tokens"),
            timeout_s=timeout,
        )
        try:
            async with asyncio.timeout(timeout + 1.0):
                return await self._replayer.replay(request)
        except TimeoutError:
            return ReplayAnswer(text=None, error=f"timeout: no answer in {timeout:g} s")

    async def _judge_answer(
        self, workspace_id: str, prompt: Any, text: str, evaluator: EvaluatorDefinition
    ) -> dict[str, Any]:
        judge = evaluator.judge
        request = JudgeRequest(
            workspace_id=workspace_id,
            model=judge.model,
            messages=build_messages(prompt, text, evaluator.criteria),
            schema=response_schema(evaluator.criteria),
            temperature=judge.temperature,
            timeout_s=judge.timeout_s,
        )
        judged: dict[str, Any] = {"judge_trace_id": None, "judge_cost_usd": None}
        try:
            async with asyncio.timeout(judge.timeout_s + 1.0):
                answer = await self._judge.judge(request)
        except TimeoutError:
            judged["judge_error"] = f"timeout: no answer in {judge.timeout_s:g} s"
            return judged
        except JudgeCallFailed as error:
            judged["judge_trace_id"] = error.trace_id
            judged["judge_error"] = f"call: {error}"[:MAX_ERROR]
            return judged
        judged["judge_trace_id"] = answer.trace_id
        judged["judge_cost_usd"] = None if answer.cost_usd is None else str(answer.cost_usd)
        if answer.refused:
            judged["judge_error"] = "refusal: the judge declined to score"
            return judged
        try:
            verdict = parse_verdict(answer.text, evaluator.criteria)
        except VerdictError as error:
            judged["judge_error"] = str(error)[:MAX_ERROR]
            return judged
        judged["scores"] = verdict.scores
        judged["score"] = verdict.score
        judged["rationale"] = verdict.rationale[:1000]
        judged["flags"] = verdict.flags
        return judged
