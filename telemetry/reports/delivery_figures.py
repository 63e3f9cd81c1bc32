"""The headline figures a report's recipients read in the message itself, and how each is
written: money exact to the digit, counts grouped, rates in percent, durations in ms, the change
against the previous period signed ("+19.9 %")."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from telemetry.reports.document import Figure, ReportDocument, Value

MISSING: Final = "—"
MOST_FIGURES: Final = 6


def headline_figures(document: ReportDocument) -> Sequence[Figure]:
    """The summary section's figures (else the first section's that has any), at most six."""
    sections = sorted(document.sections, key=lambda section: section.name != "summary")
    for section in sections:
        if section.figures:
            return section.figures[:MOST_FIGURES]
    return ()


def _money(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    whole, _, fraction = format(abs(amount).normalize(), "f").partition(".")
    return f"{sign}${int(whole):,}.{fraction.ljust(2, '0')}"


def value_text(value: Value, unit: str) -> str:
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    if unit == "USD":
        return _money(value if isinstance(value, Decimal) else Decimal(str(value)))
    number = float(value)
    if unit == "ratio":
        return f"{number * 100:.1f} %"
    if unit == "pct":
        return f"{number:+.1f} %"
    if unit == "ms":
        return f"{number:,.0f} ms" if abs(number) >= 100 else f"{number:.1f} ms"
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.3g}"


def change_text(figure: Figure) -> str:
    """ "+19.9 %" against the previous period; "—" when there was none."""
    if figure.change_pct is None:
        return MISSING
    return f"{figure.change_pct:+.1f} %"


def figure_line(figure: Figure) -> str:
    """ "Cost: $1,482.0375 (+19.9 % against the previous period)"."""
    change = change_text(figure)
    against = "no previous period" if change == MISSING else f"{change} against the previous period"
    return f"{figure.title}: {value_text(figure.value, figure.unit)} ({against})"
