"""Numbers in the analytics tables: whole and exact where a chart would round (1,234,567
requests, not 1.2M), money to the cent from a dollar up and to four significant digits below,
times as the console writes them, ratios as percentages to two decimals."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from admin_ui.formatting import MISSING, count, dollars, duration


def money(value: float | Decimal | None) -> str:
    if value is None:
        return MISSING
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    if not amount.is_finite():
        return MISSING
    if amount == 0:
        return "$0.00"
    if abs(amount) >= 1:
        return dollars(amount.quantize(Decimal("0.01"), ROUND_HALF_UP))
    exponent = amount.adjusted() - 3
    return dollars(amount.quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP).normalize())


def percent(value: float | Decimal | None) -> str:
    if value is None:
        return MISSING
    return f"{float(value) * 100:.2f} %"


def table_value(value: float | Decimal | None, unit: str) -> str:
    """`value` in `unit` (count, tokens, usd, ms, percent) for a table cell."""
    if unit == "usd":
        return money(value)
    if unit == "ms":
        return duration(value)
    if unit == "percent":
        return percent(value)
    return count(value)
