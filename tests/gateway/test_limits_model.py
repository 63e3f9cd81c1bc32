"""Budgets, workspace limits and guardrail names: parsing from JSON and text, exact money, clear
refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.keys.limits import (
    NO_LIMITS,
    BudgetLimit,
    InvalidField,
    WorkspaceLimits,
    micros_to_usd,
    parse_budgets,
    parse_count,
    parse_guardrail_names,
    usd_to_micros,
)


def test_a_budget_round_trips_through_json_exactly() -> None:
    budget = BudgetLimit.from_json({"limit_usd": "10.00", "window": "monthly", "soft_percent": 80})
    assert budget == BudgetLimit(limit_micros=10_000_000, window="monthly", soft_percent=80.0)
    assert budget.limit_usd == Decimal("10")
    assert budget.soft_micros == 8_000_000
    assert budget.to_json() == {"limit_usd": "10.00", "window": "monthly", "soft_percent": 80}
    assert BudgetLimit.from_json(budget.to_json()) == budget


@pytest.mark.parametrize(
    ("given", "micros", "text"),
    [
        ("0.000001", 1, "0.000001"),
        ("12.5", 12_500_000, "12.50"),
        ("$3", 3_000_000, "3.00"),
        (7, 7_000_000, "7.00"),
        (0.1, 100_000, "0.10"),
        ("1000000000", 1_000_000_000_000_000, "1000000000.00"),
    ],
)
def test_amounts_become_whole_micro_dollars(given: Any, micros: int, text: str) -> None:
    assert usd_to_micros(given, "limit_usd") == micros
    assert micros_to_usd(micros) == text


def test_a_budget_without_a_soft_limit() -> None:
    budget = BudgetLimit.from_json({"limit_usd": "0.5", "window": "total"})
    assert budget.soft_percent is None and budget.soft_micros is None
    assert budget.to_json() == {"limit_usd": "0.50", "window": "total"}
    assert budget.describe() == "$0.50/total"


@pytest.mark.parametrize(
    ("document", "param", "fragment"),
    [
        ({"window": "daily"}, "b.limit_usd", "required"),
        ({"limit_usd": "1"}, "b.window", "required"),
        ({"limit_usd": "1", "window": "yearly"}, "b.window", "daily, weekly, monthly, total"),
        ({"limit_usd": "0", "window": "daily"}, "b.limit_usd", "positive"),
        ({"limit_usd": "-2", "window": "daily"}, "b.limit_usd", "positive"),
        ({"limit_usd": "ten", "window": "daily"}, "b.limit_usd", "not an amount"),
        ({"limit_usd": "NaN", "window": "daily"}, "b.limit_usd", "positive"),
        ({"limit_usd": "0.0000001", "window": "daily"}, "b.limit_usd", "6 decimal places"),
        ({"limit_usd": "2000000000", "window": "daily"}, "b.limit_usd", "at most"),
        ({"limit_usd": True, "window": "daily"}, "b.limit_usd", "US dollars"),
        ({"limit_usd": "1", "window": "daily", "soft_percent": 100}, "b.soft_percent", "below"),
        ({"limit_usd": "1", "window": "daily", "soft_percent": 0}, "b.soft_percent", "above 0"),
        ({"limit_usd": "1", "window": "daily", "soft_percent": "80"}, "b.soft_percent", "80"),
        ({"limit_usd": "1", "window": "daily", "limit": 2}, "b.limit", "unknown field"),
        (["1", "daily"], "b", "expected an object"),
    ],
)
def test_a_bad_budget_names_its_field(document: Any, param: str, fragment: str) -> None:
    with pytest.raises(InvalidField) as caught:
        BudgetLimit.from_json(document, "b")
    assert caught.value.param == param
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{param}: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.00/monthly", BudgetLimit(10_000_000, "monthly")),
        ("$5/daily@80", BudgetLimit(5_000_000, "daily", 80.0)),
        ("0.25/weekly@12.5%", BudgetLimit(250_000, "weekly", 12.5)),
        (" 1/TOTAL ", BudgetLimit(1_000_000, "total")),
    ],
)
def test_the_command_line_form(text: str, expected: BudgetLimit) -> None:
    assert BudgetLimit.from_text(text, "--budget") == expected


@pytest.mark.parametrize("text", ["10", "10/yearly", "x/daily", "5/daily@150", "5/daily@x", ""])
def test_a_bad_command_line_budget_is_refused(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        BudgetLimit.from_text(text, "--budget")
    assert caught.value.param.startswith("--budget")


def test_budgets_are_one_per_window() -> None:
    budgets = parse_budgets(
        [{"limit_usd": "1", "window": "daily"}, {"limit_usd": "20", "window": "monthly"}]
    )
    assert [b.window for b in budgets] == ["daily", "monthly"]
    assert parse_budgets(None) == ()
    with pytest.raises(InvalidField) as caught:
        parse_budgets(
            [{"limit_usd": "1", "window": "daily"}, {"limit_usd": "2", "window": "daily"}]
        )
    assert caught.value.param == "budgets[1].window"
    with pytest.raises(InvalidField) as caught:
        parse_budgets({"limit_usd": "1", "window": "daily"})
    assert caught.value.param == "budgets"


@pytest.mark.parametrize("value", [0, -1, 1.5, "5", True, 2**31])
def test_counts_are_positive_whole_numbers(value: Any) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_count(value, "rpm_limit")
    assert caught.value.param == "rpm_limit"


def test_workspace_limits_from_settings() -> None:
    settings = {
        "budgets": [{"limit_usd": "100", "window": "monthly", "soft_percent": 90}],
        "rpm_limit": 600,
        "tpm_limit": None,
        "max_parallel": 8,
        "guardrails": ["pii", "injection"],
        "something_else": "kept for its own reader",
    }
    limits = WorkspaceLimits.from_settings(settings)
    assert limits == WorkspaceLimits(
        budgets=(BudgetLimit(100_000_000, "monthly", 90.0),),
        rpm_limit=600,
        max_parallel=8,
        guardrails=("pii", "injection"),
    )
    assert not limits.unlimited
    assert limits.to_settings() == {
        "budgets": [{"limit_usd": "100.00", "window": "monthly", "soft_percent": 90}],
        "rpm_limit": 600,
        "tpm_limit": None,
        "max_parallel": 8,
        "guardrails": ["pii", "injection"],
    }
    assert WorkspaceLimits.from_settings(limits.to_settings()) == limits
    assert WorkspaceLimits.from_settings({}) == NO_LIMITS
    assert NO_LIMITS.unlimited


def test_bad_workspace_settings_name_the_path() -> None:
    with pytest.raises(InvalidField) as caught:
        WorkspaceLimits.from_settings({"budgets": [{"limit_usd": "1", "window": "hourly"}]})
    assert caught.value.param == "settings.budgets[0].window"
    with pytest.raises(InvalidField) as caught:
        WorkspaceLimits.from_settings({"max_parallel": 0})
    assert caught.value.param == "settings.max_parallel"
    with pytest.raises(InvalidField) as caught:
        WorkspaceLimits.from_settings({"guardrails": ["pii", "no spaces"]})
    assert caught.value.param == "settings.guardrails[1]"


def test_guardrails_alone_are_no_limit() -> None:
    limits = WorkspaceLimits.from_settings({"guardrails": ["pii"]})
    assert limits.guardrails == ("pii",)
    assert limits.unlimited


# --- guardrail names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["pii"],
        ["pii", "injection", "deny.list-v2", "Custom_1"],
        ["a"],
        ["9" + "x" * 127],
        [f"g{i}" for i in range(32)],
    ],
)
def test_guardrail_names_are_kept_in_order(names: list[str]) -> None:
    assert parse_guardrail_names(names) == tuple(names)
    assert parse_guardrail_names(tuple(names)) == tuple(names)


def test_no_guardrails() -> None:
    assert parse_guardrail_names(None) == ()
    assert parse_guardrail_names([]) == ()


@pytest.mark.parametrize(
    ("value", "param", "fragment"),
    [
        ("pii", "guardrails", "list of guardrail names"),
        ({"pii": True}, "guardrails", "list of guardrail names"),
        ([f"g{i}" for i in range(33)], "guardrails", "at most 32"),
        (["pii", ""], "guardrails[1]", "guardrail name"),
        (["pii", "injection", "has space"], "guardrails[2]", "'has space'"),
        (["-leading"], "guardrails[0]", "starting with a letter or digit"),
        ([".hidden"], "guardrails[0]", "guardrail name"),
        (["x" * 129], "guardrails[0]", "1-128"),
        (["pii\n"], "guardrails[0]", "guardrail name"),
        (["caf\u00e9"], "guardrails[0]", "guardrail name"),
        (["a/b"], "guardrails[0]", "guardrail name"),
        (["pii", 3], "guardrails[1]", "got 3"),
        (["pii", None], "guardrails[1]", "got null"),
        (["pii", "injection", "pii"], "guardrails[2]", "'pii' is already in the list"),
    ],
)
def test_a_bad_guardrail_list_names_its_field(value: Any, param: str, fragment: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_guardrail_names(value)
    assert caught.value.param == param
    assert str(caught.value).startswith(f"{param}: ")
    assert fragment in str(caught.value)


def test_the_caller_chooses_the_path() -> None:
    with pytest.raises(InvalidField) as caught:
        parse_guardrail_names(["ok", "not ok"], "--guardrails")
    assert str(caught.value).startswith("--guardrails[1]: ")
