"""Picking interactions for evaluation as the recorder writes them, off the request path.

The batch writer asks `EvaluationPicker.pick` which of the batch's interactions the enabled
evaluators want: a chat interaction that answered (`ok`), of a proxy trace (never a judge's own
call), whose trace passes the evaluator's condition (the rules' condition language over the
trace's recorded features, as `rules.replay` rebuilds them; the compiler is injected) and whose trace id falls inside the
evaluator's sampling rate (cache hits are left out: their answer was made once). The draw hashes (evaluator, trace), so the same batch picks the same
interactions however often it is written (a retry, a spill file replayed).

The list of evaluators is read from the table at most every `refresh_interval` seconds, by the
writer task, never per request. Picked bundles are marked `for_evaluation`, so trace sampling
keeps their content.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.store import load_evaluators
from telemetry.records import InteractionRecord, TraceBundle

logger = logging.getLogger("steerway.evaluation.picking")

DEFAULT_REFRESH_INTERVAL = 5.0

RecordedTest = Callable[[Mapping[str, Any]], bool]
"""A condition's test of a trace as recorded (see `recorded_row`)."""
ConditionCompiler = Callable[[Any], RecordedTest]
"""Compiles a condition in the rules' language (`rules.recorded.recorded_test`; injected, as
telemetry does not import the rules); raises ValueError for one it cannot compile."""
_SHARE_SPAN = float(1 << 64)


def share(evaluator_id: str, trace_id: str) -> float:
    """Where (evaluator, trace) falls in [0, 1): picked when below the sampling rate."""
    digest = hashlib.blake2b(f"{evaluator_id}:{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SHARE_SPAN


@dataclass(frozen=True, slots=True)
class PickingEvaluator:
    evaluator_id: str
    workspace_id: str
    name: str
    judge_model: str
    sampling_rate: float
    matches: RecordedTest | None
    """None: every request (no condition)."""


@dataclass(frozen=True, slots=True)
class Pick:
    evaluator: PickingEvaluator
    trace_id: str
    interaction: InteractionRecord


def judgeable(interaction: InteractionRecord) -> bool:
    """A chat a provider answered for a client. A cache hit repeats an answer already judged
    (or passed over) when it was first made, so it is not judged again."""
    return (
        interaction.operation == "chat"
        and interaction.status == "ok"
        and not interaction.cache_hit
        and interaction.purpose == "request"
    )


def has_content(interaction: InteractionRecord) -> bool:
    return interaction.prompt is not None and interaction.response is not None


class EvaluationPicker:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        compile_condition: ConditionCompiler,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self._engine = engine
        self._compile = compile_condition
        self._refresh_interval = refresh_interval
        self._evaluators: list[PickingEvaluator] = []
        self._refreshed_at = float("-inf")
        self._failing = False

    @property
    def evaluators(self) -> list[PickingEvaluator]:
        return self._evaluators

    async def refresh_if_due(self) -> None:
        if time.monotonic() - self._refreshed_at < self._refresh_interval:
            return
        await self.refresh()

    async def refresh(self) -> None:
        """Read the enabled evaluators; on failure the previous list stays in use."""
        self._refreshed_at = time.monotonic()
        try:
            found = await load_evaluators(self._engine, enabled_only=True)
        except Exception as error:
            if not self._failing:
                logger.warning(
                    "evaluation: could not read the evaluators (%s); picking with the last list",
                    type(error).__name__,
                )
            self._failing = True
            return
        self._failing = False
        picking: list[PickingEvaluator] = []
        for evaluator in found:
            condition = evaluator.definition.condition
            try:
                matches = self._compile(condition) if condition else None
            except ValueError:
                continue
            if evaluator.definition.sampling_rate <= 0:
                continue
            picking.append(
                PickingEvaluator(
                    evaluator_id=evaluator.id,
                    workspace_id=evaluator.workspace_id,
                    name=evaluator.name,
                    judge_model=evaluator.definition.judge.model,
                    sampling_rate=evaluator.definition.sampling_rate,
                    matches=matches,
                )
            )
        self._evaluators = picking

    def pick(self, bundles: Sequence[TraceBundle]) -> list[Pick]:
        if not self._evaluators:
            return []
        picks: list[Pick] = []
        for bundle in bundles:
            trace = bundle.trace
            if trace.source != "proxy":
                continue
            candidates = [i for i in bundle.interactions if judgeable(i)]
            if not candidates:
                continue
            for evaluator in self._evaluators:
                if evaluator.workspace_id != trace.workspace_id:
                    continue
                if share(evaluator.evaluator_id, trace.trace_id) >= evaluator.sampling_rate:
                    continue
                if evaluator.matches is not None and not evaluator.matches(
                    recorded_row(bundle, candidates[-1])
                ):
                    continue
                picks.extend(Pick(evaluator, trace.trace_id, i) for i in candidates)
        return picks

    def mark(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        """The bundles, those with a picked interaction marked `for_evaluation`."""
        picked = {pick.trace_id for pick in self.pick(bundles)}
        if not picked:
            return list(bundles)
        return [
            msgspec.structs.replace(b, for_evaluation=True)
            if b.trace.trace_id in picked and not b.for_evaluation
            else b
            for b in bundles
        ]


def recorded_row(bundle: TraceBundle, interaction: InteractionRecord) -> dict[str, Any]:
    """The trace as its row records it, the way a condition over history reads it."""
    trace = bundle.trace
    return {
        "features": trace.features,
        "requested_model": trace.requested_model,
        "end_user": trace.end_user,
        "route": trace.route,
        "prompt": interaction.prompt,
        "tags": trace.tags,
        "metadata": trace.metadata,
        "api_key_id": trace.api_key_id,
        "workspace_id": trace.workspace_id,
        "started_at": trace.started_at,
    }
