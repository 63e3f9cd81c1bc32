"""Reading the judge's answer. Anything but the expected JSON is a `VerdictError`: the worker
counts it as a failed attempt and retries within the evaluator's limit."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from telemetry.evaluation.definition import Criterion

MAX_RATIONALE: Final = 4000
MAX_FLAGS: Final = 16
_FENCE: Final = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_REFUSAL: Final = re.compile(
    r"^\s*(i'?m sorry|i am sorry|i can(no|')t|i cannot|i won'?t|i am unable|i'm unable|"
    r"as an ai)",
    re.IGNORECASE,
)


class VerdictError(ValueError):
    """`kind`: not_json | wrong_shape | out_of_range | refusal."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Verdict:
    scores: dict[str, float]
    rationale: str
    flags: list[str]

    @property
    def score(self) -> float:
        return sum(self.scores.values()) / len(self.scores)


def parse_verdict(text: str | None, criteria: Sequence[Criterion]) -> Verdict:
    if text is None or not text.strip():
        raise VerdictError("refusal", "the judge gave no answer")
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        data = msgspec.json.decode(stripped)
    except msgspec.DecodeError:
        if _REFUSAL.match(stripped):
            raise VerdictError("refusal", "the judge declined to score") from None
        raise VerdictError("not_json", "the judge's answer is not JSON") from None
    if not isinstance(data, dict):
        raise VerdictError("wrong_shape", "the judge's answer is not a JSON object")
    if isinstance(data.get("refusal"), str) and data["refusal"]:
        raise VerdictError("refusal", "the judge declined to score")
    scores = data.get("scores")
    if not isinstance(scores, dict):
        raise VerdictError("wrong_shape", "'scores' is missing or not an object")
    parsed: dict[str, float] = {}
    for criterion in criteria:
        value = scores.get(criterion.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise VerdictError("wrong_shape", f"no number for criterion '{criterion.name}'")
        if not math.isfinite(value) or not 0 <= value <= 100:
            raise VerdictError("out_of_range", f"'{criterion.name}' is not from 0 to 100")
        parsed[criterion.name] = float(value)
    rationale = data.get("rationale", "")
    if not isinstance(rationale, str):
        raise VerdictError("wrong_shape", "'rationale' is not a string")
    flags = data.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise VerdictError("wrong_shape", "'flags' is not a list of strings")
    if "refusal" in flags and not parsed:
        raise VerdictError("refusal", "the judge declined to score")
    unique = list(dict.fromkeys(f.strip().lower()[:40] for f in flags if f.strip()))
    return Verdict(scores=parsed, rationale=rationale[:MAX_RATIONALE], flags=unique[:MAX_FLAGS])
