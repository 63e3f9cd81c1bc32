"""What a comparison is expected to cost before it runs.

Each variant is asked every request: its prompt tokens are the recorded request's (or its
stored prompt's length at about four characters a token when the provider reported none), plus
the variant's own system prompt; its answer is allowed the recorded answer's completion tokens
(`DEFAULT_ANSWER_TOKENS` when unknown). Each variant's price is its public model's. Then the judge
reads every replayed answer with the original conversation: `on_demand_cost.estimate` over
the prompt's characters plus the answer allowance's, priced at the judge model's price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from providers.pricing import ModelPrice
from telemetry.comparison.requests import RecordedRequest
from telemetry.evaluation.on_demand_cost import CHARS_PER_TOKEN, JudgeEstimate, tokens_of
from telemetry.evaluation.on_demand_cost import estimate as judge_cost

DEFAULT_ANSWER_TOKENS: Final = 256


@dataclass(frozen=True, slots=True)
class VariantEstimate:
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
        }


def prompt_tokens_of(request: RecordedRequest) -> int:
    if request.prompt_tokens is not None:
        return request.prompt_tokens
    return tokens_of(request.prompt_characters)


def answer_allowance(request: RecordedRequest) -> int:
    if request.completion_tokens is not None and request.completion_tokens > 0:
        return request.completion_tokens
    return DEFAULT_ANSWER_TOKENS


def variant_estimate(
    requests: Sequence[RecordedRequest],
    model: str,
    system_prompt: str | None,
    price: ModelPrice | None,
) -> VariantEstimate:
    extra = tokens_of(len(system_prompt)) if system_prompt else 0
    prompt = sum(prompt_tokens_of(r) + extra for r in requests)
    completion = sum(answer_allowance(r) for r in requests)
    cost = None if price is None else price.cost(prompt, completion)
    return VariantEstimate(model, prompt, completion, cost)


def judging_estimate(
    requests: Sequence[RecordedRequest],
    evaluator_definition: Mapping[str, Any],
    judge_price: ModelPrice | None,
) -> JudgeEstimate:
    """Both variants' answers judged: two judgements a request."""
    characters = [r.prompt_characters + CHARS_PER_TOKEN * answer_allowance(r) for r in requests] * 2
    return judge_cost(characters, evaluator_definition, judge_price)


def total_cost(parts: Sequence[Decimal | None]) -> Decimal | None:
    """The sum, or None when any part's price is unknown."""
    if any(part is None for part in parts):
        return None
    return sum((part for part in parts if part is not None), Decimal(0))
