"""HTML form fields to the admin API's JSON values, and the API's errors back to form fields.

A console form turns what was typed into the body the JSON API takes and hands it to the same
operation, so the checks and their messages are the API's. The conversion here only reads text:
a number that reads as a whole number becomes one, anything else is passed on as typed so the
API refuses it in its own words. A refusal's `param` (`budgets[1].limit_usd`,
`settings.rpm_limit`) names the form field the message is shown next to.

Budgets are entered one row per window (a window holds at most one budget): the fields
`budget_<window>_limit_usd` and `budget_<window>_soft_percent`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import FormMultiDict

from gateway.errors import GatewayError
from gateway.keys.limits import LIMIT_FIELDS, WINDOWS, BudgetLimit, micros_to_usd

FormValues = dict[str, Any]
"""A form's values as typed: text for text fields, lists of text for checkbox groups."""

_WHOLE_NUMBER = re.compile(r"^[+-]?\d{1,30}$")
_PARAM_HEAD = re.compile(r"^[A-Za-z_]+")
_BUDGET_INDEX = re.compile(r"^budgets\[(\d+)\]")
_LIST_SEPARATOR = re.compile(r"[,\n]")


def budget_fields(window: str) -> tuple[str, str]:
    return f"budget_{window}_limit_usd", f"budget_{window}_soft_percent"


BUDGET_FIELDS: tuple[str, ...] = tuple(name for w in WINDOWS for name in budget_fields(w))
LIMIT_TEXT_FIELDS: tuple[str, ...] = (*LIMIT_FIELDS, *BUDGET_FIELDS)


@dataclass
class FormState:
    """What a form shows: the values to fill in, and problems by field (`""`: the whole form)."""

    values: FormValues
    errors: dict[str, str] = field(default_factory=dict)


def read_form(
    form: FormMultiDict, text_fields: Sequence[str], list_fields: Sequence[str] = ()
) -> FormValues:
    values: FormValues = {name: str(form.get(name, "")) for name in text_fields}
    for name in list_fields:
        values[name] = [str(item) for item in form.getall(name, [])]
    return values


# --- text to JSON values -------------------------------------------------------------------------


def count(text: str) -> Any:
    """A limit as typed: None when empty, an int when it reads as a whole number."""
    stripped = text.strip()
    if not stripped:
        return None
    return int(stripped) if _WHOLE_NUMBER.match(stripped) else stripped


def percent(text: str) -> Any:
    stripped = text.strip().removesuffix("%").strip()
    if not stripped:
        return None
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return int(number) if number.is_integer() else number


def text_list(text: str) -> list[str]:
    """Items separated by commas or new lines, blanks dropped."""
    return [item.strip() for item in _LIST_SEPARATOR.split(text) if item.strip()]


def budgets_from(values: FormValues) -> tuple[list[dict[str, Any]], list[str]]:
    """The budgets typed in, as JSON, and the window of each (to place an error on its row).
    A row left empty is no budget."""
    budgets: list[dict[str, Any]] = []
    windows: list[str] = []
    for window in WINDOWS:
        limit_name, soft_name = budget_fields(window)
        limit, soft = values.get(limit_name, "").strip(), values.get(soft_name, "").strip()
        if not limit and not soft:
            continue
        budget: dict[str, Any] = {"window": window}
        if limit:
            budget["limit_usd"] = limit
        if soft:
            budget["soft_percent"] = percent(soft)
        budgets.append(budget)
        windows.append(window)
    return budgets, windows


def limits_from(values: FormValues) -> dict[str, Any]:
    """rpm_limit, tpm_limit, max_parallel and budgets as the API takes them (None: no limit)."""
    limits: dict[str, Any] = {name: count(values.get(name, "")) for name in LIMIT_FIELDS}
    limits["budgets"] = budgets_from(values)[0]
    return limits


# --- stored values to text -----------------------------------------------------------------------


def limit_values(
    rpm_limit: int | None,
    tpm_limit: int | None,
    max_parallel: int | None,
    budgets: Sequence[BudgetLimit],
) -> FormValues:
    values: FormValues = {
        "rpm_limit": "" if rpm_limit is None else str(rpm_limit),
        "tpm_limit": "" if tpm_limit is None else str(tpm_limit),
        "max_parallel": "" if max_parallel is None else str(max_parallel),
    }
    for name in BUDGET_FIELDS:
        values[name] = ""
    for budget in budgets:
        limit_name, soft_name = budget_fields(budget.window)
        values[limit_name] = micros_to_usd(budget.limit_micros)
        soft = budget.to_json().get("soft_percent")
        values[soft_name] = "" if soft is None else str(soft)
    return values


def changed(submitted: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an update body whose value differs from what is stored: an edit form sends
    only what was changed, so a field nobody touched is never rewritten."""
    return {name: value for name, value in submitted.items() if current.get(name) != value}


# --- API errors to fields -----------------------------------------------------------------------


def field_of(param: str | None, budget_windows: Sequence[str] = ()) -> str:
    """The form field an API error's `param` is about; "" for the form as a whole."""
    if not param:
        return ""
    path = param.removeprefix("settings.")
    index = _BUDGET_INDEX.match(path)
    if index is not None:
        position = int(index.group(1))
        return f"budget_{budget_windows[position]}" if position < len(budget_windows) else ""
    head = _PARAM_HEAD.match(path)
    return "" if head is None else head.group(0)


def problem_of(error: GatewayError) -> str:
    """The message without the path it starts with (the field it is shown at says that)."""
    message = error.message
    if error.param and message.startswith(f"{error.param}: "):
        message = message[len(error.param) + 2 :]
    return message[:1].upper() + message[1:]


def place_error(
    state: FormState,
    error: GatewayError,
    fields: Sequence[str],
    budget_windows: Sequence[str] = (),
) -> None:
    """Put the API's refusal next to the field it names, or above the form when the form has
    no such field."""
    name = field_of(error.param, budget_windows)
    state.errors[name if name in fields else ""] = problem_of(error)
