"""An evaluator's definition: which interactions it picks, how often, which judge scores them on
which criteria, and what the judge may spend in a day.

The same parser reads the config file's `evaluators` entries and the admin API's bodies, and the
stored JSON (`evaluators.definition`) is `EvaluatorDefinition.to_json()`. A problem is a
`DefinitionError` naming the field, so both callers can say where it is.

Input shape (`criteria` items are a built-in's name or `{name, rubric}`; `judge` is a public
model name or `{model, temperature, timeout_s}`):

    {"condition": {...} | null, "sampling_rate": 0.1, "judge": "judge",
     "criteria": ["accuracy", {"name": "brevity", "rubric": "..."}],
     "daily_cap_usd": "2.50" | null, "max_attempts": 3}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from telemetry.evaluation.criteria import BUILT_IN

FIELDS: Final = (
    "condition",
    "sampling_rate",
    "judge",
    "criteria",
    "daily_cap_usd",
    "max_attempts",
)
JUDGE_FIELDS: Final = ("model", "temperature", "timeout_s")
MAX_CRITERIA: Final = 12
MAX_RUBRIC: Final = 2000
MAX_ATTEMPTS: Final = 10
MAX_TIMEOUT_S: Final = 600.0
DEFAULT_TIMEOUT_S: Final = 30.0
DEFAULT_MAX_ATTEMPTS: Final = 3
_CRITERION_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_NAME: Final = 200

ConditionCheck = Callable[[Any], "tuple[str, str] | None"]
"""The first problem of a condition in the rules' language as (field path, reason), or None
(`rules.recorded.condition_problem`; injected: telemetry does not import the rules)."""


class DefinitionError(ValueError):
    """What is wrong with a definition: `field` is a dotted path (`judge.timeout_s`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Criterion(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    rubric: str
    built_in: bool = False


class Judge(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    """A public model name of the gateway config."""
    temperature: float = 0.0
    timeout_s: float = DEFAULT_TIMEOUT_S


class EvaluatorDefinition(msgspec.Struct, frozen=True, kw_only=True):
    condition: dict[str, Any] | None
    sampling_rate: float
    judge: Judge
    criteria: tuple[Criterion, ...]
    daily_cap_usd: Decimal | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def to_json(self) -> dict[str, Any]:
        """The stored and shown form (money as a string, exact)."""
        return {
            "condition": self.condition,
            "sampling_rate": self.sampling_rate,
            "judge": {
                "model": self.judge.model,
                "temperature": self.judge.temperature,
                "timeout_s": self.judge.timeout_s,
            },
            "criteria": [{"name": c.name, "rubric": c.rubric} for c in self.criteria],
            "daily_cap_usd": None if self.daily_cap_usd is None else str(self.daily_cap_usd),
            "max_attempts": self.max_attempts,
        }


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError("name", "must be a non-empty string")
    if len(value) > MAX_NAME:
        raise DefinitionError("name", f"must be at most {MAX_NAME} characters")
    return value.strip()


def parse_definition(
    value: Any,
    *,
    models: Collection[str] | None = None,
    check_condition: ConditionCheck | None = None,
    stored: bool = False,
) -> EvaluatorDefinition:
    """The definition in `value`. With `models`, the judge must be one of them (public model
    names); with `check_condition`, the condition must pass it (without, only its being an
    object is checked: a stored definition was checked when it was written). `stored`: read
    back from the table, so built-in rubrics are taken as stored."""
    if not isinstance(value, Mapping):
        raise DefinitionError("definition", "must be an object")
    unknown = [key for key in value if key not in FIELDS]
    if unknown:
        raise DefinitionError(str(unknown[0]), "unknown field")
    condition = _condition(value.get("condition"), check_condition)
    return EvaluatorDefinition(
        condition=condition,
        sampling_rate=_rate(value.get("sampling_rate")),
        judge=_judge(value.get("judge"), models),
        criteria=_criteria(value.get("criteria"), stored),
        daily_cap_usd=_money(value.get("daily_cap_usd")),
        max_attempts=_attempts(value.get("max_attempts")),
    )


def _condition(value: Any, check: ConditionCheck | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise DefinitionError("condition", "must be an object in the rules' condition language")
    problem = check(value) if check is not None else None
    if problem is not None:
        raise DefinitionError(*problem)
    return dict(value)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(field, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise DefinitionError(field, "must be a finite number")
    return number


def _rate(value: Any) -> float:
    if value is None:
        return 1.0
    rate = _number(value, "sampling_rate")
    if not 0.0 <= rate <= 1.0:
        raise DefinitionError("sampling_rate", "must be from 0 to 1")
    return rate


def _judge(value: Any, models: Collection[str] | None) -> Judge:
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, Mapping):
        raise DefinitionError("judge", "is required: a public model name or {model, ...}")
    unknown = [key for key in value if key not in JUDGE_FIELDS]
    if unknown:
        raise DefinitionError(f"judge.{unknown[0]}", "unknown field")
    model = value.get("model")
    if not isinstance(model, str) or not model:
        raise DefinitionError("judge.model", "must be a public model name")
    if models is not None and model not in models:
        raise DefinitionError("judge.model", f"no public model '{model[:100]}' in the config")
    temperature = value.get("temperature", 0.0)
    temperature = _number(temperature, "judge.temperature")
    if not 0.0 <= temperature <= 2.0:
        raise DefinitionError("judge.temperature", "must be from 0 to 2")
    timeout = value.get("timeout_s", DEFAULT_TIMEOUT_S)
    timeout = _number(timeout, "judge.timeout_s")
    if not 0.0 < timeout <= MAX_TIMEOUT_S:
        raise DefinitionError("judge.timeout_s", f"must be over 0 and at most {MAX_TIMEOUT_S:g}")
    return Judge(model=model, temperature=temperature, timeout_s=timeout)


def _criteria(value: Any, stored: bool) -> tuple[Criterion, ...]:
    if value is None:
        value = ["accuracy", "helpfulness", "relevance"]
    if not isinstance(value, list) or not value:
        raise DefinitionError("criteria", "must be a non-empty list")
    if len(value) > MAX_CRITERIA:
        raise DefinitionError("criteria", f"at most {MAX_CRITERIA} criteria")
    found: list[Criterion] = []
    for index, item in enumerate(value):
        field = f"criteria[{index}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            raise DefinitionError(field, "must be a criterion name or {name, rubric}")
        unknown = [key for key in item if key not in ("name", "rubric")]
        if unknown:
            raise DefinitionError(f"{field}.{unknown[0]}", "unknown field")
        name = item.get("name")
        if not isinstance(name, str) or not _CRITERION_NAME.match(name):
            raise DefinitionError(
                f"{field}.name", "must be lowercase letters, digits and _ (at most 40)"
            )
        if any(c.name == name for c in found):
            raise DefinitionError(f"{field}.name", f"'{name}' is listed twice")
        rubric = item.get("rubric")
        if rubric is None:
            if name not in BUILT_IN:
                raise DefinitionError(
                    f"{field}.rubric",
                    f"'{name}' is not built in ({', '.join(BUILT_IN)}): give its rubric",
                )
            found.append(Criterion(name=name, rubric=BUILT_IN[name], built_in=True))
            continue
        if not isinstance(rubric, str) or not rubric.strip():
            raise DefinitionError(f"{field}.rubric", "must be a non-empty string")
        if len(rubric) > MAX_RUBRIC:
            raise DefinitionError(f"{field}.rubric", f"at most {MAX_RUBRIC} characters")
        built_in = name in BUILT_IN and (stored or rubric == BUILT_IN[name])
        found.append(Criterion(name=name, rubric=rubric.strip(), built_in=built_in))
    return tuple(found)


def _money(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DefinitionError("daily_cap_usd", "must be a number of US dollars or null")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise DefinitionError("daily_cap_usd", "must be a number of US dollars or null") from None
    if not amount.is_finite() or amount < 0:
        raise DefinitionError("daily_cap_usd", "must be a non-negative number of US dollars")
    return amount


def _attempts(value: Any) -> int:
    if value is None:
        return DEFAULT_MAX_ATTEMPTS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise DefinitionError("max_attempts", f"must be an integer from 1 to {MAX_ATTEMPTS}")
    return value
