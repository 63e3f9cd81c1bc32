"""Form text to the admin API's values, and the API's error paths to form fields."""

from __future__ import annotations

import pytest
from litestar.datastructures import FormMultiDict

from admin_ui.form_fields import (
    FormState,
    budgets_from,
    changed,
    count,
    field_of,
    limit_values,
    limits_from,
    percent,
    place_error,
    problem_of,
    read_form,
    text_list,
)
from gateway.errors import GatewayError, invalid_request
from gateway.keys.limits import BudgetLimit


@pytest.mark.parametrize(
    ("typed", "value"),
    [("", None), ("  ", None), ("60", 60), (" 7 ", 7), ("-2", -2), ("1.5", "1.5"), ("ten", "ten")],
)
def test_a_limit_is_a_whole_number_when_it_reads_as_one_else_the_text_as_typed(
    typed: str, value: object
) -> None:
    assert count(typed) == value


@pytest.mark.parametrize(
    ("typed", "value"),
    [("", None), ("80", 80), ("80%", 80), ("12.5", 12.5), ("1e400", float("inf")), ("x", "x")],
)
def test_a_percentage_is_a_number_when_it_reads_as_one(typed: str, value: object) -> None:
    assert percent(typed) == value


def test_lists_are_split_on_commas_and_new_lines_without_blanks() -> None:
    assert text_list(" a, b ,\n c,, \n") == ["a", "b", "c"]
    assert text_list("  ") == []


def test_budget_rows_left_empty_are_no_budget_and_each_keeps_its_window() -> None:
    values = {
        "budget_daily_limit_usd": "1.50",
        "budget_daily_soft_percent": "",
        "budget_weekly_limit_usd": "",
        "budget_weekly_soft_percent": "",
        "budget_monthly_limit_usd": "",
        "budget_monthly_soft_percent": "50",
        "budget_total_limit_usd": "100",
        "budget_total_soft_percent": "90",
    }
    budgets, windows = budgets_from(values)
    assert budgets == [
        {"window": "daily", "limit_usd": "1.50"},
        {"window": "monthly", "soft_percent": 50},
        {"window": "total", "limit_usd": "100", "soft_percent": 90},
    ]
    assert windows == ["daily", "monthly", "total"]


def test_stored_limits_read_back_as_the_form_shows_them_and_convert_to_the_same_values() -> None:
    budgets = (
        BudgetLimit(limit_micros=10_000_000, window="monthly", soft_percent=80.0),
        BudgetLimit(limit_micros=500, window="daily", soft_percent=12.5),
    )
    values = limit_values(60, None, 4, budgets)
    assert values["rpm_limit"] == "60" and values["tpm_limit"] == ""
    assert values["budget_monthly_limit_usd"] == "10.00"
    assert values["budget_monthly_soft_percent"] == "80"
    assert values["budget_daily_limit_usd"] == "0.0005"
    assert values["budget_daily_soft_percent"] == "12.5"
    assert limits_from(values) == {
        "rpm_limit": 60,
        "tpm_limit": None,
        "max_parallel": 4,
        "budgets": [
            {"window": "daily", "limit_usd": "0.0005", "soft_percent": 12.5},
            {"window": "monthly", "limit_usd": "10.00", "soft_percent": 80},
        ],
    }


def test_only_changed_fields_are_sent() -> None:
    stored = {"name": "a", "rpm_limit": 60, "budgets": [], "guardrails": ["x"]}
    assert changed({**stored, "rpm_limit": None}, stored) == {"rpm_limit": None}
    assert changed(stored, stored) == {}


def test_checkbox_groups_read_every_ticked_value() -> None:
    form = FormMultiDict([("name", "bot"), ("guardrails", "a"), ("guardrails", "b")])
    assert read_form(form, ("name", "rpm_limit"), ("guardrails", "allowed_models")) == {
        "name": "bot",
        "rpm_limit": "",
        "guardrails": ["a", "b"],
        "allowed_models": [],
    }


@pytest.mark.parametrize(
    ("param", "field"),
    [
        ("rpm_limit", "rpm_limit"),
        ("settings.tpm_limit", "tpm_limit"),
        ("budgets[1].limit_usd", "budget_monthly"),
        ("settings.budgets[0].window", "budget_daily"),
        ("budgets[5].window", ""),
        ("budgets", "budgets"),
        ("allowed_models[3]", "allowed_models"),
        ("settings.guardrails[0]", "guardrails"),
        ("expires_at", "expires_at"),
        (None, ""),
        ("[0]", ""),
    ],
)
def test_an_error_path_names_its_form_field(param: str | None, field: str) -> None:
    assert field_of(param, ["daily", "monthly"]) == field


def test_the_problem_is_shown_without_its_path_and_lands_above_the_form_when_no_field_fits() -> (
    None
):
    error = invalid_request("rpm_limit: expected a positive whole number, got 0.", "rpm_limit")
    assert problem_of(error) == "Expected a positive whole number, got 0."
    state = FormState(values={})
    place_error(state, error, ("rpm_limit",))
    assert state.errors == {"rpm_limit": "Expected a positive whole number, got 0."}
    elsewhere = FormState(values={})
    place_error(elsewhere, GatewayError(404, "No workspace 'x'.", param="workspace"), ("name",))
    assert elsewhere.errors == {"": "No workspace 'x'."}
