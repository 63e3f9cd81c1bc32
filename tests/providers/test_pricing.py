from decimal import Decimal

import pytest

from providers.pricing import ModelPrice, PriceTable


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.shipped()


def test_cost_is_exact_decimal(table: PriceTable) -> None:
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    cost = table.cost("gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
    assert isinstance(cost, Decimal)
    assert cost == Decimal("0.00045")


def test_cost_of_many_calls_adds_up_without_float_drift(table: PriceTable) -> None:
    one = table.cost("gpt-4o-mini", 1, 1)
    assert one is not None
    assert sum([one] * 1_000_000, Decimal(0)) == Decimal("0.75")


def test_cached_tokens_are_billed_at_the_cached_price(table: PriceTable) -> None:
    # 800 fresh * 0.15 + 200 cached * 0.075 + 500 * 0.60 = 435 per million
    cost = table.cost("gpt-4o-mini", prompt_tokens=1000, completion_tokens=500, cached_tokens=200)
    assert cost == Decimal("0.000435")


def test_anthropic_cache_reads_are_the_cached_price(table: PriceTable) -> None:
    price = table.lookup("claude-sonnet-4-5")
    assert price is not None
    assert price.cached_input_per_million == Decimal("0.30")
    assert table.cost("claude-sonnet-4-5", 1_000_000, 0, 1_000_000) == Decimal("0.30")


def test_cached_tokens_without_a_cached_price_cost_the_input_price() -> None:
    price = ModelPrice(input_per_million=Decimal("2"), output_per_million=Decimal("8"))
    assert price.cost(1_000_000, 0, cached_tokens=400_000) == Decimal("2")


def test_cached_tokens_beyond_the_prompt_are_not_billed_twice() -> None:
    price = ModelPrice(Decimal("2"), Decimal("8"), Decimal("1"))
    assert price.cost(100, 0, cached_tokens=500) == Decimal("0.0001")


def test_embeddings_cost_only_input(table: PriceTable) -> None:
    assert table.cost("text-embedding-3-small", 1_000_000, 0) == Decimal("0.02")


def test_zero_tokens_of_a_known_model_cost_zero_not_none(table: PriceTable) -> None:
    assert table.cost("gpt-4o", 0, 0) == 0


def test_unknown_model_has_no_price_and_no_cost(table: PriceTable) -> None:
    assert table.lookup("my-private-finetune") is None
    assert table.cost("my-private-finetune", 10, 10) is None


@pytest.mark.parametrize(
    ("prompt", "completion", "cached"),
    [(None, 10, None), (10, None, None), (None, None, None), (-1, 10, None), (10, 10, -5)],
)
def test_unknown_or_invalid_token_counts_give_no_cost(
    table: PriceTable, prompt: int | None, completion: int | None, cached: int | None
) -> None:
    assert table.cost("gpt-4o", prompt, completion, cached) is None


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("openai/gpt-4o", "gpt-4o"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ],
)
def test_snapshot_and_prefixed_names_fall_back_to_the_base_model(
    table: PriceTable, name: str, base: str
) -> None:
    assert name not in table.models()
    assert table.lookup(name) == table.lookup(base) is not None


def test_an_explicit_snapshot_price_wins_over_the_base_model(table: PriceTable) -> None:
    old = table.lookup("gpt-4o-2024-05-13")
    assert old is not None and table.lookup("gpt-4o") is not None
    assert old.input_per_million == Decimal("5.00")
    assert old != table.lookup("gpt-4o")


def test_repeated_lookups_return_the_same_answer(table: PriceTable) -> None:
    first = table.lookup("gpt-4.1-mini-2025-04-14")
    assert first is not None
    assert table.lookup("gpt-4.1-mini-2025-04-14") is first
    assert table.lookup("still-unknown") is None
    assert table.lookup("still-unknown") is None


def test_overrides_replace_and_add_prices_in_a_new_table(table: PriceTable) -> None:
    cheap = ModelPrice(Decimal("0.01"), Decimal("0.02"))
    custom = table.with_overrides({"gpt-4o": cheap, "my-finetune": cheap})
    assert custom.lookup("gpt-4o") == cheap
    assert custom.lookup("gpt-4o-2024-11-20") == cheap
    assert custom.cost("my-finetune", 1_000_000, 1_000_000) == Decimal("0.03")
    assert table.lookup("gpt-4o") != cheap
    assert table.lookup("my-finetune") is None


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3",
        "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "text-embedding-3-small",
        "text-embedding-3-large", "text-embedding-ada-002", "claude-opus-4-1", "claude-opus-4",
        "claude-sonnet-4", "claude-haiku-4-5", "claude-3-7-sonnet", "claude-3-5-haiku",
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash",
        "gemini-embedding-001", "mock-gpt", "mock-gpt-large", "mock-embedding",
    ],
)  # fmt: skip
def test_shipped_table_prices_current_models_sensibly(table: PriceTable, model: str) -> None:
    price = table.lookup(model)
    assert price is not None
    assert price.input_per_million > 0
    assert price.output_per_million >= 0
    if price.cached_input_per_million is not None:
        assert 0 < price.cached_input_per_million < price.input_per_million


def test_shipped_table_says_where_its_prices_come_from(table: PriceTable) -> None:
    assert "pricing" in table.source
    assert table.as_of[:2] == "20"
