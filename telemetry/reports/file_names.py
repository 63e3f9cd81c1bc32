"""The name a report's file goes by, in a download and as an email attachment alike."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9]+")


def report_file_name(name: str, start: datetime, time_zone: str, format_: str) -> str:
    """`weekly-summary-2026-11-30.pdf`: the report's name and the first day of its range, that
    day as the report's own time zone reads it (a Berlin week starts on a Monday, not on the
    Sunday UTC still shows at its first hour)."""
    slug = _NOT_IN_NAME.sub("-", name).strip("-").lower() or "report"
    first_day = start.astimezone(ZoneInfo(time_zone)).date().isoformat()
    return f"{slug}-{first_day}.{format_}"
