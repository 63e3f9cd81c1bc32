"""What the Quality page and `/admin/api/quality/...` read from a URL besides the range: which
evaluator, judged model and criterion to look at, how to split the scores over time, and the
two sides of an A/B comparison.

    evaluator=helpfulness   model=gpt-4o   criterion=accuracy   by=model|evaluator
    compare=model&a=gpt-4o&b=gpt-4o-mini     two models
    rank=score|cost_per_point                 how the models are ranked
    compare=tag&a=prompt-v1&b=prompt-v2      two tag values (a system prompt's version, say)
    compare=rule&a=cheap-route               a rule's traces against the rest (b: a second rule)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from admin_ui.openapi import Query
from telemetry.evaluation.scores import InvalidScoreQuery, Variant, sides_of

MAX_VALUE_LENGTH: Final = 256
BY_CHOICES: Final = ("model", "evaluator")
COMPARE_CHOICES: Final = ("model", "tag", "rule")
NAMES: Final = ("evaluator", "model", "criterion", "by", "rank", "compare", "a", "b")
RANK_CHOICES: Final = ("score", "cost_per_point")


@dataclass(frozen=True, slots=True)
class QualityFilters:
    evaluator: str | None = None
    model: str | None = None
    criterion: str | None = None
    by: Literal["model", "evaluator"] = "model"
    rank: str = "score"
    """Models ranked by `score` (best first) or `cost_per_point` (cheapest first)."""
    compare: str | None = None
    a: str | None = None
    b: str | None = None

    def sides(self) -> tuple[Variant, Variant] | None:
        """The comparison asked for, None when the URL asks for none."""
        if self.compare is None or not self.a:
            return None
        return sides_of(self.compare, self.a, self.b)


def _value(values: dict[str, str], name: str) -> str | None:
    raw = values.get(name, "").strip()
    if not raw:
        return None
    if len(raw) > MAX_VALUE_LENGTH or any(ord(c) < 32 for c in raw):
        raise InvalidScoreQuery(name, f"at most {MAX_VALUE_LENGTH} printable characters")
    return raw


def read_quality_filters(parameters: Sequence[tuple[str, str]]) -> QualityFilters:
    """The filters of a URL's parameters (the first of each); `InvalidScoreQuery` names a bad
    one."""
    values: dict[str, str] = {}
    for name, value in parameters:
        if name in NAMES:
            values.setdefault(name, value)
    by = _value(values, "by") or "model"
    if by not in BY_CHOICES:
        raise InvalidScoreQuery("by", "by is model or evaluator")
    rank = _value(values, "rank") or "score"
    if rank not in RANK_CHOICES:
        raise InvalidScoreQuery("rank", "rank is score or cost_per_point")
    compare = _value(values, "compare")
    if compare is not None and compare not in COMPARE_CHOICES:
        raise InvalidScoreQuery("compare", "compare is model, tag or rule")
    found = QualityFilters(
        evaluator=_value(values, "evaluator"),
        model=_value(values, "model"),
        criterion=_value(values, "criterion"),
        by="evaluator" if by == "evaluator" else "model",
        rank=rank,
        compare=compare,
        a=_value(values, "a"),
        b=_value(values, "b"),
    )
    found.sides()  # a comparison missing its second side is refused here
    return found


_TEXT = {"type": "string", "maxLength": MAX_VALUE_LENGTH}
RANGE_QUERY: Final = (
    Query("last", "A preset range: 15m, 1h, 6h, 24h, 7d, 30d (default 24h).", {"type": "string"}),
    Query("from", "The range's start, ISO 8601 UTC (with `to`).", {"type": "string"}),
    Query("to", "The range's end, ISO 8601 UTC (with `from`).", {"type": "string"}),
    Query("workspace", "One workspace (an operator's choice; others see theirs).", _TEXT),
)
FILTER_QUERY: Final = (
    Query("evaluator", "Only this evaluator's scores (its name).", _TEXT),
    Query("criterion", "One criterion's score instead of each evaluation's mean.", _TEXT),
)
