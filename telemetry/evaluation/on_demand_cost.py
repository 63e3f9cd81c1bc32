"""What judging a set of interactions is expected to cost, before anything is queued.

The judge reads each interaction's stored prompt and answer plus its own instructions and the
evaluator's rubrics, and writes a score and a reason per criterion. Tokens are counted the
rough way (about four characters a token) from the stored content's length, which the database
measures, so an estimate of a thousand traces never moves their content. The price is the judge
model's (its deployment's own price, else the price table with the config's `prices`), and a
judge model whose price is unknown gives token counts without a cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from providers.pricing import ModelPrice

CHARS_PER_TOKEN: Final = 4
INSTRUCTION_TOKENS: Final = 300
"""The judge's fixed instructions and the output schema it is asked to follow."""
BUILT_IN_RUBRIC_TOKENS: Final = 60
"""A built-in criterion's rubric (accuracy, helpfulness, ...), which the definition leaves out."""
ANSWER_TOKENS: Final = 60
"""The judge's answer around the scores: the rationale's opening and the flags."""
ANSWER_TOKENS_PER_CRITERION: Final = 40
"""A score and a sentence of reason per criterion."""


def tokens_of(characters: int) -> int:
    """Characters as tokens, rounded up."""
    return -(-max(characters, 0) // CHARS_PER_TOKEN)


def criteria_of(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    criteria = definition.get("criteria")
    if not isinstance(criteria, list):
        return []
    return [item for item in criteria if isinstance(item, Mapping)]


def rubric_tokens(definition: Mapping[str, Any]) -> int:
    """The prompt tokens an evaluator adds to each interaction: instructions and rubrics."""
    total = INSTRUCTION_TOKENS
    for criterion in criteria_of(definition):
        rubric = criterion.get("rubric")
        if isinstance(rubric, str) and rubric:
            total += tokens_of(len(rubric))
        else:
            total += BUILT_IN_RUBRIC_TOKENS
    return total


def answer_tokens(definition: Mapping[str, Any]) -> int:
    """The completion tokens of one judgement."""
    return ANSWER_TOKENS + ANSWER_TOKENS_PER_CRITERION * max(len(criteria_of(definition)), 1)


@dataclass(frozen=True, slots=True)
class JudgeEstimate:
    interactions: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    """None when the judge model's price is unknown."""

    def as_json(self) -> dict[str, Any]:
        return {
            "interactions": self.interactions,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
        }


def estimate(
    content_characters: Sequence[int], definition: Mapping[str, Any], price: ModelPrice | None
) -> JudgeEstimate:
    """The judge's tokens and cost for interactions whose stored prompt and answer hold
    `content_characters` characters each."""
    count = len(content_characters)
    prompt_tokens = sum(tokens_of(chars) for chars in content_characters)
    prompt_tokens += count * rubric_tokens(definition)
    completion_tokens = count * answer_tokens(definition)
    cost = None if price is None else price.cost(prompt_tokens, completion_tokens)
    return JudgeEstimate(count, prompt_tokens, completion_tokens, cost)
