"""A report as JSON: the document as it is (`document.ReportDocument`), with money as exact
decimal strings (`"12.5"`), rates as ratios, times in UTC (ISO 8601, `Z`), and a chart's points
as `[time, value]` pairs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from telemetry.reports.document import ReportDocument
from telemetry.reports.values import money_text, time_text

CONTENT_TYPE: Final = "application/json"
_encoder = msgspec.json.Encoder()


def _texts(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, dict):
        return {key: _texts(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_texts(item) for item in value]
    return value


def render_json(document: ReportDocument) -> bytes:
    data = msgspec.to_builtins(document, builtin_types=(Decimal, datetime))
    return _encoder.encode({"object": "report", **_texts(data)})
