"""The judges' verdicts on one trace, for the trace page's Scores section: each evaluation of the
trace's interactions with its scores per criterion, mean, flags, rationale and status, and the
judge's own trace to follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.scores import EvaluationRow, trace_evaluations

STATUS_NOTES: Final = {
    "ok": "",
    "failed": "The judge's answer could not be used after every attempt.",
    "no_content": "Not judged: the interaction's prompt and answer were not stored "
    "(telemetry.store_content).",
    "over_cap": "Not judged: the evaluator's daily spending cap was reached.",
}


@dataclass(frozen=True, slots=True)
class ScoreView:
    row: EvaluationRow
    criteria: list[tuple[str, float, str]]
    """(criterion, score 0-100, tone: good | fair | poor)."""
    note: str

    @property
    def mean_tone(self) -> str:
        return tone(self.row.score)

    @property
    def judge_trace_url(self) -> str | None:
        judge = self.row.judge_trace_id
        return f"/admin/traces/{judge}" if judge else None


def tone(score: float | None) -> str:
    """How a score reads at a glance: 70 and above good, 40 to 70 fair, below 40 poor."""
    if score is None:
        return "none"
    if score >= 70:
        return "good"
    return "fair" if score >= 40 else "poor"


def score_view(row: EvaluationRow) -> ScoreView:
    return ScoreView(
        row=row,
        criteria=[(name, value, tone(value)) for name, value in sorted(row.scores.items())],
        note="" if row.status == "ok" else row.error or STATUS_NOTES.get(row.status, ""),
    )


async def trace_scores(engine: AsyncEngine, trace: dict[str, object]) -> list[ScoreView]:
    """The evaluations of a trace the caller may already see (its workspace is the scope)."""
    rows = await trace_evaluations(engine, str(trace["trace_id"]), scope=str(trace["workspace_id"]))
    return [score_view(row) for row in rows]
