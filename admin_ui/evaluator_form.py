"""The evaluator form's text fields to the definition the API takes, a stored evaluator back to
text, and a definition's problem to the field it belongs to."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from admin_ui.form_fields import FormValues
from telemetry.evaluation.criteria import BUILT_IN
from telemetry.evaluation.definition import DEFAULT_TIMEOUT_S, DefinitionError
from telemetry.evaluation.store import Evaluator

TEXT_FIELDS: Final = (
    "name",
    "workspace",
    "enabled",
    "condition",
    "sampling_rate",
    "judge_model",
    "temperature",
    "timeout_s",
    "custom_criteria",
    "daily_cap_usd",
    "max_attempts",
)
LIST_FIELDS: Final = ("criteria",)
_FIELD_OF: Final = {
    "judge": "judge_model",
    "judge.model": "judge_model",
    "judge.temperature": "temperature",
    "judge.timeout_s": "timeout_s",
}


def empty_values(judge_model: str = "") -> FormValues:
    return {
        "name": "",
        "workspace": "",
        "enabled": "on",
        "condition": "",
        "sampling_rate": "0.1",
        "judge_model": judge_model,
        "temperature": "0",
        "timeout_s": f"{DEFAULT_TIMEOUT_S:g}",
        "criteria": ["accuracy", "helpfulness", "relevance"],
        "custom_criteria": "",
        "daily_cap_usd": "",
        "max_attempts": "3",
    }


def evaluator_values(evaluator: Evaluator) -> FormValues:
    definition = evaluator.definition
    condition = definition.condition
    return {
        "name": evaluator.name,
        "workspace": "",
        "enabled": "on" if evaluator.enabled else "",
        "condition": msgspec.json.format(msgspec.json.encode(condition), indent=2).decode()
        if condition
        else "",
        "sampling_rate": f"{definition.sampling_rate:g}",
        "judge_model": definition.judge.model,
        "temperature": f"{definition.judge.temperature:g}",
        "timeout_s": f"{definition.judge.timeout_s:g}",
        "criteria": [c.name for c in definition.criteria if c.built_in],
        "custom_criteria": "\n".join(
            f"{c.name}: {c.rubric}" for c in definition.criteria if not c.built_in
        ),
        "daily_cap_usd": "" if definition.daily_cap_usd is None else str(definition.daily_cap_usd),
        "max_attempts": str(definition.max_attempts),
    }


def _number(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return None
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return int(number) if number.is_integer() and "." not in stripped else number


def evaluator_body(values: FormValues) -> dict[str, Any]:
    """The API's body for the typed values; raises `DefinitionError` for text that cannot be
    read at all (the condition's JSON, a custom criterion without its rubric)."""
    condition_text = str(values.get("condition", "")).strip()
    condition: Any = None
    if condition_text:
        try:
            condition = msgspec.json.decode(condition_text)
        except msgspec.DecodeError:
            raise DefinitionError("condition", "is not valid JSON") from None
    criteria: list[Any] = [name for name in values.get("criteria", []) if name in BUILT_IN]
    for number, line in enumerate(str(values.get("custom_criteria", "")).splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, rubric = line.partition(":")
        if not colon or not rubric.strip():
            raise DefinitionError(
                "custom_criteria", f"line {number}: write the criterion as name: rubric"
            )
        criteria.append({"name": name.strip(), "rubric": rubric.strip()})
    judge: dict[str, Any] = {"model": str(values.get("judge_model", "")).strip()}
    for field in ("temperature", "timeout_s"):
        value = _number(str(values.get(field, "")))
        if value is not None:
            judge[field] = value
    cap = str(values.get("daily_cap_usd", "")).strip().removeprefix("$")
    attempts = _number(str(values.get("max_attempts", "")))
    return {
        "name": str(values.get("name", "")),
        "enabled": values.get("enabled") == "on",
        "condition": condition,
        "sampling_rate": _number(str(values.get("sampling_rate", ""))),
        "judge": judge,
        "criteria": criteria,
        "daily_cap_usd": cap or None,
        "max_attempts": attempts,
    }


def field_of(error: DefinitionError) -> str:
    if error.field in _FIELD_OF:
        return _FIELD_OF[error.field]
    if error.field.startswith("criteria"):
        return "criteria"
    head = error.field.split(".", 1)[0].split("[", 1)[0]
    return head if head in TEXT_FIELDS else ""


def problem_text(error: DefinitionError) -> str:
    """The message shown beside the field: the reason, with the path when it says more than
    the field does (`criteria[4].rubric`)."""
    reason = f"{error.reason[:1].upper()}{error.reason[1:]}."
    return reason if field_of(error) == error.field else f"{error.field}: {error.reason}."


def condition_text(condition: Any, limit: int = 60) -> str:
    """A condition in one short line: `every request`, or its compact JSON, cut."""
    if not condition:
        return "every request"
    text = msgspec.json.encode(condition).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(value: Decimal | None) -> str:
    """Dollars for a person: `no cap`, `$0`, `$1.50`, `$0.0000712`."""
    if value is None:
        return "no cap"
    if not value:
        return "$0"
    shown = value.normalize()
    if shown.as_tuple().exponent > -2:  # type: ignore[operator]
        shown = shown.quantize(Decimal("0.01"))
    return f"${format(shown, 'f')}"
