"""Database values as JSON: times in ISO 8601 UTC, money as an exact decimal string."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from telemetry.db import as_utc


def iso_time(value: datetime) -> str:
    converted = as_utc(value)
    assert converted is not None
    return converted.isoformat().replace("+00:00", "Z")


def money(value: Decimal) -> str:
    """Plain notation without trailing zeros: the same text on SQLite and Postgres."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def plain(value: Any) -> Any:
    """`value` with every datetime and Decimal inside it turned into text."""
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
