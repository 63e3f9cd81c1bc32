"""How a document's values are written as text, the same in every text format."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def money_text(value: Decimal) -> str:
    """Plain notation, exact, without trailing zeros (`12.5`, never `1.25E+1`)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def value_text(value: object) -> str:
    """A cell's text: money exact, floats as Python writes them back exactly, None empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return time_text(value)
    return str(value)
