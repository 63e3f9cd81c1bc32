"""Prometheus series of the evaluations: scores by evaluator and criterion, evaluations ended
by status. Label values stay bounded: evaluator names are cut and capped, criteria are the
evaluator's (at most a dozen each)."""

from __future__ import annotations

import threading
from typing import Final

from prometheus_client import Counter, Histogram

MAX_EVALUATOR_LABELS: Final = 100
OTHER: Final = "other"

eval_score = Histogram(
    "steerway_eval_score",
    "Scores 0-100 given by judge models, by evaluator and criterion.",
    ["evaluator", "criterion"],
    buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
)
evaluations_total = Counter(
    "steerway_evaluations_total",
    "Evaluations ended, by evaluator and status (ok, failed, no_content, over_cap).",
    ["evaluator", "status"],
)

_seen: set[str] = set()
_lock = threading.Lock()


def evaluator_label(name: str) -> str:
    """The name (cut to 64 characters) for the first `MAX_EVALUATOR_LABELS` names seen, then
    `other`."""
    label = name[:64]
    with _lock:
        if label in _seen:
            return label
        if len(_seen) >= MAX_EVALUATOR_LABELS:
            return OTHER
        _seen.add(label)
        return label


def observe(evaluator: str, status: str, scores: dict[str, float] | None = None) -> None:
    label = evaluator_label(evaluator)
    evaluations_total.labels(label, status).inc()
    for criterion, score in (scores or {}).items():
        eval_score.labels(label, criterion).observe(score)
