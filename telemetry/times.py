"""Times given by people (API bodies, CLI options, config): ISO 8601 text or epoch seconds, read
into aware UTC datetimes within the range every part of the gateway can store and convert.

The range stops a day short of Python's last date so that a time shown in any zone (rules read
times in IANA zones up to 14 hours ahead) is still a date Python can hold. A time outside it is
refused with a message that says the range, never an OverflowError later on.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
RANGE_TEXT: Final = "between 1970-01-01T00:00:00Z and 9999-12-30T23:59:59Z"
EXAMPLE: Final = "2030-01-31T00:00:00Z"


class InvalidTime(ValueError):
    """A time the gateway does not take; the message says why, for the caller to read."""


class OutOfRange(InvalidTime):
    """A time that reads well but falls outside the range."""


def parse_time(value: Any) -> datetime:
    """ISO 8601 text (no zone means UTC) or a number of epoch seconds, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise InvalidTime("a time is ISO 8601 text or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        return from_epoch(value)
    if not isinstance(value, str):
        raise InvalidTime("a time is ISO 8601 text or epoch seconds")
    return parse_iso_time(value)


def parse_iso_time(text: str) -> datetime:
    """ISO 8601 text (no zone means UTC) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        shown = text if len(text) <= 64 else f"{text[:64]}..."
        raise InvalidTime(f"not an ISO 8601 time: {shown!r} (e.g. {EXAMPLE})") from None
    return within_range(parsed)


def from_epoch(seconds: float) -> datetime:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidTime("epoch seconds are a number")
    if not (math.isfinite(seconds) and EARLIEST.timestamp() <= seconds <= LATEST.timestamp()):
        raise out_of_range()
    return datetime.fromtimestamp(seconds, UTC)


def within_range(value: datetime) -> datetime:
    """`value` in UTC (a naive one is taken as UTC), refused when outside the range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-12:00 is in the year 10000 in UTC
        raise out_of_range() from None
    if not EARLIEST <= value <= LATEST:
        raise out_of_range()
    return value


def later_by(start: datetime, amount: timedelta) -> datetime:
    """`start` plus `amount`, refused when the sum leaves the range."""
    try:
        return within_range(start + amount)
    except OverflowError:
        raise out_of_range() from None


def out_of_range() -> OutOfRange:
    return OutOfRange(f"out of range: the time must fall {RANGE_TEXT}")
