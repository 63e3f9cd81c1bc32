"""A report's values written as the console writes them: money exact to the digit
(`formatting.dollars`), durations, counts and rates through the console's own formatters, and
the change of a headline figure as its stat tiles say it (`change_text`)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from admin_ui import formatting
from admin_ui.chart_tiles import change_text
from admin_ui.chart_units import MINUS, MISSING, format_value
from telemetry.reports.document import Figure, Unit, Value

ISO_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")

UNIT_SUFFIX: dict[str, str] = {
    "USD": "USD",
    "ms": "ms",
    "ratio": "%",
    "pct": "%",
}
"""What a table's column heading adds in brackets: "Cost (USD)", "p95 (ms)"; counts need
no unit."""


def is_number(value: Value) -> bool:
    return isinstance(value, Decimal | float | int) and not isinstance(value, bool)


def value_text(value: Value, unit: Unit, time_zone: str | None = None) -> str:
    """One value in its unit; text as given, "—" when missing. With `time_zone`, a time given
    as ISO 8601 text (`2026-12-04T22:00:00Z`) reads in that zone: `2026-12-04 23:00`."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return _local_time(value, time_zone) if time_zone and ISO_TIME.fullmatch(value) else value
    if unit == "USD":
        return formatting.dollars(value if isinstance(value, Decimal) else Decimal(str(value)))
    if unit == "ms":
        return formatting.ms(value)
    if unit == "ratio":
        return format_value(float(value), "percent")
    if unit == "pct":
        return change_pct_text(float(value))
    if unit in ("tokens", "requests"):
        return formatting.count(value)
    return plain_number(float(value))


def _local_time(text: str, time_zone: str) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return text
    return f"{moment.astimezone(ZoneInfo(time_zone)):%Y-%m-%d %H:%M}"


def plain_number(number: float) -> str:
    """A number without a unit, never in scientific notation: whole ones grouped (3,730),
    others to two decimals from 1 up (3.75), to three significant digits below (0.0412)."""
    if number.is_integer():
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 1:
        return f"{number:,.2f}"
    return f"{number:.3g}"


def change_pct_text(change: float | None) -> str:
    """The change in percent, signed ("+12.5 %", a true minus below zero); "—" when there is
    nothing to compare."""
    if change is None:
        return MISSING
    written = f"{abs(change):.1f}" if abs(change) < 99.95 else f"{abs(change):,.0f}"
    if float(written.replace(",", "")) == 0:
        return "0 %"
    return f"{'+' if change > 0 else MINUS}{written} %"


def figure_change(figure: Figure) -> str:
    """The change against the previous period: in percentage points for a rate (as the
    console's tiles), else the document's own percent."""
    if figure.unit == "ratio" and is_number(figure.value) and is_number(figure.previous):
        assert figure.value is not None and figure.previous is not None
        text, _, _ = change_text(
            float(figure.value), float(figure.previous), "percent", higher_is_better=True
        )
        return text
    return change_pct_text(figure.change_pct)


def previous_text(figure: Figure) -> str:
    return value_text(figure.previous, figure.unit)


def column_heading(title: str, unit: Unit) -> str:
    suffix = UNIT_SUFFIX.get(unit)
    return f"{title} ({suffix})" if suffix else title
