"""The judge's expected tokens and cost, worked out by hand."""

from __future__ import annotations

from decimal import Decimal

from providers.pricing import ModelPrice
from telemetry.evaluation.on_demand_cost import estimate, rubric_tokens, tokens_of

TWO_CRITERIA = {
    "criteria": [
        {"name": "accuracy"},
        {"name": "brevity", "rubric": "x" * 201},  # 201 characters: 51 tokens
    ]
}


def test_characters_become_tokens_rounded_up() -> None:
    assert [tokens_of(n) for n in (0, 1, 4, 5, 400)] == [0, 1, 1, 2, 100]


def test_an_evaluator_adds_its_instructions_and_each_rubric() -> None:
    # instructions 300, a built-in rubric 60, the custom rubric 51
    assert rubric_tokens(TWO_CRITERIA) == 411
    assert rubric_tokens({}) == 300


def test_the_estimate_prices_prompt_and_answer_tokens_at_the_judges_price() -> None:
    price = ModelPrice(Decimal("0.30"), Decimal("2.50"))
    found = estimate([400, 1002], TWO_CRITERIA, price)

    # content 100 + 251 tokens, plus 411 per interaction; answers 60 + 2 x 40 each
    assert found.interactions == 2
    assert found.prompt_tokens == 100 + 251 + 2 * 411 == 1173
    assert found.completion_tokens == 2 * 140 == 280
    expected = (Decimal(1173) * Decimal("0.30") + Decimal(280) * Decimal("2.50")) / 1_000_000
    assert found.cost_usd == expected == Decimal("0.0010519")
    assert Decimal(found.as_json()["cost_usd"]) == expected


def test_an_unknown_price_gives_tokens_without_a_cost() -> None:
    found = estimate([40], {}, None)
    assert (found.prompt_tokens, found.completion_tokens, found.cost_usd) == (310, 100, None)


def test_nothing_to_judge_costs_nothing() -> None:
    found = estimate([], TWO_CRITERIA, ModelPrice(Decimal(1), Decimal(1)))
    assert (found.interactions, found.prompt_tokens, found.cost_usd) == (0, 0, Decimal(0))
