"""The limits a key or a workspace carries (budgets, rpm, tpm, max parallel, default guardrails),
and their JSON form.

Stored and exchanged as JSON: a budget is `{"limit_usd": "10.00", "window": "monthly",
"soft_percent": 80}` with the amount as a decimal string, so no float ever touches money. In
memory the amount is an integer count of micro-dollars. Every parser names the path of the
field it refuses (`budgets[1].window`), so the CLI, the admin API and the store report the same
precise message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

WINDOWS: tuple[str, ...] = ("daily", "weekly", "monthly", "total")
MICROS_PER_USD = 1_000_000
MAX_LIMIT_USD = Decimal(1_000_000_000)
MAX_COUNT = 2**31 - 1  # rpm, tpm and max parallel live in Integer columns
LIMIT_FIELDS: tuple[str, ...] = ("rpm_limit", "tpm_limit", "max_parallel")
WORKSPACE_SETTINGS: tuple[str, ...] = ("budgets", *LIMIT_FIELDS, "guardrails")
MAX_GUARDRAILS = 32

_GUARDRAIL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

_BUDGET_TEXT = re.compile(r"^\$?(?P<amount>[^/@]+)/(?P<window>[a-z]+)(?:@(?P<soft>[^%]+)%?)?$")


class InvalidField(ValueError):
    """A value that cannot be accepted; `param` is the path of the field, such as
    `budgets[0].limit_usd`."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"{param}: {problem}")
        self.param = param
        self.problem = problem


class BudgetLimit(msgspec.Struct, frozen=True):
    """A spending limit over one window. `soft_percent` is where a warning fires, if anywhere."""

    limit_micros: int
    window: str  # daily | weekly | monthly | total
    soft_percent: float | None = None

    @property
    def limit_usd(self) -> Decimal:
        return Decimal(self.limit_micros).scaleb(-6)

    @property
    def soft_micros(self) -> int | None:
        """The spend at which the soft limit is crossed, in micro-dollars."""
        if self.soft_percent is None:
            return None
        return int(Decimal(self.limit_micros) * Decimal(str(self.soft_percent)) / 100)

    @classmethod
    def from_json(cls, value: Any, path: str = "budget") -> BudgetLimit:
        if not isinstance(value, Mapping):
            raise InvalidField(
                path, 'expected an object like {"limit_usd": "10.00", "window": "monthly"}'
            )
        unknown = sorted(set(value) - {"limit_usd", "window", "soft_percent"})
        if unknown:
            raise InvalidField(
                f"{path}.{unknown[0]}",
                "unknown field; a budget has limit_usd, window and soft_percent",
            )
        if "limit_usd" not in value:
            raise InvalidField(f"{path}.limit_usd", "required")
        if "window" not in value:
            raise InvalidField(f"{path}.window", "required")
        return cls(
            limit_micros=usd_to_micros(value["limit_usd"], f"{path}.limit_usd"),
            window=parse_window(value["window"], f"{path}.window"),
            soft_percent=parse_soft_percent(value.get("soft_percent"), f"{path}.soft_percent"),
        )

    @classmethod
    def from_text(cls, text: str, path: str = "budget") -> BudgetLimit:
        """The CLI's form: `AMOUNT/WINDOW[@SOFT%]`, e.g. `10.00/monthly` or `5/daily@80`."""
        match = _BUDGET_TEXT.match(text.strip().lower())
        if match is None:
            raise InvalidField(
                path, f"expected AMOUNT/WINDOW[@SOFT%] such as 10.00/monthly@80, got '{text}'"
            )
        soft = match.group("soft")
        return cls(
            limit_micros=usd_to_micros(match.group("amount").strip(), f"{path} amount"),
            window=parse_window(match.group("window"), f"{path} window"),
            soft_percent=None if soft is None else _soft_from_text(soft, f"{path} soft limit"),
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"limit_usd": micros_to_usd(self.limit_micros)}
        document["window"] = self.window
        if self.soft_percent is not None:
            soft = self.soft_percent
            document["soft_percent"] = int(soft) if soft == int(soft) else soft
        return document

    def describe(self) -> str:
        """Short text for listings: `$10.00/monthly@80%`."""
        soft = "" if self.soft_percent is None else f"@{self.to_json()['soft_percent']}%"
        return f"${micros_to_usd(self.limit_micros)}/{self.window}{soft}"


class WorkspaceLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What a workspace's settings impose on every key in it together. Empty: no limits.

    `guardrails` names guardrails of the config applied to every request of the workspace's
    keys; they are no limit, so `unlimited` does not look at them."""

    budgets: tuple[BudgetLimit, ...] = ()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel: int | None = None
    guardrails: tuple[str, ...] = ()

    @property
    def unlimited(self) -> bool:
        return not self.budgets and all(getattr(self, field) is None for field in LIMIT_FIELDS)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], path: str = "settings") -> WorkspaceLimits:
        """The limits in a workspace's settings; other settings are not this type's business."""
        if not isinstance(settings, Mapping):
            raise InvalidField(path, "expected an object")
        return cls(
            budgets=parse_budgets(settings.get("budgets"), f"{path}.budgets"),
            rpm_limit=parse_count(settings.get("rpm_limit"), f"{path}.rpm_limit"),
            tpm_limit=parse_count(settings.get("tpm_limit"), f"{path}.tpm_limit"),
            max_parallel=parse_count(settings.get("max_parallel"), f"{path}.max_parallel"),
            guardrails=parse_guardrail_names(settings.get("guardrails"), f"{path}.guardrails"),
        )

    def to_settings(self) -> dict[str, Any]:
        return {
            "budgets": [budget.to_json() for budget in self.budgets],
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "max_parallel": self.max_parallel,
            "guardrails": list(self.guardrails),
        }


NO_LIMITS = WorkspaceLimits()


# --- field parsers ------------------------------------------------------------------------------


def usd_to_micros(value: Any, path: str) -> int:
    """A positive amount of US dollars (a decimal string or a number) in micro-dollars, exactly."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidField(path, 'expected an amount of US dollars as a string, such as "10.00"')
    try:
        amount = Decimal(value.strip().removeprefix("$") if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise InvalidField(path, f"not an amount of US dollars: {_show(value)}") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidField(path, f"expected a positive amount, got {_show(value)}")
    if amount > MAX_LIMIT_USD:
        raise InvalidField(path, f"expected at most {MAX_LIMIT_USD} USD, got {_show(value)}")
    micros = amount.scaleb(6)
    if micros != micros.to_integral_value():
        raise InvalidField(path, f"at most 6 decimal places (a micro-dollar), got {_show(value)}")
    return int(micros)


def micros_to_usd(micros: int) -> str:
    """Micro-dollars as a decimal string with at least cents: 10000000 → "10.00"."""
    text = format(Decimal(micros).scaleb(-6).normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def parse_window(value: Any, path: str) -> str:
    if value not in WINDOWS:
        raise InvalidField(path, f"expected one of {', '.join(WINDOWS)}; got {_show(value)}")
    return str(value)


def parse_soft_percent(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 100:
        raise InvalidField(path, f"expected a percentage above 0 and below 100, got {_show(value)}")
    return float(value)


def _soft_from_text(text: str, path: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise InvalidField(path, f"expected a percentage, got '{text}'") from None
    result = parse_soft_percent(number, path)
    assert result is not None
    return result


def parse_budgets(value: Any, path: str = "budgets") -> tuple[BudgetLimit, ...]:
    """A list of budgets (None: none), at most one per window: each window keeps one spend."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidField(path, "expected a list of budgets")
    budgets: list[BudgetLimit] = []
    for index, item in enumerate(value):
        budget = BudgetLimit.from_json(item, f"{path}[{index}]")
        if any(existing.window == budget.window for existing in budgets):
            raise InvalidField(
                f"{path}[{index}].window", f"a second {budget.window} budget; one per window"
            )
        budgets.append(budget)
    return tuple(budgets)


def parse_count(value: Any, path: str) -> int | None:
    """A positive whole number (a rate or parallelism limit), or None for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise InvalidField(path, f"expected a positive whole number, got {_show(value)}")
    return value


def parse_guardrail_names(value: Any, path: str = "guardrails") -> tuple[str, ...]:
    """Names of guardrails (None: none). Only their shape is checked here: which guardrails
    exist is the config's business, and the config can change after a name is stored."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidField(path, "expected a list of guardrail names")
    if len(value) > MAX_GUARDRAILS:
        raise InvalidField(path, f"at most {MAX_GUARDRAILS} guardrails, got {len(value)}")
    names: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str) or not _GUARDRAIL_NAME.fullmatch(name):
            raise InvalidField(
                f"{path}[{index}]",
                "expected a guardrail name of 1-128 letters, digits, '_', '.' or '-', starting "
                f"with a letter or digit; got {_show(name)}",
            )
        if name in names:
            raise InvalidField(f"{path}[{index}]", f"'{name}' is already in the list")
        names.append(name)
    return tuple(names)


def _show(value: Any) -> str:
    try:
        text = repr(value) if isinstance(value, str) else msgspec.json.encode(value).decode()
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
