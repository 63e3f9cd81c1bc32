"""Running a confirmed comparison, off the request path, in the process that serves the console.

Each recorded request is replayed to both variants at once, and each answer is judged with
the evaluator's criteria against the recorded conversation (the user's request, not the
variant's system prompt, so two system prompts are judged on what the user asked). At most
`concurrency` requests are in flight. After every request the row's results, progress counts
and actual cost (replays and judge calls) are saved, so the console shows progress, and the
status is read again, so a cancelled comparison stops before its next request. Starting a
comparison already running (here or in another process) does nothing.

A running comparison is leased to this runner and the lease renewed every third of its length
while it runs. `resume_abandoned` (every `resume_interval_s`, once across processes under the
comparisons' job lock) takes over the comparisons whose lease ran out, because the process
running them died, and resumes each from the requests without a saved result: the calls
already recorded are not made again (those in flight when the process died are, their results
having never been saved). A runner that finds its lease taken stops without writing more.
Closing the runner hands its comparisons back at once (their lease is released), so a process
that stops is resumed by the next round of another, not after a lease.
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
from telemetry.ids import uuid7_hex
from telemetry.job_lock import job_lock

logger = logging.getLogger("steerway.comparison")

REPLAY_TIMEOUT_S: Final = 60.0
MAX_ERROR: Final = 300
LOCK_KEY: Final = 0x5374_6657_0006
"""The comparisons' takeover round's advisory lock (`telemetry.job_lock`)."""
LOCK_NAME: Final = "comparisons"


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    concurrency: int = 2
    replay_timeout_s: float = REPLAY_TIMEOUT_S
    lease_s: float = 120.0
    resume_interval_s: float = 30.0


class _Progress:
    """The results in the order of the requests, starting from those already saved."""

    def __init__(self, requests: list[dict[str, Any]], found: store.StoredComparison) -> None:
        saved = {r.get("interaction_id"): r for r in found.results}
        self.results: list[dict[str, Any] | None] = [
            saved.get(r["interaction_id"]) for r in requests
        ]
        self.completed = found.completed
        self.failed = found.failed
        self.cost = found.actual_cost_usd or Decimal(0)
        self.lock = asyncio.Lock()

    def to_do(self, requests: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        return [(i, r) for i, r in enumerate(requests) if self.results[i] is None]

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
        self.runner_id = uuid7_hex()
        """This runner's name on the leases it holds."""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._resuming: asyncio.Task[None] | None = None

    def start(self, comparison_id: str) -> None:
        """Run the comparison in the background (nothing when it already runs here)."""
        self._spawn(comparison_id, claimed=False)

    def _spawn(self, comparison_id: str, *, claimed: bool) -> None:
        if comparison_id in self._tasks:
            return
        task = asyncio.create_task(self._run_safely(comparison_id, claimed), name="comparison")
        self._tasks[comparison_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(comparison_id, None))

    def start_resuming(self) -> None:
        """Take over abandoned comparisons now and every `resume_interval_s` until closed."""
        if self._resuming is None:
            self._resuming = asyncio.create_task(self._resume_forever(), name="comparison-resume")

    async def _resume_forever(self) -> None:
        while True:
            try:
                await self.resume_abandoned()
            except Exception as error:
                logger.warning("comparisons not resumed (%s)", type(error).__name__)
            await asyncio.sleep(self._settings.resume_interval_s)

    async def resume_abandoned(self) -> list[str]:
        """One round: lease the comparisons whose runner died to this runner and resume them;
        their ids (none when another process holds the round)."""
        async with job_lock(self._engine, key=LOCK_KEY, name=LOCK_NAME) as locked:
            if not locked:
                return []
            taken = await store.take_over_expired(
                self._engine, runner_id=self.runner_id, lease_s=self._settings.lease_s
            )
        for comparison_id in taken:
            logger.info("resuming comparison %s", comparison_id)
            self._spawn(comparison_id, claimed=True)
        return taken

    async def wait(self, comparison_id: str) -> None:
        task = self._tasks.get(comparison_id)
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        """Stop, handing the comparisons running here back for another runner to resume."""
        if self._resuming is not None:
            self._resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resuming
            self._resuming = None
        running = dict(self._tasks)
        for task in running.values():
            task.cancel()
        if running:
            await asyncio.gather(*running.values(), return_exceptions=True)
        for comparison_id in running:
            with contextlib.suppress(Exception):
                await store.release_lease(self._engine, comparison_id, runner_id=self.runner_id)

    async def _run_safely(self, comparison_id: str, claimed: bool) -> None:
        try:
            if not claimed and not await store.claim_for_run(
                self._engine,
                comparison_id,
                runner_id=self.runner_id,
                lease_s=self._settings.lease_s,
            ):
                return
            await self.run(comparison_id)
        except Exception as error:
            logger.warning("comparison %s failed (%s)", comparison_id, type(error).__name__)
            with contextlib.suppress(Exception):
                await store.finish_comparison(
                    self._engine,
                    comparison_id,
                    store.FAILED,
                    f"internal: {type(error).__name__}",
                    runner_id=self.runner_id,
                )

    async def _keep_lease(self, comparison_id: str, lost: asyncio.Event) -> None:
        while not lost.is_set():
            await asyncio.sleep(self._settings.lease_s / 3)
            try:
                renewed = await store.renew_lease(
                    self._engine,
                    comparison_id,
                    runner_id=self.runner_id,
                    lease_s=self._settings.lease_s,
                )
            except Exception as error:
                logger.warning("comparison %s: lease not renewed (%s)", comparison_id, error)
                continue
            if not renewed:
                lost.set()

    async def run(self, comparison_id: str) -> None:
        """Run a comparison already `running` under this runner's lease to its end, from the
        requests that have no saved result."""
        found = await store.get_comparison(self._engine, comparison_id, workspace_ids=None)
        if found is None:
            return
        definition = found.definition
        evaluator = parse_definition(definition["evaluator"]["definition"], stored=True)
        requests: list[dict[str, Any]] = definition["requests"]
        progress = _Progress(requests, found)
        slots = asyncio.Semaphore(max(1, self._settings.concurrency))
        stopped = asyncio.Event()  # cancelled by a user, or the lease lost to another runner

        async def one(index: int, recorded: dict[str, Any]) -> None:
            async with slots:
                if stopped.is_set():
                    return
                if await store.read_status(self._engine, comparison_id) != store.RUNNING:
                    stopped.set()
                    return
                result, cost = await self._compare_one(found, evaluator, recorded)
                async with progress.lock:
                    progress.results[index] = result
                    progress.cost += cost
                    if result["ok"]:
                        progress.completed += 1
                    else:
                        progress.failed += 1
                    saved = await store.save_progress(
                        self._engine,
                        comparison_id,
                        runner_id=self.runner_id,
                        results=progress.finished(),
                        completed=progress.completed,
                        failed=progress.failed,
                        actual_cost_usd=progress.cost,
                    )
                    if not saved:
                        stopped.set()

        lease = asyncio.create_task(self._keep_lease(comparison_id, stopped))
        try:
            await asyncio.gather(*(one(i, r) for i, r in progress.to_do(requests)))
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease
        status = store.DONE if progress.completed or not requests else store.FAILED
        error = None if status == store.DONE else "no request could be compared"
        await store.finish_comparison(
            self._engine, comparison_id, status, error, runner_id=self.runner_id
        )

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
